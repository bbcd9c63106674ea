//! Learning-rate schedules: the main scripts' step decay and Generalist's piecewise-linear one.
use crate::config::LrSchedule;

/// The learning rate of 0-indexed epoch `epoch`, constant within the epoch.
pub fn learning_rate(schedule: &LrSchedule, base: f64, epoch: usize) -> f64 {
    match schedule {
        LrSchedule::Step {
            milestones,
            factors,
        } => {
            let reached = milestones.iter().take_while(|&&m| epoch >= m).count();
            base * if reached == 0 {
                1.0
            } else {
                factors[reached - 1]
            }
        }
        // Generalist counts epochs from 1 and interpolates absolute learning rates.
        LrSchedule::PiecewiseLinear { points } => interpolate(points, (epoch + 1) as f64),
    }
}

/// numpy.interp: linear between points, constant beyond the ends.
pub fn interpolate(points: &[(f64, f64)], at: f64) -> f64 {
    let Some(&(first_x, first_y)) = points.first() else {
        return 0.0;
    };
    if at <= first_x {
        return first_y;
    }
    for pair in points.windows(2) {
        let ((x0, y0), (x1, y1)) = (pair[0], pair[1]);
        if at <= x1 {
            return if x1 == x0 {
                y1
            } else {
                y0 + (y1 - y0) * (at - x0) / (x1 - x0)
            };
        }
    }
    points[points.len() - 1].1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn main_script_step_schedule() {
        let s = LrSchedule::Step {
            milestones: vec![60, 90, 110],
            factors: vec![0.1, 0.01, 0.005],
        };
        let lr = |e| learning_rate(&s, 0.1, e);
        assert_eq!(lr(0), 0.1);
        assert_eq!(lr(59), 0.1);
        assert!((lr(60) - 0.01).abs() < 1e-15 && (lr(89) - 0.01).abs() < 1e-15);
        assert!((lr(90) - 0.001).abs() < 1e-15 && (lr(109) - 0.001).abs() < 1e-15);
        assert!((lr(110) - 0.0005).abs() < 1e-15 && (lr(119) - 0.0005).abs() < 1e-15);
    }

    #[test]
    fn generalist_piecewise_linear_schedule() {
        let s = LrSchedule::PiecewiseLinear {
            points: vec![(0.0, 0.1), (40.0, 0.1), (80.0, 0.01), (120.0, 0.001)],
        };
        let lr = |e| learning_rate(&s, 0.1, e);
        assert_eq!(lr(0), 0.1); // epoch 1
        assert_eq!(lr(39), 0.1); // epoch 40
        assert!((lr(59) - 0.055).abs() < 1e-12); // epoch 60: halfway from 0.1 to 0.01
        assert!((lr(79) - 0.01).abs() < 1e-12);
        assert!((lr(119) - 0.001).abs() < 1e-12);
    }
}
