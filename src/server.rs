//! Wiring: listeners, the SIP core task, recording tasks, signals and graceful shutdown.

use crate::api::{ApiCommand, ApiState};
use crate::config::{Config, ListenAddr};
use crate::net::stream::{StreamSettings, StreamState, serve_tcp};
use crate::net::{Inbound, Transmitter, udp};
use crate::recording::EndReason;
use crate::recording::task::{RecordingReport, RecordingSettings, RecordingTasks};
use crate::recording::workers::MediaWorkers;
use crate::recording::writer::{WavWriterPool, WriterConfig};
use crate::sdp::{AnswerConfig, PortPool};
use crate::sip::Transport;
use crate::sip::message::Limits;
use crate::sip::uas::{Output, Uas, UasConfig};
use crate::telemetry::Telemetry;
use dashmap::DashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, UdpSocket};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Why the recorder could not start or stopped abnormally, by what failed. The message names
/// the listener, directory or config key; the source says why (print it with
/// [`crate::error::Chain`]).
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot bind SIP listener {listen}")]
    Bind {
        listen: ListenAddr,
        #[source]
        source: io::Error,
    },
    #[error("cannot bind http.listen {addr}")]
    HttpBind {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("spool.dir {}", dir.display())]
    Spool {
        dir: PathBuf,
        #[source]
        source: SpoolError,
    },
    #[error("recording.dir {}", dir.display())]
    Recordings {
        dir: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A certificate, key or CA file; the text names its config key and path.
    #[error("{0}")]
    Tls(String),
    /// A combination of settings the recorder cannot run with.
    #[error("{0}")]
    Config(&'static str),
    /// CDR receivers or the CDR service.
    #[error(transparent)]
    Cdr(crate::cdr::CdrError),
    /// `[storage]`: credentials, client or job directory.
    #[error(transparent)]
    Storage(#[from] crate::storage::s3::StorageSetupError),
    /// A thread, signal handler or task of our own.
    #[error("cannot start {what}")]
    Internal {
        what: &'static str,
        #[source]
        source: io::Error,
    },
    /// The media worker threads (`media.workers`).
    #[error("cannot start the media workers (media.workers)")]
    MediaWorkers(#[source] crate::recording::workers::WorkerStartError),
    #[error("a start-up or shutdown task failed")]
    Task(#[from] tokio::task::JoinError),
    #[error("SIP core stopped unexpectedly")]
    CoreStopped,
}

/// What in the spool directory could not be created or written.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error(transparent)]
    Cdr(crate::cdr::CdrError),
    #[error("EDR log")]
    Edr(#[source] io::Error),
    #[error(transparent)]
    ApiToken(crate::api::auth::AuthSetupError),
}

impl StartupError {
    fn spool(config: &Config, source: SpoolError) -> Self {
        StartupError::Spool {
            dir: config.spool.dir.clone(),
            source,
        }
    }
}

/// CDR spool failures are the directory's; the rest are the receivers' or ours.
fn cdr_start_error(config: &Config, e: crate::cdr::CdrError) -> StartupError {
    use crate::cdr::CdrError;
    match e {
        CdrError::Spool { .. } | CdrError::Instance { .. } => {
            StartupError::spool(config, SpoolError::Cdr(e))
        }
        e => StartupError::Cdr(e),
    }
}

/// Commands from the process (signals, API) to the SIP core.
#[derive(Debug)]
enum Control {
    /// SIGTERM: refuse new recordings, let active ones run.
    Drain,
    /// End every recording now with BYE.
    StopAll,
}

/// Run the recorder until it is told to stop. Returns once every recording is finalized.
pub async fn run(config: Config) -> Result<(), StartupError> {
    let media_ip = config.media_ip_for_sdp();
    warn_about_settings(&config);
    crate::net::tls::install_crypto_provider();
    let logs = start_logs(&config)?;
    let recovered = recover_recordings(&config).await?;
    let telemetry = Arc::new(Telemetry::default());
    let _ = telemetry.cdr_receivers.set(logs.cdr.receivers());
    let shutdown = CancellationToken::new();
    let storage = crate::storage::start_configured(&config, &telemetry, &shutdown)?;
    let locations = crate::storage::queue_recovered(storage.as_ref(), &recovered).await;
    for (r, location) in recovered.iter().zip(locations) {
        r.send_cdrs(&logs.cdr, location);
    }
    open_recordings_dir(&config, &telemetry)?;
    let (inbound_tx, inbound_rx) = mpsc::channel::<Inbound>(65536);
    let (transmitter, bound) = bind_sip_listeners(&config, media_ip, inbound_tx, &shutdown).await?;
    let uas = Uas::new(
        uas_config(&config, media_ip),
        PortPool::new(config.media.rtp_port_min, config.media.rtp_port_max),
        rand::random(),
    );
    let writer = WavWriterPool::start(WriterConfig {
        flush_interval: crate::recording::stream::FLUSH_INTERVAL,
        max_pending_bytes: config.recording.max_pending_audio_bytes(),
        ..WriterConfig::default()
    })
    .map_err(|source| StartupError::Internal {
        what: "the WAV writer",
        source,
    })?;
    let _ = telemetry.writer.set(writer.handle());
    let media =
        MediaWorkers::start(config.media.workers.threads()).map_err(StartupError::MediaWorkers)?;
    let (reports_tx, reports_rx) = mpsc::unbounded_channel();
    let mut settings =
        recording_settings(&config, media_ip, &writer, &media, &telemetry, &logs.cdr);
    settings.storage = storage;
    let recordings = RecordingTasks::new(settings, reports_tx);
    let (control_tx, control_rx) = mpsc::unbounded_channel();
    let (api_tx, api_rx) = mpsc::unbounded_channel();
    start_api(&config, telemetry.clone(), api_tx, &shutdown).await?;
    tokio::spawn(watch_disk(
        config.recording.dir.clone(),
        telemetry.clone(),
        config.limits.disk_high_watermark_percent,
        config.limits.disk_low_watermark_percent,
        shutdown.clone(),
    ));
    tracing::info!(listeners = ?bound, %media_ip, rtp_ports = %format!("{}-{}", config.media.rtp_port_min, config.media.rtp_port_max), "sip-recorder running");
    let core = tokio::spawn(run_core(
        uas,
        CoreIo {
            inbound: inbound_rx,
            reports: reports_rx,
            control: control_rx,
            api: api_rx,
            transmitter,
            recordings,
            telemetry,
            edr: logs.edr.clone(),
            cdr: logs.cdr.clone(),
        },
    ));
    let grace = config.shutdown.grace_period;
    wait_for_shutdown(control_tx, core, grace).await?;
    shutdown.cancel();
    // Every recording task has stopped its streams and closed its files; this ends the media
    // workers, flushes anything left and stops the writer threads.
    tokio::task::spawn_blocking(move || media.shutdown()).await?;
    tokio::task::spawn_blocking(move || writer.shutdown()).await?;
    logs.shutdown().await?;
    tracing::info!("sip-recorder stopped");
    Ok(())
}

fn warn_about_settings(config: &Config) {
    if config.sip.min_session_expires_secs < crate::config::MIN_SESSION_EXPIRES_FLOOR_SECS {
        tracing::warn!(
            min_session_expires_secs = config.sip.min_session_expires_secs,
            "sip.min_session_expires_secs is below the 90 s RFC 4028 minimum"
        );
    }
}

/// The CDR sink and the EDR log, both under the spool directory.
struct Logs {
    cdr: crate::cdr::CdrSink,
    cdr_service: crate::cdr::CdrService,
    edr: crate::cdr::edr::EdrLog,
    edr_service: crate::cdr::edr::EdrService,
}

impl Logs {
    /// Every CDR recorded so far is on disk before exit; undelivered ones are re-sent next
    /// start.
    async fn shutdown(self) -> Result<(), StartupError> {
        self.cdr_service.shutdown().await;
        let edr_service = self.edr_service;
        tokio::task::spawn_blocking(move || edr_service.shutdown()).await?;
        Ok(())
    }
}

fn start_logs(config: &Config) -> Result<Logs, StartupError> {
    let (cdr, cdr_service) = crate::cdr::start(crate::cdr::settings_from(config))
        .map_err(|e| cdr_start_error(config, e))?;
    let edr_settings = crate::cdr::EdrSettings {
        log_ack: config.cdr.edr_log_ack,
        ..crate::cdr::EdrSettings::new(&config.spool.dir)
    };
    let (edr, edr_service) = crate::cdr::edr::start(edr_settings)
        .map_err(|e| StartupError::spool(config, SpoolError::Edr(e)))?;
    Ok(Logs {
        cdr,
        cdr_service,
        edr,
        edr_service,
    })
}

/// Finalize what a crash left unfinished before taking new calls.
async fn recover_recordings(
    config: &Config,
) -> Result<Vec<crate::recording::startup::Recovered>, StartupError> {
    let recordings_dir = config.recording.dir.clone();
    let recovered = tokio::task::spawn_blocking(move || {
        crate::recording::startup::recover_unfinished(&recordings_dir)
    })
    .await?;
    if !recovered.is_empty() {
        tracing::warn!(
            count = recovered.len(),
            "recordings recovered after an unclean stop"
        );
    }
    Ok(recovered)
}

fn open_recordings_dir(config: &Config, telemetry: &Telemetry) -> Result<(), StartupError> {
    std::fs::create_dir_all(&config.recording.dir).map_err(|source| StartupError::Recordings {
        dir: config.recording.dir.clone(),
        source,
    })?;
    crate::disk::check(
        &config.recording.dir,
        telemetry,
        config.limits.disk_high_watermark_percent,
        config.limits.disk_low_watermark_percent,
    );
    Ok(())
}

/// What every SIP listener task shares.
struct Listening<'a> {
    config: &'a Config,
    media_ip: IpAddr,
    inbound: mpsc::Sender<Inbound>,
    shutdown: &'a CancellationToken,
    stream_state: StreamState,
}

/// Binds every `sip.listen` address in order; returns the transmitter over them and the
/// addresses bound (port 0 resolved) for the log.
async fn bind_sip_listeners(
    config: &Config,
    media_ip: IpAddr,
    inbound: mpsc::Sender<Inbound>,
    shutdown: &CancellationToken,
) -> Result<(Transmitter, Vec<String>), StartupError> {
    let connections = Arc::new(DashMap::new());
    let ctx = Listening {
        config,
        media_ip,
        inbound,
        shutdown,
        stream_state: StreamState::new(connections.clone()),
    };
    let mut udp_sockets = Vec::new();
    let mut bound = Vec::new();
    for (index, listen) in config.sip.listen.iter().enumerate() {
        let listener =
            u16::try_from(index).map_err(|_| StartupError::Config("too many SIP listeners"))?;
        let (socket, local) = match listen.transport {
            Transport::Udp => ctx.bind_udp(listener, listen).await?,
            Transport::Tcp | Transport::Tls => (None, ctx.bind_stream(listener, listen).await?),
        };
        udp_sockets.push(socket);
        bound.push(
            ListenAddr {
                addr: local,
                ..*listen
            }
            .to_string(),
        );
    }
    Ok((Transmitter::new(udp_sockets, connections), bound))
}

/// A SIP UDP listener's receive buffer: room for a burst (a registration storm, a dispatcher
/// failing over hundreds of calls at once); the kernel default (~200 KiB) holds only a few
/// hundred INVITEs with SDP.
const SIP_UDP_RECV_BUFFER: usize = 4 * 1024 * 1024;

impl Listening<'_> {
    async fn bind_udp(
        &self,
        listener: u16,
        listen: &ListenAddr,
    ) -> Result<(Option<Arc<UdpSocket>>, SocketAddr), StartupError> {
        let bind_error = |source| StartupError::Bind {
            listen: *listen,
            source,
        };
        let socket = Arc::new(
            crate::net::bind_udp(listen.addr, SIP_UDP_RECV_BUFFER)
                .and_then(UdpSocket::from_std)
                .map_err(bind_error)?,
        );
        let local = socket.local_addr().map_err(bind_error)?;
        tokio::spawn(udp::serve(
            socket.clone(),
            listener,
            advertised_addr(local, self.media_ip),
            self.inbound.clone(),
            self.shutdown.clone(),
        ));
        Ok((Some(socket), local))
    }

    async fn bind_stream(
        &self,
        listener: u16,
        listen: &ListenAddr,
    ) -> Result<SocketAddr, StartupError> {
        let bind_error = |source| StartupError::Bind {
            listen: *listen,
            source,
        };
        let config = self.config;
        let tcp = TcpListener::bind(listen.addr).await.map_err(bind_error)?;
        let local = tcp.local_addr().map_err(bind_error)?;
        let settings = StreamSettings {
            transport: listen.transport,
            listener,
            advertised: advertised_addr(local, self.media_ip),
            max_message_size: config.sip.max_message_size,
            idle_timeout: config.sip.tcp_idle_timeout,
            max_connections: config.sip.max_connections,
            max_connections_per_source: config.sip.max_connections_per_source,
        };
        let tls = match listen.transport {
            Transport::Tls => Some(tls_setup(config)?),
            _ => None,
        };
        tokio::spawn(serve_tcp(
            tcp,
            settings,
            self.stream_state.clone(),
            self.inbound.clone(),
            self.shutdown.clone(),
            tls,
        ));
        Ok(local)
    }
}

fn recording_settings(
    config: &Config,
    media_ip: IpAddr,
    writer: &WavWriterPool,
    media: &MediaWorkers,
    telemetry: &Arc<Telemetry>,
    cdr: &crate::cdr::CdrSink,
) -> RecordingSettings {
    RecordingSettings {
        recordings_dir: config.recording.dir.clone(),
        layout: config.recording.layout.clone(),
        media_bind_ip: rtp_bind_ip(media_ip),
        media_source: config.media.media_source,
        pause_policy: config.media.pause_policy,
        file_sample_rate: config.media.file_sample_rate,
        media_timeout: config.media.media_timeout,
        writer: writer.handle(),
        media: media.clone(),
        telemetry: telemetry.clone(),
        cdr: cdr.clone(),
        storage: None,
    }
}

/// Binds `http.listen` and serves the API on it.
async fn start_api(
    config: &Config,
    telemetry: Arc<Telemetry>,
    commands: mpsc::UnboundedSender<ApiCommand>,
    shutdown: &CancellationToken,
) -> Result<(), StartupError> {
    let http = TcpListener::bind(config.http.listen)
        .await
        .map_err(|source| StartupError::HttpBind {
            addr: config.http.listen,
            source,
        })?;
    let auth = crate::api::auth::Auth::from_config(&config.http, &config.spool.dir)
        .map_err(|e| StartupError::spool(config, SpoolError::ApiToken(e)))?;
    let app = crate::api::router(ApiState {
        telemetry,
        commands,
        auth: Arc::new(auth),
    });
    serve_api(http, app, config, shutdown.clone())
}

/// Serves the API, over TLS when `http.tls_certificate`/`http.tls_private_key` are set.
fn serve_api(
    http: TcpListener,
    app: axum::Router,
    config: &Config,
    stop: CancellationToken,
) -> Result<(), StartupError> {
    let tls = match (&config.http.tls_certificate, &config.http.tls_private_key) {
        (Some(cert), Some(key)) => {
            Some(crate::api::tls::server_config(cert, key).map_err(StartupError::Tls)?)
        }
        _ => None,
    };
    tokio::spawn(async move {
        let stopped = async move { stop.cancelled().await };
        let served = match tls {
            Some(tls) => match crate::api::tls::TlsListener::new(http, tls) {
                Ok(listener) => {
                    axum::serve(listener, app)
                        .with_graceful_shutdown(stopped)
                        .await
                }
                Err(e) => Err(e),
            },
            None => axum::serve(http, app).with_graceful_shutdown(stopped).await,
        };
        if let Err(e) = served {
            tracing::error!(error = %e, "HTTP API stopped");
        }
    });
    Ok(())
}

fn tls_setup(config: &Config) -> Result<crate::net::tls::TlsSetup, StartupError> {
    let (Some(cert), Some(key)) = (&config.sip.tls_certificate, &config.sip.tls_private_key) else {
        return Err(StartupError::Config(
            "a tls: listener needs sip.tls_certificate and sip.tls_private_key",
        ));
    };
    let server = crate::net::tls::server_config(cert, key, config.sip.tls_client_ca.as_deref())
        .map_err(StartupError::Tls)?;
    Ok(crate::net::tls::TlsSetup {
        acceptor: tokio_rustls::TlsAcceptor::from(server),
        handshake_timeout: config.sip.tls_handshake_timeout,
    })
}

/// RTP sockets bind to the media IP when it is an address of this host (so a recorder told
/// to use 127.0.0.1 never listens elsewhere), else to every interface (behind NAT the
/// media IP is the public address, which no local socket can bind).
fn rtp_bind_ip(media_ip: IpAddr) -> IpAddr {
    if std::net::UdpSocket::bind(SocketAddr::new(media_ip, 0)).is_ok() {
        media_ip
    } else if media_ip.is_ipv6() {
        IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)
    }
}

/// Our address as peers should see it: an unspecified listener IP is replaced by the
/// media IP.
fn advertised_addr(local: SocketAddr, media_ip: IpAddr) -> SocketAddr {
    if local.ip().is_unspecified() {
        SocketAddr::new(media_ip, local.port())
    } else {
        local
    }
}

fn uas_config(config: &Config, media_ip: IpAddr) -> UasConfig {
    UasConfig {
        t1: config.sip.t1,
        t2: config.sip.t2,
        limits: Limits {
            max_message_size: config.sip.max_message_size,
            max_headers: config.sip.max_headers,
            max_content_length: config.sip.max_message_size,
        },
        min_se: config.sip.min_session_expires_secs,
        max_sessions: config.limits.max_sessions,
        retry_after_secs: config.limits.retry_after_secs,
        server_header: config.sip.server_header.clone(),
        report_acks: config.cdr.edr_log_ack,
        sources: crate::sip::source_policy::SourcePolicyConfig {
            allow: config.security.allow.clone(),
            reply_to_refused: config.security.refused_action == crate::config::RefusalAction::Reply,
            rate_per_second: f64::from(config.security.rate_limit_per_second),
            burst: f64::from(config.security.rate_limit_burst),
            reply_to_limited: config.security.rate_limited_action
                == crate::config::RefusalAction::Reply,
            scanner_user_agents: if config.security.drop_scanners {
                crate::sip::source_policy::DEFAULT_SCANNER_USER_AGENTS
                    .iter()
                    .map(|s| s.to_string())
                    .collect()
            } else {
                vec![]
            },
        },
        answer: AnswerConfig {
            srtp: config.media.srtp,
            media_ip,
            accept_video: false,
        },
    }
}

/// SIGTERM: drain, then after the grace period end what is left. SIGINT or a second
/// SIGTERM: end everything now. Either way every recording is finalized before returning.
async fn wait_for_shutdown(
    control: mpsc::UnboundedSender<Control>,
    mut core: tokio::task::JoinHandle<()>,
    grace: Duration,
) -> Result<(), StartupError> {
    let signal_error = |source| StartupError::Internal {
        what: "the signal handlers",
        source,
    };
    let mut sigterm = signal(SignalKind::terminate()).map_err(signal_error)?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(signal_error)?;
    tokio::select! {
        _ = sigterm.recv() => {
            tracing::info!(grace_secs = grace.as_secs(), "SIGTERM: draining");
            let _ = control.send(Control::Drain);
            tokio::select! {
                _ = tokio::time::sleep(grace) => {
                    tracing::info!("grace period over: ending active recordings");
                    let _ = control.send(Control::StopAll);
                }
                _ = sigterm.recv() => {
                    tracing::info!("second SIGTERM: ending active recordings now");
                    let _ = control.send(Control::StopAll);
                }
                _ = sigint.recv() => {
                    tracing::info!("SIGINT: ending active recordings now");
                    let _ = control.send(Control::StopAll);
                }
                _ = &mut core => return Ok(()),
            }
        }
        _ = sigint.recv() => {
            tracing::info!("SIGINT: ending active recordings now");
            let _ = control.send(Control::Drain);
            let _ = control.send(Control::StopAll);
        }
        r = &mut core => {
            r?;
            return Err(StartupError::CoreStopped);
        }
    }
    core.await?;
    Ok(())
}

/// Everything the SIP core task talks to.
struct CoreIo {
    inbound: mpsc::Receiver<Inbound>,
    reports: mpsc::UnboundedReceiver<RecordingReport>,
    control: mpsc::UnboundedReceiver<Control>,
    api: mpsc::UnboundedReceiver<ApiCommand>,
    transmitter: Transmitter,
    recordings: RecordingTasks,
    telemetry: Arc<Telemetry>,
    edr: crate::cdr::EdrLog,
    cdr: crate::cdr::CdrSink,
}

/// Re-check the recordings disk every second (SPEC §7 watermarks).
async fn watch_disk(
    dir: std::path::PathBuf,
    telemetry: Arc<Telemetry>,
    high: u8,
    low: u8,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.cancelled() => return,
        }
        let (dir, t) = (dir.clone(), telemetry.clone());
        let _ = tokio::task::spawn_blocking(move || crate::disk::check(&dir, &t, high, low)).await;
    }
}

/// The SIP core task: owns the sans-IO [`Uas`], feeds it inputs and the clock, and carries
/// out what it asks for.
async fn run_core(mut uas: Uas, mut io: CoreIo) {
    use std::sync::atomic::Ordering;
    let mut publish = tokio::time::interval(Duration::from_secs(1));
    loop {
        let deadline = uas.poll_timeout();
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await,
                None => std::future::pending().await,
            }
        };
        uas.set_disk_full(io.telemetry.disk_full.load(Ordering::Relaxed));
        tokio::select! {
            Some(msg) = io.inbound.recv() => take_inbound(&mut uas, &mut io.inbound, msg),
            Some(report) = io.reports.recv() => on_report(&mut uas, &mut io, report),
            Some(cmd) = io.control.recv() => on_control(&mut uas, &io, cmd),
            Some(cmd) = io.api.recv() => on_api_command(&mut uas, &io, cmd),
            _ = publish.tick() => publish_counters(&uas, &io),
            _ = sleep => uas.handle_timeout(Instant::now()),
        }
        deliver_outputs(&mut uas, &mut io);
        if uas.is_draining() && uas.active_sessions() == 0 {
            break;
        }
    }
    // Let the last BYEs leave before the sockets close.
    tokio::time::sleep(Duration::from_millis(50)).await;
    io.recordings.join_all().await;
}

/// Feeds `first` and what else is queued to the UAS in one go: fewer wake-ups under load.
fn take_inbound(uas: &mut Uas, inbound: &mut mpsc::Receiver<Inbound>, first: Inbound) {
    tracing::trace!(remote = %first.flow.remote, bytes = first.data.len(), "SIP message in");
    uas.handle_input(Instant::now(), first.data, first.flow);
    for _ in 0..64 {
        match inbound.try_recv() {
            Ok(msg) => uas.handle_input(Instant::now(), msg.data, msg.flow),
            Err(_) => break,
        }
    }
}

/// A recording task reports its preparation, or asks for its call to end.
fn on_report(uas: &mut Uas, io: &mut CoreIo, report: RecordingReport) {
    match report {
        RecordingReport::Prepared {
            recording_id,
            result,
        } => {
            if result.is_err() {
                io.recordings.forget(&recording_id);
            }
            uas.recording_prepared(Instant::now(), &recording_id, result)
        }
        RecordingReport::Stop {
            recording_id,
            reason,
        } => {
            if reason == EndReason::Error {
                internal_error_edr(io, &recording_id, "recording failed");
            }
            uas.stop_recording(Instant::now(), &recording_id, reason)
        }
    }
}

fn on_control(uas: &mut Uas, io: &CoreIo, cmd: Control) {
    match cmd {
        Control::Drain => {
            io.telemetry
                .draining
                .store(true, std::sync::atomic::Ordering::Relaxed);
            uas.start_drain()
        }
        Control::StopAll => uas.stop_all(Instant::now(), EndReason::Shutdown),
    }
}

fn on_api_command(uas: &mut Uas, io: &CoreIo, cmd: ApiCommand) {
    match cmd {
        ApiCommand::Stop { recording_id } => {
            tracing::info!(recording_id, "recording stopped through the API");
            io.cdr.mark_api_stop(&recording_id);
            uas.stop_recording(Instant::now(), &recording_id, EndReason::Shutdown)
        }
    }
}

/// The SIP core's counters for `/metrics`, once a second.
fn publish_counters(uas: &Uas, io: &CoreIo) {
    use std::sync::atomic::Ordering;
    let t = &io.telemetry;
    t.set_responses(&uas.stats().responses_by_code);
    t.set_sip_tolerances(&uas.stats().tolerances);
    t.active_sessions
        .store(uas.active_sessions() as u64, Ordering::Relaxed);
    t.free_rtp_ports
        .store(uas.free_rtp_ports() as u64, Ordering::Relaxed);
    t.cdr_spool_depth
        .store(io.cdr.spool_depth() as u64, Ordering::Relaxed);
}

/// Everything the UAS has to send, tell the recordings or log.
fn deliver_outputs(uas: &mut Uas, io: &mut CoreIo) {
    while let Some(out) = uas.poll_output() {
        match out {
            Output::Transmit { flow, data } => {
                tracing::trace!(remote = %flow.remote, bytes = data.len(), "SIP message out");
                io.transmitter.send(&flow, data)
            }
            Output::Recording(event) => {
                if let crate::sip::uas::RecordingEvent::Established { .. } = event {
                    io.telemetry
                        .recordings_started
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                io.recordings.dispatch(event)
            }
            Output::Transaction(record) => log_transaction(io, &record),
        }
    }
}

/// The EDR line of a finished transaction, and `SHUTDOWN` when it reveals an internal error.
fn log_transaction(io: &CoreIo, record: &crate::sip::transaction_log::TransactionRecord) {
    use crate::cdr::edr::mapping::{Clock, edr_record, internal_error, shutdown_record};
    let instance = io.edr.instance_for(&record.call_id);
    if let Some(line) = edr_record(record, io.edr.logs_ack(), instance.clone(), Clock::now()) {
        io.edr.log(line);
    }
    if let Some(exception) = internal_error(record) {
        io.edr.log(shutdown_record(instance, &exception));
    }
}

/// EDR `SHUTDOWN` (seed `001_…`): the call instance of `recording_id` ends with an internal
/// error. The recording's log lines carry the details.
fn internal_error_edr(io: &CoreIo, recording_id: &str, what: &str) {
    let Some(call_id) = io
        .telemetry
        .published(recording_id)
        .and_then(|d| d["sip_call_id"].as_str().map(str::to_string))
    else {
        return;
    };
    let exception = format!("{what} (recording {recording_id}, see the recorder log)");
    let instance = io.edr.instance_for(&call_id);
    io.edr.log(crate::cdr::edr::mapping::shutdown_record(
        instance, &exception,
    ));
}
