//! The server's TLS configuration from PEM files.

use std::path::Path;
use std::sync::Arc;

use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ServerConfig};

/// Why the TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The certificate file holds no PEM certificate.
    #[error("no PEM certificate in {what}")]
    NoCertificate {
        /// The file, or `certificate`.
        what: String,
    },
    /// The key file holds no PEM private key (PKCS#8, PKCS#1 or SEC1).
    #[error("no PEM private key in {what}")]
    NoKey {
        /// The file, or `key`.
        what: String,
    },
    /// rustls refused the certificate and key (for example, they do not belong together).
    #[error("the certificate and key are not usable")]
    Rustls(#[source] rustls::Error),
}

/// A TLS 1.2/1.3 server configuration (rustls with ring, HTTP/1.1 by ALPN) from a PEM certificate chain
/// (leaf first) and its PEM private key. `what` names them in errors.
pub fn tls_config_from_pem(cert_pem: &[u8], key_pem: &[u8], what: (&str, &str)) -> Result<Arc<ServerConfig>, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem).filter_map(Result::ok).collect();
    if certs.is_empty() {
        return Err(TlsError::NoCertificate { what: what.0.to_owned() });
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|_| TlsError::NoKey { what: what.1.to_owned() })?;
    let mut config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Rustls)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(TlsError::Rustls)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// [`tls_config_from_pem`] from two files, e.g. `tls.crt` and `tls.key` of a `kubernetes.io/tls` Secret.
pub fn tls_config_from_files(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let read = |p: &Path| std::fs::read(p).map_err(|source| TlsError::Read { path: p.display().to_string(), source });
    let (c, k) = (read(cert)?, read(key)?);
    tls_config_from_pem(&c, &k, (&cert.display().to_string(), &key.display().to_string()))
}
