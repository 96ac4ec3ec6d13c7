//! The waits of replacement and scaling: a node runs and passes the probe and the
//! installer's health hook; a load balancer sees a member healthy. Both give up after
//! [`ReplaceOptions::ready_timeout`](crate::ReplaceOptions::ready_timeout) and say why.
//! Actions waiting at once share their polls ([`Waits`]): one request per interval per
//! kind, not one per waiting node.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use provider_core::wait::{Poll, Poller, Watch};
use provider_core::{
    Error, Instance, InstanceState, LoadBalancer, MemberHealth, Operation, ProviderExt,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::Engine;
use crate::hooks::Health;
use crate::replace::Probe;

/// The waits of one run, shared by its actions: nodes waited for at once cost one
/// `get_instances` per poll interval, members of one load balancer one
/// `get_load_balancer` per interval, however many actions wait.
#[derive(Debug)]
pub(super) struct Waits {
    instances: Watch<Instance>,
    lbs: Watch<LoadBalancer>,
}

impl Waits {
    /// Waits polling every `interval`.
    pub(super) fn new(interval: Duration) -> Self {
        let poller = Poller::new(interval, interval);
        Self {
            instances: Watch::new(poller.clone()),
            lbs: Watch::new(poller),
        }
    }
}

/// The instances of `ids` that exist: one `get_instances`, or one `get_instance` each
/// when one of them is gone (`get_instances` fails as a whole then).
async fn instances_by_id(
    engine: &Engine<'_>,
    ids: Vec<String>,
) -> provider_core::Result<BTreeMap<String, Instance>> {
    match engine.provider.get_instances(&ids).await {
        Ok(found) => Ok(found.into_iter().map(|i| (i.id.clone(), i)).collect()),
        Err(Error::NotFound { .. }) => {
            let each = ids.iter().map(|id| engine.provider.get_instance(id));
            let mut out = BTreeMap::new();
            for r in futures::future::join_all(each).await {
                match r {
                    Ok(i) => {
                        out.insert(i.id.clone(), i);
                    }
                    Err(Error::NotFound { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(out)
        }
        Err(e) => Err(e),
    }
}

/// Load balancers by id, one `get_load_balancer` each (a run waits on one or two).
async fn lbs_by_id(
    engine: &Engine<'_>,
    ids: Vec<String>,
) -> provider_core::Result<BTreeMap<String, LoadBalancer>> {
    let each = ids.iter().map(|id| engine.provider.get_load_balancer(id));
    let mut out = BTreeMap::new();
    for r in futures::future::join_all(each).await {
        match r {
            Ok(lb) => {
                out.insert(lb.id.clone(), lb);
            }
            Err(Error::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// Waits until node `id` runs, passes the probe and the health hook; `Err` says why not.
pub(super) async fn wait_ready(
    engine: &Engine<'_>,
    waits: &Waits,
    id: &str,
) -> std::result::Result<(), String> {
    let opts = engine.rolling;
    let deadline = Instant::now() + opts.ready_timeout;
    let mut name = id.to_string();
    let mut last;
    // A created node usually runs already: look once at once, then share the polls.
    let mut first = true;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let running = if std::mem::take(&mut first) {
            match engine.provider.get_instance(id).await {
                Ok(i) if matches!(i.state, InstanceState::Running | InstanceState::Failed) => Ok(i),
                Ok(i) => {
                    name.clone_from(&i.name);
                    continue;
                }
                Err(e) => Err(e),
            }
        } else {
            waits
                .instances
                .until(
                    Operation::GetInstance,
                    id,
                    "running",
                    left,
                    id,
                    |ids| instances_by_id(engine, ids),
                    |i| match i {
                        None => Err(Error::not_found(
                            Operation::GetInstance,
                            format!("instance {id}"),
                        )),
                        Some(i) => {
                            name.clone_from(&i.name);
                            match i.state {
                                InstanceState::Running | InstanceState::Failed => {
                                    Ok(Poll::Ready(i.clone()))
                                }
                                st => Ok(Poll::Pending(format!("state {st:?}"))),
                            }
                        }
                    },
                )
                .await
        };
        match running {
            Ok(i) if i.state == InstanceState::Failed => {
                return Err(format!("{} failed (state {:?})", i.name, i.state));
            }
            Ok(i) => match check(engine, &i).await {
                Ok(()) => return Ok(()),
                Err(why) => last = why,
            },
            Err(Error::Timeout { last_state, .. }) => last = last_state,
            // Retryable errors were retried by the Retry layer already: this one is hard.
            Err(e) => return Err(e.to_string()),
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "{name} not healthy after {}s: {last}",
                opts.ready_timeout.as_secs()
            ));
        }
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
    waits: &Waits,
    lb: &str,
    lb_id: &str,
    port: u16,
    id: &str,
) -> std::result::Result<(), String> {
    let opts = engine.rolling;
    let member_health = |found: &LoadBalancer| {
        found
            .listener(port)
            .and_then(|l| l.pool.members.iter().find(|m| m.instance_id == id))
            .map(|m| m.health)
    };
    // Look once at once (the member may be healthy already), then share the polls.
    let mut health = match engine.provider.get_load_balancer(lb_id).await {
        Ok(found) => member_health(&found),
        Err(e) => return Err(e.to_string()),
    };
    if health == Some(MemberHealth::Healthy) {
        return Ok(());
    }
    let healthy = waits
        .lbs
        .until(
            Operation::GetLoadBalancer,
            lb,
            "member healthy",
            opts.ready_timeout,
            lb_id,
            |ids| lbs_by_id(engine, ids),
            |found| {
                let found = found.ok_or_else(|| {
                    Error::not_found(Operation::GetLoadBalancer, format!("load balancer {lb}"))
                })?;
                health = member_health(found);
                Ok(if health == Some(MemberHealth::Healthy) {
                    Poll::Ready(())
                } else {
                    Poll::Pending(format!("{health:?}"))
                })
            },
        )
        .await;
    match healthy {
        Ok(()) => Ok(()),
        Err(Error::Timeout { .. }) => Err(format!(
            "load balancer {lb} never saw the new node healthy on port {port} (last: {health:?})"
        )),
        Err(e) => Err(e.to_string()),
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
