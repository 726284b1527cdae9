//! Recordings to S3-compatible object storage (SPEC §8) against a real S3 server, Garage
//! 2.5.0, on loopback: every object read back through `object_store`'s own client and
//! compared byte for byte with what the recorder wrote; the server stopped and restarted;
//! the recorder SIGKILLed in the middle of its queue; wrong credentials; `keep_local`.

mod common;

use common::garage::{BUCKET, Garage};
use common::rtp::*;
use common::*;
use serde_json::Value;
use sha2::Digest as _;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256_hex(data: &[u8]) -> String {
    hex(&sha2::Sha256::digest(data))
}

fn md5_hex(data: &[u8]) -> String {
    hex(&<md5::Md5 as md5::Digest>::digest(data))
}

fn recorder(garage: &Garage, storage_extra: &str, args: &[&str]) -> Recorder {
    Recorder::start_with(
        RecorderConfig {
            extra_toml: garage.storage_toml(storage_extra),
            ..RecorderConfig::default()
        },
        args,
    )
}

/// A two-stream PCMU call that sent `packets` 20 ms packets of tones per stream, still up.
fn call_with_tones(rec: &Recorder, packets: u64) -> (SipClient, Call) {
    let mut client = rec.udp();
    let mut call = Call::genesys(&client);
    let invite = call.invite_sdp(&media_sdp(1, &[Codec::Pcmu, Codec::Pcmu], "sendonly"));
    let ok = establish(&mut client, &mut call, &invite);
    let ports: Vec<u16> = sdp_of(&ok).audio().iter().map(|m| m.port).collect();
    let dest = |p: u16| std::net::SocketAddr::from(([127, 0, 0, 1], p));
    let mut a = RtpSender::new(Codec::Pcmu, dest(ports[0]), 440.0);
    let mut b = RtpSender::new(Codec::Pcmu, dest(ports[1]), 1000.0);
    send_tones(&Pacer::new(), 0..packets, &mut [&mut a, &mut b]);
    (client, call)
}

/// A two-stream PCMU call with 200 ms of tones, hung up; returns its Call-ID.
fn short_call(rec: &Recorder) -> String {
    let (mut client, mut call) = call_with_tones(rec, 10);
    hang_up(&mut client, &mut call);
    call.call_id.clone()
}

/// `n` short calls from `threads` clients at once.
fn calls(rec: &Recorder, n: usize, threads: usize) -> Vec<String> {
    let ids = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for t in 0..threads {
            let ids = &ids;
            s.spawn(move || {
                for _ in (t..n).step_by(threads) {
                    let id = short_call(rec);
                    ids.lock().expect("lock").push(id);
                }
            });
        }
    });
    ids.into_inner().expect("lock")
}

fn storage_state(doc: &Value) -> &str {
    doc["storage"]["state"].as_str().unwrap_or("")
}

/// Polls until every recording of `call_ids` has `storage.state` in `states`.
fn wait_storage(
    rec: &Recorder,
    call_ids: &[String],
    states: &[&str],
    timeout: Duration,
) -> Vec<(PathBuf, Value)> {
    let deadline = Instant::now() + timeout;
    loop {
        let found: Vec<(PathBuf, Value)> = rec
            .recordings()
            .into_iter()
            .filter(|(_, v)| call_ids.iter().any(|c| v["sip_call_id"] == c.as_str()))
            .collect();
        if found.len() == call_ids.len()
            && found
                .iter()
                .all(|(_, v)| states.contains(&storage_state(v)))
        {
            return found;
        }
        if Instant::now() >= deadline {
            let seen: Vec<_> = found
                .iter()
                .map(|(_, v)| storage_state(v).to_string())
                .collect();
            panic!(
                "{} of {} recordings, storage states {seen:?}, not all in {states:?}\n{}",
                found.len(),
                call_ids.len(),
                rec.log()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn metric(rec: &Recorder, line_start: &str) -> f64 {
    let body = http_request(rec.http_addr, "GET", "/metrics", "").body;
    body.lines()
        .find_map(|l| {
            l.strip_prefix(line_start)
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or_else(|| panic!("no {line_start} in /metrics:\n{body}"))
}

fn job_files(rec: &Recorder) -> usize {
    std::fs::read_dir(rec.spool_dir.join("storage/jobs"))
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
                .count()
        })
        .unwrap_or(0)
}

fn files_of(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .expect("recording dir")
        .flatten()
        .filter(|e| e.path().is_file())
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).expect("read"),
            )
        })
        .collect()
}

/// Every local file of the recording is an object of the same bytes under its key
/// prefix, and nothing else is; ETag = MD5 and the recorded SHA-256 match.
fn assert_uploaded_byte_for_byte(garage: &Garage, rec: &Recorder, dir: &Path, doc: &Value) {
    let prefix = doc["storage"]["key_prefix"].as_str().expect("key_prefix");
    let relative = dir
        .strip_prefix(&rec.recordings_dir)
        .expect("below the root");
    assert_eq!(
        prefix,
        relative.to_string_lossy(),
        "default key template = the directory layout"
    );
    assert_eq!(doc["storage"]["bucket"], BUCKET);
    let local = files_of(dir);
    assert!(local.keys().any(|f| f.ends_with(".wav")), "{local:?}");
    let objects: BTreeMap<String, u64> = garage.list(prefix).into_iter().collect();
    let expected: BTreeMap<String, u64> = local
        .iter()
        .map(|(f, b)| (format!("{prefix}/{f}"), b.len() as u64))
        .collect();
    assert_eq!(objects, expected, "objects under {prefix}");
    let keys: Vec<String> = local.keys().map(|f| format!("{prefix}/{f}")).collect();
    let read_back = garage.get_many(&keys);
    for ((key, bytes), got) in keys.iter().zip(local.values()).zip(&read_back) {
        assert!(got == bytes, "{key} differs from the local file");
        assert_eq!(
            garage.etag(key),
            md5_hex(bytes),
            "{key}: ETag is not the MD5"
        );
    }
    let recorded = doc["storage"]["objects"].as_array().expect("objects");
    assert_eq!(
        recorded.len(),
        local.len() - 1,
        "every object but recording.json itself"
    );
    for o in recorded {
        let file = o["file"].as_str().expect("file");
        assert_eq!(o["uploaded"], true);
        assert_eq!(
            o["sha256"].as_str(),
            Some(sha256_hex(&local[file]).as_str()),
            "{file}"
        );
        assert_eq!(o["size"].as_u64(), Some(local[file].len() as u64), "{file}");
    }
}

/// The `recordingEnd` records' XML, from every CDR document received.
fn recording_ends(got: &Arc<Mutex<Vec<String>>>) -> Vec<String> {
    got.lock()
        .expect("lock")
        .iter()
        .flat_map(|doc| {
            doc.split("<record ")
                .skip(1)
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .filter(|r| r.contains("type=\"recordingEnd\""))
        .collect()
}

#[test]
fn fifty_recordings_are_uploaded_verified_and_read_back_byte_for_byte() {
    let garage = Garage::start();
    let (url, got) = cdr_receiver();
    let rec = recorder(&garage, "cdr_wait_secs = 30\n", &["--cdr-receiver", &url]);
    let t0 = Instant::now();
    let ids = calls(&rec, 50, 5);
    let calls_done = t0.elapsed();
    let done = wait_storage(&rec, &ids, &["uploaded"], Duration::from_secs(60));
    let bytes: usize = done
        .iter()
        .flat_map(|(d, _)| files_of(d).into_values())
        .map(|b| b.len())
        .sum();
    eprintln!(
        "50 calls in {:.2} s; every object uploaded and verified {:.2} s after the last call ({bytes} bytes)",
        calls_done.as_secs_f64(),
        (t0.elapsed() - calls_done).as_secs_f64()
    );
    for (dir, doc) in &done {
        assert_uploaded_byte_for_byte(&garage, &rec, dir, doc);
    }
    wait_until("50 recordingEnd CDRs", Duration::from_secs(20), || {
        recording_ends(&got).len() >= 50
    });
    for (_, doc) in &done {
        let id = doc["recording_id"].as_str().expect("id");
        let ends = recording_ends(&got);
        let end = ends
            .iter()
            .find(|r| r.contains(id))
            .unwrap_or_else(|| panic!("no recordingEnd for {id}"));
        let prefix = doc["storage"]["key_prefix"].as_str().expect("prefix");
        assert!(
            end.contains("<objectStorage><state>uploaded</state>"),
            "{end}"
        );
        assert!(
            end.contains(&format!("<keyPrefix>{prefix}</keyPrefix>")),
            "{end}"
        );
        assert!(
            end.contains(&format!("<key>{prefix}/recording.json</key>")),
            "{end}"
        );
    }
    assert_eq!(
        metric(&rec, "sip_recorder_storage_recordings_uploaded_total "),
        50.0
    );
    assert_eq!(metric(&rec, "sip_recorder_storage_queued_recordings "), 0.0);
    let objects: usize = done.iter().map(|(dir, _)| files_of(dir).len()).sum();
    assert_eq!(
        metric(&rec, "sip_recorder_storage_objects_uploaded_total "),
        objects as f64
    );
    for reason in ["auth", "unreachable", "verify_mismatch", "local_io"] {
        let line = format!("sip_recorder_storage_upload_failures_total{{reason=\"{reason}\"}} ");
        assert_eq!(metric(&rec, &line), 0.0, "{reason}");
    }
    // The API shows the upload state of each recent recording.
    let id = done[0].1["recording_id"].as_str().expect("id");
    let one: Value =
        serde_json::from_str(&rec.api("GET", &format!("/api/v1/recordings/{id}")).body)
            .expect("json");
    assert_eq!(one["storage"]["state"], "uploaded", "{one}");
}

#[test]
fn the_server_down_for_a_while_loses_nothing_and_keep_local_false_deletes_only_after_verification()
{
    let mut garage = Garage::start();
    let (url, got) = cdr_receiver();
    let rec = recorder(
        &garage,
        "keep_local = false\ncdr_wait_secs = 1\n",
        &["--cdr-receiver", &url],
    );
    garage.stop();
    let ids = calls(&rec, 3, 3);
    let waiting = wait_storage(&rec, &ids, &["failed_retrying"], Duration::from_secs(20));
    // What the recorder wrote, kept by the test: the local copy will be deleted.
    let copies: Vec<(PathBuf, BTreeMap<String, Vec<u8>>)> = waiting
        .iter()
        .map(|(dir, _)| (dir.clone(), files_of(dir)))
        .collect();
    assert!(
        metric(
            &rec,
            "sip_recorder_storage_upload_failures_total{reason=\"unreachable\"} "
        ) >= 3.0
    );
    assert_eq!(metric(&rec, "sip_recorder_storage_queued_recordings "), 3.0);
    assert!(
        rec.log().contains("recording upload failed, will retry"),
        "{}",
        rec.log()
    );
    wait_until("3 recordingEnd CDRs", Duration::from_secs(10), || {
        recording_ends(&got).len() >= 3
    });
    for end in recording_ends(&got) {
        assert!(
            end.contains(
                "<objectStorage><state>pending</state><bucket>recordings</bucket></objectStorage>"
            ),
            "{end}"
        );
        assert!(
            !end.contains("keyPrefix"),
            "a pending upload names no location: {end}"
        );
    }
    // Down for a while: the local copies stay, the jobs wait.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(job_files(&rec), 3);
    for (dir, files) in &copies {
        assert_eq!(
            files_of(dir).keys().collect::<Vec<_>>(),
            files.keys().collect::<Vec<_>>()
        );
    }
    garage.restart();
    // The local copy goes first, then the job file (a crash in between redoes the finish).
    wait_until(
        "the local copies and the jobs to go",
        Duration::from_secs(30),
        || copies.iter().all(|(d, _)| !d.exists()) && job_files(&rec) == 0,
    );
    for (dir, files) in &copies {
        let prefix = dir
            .strip_prefix(&rec.recordings_dir)
            .expect("below root")
            .to_string_lossy()
            .into_owned();
        for (file, bytes) in files.iter().filter(|(f, _)| f.ends_with(".wav")) {
            assert!(
                garage.get(&format!("{prefix}/{file}")) == *bytes,
                "{prefix}/{file} differs"
            );
        }
        let doc: Value =
            serde_json::from_slice(&garage.get(&format!("{prefix}/recording.json"))).expect("json");
        assert_eq!(doc["storage"]["state"], "uploaded", "{doc}");
        assert_eq!(doc["state"], "ended");
        for o in doc["storage"]["objects"].as_array().expect("objects") {
            let file = o["file"].as_str().expect("file");
            assert_eq!(
                o["sha256"].as_str(),
                Some(sha256_hex(&files[file]).as_str()),
                "{file}"
            );
        }
    }
    wait_until("3 uploads counted", Duration::from_secs(5), || {
        metric(&rec, "sip_recorder_storage_recordings_uploaded_total ") == 3.0
    });
    assert_eq!(metric(&rec, "sip_recorder_storage_queued_recordings "), 0.0);
}

#[test]
fn a_recorder_killed_in_the_middle_of_its_uploads_resumes_and_completes_them() {
    let mut garage = Garage::start();
    let mut rec = recorder(&garage, "upload_concurrency = 1\n", &[]);
    garage.stop();
    let ids = calls(&rec, 20, 4);
    wait_storage(&rec, &ids, &["failed_retrying"], Duration::from_secs(30));
    garage.restart();
    wait_until("the first object", Duration::from_secs(20), || {
        !garage.list("").is_empty()
    });
    rec.kill9();
    let left = job_files(&rec);
    let in_bucket = garage.list("").len();
    assert!(
        left > 0,
        "every upload finished before the kill: nothing was interrupted"
    );
    eprintln!("killed with {left} of 20 jobs left and {in_bucket} objects in the bucket");
    let restarted = Instant::now();
    rec.restart();
    let done = wait_storage(&rec, &ids, &["uploaded"], Duration::from_secs(60));
    let objects: usize = done.iter().map(|(d, _)| files_of(d).len()).sum();
    eprintln!(
        "after the restart: {} objects of 20 recordings uploaded and verified in {:.2} s (upload_concurrency = 1)",
        objects - in_bucket,
        restarted.elapsed().as_secs_f64()
    );
    for (dir, doc) in &done {
        assert_uploaded_byte_for_byte(&garage, &rec, dir, doc);
    }
    assert!(
        rec.log()
            .contains("resuming uploads left by the previous run"),
        "{}",
        rec.log()
    );
    wait_until("the job files to go", Duration::from_secs(10), || {
        job_files(&rec) == 0
    });
}

#[test]
fn wrong_credentials_give_a_clear_error_and_a_metric_and_keep_the_recording() {
    let garage = Garage::start();
    let bad = garage.dir().join("bad-credentials.toml");
    let wrong_secret = "0".repeat(64);
    std::fs::write(
        &bad,
        format!(
            "access_key_id = \"{}\"\nsecret_access_key = \"{wrong_secret}\"\n",
            garage.key_id
        ),
    )
    .expect("write");
    let mut rec = Recorder::start_with(
        RecorderConfig {
            extra_toml: garage.storage_toml_with_credentials(&bad, ""),
            ..RecorderConfig::default()
        },
        &[],
    );
    let ids = calls(&rec, 1, 1);
    let (dir, doc) =
        wait_storage(&rec, &ids, &["failed_retrying"], Duration::from_secs(20)).remove(0);
    let error = doc["storage"]["last_error"].as_str().unwrap_or_default();
    assert!(error.starts_with("auth: "), "{doc}");
    assert!(error.contains("refused the credentials"), "{doc}");
    wait_until("two attempts", Duration::from_secs(10), || {
        metric(
            &rec,
            "sip_recorder_storage_upload_failures_total{reason=\"auth\"} ",
        ) >= 2.0
    });
    let log = rec.log();
    assert!(
        log.contains("recording upload failed, will retry") && log.contains("reason=\"auth\""),
        "{log}"
    );
    assert!(
        !log.contains(&wrong_secret) && !log.contains(&garage.secret),
        "a secret in the log"
    );
    assert_eq!(job_files(&rec), 1);
    assert!(files_of(&dir).keys().any(|f| f.ends_with(".wav")));
    // The API says so too, with the reason.
    let id = doc["recording_id"].as_str().expect("id");
    let api: Value =
        serde_json::from_str(&rec.api("GET", &format!("/api/v1/recordings/{id}")).body)
            .expect("json");
    assert_eq!(api["storage"]["state"], "failed_retrying", "{api}");
    assert!(
        api["storage"]["last_error"]
            .as_str()
            .is_some_and(|e| e.starts_with("auth: ")),
        "{api}"
    );
    assert!(garage.list("").is_empty());
    // The operator fixes the credentials and restarts: the recording was never lost.
    rec.kill9();
    std::fs::copy(&garage.credentials_file, &bad).expect("fix credentials");
    rec.restart();
    let (dir, doc) = wait_storage(&rec, &ids, &["uploaded"], Duration::from_secs(20)).remove(0);
    assert_uploaded_byte_for_byte(&garage, &rec, &dir, &doc);
}

/// Proof that the server checks `x-amz-checksum-sha256`: a PUT whose body is changed after
/// the checksum was computed (unsigned payload, so only the checksum covers the body) is
/// refused — and accepted when no checksum is sent, so it is the checksum that caught it.
#[test]
fn garage_refuses_a_put_whose_body_does_not_match_its_sha256_checksum() {
    use object_store::aws::{AmazonS3Builder, Checksum};
    use object_store::client::{
        HttpClient, HttpConnector, HttpError, HttpRequest, HttpRequestBody, HttpResponse,
        HttpService, ReqwestConnector,
    };
    use object_store::{ClientOptions, ObjectStoreExt, PutPayload};

    #[derive(Debug)]
    struct CorruptPut(HttpClient);
    #[async_trait::async_trait]
    impl HttpService for CorruptPut {
        async fn call(&self, mut req: HttpRequest) -> Result<HttpResponse, HttpError> {
            if req.method().as_str() == "PUT" {
                let len = req.body().content_length();
                *req.body_mut() = HttpRequestBody::from(vec![b'X'; len]);
            }
            self.0.execute(req).await
        }
    }
    #[derive(Debug)]
    struct Corrupting;
    impl HttpConnector for Corrupting {
        fn connect(&self, options: &ClientOptions) -> object_store::Result<HttpClient> {
            Ok(HttpClient::new(CorruptPut(
                ReqwestConnector {}.connect(options)?,
            )))
        }
    }

    let garage = Garage::start();
    let store = |checksum: bool| {
        let mut b = AmazonS3Builder::new()
            .with_endpoint(garage.endpoint())
            .with_allow_http(true)
            .with_region(common::garage::REGION)
            .with_bucket_name(BUCKET)
            .with_access_key_id(&garage.key_id)
            .with_secret_access_key(&garage.secret)
            .with_unsigned_payload(true)
            .with_http_connector(Corrupting);
        if checksum {
            b = b.with_checksum_algorithm(Checksum::SHA256);
        }
        b.build().expect("client")
    };
    let body = PutPayload::from_static(b"what the recorder wrote");
    let path = object_store::path::Path::from("proof/with-checksum");
    let refused = garage
        .runtime()
        .block_on(store(true).put(&path, body.clone()));
    let e = refused
        .expect_err("a corrupted body with a checksum must be refused")
        .to_string();
    eprintln!("Garage refused the corrupted PUT: {e}");
    assert!(e.contains("400") && e.contains("InvalidDigest"), "{e}");
    assert!(garage.list("proof/").is_empty(), "nothing was stored");
    let path = object_store::path::Path::from("proof/without-checksum");
    garage
        .runtime()
        .block_on(store(false).put(&path, body))
        .expect("without a checksum the server cannot tell");
    assert_eq!(garage.get("proof/without-checksum"), vec![b'X'; 23]);
}

/// A credentials file that cannot be read stops the start with its key and path named.
#[test]
fn an_unreadable_credentials_file_is_named_at_startup() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("recorder.toml");
    let missing = dir.path().join("no-such-credentials.toml");
    std::fs::write(
        &config,
        format!(
            "[storage]\nendpoint = \"http://127.0.0.1:9\"\nbucket = \"b\"\ncredentials_file = \"{}\"\n",
            missing.display()
        ),
    )
    .expect("write config");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sip-recorder"))
        .arg("--config")
        .arg(&config)
        .args([
            "--sip-listen",
            "udp:127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
        ])
        .arg("--recordings-dir")
        .arg(dir.path().join("recordings"))
        .arg("--spool-dir")
        .arg(dir.path().join("spool"))
        .output()
        .expect("run sip-recorder");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line: {stderr}"));
    assert!(
        line.contains("storage.credentials_file") && line.contains(&missing.display().to_string()),
        "{line}"
    );
}

/// A call cut by a crash: startup recovery finalizes the recording and queues it; its
/// recordingEnd (made at startup) says pending, and the upload completes.
#[test]
fn a_recording_recovered_after_a_crash_is_uploaded() {
    let garage = Garage::start();
    let (url, got) = cdr_receiver();
    // With a storage class set, as a deployment would: Garage takes PUTs that carry it.
    let mut rec = recorder(
        &garage,
        "storage_class = \"STANDARD\"\n",
        &["--cdr-receiver", &url],
    );
    let (_client, call) = call_with_tones(&rec, 60);
    rec.wait_call_state(&call.call_id, "active", Duration::from_secs(5));
    rec.kill9();
    rec.restart();
    let ids = vec![call.call_id.clone()];
    let (dir, doc) = wait_storage(&rec, &ids, &["uploaded"], Duration::from_secs(20)).remove(0);
    assert_eq!(doc["end_reason"], "recovered");
    assert_uploaded_byte_for_byte(&garage, &rec, &dir, &doc);
    wait_until(
        "the recovered recordingEnd",
        Duration::from_secs(10),
        || !recording_ends(&got).is_empty(),
    );
    let end = &recording_ends(&got)[0];
    assert!(
        end.contains("recovered") && end.contains("<state>pending</state>"),
        "{end}"
    );
}
