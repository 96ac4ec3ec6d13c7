//! A floating IP forwards the ports its instance's groups open, to the sources they
//! allow, and nothing else.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use common::*;
use provider_core::ProviderExt;
use provider_core::{FloatingIpSpec, IngressRule};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwards_allowed_ports_from_allowed_sources_only() {
    let f = Fixture::new().await;
    let p = f.p();
    // Port 8080 open to 127.0.0.1 only.
    let g = p
        .create_security_group(&group("web", "127.0.0.1/32", &[8080]))
        .await
        .unwrap();
    let i = p
        .create_instance(&http_instance("web", "local-a", &[&g.id]))
        .await
        .unwrap();
    let fip = p
        .allocate_floating_ip(&FloatingIpSpec::new(
            "entry",
            provider_local::config::DEFAULT_POOL,
        ))
        .await
        .unwrap();
    let ip = fip.address;
    assert!(ip.to_string().starts_with("127.200."), "{ip}");
    // Not associated yet: nothing listens.
    assert!(get(ip, 8080, None).await.is_err());

    let fip = p.associate_floating_ip(&fip.id, &i.id).await.unwrap();
    assert_eq!(fip.instance_id.as_deref(), Some(i.id.as_str()));
    assert_eq!(p.get_instance(&i.id).await.unwrap().public_ip, Some(ip));

    // The allowed port reaches the instance.
    let body = get(ip, 8080, None).await.unwrap();
    assert!(body.contains(&i.id), "{body}");
    // A port the group does not open is refused.
    let closed =
        std::net::TcpStream::connect_timeout(&SocketAddr::new(ip, 9090), Duration::from_secs(5));
    assert!(closed.is_err(), "port 9090 should be refused");
    // A source the CIDR does not allow is refused.
    let other: IpAddr = "127.0.0.99".parse().unwrap();
    let refused = get(ip, 8080, Some(other)).await;
    assert!(refused.is_err(), "{refused:?}");

    // Rules apply at once: allow the other source, then close the port.
    let extra = IngressRule::tcp(8080, "127.0.0.99/32".parse().unwrap());
    p.add_security_group_rule(&g.id, &extra).await.unwrap();
    assert!(get(ip, 8080, Some(other)).await.unwrap().contains(&i.id));
    p.remove_security_group_rule(&g.id, &extra).await.unwrap();
    p.remove_security_group_rule(
        &g.id,
        &IngressRule::tcp(8080, "127.0.0.1/32".parse().unwrap()),
    )
    .await
    .unwrap();
    assert!(get(ip, 8080, None).await.is_err());

    // Disassociated and released: the address is free again.
    p.add_security_group_rule(
        &g.id,
        &IngressRule::tcp(8080, "127.0.0.1/32".parse().unwrap()),
    )
    .await
    .unwrap();
    assert!(get(ip, 8080, None).await.is_ok());
    p.disassociate_floating_ip(&fip.id).await.unwrap();
    assert!(get(ip, 8080, None).await.is_err());
    p.release_floating_ip(&fip.id).await.unwrap();
    p.release_floating_ip(&fip.id).await.unwrap();
}
