//! AutoAttack, L∞ (Croce & Hein 2020): APGD-CE, APGD-T, FAB-T and Square in turn, each run only
//! on the points every earlier attack left robust, so a point's result is its first success. Two
//! presets: `standard` (100 iterations, the published evaluation) and `torchattacks-3.5.1` (the
//! reference's call of that library with its defaults: 10 iterations, Square's rescaled schedule).
use super::final_table::{FinalTableAttack, MemberEvent, TableBatch};
use super::{Apgd, FabTargeted, Logits, Square};
use crate::config::AutoAttackPreset;
use std::time::Instant;
use tch::Tensor;

/// The sub-attacks, in the order they run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubAttack {
    ApgdCe,
    ApgdT,
    FabT,
    Square,
}

impl SubAttack {
    pub const ALL: [SubAttack; 4] = [
        SubAttack::ApgdCe,
        SubAttack::ApgdT,
        SubAttack::FabT,
        SubAttack::Square,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SubAttack::ApgdCe => "apgd-ce",
            SubAttack::ApgdT => "apgd-t",
            SubAttack::FabT => "fab-t",
            SubAttack::Square => "square",
        }
    }
}

/// Target classes of APGD-T and FAB-T: the 9 runners-up, as standard AutoAttack (and torchattacks'
/// default `n_classes = 10`) use for every dataset.
pub const TARGETS: usize = 9;

/// Float rounding allowed on the L∞ budget when a success is checked.
const BUDGET_SLACK: f64 = 1e-5;

#[derive(Clone, Copy, Debug)]
pub struct AutoAttack {
    pub epsilon: f64,
    pub preset: AutoAttackPreset,
}

impl AutoAttack {
    /// Iterations of APGD-CE, APGD-T and FAB-T.
    pub fn iterations(&self) -> usize {
        match self.preset {
            AutoAttackPreset::Standard => 100,
            AutoAttackPreset::Torchattacks351 => 10,
        }
    }

    /// Attacks the points of `x` that `robust` marks (bool `[B]`, normally the clean-correct ones)
    /// and returns the mask of those still robust after all four. `seed_for(i)` seeds torch's
    /// generator before sub-attack `i`, so a batch's result does not depend on what ran before it;
    /// `report` hears of each sub-attack before and after it runs, and ends the attack with its
    /// error (a stop request) before the next sub-attack.
    pub fn run<E>(
        &self,
        logits: Logits,
        x: &Tensor,
        labels: &Tensor,
        robust: &Tensor,
        seed_for: &dyn Fn(usize) -> i64,
        report: &mut dyn FnMut(MemberEvent) -> Result<(), E>,
    ) -> Result<Tensor, E> {
        let mut robust = robust.to_kind(tch::Kind::Bool);
        let steps = self.iterations();
        for attack in SubAttack::ALL {
            let indices = robust.nonzero().squeeze_dim(1);
            if indices.size()[0] == 0 {
                break;
            }
            report(MemberEvent::Starting(attack.name()))?;
            let started = Instant::now();
            tch::manual_seed(seed_for(attack as usize));
            let (x_left, y_left) = (
                x.index_select(0, &indices),
                labels.index_select(0, &indices),
            );
            let adversarial = match attack {
                SubAttack::ApgdCe => {
                    Apgd::new(self.epsilon, steps).run_ce(logits, &x_left, &y_left)
                }
                SubAttack::ApgdT => {
                    Apgd::new(self.epsilon, steps).run_targeted(logits, &x_left, &y_left, TARGETS)
                }
                SubAttack::FabT => {
                    let mut fab = FabTargeted::new(self.epsilon, steps);
                    fab.targets = TARGETS;
                    fab.run(logits, &x_left, &y_left)
                }
                SubAttack::Square => {
                    let rescale = self.preset == AutoAttackPreset::Torchattacks351;
                    Square::new(self.epsilon, rescale).run(logits, &x_left, &y_left)
                }
            };
            // Success is judged here, on the returned images, whatever the attack believed: a
            // misclassified image within the budget (up to float rounding of the projection).
            let fooled = crate::thread_modes::no_grad(|| {
                let distance = (&adversarial - &x_left)
                    .abs()
                    .flatten(1, -1)
                    .amax([1i64].as_slice(), false);
                logits(&adversarial)
                    .argmax(-1, false)
                    .ne_tensor(&y_left)
                    .logical_and(&distance.le(self.epsilon + BUDGET_SLACK))
            });
            let fooled_indices = indices.masked_select(&fooled);
            robust = robust.index_fill(0, &fooled_indices, 0);
            report(MemberEvent::Finished {
                member: attack.name(),
                fooled: fooled_indices.size()[0] as usize,
                elapsed: started.elapsed(),
            })?;
        }
        Ok(robust)
    }
}

/// AutoAttack in the final table: the configured preset on the clean-correct points, each
/// sub-attack a member.
pub struct FinalAutoAttack;

impl<E> FinalTableAttack<E> for FinalAutoAttack {
    fn correct(
        &self,
        batch: &TableBatch<'_>,
        members: &mut dyn FnMut(MemberEvent) -> Result<(), E>,
    ) -> Result<Tensor, E> {
        let autoattack = AutoAttack {
            epsilon: batch.settings.epsilon,
            preset: batch.settings.autoattack,
        };
        let (x, y, robust) = (batch.images, batch.labels, batch.clean_correct);
        autoattack.run(batch.eval, x, y, robust, batch.member_seed, members)
    }
}
