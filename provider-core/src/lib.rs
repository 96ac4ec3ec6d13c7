//! # provider-core: the Plinth provider contract
//!
//! One object-safe async [`Provider`] trait (zones, tags, and an accessor per family),
//! one trait per family of resources ([`SecurityGroups`], [`Instances`], [`Volumes`],
//! [`FloatingIps`], [`LoadBalancers`]), [`ProviderExt`] to call any family's operation on
//! any provider, one [`Error`] model, and what every backend shares:
//!
//! - [`for_each_operation!`]: the one table of operations that [`Operation`],
//!   [`ProviderExt`], the layers, the mock and provider-local's wire protocol are
//!   generated from.
//! - [`model`]: specs (what to create, self-validating) and records (what exists), all
//!   tagged; lists filter by [`TagFilter`].
//! - [`config`]: the keys a provider reads from a spec ([`config::ConfigKey`]) and
//!   the one builder shape ([`config::ProviderBuilder`]).
//! - [`error`]: the one error enum, its kinds and [`Error::is_retryable`].
//! - [`wait`]: the shared [`wait::Poller`], per-kind [`wait::Timeouts`], and
//!   [`wait::Watch`], through which concurrent waits of one kind share one probe per
//!   interval.
//! - [`memo`]: [`memo::Memo`], look-ups (images, flavors, networks) made once per provider.
//! - [`layer`]: behaviour around any provider: [`layer::Retry`], [`layer::RateLimit`],
//!   [`layer::Instrumented`], [`layer::FaultInjecting`].
//! - [`memory`]: the in-memory reference provider.
//! - `mock` (feature `mock`): a mockall mock of the trait.
//! - `conformance` (feature `conformance`): the checks every provider runs.
//! - [`guide`]: a provider author's guide: what to depend on, implementing the families a
//!   cloud has, classifying errors, settings and the builder, layers, running the kit
//!   against a real cloud.

pub mod config;
pub mod error;
#[doc = include_str!("../GUIDE.md")]
pub mod guide {}
pub mod layer;
pub mod memo;
pub mod memory;
pub mod model;
mod operation;
mod provider;
pub mod requests;
pub mod wait;

#[cfg(feature = "mock")]
pub mod mock;

#[cfg(feature = "conformance")]
pub mod conformance;

pub use async_trait::async_trait;
pub use error::{Error, ErrorKind, Result};
pub use model::*;
pub use operation::{Family, Operation};
pub use provider::{
    Capabilities, FloatingIps, Instances, LoadBalancers, Provider, ProviderExt, SecurityGroups,
    Volumes,
};

/// What a user of providers imports: `use provider_core::prelude::*;` makes every
/// family's operation callable on `dyn Provider`.
pub mod prelude {
    pub use crate::{Provider, ProviderExt};
}
