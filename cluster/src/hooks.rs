//! Lifecycle hooks: how an embedding installer takes part in replacement and scaling
//! (join a new node to the platform, drain an old one, say whether a node is healthy).
//!
//! `on_ready` is called once per node that becomes ready, also across a crash and a
//! rerun: when hooks are set, a node is created with [`TAG_READY`] `=` [`READY_PENDING`]
//! (part of the create call, so no node exists without it), and the tag is set to
//! [`READY_DONE`] right after `on_ready` succeeded. A rerun calls `on_ready` for every
//! node still marked pending and never for one marked done. The one window left is a
//! crash after `on_ready` returned and before the tag was written: the rerun calls it
//! again (at-least-once there, as with any marker written after the effect). Nodes
//! created while no hooks were set carry no mark and are never told later.
//!
//! The other hooks may be called more than once for the same node: a rerun after a crash
//! repeats the step it stopped in, so hooks must be idempotent.

use async_trait::async_trait;
use provider_core::Instance;

/// Tag key on a node that records whether the installer was told it is ready (see the
/// [module docs](self)).
pub const TAG_READY: &str = "plinth.ready";
/// [`TAG_READY`]'s value on a node created with hooks set, until `on_ready` succeeded.
pub const READY_PENDING: &str = "pending";
/// [`TAG_READY`]'s value once `on_ready` succeeded.
pub const READY_DONE: &str = "done";

/// An installer's verdict on a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// The node serves.
    Healthy,
    /// The node does not serve, and why.
    Unhealthy(String),
}

/// A hook failed; the run stops and says which hook and why.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct HookError(pub String);

/// Called by [`Cluster`](crate::Cluster)'s `apply` (`on_ready` for the nodes it
/// created), `replace` and `scale` (see [`Cluster::with_hooks`](crate::Cluster::with_hooks)).
/// Every method has a no-op default.
#[async_trait]
pub trait Hooks: Send + Sync {
    /// A new node runs (and, when replacing or scaling, passed the readiness checks and
    /// is not in a load balancer yet).
    async fn on_ready(&self, _node: &Instance) -> Result<(), HookError> {
        Ok(())
    }
    /// An old node is out of its load balancers and about to lose its volumes and go.
    async fn drain(&self, _node: &Instance) -> Result<(), HookError> {
        Ok(())
    }
    /// Whether a node serves, beyond the provider state and the probe.
    async fn health(&self, _node: &Instance) -> Health {
        Health::Healthy
    }
}

/// Hooks that do nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoHooks;

impl Hooks for NoHooks {}
