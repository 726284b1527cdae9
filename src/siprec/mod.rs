//! RFC 7866 SIPREC bodies: multipart/mixed splitting and RFC 7865 metadata.

mod metadata;
mod multipart;

pub use metadata::*;
pub use multipart::*;
