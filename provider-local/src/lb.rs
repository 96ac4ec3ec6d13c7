//! Load balancers: TCP proxies on the LB's loopback address, one per listener, with a
//! round-robin pool, health checks and draining.
//!
//! `Http` listeners are TCP proxies too (the HTTP bytes pass through untouched); health
//! checks speak HTTP when asked to.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use provider_core::{HealthCheck, HealthCheckProtocol, Member, MemberHealth, MemberSpec};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::acl::SharedView;
use crate::forwarder::{bind_listener, connect_from, pipe, refuse};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not take the proxy down: keep using the data.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// One member as the proxy sees it.
#[derive(Debug)]
struct MemberRt {
    spec: MemberSpec,
    health: Mutex<MemberHealth>,
    open: AtomicUsize,
    /// Flipped to `true` to cut the member's open connections.
    cut: watch::Sender<bool>,
    checker: Mutex<Option<JoinHandle<()>>>,
}

impl MemberRt {
    fn health(&self) -> MemberHealth {
        *lock(&self.health)
    }
}

impl Drop for MemberRt {
    fn drop(&mut self) {
        if let Some(t) = lock(&self.checker).take() {
            t.abort();
        }
    }
}

/// The pool of one listener.
#[derive(Debug)]
struct PoolRt {
    lb_id: String,
    address: IpAddr,
    health_check: HealthCheck,
    members: Mutex<Vec<Arc<MemberRt>>>,
    next: AtomicUsize,
    view: SharedView,
}

impl PoolRt {
    /// Members that get traffic, in round-robin order from the next turn: healthy
    /// ones, or (before any check has passed) those not known to be unhealthy.
    fn candidates(&self) -> Vec<Arc<MemberRt>> {
        let members = lock(&self.members).clone();
        let healthy: Vec<_> = members
            .iter()
            .filter(|m| m.health() == MemberHealth::Healthy)
            .cloned()
            .collect();
        let mut c = if healthy.is_empty() {
            members
                .into_iter()
                .filter(|m| m.health() == MemberHealth::Unknown)
                .collect()
        } else {
            healthy
        };
        if !c.is_empty() {
            let turn = self.next.fetch_add(1, Ordering::Relaxed) % c.len();
            c.rotate_left(turn);
        }
        c
    }

    /// The member's address, if the member's groups let this LB reach `port`.
    fn reachable(&self, m: &MemberSpec, port: u16) -> Option<SocketAddr> {
        let v = self.view.get();
        let inst = v.instances.get(&m.instance_id)?;
        v.admits(&inst.groups, self.address, port)
            .then_some(SocketAddr::new(inst.address, port))
    }

    fn add(self: &Arc<Self>, spec: &MemberSpec) {
        let mut members = lock(&self.members);
        if let Some(m) = members.iter().find(|m| &m.spec == spec) {
            // Re-adding a draining member takes it back.
            let mut h = lock(&m.health);
            if *h == MemberHealth::Draining {
                *h = MemberHealth::Unknown;
            }
            return;
        }
        let (cut, _) = watch::channel(false);
        let m = Arc::new(MemberRt {
            spec: spec.clone(),
            health: Mutex::new(MemberHealth::Unknown),
            open: AtomicUsize::new(0),
            cut,
            checker: Mutex::new(None),
        });
        let task = tokio::spawn(health_loop(Arc::downgrade(self), Arc::downgrade(&m)));
        *lock(&m.checker) = Some(task);
        members.push(m);
    }
}

/// A running load balancer.
#[derive(Debug)]
pub struct LbRuntime {
    listeners: HashMap<u16, (Arc<PoolRt>, JoinHandle<()>)>,
}

/// One listener to start: port, health check, members.
#[derive(Debug, Clone)]
pub struct ListenerPlan {
    /// Port.
    pub port: u16,
    /// Health check.
    pub health_check: HealthCheck,
    /// Members.
    pub members: Vec<MemberSpec>,
}

impl LbRuntime {
    /// Binds every listener on `address`; fails (binding nothing) if any port is busy.
    pub fn start(
        lb_id: &str,
        address: IpAddr,
        plans: &[ListenerPlan],
        view: &SharedView,
    ) -> std::io::Result<Self> {
        let mut bound: Vec<(u16, TcpListener)> = Vec::new();
        for p in plans {
            bound.push((p.port, bind_listener(SocketAddr::new(address, p.port))?));
        }
        let mut listeners = HashMap::new();
        for ((port, listener), plan) in bound.into_iter().zip(plans) {
            let pool = Arc::new(PoolRt {
                lb_id: lb_id.to_string(),
                address,
                health_check: plan.health_check.clone(),
                members: Mutex::new(Vec::new()),
                next: AtomicUsize::new(0),
                view: view.clone(),
            });
            for m in &plan.members {
                pool.add(m);
            }
            let task = tokio::spawn(accept_loop(listener, port, pool.clone()));
            listeners.insert(port, (pool, task));
        }
        Ok(Self { listeners })
    }

    /// The members of the listener on `port` with their health, in the order added.
    pub fn members(&self, port: u16) -> Option<Vec<Member>> {
        let (pool, _) = self.listeners.get(&port)?;
        Some(
            lock(&pool.members)
                .iter()
                .map(|m| Member {
                    instance_id: m.spec.instance_id.clone(),
                    port: m.spec.port,
                    health: m.health(),
                })
                .collect(),
        )
    }

    /// Adds a member to the listener on `port` (present: nothing to do).
    pub fn add_member(&self, port: u16, member: &MemberSpec) {
        if let Some((pool, _)) = self.listeners.get(&port) {
            pool.add(member);
        }
    }

    /// Takes a member out of rotation and returns a future that resolves once its open
    /// connections finished (or were cut after `drain_timeout`) and it is dropped.
    pub fn remove_member(
        &self,
        port: u16,
        member: &MemberSpec,
        drain_timeout: Duration,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        let found = self.listeners.get(&port).and_then(|(pool, _)| {
            let m = lock(&pool.members)
                .iter()
                .find(|m| &m.spec == member)
                .cloned()?;
            *lock(&m.health) = MemberHealth::Draining;
            Some((pool.clone(), m))
        });
        async move {
            let Some((pool, m)) = found else { return };
            let deadline = Instant::now() + drain_timeout;
            while m.open.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
                if m.health() != MemberHealth::Draining {
                    return; // re-added meanwhile
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            if m.health() != MemberHealth::Draining {
                return;
            }
            let open = m.open.load(Ordering::SeqCst);
            if open > 0 {
                tracing::info!(lb = %pool.lb_id, instance = %m.spec.instance_id, open, "drain timeout: cutting connections");
                m.cut.send_replace(true);
            }
            lock(&pool.members).retain(|x| !Arc::ptr_eq(x, &m));
        }
    }

    /// Stops listeners, health checks and open connections.
    pub fn stop(&mut self) {
        for (_, (pool, task)) in self.listeners.drain() {
            task.abort();
            for m in lock(&pool.members).drain(..) {
                m.cut.send_replace(true);
            }
        }
    }
}

impl Drop for LbRuntime {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn accept_loop(listener: TcpListener, port: u16, pool: Arc<PoolRt>) {
    loop {
        let (client, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(port, "accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let v = pool.view.get();
        // An LB without security groups is open, as an Octavia LB without a VIP group.
        let admitted = match v.load_balancers.get(&pool.lb_id) {
            Some((_, groups)) if !groups.is_empty() => v.admits(groups, peer.ip(), port),
            _ => true,
        };
        if !admitted {
            tracing::info!(%peer, port, lb = %pool.lb_id, "refused by security groups");
            refuse(client);
            continue;
        }
        tokio::spawn(serve(client, pool.clone()));
    }
}

/// Sends the connection to the first candidate that accepts it.
async fn serve(client: TcpStream, pool: Arc<PoolRt>) {
    for m in pool.candidates() {
        let Some(dst) = pool.reachable(&m.spec, m.spec.port) else {
            continue;
        };
        // Counted from before the connect, so a drain that starts meanwhile waits.
        m.open.fetch_add(1, Ordering::SeqCst);
        match connect_from(Some(pool.address), dst).await {
            Ok(backend) => {
                let mut cut = m.cut.subscribe();
                tokio::select! {
                    _ = pipe(client, backend) => {}
                    _ = cut.wait_for(|c| *c) => {}
                }
                m.open.fetch_sub(1, Ordering::SeqCst);
                return;
            }
            Err(e) => {
                m.open.fetch_sub(1, Ordering::SeqCst);
                tracing::debug!(%dst, "member refused: {e}");
            }
        }
    }
    tracing::info!(lb = %pool.lb_id, "no member available");
    refuse(client);
}

async fn health_loop(pool: std::sync::Weak<PoolRt>, member: std::sync::Weak<MemberRt>) {
    let (mut ok_run, mut fail_run) = (0u32, 0u32);
    loop {
        let (Some(pool), Some(m)) = (pool.upgrade(), member.upgrade()) else {
            return;
        };
        let hc = pool.health_check.clone();
        let ok = check(&pool, &m.spec, &hc).await;
        if ok {
            ok_run += 1;
            fail_run = 0;
        } else {
            fail_run += 1;
            ok_run = 0;
        }
        {
            let mut h = lock(&m.health);
            if *h != MemberHealth::Draining {
                if ok && ok_run >= hc.healthy_threshold {
                    *h = MemberHealth::Healthy;
                } else if !ok && fail_run >= hc.unhealthy_threshold {
                    *h = MemberHealth::Unhealthy;
                }
            }
        }
        drop((pool, m));
        tokio::time::sleep(hc.interval).await;
    }
}

/// One health check: a TCP connect, or an HTTP GET that must answer 2xx or 3xx.
async fn check(pool: &PoolRt, m: &MemberSpec, hc: &HealthCheck) -> bool {
    let port = hc.port.unwrap_or(m.port);
    let Some(dst) = pool.reachable(m, port) else {
        return false;
    };
    let probe = async {
        let mut s = connect_from(Some(pool.address), dst).await?;
        if hc.protocol == HealthCheckProtocol::Http {
            let path = hc.path.as_deref().unwrap_or("/");
            let req = format!(
                "GET {path} HTTP/1.1\r\nHost: {dst}\r\nUser-Agent: plinth-local-health\r\nConnection: close\r\n\r\n"
            );
            s.write_all(req.as_bytes()).await?;
            let mut head = [0u8; 16];
            let mut n = 0;
            while n < 12 {
                let k = s.read(&mut head[n..]).await?;
                if k == 0 {
                    break;
                }
                n += k;
            }
            let status = std::str::from_utf8(&head[..n])
                .ok()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|c| c.parse::<u16>().ok());
            return Ok(matches!(status, Some(200..=399)));
        }
        Ok::<bool, std::io::Error>(true)
    };
    matches!(tokio::time::timeout(hc.timeout, probe).await, Ok(Ok(true)))
}
