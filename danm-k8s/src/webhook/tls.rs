//! The server's TLS configuration from PEM files, read again when they change.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio_rustls::rustls::crypto::{CryptoProvider, ring};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;
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
    /// rustls refused the certificate and key: for example, they do not belong together.
    #[error("the certificate in {cert} and the key in {key} are not usable together")]
    Unusable {
        /// The certificate's file, or `certificate`.
        cert: String,
        /// The key's file, or `key`.
        key: String,
        /// What rustls found.
        #[source]
        source: rustls::Error,
    },
    /// rustls refused to build the server configuration.
    #[error("the TLS configuration cannot be built")]
    Rustls(#[source] rustls::Error),
}

/// A TLS 1.2/1.3 server configuration (rustls with ring, HTTP/1.1 by ALPN) from a PEM certificate chain
/// (leaf first) and its PEM private key. `what` names them in errors.
pub fn tls_config_from_pem(cert_pem: &[u8], key_pem: &[u8], what: (&str, &str)) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = Arc::new(ring::default_provider());
    let key = certified_key(cert_pem, key_pem, what, &provider)?;
    server_config(provider, Arc::new(Fixed(Arc::new(key))))
}

/// A TLS server configuration (as [`tls_config_from_pem`]) serving the certificate and key of two files,
/// e.g. `tls.crt` and `tls.key` of a `kubernetes.io/tls` Secret, read again when either changes
/// ([`ReloadingCertificate`]): a renewed Secret is served without a restart.
pub fn tls_config_from_files(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = Arc::new(ring::default_provider());
    let resolver = ReloadingCertificate::new(cert, key, provider.clone())?;
    server_config(provider, Arc::new(resolver))
}

fn server_config(
    provider: Arc<CryptoProvider>,
    resolver: Arc<dyn ResolvesServerCert>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Rustls)?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The chain and key of two PEM texts, checked to belong together.
fn certified_key(
    cert_pem: &[u8],
    key_pem: &[u8],
    what: (&str, &str),
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem).filter_map(Result::ok).collect();
    if certs.is_empty() {
        return Err(TlsError::NoCertificate { what: what.0.to_owned() });
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|_| TlsError::NoKey { what: what.1.to_owned() })?;
    CertifiedKey::from_der(certs, key, provider).map_err(|source| TlsError::Unusable {
        cert: what.0.to_owned(),
        key: what.1.to_owned(),
        source,
    })
}

/// Always the same certificate.
#[derive(Debug)]
struct Fixed(Arc<CertifiedKey>);

impl ResolvesServerCert for Fixed {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

/// How often, at most, [`ReloadingCertificate`] looks at its files.
pub const RELOAD_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// Serves the certificate and key of two PEM files and reads them again when either changes (its
/// modification time, size or inode: a Secret volume's update swaps a symbolic link), looking at most once
/// per [`RELOAD_CHECK_INTERVAL`], during a handshake. A pair that does not load (caught half-written, or
/// a key that does not match its certificate) keeps the last good pair in use and is tried again at the
/// next change.
#[derive(Debug)]
pub struct ReloadingCertificate {
    cert: PathBuf,
    key: PathBuf,
    provider: Arc<CryptoProvider>,
    state: Mutex<Loaded>,
}

#[derive(Debug)]
struct Loaded {
    key: Arc<CertifiedKey>,
    stamp: Stamp,
    checked: Instant,
}

/// What tells a file's change: modification time, size and inode, of the certificate and the key.
type Stamp = [Option<(SystemTime, u64, u64)>; 2];

impl ReloadingCertificate {
    /// Loads the pair now; fails as [`tls_config_from_pem`] does when it is not usable.
    pub fn new(cert: &Path, key: &Path, provider: Arc<CryptoProvider>) -> Result<Self, TlsError> {
        let stamp = stamp(cert, key);
        let loaded = load(cert, key, &provider)?;
        Ok(Self {
            cert: cert.to_owned(),
            key: key.to_owned(),
            provider,
            state: Mutex::new(Loaded { key: Arc::new(loaded), stamp, checked: Instant::now() }),
        })
    }

    /// The pair to serve now, read again first if the files changed since they were last read.
    pub fn current(&self) -> Arc<CertifiedKey> {
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if state.checked.elapsed() < RELOAD_CHECK_INTERVAL {
            return state.key.clone();
        }
        state.checked = Instant::now();
        let now = stamp(&self.cert, &self.key);
        if now != state.stamp {
            // Whether it loads or not, this state of the files has been judged: a broken pair is tried
            // again at the next change, not at every handshake.
            state.stamp = now;
            match load(&self.cert, &self.key, &self.provider) {
                Ok(key) => {
                    tracing::info!(cert = %self.cert.display(), "serving the renewed TLS certificate");
                    state.key = Arc::new(key);
                }
                Err(e) => tracing::warn!(
                    cert = %self.cert.display(), error = %danm_core::error_chain(&e),
                    "the changed TLS certificate does not load; the previous one is still served"
                ),
            }
        }
        state.key.clone()
    }
}

impl ResolvesServerCert for ReloadingCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

fn load(cert: &Path, key: &Path, provider: &CryptoProvider) -> Result<CertifiedKey, TlsError> {
    let read = |p: &Path| std::fs::read(p).map_err(|source| TlsError::Read { path: p.display().to_string(), source });
    let (c, k) = (read(cert)?, read(key)?);
    certified_key(&c, &k, (&cert.display().to_string(), &key.display().to_string()), provider)
}

fn stamp(cert: &Path, key: &Path) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    [cert, key]
        .map(|p| std::fs::metadata(p).ok().map(|m| (m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len(), m.ino())))
}
