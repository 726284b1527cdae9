//! A real S3 server for the object storage tests: Garage (crates.io `garage` 2.5.0, built
//! once into `$HOME/.cache/sip-recorder/garage-2.5.0/bin/garage` by `scripts/test`), one
//! node on loopback in a temporary directory, with one bucket and one key. Objects are read
//! back through `object_store`'s own client, never through the recorder's uploader.

use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const GARAGE_VERSION: &str = "2.5.0";
pub const REGION: &str = "garage";
pub const BUCKET: &str = "recordings";

/// Where `scripts/test` installs the Garage binary.
pub fn garage_binary() -> PathBuf {
    let home = std::env::var_os("HOME").expect("HOME is set");
    let bin = PathBuf::from(home).join(format!(
        ".cache/sip-recorder/garage-{GARAGE_VERSION}/bin/garage"
    ));
    assert!(
        bin.exists(),
        "{} is missing: scripts/test installs it (cargo install garage --version {GARAGE_VERSION})",
        bin.display()
    );
    bin
}

/// One running (or stopped) Garage node; killed on drop.
pub struct Garage {
    child: Option<Child>,
    config: PathBuf,
    log: PathBuf,
    pub s3_port: u16,
    pub key_id: String,
    pub secret: String,
    /// A TOML file the recorder's `storage.credentials_file` can name.
    pub credentials_file: PathBuf,
    runtime: tokio::runtime::Runtime,
    reader: std::sync::OnceLock<AmazonS3>,
    dir: tempfile::TempDir,
}

fn hex_token(bytes: usize) -> String {
    (0..bytes)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
}

impl Garage {
    /// Config, server, one-node layout, the bucket and a key with read + write on it.
    pub fn start() -> Garage {
        let dir = tempfile::Builder::new()
            .prefix("sip-recorder-garage")
            .tempdir()
            .expect("tempdir");
        let s3_port = super::free_port();
        let rpc_port = super::free_port();
        let config = dir.path().join("garage.toml");
        fs::write(
            &config,
            format!(
                "metadata_dir = \"{meta}\"\ndata_dir = \"{data}\"\ndb_engine = \"sqlite\"\n\
                 replication_factor = 1\n\
                 rpc_bind_addr = \"127.0.0.1:{rpc_port}\"\nrpc_public_addr = \"127.0.0.1:{rpc_port}\"\n\
                 rpc_secret = \"{secret}\"\n\n[s3_api]\ns3_region = \"{REGION}\"\n\
                 api_bind_addr = \"127.0.0.1:{s3_port}\"\nroot_domain = \".s3.garage.localhost\"\n",
                meta = dir.path().join("meta").display(),
                data = dir.path().join("data").display(),
                secret = hex_token(32),
            ),
        )
        .expect("write garage.toml");
        let mut g = Garage {
            child: None,
            log: dir.path().join("garage.log"),
            config,
            s3_port,
            key_id: format!("GK{}", hex_token(12)),
            secret: hex_token(32),
            credentials_file: dir.path().join("credentials.toml"),
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime"),
            reader: std::sync::OnceLock::new(),
            dir,
        };
        g.spawn();
        let node = g.wait_for_node_id();
        g.cli(&["layout", "assign", "-z", "dc1", "-c", "1G", &node]);
        g.cli(&["layout", "apply", "--version", "1"]);
        g.cli(&["bucket", "create", BUCKET]);
        let (id, secret) = (g.key_id.clone(), g.secret.clone());
        g.cli(&["key", "import", "--yes", "-n", "recorder", &id, &secret]);
        g.cli(&["bucket", "allow", "--read", "--write", BUCKET, "--key", &id]);
        fs::write(
            &g.credentials_file,
            format!("access_key_id = \"{id}\"\nsecret_access_key = \"{secret}\"\n"),
        )
        .expect("write credentials");
        g.wait_s3_ready();
        g
    }

    fn spawn(&mut self) {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("garage log");
        let child = Command::new(garage_binary())
            .arg("-c")
            .arg(&self.config)
            .arg("server")
            .env("RUST_LOG", "garage=info")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().expect("clone log")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn garage server");
        self.child = Some(child);
    }

    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn run_cli(&self, args: &[&str]) -> Output {
        Command::new(garage_binary())
            .arg("-c")
            .arg(&self.config)
            .args(args)
            .output()
            .expect("run garage CLI")
    }

    /// Runs a CLI command; panics with its output when it fails.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = self.run_cli(args);
        assert!(
            out.status.success(),
            "garage {args:?} failed: {}\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `garage node id -q` once the daemon answers `garage status`: `<hex id>@<addr>`; the
    /// layout takes the hex part.
    fn wait_for_node_id(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let out = self.run_cli(&["status"]);
            if out.status.success() {
                let id = self.cli(&["node", "id", "-q"]);
                let id = id.trim().split('@').next().unwrap_or_default();
                assert!(!id.is_empty(), "garage node id printed nothing");
                return id.to_string();
            }
            assert!(
                Instant::now() < deadline,
                "garage did not come up: {}\n{}",
                String::from_utf8_lossy(&out.stderr),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.s3_port)
    }

    /// The `[storage]` table of a recorder that uploads here.
    pub fn storage_toml(&self, extra: &str) -> String {
        self.storage_toml_with_credentials(&self.credentials_file, extra)
    }

    /// The same with another credentials file.
    pub fn storage_toml_with_credentials(
        &self,
        credentials: &std::path::Path,
        extra: &str,
    ) -> String {
        format!(
            "[storage]\nendpoint = \"{}\"\nregion = \"{REGION}\"\nbucket = \"{BUCKET}\"\n\
             credentials_file = \"{}\"\nmax_backoff_secs = 1\n{extra}\n",
            self.endpoint(),
            credentials.display()
        )
    }

    /// SIGKILL: the server is gone at once, as in a crash or a network cut.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the same node again (same data, ports and key) and waits until S3 answers.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "restart of a running garage");
        self.spawn();
        self.wait_s3_ready();
    }

    /// Our own client, independent of the recorder's uploader (one, kept: its connections
    /// are reused).
    pub fn client(&self) -> AmazonS3 {
        self.reader.get_or_init(|| self.new_client()).clone()
    }

    fn new_client(&self) -> AmazonS3 {
        AmazonS3Builder::new()
            .with_endpoint(self.endpoint())
            .with_allow_http(true)
            .with_region(REGION)
            .with_bucket_name(BUCKET)
            .with_access_key_id(&self.key_id)
            .with_secret_access_key(&self.secret)
            .with_virtual_hosted_style_request(false)
            .build()
            .expect("S3 client")
    }

    fn wait_s3_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match self.try_list("") {
                Ok(_) => return,
                Err(e) => assert!(
                    Instant::now() < deadline,
                    "garage S3 API not ready: {e}\n{}",
                    self.log()
                ),
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn try_list(&self, prefix: &str) -> Result<Vec<(String, u64)>, object_store::Error> {
        use futures_util::TryStreamExt;
        let client = self.client();
        let prefix = (!prefix.is_empty()).then(|| ObjectPath::from(prefix));
        self.runtime.block_on(async move {
            let metas: Vec<_> = client.list(prefix.as_ref()).try_collect().await?;
            Ok(metas
                .into_iter()
                .map(|m| (m.location.to_string(), m.size))
                .collect())
        })
    }

    /// Every object key (and size) below `prefix`.
    pub fn list(&self, prefix: &str) -> Vec<(String, u64)> {
        self.try_list(prefix).expect("list objects")
    }

    /// An object's bytes.
    pub fn get(&self, key: &str) -> Vec<u8> {
        let client = self.client();
        let path = ObjectPath::from(key);
        self.runtime
            .block_on(async move { client.get(&path).await?.bytes().await })
            .unwrap_or_else(|e| panic!("GET {key}: {e}"))
            .to_vec()
    }

    /// Several objects at once (Garage answers each GET in ~40 ms on loopback, so the
    /// byte-for-byte checks of many recordings read in parallel).
    pub fn get_many(&self, keys: &[String]) -> Vec<Vec<u8>> {
        use futures_util::StreamExt;
        let client = self.client();
        self.runtime.block_on(async move {
            futures_util::stream::iter(keys.iter().cloned())
                .map(|key| {
                    let client = client.clone();
                    async move {
                        let path = ObjectPath::from(key.as_str());
                        let got = async { client.get(&path).await?.bytes().await }.await;
                        got.unwrap_or_else(|e| panic!("GET {key}: {e}")).to_vec()
                    }
                })
                .buffered(16)
                .collect()
                .await
        })
    }

    /// An object's ETag as HEAD gives it, without quotes.
    pub fn etag(&self, key: &str) -> String {
        let client = self.client();
        let path = ObjectPath::from(key);
        let meta = self
            .runtime
            .block_on(async move { client.head(&path).await })
            .unwrap_or_else(|e| panic!("HEAD {key}: {e}"));
        meta.e_tag.unwrap_or_default().trim_matches('"').to_string()
    }

    pub fn runtime(&self) -> &tokio::runtime::Runtime {
        &self.runtime
    }

    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = self.log();
            let mut start = log.len().saturating_sub(16 * 1024);
            while !log.is_char_boundary(start) {
                start += 1;
            }
            let tail = &log[start..];
            eprintln!("---- garage log ----\n{tail}\n---- end of garage log ----");
        }
        self.stop();
    }
}
