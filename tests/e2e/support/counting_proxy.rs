//! A loopback TCP proxy that forwards bytes untouched and counts each HTTP/1.1 request by its
//! form `Action` (the query protocol of aws-sdk-cloudwatch 1.99.0): API calls counted on the
//! wire. Shared by the API-cost benchmark (bench/src/api_cost.rs) and the e2e tests, which
//! include this file by path.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A loopback TCP proxy to `upstream` that forwards bytes untouched and, on the way in, parses
/// HTTP/1.1 requests (headers + `Content-Length` body) to count them by their form `Action`.
pub struct CountingProxy {
    port: u16,
    counts: Arc<Mutex<BTreeMap<String, u64>>>,
}

impl CountingProxy {
    pub async fn start(upstream: String) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let counts: Arc<Mutex<BTreeMap<String, u64>>> = Arc::default();
        let c = counts.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let c = c.clone();
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(&upstream).await {
                        let _ = relay(client, server, c).await;
                    }
                });
            }
        });
        Ok(CountingProxy { port, counts })
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn counts(&self) -> BTreeMap<String, u64> {
        self.counts.lock().expect("counts").clone()
    }
}

async fn relay(
    client: TcpStream,
    server: TcpStream,
    counts: Arc<Mutex<BTreeMap<String, u64>>>,
) -> std::io::Result<()> {
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let down = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut sr, &mut cw).await;
        let _ = cw.shutdown().await;
    });
    let mut parser = RequestParser::default();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = cr.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        for action in parser.feed(&buf[..n]) {
            *counts.lock().expect("counts").entry(action).or_default() += 1;
        }
        sw.write_all(&buf[..n]).await?;
    }
    let _ = sw.shutdown().await;
    let _ = down.await;
    Ok(())
}

/// Splits a client's byte stream into HTTP/1.1 requests and names each by its `Action`.
#[derive(Default)]
struct RequestParser {
    buf: Vec<u8>,
}

impl RequestParser {
    fn feed(&mut self, bytes: &[u8]) -> Vec<String> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&self.buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            let total = end + 4 + len;
            if self.buf.len() < total {
                break;
            }
            let body = String::from_utf8_lossy(&self.buf[end + 4..total]);
            let action = body
                .split('&')
                .find_map(|kv| kv.strip_prefix("Action="))
                .unwrap_or("(no Action)")
                .to_string();
            out.push(action);
            self.buf.drain(..total);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::RequestParser;

    #[test]
    fn parser_counts_pipelined_and_split_requests() {
        let r1 =
            "POST / HTTP/1.1\r\nContent-Length: 40\r\n\r\nAction=GetMetricData&Version=2010-08-01";
        let r1 = format!("{r1}&");
        let r2 = "POST / HTTP/1.1\r\ncontent-length: 20\r\n\r\nAction=ListMetrics&x";
        let all = format!("{r1}{r2}");
        let mut p = RequestParser::default();
        let (a, b) = all.as_bytes().split_at(50);
        assert!(p.feed(a).is_empty());
        assert_eq!(p.feed(b), ["GetMetricData", "ListMetrics"]);
    }
}
