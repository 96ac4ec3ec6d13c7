//! A mockall mock of [`Provider`](crate::Provider) with every family, for unit tests of
//! code that drives one: set expectations with `expect_<operation>`.
//!
//! ```
//! use provider_core::mock::MockProvider;
//! use provider_core::{AvailabilityZone, Provider};
//!
//! # tokio_test_block_on(async {
//! let mut mock = MockProvider::new();
//! mock.expect_list_availability_zones().times(1).returning(|| {
//!     Ok(vec![AvailabilityZone { name: "az1".into(), available: true }])
//! });
//! let zones = mock.list_availability_zones().await.unwrap();
//! assert_eq!(zones[0].name, "az1");
//! # });
//! # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
//! # }
//! ```

use async_trait::async_trait;

use crate::model::*;
use crate::{
    Capabilities, FloatingIps, Instances, LoadBalancers, Provider, Result, SecurityGroups, Volumes,
};

macro_rules! mock_provider {
    (
        core { $($cv:ident = $ck:ident $cm:ident ($($ca:ident : [$($ct:tt)*] $(as $co:ty)?),*) -> [$($cr:tt)*];)* }
        families { $(
            $fam:ident $acc:ident $label:literal {
                $($v:ident = $k:ident $m:ident ($($a:ident : [$($t:tt)*] $(as $o:ty)?),*) -> [$($r:tt)*];)*
            }
        )* }
    ) => {
        /// Every operation in one trait, because mockall mocks the methods of a trait it
        /// is given, while the families are reached through accessors it cannot write.
        #[async_trait]
        trait Operations {
            fn name(&self) -> &str;
            fn capabilities(&self) -> Capabilities;
            $(async fn $cm(&self, $($ca: $($ct)*),*) -> Result<$($cr)*>;)*
            $($(async fn $m(&self, $($a: $($t)*),*) -> Result<$($r)*>;)*)*
        }

        mockall::mock! {
            /// A mock provider with every family: set expectations with `expect_*`.
            #[derive(Debug)]
            pub Provider {}

            #[async_trait]
            impl Operations for Provider {
                fn name(&self) -> &str;
                fn capabilities(&self) -> Capabilities;
                $(async fn $cm(&self, $($ca: $($ct)*),*) -> Result<$($cr)*>;)*
                $($(async fn $m(&self, $($a: $($t)*),*) -> Result<$($r)*>;)*)*
            }
        }

        #[async_trait]
        impl Provider for MockProvider {
            fn name(&self) -> &str {
                Operations::name(self)
            }

            fn capabilities(&self) -> Capabilities {
                Operations::capabilities(self)
            }

            $(
                async fn $cm(&self, $($ca: $($ct)*),*) -> Result<$($cr)*> {
                    Operations::$cm(self, $($ca),*).await
                }
            )*

            $(
                fn $acc(&self) -> Option<&dyn $fam> {
                    Some(self)
                }
            )*
        }

        $(
            #[async_trait]
            impl $fam for MockProvider {
                $(
                    async fn $m(&self, $($a: $($t)*),*) -> Result<$($r)*> {
                        Operations::$m(self, $($a),*).await
                    }
                )*
            }
        )*
    };
}

crate::for_each_operation!(mock_provider);
