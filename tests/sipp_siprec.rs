//! SRC dialects against the real recorder: SIPp (Debian package `sip-tester`) plays the
//! scenarios under `scripts/sipp/` (SIPREC metadata dialects and updates, Cisco CUBE and
//! BiB, Genesys one session per party); each test asserts SIPp's counters and then the
//! recordings: ended, audible (the WAV is decoded and its tone measured), parties and group.

mod common;

use common::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn samples(dir: &Path, file: &str) -> Vec<i16> {
    let mut wav = hound::WavReader::open(dir.join(file)).expect("valid WAV");
    assert_eq!(wav.spec().sample_rate, 8000);
    wav.samples::<i16>().map(|s| s.expect("sample")).collect()
}

/// Dominant frequency from zero crossings: enough to tell 440 Hz from silence or noise.
/// The 440 Hz tone is in `file` between `from` and `to` seconds: in nine of ten 20 ms
/// windows the 440 Hz component carries the sound (SIPp's own pacing may stall for a few
/// packets on a loaded machine; packet accounting is checked elsewhere).
fn assert_tone(dir: &Path, file: &str, from: f64, to: f64) {
    let all = samples(dir, file);
    let w = common::rtp::windows(&all, 8000, from, to, 440.0);
    let toned = w
        .iter()
        .filter(|(_, rms, amp)| *amp > 1000.0 && *amp > rms * 1.2)
        .count();
    let hz = common::rtp::zero_crossing_hz(common::rtp::window(&all, 8000, from, to), 8000);
    assert!(
        !w.is_empty() && toned * 10 >= w.len() * 9,
        "{file} {from}-{to} s: 440 Hz in {toned} of {} windows ({hz:.1} Hz by zero crossings)",
        w.len()
    );
}

fn parties(v: &Value) -> Vec<String> {
    v["streams"]
        .as_array()
        .expect("streams")
        .iter()
        .map(|s| s["party"].as_str().unwrap_or("").to_string())
        .collect()
}

fn assert_ended_by_bye(v: &Value) {
    assert_eq!(v["state"], "ended", "{v}");
    assert_eq!(v["end_reason"], "bye", "{v}");
}

/// One dialog carries the whole call: no recording group.
fn assert_ungrouped(v: &Value) {
    assert_eq!(v["group_id"], Value::Null, "{v}");
    assert_eq!(v["correlation_id"], Value::Null, "{v}");
}

/// `GET path` on the HTTP API (authenticated): the body of a 200.
fn http_text(rec: &Recorder, path: &str) -> String {
    let reply = rec.api("GET", path);
    assert_eq!(reply.status, 200, "GET {path}: {}", reply.body);
    reply.body
}

/// `GET path` on the HTTP API, body parsed as JSON.
fn api_get(rec: &Recorder, path: &str) -> Value {
    let body = http_text(rec, path);
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// Every spooled CDR record's text (no receiver is configured: records stay in the spool).
fn spooled_cdrs(rec: &Recorder) -> Vec<String> {
    // Every spool directory below the spool (one per receiver, `local/` without one), read
    // record by record as the recorder's own reader lists them.
    fn walk(dir: &Path, out: &mut Vec<String>) {
        if let Ok(records) = sip_recorder::cdr::spool::read_records(dir) {
            out.extend(records.into_iter().map(|(_, xml)| xml));
        }
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if entry.path().is_dir() {
                walk(&entry.path(), out);
            }
        }
    }
    let mut out = vec![];
    walk(&rec.spool_dir, &mut out);
    out
}

/// The recordingStart CDR of a recording, once spooled.
fn recording_start_cdr(rec: &Recorder, recording_id: &str) -> String {
    let needle = format!("<recording id=\"{recording_id}\"><path>");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(cdr) = spooled_cdrs(rec).into_iter().find(|c| c.contains(&needle)) {
            return cdr;
        }
        assert!(
            Instant::now() < deadline,
            "no recordingStart for {recording_id}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn broadworks_siprec_with_pause_resume_and_three_way_metadata() {
    let rec = Recorder::start(&[]);
    SippRun::new(rec.sip_addr, "uac_broadworks_siprec.xml", 2).run_ok();
    for (dir, v) in rec.wait_all_ended(2) {
        assert_ended_by_bye(&v);
        assert_ungrouped(&v);
        assert_eq!(v["kind"], "siprec", "{v}");
        assert_eq!(v["metadata_error"], Value::Null, "{v}");
        assert_eq!(
            v["siprec_session_id"],
            "urn:uuid:3d1b6a0e-5b7e-4c51-9a40-1f2f8f0c0003"
        );
        let bw = &v["broadworks"];
        assert_eq!(bw["ext_tracking_id"], "152463:1", "{v}");
        assert_eq!(bw["user_id"], "agent1@as.example.net");
        assert_eq!(bw["call_id"], "callhalf-177056759:5");
        assert_eq!(bw["call_type"], "origCall");
        assert_eq!(bw["calling_party_number"], "sip:agent1@as.example.net");
        assert_eq!(
            bw["called_party_number"],
            "sip:+12025550143@as.example.net;user=phone"
        );
        // The resume re-INVITE's metadata made it a three-way call.
        assert_eq!(
            parties(&v),
            vec![
                "sip:agent1@as.example.net",
                "sip:+12025550143@as.example.net;user=phone, sip:supervisor@as.example.net"
            ],
            "{v}"
        );
        let updates = v["metadata_updates"].as_array().expect("metadata updates");
        assert_eq!(
            updates.len(),
            2,
            "pause and resume re-INVITEs carried metadata: {v}"
        );
        assert_eq!(updates[0]["joined"], serde_json::json!([]));
        assert_eq!(
            updates[1]["joined"],
            serde_json::json!(["urn:uuid:3d1b6a0e-5b7e-4c51-9a40-1f2f8f0c0012"])
        );
        assert_eq!(v["participants"].as_array().map(Vec::len), Some(3), "{v}");
        for (n, expected) in [
            ("metadata.xml", "broadworks_initial.xml"),
            ("metadata-1.xml", "broadworks_initial.xml"),
            ("metadata-2.xml", "broadworks_3way.xml"),
        ] {
            let saved = std::fs::read_to_string(dir.join(n)).expect("raw metadata saved");
            let sent = std::fs::read_to_string(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("tests/data/siprec")
                    .join(expected),
            )
            .expect("test document");
            // SIPp sends CRLF line ends; the documents are equal line by line.
            assert_eq!(
                saved.trim().lines().collect::<Vec<_>>(),
                sent.trim().lines().collect::<Vec<_>>(),
                "{n}"
            );
        }
        // Paused from 1 s to 1.5 s: tone before, silence in between, tone after.
        let pauses = v["pauses"].as_array().expect("pauses");
        assert_eq!(pauses.len(), 1, "{v}");
        assert!(pauses[0]["ended_at"].is_string(), "{v}");
        assert_tone(&dir, "stream-0.wav", 0.2, 0.8);
        let pause = samples(&dir, "stream-0.wav");
        assert!(
            common::rtp::rms(&pause[9600..10400]) < 100.0,
            "silence while paused"
        );
        assert_tone(&dir, "stream-0.wav", 1.9, 2.7);
    }
}

#[test]
fn metadata_only_update_adds_a_participant() {
    let rec = Recorder::start(&[]);
    SippRun::new(rec.sip_addr, "uac_siprec_metadata_update.xml", 2).run_ok();
    for (dir, v) in rec.wait_all_ended(2) {
        assert_ended_by_bye(&v);
        assert_ungrouped(&v);
        assert_tone(&dir, "stream-0.wav", 0.2, 2.8);
        let updates = v["metadata_updates"].as_array().expect("metadata updates");
        assert_eq!(updates.len(), 2, "{v}");
        // The truncated second document changed nothing but is kept and listed.
        assert_eq!(updates[1]["applied"], false, "{v}");
        assert!(updates[1]["error"].is_string(), "{v}");
        let raw = std::fs::read_to_string(dir.join("metadata-2.xml")).expect("raw kept");
        assert!(raw.contains("dHJ1bmNhdGVk"), "{raw}");
        assert_eq!(updates[0]["file"], "metadata-1.xml");
        assert_eq!(updates[0]["data_mode"], "partial");
        assert_eq!(updates[0]["applied"], true);
        assert_eq!(
            updates[0]["joined"],
            serde_json::json!(["c3BlY2lhbGlzdC0z"])
        );
        assert_eq!(updates[0]["left"], serde_json::json!(["Y3VzdG9tZXItMQ=="]));
        assert!(dir.join("metadata-1.xml").is_file());
        let people = v["participants"].as_array().expect("participants");
        let by_id: BTreeMap<&str, &Value> = people
            .iter()
            .map(|p| (p["participant_id"].as_str().unwrap_or(""), p))
            .collect();
        assert_eq!(by_id.len(), 3, "{v}");
        let customer = by_id["Y3VzdG9tZXItMQ=="];
        assert_eq!(customer["joined_at"], "2026-02-11T15:25:48Z");
        assert_eq!(customer["left_at"], "2026-02-11T15:27:30Z");
        let specialist = by_id["c3BlY2lhbGlzdC0z"];
        assert_eq!(specialist["joined_at"], "2026-02-11T15:27:02Z");
        assert_eq!(specialist["aor"], "sip:3003@avaya.example.com");
        assert_eq!(specialist["send"], serde_json::json!(["c3RyZWFtLWI="]));
        assert_eq!(
            by_id["YWdlbnQtMg=="]["left_at"], v["ended_at"],
            "present to the end"
        );
        // Stream 1's sender left, so its label stands in; stream 2 is agent + specialist.
        assert_eq!(
            parties(&v),
            vec![
                "1",
                "sip:2002@avaya.example.com, sip:3003@avaya.example.com"
            ],
            "{v}"
        );
    }
    let metrics = http_text(&rec, "/metrics");
    assert!(
        metrics.contains("sip_recorder_siprec_metadata_unreadable_total 2"),
        "one unreadable document per call counted:\n{metrics}"
    );
}

#[test]
fn reinvite_with_metadata_and_no_sdp_gets_an_offer_and_applies_the_metadata() {
    let rec = Recorder::start(&[]);
    SippRun::new(rec.sip_addr, "uac_siprec_reinvite_metadata_only.xml", 2).run_ok();
    for (dir, v) in rec.wait_all_ended(2) {
        assert_ended_by_bye(&v);
        assert_ungrouped(&v);
        // The offer/answer through 200 and ACK kept the media running.
        assert_tone(&dir, "stream-0.wav", 0.2, 2.8);
        assert_eq!(v["streams"][0]["packets_lost"], 0, "{v}");
        assert_eq!(
            parties(&v),
            vec![
                "sip:+15551230100@sbc.example.com",
                "sip:+15551230300@sbc.example.com"
            ],
            "transfer target replaces the far party: {v}"
        );
        let updates = &v["metadata_updates"];
        assert_eq!(
            updates[0]["joined"],
            serde_json::json!(["VHJhbnNmZXJUYXJnZXQ="])
        );
        assert_eq!(
            updates[0]["left"],
            serde_json::json!(["Wv9ShjFOQtmd6RoS1TSAsw=="])
        );
        assert!(
            v["metadata_extensions"]
                .as_array()
                .expect("extensions kept raw")
                .iter()
                .any(|x| x.as_str().unwrap_or("").contains("<apkt:ucid>"))
        );
        assert!(dir.join("metadata-1.xml").is_file());
    }
}

#[test]
fn cube_recording_participant_headers_name_the_parties() {
    let rec = Recorder::start(&[]);
    SippRun::new(rec.sip_addr, "uac_cube_recording.xml", 2).run_ok();
    for (dir, v) in rec.wait_all_ended(2) {
        assert_ended_by_bye(&v);
        assert_ungrouped(&v);
        assert_eq!(v["kind"], "cms", "{v}");
        assert_eq!(
            parties(&v),
            vec!["sip:708090@10.42.30.5", "sip:10000@10.42.30.32"],
            "{v}"
        );
        assert_tone(&dir, "stream-0.wav", 0.2, 2.8);
        let cdr = recording_start_cdr(&rec, v["recording_id"].as_str().unwrap_or(""));
        assert!(
            cdr.contains(
                "<parties><party>sip:708090@10.42.30.5</party><party>sip:10000@10.42.30.32</party></parties>"
            ),
            "{cdr}"
        );
    }
}

/// Two recordings per call, grouped: each call's pair shares a group_id (in recording.json,
/// the API and the recordingStart CDR), the two calls' groups differ.
fn assert_pairs(
    rec: &Recorder,
    all: &[(PathBuf, Value)],
    pair_of: impl Fn(&Value) -> (String, String),
) {
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (dir, v) in all {
        assert_ended_by_bye(v);
        assert_tone(dir, "stream-0.wav", 0.2, 2.8);
        let group = v["group_id"]
            .as_str()
            .unwrap_or_else(|| panic!("no group: {v}"));
        let (call, party) = pair_of(v);
        groups
            .entry(format!("{call} {group}"))
            .or_default()
            .push(party);
        let id = v["recording_id"].as_str().unwrap_or("");
        assert_eq!(
            api_get(rec, &format!("/api/v1/recordings/{id}"))["group_id"],
            group
        );
        let cdr = recording_start_cdr(rec, id);
        assert!(
            cdr.contains(&format!("<groupId>{group}</groupId>")),
            "{cdr}"
        );
    }
    assert_eq!(groups.len(), 2, "one group per call: {groups:?}");
    let distinct: std::collections::BTreeSet<&str> = groups
        .keys()
        .map(|k| k.split(' ').nth(1).unwrap_or(""))
        .collect();
    assert_eq!(distinct.len(), 2, "{groups:?}");
    for parties in groups.values_mut() {
        parties.sort();
        assert_eq!(parties.len(), 2, "{groups:?}");
    }
    let listed = api_get(rec, "/api/v1/recordings").to_string();
    for key in groups.keys() {
        assert!(
            listed.contains(key.split(' ').nth(1).unwrap_or("")),
            "{listed}"
        );
    }
}

#[test]
fn cisco_bib_near_and_far_end_dialogs_form_one_group() {
    let rec = Recorder::start(&[]);
    let pairs = sipp_file("cisco_bib_pairs.csv");
    SippRun::new(rec.sip_addr, "uac_cisco_bib.xml", 4)
        .args(&["-inf", pairs.to_str().expect("utf-8 path")])
        .run_ok();
    let all = rec.wait_all_ended(4);
    assert_pairs(&rec, &all, |v| {
        let correlation = v["correlation_id"].as_str().unwrap_or("").to_string();
        (
            correlation,
            v["cisco_bib_leg"].as_str().unwrap_or("").to_string(),
        )
    });
    let mut seen: Vec<(String, String, String)> = all
        .iter()
        .map(|(_, v)| {
            (
                v["correlation_id"].as_str().unwrap_or("").to_string(),
                v["cisco_bib_leg"].as_str().unwrap_or("").to_string(),
                parties(v).join(""),
            )
        })
        .collect();
    seen.sort();
    let row = |c: &str, leg: &str, party: &str| (c.to_string(), leg.to_string(), party.to_string());
    assert_eq!(
        seen,
        vec![
            row("cisco-bib:CUCM-Lab:27757093:27757092", "far_end", "1000"),
            row("cisco-bib:CUCM-Lab:27757093:27757092", "near_end", "2000"),
            row("cisco-bib:CUCM-Lab:27757101:27757100", "far_end", "1001"),
            row("cisco-bib:CUCM-Lab:27757101:27757100", "near_end", "2001"),
        ],
        "near end carries the agent DN, far end x-farendaddr"
    );
}

#[test]
fn genesys_one_session_per_party_forms_one_group_per_call() {
    let rec = Recorder::start(&[]);
    let pairs = sipp_file("genesys_per_party.csv");
    SippRun::new(rec.sip_addr, "uac_genesys_per_party.xml", 4)
        .args(&["-inf", pairs.to_str().expect("utf-8 path")])
        .run_ok();
    let all = rec.wait_all_ended(4);
    assert_pairs(&rec, &all, |v| {
        assert_eq!(v["kind"], "genesys", "{v}");
        assert_eq!(parties(v), vec![v["dn"].as_str().unwrap_or("").to_string()]);
        (
            v["calluuid"].as_str().unwrap_or("").to_string(),
            v["dn"].as_str().unwrap_or("").to_string(),
        )
    });
    let mut seen: Vec<(String, String)> = all
        .iter()
        .map(|(_, v)| {
            (
                v["calluuid"].as_str().unwrap_or("").to_string(),
                v["dn"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        vec![
            ("00F0025E8C1A3B21".into(), "7001".into()),
            ("00F0025E8C1A3B21".into(), "7002".into()),
            ("00F0025E8C1A3B22".into(), "7003".into()),
            ("00F0025E8C1A3B22".into(), "7004".into()),
        ]
    );
}
