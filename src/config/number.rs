//! Numbers in `experiments.yaml`: plain (`0.1`, `5e-4`) or fractions (`8/255`, `2 / 255`).
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, PartialOrd)]
pub(super) struct Num(pub f64);

/// Why a text is not a number of the configuration.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum NumberError {
    #[error("`{0}` is not a number or a fraction like 8/255")]
    NotANumber(String),
    #[error("`{0}` divides by zero")]
    DividesByZero(String),
    #[error("`{0}` is not a finite number")]
    NotFinite(String),
}

/// Parses `x` or `a/b` into a finite number.
pub fn parse_number(text: &str) -> Result<f64, NumberError> {
    let finite = |v: f64| {
        if v.is_finite() {
            Ok(v)
        } else {
            Err(NumberError::NotFinite(text.to_string()))
        }
    };
    let plain = |s: &str| {
        s.trim()
            .parse::<f64>()
            .map_err(|_| NumberError::NotANumber(text.to_string()))
    };
    match text.split_once('/') {
        Some((a, b)) => {
            let denominator = plain(b)?;
            if denominator == 0.0 {
                return Err(NumberError::DividesByZero(text.to_string()));
            }
            finite(plain(a)? / denominator)
        }
        None => finite(plain(text)?),
    }
}

impl<'de> Deserialize<'de> for Num {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Num, D::Error> {
        struct NumVisitor;
        impl Visitor<'_> for NumVisitor {
            type Value = Num;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number or a fraction like 8/255")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Num, E> {
                parse_number(&v.to_string()).map(Num).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Num, E> {
                Ok(Num(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Num, E> {
                Ok(Num(v as f64))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Num, E> {
                parse_number(v).map(Num).map_err(E::custom)
            }
        }
        deserializer.deserialize_any(NumVisitor)
    }
}

/// `#[serde(deserialize_with)]` for an `f64` that may be written as a fraction.
pub(super) fn fraction<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    Num::deserialize(deserializer).map(|n| n.0)
}

/// [`fraction`] for a list of pairs, such as `(epoch, value)` points.
pub(super) fn fraction_pairs<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<(f64, f64)>, D::Error> {
    let pairs = Vec::<(Num, Num)>::deserialize(deserializer)?;
    Ok(pairs.into_iter().map(|(a, b)| (a.0, b.0)).collect())
}

impl Serialize for Num {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fractions_and_plain_numbers() {
        assert_eq!(parse_number("8/255"), Ok(8.0 / 255.0));
        assert_eq!(parse_number(" 2 / 255 "), Ok(2.0 / 255.0));
        assert_eq!(parse_number("5e-4"), Ok(5e-4));
        assert_eq!(
            parse_number("8/0").unwrap_err().to_string(),
            "`8/0` divides by zero"
        );
        assert!(parse_number("eight").is_err());
        assert!(parse_number("inf").is_err());
        let n: Num = serde_yaml::from_str("8/255").unwrap();
        assert_eq!(n.0, 8.0 / 255.0);
        let n: Num = serde_yaml::from_str("0.031").unwrap();
        assert_eq!(n.0, 0.031);
    }
}
