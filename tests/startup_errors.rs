//! The real binary refusing to start: each failure kind exits 1 with a message naming what
//! failed (the listener, the directory, the key file) and why.

mod common;

use std::net::UdpSocket;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs the recorder with `args` on loopback and waits for it to give up.
fn start(dir: &Path, args: &[&str]) -> Output {
    let recordings = dir.join("recordings");
    let mut child = Command::new(env!("CARGO_BIN_EXE_sip-recorder"))
        .args(["--http-listen", "127.0.0.1:0", "--media-ip", "127.0.0.1"])
        .arg("--recordings-dir")
        .arg(&recordings)
        .args(args)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the sip-recorder binary runs");
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "the recorder did not give up: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("output")
}

fn error_line(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line in: {stderr}"))
        .to_owned()
}

#[test]
fn sip_listener_already_bound_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let listen = format!("udp:{}", taken.local_addr().unwrap());
    let spool = dir.path().join("spool");
    let out = start(
        dir.path(),
        &[
            "--sip-listen",
            &listen,
            "--spool-dir",
            spool.to_str().unwrap(),
        ],
    );
    let line = error_line(&out);
    assert!(
        line.starts_with(&format!("error: cannot bind SIP listener {listen}: ")),
        "{line}"
    );
    assert!(line.to_lowercase().contains("in use"), "{line}");
}

#[test]
fn unwritable_spool_dir_is_named() {
    let dir = tempfile::tempdir().unwrap();
    // A directory under a regular file cannot be created, whoever runs the test.
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"").unwrap();
    let spool = file.join("spool");
    let out = start(
        dir.path(),
        &[
            "--sip-listen",
            "udp:127.0.0.1:0",
            "--spool-dir",
            spool.to_str().unwrap(),
        ],
    );
    let line = error_line(&out);
    assert!(
        line.starts_with(&format!("error: spool.dir {}: ", spool.display())),
        "{line}"
    );
    assert!(line.contains("directory"), "the cause is given: {line}");
}

#[test]
fn bad_tls_private_key_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let identity = common::tls::TestCa::new("startup test CA").server();
    let cert = dir.path().join("recorder.crt");
    let key = dir.path().join("recorder.key");
    std::fs::write(&cert, &identity.cert_pem).unwrap();
    std::fs::write(
        &key,
        "-----BEGIN NOTHING-----\nAAAA\n-----END NOTHING-----\n",
    )
    .unwrap();
    let config = dir.path().join("sip-recorder.toml");
    std::fs::write(
        &config,
        format!(
            "[sip]\ntls_certificate = {:?}\ntls_private_key = {:?}\n",
            cert.display().to_string(),
            key.display().to_string()
        ),
    )
    .unwrap();
    let spool = dir.path().join("spool");
    let out = start(
        dir.path(),
        &[
            "--config",
            config.to_str().unwrap(),
            "--sip-listen",
            "tls:127.0.0.1:0",
            "--spool-dir",
            spool.to_str().unwrap(),
        ],
    );
    let line = error_line(&out);
    assert!(
        line.starts_with(&format!("error: sip.tls_private_key {}: ", key.display())),
        "{line}"
    );
}
