//! What a run of the kit reports: one outcome per check, printed as a table.

use std::fmt;
use std::time::Duration;

use crate::Family;

/// How one check ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The provider kept the contract.
    Passed,
    /// The provider broke the contract (or the cleanup failed), with the reason.
    Failed(String),
    /// The check did not apply, with the reason.
    Skipped(String),
}

impl Outcome {
    /// Whether the check passed.
    pub fn is_passed(&self) -> bool {
        matches!(self, Outcome::Passed)
    }

    /// Whether the check failed.
    pub fn is_failed(&self) -> bool {
        matches!(self, Outcome::Failed(_))
    }

    /// Whether the check was skipped.
    pub fn is_skipped(&self) -> bool {
        matches!(self, Outcome::Skipped(_))
    }

    /// The reason of a failure or skip.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Outcome::Passed => None,
            Outcome::Failed(r) | Outcome::Skipped(r) => Some(r),
        }
    }
}

/// One line of a [`Report`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckReport {
    /// The check's name.
    pub name: &'static str,
    /// Its family.
    pub family: Family,
    /// How it ended.
    pub outcome: Outcome,
    /// How long it took, sweep included.
    pub duration: Duration,
}

/// The outcome of every check that ran; prints as a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The provider's [`Provider::name`].
    pub provider: String,
    /// One entry per check, in the order they ran.
    pub checks: Vec<CheckReport>,
}

impl Report {
    /// Whether no check failed (skipped checks do not count against it).
    pub fn is_success(&self) -> bool {
        self.failed() == 0
    }

    /// How many checks passed.
    pub fn passed(&self) -> usize {
        self.checks.iter().filter(|c| c.outcome.is_passed()).count()
    }

    /// How many checks failed.
    pub fn failed(&self) -> usize {
        self.checks.iter().filter(|c| c.outcome.is_failed()).count()
    }

    /// How many checks were skipped.
    pub fn skipped(&self) -> usize {
        self.checks
            .iter()
            .filter(|c| c.outcome.is_skipped())
            .count()
    }

    /// The outcome of the check called `name`, if it ran.
    pub fn outcome(&self, name: &str) -> Option<&Outcome> {
        self.checks
            .iter()
            .find(|c| c.name == name)
            .map(|c| &c.outcome)
    }

    /// The checks that failed.
    pub fn failures(&self) -> impl Iterator<Item = &CheckReport> {
        self.checks.iter().filter(|c| c.outcome.is_failed())
    }

    /// The checks that were skipped, in the order they ran.
    pub fn skips(&self) -> impl Iterator<Item = &CheckReport> {
        self.checks.iter().filter(|c| c.outcome.is_skipped())
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "conformance of provider `{}`: {} checks, {} passed, {} failed, {} skipped",
            self.provider,
            self.checks.len(),
            self.passed(),
            self.failed(),
            self.skipped()
        )?;
        let name_w = self
            .checks
            .iter()
            .map(|c| c.name.len())
            .max()
            .unwrap_or(0)
            .max(5);
        let fam_w = self
            .checks
            .iter()
            .map(|c| c.family.to_string().len())
            .max()
            .unwrap_or(0)
            .max(6);
        writeln!(
            f,
            "{:<name_w$}  {:<fam_w$}  {:<7}  {:>9}  REASON",
            "CHECK", "FAMILY", "RESULT", "TIME"
        )?;
        for c in &self.checks {
            let (result, reason) = match &c.outcome {
                Outcome::Passed => ("passed", ""),
                Outcome::Failed(r) => ("FAILED", r.as_str()),
                Outcome::Skipped(r) => ("skipped", r.as_str()),
            };
            let time = format!("{:.3}s", c.duration.as_secs_f64());
            writeln!(
                f,
                "{:<name_w$}  {:<fam_w$}  {:<7}  {:>9}  {}",
                c.name, c.family, result, time, reason
            )?;
        }
        Ok(())
    }
}
