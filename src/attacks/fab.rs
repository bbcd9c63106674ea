//! Targeted FAB, L∞ (FAB-T, the third attack of standard AutoAttack; Croce & Hein 2020), following
//! fra31/auto-attack's `FABAttack.perturb` with `targeted=True` and one restart. For each of the
//! classes ranked 2nd, 3rd, … by the clean logits, FAB walks to the linearised boundary between the
//! true and the target class, biased towards the clean image, keeping the smallest adversarial
//! point it meets; a point counts only if it is still misclassified within ε. Everything runs
//! batched on the device: the only host reads are the number of points left to attack per target.
use super::{input_gradient, per_sample, Logits};
use tch::{Kind, Tensor};

#[derive(Clone, Copy, Debug)]
pub struct FabTargeted {
    /// L∞ budget: only adversarial points within ε count as successes.
    pub epsilon: f64,
    /// `n_iter`: 100 in standard AutoAttack, 10 in the torchattacks 3.5.1 preset.
    pub steps: usize,
    /// `n_target_classes` (capped at classes − 1).
    pub targets: usize,
    /// Upper bound of the bias `α` towards the projection of the clean image.
    pub alpha_max: f64,
    /// Overshoot of each projection step.
    pub eta: f64,
    /// Backward step towards the clean image once a point is adversarial.
    pub beta: f64,
}

/// `res2`'s "nothing found yet" norm in the reference.
const NOT_FOUND: f64 = 1e10;

impl FabTargeted {
    /// Standard AutoAttack values for everything but `steps`.
    pub fn new(epsilon: f64, steps: usize) -> FabTargeted {
        FabTargeted {
            epsilon,
            steps,
            targets: 9,
            alpha_max: 0.1,
            eta: 1.05,
            beta: 0.9,
        }
    }

    /// Runs FAB-T for each target (the classes ranked 2nd, 3rd, … by the clean logits), each time
    /// only on the points not yet fooled within ε; returns images of `x`'s shape: the adversarial
    /// image where an attack succeeded within ε, the clean image elsewhere (in particular for the
    /// points misclassified from the start). Detached.
    pub fn run(&self, logits: Logits, x: &Tensor, labels: &Tensor) -> Tensor {
        let x = x.detach();
        crate::thread_modes::no_grad(|| {
            // The reference recomputes the clean logits of the remaining points for every target;
            // the network is deterministic in eval mode, so one forward gives the same ranking.
            let clean = logits(&x);
            let classes = clean.size()[1];
            // Ascending, as the reference's `sort(dim=-1)[1][:, -target_class]`.
            let ranking = clean.argsort(-1, false);
            let mut robust = clean.argmax(-1, false).eq_tensor(labels);
            let mut adversarial = x.copy();
            let targets = (self.targets as i64).min(classes - 1);
            for rank in 2..=targets + 1 {
                let to_fool = robust.nonzero().squeeze_dim(1);
                if to_fool.size()[0] == 0 || super::interrupt::requested() {
                    break;
                }
                let x_to_fool = x.index_select(0, &to_fool);
                let y_to_fool = labels.index_select(0, &to_fool);
                let target = ranking.index_select(0, &to_fool).select(1, classes - rank);
                let candidate = self.single_run(logits, &x_to_fool, &y_to_fool, &target);
                let still_robust = logits(&candidate)
                    .argmax(-1, false)
                    .eq_tensor(&y_to_fool)
                    .logical_or(&linf_norm(&(&candidate - &x_to_fool)).gt(self.epsilon));
                let kept = adversarial.index_select(0, &to_fool);
                let merged = kept.where_self(&per_sample(&still_robust, &kept), &candidate);
                adversarial = adversarial.index_copy(0, &to_fool, &merged);
                robust = robust.index_copy(0, &to_fool, &still_robust);
            }
            adversarial
        })
    }

    /// One FAB-T run (no random start: AutoAttack's FAB-T has a single restart) against one
    /// target per point, on points all correctly classified. Returns the smallest-L∞ adversarial
    /// point found, or the clean image where none was found (whatever its distance).
    fn single_run(
        &self,
        logits: Logits,
        clean: &Tensor,
        labels: &Tensor,
        target: &Tensor,
    ) -> Tensor {
        let batch = clean.size()[0];
        let flat = |t: &Tensor| t.reshape([batch, -1]);
        let clean_flat = flat(clean);
        let mut current = clean.copy();
        let mut best = clean.copy();
        let mut best_norm = Tensor::full([batch], NOT_FOUND, (clean.kind(), clean.device()));
        for _ in 0..self.steps {
            // A stop request: the caller discards what this run found (super::interrupt).
            if super::interrupt::requested() {
                break;
            }
            // One hyperplane per point (the targeted boundary), so the reference's arg-min over
            // `dist1` is that hyperplane: `⟨w, z⟩ = b` is the boundary linearised at `current`.
            let (margin, gradient) = target_margin(logits, &current, labels, target);
            let w = flat(&gradient);
            let b = -margin + (&w * flat(&current)).sum_dim_intlist(1, false, w.kind());
            // Project the iterate and the clean image in one call.
            let steps = project_linf_hyperplane(
                &Tensor::cat(&[flat(&current), clean_flat.shallow_clone()], 0),
                &Tensor::cat(&[&w, &w], 0),
                &Tensor::cat(&[&b, &b], 0),
            );
            let from_current = steps.narrow(0, 0, batch).view_as(clean);
            let from_clean = steps.narrow(0, batch, batch).view_as(clean);
            let lengths = steps.abs().amax(1, false).clamp_min(1e-8);
            let (to_current, to_clean) =
                (lengths.narrow(0, 0, batch), lengths.narrow(0, batch, batch));
            // The closer the boundary to the iterate relative to the clean image, the more the
            // step leans towards the clean image's projection (small distortion).
            let alpha = per_sample(
                &(&to_current / (&to_current + &to_clean)).clamp(0.0, self.alpha_max),
                clean,
            );
            current = ((&current + &from_current * self.eta) * (-&alpha + 1.0)
                + (clean + &from_clean * self.eta) * &alpha)
                .clamp(0.0, 1.0);

            // Any misclassification counts, not only as the target class.
            let is_adversarial = logits(&current).argmax(-1, false).ne_tensor(labels);
            let norm = linf_norm(&(&current - clean));
            let better = is_adversarial.logical_and(&norm.lt_tensor(&best_norm));
            best = current.where_self(&per_sample(&better, clean), &best);
            best_norm = norm.where_self(&better, &best_norm);
            // Back off towards the clean image from adversarial iterates, to find closer ones.
            let backed_off = clean + (&current - clean) * self.beta;
            current = backed_off.where_self(&per_sample(&is_adversarial, clean), &current);
        }
        best
    }
}

/// `logit_target − logit_label` per point (negative while correctly classified) and its input
/// gradient, `[B]` and `x`'s shape.
fn target_margin(logits: Logits, x: &Tensor, labels: &Tensor, target: &Tensor) -> (Tensor, Tensor) {
    crate::thread_modes::with_grad(|| {
        let input = x.detach().set_requires_grad(true);
        let output = logits(&input);
        let pick = |classes: &Tensor| {
            output
                .gather(1, &classes.unsqueeze(1), false)
                .squeeze_dim(1)
        };
        let margin = pick(target) - pick(labels);
        let gradient = input_gradient(&margin.sum(None), &input);
        (margin.detach(), gradient)
    })
}

/// `‖v_i‖∞` per sample, `[B]`.
fn linf_norm(v: &Tensor) -> Tensor {
    v.abs().flatten(1, -1).amax(1, false)
}

/// The reference's `projection_linf`: for each row `p` of `points` `[N, n]` with hyperplane
/// `⟨w, z⟩ = b` (`w` `[N, n]`, `b` `[N]`), the step `d` of least `‖d‖∞` with `⟨w, p + d⟩ = b` and
/// `p + d ∈ [0, 1]ⁿ`. Where the box cannot reach the hyperplane, `d` moves every coordinate to the
/// face of the box that goes furthest towards it. Coordinates with `w_i = 0` never move.
///
/// Every coordinate moves by `min(λ, room_i)` against the sign of `w` (oriented so that the point
/// must decrease `⟨w, ·⟩`), so the reachable decrease `f(λ) = Σ|w_i| min(λ, room_i)` is piecewise
/// linear in `λ`; a binary search over the sorted rooms finds the piece where `f(λ)` meets the gap.
/// Batched: every row runs the same search, and masks choose among the three cases.
pub fn project_linf_hyperplane(points: &Tensor, w: &Tensor, b: &Tensor) -> Tensor {
    let n = points.size()[1];
    let (kind, device) = (points.kind(), points.device());
    let rows = points.size()[0];
    let dot = |u: &Tensor, v: &Tensor| (u * v).sum_dim_intlist(1, false, kind);
    // Orient the hyperplane so that ⟨w, p⟩ ≥ b; `b` then becomes the change ⟨w, d⟩ must make (≤ 0).
    let sign = (dot(w, points) - b).ge(0.0).to_kind(kind) * 2.0 - 1.0;
    let w = w * sign.unsqueeze(1);
    let b = b * &sign - dot(&w, points);
    let moves = w.ne(0.0).to_kind(kind);
    // 1 where the coordinate moves up (w_i < 0), 0 where it moves down.
    let up = w.lt(0.0).to_kind(kind);
    // How far each coordinate can go before it reaches the face it heads for.
    let to_face = (&up - points) * &moves;
    let room = &up - points * (&up * 2.0 - 1.0);
    let ascending = room.argsort(1, false);
    // The decrease when every coordinate goes to its face: the furthest the box can go.
    let full = dot(&w, &to_face);
    // In order of decreasing room, `s_k` sums |w| over the coordinates with room ≥ the k-th
    // largest, and `sb_k` is minus the decrease of all the others (already at their faces).
    let descending = ascending.flip([1]);
    let w_desc = w.gather(1, &descending, false);
    let s = w_desc.abs().cumsum(1, kind);
    let sb = (-&w_desc * to_face.gather(1, &descending, false)).cumsum(1, kind) + full.unsqueeze(1);
    let last = |t: &Tensor| t.select(1, n - 1);
    let least_room = room
        .gather(1, &ascending.narrow(1, 0, 1), false)
        .squeeze_dim(1);
    // The hyperplane is met before any coordinate reaches its face.
    let unbounded = (&b - (last(&sb) - last(&s) * least_room)).gt(0.0);
    // Reachable within the box, but only after some coordinates stop at their faces.
    let bounded = (&b - &full).gt(0.0).logical_and(&unbounded.logical_not());

    let mut lower = Tensor::zeros([rows], (Kind::Int64, device));
    let mut upper = Tensor::full([rows], n - 1, (Kind::Int64, device));
    let searches = (n as f64).log2().ceil() as usize;
    for _ in 0..searches {
        let middle = (&lower + &upper).divide_scalar_mode(2, "floor");
        let at = middle.unsqueeze(1);
        let coordinate = ascending.gather(1, &(-&at + (n - 1)), false);
        let reached =
            sb.gather(1, &at, false) - s.gather(1, &at, false) * room.gather(1, &coordinate, false);
        let short = (&b - reached.squeeze_dim(1)).gt(0.0);
        lower = middle.where_self(&short, &lower);
        upper = upper.where_self(&short, &middle);
    }

    let lambda_unbounded = ((&b - last(&sb)) / -last(&s)).clamp_min(0.0).unsqueeze(1);
    let step_unbounded = (&up * 2.0 - 1.0) * lambda_unbounded;
    let at = lower.unsqueeze(1);
    let lambda =
        ((b.unsqueeze(1) - sb.gather(1, &at, false)) / -s.gather(1, &at, false)).clamp_min(0.0);
    let step_bounded = lambda.minimum(&to_face) * &up + (-&lambda).maximum(&to_face) * (-&up + 1.0);
    let step = step_unbounded.where_self(
        &unbounded.unsqueeze(1),
        &step_bounded.where_self(&bounded.unsqueeze(1), &to_face),
    );
    step * moves
}

#[cfg(test)]
mod tests {
    use super::*;

    fn float(values: &[f64]) -> Tensor {
        Tensor::from_slice(values).to_kind(Kind::Float)
    }

    fn host(t: &Tensor) -> Vec<f64> {
        Vec::<f64>::try_from(t.flatten(0, -1).to_kind(Kind::Double)).unwrap()
    }

    fn dot(u: &[f64], v: &[f64]) -> f64 {
        u.iter().zip(v).map(|(a, b)| a * b).sum()
    }

    fn max_abs(v: &[f64]) -> f64 {
        v.iter().fold(0.0, |m, x| m.max(x.abs()))
    }

    /// The projection of one point, checked to stay in the box.
    fn project_one(p: &[f64], w: &[f64], b: f64) -> Vec<f64> {
        let d = host(&project_linf_hyperplane(
            &float(p).unsqueeze(0),
            &float(w).unsqueeze(0),
            &float(&[b]),
        ));
        for (pi, di) in p.iter().zip(&d) {
            assert!(
                (-1e-6..=1.0 + 1e-6).contains(&(pi + di)),
                "{p:?} + {d:?} leaves the box"
            );
        }
        d
    }

    fn assert_close(got: &[f64], want: &[f64], tolerance: f64) {
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() <= tolerance, "got {got:?}, want {want:?}");
        }
    }

    /// Lands on `⟨w, p + d⟩ = b`.
    fn assert_on_plane(p: &[f64], w: &[f64], b: f64, d: &[f64]) {
        let z: Vec<f64> = p.iter().zip(d).map(|(a, b)| a + b).collect();
        assert!(
            (dot(w, &z) - b).abs() < 1e-5,
            "⟨w, p + d⟩ = {} ≠ {b}",
            dot(w, &z)
        );
    }

    #[test]
    fn projection_hand_cases() {
        // ⟨w, p⟩ = 1 must fall to 0.6: 0.2 on each coordinate, the box far away.
        let (p, w) = ([0.5, 0.5], [1.0, 1.0]);
        let d = project_one(&p, &w, 0.6);
        assert_close(&d, &[-0.2, -0.2], 1e-6);
        assert_on_plane(&p, &w, 0.6, &d);
        // Must fall by 0.4, but the first coordinate can fall only 0.1: the other moves 0.3.
        let (p, w) = ([0.1, 0.5], [1.0, 1.0]);
        let d = project_one(&p, &w, 0.2);
        assert_close(&d, &[-0.1, -0.3], 1e-6);
        assert_on_plane(&p, &w, 0.2, &d);
        // From below the hyperplane (⟨w, p⟩ = −0.4 must rise to 0.6), the second coordinate stops
        // at 0: λ + 2·0.3 = 1 gives λ = 0.4.
        let (p, w) = ([0.2, 0.3], [1.0, -2.0]);
        let d = project_one(&p, &w, 0.6);
        assert_close(&d, &[0.4, -0.3], 1e-6);
        assert_on_plane(&p, &w, 0.6, &d);
        // Already on the hyperplane.
        let d = project_one(&[0.3, 0.6], &[1.0, 1.0], 0.9);
        assert_close(&d, &[0.0, 0.0], 1e-6);
        // A zero weight never moves; 3λ = 0.3.
        let (p, w) = ([0.5, 0.5, 0.5], [2.0, 0.0, -1.0]);
        let d = project_one(&p, &w, 0.2);
        assert_close(&d, &[-0.1, 0.0, 0.1], 1e-6);
        assert_on_plane(&p, &w, 0.2, &d);
        // Out of the box's reach on either side: the face that goes furthest.
        assert_close(
            &project_one(&[0.5, 0.25], &[1.0, 1.0], -1.0),
            &[-0.5, -0.25],
            1e-6,
        );
        assert_close(
            &project_one(&[0.5, 0.25], &[1.0, -1.0], 3.0),
            &[0.5, -0.25],
            1e-6,
        );
    }

    /// The least λ with `Σ|w_i| min(λ, room_i) = gap` (bisection in f64), or `None` where the box
    /// cannot reach the hyperplane: every L∞ step of norm λ in the box changes ⟨w, ·⟩ by at most
    /// that sum, so this λ is the minimal norm.
    fn least_norm(room: &[f64], w: &[f64], gap: f64) -> Option<f64> {
        let reach = |l: f64| -> f64 { w.iter().zip(room).map(|(w, r)| w.abs() * l.min(*r)).sum() };
        if reach(1.0) < gap {
            return None;
        }
        let (mut lo, mut hi) = (0.0, 1.0);
        for _ in 0..100 {
            let mid = 0.5 * (lo + hi);
            if reach(mid) < gap {
                lo = mid
            } else {
                hi = mid
            }
        }
        Some(hi)
    }

    /// The box's room for each coordinate when moving `⟨w, ·⟩` down (`side` 1) or up (`side` −1),
    /// and the direction of that move.
    fn room_and_direction(p: &[f64], w: &[f64], side: f64) -> (Vec<f64>, Vec<f64>) {
        let direction: Vec<f64> = w.iter().map(|w| -w.signum() * side).collect();
        let room = p
            .iter()
            .zip(&direction)
            .map(|(p, t)| if *t > 0.0 { 1.0 - p } else { *p })
            .collect();
        (room, direction)
    }

    #[test]
    fn projection_matches_brute_force_and_beats_feasible_alternatives() {
        tch::manual_seed(7);
        let (rows, n) = (48, 33);
        let options = (Kind::Float, tch::Device::Cpu);
        let points = Tensor::rand([rows, n], options);
        // Some zero weights; mixed signs.
        let w = Tensor::randn([rows, n], options) * Tensor::rand([rows, n], options).gt(0.2);
        let (ph, wh) = (host(&points), host(&w));
        let rows_of = |v: &[f64]| {
            v.chunks(n as usize)
                .map(<[f64]>::to_vec)
                .collect::<Vec<_>>()
        };
        let (ph, wh) = (rows_of(&ph), rows_of(&wh));
        // Gaps at 5%, 70% and 150% of what the box allows, on either side: the three cases.
        let b: Vec<f64> = (0..rows as usize)
            .map(|r| {
                let side = if r % 2 == 0 { 1.0 } else { -1.0 };
                let (room, _) = room_and_direction(&ph[r], &wh[r], side);
                let most: f64 = wh[r].iter().zip(&room).map(|(w, r)| w.abs() * r).sum();
                dot(&wh[r], &ph[r]) - side * [0.05, 0.7, 1.5][r % 3] * most
            })
            .collect();
        let d = rows_of(&host(&project_linf_hyperplane(&points, &w, &float(&b))));
        let mut cases = [0; 3];
        let mut rng = 12345u64;
        let mut uniform = || {
            rng = rng
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (rng >> 11) as f64 / (1u64 << 53) as f64
        };
        for (r, ((p, w), d)) in ph.iter().zip(&wh).zip(&d).enumerate() {
            let gap = dot(w, p) - b[r];
            let (room, direction) = room_and_direction(p, w, gap.signum());
            for (pi, di) in p.iter().zip(d) {
                assert!(
                    (-1e-6..=1.0 + 1e-6).contains(&(pi + di)),
                    "row {r} leaves the box"
                );
            }
            let moved = |lambda: f64| -> Vec<f64> {
                let steps = direction.iter().zip(&room).zip(w);
                steps
                    .map(|((t, r), w)| if *w == 0.0 { 0.0 } else { t * lambda.min(*r) })
                    .collect()
            };
            let expected = match least_norm(&room, w, gap.abs()) {
                Some(lambda) => {
                    let moving_room = room.iter().zip(w).filter(|(_, w)| **w != 0.0);
                    let least_room = moving_room.fold(1.0_f64, |m, (r, _)| m.min(*r));
                    cases[usize::from(lambda >= least_room)] += 1;
                    assert_on_plane(p, w, b[r], d);
                    // Feasible alternatives: towards random box points beyond the hyperplane.
                    for _ in 0..20 {
                        let q: Vec<f64> = (0..n).map(|_| uniform()).collect();
                        let along: Vec<f64> = q.iter().zip(p).map(|(q, p)| q - p).collect();
                        let tau = -gap / dot(w, &along);
                        if (0.0..=1.0).contains(&tau) {
                            let alternative: Vec<f64> = along.iter().map(|a| a * tau).collect();
                            assert!(max_abs(d) <= max_abs(&alternative) + 1e-5, "row {r}");
                        }
                    }
                    moved(lambda)
                }
                None => {
                    cases[2] += 1;
                    moved(1.0)
                }
            };
            assert_close(d, &expected, 1e-4);
        }
        let message = "cases (unbounded, bounded, unreachable)";
        assert!(cases.iter().all(|&c| c > 0), "{message} = {cases:?}");
    }

    /// `logits = x.flatten() · W + c`.
    fn linear(weights: Tensor, bias: Tensor) -> impl Fn(&Tensor) -> Tensor {
        move |x: &Tensor| x.flatten(1, -1).matmul(&weights) + &bias
    }

    fn linf_distances(a: &Tensor, b: &Tensor) -> Vec<f64> {
        host(&linf_norm(&(a - b)))
    }

    /// Three classes on 2×2 images at 0.5: class 1 (ranked 2nd) is 0.25 away in L∞, class 2
    /// (ranked 3rd) only 0.1, along other pixels.
    fn three_classes() -> (impl Fn(&Tensor) -> Tensor, Tensor, Tensor) {
        let weights =
            float(&[0.0, 0.2, 0.0, 0.0, 0.2, 0.0, 0.0, 0.0, 2.0, 0.0, 0.0, 2.0]).view([4, 3]);
        let model = linear(weights, float(&[0.0, -0.3, -2.4]));
        (
            model,
            Tensor::full([1, 1, 2, 2], 0.5, (Kind::Float, tch::Device::Cpu)),
            Tensor::from_slice(&[0i64]),
        )
    }

    #[test]
    fn later_targets_are_tried_and_the_closest_boundary_is_found() {
        let (model, x, y) = three_classes();
        let logits = model(&x);
        assert_eq!(host(&logits.argsort(-1, true)), [0.0, 1.0, 2.0]);
        // 9 targets capped at 2; the 2nd-ranked class is beyond ε, the 3rd within.
        let adversarial = FabTargeted::new(0.15, 100).run(&model, &x, &y);
        let distance = linf_distances(&adversarial, &x)[0];
        assert!(
            (0.1 - 1e-5..=0.105 + 1e-5).contains(&distance),
            "‖δ‖∞ = {distance}"
        );
        assert_eq!(model(&adversarial).argmax(-1, false).int64_value(&[0]), 2);
        assert!(
            adversarial.min().double_value(&[]) >= 0.0
                && adversarial.max().double_value(&[]) <= 1.0
        );
        // Only the 2nd-ranked class: its boundary is beyond ε, so the clean image comes back...
        let one_target = FabTargeted {
            targets: 1,
            ..FabTargeted::new(0.15, 100)
        };
        assert!(one_target.run(&model, &x, &y).equal(&x));
        // ...and within a larger ε it is found, still close to its 0.25.
        let adversarial = FabTargeted {
            epsilon: 0.3,
            ..one_target
        }
        .run(&model, &x, &y);
        let distance = linf_distances(&adversarial, &x)[0];
        assert!(
            (0.25 - 1e-5..=0.2625 + 1e-5).contains(&distance),
            "‖δ‖∞ = {distance}"
        );
        assert_eq!(model(&adversarial).argmax(-1, false).int64_value(&[0]), 1);
    }

    /// A random linear model on 3×2×2 images, labels its own predictions (or wrong ones), and each
    /// point's exact L∞ distance to misclassification, `min_t margin_t / ‖w_y − w_t‖₁` (the box
    /// never binds: points sit in [0.35, 0.65] and the distances are below 0.3).
    fn random_linear(batch: i64) -> (impl Fn(&Tensor) -> Tensor, Tensor, Tensor, Vec<f64>) {
        tch::manual_seed(11);
        let (n, classes) = (12i64, 10i64);
        let options = (Kind::Float, tch::Device::Cpu);
        let weights = Tensor::randn([n, classes], options);
        let bias = Tensor::randn([classes], options) * 0.3;
        let x = Tensor::rand([batch, 3, 2, 2], options) * 0.3 + 0.35;
        let model = linear(weights.copy(), bias);
        let logits = model(&x);
        let labels = logits.argmax(-1, false);
        let margins = logits.gather(1, &labels.unsqueeze(1), false) - &logits;
        let w_label = weights
            .transpose(0, 1)
            .index_select(0, &labels)
            .unsqueeze(2);
        let spread = (w_label - weights.unsqueeze(0))
            .abs()
            .sum_dim_intlist(1, false, Kind::Float);
        let distances = (margins / spread).scatter_value(1, &labels.unsqueeze(1), f64::INFINITY);
        let nearest = host(&distances.amin(1, false));
        assert!(nearest.iter().all(|d| *d < 0.3));
        (model, x, labels, nearest)
    }

    #[test]
    fn succeeds_exactly_where_the_boundary_is_within_epsilon() {
        let epsilon = 0.1;
        let (model, x, y, nearest) = random_linear(64);
        let adversarial = FabTargeted::new(epsilon, 10).run(&model, &x, &y);
        assert!(
            adversarial.min().double_value(&[]) >= 0.0
                && adversarial.max().double_value(&[]) <= 1.0
        );
        let predicted = host(&model(&adversarial).argmax(-1, false));
        let (labels, moved) = (host(&y), linf_distances(&adversarial, &x));
        let (mut near, mut far) = (0, 0);
        for i in 0..nearest.len() {
            if nearest[i] * 1.06 < epsilon {
                // The first step already lands 5% beyond the boundary of the nearest target.
                near += 1;
                assert!(
                    predicted[i] != labels[i],
                    "point {i} at {} not fooled",
                    nearest[i]
                );
                assert!(
                    moved[i] <= epsilon + 1e-6 && moved[i] >= nearest[i] - 1e-5,
                    "point {i}"
                );
            } else if nearest[i] > epsilon {
                far += 1;
                assert_eq!(moved[i], 0.0, "point {i} at {} moved", nearest[i]);
            }
        }
        assert!(near >= 5 && far >= 5, "near {near}, far {far}");
    }

    #[test]
    fn points_misclassified_from_the_start_are_left_clean() {
        let (model, x, y, nearest) = random_linear(32);
        // Every other label wrong: such points are not attacked (were they, FAB would "fool"
        // them at once, as any prediction differs from the wrong label).
        let wrong = Tensor::arange(32, (Kind::Int64, tch::Device::Cpu))
            .remainder(2)
            .eq(1);
        let labels = ((&y + 1).remainder(10)).where_self(&wrong, &y);
        let adversarial = FabTargeted::new(0.3, 10).run(&model, &x, &labels);
        let moved = linf_distances(&adversarial, &x);
        for i in 0..32 {
            if i % 2 == 1 {
                assert_eq!(moved[i], 0.0, "misclassified point {i} moved");
            } else if nearest[i] * 1.06 < 0.3 {
                assert!(moved[i] > 0.0 && moved[i] <= 0.3 + 1e-6, "point {i}");
            }
        }
    }
}
