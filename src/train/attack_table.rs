//! The final attack table (docs/protocol.md#the-final-evaluation): clean accuracy and the final
//! attacks asked for (the vocabulary's `FinalAttack`, each run by its `attacks::final_table_attack`)
//! on the test set, in eval mode, batch by batch, with the time each attack took and the sanity
//! flags reviewers look for. The same table follows training and `adarat eval` on any checkpoint.
use crate::attacks::autoattack::SubAttack;
use crate::attacks::final_table::{MemberEvent, TableBatch, TableSettings};
use crate::config::{Augment, AutoAttackPreset, JobConfig};
use crate::data::Dataset;
use crate::models::Network;
use crate::store::per_image::{Bits, PerImage};
use crate::store::result::{FinalTable, SubAttackRow};
use crate::streams::{self, Purpose};
use crate::vocab::FinalAttack;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;
use tch::{Kind, Tensor};

/// How the table is made; also saved in `final-progress.json` (docs/run-folder.md#final-progressjson).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttackTable {
    pub attacks: Vec<FinalAttack>,
    pub epsilon: f64,
    pub step_size: f64,
    pub cw_steps: usize,
    pub cw_margin: f64,
    pub autoattack: AutoAttackPreset,
    /// Seeds every attack's randomness, per batch and attack, so a table can be repeated.
    pub seed: u64,
    pub batch_size: usize,
    /// The test images' augmentation: the reference's CIFAR-10 random crop under
    /// `protocol: reference` (docs/protocol.md Q3), else none.
    pub augment: Augment,
    /// Only the first N test images (`evaluation.final_images`); all when None.
    pub images: Option<usize>,
}

/// A stop request ended an attack on batch `batch` (1-indexed) before it finished: that batch
/// counts for nothing, and an evaluation that goes on starts again from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interrupted {
    pub batch: usize,
}

/// What the evaluation reports while it runs.
#[derive(Clone, Debug)]
pub enum Progress {
    /// `attack` (`pgd20`, `autoattack/apgd-t`, …) starts on batch `batch` of `batches` (1-indexed).
    Attack {
        attack: String,
        batch: usize,
        batches: usize,
    },
    /// A batch is done: the table over the images so far, and the tally to go on from after a
    /// stop.
    Batch {
        images_done: usize,
        images: usize,
        table: Box<FinalTable>,
        tally: Box<Tally>,
    },
}

/// A finished table and the per-image records its accuracies were counted from
/// (docs/run-folder.md#per-imagejson).
#[derive(Clone, Debug)]
pub struct Evaluation {
    pub table: FinalTable,
    pub per_image: PerImage,
}

/// A gap this large between PGD-20 and AutoAttack means PGD is being misled (docs/protocol.md#sanity-flags).
const AUTOATTACK_GAP_FLAG: f64 = 5.0;

impl AttackTable {
    pub fn for_job(cfg: &JobConfig) -> AttackTable {
        AttackTable {
            attacks: cfg.evaluation.final_attacks.clone(),
            epsilon: cfg.attack.epsilon,
            step_size: cfg.attack.step_size,
            cw_steps: cfg.evaluation.cw_steps,
            cw_margin: cfg.evaluation.cw_margin,
            autoattack: cfg.evaluation.autoattack,
            seed: cfg.seed,
            batch_size: cfg.evaluation.batch_size,
            augment: super::evaluate::test_augment(cfg),
            images: cfg.evaluation.final_images,
        }
    }

    fn wants(&self, attack: FinalAttack) -> bool {
        self.attacks.contains(&attack)
    }

    fn settings(&self) -> TableSettings {
        TableSettings {
            epsilon: self.epsilon,
            step_size: self.step_size,
            cw_steps: self.cw_steps,
            cw_margin: self.cw_margin,
            autoattack: self.autoattack,
        }
    }

    /// Evaluates `net` in eval mode on `test`, going on from `from` (the tally of the batches
    /// already done, [`Tally::default`] to start). `progress` may end the evaluation early by
    /// returning an error (a stop request, a failed write), which is passed on. A stop request
    /// watched on this thread (`attacks::interrupt`) ends a long attack within its iterations:
    /// the batch is then dropped, whatever it had, and `Interrupted` is returned.
    pub fn run<E: From<Interrupted>>(
        &self,
        net: &Network,
        test: &Dataset,
        from: Tally,
        progress: &mut dyn FnMut(Progress) -> Result<(), E>,
    ) -> Result<Evaluation, E> {
        let eval = |x: &Tensor| net.forward_t(x, false);
        let test = &test.first(self.images);
        let images = test.len();
        let batches = images.div_ceil(self.batch_size.max(1));
        let mut tally = if from.made_by(self) {
            from
        } else {
            Tally::default()
        };
        tally.settings = Some(self.clone());
        let mut test_batches = test.batches(self.batch_size, false, self.augment);
        let settings = self.settings();
        for index in 0..batches {
            // Seeded per batch, so a random test crop (`protocol: reference`) is the same
            // whether or not the batches before it were evaluated in this process.
            tch::manual_seed(streams::torch_seed(
                self.seed,
                Purpose::TableCrop,
                index as u64,
            ));
            let Some(batch) = test_batches.next() else {
                break;
            };
            if index < tally.batches {
                continue;
            }
            let (x, y) = (&batch.images, &batch.labels);
            let mut starting = |attack: String| {
                progress(Progress::Attack {
                    attack,
                    batch: index + 1,
                    batches,
                })
            };
            let clean_correct =
                crate::thread_modes::no_grad(|| eval(x).argmax(-1, false).eq_tensor(y));
            let mut records = vec![("clean".to_string(), host_bools(&clean_correct))];
            for attack in FinalAttack::ALL.iter().copied().filter(|a| self.wants(*a)) {
                starting(attack.to_string())?;
                let started = Instant::now();
                tch::manual_seed(attack_seed(
                    self.seed,
                    Purpose::TableAttack,
                    index,
                    attack as usize,
                ));
                let member_seed =
                    |member: usize| attack_seed(self.seed, Purpose::TableMember, index, member);
                let batch = TableBatch {
                    eval: &eval,
                    images: x,
                    labels: y,
                    clean_correct: &clean_correct,
                    settings: &settings,
                    member_seed: &member_seed,
                };
                let correct =
                    crate::attacks::final_table_attack(attack).correct(&batch, &mut |event| {
                        match event {
                            MemberEvent::Starting(member) => starting(format!("{attack}/{member}")),
                            MemberEvent::Finished {
                                member,
                                fooled,
                                elapsed,
                            } => {
                                tally.sub_attack(member, fooled, elapsed.as_secs_f64());
                                Ok(())
                            }
                        }
                    })?;
                if crate::attacks::interrupt::requested() {
                    return Err(E::from(Interrupted { batch: index + 1 }));
                }
                // Read before the clock stops, which makes the timing honest on a GPU.
                records.push((attack.to_string(), host_bools(&correct)));
                *tally.seconds.entry(attack.to_string()).or_default() +=
                    started.elapsed().as_secs_f64();
            }
            tally.records.push_batch(y.size()[0] as usize, records);
            tally.batches = index + 1;
            progress(Progress::Batch {
                images_done: tally.records.images(),
                images,
                table: Box::new(self.table(&tally)),
                tally: Box::new(tally.clone()),
            })?;
        }
        Ok(Evaluation {
            table: self.table(&tally),
            per_image: tally.records,
        })
    }

    /// Every accuracy is counted from the per-image records (docs/protocol.md#the-final-evaluation).
    fn table(&self, tally: &Tally) -> FinalTable {
        let records = &tally.records;
        let images = records.images().max(1) as f64;
        let percent = |bits: &Bits| 100.0 * bits.count() as f64 / images;
        let accuracy = |name: &str| records.correct(name).map(percent);
        let autoattack_steps = if self.wants(FinalAttack::AutoAttack) {
            // A point left robust after a sub-attack stays counted by the later ones.
            let mut correct = records.correct("clean").map_or(0.0, |b| b.count() as f64);
            SubAttack::ALL
                .iter()
                .map(|sub| {
                    let (fooled, seconds) = tally
                        .sub_attacks
                        .get(sub.name())
                        .copied()
                        .unwrap_or((0.0, 0.0));
                    correct -= fooled;
                    SubAttackRow {
                        attack: sub.name().to_string(),
                        accuracy: 100.0 * correct / images,
                        seconds,
                    }
                })
                .collect()
        } else {
            Vec::new()
        };
        let mut table = FinalTable {
            clean: accuracy("clean"),
            accuracies: (self.attacks.iter())
                .filter_map(|a| Some((*a, accuracy(a.as_str())?)))
                .collect(),
            worst_case: (!self.attacks.is_empty())
                .then(|| records.worst_case())
                .flatten()
                .map(|bits| percent(&bits)),
            autoattack_preset: self
                .wants(FinalAttack::AutoAttack)
                .then(|| self.autoattack.to_string()),
            autoattack_steps,
            images: Some(records.images()),
            epsilon: Some(self.epsilon),
            seed: Some(self.seed),
            seconds: tally.seconds.clone(),
            flags: Vec::new(),
        };
        table.flags = sanity_flags(&table);
        table
    }
}

/// The seed of slot `slot` (an attack's place in the vocabulary, or an ensemble's member) on test
/// batch `batch`: its own stream, independent of what ran before, so a batch can be redone
/// (docs/protocol.md#random-streams).
fn attack_seed(seed: u64, purpose: Purpose, batch: usize, slot: usize) -> i64 {
    debug_assert!(slot < SLOTS_PER_BATCH, "slot {slot}");
    streams::torch_seed(seed, purpose, (batch * SLOTS_PER_BATCH + slot) as u64)
}

/// The stream indices of one batch: room for more attacks (and members) than there are.
const SLOTS_PER_BATCH: usize = 64;

/// The counts of the batches done so far: the points each attack left correct (one bit per image),
/// AutoAttack's fooled points and seconds per sub-attack, seconds per attack. Saved after each
/// batch, so that a stopped final evaluation goes on where it was.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Tally {
    /// The table's settings it was made with; a tally of other settings (or of none: a file from
    /// before they were recorded) is not gone on from.
    #[serde(default)]
    settings: Option<AttackTable>,
    batches: usize,
    /// `images` and `correct` (per attack name, hex bits as in `per-image.json`).
    #[serde(flatten)]
    records: PerImage,
    sub_attacks: BTreeMap<String, (f64, f64)>,
    seconds: BTreeMap<String, f64>,
}

/// A batch's `correct` (bool `[B]`) on the host, in one read.
fn host_bools(correct: &Tensor) -> Vec<bool> {
    let points = correct.numel();
    let mut bools = vec![false; points];
    correct.to_kind(Kind::Bool).copy_data(&mut bools, points);
    bools
}

impl Tally {
    /// Whether `table` goes on from this tally: made with its settings and holding a record of
    /// clean and each of its attacks for every image done, so that the per-image records it ends
    /// with are whole.
    fn made_by(&self, table: &AttackTable) -> bool {
        let names: BTreeSet<&str> = std::iter::once("clean")
            .chain(table.attacks.iter().map(|a| a.as_str()))
            .collect();
        self.settings.as_ref() == Some(table)
            && (self.batches == 0 || self.records.records().map(|(name, _)| name).eq(names))
    }

    /// Batches done.
    pub fn batches(&self) -> usize {
        self.batches
    }

    fn sub_attack(&mut self, member: &str, fooled: usize, seconds: f64) {
        let entry = self.sub_attacks.entry(member.to_string()).or_default();
        entry.0 += fooled as f64;
        entry.1 += seconds;
    }
}

/// Signs of gradient masking (docs/protocol.md#sanity-flags): a one-step attack beating the iterative ones, Square
/// (black-box) fooling points the white-box attacks missed, AutoAttack far below PGD-20.
pub fn sanity_flags(table: &FinalTable) -> Vec<String> {
    let mut flags = Vec::new();
    // Against the strongest PGD: PGD-10 with a small step may not reach the ε-ball's corners
    // that FGSM's single step of ε reaches, which is no sign of masking.
    let pgds = [FinalAttack::Pgd10, FinalAttack::Pgd20, FinalAttack::Pgd50];
    let strongest = pgds
        .iter()
        .filter_map(|pgd| Some((pgd.info().label, table.accuracy(*pgd)?)))
        .min_by(|a, b| a.1.total_cmp(&b.1));
    let fgsm = table.accuracy(FinalAttack::Fgsm);
    if let (Some(fgsm), Some((name, pgd))) = (fgsm, strongest) {
        if fgsm < pgd {
            flags.push(format!(
                "FGSM accuracy {fgsm:.2} is below every PGD's ({name}: {pgd:.2}): a one-step attack beats iterative ones (gradient masking?)"
            ));
        }
    }
    let before_square = table.autoattack_steps.iter().rev().nth(1);
    if let (Some(before), Some(square)) = (before_square, table.autoattack_steps.last()) {
        if square.attack == SubAttack::Square.name() && square.accuracy < before.accuracy {
            flags.push(format!(
                "Square (black-box) lowered robust accuracy from {:.2} to {:.2} on points the white-box attacks missed (gradient masking?)",
                before.accuracy, square.accuracy
            ));
        }
    }
    let aa = table.accuracy(FinalAttack::AutoAttack);
    if let (Some(aa), Some(pgd20)) = (aa, table.accuracy(FinalAttack::Pgd20)) {
        if pgd20 - aa > AUTOATTACK_GAP_FLAG {
            flags.push(format!(
                "AutoAttack {aa:.2} is {:.2} points below PGD-20 {pgd20:.2}: PGD is misled (gradient masking?)",
                pgd20 - aa
            ));
        }
    }
    flags
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::result::AttackAccuracies;

    /// FGSM, PGD-10/20/50 and AutoAttack.
    fn accuracies(values: &[f64; 5]) -> AttackAccuracies {
        use FinalAttack::*;
        [Fgsm, Pgd10, Pgd20, Pgd50, AutoAttack]
            .into_iter()
            .zip(values.iter().copied())
            .collect()
    }

    fn row(attack: &str, accuracy: f64) -> SubAttackRow {
        SubAttackRow {
            attack: attack.into(),
            accuracy,
            seconds: 0.0,
        }
    }

    #[test]
    fn flags_name_each_sign_of_gradient_masking() {
        let honest = FinalTable {
            accuracies: accuracies(&[55.0, 50.0, 49.0, 48.5, 46.0]),
            autoattack_steps: vec![
                row("apgd-ce", 47.0),
                row("apgd-t", 46.2),
                row("fab-t", 46.0),
                row("square", 46.0),
            ],
            ..FinalTable::default()
        };
        assert!(sanity_flags(&honest).is_empty());

        let masked = FinalTable {
            accuracies: accuracies(&[40.0, 50.0, 49.0, 48.5, 30.0]),
            autoattack_steps: vec![
                row("apgd-ce", 45.0),
                row("apgd-t", 44.0),
                row("fab-t", 44.0),
                row("square", 30.0),
            ],
            ..honest.clone()
        };
        let flags = sanity_flags(&masked);
        assert_eq!(flags.len(), 3, "{flags:?}");
        assert!(flags[0].contains("FGSM accuracy 40.00 is below every PGD's (PGD-50: 48.50)"));
        // FGSM beating PGD-10 alone is no sign: a small step may not reach the ball's corners.
        let short_steps = FinalTable {
            accuracies: accuracies(&[49.5, 50.0, 49.0, 48.5, 46.0]),
            ..honest.clone()
        };
        assert!(sanity_flags(&short_steps).is_empty());
        assert!(flags[1].contains("from 44.00 to 30.00"));
        assert!(flags[2].contains("19.00 points below PGD-20"));
    }

    #[test]
    fn seeds_differ_per_batch_and_attack() {
        let seeds: std::collections::BTreeSet<i64> = (0..40)
            .flat_map(|batch| (0..10).map(move |slot| (batch, slot)))
            .flat_map(|(batch, slot)| {
                [Purpose::TableAttack, Purpose::TableMember]
                    .map(|purpose| attack_seed(1, purpose, batch, slot))
            })
            .collect();
        assert_eq!(seeds.len(), 800);
    }
}
