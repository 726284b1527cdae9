//! EDR line format and writer tests.

use super::*;
use time::macros::datetime;

fn base(event: EdrEvent) -> EdrRecord {
    EdrRecord {
        event,
        at: Some(datetime!(2026-11-21 10:00:00.123 UTC)),
        call_id: Some("a84b4c76e66710@pc33".into()),
        cseq: Some(314159),
        from_uri: Some("sip:alice@example.com".into()),
        to_uri: Some("sip:record=r1@srs.example.com;dn=1001".into()),
        transport: Some("UDP".into()),
        via_host: Some("10.0.0.1".into()),
        via_port: Some(5060),
        via_branch: Some("z9hG4bK776asdhds".into()),
        via_received: Some("192.0.2.1".into()),
        via_rport: Some(5062),
        ltag: Some("srs-1".into()),
        rtag: Some("1928301774".into()),
        request_at: Some(datetime!(2026-11-21 10:00:00.100 UTC)),
        response_at: Some(datetime!(2026-11-21 10:00:00.120 UTC)),
        ..EdrRecord::default()
    }
}

/// Splits a line back into (event, fields), decoding values.
fn parse(line: &str) -> (String, Vec<(String, Vec<String>)>) {
    let rest = line.split_once('>').expect("instance").1;
    let mut parts = rest.split('|');
    let event = parts.next().expect("event").to_string();
    let fields = parts
        .map(|f| {
            let (k, v) = f.split_once('=').expect("key=value");
            let vals = v
                .split(',')
                .map(|x| {
                    percent_encoding::percent_decode_str(x)
                        .decode_utf8()
                        .expect("utf8")
                        .into_owned()
                })
                .collect();
            (k.to_string(), vals)
        })
        .collect();
    (event, fields)
}

fn field<'a>(f: &'a [(String, Vec<String>)], k: &str) -> &'a [String] {
    &f.iter().find(|(key, _)| key == k).expect(k).1
}

#[test]
fn invite_line_layout() {
    let mut r = base(EdrEvent::InInviteAleg);
    r.sdp_in = true;
    r.sdp_out = true;
    r.pcodes = vec![100];
    r.code = Some(200);
    r.instance = Some(call_instance("h~SRS~1", "a84b4c76e66710@pc33"));
    let line = format_line(&r, "h~SRS~1");
    let key = call_instance("h~SRS~1", "a84b4c76e66710@pc33");
    assert!(key.starts_with("h~SRS~1~") && key.len() == "h~SRS~1~".len() + 8);
    assert!(
        line.starts_with(&format!(
            "2026-11-21 10:00:00.123<{key}>IN-INVITE-ALEG|CALL_ID="
        )),
        "{line}"
    );
    assert!(!line.contains('\n') && !line.contains('\r'));
    assert!(line.contains("|SDP_IN=1|"), "{line}");
    assert!(line.contains("|SDP_OUT=1|"), "{line}");
    assert!(line.contains("|CSEQ=314159|"), "{line}");
    assert!(line.contains("|VIA_PORT=5060|"));
    assert!(line.contains("|VIA_HOST=10.0.0.1|"));
    assert!(line.contains("|CODE=200|"));
    assert!(line.contains("|PCODES=100|"));
    assert!(
        line.contains("|REQUEST_AT=2026-11-21 10:00:00.100|RESPONSE_AT=2026-11-21 10:00:00.120|")
    );
    let (event, fields) = parse(&line);
    assert_eq!(event, "IN-INVITE-ALEG");
    let keys: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    assert_eq!(keys, sorted, "fields in key order");
    for k in [
        "CALL_ID",
        "CSEQ",
        "FROM_URI",
        "TO_URI",
        "TRANSPORT",
        "VIA_HOST",
        "VIA_PORT",
        "VIA_BRANCH",
        "VIA_RECEIVED",
        "VIA_RPORT",
        "LTAG",
        "RTAG",
        "SDP_IN",
        "SDP_OUT",
        "PCODES",
        "CODE",
        "REQUEST_AT",
        "RESPONSE_AT",
    ] {
        assert!(keys.contains(&k), "{k} missing");
    }
    assert_eq!(field(&fields, "SDP_IN"), ["1"]);
    assert_eq!(field(&fields, "VIA_RECEIVED"), ["192.0.2.1"]);
    assert_eq!(field(&fields, "PCODES"), ["100"]);
}

#[test]
fn comma_and_bar_inside_one_value() {
    let mut r = base(EdrEvent::InReinviteAleg);
    r.from_uri = Some("\"Doe, John|x\" <sip:j@example.com>".into());
    r.cseq = Some(314160);
    r.code = Some(200);
    let line = format_line(&r, "i");
    assert!(line.contains("|FROM_URI=\"Doe%2C John%7Cx\" <sip:j@example.com>|"));
    let (event, fields) = parse(&line);
    assert_eq!(event, "IN-REINVITE-ALEG");
    assert_eq!(
        field(&fields, "FROM_URI"),
        ["\"Doe, John|x\" <sip:j@example.com>"]
    );
}

#[test]
fn cancel_bye_and_unknown_dialog_bye() {
    let mut c = base(EdrEvent::InCancelAleg);
    c.cseq = Some(314159);
    c.code = Some(200);
    assert!(format_line(&c, "i").contains(">IN-CANCEL-ALEG|CALL_ID="));

    let mut b = base(EdrEvent::InByeAleg);
    b.cseq = Some(314161);
    b.code = Some(200);
    let (e, f) = parse(&format_line(&b, "i"));
    assert_eq!(e, "IN-BYE-ALEG");
    assert_eq!(field(&f, "CSEQ"), ["314161"]);

    let mut u = base(EdrEvent::InBye);
    u.ltag = None;
    u.code = Some(481);
    let (e, f) = parse(&format_line(&u, "i"));
    assert_eq!(e, "IN-BYE");
    assert_eq!(field(&f, "CODE"), ["481"]);
    assert!(f.iter().all(|(k, _)| k != "LTAG"));
}

#[test]
fn hostile_instance_and_extra_keys() {
    let mut r = EdrRecord {
        event: EdrEvent::Shutdown,
        at: Some(datetime!(2026-11-21 10:00:00 UTC)),
        ..EdrRecord::default()
    };
    r.extra
        .push(("exception|x".into(), "disk\nfull, again".into()));
    let line = format_line(&r, "a<b>|c\n");
    assert_eq!(
        line,
        "2026-11-21 10:00:00.000<a%3Cb%3E%7Cc%0A>SHUTDOWN|EXCEPTION_X=disk%0Afull%2C again"
    );
}

#[test]
fn writer_rotates_by_size_and_flushes_on_shutdown() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = EdrSettings::new(dir.path());
    s.instance = "test".into();
    s.max_bytes = 2_000;
    let (log, svc) = start(s).expect("start");
    for _ in 0..40 {
        log.log(base(EdrEvent::InByeAleg));
    }
    log.log(base(EdrEvent::InAckAleg)); // off by default
    svc.shutdown();
    let mut edrs = 0;
    let mut files = 0;
    for de in fs::read_dir(dir.path().join("edr")).expect("dir").flatten() {
        files += 1;
        let text = fs::read_to_string(de.path()).expect("read");
        assert!(text.starts_with("#HEADER|"));
        assert!(text.ends_with('\n'));
        edrs += text.lines().filter(|l| !l.starts_with('#')).count();
        assert!(!text.contains("IN-ACK-ALEG"));
    }
    assert_eq!(edrs, 40);
    assert!(files > 1, "rotated by size");
}

#[test]
fn writer_flushes_within_a_second() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = EdrSettings::new(dir.path());
    s.log_ack = true;
    let (log, svc) = start(s).expect("start");
    log.log(base(EdrEvent::InAckAleg));
    std::thread::sleep(Duration::from_millis(1_500));
    let text = fs::read_to_string(dir.path().join("edr").join(FILE_NAME)).expect("read");
    assert!(text.contains("IN-ACK-ALEG"));
    svc.shutdown();
}

#[test]
fn lines_logged_while_the_writer_gathers_keep_their_order_and_reach_the_file_in_a_second() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, svc) = start(EdrSettings::new(dir.path())).expect("start");
    let events = [
        EdrEvent::InInviteAleg,
        EdrEvent::InByeAleg,
        EdrEvent::InInviteAleg,
    ];
    let first = Instant::now();
    for (n, event) in events.into_iter().enumerate() {
        let mut record = base(event);
        record.cseq = Some(n as u32 + 1);
        log.log(record);
        // Inside the writer's gathering window after the first line.
        std::thread::sleep(GATHER / 4);
    }
    let path = dir.path().join("edr").join(FILE_NAME);
    let lines = loop {
        let text = fs::read_to_string(&path).expect("read");
        let lines: Vec<String> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(String::from)
            .collect();
        if lines.len() == events.len() || first.elapsed() > Duration::from_secs(3) {
            break lines;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        first.elapsed() < Duration::from_millis(1_500),
        "on disk after {:?}",
        first.elapsed()
    );
    let order: Vec<Option<&str>> = lines
        .iter()
        .map(|l| l.split('|').find_map(|f| f.strip_prefix("CSEQ=")))
        .collect();
    assert_eq!(order, [Some("1"), Some("2"), Some("3")], "{lines:?}");
    svc.shutdown();
}

#[test]
fn out_bye_unanswered_has_timeout_and_retry_not_a_code() {
    use crate::sip::transaction_log::{TransactionEvent, TransactionRecord};
    let t0 = std::time::Instant::now();
    let flow = crate::sip::Flow {
        transport: crate::sip::Transport::Udp,
        local: "127.0.0.1:5060".parse().expect("addr"),
        remote: "192.0.2.7:5064".parse().expect("addr"),
        listener: 0,
        connection: None,
    };
    let mut rec = TransactionRecord {
        event: TransactionEvent::OutBye,
        method: "BYE".into(),
        call_id: "c1@h".into(),
        cseq: 2,
        from_uri: "<sip:srs@h>;tag=a".into(),
        to_uri: "\"Src, A\" <sip:src@h>;tag=b".into(),
        flow,
        via: None,
        local_tag: Some("a".into()),
        remote_tag: Some("b".into()),
        sdp_in: None,
        sdp_out: None,
        provisional: vec![],
        code: Some(408),
        request_at: t0,
        response_at: Some(t0 + Duration::from_secs(32)),
        retransmissions: 10,
        timed_out: true,
    };
    let clock = mapping::Clock {
        now: t0 + Duration::from_secs(32),
        wall: datetime!(2026-11-21 10:00:32 UTC),
    };
    let r = mapping::edr_record(&rec, false, "k".into(), clock).expect("line");
    let line = format_line(&r, "p");
    assert_eq!(
        line,
        "2026-11-21 10:00:32.000<k>OUT-BYE-ALEG|CALL_ID=c1@h|CSEQ=2|FROM_URI=sip:srs@h|LTAG=a|\
         REMOTE_IP=192.0.2.7|REMOTE_PORT=5064|REQUEST_AT=2026-11-21 10:00:00.000|RETRY=10|RTAG=b|\
         TIMEOUT=1|TO_URI=sip:src@h|TRANSPORT=UDP"
    );
    assert_eq!(mapping::internal_error(&rec), None);
    rec.timed_out = false;
    rec.code = Some(200);
    rec.retransmissions = 0;
    let line = format_line(
        &mapping::edr_record(&rec, false, "k".into(), clock).expect("line"),
        "p",
    );
    assert!(line.contains("|CODE=200|") && !line.contains("TIMEOUT") && !line.contains("RETRY"));
    // An ACK carries only what the seed shows.
    rec.event = TransactionEvent::InAck;
    assert!(mapping::edr_record(&rec, false, "k".into(), clock).is_none());
    let ack = mapping::edr_record(&rec, true, "k".into(), clock).expect("ack line");
    let line = format_line(&ack, "p");
    assert_eq!(
        line,
        "2026-11-21 10:00:00.000<k>IN-ACK-ALEG|REMOTE_IP=192.0.2.7|REMOTE_PORT=5064|TRANSPORT=UDP"
    );
}

#[test]
fn an_invite_answered_500_ends_its_instance_with_shutdown() {
    use crate::sip::transaction_log::{TransactionEvent, TransactionRecord};
    let rec = TransactionRecord {
        event: TransactionEvent::InInvite,
        method: "INVITE".into(),
        call_id: "c2@h".into(),
        cseq: 1,
        from_uri: "sip:a@h".into(),
        to_uri: "sip:b@h".into(),
        flow: crate::sip::Flow {
            transport: crate::sip::Transport::Udp,
            local: "127.0.0.1:5060".parse().expect("addr"),
            remote: "192.0.2.7:5064".parse().expect("addr"),
            listener: 0,
            connection: None,
        },
        via: None,
        local_tag: None,
        remote_tag: None,
        sdp_in: Some("v=0".into()),
        sdp_out: None,
        provisional: vec![100],
        code: Some(500),
        request_at: std::time::Instant::now(),
        response_at: None,
        retransmissions: 0,
        timed_out: false,
    };
    let exception = mapping::internal_error(&rec).expect("internal error");
    let mut line = mapping::shutdown_record("k~1".into(), &exception);
    line.at = Some(datetime!(2026-11-21 10:00:00 UTC));
    let text = format_line(&line, "p");
    assert!(
        text.starts_with("2026-11-21 10:00:00.000<k~1>SHUTDOWN|EXCEPTION=the recording could not be prepared (directory%2C file or RTP socket); INVITE answered 500"),
        "{text}"
    );
    assert_eq!(text.matches('|').count(), 1, "EXCEPTION only: {text}");
}
