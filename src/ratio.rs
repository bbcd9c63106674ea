//! FixRAT and AdaRAT: how strongly a step pulls on the standard loss `L_s` against the regulariser
//! `R = (β/ε)(L_a − L_s)` (docs/protocol.md#fixrat-and-adarat).
//!
//! One mechanism for every method: a method supplies `L_s`, `L_a`, its baseline loss and any extra
//! term (TRADES' KL), and [`Ratio::combine`] weighs them for the job's mode.
use crate::config::RatioConfig;
use crate::vocab::Mode;
use std::f64::consts::PI;
use tch::{Kind, Tensor};

/// The losses of one training batch, as a method computes them.
pub struct LossTerms {
    /// `L_s`: the standard (clean) loss, e.g. `CE(f(x), y)`; also the barrier's input.
    pub standard: Tensor,
    /// `L_a`: its adversarial counterpart, e.g. `CE(f(x'), y)`.
    pub adversarial: Tensor,
    /// The method's own loss, used in the baseline mode.
    pub baseline: Tensor,
    /// A term added in FixRAT and in AdaRAT's barrier branch (TRADES' λ·KL); dropped on the clean-only branch.
    pub extra: Option<Tensor>,
}

impl LossTerms {
    /// The terms of a method whose baseline loss is its adversarial loss `L_a` (PGD-AT, FAT, DAT,
    /// KD-AT, IAD), with nothing extra.
    pub fn adversarial_baseline(standard: Tensor, adversarial: Tensor) -> LossTerms {
        LossTerms {
            baseline: adversarial.shallow_clone(),
            standard,
            adversarial,
            extra: None,
        }
    }
}

/// The loss to minimise and what the console plots for it. All scalars stay on the device so that
/// weighting a batch never waits for the GPU.
pub struct Weighted {
    pub loss: Tensor,
    /// The slope on `L_s` (1 for FixRAT, `H'(L_s)` on AdaRAT's barrier branch); `None` in baseline.
    pub ratio: Option<Tensor>,
    /// 1 when AdaRAT took the clean-only branch (`L_s ≥ switch·u`), else 0; `None` outside AdaRAT.
    pub clean_only: Option<Tensor>,
}

#[derive(Clone, Copy, Debug)]
pub struct Ratio {
    mode: Mode,
    cfg: RatioConfig,
    /// β/ε, the weight of `L_a − L_s`.
    weight: f64,
    /// Whether `L_s = switch·u` exactly takes the barrier branch (Generalist's `≤`, docs/protocol.md Q19)
    /// rather than the clean-only one (the main scripts' `≥`).
    barrier_at_threshold: bool,
}

/// A ratio mode without its parameters.
#[derive(thiserror::Error, Debug, PartialEq)]
pub enum RatioError {
    #[error("mode {mode} needs beta, up and down, and none are configured")]
    Unconfigured { mode: Mode },
}

impl Ratio {
    /// `epsilon` is the ε of β/ε: the training attack's budget (0.031 for Generalist on CIFAR-10).
    /// FixRAT and AdaRAT need β, u, d; the baseline ignores them.
    pub fn new(mode: Mode, cfg: Option<RatioConfig>, epsilon: f64) -> Result<Ratio, RatioError> {
        let cfg = match (mode, cfg) {
            (_, Some(cfg)) => cfg,
            (Mode::Baseline, None) => RatioConfig {
                beta: 0.0,
                up: 1.0,
                down: 0.0,
                tau: 0.0,
                switch: 1.0,
            },
            (mode, None) => return Err(RatioError::Unconfigured { mode }),
        };
        Ok(Ratio {
            mode,
            cfg,
            weight: cfg.beta / epsilon,
            barrier_at_threshold: false,
        })
    }

    /// Sends a loss exactly at the switch to the barrier branch when `yes` (Generalist, docs/protocol.md Q19).
    pub fn with_barrier_at_threshold(self, yes: bool) -> Ratio {
        Ratio {
            barrier_at_threshold: yes,
            ..self
        }
    }

    /// The regulariser's weight β/ε.
    pub fn weight(&self) -> f64 {
        self.weight
    }

    /// The AdaRAT switch `switch·u`: at or above it a batch trains on the clean loss alone.
    pub fn threshold(&self) -> f64 {
        self.cfg.switch * self.cfg.up
    }

    pub fn combine(&self, terms: LossTerms) -> Weighted {
        let LossTerms {
            standard,
            adversarial,
            baseline,
            extra,
        } = terms;
        let regulariser = (&adversarial - &standard) * self.weight;
        let with_extra = |loss: Tensor| match &extra {
            Some(term) => loss + term,
            None => loss,
        };
        match self.mode {
            Mode::Baseline => Weighted {
                loss: baseline,
                ratio: None,
                clean_only: None,
            },
            Mode::FixRat => Weighted {
                loss: with_extra(&standard + regulariser),
                ratio: Some(standard.ones_like().detach()),
                clean_only: None,
            },
            Mode::AdaRat => {
                let threshold = self.threshold();
                let clean_only = if self.barrier_at_threshold {
                    standard.gt(threshold)
                } else {
                    standard.ge(threshold)
                };
                // The barrier is only selected below the threshold; clamping its input there keeps the
                // unselected branch finite (tan explodes at u) without changing the selected value.
                let below = standard.clamp_max(threshold);
                let barrier_loss = with_extra(barrier(&below, &self.cfg) + regulariser);
                let loss = standard.where_self(&clean_only, &barrier_loss);
                let slope = barrier_slope_tensor(&below.detach(), &self.cfg);
                Weighted {
                    loss,
                    ratio: Some(slope),
                    clean_only: Some(clean_only.to_kind(Kind::Float)),
                }
            }
        }
    }
}

/// The angle `a = π(L − d) / (2(u − d))` of the barrier's tangent.
fn angle(loss: f64, cfg: &RatioConfig) -> f64 {
    PI * (loss - cfg.down) / (2.0 * (cfg.up - cfg.down))
}

/// `H(L) = max(0, tan(a))^(1+τ)`: zero up to `d`, rising to +∞ as `L → u`.
pub fn barrier_value(loss: f64, cfg: &RatioConfig) -> f64 {
    angle(loss, cfg).tan().max(0.0).powf(1.0 + cfg.tau)
}

/// `H'(L) = (1+τ)·tan(a)^τ·sec²(a)·π/(2(u−d))` for `L > d`, and 0 for `L ≤ d`.
pub fn barrier_slope(loss: f64, cfg: &RatioConfig) -> f64 {
    if loss <= cfg.down {
        return 0.0;
    }
    let a = angle(loss, cfg);
    (1.0 + cfg.tau) * a.tan().powf(cfg.tau) / a.cos().powi(2) * PI / (2.0 * (cfg.up - cfg.down))
}

/// `H(L)` on a tensor, differentiable (its gradient at `d` is 0 because τ > 0).
pub fn barrier(loss: &Tensor, cfg: &RatioConfig) -> Tensor {
    let a = (loss - cfg.down) * (PI / (2.0 * (cfg.up - cfg.down)));
    a.tan().clamp_min(0.0).pow_tensor_scalar(1.0 + cfg.tau)
}

/// `H'(L)` on a tensor, for plotting (not differentiated).
fn barrier_slope_tensor(loss: &Tensor, cfg: &RatioConfig) -> Tensor {
    let scale = PI / (2.0 * (cfg.up - cfg.down));
    let a = (loss - cfg.down) * scale;
    let slope = a.tan().clamp_min(0.0).pow_tensor_scalar(cfg.tau) / a.cos().square()
        * ((1.0 + cfg.tau) * scale);
    slope.where_self(&loss.gt(cfg.down), &slope.zeros_like())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(beta: f64, up: f64, down: f64) -> RatioConfig {
        RatioConfig {
            beta,
            up,
            down,
            tau: 0.01,
            switch: 0.7,
        }
    }

    fn scalar(t: &Tensor) -> f64 {
        t.double_value(&[])
    }

    #[test]
    fn barrier_matches_the_reference_table_at_the_switch() {
        // docs/protocol.md#default-beta-u-d-and-tau: H at L = 0.7u for every default (u, d).
        for (up, down, expected) in [
            (1.1, 0.4, 1.095),
            (1.5, 0.7, 0.8191),
            (2.3, 1.2, 0.660),
            (0.8, 0.2, 1.381),
            (1.4, 0.8, 0.506),
            (1.8, 0.4, 1.449),
            (1.3, 0.5, 1.041),
            (2.0, 0.8, 1.000),
        ] {
            let value = barrier_value(0.7 * up, &cfg(0.04, up, down));
            assert!(
                (value - expected).abs() < 1.5e-3,
                "H(0.7u) for ({up}, {down}) = {value}, expected {expected}"
            );
        }
    }

    #[test]
    fn barrier_by_hand() {
        let c = cfg(0.04, 1.1, 0.4);
        assert_eq!(barrier_value(0.4, &c), 0.0);
        assert_eq!(barrier_value(0.1, &c), 0.0);
        // L = 0.75: a = π·0.35/1.4 = π/4, tan = 1, H = 1.
        assert!((barrier_value(0.75, &c) - 1.0).abs() < 1e-12);
        // H'(0.75) = 1.01 · 1 · 2 · π/1.4.
        let expected = 1.01 * 2.0 * PI / 1.4;
        assert!((barrier_slope(0.75, &c) - expected).abs() < 1e-9);
        assert_eq!(barrier_slope(0.4, &c), 0.0);
    }

    #[test]
    fn slope_is_the_derivative_of_the_barrier() {
        for c in [
            cfg(0.04, 1.1, 0.4),
            cfg(0.03, 1.5, 0.7),
            cfg(0.05, 1.8, 0.4),
            cfg(0.04, 0.8, 0.2),
        ] {
            for frac in [0.05, 0.3, 0.6, 0.9] {
                let loss = c.down + frac * (0.7 * c.up - c.down);
                let h = 1e-6;
                let numeric =
                    (barrier_value(loss + h, &c) - barrier_value(loss - h, &c)) / (2.0 * h);
                let slope = barrier_slope(loss, &c);
                assert!(
                    (numeric - slope).abs() < 1e-4 * slope.max(1.0),
                    "H' at {loss}: {slope} vs {numeric}"
                );
                // The tensor barrier's autograd agrees with the closed form.
                let l = Tensor::from(loss).set_requires_grad(true);
                let grad = Tensor::run_backward(&[barrier(&l, &c)], &[&l], false, false)
                    .pop()
                    .unwrap();
                assert!((scalar(&grad) - slope).abs() < 1e-6 * slope.max(1.0));
                assert!((scalar(&barrier(&l, &c)) - barrier_value(loss, &c)).abs() < 1e-9);
            }
        }
    }

    fn terms(standard: f64, adversarial: f64, extra: Option<f64>) -> (LossTerms, Tensor, Tensor) {
        let s = Tensor::from(standard).set_requires_grad(true);
        let a = Tensor::from(adversarial).set_requires_grad(true);
        let t = LossTerms {
            standard: s.shallow_clone() * 1.0,
            adversarial: a.shallow_clone() * 1.0,
            baseline: a.shallow_clone() * 1.0,
            extra: extra.map(Tensor::from),
        };
        (t, s, a)
    }

    fn gradients(loss: &Tensor, s: &Tensor, a: &Tensor) -> (f64, f64) {
        let g = Tensor::run_backward(&[loss], &[s, a], false, false);
        // An input the loss does not use gets an undefined gradient: zero.
        let value = |g: &Tensor| if g.defined() { scalar(g) } else { 0.0 };
        (value(&g[0]), value(&g[1]))
    }

    #[test]
    fn baseline_uses_the_method_loss_and_has_no_ratio() {
        let (t, s, a) = terms(0.5, 1.5, None);
        let w = Ratio::new(Mode::Baseline, Some(cfg(0.04, 1.1, 0.4)), 8.0 / 255.0)
            .unwrap()
            .combine(t);
        assert_eq!(scalar(&w.loss), 1.5);
        assert!(w.ratio.is_none() && w.clean_only.is_none());
        assert_eq!(gradients(&w.loss, &s, &a), (0.0, 1.0));
    }

    #[test]
    fn fixrat_term_by_hand() {
        for (beta, eps, ls, la, extra) in [
            (0.04, 8.0 / 255.0, 0.5, 1.5, None),
            (0.03, 8.0 / 255.0, 0.9, 1.2, Some(0.25)),
            (0.04, 0.031, 1.0, 2.0, None),
        ] {
            let (t, s, a) = terms(ls, la, extra);
            let w = Ratio::new(Mode::FixRat, Some(cfg(beta, 1.1, 0.4)), eps)
                .unwrap()
                .combine(t);
            let k = beta / eps;
            let expected = ls + k * (la - ls) + extra.unwrap_or(0.0);
            assert!((scalar(&w.loss) - expected).abs() < 1e-9);
            assert_eq!(scalar(w.ratio.as_ref().unwrap()), 1.0);
            let (gs, ga) = gradients(&w.loss, &s, &a);
            assert!((gs - (1.0 - k)).abs() < 1e-9 && (ga - k).abs() < 1e-9);
        }
        // β = 0.04, ε = 8/255: the clean coefficient is 1 − 1.275 (reference table 5.1).
        assert!(
            (Ratio::new(Mode::FixRat, Some(cfg(0.04, 1.1, 0.4)), 8.0 / 255.0)
                .unwrap()
                .weight()
                - 1.275)
                .abs()
                < 1e-12
        );
    }

    #[test]
    fn adarat_branch_choice() {
        let c = cfg(0.04, 1.1, 0.4);
        let ratio = Ratio::new(Mode::AdaRat, Some(c), 8.0 / 255.0).unwrap();
        assert!((ratio.threshold() - 0.77).abs() < 1e-12);
        let k = 0.04 / (8.0 / 255.0);
        // Barrier branch: H(L_s) + β/ε(L_a − L_s) + extra.
        for (ls, la, extra) in [(0.5, 1.4, None), (0.3, 1.0, Some(0.2)), (0.76, 2.0, None)] {
            let (t, s, a) = terms(ls, la, extra);
            let w = ratio.combine(t);
            let expected = barrier_value(ls, &c) + k * (la - ls) + extra.unwrap_or(0.0);
            assert!(
                (scalar(&w.loss) - expected).abs() < 1e-9,
                "loss at L_s={ls}"
            );
            assert_eq!(scalar(w.clean_only.as_ref().unwrap()), 0.0);
            assert!((scalar(w.ratio.as_ref().unwrap()) - barrier_slope(ls, &c)).abs() < 1e-9);
            let (gs, ga) = gradients(&w.loss, &s, &a);
            assert!((gs - (barrier_slope(ls, &c) - k)).abs() < 1e-6 && (ga - k).abs() < 1e-9);
        }
        // Clean-only branch at and above 0.7u: the clean loss alone, no regulariser, no extra term.
        for ls in [0.77, 0.9, 1.1, 3.0] {
            let (t, s, a) = terms(ls, 5.0, Some(0.3));
            let w = ratio.combine(t);
            assert_eq!(scalar(&w.loss), ls);
            assert_eq!(scalar(w.clean_only.as_ref().unwrap()), 1.0);
            let (gs, ga) = gradients(&w.loss, &s, &a);
            assert_eq!((gs, ga), (1.0, 0.0));
        }
        // Other (u, d, τ) settings choose the branch at their own 0.7u.
        let c = RatioConfig {
            beta: 0.05,
            up: 1.8,
            down: 0.4,
            tau: 0.05,
            switch: 0.7,
        };
        let ratio = Ratio::new(Mode::AdaRat, Some(c), 8.0 / 255.0).unwrap();
        let (t, _, _) = terms(1.25, 2.0, None);
        assert_eq!(scalar(ratio.combine(t).clean_only.as_ref().unwrap()), 0.0);
        let (t, _, _) = terms(1.26, 2.0, None);
        assert_eq!(scalar(ratio.combine(t).clean_only.as_ref().unwrap()), 1.0);
        let (t, _, _) = terms(1.0, 2.0, None);
        let expected = barrier_value(1.0, &c) + 0.05 / (8.0 / 255.0) * 1.0;
        assert!((scalar(&ratio.combine(t).loss) - expected).abs() < 1e-9);
    }
}
