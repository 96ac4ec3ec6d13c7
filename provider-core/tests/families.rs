//! A provider has exactly the families its accessors return: one that writes nothing
//! for a family answers its calls with `Unsupported` through `ProviderExt`, and a layer
//! around it has the same families.

use std::sync::Arc;

use async_trait::async_trait;
use provider_core::layer::{Layered, Retry};
use provider_core::memory::MemoryProvider;
use provider_core::prelude::*;
use provider_core::{
    AvailabilityZone, Capabilities, ErrorKind, Family, Operation, ResourceKind, Result, Tags,
    VolumeSpec,
};

/// Zones and tags only: the least a provider writes.
#[derive(Debug)]
struct Bare;

#[async_trait]
impl Provider for Bare {
    fn name(&self) -> &str {
        "bare"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::new(1)
    }

    async fn list_availability_zones(&self) -> Result<Vec<AvailabilityZone>> {
        Ok(vec![AvailabilityZone {
            name: "az-1".into(),
            available: true,
        }])
    }

    async fn update_tags(&self, _: ResourceKind, _: &str, _: &Tags, _: &[String]) -> Result<()> {
        Ok(())
    }
}

fn volume() -> VolumeSpec {
    VolumeSpec::new("data", "az-1", 1)
}

#[tokio::test]
async fn a_family_not_written_is_unsupported_and_named() {
    let p = Bare;
    assert_eq!(p.families(), [Family::Core]);
    let e = p.create_volume(&volume()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    assert_eq!(e.operation(), Some(Operation::CreateVolume));
    assert!(e.to_string().contains("has no volumes"), "{e}");
}

#[tokio::test]
async fn a_layer_has_the_families_of_the_provider_inside() {
    let bare = Layered::new(Arc::new(Bare), Retry::default());
    assert_eq!(bare.families(), [Family::Core]);
    assert!(bare.load_balancers().is_none());

    let memory = Layered::new(Arc::new(MemoryProvider::default()), Retry::default());
    assert_eq!(memory.families(), Family::ALL);
    let v = memory.create_volume(&volume()).await.unwrap();
    assert_eq!(v.name, "data");
}

#[test]
fn every_operation_belongs_to_a_family_the_table_lists() {
    for op in Operation::ALL {
        assert!(Family::ALL.contains(&op.family()), "{op}");
    }
    assert_eq!(Operation::CreateInstances.family(), Family::Instances);
    assert_eq!(Operation::UpdateTags.family(), Family::Core);
}
