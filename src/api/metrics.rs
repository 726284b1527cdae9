//! Prometheus text exposition, rendered from [`Telemetry`] on each scrape. Written by hand:
//! a dozen series do not need a metrics registry in the hot path.

use super::ApiState;
use crate::telemetry::Telemetry;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use std::fmt::Write;
use std::sync::atomic::Ordering;

pub async fn render(State(s): State<ApiState>) -> impl IntoResponse {
    let t: &Telemetry = &s.telemetry;
    // Active recordings' counters, asked from their tasks for this scrape.
    let active = t.current_active().await;
    let mut out = String::with_capacity(2048);
    state_gauges(&mut out, t);
    event_counters(&mut out, t);
    sip_counters(&mut out, t);
    rtp_by_codec(&mut out, t, &active);
    cdr_receivers(&mut out, t);
    if let Some(storage) = t.storage.get() {
        object_storage(&mut out, storage);
    }
    if let Some(writer) = t.writer.get() {
        wav_writer(&mut out, &writer.stats());
    }
    rtp_undecodable(&mut out, t, &active);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}

/// One unlabelled series with its HELP and TYPE lines.
fn series(out: &mut String, kind: &str, name: &str, help: &str, value: impl std::fmt::Display) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
    );
}

/// The HELP and TYPE lines of a labelled counter family; its series follow.
fn counter_family(out: &mut String, name: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
}

/// What the recorder holds right now: recordings, dialogs, ports, drain and disk state.
fn state_gauges(out: &mut String, t: &Telemetry) {
    let mut gauge = |name: &str, help: &str, value: f64| series(out, "gauge", name, help, value);
    gauge(
        "sip_recorder_active_recordings",
        "Recordings in progress.",
        t.active_recordings() as f64,
    );
    gauge(
        "sip_recorder_sip_sessions",
        "SIP dialogs held (incl. being answered).",
        t.active_sessions.load(Ordering::Relaxed) as f64,
    );
    gauge(
        "sip_recorder_free_rtp_ports",
        "RTP ports left in the pool.",
        t.free_rtp_ports.load(Ordering::Relaxed) as f64,
    );
    gauge(
        "sip_recorder_draining",
        "1 while draining after SIGTERM.",
        f64::from(u8::from(t.is_draining())),
    );
    gauge(
        "sip_recorder_disk_full",
        "1 while new recordings are refused for disk space.",
        f64::from(u8::from(t.disk_full.load(Ordering::Relaxed))),
    );
    gauge(
        "sip_recorder_disk_free_bytes",
        "Free bytes on the recordings disk.",
        t.disk_free_bytes.load(Ordering::Relaxed) as f64,
    );
    gauge(
        "sip_recorder_disk_used_percent",
        "Used percent of the recordings disk.",
        t.disk_used_percent.load(Ordering::Relaxed) as f64,
    );
}

/// Recordings started, and those that ended silent, incomplete or with unreadable metadata.
fn event_counters(out: &mut String, t: &Telemetry) {
    for (name, help, value) in [
        (
            "sip_recorder_recordings_total",
            "Recordings started (calls per second = rate of this).",
            &t.recordings_started,
        ),
        (
            "sip_recorder_silent_streams_total",
            "Streams that ended without sound (one-way or silent audio).",
            &t.silent_streams,
        ),
        (
            "sip_recorder_incomplete_recordings_total",
            "Recordings that ended with loss, media gaps or missing packets.",
            &t.incomplete_recordings,
        ),
        (
            "sip_recorder_siprec_metadata_unreadable_total",
            "SIPREC metadata documents that could not be read (calls recorded anyway).",
            &t.metadata_unreadable,
        ),
    ] {
        series(out, "counter", name, help, value.load(Ordering::Relaxed));
    }
}

/// SIP responses by status code and requests taken despite an oddity by kind.
fn sip_counters(out: &mut String, t: &Telemetry) {
    let name = "sip_recorder_sip_responses_total";
    counter_family(out, name, "SIP responses sent, by status code.");
    for (code, n) in t.responses() {
        let _ = writeln!(out, "{name}{{code=\"{code}\"}} {n}");
    }
    let name = "sip_recorder_sip_tolerances_total";
    counter_family(
        out,
        name,
        "SIP requests taken despite an oddity (SPEC 3), by kind.",
    );
    for (kind, n) in t.sip_tolerances() {
        let _ = writeln!(out, "{name}{{kind=\"{kind}\"}} {n}");
    }
}

/// RTP packets received, lost and late, one family each, by codec.
fn rtp_by_codec(out: &mut String, t: &Telemetry, active: &[serde_json::Value]) {
    let rtp = t.rtp_by_codec(active);
    for (name, help, pick) in [
        (
            "sip_recorder_rtp_packets_received_total",
            "RTP packets received, by codec.",
            0,
        ),
        (
            "sip_recorder_rtp_packets_lost_total",
            "RTP packets lost, by codec.",
            1,
        ),
        (
            "sip_recorder_rtp_packets_late_total",
            "RTP packets too late for the reorder window, by codec.",
            2,
        ),
    ] {
        counter_family(out, name, help);
        for (codec, c) in &rtp {
            let v = [c.received, c.lost, c.late][pick];
            // The codec name comes from the SDP: keep it from breaking the label syntax.
            let codec = codec.replace(['"', '\\', '\n'], "_");
            let _ = writeln!(out, "{name}{{codec=\"{codec}\"}} {v}");
        }
    }
}

/// RTP packets of a payload type no decoder takes, by payload type.
fn rtp_undecodable(out: &mut String, t: &Telemetry, active: &[serde_json::Value]) {
    let name = "sip_recorder_rtp_packets_undecodable_total";
    counter_family(
        out,
        name,
        "RTP packets of a payload type no decoder takes (their time is silence in the file), by payload type.",
    );
    for (pt, n) in t.rtp_undecodable(active) {
        let _ = writeln!(out, "{name}{{payload_type=\"{pt}\"}} {n}");
    }
}

/// Per CDR receiver: up (last attempt succeeded), pending records, delivered and failed.
fn cdr_receivers(out: &mut String, t: &Telemetry) {
    let receivers = t.cdr_receivers();
    let _ = writeln!(
        out,
        "# HELP sip_recorder_cdr_spool_depth CDRs waiting for delivery, all receivers.\n\
         # TYPE sip_recorder_cdr_spool_depth gauge\nsip_recorder_cdr_spool_depth {}",
        receivers.iter().map(|r| r.pending()).sum::<usize>()
    );
    for (name, kind, help, value) in [
        (
            "sip_recorder_cdr_receiver_up",
            "gauge",
            "1 while the CDR receiver's last delivery succeeded.",
            &(|r: &crate::cdr::ReceiverHealth| u64::from(r.consecutive_failures() == 0))
                as &dyn Fn(&crate::cdr::ReceiverHealth) -> u64,
        ),
        (
            "sip_recorder_cdr_receiver_pending",
            "gauge",
            "CDRs waiting for this receiver.",
            &|r| r.pending() as u64,
        ),
        (
            "sip_recorder_cdr_receiver_consecutive_failures",
            "gauge",
            "Failed delivery attempts since the last success.",
            &|r| r.consecutive_failures(),
        ),
        (
            "sip_recorder_cdr_delivered_total",
            "counter",
            "CDRs acknowledged by this receiver.",
            &|r| r.delivered(),
        ),
        (
            "sip_recorder_cdr_delivery_failures_total",
            "counter",
            "Failed delivery attempts to this receiver.",
            &|r| r.failures(),
        ),
    ] {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for r in receivers {
            let label = r.receiver.replace(['"', '\\', '\n'], "_");
            let _ = writeln!(out, "{name}{{receiver=\"{label}\"}} {}", value(r));
        }
    }
}

/// The WAV writer: files open, audio waiting to be written (it grows while the disk
/// stalls), and what was lost to failed creates and writes.
fn wav_writer(out: &mut String, w: &crate::recording::writer::WriterStats) {
    for (name, kind, help, value) in [
        (
            "sip_recorder_wav_files_open",
            "gauge",
            "WAV files being written.",
            w.files_open,
        ),
        (
            "sip_recorder_wav_pending_bytes",
            "gauge",
            "Audio bytes handed to the WAV writer and not yet written.",
            w.pending_bytes,
        ),
        (
            "sip_recorder_wav_open_errors_total",
            "counter",
            "WAV files that could not be created.",
            w.open_errors,
        ),
        (
            "sip_recorder_wav_write_errors_total",
            "counter",
            "Failed WAV writes (their audio is lost).",
            w.write_errors,
        ),
        (
            "sip_recorder_wav_samples_dropped_total",
            "counter",
            "Samples not written: a failed create or write, or the 4 GiB WAV limit.",
            w.samples_dropped,
        ),
        (
            "sip_recorder_wav_samples_shed_total",
            "counter",
            "Samples of audio shed while the writer was further behind than recording.max_pending_audio_mib; their files get silence in their place.",
            w.samples_shed,
        ),
    ] {
        series(out, kind, name, help, value);
    }
}

/// `[storage]`: uploads done, failed by reason, queued, bytes, the oldest queued job's age.
fn object_storage(out: &mut String, s: &crate::storage::StorageStats) {
    for (name, kind, help, value) in [
        (
            "sip_recorder_storage_objects_uploaded_total",
            "counter",
            "Objects uploaded to object storage and verified.",
            s.objects_uploaded.load(Ordering::Relaxed),
        ),
        (
            "sip_recorder_storage_recordings_uploaded_total",
            "counter",
            "Recordings whose every object is uploaded and verified.",
            s.recordings_uploaded.load(Ordering::Relaxed),
        ),
        (
            "sip_recorder_storage_bytes_uploaded_total",
            "counter",
            "Bytes uploaded and verified.",
            s.bytes_uploaded.load(Ordering::Relaxed),
        ),
        (
            "sip_recorder_storage_queued_recordings",
            "gauge",
            "Recordings waiting in the upload queue (retries included).",
            s.queued.load(Ordering::Relaxed),
        ),
        (
            "sip_recorder_storage_oldest_queued_seconds",
            "gauge",
            "Age of the oldest recording in the upload queue; 0 when empty.",
            s.oldest_queued_age_secs(),
        ),
    ] {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    }
    let name = "sip_recorder_storage_upload_failures_total";
    let _ = writeln!(
        out,
        "# HELP {name} Failed upload steps (each is retried), by reason.\n# TYPE {name} counter"
    );
    for (reason, n) in s.failures() {
        let _ = writeln!(out, "{name}{{reason=\"{reason}\"}} {n}");
    }
}
