//! Readiness: a node runs, passes the probe and the installer's health hook.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use provider_core::{Instance, InstanceState, ProviderExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{Ctx, Probe};
use crate::hooks::Health;

/// Waits until `node` runs, passes the probe and the health hook; `Err` says why not.
pub(crate) async fn wait_ready(
    ctx: &Ctx<'_>,
    node: &Instance,
) -> std::result::Result<Instance, String> {
    let deadline = Instant::now() + ctx.opts.ready_timeout;
    loop {
        let last = match ctx.p.get_instance(&node.id).await {
            Ok(i) if i.state == InstanceState::Running => match check(ctx, &i).await {
                Ok(()) => return Ok(i),
                Err(why) => why,
            },
            Ok(i) if i.state == InstanceState::Failed => {
                return Err(format!("{} failed (state {:?})", i.name, i.state));
            }
            Ok(i) => format!("state {:?}", i.state),
            // Retryable errors were retried by the Retry layer already: this one is hard.
            Err(e) => return Err(e.to_string()),
        };
        if Instant::now() >= deadline {
            return Err(format!(
                "{} not healthy after {}s: {last}",
                node.name,
                ctx.opts.ready_timeout.as_secs()
            ));
        }
        tokio::time::sleep(ctx.opts.poll_interval).await;
    }
}

async fn check(ctx: &Ctx<'_>, node: &Instance) -> std::result::Result<(), String> {
    if let Some(probe) = &ctx.opts.probe {
        let addr = node
            .private_ip
            .ok_or_else(|| "no private address yet".to_string())?;
        run_probe(addr, probe, ctx.opts.probe_timeout).await?;
    }
    match ctx.hooks.health(node).await {
        Health::Healthy => Ok(()),
        Health::Unhealthy(why) => Err(format!("health hook: {why}")),
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
