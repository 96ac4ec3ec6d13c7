//! Layers: behaviour wrapped around any provider, as OpenDAL's layers and
//! object_store's wrappers are, instead of code repeated in every backend.
//!
//! A [`Layer`] sees each call as an [`Operation`] and a closure that performs it (and can
//! perform it again, for retries). [`Layered`] applies a layer to every method of a
//! provider. Stack them by wrapping `Arc<dyn Provider>`s:
//!
//! ```
//! use std::sync::Arc;
//! use provider_core::layer::{Instrumented, Layered, RateLimit, Retry};
//! use provider_core::memory::MemoryProvider;
//! use provider_core::Provider;
//!
//! let metrics = Instrumented::new();
//! let base: Arc<dyn Provider> = Arc::new(MemoryProvider::default());
//! let p: Arc<dyn Provider> = Arc::new(Layered::new(base, metrics.clone()));
//! let p: Arc<dyn Provider> = Arc::new(Layered::new(p, Retry::default()));
//! let p: Arc<dyn Provider> = Arc::new(Layered::new(p, RateLimit::per_second(20)));
//! assert_eq!(p.name(), "memory");
//! ```

mod fault_injecting;
mod instrumented;
mod rate_limit;
mod retry;

use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;

pub use fault_injecting::{Fault, FaultInjecting, FaultPlan};
pub use instrumented::{Instrumented, OperationStats, Snapshot};
pub use rate_limit::RateLimit;
pub use retry::Retry;

use crate::model::*;
use crate::{
    Capabilities, FloatingIps, Instances, LoadBalancers, Operation, Provider, ProviderExt, Result,
    SecurityGroups, Volumes,
};

/// Behaviour around every provider call.
#[async_trait]
pub trait Layer: Send + Sync + std::fmt::Debug {
    /// Runs the call `f` for `op`, as often as the layer decides (at least zero times).
    async fn call<T, F, Fut>(&self, op: Operation, f: F) -> Result<T>
    where
        T: Send,
        F: FnMut() -> Fut + Send,
        Fut: Future<Output = Result<T>> + Send;
}

/// A provider with a layer around every call. It implements [`Provider`] and every
/// family trait, and has a family exactly when the provider inside has it.
#[derive(Debug)]
pub struct Layered<L> {
    inner: Arc<dyn Provider>,
    layer: L,
}

impl<L: Layer> Layered<L> {
    /// Wraps `inner` in `layer`.
    pub fn new(inner: Arc<dyn Provider>, layer: L) -> Self {
        Self { inner, layer }
    }

    /// The layer, e.g. to read an [`Instrumented`] snapshot.
    pub fn layer(&self) -> &L {
        &self.layer
    }

    /// The wrapped provider.
    pub fn inner(&self) -> &Arc<dyn Provider> {
        &self.inner
    }
}

macro_rules! layered {
    (
        core { $($cv:ident = $ck:ident $cm:ident ($($ca:ident : [$($ct:tt)*] $(as $co:ty)?),*) -> [$($cr:tt)*];)* }
        families { $(
            $fam:ident $acc:ident $label:literal {
                $($v:ident = $k:ident $m:ident ($($a:ident : [$($t:tt)*] $(as $o:ty)?),*) -> [$($r:tt)*];)*
            }
        )* }
    ) => {
        #[async_trait]
        impl<L: Layer> Provider for Layered<L> {
            fn name(&self) -> &str {
                self.inner.name()
            }

            fn capabilities(&self) -> Capabilities {
                self.inner.capabilities()
            }

            $(
                async fn $cm(&self, $($ca: $($ct)*),*) -> Result<$($cr)*> {
                    self.layer
                        .call(Operation::$cv, || self.inner.$cm($($ca),*))
                        .await
                }
            )*

            // The layer has a family exactly when the provider inside has it.
            $(
                fn $acc(&self) -> Option<&dyn $fam> {
                    self.inner.$acc().map(|_| self as &dyn $fam)
                }
            )*
        }

        $(
            #[async_trait]
            impl<L: Layer> $fam for Layered<L> {
                $(
                    async fn $m(&self, $($a: $($t)*),*) -> Result<$($r)*> {
                        self.layer
                            .call(Operation::$v, || ProviderExt::$m(&*self.inner, $($a),*))
                            .await
                    }
                )*
            }
        )*
    };
}

crate::for_each_operation!(layered);
