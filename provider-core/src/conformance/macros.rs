//! Macros shared by the check modules.

/// Fails the check with a formatted reason unless `cond` holds.
macro_rules! ensure {
    ($cond:expr, $($arg:tt)+) => {
        if !$cond {
            return Err($crate::conformance::CheckFailure::Failed(format!($($arg)+)));
        }
    };
}

/// Defines a public check `name` whose body is the private `async fn body(cx: &Ctx)`:
/// `check! { /// docs  name => body }`.
///
/// The generated function gives the body a fresh [`Ctx`](super::ctx::Ctx), skips it when
/// the provider lacks the check's family, runs it (bounded by the config's
/// `check_timeout`, a panic failing it), then always sweeps what the check created, and
/// folds a cleanup failure into the outcome.
macro_rules! check {
    ($(#[$meta:meta])* $name:ident => $body:ident) => {
        $(#[$meta])*
        pub async fn $name(
            provider: &dyn $crate::Provider,
            config: &$crate::conformance::ConformanceConfig,
        ) -> $crate::conformance::CheckResult {
            let cx = $crate::conformance::ctx::Ctx::new(provider, config, stringify!($name));
            let outcome = match cx.require_own_family() {
                Ok(()) => cx.bounded($body(&cx)).await,
                Err(skip) => Err(skip),
            };
            cx.finish(outcome).await
        }
    };
}
