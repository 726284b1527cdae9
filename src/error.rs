//! Printing an error with the errors that caused it.

use std::error::Error;
use std::fmt;

/// `error: cause: deeper cause`, for the log and the command line. A cause whose text the
/// message above already ends with (an error that prints its source inline) is not repeated.
pub struct Chain<'a>(pub &'a (dyn Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = self.0.to_string();
        let mut cause = self.0.source();
        while let Some(e) = cause {
            let more = e.to_string();
            if !text.ends_with(&more) {
                text.push_str(": ");
                text.push_str(&more);
            }
            cause = e.source();
        }
        f.write_str(&text)
    }
}

#[cfg(test)]
mod tests {
    use super::Chain;
    use std::io;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot bind SIP listener udp:127.0.0.1:5060")]
    struct Outer(#[source] io::Error);

    #[derive(Debug, thiserror::Error)]
    #[error("CDR spool /x: {0}")]
    struct Inline(#[source] io::Error);

    #[test]
    fn prints_each_cause_once() {
        let e = Outer(io::Error::new(io::ErrorKind::AddrInUse, "address in use"));
        assert_eq!(
            Chain(&e).to_string(),
            "cannot bind SIP listener udp:127.0.0.1:5060: address in use"
        );
        let e = Inline(io::Error::other("permission denied"));
        assert_eq!(Chain(&e).to_string(), "CDR spool /x: permission denied");
    }
}
