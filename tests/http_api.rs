//! The HTTP API (SPEC §7) against the real binary: health, metrics, recordings, stop.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

const T: Duration = Duration::from_secs(5);

/// A minimal HTTP/1.1 exchange: (status, body).
fn http(addr: SocketAddr, method: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect to the HTTP API");
    s.set_read_timeout(Some(T)).expect("timeout");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    )
    .expect("send");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read response");
    let status = raw
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = raw
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

fn metric(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
}

#[test]
fn health_metrics_recordings_and_stop() {
    let rec = Recorder::start(&[]);
    let (status, body) = http(rec.http_addr, "GET", "/health");
    assert_eq!((status, body.trim()), (200, "ok"));
    let (_, m) = http(rec.http_addr, "GET", "/metrics");
    assert_eq!(
        metric(&m, "sip_recorder_active_recordings "),
        Some(0.0),
        "{m}"
    );

    let mut c = rec.udp();
    let mut call = Call::genesys(&c);
    let invite = call.genesys_invite();
    establish(&mut c, &mut call, &invite);
    let doc = rec.wait_call_state(&call.call_id, "active", T);
    let id = doc["recording_id"]
        .as_str()
        .expect("recording_id")
        .to_string();

    // The recording shows up as active once its task has published it.
    let deadline = std::time::Instant::now() + T;
    let list = loop {
        let (status, body) = http(rec.http_addr, "GET", "/api/v1/recordings");
        assert_eq!(status, 200);
        let v: serde_json::Value = serde_json::from_str(&body).expect("JSON list");
        if v["active"].as_array().is_some_and(|a| a.len() == 1) {
            break v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not listed as active: {v}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(list["active"][0]["recording_id"], id.as_str());
    let (status, one) = http(rec.http_addr, "GET", &format!("/api/v1/recordings/{id}"));
    assert_eq!(status, 200);
    assert!(one.contains(&call.call_id), "{one}");
    assert_eq!(http(rec.http_addr, "GET", "/api/v1/recordings/nope").0, 404);

    let (_, m) = http(rec.http_addr, "GET", "/metrics");
    assert_eq!(
        metric(&m, "sip_recorder_active_recordings "),
        Some(1.0),
        "{m}"
    );
    assert!(
        metric(&m, "sip_recorder_disk_free_bytes ").is_some_and(|v| v > 0.0),
        "{m}"
    );

    // Stop through the API: the recorder hangs up with BYE.
    let (status, _) = http(
        rec.http_addr,
        "POST",
        &format!("/api/v1/recordings/{id}/stop"),
    );
    assert_eq!(status, 202);
    let bye = c.wait_request("BYE", T).expect("BYE after the API stop");
    c.respond(&bye, 200, "OK");
    let doc = rec.wait_call_state(&call.call_id, "ended", T);
    assert_eq!(doc["end_reason"], "shutdown");
    assert_eq!(
        http(
            rec.http_addr,
            "POST",
            &format!("/api/v1/recordings/{id}/stop")
        )
        .0,
        404,
        "already ended"
    );

    std::thread::sleep(Duration::from_millis(1200)); // counters are published once a second
    let (_, m) = http(rec.http_addr, "GET", "/metrics");
    assert_eq!(
        metric(&m, "sip_recorder_active_recordings "),
        Some(0.0),
        "{m}"
    );
    assert_eq!(
        metric(&m, "sip_recorder_recordings_total "),
        Some(1.0),
        "{m}"
    );
    assert!(
        metric(&m, "sip_recorder_sip_responses_total{code=\"200\"} ").is_some_and(|v| v >= 1.0),
        "{m}"
    );
}

#[test]
fn health_is_503_while_draining() {
    let rec = Recorder::start(&[]);
    let mut c = rec.udp();
    let mut call = Call::genesys(&c);
    let invite = call.genesys_invite();
    establish(&mut c, &mut call, &invite);
    rec.wait_call_state(&call.call_id, "active", T);
    rec.sigterm();
    let deadline = std::time::Instant::now() + T;
    loop {
        let (status, _) = http(rec.http_addr, "GET", "/health");
        if status == 503 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "health still {status} while draining"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn events_websocket_subscribes_to_recordings_with_acknowledged_updates() {
    let rec = Recorder::start(&[]);
    let (mut ws, _) = tungstenite::connect(format!("ws://{}/api/v1/events", rec.http_addr))
        .expect("WebSocket upgrade");
    let subscribe = serde_json::json!({"type": "message", "message": {"messageId": 1, "type": "subscribeRequest",
        "subscriptions": [{"index": 1, "type": "recordings"}]}});
    ws.send(tungstenite::Message::Text(subscribe.to_string().into()))
        .expect("subscribe");
    let next = |ws: &mut tungstenite::WebSocket<_>| -> serde_json::Value {
        loop {
            if let tungstenite::Message::Text(t) = ws.read().expect("read") {
                return serde_json::from_str(&t).expect("JSON");
            }
        }
    };
    let ack = next(&mut ws);
    assert_eq!(
        (ack["type"].as_str(), ack["messageAck"]["status"].as_str()),
        (Some("messageAck"), Some("success")),
        "{ack}"
    );
    let full = next(&mut ws);
    assert_eq!(full["message"]["type"], "recordingsUpdate", "{full}");
    assert_eq!(
        full["message"]["recordings"].as_array().map(Vec::len),
        Some(0),
        "{full}"
    );
    let ack_of = |m: &serde_json::Value| {
        serde_json::json!({"type": "messageAck", "messageAck": {"messageId": m["message"]["messageId"], "status": "success"}})
            .to_string()
    };
    ws.send(tungstenite::Message::Text(ack_of(&full).into()))
        .expect("ack");

    // A call: active, then paused, then ended, each an update the client acknowledges.
    let mut c = rec.udp();
    let mut call = Call::genesys(&c);
    let invite = call.genesys_invite();
    establish(&mut c, &mut call, &invite);
    let pause = call.reinvite(&genesys_sdp(2, "inactive"), "");
    c.send(&pause);
    let ok = c.expect_reply(&pause, 200, T);
    c.send(&call.ack_2xx(&ok));
    rec.wait_call_state(&call.call_id, "paused", T);
    hang_up(&mut c, &mut call);
    let mut states = vec![];
    let mut ids = std::collections::HashSet::new();
    while states.last().map(String::as_str) != Some("ended") {
        let m = next(&mut ws);
        assert_eq!(m["message"]["type"], "recordingUpdate", "{m}");
        assert!(
            ids.insert(m["message"]["messageId"].as_u64().expect("messageId")),
            "ids are unique"
        );
        ws.send(tungstenite::Message::Text(ack_of(&m).into()))
            .expect("ack");
        states.push(
            m["message"]["recording"]["state"]
                .as_str()
                .unwrap_or("")
                .to_string(),
        );
    }
    assert_eq!(states, ["active", "paused", "ended"]);
}
