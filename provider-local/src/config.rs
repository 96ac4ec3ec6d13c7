//! Configuration of the local provider: where state lives, which AZs and address
//! ranges exist, and the limits it enforces.

use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use provider_core::wait::Timeouts;
use serde::{Deserialize, Serialize};

/// Environment variable that overrides [`LocalConfig::state_dir`] in
/// [`LocalConfig::from_env`].
pub const STATE_DIR_ENV: &str = "PLINTH_LOCAL_STATE_DIR";

/// Environment variable naming the `plinth-local` helper executable, when it is not
/// next to the running program (see [`crate::locate`]).
pub const HELPER_ENV: &str = "PLINTH_LOCAL_HELPER";

/// Environment variable carrying the daemon's [`LocalConfig`] as JSON (set by the
/// client that starts it; removed from instance processes).
pub(crate) const DAEMON_CONFIG_ENV: &str = "PLINTH_LOCAL_DAEMON_CONFIG";

/// Name of the floating IP pool of the default configuration.
pub const DEFAULT_POOL: &str = "local";

/// Everything the local provider can be configured with.
///
/// The daemon of a state directory runs with the configuration of the client that
/// started it; later clients with another configuration talk to that daemon as it is
/// (stop it with [`crate::LocalProvider::shutdown_daemon`] to change it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalConfig {
    /// Directory holding the database, the daemon's socket and log, volume files and
    /// instance directories.
    pub state_dir: PathBuf,
    /// Availability zone names (default `local-a`, `local-b`, `local-c`).
    pub availability_zones: Vec<String>,
    /// Loopback network instances get their private address from.
    pub instance_network: IpNet,
    /// Name of the floating IP pool ([`provider_core::FloatingIpSpec::pool`]).
    pub floating_ip_pool: String,
    /// Loopback network floating IPs come from.
    pub floating_ip_network: IpNet,
    /// Loopback network load balancer addresses come from.
    pub load_balancer_network: IpNet,
    /// Items per page of the daemon's list answers (reported as the page size).
    pub page_size: usize,
    /// Most TCP ports one floating IP forwards (lowest first).
    pub max_forwarded_ports: usize,
    /// How long a removed LB member may keep open connections before they are cut.
    pub drain_timeout: Duration,
    /// How long creates and deletes wait.
    pub timeouts: Timeouts,
    /// The helper executable; `None` looks it up (see [`crate::locate`]).
    pub helper: Option<PathBuf>,
}

impl Default for LocalConfig {
    fn default() -> Self {
        Self {
            state_dir: default_state_dir(),
            availability_zones: vec!["local-a".into(), "local-b".into(), "local-c".into()],
            // Three /16s far from 127.0.0.x, so tests binding 127.0.0.1 never collide,
            // and wide enough that daemons of different state dirs rarely pick the same
            // address (they also probe before using one).
            instance_network: net16(100),
            floating_ip_pool: DEFAULT_POOL.into(),
            floating_ip_network: net16(200),
            load_balancer_network: net16(201),
            page_size: 100,
            max_forwarded_ports: 64,
            drain_timeout: Duration::from_secs(60),
            timeouts: Timeouts::default(),
            helper: None,
        }
    }
}

impl LocalConfig {
    /// The default configuration, with the state directory taken from
    /// `PLINTH_LOCAL_STATE_DIR` when it is set.
    pub fn from_env() -> Self {
        let mut cfg = Self::default();
        if let Some(dir) = std::env::var_os(STATE_DIR_ENV).filter(|d| !d.is_empty()) {
            cfg.state_dir = PathBuf::from(dir);
        }
        cfg
    }

    /// The default configuration with another state directory.
    pub fn with_state_dir(state_dir: impl Into<PathBuf>) -> Self {
        Self {
            state_dir: state_dir.into(),
            ..Self::default()
        }
    }
}

/// `127.<second>.0.0/16`.
fn net16(second: u8) -> IpNet {
    let addr = std::net::Ipv4Addr::new(127, second, 0, 0);
    // A /16 prefix is always valid; the fallback only satisfies the type.
    ipnet::Ipv4Net::new(addr, 16)
        .map(IpNet::V4)
        .unwrap_or(IpNet::V4(ipnet::Ipv4Net::from(addr)))
}

/// `$XDG_DATA_HOME/plinth/local`, else `~/.local/share/plinth/local`, else a directory
/// under the system temp dir.
pub fn default_state_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("plinth").join("local");
    }
    if let Some(h) = std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(h)
            .join(".local")
            .join("share")
            .join("plinth")
            .join("local");
    }
    std::env::temp_dir().join("plinth-local")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_sane() {
        let c = LocalConfig::default();
        assert_eq!(c.availability_zones.len(), 3);
        assert_eq!(c.instance_network.to_string(), "127.100.0.0/16");
        assert_eq!(c.floating_ip_network.to_string(), "127.200.0.0/16");
        assert_eq!(c.load_balancer_network.to_string(), "127.201.0.0/16");
    }
}
