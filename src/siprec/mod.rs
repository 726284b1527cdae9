//! RFC 7866 SIPREC bodies: multipart/mixed splitting and (later) RFC 7865 metadata.
//!
//! CONTRACT — the rest of the crate codes against these names.

mod multipart;

pub use multipart::*;
