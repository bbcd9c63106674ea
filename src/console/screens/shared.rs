//! What every screen reads besides its own state: the latest snapshot, the cursor's job, the seed
//! shown, the selection and the keys (for hints). The app changes it; the screens only read it.
use super::KeyTable;
use crate::console::snapshot::{JobRow, Snapshot};
use crate::vocab::JobName;
use std::collections::BTreeSet;

pub struct Shared {
    pub(crate) keys: KeyTable,
    pub(crate) snapshot: Snapshot,
    pub(crate) cursor: Option<JobName>,
    /// The seed of the cursor's job that the screens show (None: its first).
    pub(crate) seed: Option<u64>,
    pub(crate) selected: BTreeSet<JobName>,
}

impl Shared {
    pub fn keys(&self) -> &KeyTable {
        &self.keys
    }

    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    /// The run under the cursor: the cursor's job with the seed shown.
    pub fn cursor(&self) -> Option<&JobRow> {
        let runs = self.snapshot.runs_of(self.cursor?);
        let shown = runs.iter().find(|row| Some(row.seed) == self.seed);
        shown.or(runs.first()).copied()
    }

    /// The runs of the cursor's job, one per seed.
    pub fn cursor_runs(&self) -> Vec<&JobRow> {
        self.cursor
            .map_or_else(Vec::new, |job| self.snapshot.runs_of(job))
    }

    pub fn is_selected(&self, job: JobName) -> bool {
        self.selected.contains(&job)
    }

    /// The selected jobs that the snapshot knows, in grid order.
    pub fn selection(&self) -> Vec<&JobRow> {
        self.snapshot
            .jobs
            .iter()
            .filter(|row| self.selected.contains(&row.job))
            .collect()
    }
}
