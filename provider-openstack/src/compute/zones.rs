//! Availability zones: Nova's, each with its Cinder AZ.

use super::*;

impl OpenStackProvider {
    pub(crate) async fn compute_zones(&self, op: Operation) -> Result<Vec<(String, bool)>> {
        let v = self
            .api
            .send(op, Call::get(Service::Compute, "os-availability-zone"))
            .await?;
        Ok(v["availabilityZoneInfo"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|z| {
                let name = z.get("zoneName")?.as_str()?.to_string();
                let available = z
                    .pointer("/zoneState/available")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                (name != "internal").then_some((name, available))
            })
            .collect())
    }

    pub(crate) async fn volume_zones(&self, op: Operation) -> Result<BTreeSet<String>> {
        let v = self
            .api
            .send(op, Call::get(Service::Volume, "os-availability-zone"))
            .await?;
        Ok(v["availabilityZoneInfo"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|z| z.pointer("/zoneState/available").and_then(Value::as_bool) != Some(false))
            .filter_map(|z| Some(z.get("zoneName")?.as_str()?.to_string()))
            .collect())
    }

    /// The compute AZs, read from Nova each time (whether a zone is up is the cloud's
    /// state), each available when its Cinder AZ exists too. Cinder's AZs, what each
    /// compute AZ maps to, are looked up once per provider ([`crate::watch::Memos`]),
    /// and so are the compute AZs' names that creates check against.
    pub(crate) async fn zones(&self) -> Result<Vec<AvailabilityZone>> {
        let op = Operation::ListAvailabilityZones;
        let compute = self.compute_zones(op).await?;
        self.memos
            .compute_zones
            .get_or_try("", || async { Ok(compute.clone()) })
            .await?;
        let volume = self
            .memos
            .volume_zones
            .get_or_try("", || self.volume_zones(op))
            .await?;
        Ok(compute
            .into_iter()
            .map(|(name, available)| {
                let vz = self.volume_zone(&name);
                let has_volumes = volume.contains(&vz);
                if !has_volumes {
                    tracing::warn!(
                        zone = %name,
                        volume_zone = %vz,
                        "compute AZ has no Cinder AZ of that name: map it with OpenStack.VolumeAvailabilityZones (compute:volume)"
                    );
                }
                AvailabilityZone {
                    name,
                    available: available && has_volumes,
                }
            })
            .collect())
    }

    pub(crate) async fn check_compute_zone(
        &self,
        op: Operation,
        field: &str,
        az: &str,
    ) -> Result<()> {
        // The names only: whether a zone is up is the preflight's and Nova's to say.
        let zones = self
            .memos
            .compute_zones
            .get_or_try("", || self.compute_zones(op))
            .await?;
        if zones.iter().any(|(z, _)| z == az) {
            Ok(())
        } else {
            Err(Error::invalid(
                op,
                field,
                format!(
                    "unknown availability zone {az:?}: use one of {}",
                    zones
                        .iter()
                        .map(|(z, _)| z.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ))
        }
    }
}
