//! Whole numbers as JSON writes them: `256` and `256.0` are the same number
//! (JSON Schema's `integer` accepts both), so a count or a size is read from
//! either, and refused when it has a fraction, is negative or too large.

use serde::{Deserialize, Deserializer, de::Error};

/// The largest whole number read: JSON Schema's `int64`, which the API
/// documents, and what the databases store.
pub const MAX_WHOLE: u64 = i64::MAX as u64;

fn whole<E: Error>(number: serde_json::Number) -> Result<u64, E> {
    let read = match number.as_u64() {
        Some(n) => Some(n),
        None => number
            .as_f64()
            .filter(|f| f.fract() == 0.0 && (0.0..=MAX_WHOLE as f64).contains(f))
            .map(|f| f as u64),
    };
    read.filter(|n| *n <= MAX_WHOLE).ok_or_else(|| {
        E::custom(format!(
            "invalid value: {number}, expected a whole number from 0 to {MAX_WHOLE}"
        ))
    })
}

fn fit<T: TryFrom<u64>, E: Error>(n: u64) -> Result<T, E> {
    T::try_from(n).map_err(|_| E::custom(format!("invalid value: {n} is too large")))
}

/// A number of seconds written as a whole number (`90` or `90.0`).
pub(crate) fn seconds<E: Error>(number: serde_json::Number) -> Result<u64, E> {
    whole(number)
}

/// `deserialize_with` for a whole number field.
pub(crate) fn number<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<u64>,
{
    let n = whole(serde_json::Number::deserialize(deserializer)?)?;
    fit(n)
}

/// `deserialize_with` for an optional whole number field (`null` is none).
pub(crate) fn optional<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<u64>,
{
    match Option::<serde_json::Number>::deserialize(deserializer)? {
        Some(number) => fit(whole(number)?).map(Some),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    #[derive(Debug, serde::Deserialize, PartialEq)]
    struct Counts {
        #[serde(deserialize_with = "super::number")]
        pids: u32,
        #[serde(default, deserialize_with = "super::optional")]
        turns: Option<u32>,
    }

    fn read(json: &str) -> Result<Counts, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[test]
    fn integral_floats_are_whole_numbers() {
        assert_eq!(
            read(r#"{"pids": 256.0, "turns": 3.0}"#).unwrap(),
            Counts {
                pids: 256,
                turns: Some(3)
            }
        );
        assert_eq!(read(r#"{"pids": 16, "turns": null}"#).unwrap().turns, None);
        assert_eq!(read(r#"{"pids": 16}"#).unwrap().turns, None);
        for bad in [
            r#"{"pids": 1.5}"#,
            r#"{"pids": -1}"#,
            r#"{"pids": 5000000000}"#,
            r#"{"pids": "16"}"#,
            r#"{"pids": 1e300}"#,
        ] {
            assert!(read(bad).is_err(), "{bad}");
        }
        // Counts are int64, as documented and stored.
        #[derive(Debug, serde::Deserialize)]
        struct Big {
            #[serde(deserialize_with = "super::number")]
            _n: u64,
        }
        let big = |n: &str| serde_json::from_str::<Big>(&format!(r#"{{"_n": {n}}}"#));
        assert!(big("9223372036854775807").is_ok());
        for bad in ["9223372036854775808", "18446744073709551615", "9.3e18"] {
            assert!(big(bad).is_err(), "{bad}");
        }
    }
}
