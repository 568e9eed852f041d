//! Entry points for fuzzing the parsers of everything Cutout reads from
//! outside: each provider's answers, the HTTP helpers they share, and the
//! settings file. The `cargo fuzz` targets in `fuzz/` call these, and so do
//! this module's tests, which run the committed corpus and seeded mutations
//! of it on every `cargo test`. The invariants are checked here, so libFuzzer
//! and the tests enforce the same ones:
//!
//! - nothing panics, whatever the bytes;
//! - every message a parser puts in front of a user (an error, a failed job's
//!   reason, a warning, a health check) is one line of at most
//!   [`MESSAGE_MAX_CHARS`] characters without control characters, so a huge or
//!   hostile answer never becomes a huge job error, history row or log line;
//! - whatever settings load save and load back the same, without problems.
//!
//! Hidden from the documentation: it serves the fuzz crate, not users.

use std::path::Path;
use std::time::{Duration, SystemTime};

use super::http::{self, PROVIDER_WORDS_MAX_CHARS};
use super::{Call, PollStatus, ProviderError, Replay, RetryPolicy};
use crate::settings::Settings;

/// The longest message a parser may produce: the provider's words, cut to
/// [`PROVIDER_WORDS_MAX_CHARS`], plus Cutout's own wording around them.
pub const MESSAGE_MAX_CHARS: usize = PROVIDER_WORDS_MAX_CHARS + 200;

/// remove.bg: the first line is the `X-Credits-Charged` (and `Content-Type`)
/// header, the rest the body of a removal, an account check or an error.
pub fn removebg(data: &[u8]) -> Vec<String> {
    checked("removebg", data, super::removebg::parse_any(data))
}

/// removit: `data` is the body of an upload, status or error answer.
pub fn removit(data: &[u8]) -> Vec<String> {
    checked("removit", data, super::removit::parse_any(data))
}

/// Uploadcare: `data` is the body of any Upload API or REST answer.
pub fn uploadcare(data: &[u8]) -> Vec<String> {
    checked("uploadcare", data, super::uploadcare::parse_any(data))
}

/// removebgvideo: `data` is the body of any of its answers.
pub fn removebgvideo(data: &[u8]) -> Vec<String> {
    checked("removebgvideo", data, super::removebgvideo::parse_any(data))
}

/// The shared HTTP helpers: `data` as a `Retry-After` value, as a body quoted
/// in messages, as an error body without any words Cutout recognises, and
/// as loose JSON.
pub fn http(data: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(data);
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    if let Some(wait) = http::parse_retry_after(&text, now) {
        let policy = RetryPolicy::default();
        let delay = policy.delay(1, Some(wait));
        assert!(
            delay <= policy.max_retry_after,
            "http: Retry-After {text:?} made a wait of {delay:?}, past the cap"
        );
    }
    let words = http::provider_words(&text);
    assert_eq!(
        http::provider_words(&words),
        words,
        "http: cutting provider words again changed them"
    );
    let mut messages = vec![http::snippet(data), words];
    let no_words = Call {
        what: "fuzzing",
        replay: Replay::Always,
        error_message: |_| None,
    };
    for status in [400, 502] {
        let status = reqwest::StatusCode::from_u16(status).expect("a valid status");
        messages.push(http::refusal_message(no_words, status, data, &[]));
    }
    match http::parse_answer("fuzzing", data) {
        Ok(answer) => {
            let values = answer.as_object().into_iter().flat_map(|o| o.values());
            for value in std::iter::once(&answer).chain(values) {
                // Ids and amounts, not messages: only their parsing is checked.
                let _ = (http::json_text(value), http::json_amount(value));
            }
        }
        Err(error) => messages.push(error.to_string()),
    }
    checked("http", data, messages)
}

/// The settings file: whatever loads must save, and load back the same
/// without problems (so a file Cutout wrote is never reported as broken).
pub fn settings(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let path = Path::new("settings.toml");
    let loaded = Settings::parse(&text, path);
    let saved = loaded.settings.to_toml().unwrap_or_else(|e| {
        panic!(
            "settings: what loaded from {} cannot be saved: {e}",
            shown(data)
        )
    });
    let again = Settings::parse(&saved, path);
    assert!(
        again.problems.is_empty(),
        "settings: saved settings load with problems {:?}; saved from {}",
        again.problems,
        shown(data)
    );
    assert_eq!(
        again.settings,
        loaded.settings,
        "settings: saved settings load back different; saved from {}",
        shown(data)
    );
}

/// The words a user reads when a parser fails: the error's message.
pub(crate) fn outcome_words<T>(outcome: &Result<T, ProviderError>) -> Vec<String> {
    match outcome {
        Ok(_) => Vec::new(),
        Err(error) => vec![error.to_string()],
    }
}

/// The words a user reads from a status answer: the error, a failed job's
/// reason, or a finished job's warnings.
pub(crate) fn poll_words(outcome: &Result<PollStatus, ProviderError>) -> Vec<String> {
    match outcome {
        Ok(PollStatus::Failed { message }) => vec![message.clone()],
        Ok(PollStatus::Done(result)) => result.warnings.clone(),
        Ok(PollStatus::Pending { .. }) => Vec::new(),
        Err(error) => vec![error.to_string()],
    }
}

/// Checks the invariant on messages and hands them back.
fn checked(target: &str, data: &[u8], messages: Vec<String>) -> Vec<String> {
    for message in &messages {
        let chars = message.chars().count();
        assert!(
            chars <= MESSAGE_MAX_CHARS,
            "{target}: a message of {chars} characters (at most {MESSAGE_MAX_CHARS}) from {}: {}",
            shown(data),
            http::provider_words(message)
        );
        assert!(
            !message.chars().any(char::is_control),
            "{target}: a message with a control character or line break from {}: {message:?}",
            shown(data)
        );
    }
    messages
}

/// The start of an input, for a failure's message.
fn shown(data: &[u8]) -> String {
    let start = &data[..data.len().min(300)];
    format!(
        "{} bytes starting {:?}",
        data.len(),
        String::from_utf8_lossy(start)
    )
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    /// A fuzz target's entry point.
    type EntryPoint = fn(&[u8]);

    /// A provider's entry point, which hands back the messages it checked.
    type ProviderEntryPoint = fn(&[u8]) -> Vec<String>;

    /// Every fuzz target: its name (the folder under `fuzz/corpus/` and
    /// `fuzz/regressions/`) and its entry point.
    const TARGETS: [(&str, EntryPoint); 6] = [
        ("removebg", |data| drop(removebg(data))),
        ("removit", |data| drop(removit(data))),
        ("uploadcare", |data| drop(uploadcare(data))),
        ("removebgvideo", |data| drop(removebgvideo(data))),
        ("http", |data| drop(http(data))),
        ("settings", settings),
    ];

    /// The committed inputs of `target`: its seed corpus, which must exist,
    /// then any crashers kept as regressions.
    fn committed_inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
        let root = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz"));
        let mut inputs = Vec::new();
        for folder in ["corpus", "regressions"] {
            let dir = root.join(folder).join(target);
            let Ok(entries) = std::fs::read_dir(&dir) else {
                assert_eq!(folder, "regressions", "no seed corpus at {}", dir.display());
                continue;
            };
            let mut paths: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).collect();
            paths.sort();
            for path in paths.into_iter().filter(|p| p.is_file()) {
                let data = std::fs::read(&path).unwrap();
                inputs.push((path, data));
            }
        }
        assert!(
            inputs.len() >= 5,
            "the {target} corpus has only {} inputs",
            inputs.len()
        );
        inputs
    }

    #[test]
    fn every_committed_fuzz_input_is_handled() {
        for (target, run) in TARGETS {
            for (path, data) in committed_inputs(target) {
                let outcome = std::panic::catch_unwind(|| run(&data));
                assert!(outcome.is_ok(), "{target} failed on {}", path.display());
            }
        }
    }

    /// What mutations insert, `|`-separated: JSON's punctuation and
    /// keywords, the field names the parsers look for, odd numbers, escapes,
    /// characters, a terminal escape and a line break.
    const TOKENS: &str = "{|}|[|]|\"|,|:|null|true|false|0|-1|100|1e999|-0.0|\
        18446744073709551616|\\u0000|\\ud800|\\n|é|✂|\u{1b}[2J|\n| |\0|<html>|\
        \"error\"|\"message\"|\"detail\"|\"status\"|\"state\"|\"done\"|\"failed\"|\
        \"completed\"|\"success\"|\"final_url\"|\"final_urls\"|\"warnings\"|\
        \"checks\"|\"result\"|\"errors\"|\"output_url\"|\"https://x.example/a.png\"";

    /// `seed` changed one to five times: a token inserted, bytes deleted, a
    /// bit flipped, the end cut off, a piece of another input spliced in, or
    /// a short run repeated until it is far longer than any message may be.
    fn mutate(rng: &mut fastrand::Rng, seed: &[u8], others: &[(PathBuf, Vec<u8>)]) -> Vec<u8> {
        let tokens: Vec<&str> = TOKENS.split('|').collect();
        let mut data = seed.to_vec();
        for _ in 0..rng.usize(1..=5) {
            let at = rng.usize(0..=data.len());
            match rng.u8(0..6) {
                0 => {
                    let token = tokens[rng.usize(0..tokens.len())];
                    data.splice(at..at, token.bytes());
                }
                1 => {
                    let end = (at + rng.usize(1..=8)).min(data.len());
                    data.drain(at..end);
                }
                2 if at < data.len() => data[at] ^= 1 << rng.u8(0..8),
                3 => data.truncate(at),
                4 => {
                    let other = &others[rng.usize(0..others.len())].1;
                    let from = rng.usize(0..=other.len());
                    let to = (from + rng.usize(0..=64)).min(other.len());
                    data.splice(at..at, other[from..to].iter().copied());
                }
                _ => {
                    let end = (at + rng.usize(1..=24)).min(data.len());
                    let run = data[at..end].to_vec();
                    let times = rng.usize(20..=60);
                    data.splice(
                        end..end,
                        run.iter().copied().cycle().take(run.len() * times),
                    );
                }
            }
        }
        data
    }

    #[test]
    fn seeded_mutations_of_the_committed_inputs_are_handled() {
        let mut rng = fastrand::Rng::with_seed(8);
        for (target, run) in TARGETS {
            let inputs = committed_inputs(target);
            // The settings' own tests already mutate a full file 3,000 times.
            let mutations = if target == "settings" { 300 } else { 1000 };
            for _ in 0..mutations {
                let seed = &inputs[rng.usize(0..inputs.len())].1;
                let data = mutate(&mut rng, seed, &inputs);
                if std::panic::catch_unwind(|| run(&data)).is_err() {
                    panic!(
                        "{target} failed on a mutated input; save it under fuzz/regressions/{target}/: {:?}",
                        String::from_utf8_lossy(&data)
                    );
                }
            }
        }
    }

    #[test]
    fn a_huge_error_body_is_cut_to_a_readable_length() {
        let sentence = "The image could not be read. ";
        let huge = sentence.repeat(100_000 / sentence.len());
        let huge = huge.trim_end();
        let bodies: [(&str, ProviderEntryPoint, serde_json::Value); 7] = [
            (
                "removebg",
                removebg,
                serde_json::json!({"errors": [{"title": huge}]}),
            ),
            (
                "removit",
                removit,
                serde_json::json!({"error": "bad", "message": huge}),
            ),
            (
                "removit",
                removit,
                serde_json::json!({"error": "validation", "details": {"file": [huge, huge]}}),
            ),
            (
                "removit",
                removit,
                serde_json::json!({"state": "done", "warnings": [huge]}),
            ),
            (
                "uploadcare",
                uploadcare,
                serde_json::json!({"detail": huge}),
            ),
            (
                "uploadcare",
                uploadcare,
                serde_json::json!({"status": "error", "error": huge}),
            ),
            (
                "removebgvideo",
                removebgvideo,
                serde_json::json!({"status": "failed", "error": {"message": huge}}),
            ),
        ];
        for (target, run, body) in bodies {
            // The entry point fails on any message past the limit; what is
            // left still says what the provider said.
            let messages = run(format!("\n{body}").as_bytes());
            assert!(
                messages
                    .iter()
                    .any(|m| m.contains(sentence.trim()) && m.contains('…')),
                "{target}: {body:.80}: {messages:#?}"
            );
        }
    }

    #[test]
    fn a_key_quoted_where_a_message_is_cut_is_hidden_whole() {
        let key = "rbg-0123456789abcdef".to_owned();
        let quoting = Call {
            what: "fuzzing",
            replay: Replay::Always,
            error_message: |body| Some(String::from_utf8_lossy(body).into_owned()),
        };
        for padding in PROVIDER_WORDS_MAX_CHARS - 25..PROVIDER_WORDS_MAX_CHARS {
            let body = format!("{} {key} is not valid", "x".repeat(padding));
            let status = reqwest::StatusCode::FORBIDDEN;
            let message =
                http::refusal_message(quoting, status, body.as_bytes(), std::slice::from_ref(&key));
            assert!(!message.contains("rbg-0123"), "{message}");
        }
    }

    #[test]
    fn a_provider_cannot_move_the_cursor_or_start_a_log_line() {
        assert_eq!(
            http::provider_words("bad key\u{1b}[2J\r\n2025-01-01 INFO  all fine\u{7}"),
            "bad key [2J 2025-01-01 INFO all fine"
        );
    }
}
