//! Prometheus text exposition, rendered from [`Telemetry`] on each scrape. Written by hand:
//! a dozen series do not need a metrics registry in the hot path.

use super::ApiState;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use std::fmt::Write;
use std::sync::atomic::Ordering;

pub async fn render(State(s): State<ApiState>) -> impl IntoResponse {
    let t = &s.telemetry;
    let mut out = String::with_capacity(2048);
    let mut gauge = |name: &str, help: &str, value: f64| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
        );
    };
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
    let _ = writeln!(
        out,
        "# HELP sip_recorder_recordings_total Recordings started (calls per second = rate of this).\n\
         # TYPE sip_recorder_recordings_total counter\nsip_recorder_recordings_total {}",
        t.recordings_started.load(Ordering::Relaxed)
    );
    let _ = writeln!(
        out,
        "# HELP sip_recorder_sip_responses_total SIP responses sent, by status code.\n# TYPE sip_recorder_sip_responses_total counter"
    );
    for (code, n) in t.responses() {
        let _ = writeln!(
            out,
            "sip_recorder_sip_responses_total{{code=\"{code}\"}} {n}"
        );
    }
    let rtp = t.rtp_by_codec();
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
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for (codec, c) in &rtp {
            let v = [c.received, c.lost, c.late][pick];
            let codec = codec.replace(['"', '\\', '\n'], "_");
            let _ = writeln!(out, "{name}{{codec=\"{codec}\"}} {v}");
        }
    }
    let _ = writeln!(
        out,
        "# HELP sip_recorder_rtp_packets_undecodable_total RTP packets of a payload type no decoder takes (their time is silence in the file), by payload type.\n# TYPE sip_recorder_rtp_packets_undecodable_total counter"
    );
    for (pt, n) in t.rtp_undecodable() {
        let _ = writeln!(
            out,
            "sip_recorder_rtp_packets_undecodable_total{{payload_type=\"{pt}\"}} {n}"
        );
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}
