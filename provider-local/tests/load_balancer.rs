//! Load balancers are real TCP proxies: round robin over healthy members, killed
//! members skipped, security groups enforced, removed members drained.

mod common;

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use common::*;
use provider_core::ProviderExt;
use provider_core::{
    IngressRule, LbProtocol, ListenerSpec, LoadBalancer, LoadBalancerSpec, MemberHealth,
    MemberSpec, Provider,
};

fn lb_spec(name: &str, groups: &[String], members: &[&str]) -> LoadBalancerSpec {
    LoadBalancerSpec::new(
        name,
        [ListenerSpec::new(LbProtocol::Http, 80)
            .with_health_check(fast_check())
            .with_members(members.iter().map(|id| MemberSpec::new(*id, 8080)))],
    )
    .with_security_groups(groups.iter().cloned())
}

fn addr(lb: &LoadBalancer) -> IpAddr {
    lb.address.as_deref().expect("address").parse().expect("ip")
}

/// Whether /proc/net/tcp shows an established connection to `local` from `remote`.
fn established(local: SocketAddr, remote: IpAddr) -> bool {
    let hex = |ip: IpAddr| match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{:02X}{:02X}{:02X}{:02X}", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(_) => String::new(),
    };
    let want_local = format!("{}:{:04X}", hex(local.ip()), local.port());
    let want_remote = format!("{}:", hex(remote));
    std::fs::read_to_string("/proc/net/tcp")
        .unwrap_or_default()
        .lines()
        .skip(1)
        .any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 3 && f[1] == want_local && f[2].starts_with(&want_remote) && f[3] == "01"
        })
}

async fn wait_health(p: &dyn Provider, lb: &str, want: &[(&str, MemberHealth)]) {
    eventually("member health", || async {
        let lb = p.get_load_balancer(lb).await.ok()?;
        let ms = &lb.listener(80)?.pool.members;
        want.iter()
            .all(|(id, h)| ms.iter().any(|m| m.instance_id == *id && m.health == *h))
            .then_some(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_over_healthy_members_skips_a_killed_one() {
    let f = Fixture::new().await;
    let p = f.p();
    // Members admit the LB by group reference; the LB admits loopback clients.
    let lb_group = p
        .create_security_group(&group("lb", "127.0.0.0/8", &[80]))
        .await
        .unwrap();
    let mut web = group("web", "127.0.0.1/32", &[22]);
    web.rules
        .push(IngressRule::tcp_from_group(8080, lb_group.id.clone()));
    let web = p.create_security_group(&web).await.unwrap();
    let a = p
        .create_instance(&http_instance("a", "local-a", &[&web.id]))
        .await
        .unwrap();
    let b = p
        .create_instance(&http_instance("b", "local-b", &[&web.id]))
        .await
        .unwrap();
    let lb = p
        .create_load_balancer(&lb_spec(
            "front",
            std::slice::from_ref(&lb_group.id),
            &[&a.id, &b.id],
        ))
        .await
        .unwrap();
    let ip = addr(&lb);
    assert!(ip.to_string().starts_with("127.201."), "{ip}");
    wait_health(
        p,
        &lb.id,
        &[
            (&a.id, MemberHealth::Healthy),
            (&b.id, MemberHealth::Healthy),
        ],
    )
    .await;

    // Consecutive requests alternate between the two members.
    let mut seen = Vec::new();
    for _ in 0..6 {
        let body = get(ip, 80, None).await.unwrap();
        seen.push(if body.contains(&a.id) {
            'a'
        } else if body.contains(&b.id) {
            'b'
        } else {
            '?'
        });
    }
    assert!(!seen.contains(&'?'), "{seen:?}");
    assert!(
        seen.windows(2).all(|w| w[0] != w[1]),
        "not round robin: {seen:?}"
    );

    // Kill a's process: every request now reaches b, and a turns unhealthy.
    let pid = f.provider.instance_pid(&a.id).unwrap();
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    // Once it is dead its port refuses (before that, a connection may reach a dying
    // process, as it would on any cloud).
    let a_addr = SocketAddr::new(a.private_ip.unwrap(), 8080);
    eventually("a's port closed", || async {
        std::net::TcpStream::connect_timeout(&a_addr, Duration::from_secs(5))
            .is_err()
            .then_some(())
    })
    .await;
    for _ in 0..6 {
        let body = get(ip, 80, None).await.unwrap();
        assert!(body.contains(&b.id), "{body}");
    }
    wait_health(
        p,
        &lb.id,
        &[
            (&a.id, MemberHealth::Unhealthy),
            (&b.id, MemberHealth::Healthy),
        ],
    )
    .await;
    for _ in 0..4 {
        assert!(get(ip, 80, None).await.unwrap().contains(&b.id));
    }

    p.delete_load_balancer(&lb.id).await.unwrap();
    // Deleted: nothing listens there any more.
    assert!(
        std::net::TcpStream::connect_timeout(&SocketAddr::new(ip, 80), Duration::from_secs(5))
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listener_and_members_enforce_security_groups() {
    let f = Fixture::new().await;
    let p = f.p();
    // The listener admits 127.0.0.1 only.
    let lb_group = p
        .create_security_group(&group("lb", "127.0.0.1/32", &[80]))
        .await
        .unwrap();
    let open = p
        .create_security_group(&group("open", "127.0.0.0/8", &[8080]))
        .await
        .unwrap();
    let closed = p
        .create_security_group(&group("closed", "127.0.0.0/8", &[9999]))
        .await
        .unwrap();
    let a = p
        .create_instance(&http_instance("a", "local-a", &[&open.id]))
        .await
        .unwrap();
    let b = p
        .create_instance(&http_instance("b", "local-a", &[&closed.id]))
        .await
        .unwrap();
    let lb = p
        .create_load_balancer(&lb_spec(
            "front",
            std::slice::from_ref(&lb_group.id),
            &[&a.id, &b.id],
        ))
        .await
        .unwrap();
    let ip = addr(&lb);
    // b's groups do not let the LB in: it never becomes healthy, gets no traffic.
    wait_health(
        p,
        &lb.id,
        &[
            (&a.id, MemberHealth::Healthy),
            (&b.id, MemberHealth::Unhealthy),
        ],
    )
    .await;
    for _ in 0..4 {
        assert!(get(ip, 80, None).await.unwrap().contains(&a.id));
    }
    // Another loopback source is refused by the listener's group.
    let other: IpAddr = "127.0.0.99".parse().unwrap();
    let refused = get(ip, 80, Some(other)).await;
    assert!(refused.is_err(), "{refused:?}");
    // Opening the group to it lets it in, on the next connection.
    p.add_security_group_rule(
        &lb_group.id,
        &IngressRule::tcp(80, "127.0.0.99/32".parse().unwrap()),
    )
    .await
    .unwrap();
    assert!(get(ip, 80, Some(other)).await.unwrap().contains(&a.id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_a_member_drains_its_open_connection() {
    let f = Fixture::new().await;
    let p = f.p();
    let open = p
        .create_security_group(&group("open", "127.0.0.0/8", &[8080]))
        .await
        .unwrap();
    let a = p
        .create_instance(&http_instance("a", "local-a", &[&open.id]))
        .await
        .unwrap();
    let lb = p
        .create_load_balancer(&lb_spec("front", &[], &[&a.id]))
        .await
        .unwrap();
    let ip = addr(&lb);
    wait_health(p, &lb.id, &[(&a.id, MemberHealth::Healthy)]).await;

    // Open a connection through the LB and send half a request.
    let mut conn = tokio::task::spawn_blocking(move || {
        let mut s = connect(SocketAddr::new(ip, 80), None).unwrap();
        s.write_all(b"GET / HTTP/1.1\r\n").unwrap();
        s
    })
    .await
    .unwrap();
    // Wait until the proxy has connected to the member (seen in the kernel's table).
    let member_addr = SocketAddr::new(a.private_ip.unwrap(), 8080);
    eventually("proxied connection established", || async {
        established(member_addr, ip).then_some(())
    })
    .await;

    let member = MemberSpec::new(a.id.clone(), 8080);
    let provider = f.provider.clone();
    let (lb_id, m2) = (lb.id.clone(), member.clone());
    let mut removal =
        tokio::spawn(async move { provider.remove_load_balancer_member(&lb_id, 80, &m2).await });
    // While the connection is open the member drains: shown as such, call not done.
    wait_health(p, &lb.id, &[(&a.id, MemberHealth::Draining)]).await;
    assert!(
        tokio::time::timeout(Duration::from_millis(500), &mut removal)
            .await
            .is_err()
    );

    // The open connection still completes against the draining member.
    let body = tokio::task::spawn_blocking(move || {
        conn.write_all(b"Host: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut out = String::new();
        conn.read_to_string(&mut out).unwrap();
        out
    })
    .await
    .unwrap();
    assert!(body.contains(&a.id), "{body}");

    // Then the removal finishes and the member is gone.
    let after = removal.await.unwrap().unwrap();
    assert!(after.listener(80).unwrap().pool.members.is_empty());
    // New connections find no member.
    assert!(get(ip, 80, None).await.is_err());
}
