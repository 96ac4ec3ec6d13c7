//! Shared test fixture: a fresh state dir per test, and a guard that deletes every
//! resource and stops the daemon even when the test fails.

#![allow(dead_code)] // each test binary uses a different part

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

use provider_core::{HealthCheck, IngressRule, InstanceSpec, Provider, SecurityGroupSpec};
use provider_local::{LocalConfig, LocalProvider};

/// The helper built by cargo for this package's tests.
pub fn helper() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_plinth-local"))
}

/// A config over `dir` using the freshly built helper.
pub fn config(dir: &std::path::Path) -> LocalConfig {
    let mut cfg = LocalConfig::with_state_dir(dir);
    cfg.helper = Some(helper());
    cfg.drain_timeout = Duration::from_secs(120);
    cfg
}

/// A provider over a fresh temp state dir, destroyed on drop.
pub struct Fixture {
    pub provider: LocalProvider,
    pub dir: tempfile::TempDir,
}

impl Fixture {
    pub async fn new() -> Self {
        Self::with(|_| {}).await
    }

    pub async fn with(adjust: impl FnOnce(&mut LocalConfig)) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("pl-")
            .tempdir()
            .expect("temp dir");
        let mut cfg = config(dir.path());
        adjust(&mut cfg);
        let provider = LocalProvider::open(cfg).await.expect("open provider");
        Self { provider, dir }
    }

    pub fn p(&self) -> &dyn Provider {
        &self.provider
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        // Runs on a thread of its own: we may be inside a runtime, or panicking.
        let p = self.provider.clone();
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                if let Err(e) = p.destroy_all().await {
                    eprintln!("cleanup failed: {e}");
                }
            })
        })
        .join();
        if done.is_err() {
            eprintln!("cleanup thread panicked");
        }
    }
}

/// A group letting `cidr` reach TCP `ports`.
pub fn group(name: &str, cidr: &str, ports: &[u16]) -> SecurityGroupSpec {
    SecurityGroupSpec::new(name)
        .with_description("test")
        .with_rules(
            ports
                .iter()
                .map(|p| IngressRule::tcp(*p, cidr.parse().expect("cidr"))),
        )
}

/// An `http` instance spec.
pub fn http_instance(name: &str, az: &str, groups: &[&str]) -> InstanceSpec {
    InstanceSpec::new(name, az, "small", "http").with_security_groups(groups.iter().copied())
}

/// A quick health check for tests.
pub fn fast_check() -> HealthCheck {
    HealthCheck::http("/")
        .with_interval(Duration::from_millis(500))
        .with_timeout(Duration::from_millis(500))
        .with_healthy_threshold(1)
        .with_unhealthy_threshold(1)
}

/// What an HTTP GET got: the body, or why there was none.
pub fn http_get(addr: IpAddr, port: u16, from: Option<IpAddr>) -> Result<String, String> {
    let dst = SocketAddr::new(addr, port);
    let mut s = connect(dst, from)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut out = String::new();
    s.read_to_string(&mut out).map_err(|e| e.to_string())?;
    match out.split_once("\r\n\r\n") {
        Some((head, body)) if head.starts_with("HTTP/1.1 200") => Ok(body.to_string()),
        _ => Err(format!("no HTTP answer: {out:?}")),
    }
}

/// A TCP connection to `dst`, from the address `from` when given.
pub fn connect(dst: SocketAddr, from: Option<IpAddr>) -> Result<TcpStream, String> {
    match from {
        None => {
            TcpStream::connect_timeout(&dst, Duration::from_secs(10)).map_err(|e| e.to_string())
        }
        Some(src) => {
            // std has no bind-before-connect: use a raw socket through tokio's.
            let sock = tokio::net::TcpSocket::new_v4().map_err(|e| e.to_string())?;
            sock.bind(SocketAddr::new(src, 0))
                .map_err(|e| e.to_string())?;
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            let s = rt.block_on(sock.connect(dst)).map_err(|e| e.to_string())?;
            s.into_std()
                .and_then(|s| s.set_nonblocking(false).map(|_| s))
                .map_err(|e| e.to_string())
        }
    }
}

/// Async wrapper for [`http_get`].
pub async fn get(addr: IpAddr, port: u16, from: Option<IpAddr>) -> Result<String, String> {
    tokio::task::spawn_blocking(move || http_get(addr, port, from))
        .await
        .map_err(|e| e.to_string())?
}

/// Polls `f` every 100 ms until it returns `Some`, for at most 60 s.
pub async fn eventually<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
