//! SIP over TLS: the rustls server configuration. The handshake runs in the stream
//! listener (`stream.rs`) before the decrypted stream is served like TCP.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio_rustls::TlsAcceptor;

/// What a TLS listener needs besides the TCP settings.
#[derive(Clone)]
pub struct TlsSetup {
    pub acceptor: TlsAcceptor,
    pub handshake_timeout: Duration,
}

/// Install the one rustls crypto provider of the process (aws-lc-rs, the one reqwest uses
/// too). Calling it again is harmless.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// Build the server configuration. Errors name the config key of the file at fault.
pub fn server_config(
    certificate: &Path,
    private_key: &Path,
    client_ca: Option<&Path>,
) -> Result<Arc<rustls::ServerConfig>, String> {
    install_crypto_provider();
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(certificate)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| format!("sip.tls_certificate {}: {e}", certificate.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "sip.tls_certificate {}: no certificate in the file",
            certificate.display()
        ));
    }
    let key = PrivateKeyDer::from_pem_file(private_key)
        .map_err(|e| format!("sip.tls_private_key {}: {e}", private_key.display()))?;
    let builder = rustls::ServerConfig::builder();
    let builder = match client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(ca)
                .map_err(|e| format!("sip.tls_client_ca {}: {e}", ca.display()))?
            {
                let cert = cert.map_err(|e| format!("sip.tls_client_ca {}: {e}", ca.display()))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("sip.tls_client_ca {}: {e}", ca.display()))?;
            }
            let verifier = WebPkiClientVerifier::builder(Arc::new(roots))
                .build()
                .map_err(|e| format!("sip.tls_client_ca {}: {e}", ca.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let config = builder
        .with_single_cert(certs, key)
        .map_err(|e| format!("sip.tls_private_key {}: {e}", private_key.display()))?;
    Ok(Arc::new(config))
}
