//! The `synthetic` dataset: 3×32×32 colour images of 10 classes generated with a small Rust PRNG, so
//! they are the same on every device and need no files. Like a real dataset it is fixed: a run's seed
//! does not change it, so runs of different seeds train and are tested on the same images
//! (docs/protocol.md#random-streams).
//!
//! Each class has a prototype: a background colour and a foreground colour laid out by a smooth,
//! left-right symmetric mask (disc, ring, bands, bars, ...), so random crops of ±4 px and horizontal flips
//! keep the class. Each image then gets its own shift (±3 px), contrast, brightness, colour cast and pixel
//! noise; half of the images also get a random share (below 1/2) of another class's prototype blended in.
//! The blend spreads images from their prototype to near the boundary with another class, so the classes
//! stay clean-separable (the label is always the majority prototype) while an ε = 8/255 adversary can flip
//! the images nearest the boundary: robust accuracy ends below clean accuracy.
use super::host::HostSplit;
use crate::streams::{Purpose, SplitMix64};

pub const SYNTHETIC_CLASSES: i64 = 10;
pub const SYNTHETIC_SHAPE: [i64; 3] = [3, SIDE as i64, SIDE as i64];

const SIDE: usize = 32;
/// Largest shift of an image against its prototype, in pixels.
const MAX_SHIFT: usize = 3;
const CANVAS: usize = SIDE + 2 * MAX_SHIFT;

/// A left-right symmetric mask in [0,1] over centred coordinates u (across), v (down), both in [-1,1].
type Layout = fn(f32, f32) -> f32;

struct ClassLook {
    background: [f32; 3],
    foreground: [f32; 3],
    layout: Layout,
}

fn bump(distance: f32, width: f32) -> f32 {
    (-(distance / width).powi(2)).exp()
}

/// A soft step from 0 to 1 where `value` crosses 0.
fn soft_step(value: f32) -> f32 {
    1.0 / (1.0 + (-value / 0.08).exp())
}

const CLASSES: [ClassLook; 10] = [
    ClassLook {
        background: [0.10, 0.15, 0.45],
        foreground: [0.95, 0.85, 0.20],
        layout: |u, v| soft_step(0.55 - (u * u + v * v).sqrt()),
    },
    ClassLook {
        background: [0.15, 0.50, 0.20],
        foreground: [0.90, 0.90, 0.90],
        layout: |u, v| bump((u * u + v * v).sqrt() - 0.6, 0.18),
    },
    ClassLook {
        background: [0.70, 0.15, 0.15],
        foreground: [0.50, 0.90, 0.90],
        layout: |_, v| soft_step(-v),
    },
    ClassLook {
        background: [0.50, 0.50, 0.50],
        foreground: [0.85, 0.20, 0.75],
        layout: |_, v| bump(v, 0.3),
    },
    ClassLook {
        background: [0.10, 0.10, 0.10],
        foreground: [0.95, 0.55, 0.10],
        layout: |u, _| bump(u.abs() - 0.55, 0.2),
    },
    ClassLook {
        background: [0.85, 0.75, 0.55],
        foreground: [0.10, 0.35, 0.15],
        layout: |u, _| bump(u, 0.28),
    },
    ClassLook {
        background: [0.45, 0.70, 0.95],
        foreground: [0.45, 0.25, 0.10],
        layout: |_, v| soft_step(v),
    },
    ClassLook {
        background: [0.35, 0.15, 0.50],
        foreground: [0.60, 0.95, 0.30],
        layout: |u, v| bump(u, 0.22).max(bump(v, 0.22)),
    },
    ClassLook {
        background: [0.10, 0.45, 0.45],
        foreground: [0.95, 0.60, 0.70],
        layout: |u, v| bump(v - (1.2 * u.abs() - 0.4), 0.22),
    },
    ClassLook {
        background: [0.45, 0.45, 0.10],
        foreground: [0.60, 0.75, 1.00],
        layout: |u, v| soft_step(0.65 - u.abs() - v.abs()),
    },
];

/// Each class's prototype on a canvas `MAX_SHIFT` pixels wider on every side, `[3, CANVAS, CANVAS]`.
fn prototypes() -> Vec<Vec<f32>> {
    let centre = (SIDE as f32 - 1.0) / 2.0;
    let half = SIDE as f32 / 2.0;
    CLASSES
        .iter()
        .map(|look| {
            let mut canvas = vec![0.0; 3 * CANVAS * CANVAS];
            for y in 0..CANVAS {
                for x in 0..CANVAS {
                    let u = (x as f32 - MAX_SHIFT as f32 - centre) / half;
                    let v = (y as f32 - MAX_SHIFT as f32 - centre) / half;
                    let mask = (look.layout)(u, v);
                    for channel in 0..3 {
                        canvas[(channel * CANVAS + y) * CANVAS + x] = look.background[channel]
                            + mask * (look.foreground[channel] - look.background[channel]);
                    }
                }
            }
            canvas
        })
        .collect()
}

/// How strongly images vary around their prototype.
const CONTRAST: (f32, f32) = (0.7, 1.0);
const BRIGHTNESS: f32 = 0.05;
const COLOUR_CAST: f32 = 0.03;
const NOISE: f32 = 0.05;
/// Share of the images that get another class's prototype blended in.
const BLENDED_SHARE: f32 = 0.25;
/// Largest weight of another class's prototype blended into an image: the closer to 1/2, the nearer the
/// image sits to the boundary between the two classes.
const MAX_BLEND: f32 = 0.45;

/// The seed of the dataset's streams: the dataset's own, never a run's.
const DATASET_SEED: u64 = 0;

fn generate_split(prototypes: &[Vec<f32>], split: Purpose, count: usize) -> HostSplit {
    let image_len = 3 * SIDE * SIDE;
    let mut images = vec![0u8; count * image_len];
    let mut labels = Vec::with_capacity(count);
    for (index, image) in images.chunks_exact_mut(image_len).enumerate() {
        let class = index % CLASSES.len();
        labels.push(class as i64);
        // Each image its own stream, so image `i` does not depend on how many are generated.
        let mut rng = SplitMix64::new(DATASET_SEED, split, index as u64);
        let shift = 2 * MAX_SHIFT + 1;
        let top = (rng.next_u64() % shift as u64) as usize;
        let left = (rng.next_u64() % shift as u64) as usize;
        let contrast = rng.between(CONTRAST.0, CONTRAST.1);
        let brightness = rng.between(-BRIGHTNESS, BRIGHTNESS);
        let cast: [f32; 3] = std::array::from_fn(|_| rng.between(-COLOUR_CAST, COLOUR_CAST));
        let other =
            (class + 1 + (rng.next_u64() % (CLASSES.len() as u64 - 1)) as usize) % CLASSES.len();
        let blend = if rng.unit() < BLENDED_SHARE {
            rng.between(0.0, MAX_BLEND)
        } else {
            0.0
        };
        let (prototype, intruder) = (&prototypes[class], &prototypes[other]);
        for (channel, plane) in image.chunks_exact_mut(SIDE * SIDE).enumerate() {
            let offset = brightness + cast[channel];
            for (y, row) in plane.chunks_exact_mut(SIDE).enumerate() {
                let source = (channel * CANVAS + y + top) * CANVAS + left;
                let window = source..source + SIDE;
                let values = prototype[window.clone()].iter().zip(&intruder[window]);
                for (pixel, (&own, &foreign)) in row.iter_mut().zip(values) {
                    let value = own + blend * (foreign - own);
                    // Triangular noise: the sum of two uniforms is cheap and has no long tails.
                    let noise = NOISE * (rng.unit() - rng.unit());
                    let shade = 0.5 + contrast * (value - 0.5) + offset + noise;
                    *pixel = (shade.clamp(0.0, 1.0) * 255.0).round() as u8;
                }
            }
        }
    }
    HostSplit {
        images,
        labels,
        shape: SYNTHETIC_SHAPE,
    }
}

/// The first `train` training and `test` test images.
pub(crate) fn generate_splits(train: usize, test: usize) -> (HostSplit, HostSplit) {
    let prototypes = prototypes();
    (
        generate_split(&prototypes, Purpose::SyntheticTrain, train),
        generate_split(&prototypes, Purpose::SyntheticTest, test),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_are_left_right_symmetric() {
        for (class, look) in CLASSES.iter().enumerate() {
            for step in 0..=20 {
                let u = step as f32 / 20.0;
                for v in [-0.7, -0.2, 0.0, 0.4, 0.9] {
                    let (left, right) = ((look.layout)(-u, v), (look.layout)(u, v));
                    assert!((left - right).abs() < 1e-6, "class {class} at u={u}, v={v}");
                }
            }
        }
    }

    #[test]
    fn images_do_not_depend_on_the_split_size() {
        let (small, _) = generate_splits(5, 0);
        let (large, _) = generate_splits(12, 0);
        assert_eq!(small.images[..], large.images[..small.images.len()]);
        assert_eq!(small.labels[..], large.labels[..5]);
    }
}
