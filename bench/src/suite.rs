//! The whole benchmark: every scenario in order, one table.

use std::time::Duration;

use crate::error::Result;
use crate::model::Costs;
use crate::report::{Row, Table};
use crate::scenario::{bring_up, replace_nodes, Rate, Topology};

/// The simulated cloud's fixed costs for every executor scenario: small enough that the
/// whole suite stays within a few minutes, large enough that the executor's own work
/// (microseconds an action) does not count.
pub const COSTS: Costs = Costs {
    latency: Duration::from_millis(20),
    boot: Duration::from_millis(500),
    drain: Duration::from_millis(200),
};

/// The client-side rate limit of the rate-limited bring-up: 20 calls/s, bursts of 2
/// (see [`Rate::burst`]).
pub const RATE: Rate = Rate { rate: 20, burst: 2 };

/// A group of scenarios, by the name the command line selects it with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// `seed`: bring-up of the seed topology (1+3+2).
    Seed,
    /// `medium`: bring-up of 3+30+6.
    Medium,
    /// `rate`: bring-up of 3+300+12 under the rate limit.
    RateLimited,
    /// `replace`: rolling replacement of the 30 nodes of 3+30+6, surge 1 and 3 (brings
    /// 3+30+6 up first, measured as `medium`).
    Replace,
    /// `plan`: plan + diff of 10,000 nodes.
    Plan,
    /// `lb`: provider-local's load balancer against a direct connection.
    Lb,
}

impl Part {
    /// Every part, in the order they run.
    pub const ALL: [Part; 6] = [
        Part::Plan,
        Part::Seed,
        Part::Medium,
        Part::Replace,
        Part::RateLimited,
        Part::Lb,
    ];

    /// Its command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Part::Seed => "seed",
            Part::Medium => "medium",
            Part::RateLimited => "rate",
            Part::Replace => "replace",
            Part::Plan => "plan",
            Part::Lb => "lb",
        }
    }

    /// The part named `name`.
    pub fn parse(name: &str) -> Option<Part> {
        Part::ALL.into_iter().find(|p| p.name() == name)
    }
}

/// Runs the `parts` (in [`Part::ALL`] order), telling `progress` about each row as it
/// is measured, and returns the table.
pub async fn run(parts: &[Part], progress: impl Fn(&Row)) -> Result<Table> {
    let mut rows = Vec::new();
    let push = |row: Row, rows: &mut Vec<Row>| {
        progress(&row);
        rows.push(row);
    };
    let has = |p: Part| parts.contains(&p);
    if has(Part::Plan) {
        for row in crate::planning::rows()? {
            push(row, &mut rows);
        }
    }
    if has(Part::Seed) {
        let seed = Topology {
            masters: 1,
            nodes: 3,
            storage: 2,
        };
        let (row, _) = bring_up("bring-up seed 1+3+2", seed, &COSTS, None).await?;
        push(row, &mut rows);
    }
    if has(Part::Medium) || has(Part::Replace) {
        let medium = Topology {
            masters: 3,
            nodes: 30,
            storage: 6,
        };
        let (row, bench) = bring_up("bring-up 3+30+6", medium, &COSTS, None).await?;
        push(row, &mut rows);
        if has(Part::Replace) {
            for surge in [1, 3] {
                let name = format!("replace 30 nodes, surge {surge}");
                let row = replace_nodes(&name, &bench, surge, medium.nodes).await?;
                push(row, &mut rows);
            }
        }
    }
    if has(Part::RateLimited) {
        let large = Topology {
            masters: 3,
            nodes: 300,
            storage: 12,
        };
        let name = format!("bring-up 3+300+12 at {} calls/s", RATE.rate);
        let (row, _) = bring_up(&name, large, &COSTS, Some(RATE)).await?;
        push(row, &mut rows);
    }
    if has(Part::Lb) {
        for row in crate::lb::rows().await? {
            push(row, &mut rows);
        }
    }
    Ok(Table(rows))
}
