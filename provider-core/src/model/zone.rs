use serde::{Deserialize, Serialize};

/// An availability zone: an independent failure domain of the cloud.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AvailabilityZone {
    /// The compute AZ name, used in instance and volume specs.
    pub name: String,
    /// Whether new resources can be placed there now.
    pub available: bool,
}
