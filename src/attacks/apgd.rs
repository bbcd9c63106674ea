//! APGD, L∞ (Croce & Hein 2020, the first two attacks of AutoAttack): PGD with momentum 0.75 whose
//! per-sample step size starts at 2ε and halves at checkpoints when the loss oscillates or stalls;
//! the step restarts from the best point. APGD-CE maximises the cross-entropy; APGD-T the targeted
//! DLR loss towards each of the next-most-likely classes in turn. Every rule runs on the device
//! with masks (no host read per iteration).
use super::{input_gradient, per_sample, project, Logits};
use tch::{Kind, Reduction, Tensor};

/// The APGD iteration budget and step-size parameters.
#[derive(Clone, Copy, Debug)]
pub struct Apgd {
    pub epsilon: f64,
    pub steps: usize,
    /// The fraction of increasing steps below which the step size halves (ρ = 0.75).
    pub rho: f64,
}

/// The schedule of step-size checks: the first after `max(⌊0.22·N⌋, 1)` iterations, each later
/// interval `max(⌊0.03·N⌋, 1)` shorter, down to `max(⌊0.06·N⌋, 1)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Checkpoints {
    pub first: usize,
    pub shortest: usize,
    pub decrease: usize,
}

impl Checkpoints {
    pub fn for_steps(steps: usize) -> Checkpoints {
        let part = |share: f64| ((share * steps as f64) as usize).max(1);
        Checkpoints {
            first: part(0.22),
            shortest: part(0.06),
            decrease: part(0.03),
        }
    }

    /// The 0-indexed iterations after which the step size is checked.
    pub fn iterations(&self, steps: usize) -> Vec<usize> {
        let mut at = Vec::new();
        let (mut interval, mut since) = (self.first, 0);
        for i in 0..steps {
            since += 1;
            if since == interval {
                at.push(i);
                since = 0;
                interval = interval.saturating_sub(self.decrease).max(self.shortest);
            }
        }
        at
    }
}

/// `DLR(z, y) = −(z_y − max_{j≠y} z_j) / (z_π1 − z_π3 + 10⁻¹²)` per sample, with π the classes
/// sorted by decreasing logit: scale-invariant, so it cannot be masked by logit scaling.
pub fn dlr_loss(logits: &Tensor, labels: &Tensor) -> Tensor {
    let (sorted, order) = logits.sort(1, true);
    let true_logit = logits.gather(1, &labels.unsqueeze(1), false).squeeze_dim(1);
    let top_is_true = order.select(1, 0).eq_tensor(labels).to_kind(logits.kind());
    let best_other =
        sorted.select(1, 1) * &top_is_true + sorted.select(1, 0) * (-&top_is_true + 1.0);
    -(true_logit - best_other) / (sorted.select(1, 0) - sorted.select(1, 2) + 1e-12)
}

/// Targeted DLR: `−(z_y − z_t) / (z_π1 − (z_π3 + z_π4)/2 + 10⁻¹²)` per sample.
pub fn targeted_dlr_loss(logits: &Tensor, labels: &Tensor, targets: &Tensor) -> Tensor {
    let sorted = logits.sort(1, true).0;
    let pick = |classes: &Tensor| {
        logits
            .gather(1, &classes.unsqueeze(1), false)
            .squeeze_dim(1)
    };
    -(pick(labels) - pick(targets))
        / (sorted.select(1, 0) - (sorted.select(1, 2) + sorted.select(1, 3)) * 0.5 + 1e-12)
}

/// The step-size rule at a check, per sample: halve where the loss rose in at most `ρ·k` of the
/// last `k` iterations (`window` holds the last `k + 1` losses, oldest first), or where the best loss
/// did not improve since the last check unless the step was halved then.
pub fn halve_step(
    window: &[&Tensor],
    rho: f64,
    best: &Tensor,
    best_at_last_check: &Tensor,
    halved_at_last_check: &Tensor,
) -> Tensor {
    let checked = window.len() - 1;
    let increases = window
        .windows(2)
        .map(|pair| pair[1].gt_tensor(pair[0]).to_kind(Kind::Float))
        .fold(best.zeros_like().to_kind(Kind::Float), |sum, t| sum + t);
    let oscillating = increases.le(checked as f64 * rho);
    let stalled = halved_at_last_check
        .logical_not()
        .logical_and(&best_at_last_check.ge_tensor(best));
    oscillating.logical_or(&stalled)
}

fn cross_entropy_per_sample(logits: &Tensor, labels: &Tensor) -> Tensor {
    logits.cross_entropy_loss::<Tensor>(labels, None, Reduction::None, -100, 0.0)
}

impl Apgd {
    pub fn new(epsilon: f64, steps: usize) -> Apgd {
        Apgd {
            epsilon,
            steps,
            rho: 0.75,
        }
    }

    /// APGD-CE on the points classified correctly; returns the last misclassified iterate where
    /// the attack succeeded and the clean image elsewhere.
    pub fn run_ce(&self, logits: Logits, x: &Tensor, labels: &Tensor) -> Tensor {
        let x = x.detach();
        let correct =
            crate::thread_modes::no_grad(|| logits(&x).argmax(-1, false).eq_tensor(labels));
        let (fooled, adversarial) =
            self.single_run(logits, &x, labels, &|z| cross_entropy_per_sample(z, labels));
        let use_adversarial = fooled.logical_and(&correct);
        adversarial.where_self(&per_sample(&use_adversarial, &x), &x)
    }

    /// APGD-T: for each of the `targets` classes ranked second, third, … by the clean logits, the
    /// targeted-DLR APGD on the points not yet fooled. Needs at least four classes.
    pub fn run_targeted(
        &self,
        logits: Logits,
        x: &Tensor,
        labels: &Tensor,
        targets: usize,
    ) -> Tensor {
        let x = x.detach();
        let clean = crate::thread_modes::no_grad(|| logits(&x));
        let classes = clean.size()[1];
        let mut output = x.shallow_clone();
        let mut robust = clean.argmax(-1, false).eq_tensor(labels);
        // The targeted DLR reads the fourth-largest logit: no APGD-T under four classes.
        let targets = if classes < 4 {
            0
        } else {
            targets.min(classes as usize - 1)
        };
        for rank in 1..=targets {
            let indices = robust.nonzero().squeeze_dim(1);
            if indices.size()[0] == 0 || super::interrupt::requested() {
                break;
            }
            let (x_sub, y_sub) = (
                x.index_select(0, &indices),
                labels.index_select(0, &indices),
            );
            // The class ranked `rank + 1` by the clean logits of the points still robust.
            let target = clean
                .index_select(0, &indices)
                .sort(1, true)
                .1
                .select(1, rank as i64);
            let (fooled, adversarial) = self.single_run(logits, &x_sub, &y_sub, &|z| {
                targeted_dlr_loss(z, &y_sub, &target)
            });
            let fooled_indices = indices.masked_select(&fooled);
            output = output.index_copy(
                0,
                &fooled_indices,
                &adversarial.index_select(0, &fooled.nonzero().squeeze_dim(1)),
            );
            robust = robust.index_fill(0, &fooled_indices, 0);
        }
        output
    }

    /// One APGD run of `loss` (per sample) from a random start; returns which points some iterate
    /// misclassified and the last such iterate (the start elsewhere).
    fn single_run(
        &self,
        logits: Logits,
        x: &Tensor,
        labels: &Tensor,
        loss: &dyn Fn(&Tensor) -> Tensor,
    ) -> (Tensor, Tensor) {
        let eps = self.epsilon;
        let batch = x.size()[0];
        let loss_and_gradient = |point: &Tensor| {
            crate::thread_modes::with_grad(|| {
                let point = point.detach().set_requires_grad(true);
                let z = logits(&point);
                let per_sample_loss = loss(&z);
                let gradient = input_gradient(&per_sample_loss.sum(Kind::Float), &point);
                (
                    per_sample_loss.detach(),
                    gradient,
                    z.detach().argmax(-1, false).eq_tensor(labels),
                )
            })
        };
        // Uniform start on the ε-sphere of L∞: each image's noise is scaled so its largest pixel is ±ε.
        let noise = x.rand_like() * 2.0 - 1.0;
        let largest = noise.abs().flatten(1, -1).amax([1i64].as_slice(), false);
        let mut adversarial =
            (x + per_sample(&largest.reciprocal(), x) * &noise * eps).clamp(0.0, 1.0);
        let mut best_adversarial = adversarial.shallow_clone();
        let (mut best_loss, mut gradient, mut robust) = loss_and_gradient(&adversarial);
        let mut best_point = adversarial.shallow_clone();
        let mut best_gradient = gradient.shallow_clone();
        let mut step = Tensor::full([batch], 2.0 * eps, (x.kind(), x.device()));
        let mut previous = adversarial.shallow_clone();
        // Loss per iteration; the reference compares the first entry with an unwritten (zero) row.
        let mut losses: Vec<Tensor> = (0..self.steps).map(|_| best_loss.zeros_like()).collect();
        let mut checks = Checkpoints::for_steps(self.steps)
            .iterations(self.steps)
            .into_iter()
            .peekable();
        let mut last_check: Option<usize> = None;
        let mut best_at_last_check = best_loss.shallow_clone();
        let mut halved_at_last_check = best_loss.ones_like().to_kind(Kind::Bool);
        for i in 0..self.steps {
            // A stop request: the caller discards what this run found (super::interrupt).
            if super::interrupt::requested() {
                break;
            }
            let momentum = if i > 0 { 0.75 } else { 1.0 };
            let candidate = project(
                &(&adversarial + per_sample(&step, x) * gradient.sign()),
                x,
                eps,
            );
            let moved = &adversarial - &previous;
            previous = adversarial.shallow_clone();
            adversarial = project(
                &(&adversarial + (&candidate - &adversarial) * momentum + moved * (1.0 - momentum)),
                x,
                eps,
            );
            let (current_loss, current_gradient, classified) = loss_and_gradient(&adversarial);
            gradient = current_gradient;
            robust = robust.logical_and(&classified);
            best_adversarial =
                best_adversarial.where_self(&per_sample(&classified, x), &adversarial);
            let improved = current_loss.gt_tensor(&best_loss);
            let improved_images = per_sample(&improved, x);
            best_point = adversarial.where_self(&improved_images, &best_point);
            best_gradient = gradient.where_self(&improved_images, &best_gradient);
            best_loss = current_loss.where_self(&improved, &best_loss);
            losses[i] = current_loss;
            if checks.next_if_eq(&i).is_some() {
                let interval = last_check.map_or(i + 1, |last| i - last);
                last_check = Some(i);
                // The last `interval` + 1 losses, oldest first.
                let window: Vec<&Tensor> = (0..=interval)
                    .rev()
                    .map(|back| &losses[(i + 2 * self.steps - back) % self.steps])
                    .collect();
                let halve = halve_step(
                    &window,
                    self.rho,
                    &best_loss,
                    &best_at_last_check,
                    &halved_at_last_check,
                );
                halved_at_last_check = halve.shallow_clone();
                best_at_last_check = best_loss.shallow_clone();
                step = (&step * 0.5).where_self(&halve, &step);
                let halve_images = per_sample(&halve, x);
                adversarial = best_point.where_self(&halve_images, &adversarial);
                gradient = best_gradient.where_self(&halve_images, &gradient);
            }
        }
        (robust.logical_not(), best_adversarial.detach())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: &Tensor, b: &[f64]) {
        let a: Vec<f64> = Vec::try_from(a.to_kind(Kind::Double)).unwrap();
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < 1e-9, "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn checkpoints_follow_the_published_schedule() {
        // p_0 = 0, p_1 = 0.22, p_{j+1} = p_j + max(p_j − p_{j−1} − 0.03, 0.06): checks after 22,
        // 41, 57, 70, 80, 87, 93 and 99 of 100 iterations.
        let at = Checkpoints::for_steps(100).iterations(100);
        let after: Vec<usize> = at.iter().map(|i| i + 1).collect();
        assert_eq!(after, vec![22, 41, 57, 70, 80, 87, 93, 99]);
        // torchattacks' 10 iterations: first after 2, then every iteration (minimum 1).
        assert_eq!(
            Checkpoints::for_steps(10),
            Checkpoints {
                first: 2,
                shortest: 1,
                decrease: 1
            }
        );
        assert_eq!(
            Checkpoints::for_steps(10).iterations(10),
            vec![1, 2, 3, 4, 5, 6, 7, 8, 9]
        );
    }

    #[test]
    fn dlr_by_hand() {
        // Sample 0: true class 0 on top (5); best other 3; π1 − π3 = 5 − 1 → −(5 − 3)/4 = −0.5.
        // Sample 1: true class 2 (1) not on top; best other 5; π1 − π3 = 5 − 1 → −(1 − 5)/4 = 1.
        let logits = Tensor::from_slice(&[5.0f64, 3.0, 1.0, 0.0, 5.0, 3.0, 1.0, 0.0]).view([2, 4]);
        let labels = Tensor::from_slice(&[0i64, 2]);
        close(&dlr_loss(&logits, &labels), &[-0.5, 1.0]);
        // Targeted at class 3 (0): −(5 − 0)/(5 − (1 + 0)/2) = −5/4.5; −(1 − 0)/4.5.
        let targets = Tensor::from_slice(&[3i64, 3]);
        close(
            &targeted_dlr_loss(&logits, &labels, &targets),
            &[-5.0 / 4.5, -1.0 / 4.5],
        );
        // Scale invariance: the DLR of 10·z equals that of z.
        close(&dlr_loss(&(&logits * 10.0), &labels), &[-0.5, 1.0]);
    }

    /// A linear classifier on 4 pixels with 4 classes: logits = W·x + b.
    fn linear(weights: &[f64], bias: &[f64]) -> impl Fn(&Tensor) -> Tensor {
        let w = Tensor::from_slice(weights)
            .view([4, 4])
            .to_kind(Kind::Float);
        let b = Tensor::from_slice(bias).to_kind(Kind::Float);
        move |x: &Tensor| x.flatten(1, -1).matmul(&w.tr()) + &b
    }

    #[test]
    fn apgd_stays_in_budget_and_fools_a_crossable_margin() {
        tch::manual_seed(0);
        // Class 0 ↔ pixel 0 and class 1 ↔ pixel 1; from x = (0.5, 0.45, …) the class-0 margin
        // 0.05 falls by 2 per unit of L∞, so ε = 0.05 crosses it and ε = 0.01 does not.
        let net = linear(
            &[
                1., 0., 0., 0., 0., 1., 0., 0., 0., 0., 1., 0., 0., 0., 0., 1.,
            ],
            &[0., 0., -1., -1.],
        );
        let x = Tensor::from_slice(&[0.5f32, 0.45, 0.2, 0.2]).view([1, 1, 2, 2]);
        let y = Tensor::from_slice(&[0i64]);
        for (eps, fooled) in [(0.05, true), (0.01, false)] {
            let apgd = Apgd::new(eps, 20);
            for adversarial in [
                apgd.run_ce(&net, &x, &y),
                apgd.run_targeted(&net, &x, &y, 3),
            ] {
                let distance = (&adversarial - &x).abs().max().double_value(&[]);
                assert!(distance <= eps + 1e-6, "L∞ {distance} > {eps}");
                assert!(adversarial.min().double_value(&[]) >= 0.0);
                assert!(adversarial.max().double_value(&[]) <= 1.0);
                let predicted = net(&adversarial).argmax(-1, false).int64_value(&[0]);
                assert_eq!(predicted != 0, fooled, "eps {eps}");
                if !fooled {
                    assert!(
                        adversarial.equal(&x),
                        "a failed attack returns the clean image"
                    );
                }
            }
        }
    }

    #[test]
    fn misclassified_points_are_returned_clean() {
        tch::manual_seed(0);
        let net = linear(
            &[
                1., 0., 0., 0., 0., 1., 0., 0., 0., 0., 1., 0., 0., 0., 0., 1.,
            ],
            &[0., 0., 0., 0.],
        );
        let x = Tensor::from_slice(&[0.9f32, 0.1, 0.1, 0.1]).view([1, 1, 2, 2]);
        let y = Tensor::from_slice(&[1i64]);
        let apgd = Apgd::new(0.3, 10);
        assert!(apgd.run_ce(&net, &x, &y).equal(&x));
        assert!(apgd.run_targeted(&net, &x, &y, 3).equal(&x));
    }

    #[test]
    fn the_step_size_rule() {
        let t = |v: &[f64]| Tensor::from_slice(v);
        // Four samples over k = 4 iterations (5 losses), ρ = 0.75: halve when at most 3 rises.
        // 0: rises every time; 1: rises 3 times; 2: never rises; 3: rises every time.
        let window = [
            t(&[0.0, 0.0, 5.0, 0.0]),
            t(&[1.0, 1.0, 4.0, 1.0]),
            t(&[2.0, 2.0, 3.0, 2.0]),
            t(&[3.0, 3.0, 2.0, 3.0]),
            t(&[4.0, 2.5, 1.0, 4.0]),
        ];
        let window: Vec<&Tensor> = window.iter().collect();
        let best = t(&[4.0, 3.0, 5.0, 4.0]);
        // Sample 3 did not improve on its best since the last check, which did not halve it.
        let best_before = t(&[3.0, 2.0, 5.0, 4.0]);
        let halved_before = Tensor::from_slice(&[false, false, true, false]);
        let halve = halve_step(&window, 0.75, &best, &best_before, &halved_before);
        let halve: Vec<bool> = Vec::try_from(halve).unwrap();
        assert_eq!(halve, vec![false, true, true, true]);
        // A sample halved at the last check is not halved again for stalling alone.
        let halved_before = Tensor::from_slice(&[false, false, true, true]);
        let halve = halve_step(&window, 0.75, &best, &best_before, &halved_before);
        let halve: Vec<bool> = Vec::try_from(halve).unwrap();
        assert_eq!(halve, vec![false, true, true, false]);
    }
}
