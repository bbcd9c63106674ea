//! Numbers in `experiments.yaml`: plain (`0.1`, `5e-4`) or fractions (`8/255`, `2 / 255`).
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, PartialOrd)]
pub struct Num(pub f64);

/// Parses `x` or `a/b` into a finite number.
pub fn parse_number(text: &str) -> Result<f64, String> {
    let finite = |v: f64| {
        if v.is_finite() {
            Ok(v)
        } else {
            Err(format!("`{text}` is not a finite number"))
        }
    };
    let plain = |s: &str| {
        s.trim()
            .parse::<f64>()
            .map_err(|_| format!("`{text}` is not a number or a fraction like 8/255"))
    };
    match text.split_once('/') {
        Some((a, b)) => {
            let denominator = plain(b)?;
            if denominator == 0.0 {
                return Err(format!("`{text}` divides by zero"));
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
        assert!(parse_number("8/0").unwrap_err().contains("divides by zero"));
        assert!(parse_number("eight").is_err());
        assert!(parse_number("inf").is_err());
        let n: Num = serde_yaml::from_str("8/255").unwrap();
        assert_eq!(n.0, 8.0 / 255.0);
        let n: Num = serde_yaml::from_str("0.031").unwrap();
        assert_eq!(n.0, 0.031);
    }
}
