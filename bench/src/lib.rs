//! # bench: Plinth's benchmark harness
//!
//! `cargo run -p bench` (binary `plinth-bench`) measures, and prints as one table, each
//! scenario of issue 13 against the limit computed for it from the same numbers:
//!
//! - bring-up of the seed topology (1 master, 3 nodes, 2 storage nodes, 3 AZs, a
//!   floating IP, two load balancers) and of 3+30+6, against the plan DAG's critical
//!   path; 3+300+12 under a client-side rate limit, against max(critical path, calls /
//!   rate); rolling replacement of 30 nodes with surge 1 and 3, against the critical path
//!   of the replacement plan: [`scenario`], on the simulated cloud of [`cloud`];
//! - plan + diff of 10,000 nodes, time and peak heap: [`planning`], measured with the
//!   counting allocator of [`alloc`];
//! - provider-local's load balancer against a direct connection to a node: [`lb`].
//!
//! The parts:
//!
//! - [`model`]: the limits: each action's minimal calls and fixed waits, the critical
//!   path of a DAG, the minimal calls of a bring-up from resource counts.
//! - [`cloud`]: the simulated cloud: the memory provider behind provider-core's
//!   `FaultInjecting` (latency per call, boot time per instance), `Instrumented` and
//!   `RateLimit` layers.
//! - [`record`]: an executor observer that records the DAG that ran, its wall time and
//!   its calls.
//! - [`scenario`], [`planning`], [`lb`]: the measurements, each giving table rows.
//! - [`report`]: the rows and the table.
//! - [`suite`]: every scenario in order, with the costs used.
//! - [`alloc`]: the counting global allocator.
//! - [`error`]: the harness's [`Error`].

pub mod alloc;
pub mod cloud;
pub mod error;
pub mod lb;
pub mod model;
pub mod planning;
pub mod record;
pub mod report;
pub mod scenario;
pub mod suite;

pub use error::{Error, Result};
