//! `kill -9` of the real binary while calls are set up and torn down and CDRs are being
//! delivered to a slow receiver that refuses some documents. What the segment log must
//! guarantee (SPEC §6, guide §3):
//!
//! - every record the receiver did not answer 2xx for is still on disk after the kill and
//!   arrives, with a 2xx, after the restart;
//! - only records the disk does not show as acknowledged are re-sent: at most the one
//!   batch whose 2xx the dead process never read is seen twice;
//! - a record keeps its session GUID, correlatorIndex and recordIndex across the restart,
//!   with no gap in either.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use common::*;

/// A POST the receiver got and what it answered.
#[derive(Debug, Clone)]
struct Post {
    body: String,
    ok: bool,
}

/// A receiver that takes 30 ms per document (so a backlog forms) and answers 500 to every
/// fourth one, and to all while `refusing` is set.
fn refusing_receiver(refusing: Arc<AtomicBool>) -> (String, Arc<Mutex<Vec<Post>>>) {
    let got = Arc::new(Mutex::new(Vec::new()));
    let sink = got.clone();
    let count = Arc::new(AtomicUsize::new(0));
    let app = Router::new().route(
        "/cdr",
        post(move |body: String| {
            let (sink, count, refusing) = (sink.clone(), count.clone(), refusing.clone());
            async move {
                tokio::time::sleep(Duration::from_millis(30)).await;
                let ok = count.fetch_add(1, Ordering::Relaxed) % 4 != 3
                    && !refusing.load(Ordering::Relaxed);
                sink.lock().expect("lock").push(Post { body, ok });
                if ok {
                    StatusCode::OK
                } else {
                    StatusCode::INTERNAL_SERVER_ERROR
                }
            }
        }),
    );
    (common::cdr::serve(app), got)
}

/// (session, correlatorIndex, recordIndex) of every record of a document.
fn records(doc: &str) -> Vec<(String, u64, u64)> {
    let attr = |text: &str, name: &str| -> String {
        text.split(&format!("{name}=\""))
            .nth(1)
            .and_then(|t| t.split('"').next())
            .unwrap_or_else(|| panic!("no {name} in {text}"))
            .to_string()
    };
    let session = attr(doc, " session");
    doc.split("<record ")
        .skip(1)
        .map(|r| {
            let head = r.split('>').next().unwrap_or("");
            let correlator = attr(head, "correlatorIndex")
                .parse()
                .expect("correlatorIndex");
            let index = attr(head, "recordIndex").parse().expect("recordIndex");
            (session.clone(), correlator, index)
        })
        .collect()
}

fn receiver_spool(spool_dir: &Path) -> PathBuf {
    std::fs::read_dir(spool_dir.join("cdr"))
        .expect("cdr dir")
        .flatten()
        .map(|d| d.path())
        .find(|p| p.is_dir() && !p.ends_with("local"))
        .expect("receiver spool")
}

/// Calls set up and torn down back to back until `stop`; a call cut by the kill ends the
/// thread (its panic is the expected consequence of the kill, not a failure).
fn load(
    rec: &Recorder,
    stop: Arc<AtomicBool>,
    done: Arc<AtomicUsize>,
) -> std::thread::JoinHandle<()> {
    let addr = rec.sip_addr;
    std::thread::spawn(move || {
        let mut c = SipClient::udp(addr);
        while !stop.load(Ordering::Relaxed) {
            let mut call = Call::genesys(&c);
            let invite = call.genesys_invite();
            establish(&mut c, &mut call, &invite);
            hang_up(&mut c, &mut call);
            done.fetch_add(1, Ordering::Relaxed);
        }
    })
}

#[test]
fn kill_9_mid_load_resends_exactly_the_unacknowledged_records() {
    let refusing = Arc::new(AtomicBool::new(false));
    let (url, posts) = refusing_receiver(refusing.clone());
    let mut rec = Recorder::start(&["--cdr-receiver", &url]);
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..3)
        .map(|_| load(&rec, stop.clone(), done.clone()))
        .collect();
    std::thread::sleep(Duration::from_millis(1100));
    // The receiver fails shortly before the crash: records refused and never accepted.
    refusing.store(true, Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(400));
    rec.kill9();
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    let calls = done.load(Ordering::Relaxed);
    // A POST in flight at the kill may still be answered; let it land.
    std::thread::sleep(Duration::from_millis(200));
    let before: Vec<Post> = posts.lock().expect("lock").clone();
    let spool = receiver_spool(&rec.spool_dir);
    let pending: BTreeSet<(String, u64)> = sip_recorder::cdr::spool::read_records(&spool)
        .expect("read spool")
        .into_iter()
        .map(|(e, _)| (e.session.to_string(), e.correlator))
        .collect();
    let acked: BTreeSet<(String, u64)> = before
        .iter()
        .filter(|p| p.ok)
        .flat_map(|p| records(&p.body))
        .map(|(s, c, _)| (s, c))
        .collect();
    let refused: BTreeSet<(String, u64)> = before
        .iter()
        .filter(|p| !p.ok)
        .flat_map(|p| records(&p.body))
        .map(|(s, c, _)| (s, c))
        .filter(|k| !acked.contains(k))
        .collect();
    eprintln!(
        "{calls} calls; at the kill: {} POSTs, {} records acknowledged, {} refused only, {} on disk unacknowledged",
        before.len(),
        acked.len(),
        refused.len(),
        pending.len()
    );
    assert!(calls >= 5, "the load ran ({calls} calls)");
    assert!(!pending.is_empty(), "a backlog existed at the kill");
    assert!(
        refused.is_subset(&pending),
        "refused records missing from the spool: {:?}",
        refused.difference(&pending).collect::<Vec<_>>()
    );
    // Acknowledged yet still on disk: only the last 2xx'd document, whose answer the dead
    // process may not have read.
    let acked_pending: BTreeSet<_> = pending.intersection(&acked).cloned().collect();
    let last_ok: BTreeSet<(String, u64)> = before
        .iter()
        .rev()
        .find(|p| p.ok)
        .map(|p| {
            records(&p.body)
                .into_iter()
                .map(|(s, c, _)| (s, c))
                .collect()
        })
        .unwrap_or_default();
    assert!(
        acked_pending.is_subset(&last_ok),
        "acknowledged records left unacknowledged on disk: {acked_pending:?}"
    );

    assert!(
        !refused.is_empty(),
        "some records were refused and never accepted"
    );
    let n_before = before.len();
    refusing.store(false, Ordering::Relaxed);
    rec.restart();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got: BTreeSet<(String, u64)> = posts.lock().expect("lock")[n_before..]
            .iter()
            .filter(|p| p.ok)
            .flat_map(|p| records(&p.body))
            .map(|(s, c, _)| (s, c))
            .collect();
        if pending.is_subset(&got) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not re-sent after the restart: {:?}\n{}",
            pending.difference(&got).collect::<Vec<_>>(),
            rec.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(300));
    let all: Vec<Post> = posts.lock().expect("lock").clone();
    let old_session = before
        .first()
        .map(|p| records(&p.body)[0].0.clone())
        .expect("a POST before the kill");
    // After the restart, of the old session exactly the records the disk held are sent.
    let resent: BTreeSet<(String, u64)> = all[n_before..]
        .iter()
        .flat_map(|p| records(&p.body))
        .filter(|(s, _, _)| *s == old_session)
        .map(|(s, c, _)| (s, c))
        .collect();
    assert_eq!(
        resent, pending,
        "re-sent after the restart vs on disk at the kill"
    );
    // One recordIndex per record, and for the one receiver and no drop: correlatorIndex
    // 0, 1, 2, … and recordIndex = correlatorIndex + 1, without a gap.
    let mut index_of: BTreeMap<u64, BTreeSet<u64>> = BTreeMap::new();
    for (s, c, i) in all.iter().flat_map(|p| records(&p.body)) {
        if s == old_session {
            index_of.entry(c).or_default().insert(i);
        }
    }
    for (n, (c, indexes)) in index_of.iter().enumerate() {
        assert_eq!(*c, n as u64, "correlatorIndex gap before {c}");
        assert_eq!(
            indexes.iter().copied().collect::<Vec<_>>(),
            [c + 1],
            "recordIndex of correlator {c}"
        );
    }
    rec.terminate(Duration::from_secs(10));
}
