//! Recording sessions: the state machine, recording.json, directory layout, and the
//! per-recording task that owns them.

use serde::Serialize;

/// Why a recording ended (SPEC §5 `end_reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    Bye,
    AckTimeout,
    SessionTimeout,
    MediaTimeout,
    Shutdown,
    Recovered,
    Error,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Bye => "bye",
            EndReason::AckTimeout => "ack_timeout",
            EndReason::SessionTimeout => "session_timeout",
            EndReason::MediaTimeout => "media_timeout",
            EndReason::Shutdown => "shutdown",
            EndReason::Recovered => "recovered",
            EndReason::Error => "error",
        }
    }
}

pub mod group;
pub mod layout;
pub mod mix;
pub mod participants;
pub mod prepare;
pub mod recovery;
pub mod session;
pub mod startup;
pub mod stream;
pub mod task;
pub mod wav;
pub mod workers;
pub mod writer;
