//! Whole numbers as JSON writes them: `256` and `256.0` are the same number
//! (JSON Schema's `integer` accepts both), so a count or a size is read from
//! either, and refused when it has a fraction, is negative or too large.

use serde::{Deserialize, Deserializer, de::Error};

fn whole<E: Error>(number: serde_json::Number) -> Result<u64, E> {
    if let Some(n) = number.as_u64() {
        return Ok(n);
    }
    match number.as_f64() {
        Some(f) if f.fract() == 0.0 && (0.0..=u64::MAX as f64).contains(&f) => Ok(f as u64),
        _ => Err(E::custom(format!(
            "invalid value: {number}, expected a whole number of at least 0"
        ))),
    }
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
    }
}
