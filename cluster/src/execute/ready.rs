//! The waits of replacement and scaling: a node runs and passes the probe and the
//! installer's health hook; a load balancer sees a member healthy. Both give up after
//! [`ReplaceOptions::ready_timeout`](crate::ReplaceOptions::ready_timeout) and say why.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use provider_core::{Instance, InstanceState, MemberHealth, ProviderExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::Engine;
use crate::hooks::Health;
use crate::replace::Probe;

/// Waits until node `id` runs, passes the probe and the health hook; `Err` says why not.
pub(super) async fn wait_ready(engine: &Engine<'_>, id: &str) -> std::result::Result<(), String> {
    let opts = engine.rolling;
    let deadline = Instant::now() + opts.ready_timeout;
    loop {
        let (name, last) = match engine.provider.get_instance(id).await {
            Ok(i) if i.state == InstanceState::Running => match check(engine, &i).await {
                Ok(()) => return Ok(()),
                Err(why) => (i.name, why),
            },
            Ok(i) if i.state == InstanceState::Failed => {
                return Err(format!("{} failed (state {:?})", i.name, i.state));
            }
            Ok(i) => (i.name, format!("state {:?}", i.state)),
            // Retryable errors were retried by the Retry layer already: this one is hard.
            Err(e) => return Err(e.to_string()),
        };
        if Instant::now() >= deadline {
            return Err(format!(
                "{name} not healthy after {}s: {last}",
                opts.ready_timeout.as_secs()
            ));
        }
        tokio::time::sleep(opts.poll_interval).await;
    }
}

async fn check(engine: &Engine<'_>, node: &Instance) -> std::result::Result<(), String> {
    let opts = engine.rolling;
    if let Some(probe) = &opts.probe {
        let addr = node
            .private_ip
            .ok_or_else(|| "no private address yet".to_string())?;
        run_probe(addr, probe, opts.probe_timeout).await?;
    }
    match engine.hooks.health(node).await {
        Health::Healthy => Ok(()),
        Health::Unhealthy(why) => Err(format!("health hook: {why}")),
    }
}

/// Waits until load balancer `lb_id` (named `lb`) sees member `id` healthy on `port`.
pub(super) async fn wait_member_healthy(
    engine: &Engine<'_>,
    lb: &str,
    lb_id: &str,
    port: u16,
    id: &str,
) -> std::result::Result<(), String> {
    let opts = engine.rolling;
    let deadline = Instant::now() + opts.ready_timeout;
    loop {
        let health = match engine.provider.get_load_balancer(lb_id).await {
            Ok(found) => found
                .listener(port)
                .and_then(|l| l.pool.members.iter().find(|m| m.instance_id == id))
                .map(|m| m.health),
            Err(e) => return Err(e.to_string()),
        };
        if health == Some(MemberHealth::Healthy) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "load balancer {lb} never saw the new node healthy on port {port} (last: {health:?})"
            ));
        }
        tokio::time::sleep(opts.poll_interval).await;
    }
}

/// Runs one probe against `addr`.
pub async fn run_probe(
    addr: IpAddr,
    probe: &Probe,
    timeout: Duration,
) -> std::result::Result<(), String> {
    let attempt = async {
        match probe {
            Probe::Tcp { port } => {
                tokio::net::TcpStream::connect((addr, *port))
                    .await
                    .map_err(|e| format!("tcp {addr}:{port}: {e}"))?;
                Ok(())
            }
            Probe::Http { port, path } => {
                let mut s = tokio::net::TcpStream::connect((addr, *port))
                    .await
                    .map_err(|e| format!("http {addr}:{port}: {e}"))?;
                let req =
                    format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
                s.write_all(req.as_bytes())
                    .await
                    .map_err(|e| format!("http {addr}:{port}: {e}"))?;
                let mut buf = Vec::new();
                s.read_to_end(&mut buf)
                    .await
                    .map_err(|e| format!("http {addr}:{port}: {e}"))?;
                let text = String::from_utf8_lossy(&buf);
                let status = text
                    .lines()
                    .next()
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|c| c.parse::<u16>().ok());
                match status {
                    Some(c) if (200..400).contains(&c) => Ok(()),
                    Some(c) => Err(format!("http {addr}:{port}{path}: status {c}")),
                    None => Err(format!("http {addr}:{port}{path}: no HTTP answer")),
                }
            }
        }
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(r) => r,
        Err(_) => Err(format!("probe of {addr} timed out after {timeout:?}")),
    }
}
