//! The events API and API authentication against the real binary. The events client is
//! `tests/cms_events_client.py`, written to the CMS events guide (seed `003_…`), not to our
//! code: auth token, subscribe, pending → active, add/update/remove for a call with a pause,
//! stop-all. This test only makes the calls happen when the client asks.

mod common;

use common::*;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

const T: Duration = Duration::from_secs(5);

/// The guide's example credentials: `Authorization: Basic Ym9iOmJlaWxkZXI=` is bob:beilder.
const GUIDE_BASIC: &str = "Basic Ym9iOmJlaWxkZXI=";

fn hash(password: &str) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sip-recorder"))
        .arg("--hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run --hash-password");
    writeln!(child.stdin.take().expect("stdin"), "{password}").expect("write");
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success());
    let hash = String::from_utf8(out.stdout)
        .expect("utf8")
        .trim()
        .to_string();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    hash
}

fn with_users() -> Recorder {
    let toml = format!(
        "[http]\nusers = [{{ name = \"bob\", password_hash = \"{}\", role = \"read\" }}, \
         {{ name = \"admin\", password_hash = \"{}\", role = \"admin\" }}]\n",
        hash("beilder"),
        hash("s3cret-admin")
    );
    Recorder::with_toml(&toml)
}

#[test]
fn a_client_written_to_the_events_guide_passes_every_step() {
    let rec = with_users();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/cms_events_client.py");
    let mut client = Command::new("python3")
        .arg("-u")
        .arg(script)
        .arg(format!("http://{}", rec.http_addr))
        .arg(GUIDE_BASIC)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3 runs the events client (scripts/test installs websockets)");
    let mut to_client = client.stdin.take().expect("stdin");
    let out = BufReader::new(client.stdout.take().expect("stdout"));
    let mut c = rec.udp();
    let mut call = Call::genesys(&c);
    let mut transcript = String::new();
    for line in out.lines() {
        let line = line.expect("client output");
        transcript.push_str(&line);
        transcript.push('\n');
        let Some(what) = line.strip_prefix("STEP ") else {
            continue;
        };
        match what {
            "call" => {
                let invite = call.genesys_invite();
                establish(&mut c, &mut call, &invite);
                rec.wait_call_state(&call.call_id, "active", T);
            }
            "pause" | "resume" => {
                let (v, dir, state) = if what == "pause" {
                    (2, "inactive", "paused")
                } else {
                    (3, "sendonly", "active")
                };
                let re = call.reinvite(&genesys_sdp(v, dir), "");
                c.send(&re);
                let ok = c.expect_reply(&re, 200, T);
                c.send(&call.ack_2xx(&ok));
                rec.wait_call_state(&call.call_id, state, T);
            }
            "hangup" => {
                hang_up(&mut c, &mut call);
                rec.wait_call_state(&call.call_id, "ended", T);
            }
            "another call" => {
                genesys_call_active(&rec, &mut c);
            }
            other => panic!("unknown step {other}"),
        }
        writeln!(to_client, "done").expect("tell the client");
    }
    let status = client.wait().expect("client exit");
    assert!(
        status.success() && transcript.ends_with("PASS\n"),
        "events client failed:\n{transcript}"
    );
}

#[test]
fn api_answers_401_without_and_403_with_too_weak_credentials() {
    let rec = with_users();
    let a = rec.http_addr;
    let basic = |u: &str, p: &str| {
        use base64::Engine as _;
        let v = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
        format!("Authorization: Basic {v}\r\n")
    };
    // Open: health and metrics.
    assert_eq!(http_request(a, "GET", "/health", "").status, 200);
    assert_eq!(http_request(a, "GET", "/metrics", "").status, 200);
    // No or wrong credentials: 401 with a challenge.
    for (path, method) in [
        ("/api/v1/recordings", "GET"),
        ("/api/v1/recordings/x/stop", "POST"),
        ("/api/v1/authTokens", "POST"),
    ] {
        let r = http_request(a, method, path, "");
        assert_eq!(r.status, 401, "{method} {path}");
        assert!(
            r.header("www-authenticate")
                .is_some_and(|v| v.contains("Basic")),
            "{r:?}"
        );
        let r = http_request(a, method, path, &basic("bob", "wrong"));
        assert_eq!(r.status, 401, "{method} {path} wrong password");
    }
    assert_eq!(
        http_request(a, "GET", "/api/v1/recordings", &basic("bob", "beilder")).status,
        200
    );
    // A read user may not stop: 403; the admin may (404: no such recording).
    let r = http_request(
        a,
        "POST",
        "/api/v1/recordings/x/stop",
        &basic("bob", "beilder"),
    );
    assert_eq!(r.status, 403, "{r:?}");
    let r = http_request(
        a,
        "POST",
        "/api/v1/recordings/x/stop",
        &basic("admin", "s3cret-admin"),
    );
    assert_eq!(r.status, 404, "{r:?}");
    // An issued events token is a bearer token of the issuing user's role.
    let r = http_request(a, "POST", "/api/v1/authTokens", &basic("bob", "beilder"));
    let token = r
        .header("x-cisco-cms-auth-token")
        .expect("token")
        .to_string();
    let bearer = format!("Authorization: Bearer {token}\r\n");
    assert_eq!(
        http_request(a, "GET", "/api/v1/recordings", &bearer).status,
        200
    );
    assert_eq!(
        http_request(a, "POST", "/api/v1/recordings/x/stop", &bearer).status,
        403
    );
    // Configured users: no token file is generated.
    assert!(!rec.spool_dir.join("api-token").exists());
}

#[test]
fn with_nothing_configured_a_generated_token_guards_the_api() {
    let rec = Recorder::start(&[]);
    let token = rec.api_token();
    assert!(token.len() >= 40, "token file in the spool dir");
    assert!(
        !rec.log().contains(&token),
        "the token itself is never logged"
    );
    assert!(rec.log().contains("api-token"), "its path is");
    assert_eq!(
        http_request(rec.http_addr, "GET", "/api/v1/recordings", "").status,
        401
    );
    assert_eq!(rec.api("GET", "/api/v1/recordings").status, 200);
}
