//! The shared waits ([`provider_core::wait::Watch`]): volumes and load balancers waited
//! for by concurrent calls cost one describe per poll interval per kind (volumes by an
//! id filter, 200 a call; load balancers by ARN for one, the region's list for several,
//! as `DescribeLoadBalancers` fails a whole call on one unknown ARN), not one each.
//! Instances launched together are waited for by their batch ([`Poller::until_all`]).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use aws_sdk_ec2::types::{Instance as Ec2Instance, Volume as Ec2Volume};
use aws_sdk_elasticloadbalancingv2::types::LoadBalancer as ElbLb;
use provider_core::wait::{Poller, Watch};
use provider_core::{Error, Operation, Result};

use crate::error::sdk;
use crate::tags::filter;
use crate::AwsProvider;

/// Most ids per `DescribeVolumes` filter.
const IDS_PER_CALL: usize = 200;

/// One watch per kind waited on, and the reads concurrent calls share.
#[derive(Debug)]
pub(crate) struct Watches {
    pub(crate) volumes: Watch<Ec2Volume>,
    pub(crate) lbs: Watch<ElbLb>,
    /// What may use the security groups being deleted.
    pub(crate) group_users: crate::gather::Gather<Arc<GroupUsers>>,
    /// Live volumes by name (creates look their names up first).
    pub(crate) volumes_named: crate::gather::Gather<Arc<Vec<Ec2Volume>>>,
    /// Volumes by id (attaches read their volume first).
    pub(crate) volumes_read: crate::gather::Gather<Arc<BTreeMap<String, Ec2Volume>>>,
    /// Instances by id (attaches read their instance first).
    pub(crate) instances_read: crate::gather::Gather<Arc<BTreeMap<String, Ec2Instance>>>,
}

/// What may use a security group: every group (their rules), the network interfaces
/// in the groups asked for, and every load balancer.
#[derive(Debug)]
pub(crate) struct GroupUsers {
    pub(crate) groups: Vec<aws_sdk_ec2::types::SecurityGroup>,
    pub(crate) interfaces: Vec<aws_sdk_ec2::types::NetworkInterface>,
    pub(crate) lbs: Vec<ElbLb>,
}

impl Watches {
    pub(crate) fn new(poller: &Poller) -> Self {
        Self {
            volumes: Watch::new(poller.clone()),
            lbs: Watch::new(poller.clone()),
            group_users: crate::gather::Gather::default(),
            volumes_named: crate::gather::Gather::default(),
            volumes_read: crate::gather::Gather::default(),
            instances_read: crate::gather::Gather::default(),
        }
    }
}

impl AwsProvider {
    /// The volumes of `ids` that exist (deleted ones left out).
    pub(crate) async fn volumes_by_id(
        &self,
        op: Operation,
        ids: Vec<String>,
    ) -> Result<BTreeMap<String, Ec2Volume>> {
        let mut out = BTreeMap::new();
        for chunk in ids.chunks(IDS_PER_CALL) {
            let page = self
                .ec2
                .describe_volumes()
                .filters(filter("volume-id", chunk.iter().cloned()))
                .send()
                .await
                .map_err(sdk(op, "volumes"))?;
            for v in page.volumes() {
                if let (Some(id), Some(_)) = (v.volume_id(), crate::volumes::record(v)) {
                    out.insert(id.to_string(), v.clone());
                }
            }
        }
        Ok(out)
    }

    /// What may use the groups `ids` (three reads, sent together).
    pub(crate) async fn group_users(
        &self,
        op: Operation,
        ids: Vec<String>,
    ) -> Result<Arc<GroupUsers>> {
        let groups = async {
            let out = self
                .ec2
                .describe_security_groups()
                .send()
                .await
                .map_err(sdk(op, "security groups"))?;
            Ok(out.security_groups().to_vec())
        };
        let interfaces = async {
            let out = self
                .ec2
                .describe_network_interfaces()
                .filters(filter("group-id", ids))
                .send()
                .await
                .map_err(sdk(op, "network interfaces"))?;
            Ok(out.network_interfaces().to_vec())
        };
        let (groups, interfaces, lbs) = futures::try_join!(groups, interfaces, self.all_lbs(op))?;
        Ok(Arc::new(GroupUsers {
            groups,
            interfaces,
            lbs,
        }))
    }

    /// The load balancers of `ids` (ARNs) that exist.
    pub(crate) async fn lbs_by_id(
        &self,
        op: Operation,
        ids: Vec<String>,
    ) -> Result<BTreeMap<String, ElbLb>> {
        if let [id] = ids.as_slice() {
            return match self.elb(op, id).await {
                Ok(lb) => Ok(BTreeMap::from([(id.clone(), lb)])),
                Err(Error::NotFound { .. }) => Ok(BTreeMap::new()),
                Err(e) => Err(e),
            };
        }
        let wanted: BTreeSet<String> = ids.into_iter().collect();
        Ok(self
            .all_lbs(op)
            .await?
            .into_iter()
            .filter_map(|lb| {
                let arn = lb.load_balancer_arn()?.to_string();
                wanted.contains(&arn).then_some((arn, lb))
            })
            .collect())
    }
}
