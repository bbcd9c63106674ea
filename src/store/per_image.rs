//! `per-image.json` (docs/run-folder.md#per-imagejson): which test images stayed correctly
//! classified under each attack of the final table, one bit per image, so two models evaluated on
//! the same images can be compared pairwise (McNemar's test) and not only by their percentages.
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Why a bitset or a per-image record cannot be read or compared.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum PerImageError {
    #[error("`{name}`: {found} hex digits for {images} images, expected {expected}")]
    Length {
        name: String,
        images: usize,
        expected: usize,
        found: usize,
    },
    #[error("`{name}`: `{digit}` is not a hex digit")]
    NotHex { name: String, digit: char },
    /// Bits past the last image are always written as 0, so that counts are exact.
    #[error("`{name}`: bits set past image {images}")]
    Padding { name: String, images: usize },
    #[error("records of {a} and {b} images cannot be compared image by image")]
    Mismatch { a: usize, b: usize },
}

/// One bit per test image, in the order the table evaluated them: bit `i` is image `i`.
///
/// Written as lowercase hex, two digits per byte, byte `i / 8` first, image `i` at bit `i % 8`
/// of its byte (least significant first), unused bits of the last byte 0.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Bits {
    len: usize,
    bytes: Vec<u8>,
}

impl Bits {
    /// Images recorded.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether image `i` stayed correct; None past the last image.
    pub fn get(&self, i: usize) -> Option<bool> {
        (i < self.len).then(|| self.bytes[i / 8] & (1 << (i % 8)) != 0)
    }

    /// Images that stayed correct.
    pub fn count(&self) -> u64 {
        self.bytes.iter().map(|b| u64::from(b.count_ones())).sum()
    }

    /// Appends images after the last one.
    pub fn extend(&mut self, correct: &[bool]) {
        for &bit in correct {
            if self.len.is_multiple_of(8) {
                self.bytes.push(0);
            }
            if bit {
                self.bytes[self.len / 8] |= 1 << (self.len % 8);
            }
            self.len += 1;
        }
    }

    pub fn to_hex(&self) -> String {
        self.bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Reads `images` bits from `hex` ([`Bits::to_hex`]); `name` says which record in an error.
    pub fn from_hex(name: &str, hex: &str, images: usize) -> Result<Bits, PerImageError> {
        if let Some(digit) = hex.chars().find(|c| !c.is_ascii_hexdigit()) {
            return Err(PerImageError::NotHex {
                name: name.to_string(),
                digit,
            });
        }
        let expected = 2 * images.div_ceil(8);
        if hex.len() != expected {
            return Err(PerImageError::Length {
                name: name.to_string(),
                images,
                expected,
                found: hex.len(),
            });
        }
        let bytes: Vec<u8> = (hex.as_bytes().chunks(2))
            .map(|pair| {
                let digit = |d: u8| (d as char).to_digit(16).unwrap_or(0) as u8;
                digit(pair[0]) << 4 | digit(pair[1])
            })
            .collect();
        let used = images % 8;
        if used != 0 && bytes.last().is_some_and(|last| last >> used != 0) {
            return Err(PerImageError::Padding {
                name: name.to_string(),
                images,
            });
        }
        Ok(Bits { len: images, bytes })
    }

    /// The images correct here and in `other` (same length: records of one table).
    fn and(&self, other: &Bits) -> Bits {
        Bits {
            len: self.len,
            bytes: (self.bytes.iter().zip(&other.bytes))
                .map(|(a, b)| a & b)
                .collect(),
        }
    }
}

/// The discordant pairs of two records of the same images (McNemar's b and c): images correct in
/// `a` only, and in `b` only.
pub fn discordant(a: &Bits, b: &Bits) -> Result<(u64, u64), PerImageError> {
    if a.len != b.len {
        return Err(PerImageError::Mismatch { a: a.len, b: b.len });
    }
    Ok(a.bytes.iter().zip(&b.bytes).fold((0, 0), |(x, y), (a, b)| {
        (
            x + u64::from((a & !b).count_ones()),
            y + u64::from((b & !a).count_ones()),
        )
    }))
}

/// The per-image records of one final table: `clean` and one per attack that ran (the names of
/// `result.json`'s `final`), each of `images` bits.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "PerImageFile", into = "PerImageFile")]
pub struct PerImage {
    images: usize,
    correct: BTreeMap<String, Bits>,
}

/// The file's shape: the bitsets as hex strings.
#[derive(Serialize, Deserialize)]
struct PerImageFile {
    images: usize,
    correct: BTreeMap<String, String>,
}

impl TryFrom<PerImageFile> for PerImage {
    type Error = PerImageError;

    fn try_from(file: PerImageFile) -> Result<PerImage, PerImageError> {
        let correct = (file.correct.iter())
            .map(|(name, hex)| Ok((name.clone(), Bits::from_hex(name, hex, file.images)?)))
            .collect::<Result<_, PerImageError>>()?;
        Ok(PerImage {
            images: file.images,
            correct,
        })
    }
}

impl From<PerImage> for PerImageFile {
    fn from(records: PerImage) -> PerImageFile {
        PerImageFile {
            images: records.images,
            correct: (records.correct.iter())
                .map(|(name, bits)| (name.clone(), bits.to_hex()))
                .collect(),
        }
    }
}

impl PerImage {
    /// Test images recorded.
    pub fn images(&self) -> usize {
        self.images
    }

    /// The images correct under `name` (`clean`, `fgsm`, …, `autoattack`); None when it did not run.
    pub fn correct(&self, name: &str) -> Option<&Bits> {
        self.correct.get(name)
    }

    /// Every record, by name.
    pub fn records(&self) -> impl Iterator<Item = (&str, &Bits)> {
        self.correct
            .iter()
            .map(|(name, bits)| (name.as_str(), bits))
    }

    /// The images correct under every record (clean and every attack that ran); None without any.
    pub fn worst_case(&self) -> Option<Bits> {
        let mut records = self.correct.values();
        let first = records.next()?.clone();
        Some(records.fold(first, |all, bits| all.and(bits)))
    }

    /// Appends one test batch: the same names every batch (a table's attacks are fixed), each
    /// with one bool per image of the batch.
    pub fn push_batch(&mut self, images: usize, batch: Vec<(String, Vec<bool>)>) {
        for (name, correct) in batch {
            self.correct.entry(name).or_default().extend(&correct);
        }
        self.images += images;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bits(pattern: &str) -> Bits {
        let mut bits = Bits::default();
        bits.extend(&pattern.chars().map(|c| c == '1').collect::<Vec<_>>());
        bits
    }

    #[test]
    fn bits_round_trip_through_hex() {
        for pattern in [
            "",
            "1",
            "10110",
            "11111111",
            "101100111",
            "0000000000000001",
        ] {
            let written = bits(pattern);
            let read = Bits::from_hex("clean", &written.to_hex(), pattern.len()).unwrap();
            assert_eq!(read, written, "{pattern}");
            assert_eq!(read.count(), pattern.matches('1').count() as u64);
            for (i, c) in pattern.chars().enumerate() {
                assert_eq!(read.get(i), Some(c == '1'));
            }
            assert_eq!(read.get(pattern.len()), None);
        }
        // Image 0 is the lowest bit of the first byte.
        assert_eq!(bits("100000001").to_hex(), "0101");
        assert_eq!(bits("0101").to_hex(), "0a");
    }

    #[test]
    fn damaged_hex_is_an_error_not_a_wrong_count() {
        assert!(matches!(
            Bits::from_hex("fgsm", "0a0", 9),
            Err(PerImageError::Length { expected: 4, .. })
        ));
        assert!(matches!(
            Bits::from_hex("fgsm", "0g", 4),
            Err(PerImageError::NotHex { digit: 'g', .. })
        ));
        assert!(matches!(
            Bits::from_hex("fgsm", "1f", 4),
            Err(PerImageError::Padding { images: 4, .. })
        ));
        // Multi-byte characters are refused, not split.
        assert!(Bits::from_hex("fgsm", "é", 4).is_err());
    }

    #[test]
    fn discordant_counts_each_side_alone() {
        let a = bits("1100110011");
        let b = bits("1010101010");
        assert_eq!(discordant(&a, &b), Ok((3, 2)));
        assert_eq!(discordant(&b, &a), Ok((2, 3)));
        assert_eq!(discordant(&a, &a), Ok((0, 0)));
        assert_eq!(
            discordant(&a, &bits("1")),
            Err(PerImageError::Mismatch { a: 10, b: 1 })
        );
    }

    #[test]
    fn per_image_records_round_trip_and_give_the_worst_case() {
        let mut records = PerImage::default();
        records.push_batch(
            3,
            vec![
                ("clean".into(), vec![true, true, false]),
                ("pgd20".into(), vec![true, false, false]),
            ],
        );
        records.push_batch(
            2,
            vec![
                ("clean".into(), vec![true, true]),
                ("pgd20".into(), vec![false, true]),
            ],
        );
        let text = serde_json::to_string(&records).unwrap();
        assert_eq!(
            text,
            r#"{"images":5,"correct":{"clean":"1b","pgd20":"11"}}"#
        );
        let read: PerImage = serde_json::from_str(&text).unwrap();
        assert_eq!(read, records);
        assert_eq!(read.correct("clean").map(Bits::count), Some(4));
        assert_eq!(read.correct("fgsm"), None);
        assert_eq!(read.worst_case(), Some(bits("10001")));
        assert_eq!(PerImage::default().worst_case(), None);
        // A record of another length is damaged.
        let short = r#"{"images":9,"correct":{"clean":"1b"}}"#;
        assert!(serde_json::from_str::<PerImage>(short)
            .unwrap_err()
            .to_string()
            .contains("`clean`: 2 hex digits for 9 images, expected 4"));
    }
}
