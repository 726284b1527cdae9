//! One delivery task per receiver: in order, in batches, one request in flight, retrying
//! forever with capped exponential backoff.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::CONTENT_TYPE;
use reqwest::{Client, StatusCode, Url};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, warn};

use super::model::{RecordEnvelope, document};
use super::spool::{Entry, Spool};

/// First retry delay; doubled per failure up to `max_backoff`.
const INITIAL_BACKOFF: Duration = Duration::from_millis(250);

#[derive(Debug, Clone)]
pub(crate) struct DeliveryConfig {
    pub batch_size: usize,
    pub max_backoff: Duration,
}

pub(crate) struct Receiver {
    pub url: Url,
    pub spool: Arc<Spool>,
    pub notify: Arc<Notify>,
}

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Delivered,
    Retry(String),
    Refused(StatusCode),
}

fn classify(status: StatusCode) -> Outcome {
    if status.is_success() {
        Outcome::Delivered
    } else if status.is_client_error()
        && status != StatusCode::TOO_MANY_REQUESTS
        && status != StatusCode::REQUEST_TIMEOUT
    {
        Outcome::Refused(status)
    } else {
        // 5xx, 429, 408 and anything unexpected (1xx/3xx): the receiver may recover.
        Outcome::Retry(format!("HTTP {status}"))
    }
}

/// Builds the POST body for a batch. Entries whose file vanished are skipped (returned
/// separately so they can be forgotten).
fn build(spool: &Spool, batch: &[Entry]) -> (Option<String>, usize) {
    let mut bodies = Vec::with_capacity(batch.len());
    let mut vanished = 0;
    for e in batch {
        match spool.body(e) {
            Ok(b) => bodies.push((e, b)),
            Err(err) => {
                vanished += 1;
                warn!(seq = e.seq, %err, "CDR spool file unreadable, skipping");
            }
        }
    }
    let Some((first, _)) = bodies.first() else {
        return (None, vanished);
    };
    let session = first.session.clone();
    let doc = document(
        &session,
        bodies.iter().map(|(e, b)| RecordEnvelope {
            record_type: &e.record_type,
            time: &e.time,
            record_index: e.record_index,
            correlator_index: e.correlator,
            missing: e.missing,
            inner_xml: b,
        }),
    );
    (Some(doc), vanished)
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    tokio::task::spawn_blocking(f).await.ok()
}

pub(crate) async fn run(
    rx: Receiver,
    client: Client,
    cfg: DeliveryConfig,
    cancel: CancellationToken,
) {
    let max_backoff = cfg.max_backoff.max(Duration::from_millis(1));
    let mut backoff = INITIAL_BACKOFF.min(max_backoff);
    // After a 4xx on a multi-record batch, send that many records one by one so that only
    // the refused record goes to dead-letter.
    let mut isolate = 0usize;
    loop {
        if cancel.is_cancelled() {
            break;
        }
        let limit = if isolate > 0 {
            1
        } else {
            cfg.batch_size.max(1)
        };
        let batch = rx.spool.take_batch(limit);
        if batch.is_empty() {
            tokio::select! {
                _ = rx.notify.notified() => continue,
                _ = cancel.cancelled() => break,
            }
        }
        let spool = rx.spool.clone();
        let b = batch.clone();
        let Some((doc, _vanished)) = blocking(move || build(&spool, &b)).await else {
            rx.spool.release();
            break;
        };
        let Some(doc) = doc else {
            // Every file of the batch vanished: nothing to send, forget them.
            let spool = rx.spool.clone();
            blocking(move || spool.ack(&batch)).await;
            continue;
        };

        let send = async {
            let resp = client
                .post(rx.url.clone())
                .header(CONTENT_TYPE, "application/xml")
                .body(doc)
                .send()
                .await?;
            let status = resp.status();
            // Drain the body so the connection goes back to the keep-alive pool.
            let _ = resp.bytes().await;
            Ok::<_, reqwest::Error>(status)
        };
        let outcome = tokio::select! {
            r = send => match r {
                Ok(status) => classify(status),
                Err(err) => Outcome::Retry(error_chain(&err)),
            },
            _ = cancel.cancelled() => {
                // The request may or may not have reached the receiver; the records stay
                // spooled and are re-sent next run (receivers deduplicate).
                rx.spool.release();
                break;
            }
        };

        match outcome {
            Outcome::Delivered => {
                debug!(receiver = %rx.url, records = batch.len(), "CDRs delivered");
                let spool = rx.spool.clone();
                blocking(move || spool.ack(&batch)).await;
                backoff = INITIAL_BACKOFF.min(max_backoff);
                isolate = isolate.saturating_sub(1);
            }
            Outcome::Retry(reason) => {
                rx.spool.release();
                warn!(
                    receiver = %rx.url,
                    %reason,
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
            Outcome::Refused(status) if batch.len() > 1 => {
                rx.spool.release();
                warn!(receiver = %rx.url, %status, records = batch.len(),
                    "CDR batch refused, resending one by one to isolate the refused record");
                isolate = batch.len();
            }
            Outcome::Refused(status) => {
                for e in &batch {
                    error!(
                        receiver = %rx.url,
                        %status,
                        session = %e.session,
                        correlator_index = e.correlator,
                        record_type = %e.record_type,
                        dead_letter = %rx.spool.dead_dir().display(),
                        "CDR refused by receiver, moved to dead-letter"
                    );
                }
                let spool = rx.spool.clone();
                blocking(move || spool.dead_letter(&batch)).await;
                isolate = isolate.saturating_sub(1);
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
    fn status_classes() {
        assert_eq!(classify(StatusCode::OK), Outcome::Delivered);
        assert_eq!(classify(StatusCode::NO_CONTENT), Outcome::Delivered);
        assert!(matches!(
            classify(StatusCode::INTERNAL_SERVER_ERROR),
            Outcome::Retry(_)
        ));
        assert!(matches!(
            classify(StatusCode::TOO_MANY_REQUESTS),
            Outcome::Retry(_)
        ));
        assert!(matches!(
            classify(StatusCode::REQUEST_TIMEOUT),
            Outcome::Retry(_)
        ));
        assert!(matches!(classify(StatusCode::FOUND), Outcome::Retry(_)));
        assert_eq!(
            classify(StatusCode::BAD_REQUEST),
            Outcome::Refused(StatusCode::BAD_REQUEST)
        );
        assert_eq!(
            classify(StatusCode::NOT_FOUND),
            Outcome::Refused(StatusCode::NOT_FOUND)
        );
    }
}
