//! SIP EDR lines from the real recorder, checked field by field against the N-Squared seed
//! (`001_…`): every field one the seed defines, each value of the type the seed gives it,
//! the required ones present, `IN-ACK-ALEG` with just the seed's fields, an unanswered
//! `OUT-BYE-ALEG` with `TIMEOUT=1` and `RETRY` instead of a response code, and one
//! `<instance>` key per call.

mod common;

use common::*;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(5);

/// The seed's field types.
#[derive(Debug, Clone, Copy)]
enum Ty {
    Timestamp,
    Integer,
    Str,
    One,
    NumericIp,
    /// Begins with z9hG4bK.
    Branch,
    /// PCODES: integers 100-199, comma-separated.
    Provisional,
    /// TRANSPORT: UDP, TCP or TLS.
    Transport,
}

/// The seed's field table (common SIP request/response fields and SHUTDOWN's EXCEPTION).
const FIELDS: &[(&str, Ty)] = &[
    ("REQUEST_AT", Ty::Timestamp),
    ("RETRY", Ty::Integer),
    ("TIMEOUT", Ty::One),
    ("CALL_ID", Ty::Str),
    ("REQUIRE", Ty::Str),
    ("CSEQ", Ty::Integer),
    ("FROM_URI", Ty::Str),
    ("TO_URI", Ty::Str),
    ("TRANSPORT", Ty::Transport),
    ("VIA_HOST", Ty::Str),
    ("VIA_PORT", Ty::Integer),
    ("VIA_BRANCH", Ty::Branch),
    ("VIA_RECEIVED", Ty::NumericIp),
    ("VIA_RPORT", Ty::Integer),
    ("REMOTE_IP", Ty::NumericIp),
    ("REMOTE_PORT", Ty::Integer),
    ("PCV", Ty::Integer),
    ("RESPONSE_AT", Ty::Timestamp),
    ("CODE", Ty::Integer),
    ("PCODES", Ty::Provisional),
    ("NPRACK", Ty::Integer),
    ("LCONTACT", Ty::Str),
    ("LTAG", Ty::Str),
    ("RCONTACT", Ty::Str),
    ("RTAG", Ty::Str),
    ("SDP_IN", Ty::One),
    ("SDP_OUT", Ty::One),
    ("PRIVACY", Ty::Str),
    ("PAI", Ty::Str),
    ("PPI", Ty::Str),
    ("EXCEPTION", Ty::Str),
];

fn timestamp(v: &str) -> bool {
    time::PrimitiveDateTime::parse(
        v,
        time::macros::format_description!(
            "[year]-[month]-[day] [hour]:[minute]:[second].[subsecond digits:3]"
        ),
    )
    .is_ok()
}

fn check_type(key: &str, ty: Ty, v: &str) {
    let ok = match ty {
        Ty::Timestamp => timestamp(v),
        Ty::Integer => !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()),
        Ty::Str => !v.is_empty(),
        Ty::One => v == "1",
        Ty::NumericIp => v.parse::<std::net::IpAddr>().is_ok(),
        Ty::Branch => v.starts_with("z9hG4bK"),
        Ty::Provisional => v
            .split(',')
            .all(|c| c.parse::<u16>().is_ok_and(|c| (100..200).contains(&c))),
        Ty::Transport => ["UDP", "TCP", "TLS"].contains(&v),
    };
    assert!(ok, "{key}={v:?} is not the seed's {ty:?}");
}

#[derive(Debug)]
struct Line {
    instance: String,
    event: String,
    fields: BTreeMap<String, String>,
    raw: String,
}

fn parse_line(raw: &str) -> Line {
    let (stamp, rest) = raw.split_once('<').expect("<instance>");
    assert!(timestamp(stamp), "line time {stamp:?}");
    let (instance, rest) = rest.split_once('>').expect("instance end");
    let mut parts = rest.split('|');
    let event = parts.next().expect("event").to_string();
    let mut fields = BTreeMap::new();
    for f in parts {
        let (k, v) = f.split_once('=').expect("KEY=VALUE");
        assert!(
            fields.insert(k.to_string(), v.to_string()).is_none(),
            "{k} twice"
        );
    }
    Line {
        instance: instance.to_string(),
        event,
        fields,
        raw: raw.to_string(),
    }
}

/// Every line against the seed: known fields of the right type, required ones present.
fn check_line(l: &Line) {
    for (k, v) in &l.fields {
        let ty = FIELDS
            .iter()
            .find(|(f, _)| f == k)
            .unwrap_or_else(|| panic!("{k} is not a seed field: {}", l.raw))
            .1;
        check_type(k, ty, v);
    }
    let has = |k: &str| l.fields.contains_key(k);
    match l.event.as_str() {
        "IN-ACK-ALEG" => {
            let keys: Vec<&str> = l.fields.keys().map(String::as_str).collect();
            assert_eq!(keys, ["REMOTE_IP", "REMOTE_PORT", "TRANSPORT"], "{}", l.raw);
        }
        "SHUTDOWN" => assert!(has("EXCEPTION"), "{}", l.raw),
        event => {
            for k in ["REQUEST_AT", "CALL_ID", "CSEQ", "TRANSPORT"] {
                assert!(has(k), "{event}: required {k} missing: {}", l.raw);
            }
            if has("TIMEOUT") {
                assert!(!has("CODE") && has("RETRY"), "{}", l.raw);
            } else {
                assert!(has("CODE") && has("RESPONSE_AT"), "{}", l.raw);
            }
            if event.starts_with("OUT-") {
                assert!(has("REMOTE_IP") && has("REMOTE_PORT"), "{}", l.raw);
                assert!(!has("VIA_RECEIVED") && !has("VIA_RPORT"), "{}", l.raw);
            } else {
                assert!(has("VIA_HOST") && has("VIA_BRANCH"), "{}", l.raw);
                assert!(!has("REMOTE_IP"), "inbound request: {}", l.raw);
            }
            if event == "IN-INVITE-ALEG" || event == "IN-REINVITE-ALEG" {
                assert!(has("LTAG") && has("RTAG"), "{}", l.raw);
            }
        }
    }
}

fn edr_lines(rec: &Recorder, until: impl Fn(&[Line]) -> bool) -> Vec<Line> {
    let path = rec.spool_dir.join("edr/sip-edr.log");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let lines: Vec<Line> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(parse_line)
            .collect();
        if until(&lines) {
            return lines;
        }
        assert!(Instant::now() < deadline, "EDR lines missing:\n{text}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn edr_lines_follow_the_seed_field_by_field() {
    let rec = Recorder::with_toml("[cdr]\nedr_log_ack = true\n");
    let mut c = rec.udp();
    // A call with a re-INVITE, hung up by the SRC.
    let mut call = genesys_call_active(&rec, &mut c);
    reoffer(&mut c, &mut call, &genesys_sdp(2, "inactive"));
    hang_up(&mut c, &mut call);
    // A call the recorder ends (API stop) and whose BYE nobody answers.
    let deaf = genesys_call_active(&rec, &mut c);
    let (_, doc) = rec.wait_call_state(&deaf.call_id, "active", T);
    let id = doc["recording_id"].as_str().expect("id");
    rec.wait_api_state(id, "active");
    let stop = rec.api("POST", &format!("/api/v1/recordings/{id}/stop"));
    assert_eq!(stop.status, 202, "{stop:?}");
    c.expect_request("BYE", T);
    // A BYE for no dialog.
    let mut stray = Call::genesys(&c);
    stray.to_tag = Some("nope".into());
    let bye = stray.bye();
    c.send(&bye);
    c.expect_reply(&bye, 481, T);

    // 64*T1 = 3.2 s later the unanswered BYE is given up.
    let lines = edr_lines(&rec, |ls| ls.iter().any(|l| l.event == "OUT-BYE-ALEG"));
    for l in &lines {
        check_line(l);
    }
    let of = |call_id: &str| -> Vec<&Line> {
        let instance = lines
            .iter()
            .find(|l| l.fields.get("CALL_ID").is_some_and(|c| c == call_id))
            .map(|l| l.instance.clone())
            .expect("a line of the call");
        lines.iter().filter(|l| l.instance == instance).collect()
    };
    let first = of(&call.call_id);
    let events: Vec<&str> = first.iter().map(|l| l.event.as_str()).collect();
    assert_eq!(
        events,
        [
            "IN-INVITE-ALEG",
            "IN-ACK-ALEG",
            "IN-REINVITE-ALEG",
            "IN-ACK-ALEG",
            "IN-BYE-ALEG"
        ],
        "one <instance> per call, every line of it"
    );
    let invite_line = &first[0].fields;
    assert_eq!(invite_line["CODE"], "200");
    assert_eq!(invite_line["SDP_IN"], "1");
    assert_eq!(invite_line["SDP_OUT"], "1");
    assert_eq!(invite_line["CSEQ"], "1");
    assert!(
        !invite_line["FROM_URI"].contains('<'),
        "a URI, not a header"
    );

    let second = of(&deaf.call_id);
    let out = second
        .iter()
        .find(|l| l.event == "OUT-BYE-ALEG")
        .expect("OUT-BYE-ALEG");
    assert_eq!(out.fields["TIMEOUT"], "1", "{}", out.raw);
    assert!(out.fields["RETRY"].parse::<u32>().expect("RETRY") >= 1);
    assert_eq!(out.fields["REMOTE_IP"], "127.0.0.1");
    assert_eq!(out.fields["REMOTE_PORT"], c.local.port().to_string());

    // The API's stop shows in that call's CDR (kept locally: no receiver configured).
    let local = rec.spool_dir.join("cdr/local");
    let deadline = Instant::now() + T;
    while !std::fs::read_dir(&local)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|f| std::fs::read_to_string(f.path()).ok())
        .any(|t| t.contains(&deaf.call_id) && t.contains("<reason>apiInitiatedTeardown</reason>"))
    {
        assert!(
            Instant::now() < deadline,
            "no apiInitiatedTeardown callLegEnd"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let instances: BTreeSet<&str> = lines.iter().map(|l| l.instance.as_str()).collect();
    assert_eq!(instances.len(), 3, "three calls, three instance keys");
    // No SHUTDOWN: nothing ended with an internal error.
    assert!(lines.iter().all(|l| l.event != "SHUTDOWN"));
}

#[test]
fn the_checker_refuses_what_the_seed_does_not_define() {
    let good = "2021-10-20 06:45:26.285<IVR-1634712319-2ff34afe>IN-BYE-ALEG|CALL_ID=804457721@|CODE=200|CSEQ=2|REQUEST_AT=2021-10-20 06:45:26.284|RESPONSE_AT=2021-10-20 06:45:26.285|TRANSPORT=UDP|VIA_BRANCH=z9hG4bK1|VIA_HOST=h";
    check_line(&parse_line(good));
    for bad in [
        good.replace("CSEQ=2", "CSEQ=2 BYE"),
        good.replace("CODE=200|", "CODE=200|SDP_IN=v=0|"),
        good.replace("CODE=200|", "CODE=200|SUBJECT=x|"),
        good.replace("|TRANSPORT=UDP", ""),
    ] {
        let l = parse_line(&bad);
        assert!(
            std::panic::catch_unwind(|| check_line(&l)).is_err(),
            "accepted {bad}"
        );
    }
}
