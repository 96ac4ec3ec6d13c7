//! Recording a run: an [`Observer`] that keeps every action the executor started (with
//! its dependencies, so the DAG that ran can be measured against), when the first one
//! started and the last one ended, and how many calls reached the cloud in between.

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use cluster::plan::PlannedAction;
use cluster::{Error, Observer};
use provider_core::layer::Instrumented;

/// What a [`Recorder`] saw.
#[derive(Debug, Clone, Default)]
pub struct Recording {
    /// Every action started, in id order.
    pub actions: Vec<PlannedAction>,
    /// From the first action's start to the last one's end.
    pub wall: Duration,
    /// Calls that reached the cloud in that time.
    pub calls: u64,
    /// Actions that failed.
    pub failed: usize,
}

#[derive(Debug, Default)]
struct State {
    actions: Vec<PlannedAction>,
    first: Option<(Instant, u64)>,
    last: Option<(Instant, u64)>,
    failed: usize,
}

/// Records the executor's runs (see the [module docs](self)).
#[derive(Debug)]
pub struct Recorder {
    metrics: Instrumented,
    state: Mutex<State>,
}

impl Recorder {
    /// A recorder reading the call counts of `metrics`.
    pub fn new(metrics: Instrumented) -> Self {
        Self {
            metrics,
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What it saw so far; starts afresh.
    pub fn take(&self) -> Recording {
        let st = std::mem::take(&mut *self.lock());
        let mut actions = st.actions;
        actions.sort_by_key(|a| a.id);
        let (wall, calls) = match (st.first, st.last) {
            (Some((t0, c0)), Some((t1, c1))) => (t1.saturating_duration_since(t0), c1 - c0),
            _ => (Duration::ZERO, 0),
        };
        Recording {
            actions,
            wall,
            calls,
            failed: st.failed,
        }
    }
}

impl Observer for Recorder {
    fn started(&self, action: &PlannedAction) {
        let calls = self.metrics.snapshot().total_calls();
        let mut st = self.lock();
        st.first.get_or_insert((Instant::now(), calls));
        st.actions.push(action.clone());
    }

    fn finished(&self, _action: &PlannedAction, error: Option<&Error>) {
        let calls = self.metrics.snapshot().total_calls();
        let mut st = self.lock();
        st.last = Some((Instant::now(), calls));
        if error.is_some() {
            st.failed += 1;
        }
    }
}
