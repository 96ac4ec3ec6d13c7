//! Instances are real processes on their own loopback address; volumes are sparse files.

mod common;

use common::*;
use provider_core::ProviderExt;
use provider_core::{ErrorKind, InstanceState, TagFilter, VolumeSpec, VolumeState};

fn volume(name: &str, az: &str, gib: u64) -> VolumeSpec {
    VolumeSpec::new(name, az, gib)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_instance_serves_its_identity_and_fails_when_killed() {
    let f = Fixture::new().await;
    let p = f.p();
    let zones = p.list_availability_zones().await.unwrap();
    assert_eq!(
        zones.iter().map(|z| z.name.as_str()).collect::<Vec<_>>(),
        ["local-a", "local-b", "local-c"]
    );

    let i = p
        .create_instance(&http_instance("web-1", "local-b", &[]))
        .await
        .unwrap();
    assert_eq!(i.state, InstanceState::Running);
    assert_eq!(i.flavor, "small");
    let ip = i.private_ip.expect("private ip");
    assert!(ip.to_string().starts_with("127.100."), "{ip}");

    // Idempotent by name and spec; another spec under the name is a conflict.
    let again = p
        .create_instance(&http_instance("web-1", "local-b", &[]))
        .await
        .unwrap();
    assert_eq!(again.id, i.id);
    let err = p
        .create_instance(&http_instance("web-1", "local-a", &[]))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);

    let body = get(ip, 8080, None).await.unwrap();
    assert_eq!(body, format!("instance={} az=local-b name=web-1\n", i.id));

    // Kill the process: the instance shows as failed.
    let pid = f.provider.instance_pid(&i.id).expect("pid");
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    eventually("instance failed", || async {
        (p.get_instance(&i.id).await.unwrap().state == InstanceState::Failed).then_some(())
    })
    .await;
    let listed = p.list_instances(&TagFilter::all()).await.unwrap();
    assert_eq!(listed[0].state, InstanceState::Failed);

    p.delete_instance(&i.id).await.unwrap();
    p.delete_instance(&i.id).await.unwrap();
    assert_eq!(
        p.get_instance(&i.id).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert!(!f.provider.instance_dir(&i.id).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_specs_name_the_field() {
    let f = Fixture::new().await;
    let p = f.p();
    let mut s = http_instance("x", "local-a", &[]);
    s.image = "windows".into();
    let e = p.create_instance(&s).await.unwrap_err();
    assert!(
        matches!(&e, provider_core::Error::InvalidInput { field, .. } if field == "spec.image"),
        "{e}"
    );
    let mut s = http_instance("x", "local-a", &[]);
    s.flavor = "huge".into();
    let e = p.create_instance(&s).await.unwrap_err();
    assert!(
        matches!(&e, provider_core::Error::InvalidInput { field, .. } if field == "spec.flavor"),
        "{e}"
    );
    let e = p
        .create_instance(&http_instance("x", "mars-1", &[]))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, provider_core::Error::InvalidInput { field, .. } if field == "spec.availability_zone"),
        "{e}"
    );
    let e = p
        .create_volume(&volume("v", "mars-1", 1))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, provider_core::Error::InvalidInput { field, .. } if field == "spec.availability_zone"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volumes_are_sparse_files_linked_into_the_instance() {
    let f = Fixture::new().await;
    let p = f.p();
    let v = p
        .create_volume(&volume("data", "local-a", 3))
        .await
        .unwrap();
    assert_eq!(v.state, VolumeState::Available);
    let file = f.provider.volume_file(&v.id);
    let meta = std::fs::metadata(&file).unwrap();
    assert_eq!(meta.len(), 3 * 1024 * 1024 * 1024);
    // Sparse: far fewer blocks than the size.
    use std::os::unix::fs::MetadataExt;
    assert!(
        meta.blocks() * 512 < 1024 * 1024,
        "{} blocks",
        meta.blocks()
    );

    // The shell image sees its environment and, through the link, the volume.
    let mut spec = http_instance("worker", "local-a", &[]);
    spec.image = "shell".into();
    spec.user_data = Some(
        "echo \"$PLINTH_INSTANCE_ID $PLINTH_ADDRESS $PLINTH_AZ\" > env.txt\n\
         while [ ! -e \"$PLINTH_VOLUMES_DIR\"/* ]; do sleep 0.1; done\n\
         stat -L -c %s \"$PLINTH_VOLUMES_DIR\"/* > size.txt\n"
            .into(),
    );
    let i = p.create_instance(&spec).await.unwrap();
    let other = p
        .create_instance(&http_instance("elsewhere", "local-c", &[]))
        .await
        .unwrap();

    let e = p.attach_volume(&v.id, &other.id).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");

    let att = p.attach_volume(&v.id, &i.id).await.unwrap();
    assert_eq!(att.state, VolumeState::InUse);
    let a = att.attachment.clone().unwrap();
    assert_eq!(a.instance_id, i.id);
    assert!(std::path::Path::new(&a.device).exists());
    assert_eq!(
        p.attach_volume(&v.id, &i.id).await.unwrap().state,
        VolumeState::InUse
    );

    let dir = f.provider.instance_dir(&i.id);
    let size = eventually("script saw the volume", || async {
        std::fs::read_to_string(dir.join("size.txt"))
            .ok()
            .filter(|s| !s.is_empty())
    })
    .await;
    assert_eq!(size.trim(), (3u64 * 1024 * 1024 * 1024).to_string());
    let env = std::fs::read_to_string(dir.join("env.txt")).unwrap();
    assert_eq!(
        env.trim(),
        format!("{} {} local-a", i.id, i.private_ip.unwrap())
    );

    assert_eq!(
        p.delete_volume(&v.id).await.unwrap_err().kind(),
        ErrorKind::Conflict
    );
    assert_eq!(
        p.delete_instance(&i.id).await.unwrap_err().kind(),
        ErrorKind::Conflict
    );
    assert_eq!(
        p.detach_volume(&v.id).await.unwrap().state,
        VolumeState::Available
    );
    assert_eq!(
        p.detach_volume(&v.id).await.unwrap().state,
        VolumeState::Available
    );
    assert!(!std::path::Path::new(&a.device).exists());
    p.delete_volume(&v.id).await.unwrap();
    assert!(!file.exists());
    p.delete_volume(&v.id).await.unwrap();
    p.delete_instance(&i.id).await.unwrap();
    p.delete_instance(&other.id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_runs_with_the_clients_configuration() {
    let f = Fixture::with(|c| c.availability_zones = vec!["east".into(), "west".into()]).await;
    let zones = f.p().list_availability_zones().await.unwrap();
    let names: Vec<_> = zones.iter().map(|z| z.name.as_str()).collect();
    assert_eq!(names, ["east", "west"]);
    let e = f
        .p()
        .create_instance(&http_instance("x", "local-a", &[]))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
}
