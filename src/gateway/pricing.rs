//! What tokens cost: a table of per-model prices, built in or supplied by the admin.
//!
//! The file format (TOML), also described in the header of the built-in
//! `pricing.toml`:
//!
//! ```toml
//! [models."claude-sonnet-4-5"]
//! input = 3.00          # USD per million uncached input tokens
//! output = 15.00        # USD per million generated tokens
//! cache_write = 3.75    # USD per million tokens written to the prompt cache (5-minute TTL)
//! cache_read = 0.30     # USD per million tokens served from the prompt cache
//! aliases = ["..."]     # optional: other ids that mean this model
//! ```
//!
//! All four prices are required and must be finite and non-negative; unknown keys
//! are refused so a typo cannot silently price a model at zero.
//!
//! A model id from upstream finds its entry by the first of these that hits:
//! 1. the id itself, case-insensitively, among model keys and aliases;
//! 2. the id normalised ([`normalise_model`]): a provider prefix up to and
//!    including `anthropic.` removed, then a `[…]` suffix, a `@…` suffix, a
//!    `-v<N>` / `-v<N>:<M>` suffix, and finally a `-latest` or `-YYYYMMDD` suffix.
//!
//! So `claude-sonnet-4-5-20250929` prices as `claude-sonnet-4-5`. There is no
//! prefix matching (`claude-opus-4-5` must never fall back to `claude-opus-4`).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::execution::Usage;

/// The built-in table, compiled in.
const BUILTIN: &str = include_str!("pricing.toml");

/// What can be wrong with a price table.
#[derive(Debug, thiserror::Error)]
pub enum PricingError {
    /// The file could not be read.
    #[error("cannot read price table {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file's content is invalid (the inner error says how).
    #[error("price table {}: {source}", path.display())]
    InFile {
        path: PathBuf,
        #[source]
        source: Box<PricingError>,
    },
    /// Not TOML, a wrong type, or an unknown key.
    #[error("invalid price table: {0}")]
    Syntax(#[source] toml::de::Error),
    /// The table prices no model at all.
    #[error("price table has no [models.\"…\"] entries")]
    Empty,
    /// A model or alias name is empty.
    #[error("model `{model}`: empty model name or alias")]
    EmptyName { model: String },
    /// A required price is absent.
    #[error("model `{model}`: `{field}` is missing")]
    Missing { model: String, field: &'static str },
    /// A price is negative, NaN or infinite.
    #[error("model `{model}`: `{field}` = {value} is not a finite price >= 0")]
    Invalid {
        model: String,
        field: &'static str,
        value: f64,
    },
    /// Two entries claim the same id.
    #[error("model `{model}`: `{name}` is already used by `{other}`")]
    Duplicate {
        model: String,
        name: String,
        other: String,
    },
}

/// Prices of one model, in US dollars per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ModelPrice {
    /// Uncached input tokens.
    pub input: f64,
    /// Generated tokens.
    pub output: f64,
    /// Input tokens written to the prompt cache, at the 5-minute rate.
    pub cache_write: f64,
    /// Input tokens served from the prompt cache.
    pub cache_read: f64,
}

impl ModelPrice {
    /// What `usage` costs at these prices, in US dollars.
    pub fn cost(&self, usage: &Usage) -> f64 {
        let micro = usage.input_tokens as f64 * self.input
            + usage.output_tokens as f64 * self.output
            + usage.cache_creation_input_tokens as f64 * self.cache_write
            + usage.cache_read_input_tokens as f64 * self.cache_read;
        micro / 1_000_000.0
    }
}

/// Model prices, looked up by the model id upstream reports. Defaults to the
/// built-in table ([`PriceTable::builtin`]); admins replace it with `--pricing FILE`.
#[derive(Debug, Clone)]
pub struct PriceTable {
    /// Canonical names and prices, in key order.
    models: Vec<(String, ModelPrice)>,
    /// Lower-cased names and aliases → index into `models`.
    index: HashMap<String, usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTable {
    #[serde(default)]
    models: BTreeMap<String, RawModel>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModel {
    input: Option<f64>,
    output: Option<f64>,
    cache_write: Option<f64>,
    cache_read: Option<f64>,
    #[serde(default)]
    aliases: Vec<String>,
}

impl PriceTable {
    /// The table shipped with agentd (`src/gateway/pricing.toml`).
    pub fn builtin() -> PriceTable {
        // Covered by a unit test; the text is part of the binary, not input.
        PriceTable::from_toml(BUILTIN).expect("the built-in pricing.toml is valid")
    }

    /// Parses and validates a table in the format described in the module docs.
    pub fn from_toml(text: &str) -> Result<PriceTable, PricingError> {
        let raw: RawTable = toml::from_str(text).map_err(PricingError::Syntax)?;
        if raw.models.is_empty() {
            return Err(PricingError::Empty);
        }
        let mut table = PriceTable {
            models: Vec::with_capacity(raw.models.len()),
            index: HashMap::new(),
        };
        for (model, entry) in raw.models {
            let price = ModelPrice {
                input: required(&model, "input", entry.input)?,
                output: required(&model, "output", entry.output)?,
                cache_write: required(&model, "cache_write", entry.cache_write)?,
                cache_read: required(&model, "cache_read", entry.cache_read)?,
            };
            let at = table.models.len();
            for name in std::iter::once(&model).chain(&entry.aliases) {
                let key = name.trim().to_ascii_lowercase();
                if key.is_empty() {
                    return Err(PricingError::EmptyName { model });
                }
                if let Some(&other) = table.index.get(&key) {
                    return Err(PricingError::Duplicate {
                        model: model.clone(),
                        name: name.clone(),
                        other: table.models[other].0.clone(),
                    });
                }
                table.index.insert(key, at);
            }
            table.models.push((model, price));
        }
        Ok(table)
    }

    /// Reads a table from a file (`--pricing FILE`).
    pub fn from_file(path: &Path) -> Result<PriceTable, PricingError> {
        let text = std::fs::read_to_string(path).map_err(|source| PricingError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        PriceTable::from_toml(&text).map_err(|source| PricingError::InFile {
            path: path.to_path_buf(),
            source: Box::new(source),
        })
    }

    /// The entry `model` resolves to, with its canonical name, by the lookup rule
    /// of the module docs; `None` for a model the table does not know.
    pub fn resolve(&self, model: &str) -> Option<(&str, &ModelPrice)> {
        let exact = model.trim().to_ascii_lowercase();
        let at = match self.index.get(&exact) {
            Some(&at) => at,
            None => *self.index.get(&normalise_model(&exact))?,
        };
        let (name, price) = &self.models[at];
        Some((name, price))
    }

    /// The prices of `model`, or `None` when the table does not know it.
    pub fn price(&self, model: &str) -> Option<&ModelPrice> {
        self.resolve(model).map(|(_, price)| price)
    }

    /// What `usage` of `model` costs in US dollars, or `None` when the model is
    /// unknown (the caller then meters tokens only).
    pub fn cost(&self, model: &str, usage: &Usage) -> Option<f64> {
        self.price(model).map(|price| price.cost(usage))
    }

    /// Canonical model names, in key order.
    pub fn models(&self) -> impl Iterator<Item = &str> {
        self.models.iter().map(|(name, _)| name.as_str())
    }
}

impl Default for PriceTable {
    fn default() -> PriceTable {
        PriceTable::builtin()
    }
}

fn required(model: &str, field: &'static str, value: Option<f64>) -> Result<f64, PricingError> {
    match value {
        None => Err(PricingError::Missing {
            model: model.to_string(),
            field,
        }),
        Some(value) if value.is_finite() && value >= 0.0 => Ok(value),
        Some(value) => Err(PricingError::Invalid {
            model: model.to_string(),
            field,
            value,
        }),
    }
}

/// A provider's or dated model id reduced to the family name a price table is
/// keyed by: `us.anthropic.claude-sonnet-4-5-20250929-v1:0`,
/// `claude-sonnet-4-5@20250929`, `claude-sonnet-4-5[1m]` and
/// `claude-sonnet-4-5-20250929` all become `claude-sonnet-4-5`;
/// `claude-3-5-haiku-latest` becomes `claude-3-5-haiku`. Lower-cases.
pub fn normalise_model(model: &str) -> String {
    let mut id = model.trim().to_ascii_lowercase();
    if let Some(at) = id.find("anthropic.") {
        id.drain(..at + "anthropic.".len());
    }
    if id.ends_with(']')
        && let Some(at) = id.rfind('[')
    {
        id.truncate(at);
    }
    if let Some(at) = id.find('@') {
        id.truncate(at);
    }
    if let Some(at) = bedrock_version_at(&id) {
        id.truncate(at);
    }
    if let Some(stem) = id.strip_suffix("-latest") {
        id.truncate(stem.len());
    } else if let Some((stem, date)) = id.rsplit_once('-')
        && date.len() == 8
        && date.bytes().all(|b| b.is_ascii_digit())
    {
        id.truncate(stem.len());
    }
    id
}

/// Where a trailing `-v<N>` or `-v<N>:<M>` starts.
fn bedrock_version_at(id: &str) -> Option<usize> {
    let at = id.rfind("-v")?;
    let (major, minor) = match id[at + 2..].split_once(':') {
        Some((major, minor)) => (major, Some(minor)),
        None => (&id[at + 2..], None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (digits(major) && minor.is_none_or(digits)).then_some(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(input: u64, output: u64, cache_write: u64, cache_read: u64) -> Usage {
        Usage {
            input_tokens: input,
            output_tokens: output,
            cache_creation_input_tokens: cache_write,
            cache_read_input_tokens: cache_read,
        }
    }

    fn assert_close(actual: f64, expected: f64) {
        assert!(
            (actual - expected).abs() <= expected.abs() * 1e-12,
            "{actual} != {expected}"
        );
    }

    #[test]
    fn builtin_reproduces_what_claude_code_2_1_330_charged() {
        let table = PriceTable::builtin();
        // Figures the real CLI printed as total_cost_usd on this machine.
        let cases = [
            ("claude-sonnet-4-5", usage(200, 40, 0, 0), 0.0012),
            ("claude-opus-5-5", usage(33, 296, 3740, 10200), 0.026792),
            // tests/fixtures/claude-code-2.1.330-*.jsonl
            ("claude-opus-5-5", usage(200, 40, 0, 0), 0.0016),
            ("claude-opus-5-5", usage(10, 5, 0, 0), 0.00014),
        ];
        for (model, usage, expected) in cases {
            let cost = table.cost(model, &usage).unwrap();
            assert_close(cost, expected);
        }
    }

    #[test]
    fn builtin_has_the_published_prices() {
        let table = PriceTable::builtin();
        let expect = |model: &str, prices: [f64; 4]| {
            let price = table.price(model).unwrap_or_else(|| panic!("{model}"));
            assert_eq!(
                [
                    price.input,
                    price.output,
                    price.cache_write,
                    price.cache_read
                ],
                prices,
                "{model}"
            );
        };
        for sonnet in ["claude-sonnet-4-5", "claude-sonnet-4", "claude-3-7-sonnet"] {
            expect(sonnet, [3.0, 15.0, 3.75, 0.30]);
        }
        expect("claude-opus-4-5", [5.0, 25.0, 6.25, 0.50]);
        expect("claude-opus-4-1", [15.0, 75.0, 18.75, 1.50]);
        expect("claude-opus-4", [15.0, 75.0, 18.75, 1.50]);
        expect("claude-haiku-4-5", [1.0, 5.0, 1.25, 0.10]);
        expect("claude-3-5-haiku", [0.80, 4.0, 1.0, 0.08]);
        expect("claude-opus-5-5", [4.0, 20.0, 5.0, 0.20]);
    }

    #[test]
    fn dated_provider_and_alias_ids_resolve_to_their_family() {
        let table = PriceTable::builtin();
        let cases = [
            ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
            ("Claude-Sonnet-4-5", "claude-sonnet-4-5"),
            ("claude-sonnet-4-20250514", "claude-sonnet-4"),
            ("claude-sonnet-4-0", "claude-sonnet-4"),
            ("claude-opus-4-1-20250805", "claude-opus-4-1"),
            ("claude-opus-4-20250514", "claude-opus-4"),
            ("claude-opus-4-5-20251101", "claude-opus-4-5"),
            ("claude-3-7-sonnet-20250219", "claude-3-7-sonnet"),
            ("claude-3-7-sonnet-latest", "claude-3-7-sonnet"),
            ("claude-3-5-haiku-20241022", "claude-3-5-haiku"),
            ("claude-haiku-4-5-20251001", "claude-haiku-4-5"),
            (
                "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
                "claude-sonnet-4-5",
            ),
            ("anthropic.claude-3-5-haiku-20241022-v1", "claude-3-5-haiku"),
            ("claude-sonnet-4-5@20250929", "claude-sonnet-4-5"),
            ("claude-sonnet-4-5[1m]", "claude-sonnet-4-5"),
        ];
        for (id, family) in cases {
            assert_eq!(
                table.resolve(id).map(|(name, _)| name),
                Some(family),
                "{id}"
            );
        }
    }

    #[test]
    fn unknown_models_and_near_misses_are_not_priced() {
        let table = PriceTable::builtin();
        for id in [
            "gpt-4o",
            "",
            "claude-opus-4-7",
            "claude-sonnet",
            "claude-sonnet-4-5-2025092",
            "claude-sonnet-4-5-x",
            "claude-opus-4-5-extra-20251101",
        ] {
            assert!(table.resolve(id).is_none(), "{id}");
            assert!(table.cost(id, &usage(1, 1, 1, 1)).is_none(), "{id}");
        }
    }

    #[test]
    fn exact_entry_wins_over_normalisation() {
        let table = PriceTable::from_toml(
            r#"
            [models."claude-x"]
            input = 1
            output = 2
            cache_write = 3
            cache_read = 4
            [models."claude-x-20250101"]
            input = 10
            output = 20
            cache_write = 30
            cache_read = 40
            "#,
        )
        .unwrap();
        assert_eq!(table.price("claude-x-20250101").unwrap().input, 10.0);
        assert_eq!(table.price("claude-x-20250202").unwrap().input, 1.0);
        assert_close(
            table
                .cost("claude-x", &usage(1_000_000, 0, 0, 2_000_000))
                .unwrap(),
            9.0,
        );
        assert_eq!(
            table.models().collect::<Vec<_>>(),
            ["claude-x", "claude-x-20250101"]
        );
    }

    #[test]
    fn validation_names_the_model_and_field() {
        let entry = |body: &str| format!("[models.\"m-1\"]\n{body}\n");
        let full = "input = 1\noutput = 2\ncache_write = 3\ncache_read = 4";
        let missing = PriceTable::from_toml(&entry("input = 1\noutput = 2\ncache_write = 3"));
        assert!(matches!(
            missing,
            Err(PricingError::Missing { ref model, field: "cache_read" }) if model == "m-1"
        ));
        for (bad, field) in [
            ("input = -1", "input"),
            ("output = nan", "output"),
            ("cache_write = inf", "cache_write"),
            ("cache_read = -0.5", "cache_read"),
        ] {
            let body = full
                .lines()
                .map(|line| if line.starts_with(field) { bad } else { line })
                .collect::<Vec<_>>()
                .join("\n");
            let error = PriceTable::from_toml(&entry(&body)).unwrap_err();
            assert!(
                matches!(error, PricingError::Invalid { ref model, field: f, .. } if model == "m-1" && f == field),
                "{error}"
            );
            let text = error.to_string();
            assert!(text.contains("m-1") && text.contains(field), "{text}");
        }
        let typo = PriceTable::from_toml(&entry(&format!("{full}\ncache_raed = 1")));
        assert!(typo.unwrap_err().to_string().contains("cache_raed"));
        let wrong_type = PriceTable::from_toml(&entry("input = \"3\""));
        assert!(matches!(wrong_type, Err(PricingError::Syntax(_))));
        assert!(matches!(
            PriceTable::from_toml(""),
            Err(PricingError::Empty)
        ));
        assert!(matches!(
            PriceTable::from_toml("not toml ["),
            Err(PricingError::Syntax(_))
        ));
    }

    #[test]
    fn names_and_aliases_must_be_unique_and_non_empty() {
        let two = |first: &str, second: &str| {
            format!(
                "[models.\"{first}\"]\ninput = 1\noutput = 1\ncache_write = 1\ncache_read = 1\n\
                 [models.\"{second}\"]\ninput = 1\noutput = 1\ncache_write = 1\ncache_read = 1\n"
            )
        };
        let clash = PriceTable::from_toml(&two("a-1", "A-1")).unwrap_err();
        assert!(matches!(clash, PricingError::Duplicate { .. }), "{clash}");
        let alias_clash = PriceTable::from_toml(
            "[models.\"a-1\"]\ninput = 1\noutput = 1\ncache_write = 1\ncache_read = 1\n\
             aliases = [\"b-1\"]\n\
             [models.\"b-1\"]\ninput = 1\noutput = 1\ncache_write = 1\ncache_read = 1\n",
        )
        .unwrap_err();
        assert!(
            matches!(alias_clash, PricingError::Duplicate { ref model, ref other, .. } if model == "b-1" && other == "a-1"),
            "{alias_clash}"
        );
        let empty_alias = PriceTable::from_toml(
            "[models.\"a-1\"]\ninput = 1\noutput = 1\ncache_write = 1\ncache_read = 1\naliases = [\" \"]",
        );
        assert!(matches!(empty_alias, Err(PricingError::EmptyName { .. })));
    }

    #[test]
    fn from_file_reads_and_reports_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("prices.toml");
        std::fs::write(
            &good,
            "[models.\"m\"]\ninput = 2\noutput = 4\ncache_write = 0\ncache_read = 0\n",
        )
        .unwrap();
        let table = PriceTable::from_file(&good).unwrap();
        assert_close(table.cost("m", &usage(500_000, 0, 0, 0)).unwrap(), 1.0);

        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, "[models.\"m\"]\ninput = 2\n").unwrap();
        let error = PriceTable::from_file(&bad).unwrap_err().to_string();
        assert!(
            error.contains("bad.toml") && error.contains("output"),
            "{error}"
        );
        let absent = PriceTable::from_file(&dir.path().join("absent.toml")).unwrap_err();
        assert!(matches!(absent, PricingError::Read { .. }));
    }

    #[test]
    fn normalisation_keeps_what_is_not_a_suffix_it_knows() {
        assert_eq!(normalise_model("claude-sonnet-4-5"), "claude-sonnet-4-5");
        assert_eq!(normalise_model("claude-x-v2"), "claude-x");
        assert_eq!(normalise_model("claude-x-vx"), "claude-x-vx");
        assert_eq!(normalise_model("claude-x-v1:"), "claude-x-v1:");
        assert_eq!(normalise_model("claude-x-1234567"), "claude-x-1234567");
        assert_eq!(normalise_model("  Claude-X-LATEST "), "claude-x");
    }
}
