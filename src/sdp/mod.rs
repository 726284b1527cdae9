//! SDP offer → answer as pure functions (SPEC §4). Port allocation is passed in.

mod answer;
pub mod codec;
pub mod crypto;
mod offer;
mod offer_out;
mod ports;
#[cfg(test)]
mod tests;

pub use answer::*;
pub use offer_out::offer_for_offerless_invite;
pub use ports::PortPool;
