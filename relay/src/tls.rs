//! HTTPS and WSS without a proxy: rustls (with ring, no OpenSSL) on the
//! relay's own listener. The certificate comes from PEM files, reloaded
//! without a restart when they change or on SIGHUP (a renewal just works;
//! open sockets keep the session they have), or is self-signed for the
//! listen address and kept in the state directory so it survives restarts.
//!
//! Handshakes run in tasks of their own (at most [`MAX_HANDSHAKES`] at a
//! time, each within [`HANDSHAKE_TIMEOUT`]), so a slow or silent client
//! never holds up the others; plain HTTP sent to the port fails the
//! handshake and is never answered in clear.

use anyhow::Context as _;
use rustls::crypto::ring::sign::any_supported_type;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

mod listener;
mod redirect;
pub use listener::{Peeked, TlsAddr, TlsListener, TurnStreams, acceptor, peer_addr};
pub use redirect::redirect_http;

/// TLS handshakes in flight at most; more wait to be accepted.
pub const MAX_HANDSHAKES: usize = 1024;
/// A client that has not finished its handshake by then is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the certificate comes from.
#[derive(Clone, Debug)]
pub enum Source {
    Files {
        cert: PathBuf,
        key: PathBuf,
    },
    /// Made for these names (and kept as files in the state directory).
    SelfSigned {
        dir: PathBuf,
        names: Vec<String>,
    },
}

/// The live certificate, swapped in place when its files change.
#[derive(Debug)]
pub struct Certs {
    current: RwLock<Arc<CertifiedKey>>,
    cert: PathBuf,
    key: PathBuf,
    /// The files' modification times when last loaded.
    stamp: RwLock<Option<(SystemTime, SystemTime)>>,
}

impl ResolvesServerCert for Certs {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.read().ok().map(|c| Arc::clone(&c))
    }
}

fn stamp(cert: &Path, key: &Path) -> Option<(SystemTime, SystemTime)> {
    let m = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    Some((m(cert)?, m(key)?))
}

/// A certificate chain and its key from PEM files.
pub fn load(cert: &Path, key: &Path) -> anyhow::Result<CertifiedKey> {
    let chain = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("reading {}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("parsing {}", cert.display()))?;
    anyhow::ensure!(!chain.is_empty(), "no certificate in {}", cert.display());
    let key_der = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("reading the private key {}", key.display()))?;
    let signer = any_supported_type(&key_der).context("unsupported private key")?;
    let pair = CertifiedKey::new(chain, signer);
    // A renewal caught between writing the certificate and the key.
    pair.keys_match()
        .context("the private key does not belong to the certificate")?;
    Ok(pair)
}

impl Certs {
    /// Loads the certificate (making the self-signed one first if needed).
    pub fn open(source: &Source) -> anyhow::Result<Arc<Self>> {
        let (cert, key) = match source {
            Source::Files { cert, key } => (cert.clone(), key.clone()),
            Source::SelfSigned { dir, names } => self_signed(dir, names)?,
        };
        let stamped = stamp(&cert, &key);
        let loaded = load(&cert, &key)?;
        Ok(Arc::new(Self {
            current: RwLock::new(Arc::new(loaded)),
            stamp: RwLock::new(stamped),
            cert,
            key,
        }))
    }

    /// Loads the files again; keeps the current certificate if they do not
    /// load (a renewal half written), and says so.
    pub fn reload(&self) -> anyhow::Result<()> {
        // Stamped before reading: a change during the read is seen next time.
        let stamped = stamp(&self.cert, &self.key);
        let loaded = load(&self.cert, &self.key)?;
        if let Ok(mut c) = self.current.write() {
            *c = Arc::new(loaded);
        }
        if let Ok(mut s) = self.stamp.write() {
            *s = stamped;
        }
        tracing::info!(cert = %self.cert.display(), sha256 = %self.fingerprint(), "TLS certificate loaded");
        Ok(())
    }

    /// Reloads if the files' modification times changed.
    pub fn reload_if_changed(&self) {
        let now = stamp(&self.cert, &self.key);
        let before = self.stamp.read().ok().and_then(|s| *s);
        if now.is_some()
            && now != before
            && let Err(e) = self.reload()
        {
            tracing::warn!("TLS certificate not reloaded, keeping the current one: {e:#}");
        }
    }

    /// The leaf certificate's SHA-256, as browsers and `openssl x509
    /// -fingerprint -sha256` show it (`AB:CD:...`).
    pub fn fingerprint(&self) -> String {
        use sha2::Digest as _;
        let leaf = self
            .current
            .read()
            .ok()
            .and_then(|c| c.cert.first().map(|d| sha2::Sha256::digest(d.as_ref())));
        leaf.map(|d| {
            d.iter()
                .map(|b| format!("{b:02X}"))
                .collect::<Vec<_>>()
                .join(":")
        })
        .unwrap_or_default()
    }

    /// Reloads on SIGHUP and whenever the files change (checked every
    /// `every`), until the relay stops.
    pub fn watch(self: &Arc<Self>, every: Duration, stop: tokio_util::sync::CancellationToken) {
        let certs = Arc::clone(self);
        tokio::spawn(async move {
            #[cfg(unix)]
            let mut hup =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
            let mut tick = tokio::time::interval(every);
            loop {
                #[cfg(unix)]
                let hangup = async {
                    match hup.as_mut() {
                        Some(h) => h.recv().await,
                        None => std::future::pending().await,
                    }
                };
                #[cfg(not(unix))]
                let hangup = std::future::pending::<Option<()>>();
                tokio::select! {
                    () = stop.cancelled() => return,
                    _ = tick.tick() => certs.reload_if_changed(),
                    _ = hangup => {
                        if let Err(e) = certs.reload() {
                            tracing::warn!("SIGHUP: TLS certificate not reloaded: {e:#}");
                        }
                    }
                }
            }
        });
    }
}

/// The self-signed certificate's files in `dir`, made (for `names`) if
/// they are not there yet.
fn self_signed(dir: &Path, names: &[String]) -> anyhow::Result<(PathBuf, PathBuf)> {
    let (cert, key) = (dir.join("tls-cert.pem"), dir.join("tls-key.pem"));
    if cert.is_file() && key.is_file() {
        return Ok((cert, key));
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let made = rcgen::generate_simple_self_signed(names.to_vec())
        .context("making a self-signed certificate")?;
    write_private(&key, made.key_pair.serialize_pem().as_bytes())?;
    std::fs::write(&cert, made.cert.pem())
        .with_context(|| format!("writing {}", cert.display()))?;
    Ok((cert, key))
}

/// Writes a file only its owner may read.
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(bytes)?;
    Ok(())
}
