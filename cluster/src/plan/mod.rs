//! Planning: the spec becomes [`desired`] resources, the provider's tagged resources
//! become [`Observed`] state, and [`diff()`] turns the difference into a
//! [`dag::Plan`] of actions with dependencies.

pub mod dag;
pub mod desired;
pub mod diff;

pub use dag::{Action, Plan, PlannedAction, RuleRef};
pub use desired::{
    spec_hash, Desired, DesiredFloatingIp, DesiredGroup, DesiredInstance, DesiredListener,
    DesiredLoadBalancer, DesiredVolume,
};
pub use diff::{diff, DiffOptions, Observed};

/// Tag key naming the owning cluster; every resource Plinth creates carries it.
pub const TAG_CLUSTER: &str = "plinth.cluster";
/// Tag key naming a node's role (`master`, `node`, `storage`) or a shared resource's
/// purpose (`base`, `lb`, `api`, `ingress`).
pub const TAG_ROLE: &str = "plinth.role";
/// Tag key holding a node's ordinal within its role.
pub const TAG_ORDINAL: &str = "plinth.ordinal";
/// Tag key holding the hash of what defines a node of its role (never counts).
pub const TAG_SPEC_HASH: &str = "plinth.spec-hash";

/// Tags owning a resource for `cluster` with `role`.
pub fn owner_tags(cluster: &str, role: &str) -> provider_core::Tags {
    [
        (TAG_CLUSTER.to_string(), cluster.to_string()),
        (TAG_ROLE.to_string(), role.to_string()),
    ]
    .into()
}
