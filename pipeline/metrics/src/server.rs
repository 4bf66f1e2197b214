//! A minimal HTTP/1.1 endpoint: `GET /metrics`, `/healthz`, `/readyz`.
//!
//! Scrapers send one small GET and read one response; a full HTTP stack would cost
//! more build time than the three routes are worth. Each connection answers one
//! request and closes; request heads are bounded in size and time.

use crate::exporter::Exporter;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

const MAX_HEAD: usize = 8 * 1024;
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// A scrape's answer is a few hundred KiB at most; a client that takes longer than
/// this to read it is not a scraper.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves until `cancel` fires.
pub async fn serve(listener: TcpListener, exporter: Arc<Exporter>, cancel: CancellationToken) {
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            accepted = listener.accept() => {
                // A failed accept (out of descriptors, a reset) concerns that client only.
                if let Ok((stream, _)) = accepted {
                    tokio::spawn(answer(stream, exporter.clone()));
                }
            }
        }
    }
}

async fn answer(mut stream: TcpStream, exporter: Arc<Exporter>) {
    let mut head = Vec::with_capacity(512);
    let read = tokio::time::timeout(READ_TIMEOUT, async {
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_HEAD {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        true
    })
    .await;
    let (status, ctype, body) = match read {
        Ok(true) => route(&head, &exporter),
        _ => return,
    };
    let is_head = head.starts_with(b"HEAD ");
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if !is_head {
        out.extend_from_slice(body.as_bytes());
    }
    // The client may be gone, or never read (its task and socket would stay for
    // good): nothing to do about it but let go.
    let _ = tokio::time::timeout(WRITE_TIMEOUT, async {
        let _ = stream.write_all(&out).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

const TEXT: &str = "text/plain; charset=utf-8";

fn route(head: &[u8], exporter: &Exporter) -> (&'static str, &'static str, String) {
    let line = head.split(|b| *b == b'\r').next().unwrap_or_default();
    let mut parts = line.split(|b| *b == b' ');
    let (method, target) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    if method != b"GET" && method != b"HEAD" {
        return ("405 Method Not Allowed", TEXT, "only GET and HEAD\n".into());
    }
    let path = target.split(|b| *b == b'?').next().unwrap_or_default();
    match path {
        b"/metrics" => match exporter.render() {
            Ok(text) => ("200 OK", "text/plain; version=0.0.4; charset=utf-8", text),
            Err(e) => ("500 Internal Server Error", TEXT, format!("{e}\n")),
        },
        b"/healthz" => ("200 OK", TEXT, "ok\n".into()),
        b"/readyz" if exporter.is_ready() => ("200 OK", TEXT, "ready\n".into()),
        b"/readyz" => ("503 Service Unavailable", TEXT, "not ready\n".into()),
        _ => ("404 Not Found", TEXT, "try /metrics, /healthz or /readyz\n".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exporter::ExporterConfig;

    async fn get(addr: std::net::SocketAddr, req: &str) -> String {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        s.write_all(req.as_bytes()).await.expect("write");
        let mut out = String::new();
        s.read_to_string(&mut out).await.expect("read");
        out
    }

    #[tokio::test]
    async fn routes_answer_and_readiness_follows_the_flag() {
        let exporter = Arc::new(
            Exporter::new(ExporterConfig {
                instance: "t".into(),
                top_k: 10,
                tenant_series_budget: 10,
                hour_pairs_top_k: 10,
                state_dir: None,
            })
            .expect("exporter"),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let cancel = CancellationToken::new();
        let server = tokio::spawn(serve(listener, exporter.clone(), cancel.clone()));

        let m = get(addr, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(m.starts_with("HTTP/1.1 200 OK"), "{m}");
        assert!(m.contains("deferlog_build_info"), "{m}");
        assert!(
            get(addr, "GET /healthz HTTP/1.1\r\n\r\n")
                .await
                .starts_with("HTTP/1.1 200")
        );
        assert!(
            get(addr, "GET /readyz HTTP/1.1\r\n\r\n")
                .await
                .starts_with("HTTP/1.1 503")
        );
        exporter.set_ready(true);
        assert!(
            get(addr, "GET /readyz HTTP/1.1\r\n\r\n")
                .await
                .starts_with("HTTP/1.1 200")
        );
        assert!(
            get(addr, "GET /nope HTTP/1.1\r\n\r\n")
                .await
                .starts_with("HTTP/1.1 404")
        );
        assert!(
            get(addr, "POST /metrics HTTP/1.1\r\n\r\n")
                .await
                .starts_with("HTTP/1.1 405")
        );
        cancel.cancel();
        server.await.expect("server stops");
    }
}
