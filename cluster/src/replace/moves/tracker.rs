//! The observer that follows a run's moves node by node.

use super::*;

/// Follows a run's moves: tells the cluster's observer each node's steps (besides every
/// action) and times each move.
pub(crate) struct Tracker<'a> {
    inner: &'a dyn Observer,
    moves: &'a [Move],
    by_action: HashMap<usize, Vec<usize>>,
    times: Mutex<HashMap<usize, (Instant, Option<Duration>)>>,
}

impl<'a> Tracker<'a> {
    pub(crate) fn new(inner: &'a dyn Observer, moves: &'a [Move]) -> Self {
        let mut by_action: HashMap<usize, Vec<usize>> = HashMap::new();
        for (k, m) in moves.iter().enumerate() {
            for a in &m.actions {
                by_action.entry(*a).or_default().push(k);
            }
        }
        Self {
            inner,
            moves,
            by_action,
            times: Mutex::new(HashMap::new()),
        }
    }

    fn each(&self, action: usize, mut f: impl FnMut(usize, &Move)) {
        for k in self.by_action.get(&action).into_iter().flatten() {
            f(*k, &self.moves[*k]);
        }
    }

    /// The moves whose every action is in `done`, with the time each took.
    pub(crate) fn finished(&self, done: &BTreeSet<usize>) -> Vec<Replaced> {
        let times = self.times.lock().unwrap_or_else(|p| p.into_inner());
        self.moves
            .iter()
            .enumerate()
            .filter(|(_, m)| m.actions.iter().all(|a| done.contains(a)))
            .map(|(k, m)| Replaced {
                old: m.old.clone(),
                new: m.new.clone(),
                role: m.role.clone(),
                availability_zone: m.availability_zone.clone(),
                took: times.get(&k).and_then(|t| t.1).unwrap_or_default(),
            })
            .collect()
    }
}

impl Observer for Tracker<'_> {
    fn started(&self, action: &PlannedAction) {
        self.inner.started(action);
        self.each(action.id, |k, m| {
            self.times
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(k)
                .or_insert((Instant::now(), None));
            for (_, step) in m.on_start.iter().filter(|(a, _)| *a == action.id) {
                self.inner.replacing(&m.old, &m.new, step);
            }
        });
    }

    fn finished(&self, action: &PlannedAction, error: Option<&Error>) {
        self.inner.finished(action, error);
        self.each(action.id, |k, m| match error {
            Some(e) => {
                let step = Step::Failed(e.to_string());
                self.inner.replacing(&m.old, &m.new, &step);
            }
            None => {
                for (_, step) in m.on_end.iter().filter(|(a, _)| *a == action.id) {
                    self.inner.replacing(&m.old, &m.new, step);
                }
                if m.last() == Some(action.id) {
                    if let Some(t) = self
                        .times
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .get_mut(&k)
                    {
                        t.1 = Some(t.0.elapsed());
                    }
                }
            }
        });
    }

    fn replacing(&self, old: &str, new: &str, step: &Step) {
        self.inner.replacing(old, new, step);
    }
}
