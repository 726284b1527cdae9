//! The real binary's configuration handling (SPEC §2), run with `--check-config` so that no
//! socket is opened.

use std::path::Path;
use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sip-recorder"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("the sip-recorder binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn example() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("config/sip-recorder.toml")
        .to_string_lossy()
        .into_owned()
}

fn write_config(text: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sip-recorder.toml");
    std::fs::write(&path, text).unwrap();
    let path = path.to_string_lossy().into_owned();
    (dir, path)
}

#[test]
fn example_config_is_valid() {
    let o = run(&["--config", &example(), "--check-config"]);
    assert!(o.status.success(), "stderr: {}", stderr(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "configuration OK"
    );
}

#[test]
fn no_arguments_defaults_are_valid() {
    let o = run(&["--check-config"]);
    assert!(o.status.success(), "stderr: {}", stderr(&o));
}

#[test]
fn every_flag_is_accepted() {
    let o = run(&[
        "--config",
        &example(),
        "--check-config",
        "--sip-listen",
        "udp:127.0.0.1:5070",
        "--sip-listen",
        "tcp:[::1]:5070",
        "--rtp-ports",
        "30000-30999",
        "--media-ip",
        "192.0.2.10",
        "--recordings-dir",
        "/tmp/rec",
        "--spool-dir",
        "/tmp/spool",
        "--cdr-receiver",
        "http://127.0.0.1:9000/cdr",
        "--cdr-receiver",
        "https://cdr.example.com/cdr",
        "--http-listen",
        "127.0.0.1:0",
        "--max-sessions",
        "50",
        "--log-format",
        "json",
        "--log-level",
        "debug",
    ]);
    assert!(o.status.success(), "stderr: {}", stderr(&o));
}

#[test]
fn unknown_key_names_key_and_line() {
    let (_dir, path) = write_config("[sip]\nt1_ms = 500\n\n[media]\nrtp_port_minimum = 2\n");
    let o = run(&["--config", &path, "--check-config"]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.starts_with("error: "), "{err}");
    assert!(
        err.contains("rtp_port_minimum") && err.contains("line 5"),
        "{err}"
    );
}

#[test]
fn unknown_table_is_refused() {
    let (_dir, path) = write_config("[tls]\ncert = \"x\"\n");
    let o = run(&["--config", &path, "--check-config"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("[tls] at line 1"), "{}", stderr(&o));
}

#[test]
fn invalid_file_value_is_refused_even_when_a_flag_is_fine() {
    let (_dir, path) = write_config("[limits]\nmax_sessions = 0\n");
    let o = run(&[
        "--config",
        &path,
        "--check-config",
        "--rtp-ports",
        "20000-20999",
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("limits.max_sessions"), "{}", stderr(&o));
}

#[test]
fn flag_overrides_file() {
    let (_dir, path) = write_config("[limits]\nmax_sessions = 0\n");
    let o = run(&["--config", &path, "--check-config", "--max-sessions", "1"]);
    assert!(o.status.success(), "stderr: {}", stderr(&o));
}

#[test]
fn inverted_rtp_ports_are_refused() {
    let o = run(&["--check-config", "--rtp-ports", "3000-2000"]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("rtp_port") && err.contains("3000-2000"),
        "{err}"
    );
}

#[test]
fn malformed_rtp_ports_are_refused() {
    let o = run(&["--check-config", "--rtp-ports", "3000"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--rtp-ports"), "{}", stderr(&o));
}

#[test]
fn bad_sip_listen_is_refused() {
    let o = run(&["--check-config", "--sip-listen", "foo"]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("--sip-listen") && err.contains("\"foo\""),
        "{err}"
    );
}

#[test]
fn more_than_four_cdr_receivers_are_refused() {
    let mut args = vec!["--check-config".to_owned()];
    for i in 1..=5 {
        args.push("--cdr-receiver".into());
        args.push(format!("http://cdr{i}.example.com/"));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = run(&args);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("cdr.receivers"), "{}", stderr(&o));
}

#[test]
fn missing_config_file_is_refused() {
    let o = run(&[
        "--config",
        "/nonexistent/sip-recorder.toml",
        "--check-config",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("/nonexistent/sip-recorder.toml"),
        "{}",
        stderr(&o)
    );
}
