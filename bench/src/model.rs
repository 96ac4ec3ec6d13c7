//! The limits: what a run could take at best, computed from the plan and the cloud's
//! fixed costs, never from what the run happened to do.
//!
//! The simulated cloud ([`crate::cloud`]) answers every call after a fixed
//! [`Costs::latency`], lets an instance create return after [`Costs::boot`] more, and a
//! served node's drain waits [`Costs::drain`]. Each plan action costs the *minimal*
//! number of calls its implementation needs (no retry, no second poll: a wait whose
//! resource is ready costs one read) plus those fixed waits ([`action_cost`]).
//!
//! - [`critical_path`]: the longest chain of dependent actions of a DAG; the limit of
//!   a run with unbounded concurrency and no rate limit.
//! - [`plan_calls`] / [`bringup_calls`]: the minimal calls of a plan, summed over its
//!   actions or derived from the resource counts of the desired state; under a rate
//!   limit of `r` calls/s a run takes at least `calls / r`.

use std::time::Duration;

use cluster::plan::{Action, Desired, PlannedAction, RuleRef};

/// The fixed costs of the simulated cloud.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Costs {
    /// Every call's round trip.
    pub latency: Duration,
    /// What an instance create (one call, a whole batch) takes beyond its round trip.
    pub boot: Duration,
    /// How long a node that served in a load balancer drains before it goes.
    pub drain: Duration,
}

/// What one action needs at least.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ActionCost {
    /// Provider calls, one after the other.
    pub calls: u64,
    /// Fixed waits beyond the calls' round trips (boot, drain).
    pub wait: Duration,
}

impl Costs {
    /// How long an action of this cost takes at best.
    pub fn time(&self, cost: ActionCost) -> Duration {
        self.latency * u32::try_from(cost.calls).unwrap_or(u32::MAX) + cost.wait
    }
}

/// The minimal calls and fixed waits of `action` (see the [module docs](self)).
pub fn action_cost(action: &Action, costs: &Costs) -> ActionCost {
    let calls = |n: usize| ActionCost {
        calls: n as u64,
        wait: Duration::ZERO,
    };
    match action {
        // One call per rule: the provider contract adds and removes rules one by one.
        Action::AddSecurityGroupRules { rules, .. } => calls(rules.len()),
        Action::RemoveSecurityGroupRules { rules, .. } => calls(rules.len()),
        Action::CreateInstances { .. } => ActionCost {
            calls: 1,
            wait: costs.boot,
        },
        // Reads the node, waits if it served, calls the drain hook (no call).
        Action::Drain { served, .. } => ActionCost {
            calls: 1,
            wait: if *served { costs.drain } else { Duration::ZERO },
        },
        // Reads the old master, lists the masters.
        Action::CheckQuorum { .. } => calls(2),
        // Every other action is one call: a create, change or delete, or one read
        // (a wait whose resource is ready, the node handed to the on_ready hook).
        Action::CreateSecurityGroup { .. }
        | Action::DeleteSecurityGroup { .. }
        | Action::CreateVolume { .. }
        | Action::AttachVolume { .. }
        | Action::DetachVolume { .. }
        | Action::DeleteVolume { .. }
        | Action::AllocateFloatingIp { .. }
        | Action::AssociateFloatingIp { .. }
        | Action::DisassociateFloatingIp { .. }
        | Action::ReleaseFloatingIp { .. }
        | Action::CreateLoadBalancer { .. }
        | Action::AddLoadBalancerMember { .. }
        | Action::RemoveLoadBalancerMember { .. }
        | Action::DeleteLoadBalancer { .. }
        | Action::DeleteInstance { .. }
        | Action::AwaitReady { .. }
        | Action::OnReady { .. }
        | Action::AwaitMemberHealthy { .. }
        | Action::TagInstance { .. }
        | Action::TagGroup { .. } => calls(1),
    }
}

/// The minimal calls of a plan's actions.
pub fn plan_calls<'a>(actions: impl IntoIterator<Item = &'a PlannedAction>, costs: &Costs) -> u64 {
    actions
        .into_iter()
        .map(|a| action_cost(&a.action, costs).calls)
        .sum()
}

/// The minimal calls of bringing `desired` up from nothing, from its resource counts:
/// a create per security group, volume, floating IP and load balancer, a call per rule
/// naming a group (added once the groups exist), one `create_instances` per batch of
/// `batch_size` nodes of a role, an attach per volume and an associate per floating IP.
pub fn bringup_calls(desired: &Desired, batch_size: usize) -> u64 {
    let batch = batch_size.max(1);
    let group_rules = desired
        .groups
        .iter()
        .flat_map(|g| &g.rules)
        .filter(|r| matches!(r, RuleRef::Group { .. }))
        .count();
    let mut batches = 0;
    for role in cluster::Role::ALL {
        let n = desired.instances.iter().filter(|i| i.role == role).count();
        batches += n.div_ceil(batch);
    }
    let n = desired.groups.len()
        + group_rules
        + batches
        + 2 * desired.volumes.len()
        + 2 * desired.floating_ips.len()
        + desired.load_balancers.len();
    n as u64
}

/// One action of a DAG: what it waits for and what it costs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Indexes of the steps it waits for, all smaller than its own.
    pub deps: Vec<usize>,
    /// How long it takes.
    pub cost: Duration,
}

/// The longest chain of a DAG.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CriticalPath {
    /// Its length: the sum of its steps' costs.
    pub length: Duration,
    /// Its steps, first to last.
    pub steps: Vec<usize>,
}

/// Why a critical path could not be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    /// A step waits for itself or a later one (plans never do: their list order is a
    /// valid sequential order).
    #[error("step {step} waits for step {dep}, which does not come before it")]
    NotBefore {
        /// The step.
        step: usize,
        /// The dependency.
        dep: usize,
    },
}

/// The longest chain of dependent steps (each step starts when all it waits for are
/// done), in one pass over the steps in order.
pub fn critical_path(steps: &[Step]) -> Result<CriticalPath, ModelError> {
    // finish[i]: the earliest step i can end; via[i]: the dependency that ends last.
    let mut finish: Vec<Duration> = Vec::with_capacity(steps.len());
    let mut via: Vec<Option<usize>> = Vec::with_capacity(steps.len());
    for (i, s) in steps.iter().enumerate() {
        let mut start = Duration::ZERO;
        let mut last = None;
        for &d in &s.deps {
            let Some(&f) = finish.get(d).filter(|_| d < i) else {
                return Err(ModelError::NotBefore { step: i, dep: d });
            };
            if last.is_none() || f > start {
                start = f;
                last = Some(d);
            }
        }
        finish.push(start + s.cost);
        via.push(last);
    }
    let Some((end, &length)) = finish.iter().enumerate().max_by_key(|(_, f)| **f) else {
        return Ok(CriticalPath::default());
    };
    let mut path = vec![end];
    let mut at = end;
    while let Some(prev) = via[at] {
        path.push(prev);
        at = prev;
    }
    path.reverse();
    Ok(CriticalPath {
        length,
        steps: path,
    })
}

/// The steps of a plan's actions under `costs`. Action ids are assumed to be their
/// indexes (as in every [`cluster::Plan`]); `actions` must be in id order.
pub fn plan_steps<'a>(
    actions: impl IntoIterator<Item = &'a PlannedAction>,
    costs: &Costs,
) -> Vec<Step> {
    actions
        .into_iter()
        .map(|a| Step {
            deps: a.deps.clone(),
            cost: costs.time(action_cost(&a.action, costs)),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use cluster::plan::{diff, DiffOptions, Observed};
    use cluster::ClusterSpec;
    use provider_core::{Capabilities, Family, LbProtocol};

    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn step(deps: &[usize], cost: u64) -> Step {
        Step {
            deps: deps.to_vec(),
            cost: ms(cost),
        }
    }

    #[test]
    fn the_longest_chain_wins_over_the_heaviest_step() {
        //   0 (10) -> 2 (30) -> 4 (5)
        //   1 (50) ----------> 4
        //   0 ------> 3 (100)
        //   3 is the longest chain: 0 + 3 = 110 > 1 + 4 = 55 > 0 + 2 + 4 = 45.
        let steps = [
            step(&[], 10),
            step(&[], 50),
            step(&[0], 30),
            step(&[0], 100),
            step(&[1, 2], 5),
        ];
        let cp = critical_path(&steps).unwrap();
        assert_eq!(cp.length, ms(110));
        assert_eq!(cp.steps, vec![0, 3]);

        // A diamond: the join waits for the slower branch.
        let steps = [step(&[], 1), step(&[0], 7), step(&[0], 3), step(&[1, 2], 2)];
        let cp = critical_path(&steps).unwrap();
        assert_eq!(cp.length, ms(10));
        assert_eq!(cp.steps, vec![0, 1, 3]);
    }

    #[test]
    fn empty_and_malformed_dags() {
        assert_eq!(critical_path(&[]).unwrap(), CriticalPath::default());
        assert_eq!(
            critical_path(&[step(&[], 1), step(&[1], 1)]),
            Err(ModelError::NotBefore { step: 1, dep: 1 })
        );
        assert_eq!(
            critical_path(&[step(&[3], 1)]),
            Err(ModelError::NotBefore { step: 0, dep: 3 })
        );
    }

    /// The seed topology as the memory provider would host it.
    fn seed() -> Desired {
        let spec = ClusterSpec::parse("seed.properties", &crate::cloud::spec_text("seed", 1, 3, 2))
            .unwrap();
        let caps = Capabilities::new(20)
            .with_lb_protocols([LbProtocol::Tcp, LbProtocol::Http])
            .with_group_sources(true);
        let zones: Vec<String> = crate::cloud::ZONES.iter().map(|z| z.to_string()).collect();
        Desired::from_spec(&spec, &zones, &caps, Family::ALL)
    }

    #[test]
    fn the_seed_topology_needs_18_calls() {
        let d = seed();
        // 4 groups (base, lb, master, node) + 3 rules naming a group + 3 batches (one per
        // role) + 2 volumes and their attaches + 1 floating IP and its associate + 2 LBs.
        assert_eq!(
            (d.groups.len(), d.instances.len(), d.volumes.len()),
            (4, 6, 2)
        );
        assert_eq!((d.floating_ips.len(), d.load_balancers.len()), (1, 2));
        assert_eq!(bringup_calls(&d, 25), 18);

        // The plan from nothing needs exactly those: counts and actions agree.
        let costs = Costs {
            latency: ms(20),
            boot: ms(500),
            drain: ms(200),
        };
        let opts = DiffOptions::default();
        let plan = diff(&d, &Observed::default(), &opts);
        assert_eq!(plan_calls(&plan.actions, &costs), 18);
        assert_eq!(plan.actions.len(), 18);

        // Its critical path: a group, the batch of instances, then the LB that fronts
        // them (3 calls and a boot).
        let cp = critical_path(&plan_steps(&plan.actions, &costs)).unwrap();
        assert_eq!(cp.length, ms(3 * 20 + 500));
        let kinds: Vec<&str> = cp
            .steps
            .iter()
            .map(|i| plan.actions[*i].action.kind())
            .collect();
        assert_eq!(
            kinds,
            [
                "create_security_group",
                "create_instances",
                "create_load_balancer"
            ]
        );
    }

    #[test]
    fn batches_count_per_role() {
        let spec = ClusterSpec::parse(
            "big.properties",
            &crate::cloud::spec_text("big", 3, 300, 12),
        )
        .unwrap();
        let caps = Capabilities::new(20)
            .with_lb_protocols([LbProtocol::Tcp, LbProtocol::Http])
            .with_group_sources(true);
        let zones: Vec<String> = crate::cloud::ZONES.iter().map(|z| z.to_string()).collect();
        let d = Desired::from_spec(&spec, &zones, &caps, Family::ALL);
        // 4 groups + 3 rules + (1 + 12 + 1) batches + 12 volumes and attaches + 3
        // floating IPs and associates + 2 LBs.
        assert_eq!(bringup_calls(&d, 25), 4 + 3 + 14 + 24 + 6 + 2);
        let costs = Costs {
            latency: ms(1),
            boot: ms(1),
            drain: ms(1),
        };
        let plan = diff(&d, &Observed::default(), &DiffOptions::default());
        assert_eq!(plan_calls(&plan.actions, &costs), bringup_calls(&d, 25));
    }
}
