//! Sans-IO SIP: wire format, transactions, dialogs and the UAS logic of a recorder.

pub mod framing;
pub mod message;
pub mod uri;
