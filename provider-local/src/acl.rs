//! Security group enforcement: who may open a TCP connection on the paths the provider
//! carries (floating IP forwarders, LB listeners, LB to members).
//!
//! The daemon rebuilds a [`NetView`] snapshot after every change; the proxies read the
//! current snapshot for each connection, so a rule change applies to the next one.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, RwLock};

use provider_core::{IngressRule, Protocol, RuleSource};

/// Addresses and groups of one instance.
#[derive(Debug, Clone)]
pub struct InstanceNet {
    /// Private address.
    pub address: IpAddr,
    /// Security group ids.
    pub groups: Vec<String>,
}

/// What the proxies need to know of the whole cloud, at one moment.
#[derive(Debug, Clone, Default)]
pub struct NetView {
    /// Rules per security group id.
    pub groups: HashMap<String, Vec<IngressRule>>,
    /// Instances by id.
    pub instances: HashMap<String, InstanceNet>,
    /// Load balancers by id: address and security groups.
    pub load_balancers: HashMap<String, (IpAddr, Vec<String>)>,
}

impl NetView {
    /// Whether any rule of `groups` admits a TCP connection from `client` to `port`.
    pub fn admits(&self, groups: &[String], client: IpAddr, port: u16) -> bool {
        groups.iter().any(|g| {
            self.groups.get(g).is_some_and(|rules| {
                rules
                    .iter()
                    .any(|r| r.allows_tcp_port(port) && self.source_matches(&r.source, client))
            })
        })
    }

    /// Whether `client` is inside `source`: a CIDR holds it, or it is the address of an
    /// instance or load balancer that is a member of the source group.
    fn source_matches(&self, source: &RuleSource, client: IpAddr) -> bool {
        match source {
            RuleSource::Cidr(net) => net.contains(&client),
            RuleSource::Group(g) => {
                self.instances
                    .values()
                    .any(|i| i.address == client && i.groups.contains(g))
                    || self
                        .load_balancers
                        .values()
                        .any(|(a, gs)| *a == client && gs.contains(g))
            }
        }
    }

    /// The TCP ports `groups` open to anyone at all, lowest first, at most `max`.
    /// `Any` rules open every port and so name none: they admit traffic on ports other
    /// rules open, but a floating IP cannot forward all 65535 ports.
    pub fn open_tcp_ports(&self, groups: &[String], max: usize) -> BTreeSet<u16> {
        let mut ports = BTreeSet::new();
        for g in groups {
            for r in self.groups.get(g).into_iter().flatten() {
                if let (Protocol::Tcp, Some(range)) = (r.protocol, r.ports) {
                    for p in range.from..=range.to {
                        ports.insert(p);
                        if ports.len() > max {
                            break;
                        }
                    }
                }
            }
        }
        ports.into_iter().take(max).collect()
    }
}

/// The shared, swappable snapshot.
#[derive(Debug, Clone, Default)]
pub struct SharedView(Arc<RwLock<Arc<NetView>>>);

impl SharedView {
    /// The current snapshot.
    pub fn get(&self) -> Arc<NetView> {
        match self.0.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Replaces the snapshot.
    pub fn set(&self, view: NetView) {
        let view = Arc::new(view);
        match self.0.write() {
            Ok(mut g) => *g = view,
            Err(poisoned) => *poisoned.into_inner() = view,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use provider_core::PortRange;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn cidr_and_group_sources() {
        let mut v = NetView::default();
        v.groups.insert(
            "web".into(),
            vec![
                IngressRule::tcp(8080, "127.0.0.1/32".parse().unwrap()),
                IngressRule::tcp_from_group(9000, "lb"),
            ],
        );
        v.load_balancers
            .insert("lb1".into(), (ip("127.201.0.5"), vec!["lb".into()]));
        let g = vec!["web".to_string()];
        assert!(v.admits(&g, ip("127.0.0.1"), 8080));
        assert!(!v.admits(&g, ip("127.0.0.99"), 8080));
        assert!(!v.admits(&g, ip("127.0.0.1"), 8081));
        assert!(v.admits(&g, ip("127.201.0.5"), 9000));
        assert!(!v.admits(&g, ip("127.201.0.6"), 9000));
        assert!(!v.admits(&[], ip("127.0.0.1"), 8080));
    }

    #[test]
    fn open_ports_are_bounded() {
        let mut v = NetView::default();
        v.groups.insert(
            "g".into(),
            vec![IngressRule::new(
                Protocol::Tcp,
                RuleSource::Cidr("0.0.0.0/0".parse().unwrap()),
            )
            .with_ports(PortRange {
                from: 1000,
                to: 2000,
            })],
        );
        let p = v.open_tcp_ports(&["g".into()], 3);
        assert_eq!(p.into_iter().collect::<Vec<_>>(), vec![1000, 1001, 1002]);
    }
}
