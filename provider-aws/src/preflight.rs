//! The preflight ([`provider_core::Provider::preflight`]) on EC2: zones, AMIs (id or
//! name), instance types, the VPC and subnets (id or `Name` tag; each subnet in the VPC
//! and in the AZ at its place of the list), the key pair, and the Elastic IP quota
//! (`DescribeAccountAttributes` `vpc-max-elastic-ips` against the addresses allocated).
//! Reads only.
//!
//! The legacy `max-instances` attribute is not checked: AWS no longer enforces it
//! (instance limits are vCPU-based Service Quotas), so it would refuse plans that fit.

use std::collections::BTreeSet;

use provider_core::{
    AvailabilityZone, Error, ErrorKind, Operation, Problem, Reference, References, Result,
};

use crate::client::AwsProvider;
use crate::error::sdk;
use crate::tags::filter;

const OP: Operation = Operation::Preflight;

/// Whether EC2 answered that what was asked for does not exist or is not valid.
fn missing(e: &Error) -> bool {
    matches!(e.kind(), ErrorKind::NotFound | ErrorKind::InvalidInput)
        || matches!(e, Error::Api { code, .. } if code.starts_with("Invalid"))
}

/// The one id among `ids` found for `r`, or the problem.
fn one(r: &Reference, what: &str, mut ids: Vec<String>) -> std::result::Result<String, Problem> {
    ids.sort();
    ids.dedup();
    match ids.len() {
        1 => Ok(ids.remove(0)),
        0 => Err(Problem::new(
            &r.key,
            format!(
                "no {what} with id or name `{}`: use an existing {what}'s id or Name tag",
                r.value
            ),
        )),
        _ => {
            let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
            Err(Problem::ambiguous(r, what, &refs))
        }
    }
}

/// EBS volume types (EC2's `VolumeType`): a fixed set, so no request is needed.
const EBS_VOLUME_TYPES: [&str; 7] = ["gp3", "gp2", "io2", "io1", "st1", "sc1", "standard"];

/// The volume types that are not EBS types.
fn check_volume_types(types: &[Reference]) -> Vec<Problem> {
    types
        .iter()
        .filter(|r| !EBS_VOLUME_TYPES.contains(&r.value.as_str()))
        .map(|r| Problem::not_found(r, "volume type", &EBS_VOLUME_TYPES))
        .collect()
}

impl AwsProvider {
    pub(crate) async fn preflight_checks(&self, refs: &References) -> Result<Vec<Problem>> {
        // The region's zones, not the configured ones: an AZ the region lacks is named
        // as missing, with the ones it has.
        let offered: Vec<AvailabilityZone> = self
            .region_zones()
            .await?
            .into_iter()
            .map(|name| AvailabilityZone {
                name,
                available: true,
            })
            .collect();
        let mut problems = refs.check_zones(&offered);
        for r in &refs.images {
            problems.extend(self.check_image(r).await?);
        }
        problems.extend(self.check_instance_types(&refs.flavors).await?);
        let mut vpc = None;
        if let Some(r) = &refs.network {
            match self.find_vpc(r).await? {
                Ok(id) => vpc = Some(id),
                Err(p) => problems.push(p),
            }
        }
        problems.extend(self.check_subnets(refs, vpc.as_deref()).await?);
        if let Some(r) = &refs.keypair {
            problems.extend(self.check_key_pair(r).await?);
        }
        problems.extend(check_volume_types(&refs.volume_types));
        problems.extend(self.check_address_quota(refs.demand.floating_ips).await?);
        Ok(problems)
    }

    async fn check_image(&self, r: &Reference) -> Result<Option<Problem>> {
        let call = self.ec2.describe_images();
        let call = if r.value.starts_with("ami-") {
            call.image_ids(&r.value)
        } else {
            call.filters(filter("name", [r.value.as_str()]))
        };
        let ids = match call.send().await.map_err(sdk(OP, "AMI")) {
            Ok(out) => out
                .images()
                .iter()
                .filter_map(|i| i.image_id().map(str::to_string))
                .collect(),
            Err(e) if missing(&e) => Vec::new(),
            Err(e) => return Err(e),
        };
        Ok(one(r, "AMI", ids).err())
    }

    /// One request for all types: a filter leaves unknown types out instead of failing.
    async fn check_instance_types(&self, flavors: &[Reference]) -> Result<Vec<Problem>> {
        if flavors.is_empty() {
            return Ok(Vec::new());
        }
        let wanted: BTreeSet<&str> = flavors.iter().map(|r| r.value.as_str()).collect();
        let mut known = BTreeSet::new();
        let mut token: Option<String> = None;
        loop {
            let out = match self
                .ec2
                .describe_instance_types()
                .filters(filter("instance-type", wanted.iter().copied()))
                .set_next_token(token.clone())
                .send()
                .await
                .map_err(sdk(OP, "instance type"))
            {
                Ok(out) => out,
                Err(e) if missing(&e) => break,
                Err(e) => return Err(e),
            };
            known.extend(
                out.instance_types()
                    .iter()
                    .filter_map(|t| t.instance_type().map(|t| t.as_str().to_string())),
            );
            token = out
                .next_token()
                .filter(|t| !t.is_empty())
                .map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        Ok(flavors
            .iter()
            .filter(|r| !known.contains(&r.value))
            .map(unknown_instance_type)
            .collect())
    }

    async fn find_vpc(&self, r: &Reference) -> Result<std::result::Result<String, Problem>> {
        let call = self.ec2.describe_vpcs();
        let call = if r.value.starts_with("vpc-") {
            call.vpc_ids(&r.value)
        } else {
            call.filters(filter("tag:Name", [r.value.as_str()]))
        };
        let ids = match call.send().await.map_err(sdk(OP, "VPC")) {
            Ok(out) => out
                .vpcs()
                .iter()
                .filter_map(|v| v.vpc_id().map(str::to_string))
                .collect(),
            Err(e) if missing(&e) => Vec::new(),
            Err(e) => return Err(e),
        };
        Ok(one(r, "VPC", ids))
    }

    /// Each subnet exists, is in the VPC, and (one per AZ) in the AZ at its place.
    async fn check_subnets(&self, refs: &References, vpc: Option<&str>) -> Result<Vec<Problem>> {
        let mut problems = Vec::new();
        let per_zone = refs.subnets.len() == refs.zones.len();
        // One request for the ids and one for the names (filters leave unknown ones out).
        let (ids, names): (Vec<&Reference>, Vec<&Reference>) = refs
            .subnets
            .iter()
            .partition(|r| r.value.starts_with("subnet-"));
        let mut found = Vec::new();
        for (key, refs) in [("subnet-id", ids), ("tag:Name", names)] {
            if refs.is_empty() {
                continue;
            }
            let call = self
                .ec2
                .describe_subnets()
                .filters(filter(key, refs.iter().map(|r| r.value.as_str())));
            match call.send().await.map_err(sdk(OP, "subnet")) {
                Ok(out) => found.extend(out.subnets().iter().cloned()),
                Err(e) if missing(&e) => {}
                Err(e) => return Err(e),
            }
        }
        for (i, r) in refs.subnets.iter().enumerate() {
            let subnets: Vec<&aws_sdk_ec2::types::Subnet> = found
                .iter()
                .filter(|s| {
                    s.subnet_id() == Some(r.value.as_str())
                        || crate::tags::tag_value(crate::tags::ec2_pairs(s.tags()), "Name")
                            .as_deref()
                            == Some(r.value.as_str())
                })
                .collect();
            let ids = subnets
                .iter()
                .filter_map(|s| s.subnet_id().map(str::to_string))
                .collect();
            let id = match one(r, "subnet", ids) {
                Ok(id) => id,
                Err(p) => {
                    problems.push(p);
                    continue;
                }
            };
            let Some(s) = subnets.iter().find(|s| s.subnet_id() == Some(id.as_str())) else {
                continue;
            };
            if let (Some(want), Some(on)) = (vpc, s.vpc_id()) {
                if want != on {
                    problems.push(Problem::new(
                        &r.key,
                        format!(
                            "subnet `{}` is in {on}, not in the VPC {want}: list subnets of that VPC",
                            r.value
                        ),
                    ));
                }
            }
            if let (true, Some(zone), Some(az)) =
                (per_zone, refs.zones.get(i), s.availability_zone())
            {
                if zone.value != az {
                    problems.push(Problem::new(
                        &r.key,
                        format!(
                            "subnet `{}` is in {az}, but {} lists {} at its place: list one subnet per AZ, in AZ order",
                            r.value, zone.key, zone.value
                        ),
                    ));
                }
            }
        }
        Ok(problems)
    }

    async fn check_key_pair(&self, r: &Reference) -> Result<Option<Problem>> {
        let out = self
            .ec2
            .describe_key_pairs()
            .send()
            .await
            .map_err(sdk(OP, "key pairs"))?;
        let names: Vec<&str> = out
            .key_pairs()
            .iter()
            .filter_map(|k| k.key_name())
            .collect();
        Ok((!names.contains(&r.value.as_str())).then(|| Problem::not_found(r, "key pair", &names)))
    }

    /// The Elastic IPs the demand needs against `vpc-max-elastic-ips`.
    async fn check_address_quota(&self, needed: usize) -> Result<Option<Problem>> {
        if needed == 0 {
            return Ok(None);
        }
        let attrs = self
            .ec2
            .describe_account_attributes()
            .attribute_names(aws_sdk_ec2::types::AccountAttributeName::from(
                "vpc-max-elastic-ips",
            ))
            .send()
            .await
            .map_err(sdk(OP, "account attributes"))?;
        let limit = attrs
            .account_attributes()
            .iter()
            .filter(|a| a.attribute_name() == Some("vpc-max-elastic-ips"))
            .flat_map(|a| a.attribute_values())
            .find_map(|v| v.attribute_value()?.parse::<u64>().ok());
        let Some(limit) = limit else {
            return Ok(None);
        };
        let used = self
            .ec2
            .describe_addresses()
            .send()
            .await
            .map_err(sdk(OP, "Elastic IPs"))?
            .addresses()
            .len() as u64;
        let needed = needed as u64;
        Ok((used + needed > limit).then(|| Problem::quota("Elastic IPs", needed, used, limit)))
    }
}

/// The problem of an instance type the region does not offer.
fn unknown_instance_type(r: &Reference) -> Problem {
    Problem::new(
        &r.key,
        format!(
            "no instance type `{}` in this region: use one of `aws ec2 describe-instance-types`, e.g. t3.micro",
            r.value
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ebs_volume_types_pass() {
        let refs = [
            Reference::new("NodeVolumeType", "gp3"),
            Reference::new("GlusterVolumeType", "ssd"),
        ];
        let problems = check_volume_types(&refs);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].key, "GlusterVolumeType");
        assert!(problems[0]
            .message
            .contains("no volume type with id or name `ssd`"));
        assert!(problems[0].message.contains("gp3"));
    }
}
