//! Rolling replacement and scaling on the memory provider: slots, AZs, volumes and
//! addresses kept, failed replacements undone, the executor's steps and windows, and an
//! even spread when scaling. Crash-safe resume is in `crash.rs`.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use cluster::hooks::{Health, Hooks};
use cluster::plan::TAG_ROLE;
use cluster::replace::ReplaceOptions;
use cluster::scale::{pick_victims, spread};
use cluster::slot::canonical;
use cluster::{Error, Role, Selector};
use common::rolling::{cluster, memory, quick, snapshot, spec, watched, Watch};
use provider_core::memory::MemoryProvider;
use provider_core::ProviderExt;
use provider_core::{Instance, TagFilter};

#[tokio::test]
async fn replace_all_keeps_slots_azs_volumes_and_addresses_and_apply_is_then_a_no_op() {
    let m = memory();
    let c = cluster(spec("roll", 1, 3, 2), m.clone());
    c.apply().await.unwrap();
    let before = m.list_instances(&TagFilter::all()).await.unwrap();
    let report = c.replace(&Selector::All, &quick()).await.unwrap();
    assert_eq!(report.replaced.len(), 6, "{report}");
    let after = m.list_instances(&TagFilter::all()).await.unwrap();
    assert_eq!(after.len(), 6);
    for b in &before {
        let new = after
            .iter()
            .find(|a| a.name == format!("{}-r1", b.name))
            .unwrap_or_else(|| panic!("{} was not replaced", b.name));
        assert_eq!(new.availability_zone, b.availability_zone);
        assert_eq!(new.tags.get(TAG_ROLE), b.tags.get(TAG_ROLE));
    }
    assert_eq!(spread(&before), spread(&after));
    // Data volumes moved, not recreated; the floating IP followed the master.
    for v in m.list_volumes(&TagFilter::all()).await.unwrap() {
        let on = v.attachment.unwrap().instance_id;
        let inst = after.iter().find(|i| i.id == on).unwrap();
        assert_eq!(format!("{}-data", cluster::slot::slot_of(inst)), v.name);
    }
    for f in m.list_floating_ips(&TagFilter::all()).await.unwrap() {
        let on = f.instance_id.unwrap();
        assert!(after.iter().any(|i| i.id == on && i.name.ends_with("-r1")));
    }
    let ids: BTreeSet<&str> = after.iter().map(|i| i.id.as_str()).collect();
    for lb in m.list_load_balancers(&TagFilter::all()).await.unwrap() {
        for l in &lb.listeners {
            assert!(!l.pool.members.is_empty());
            assert!(l
                .pool
                .members
                .iter()
                .all(|mm| ids.contains(mm.instance_id.as_str())));
        }
    }
    let plan = c.plan().await.unwrap();
    assert!(plan.actions.is_empty(), "apply after replace: {plan:?}");
    let st = c.status().await.unwrap();
    assert!(st.nodes.iter().all(|n| n.wanted && !n.stale), "{st:?}");
    // Status speaks of slots: nothing is missing when the plan has nothing to do.
    assert!(st.missing.is_empty(), "{:?}", st.missing);
    assert!(
        st.nodes.iter().all(|n| n.name == format!("{}-r1", n.slot)),
        "{st:?}"
    );
    // The same command again is recognised as finished.
    let again = c.replace(&Selector::All, &quick()).await.unwrap();
    assert!(again.already_done && again.replaced.is_empty(), "{again}");
    // Stale selection: nothing is stale now; a second replacement goes to generation 2.
    let r = c.replace(&Selector::Stale, &quick()).await.unwrap();
    assert!(r.replaced.is_empty());
    let r = c
        .replace(&Selector::Nodes(vec!["roll-node-1".into()]), &quick())
        .await
        .unwrap();
    assert_eq!(r.replaced[0].new, "roll-node-1-r2");
}

#[tokio::test]
async fn stale_nodes_are_the_ones_whose_role_spec_changed() {
    let m = memory();
    cluster(spec("stale", 1, 3, 0), m.clone())
        .apply()
        .await
        .unwrap();
    let mut changed = spec("stale", 1, 3, 0);
    changed.nodes.flavor = "large".into();
    let c = cluster(changed, m.clone());
    let r = c.replace(&Selector::Stale, &quick()).await.unwrap();
    let mut olds: Vec<&str> = r.replaced.iter().map(|x| x.old.as_str()).collect();
    olds.sort();
    assert_eq!(olds, ["stale-node-0", "stale-node-1", "stale-node-2"]);
    for i in m.list_instances(&TagFilter::all()).await.unwrap() {
        if i.tags.get(TAG_ROLE).map(String::as_str) == Some("node") {
            assert_eq!(i.flavor, "large");
        }
    }
}

/// Says the replacements are never healthy.
struct NewNodesSick;

#[async_trait]
impl Hooks for NewNodesSick {
    async fn health(&self, node: &Instance) -> Health {
        if node.name.contains("-r") {
            Health::Unhealthy("the platform agent never joined".into())
        } else {
            Health::Healthy
        }
    }
}

#[tokio::test]
async fn a_replacement_that_never_gets_healthy_leaves_the_old_node_serving() {
    let m = memory();
    let c = cluster(spec("sick", 1, 3, 1), m.clone());
    c.apply().await.unwrap();
    let before = snapshot(m.as_ref()).await;
    let opts = ReplaceOptions {
        ready_timeout: Duration::from_millis(200),
        ..quick()
    };
    let err = c
        .clone()
        .with_hooks(Arc::new(NewNodesSick))
        .replace(&Selector::Role(Role::Storage), &opts)
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Rolling { .. }), "{msg}");
    assert!(msg.contains("never joined"), "{msg}");
    assert!(msg.contains("keeps serving"), "{msg}");
    // The old node still runs with its volume and LB membership; the new one is gone.
    let mut after = snapshot(m.as_ref()).await;
    let old = after.instances.get_mut("sick-storage-0").unwrap();
    assert_eq!(
        old.1.remove(cluster::slot::TAG_REPLACE).as_deref(),
        Some("pending")
    );
    assert!(!after.instances.contains_key("sick-storage-0-r1"));
    assert_eq!(after.instances, before.instances);
    assert_eq!(after.volumes, before.volumes);
    assert_eq!(after.lbs, before.lbs);
    let failed = m.list_instances(&TagFilter::all()).await.unwrap();
    assert!(failed
        .iter()
        .all(|i| i.state == provider_core::InstanceState::Running));
}

#[tokio::test]
async fn a_failed_instance_stops_the_replacement() {
    // The provider itself reports the new instance failed: the old one stays.
    let m = memory();
    let c = cluster(spec("dies", 1, 3, 0), m.clone());
    c.apply().await.unwrap();
    struct FailNew(Arc<MemoryProvider>);
    #[async_trait]
    impl Hooks for FailNew {
        async fn health(&self, node: &Instance) -> Health {
            if node.name.ends_with("-r1") {
                let _ = self.0.fail_instance(&node.id);
                Health::Unhealthy("failing it".into())
            } else {
                Health::Healthy
            }
        }
    }
    let err = c
        .clone()
        .with_hooks(Arc::new(FailNew(m.clone())))
        .replace(&Selector::Nodes(vec!["dies-node-2".into()]), &quick())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("dies-node-2 keeps serving"),
        "{err}"
    );
    let names: BTreeSet<String> = m
        .list_instances(&TagFilter::all())
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.name)
        .collect();
    assert!(names.contains("dies-node-2") && !names.contains("dies-node-2-r1"));
}

fn nodes_of(all: &[Instance], role: Role) -> Vec<Instance> {
    canonical(all)
        .values()
        .filter(|i| i.tags.get(TAG_ROLE).map(String::as_str) == Some(role.as_str()))
        .map(|i| (*i).clone())
        .collect()
}

fn even(s: &BTreeMap<String, usize>, zones: usize) -> bool {
    let counts: Vec<usize> = s.values().copied().collect();
    let max = counts.iter().copied().max().unwrap_or(0);
    let min = if counts.len() < zones {
        0
    } else {
        counts.iter().copied().min().unwrap_or(0)
    };
    max - min <= 1
}

#[tokio::test]
async fn scale_up_and_down_keeps_the_spread_even() {
    let m = memory();
    let c = cluster(spec("sc", 1, 3, 0), m.clone());
    c.apply().await.unwrap();
    for target in [5, 7, 4, 2, 6, 3] {
        let r = c.scale(Role::Node, target, &quick()).await.unwrap();
        let all = m.list_instances(&TagFilter::all()).await.unwrap();
        let nodes = nodes_of(&all, Role::Node);
        assert_eq!(nodes.len(), target, "{r}");
        let s = spread(&nodes);
        assert!(even(&s, 3), "uneven after scaling to {target}: {s:?}");
        // Other roles are untouched.
        assert_eq!(nodes_of(&all, Role::Master).len(), 1);
        // Status and plan agree on what is missing (the spec asks for 3 nodes).
        let st = c.status().await.unwrap();
        let plan = c.plan().await.unwrap();
        let planned: Vec<String> = plan
            .created_instances()
            .iter()
            .map(|(_, i)| i.name.clone())
            .collect();
        assert_eq!(st.missing, planned, "scaled to {target}");
    }
    // Scaling twice to the same count changes nothing.
    let r = c.scale(Role::Node, 3, &quick()).await.unwrap();
    assert!(r.added.is_empty() && r.removed.is_empty());
}

#[tokio::test]
async fn scale_down_takes_the_most_crowded_az_first_and_drains_first() {
    let m = memory();
    let c = cluster(spec("crowd", 1, 6, 0), m.clone());
    c.apply().await.unwrap();
    // Make az-3 the most crowded: delete one node in az-1 and one in az-2.
    let all = m.list_instances(&TagFilter::all()).await.unwrap();
    for name in ["crowd-node-3", "crowd-node-4"] {
        let i = all.iter().find(|i| i.name == name).unwrap();
        m.delete_instance(&i.id).await.unwrap();
    }
    let all = m.list_instances(&TagFilter::all()).await.unwrap();
    let nodes = nodes_of(&all, Role::Node);
    assert_eq!(spread(&nodes).get("az-3"), Some(&2));

    struct Drains(std::sync::Mutex<Vec<(String, bool)>>, Arc<MemoryProvider>);
    #[async_trait]
    impl Hooks for Drains {
        async fn drain(&self, node: &Instance) -> Result<(), cluster::HookError> {
            // Drained while still existing, and already out of every LB.
            let lbs = self.1.list_load_balancers(&TagFilter::all()).await.unwrap();
            let in_lb = lbs.iter().any(|lb| {
                lb.listeners
                    .iter()
                    .any(|l| l.pool.members.iter().any(|mm| mm.instance_id == node.id))
            });
            self.0.lock().unwrap().push((node.name.clone(), in_lb));
            Ok(())
        }
    }
    let hooks = Arc::new(Drains(Default::default(), m.clone()));
    let r = c
        .clone()
        .with_hooks(hooks.clone())
        .scale(Role::Node, 3, &quick())
        .await
        .unwrap();
    // From 1/1/2 to 3 nodes: the one to go is in az-3.
    assert_eq!(r.removed, ["crowd-node-5"]);
    let drained = hooks.0.lock().unwrap().clone();
    assert_eq!(drained.len(), 1);
    assert_eq!(drained[0], ("crowd-node-5".to_string(), false));
    let all = m.list_instances(&TagFilter::all()).await.unwrap();
    let s = spread(&nodes_of(&all, Role::Node));
    assert_eq!(s.values().copied().collect::<Vec<_>>(), [1, 1, 1]);
}

#[test]
fn victims_come_from_the_most_crowded_az_highest_ordinal_first() {
    let node = |name: &str, az: &str, ord: usize| Instance {
        id: name.into(),
        name: name.into(),
        availability_zone: az.into(),
        flavor: "f".into(),
        image: "i".into(),
        state: provider_core::InstanceState::Running,
        private_ip: None,
        public_ip: None,
        security_groups: vec![],
        tags: [(cluster::plan::TAG_ORDINAL.to_string(), ord.to_string())].into(),
    };
    let ns = [
        node("n0", "a", 0),
        node("n1", "b", 1),
        node("n2", "c", 2),
        node("n3", "a", 3),
        node("n4", "b", 4),
        node("n5", "a", 5),
    ];
    let refs: Vec<&Instance> = ns.iter().collect();
    let v: Vec<&str> = pick_victims(&refs, 4)
        .iter()
        .map(|i| i.name.as_str())
        .collect();
    // a has 3: n5; then a and b tie at 2: n4 (higher); then a alone at 2: n3; then a
    // three-way tie at 1: n2.
    assert_eq!(v, ["n5", "n4", "n3", "n2"]);
}

/// Records each node's steps and every action the executor ran.
#[derive(Default)]
struct Steps {
    steps: std::sync::Mutex<Vec<(String, String, cluster::Step)>>,
    kinds: std::sync::Mutex<Vec<&'static str>>,
}

impl cluster::Observer for Steps {
    fn started(&self, action: &cluster::plan::PlannedAction) {
        self.kinds.lock().unwrap().push(action.action.kind());
    }
    fn replacing(&self, old: &str, new: &str, step: &cluster::Step) {
        self.steps
            .lock()
            .unwrap()
            .push((old.into(), new.into(), step.clone()));
    }
}

#[tokio::test]
async fn replacement_runs_as_plan_actions_with_each_node_s_steps_in_order_and_a_bounded_window() {
    let m = memory();
    let c = cluster(spec("eng", 1, 6, 1), m.clone());
    c.apply().await.unwrap();
    let seen = Arc::new(Steps::default());
    let opts = ReplaceOptions {
        max_surge: 2,
        ..quick()
    };
    let r = c
        .clone()
        .with_observer(seen.clone())
        .replace(&Selector::All, &opts)
        .await
        .unwrap();
    assert_eq!(r.replaced.len(), 8, "{r}");
    // The executor ran the moves: the same actions as apply plus the waits and hooks.
    let kinds = seen.kinds.lock().unwrap().clone();
    for k in [
        "create_instances",
        "await_ready",
        "on_ready",
        "add_load_balancer_member",
        "await_member_healthy",
        "remove_load_balancer_member",
        "drain",
        "detach_volume",
        "attach_volume",
        "associate_floating_ip",
        "check_quorum",
        "delete_instance",
        "tag_instance",
    ] {
        assert!(kinds.contains(&k), "no {k} action ran: {kinds:?}");
    }
    let steps = seen.steps.lock().unwrap().clone();
    use cluster::Step as S;
    // Every node went through its steps in order (Moved only where something moved).
    for old in r.replaced.iter().map(|x| x.old.clone()) {
        let mine: Vec<&S> = steps
            .iter()
            .filter(|(o, _, _)| *o == old)
            .map(|(_, _, s)| s)
            .collect();
        let order = |s: &S| match s {
            S::Creating => 0,
            S::Ready => 1,
            S::InLoadBalancer => 2,
            S::Draining => 3,
            S::Moved => 4,
            S::Done => 5,
            S::Failed(_) => 9,
        };
        let ranks: Vec<u8> = mine.iter().map(|s| order(s)).collect();
        assert!(ranks.windows(2).all(|w| w[0] < w[1]), "{old}: {mine:?}");
        assert_eq!(ranks.first(), Some(&0), "{old}: {mine:?}");
        assert_eq!(ranks.last(), Some(&5), "{old}: {mine:?}");
    }
    // Masters and storage nodes one at a time, nodes at most two at a time: count the
    // replacements between their first and last step.
    let mut open = BTreeSet::new();
    let mut widest = 0;
    let mut roles_open = BTreeSet::new();
    for (old, _, s) in &steps {
        let role = if old.contains("-node-") {
            "node"
        } else {
            "other"
        };
        match s {
            S::Creating => {
                open.insert(old.clone());
                roles_open.insert((role, old.clone()));
            }
            S::Done => {
                open.remove(old);
                roles_open.remove(&(role, old.clone()));
            }
            _ => {}
        }
        widest = widest.max(open.len());
        let others = roles_open.iter().filter(|(r, _)| *r == "other").count();
        assert!(
            others <= 1,
            "two masters or storage nodes at once: {roles_open:?}"
        );
        assert!(
            others == 0 || roles_open.len() == 1,
            "nodes started before masters and storage were done: {roles_open:?}"
        );
    }
    assert_eq!(widest, 2, "max_surge 2 should replace two nodes at once");
}

/// Refuses to drain one node.
struct NoDrain;

#[async_trait]
impl Hooks for NoDrain {
    async fn drain(&self, node: &Instance) -> Result<(), cluster::HookError> {
        if node.name == "nod-storage-0" {
            Err(cluster::HookError(
                "the platform still has data there".into(),
            ))
        } else {
            Ok(())
        }
    }
}

#[tokio::test]
async fn a_refused_drain_puts_the_old_node_back_into_its_pools() {
    let m = memory();
    let c = cluster(spec("nod", 1, 3, 1), m.clone());
    c.apply().await.unwrap();
    let before = snapshot(m.as_ref()).await;
    let err = c
        .clone()
        .with_hooks(Arc::new(NoDrain))
        .replace(&Selector::Role(Role::Storage), &quick())
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("drain hook: the platform still has data there"),
        "{msg}"
    );
    assert!(msg.contains("nod-storage-0 keeps serving"), "{msg}");
    // The old node left its pools before the drain: it is back in them, the successor is
    // gone, the volume never moved.
    let mut after = snapshot(m.as_ref()).await;
    after
        .instances
        .get_mut("nod-storage-0")
        .unwrap()
        .1
        .remove(cluster::slot::TAG_REPLACE);
    assert_eq!(after.instances, before.instances);
    assert_eq!(after.volumes, before.volumes);
    assert_eq!(after.lbs, before.lbs);
}

/// Counts on_ready calls.
#[derive(Default)]
struct Ready(std::sync::Mutex<Vec<String>>);

#[async_trait]
impl Hooks for Ready {
    async fn on_ready(&self, node: &Instance) -> Result<(), cluster::HookError> {
        self.0.lock().unwrap().push(node.name.clone());
        Ok(())
    }
}

#[tokio::test]
async fn apply_with_hooks_plans_on_ready_for_each_node_it_creates() {
    let m = memory();
    let hooks = Arc::new(Ready::default());
    let c = cluster(spec("hk", 1, 3, 0), m.clone()).with_hooks(hooks.clone());
    let plan = c.plan().await.unwrap();
    let told: Vec<&str> = plan
        .actions
        .iter()
        .filter_map(|a| match &a.action {
            cluster::plan::Action::OnReady { instance } => Some(instance.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(told.len(), 4, "{plan}");
    c.run(plan).await.unwrap();
    let mut called = hooks.0.lock().unwrap().clone();
    called.sort();
    assert_eq!(
        called,
        ["hk-master-0", "hk-node-0", "hk-node-1", "hk-node-2"]
    );
    // Nothing to create, nothing to tell.
    assert!(c.plan().await.unwrap().is_empty());
}

fn delete_first(n: usize) -> ReplaceOptions {
    ReplaceOptions {
        max_surge: 0,
        max_unavailable: n,
        ..quick()
    }
}

/// The base group's vacancy records.
async fn vacancies(m: &MemoryProvider, cluster_name: &str) -> Vec<String> {
    let base = cluster::lease::base_group_name(cluster_name);
    m.list_security_groups(&TagFilter::all())
        .await
        .unwrap()
        .into_iter()
        .filter(|g| g.name == base)
        .flat_map(|g| g.tags.into_keys())
        .filter(|k| k.starts_with(cluster::slot::TAG_VACANT))
        .collect()
}

#[tokio::test]
async fn delete_first_replaces_every_node_in_a_full_project_with_at_most_n_down_and_quorum_kept() {
    let m = memory();
    let c = cluster(spec("df", 3, 6, 2), m.clone());
    c.apply().await.unwrap();
    let before = m.list_instances(&TagFilter::all()).await.unwrap();
    assert_eq!(before.len(), 11);
    // The project's quota has no room for a twelfth instance.
    let watch = Arc::new(Watch::new(
        m.clone(),
        Some(11),
        &[("master", 3), ("node", 6), ("storage", 2)],
    ));
    let c = cluster(spec("df", 3, 6, 2), watched(&m, watch.clone()));
    let r = c.replace(&Selector::All, &delete_first(2)).await.unwrap();
    assert_eq!(r.replaced.len(), 11, "{r}");
    let seen = watch.samples();
    assert_eq!(seen.refused, 0, "{seen:?}");
    assert!(seen.most_instances <= 11, "{seen:?}");
    // At most N nodes down (and N reached: two at once), masters and storage nodes one
    // at a time, and the masters never below quorum (2 of 3).
    assert_eq!(seen.most_down.get("node"), Some(&2), "{seen:?}");
    assert_eq!(seen.most_down.get("master"), Some(&1), "{seen:?}");
    assert_eq!(seen.most_down.get("storage"), Some(&1), "{seen:?}");
    assert!(seen.fewest_masters >= Some(2), "{seen:?}");

    let after = m.list_instances(&TagFilter::all()).await.unwrap();
    assert_eq!(after.len(), 11);
    for b in &before {
        let new = after
            .iter()
            .find(|a| a.name == format!("{}-r1", b.name))
            .unwrap_or_else(|| panic!("{} was not replaced", b.name));
        assert_eq!(new.availability_zone, b.availability_zone);
        assert_eq!(new.tags.get(TAG_ROLE), b.tags.get(TAG_ROLE));
        assert!(!new.tags.contains_key(cluster::slot::TAG_REPLACES));
    }
    // The data volumes moved (same volumes, now on the successors), the floating IP
    // followed its master, every pool holds the successors.
    for v in m.list_volumes(&TagFilter::all()).await.unwrap() {
        let on = v.attachment.unwrap().instance_id;
        let inst = after.iter().find(|i| i.id == on).unwrap();
        assert_eq!(format!("{}-data", cluster::slot::slot_of(inst)), v.name);
    }
    for f in m.list_floating_ips(&TagFilter::all()).await.unwrap() {
        let on = f.instance_id.unwrap();
        assert!(after.iter().any(|i| i.id == on && i.name.ends_with("-r1")));
    }
    let ids: BTreeSet<&str> = after.iter().map(|i| i.id.as_str()).collect();
    for lb in m.list_load_balancers(&TagFilter::all()).await.unwrap() {
        for l in &lb.listeners {
            assert!(!l.pool.members.is_empty());
            assert!(l
                .pool
                .members
                .iter()
                .all(|mm| ids.contains(mm.instance_id.as_str())));
        }
    }
    assert!(vacancies(&m, "df").await.is_empty());
    assert!(c.plan().await.unwrap().is_empty());
    // A second round (delete-first again) goes to generation 2.
    let r = c
        .replace(
            &Selector::Nodes(vec!["df-storage-1".into()]),
            &delete_first(1),
        )
        .await
        .unwrap();
    assert_eq!(r.replaced[0].new, "df-storage-1-r2");
}

/// Records each action as it ends, in order.
#[derive(Default)]
struct Order(std::sync::Mutex<Vec<String>>);

impl cluster::Observer for Order {
    fn finished(&self, action: &cluster::plan::PlannedAction, error: Option<&Error>) {
        assert!(error.is_none(), "{} failed: {error:?}", action.action);
        self.0.lock().unwrap().push(action.action.to_string());
    }
}

#[tokio::test]
async fn delete_first_goes_out_of_the_pool_drains_hands_over_and_serves_again_before_the_next() {
    let m = memory();
    let c = cluster(spec("dfo", 3, 3, 1), m.clone());
    c.apply().await.unwrap();
    let id_of =
        |all: &[Instance], name: &str| all.iter().find(|i| i.name == name).unwrap().id.clone();
    let before = m.list_instances(&TagFilter::all()).await.unwrap();
    let seen = Arc::new(Order::default());
    c.clone()
        .with_observer(seen.clone())
        .with_hooks(Arc::new(Ready::default()))
        .replace(&Selector::All, &delete_first(1))
        .await
        .unwrap();
    let done = seen.0.lock().unwrap().clone();
    let at = |what: &str| {
        done.iter()
            .position(|d| d.starts_with(what))
            .unwrap_or_else(|| panic!("no {what:?} in {done:#?}"))
    };
    let in_order = |steps: &[String]| {
        let ix: Vec<usize> = steps.iter().map(|s| at(s)).collect();
        assert!(
            ix.windows(2).all(|w| w[0] < w[1]),
            "{steps:#?}: {ix:?} in {done:#?}"
        );
    };
    // A storage node: drain, volume off, delete, then the successor with the volume.
    in_order(&[
        "drain dfo-storage-0".into(),
        "detach volume dfo-storage-0-data".into(),
        "delete instance dfo-storage-0".into(),
        "create instances dfo-storage-0-r1 (".into(),
        "attach volume dfo-storage-0-data to dfo-storage-0-r1".into(),
        "wait until dfo-storage-0-r1 is ready".into(),
        "tell the installer dfo-storage-0-r1 is ready".into(),
        "tag dfo-storage-0-r1: plinth.ready=done".into(),
    ]);
    // A node: out of the pool, drained, deleted; the successor in the pool and healthy
    // before the next node leaves it (max-unavailable 1).
    let n0 = id_of(&before, "dfo-node-0");
    let n1 = id_of(&before, "dfo-node-1");
    in_order(&[
        format!("remove {n0} from load balancer dfo-ingress"),
        "drain dfo-node-0".into(),
        "delete instance dfo-node-0".into(),
        "create instances dfo-node-0-r1 (".into(),
        "wait until dfo-node-0-r1 is ready".into(),
        "add dfo-node-0-r1 to load balancer dfo-ingress".into(),
        "wait until load balancer dfo-ingress port 8080 sees dfo-node-0-r1 healthy".into(),
        format!("remove {n1} from load balancer dfo-ingress"),
    ]);
    // A master: the quorum check comes before it leaves its pool; its floating IP
    // follows it; the next master goes after.
    let m0 = id_of(&before, "dfo-master-0");
    in_order(&[
        "check that 2 running master(s) besides dfo-master-0 keep quorum".into(),
        format!("remove {m0} from load balancer dfo-api"),
        "delete instance dfo-master-0".into(),
        "create instances dfo-master-0-r1 (".into(),
        "associate floating IP dfo-master-0-fip with dfo-master-0-r1".into(),
        "add dfo-master-0-r1 to load balancer dfo-api".into(),
        "check that 2 running master(s) besides dfo-master-1 keep quorum".into(),
    ]);
}

#[tokio::test]
async fn a_surge_replace_in_a_full_project_stops_cleanly_and_max_surge_0_then_finishes() {
    let m = memory();
    let c = cluster(spec("full", 3, 3, 1), m.clone());
    c.apply().await.unwrap();
    let before = snapshot(m.as_ref()).await;
    let watch = Arc::new(Watch::new(
        m.clone(),
        Some(7),
        &[("master", 3), ("node", 3), ("storage", 1)],
    ));
    let c = cluster(spec("full", 3, 3, 1), watched(&m, watch.clone()));
    let err = c.replace(&Selector::All, &quick()).await.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Rolling { .. }), "{msg}");
    assert!(msg.contains("quota exceeded"), "{msg}");
    assert!(msg.contains("full-master-0 keeps serving"), "{msg}");
    assert!(msg.contains("--max-surge 0"), "{msg}");
    assert_eq!(watch.samples().refused, 1);
    // Nothing moved: the old nodes serve as before (marked for the rerun).
    let mut after = snapshot(m.as_ref()).await;
    for (_, tags) in after.instances.values_mut() {
        tags.remove(cluster::slot::TAG_REPLACE);
    }
    assert_eq!(after.instances, before.instances);
    assert_eq!(after.volumes, before.volumes);
    assert_eq!(after.fips, before.fips);
    assert_eq!(after.lbs, before.lbs);
    // The same command delete-first resumes it and replaces every node, one at a time.
    let r = c.replace(&Selector::All, &delete_first(1)).await.unwrap();
    assert!(r.resumed, "{r}");
    assert_eq!(r.replaced.len(), 7, "{r}");
    let seen = watch.samples();
    assert_eq!(seen.refused, 1, "{seen:?}");
    assert!(seen.most_instances <= 7, "{seen:?}");
    assert!(seen.most_down.values().all(|d| *d <= 1), "{seen:?}");
    assert!(seen.fewest_masters >= Some(2), "{seen:?}");
    assert!(c.plan().await.unwrap().is_empty());
}

#[tokio::test]
async fn max_surge_0_needs_max_unavailable_and_a_single_master_is_not_taken_below_quorum() {
    let m = memory();
    let c = cluster(spec("q", 1, 3, 0), m.clone());
    c.apply().await.unwrap();
    let before = snapshot(m.as_ref()).await;
    let err = c
        .replace(&Selector::All, &delete_first(0))
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("--max-surge 0") && msg.contains("--max-unavailable"),
        "{msg}"
    );
    // One master: deleting it first would leave none; refused before anything changes.
    let err = c
        .replace(&Selector::All, &delete_first(1))
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Plan { .. }), "{msg}");
    assert!(
        msg.contains("below the quorum of 1") && msg.contains("--max-surge 1"),
        "{msg}"
    );
    assert_eq!(snapshot(m.as_ref()).await, before);
    // The other roles can go delete-first.
    let r = c
        .replace(&Selector::Role(Role::Node), &delete_first(1))
        .await
        .unwrap();
    assert_eq!(r.replaced.len(), 3, "{r}");
}

#[tokio::test]
async fn a_refused_drain_puts_a_delete_first_node_back_into_its_pools() {
    let m = memory();
    let c = cluster(spec("nod", 1, 3, 1), m.clone());
    c.apply().await.unwrap();
    let before = snapshot(m.as_ref()).await;
    /// Refuses to drain one node.
    struct NoDrainNode;
    #[async_trait]
    impl Hooks for NoDrainNode {
        async fn drain(&self, node: &Instance) -> Result<(), cluster::HookError> {
            if node.name == "nod-node-1" {
                Err(cluster::HookError("pods would be lost".into()))
            } else {
                Ok(())
            }
        }
    }
    let err = c
        .clone()
        .with_hooks(Arc::new(NoDrainNode))
        .replace(
            &Selector::Nodes(vec!["nod-node-1".into()]),
            &delete_first(1),
        )
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("drain hook: pods would be lost"), "{msg}");
    assert!(msg.contains("keeps serving"), "{msg}");
    let mut after = snapshot(m.as_ref()).await;
    after
        .instances
        .get_mut("nod-node-1")
        .unwrap()
        .1
        .remove(cluster::slot::TAG_REPLACE);
    assert_eq!(after.instances, before.instances);
    assert_eq!(after.lbs, before.lbs);
    assert!(vacancies(&m, "nod").await.is_empty());
}

/// Counts on_ready calls per node.
#[derive(Default)]
struct Told(std::sync::Mutex<BTreeMap<String, usize>>);

#[async_trait]
impl Hooks for Told {
    async fn on_ready(&self, node: &Instance) -> Result<(), cluster::HookError> {
        *self.0.lock().unwrap().entry(node.name.clone()).or_default() += 1;
        Ok(())
    }
}

#[tokio::test]
async fn on_ready_is_called_once_per_node_by_apply_scale_and_replace_and_never_again() {
    let m = memory();
    let hooks = Arc::new(Told::default());
    let c = cluster(spec("once", 1, 3, 1), m.clone()).with_hooks(hooks.clone());
    c.apply().await.unwrap();
    // Reruns find nothing owed (apply after the scale would undo it, so before).
    c.apply().await.unwrap();
    c.scale(Role::Node, 5, &quick()).await.unwrap();
    c.scale(Role::Node, 5, &quick()).await.unwrap();
    c.replace(&Selector::Role(Role::Storage), &quick())
        .await
        .unwrap();
    c.replace(
        &Selector::Nodes(vec!["once-node-0".into()]),
        &delete_first(1),
    )
    .await
    .unwrap();
    let told = hooks.0.lock().unwrap().clone();
    let want: BTreeMap<String, usize> = [
        "once-master-0",
        "once-node-0",
        "once-node-1",
        "once-node-2",
        "once-node-3",
        "once-node-4",
        "once-storage-0",
        "once-storage-0-r1",
        "once-node-0-r1",
    ]
    .into_iter()
    .map(|n| (n.to_string(), 1))
    .collect();
    assert_eq!(told, want);
    for i in m.list_instances(&TagFilter::all()).await.unwrap() {
        assert_eq!(
            i.tags.get(cluster::hooks::TAG_READY).map(String::as_str),
            Some(cluster::hooks::READY_DONE),
            "{}",
            i.name
        );
    }
}

#[tokio::test]
async fn a_vacant_slot_filled_again_by_apply_is_not_filled_twice() {
    use provider_core::Provider as _;
    let m = memory();
    let c = cluster(spec("fill", 1, 3, 0), m.clone());
    c.apply().await.unwrap();
    // What a crash between the delete and the create leaves: the slot recorded vacant,
    // its node gone. Then the operator runs apply, which fills the slot itself.
    let all = m.list_instances(&TagFilter::all()).await.unwrap();
    let old = all.iter().find(|i| i.name == "fill-node-1").unwrap();
    let base = m
        .list_security_groups(&TagFilter::all())
        .await
        .unwrap()
        .into_iter()
        .find(|g| g.name == cluster::lease::base_group_name("fill"))
        .unwrap();
    let v = cluster::slot::Vacancy::of(old);
    m.update_tags(
        provider_core::ResourceKind::SecurityGroup,
        &base.id,
        &[(v.key(), v.value())].into(),
        &[],
    )
    .await
    .unwrap();
    m.delete_instance(&old.id).await.unwrap();
    c.apply().await.unwrap();
    let r = c
        .replace(
            &Selector::Nodes(vec!["fill-node-2".into()]),
            &delete_first(1),
        )
        .await
        .unwrap();
    assert_eq!(r.replaced.len(), 1, "{r}");
    let names: BTreeSet<String> = m
        .list_instances(&TagFilter::all())
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.name)
        .collect();
    assert!(
        names.contains("fill-node-1") && !names.contains("fill-node-1-r1"),
        "{names:?}"
    );
    assert!(vacancies(&m, "fill").await.is_empty());
}
