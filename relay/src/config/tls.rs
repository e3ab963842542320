//! The HTTPS flags (`tls.rs` at the crate root serves with them).

use clap::Args;
use std::net::SocketAddr;
use std::{path::PathBuf, time::Duration};

/// HTTPS and WSS on `--listen` (see `tls.rs`).
#[derive(Args, Clone, Debug)]
pub struct TlsArgs {
    /// Serve HTTPS and WSS with this certificate chain (PEM), reloaded when
    /// the file changes or on SIGHUP. Needs --tls-key.
    #[arg(
        id = "tls_cert",
        long = "tls-cert",
        env = "MESHCAST_TLS_CERT",
        requires = "tls_key"
    )]
    pub cert: Option<PathBuf>,

    /// The certificate's private key (PEM).
    #[arg(
        id = "tls_key",
        long = "tls-key",
        env = "MESHCAST_TLS_KEY",
        requires = "tls_cert"
    )]
    pub key: Option<PathBuf>,

    /// Serve HTTPS with a self-signed certificate for the listen address (a
    /// LAN): its SHA-256 fingerprint is printed, and it is kept in
    /// --state-dir so it survives restarts.
    #[arg(
        long = "tls-self-signed",
        env = "MESHCAST_TLS_SELF_SIGNED",
        conflicts_with = "tls_cert"
    )]
    pub self_signed: bool,

    /// More names (DNS names or IP addresses) for the self-signed
    /// certificate, comma-separated.
    #[arg(long = "tls-name", env = "MESHCAST_TLS_NAMES", value_delimiter = ',')]
    pub names: Vec<String>,

    /// Where the relay keeps what must survive a restart.
    #[arg(
        long = "state-dir",
        env = "MESHCAST_STATE_DIR",
        default_value = "meshcast-state"
    )]
    pub state_dir: PathBuf,

    /// Also answer plain HTTP on this address with a redirect to HTTPS
    /// (e.g. 0.0.0.0:80).
    #[arg(long = "redirect-http", env = "MESHCAST_REDIRECT_HTTP")]
    pub redirect_http: Option<SocketAddr>,

    /// How often the certificate files are checked for a renewal.
    #[arg(long = "tls-check-every", env = "MESHCAST_TLS_CHECK_EVERY", default_value = "10s", value_parser = humantime::parse_duration)]
    pub check_every: Duration,
}

impl TlsArgs {
    /// Where the certificate comes from, if TLS is on.
    pub fn source(&self, listen: SocketAddr) -> Option<crate::tls::Source> {
        if let (Some(cert), Some(key)) = (&self.cert, &self.key) {
            return Some(crate::tls::Source::Files {
                cert: cert.clone(),
                key: key.clone(),
            });
        }
        self.self_signed.then(|| {
            let mut names = vec!["localhost".to_owned()];
            if !listen.ip().is_unspecified() {
                names.push(listen.ip().to_string());
            }
            names.extend(self.names.iter().cloned());
            crate::tls::Source::SelfSigned {
                dir: self.state_dir.clone(),
                names,
            }
        })
    }
}
