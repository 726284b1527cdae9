use super::*;
use crate::storage::record::{FailureKind, Job, ObjectRecord, UploadState, Verified};
use std::path::PathBuf;

fn job(id: &str) -> Job {
    Job {
        recording_id: id.into(),
        dir: PathBuf::from(format!("/r/{id}")),
        bucket: "b".into(),
        key_prefix: format!("p/{id}"),
        created_unix: 0,
        objects: None,
        attempts: 0,
        last_error: None,
    }
}

fn objects(id: &str, files: &[&str]) -> Vec<ObjectRecord> {
    files
        .iter()
        .map(|f| ObjectRecord {
            file: (*f).into(),
            key: format!("p/{id}/{f}"),
            size: 10,
            sha256: None,
            etag: None,
            uploaded: false,
        })
        .collect()
}

fn verified() -> Verified {
    Verified {
        size: 10,
        sha256: "aa".into(),
        etag: "bb".into(),
    }
}

fn failure(kind: FailureKind) -> Failure {
    Failure {
        kind,
        message: "refused".into(),
    }
}

fn step(id: &str, work: Work) -> Step {
    Step {
        recording_id: id.into(),
        work,
    }
}

#[test]
fn a_job_lists_uploads_each_object_in_order_then_finishes() {
    let t0 = Instant::now();
    let mut q = UploadQueue::new(1, Duration::from_secs(60));
    assert!(q.push(job("a")));
    assert_eq!(q.state("a"), Some(UploadState::Queued));
    assert_eq!(q.poll_step(t0), Some(step("a", Work::List)));
    assert_eq!(q.poll_step(t0), None, "one step at a time");
    q.handle_listed("a", objects("a", &["s0.wav", "recording.json"]));
    assert_eq!(q.poll_step(t0), Some(step("a", Work::Upload(0))));
    q.handle_uploaded("a", 0, verified());
    assert_eq!(q.state("a"), Some(UploadState::Uploading));
    assert_eq!(q.poll_step(t0), Some(step("a", Work::Upload(1))));
    q.handle_uploaded("a", 1, verified());
    assert_eq!(q.poll_step(t0), Some(step("a", Work::Finish)));
    let done = q.handle_finished("a").expect("job");
    assert!(done.objects.expect("listed").iter().all(|o| o.uploaded));
    assert!(q.is_empty());
    assert_eq!(q.poll_step(t0), None);
    assert_eq!(q.poll_timeout(), None);
}

#[test]
fn failures_back_off_exponentially_up_to_the_cap_and_never_give_up() {
    let t0 = Instant::now();
    let cap = Duration::from_secs(8);
    let mut q = UploadQueue::new(2, cap);
    q.push(job("a"));
    let mut now = t0;
    let mut delays = vec![];
    for _ in 0..7 {
        let s = q.poll_step(now).expect("a step is due");
        assert_eq!(s.work, Work::List);
        let d = q
            .handle_failed(now, "a", failure(FailureKind::Unreachable))
            .expect("known job");
        delays.push(d.as_secs());
        assert_eq!(q.state("a"), Some(UploadState::FailedRetrying));
        assert_eq!(q.poll_timeout(), Some(now + d));
        // Nothing runs before the retry is due.
        assert_eq!(q.poll_step(now + d - Duration::from_millis(1)), None);
        now += d;
    }
    assert_eq!(delays, [1, 2, 4, 8, 8, 8, 8]);
    assert_eq!(q.job("a").expect("kept").attempts, 7);
    assert!(
        q.job("a")
            .and_then(|j| j.last_error.as_deref())
            .is_some_and(|e| e.starts_with("unreachable")),
    );
    // A success resets the backoff.
    q.poll_step(now).expect("due");
    q.handle_listed("a", objects("a", &["x.wav"]));
    assert_eq!(q.state("a"), Some(UploadState::Queued));
    q.poll_step(now).expect("upload");
    assert_eq!(
        q.handle_failed(now, "a", failure(FailureKind::Auth)),
        Some(FIRST_BACKOFF)
    );
}

#[test]
fn a_failing_job_does_not_hold_up_the_others() {
    let t0 = Instant::now();
    let mut q = UploadQueue::new(1, Duration::from_secs(60));
    q.push(job("a"));
    q.push(job("b"));
    assert_eq!(q.poll_step(t0), Some(step("a", Work::List)));
    q.handle_failed(t0, "a", failure(FailureKind::Server));
    assert_eq!(q.poll_step(t0), Some(step("b", Work::List)));
    q.handle_listed("b", objects("b", &["recording.json"]));
    assert_eq!(q.poll_step(t0), Some(step("b", Work::Upload(0))));
    q.handle_uploaded("b", 0, verified());
    // a's retry is not due yet; b goes on.
    assert_eq!(
        q.poll_step(t0 + Duration::from_millis(500)),
        Some(step("b", Work::Finish))
    );
    q.handle_finished("b");
    assert_eq!(
        q.poll_step(t0 + Duration::from_secs(1)),
        Some(step("a", Work::List))
    );
}

#[test]
fn concurrency_bounds_the_steps_in_flight() {
    let t0 = Instant::now();
    let mut q = UploadQueue::new(2, Duration::from_secs(60));
    for id in ["a", "b", "c"] {
        q.push(job(id));
    }
    assert!(q.poll_step(t0).is_some());
    assert!(q.poll_step(t0).is_some());
    assert_eq!(q.poll_step(t0), None, "two at once");
    assert_eq!(q.poll_timeout(), None);
    q.handle_listed("a", vec![]);
    // The freed slot goes to the oldest job with a step due: a again.
    assert_eq!(q.poll_step(t0), Some(step("a", Work::Finish)));
    assert_eq!(q.poll_step(t0), None);
    q.handle_finished("a");
    assert_eq!(q.poll_step(t0), Some(step("c", Work::List)));
}

#[test]
fn a_job_pushed_twice_is_taken_once_and_the_oldest_is_reported() {
    let mut q = UploadQueue::new(1, Duration::from_secs(60));
    let mut a = job("a");
    a.created_unix = 100;
    assert!(q.push(a.clone()));
    assert!(!q.push(a));
    let mut b = job("b");
    b.created_unix = 50; // made earlier, by the run before a crash
    q.push(b);
    assert_eq!(q.len(), 2);
    assert_eq!(q.oldest_created_unix(), Some(50));
}

#[test]
fn a_resumed_job_continues_with_its_first_object_not_uploaded() {
    let t0 = Instant::now();
    let mut q = UploadQueue::new(1, Duration::from_secs(60));
    let mut j = job("a");
    let mut objs = objects("a", &["s0.wav", "s1.wav", "recording.json"]);
    objs[0].uploaded = true;
    j.objects = Some(objs);
    q.push(j);
    assert_eq!(q.poll_step(t0), Some(step("a", Work::Upload(1))));
}

#[test]
fn backoff_saturates_instead_of_overflowing() {
    assert_eq!(
        backoff(u32::MAX, Duration::from_secs(300)),
        Duration::from_secs(300)
    );
    assert_eq!(backoff(0, Duration::from_secs(300)), FIRST_BACKOFF);
}
