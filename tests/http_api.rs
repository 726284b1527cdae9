//! The HTTP API (SPEC §7) against the real binary: health, metrics, recordings, stop (with the
//! token the recorder generates when no user is configured), the `recordings` events
//! extension, and HTTPS on the API listener.

mod common;

use common::rtp::{Codec, Pacer, RtpSender, media_sdp, send_tones};
use common::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

const T: Duration = Duration::from_secs(5);

/// An authenticated API call: (status, body).
fn api(rec: &Recorder, method: &str, path: &str) -> (u16, String) {
    let r = rec.api(method, path);
    (r.status, r.body)
}

/// A minimal HTTP/1.1 exchange without credentials: (status, body).
fn http(addr: SocketAddr, method: &str, path: &str) -> (u16, String) {
    let r = http_request(addr, method, path, "");
    (r.status, r.body)
}

#[test]
fn health_metrics_recordings_and_stop() {
    let rec = Recorder::start(&[]);
    let (status, body) = http(rec.http_addr, "GET", "/health");
    assert_eq!((status, body.trim()), (200, "ok"));
    let (_, m) = http(rec.http_addr, "GET", "/metrics");
    assert_eq!(
        metric_value(&m, "sip_recorder_active_recordings "),
        Some(0.0),
        "{m}"
    );

    let mut c = rec.udp();
    let call = genesys_call_active(&rec, &mut c);
    let (_, doc) = rec.wait_call_state(&call.call_id, "active", T);
    let id = doc["recording_id"]
        .as_str()
        .expect("recording_id")
        .to_string();

    // The recording shows up as active once its task has published it.
    let deadline = std::time::Instant::now() + T;
    let list = loop {
        let (status, body) = api(&rec, "GET", "/api/v1/recordings");
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
    let (status, one) = api(&rec, "GET", &format!("/api/v1/recordings/{id}"));
    assert_eq!(status, 200);
    assert!(one.contains(&call.call_id), "{one}");
    assert_eq!(api(&rec, "GET", "/api/v1/recordings/nope").0, 404);
    assert_eq!(
        http(rec.http_addr, "GET", &format!("/api/v1/recordings/{id}")).0,
        401,
        "no credentials"
    );

    let (_, m) = http(rec.http_addr, "GET", "/metrics");
    assert_eq!(
        metric_value(&m, "sip_recorder_active_recordings "),
        Some(1.0),
        "{m}"
    );
    assert!(
        metric_value(&m, "sip_recorder_disk_free_bytes ").is_some_and(|v| v > 0.0),
        "{m}"
    );
    assert!(
        metric_value(&m, "sip_recorder_wav_files_open ").is_some_and(|v| v >= 1.0),
        "{m}"
    );

    // Stop through the API: the recorder hangs up with BYE.
    let stop = format!("/api/v1/recordings/{id}/stop");
    assert_eq!(http(rec.http_addr, "POST", &stop).0, 401, "no credentials");
    let (status, _) = api(&rec, "POST", &stop);
    assert_eq!(status, 202);
    let bye = c.wait_request("BYE", T).expect("BYE after the API stop");
    c.respond(&bye, 200, "OK");
    let (_, doc) = rec.wait_call_state(&call.call_id, "ended", T);
    assert_eq!(doc["end_reason"], "shutdown");
    assert_eq!(api(&rec, "POST", &stop).0, 404, "already ended");

    std::thread::sleep(Duration::from_millis(1200)); // counters are published once a second
    let (_, m) = http(rec.http_addr, "GET", "/metrics");
    assert_eq!(
        metric_value(&m, "sip_recorder_active_recordings "),
        Some(0.0),
        "{m}"
    );
    assert_eq!(
        metric_value(&m, "sip_recorder_recordings_total "),
        Some(1.0),
        "{m}"
    );
    // Every file is final: none open, no audio waiting, none lost or shed.
    for (name, value) in [
        ("sip_recorder_wav_files_open ", 0.0),
        ("sip_recorder_wav_pending_bytes ", 0.0),
        ("sip_recorder_wav_write_errors_total ", 0.0),
        ("sip_recorder_wav_samples_shed_total ", 0.0),
    ] {
        assert_eq!(metric_value(&m, name), Some(value), "{name}: {m}");
    }
    assert!(
        metric_value(&m, "sip_recorder_sip_responses_total{code=\"200\"} ")
            .is_some_and(|v| v >= 1.0),
        "{m}"
    );
}

#[test]
fn health_is_503_while_draining() {
    let rec = Recorder::start(&[]);
    let mut c = rec.udp();
    let _call = genesys_call_active(&rec, &mut c);
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

/// Our `recordings` extension of the events guide, in the guide's shapes: indexed
/// subscription with `elements`, pending → active, then `add`/`update`/`remove` entries.
#[test]
fn events_recordings_extension_add_update_remove() {
    let rec = Recorder::start(&[]);
    let token = rec
        .api("POST", "/api/v1/authTokens")
        .header("x-cisco-cms-auth-token")
        .expect("X-Cisco-CMS-Auth-Token")
        .to_string();
    let (mut ws, _) = tungstenite::connect(format!(
        "ws://{}/events/v1?authToken={token}",
        rec.http_addr
    ))
    .expect("WebSocket upgrade");
    let subscribe = serde_json::json!({"type": "message", "message": {"messageId": 1, "type": "subscribeRequest",
        "subscriptions": [{"index": 7, "type": "recordings", "elements": ["state", "sip_call_id"]}]}});
    ws.send(tungstenite::Message::Text(subscribe.to_string().into()))
        .expect("subscribe");
    // Reads the next frame, acknowledging server messages.
    let mut next = || -> serde_json::Value {
        loop {
            if let tungstenite::Message::Text(t) = ws.read().expect("read") {
                let v: serde_json::Value = serde_json::from_str(&t).expect("JSON");
                if v["type"] == "message" {
                    let ack = serde_json::json!({"type": "messageAck", "messageAck": {"messageId": v["message"]["messageId"], "status": "success"}});
                    ws.send(tungstenite::Message::Text(ack.to_string().into()))
                        .expect("ack");
                }
                return v;
            }
        }
    };
    let ack = next();
    assert_eq!(ack["messageAck"]["status"], "success", "{ack}");
    for state in ["pending", "active"] {
        let m = next();
        assert_eq!(m["message"]["type"], "subscriptionUpdate", "{m}");
        assert_eq!(m["message"]["subscriptions"][0]["state"], state, "{m}");
    }
    let mut c = rec.udp();
    let mut call = genesys_call_active(&rec, &mut c);
    pause(&rec, &mut c, &mut call, 2);
    hang_up(&mut c, &mut call);
    let mut seen = vec![];
    while seen.last().map(|(k, _): &(String, _)| k.as_str()) != Some("remove") {
        let m = next();
        assert_eq!(m["message"]["type"], "recordingListUpdate", "{m}");
        assert_eq!(m["message"]["subscriptionIndex"], 7, "{m}");
        for u in m["message"]["updates"].as_array().expect("updates") {
            seen.push((
                u["updateType"].as_str().expect("updateType").to_string(),
                u["state"].clone(),
            ));
        }
    }
    let kinds: Vec<(&str, &str)> = seen
        .iter()
        .map(|(k, s)| (k.as_str(), s.as_str().unwrap_or("")))
        .collect();
    assert_eq!(
        kinds,
        [("add", "active"), ("update", "paused"), ("remove", "")]
    );
}

/// HTTPS on the API listener (rustls, aws-lc-rs) with a certificate the client trusts.
#[test]
fn api_over_tls() {
    use rustls::pki_types::ServerName;
    let dir = tempfile::tempdir().expect("tempdir");
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("cert");
    let (cp, kp) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
    std::fs::write(&cp, cert.cert.pem()).expect("cert");
    std::fs::write(&kp, cert.signing_key.serialize_pem()).expect("key");
    let rec = Recorder::with_toml(&format!(
        "[http]\ntls_certificate = \"{}\"\ntls_private_key = \"{}\"\n",
        cp.display(),
        kp.display()
    ));
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.cert.der().clone()).expect("root");
    let config = std::sync::Arc::new(
        rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    );
    let get = |path: &str, auth: &str| -> String {
        let name = ServerName::try_from("localhost").expect("name");
        let conn = rustls::ClientConnection::new(config.clone(), name).expect("tls");
        let tcp = TcpStream::connect(rec.http_addr).expect("connect");
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        write!(
            tls,
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{auth}\r\n"
        )
        .expect("send");
        let mut raw = String::new();
        let _ = tls.read_to_string(&mut raw);
        raw
    };
    assert!(get("/health", "").starts_with("HTTP/1.1 200"));
    assert!(get("/api/v1/recordings", "").starts_with("HTTP/1.1 401"));
    let auth = format!("Authorization: Bearer {}\r\n", rec.api_token());
    assert!(get("/api/v1/recordings", &auth).starts_with("HTTP/1.1 200"));
    // Plain HTTP on the TLS port gets nothing useful.
    let mut plain = TcpStream::connect(rec.http_addr).expect("connect");
    plain.set_read_timeout(Some(T)).expect("timeout");
    let _ = write!(plain, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut buf = String::new();
    let _ = plain.read_to_string(&mut buf);
    assert!(!buf.starts_with("HTTP/1.1 200"), "{buf}");
}

/// The API and `/metrics` show a live call's packet counters as they grow, with no state
/// change in between: each read asks the recording for its current document (recordings
/// publish only their state changes).
#[test]
fn api_and_metrics_show_live_counters_between_state_changes() {
    let rec = Recorder::start(&[]);
    let mut c = rec.udp();
    let mut call = Call::genesys(&c);
    let invite = call.invite_sdp(&media_sdp(1, &[Codec::Pcmu], "sendonly"));
    let answer = sdp_of(&establish(&mut c, &mut call, &invite));
    let (_, doc) = rec.wait_call_state(&call.call_id, "active", T);
    let id = doc["recording_id"].as_str().expect("id").to_string();
    rec.wait_api_state(&id, "active");
    let dest = SocketAddr::from(([127, 0, 0, 1], answer.audio()[0].port));
    let mut sender = RtpSender::new(Codec::Pcmu, dest, 440.0);
    let pacer = Pacer::new();
    for upto in [50u64, 100] {
        send_tones(&pacer, (upto - 50)..upto, &mut [&mut sender]);
        let deadline = std::time::Instant::now() + T;
        loop {
            let (_, body) = api(&rec, "GET", &format!("/api/v1/recordings/{id}"));
            let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
            let metrics = metrics_text(rec.http_addr);
            let scraped: f64 = metrics
                .lines()
                .filter(|l| l.starts_with("sip_recorder_rtp_packets_received_total{"))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum();
            let api_count = v["streams"][0]["packets_received"].as_u64();
            if api_count == Some(upto) && scraped == upto as f64 {
                assert_eq!(v["state"], "active", "{v}");
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "after {upto} packets: API shows {api_count:?}, /metrics {scraped}: {v}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    hang_up(&mut c, &mut call);
    rec.wait_call_state(&call.call_id, "ended", T);
}
