//! The paired statistics of the study's verdict (issue 27): does FixRAT or AdaRAT beat its method's
//! baseline, and by how many points? Seed-matched runs give a paired t-test ([`paired_t`]); two
//! models scored on the same test images give McNemar's exact test ([`mcnemar`]). Both give an
//! [`Evidence`]: the difference treatment − baseline in percentage points, its 95 % confidence
//! interval and its two-sided p, as scipy computes them (`tests/suite/stats.rs` checks every
//! number against scipy). Bad input (too few pairs, non-finite numbers, impossible counts) gives
//! None, never a panic.
use serde::{Deserialize, Serialize};
use statrs::distribution::{Binomial, ContinuousCDF, DiscreteCDF, Normal, StudentsT};
use std::fmt;

/// Which test an `Evidence` rests on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Test {
    PairedT,
    // Not kebab-case's "mc-nemar-exact".
    #[serde(rename = "mcnemar-exact")]
    McNemarExact,
}

impl Test {
    /// Its name in files (`paired-t`, `mcnemar-exact`), as serde writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Test::PairedT => "paired-t",
            Test::McNemarExact => "mcnemar-exact",
        }
    }
}

impl fmt::Display for Test {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Test::PairedT => "paired t",
            Test::McNemarExact => "McNemar exact",
        })
    }
}

/// A difference (treatment − baseline, in percentage points) with its evidence.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    pub test: Test,
    /// Seed pairs (paired t) or test images (McNemar).
    pub n: usize,
    pub delta: f64,
    /// 95 % confidence interval of delta.
    pub ci: Option<(f64, f64)>,
    /// Two-sided; None where the test has no answer (a paired t over differences all zero).
    pub p: Option<f64>,
}

impl Evidence {
    /// Whether p is below `alpha`; false without a p.
    pub fn significant(&self, alpha: f64) -> bool {
        self.p.is_some_and(|p| p < alpha)
    }

    /// `+4.50 [+1.20, +7.80] p 0.031`: Δ in points, its 95 % interval and p.
    pub fn summary(&self) -> String {
        let interval = self.ci.map_or(String::new(), |(low, high)| {
            format!(" [{low:+.2}, {high:+.2}]")
        });
        format!("{:+.2}{interval} {}", self.delta, self.p_text())
    }

    /// `p 0.031`, `p < 0.001`, or `p n/a` where the test has no answer.
    pub fn p_text(&self) -> String {
        match self.p {
            Some(p) if p < 0.001 => "p < 0.001".into(),
            Some(p) => format!("p {p:.3}"),
            None => "p n/a".into(),
        }
    }

    /// What it rests on: `paired t, n 3 seeds` or `McNemar exact, n 500 images`.
    pub fn basis(&self) -> String {
        let unit = match self.test {
            Test::PairedT => "seeds",
            Test::McNemarExact => "images",
        };
        format!("{}, n {} {unit}", self.test, self.n)
    }

    /// Significance marks for a table cell: `***` below 0.001, `**` below 0.01, `*` below 0.05.
    pub fn stars(&self) -> &'static str {
        match self.p {
            Some(p) if p < 0.001 => "***",
            Some(p) if p < 0.01 => "**",
            Some(p) if p < 0.05 => "*",
            _ => "",
        }
    }
}

/// The two-sided 95 % level of the intervals.
const UPPER: f64 = 0.975;

/// Seed-matched pairs (treatment, baseline) of one column: mean difference, 95 % CI from the t
/// distribution with n − 1 degrees of freedom, and the two-sided p of the paired t-test
/// (scipy.stats.ttest_rel). None below 2 pairs, or when a number (or a difference) is not finite.
///
/// When every difference is the same (sd = 0) the interval is that difference, zero wide, and p
/// is what scipy gives: t = ±inf and p = 0 for a non-zero difference, so `Some(0.0)`; t = 0/0 and
/// p = nan when every difference is zero, so None (with the interval (0, 0)).
pub fn paired_t(pairs: &[(f64, f64)]) -> Option<Evidence> {
    let n = pairs.len();
    if n < 2 {
        return None;
    }
    let differences: Vec<f64> = pairs.iter().map(|&(t, b)| t - b).collect();
    // A non-finite input makes its difference non-finite, and so does an overflowing one.
    if differences.iter().any(|d| !d.is_finite()) {
        return None;
    }
    let count = n as f64;
    // As numpy computes them: the mean, then the squared deviations from it (ddof = 1).
    let mean = differences.iter().sum::<f64>() / count;
    let variance = differences.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / (count - 1.0);
    let se = (variance / count).sqrt();
    if !mean.is_finite() || !se.is_finite() {
        return None;
    }
    let t = StudentsT::new(0.0, 1.0, count - 1.0).ok()?;
    let half = t.inverse_cdf(UPPER) * se;
    let p = if se > 0.0 {
        Some((2.0 * t.sf((mean / se).abs())).min(1.0))
    } else if mean != 0.0 {
        Some(0.0)
    } else {
        None
    };
    Some(Evidence {
        test: Test::PairedT,
        n,
        delta: mean,
        ci: Some((mean - half, mean + half)),
        p,
    })
}

/// One seed, the same test images: `treatment_only` images correct under the treatment's model
/// and wrong under the baseline's, `baseline_only` the reverse, of `images`.
/// delta = 100·(treatment_only − baseline_only)/images; p = McNemar's exact test, the two-sided
/// binomial test of min(b, c) out of b + c at 1/2 (scipy.stats.binomtest(min(b, c), b + c,
/// 0.5).pvalue, statsmodels' mcnemar(exact=True)); p = 1 when b + c = 0. CI: the Wald interval
/// for a difference of paired proportions, in points: delta ± z·100·sqrt((b + c) − (b − c)²/N)/N
/// with z = Φ⁻¹(0.975). None when images is 0 or b + c exceeds it (the two sets are disjoint).
pub fn mcnemar(treatment_only: u64, baseline_only: u64, images: u64) -> Option<Evidence> {
    let discordant = treatment_only.checked_add(baseline_only)?;
    if images == 0 || discordant > images {
        return None;
    }
    let (b, c, total) = (treatment_only as f64, baseline_only as f64, images as f64);
    let delta = 100.0 * (b - c) / total;
    let z = Normal::new(0.0, 1.0).ok()?.inverse_cdf(UPPER);
    // Never negative in exact arithmetic (|b − c| ≤ b + c ≤ N); clamped against rounding.
    let spread = ((b + c) - (b - c).powi(2) / total).max(0.0);
    let half = z * 100.0 * spread.sqrt() / total;
    let p = if discordant == 0 {
        1.0
    } else {
        // At 1/2 the distribution is symmetric: the other tail is as likely as this one.
        let fewer = treatment_only.min(baseline_only);
        let tail = Binomial::new(0.5, discordant).ok()?.cdf(fewer);
        (2.0 * tail).min(1.0)
    };
    Some(Evidence {
        test: Test::McNemarExact,
        n: usize::try_from(images).ok()?,
        delta,
        ci: Some((delta - half, delta + half)),
        p: Some(p),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(actual: f64, expected: f64) -> bool {
        (actual - expected).abs() <= 1e-12 * expected.abs().max(1.0)
    }

    #[test]
    fn paired_t_of_hand_checked_pairs() {
        // Differences 1, 2, 3: mean 2, sd 1, se 1/√3, t = 2√3 on 2 degrees of freedom.
        let e = paired_t(&[(11.0, 10.0), (22.0, 20.0), (33.0, 30.0)]).unwrap();
        assert_eq!((e.test, e.n), (Test::PairedT, 3));
        assert!(close(e.delta, 2.0));
        // With 2 degrees of freedom the t distribution has closed forms: the two-sided
        // p = 1 − t/√(t² + 2), the quantile at q is (2q − 1)/√(2q(1 − q)).
        let t = 2.0 * 3f64.sqrt();
        let p = e.p.unwrap();
        assert!(close(p, 1.0 - t / (t * t + 2.0).sqrt()), "{p}");
        let half = 0.95 / (2.0 * 0.975 * 0.025f64).sqrt() / 3f64.sqrt();
        let (low, high) = e.ci.unwrap();
        assert!(
            close(low, 2.0 - half) && close(high, 2.0 + half),
            "{low} {high}"
        );
        // p ≈ 0.074.
        assert!(e.significant(0.1) && !e.significant(0.05));
    }

    #[test]
    fn paired_t_turns_with_the_sign_of_the_differences() {
        let up = paired_t(&[(3.0, 1.0), (5.0, 4.0)]).unwrap();
        let down = paired_t(&[(1.0, 3.0), (4.0, 5.0)]).unwrap();
        assert_eq!(down.delta, -up.delta);
        assert_eq!(down.p, up.p);
        let ((ul, uh), (dl, dh)) = (up.ci.unwrap(), down.ci.unwrap());
        assert!(close(dl, -uh) && close(dh, -ul));
    }

    #[test]
    fn equal_differences_give_what_scipy_gives() {
        // ttest_rel: t = inf, p = 0, interval (2.5, 2.5).
        let e = paired_t(&[(50.0, 47.5), (51.0, 48.5), (52.0, 49.5)]).unwrap();
        assert_eq!((e.delta, e.ci, e.p), (2.5, Some((2.5, 2.5)), Some(0.0)));
        assert!(e.significant(0.05));
        // ttest_rel: t = nan, p = nan, interval (0, 0).
        let e = paired_t(&[(40.0, 40.0), (41.5, 41.5)]).unwrap();
        assert_eq!((e.delta, e.ci, e.p), (0.0, Some((0.0, 0.0)), None));
        assert!(!e.significant(0.05));
    }

    #[test]
    fn paired_t_refuses_bad_input() {
        assert_eq!(paired_t(&[]), None);
        assert_eq!(paired_t(&[(47.3, 45.1)]), None);
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert_eq!(paired_t(&[(47.3, 45.1), (bad, 45.0)]), None);
            assert_eq!(paired_t(&[(47.3, bad), (46.0, 45.0)]), None);
        }
        // Finite numbers whose difference overflows.
        assert_eq!(paired_t(&[(f64::MAX, -f64::MAX), (1.0, 0.0)]), None);
    }

    #[test]
    fn mcnemar_of_hand_checked_counts() {
        // b = 0, c = 5: p = 2·0.5⁵.
        let e = mcnemar(0, 5, 100).unwrap();
        assert_eq!((e.test, e.n), (Test::McNemarExact, 100));
        assert!(close(e.p.unwrap(), 0.0625));
        assert!(close(e.delta, -5.0));
        // Wald: √(5 − 25/100)/100 = √4.75 %, times z.
        let half = 1.959963984540054 * 4.75f64.sqrt();
        let (low, high) = e.ci.unwrap();
        assert!(
            close(low, -5.0 - half) && close(high, -5.0 + half),
            "{low} {high}"
        );
        assert!(!e.significant(0.05));
        // b = 1, c = 9 of 10: p = 2·(1 + 10)/2¹⁰.
        assert!(close(mcnemar(9, 1, 50).unwrap().p.unwrap(), 22.0 / 1024.0));
    }

    #[test]
    fn mcnemar_without_a_difference_has_p_one() {
        for (b, c) in [(7, 7), (0, 0), (250, 250)] {
            let e = mcnemar(b, c, 10_000).unwrap();
            assert_eq!((e.delta, e.p), (0.0, Some(1.0)), "{b} {c}");
        }
        // No discordant image at all: a zero-wide interval.
        assert_eq!(mcnemar(0, 0, 10).unwrap().ci, Some((0.0, 0.0)));
        // Every image discordant the same way: no spread left either.
        let e = mcnemar(10, 0, 10).unwrap();
        assert_eq!((e.delta, e.ci), (100.0, Some((100.0, 100.0))));
    }

    #[test]
    fn mcnemar_refuses_impossible_counts() {
        assert_eq!(mcnemar(0, 0, 0), None);
        assert_eq!(mcnemar(6, 5, 10), None);
        assert_eq!(mcnemar(u64::MAX, 1, u64::MAX), None);
    }

    #[test]
    fn tests_read_as_in_the_tables() {
        assert_eq!(Test::PairedT.to_string(), "paired t");
        assert_eq!(Test::McNemarExact.to_string(), "McNemar exact");
        assert_eq!(
            serde_json::to_value(Test::McNemarExact).unwrap(),
            "mcnemar-exact"
        );
    }
}
