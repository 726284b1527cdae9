//! RFC 4733 telephone-event (DTMF) payloads, folded into one event per key press.
//!
//! A sender repeats an event's packets every ~50 ms with a growing duration, all carrying the
//! event's start timestamp, and ends it with (usually three) packets with the E bit set. The
//! tracker reports a digit once: at its first end packet, or — when every end packet was
//! lost — as soon as a new event starts or the stream finishes.

/// One decoded telephone-event payload (RFC 4733 §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// Event code: 0–9 digits, 10 `*`, 11 `#`, 12–15 `A`–`D`, 16 flash.
    pub event: u8,
    /// The E bit: this packet ends the event.
    pub end: bool,
    /// Power level in −dBm0.
    pub volume: u8,
    /// Duration so far, in RTP clock units.
    pub duration: u16,
}

impl TelephoneEvent {
    /// Parses the first 4-byte event of a payload; `None` when it is shorter.
    pub fn parse(payload: &[u8]) -> Option<TelephoneEvent> {
        let b = payload.get(..4)?;
        Some(TelephoneEvent {
            event: b[0],
            end: b[1] & 0x80 != 0,
            volume: b[1] & 0x3F,
            duration: u16::from_be_bytes([b[2], b[3]]),
        })
    }
}

/// The character of an event code (`'!'` for flash, as in SIP INFO dtmf-relay); `None` for
/// codes that are not DTMF (tones, line events).
pub fn digit_char(event: u8) -> Option<char> {
    Some(match event {
        0..=9 => char::from(b'0' + event),
        10 => '*',
        11 => '#',
        12..=15 => char::from(b'A' + (event - 12)),
        16 => '!',
        _ => return None,
    })
}

/// A finished key press.
#[derive(Debug, Clone, PartialEq)]
pub struct DtmfEvent {
    /// `0`–`9`, `*`, `#`, `A`–`D`, or `!` for flash.
    pub digit: char,
    /// Offset of the event's first packet from the recording start, in seconds.
    pub at_seconds: f64,
    /// Duration as reported by the sender.
    pub duration_ms: u32,
    /// RTP timestamp of the event start.
    pub rtp_timestamp: u32,
}

#[derive(Debug, Clone, Copy)]
struct Open {
    timestamp: u32,
    event: u8,
    duration: u16,
    at_seconds: f64,
}

/// Folds telephone-event packets of one stream into [`DtmfEvent`]s.
#[derive(Debug)]
pub struct DtmfTracker {
    clock_rate: u32,
    open: Option<Open>,
    /// Start timestamp of the last event reported, to drop its retransmitted end packets.
    last_done: Option<u32>,
    done: Vec<DtmfEvent>,
}

/// Reported events waiting for [`DtmfTracker::take`]; beyond this the oldest are dropped so
/// that a caller that never collects them cannot make memory grow.
const MAX_PENDING: usize = 256;

impl DtmfTracker {
    /// A tracker for events on an RTP clock of `clock_rate` Hz (8000 for `telephone-event/8000`).
    pub fn new(clock_rate: u32) -> Self {
        DtmfTracker {
            clock_rate: clock_rate.max(1),
            open: None,
            last_done: None,
            done: Vec::new(),
        }
    }

    /// Feeds one telephone-event packet; `at_seconds` is its arrival offset from the start.
    pub fn push(&mut self, timestamp: u32, payload: &[u8], at_seconds: f64) {
        let Some(ev) = TelephoneEvent::parse(payload) else {
            return;
        };
        if self.last_done == Some(timestamp) {
            return; // retransmitted end packet of an event already reported
        }
        match self.open {
            Some(ref mut open) if open.timestamp == timestamp => {
                open.duration = open.duration.max(ev.duration);
            }
            _ => {
                // A new event; one still open lost all its end packets.
                self.close();
                self.open = Some(Open {
                    timestamp,
                    event: ev.event,
                    duration: ev.duration,
                    at_seconds,
                });
            }
        }
        if ev.end {
            self.close();
        }
    }

    /// Reports the open event, if any (end of stream, or its end packets were lost).
    pub fn close(&mut self) {
        let Some(open) = self.open.take() else {
            return;
        };
        self.last_done = Some(open.timestamp);
        let Some(digit) = digit_char(open.event) else {
            return;
        };
        if self.done.len() >= MAX_PENDING {
            self.done.remove(0);
        }
        let duration_ms = u64::from(open.duration) * 1000 / u64::from(self.clock_rate);
        self.done.push(DtmfEvent {
            digit,
            at_seconds: open.at_seconds,
            // At most 65535 * 1000 (a 1 Hz clock), so it fits.
            duration_ms: u32::try_from(duration_ms).unwrap_or(u32::MAX),
            rtp_timestamp: open.timestamp,
        });
    }

    /// Takes the events reported so far.
    pub fn take(&mut self) -> Vec<DtmfEvent> {
        std::mem::take(&mut self.done)
    }

    /// Finished events wait for [`DtmfTracker::take`].
    pub fn has_done(&self) -> bool {
        !self.done.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(event: u8, end: bool, duration: u16) -> [u8; 4] {
        let d = duration.to_be_bytes();
        [event, (u8::from(end) << 7) | 10, d[0], d[1]]
    }

    #[test]
    fn parses_payload() {
        let ev = TelephoneEvent::parse(&[11, 0x8A, 0x03, 0x20]).expect("4 bytes");
        assert_eq!(
            ev,
            TelephoneEvent {
                event: 11,
                end: true,
                volume: 10,
                duration: 800
            }
        );
        assert_eq!(TelephoneEvent::parse(&[1, 2, 3]), None);
    }

    #[test]
    fn digit_chars() {
        let all: String = (0..=16).filter_map(digit_char).collect();
        assert_eq!(all, "0123456789*#ABCD!");
        assert_eq!(digit_char(17), None);
    }

    #[test]
    fn one_event_per_digit_with_retransmitted_ends() {
        let mut t = DtmfTracker::new(8000);
        for (i, d) in [400u16, 800, 1200].iter().enumerate() {
            t.push(1000, &payload(5, false, *d), 1.0 + i as f64 * 0.05);
        }
        for _ in 0..3 {
            t.push(1000, &payload(5, true, 1600), 1.2);
        }
        // Next digit, '#'.
        t.push(9000, &payload(11, false, 160), 2.0);
        t.push(9000, &payload(11, true, 800), 2.1);
        t.push(9000, &payload(11, true, 800), 2.1);
        let events = t.take();
        assert_eq!(
            events,
            vec![
                DtmfEvent {
                    digit: '5',
                    at_seconds: 1.0,
                    duration_ms: 200,
                    rtp_timestamp: 1000
                },
                DtmfEvent {
                    digit: '#',
                    at_seconds: 2.0,
                    duration_ms: 100,
                    rtp_timestamp: 9000
                },
            ]
        );
        assert!(t.take().is_empty());
    }

    #[test]
    fn lost_end_packets_and_end_of_stream() {
        let mut t = DtmfTracker::new(8000);
        t.push(100, &payload(1, false, 400), 0.5);
        t.push(900, &payload(2, false, 400), 0.7); // '1' never ended
        t.close(); // stream ends while '2' is held
        t.push(2000, &payload(200, true, 400), 0.9); // not a DTMF code
        let digits: String = t.take().iter().map(|e| e.digit).collect();
        assert_eq!(digits, "12");
        t.push(5, &[1], 1.0); // too short: ignored
        assert!(t.take().is_empty());
    }

    #[test]
    fn pending_events_are_bounded() {
        let mut t = DtmfTracker::new(8000);
        for i in 0..1000u32 {
            t.push(i * 1000, &payload(1, true, 80), 0.0);
        }
        assert_eq!(t.take().len(), MAX_PENDING);
    }
}
