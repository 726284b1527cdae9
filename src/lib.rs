//! sip-recorder: a SIP recording server (SRS).
//!
//! Layers (see docs/ARCHITECTURE.md): `sip`, `sdp` and `siprec` are sans-IO protocol cores;
//! `recording` owns recording sessions and their files; `net` holds the socket edges;
//! `server` wires them together.
#![forbid(unsafe_code)]

pub mod api;
pub mod cdr;
pub mod config;
pub mod disk;
pub mod error;
pub mod logging;
pub mod media;
pub mod net;
pub mod recording;
pub mod sdp;
pub mod server;
pub mod sip;
pub mod siprec;
pub mod storage;
pub mod telemetry;
