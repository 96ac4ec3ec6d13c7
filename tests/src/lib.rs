//! Helpers of the cross-crate tests (in `tests/`): where the examples are, how to reach
//! provider-local's helper, and a tiny HTTP client for load balancers.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The repository's `examples/` folder.
pub fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

/// The `plinth-local` helper executable. `cargo test --workspace` builds it; when only
/// this crate was built, build it now rather than skip (tests must not pass silently).
pub fn local_helper() -> Result<PathBuf, String> {
    if let Ok(p) = provider_local::locate::helper_command(None) {
        return Ok(p.program);
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = std::process::Command::new(cargo)
        .args([
            "build",
            "-q",
            "-p",
            "provider-local",
            "--bin",
            "plinth-local",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .map_err(|e| format!("cannot run cargo to build plinth-local: {e}"))?;
    if !status.success() {
        return Err(format!("building plinth-local failed: {status}"));
    }
    provider_local::locate::helper_command(None)
        .map(|c| c.program)
        .map_err(|e| e.to_string())
}

/// `GET /` over HTTP/1.0; returns the body.
pub async fn http_get(addr: &str) -> std::io::Result<String> {
    let io = async {
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        s.write_all(b"GET / HTTP/1.0\r\nHost: plinth\r\nConnection: close\r\n\r\n")
            .await?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await?;
        let text = String::from_utf8_lossy(&raw).into_owned();
        let body = text
            .split_once("\r\n\r\n")
            .map_or(text.as_str(), |(_, b)| b)
            .to_string();
        Ok(body)
    };
    tokio::time::timeout(Duration::from_secs(10), io)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer in 10 s"))?
}

/// The `name=` field of the local `http` image's answer.
pub fn instance_name(body: &str) -> Option<&str> {
    body.split_whitespace()
        .find_map(|w| w.strip_prefix("name="))
}

/// The README's Rust examples, compiled as doc tests so they cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeExamples;
