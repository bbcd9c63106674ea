//! Square attack, L∞ (Andriushchenko et al. 2020), AutoAttack's black-box member: random search
//! over squares of ±2ε per channel on the margin loss, as fra31/auto-attack's `attack_single_run`.
//! No gradients: it checks that robustness does not come from masked gradients.
use super::{per_sample, project, Logits};
use tch::{Device, Kind, Tensor};

/// Iterations between host reads. The active points are re-compacted, and the all-fooled early
/// stop checked, only this often; in between, fooled points ride along frozen by a mask, which
/// gives the same result as dropping them at once (the draws are shared by the batch).
const COMPACT_EVERY: usize = 16;

#[derive(Clone, Copy, Debug)]
pub struct Square {
    pub epsilon: f64,
    /// Iterations after the initial query (one forward each).
    pub queries: usize,
    pub p_init: f64,
    /// Stretch the p schedule, written for 10 000 iterations, over `queries` (torchattacks 3.5.1's
    /// AutoAttack); standard AutoAttack leaves it off.
    pub rescale_schedule: bool,
}

impl Square {
    /// AutoAttack's Square: 5000 queries, `p_init` 0.8.
    pub fn new(epsilon: f64, rescale_schedule: bool) -> Square {
        Square {
            epsilon,
            queries: 5000,
            p_init: 0.8,
            rescale_schedule,
        }
    }

    /// The fraction p of pixels a square covers at iteration `iteration` (the reference's
    /// `p_selection`, with the rescaling when `rescale_schedule` is on): p_init halves at the
    /// thresholds 10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000.
    pub fn square_fraction(&self, iteration: usize) -> f64 {
        let it = if self.rescale_schedule {
            // Python's `int(it / n_queries * 10000)`: float division, then truncation.
            (iteration as f64 / self.queries as f64 * 10000.0) as usize
        } else {
            iteration
        };
        const THRESHOLDS: [usize; 9] = [10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000];
        let halvings = THRESHOLDS.iter().filter(|&&t| it > t).count() as i32;
        self.p_init / 2f64.powi(halvings)
    }

    /// The square's side at `iteration` for a c×h×w image: `max(round(sqrt(p·n_features/c)), 1)`,
    /// capped at `min(h, w)` as fra31 does (the original Square code caps at h−1; for square
    /// images the two differ only when p_init ≥ (1 − 1/(2h))², so never for p_init 0.8 and h ≥ 5).
    /// Python's `round` takes ties to even.
    pub fn square_side(&self, iteration: usize, channels: i64, height: i64, width: i64) -> i64 {
        let n_features = (channels * height * width) as f64;
        let p = self.square_fraction(iteration);
        let side = (p * n_features / channels as f64).sqrt().round_ties_even() as i64;
        side.max(1).min(height.min(width))
    }

    /// Runs Square (margin loss) on the points of `x` classified correctly; returns images of x's
    /// shape: the best (lowest-margin) point found, which is adversarial where the attack
    /// succeeded; the clean image for points misclassified from the start. Detached. Randomness
    /// comes from torch's global generator, which the caller seeds.
    pub fn run(&self, logits: Logits, x: &Tensor, labels: &Tensor) -> Tensor {
        self.run_compacting(logits, x, labels, COMPACT_EVERY)
    }

    /// [`Square::run`] reading the host, compacting and checking the early stop every `period`
    /// iterations (1: as the reference, which removes fooled points at every iteration).
    fn run_compacting(&self, logits: Logits, x: &Tensor, labels: &Tensor, period: usize) -> Tensor {
        assert!(period > 0, "compaction period must be positive");
        crate::thread_modes::no_grad(|| {
            let x = x.detach();
            let (c, h, w) = match x.size().as_slice() {
                &[_, c, h, w] => (c, h, w),
                other => panic!("Square expects images [B, C, H, W], got {other:?}"),
            };
            let device = x.device();
            let mut output = x.copy();
            let correct = logits(&x).argmax(-1, false).eq_tensor(labels);
            let to_fool = correct.nonzero().squeeze_dim(1);
            let n = to_fool.size()[0];
            if n == 0 {
                return output;
            }
            let x = x.index_select(0, &to_fool);
            let labels = labels.index_select(0, &to_fool);

            // Vertical stripes: one ±ε per (image, channel, column), the same down each column.
            let stripes = random_signs(&[n, c, 1, w])
                .to_device(device)
                .to_kind(x.kind());
            let start = (&x + stripes * self.epsilon).clamp(0.0, 1.0);
            // Filled by each compaction, the first included.
            let mut best = start.empty_like();
            let mut active = Active {
                index: Tensor::arange(n, (Kind::Int64, device)),
                margin: margin(&logits(&start), &labels),
                x: x.shallow_clone(),
                labels: labels.shallow_clone(),
                best: start,
            };
            let mut done = active.compact(&mut best);
            let mut iteration = 0;
            // Between chunks, a stop request ends the queries; the caller discards the result
            // (super::interrupt).
            while !done && iteration < self.queries && !super::interrupt::requested() {
                let chunk = period.min(self.queries - iteration);
                // Per iteration the reference draws, from the CPU generator, rand(1) for the row,
                // rand(1) for the column and rand(c) for the signs: one draw replays that stream.
                let draws = Tensor::rand([chunk as i64, 2 + c], (Kind::Float, Device::Cpu));
                let steps = (random_signs_from(&draws.narrow(1, 2, c)) * (2.0 * self.epsilon))
                    .to_device(device)
                    .to_kind(x.kind());
                for j in 0..chunk {
                    let side = self.square_side(iteration + j, c, h, w);
                    let row = random_int(h - side, &draws, j, 0);
                    let column = random_int(w - side, &draws, j, 1);
                    let delta = Tensor::zeros([c, h, w], (x.kind(), device));
                    delta
                        .narrow(1, row, side)
                        .narrow(2, column, side)
                        .copy_(&steps.get(j as i64).view([c, 1, 1]));
                    active.step(logits, &delta, self.epsilon);
                }
                iteration += chunk;
                done = active.compact(&mut best);
            }
            let _ = output.index_copy_(0, &to_fool, &best);
            output
        })
    }
}

/// The points still attacked, a compacted sub-batch of the points to fool.
struct Active {
    /// Positions in the batch of points to fool.
    index: Tensor,
    x: Tensor,
    labels: Tensor,
    best: Tensor,
    margin: Tensor,
}

impl Active {
    /// One query: the best point plus the square, projected; kept where it lowers the margin of a
    /// point not yet fooled (for those, a margin ≤ 0 always lowers it, the reference's second
    /// rule), so points fooled since the last compaction stay as they are.
    fn step(&mut self, logits: Logits, delta: &Tensor, epsilon: f64) {
        let candidate = project(&(&self.best + delta), &self.x, epsilon);
        let candidate_margin = margin(&logits(&candidate), &self.labels);
        let improved = candidate_margin
            .lt_tensor(&self.margin)
            .logical_and(&self.margin.gt(0.0));
        self.margin = candidate_margin.where_self(&improved, &self.margin);
        self.best = candidate.where_self(&per_sample(&improved, &candidate), &self.best);
    }

    /// Writes the best points back into `best` and keeps only the points with a positive margin
    /// (one host read). True when none is left: every point is fooled.
    fn compact(&mut self, best: &mut Tensor) -> bool {
        let _ = best.index_copy_(0, &self.index, &self.best);
        let keep = self.margin.gt(0.0).nonzero().squeeze_dim(1);
        let left = keep.size()[0];
        if left == 0 {
            return true;
        }
        if left < self.index.size()[0] {
            for tensor in [
                &mut self.index,
                &mut self.x,
                &mut self.labels,
                &mut self.best,
                &mut self.margin,
            ] {
                *tensor = tensor.index_select(0, &keep);
            }
        }
        false
    }
}

/// `z_y − max_{k≠y} z_k` per sample: the margin the attack drives to ≤ 0.
fn margin(z: &Tensor, labels: &Tensor) -> Tensor {
    let labels = labels.unsqueeze(1);
    let correct = z.gather(1, &labels, false).squeeze_dim(1);
    let others = z
        .scatter_value(1, &labels, f64::NEG_INFINITY)
        .amax(1, false);
    correct - others
}

/// The reference's `random_choice`: `sign(2·U[0, 1) − 1)` drawn on the CPU generator.
fn random_signs(shape: &[i64]) -> Tensor {
    random_signs_from(&Tensor::rand(shape, (Kind::Float, Device::Cpu)))
}

fn random_signs_from(uniform: &Tensor) -> Tensor {
    (uniform * 2.0 - 1.0).sign()
}

/// The reference's `random_int(0, high)`: `long(high · U)` in single precision, read from the
/// drawn `draws[row, column]` (a CPU tensor: no device sync). Never returns `high` itself.
fn random_int(high: i64, draws: &Tensor, row: usize, column: i64) -> i64 {
    (high as f32 * draws.double_value(&[row as i64, column]) as f32) as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn fooled(logits: &Tensor, labels: &Tensor) -> Tensor {
        logits.argmax(-1, false).ne_tensor(labels)
    }

    fn linf(a: &Tensor, b: &Tensor) -> f64 {
        (a - b).abs().max().double_value(&[])
    }

    /// A linear classifier of c×h×w images whose clean margins, around images near 0.5, are about
    /// `lead` while ε-changes move them by up to ε·‖w_y − w_k‖₁.
    struct Linear {
        weight: Tensor,
        bias: Tensor,
    }

    impl Linear {
        fn new(features: i64, classes: i64, lead: f64) -> Linear {
            let weight = Tensor::randn([features, classes], (Kind::Float, Device::Cpu));
            let centre = Tensor::full([1, features], 0.5, (Kind::Float, Device::Cpu));
            let bias = -centre.matmul(&weight).squeeze_dim(0);
            let _ = bias.get(0).g_add_scalar_(lead);
            Linear { weight, bias }
        }

        fn logits(&self, x: &Tensor) -> Tensor {
            x.flatten(1, -1).matmul(&self.weight) + &self.bias
        }
    }

    /// Images within 0.01 of 0.5 (labelled 0 by a `Linear` with a clear lead).
    fn images(n: i64, c: i64, h: i64, w: i64) -> Tensor {
        Tensor::rand([n, c, h, w], (Kind::Float, Device::Cpu)) * 0.02 + 0.49
    }

    fn zeros(n: i64) -> Tensor {
        Tensor::zeros([n], (Kind::Int64, Device::Cpu))
    }

    fn square(epsilon: f64, queries: usize) -> Square {
        Square {
            epsilon,
            queries,
            p_init: 0.8,
            rescale_schedule: true,
        }
    }

    #[test]
    fn the_fraction_halves_just_after_each_threshold() {
        let plain = Square::new(8.0 / 255.0, false);
        let edges = [
            (0, 1.0),
            (10, 1.0),
            (11, 2.0),
            (50, 2.0),
            (51, 4.0),
            (200, 4.0),
            (201, 8.0),
            (500, 8.0),
            (501, 16.0),
            (1000, 16.0),
            (1001, 32.0),
            (2000, 32.0),
            (2001, 64.0),
            (4000, 64.0),
            (4001, 128.0),
            (6000, 128.0),
            (6001, 256.0),
            (8000, 256.0),
            (8001, 512.0),
            (9999, 512.0),
        ];
        for (it, divisor) in edges {
            assert_eq!(plain.square_fraction(it), 0.8 / divisor, "it = {it}");
        }
        // Rescaled over 5000 queries, iteration i behaves as 2i unrescaled.
        let rescaled = Square::new(8.0 / 255.0, true);
        for it in [
            0, 5, 6, 25, 26, 100, 101, 250, 251, 2500, 3000, 3001, 4000, 4001, 4999,
        ] {
            assert_eq!(
                rescaled.square_fraction(it),
                plain.square_fraction(2 * it),
                "it = {it}"
            );
        }
        assert_eq!(rescaled.square_fraction(2500), 0.8 / 128.0);
        assert_eq!(rescaled.square_fraction(4001), 0.8 / 512.0);
        // Over 1000 queries, iteration i behaves as 10i.
        let short = Square {
            queries: 1000,
            ..rescaled
        };
        assert_eq!(short.square_fraction(1), 0.8);
        assert_eq!(short.square_fraction(2), 0.8 / 2.0);
        assert_eq!(short.square_fraction(5), 0.8 / 2.0);
        assert_eq!(short.square_fraction(6), 0.8 / 4.0);
        assert_eq!(short.square_fraction(801), 0.8 / 512.0);
    }

    #[test]
    fn the_side_follows_the_fraction_with_python_rounding_and_caps() {
        let plain = Square::new(8.0 / 255.0, false);
        // sqrt(0.8 · 3072 / 3) = 28.62; sqrt(0.4 · 1024) = 20.24; sqrt(0.8/512 · 1024) = 1.26.
        assert_eq!(plain.square_side(0, 3, 32, 32), 29);
        assert_eq!(plain.square_side(10, 3, 32, 32), 29);
        assert_eq!(plain.square_side(11, 3, 32, 32), 20);
        assert_eq!(plain.square_side(201, 3, 32, 32), 10);
        assert_eq!(plain.square_side(8001, 3, 32, 32), 1);
        // sqrt(0.8 · 784) = 25.04; sqrt(0.2 · 784) = 12.52; sqrt(0.8/512 · 784) = 1.11.
        assert_eq!(plain.square_side(0, 1, 28, 28), 25);
        assert_eq!(plain.square_side(51, 1, 28, 28), 13);
        assert_eq!(plain.square_side(8001, 1, 28, 28), 1);
        // At least 1: sqrt(0.8/512 · 16) = 0.16.
        assert_eq!(plain.square_side(8001, 3, 4, 4), 1);
        // Capped at min(h, w): sqrt(0.8 · 2 · 8) = 3.58 on a 2×8 image.
        assert_eq!(plain.square_side(0, 1, 2, 8), 2);
        assert_eq!(plain.square_side(0, 1, 8, 2), 2);
        // Ties to even: sqrt(0.25 · 25) = 2.5 → 2, sqrt(0.25 · 49) = 3.5 → 4.
        let quarter = Square {
            p_init: 0.25,
            ..plain
        };
        assert_eq!(quarter.square_side(0, 1, 5, 5), 2);
        assert_eq!(quarter.square_side(0, 2, 7, 7), 4);
    }

    #[test]
    fn one_chunked_draw_replays_the_references_per_iteration_draws() {
        let c = 3;
        tch::manual_seed(5);
        let chunk = Tensor::rand([16, 2 + c], (Kind::Float, Device::Cpu));
        tch::manual_seed(5);
        let mut single = Vec::new();
        for _ in 0..16 {
            single.push(Tensor::rand([1], (Kind::Float, Device::Cpu)));
            single.push(Tensor::rand([1], (Kind::Float, Device::Cpu)));
            single.push(Tensor::rand([c, 1, 1], (Kind::Float, Device::Cpu)).flatten(0, -1));
        }
        assert!(chunk.flatten(0, -1).equal(&Tensor::cat(&single, 0)));
    }

    #[test]
    fn every_image_stays_in_the_budget_and_the_image_range() {
        tch::manual_seed(0);
        let model = Linear::new(3 * 6 * 6, 4, 0.3);
        let logits = |z: &Tensor| model.logits(z);
        // Some pixels at the range's ends, where the clip to [0, 1] bites.
        let x = images(8, 3, 6, 6);
        let _ = x.get(0).get(0).fill_(0.0);
        let _ = x.get(1).get(1).fill_(1.0);
        let labels = zeros(8);
        for epsilon in [0.03, 0.2] {
            let adversarial = square(epsilon, 30).run(&logits, &x, &labels);
            assert_eq!(adversarial.size(), x.size());
            assert!(!adversarial.requires_grad());
            assert!(linf(&adversarial, &x) <= epsilon + 1e-6);
            assert!(linf(&adversarial, &x) > 0.0, "nothing moved");
            assert!(adversarial.min().double_value(&[]) >= 0.0);
            assert!(adversarial.max().double_value(&[]) <= 1.0);
        }
    }

    #[test]
    fn a_crossable_margin_is_crossed_early_and_a_zero_budget_changes_nothing() {
        tch::manual_seed(1);
        let model = Linear::new(3 * 8 * 8, 3, 3.0);
        let calls = Cell::new(0usize);
        let logits = |z: &Tensor| {
            calls.set(calls.get() + 1);
            model.logits(z)
        };
        let x = images(16, 3, 8, 8);
        let labels = zeros(16);
        assert_eq!(
            fooled(&logits(&x), &labels)
                .sum(Kind::Int64)
                .int64_value(&[]),
            0
        );
        // ε = 0.05 moves a margin by up to ε·‖w_0 − w_k‖₁ ≈ 0.05 · 192 · 1.13 ≈ 11 ≫ 3.
        calls.set(0);
        let adversarial = square(0.05, 1000).run(&logits, &x, &labels);
        assert!(
            fooled(&logits(&adversarial), &labels)
                .all()
                .int64_value(&[])
                == 1
        );
        assert!(calls.get() < 200, "no early stop: {} forwards", calls.get());

        for epsilon in [0.0, 1e-4] {
            let kept = square(epsilon, 100).run(&logits, &x, &labels);
            assert_eq!(
                fooled(&logits(&kept), &labels)
                    .sum(Kind::Int64)
                    .int64_value(&[]),
                0
            );
            assert!(linf(&kept, &x) <= epsilon + 1e-6);
            if epsilon == 0.0 {
                assert!(kept.equal(&x));
            }
        }
    }

    #[test]
    fn points_misclassified_at_the_start_come_back_unchanged() {
        tch::manual_seed(2);
        let model = Linear::new(3 * 6 * 6, 3, 1.0);
        let logits = |z: &Tensor| model.logits(z);
        let x = images(6, 3, 6, 6);
        let labels = Tensor::from_slice(&[0i64, 1, 0, 2, 0, 1]);
        let adversarial = square(0.05, 50).run(&logits, &x, &labels);
        for i in 0..6 {
            let unchanged = adversarial.get(i).equal(&x.get(i));
            assert_eq!(unchanged, i % 2 == 1, "point {i}");
        }
    }

    #[test]
    fn seeded_runs_repeat_and_compaction_changes_no_result() {
        tch::manual_seed(3);
        // Spread-out images and no lead: points wrong from the start, fooled early, late, never.
        let model = Linear::new(3 * 6 * 6, 3, 0.0);
        let logits = |z: &Tensor| model.logits(z);
        let n = 48;
        let x = Tensor::rand([n, 3, 6, 6], (Kind::Float, Device::Cpu)) * 0.4 + 0.3;
        let labels = zeros(n);
        let wrong_at_start = fooled(&logits(&x), &labels);
        let attack = square(0.015, 300);
        tch::manual_seed(9);
        let first = attack.run(&logits, &x, &labels);
        tch::manual_seed(9);
        assert!(attack.run(&logits, &x, &labels).equal(&first));
        let fooled_now = fooled(&logits(&first), &labels);
        let count = |t: &Tensor| t.sum(Kind::Int64).int64_value(&[]);
        let attacked = n - count(&wrong_at_start);
        let fooled_by_attack = count(&fooled_now) - count(&wrong_at_start);
        assert!(
            attacked >= 4 && fooled_by_attack >= 2 && fooled_by_attack <= attacked - 2,
            "want a mix: {attacked} attacked, {fooled_by_attack} fooled"
        );
        // Fooled points freeze under the mask until the next compaction, exactly as if removed.
        for period in [1, 3, 64, 1000] {
            tch::manual_seed(9);
            let other = attack.run_compacting(&logits, &x, &labels, period);
            assert!(other.equal(&first), "period {period}");
        }
        // The draws do not depend on the points misclassified from the start: inserting more of
        // them changes no result.
        let wrong = (logits(&x).argmax(-1, false) + 1).remainder(3);
        let mixed_x = Tensor::stack(&[&x, &x], 1).flatten(0, 1);
        let mixed_labels = Tensor::stack(&[&labels, &wrong], 1).flatten(0, 1);
        tch::manual_seed(9);
        let mixed = attack.run(&logits, &mixed_x, &mixed_labels);
        let even = Tensor::arange_start_step(0, 2 * n, 2, (Kind::Int64, Device::Cpu));
        assert!(mixed.index_select(0, &even).equal(&first));
        assert!(mixed.index_select(0, &(even + 1)).equal(&x));
    }

    /// Recorded from fra31/auto-attack's `attack_single_run` (torch 2.11, CPU, `torch.manual_seed(7)`
    /// before it, as `perturb` does) on the points classified correctly: the sign of each pixel's
    /// change. Points 2, 4 and 5 are fooled after 14, 19 and 25 iterations, mid-chunk; point 3 is
    /// wrong from the start. Images, weights and ε are dyadic (multiples of 1/256, 1/64 and 1/32),
    /// so every logit is an exact float32 sum: the search takes the same path on any CPU and BLAS,
    /// and the values themselves match fra31's bitwise.
    const FRA31_SIGNS: [&str; 6] = [
        "---+-+-++---+--+-++-+-++-----++++++--+-+--+++--+-+",
        "++++------++---++---++---++++----+-++-+--+-+--+-+-",
        "+--+++-++++-+-++-++++-+++-+-+-++++-+++--++++-++++-",
        "00000000000000000000000000000000000000000000000000",
        "---+++--++++--+++-++++++++----+--+-+-++---++-+----",
        "++++++--++++-+++--+++--++++-+-+--+-++-+-++-+-+--+-",
    ];

    #[test]
    fn the_search_replays_fra31_on_a_recorded_case() {
        let (n, c, h, w, k) = (6, 2, 5, 5, 3);
        // Multiples of 1/modulus in [0, 1); with power-of-two moduli every sum below is exact.
        let integers = |count: i64, factor: i64, modulus: i64| {
            (Tensor::arange(count, (Kind::Int64, Device::Cpu)) * factor)
                .remainder(modulus)
                .to_kind(Kind::Float)
                / modulus as f64
        };
        let x = (integers(n * c * h * w, 37, 128) * 0.5 + 0.25).view([n, c, h, w]);
        let weight = (integers(c * h * w * k, 23, 64) - 0.5).view([c * h * w, k]);
        let logits = |z: &Tensor| z.flatten(1, -1).matmul(&weight);
        let labels = logits(&x).argmax(-1, false);
        let _ = labels.get(3).fill_(0);
        let epsilon = 1.0 / 32.0;
        let attack = Square {
            epsilon,
            queries: 60,
            p_init: 0.8,
            rescale_schedule: true,
        };
        for period in [1, COMPACT_EVERY] {
            tch::manual_seed(7);
            let adversarial = attack.run_compacting(&logits, &x, &labels, period);
            let change = (&adversarial - &x).view([n, -1]);
            for (i, expected) in FRA31_SIGNS.iter().enumerate() {
                let signs: String = Vec::<f32>::try_from(change.get(i as i64))
                    .unwrap()
                    .iter()
                    .map(|&d| match d {
                        d if d > 0.0 => '+',
                        d if d < 0.0 => '-',
                        _ => '0',
                    })
                    .collect();
                assert_eq!(&signs, expected, "point {i}, period {period}");
            }
            // Every pixel of an attacked point moves by ±ε exactly.
            let attacked = Tensor::from_slice(&[0i64, 1, 2, 4, 5]);
            let moved = change.index_select(0, &attacked).abs();
            assert!(moved.eq(epsilon).all().int64_value(&[]) == 1);
            let fooled: Vec<bool> = Vec::try_from(fooled(&logits(&adversarial), &labels)).unwrap();
            assert_eq!(fooled, [false, false, true, true, true, true]);
        }
    }
}
