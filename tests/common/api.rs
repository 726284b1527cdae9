//! The recorder's HTTP API from the tests: minimal HTTP/1.1 over a plain socket, with the
//! API token the recorder generated in its spool directory (no users configured).

use super::Recorder;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// A response: status, headers (lower-cased names), body.
#[derive(Debug, Clone)]
pub struct HttpReply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpReply {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One request with extra header lines (each ending in CRLF).
pub fn http_request(addr: SocketAddr, method: &str, path: &str, headers: &str) -> HttpReply {
    let mut s = TcpStream::connect(addr).expect("connect to the HTTP API");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Length: 0\r\n{headers}\r\n"
    )
    .expect("send");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read response");
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    HttpReply {
        status,
        headers,
        body: body.to_string(),
    }
}

impl Recorder {
    /// The token the recorder wrote to `<spool>/api-token` at start.
    pub fn api_token(&self) -> String {
        std::fs::read_to_string(self.spool_dir.join("api-token"))
            .map(|t| t.trim().to_string())
            .unwrap_or_default()
    }

    /// An authenticated API request (Bearer token from the spool).
    pub fn api(&self, method: &str, path: &str) -> HttpReply {
        let auth = format!("Authorization: Bearer {}\r\n", self.api_token());
        http_request(self.http_addr, method, path, &auth)
    }
}

/// The value of the first `/metrics` line that starts with `series` (name and labels).
pub fn metric_value(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
}

/// `GET /metrics` (open, no credentials): the exposition text.
pub fn metrics_text(addr: SocketAddr) -> String {
    http_request(addr, "GET", "/metrics", "").body
}

impl Recorder {
    /// The current value of a `/metrics` series; panics with the page when it is absent.
    pub fn metric(&self, series: &str) -> f64 {
        let text = metrics_text(self.http_addr);
        metric_value(&text, series).unwrap_or_else(|| panic!("no {series} in metrics:\n{text}"))
    }

    /// Polls `GET /api/v1/recordings/{id}` until the API reports the recording in `state`
    /// (recording.json is written before the API learns of the call); panics after 5 s.
    pub fn wait_api_state(&self, recording_id: &str, state: &str) {
        let path = format!("/api/v1/recordings/{recording_id}");
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let reply = self.api("GET", &path);
            let doc: serde_json::Value = serde_json::from_str(&reply.body).unwrap_or_default();
            if reply.status == 200 && doc["state"] == state {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the API never showed {recording_id} {state}: {} {}",
                reply.status,
                reply.body
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Polls a `/metrics` series until it reads `want` (the SIP core publishes its counters
    /// once a second); panics after 5 s.
    pub fn wait_metric(&self, series: &str, want: f64) {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while self.metric(series) != want {
            assert!(
                std::time::Instant::now() < deadline,
                "{series} = {}, want {want}",
                self.metric(series)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}
