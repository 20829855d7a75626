//! A minimal HTTP/1.1 server for the Prometheus scrape endpoint.

use std::{sync::Arc, time::Duration};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

use crate::{live, metrics::Metrics};

pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>, live: live::Asker) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let metrics = metrics.clone();
        let live = live.clone();
        tokio::spawn(async move {
            let _ =
                tokio::time::timeout(Duration::from_secs(10), handle(stream, metrics, live)).await;
        });
    }
}

async fn handle(
    mut stream: TcpStream,
    metrics: Arc<Metrics>,
    live: live::Asker,
) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk).await?;
        if n == 0 || buf.len() > 16 * 1024 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let line = buf.split(|&b| b == b'\r').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let openmetrics = wants_openmetrics(&buf);
    let (status, ctype, body) = match (method, path) {
        ("GET", "/metrics") => (
            "200 OK",
            if openmetrics {
                crate::metrics::OPENMETRICS_TYPE
            } else {
                crate::metrics::TEXT_TYPE
            },
            metrics.render(openmetrics),
        ),
        ("GET", "/requests") => (
            "200 OK",
            "application/json",
            serde_json::to_vec(&live::ask(&live).await).expect("plain data serializes"),
        ),
        ("GET", "/") => (
            "200 OK",
            "text/html",
            b"<a href=\"/metrics\">metrics</a> <a href=\"/requests\">requests in flight</a>\n"
                .to_vec(),
        ),
        ("GET", _) => ("404 Not Found", "text/plain", b"not found\n".to_vec()),
        _ => (
            "405 Method Not Allowed",
            "text/plain",
            b"GET only\n".to_vec(),
        ),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    if method != "HEAD" {
        stream.write_all(&body).await?;
    }
    stream.shutdown().await
}

/// Whether the request's `Accept` header lists the OpenMetrics text format (Prometheus
/// sends it first since 2.5; exemplars need it). A weight of 0 refuses it.
fn wants_openmetrics(head: &[u8]) -> bool {
    let head = String::from_utf8_lossy(head);
    head.split("\r\n")
        .filter_map(|line| line.split_once(':'))
        .filter(|(name, _)| name.trim().eq_ignore_ascii_case("accept"))
        .flat_map(|(_, value)| value.split(','))
        .any(|range| {
            let mut params = range.split(';').map(str::trim);
            params
                .next()
                .is_some_and(|t| t.eq_ignore_ascii_case("application/openmetrics-text"))
                && params.all(|p| {
                    p.strip_prefix("q=")
                        .and_then(|q| q.parse::<f64>().ok())
                        .is_none_or(|q| q > 0.0)
                })
        })
}

#[cfg(test)]
mod tests {
    use super::wants_openmetrics;

    #[test]
    fn openmetrics_only_when_accepted() {
        let prometheus = b"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1\r\n\r\n";
        assert!(wants_openmetrics(prometheus));
        assert!(!wants_openmetrics(
            b"GET /metrics HTTP/1.1\r\nAccept: */*\r\n\r\n"
        ));
        assert!(!wants_openmetrics(b"GET /metrics HTTP/1.1\r\n\r\n"));
        assert!(!wants_openmetrics(
            b"GET / HTTP/1.1\r\naccept: application/openmetrics-text; q=0\r\n\r\n"
        ));
        assert!(wants_openmetrics(
            b"GET / HTTP/1.1\r\naccept: text/plain, Application/OpenMetrics-Text\r\n\r\n"
        ));
    }
}
