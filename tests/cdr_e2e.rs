//! CDRs and EDRs from the real binary: a call's records reach a real HTTP receiver, a
//! cancelled call leaves none, a crash is closed with `recovered`, and the EDR log has a
//! line per transaction (SPEC §6).

mod common;

use common::*;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(5);

/// Every `<record ...>` received, as (type, full text), in arrival order.
fn records(got: &Arc<Mutex<Vec<String>>>) -> Vec<(String, String)> {
    let docs = got.lock().expect("lock").clone();
    let mut out = vec![];
    for doc in docs {
        assert!(doc.starts_with("<?xml"), "{doc}");
        for part in doc.split("<record ").skip(1) {
            let kind = part
                .split("type=\"")
                .nth(1)
                .and_then(|t| t.split('"').next())
                .unwrap_or("")
                .to_string();
            out.push((kind, part.to_string()));
        }
    }
    out
}

/// The `type` of each record, in order.
fn record_types(records: &[(String, String)]) -> Vec<&str> {
    records.iter().map(|(k, _)| k.as_str()).collect()
}

fn wait_records(got: &Arc<Mutex<Vec<String>>>, n: usize) -> Vec<(String, String)> {
    wait_for(Duration::from_secs(10), || {
        let r = records(got);
        match r.len() >= n {
            true => Ok(r),
            false => Err(format!("{} of {n} records: {r:#?}", r.len())),
        }
    })
}

#[test]
fn a_call_produces_its_cdrs_and_edr_lines() {
    let (url, got) = cdr_receiver();
    let rec = Recorder::start(&["--cdr-receiver", &url]);
    let mut c = rec.udp();
    let mut call = genesys_call_active(&rec, &mut c);
    let (_, doc) = rec.wait_call_state(&call.call_id, "active", T);
    pause(&rec, &mut c, &mut call, 2);
    resume(&rec, &mut c, &mut call, 3);
    hang_up(&mut c, &mut call);
    rec.wait_call_state(&call.call_id, "ended", T);

    let r = wait_records(&got, 7);
    let kinds = record_types(&r);
    assert_eq!(
        kinds,
        [
            "callLegStart",
            "recordingStart",
            "callLegUpdate",
            "callLegUpdate",
            "callLegUpdate",
            "callLegEnd",
            "recordingEnd"
        ]
    );
    // Guide §4.5: the leg reports `connected` once set up, before any pause.
    assert!(
        r[2].1.contains("<state>connected</state>") && r[2].1.contains("<deactivated>false"),
        "{}",
        r[2].1
    );
    assert!(
        r[0].1.contains("<displayName>Client</displayName>"),
        "{}",
        r[0].1
    );
    assert!(r[0].1.contains("<recording>true</recording>"), "{}", r[0].1);
    assert!(!r[0].1.contains("<subType>"), "{}", r[0].1);
    let recording_id = doc["recording_id"].as_str().expect("id");
    let leg = doc["call_leg_id"].as_str().expect("call leg id");
    assert!(
        r[1].1
            .contains(&format!("<recording id=\"{recording_id}\"")),
        "{}",
        r[1].1
    );
    assert!(
        r[1].1.contains(&format!("<callLeg>{leg}</callLeg>")),
        "{}",
        r[1].1
    );
    let calluuid = doc["calluuid"].as_str().expect("calluuid");
    assert!(
        r[1].1.contains(&format!("<call>{calluuid}</call>")),
        "{}",
        r[1].1
    );
    assert!(
        r[3].1.contains("<deactivated>true</deactivated>"),
        "{}",
        r[3].1
    );
    assert!(
        r[4].1.contains("<deactivated>false</deactivated>"),
        "{}",
        r[4].1
    );
    assert!(
        r[5].1.contains("<reason>remoteTeardown</reason>"),
        "{}",
        r[5].1
    );
    assert!(r[5].1.contains(&call.call_id), "sipCallId: {}", r[5].1);
    assert!(
        r[6].1
            .contains(&format!("<recording id=\"{recording_id}\"")),
        "{}",
        r[6].1
    );
    // correlatorIndex grows by one per record, recordIndex from 1 for this receiver.
    for (i, (_, text)) in r.iter().enumerate() {
        assert!(text.contains(&format!("correlatorIndex=\"{i}\"")), "{text}");
        assert!(
            text.contains(&format!("recordIndex=\"{}\"", i + 1)),
            "{text}"
        );
    }

    // An unknown-dialog BYE, then the EDR lines.
    let mut stray = Call::genesys(&c);
    stray.to_tag = Some("nope".into());
    let bye = stray.bye();
    c.send(&bye);
    c.expect_reply(&bye, 481, T);
    let edr = rec.spool_dir.join("edr/sip-edr.log");
    let text = wait_for(T, || {
        let text = std::fs::read_to_string(&edr).unwrap_or_default();
        match text.contains("IN-BYE|") {
            true => Ok(text),
            false => Err(format!("EDR lines missing in {}:\n{text}", edr.display())),
        }
    });
    let lines: Vec<&str> = text.lines().filter(|l| l.contains(&call.call_id)).collect();
    let events: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.split('>').nth(1).and_then(|r| r.split('|').next()))
        .collect();
    assert_eq!(
        events,
        [
            "IN-INVITE-ALEG",
            "IN-REINVITE-ALEG",
            "IN-REINVITE-ALEG",
            "IN-BYE-ALEG"
        ],
        "{text}"
    );
    assert!(
        lines[0].contains("|CODE=200|") && lines[0].contains("|PCODES=100|"),
        "{}",
        lines[0]
    );
    assert!(
        lines[0].contains("|SDP_IN=1|") && lines[0].contains("|SDP_OUT=1|"),
        "{}",
        lines[0]
    );
    assert!(
        text.lines()
            .any(|l| l.contains("IN-BYE|") && l.contains("CODE=481")),
        "{text}"
    );
}

#[test]
fn a_cancelled_call_leaves_no_cdrs() {
    let (url, got) = cdr_receiver();
    let rec = Recorder::start(&["--cdr-receiver", &url]);
    let mut c = rec.tcp();
    let mut call = Call::genesys(&c);
    let invite = call.genesys_invite();
    let cancel = call.cancel();
    c.send(&format!("{invite}{cancel}"));
    c.expect_reply(&cancel, 200, T);
    c.expect_reply(&invite, 487, T);
    // A later call proves delivery works: only its records arrive.
    let mut other = Call::genesys(&c);
    let invite = other.genesys_invite();
    establish(&mut c, &mut other, &invite);
    hang_up(&mut c, &mut other);
    let r = wait_records(&got, 5);
    std::thread::sleep(Duration::from_millis(500));
    let r2 = records(&got);
    assert_eq!(r2.len(), 5, "{r2:#?}");
    assert!(r.iter().all(|(_, t)| !t.contains(&call.call_id)), "{r:#?}");
}

#[test]
fn a_crashed_recording_is_closed_with_recovered_after_restart() {
    let (url, got) = cdr_receiver();
    let mut rec = Recorder::start(&["--cdr-receiver", &url]);
    let mut c = rec.udp();
    let call = genesys_call_active(&rec, &mut c);
    let (_, doc) = rec.wait_call_state(&call.call_id, "active", T);
    wait_records(&got, 3);
    rec.kill9();
    rec.restart();
    let r = wait_records(&got, 5);
    let kinds = record_types(&r);
    assert_eq!(
        kinds,
        [
            "callLegStart",
            "recordingStart",
            "callLegUpdate",
            "callLegEnd",
            "recordingEnd"
        ],
        "{r:#?}"
    );
    assert!(
        r[4].1.contains(doc["recording_id"].as_str().expect("id")),
        "{}",
        r[4].1
    );
    assert!(r[4].1.contains("recovered"), "{}", r[4].1);
    let (_, doc) = rec.wait_call_state(&call.call_id, "ended", T);
    assert_eq!(doc["end_reason"], "recovered");
}

/// A receiver answering 404 for 5 s (a wrong path behind a proxy, say) then 200: nothing is
/// lost, and meanwhile the failing receiver shows in /metrics and /health.
#[test]
fn a_receiver_refusing_for_a_while_loses_nothing_and_shows_in_metrics_and_health() {
    let (url, got) = cdr_receiver_refusing_until(Instant::now() + Duration::from_secs(5));
    let rec = Recorder::with_toml_args("[cdr]\nmax_backoff_secs = 1\n", &["--cdr-receiver", &url]);
    let mut c = rec.udp();
    for _ in 0..3 {
        let mut call = genesys_call_active(&rec, &mut c);
        hang_up(&mut c, &mut call);
        rec.wait_call_state(&call.call_id, "ended", T);
    }
    std::thread::sleep(Duration::from_millis(1500));
    let series = format!("sip_recorder_cdr_receiver_up{{receiver=\"{url}\"}} ");
    let metrics = http_request(rec.http_addr, "GET", "/metrics", "").body;
    assert!(metrics.contains(&format!("{series}0")), "{metrics}");
    let health = http_request(rec.http_addr, "GET", "/health", "");
    assert_eq!(health.status, 200, "records wait safely in the spool");
    assert!(
        health.body.contains(&format!("cdr receiver {url} failing")) && health.body.contains("404"),
        "{}",
        health.body
    );
    assert!(rec.log().contains("CDR delivery failed, will retry"));
    // 3 calls × 5 records, each exactly once, recordIndex 1..=15.
    let r = wait_records(&got, 15);
    assert_eq!(r.len(), 15, "{r:#?}");
    for (i, (_, text)) in r.iter().enumerate() {
        assert!(
            text.contains(&format!("recordIndex=\"{}\"", i + 1)),
            "{text}"
        );
    }
    let deadline = Instant::now() + T;
    loop {
        let metrics = http_request(rec.http_addr, "GET", "/metrics", "").body;
        if metrics.contains(&format!("{series}1")) {
            break;
        }
        assert!(Instant::now() < deadline, "{metrics}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let health = http_request(rec.http_addr, "GET", "/health", "");
    assert_eq!(health.body, "ok\n");
}
