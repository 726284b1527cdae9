//! The recording SIP leg's CDRs (guide §4.3–§4.5), built from its `recording.json` document.
//! The recording task calls these; every mapping from our state to a CMS field lives here.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::model::{
    BurstStats, CallLegEnd, CallLegEndReason, CallLegStart, CallLegUpdate, CdrEvent, RxAudio,
};
use crate::media::accounting::PeriodStats;
use crate::recording::EndReason;
use crate::recording::session::{RecordingDocument, StreamEntry};
use crate::recording::startup::{KeptPeriod, RecoveredDocument, RecoveredStream};

/// CMS codec names (guide §4.4 `rxAudio`/`codec`) for the SDP encoding names we record.
/// Names the guide does not list are passed through lower-cased.
pub fn cms_codec(sdp_name: &str) -> String {
    match sdp_name.to_ascii_lowercase().as_str() {
        "pcmu" | "g711u" => "g711u".into(),
        "pcma" | "g711a" => "g711a".into(),
        "g722" => "g722".into(),
        "g728" => "g728".into(),
        "g729" | "g729a" | "g729ab" => "g729".into(),
        "g7221" => "g722_1".into(),
        "mpeg4-generic" | "aac" => "aac".into(),
        "opus" => "opus".into(),
        "isac" => "isacWb".into(),
        other => other.into(),
    }
}

/// The display name of a From/To header value (`"Alice" <sip:a@h>` → `Alice`).
pub fn display_name(header: &str) -> Option<String> {
    let (name, _) = header.split_once('<')?;
    let name = name.trim();
    let name = name
        .strip_prefix('"')
        .and_then(|n| n.strip_suffix('"'))
        .map_or(name.to_string(), |n| {
            n.replace("\\\"", "\"").replace("\\\\", "\\")
        });
    (!name.is_empty()).then_some(name)
}

/// Loss counters of one received stream (what a recovered recording.json may hold).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StreamLoss {
    pub packets_received: u64,
    pub packets_lost: u64,
    pub duration_seconds: f64,
}

/// `packetLossBursts` and `packetGap` (RFC 3611 §4.7.2 burst/gap metrics, which CMS
/// reports): mean duration in seconds and loss density in percent of each. With only loss
/// counts and no loss pattern, every loss counts as isolated: no burst (0 s, 0 %), one gap
/// as long as the stream holding all of the loss. The fallback for recordings whose
/// recording.json predates the per-stream accounting.
pub fn loss_statistics(s: StreamLoss) -> (BurstStats, BurstStats) {
    let expected = s.packets_received + s.packets_lost;
    let density = if expected == 0 {
        0.0
    } else {
        s.packets_lost as f64 * 100.0 / expected as f64
    };
    let bursts = BurstStats::default();
    let gap = BurstStats {
        duration_seconds: s.duration_seconds.max(0.0),
        density_percent: density,
    };
    (bursts, gap)
}

/// The CMS burst/gap pair from the stream's RFC 3611 accounting (`media::accounting`).
fn period(p: &PeriodStats) -> BurstStats {
    BurstStats {
        duration_seconds: p.duration_seconds,
        density_percent: p.density_percent,
    }
}

fn rx_audio(s: &StreamEntry) -> RxAudio {
    RxAudio {
        codec: cms_codec(s.codec.as_deref().unwrap_or_default()),
        packets_received: s.packets_received,
        packets_lost: s.packets_lost,
        packet_loss_bursts: Some(period(&s.packet_loss_bursts)),
        packet_gap: Some(period(&s.packet_gap)),
        jitter_ms: Some(s.jitter_ms),
    }
}

/// A recovered stream's burst/gap pair: the accounting its recording.json kept, else the
/// loss counts alone.
fn recovered_loss(s: &RecoveredStream, loss: StreamLoss) -> (BurstStats, BurstStats) {
    let kept = |p: Option<KeptPeriod>| {
        p.map(|p| BurstStats {
            duration_seconds: p.duration_seconds,
            density_percent: p.density_percent,
        })
    };
    match (kept(s.packet_loss_bursts), kept(s.packet_gap)) {
        (Some(b), Some(g)) => (b, g),
        _ => loss_statistics(loss),
    }
}

fn kind(doc: &RecordingDocument) -> Option<String> {
    serde_json::to_value(doc.kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
}

/// `callLegStart` when the leg is answered.
pub fn call_leg_start(doc: &RecordingDocument, from_uri: &str, call: &str) -> CdrEvent {
    CdrEvent::CallLegStart(CallLegStart {
        call_leg: doc.call_leg_id.clone(),
        remote_party: from_uri.to_string(),
        remote_address: from_uri.to_string(),
        local_address: doc.request_uri.clone(),
        display_name: display_name(&doc.from),
        sip_call_id: doc.sip_call_id.clone(),
        call: Some(call.to_string()),
        recorder_kind: kind(doc),
    })
}

/// `callLegUpdate` with `state` connected: the leg is set up (guide §4.5).
pub fn call_leg_connected(doc: &RecordingDocument, from_uri: &str, call: &str) -> CdrEvent {
    CdrEvent::CallLegUpdate(CallLegUpdate {
        call_leg: doc.call_leg_id.clone(),
        connected: true,
        deactivated: false,
        remote_address: Some(from_uri.to_string()),
        call: Some(call.to_string()),
        sip_call_id: Some(doc.sip_call_id.clone()),
        display_name: Some(display_name(&doc.from).unwrap_or_default()),
    })
}

/// `callLegUpdate` on pause (`deactivated` true) and resume.
pub fn call_leg_paused(doc: &RecordingDocument, paused: bool) -> CdrEvent {
    CdrEvent::CallLegUpdate(CallLegUpdate {
        call_leg: doc.call_leg_id.clone(),
        connected: true,
        deactivated: paused,
        sip_call_id: Some(doc.sip_call_id.clone()),
        ..CallLegUpdate::default()
    })
}

/// The CMS reason code for how the recording ended.
pub fn end_reason(reason: EndReason, api_stopped: bool) -> CallLegEndReason {
    if api_stopped {
        CallLegEndReason::ApiInitiatedTeardown
    } else {
        CallLegEndReason::from_end_reason(reason.as_str())
    }
}

/// Seconds of `duration` the recording spent paused (a pause still open ends at `now`).
fn paused_seconds(doc: &RecordingDocument, now: OffsetDateTime) -> f64 {
    let at = |s: &str| OffsetDateTime::parse(s, &Rfc3339).ok();
    doc.pauses
        .iter()
        .filter_map(|p| {
            let start = at(&p.started_at)?;
            let end = p.ended_at.as_deref().and_then(at).unwrap_or(now);
            Some((end - start).as_seconds_f64().max(0.0))
        })
        .sum()
}

/// `callLegEnd` when the recording ends.
pub fn call_leg_end(
    doc: &RecordingDocument,
    reason: EndReason,
    api_stopped: bool,
    duration_seconds: u64,
) -> CdrEvent {
    let paused = paused_seconds(doc, OffsetDateTime::now_utc());
    let reason = end_reason(reason, api_stopped);
    CdrEvent::CallLegEnd(CallLegEnd {
        call_leg: doc.call_leg_id.clone(),
        reason,
        remote_teardown: reason == CallLegEndReason::RemoteTeardown,
        encrypted_media: doc.streams.iter().any(|s| s.encrypted),
        unencrypted_media: doc.streams.iter().any(|s| !s.encrypted),
        duration_seconds,
        activated_seconds: Some((duration_seconds as f64 - paused).max(0.0).round() as u64),
        sip_call_id: doc.sip_call_id.clone(),
        rx_audio: doc.streams.iter().map(rx_audio).collect(),
    })
}

/// The records that close a recording startup recovery finalized: `callLegEnd` with
/// reason `error` and `recordingEnd` with `recovered`, stamped with the recording's
/// `ended_at`.
pub fn recovered(doc: &RecoveredDocument) -> (OffsetDateTime, Vec<CdrEvent>) {
    let at = OffsetDateTime::parse(&doc.ended_at, &Rfc3339)
        .unwrap_or_else(|_| OffsetDateTime::now_utc());
    let started = OffsetDateTime::parse(&doc.started_at, &Rfc3339).ok();
    let duration_seconds = started.map_or(0, |s| (at - s).whole_seconds().max(0) as u64);
    let files: Vec<String> = doc
        .streams
        .iter()
        .filter_map(|s| s.file.clone())
        .chain(doc.mixed_file.clone())
        .collect();
    let mut records = Vec::new();
    if !doc.call_leg_id.is_empty() {
        records.push(CdrEvent::CallLegEnd(CallLegEnd {
            call_leg: doc.call_leg_id.clone(),
            reason: CallLegEndReason::Error,
            remote_teardown: false,
            encrypted_media: doc.streams.iter().any(|s| s.encrypted),
            unencrypted_media: doc.streams.iter().any(|s| !s.encrypted),
            duration_seconds,
            activated_seconds: None,
            sip_call_id: doc.sip_call_id.clone(),
            rx_audio: doc
                .streams
                .iter()
                .map(|s| recovered_rx_audio(s, duration_seconds))
                .collect(),
        }));
    }
    records.push(CdrEvent::RecordingEnd(super::model::RecordingEnd {
        recording_id: doc.recording_id.clone(),
        end_reason: "recovered".to_string(),
        files,
        duration_seconds,
        storage: None,
    }));
    (at, records)
}

/// `rxAudio` of a recovered stream; a stream without a repaired duration is taken to have
/// lasted the whole recording.
fn recovered_rx_audio(s: &RecoveredStream, recording_seconds: u64) -> RxAudio {
    let (bursts, gap) = recovered_loss(
        s,
        StreamLoss {
            packets_received: s.packets_received,
            packets_lost: s.packets_lost,
            duration_seconds: s.duration_seconds.unwrap_or(recording_seconds as f64),
        },
    );
    RxAudio {
        codec: cms_codec(s.codec.as_deref().unwrap_or_default()),
        packets_received: s.packets_received,
        packets_lost: s.packets_lost,
        packet_loss_bursts: Some(bursts),
        packet_gap: Some(gap),
        jitter_ms: s.jitter_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codec_names_as_cms_spells_them() {
        for (sdp, cms) in [
            ("PCMU", "g711u"),
            ("PCMA", "g711a"),
            ("G722", "g722"),
            ("G729", "g729"),
            ("opus", "opus"),
            ("G7221", "g722_1"),
            ("L16", "l16"),
        ] {
            assert_eq!(cms_codec(sdp), cms, "{sdp}");
        }
    }

    #[test]
    fn display_names() {
        assert_eq!(
            display_name("\"Alice \\\"A\\\"\" <sip:a@h>;tag=1").as_deref(),
            Some("Alice \"A\"")
        );
        assert_eq!(display_name("Bob <sip:b@h>").as_deref(), Some("Bob"));
        assert_eq!(display_name("<sip:c@h>;tag=2"), None);
        assert_eq!(display_name("sip:d@h"), None);
    }

    #[test]
    fn loss_without_a_pattern_is_one_gap() {
        let (bursts, gap) = loss_statistics(StreamLoss {
            packets_received: 990,
            packets_lost: 10,
            duration_seconds: 20.0,
        });
        assert_eq!(bursts, BurstStats::default());
        assert_eq!(gap.duration_seconds, 20.0);
        assert!((gap.density_percent - 1.0).abs() < 1e-9);
        let (_, empty) = loss_statistics(StreamLoss::default());
        assert_eq!(empty.density_percent, 0.0);
    }

    fn recovered_of(doc: serde_json::Value) -> Vec<CdrEvent> {
        recovered(&RecoveredDocument::read(&doc)).1
    }

    #[test]
    fn recovered_documents_from_newer_and_older_recorders_give_their_cdrs() {
        // Newer: fields this recorder does not know, at the top and in a stream, and a
        // burst figure with more keys than it reads.
        let newer = recovered_of(serde_json::json!({
            "recording_id": "r1", "call_leg_id": "leg1", "sip_call_id": "c1",
            "started_at": "2026-01-01T10:00:00.000Z", "ended_at": "2026-01-01T10:00:30.000Z",
            "mixed_file": "stereo.wav", "storage": {"bucket": "b"},
            "streams": [{
                "file": "stream-0.wav", "codec": "PCMA", "packets_received": 1500,
                "packets_lost": 3, "duration_seconds": 30.0, "jitter_ms": 2.5,
                "encrypted": true, "uploaded": true,
                "packet_loss_bursts": {"count": 1, "duration_seconds": 0.06, "density_percent": 50.0},
                "packet_gap": {"count": 2, "duration_seconds": 14.9, "density_percent": 0.1},
            }],
        }));
        let [CdrEvent::CallLegEnd(end), CdrEvent::RecordingEnd(rec)] = newer.as_slice() else {
            panic!("callLegEnd and recordingEnd: {newer:?}");
        };
        assert_eq!(
            (end.call_leg.as_str(), end.sip_call_id.as_str()),
            ("leg1", "c1")
        );
        assert_eq!(end.reason, CallLegEndReason::Error);
        assert_eq!(end.duration_seconds, 30);
        assert!(end.encrypted_media && !end.unencrypted_media);
        let rx = &end.rx_audio[0];
        assert_eq!(
            (rx.codec.as_str(), rx.packets_received, rx.packets_lost),
            ("g711a", 1500, 3)
        );
        assert_eq!(rx.jitter_ms, Some(2.5));
        assert_eq!(
            rx.packet_loss_bursts,
            Some(BurstStats {
                duration_seconds: 0.06,
                density_percent: 50.0
            })
        );
        assert_eq!(
            rx.packet_gap,
            Some(BurstStats {
                duration_seconds: 14.9,
                density_percent: 0.1
            })
        );
        assert_eq!(rec.recording_id, "r1");
        assert_eq!(rec.end_reason, "recovered");
        assert_eq!(rec.files, ["stream-0.wav", "stereo.wav"]);

        // Older: no RFC 3611 accounting, no duration, no jitter, and one field in a shape
        // this recorder would not write: the loss counts alone give the figures.
        let older = recovered_of(serde_json::json!({
            "recording_id": "r2", "call_leg_id": "leg2", "sip_call_id": "c2",
            "started_at": "2026-01-01T10:00:00.000Z", "ended_at": "2026-01-01T10:00:20.000Z",
            "streams": [{"file": "stream-0.wav", "codec": "PCMU", "packets_received": 990,
                         "packets_lost": 10, "encrypted": "no"}],
        }));
        let [CdrEvent::CallLegEnd(end), CdrEvent::RecordingEnd(rec)] = older.as_slice() else {
            panic!("callLegEnd and recordingEnd: {older:?}");
        };
        assert!(!end.encrypted_media && end.unencrypted_media);
        let rx = &end.rx_audio[0];
        assert_eq!(rx.jitter_ms, None);
        assert_eq!(rx.packet_loss_bursts, Some(BurstStats::default()));
        let gap = rx.packet_gap.expect("gap");
        assert_eq!(gap.duration_seconds, 20.0, "the whole recording");
        assert!((gap.density_percent - 1.0).abs() < 1e-9);
        assert_eq!(rec.files, ["stream-0.wav"]);
    }

    #[test]
    fn recovered_document_without_a_call_leg_gets_only_its_recording_end() {
        let records = recovered_of(serde_json::json!({"recording_id": "r3", "streams": 7}));
        let [CdrEvent::RecordingEnd(rec)] = records.as_slice() else {
            panic!("recordingEnd alone: {records:?}");
        };
        assert_eq!((rec.recording_id.as_str(), rec.duration_seconds), ("r3", 0));
        assert!(rec.files.is_empty());
    }
}
