//! Node health: whether each node of the cluster serves, from four signals, each of
//! which must hold for a while before the node counts as unhealthy (so a blip does not
//! replace a node), as Cluster API's MachineHealthCheck and AWS Auto Scaling do.
//!
//! - **Cloud** ([`Signal::Cloud`]): the instance is in error, stopped or being deleted,
//!   or a slot the spec wants has no instance at all (gone). Held for
//!   [`HealthOptions::cloud_hold`].
//! - **Load balancer** ([`Signal::LoadBalancer`]): a load balancer reports the node's
//!   member unhealthy (not merely unchecked or draining). Held for
//!   [`HealthOptions::lb_hold`].
//! - **Hook** ([`Signal::Hook`]): the installer's [`Hooks::health`](crate::Hooks::health)
//!   says unhealthy. Held for [`HealthOptions::check_hold`].
//! - **Probe** ([`Signal::Probe`]): the optional [`HealthOptions::probe`] (TCP or HTTP on
//!   the node's private address) fails. Held for [`HealthOptions::check_hold`]. It
//!   catches a node that hangs without dying (its process stopped: the cloud says
//!   running, a TCP check still connects) when no hook is set.
//!
//! Hooks and probes run only on running nodes. A node still starting is not judged:
//! it is [`HealthState::Starting`] while the cloud says pending (until it has said so
//! for [`HealthOptions::grace`]: then the node is stuck and unhealthy), while `on_ready`
//! is owed ([`crate::hooks::TAG_READY`] pending), and for [`HealthOptions::grace`] after
//! a [`HealthTracker`] first saw it appear (then the cloud's error or stop still counts,
//! the other signals do not). A node that a replacement is handling (marked, or a
//! successor not yet standing for its slot) is [`HealthState::Replacing`].
//!
//! Nothing is stored on the cloud or on disk: "since when" lives in a [`HealthTracker`]
//! in memory. `watch` keeps one for its whole life, so a signal's time is measured
//! across its passes, and nodes that appear while it runs get the start-up grace (nodes
//! present when it starts are taken as established). A one-shot `repair` or `status`
//! starts a fresh tracker: `status` shows a bad signal as [`HealthState::Suspect`] with
//! how long it has been seen; `repair` re-checks a suspect node every
//! [`HealthOptions::recheck`] until its signal has held for its hold time (then it is
//! unhealthy) or cleared.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::time::{Duration, Instant};

use provider_core::{Instance, InstanceState, MemberHealth};
use serde::Serialize;

use crate::hooks::{Health, READY_PENDING, TAG_READY};
use crate::plan::{Desired, Observed};
use crate::replace::{role_of, Probe, PENDING};
use crate::slot::{canonical, slot_of, TAG_REPLACE};

/// How health is judged (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct HealthOptions {
    /// Start-up grace: how long after a tracker first saw a node appear only the
    /// cloud's error or stop counts.
    pub grace: Duration,
    /// How long the cloud must report a node failed, stopped or gone.
    pub cloud_hold: Duration,
    /// How long a load balancer must report a node's member unhealthy.
    pub lb_hold: Duration,
    /// How long the health hook or the probe must fail.
    pub check_hold: Duration,
    /// A probe every running node must pass (none by default).
    pub probe: Option<Probe>,
    /// Timeout of one probe.
    pub probe_timeout: Duration,
    /// How often a one-shot `repair` looks again at a suspect node.
    pub recheck: Duration,
}

impl Default for HealthOptions {
    /// Defaults that avoid flapping: a load balancer (checking every few seconds) must
    /// see a node down for a minute, the cloud for 30 s; new nodes get 5 minutes.
    fn default() -> Self {
        Self {
            grace: Duration::from_secs(300),
            cloud_hold: Duration::from_secs(30),
            lb_hold: Duration::from_secs(60),
            check_hold: Duration::from_secs(60),
            probe: None,
            probe_timeout: Duration::from_secs(3),
            recheck: Duration::from_secs(5),
        }
    }
}

impl HealthOptions {
    /// The hold time of `signal`.
    pub fn hold(&self, signal: Signal) -> Duration {
        match signal {
            Signal::Cloud => self.cloud_hold,
            Signal::LoadBalancer => self.lb_hold,
            Signal::Hook | Signal::Probe => self.check_hold,
        }
    }
}

/// Where a finding comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Signal {
    /// The cloud's view of the instance (or its absence).
    Cloud,
    /// A load balancer's health check of the node's member.
    LoadBalancer,
    /// The installer's health hook.
    Hook,
    /// The health probe.
    Probe,
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Signal::Cloud => "cloud",
            Signal::LoadBalancer => "load balancer",
            Signal::Hook => "health hook",
            Signal::Probe => "probe",
        })
    }
}

/// One bad signal about a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Its source.
    pub signal: Signal,
    /// What it says.
    pub reason: String,
    /// How long it has been seen (by this tracker).
    pub held: Duration,
    /// How long it must hold to count.
    pub hold: Duration,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} (seen {}s of {}s)",
            self.signal,
            self.reason,
            self.held.as_secs(),
            self.hold.as_secs()
        )
    }
}

/// A node's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthState {
    /// Every signal is good.
    Healthy,
    /// Starting up: not judged yet (see the [module docs](self)).
    Starting,
    /// A signal is bad but has not held long enough.
    Suspect,
    /// A signal has been bad for its hold time: `repair` replaces it.
    Unhealthy,
    /// A replacement is handling it.
    Replacing,
}

impl fmt::Display for HealthState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HealthState::Healthy => "healthy",
            HealthState::Starting => "starting",
            HealthState::Suspect => "suspect",
            HealthState::Unhealthy => "unhealthy",
            HealthState::Replacing => "replacing",
        })
    }
}

/// A node's health and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeHealth {
    /// The verdict.
    pub state: HealthState,
    /// The bad signals (empty when healthy).
    pub findings: Vec<Finding>,
}

impl NodeHealth {
    /// A healthy node.
    pub fn healthy() -> Self {
        Self {
            state: HealthState::Healthy,
            findings: Vec::new(),
        }
    }

    /// The findings, one sentence.
    pub fn why(&self) -> String {
        let parts: Vec<String> = self.findings.iter().map(ToString::to_string).collect();
        parts.join("; ")
    }
}

/// One slot's health, as a pass judged it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SlotHealth {
    /// The slot (`<cluster>-<role>-<ordinal>`).
    pub slot: String,
    /// The instance standing for it; `None` when it is gone.
    pub name: Option<String>,
    /// Role.
    pub role: String,
    /// AZ of the instance (or the slot's, when gone).
    pub availability_zone: String,
    /// Whether the spec asks for the slot.
    pub wanted: bool,
    /// The verdict.
    pub health: NodeHealth,
}

/// The verdicts of one pass over the cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HealthReport {
    /// Every slot with an instance, and every wanted slot without one, by slot name.
    pub slots: Vec<SlotHealth>,
}

impl HealthReport {
    /// The slots in `state`.
    pub fn in_state(&self, state: HealthState) -> impl Iterator<Item = &SlotHealth> {
        self.slots.iter().filter(move |s| s.health.state == state)
    }

    /// The health of the instance `name`, if the pass judged it.
    pub fn of(&self, name: &str) -> Option<&NodeHealth> {
        self.slots
            .iter()
            .find(|s| s.name.as_deref() == Some(name))
            .map(|s| &s.health)
    }
}

/// What the installer's hook and the probe said about each running node, by instance
/// id (gathered before each pass; tests may build one).
#[derive(Debug, Clone, Default)]
pub struct Checks {
    /// The hook's verdicts.
    pub hook: HashMap<String, Health>,
    /// The probe's failures (a node absent here passed or was not probed).
    pub probe: HashMap<String, String>,
}

/// Runs the health hook and the probe on every running node, concurrently.
pub(crate) async fn checks(
    observed: &Observed,
    hooks: Option<&dyn crate::Hooks>,
    opts: &HealthOptions,
) -> Checks {
    let running: Vec<&Instance> = observed
        .instances
        .iter()
        .filter(|i| i.state == InstanceState::Running)
        .collect();
    let one = |i: &Instance| {
        let i = i.clone();
        async move {
            let hook = match hooks {
                Some(h) => Some(h.health(&i).await),
                None => None,
            };
            let probe = match (&opts.probe, i.private_ip) {
                (Some(p), Some(addr)) => crate::replace::run_probe(addr, p, opts.probe_timeout)
                    .await
                    .err(),
                (Some(_), None) => Some("no private address".to_string()),
                (None, _) => None,
            };
            (i.id, hook, probe)
        }
    };
    let results = futures::future::join_all(running.into_iter().map(one)).await;
    let mut out = Checks::default();
    for (id, hook, probe) in results {
        if let Some(h) = hook {
            out.hook.insert(id.clone(), h);
        }
        if let Some(p) = probe {
            out.probe.insert(id, p);
        }
    }
    out
}

/// "Since when" of every bad signal and when each node was first seen, kept in memory
/// across passes (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct HealthTracker {
    /// The first pass; nodes seen then are established (no start-up grace).
    first_pass: Option<Instant>,
    /// When each instance id was first seen.
    seen: HashMap<String, Instant>,
    /// Since when each (instance id or gone slot, signal) has been bad.
    bad_since: HashMap<(String, Signal), Instant>,
}

impl Default for HealthTracker {
    fn default() -> Self {
        Self::new()
    }
}

impl HealthTracker {
    /// A tracker that has seen nothing.
    pub fn new() -> Self {
        Self {
            first_pass: None,
            seen: HashMap::new(),
            bad_since: HashMap::new(),
        }
    }

    /// Judges every slot at `now` from the cloud as `observed`, the spec's `desired`
    /// state and the `checks`, and remembers what it saw for the next pass.
    pub fn assess(
        &mut self,
        now: Instant,
        desired: &Desired,
        observed: &Observed,
        checks: &Checks,
        opts: &HealthOptions,
    ) -> HealthReport {
        let first = *self.first_pass.get_or_insert(now);
        let wanted: HashMap<&str, &crate::plan::DesiredInstance> = desired
            .instances
            .iter()
            .map(|d| (d.name.as_str(), d))
            .collect();
        let by_slot = canonical(&observed.instances);
        let lb_bad = lb_findings(observed);
        let vacant: HashSet<String> = observed
            .groups
            .iter()
            .find(|g| g.name == crate::lease::base_group_name(&desired.cluster))
            .map(|g| {
                crate::slot::vacancies(&g.tags)
                    .into_iter()
                    .map(|v| v.slot)
                    .collect()
            })
            .unwrap_or_default();
        let mut bad_now: HashSet<(String, Signal)> = HashSet::new();
        let mut slots = Vec::new();

        for i in &observed.instances {
            self.seen.entry(i.id.clone()).or_insert(now);
        }
        for (slot, i) in &by_slot {
            let Some(role) = role_of(i) else { continue };
            let mut raw: Vec<(Signal, String)> = Vec::new();
            match i.state {
                InstanceState::Failed => {
                    raw.push((Signal::Cloud, "the cloud reports it failed".into()))
                }
                InstanceState::Stopped => {
                    raw.push((Signal::Cloud, "the cloud reports it stopped".into()))
                }
                InstanceState::Deleting => {
                    raw.push((Signal::Cloud, "the cloud is deleting it".into()))
                }
                // Held for the start-up grace instead (below): a node stuck starting.
                InstanceState::Pending => {
                    raw.push((Signal::Cloud, "the cloud still reports it pending".into()))
                }
                InstanceState::Running => {}
            }
            for why in lb_bad.get(i.id.as_str()).into_iter().flatten() {
                raw.push((Signal::LoadBalancer, why.clone()));
            }
            if let Some(Health::Unhealthy(why)) = checks.hook.get(&i.id) {
                raw.push((Signal::Hook, why.clone()));
            }
            if let Some(why) = checks.probe.get(&i.id) {
                raw.push((Signal::Probe, why.clone()));
            }
            let first_seen = self.seen.get(&i.id).copied().unwrap_or(now);
            let in_grace = first_seen > first && now.duration_since(first_seen) < opts.grace;
            let starting = i.state == InstanceState::Pending
                || i.tags.get(TAG_READY).map(String::as_str) == Some(READY_PENDING)
                || in_grace;
            let replacing = i.tags.get(TAG_REPLACE).map(String::as_str) == Some(PENDING)
                || vacant.contains(*slot)
                || observed
                    .instances
                    .iter()
                    .any(|o| o.id != i.id && slot_of(o) == *slot);
            let mut findings = self.record(now, &i.id, raw, opts, &mut bad_now);
            if i.state == InstanceState::Pending {
                for f in findings.iter_mut().filter(|f| f.signal == Signal::Cloud) {
                    f.hold = opts.grace;
                }
            }
            let state = if replacing {
                HealthState::Replacing
            } else if starting
                && !findings
                    .iter()
                    .any(|f| f.signal == Signal::Cloud && f.held >= f.hold)
            {
                HealthState::Starting
            } else {
                verdict(&findings)
            };
            slots.push(SlotHealth {
                slot: slot.to_string(),
                name: Some(i.name.clone()),
                role: role.to_string(),
                availability_zone: i.availability_zone.clone(),
                wanted: wanted.contains_key(slot),
                health: NodeHealth { state, findings },
            });
        }
        for d in &desired.instances {
            if by_slot.contains_key(d.name.as_str()) {
                continue;
            }
            let (state, findings) = if vacant.contains(&d.name) {
                (HealthState::Replacing, Vec::new())
            } else {
                let raw = vec![(
                    Signal::Cloud,
                    "gone: no instance fills the slot".to_string(),
                )];
                let findings = self.record(now, &d.name, raw, opts, &mut bad_now);
                (verdict(&findings), findings)
            };
            slots.push(SlotHealth {
                slot: d.name.clone(),
                name: None,
                role: d.role.to_string(),
                availability_zone: d.availability_zone.clone(),
                wanted: true,
                health: NodeHealth { state, findings },
            });
        }
        // A signal that cleared starts from zero next time; instances gone are forgotten.
        self.bad_since.retain(|k, _| bad_now.contains(k));
        let ids: HashSet<&str> = observed.instances.iter().map(|i| i.id.as_str()).collect();
        self.seen.retain(|id, _| ids.contains(id.as_str()));
        slots.sort_by(|a, b| a.slot.cmp(&b.slot));
        HealthReport { slots }
    }

    /// Records the bad signals of `key` at `now`; returns them with how long each held.
    fn record(
        &mut self,
        now: Instant,
        key: &str,
        raw: Vec<(Signal, String)>,
        opts: &HealthOptions,
        bad_now: &mut HashSet<(String, Signal)>,
    ) -> Vec<Finding> {
        raw.into_iter()
            .map(|(signal, reason)| {
                let k = (key.to_string(), signal);
                let since = *self.bad_since.entry(k.clone()).or_insert(now);
                bad_now.insert(k);
                Finding {
                    signal,
                    reason,
                    held: now.saturating_duration_since(since),
                    hold: opts.hold(signal),
                }
            })
            .collect()
    }
}

/// Unhealthy if a finding held for its hold time, suspect if any, else healthy.
fn verdict(findings: &[Finding]) -> HealthState {
    if findings.iter().any(|f| f.held >= f.hold) {
        HealthState::Unhealthy
    } else if findings.is_empty() {
        HealthState::Healthy
    } else {
        HealthState::Suspect
    }
}

/// Why each instance id is unhealthy in a load balancer (`<lb>:<port> reports ...`).
fn lb_findings(observed: &Observed) -> BTreeMap<&str, Vec<String>> {
    let mut out: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for lb in &observed.load_balancers {
        for l in &lb.listeners {
            for m in &l.pool.members {
                if m.health == MemberHealth::Unhealthy {
                    out.entry(m.instance_id.as_str())
                        .or_default()
                        .push(format!("{}:{} reports it unhealthy", lb.name, l.port));
                }
            }
        }
    }
    out
}
