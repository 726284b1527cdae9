//! Configuration tests: parsing, overrides, validation and the shipped example file.

use super::file::TABLES;
use super::*;

fn ms(n: u64) -> std::time::Duration {
    std::time::Duration::from_millis(n)
}

fn secs(n: u64) -> std::time::Duration {
    std::time::Duration::from_secs(n)
}

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::from_toml_str(text)
}

fn la(s: &str) -> ListenAddr {
    s.parse().unwrap()
}

/// The key a validation failure names, after `f` broke a valid default config.
fn invalid_key(f: impl FnOnce(&mut Config)) -> &'static str {
    let mut c = Config::default();
    f(&mut c);
    match c.validate() {
        Err(ConfigError::Invalid { key, message }) => {
            let shown = c.validate().unwrap_err().to_string();
            assert!(shown.contains(key) && shown.contains(&message), "{shown}");
            key
        }
        other => panic!("expected a validation error, got {other:?}"),
    }
}

#[test]
fn defaults_are_the_documented_ones_and_valid() {
    let c = Config::default();
    assert_eq!(
        c.sip.listen,
        vec![la("udp:0.0.0.0:5060"), la("tcp:0.0.0.0:5060")]
    );
    assert_eq!(c.sip.max_message_size, 65536);
    assert_eq!(c.sip.max_headers, 128);
    assert_eq!((c.sip.t1, c.sip.t2), (ms(500), ms(4000)));
    assert_eq!(c.sip.min_session_expires_secs, 90);
    assert_eq!(c.sip.tcp_idle_timeout, secs(300));
    assert_eq!(c.sip.max_connections, 1024);
    assert_eq!(c.sip.max_connections_per_source, 64);
    assert_eq!(c.sip.server_header.as_deref(), Some("sip-recorder"));
    assert_eq!((c.media.rtp_port_min, c.media.rtp_port_max), (20000, 39999));
    assert_eq!(c.media.media_ip, None);
    assert_eq!(c.media.media_source, MediaSource::Strict);
    assert_eq!(c.media.pause_policy, PausePolicy::Silence);
    assert_eq!(c.media.media_timeout, secs(60));
    assert_eq!(c.recording.dir, PathBuf::from("./recordings"));
    assert_eq!(c.recording.layout, "{yyyy}/{mm}/{dd}/{recording_id}");
    assert_eq!(c.spool.dir, PathBuf::from("./spool"));
    assert!(c.cdr.receivers.is_empty());
    assert_eq!(c.http.listen, "127.0.0.1:8080".parse().unwrap());
    assert_eq!(c.limits.max_sessions, 10000);
    assert_eq!(c.limits.retry_after_secs, 5);
    assert_eq!(c.shutdown.grace_period, secs(30));
    assert_eq!(c.log.format, LogFormat::Text);
    assert_eq!(c.log.level, "info");
    c.validate().unwrap();
    assert_eq!(parse("").unwrap(), c);
}

#[test]
fn example_file_lists_exactly_the_defaults() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/sip-recorder.toml");
    let c = Config::from_file(&path).unwrap();
    c.validate().unwrap();
    assert_eq!(c, Config::default());
}

#[test]
fn example_file_shows_every_key() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/sip-recorder.toml");
    let example = parse(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    for table in TABLES {
        // serde lists a table's allowed keys when it meets an unknown one.
        let ConfigError::UnknownKey { expected, .. } =
            parse(&format!("[{table}]\nno_such_key = 1\n")).unwrap_err()
        else {
            panic!("expected UnknownKey for [{table}]");
        };
        // [storage] is optional: the example shows it commented out.
        let comment = if *table == "storage" { "# " } else { "" };
        let body = text.split(&format!("{comment}[{table}]\n")).nth(1).unwrap();
        let body = body.split("\n[").next().unwrap();
        for key in expected.split('`').skip(1).step_by(2) {
            assert!(
                body.lines()
                    .any(|l| l.starts_with(&format!("{comment}{key} = "))),
                "config/sip-recorder.toml does not show {table}.{key}"
            );
        }
    }
    assert_eq!(example, Config::default());
}

#[test]
fn every_key_is_read_from_the_file() {
    let c = parse(
        r#"
            [sip]
            listen = ["udp:10.0.0.1:5070", "tls:[::1]:5061"]
            max_message_size = 2048
            max_headers = 10
            t1_ms = 100
            t2_ms = 200
            min_session_expires_secs = 120
            tcp_idle_timeout_secs = 7
            max_connections = 8
            max_connections_per_source = 2
            server_header = ""
            tls_certificate = "/etc/sip-recorder/cert.pem"
            tls_private_key = "/etc/sip-recorder/key.pem"
            tls_client_ca = ""
            tls_handshake_timeout_secs = 3
            [media]
            rtp_port_min = 30000
            rtp_port_max = 30009
            media_ip = "192.0.2.7"
            media_source = "learn"
            pause_policy = "skip"
            media_timeout_secs = 9
            file_sample_rate = 48000
            workers = 3
            [recording]
            dir = "/var/rec"
            layout = "{kind}/{recording_id}"
            [spool]
            dir = "/var/spool/rec"
            [cdr]
            receivers = ["http://a/cdr", "https://b:8443/cdr"]
            [http]
            listen = "[::1]:9090"
            [limits]
            max_sessions = 3
            retry_after_secs = 11
            [shutdown]
            grace_period_secs = 0
            [log]
            format = "json"
            level = "debug"
            "#,
    )
    .unwrap();
    c.validate().unwrap();
    assert_eq!(
        c.sip.listen,
        vec![la("udp:10.0.0.1:5070"), la("tls:[::1]:5061")]
    );
    assert_eq!(c.sip.max_message_size, 2048);
    assert_eq!(c.sip.max_headers, 10);
    assert_eq!((c.sip.t1, c.sip.t2), (ms(100), ms(200)));
    assert_eq!(c.sip.min_session_expires_secs, 120);
    assert_eq!(c.sip.tcp_idle_timeout, secs(7));
    assert_eq!(c.sip.max_connections, 8);
    assert_eq!(c.sip.max_connections_per_source, 2);
    assert_eq!(c.sip.server_header, None);
    assert_eq!((c.media.rtp_port_min, c.media.rtp_port_max), (30000, 30009));
    assert_eq!(c.media.media_ip, Some("192.0.2.7".parse().unwrap()));
    assert_eq!(c.media.media_source, MediaSource::Learn);
    assert_eq!(c.media.pause_policy, PausePolicy::Skip);
    assert_eq!(c.media.media_timeout, secs(9));
    assert_eq!(c.media.file_sample_rate, FileSampleRate::Hz(48000));
    assert_eq!(c.media.workers, MediaWorkerCount::Threads(3));
    assert_eq!(c.recording.dir, PathBuf::from("/var/rec"));
    assert_eq!(c.recording.layout, "{kind}/{recording_id}");
    assert_eq!(c.spool.dir, PathBuf::from("/var/spool/rec"));
    assert_eq!(c.cdr.receivers, ["http://a/cdr", "https://b:8443/cdr"]);
    assert_eq!(c.http.listen, "[::1]:9090".parse().unwrap());
    assert_eq!(c.limits.max_sessions, 3);
    assert_eq!(c.limits.retry_after_secs, 11);
    assert_eq!(c.shutdown.grace_period, secs(0));
    assert_eq!(c.log.format, LogFormat::Json);
    assert_eq!(c.log.level, "debug");
}

#[test]
fn dotted_keys_and_auto_media_ip() {
    let c = parse("media.media_ip = \"auto\"\nsip.t1_ms = 250\n").unwrap();
    assert_eq!(c.media.media_ip, None);
    assert_eq!(c.sip.t1, ms(250));
}

#[test]
fn unknown_key_names_key_table_and_line() {
    let text = "# comment\n[sip]\nt1_ms = 500\n\nfoo = 1\n";
    let e = parse(text).unwrap_err();
    let msg = e.to_string();
    assert!(
        matches!(&e, ConfigError::UnknownKey { table, key, line: 5, .. }
            if table == "sip" && key == "foo"),
        "{e:?}"
    );
    assert!(
        msg.contains("unknown key \"foo\" in [sip] at line 5"),
        "{msg}"
    );
    assert!(msg.contains("t2_ms"), "should list the allowed keys: {msg}");
    assert_eq!(e.key().as_deref(), Some("sip.foo"));
}

#[test]
fn unknown_key_in_later_table_and_dotted_form() {
    let e = parse("[log]\nlevel = \"info\"\n[limits]\nmax_sesions = 1\n").unwrap_err();
    assert!(
        e.to_string()
            .contains("\"max_sesions\" in [limits] at line 4"),
        "{e}"
    );
    let e = parse("\n\nmedia.rtp_ports = \"1-2\"\n").unwrap_err();
    assert!(
        e.to_string().contains("\"rtp_ports\" in [media] at line 3"),
        "{e}"
    );
}

#[test]
fn first_error_in_file_order_is_reported() {
    let e = parse("[sip]\nbad = 1\n[http]\nbad = 1\n").unwrap_err();
    assert!(e.to_string().contains("[sip] at line 2"), "{e}");
}

#[test]
fn unknown_table_names_table_and_line() {
    let e = parse("[sip]\n\n[recordings]\ndir = \"x\"\n").unwrap_err();
    assert!(
        matches!(&e, ConfigError::UnknownTable { table, line: 3, .. } if table == "recordings"),
        "{e:?}"
    );
    assert!(
        e.to_string()
            .contains("unknown table [recordings] at line 3"),
        "{e}"
    );
    let e = parse("[sip.extra]\nx = 1\n").unwrap_err();
    assert!(
        e.to_string().contains("\"extra\" in [sip] at line 1"),
        "{e}"
    );
}

#[test]
fn wrong_type_names_key_and_line() {
    let cases = [
        ("[sip]\n\nt1_ms = \"fast\"\n", "sip.t1_ms", 3),
        ("[sip]\nlisten = \"udp:1.2.3.4:5060\"\n", "sip.listen", 2),
        (
            "[sip]\nlisten = [\"udp:1.2.3.4:5060\", \"foo\"]\n",
            "sip.listen",
            2,
        ),
        ("[media]\nrtp_port_max = 70000\n", "media.rtp_port_max", 2),
        (
            "[media]\nfile_sample_rate = 44100\n",
            "media.file_sample_rate",
            2,
        ),
        (
            "[media]\nfile_sample_rate = \"wide\"\n",
            "media.file_sample_rate",
            2,
        ),
        (
            "[media]\npause_policy = \"mute\"\n",
            "media.pause_policy",
            2,
        ),
        ("[media]\nmedia_source = \"any\"\n", "media.media_source", 2),
        ("[media]\nmedia_ip = \"1.2.3\"\n", "media.media_ip", 2),
        ("[media]\nworkers = \"many\"\n", "media.workers", 2),
        ("[media]\nworkers = -2\n", "media.workers", 2),
        ("[cdr]\nreceivers = \"http://x\"\n", "cdr.receivers", 2),
        ("[http]\nlisten = \"localhost\"\n", "http.listen", 2),
        ("[limits]\nmax_sessions = -1\n", "limits.max_sessions", 2),
        ("[log]\nformat = \"xml\"\n", "log.format", 2),
        ("sip = 5\n", "sip", 1),
    ];
    for (text, key, line) in cases {
        let e = parse(text).unwrap_err();
        match &e {
            ConfigError::InvalidValue {
                key: k, line: l, ..
            } => {
                assert_eq!((k.as_str(), *l), (key, line), "{text}: {e}");
            }
            other => panic!("{text}: expected InvalidValue, got {other:?}"),
        }
        let msg = e.to_string();
        assert!(
            msg.contains(key) && msg.contains(&format!("line {line}")),
            "{msg}"
        );
    }
}

#[test]
fn syntax_error_names_line() {
    let e = parse("[sip]\nt1_ms = 1\nt1_ms = 2\n").unwrap_err();
    assert!(matches!(e, ConfigError::Syntax { line: 3, .. }), "{e:?}");
    let e = parse("[sip\n").unwrap_err();
    assert!(e.to_string().contains("line 1"), "{e}");
}

#[test]
fn missing_file_is_a_read_error() {
    let e = Config::from_file(Path::new("/nonexistent/sip-recorder.toml")).unwrap_err();
    assert!(matches!(e, ConfigError::Read { .. }));
    assert!(
        e.to_string().contains("/nonexistent/sip-recorder.toml"),
        "{e}"
    );
}

#[test]
fn each_override_replaces_the_file_value() {
    let mut c = parse(
        "[sip]\nlisten = [\"udp:1.1.1.1:5060\", \"tcp:1.1.1.1:5060\"]\n\
             tls_certificate = \"/c.pem\"\ntls_private_key = \"/k.pem\"\n\
             [cdr]\nreceivers = [\"http://a/\", \"http://b/\"]\n",
    )
    .unwrap();
    let o = Overrides {
        sip_listen: vec![la("tls:[::]:5061")],
        rtp_ports: Some((40000, 40099)),
        media_ip: Some("198.51.100.1".parse().unwrap()),
        recordings_dir: Some("/r".into()),
        spool_dir: Some("/s".into()),
        cdr_receivers: vec!["https://c/".into()],
        http_listen: Some("0.0.0.0:9000".parse().unwrap()),
        max_sessions: Some(7),
        log_format: Some(LogFormat::Json),
        log_level: Some("warn".into()),
    };
    c.apply_overrides(&o);
    assert_eq!(c.sip.listen, vec![la("tls:[::]:5061")]);
    assert_eq!((c.media.rtp_port_min, c.media.rtp_port_max), (40000, 40099));
    assert_eq!(c.media.media_ip, Some("198.51.100.1".parse().unwrap()));
    assert_eq!(c.recording.dir, PathBuf::from("/r"));
    assert_eq!(c.spool.dir, PathBuf::from("/s"));
    assert_eq!(c.cdr.receivers, ["https://c/"]);
    assert_eq!(c.http.listen, "0.0.0.0:9000".parse().unwrap());
    assert_eq!(c.limits.max_sessions, 7);
    assert_eq!(c.log.format, LogFormat::Json);
    assert_eq!(c.log.level, "warn");
    c.validate().unwrap();
}

#[test]
fn empty_overrides_change_nothing() {
    let file = parse("[sip]\nlisten = [\"udp:1.1.1.1:5060\"]\n").unwrap();
    let mut c = file.clone();
    c.apply_overrides(&Overrides::default());
    assert_eq!(c, file);
}

#[test]
fn load_applies_file_then_flags_then_validates() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, "[limits]\nmax_sessions = 5\nretry_after_secs = 9\n").unwrap();
    let o = Overrides {
        max_sessions: Some(6),
        ..Overrides::default()
    };
    let c = Config::load(Some(&path), &o).unwrap();
    assert_eq!((c.limits.max_sessions, c.limits.retry_after_secs), (6, 9));
    let o = Overrides {
        rtp_ports: Some((3000, 2000)),
        ..Overrides::default()
    };
    let e = Config::load(None, &o).unwrap_err();
    assert_eq!(e.key().as_deref(), Some("media.rtp_port_min"));
}

#[test]
fn each_validation_error_names_its_key() {
    fn ports(c: &mut Config, min: u16, max: u16) {
        (c.media.rtp_port_min, c.media.rtp_port_max) = (min, max);
    }
    fn layout(c: &mut Config, l: &str) {
        c.recording.layout = l.to_owned();
    }
    fn cdr(c: &mut Config, urls: &[&str]) {
        c.cdr.receivers = urls.iter().map(|u| u.to_string()).collect();
    }
    type Breaker = fn(&mut Config);
    let cases: &[(&str, Breaker)] = &[
        ("sip.listen", |c| c.sip.listen.clear()),
        ("sip.listen", |c| c.sip.listen.push(c.sip.listen[0])),
        ("sip.max_message_size", |c| c.sip.max_message_size = 100),
        ("sip.max_headers", |c| c.sip.max_headers = 0),
        ("sip.t1_ms", |c| c.sip.t1 = ms(0)),
        ("sip.t1_ms", |c| c.sip.t1 = ms(5000)),
        ("sip.min_session_expires_secs", |c| {
            c.sip.min_session_expires_secs = 0
        }),
        ("sip.tcp_idle_timeout_secs", |c| {
            c.sip.tcp_idle_timeout = secs(0)
        }),
        ("sip.max_connections", |c| c.sip.max_connections = 0),
        ("sip.max_connections_per_source", |c| {
            c.sip.max_connections_per_source = 0
        }),
        ("sip.server_header", |c| {
            c.sip.server_header = Some("x\r\nEvil: 1".into())
        }),
        ("media.rtp_port_min", |c| ports(c, 0, 100)),
        ("media.rtp_port_min", |c| ports(c, 3000, 2000)),
        // No even RTP port with its RTCP port inside the range.
        ("media.rtp_port_min", |c| ports(c, 3000, 3000)),
        ("media.rtp_port_min", |c| ports(c, 3001, 3002)),
        ("media.rtp_port_min", |c| ports(c, 65535, 65535)),
        ("media.media_ip", |c| c.media.media_ip = Some([0; 4].into())),
        ("media.media_ip", |c| {
            c.media.media_ip = Some([239, 1, 1, 1].into())
        }),
        ("media.media_timeout_secs", |c| {
            c.media.media_timeout = secs(0)
        }),
        ("media.workers", |c| {
            c.media.workers = MediaWorkerCount::Threads(0)
        }),
        ("media.workers", |c| {
            c.media.workers = MediaWorkerCount::Threads(257)
        }),
        ("recording.dir", |c| c.recording.dir = PathBuf::new()),
        ("recording.layout", |c| {
            layout(c, "{yyyy}/{callid}/{recording_id}")
        }),
        ("recording.layout", |c| layout(c, "{yyyy}/{mm}")),
        ("recording.layout", |c| layout(c, "../{recording_id}")),
        ("recording.layout", |c| layout(c, "/abs/{recording_id}")),
        ("recording.layout", |c| layout(c, "{recording_id")),
        ("recording.layout", |c| layout(c, "a}/{recording_id}")),
        ("recording.layout", |c| layout(c, " ")),
        ("spool.dir", |c| c.spool.dir = PathBuf::new()),
        ("cdr.receivers", |c| {
            cdr(
                c,
                &[
                    "http://a/",
                    "http://b/",
                    "http://c/",
                    "http://d/",
                    "http://e/",
                ],
            )
        }),
        ("cdr.receivers", |c| cdr(c, &["ftp://h/"])),
        ("cdr.receivers", |c| cdr(c, &["h:80/cdr"])),
        ("cdr.receivers", |c| cdr(c, &["http:///cdr"])),
        ("cdr.receivers", |c| cdr(c, &["http://h/a b"])),
        ("cdr.receivers", |c| cdr(c, &["http://h/", "http://h/"])),
        ("limits.max_sessions", |c| c.limits.max_sessions = 0),
        ("limits.retry_after_secs", |c| {
            c.limits.retry_after_secs = 100_000
        }),
        ("log.level", |c| c.log.level = "sip_recorder=loud".into()),
    ];
    for (want, break_it) in cases {
        assert_eq!(invalid_key(break_it), *want);
    }
}

#[test]
fn borderline_values_are_accepted() {
    let mut c = Config::default();
    (c.media.rtp_port_min, c.media.rtp_port_max) = (3000, 3001);
    c.cdr.receivers = (1..=4)
        .map(|i| format!("HTTPS://user@h{i}:8443/cdr?x=1"))
        .collect();
    c.recording.layout = "./{kind}/{record_id}-{recording_id}/{hh}".into();
    c.sip.t2 = c.sip.t1;
    c.media.media_ip = Some("::1".parse().unwrap());
    c.validate().unwrap();
}

#[test]
fn inverted_port_range_message_says_rtp_ports() {
    let mut c = Config::default();
    c.apply_overrides(&Overrides {
        rtp_ports: Some(parse_port_range("3000-2000").unwrap()),
        ..Overrides::default()
    });
    let msg = c.validate().unwrap_err().to_string();
    assert!(
        msg.contains("rtp_port") && msg.contains("3000-2000"),
        "{msg}"
    );
}

#[test]
fn listen_addr_parses_and_round_trips() {
    let a = la("udp:0.0.0.0:5060");
    assert_eq!(
        (a.transport, a.addr),
        (Transport::Udp, "0.0.0.0:5060".parse().unwrap())
    );
    let a = la("tcp:[::1]:5060");
    assert_eq!(
        (a.transport, a.addr),
        (Transport::Tcp, "[::1]:5060".parse().unwrap())
    );
    assert_eq!(la("TLS:10.1.2.3:5061").transport, Transport::Tls);
    for s in ["udp:0.0.0.0:5060", "tcp:[::1]:5060", "tls:[fe80::1%2]:5061"] {
        assert_eq!(la(s).to_string(), s);
        assert_eq!(la(&la(s).to_string()), la(s));
    }
}

#[test]
fn listen_addr_errors_name_the_value() {
    for bad in [
        "foo",
        "udp",
        "sctp:1.2.3.4:5060",
        "udp:1.2.3.4",
        "udp:::1:5060",
        "udp:1.2.3.4:70000",
        "udp:host.example:5060",
        "[::1]:5060",
        "",
    ] {
        let e = bad.parse::<ListenAddr>().unwrap_err();
        assert!(e.to_string().contains(&format!("\"{bad}\"")), "{e}");
        assert_eq!(e.value, bad);
    }
}

#[test]
fn port_range_parsing() {
    assert_eq!(parse_port_range("20000-39999"), Ok((20000, 39999)));
    assert_eq!(parse_port_range(" 1 - 3 "), Ok((1, 3)));
    for bad in ["20000", "a-b", "1-70000", "-5", "1-2-3"] {
        let e = parse_port_range(bad).unwrap_err();
        assert!(e.to_string().contains(bad), "{e}");
    }
}

#[test]
fn log_format_parsing() {
    assert_eq!("json".parse::<LogFormat>(), Ok(LogFormat::Json));
    assert_eq!("Text".parse::<LogFormat>(), Ok(LogFormat::Text));
    assert!(
        "xml"
            .parse::<LogFormat>()
            .unwrap_err()
            .to_string()
            .contains("xml")
    );
    assert_eq!(LogFormat::Json.to_string(), "json");
}

#[test]
fn media_ip_for_sdp_prefers_explicit_then_listener() {
    let mut c = Config::default();
    c.media.media_ip = Some("203.0.113.5".parse().unwrap());
    assert_eq!(
        c.media_ip_for_sdp(),
        "203.0.113.5".parse::<IpAddr>().unwrap()
    );
    c.media.media_ip = None;
    c.sip.listen = vec![la("tcp:198.51.100.9:5060"), la("udp:10.0.0.1:5060")];
    assert_eq!(
        c.media_ip_for_sdp(),
        "198.51.100.9".parse::<IpAddr>().unwrap()
    );
}

#[test]
fn media_ip_for_sdp_never_returns_unspecified() {
    for listen in ["udp:0.0.0.0:5060", "udp:[::]:5060"] {
        let mut c = Config::default();
        c.sip.listen = vec![la(listen)];
        assert!(!c.media_ip_for_sdp().is_unspecified());
    }
}

#[test]
fn cdr_receiver_options_are_read_and_checked() {
    let c = parse(
        r#"
            [cdr]
            receivers = ["https://a/cdr", "http://b/cdr"]
            batch_size = 10
            request_timeout_secs = 5
            max_backoff_secs = 2
            [[cdr.receiver_options]]
            url = "https://a/cdr"
            request_timeout_secs = 3
            batch_size = 1
        "#,
    )
    .unwrap();
    c.validate().unwrap();
    assert_eq!((c.cdr.batch_size, c.cdr.request_timeout), (10, secs(5)));
    assert_eq!(c.cdr.max_backoff, secs(2));
    assert_eq!(c.cdr.receiver_options.len(), 1);
    assert_eq!(c.cdr.receiver_options[0].request_timeout, Some(secs(3)));
    assert_eq!(c.cdr.receiver_options[0].batch_size, Some(1));

    let unknown_url = |c: &mut Config| {
        c.cdr.receivers = vec!["http://a/".into()];
        c.cdr.receiver_options = vec![CdrReceiverOptions {
            url: "http://other/".into(),
            ..Default::default()
        }];
    };
    assert_eq!(invalid_key(unknown_url), "cdr.receiver_options.url");
    let missing_ca = |c: &mut Config| {
        c.cdr.receivers = vec!["https://a/".into()];
        c.cdr.receiver_options = vec![CdrReceiverOptions {
            url: "https://a/".into(),
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..Default::default()
        }];
    };
    assert_eq!(invalid_key(missing_ca), "cdr.receiver_options.ca_file");
    assert_eq!(invalid_key(|c| c.cdr.batch_size = 0), "cdr.batch_size");
    assert_eq!(
        invalid_key(|c| c.recording.max_pending_audio_mib = 0),
        "recording.max_pending_audio_mib"
    );
}

#[test]
fn transport_has_one_name_for_via_edr_and_listen_addresses() {
    for t in Transport::ALL {
        let listen = ListenAddr {
            transport: t,
            addr: "127.0.0.1:5060".parse().unwrap(),
        };
        let text = listen.to_string();
        assert_eq!(
            text,
            format!("{}:127.0.0.1:5060", t.as_str().to_ascii_lowercase())
        );
        assert_eq!(la(&text), listen, "Display round-trips");
        assert_eq!(Transport::from_name(t.as_str()), Some(t));
    }
    assert_eq!(la("TLS:[::1]:5061").transport, Transport::Tls);
    assert_eq!(Transport::from_name("sctp"), None);
}

#[test]
fn storage_is_off_without_its_table_and_every_key_is_read() {
    assert_eq!(Config::default().storage, None);
    let c = parse(
        r#"
            [storage]
            endpoint = "http://127.0.0.1:3900"
            region = "garage"
            bucket = "recordings"
            credentials_file = "/etc/sip-recorder/s3.toml"
            virtual_hosted_style = true
            prefix = "archive/"
            key_template = "{kind}/{path}"
            storage_class = "STANDARD_IA"
            server_side_encryption = "aws:kms"
            sse_kms_key_id = "key-1"
            keep_local = false
            upload_concurrency = 2
            max_backoff_secs = 60
            request_timeout_secs = 30
            cdr_wait_secs = 0
        "#,
    )
    .unwrap();
    c.validate().unwrap();
    let s = c.storage.unwrap();
    assert_eq!(s.endpoint.as_deref(), Some("http://127.0.0.1:3900"));
    assert_eq!(
        (s.region.as_str(), s.bucket.as_str()),
        ("garage", "recordings")
    );
    assert_eq!(
        s.credentials_file,
        Some(PathBuf::from("/etc/sip-recorder/s3.toml"))
    );
    assert!(s.virtual_hosted_style && !s.keep_local);
    assert_eq!(
        (s.prefix.as_str(), s.key_template.as_str()),
        ("archive/", "{kind}/{path}")
    );
    assert_eq!(s.storage_class.as_deref(), Some("STANDARD_IA"));
    assert_eq!(s.server_side_encryption, ServerSideEncryption::Kms);
    assert_eq!(s.sse_kms_key_id.as_deref(), Some("key-1"));
    assert_eq!(
        (
            s.upload_concurrency,
            s.max_backoff,
            s.request_timeout,
            s.cdr_wait
        ),
        (2, secs(60), secs(30), secs(0))
    );
}

#[test]
fn storage_keys_are_checked_by_name() {
    let ok = "[storage]\nbucket = \"b\"\ncredentials_file = \"/c\"\n";
    let e = parse(&format!("{ok}secret_access_key = \"x\"\n")).unwrap_err();
    assert!(
        matches!(&e, ConfigError::UnknownKey { table, key, .. } if table == "storage" && key == "secret_access_key"),
        "{e}"
    );
    let e = parse(&format!("{ok}server_side_encryption = \"rot13\"\n")).unwrap_err();
    assert_eq!(
        e.key().as_deref(),
        Some("storage.server_side_encryption"),
        "{e}"
    );
    for (extra, key) in [
        ("endpoint = \"ftp://x\"", "storage.endpoint"),
        ("key_template = \"{nope}\"", "storage.key_template"),
        ("key_template = \"x{path}\"", "storage.key_template"),
        ("prefix = \"/abs\"", "storage.prefix"),
        ("upload_concurrency = 0", "storage.upload_concurrency"),
        ("max_backoff_secs = 0", "storage.max_backoff_secs"),
        ("sse_kms_key_id = \"k\"", "storage.sse_kms_key_id"),
    ] {
        let c = parse(&format!("{ok}{extra}\n")).unwrap();
        let e = c.validate().unwrap_err();
        assert_eq!(e.key().as_deref(), Some(key), "{extra}: {e}");
    }
    let c = parse("[storage]\ncredentials_file = \"/c\"\n").unwrap();
    assert_eq!(
        c.validate().unwrap_err().key().as_deref(),
        Some("storage.bucket")
    );
}

#[test]
fn media_workers_auto_is_one_per_core_and_a_count_is_taken_as_given() {
    let c = parse("[media]\nworkers = \"auto\"\n").unwrap();
    assert_eq!(c.media.workers, MediaWorkerCount::Auto);
    let cores = std::thread::available_parallelism().unwrap().get();
    assert_eq!(c.media.workers.threads(), cores);
    let c = parse("[media]\nworkers = 1\n").unwrap();
    assert_eq!(c.media.workers.threads(), 1);
    c.validate().unwrap();
}

#[test]
fn security_allow_is_parsed_into_networks_and_a_bad_entry_is_named() {
    let c =
        parse("[security]\nallow = [\"10.0.0.0/8\", \"2001:db8::/32\", \"192.0.2.7\"]\n").unwrap();
    let allow = &c.security.allow;
    assert_eq!(allow.len(), 3);
    assert!(allow[0].contains("10.9.8.7".parse().unwrap()));
    assert!(!allow[0].contains("11.0.0.1".parse().unwrap()));
    assert!(allow[1].contains("2001:db8::1".parse().unwrap()));
    assert!(allow[2].contains("192.0.2.7".parse().unwrap()));
    for bad in ["10.0.0.0/33", "not-a-network", "10.0.0.0/x"] {
        let e = parse(&format!(
            "[security]\nallow = [\"10.0.0.0/8\", \"{bad}\"]\n"
        ))
        .unwrap_err();
        assert_eq!(e.key().as_deref(), Some("security.allow"), "{bad}: {e}");
        assert!(e.to_string().contains(bad), "{bad}: {e}");
    }
}
