//! SIP over TLS for the tests: a throw-away PKI made with `rcgen`, and a blocking rustls
//! client that frames SIP like the TCP client does.

use super::call::Call;
use super::client::Transport;
use super::msg::{Msg, frame_stream};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The process-wide rustls provider, the same one the recorder uses.
pub fn install_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// A certificate authority that issues server and client certificates.
pub struct TestCa {
    pub cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// A PEM certificate and its private key.
#[derive(Clone)]
pub struct Identity {
    pub cert_pem: String,
    pub key_pem: String,
}

impl TestCa {
    pub fn new(name: &str) -> TestCa {
        let key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).expect("self-sign CA");
        TestCa {
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    fn issue(&self, cn: &str, sans: &[&str], usage: ExtendedKeyUsagePurpose) -> Identity {
        let key = KeyPair::generate().expect("leaf key");
        let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
        let mut params = CertificateParams::new(sans).expect("leaf params");
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![usage];
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        let cert = params.signed_by(&key, &self.issuer).expect("sign leaf");
        Identity {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    /// A server certificate for the recorder on loopback.
    pub fn server(&self) -> Identity {
        self.issue(
            "recorder",
            &["localhost", "127.0.0.1"],
            ExtendedKeyUsagePurpose::ServerAuth,
        )
    }

    /// A client certificate (an SRC's).
    pub fn client(&self, cn: &str) -> Identity {
        self.issue(cn, &[cn], ExtendedKeyUsagePurpose::ClientAuth)
    }
}

fn client_config(ca_pem: &str, identity: Option<&Identity>) -> Arc<rustls::ClientConfig> {
    install_provider();
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.expect("CA PEM")).expect("add CA");
    }
    let builder = rustls::ClientConfig::builder().with_root_certificates(roots);
    let config = match identity {
        None => builder.with_no_client_auth(),
        Some(id) => {
            let certs = CertificateDer::pem_slice_iter(id.cert_pem.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .expect("client cert PEM");
            let key = PrivateKeyDer::from_pem_slice(id.key_pem.as_bytes()).expect("client key");
            builder
                .with_client_auth_cert(certs, key)
                .expect("client auth cert")
        }
    };
    Arc::new(config)
}

/// A SIP client over one TLS connection.
pub struct TlsSipClient {
    stream: rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
    pub server: SocketAddr,
    pub local: SocketAddr,
    rx: Vec<u8>,
    backlog: VecDeque<Msg>,
    /// The connection ended (EOF, reset or a TLS alert).
    pub closed: bool,
    /// Why it ended, when it was an error.
    pub close_reason: Option<String>,
}

impl TlsSipClient {
    /// Connects and runs the handshake to the end as far as the client can tell. With
    /// TLS 1.3 the server's verdict on a client certificate only shows on the first read.
    pub fn connect(
        server: SocketAddr,
        ca_pem: &str,
        identity: Option<&Identity>,
    ) -> Result<TlsSipClient, String> {
        let config = client_config(ca_pem, identity);
        let name = ServerName::try_from(server.ip().to_string()).expect("server name");
        let mut conn = rustls::ClientConnection::new(config, name).map_err(|e| e.to_string())?;
        let mut tcp = TcpStream::connect_timeout(&server, Duration::from_secs(5))
            .map_err(|e| format!("TCP connect to {server}: {e}"))?;
        tcp.set_nodelay(true).expect("TCP_NODELAY");
        tcp.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("read timeout");
        let local = tcp.local_addr().expect("local addr");
        while conn.is_handshaking() {
            conn.complete_io(&mut tcp)
                .map_err(|e| format!("TLS handshake: {e}"))?;
        }
        Ok(TlsSipClient {
            stream: rustls::StreamOwned::new(conn, tcp),
            server,
            local,
            rx: Vec::new(),
            backlog: VecDeque::new(),
            closed: false,
            close_reason: None,
        })
    }

    /// Negotiated TLS version, e.g. `TLSv1_3`.
    pub fn protocol(&self) -> String {
        format!("{:?}", self.stream.conn.protocol_version())
    }

    pub fn send(&mut self, msg: &str) {
        self.try_send(msg).expect("TLS write");
    }

    pub fn try_send(&mut self, msg: &str) -> std::io::Result<()> {
        self.stream.write_all(msg.as_bytes())?;
        self.stream.flush()
    }

    fn frame(&mut self) -> Option<Msg> {
        frame_stream(&mut self.rx).1
    }

    /// Next message, or `None` after `timeout` or when the connection ended.
    pub fn recv(&mut self, timeout: Duration) -> Option<Msg> {
        if let Some(m) = self.backlog.pop_front() {
            return Some(m);
        }
        let deadline = Instant::now() + timeout;
        let mut buf = vec![0u8; 65_536];
        loop {
            if let Some(m) = self.frame() {
                return Some(m);
            }
            let now = Instant::now();
            if self.closed || now >= deadline {
                return None;
            }
            let wait = (deadline - now).max(Duration::from_millis(1));
            self.stream
                .sock
                .set_read_timeout(Some(wait))
                .expect("read timeout");
            match self.stream.read(&mut buf) {
                Ok(0) => {
                    self.closed = true;
                    self.close_reason.get_or_insert_with(|| "EOF".to_string());
                }
                Ok(n) => self.rx.extend_from_slice(&buf[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => {
                    self.closed = true;
                    self.close_reason = Some(e.to_string());
                }
            }
        }
    }

    /// The final response (or provisional `code` when `code < 200`) to `req` as sent,
    /// matched on Call-ID and CSeq; requests arriving meanwhile are kept.
    pub fn wait_reply(&mut self, req: &str, code: u16, timeout: Duration) -> Option<Msg> {
        let r = Msg::parse(req.as_bytes()).expect("request is not SIP");
        let (n, method) = r.cseq();
        let deadline = Instant::now() + timeout;
        let mut kept = Vec::new();
        let mut found = None;
        while let Some(m) = self.recv(deadline.saturating_duration_since(Instant::now())) {
            if !m.is_response() {
                kept.push(m);
                continue;
            }
            let (mn, mm) = m.cseq();
            if m.call_id() != r.call_id() || mn != n || !mm.eq_ignore_ascii_case(&method) {
                continue;
            }
            let status = m.status().unwrap_or(0);
            if status < 200 && (code >= 200 || status != code) {
                continue;
            }
            found = Some(m);
            break;
        }
        for m in kept.into_iter().rev() {
            self.backlog.push_front(m);
        }
        found
    }

    pub fn expect_reply(&mut self, req: &str, code: u16, timeout: Duration) -> Msg {
        match self.wait_reply(req, code, timeout) {
            Some(m) if m.status() == Some(code) => m,
            Some(m) => panic!(
                "expected {code} over TLS, got:\n{}\nin reply to:\n{req}",
                String::from_utf8_lossy(&m.raw)
            ),
            None => panic!(
                "no {code} over TLS within {timeout:?} (closed: {:?}) in reply to:\n{req}",
                self.close_reason
            ),
        }
    }
}

/// A dialog for a TLS client: the TCP request builders with TLS in Via and Contact.
pub fn tls_call(client: &TlsSipClient, request_uri: &str) -> Call {
    Call::between(Transport::Tcp, client.local, client.server, request_uri)
}

/// Rewrites a request built for TCP into its TLS form (Via transport, Contact parameter).
pub fn over_tls(msg: &str) -> String {
    msg.replacen("SIP/2.0/TCP ", "SIP/2.0/TLS ", 1).replacen(
        ";transport=tcp>",
        ";transport=tls>",
        1,
    )
}
