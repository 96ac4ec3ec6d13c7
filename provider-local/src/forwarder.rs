//! Floating IPs: one TCP listener per port the instance's groups open, on the floating
//! address, forwarding admitted connections to the instance's private address.

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::JoinHandle;

use crate::acl::SharedView;

/// How long a forwarder or LB waits for a backend to accept a connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Binds a listener now (so the caller learns of a busy address at once).
pub fn bind_listener(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let std = std::net::TcpListener::bind(addr)?;
    std.set_nonblocking(true)?;
    TcpListener::from_std(std)
}

/// Connects to `dst`, from the address `src` when given (so the backend sees which
/// floating IP or LB the traffic came through, and group rules can match it).
pub async fn connect_from(src: Option<IpAddr>, dst: SocketAddr) -> std::io::Result<TcpStream> {
    let sock = match dst {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    if let Some(src) = src {
        sock.bind(SocketAddr::new(src, 0))?;
    }
    match tokio::time::timeout(CONNECT_TIMEOUT, sock.connect(dst)).await {
        Ok(r) => r,
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "connect timed out",
        )),
    }
}

/// Refuses an accepted connection with a reset, as a firewall's REJECT would.
pub fn refuse(stream: TcpStream) {
    if let Err(e) = stream.set_zero_linger() {
        tracing::debug!("set_zero_linger: {e}");
    }
    drop(stream);
}

/// The listeners of one associated floating IP.
#[derive(Debug)]
pub struct Forwarder {
    address: IpAddr,
    instance_id: String,
    listeners: HashMap<u16, JoinHandle<()>>,
}

impl Forwarder {
    /// A forwarder from `address` to the instance, with no port yet.
    pub fn new(address: IpAddr, instance_id: String) -> Self {
        Self {
            address,
            instance_id,
            listeners: HashMap::new(),
        }
    }

    /// The instance it forwards to.
    pub fn instance_id(&self) -> &str {
        &self.instance_id
    }

    /// The ports it listens on.
    pub fn ports(&self) -> BTreeSet<u16> {
        self.listeners.keys().copied().collect()
    }

    /// Listens on exactly `ports` (starting and stopping listeners as needed).
    pub fn set_ports(&mut self, ports: &BTreeSet<u16>, view: &SharedView) {
        self.listeners.retain(|p, task| {
            let keep = ports.contains(p);
            if !keep {
                task.abort();
            }
            keep
        });
        for &port in ports {
            if self.listeners.contains_key(&port) {
                continue;
            }
            let listener = match bind_listener(SocketAddr::new(self.address, port)) {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(address = %self.address, port, "floating IP cannot listen: {e}");
                    continue;
                }
            };
            let task = tokio::spawn(accept_loop(
                listener,
                port,
                self.instance_id.clone(),
                view.clone(),
            ));
            self.listeners.insert(port, task);
        }
    }

    /// Stops every listener (frees the ports).
    pub fn stop(&mut self) {
        for (_, t) in self.listeners.drain() {
            t.abort();
        }
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn accept_loop(listener: TcpListener, port: u16, instance_id: String, view: SharedView) {
    loop {
        let (client, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(port, "accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let v = view.get();
        let target = v
            .instances
            .get(&instance_id)
            .filter(|i| v.admits(&i.groups, peer.ip(), port))
            .map(|i| i.address);
        let Some(target) = target else {
            tracing::info!(%peer, port, instance = %instance_id, "refused by security groups");
            refuse(client);
            continue;
        };
        tokio::spawn(async move {
            match connect_from(None, SocketAddr::new(target, port)).await {
                Ok(backend) => pipe(client, backend).await,
                Err(e) => {
                    tracing::debug!(%target, port, "backend unreachable: {e}");
                    refuse(client);
                }
            }
        });
    }
}

/// Copies both ways until both sides are done.
pub async fn pipe(mut a: TcpStream, mut b: TcpStream) {
    if let Err(e) = tokio::io::copy_bidirectional(&mut a, &mut b).await {
        tracing::debug!("proxied connection ended: {e}");
    }
}
