//! A tiny HTTP server on 127.0.0.1 that answers every request with one recorded answer
//! (feature `conformance`).
//!
//! For a provider's vocabulary table ([`super::vocabulary`]): the faults an emulator
//! cannot produce (throttling, a 503, an expired credential) still go through the
//! provider's real HTTP client and error path, from an answer recorded from the cloud or
//! its API reference. [`Replay::silent`] accepts and never answers, for request timeouts.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A recorded HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// Status code.
    pub status: u16,
    /// Headers, in order (`Content-Length` and `Connection` are added).
    pub headers: Vec<(String, String)>,
    /// Body, exactly as sent.
    pub body: String,
}

impl Answer {
    /// An answer with `status` and `body` and no headers yet.
    pub fn new(status: u16, body: impl Into<String>) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    fn to_bytes(&self) -> Vec<u8> {
        let mut head = format!("HTTP/1.1 {} Recorded\r\n", self.status);
        for (k, v) in &self.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str(&format!(
            "Content-Length: {}\r\nConnection: close\r\n\r\n",
            self.body.len()
        ));
        let mut out = head.into_bytes();
        out.extend_from_slice(self.body.as_bytes());
        out
    }
}

/// The running server; it stops when dropped.
#[derive(Debug)]
pub struct Replay {
    addr: SocketAddr,
    requests: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl Replay {
    /// Serves `answer` to every request.
    pub async fn start(answer: Answer) -> std::io::Result<Self> {
        Self::serve(Some(answer)).await
    }

    /// Accepts connections, reads the requests and never answers.
    pub async fn silent() -> std::io::Result<Self> {
        Self::serve(None).await
    }

    async fn serve(answer: Option<Answer>) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let requests = Arc::new(AtomicU64::new(0));
        let counted = Arc::clone(&requests);
        let bytes = answer.map(|a| Arc::new(a.to_bytes()));
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let bytes = bytes.clone();
                let counted = Arc::clone(&counted);
                tokio::spawn(async move {
                    let _ = answer_one(stream, bytes, counted).await;
                });
            }
        });
        Ok(Self {
            addr,
            requests,
            task,
        })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests read so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

impl Drop for Replay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer_one(
    mut stream: TcpStream,
    answer: Option<Arc<Vec<u8>>>,
    requests: Arc<AtomicU64>,
) -> std::io::Result<()> {
    // Read the head and the body it announces, so the client sees its request taken
    // whole before the answer (some clients report an early answer as a send error).
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    requests.fetch_add(1, Ordering::Relaxed);
    match answer {
        Some(bytes) => {
            stream.write_all(&bytes).await?;
            stream.shutdown().await
        }
        None => {
            // Hold the connection open without a word until the client gives up.
            let _ = stream.read(&mut chunk).await;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn answers_the_recording_and_counts_requests() {
        let replay = Replay::start(Answer::new(429, "slow down").header("Retry-After", "3"))
            .await
            .unwrap();
        let mut s = TcpStream::connect(replay.url().trim_start_matches("http://"))
            .await
            .unwrap();
        s.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
            .await
            .unwrap();
        let mut got = String::new();
        s.read_to_string(&mut got).await.unwrap();
        assert!(got.starts_with("HTTP/1.1 429 "), "{got}");
        assert!(got.contains("\r\nRetry-After: 3\r\n"), "{got}");
        assert!(got.ends_with("\r\n\r\nslow down"), "{got}");
        assert_eq!(replay.requests(), 1);
    }
}
