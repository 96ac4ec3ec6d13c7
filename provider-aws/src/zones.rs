//! Availability zones: `DescribeAvailabilityZones` of the region, state `available`
//! only, narrowed to the configured AZs when `AWS.AvailabilityZones` is set.

use provider_core::{AvailabilityZone, Result};

use crate::AwsProvider;

impl AwsProvider {
    pub(crate) async fn zones(&self) -> Result<Vec<AvailabilityZone>> {
        let available = self.region_zones().await?;
        if self.config.availability_zones.is_empty() {
            return Ok(available
                .into_iter()
                .map(|name| AvailabilityZone {
                    name,
                    available: true,
                })
                .collect());
        }
        Ok(self
            .config
            .availability_zones
            .iter()
            .map(|z| AvailabilityZone {
                name: z.clone(),
                available: available.contains(z),
            })
            .collect())
    }
}
