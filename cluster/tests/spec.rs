//! The spec: both formats, the examples, and every validation error with its message.

use std::path::Path;

use cluster::spec::{ClusterSpec, ProviderKind, Role};
use cluster::Error;

fn examples() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

fn errors(file: &str, text: &str) -> Vec<String> {
    match ClusterSpec::parse(file, text) {
        Err(Error::Spec(e)) => e.0.iter().map(|e| e.to_string()).collect(),
        other => panic!("expected spec errors, got {other:?}"),
    }
}

#[test]
fn every_example_is_valid() {
    for f in [
        "local.properties",
        "local.toml",
        "openstack.properties",
        "aws.properties",
        "vsphere.properties",
    ] {
        let spec = ClusterSpec::load(&examples().join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert_eq!(spec.masters.count, 1, "{f}");
        assert_eq!(spec.nodes.count, 3, "{f}");
        assert_eq!(spec.storage.count, 2, "{f}");
    }
}

#[test]
fn local_example_mirrors_the_seed_in_both_formats() {
    let p = ClusterSpec::load(&examples().join("local.properties")).unwrap();
    let t = ClusterSpec::load(&examples().join("local.toml")).unwrap();
    assert_eq!(p.provider, ProviderKind::Local);
    assert_eq!(p.availability_zones, ["local-a", "local-b", "local-c"]);
    assert_eq!(p.name, t.name);
    assert_eq!(p.availability_zones, t.availability_zones);
    for r in Role::ALL {
        assert_eq!(p.role(r), t.role(r));
    }
    assert_eq!(p.network, t.network);
    assert_eq!(p.load_balancers, t.load_balancers);
    // API LB in front of the masters, ingress LB (HTTP 8080) in front of the nodes.
    let names: Vec<_> = p
        .load_balancers
        .iter()
        .map(|l| (l.name.as_str(), l.role, l.port))
        .collect();
    assert_eq!(
        names,
        [("api", Role::Master, 6443), ("ingress", Role::Node, 8080)]
    );
    assert_eq!(p.network.jumpbox_cidr.to_string(), "127.0.0.0/8");
    assert_eq!(p.network.load_balancer_cidr.to_string(), "127.0.0.0/8");
}

#[test]
fn openstack_seed_reads_as_in_design() {
    let s = ClusterSpec::load(&examples().join("openstack.properties")).unwrap();
    assert_eq!(s.name, "stackato4");
    assert_eq!(s.availability_zones, ["nova"]);
    assert_eq!(s.masters.flavor, "3");
    assert_eq!(s.nodes.flavor, "5");
    assert_eq!(s.network.floating_ip_pool.as_deref(), Some("ext-net"));
    assert_eq!(s.network.keypair.as_deref(), Some("stackato-key"));
    // The provider's own keys go to the provider; the topology keys stay here.
    let keys: Vec<&str> = s.provider_config.keys().collect();
    for k in [
        "OpenStack.AuthURL",
        "OpenStack.Username",
        "OpenStack.Password",
        "OpenStack.ProjectID",
        "OpenStack.CACertFile",
    ] {
        assert!(keys.contains(&k), "{k}: {keys:?}");
    }
    assert!(!keys.contains(&"OpenStack.LinuxImageID"), "{keys:?}");
    // The password is there, but never printed.
    let debug = format!("{s:?}");
    assert!(debug.contains("OpenStack.Password"), "{debug}");
    assert!(!debug.contains("\"password\""), "{debug}");
}

#[test]
fn aws_subnets_follow_the_zones() {
    let s = ClusterSpec::load(&examples().join("aws.properties")).unwrap();
    assert_eq!(s.network.subnet_for(1).as_deref(), Some("subnet-0bbb2222"));
    let text = std::fs::read_to_string(examples().join("aws.properties"))
        .unwrap()
        .replace("subnet-0aaa1111,", "");
    let e = errors("aws.properties", &text);
    assert!(
        e.iter()
            .any(|m| m.contains("AWS.SubnetIDs: 2 subnets for 3 availability zones")),
        "{e:?}"
    );
}

const OPENSTACK_BAD: &str = "\
# several problems at once
Provider = OpenStack
NodeCount = 4
MasterCount = 2
OpenStack.AuthURL = https://keystone:5000/v3
OpenStack.Username = u
OpenStack.Pasword = hunter2-very-secret
OpenStack.LinuxImageID = img
OpenStack.MasterFlavorID = 3
OpenStack.NodeFlavorID = 3
OpenStack.NetworkID = net
OpenStack.JumpboxCIDR = 10.1.1.4/33
OpenStack.LoadBalancerCIDR = 10.1.1.0/24
OpenStack.AvailabilityZones = a,b,c
";

#[test]
fn all_problems_are_reported_together_with_file_line_key_and_fix() {
    let e = errors("bad.properties", OPENSTACK_BAD);
    let expect = [
        "bad.properties:7: OpenStack.Pasword: unknown key: did you mean OpenStack.Password?",
        "bad.properties:4: MasterCount: 2 is even: a quorum of masters needs an odd count; use 1 or 3",
        "bad.properties:3: NodeCount: 4 is not a multiple of the 3 availability zones in OpenStack.AvailabilityZones: use 3 or 6 so every AZ gets as many nodes",
        "bad.properties:12: OpenStack.JumpboxCIDR: \"10.1.1.4/33\" is not a CIDR: write an address and prefix length, e.g. 10.1.1.4/32 or 10.1.1.0/24",
    ];
    for x in expect {
        assert!(e.iter().any(|m| m == x), "missing {x:?} in {e:#?}");
    }
    assert_eq!(e.len(), expect.len(), "{e:#?}");
    // A misspelt secret key's value is never echoed.
    assert!(!e.iter().any(|m| m.contains("hunter2")), "{e:?}");
}

#[test]
fn unknown_and_missing_provider() {
    let e = errors("p.properties", "Provider = Azure\n");
    assert_eq!(
        e,
        ["p.properties:1: Provider: unknown provider \"Azure\": use one of OpenStack, AWS, VSphere, local"]
    );
    let e = errors("p.properties", "NodeCount = 3\n");
    assert_eq!(
        e,
        ["p.properties: Provider: missing: set Provider = OpenStack, AWS, VSphere or local"]
    );
}

#[test]
fn unknown_key_names_the_nearest_known_key() {
    let e = errors(
        "k.properties",
        "Provider = local\nNodeCont = 3\nLocal.Imag = http\n",
    );
    assert_eq!(
        e,
        [
            "k.properties:2: NodeCont: unknown key: did you mean NodeCount?",
            "k.properties:3: Local.Imag: unknown key: did you mean Local.Image?",
        ]
    );
}

#[test]
fn toml_errors_name_the_key_and_its_line() {
    let e = errors(
        "k.toml",
        "Provider = \"local\"\nMasterCount = 2\n[Local]\nJumpboxCIDR = \"nope\"\nImgae = \"http\"\n",
    );
    assert!(
        e.contains(&"k.toml:5: Local.Imgae: unknown key: did you mean Local.Image?".to_string()),
        "{e:?}"
    );
    assert!(
        e.iter()
            .any(|m| m.starts_with("k.toml:2: MasterCount: 2 is even")),
        "{e:?}"
    );
    assert!(
        e.iter()
            .any(|m| m.starts_with("k.toml:4: Local.JumpboxCIDR: \"nope\" is not a CIDR")),
        "{e:?}"
    );
}

#[test]
fn bad_vsphere_flavor() {
    let text = std::fs::read_to_string(examples().join("vsphere.properties"))
        .unwrap()
        .replace("VSphere.Password        = secret\n", "")
        .replace("= 4:8192", "= big");
    let e = errors("v.properties", &text);
    assert!(
        e.iter()
            .any(|m| m
                .contains("VSphere.NodeFlavor: \"big\" is not cpus:memoryMiB: write e.g. 2:4096")),
        "{e:?}"
    );
}

#[test]
fn duplicate_keys_and_bad_numbers() {
    let e = errors(
        "d.properties",
        "Provider = local\nNodeCount = 3\nNodeCount = 6\nMasterCount = one\n",
    );
    assert!(
        e.contains(&"d.properties:3: NodeCount: set twice (first at line 2): keep one".to_string()),
        "{e:?}"
    );
    assert!(
        e.contains(
            &"d.properties:4: MasterCount: \"one\" is not a whole number: write e.g. 1".to_string()
        ),
        "{e:?}"
    );
}

#[test]
fn secrets_never_show_in_debug_or_errors() {
    let text = "Provider = OpenStack\nOpenStack.Password = hunter2-very-secret\nNodeCount = 2\n";
    let e = ClusterSpec::parse("s.properties", text).unwrap_err();
    assert!(!format!("{e} {e:?}").contains("hunter2"));
    let entries = cluster::spec::properties::parse("s.properties", text).unwrap();
    assert!(!format!("{entries:?}").contains("hunter2"));
}

/// A credential the spec leaves out may come from the provider's environment, so it is
/// the provider's builder that reports it missing, naming the key and the fix.
#[cfg(feature = "vsphere")]
#[tokio::test]
async fn a_missing_credential_is_named_when_the_provider_opens() {
    let text = std::fs::read_to_string(examples().join("vsphere.properties"))
        .unwrap()
        .replace("VSphere.Password        = secret\n", "");
    let s = ClusterSpec::parse("v.properties", &text).unwrap();
    let err = s
        .provider_config
        .configure(provider_vsphere::VSphereBuilder::new())
        .unwrap()
        .build()
        .await
        .unwrap_err();
    assert!(
        matches!(&err, provider_core::Error::Config { key, .. } if key == "VSphere.Password"),
        "{err}"
    );
    assert!(err.to_string().contains("VSPHERE_PASSWORD"), "{err}");
}

#[test]
fn keys_of_another_provider_are_refused_and_suggestions_stay_in_the_provider() {
    let e = errors(
        "x.properties",
        "Provider = local\nAWS.Region = eu-west-1\nLocal.Password = x\n",
    );
    assert!(
        e.iter()
            .any(|m| m.contains("AWS.Region: a key of provider AWS, but Provider = local")),
        "{e:?}"
    );
    let local = e.iter().find(|m| m.contains("Local.Password")).unwrap();
    assert!(!local.contains("VSphere"), "{local}");
    assert!(!local.contains("x\""), "{local}");
}
