//! The final evaluation of a finished training (docs/protocol.md#the-final-evaluation): the attack
//! table, its progress in the events, and `final-progress.json` after every batch, so a stopped
//! evaluation goes on from the next batch not done (docs/run-folder.md#final-progressjson), and
//! `per-image.json` once it is complete (docs/run-folder.md#per-imagejson).
use super::attack_table::{AttackTable, Progress, Tally};
use super::error::{Failure, RunError, StopPoint};
use super::Run;
use crate::store::events::Event;
use crate::store::result::FinalTable;
use crate::store::FINAL_PROGRESS_FILE;
use std::path::Path;

impl Run<'_> {
    /// The final attack table of the evaluated network; a stop request ends it within the attack
    /// running (its batch is done again when the run resumes).
    pub(super) fn final_table(&mut self) -> Result<FinalTable, RunError> {
        let table = AttackTable::for_job(self.cfg);
        let progress_file = self.store.path(FINAL_PROGRESS_FILE);
        let (from, damaged) = read_final_progress(&progress_file);
        if let Some(problem) = damaged {
            self.emit(Event::Warning {
                message: format!(
                    "{}: unreadable ({problem}); the final evaluation starts over",
                    progress_file.display()
                ),
            })?;
        }
        // The evaluated network, borrowing only the fields it needs, so the observer can be
        // borrowed too.
        let net = self.method.evaluated().unwrap_or(&self.net);
        let (store, observer, stop) = (&self.store, &mut *self.observer, &self.stop);
        // The attacks ask the stop flag between their iterations too, not only between attacks.
        let _watch = crate::attacks::interrupt::watch({
            let stop = stop.clone();
            move || stop.requested()
        });
        let evaluation = table.run(net, &self.data.test, from, &mut |progress| {
            let event = match progress {
                Progress::Attack {
                    attack,
                    batch,
                    batches,
                } => {
                    if stop.requested() {
                        return Err(RunError::from(StopPoint::FinalEvaluation { batch }));
                    }
                    Event::FinalAttack {
                        attack,
                        batch,
                        batches,
                    }
                }
                Progress::Batch {
                    images_done,
                    images,
                    table,
                    tally,
                } => {
                    let bytes = serde_json::to_vec(&tally).unwrap_or_default();
                    crate::store::write_atomically(&progress_file, &bytes)
                        .map_err(Failure::from)?;
                    Event::FinalBatch {
                        images_done,
                        images,
                        table: *table,
                    }
                }
            };
            store
                .append_events(std::slice::from_ref(&event))
                .map_err(Failure::from)?;
            observer.observe(&event);
            Ok(())
        })?;
        // Written before the progress file goes, so a kill in between finds the whole tally again.
        self.store
            .write_per_image(&evaluation.per_image)
            .map_err(Failure::from)?;
        // Done: nothing to go on from any more.
        let _ = std::fs::remove_file(&progress_file);
        Ok(evaluation.table)
    }
}

/// The tally of a final evaluation a stop interrupted, to go on from, and what was wrong with the
/// file if it could not be read: then the evaluation starts over (it costs time, never a wrong
/// table).
fn read_final_progress(path: &Path) -> (Tally, Option<String>) {
    let Ok(bytes) = std::fs::read(path) else {
        return (Tally::default(), None);
    };
    match serde_json::from_slice(&bytes) {
        Ok(tally) => (tally, None),
        Err(e) => (Tally::default(), Some(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_damaged_final_progress_file_starts_the_evaluation_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FINAL_PROGRESS_FILE);
        assert_eq!(read_final_progress(&path), (Tally::default(), None));
        std::fs::write(
            &path,
            br#"{"settings": null, "batches": 3, "images": 12, "correct": {"#,
        )
        .unwrap();
        let (tally, damaged) = read_final_progress(&path);
        assert_eq!(tally.batches(), 0);
        assert!(damaged.is_some());
        std::fs::write(
            &path,
            br#"{"settings":null,"batches":3,"images":12,"correct":{},"sub_attacks":{},"seconds":{}}"#,
        )
        .unwrap();
        assert_eq!(read_final_progress(&path).0.batches(), 3);
    }
}
