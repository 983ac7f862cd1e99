//! Hiding known secrets (the API key, git tokens, tenant-provided values) from
//! everything agentd stores or streams, whole or as it flows.
//!
//! Every byte that belongs to an occurrence of any secret is hidden, and each
//! run of hidden bytes becomes one [`REDACTED`] marker: overlapping or adjacent
//! occurrences give one marker, and no part of any secret survives (removing
//! non-overlapping matches only would let the tail of an overlapping secret
//! through). Streamed and whole redaction give the same bytes.

use std::collections::BTreeSet;

use aho_corasick::AhoCorasick;

/// What replaces each run of secret bytes.
pub const REDACTED: &str = "[REDACTED]";

/// Secrets shorter than this many bytes (4) are ignored: hiding every `abc` in
/// the output would wreck it, and a secret that short protects nothing anyway.
pub const MIN_SECRET_LEN: usize = 4;

/// What can go wrong building a redactor.
#[derive(Debug, thiserror::Error)]
pub enum RedactError {
    /// The secrets are too many or too large to match together.
    #[error("cannot build the secret matcher: {0}")]
    Matcher(#[from] aho_corasick::BuildError),
}

/// A set of secrets to hide. Cheap to clone. The default hides nothing.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    matcher: Option<AhoCorasick>,
    longest: usize,
    secrets: usize,
}

impl Redactor {
    /// A redactor for these secrets, matched byte for byte (no trimming: a
    /// secret read from a file should lose its newline first). Secrets shorter
    /// than [`MIN_SECRET_LEN`] bytes, the empty one included, are ignored;
    /// duplicates count once.
    pub fn new<I, S>(secrets: I) -> Result<Redactor, RedactError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let secrets: BTreeSet<String> = secrets
            .into_iter()
            .map(|secret| secret.as_ref().to_string())
            .filter(|secret| secret.len() >= MIN_SECRET_LEN)
            .collect();
        if secrets.is_empty() {
            return Ok(Redactor::default());
        }
        Ok(Redactor {
            matcher: Some(AhoCorasick::new(&secrets)?),
            longest: secrets.iter().map(String::len).max().unwrap_or_default(),
            secrets: secrets.len(),
        })
    }

    /// How many distinct secrets are hidden (ignored short ones not counted).
    pub fn len(&self) -> usize {
        self.secrets
    }

    /// True when nothing is hidden.
    pub fn is_empty(&self) -> bool {
        self.secrets == 0
    }

    /// True when `text` holds at least one secret (a cheap check before copying).
    pub fn contains_secret(&self, text: &str) -> bool {
        self.matcher
            .as_ref()
            .is_some_and(|matcher| matcher.is_match(text.as_bytes()))
    }

    /// `text` with every secret hidden.
    pub fn redact_str(&self, text: &str) -> String {
        match String::from_utf8(self.redact_bytes(text.as_bytes())) {
            Ok(text) => text,
            // Unreachable: secrets are whole UTF-8 strings, so they start and end on
            // character boundaries of valid text.
            Err(error) => String::from_utf8_lossy(error.as_bytes()).into_owned(),
        }
    }

    /// `bytes` with every secret hidden.
    pub fn redact_bytes(&self, bytes: &[u8]) -> Vec<u8> {
        let mut stream = self.stream();
        let mut out = stream.push(bytes);
        out.extend(stream.finish());
        out
    }

    /// A redactor for one stream of bytes, fed in chunks split anywhere.
    pub fn stream(&self) -> RedactStream {
        RedactStream {
            redactor: self.clone(),
            held: Vec::new(),
            ends: Vec::new(),
            offset: 0,
            covered_to: 0,
            in_run: false,
        }
    }
}

/// Redacts one stream as it flows. Holds back at most the longest secret's
/// length minus one byte, so a secret split across chunks is still caught, and
/// reads each byte a bounded number of times however long the stream.
#[derive(Debug)]
pub struct RedactStream {
    redactor: Redactor,
    /// Bytes received but not yet released.
    held: Vec<u8>,
    /// Per held byte: the furthest end (stream position) of an occurrence
    /// starting there, 0 for none.
    ends: Vec<u64>,
    /// Stream position of `held[0]`.
    offset: u64,
    /// Occurrences starting at released bytes hide everything before this position.
    covered_to: u64,
    /// The last released byte was hidden (its marker is already out).
    in_run: bool,
}

impl RedactStream {
    /// Takes the next chunk; returns the bytes now known to be safe.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        let Some(matcher) = &self.redactor.matcher else {
            return chunk.to_vec();
        };
        let seen = self.held.len();
        self.held.extend_from_slice(chunk);
        self.ends.resize(self.held.len(), 0);
        for found in matcher.find_overlapping_iter(&self.held[..]) {
            // Occurrences within the bytes held before were recorded then.
            if found.end() > seen {
                let end = self.offset + found.end() as u64;
                let slot = &mut self.ends[found.start()];
                *slot = (*slot).max(end);
            }
        }
        // An occurrence not yet complete starts within the last longest-1 bytes.
        let ready = self
            .held
            .len()
            .saturating_sub(self.redactor.longest.saturating_sub(1));
        self.release(ready)
    }

    /// Ends the stream: returns the held-back rest. The stream can then be used
    /// again for a new, unrelated input.
    pub fn finish(&mut self) -> Vec<u8> {
        let out = self.release(self.held.len());
        self.covered_to = 0;
        self.offset = 0;
        self.in_run = false;
        out
    }

    fn release(&mut self, count: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(count);
        for (at, (&byte, &end)) in self.held[..count].iter().zip(&self.ends).enumerate() {
            self.covered_to = self.covered_to.max(end);
            if self.offset + (at as u64) < self.covered_to {
                if !self.in_run {
                    out.extend_from_slice(REDACTED.as_bytes());
                    self.in_run = true;
                }
            } else {
                self.in_run = false;
                out.push(byte);
            }
        }
        self.held.drain(..count);
        self.ends.drain(..count);
        self.offset += count as u64;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SplitMix64: a deterministic source of test cases.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        fn word(&mut self, alphabet: &[&str], max: usize) -> String {
            (0..self.below(max + 1))
                .map(|_| alphabet[self.below(alphabet.len())])
                .collect()
        }
    }

    /// The definition, by brute force: hide every byte of every occurrence,
    /// one marker per run of hidden bytes.
    fn oracle(secrets: &[String], text: &str) -> String {
        let bytes = text.as_bytes();
        let mut hidden = vec![false; bytes.len()];
        for secret in secrets.iter().filter(|s| s.len() >= MIN_SECRET_LEN) {
            for at in 0..bytes.len() {
                if bytes[at..].starts_with(secret.as_bytes()) {
                    hidden[at..at + secret.len()].fill(true);
                }
            }
        }
        let mut out = Vec::new();
        for (at, &byte) in bytes.iter().enumerate() {
            if !hidden[at] {
                out.push(byte);
            } else if at == 0 || !hidden[at - 1] {
                out.extend_from_slice(REDACTED.as_bytes());
            }
        }
        String::from_utf8(out).unwrap()
    }

    fn streamed(redactor: &Redactor, text: &[u8], cuts: &[usize]) -> Vec<u8> {
        let mut stream = redactor.stream();
        let mut out = Vec::new();
        let mut from = 0;
        for &cut in cuts {
            out.extend(stream.push(&text[from..cut]));
            assert!(stream.held.len() < redactor.longest.max(1), "held too much");
            from = cut;
        }
        out.extend(stream.push(&text[from..]));
        out.extend(stream.finish());
        out
    }

    #[test]
    fn hides_every_occurrence() {
        let redactor = Redactor::new(["sk-ant-123456", "ghp_token"]).unwrap();
        assert_eq!(
            redactor.redact_str("key=sk-ant-123456 git=ghp_token again sk-ant-123456."),
            "key=[REDACTED] git=[REDACTED] again [REDACTED]."
        );
        assert_eq!(redactor.redact_str("sk-ant-12345"), "sk-ant-12345");
        assert_eq!(redactor.len(), 2);
    }

    #[test]
    fn overlapping_adjacent_and_prefix_secrets_leave_nothing() {
        let redactor = Redactor::new(["abcd", "cdefgh", "abcdXYZ", "abcd"]).unwrap();
        assert_eq!(redactor.len(), 3);
        assert_eq!(redactor.redact_str("_abcdefgh_"), "_[REDACTED]_");
        assert_eq!(redactor.redact_str("_abcdabcd_"), "_[REDACTED]_");
        assert_eq!(redactor.redact_str("_abcdXYZ!"), "_[REDACTED]!");
        assert_eq!(redactor.redact_str("abcdXY"), "[REDACTED]XY");
        assert_eq!(redactor.redact_str("abcd abcd"), "[REDACTED] [REDACTED]");
    }

    #[test]
    fn short_and_empty_secrets_are_ignored() {
        let redactor = Redactor::new(["", "abc", "é!", "日"]).unwrap();
        assert!(redactor.is_empty());
        assert_eq!(redactor.redact_str("abc é! 日"), "abc é! 日");
        // The limit counts bytes: one four-byte character is long enough.
        let crab = Redactor::new(["🦀", "abc"]).unwrap();
        assert_eq!(crab.len(), 1);
        assert_eq!(
            crab.redact_str("a🦀🦀 🦀b abc"),
            "a[REDACTED] [REDACTED]b abc"
        );
        let mut stream = Redactor::default().stream();
        assert_eq!(stream.push(b"abc"), b"abc");
        assert!(stream.finish().is_empty());
    }

    #[test]
    fn a_secret_split_across_chunks_is_caught() {
        let redactor = Redactor::new(["s3cr3t-value"]).unwrap();
        let text = b"before s3cr3t-value after";
        for cut in 0..=text.len() {
            assert_eq!(
                streamed(&redactor, text, &[cut]),
                b"before [REDACTED] after",
                "cut at {cut}"
            );
        }
        let every_byte: Vec<usize> = (1..text.len()).collect();
        assert_eq!(
            streamed(&redactor, text, &every_byte),
            b"before [REDACTED] after"
        );
    }

    #[test]
    fn stream_equals_whole_for_random_secrets_and_splits() {
        let alphabet = ["a", "b", "c", "é", "日", "🦀", "ab", " "];
        let mut rng = Rng(0x5eed);
        for case in 0..3000 {
            let secrets: Vec<String> = (0..rng.below(5))
                .map(|_| rng.word(&alphabet[..6], 5))
                .collect();
            let text = rng.word(&alphabet, 40);
            let redactor = Redactor::new(&secrets).unwrap();
            let whole = redactor.redact_str(&text);
            assert_eq!(
                whole,
                oracle(&secrets, &text),
                "case {case}: {secrets:?} {text:?}"
            );
            for secret in secrets.iter().filter(|s| s.len() >= MIN_SECRET_LEN) {
                assert!(!whole.contains(secret.as_str()), "{secret:?} in {whole:?}");
            }
            let bytes = text.as_bytes();
            for _ in 0..20 {
                let mut cuts: Vec<usize> = (0..rng.below(8))
                    .map(|_| rng.below(bytes.len() + 1))
                    .collect();
                cuts.sort_unstable();
                let out = streamed(&redactor, bytes, &cuts);
                assert_eq!(
                    String::from_utf8(out).unwrap(),
                    whole,
                    "case {case}: {secrets:?} {text:?} cut at {cuts:?}"
                );
            }
        }
    }

    #[test]
    fn finish_starts_a_fresh_stream() {
        let redactor = Redactor::new(["abcdef"]).unwrap();
        let mut stream = redactor.stream();
        let mut first = stream.push(b"xxabc");
        first.extend(stream.finish());
        assert_eq!(first, b"xxabc");
        let mut second = stream.push(b"def abcdef");
        second.extend(stream.finish());
        assert_eq!(second, b"def [REDACTED]");
    }

    #[test]
    fn megabytes_stream_through_in_linear_time() {
        let secrets: Vec<String> = (0..20)
            .map(|n| format!("sk-ant-api03-{n:02}-{}", "x".repeat(80)))
            .collect();
        let redactor = Redactor::new(&secrets).unwrap();
        let mut line = "log line with sk-ant-api03- prefixes and text é日🦀 ".repeat(20);
        line.push_str(&secrets[7]);
        let body = line.repeat((16 << 20) / line.len());
        let started = std::time::Instant::now();
        let mut stream = redactor.stream();
        let mut hidden = 0;
        for chunk in body.as_bytes().chunks(16 << 10) {
            hidden += stream.push(chunk).len();
        }
        hidden += stream.finish().len();
        let elapsed = started.elapsed();
        let expected = body.len() / line.len() * (line.len() - secrets[7].len() + REDACTED.len());
        assert_eq!(hidden, expected);
        // Rescanning what was already released would take far longer; linear
        // scanning takes well under a second even unoptimised.
        assert!(elapsed.as_secs() < 5, "16 MiB took {elapsed:?}");
        eprintln!("16 MiB redacted in {elapsed:?}");
    }
}
