//! `--redirect-http`: plain HTTP answered with a redirect to HTTPS.

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use tokio::net::TcpListener;

/// Answers plain HTTP on `listener` with a permanent redirect to the same
/// host and path over HTTPS on `https_port`, until `stop`.
pub fn redirect_http(
    listener: TcpListener,
    https_port: u16,
    stop: tokio_util::sync::CancellationToken,
) -> std::io::Result<()> {
    tracing::info!("redirecting http://{} to HTTPS", listener.local_addr()?);
    let to_https = move |headers: HeaderMap, uri: axum::http::Uri| async move {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(host_without_port)
            .filter(|h| {
                !h.is_empty()
                    && h.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b".-[]:".contains(&b))
            });
        let Some(host) = host else {
            return (StatusCode::BAD_REQUEST, "no Host\n").into_response();
        };
        let port = if https_port == 443 {
            String::new()
        } else {
            format!(":{https_port}")
        };
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        axum::response::Redirect::permanent(&format!("https://{host}{port}{path}")).into_response()
    };
    let app = Router::new().fallback(to_https);
    tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await;
        if let Err(e) = served {
            tracing::warn!("HTTP redirect: {e}");
        }
    });
    Ok(())
}

/// `host:port` or `[v6]:port` without the port.
fn host_without_port(host: &str) -> &str {
    match host.rfind(':') {
        Some(i) if !host[i..].contains(']') => &host[..i],
        _ => host,
    }
}
