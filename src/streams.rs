//! Where every random stream gets its seed (docs/protocol.md#random-streams): a hash of the run's
//! seed, the stream's purpose and an index within that purpose (an epoch, a test batch's slot, an
//! image). Streams of different seeds, purposes or indices are unrelated, unlike seeds derived by
//! arithmetic, where seed 0's epoch 0 could be seed 1's initialisation.
//!
//! The hash chains SplitMix64's output function (Steele, Lea and Flood, "Fast splittable
//! pseudorandom number generators", 2014) over the three words; each link is a bijection of the
//! word it takes in, so two streams that differ in one of the three alone never share a seed.

/// SplitMix64's increment: the golden ratio in 64 bits.
const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// What a stream is drawn for. The numbers are part of every stream's seed: renumbering one
/// changes its draws, so a new purpose takes a new number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// The student's initial weights and the method's own initialisation; index 0.
    Initialisation = 1,
    /// One training epoch and its per-epoch test; index: the epoch, from 0.
    Epoch = 2,
    /// One attack of the final table on one test batch; index: batch and the attack's place in
    /// the vocabulary (`train::attack_table`).
    TableAttack = 3,
    /// One member of an ensemble (AutoAttack's sub-attacks) on one test batch; index: batch and
    /// member.
    TableMember = 4,
    /// The random crop of one test batch of the final table (`protocol: reference`); index: batch.
    TableCrop = 5,
    /// One image of the `synthetic` training split; index: the image.
    SyntheticTrain = 6,
    /// One image of the `synthetic` test split; index: the image.
    SyntheticTest = 7,
}

/// SplitMix64's output function: a bijection of u64 that spreads every input bit over the output.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The seed of stream (`seed`, `purpose`, `index`).
pub fn seed(seed: u64, purpose: Purpose, index: u64) -> u64 {
    let absorb = |state: u64, word: u64| mix((state ^ word).wrapping_add(GAMMA));
    absorb(absorb(absorb(0, seed), purpose as u64), index)
}

/// [`seed`] for `tch::manual_seed`, which takes an i64 and hands libtorch the same 64 bits as its
/// u64 seed: the bits are kept, not the value.
pub fn torch_seed(seed: u64, purpose: Purpose, index: u64) -> i64 {
    i64::from_ne_bytes(self::seed(seed, purpose, index).to_ne_bytes())
}

/// SplitMix64: tiny, fast, and the same numbers on every platform; for streams drawn outside
/// libtorch (the `synthetic` images).
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// The generator of stream (`seed`, `purpose`, `index`).
    pub fn new(seed: u64, purpose: Purpose, index: u64) -> SplitMix64 {
        SplitMix64(self::seed(seed, purpose, index))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(GAMMA);
        mix(self.0)
    }

    /// Uniform in [0,1), from the top 24 bits (an f32's precision).
    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Uniform in [low, high).
    pub fn between(&mut self, low: f32, high: f32) -> f32 {
        low + (high - low) * self.unit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    const PURPOSES: [Purpose; 7] = [
        Purpose::Initialisation,
        Purpose::Epoch,
        Purpose::TableAttack,
        Purpose::TableMember,
        Purpose::TableCrop,
        Purpose::SyntheticTrain,
        Purpose::SyntheticTest,
    ];

    #[test]
    fn streams_differ_across_seeds_purposes_and_indices() {
        let mut seen = BTreeSet::new();
        for s in 0..20 {
            for purpose in PURPOSES {
                for index in 0..200 {
                    assert!(
                        seen.insert(seed(s, purpose, index)),
                        "seed {s}, {purpose:?}, index {index} repeats a stream"
                    );
                }
            }
        }
        // The collision of the arithmetic seeds: seed s's epoch e against seed s + 1's
        // initialisation, here for any seed, including the extremes where arithmetic wraps.
        for s in (0..1000).chain([u64::MAX - 1, i64::MAX as u64]) {
            let initialisation = seed(s.wrapping_add(1), Purpose::Initialisation, 0);
            for epoch in 0..1000 {
                assert_ne!(seed(s, Purpose::Epoch, epoch), initialisation, "seed {s}");
            }
        }
    }

    #[test]
    fn the_torch_seed_keeps_the_bits() {
        for (s, purpose, index) in [(1, Purpose::Epoch, 3), (7, Purpose::TableCrop, 0)] {
            let bits = seed(s, purpose, index);
            assert_eq!(torch_seed(s, purpose, index) as u64, bits);
        }
        // Both signs occur: the whole u64 range reaches libtorch.
        let signs: BTreeSet<bool> = (0..64)
            .map(|i| torch_seed(1, Purpose::Epoch, i) < 0)
            .collect();
        assert_eq!(signs.len(), 2);
    }

    #[test]
    fn the_generator_is_splitmix64() {
        // SplitMix64's published first outputs for state 0 (Vigna's splitmix64.c).
        let mut generator = SplitMix64(0);
        assert_eq!(generator.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(generator.next_u64(), 0x6E78_9E6A_A1B9_65F4);
        let mut draws = SplitMix64::new(3, Purpose::SyntheticTest, 9);
        let unit = draws.unit();
        assert!((0.0..1.0).contains(&unit));
        let between = draws.between(-2.0, -1.0);
        assert!((-2.0..-1.0).contains(&between));
    }
}
