//! One delivery task per receiver: in order, in batches, one request in flight, retrying
//! forever with capped exponential backoff.
//!
//! The guide (§2, §3) counts a batch as delivered once the receiver answered `200 OK`; the
//! status line is that acknowledgement. The guide's own receiver (Appendix A) answers
//! HTTP/1.1 with no Content-Length and keeps the connection open, serving one connection at
//! a time; so a body is only read when it has a length (or is chunked), bounded in size and
//! time, and otherwise the connection is dropped right after the status line. The last
//! batch of a backlog goes with `Connection: close` so an idle connection never holds a
//! receiver that other recorders share. Anything but 2xx (4xx included: a wrong path or a
//! proxy's auth error must not lose records) is retried; the failing receiver shows in
//! [`ReceiverHealth`], which feeds `/metrics`, `/health` and the log.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::{CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, TRANSFER_ENCODING};
use reqwest::{Client, Response, StatusCode, Url};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::model::{RecordEnvelope, document};
use super::spool::{Entry, Spool};

/// First retry delay; doubled per failure up to `max_backoff`.
const INITIAL_BACKOFF: Duration = Duration::from_millis(250);

/// Most response body bytes read; receivers acknowledge with the status line.
const MAX_BODY: usize = 64 * 1024;

/// How long a response body (with a length) may take after the status line.
const BODY_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone)]
pub(crate) struct DeliveryConfig {
    pub batch_size: usize,
    pub max_backoff: Duration,
    /// The persistent instance GUID (`<records callBridge>`).
    pub instance: Arc<str>,
}

pub(crate) struct Receiver {
    pub url: Url,
    pub spool: Arc<Spool>,
    pub notify: Arc<Notify>,
    pub health: Arc<ReceiverHealth>,
}

/// Delivery state of one receiver, read by `/metrics` and `/health`.
#[derive(Debug)]
pub struct ReceiverHealth {
    /// The receiver URL without user info or query (they may hold secrets).
    pub receiver: String,
    spool: Arc<Spool>,
    delivered: AtomicU64,
    failures: AtomicU64,
    consecutive_failures: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl ReceiverHealth {
    pub(crate) fn new(url: &Url, spool: Arc<Spool>) -> ReceiverHealth {
        let mut shown = url.clone();
        let _ = shown.set_username("");
        let _ = shown.set_password(None);
        shown.set_query(None);
        ReceiverHealth {
            receiver: shown.to_string(),
            spool,
            delivered: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            consecutive_failures: AtomicU64::new(0),
            last_error: Mutex::new(None),
        }
    }

    /// Records delivered (acknowledged with 2xx) since start.
    pub fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }

    /// Failed delivery attempts since start.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Failed attempts since the last success; 0 while the receiver is healthy.
    pub fn consecutive_failures(&self) -> u64 {
        self.consecutive_failures.load(Ordering::Relaxed)
    }

    /// Records waiting for this receiver.
    pub fn pending(&self) -> usize {
        self.spool.len()
    }

    /// Why the last attempt failed, while failing.
    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn succeeded(&self, records: usize) {
        self.delivered.fetch_add(records as u64, Ordering::Relaxed);
        self.consecutive_failures.store(0, Ordering::Relaxed);
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// Returns the number of consecutive failures including this one.
    fn failed(&self, reason: &str) -> u64 {
        self.failures.fetch_add(1, Ordering::Relaxed);
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(reason.to_string());
        self.consecutive_failures.fetch_add(1, Ordering::Relaxed) + 1
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Delivered,
    Retry(String),
}

/// Only a 2xx acknowledges (guide §2); everything else, 4xx included, is retried.
fn classify(status: StatusCode) -> Outcome {
    if status.is_success() {
        Outcome::Delivered
    } else {
        Outcome::Retry(format!("HTTP {status}"))
    }
}

/// Builds the POST body for a batch. Entries whose file vanished are skipped.
fn build(spool: &Spool, batch: &[Entry], instance: &str) -> Option<String> {
    let mut bodies = Vec::with_capacity(batch.len());
    for e in batch {
        match spool.body(e) {
            Ok(b) => bodies.push((e, b)),
            Err(err) => warn!(seq = e.seq, %err, "CDR spool file unreadable, skipping"),
        }
    }
    let (first, _) = bodies.first()?;
    let session = first.session.clone();
    Some(document(
        &session,
        Some(instance),
        bodies.iter().map(|(e, b)| RecordEnvelope {
            record_type: &e.record_type,
            time: &e.time,
            record_index: e.record_index,
            correlator_index: e.correlator,
            missing: e.missing,
            inner_xml: b,
        }),
    ))
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    tokio::task::spawn_blocking(f).await.ok()
}

/// Reads what is left of a response, bounded, only when it has a known end: the connection
/// can then be reused. A body delimited by the connection closing (no length, not chunked,
/// as the guide's receiver answers) is not waited for: dropping the response closes the
/// connection.
async fn finish(resp: Response) {
    let headers = resp.headers();
    let has_end = headers.contains_key(CONTENT_LENGTH)
        || headers
            .get(TRANSFER_ENCODING)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"chunked"));
    if !has_end || resp.content_length().is_some_and(|n| n > MAX_BODY as u64) {
        return;
    }
    let mut resp = resp;
    let drain = async {
        let mut read = 0usize;
        while let Ok(Some(chunk)) = resp.chunk().await {
            read += chunk.len();
            if read > MAX_BODY {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(BODY_TIMEOUT, drain).await;
}

async fn post(client: &Client, url: &Url, doc: String, last: bool) -> Outcome {
    let mut req = client
        .post(url.clone())
        .header(CONTENT_TYPE, "application/xml");
    if last {
        req = req.header(CONNECTION, "close");
    }
    match req.body(doc).send().await {
        Ok(resp) => {
            let status = resp.status();
            finish(resp).await;
            classify(status)
        }
        Err(err) => Outcome::Retry(error_chain(&err)),
    }
}

pub(crate) async fn run(
    rx: Receiver,
    client: Client,
    cfg: DeliveryConfig,
    cancel: CancellationToken,
) {
    let max_backoff = cfg.max_backoff.max(Duration::from_millis(1));
    let mut backoff = INITIAL_BACKOFF.min(max_backoff);
    loop {
        if cancel.is_cancelled() {
            break;
        }
        // take_batch may fdatasync the cursor (a new batch pins its records): off the reactor.
        let (spool, max) = (rx.spool.clone(), cfg.batch_size.max(1));
        let Some(batch) = blocking(move || spool.take_batch(max)).await else {
            break;
        };
        if batch.is_empty() {
            tokio::select! {
                _ = rx.notify.notified() => continue,
                _ = cancel.cancelled() => break,
            }
        }
        let (spool, b, instance) = (rx.spool.clone(), batch.clone(), cfg.instance.clone());
        let Some(doc) = blocking(move || build(&spool, &b, &instance)).await else {
            rx.spool.release();
            break;
        };
        let Some(doc) = doc else {
            // Every file of the batch vanished: nothing to send, forget them.
            let spool = rx.spool.clone();
            blocking(move || spool.ack(&batch)).await;
            continue;
        };
        let last = rx.spool.len() <= batch.len();
        let outcome = tokio::select! {
            o = post(&client, &rx.url, doc, last) => o,
            _ = cancel.cancelled() => {
                // The request may or may not have reached the receiver; the records stay
                // spooled and are re-sent next run with the same indexes.
                rx.spool.release();
                break;
            }
        };
        match outcome {
            Outcome::Delivered => {
                debug!(receiver = %rx.health.receiver, records = batch.len(), "CDRs delivered");
                if rx.health.consecutive_failures() > 0 {
                    info!(receiver = %rx.health.receiver, "CDR receiver accepts records again");
                }
                rx.health.succeeded(batch.len());
                let spool = rx.spool.clone();
                blocking(move || spool.ack(&batch)).await;
                backoff = INITIAL_BACKOFF.min(max_backoff);
            }
            Outcome::Retry(reason) => {
                rx.spool.release();
                let failures = rx.health.failed(&reason);
                warn!(
                    receiver = %rx.health.receiver,
                    %reason,
                    consecutive_failures = failures,
                    pending = rx.spool.len(),
                    retry_in_ms = backoff.as_millis() as u64,
                    "CDR delivery failed, will retry"
                );
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = cancel.cancelled() => break,
                }
                backoff = (backoff * 2).min(max_backoff);
            }
        }
    }
}

/// reqwest's Display hides the cause ("error sending request"); operators need it.
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut s = err.to_string();
    let mut src = err.source();
    while let Some(e) = src {
        s.push_str(": ");
        s.push_str(&e.to_string());
        src = e.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_2xx_acknowledges() {
        assert_eq!(classify(StatusCode::OK), Outcome::Delivered);
        assert_eq!(classify(StatusCode::NO_CONTENT), Outcome::Delivered);
        for code in [500, 503, 429, 408, 302, 400, 401, 403, 404] {
            let status = StatusCode::from_u16(code).expect("status");
            assert!(matches!(classify(status), Outcome::Retry(_)), "{code}");
        }
    }
}
