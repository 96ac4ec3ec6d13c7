//! provider-local's load balancer against a direct connection to a node.
//!
//! The README's example cluster (`examples/local.properties`: 1 master, 3 nodes, 2
//! storage nodes) comes up on a provider-local cloud of its own (a temporary state
//! directory; real processes on loopback addresses), and a small built-in load
//! generator ([`load`], in the manner of `ab -n 3000 -c 8`: one HTTP/1.0 request per
//! connection, [`CONCURRENCY`] connections at a time, [`REQUESTS`] requests) measures
//! requests per second through the ingress LB (round robin over the 3 nodes) and
//! straight to one node's private address. Rounds alternate between the two
//! ([`ROUNDS`], the median is reported) after a warm-up. The cloud is destroyed at the
//! end, also after a failure.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cluster::{Cluster, ClusterSpec};
use provider_core::{MemberHealth, Provider};
use provider_local::{LocalConfig, LocalProvider};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::error::{Context, Error, Result};
use crate::report::{Row, Target, Value};

/// Connections at a time.
pub const CONCURRENCY: usize = 8;
/// Requests per round.
pub const REQUESTS: usize = 3000;
/// Rounds of each kind.
pub const ROUNDS: usize = 3;
/// The target: the LB serves at least this share of a direct connection's rate.
pub const TARGET: f64 = 0.70;

const SCENARIO: &str = "provider-local LB";
/// The README's example spec.
const SPEC: &str = include_str!("../../examples/local.properties");

/// One round of the load generator.
#[derive(Debug, Clone, PartialEq)]
pub struct Load {
    /// Requests answered with a 200.
    pub ok: usize,
    /// Requests that failed (connection, timeout, another status).
    pub failed: usize,
    /// Time of the whole round.
    pub elapsed: Duration,
    /// Latency of each successful request, sorted.
    pub latencies: Vec<Duration>,
}

impl Load {
    /// Successful requests per second.
    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The median latency.
    pub fn median(&self) -> Duration {
        self.latencies
            .get(self.latencies.len() / 2)
            .copied()
            .unwrap_or_default()
    }
}

/// One `GET /` over its own connection; `Ok(true)` for a 200.
async fn request(addr: SocketAddr) -> std::io::Result<bool> {
    let mut s = TcpStream::connect(addr).await?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: plinth-bench\r\nUser-Agent: plinth-bench\r\n\r\n")
        .await?;
    let mut answer = Vec::with_capacity(256);
    s.read_to_end(&mut answer).await?;
    Ok(answer.starts_with(b"HTTP/1.1 200") || answer.starts_with(b"HTTP/1.0 200"))
}

/// Sends `requests` requests to `addr`, `concurrency` at a time.
pub async fn load(addr: SocketAddr, concurrency: usize, requests: usize) -> Load {
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut workers = Vec::with_capacity(concurrency);
    for _ in 0..concurrency.max(1) {
        let next = next.clone();
        workers.push(tokio::spawn(async move {
            let (mut latencies, mut failed) = (Vec::new(), 0);
            while next.fetch_add(1, Ordering::Relaxed) < requests {
                let t0 = Instant::now();
                match tokio::time::timeout(Duration::from_secs(10), request(addr)).await {
                    Ok(Ok(true)) => latencies.push(t0.elapsed()),
                    _ => failed += 1,
                }
            }
            (latencies, failed)
        }));
    }
    let mut out = Load {
        ok: 0,
        failed: 0,
        elapsed: Duration::ZERO,
        latencies: Vec::with_capacity(requests),
    };
    for w in workers {
        match w.await {
            Ok((l, f)) => {
                out.latencies.extend(l);
                out.failed += f;
            }
            Err(_) => out.failed += 1,
        }
    }
    out.elapsed = start.elapsed();
    out.ok = out.latencies.len();
    out.latencies.sort();
    out
}

fn median_by<T: Clone>(mut v: Vec<T>, key: impl Fn(&T) -> f64) -> Option<T> {
    v.sort_by(|a, b| key(a).total_cmp(&key(b)));
    v.get(v.len() / 2).cloned()
}

fn unexpected(message: impl Into<String>) -> Error {
    Error::Unexpected {
        scenario: SCENARIO.into(),
        message: message.into(),
    }
}

/// The ingress LB's address and one worker node's, once the LB sees all its members
/// healthy and answers.
async fn endpoints(cluster: &Cluster) -> Result<(SocketAddr, SocketAddr)> {
    let spec = cluster.spec();
    let ingress = spec
        .load_balancers
        .iter()
        .find(|l| l.name == "ingress")
        .ok_or_else(|| unexpected("the example spec has no ingress LB"))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let st = cluster.status().await.during(SCENARIO)?;
        let lb = st
            .load_balancers
            .iter()
            .find(|l| l.name.ends_with("-ingress"));
        let healthy = lb.is_some_and(|l| {
            l.listeners.iter().all(|x| {
                !x.members.is_empty() && x.members.iter().all(|m| m.health == MemberHealth::Healthy)
            })
        });
        let lb_addr = lb.and_then(|l| l.address.as_deref()).and_then(|a| {
            a.parse::<std::net::IpAddr>()
                .ok()
                .map(|ip| SocketAddr::new(ip, ingress.port))
        });
        let node_addr = st
            .nodes
            .iter()
            .filter(|n| n.role == "node")
            .find_map(|n| n.private_ip.as_deref()?.parse::<std::net::IpAddr>().ok())
            .map(|ip| SocketAddr::new(ip, ingress.target_port));
        if let (true, Some(lb_addr), Some(node_addr)) = (healthy, lb_addr, node_addr) {
            if matches!(request(lb_addr).await, Ok(true)) {
                return Ok((lb_addr, node_addr));
            }
        }
        if Instant::now() >= deadline {
            return Err(unexpected(
                "the ingress LB did not see its members healthy within 60 s",
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn measure(cluster: &Cluster) -> Result<Vec<Row>> {
    cluster.apply().await.during(SCENARIO)?;
    let (lb, node) = endpoints(cluster).await?;
    // Warm-up: connections, caches, the LB's member list.
    load(node, CONCURRENCY, 300).await;
    load(lb, CONCURRENCY, 300).await;
    let (mut direct, mut proxied) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        direct.push(load(node, CONCURRENCY, REQUESTS).await);
        proxied.push(load(lb, CONCURRENCY, REQUESTS).await);
    }
    let failed: usize = direct.iter().chain(&proxied).map(|l| l.failed).sum();
    let (Some(d), Some(p)) = (
        median_by(direct, Load::rate),
        median_by(proxied, Load::rate),
    ) else {
        return Err(unexpected("no round ran"));
    };
    let added = p.median().saturating_sub(d.median());
    Ok(vec![Row {
        scenario: format!(
            "{SCENARIO} throughput ({REQUESTS} req, {CONCURRENCY} conns, via LB vs direct)"
        ),
        measured: Value::Rate(p.rate()),
        limit: Value::Rate(d.rate()),
        target: Target::AtLeast(TARGET),
        detail: format!(
            "limit = straight to one node; median latency {:.2} ms via LB vs {:.2} ms direct (+{:.2} ms); median of {ROUNDS} rounds; {failed} failed requests",
            p.median().as_secs_f64() * 1e3,
            d.median().as_secs_f64() * 1e3,
            added.as_secs_f64() * 1e3
        ),
    }])
}

/// Brings the example cluster up on a provider-local cloud of its own, measures, and
/// removes everything (processes, ports, files), also after a failure.
pub async fn rows() -> Result<Vec<Row>> {
    let dir = tempfile::tempdir().map_err(|source| Error::Io {
        scenario: SCENARIO.into(),
        what: "creating a state directory".into(),
        source,
    })?;
    let spec = ClusterSpec::parse("examples/local.properties", SPEC).during(SCENARIO)?;
    let mut config = LocalConfig::with_state_dir(dir.path().join("cloud"));
    config.availability_zones = spec.availability_zones.clone();
    let local = Arc::new(LocalProvider::open(config).await.during(SCENARIO)?);
    let provider: Arc<dyn Provider> = local.clone();
    let cluster = Cluster::new(spec, provider);
    let result = measure(&cluster).await;
    let cleanup = local.destroy_all().await.during(SCENARIO);
    let rows = result?;
    cleanup?;
    Ok(rows)
}
