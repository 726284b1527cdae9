//! Why a recording could not be prepared, by what failed, and the SIP answer that follows.

use crate::media::srtp::SrtpError;
use crate::recording::writer::WriterClosed;
use crate::sip::uas::PrepareError;
use std::io;

/// A recording's directory, files, RTP sockets, decoders or SRTP keys could not be set up
/// before the INVITE was answered. Log it with [`crate::error::Chain`] to see the cause.
#[derive(Debug, thiserror::Error)]
pub enum PrepareFailure {
    /// The recording's directory or files (recording.json, metadata).
    #[error("recording files")]
    Disk(#[source] io::Error),
    /// The RTP (or RTCP, one above) port the answer gave could not be bound.
    #[error("RTP port {port}")]
    RtpPort {
        port: u16,
        #[source]
        source: io::Error,
    },
    /// Nothing in the answer this recorder can decode or store.
    #[error("codec: {0}")]
    Codec(String),
    /// The two streams' rates cannot be interleaved into stereo.wav.
    #[error("stereo file")]
    Stereo(#[source] io::Error),
    /// The SRTP key the answer accepted is unusable.
    #[error("SRTP key")]
    Srtp(#[source] SrtpError),
    /// The WAV writer has stopped: the recorder is shutting down.
    #[error("WAV file")]
    Writer(#[source] WriterClosed),
}

impl PrepareFailure {
    /// What the UAS answers: 503 when another recorder could take the call (disk full,
    /// port taken), 488 when nothing offered can be recorded, 500 for our own failures.
    pub fn verdict(&self) -> PrepareError {
        match self {
            PrepareFailure::Disk(e) if e.kind() == io::ErrorKind::StorageFull => {
                PrepareError::Unavailable
            }
            PrepareFailure::RtpPort { source, .. } if source.kind() == io::ErrorKind::AddrInUse => {
                PrepareError::Unavailable
            }
            PrepareFailure::Codec(_) => PrepareError::NotAcceptable,
            _ => PrepareError::Failed,
        }
    }

    /// The SIP status of the final response.
    pub fn status(&self) -> u16 {
        self.verdict().status()
    }
}

impl From<io::Error> for PrepareFailure {
    fn from(e: io::Error) -> Self {
        PrepareFailure::Disk(e)
    }
}

impl From<WriterClosed> for PrepareFailure {
    fn from(e: WriterClosed) -> Self {
        PrepareFailure::Writer(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Chain;

    #[test]
    fn status_by_who_is_at_fault() {
        let full = PrepareFailure::Disk(io::Error::from_raw_os_error(28));
        assert_eq!(full.status(), 503);
        let denied = PrepareFailure::Disk(io::Error::from(io::ErrorKind::PermissionDenied));
        assert_eq!(denied.status(), 500);
        let taken = PrepareFailure::RtpPort {
            port: 30000,
            source: io::Error::from(io::ErrorKind::AddrInUse),
        };
        assert_eq!(taken.status(), 503);
        let refused = PrepareFailure::RtpPort {
            port: 30000,
            source: io::Error::from(io::ErrorKind::AddrNotAvailable),
        };
        assert_eq!(refused.status(), 500);
        assert_eq!(PrepareFailure::Codec("none".into()).status(), 488);
        assert_eq!(
            PrepareFailure::Srtp(SrtpError::BadKey {
                expected: 30,
                got: 2
            })
            .status(),
            500
        );
        assert_eq!(PrepareFailure::Writer(WriterClosed).status(), 500);
        let rates = PrepareFailure::Stereo(io::Error::from(io::ErrorKind::InvalidInput));
        assert_eq!(rates.status(), 500);
    }

    #[test]
    fn message_names_the_port() {
        let taken = PrepareFailure::RtpPort {
            port: 30000,
            source: io::Error::other("address in use"),
        };
        assert_eq!(Chain(&taken).to_string(), "RTP port 30000: address in use");
    }
}
