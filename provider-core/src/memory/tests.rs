//! The memory provider's own behaviour beyond the conformance kit.

use super::*;

fn spec(name: &str, az: &str) -> InstanceSpec {
    InstanceSpec::new(name, az, "small", "linux")
}

#[tokio::test]
async fn volume_zone_mapping_is_invisible_to_callers_but_enforced() {
    let cloud = MemoryProvider::new(MemoryConfig {
        volume_zones: [
            ("az-1".to_string(), "cinder-1".to_string()),
            ("az-2".to_string(), "cinder-2".to_string()),
        ]
        .into(),
        ..Default::default()
    });
    let i1 = cloud.create_instance(&spec("a", "az-1")).await.unwrap();
    let i2 = cloud.create_instance(&spec("b", "az-2")).await.unwrap();
    let v = cloud
        .create_volume(&VolumeSpec::new("v", "az-1", 1))
        .await
        .unwrap();
    assert_eq!(v.availability_zone, "az-1");
    assert_eq!(cloud.lock().volumes[&v.id].volume_zone, "cinder-1");
    let err = cloud.attach_volume(&v.id, &i2.id).await.unwrap_err();
    assert_eq!(err.kind(), crate::ErrorKind::InvalidInput);
    let v = cloud.attach_volume(&v.id, &i1.id).await.unwrap();
    assert_eq!(v.state, VolumeState::InUse);
}

#[tokio::test]
async fn lists_follow_pages() {
    let cloud = MemoryProvider::new(MemoryConfig {
        page_size: 3,
        ..Default::default()
    });
    for i in 0..7 {
        cloud
            .create_security_group(&SecurityGroupSpec::new(format!("g{i}")))
            .await
            .unwrap();
    }
    let before = cloud.page_requests();
    assert_eq!(
        cloud
            .list_security_groups(&TagFilter::all())
            .await
            .unwrap()
            .len(),
        7
    );
    assert_eq!(cloud.page_requests() - before, 3);
}

#[tokio::test]
async fn failed_instance_is_reported_not_waited_on() {
    let cloud = MemoryProvider::new(MemoryConfig {
        transition: Duration::from_millis(200),
        ..Default::default()
    });
    let c = std::sync::Arc::new(cloud);
    let c2 = c.clone();
    let h = tokio::spawn(async move { c2.create_instance(&spec("x", "az-1")).await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let id = c.list_instances(&TagFilter::all()).await.unwrap()[0]
        .id
        .clone();
    c.fail_instance(&id).unwrap();
    let err = h.await.unwrap().unwrap_err();
    assert_eq!(err.kind(), crate::ErrorKind::Api, "{err}");
}
