use serde::{Deserialize, Serialize};

use super::{tags::validate_tags, validate_name, validate_non_empty, Tags};
use crate::{Error, Operation, Result};

/// Largest volume any provider accepts through the trait (16 TiB).
pub const MAX_VOLUME_GIB: u64 = 16 * 1024;

/// What to create: a block-storage volume in an AZ.
///
/// Built with [`VolumeSpec::new`] and the `with_*` setters, so that fields added later
/// do not break callers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct VolumeSpec {
    /// Unique name.
    pub name: String,
    /// The compute AZ name; providers map it to their volume AZ.
    pub availability_zone: String,
    /// Size in GiB, 1 to [`MAX_VOLUME_GIB`].
    pub size_gib: u64,
    /// Provider volume type (e.g. `gp3`); `None` for the provider's default.
    pub volume_type: Option<String>,
    /// Tags.
    pub tags: Tags,
}

impl VolumeSpec {
    /// A spec with the fields every volume needs: the provider's default type, no tags.
    pub fn new(
        name: impl Into<String>,
        availability_zone: impl Into<String>,
        size_gib: u64,
    ) -> Self {
        Self {
            name: name.into(),
            availability_zone: availability_zone.into(),
            size_gib,
            volume_type: None,
            tags: Tags::new(),
        }
    }

    /// Sets the provider volume type (e.g. `gp3`).
    pub fn with_volume_type(mut self, volume_type: impl Into<String>) -> Self {
        self.volume_type = Some(volume_type.into());
        self
    }

    /// Sets the tags, replacing any set before.
    pub fn with_tags(mut self, tags: Tags) -> Self {
        self.tags = tags;
        self
    }

    /// Checks every field.
    pub fn validate(&self) -> Result<()> {
        let op = Operation::CreateVolume;
        validate_name(op, "spec.name", &self.name)?;
        validate_non_empty(op, "spec.availability_zone", &self.availability_zone)?;
        if self.size_gib == 0 || self.size_gib > MAX_VOLUME_GIB {
            return Err(Error::invalid(
                op,
                "spec.size_gib",
                format!(
                    "{} GiB is out of range: use 1 to {MAX_VOLUME_GIB}",
                    self.size_gib
                ),
            ));
        }
        if let Some(t) = &self.volume_type {
            validate_non_empty(op, "spec.volume_type", t)?;
        }
        validate_tags(op, "spec.tags", &self.tags)
    }
}

/// Lifecycle state of a volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VolumeState {
    /// Being created.
    Creating,
    /// Ready, not attached.
    Available,
    /// Being attached.
    Attaching,
    /// Attached to an instance.
    InUse,
    /// Being detached.
    Detaching,
    /// Being deleted.
    Deleting,
    /// Failed.
    Error,
}

/// Where a volume is attached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeAttachment {
    /// The instance.
    pub instance_id: String,
    /// Device name or path as the instance sees it.
    pub device: String,
}

/// A volume that exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Volume {
    /// Provider id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Compute AZ name.
    pub availability_zone: String,
    /// Size in GiB.
    pub size_gib: u64,
    /// Volume type.
    pub volume_type: Option<String>,
    /// State.
    pub state: VolumeState,
    /// Attachment, when in use.
    pub attachment: Option<VolumeAttachment>,
    /// Tags.
    pub tags: Tags,
}
