//! The attacks of the final table (docs/protocol.md#the-final-evaluation) behind one trait, so the
//! table (`train::attack_table`) runs whatever the vocabulary lists: each attack implements
//! [`FinalTableAttack`] in its own file, and [`super::final_table_attack`] maps a
//! [`FinalAttack`](crate::vocab::FinalAttack) to it.
use super::Logits;
use crate::config::AutoAttackPreset;
use std::time::Duration;
use tch::Tensor;

/// The evaluation settings every final-table attack is given (`evaluation` in the configuration).
#[derive(Clone, Copy, Debug)]
pub struct TableSettings {
    /// The L∞ budget ε.
    pub epsilon: f64,
    /// α of PGD and CW.
    pub step_size: f64,
    pub cw_steps: usize,
    /// κ of the CW loss.
    pub cw_margin: f64,
    pub autoattack: AutoAttackPreset,
}

/// One test batch under attack, in eval mode.
pub struct TableBatch<'a> {
    pub eval: Logits<'a>,
    pub images: &'a Tensor,
    pub labels: &'a Tensor,
    /// The points the network classifies correctly without attack (bool `[B]`).
    pub clean_correct: &'a Tensor,
    pub settings: &'a TableSettings,
    /// The seed of an ensemble's member `i` on this batch, so that its result does not depend on
    /// what ran before it (the table seeds the attack itself before calling it).
    pub member_seed: &'a dyn Fn(usize) -> i64,
}

/// A member of an ensemble attack (AutoAttack's sub-attacks) starts on a batch, or has finished it.
#[derive(Clone, Copy, Debug)]
pub enum MemberEvent {
    Starting(&'static str),
    Finished {
        member: &'static str,
        /// Points it fooled (all of them robust to every earlier member).
        fooled: usize,
        elapsed: Duration,
    },
}

/// An attack of the final table: which points of a batch stay correctly classified under it (bool
/// `[B]`). An attack that crafts images implements [`AdversarialImages`] instead and is judged by
/// the table. An ensemble (AutoAttack) judges its points as it goes: it tells `members` of each
/// member before and after that runs, and stops with `members`' error (a stop request, a failed
/// write) before the next one. `E` is the error of the table's caller.
pub trait FinalTableAttack<E> {
    fn correct(
        &self,
        batch: &TableBatch<'_>,
        members: &mut dyn FnMut(MemberEvent) -> Result<(), E>,
    ) -> Result<Tensor, E>;
}

/// A final-table attack that crafts adversarial images of a batch, every attack but an ensemble.
pub trait AdversarialImages {
    fn adversarial(&self, batch: &TableBatch<'_>) -> Tensor;
}

/// Images are judged as the network classifies them, in eval mode.
impl<E, A: AdversarialImages> FinalTableAttack<E> for A {
    fn correct(
        &self,
        batch: &TableBatch<'_>,
        _members: &mut dyn FnMut(MemberEvent) -> Result<(), E>,
    ) -> Result<Tensor, E> {
        let adversarial = self.adversarial(batch);
        Ok(crate::thread_modes::no_grad(|| {
            (batch.eval)(&adversarial)
                .argmax(-1, false)
                .eq_tensor(batch.labels)
        }))
    }
}
