//! Instances = EC2 instances: `RunInstances` into the AZ's subnet with the spec's type,
//! AMI, key pair, security groups and user data, tagged at launch.
//!
//! Batching: [`Provider::create_instances`](provider_core::Provider::create_instances)
//! groups the specs that launch alike (AZ, subnet, type, AMI, groups, key, user data)
//! and launches each group with one `RunInstances` of that count. A group of one is
//! launched with all its tags. The instances of a larger group are tagged at launch with
//! the tags the group shares plus a batch id, then each gets its own `Name`, spec hash
//! and remaining tags with one `CreateTags` call. A crash between the two leaves
//! instances that carry the batch id but no name: the next create of the same specs
//! adopts them instead of launching more (one `DescribeInstances` looks up the names and
//! the batch ids). All are then waited for with one `DescribeInstances` per poll.
//! `get_instances` asks for many ids in one call.
//!
//! Idempotency: `ClientToken` (derived from the batch) on `RunInstances`, plus a look-up
//! of the `Name` tags before launching, which carries the guarantee where the token is
//! ignored (moto).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use aws_sdk_ec2::types::{
    Instance as Ec2Instance, InstanceNetworkInterfaceSpecification, InstanceType, Placement,
    ResourceType, Tag,
};
use provider_core::wait::Poll;
use provider_core::{
    Error, Instance, InstanceSpec, InstanceState, Operation, Result, TagFilter, Tags,
};
use tokio::time::Instant;

use crate::error::{sdk, AwsError};
use crate::tags::{self, filter, BATCH_TAG, NAME_TAG, ROOT_TAG, SPEC_HASH_TAG};
use crate::AwsProvider;

/// States of instances that exist for Plinth (not terminated).
const LIVE_STATES: [&str; 5] = ["pending", "running", "stopping", "stopped", "shutting-down"];

/// Most ids per `DescribeInstances` filter.
const IDS_PER_CALL: usize = 200;

/// The record of an instance; `None` once it is terminated.
pub(crate) fn record(i: &Ec2Instance) -> Option<Instance> {
    let state = match i.state().and_then(|s| s.name()).map(|n| n.as_str()) {
        Some("terminated") => return None,
        Some("running") => InstanceState::Running,
        Some("stopping") | Some("stopped") => InstanceState::Stopped,
        Some("shutting-down") => InstanceState::Deleting,
        _ => InstanceState::Pending,
    };
    let pairs = || tags::ec2_pairs(i.tags());
    Some(Instance {
        id: i.instance_id()?.to_string(),
        name: tags::tag_value(pairs(), NAME_TAG).unwrap_or_default(),
        availability_zone: i
            .placement()
            .and_then(|p| p.availability_zone())
            .unwrap_or_default()
            .to_string(),
        flavor: i
            .instance_type()
            .map(|t| t.as_str().to_string())
            .unwrap_or_default(),
        image: i.image_id().unwrap_or_default().to_string(),
        state,
        private_ip: i
            .private_ip_address()
            .and_then(|a| a.parse::<IpAddr>().ok()),
        public_ip: i.public_ip_address().and_then(|a| a.parse::<IpAddr>().ok()),
        security_groups: groups_of(i),
        tags: tags::user_tags(pairs()),
    })
}

/// The instance's primary network interface at launch: in `subnet`, with `groups`, and
/// no public address whatever the subnet's `MapPublicIpOnLaunch` says (default subnets
/// set it): a node is reached from outside only through a floating IP it is given.
fn primary_interface(subnet: &str, groups: &[String]) -> InstanceNetworkInterfaceSpecification {
    InstanceNetworkInterfaceSpecification::builder()
        .device_index(0)
        .subnet_id(subnet)
        .set_groups((!groups.is_empty()).then(|| groups.to_vec()))
        .associate_public_ip_address(false)
        .delete_on_termination(true)
        .build()
}

/// The instance's security groups: EC2 lists the primary interface's groups on the
/// instance; moto lists only groups given outside an interface, so both are read.
fn groups_of(i: &Ec2Instance) -> Vec<String> {
    let on_instance = i.security_groups().iter().filter_map(|g| g.group_id());
    let on_primary = i
        .network_interfaces()
        .iter()
        .filter(|n| n.attachment().and_then(|a| a.device_index()) == Some(0))
        .flat_map(|n| n.groups())
        .filter_map(|g| g.group_id());
    let mut groups: Vec<String> = Vec::new();
    for g in on_instance.chain(on_primary) {
        if !groups.iter().any(|x| x == g) {
            groups.push(g.to_string());
        }
    }
    groups
}

/// An instance's own tags: its name, spec hash and the tags of its spec that `common`
/// (tags set at launch for its whole group) does not have.
fn own_tags(p: &Planned, common: &Tags) -> Tags {
    let mut own: Tags = p
        .spec
        .tags
        .iter()
        .filter(|(k, v)| common.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    own.insert(NAME_TAG.into(), p.spec.name.clone());
    own.insert(SPEC_HASH_TAG.into(), p.hash.clone());
    own
}

/// One spec, checked and resolved.
#[derive(Debug, Clone)]
struct Planned {
    /// Index in the caller's slice.
    index: usize,
    spec: InstanceSpec,
    hash: String,
    subnet: String,
    image: String,
}

/// What makes specs launchable by one `RunInstances`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct LaunchKey {
    zone: String,
    subnet: String,
    flavor: String,
    image: String,
    groups: Vec<String>,
    keypair: Option<String>,
    user_data: Option<String>,
}

impl Planned {
    fn key(&self) -> LaunchKey {
        let mut groups = self.spec.security_groups.clone();
        groups.sort();
        groups.dedup();
        LaunchKey {
            zone: self.spec.availability_zone.clone(),
            subnet: self.subnet.clone(),
            flavor: self.spec.flavor.clone(),
            image: self.image.clone(),
            groups,
            keypair: self.spec.keypair.clone(),
            user_data: self.spec.user_data.clone(),
        }
    }
}

/// The tags every spec of a group shares.
fn common_tags(group: &[Planned]) -> Tags {
    let mut common = group
        .first()
        .map(|p| p.spec.tags.clone())
        .unwrap_or_default();
    for p in group.iter().skip(1) {
        common.retain(|k, v| p.spec.tags.get(k) == Some(v));
    }
    common
}

impl AwsProvider {
    /// Describes one instance; `NotFound` when missing or terminated.
    pub(crate) async fn ec2_instance(&self, op: Operation, id: &str) -> Result<Ec2Instance> {
        let resource = format!("instance {id}");
        let out = self
            .ec2
            .describe_instances()
            .instance_ids(id)
            .send()
            .await
            .map_err(sdk(op, &resource))?;
        out.reservations()
            .iter()
            .flat_map(|r| r.instances())
            .find(|i| i.instance_id() == Some(id) && record(i).is_some())
            .cloned()
            .ok_or_else(|| Error::not_found(op, resource))
    }

    /// Describes many instances by id with one call per [`IDS_PER_CALL`] ids (a filter,
    /// so unknown ids are left out instead of failing the call).
    pub(crate) async fn instances_by_id(
        &self,
        op: Operation,
        ids: &[String],
    ) -> Result<BTreeMap<String, Ec2Instance>> {
        let mut out = BTreeMap::new();
        for chunk in ids.chunks(IDS_PER_CALL) {
            let mut token: Option<String> = None;
            loop {
                let page = self
                    .ec2
                    .describe_instances()
                    .filters(filter("instance-id", chunk.iter().cloned()))
                    .set_next_token(token.clone())
                    .send()
                    .await
                    .map_err(sdk(op, "instances"))?;
                for i in page.reservations().iter().flat_map(|r| r.instances()) {
                    if let Some(id) = i.instance_id() {
                        out.insert(id.to_string(), i.clone());
                    }
                }
                token = page
                    .next_token()
                    .filter(|t| !t.is_empty())
                    .map(str::to_string);
                if token.is_none() {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Live instances matching one of `values` of filter `name` (`tag:<key>`, or
    /// `tag-value` for a value of any tag).
    async fn instances_tagged(
        &self,
        op: Operation,
        name: &str,
        values: Vec<String>,
    ) -> Result<Vec<Ec2Instance>> {
        let mut out = Vec::new();
        for chunk in values.chunks(IDS_PER_CALL) {
            let mut token: Option<String> = None;
            loop {
                let page = self
                    .ec2
                    .describe_instances()
                    .filters(filter(name, chunk.iter().cloned()))
                    .filters(filter("instance-state-name", LIVE_STATES))
                    .set_next_token(token.clone())
                    .send()
                    .await
                    .map_err(sdk(op, "instances"))?;
                out.extend(
                    page.reservations()
                        .iter()
                        .flat_map(|r| r.instances())
                        .cloned(),
                );
                token = page
                    .next_token()
                    .filter(|t| !t.is_empty())
                    .map(str::to_string);
                if token.is_none() {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Checks and resolves every spec (zone, subnet in that zone, AMI, groups).
    async fn plan(&self, op: Operation, specs: &[InstanceSpec]) -> Result<Vec<Planned>> {
        let field = |i: usize| {
            if specs.len() == 1 {
                "spec".to_string()
            } else {
                format!("specs[{i}]")
            }
        };
        let mut names = BTreeSet::new();
        for (i, spec) in specs.iter().enumerate() {
            spec.validate_for(op, &field(i))?;
            tags::check_user_tags(op, &format!("{}.tags", field(i)), &spec.tags)?;
            if !names.insert(&spec.name) {
                return Err(Error::invalid(
                    op,
                    format!("{}.name", field(i)),
                    format!(
                        "{:?} appears twice in the batch: give each instance its own name",
                        spec.name
                    ),
                ));
            }
        }
        let wanted_groups: BTreeSet<String> = specs
            .iter()
            .flat_map(|s| s.security_groups.iter().cloned())
            .collect();
        if !wanted_groups.is_empty() {
            let out = self
                .ec2
                .describe_security_groups()
                .filters(filter("group-id", wanted_groups.iter().cloned()))
                .send()
                .await
                .map_err(sdk(op, "security groups"))?;
            let found: BTreeSet<&str> = out
                .security_groups()
                .iter()
                .filter_map(|g| g.group_id())
                .collect();
            for (i, s) in specs.iter().enumerate() {
                for (j, g) in s.security_groups.iter().enumerate() {
                    if !found.contains(g.as_str()) {
                        return Err(Error::invalid(
                            op,
                            format!("{}.security_groups[{j}]", field(i)),
                            format!("no security group with id {g:?}: create it first"),
                        ));
                    }
                }
            }
        }
        let mut out = Vec::with_capacity(specs.len());
        for (i, spec) in specs.iter().enumerate() {
            let f = field(i);
            self.check_zone(
                op,
                &format!("{f}.availability_zone"),
                &spec.availability_zone,
            )
            .await?;
            let subnet = self
                .subnet_for(
                    op,
                    &format!("{f}.subnet"),
                    &spec.availability_zone,
                    spec.subnet.as_deref(),
                )
                .await?;
            let image = self
                .resolve_image(op, &format!("{f}.image"), &spec.image)
                .await?;
            out.push(Planned {
                index: i,
                spec: spec.clone(),
                hash: tags::spec_hash(spec),
                subnet,
                image,
            });
        }
        Ok(out)
    }

    /// Gives a launched instance its own tags (name, spec hash, the tags its group does
    /// not share).
    async fn tag_instance(
        &self,
        op: Operation,
        id: &str,
        p: &Planned,
        common: &Tags,
    ) -> Result<()> {
        let own = own_tags(p, common);
        let resource = format!("instance {id}");
        self.eventually(op, &resource, || async {
            self.ec2
                .create_tags()
                .resources(id)
                .set_tags(Some(tags::ec2_tags(&own)))
                .send()
                .await
                .map(|_| ())
                .map_err(sdk(op, &resource))
        })
        .await
    }

    pub(crate) async fn create_many(&self, specs: &[InstanceSpec]) -> Result<Vec<Instance>> {
        let op = if specs.len() == 1 {
            Operation::CreateInstance
        } else {
            Operation::CreateInstances
        };
        if specs.is_empty() {
            return Ok(Vec::new());
        }
        let planned = self.plan(op, specs).await?;
        let mut ids: Vec<Option<String>> = vec![None; specs.len()];

        let batch_of = |group: &[Planned]| {
            let parts: Vec<&str> = group
                .iter()
                .flat_map(|p| [p.spec.name.as_str(), p.hash.as_str()])
                .collect();
            tags::client_token(&parts)
        };
        let group_by_key = |planned: &mut dyn Iterator<Item = &Planned>| {
            let mut groups: BTreeMap<LaunchKey, Vec<Planned>> = BTreeMap::new();
            for p in planned {
                groups.entry(p.key()).or_default().push(p.clone());
            }
            groups
        };

        // Look up by name first: moto ignores ClientToken, so this is the guarantee. The
        // same request finds instances of an interrupted batch (tagged at launch with
        // the batch id, never named): one `tag-value` filter for the names and the batch
        // ids the launch groups would have if none exists yet.
        let names: Vec<String> = planned.iter().map(|p| p.spec.name.clone()).collect();
        let mut asked: BTreeSet<String> = group_by_key(&mut planned.iter())
            .values()
            .map(|g| batch_of(g))
            .collect();
        let values: Vec<String> = names.iter().cloned().chain(asked.clone()).collect();
        let mut existing = self.instances_tagged(op, "tag-value", values).await?;
        for p in &planned {
            let found = existing.iter().find(|i| {
                tags::tag_value(tags::ec2_pairs(i.tags()), NAME_TAG).as_deref()
                    == Some(p.spec.name.as_str())
            });
            if let Some(i) = found {
                let id = i.instance_id().unwrap_or_default().to_string();
                if tags::tag_value(tags::ec2_pairs(i.tags()), SPEC_HASH_TAG).as_deref()
                    != Some(p.hash.as_str())
                {
                    return Err(Error::conflict(
                        op,
                        format!("instance {} ({id})", p.spec.name),
                        "an instance of this name exists with a different spec: delete it or choose another name",
                    ));
                }
                ids[p.index] = Some(id);
            }
        }

        // Group the rest by launch parameters.
        let groups = group_by_key(&mut planned.iter().filter(|p| ids[p.index].is_none()));
        // With some found by name, the rest form other groups: ask for their batches too.
        let more: Vec<String> = groups
            .values()
            .map(|g| batch_of(g))
            .filter(|b| asked.insert(b.clone()))
            .collect();
        if !more.is_empty() {
            existing.extend(
                self.instances_tagged(op, &format!("tag:{BATCH_TAG}"), more)
                    .await?,
            );
        }
        // Instances of an interrupted batch: adopt them.
        let mut orphans: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for i in &existing {
            let pairs: Vec<(&str, &str)> = tags::ec2_pairs(i.tags()).collect();
            if tags::tag_value(pairs.iter().copied(), NAME_TAG).is_none() {
                if let (Some(b), Some(id)) = (
                    tags::tag_value(pairs.iter().copied(), BATCH_TAG),
                    i.instance_id(),
                ) {
                    if asked.contains(&b) {
                        orphans.entry(b).or_default().push(id.to_string());
                    }
                }
            }
        }

        for (key, group) in &groups {
            let batch = batch_of(group);
            let common = common_tags(group);
            let mut launched: Vec<String> = orphans.remove(&batch).unwrap_or_default();
            launched.truncate(group.len());
            let missing = group.len() - launched.len();
            if missing > 0 {
                let mut launch_tags = common.clone();
                launch_tags.insert(BATCH_TAG.into(), batch.clone());
                // A launch of one instance carries all its tags at once.
                if let [p] = group.as_slice() {
                    launch_tags = own_tags(p, &Tags::new());
                    launch_tags.insert(BATCH_TAG.into(), batch.clone());
                }
                let mut root_tags = common.clone();
                root_tags.insert(ROOT_TAG.into(), "true".into());
                let mut req = self
                    .ec2
                    .run_instances()
                    .image_id(&key.image)
                    .instance_type(InstanceType::from(key.flavor.as_str()))
                    .min_count(missing as i32)
                    .max_count(missing as i32)
                    .network_interfaces(primary_interface(&key.subnet, &key.groups))
                    .placement(Placement::builder().availability_zone(&key.zone).build())
                    .client_token(tags::client_token(&[&batch, &missing.to_string()]))
                    .tag_specifications(tags::tag_spec(ResourceType::Instance, &launch_tags))
                    .tag_specifications(tags::tag_spec(ResourceType::Volume, &root_tags));
                if let Some(k) = &key.keypair {
                    req = req.key_name(k);
                }
                if let Some(u) = &key.user_data {
                    req = req.user_data(tags::base64(u.as_bytes()));
                }
                let field = if specs.len() == 1 { "spec" } else { "specs" };
                let out = req.send().await.map_err(|e| {
                    AwsError::from_sdk(e).with_input(
                        op,
                        &format!(
                            "instances {}",
                            group
                                .iter()
                                .map(|p| p.spec.name.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                        &[
                            ("InvalidAMIID", &format!("{field}.image")),
                            ("InvalidKeyPair", &format!("{field}.keypair")),
                            ("InvalidSubnet", &format!("{field}.subnet")),
                            ("InvalidGroup", &format!("{field}.security_groups")),
                            ("InvalidInstanceType", &format!("{field}.flavor")),
                            ("InvalidParameterValue", field),
                        ],
                    )
                })?;
                launched.extend(
                    out.instances()
                        .iter()
                        .filter_map(|i| i.instance_id().map(str::to_string)),
                );
            }
            if launched.len() < group.len() {
                return Err(Error::transient(
                    op,
                    format!(
                        "RunInstances launched {} of {} instances",
                        launched.len(),
                        group.len()
                    ),
                ));
            }
            let named_at_launch = group.len() == 1 && missing == 1;
            for (p, id) in group.iter().zip(&launched) {
                if !named_at_launch {
                    self.tag_instance(op, id, p, &common).await?;
                }
                ids[p.index] = Some(id.clone());
            }
        }

        let ids: Vec<String> = ids.into_iter().map(Option::unwrap_or_default).collect();
        self.wait_running(op, &ids).await
    }

    /// Waits for instances to run, one `DescribeInstances` per poll for all of them.
    async fn wait_running(&self, op: Operation, ids: &[String]) -> Result<Vec<Instance>> {
        let start = Instant::now();
        let window = self.config.consistency_window;
        self.config
            .poller
            .until_all(op, "running", self.config.timeouts.instance, ids, |pending| async move {
                let seen = self.instances_by_id(op, &pending).await?;
                let mut out = Vec::with_capacity(pending.len());
                for id in pending {
                    match seen.get(&id) {
                        None if start.elapsed() < window => {
                            out.push((id, Poll::Pending("not visible yet".into())));
                        }
                        None => return Err(Error::not_found(op, format!("instance {id}"))),
                        Some(i) => match record(i) {
                            None => {
                                let why = i
                                    .state_reason()
                                    .and_then(|r| r.message())
                                    .unwrap_or("no reason given");
                                return Err(Error::api(op, None, "terminated", format!(
                                        "instance {id} terminated while starting ({why}): delete it and retry"
                                    )));
                            }
                            Some(r) if r.state == InstanceState::Running => {
                                out.push((id, Poll::Ready(r)))
                            }
                            Some(r) => out.push((id, Poll::Pending(format!("{:?}", r.state)))),
                        },
                    }
                }
                Ok(out)
            })
            .await
    }

    pub(crate) async fn get_many(&self, op: Operation, ids: &[String]) -> Result<Vec<Instance>> {
        let seen = self.instances_by_id(op, ids).await?;
        ids.iter()
            .map(|id| {
                seen.get(id)
                    .and_then(record)
                    .ok_or_else(|| Error::not_found(op, format!("instance {id}")))
            })
            .collect()
    }

    pub(crate) async fn list_insts(&self, tf: &TagFilter) -> Result<Vec<Instance>> {
        let op = Operation::ListInstances;
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .ec2
                .describe_instances()
                .set_filters(Some(tags::ec2_filters(tf)))
                .filters(filter("instance-state-name", LIVE_STATES))
                .max_results(self.config.page_size.clamp(5, 1000) as i32)
                .set_next_token(token.clone())
                .send()
                .await
                .map_err(sdk(op, "instances"))?;
            out.extend(
                page.reservations()
                    .iter()
                    .flat_map(|r| r.instances())
                    .filter_map(record)
                    .filter(|i| tf.matches(&i.tags)),
            );
            token = page
                .next_token()
                .filter(|t| !t.is_empty())
                .map(str::to_string);
            if token.is_none() {
                return Ok(out);
            }
        }
    }

    pub(crate) async fn delete_inst(&self, id: &str) -> Result<()> {
        self.delete_many(
            Operation::DeleteInstance,
            std::slice::from_ref(&id.to_string()),
        )
        .await
    }

    /// Deletes instances with one `DescribeInstances`, one `DescribeAddresses` and one
    /// `TerminateInstances` for all of them, then waits with one `DescribeInstances` per
    /// poll. Nothing is terminated when one of them has a data volume attached.
    pub(crate) async fn delete_many(&self, op: Operation, ids: &[String]) -> Result<()> {
        let resource = |ids: &[String]| match ids {
            [id] => format!("instance {id}"),
            _ => format!("instances {}", ids.join(", ")),
        };
        let found = self.instances_by_id(op, ids).await?;
        let live: Vec<&Ec2Instance> = ids
            .iter()
            .filter_map(|id| found.get(id))
            .filter(|i| record(i).is_some())
            .collect();
        if live.is_empty() {
            return Ok(());
        }
        // Data volumes must be detached first, or they would go with the instance. The
        // block device mappings list every attached volume; the root volume (and any
        // volume launched with the instance) goes with it by design.
        for inst in &live {
            let root = inst.root_device_name().unwrap_or_default();
            if let Some(v) = inst.block_device_mappings().iter().find_map(|m| {
                let ebs = m.ebs()?;
                let data = ebs.delete_on_termination() != Some(true)
                    && m.device_name() != Some(root)
                    && ebs.status().is_none_or(|s| s.as_str() != "detached");
                data.then(|| ebs.volume_id().unwrap_or_default().to_string())
            }) {
                return Err(Error::conflict(
                    op,
                    format!("instance {}", inst.instance_id().unwrap_or_default()),
                    format!("volume {v} is attached: detach it first so it is not lost"),
                ));
            }
        }
        let live_ids: Vec<String> = live
            .iter()
            .filter_map(|i| i.instance_id().map(str::to_string))
            .collect();
        let all = resource(&live_ids);
        // Release floating IP associations (AWS does on terminate; moto may not).
        let addrs = self
            .ec2
            .describe_addresses()
            .filters(filter("instance-id", live_ids.iter().cloned()))
            .send()
            .await
            .map_err(sdk(op, &all))?;
        for a in addrs.addresses() {
            if let Some(assoc) = a.association_id() {
                if let Err(e) = self
                    .ec2
                    .disassociate_address()
                    .association_id(assoc)
                    .send()
                    .await
                {
                    let e = AwsError::from_sdk(e);
                    if !e.is_not_found() {
                        return Err(e.classify(op, &all));
                    }
                }
            }
        }
        if let Err(e) = self
            .ec2
            .terminate_instances()
            .set_instance_ids(Some(live_ids.clone()))
            .send()
            .await
        {
            let e = AwsError::from_sdk(e);
            // One of them went meanwhile: the rest are terminated one by one.
            if !e.is_not_found() {
                return Err(e.classify(op, &all));
            }
            for id in &live_ids {
                if let Err(e) = self.ec2.terminate_instances().instance_ids(id).send().await {
                    let e = AwsError::from_sdk(e);
                    if !e.is_not_found() {
                        return Err(e.classify(op, &resource(std::slice::from_ref(id))));
                    }
                }
            }
        }
        self.config
            .poller
            .until_all(
                op,
                "terminated",
                self.config.timeouts.delete,
                &live_ids,
                |pending| async move {
                    let seen = self.instances_by_id(op, &pending).await?;
                    Ok(pending
                        .into_iter()
                        .map(|id| {
                            let p = match seen.get(&id) {
                                Some(i) if record(i).is_some() => Poll::Pending(
                                    i.state()
                                        .and_then(|s| s.name())
                                        .map(|n| n.as_str().to_string())
                                        .unwrap_or_default(),
                                ),
                                _ => Poll::Ready(()),
                            };
                            (id, p)
                        })
                        .collect())
                },
            )
            .await
            .map(|_| ())
    }
}

/// Tags of the `Tag` type for a key list (for `DeleteTags`).
pub(crate) fn tag_keys(keys: &[String]) -> Vec<Tag> {
    keys.iter().map(|k| Tag::builder().key(k).build()).collect()
}
