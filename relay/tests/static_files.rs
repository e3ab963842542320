//! The app's files: precompressed variants chosen by `Accept-Encoding`,
//! hashed assets cached immutably, `index.html` revalidated.

mod common;

use common::Server;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

async fn get(server: &Server, path: &str, accept_encoding: Option<&str>) -> Reply {
    match accept_encoding {
        Some(a) => get_with(server, path, &[("Accept-Encoding", a)]).await,
        None => get_with(server, path, &[]).await,
    }
}

async fn get_with(server: &Server, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut stream = TcpStream::connect(server.addr).await.expect("connect");
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\n{extra}Connection: close\r\n\r\n",
        server.addr
    );
    stream.write_all(req.as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    stream.read_to_end(&mut buf).await.expect("read");
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of headers");
    let head = String::from_utf8_lossy(&buf[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Reply {
        status,
        headers,
        body: buf[split + 4..].to_vec(),
    }
}

const WASM: &str = "/frontend-0123456789abcdef_bg.wasm";

async fn server_with_dist(test: &str) -> Server {
    let dist = std::env::temp_dir().join(format!("meshcast-test-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dist).expect("mkdir");
    let write = |name: &str, body: &[u8]| std::fs::write(dist.join(name), body).expect("write");
    write("index.html", b"<!doctype html><title>meshcast</title>");
    write("index.html.br", b"index-br");
    let wasm = WASM.trim_start_matches('/');
    write(wasm, b"\0asm raw");
    write(&format!("{wasm}.br"), b"wasm-br");
    write(&format!("{wasm}.gz"), b"wasm-gz");
    write("notes.txt", b"plain");
    Server::with(|c| c.dist = dist.clone()).await
}

#[tokio::test]
async fn the_precompressed_file_the_browser_accepts_is_served() {
    let server = server_with_dist("precompressed").await;
    for (accept, body, encoding) in [
        (Some("gzip, deflate, br, zstd"), &b"wasm-br"[..], Some("br")),
        (Some("gzip"), b"wasm-gz", Some("gzip")),
        (None, b"\0asm raw", None),
        (Some("identity"), b"\0asm raw", None),
    ] {
        let r = get(&server, WASM, accept).await;
        assert_eq!(r.status, 200, "{accept:?}");
        assert_eq!(r.body, body, "{accept:?}");
        assert_eq!(r.header("content-encoding"), encoding, "{accept:?}");
        assert_eq!(
            r.header("content-type"),
            Some("application/wasm"),
            "{accept:?}"
        );
        assert_eq!(
            r.header("cache-control"),
            Some("public, max-age=31536000, immutable"),
            "{accept:?}"
        );
        assert!(
            r.header("vary")
                .is_some_and(|v| v.to_ascii_lowercase().contains("accept-encoding")),
            "{accept:?}"
        );
    }
}

#[tokio::test]
async fn index_html_and_unhashed_files_are_revalidated() {
    let server = server_with_dist("revalidated").await;
    for path in [
        "/",
        "/index.html",
        "/watch?room=abc",
        "/notes.txt",
        "/missing-0123456789abcdef.js",
    ] {
        let r = get(&server, path, Some("br")).await;
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.header("cache-control"), Some("no-cache"), "{path}");
    }
    // Revalidating a hashed asset keeps it immutable.
    let first = get(&server, WASM, None).await;
    let since = first
        .header("last-modified")
        .expect("last-modified")
        .to_owned();
    let r = get_with(&server, WASM, &[("If-Modified-Since", &since)]).await;
    assert_eq!(r.status, 304);
    assert_eq!(
        r.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    let r = get(&server, "/watch", Some("br")).await;
    assert_eq!(r.body, b"index-br", "the SPA fallback is precompressed too");
    let r = get(&server, "/watch", None).await;
    assert_eq!(r.body, b"<!doctype html><title>meshcast</title>");
    assert_eq!(
        get(&server, "/healthz", None).await.header("cache-control"),
        Some("no-cache")
    );
}
