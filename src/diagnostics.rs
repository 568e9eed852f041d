//! The support report behind the window's Help → "Copy diagnostics" and
//! `cutout diagnostics`: what a helper needs to answer "it doesn't work"
//! without a back-and-forth (versions, platform, folders, the local
//! engine, each provider's set-up) and nothing they must not see. The
//! report is built from [`Facts`], which hold no key by construction: a
//! provider contributes only whether it is ready and where its key comes
//! from. Addresses lose any user name, password, query and fragment.

use std::fmt::Write as _;
use std::path::PathBuf;

use url::Url;

use crate::config::{self, Lookup};
use crate::local::engine::EngineStatus;
use crate::providers::ProviderId;
use crate::secrets::{KeychainStatus, Keys};

/// Everything the report says, gathered by the front end that copies it.
#[derive(Debug, Clone)]
pub struct Facts {
    /// Which front end: "window" or "command line".
    pub front: &'static str,
    /// The settings file, data folder and log folder, or why unknown.
    pub folders: Result<Folders, String>,
    /// Whether keys can be stored, in words.
    pub keychain: String,
    /// The local engine as it stands; `None` while it is still being
    /// asked (the window never waits for it).
    pub engine: Option<EngineStatus>,
    /// Models on disk: id and size in bytes.
    pub models: Vec<(String, u64)>,
    /// Every provider, in the order of [`ProviderId::ALL`].
    pub providers: Vec<ProviderFacts>,
    /// The window's queue in words ("3 done, 1 failed"), when it has one.
    pub jobs: Option<String>,
}

/// Cutout's folders on this machine.
#[derive(Debug, Clone)]
pub struct Folders {
    /// The settings file.
    pub settings_file: PathBuf,
    /// History and models.
    pub data_dir: PathBuf,
    /// Log files.
    pub log_dir: PathBuf,
}

/// One provider's set-up, without its key.
#[derive(Debug, Clone)]
pub struct ProviderFacts {
    /// Which provider.
    pub id: ProviderId,
    /// Whether jobs can run.
    pub ready: bool,
    /// Where the key comes from, or what to set.
    pub detail: String,
    /// Its base URLs by endpoint id.
    pub endpoints: Vec<(&'static str, Url)>,
    /// The last "Test key" outcome in words, when one was run.
    pub key_test: Option<String>,
}

/// The report as plain text, ready for an e-mail or an issue.
pub fn report(facts: &Facts) -> String {
    let mut out = String::new();
    let now = jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .unwrap_or_default();
    let _ = writeln!(out, "Cutout diagnostics ({}, {now})", facts.front);
    let _ = writeln!(
        out,
        "Cutout {} on {} {}",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::OS,
        std::env::consts::ARCH
    );
    match &facts.folders {
        Ok(folders) => {
            let _ = writeln!(out, "Settings: {}", folders.settings_file.display());
            let _ = writeln!(out, "Data: {}", folders.data_dir.display());
            let logs = crate::logging::log_files(&folders.log_dir);
            let newest = logs
                .first()
                .and_then(|p| p.file_name())
                .map(|n| format!(", newest {}", n.to_string_lossy()))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "Logs: {} ({} files{newest})",
                folders.log_dir.display(),
                logs.len()
            );
        }
        Err(why) => {
            let _ = writeln!(out, "Folders: {why}");
        }
    }
    let _ = writeln!(out, "Keychain: {}", facts.keychain);

    let _ = writeln!(out, "Local engine:");
    match &facts.engine {
        Some(engine) => {
            let _ = writeln!(
                out,
                "  engine: {:?} (asked for: {:?}), {} threads",
                engine.backend, engine.preference, engine.threads
            );
            let _ = writeln!(out, "  ONNX Runtime: {}", engine.runtime_text);
            if let Some(hint) = &engine.hint {
                let _ = writeln!(out, "  note: {hint}");
            }
            for (model, description) in &engine.sessions {
                let _ = writeln!(out, "  loaded: {model} on {description}");
            }
        }
        None => {
            let _ = writeln!(out, "  engine: still being checked");
        }
    }
    if facts.models.is_empty() {
        let _ = writeln!(out, "  models on disk: none");
    } else {
        let models: Vec<String> = facts
            .models
            .iter()
            .map(|(id, bytes)| format!("{id} ({} MB)", bytes.div_ceil(1_000_000)))
            .collect();
        let _ = writeln!(out, "  models on disk: {}", models.join(", "));
    }

    let _ = writeln!(out, "Providers:");
    for provider in &facts.providers {
        let state = if provider.ready { "ready" } else { "not ready" };
        let _ = writeln!(
            out,
            "  {} ({}): {state}, {}",
            provider.id.info().name,
            provider.id,
            provider.detail
        );
        if let Some(test) = &provider.key_test {
            let _ = writeln!(out, "    last key test: {test}");
        }
        for (endpoint, url) in &provider.endpoints {
            let _ = writeln!(out, "    {endpoint}: {}", without_secrets(url));
        }
    }
    if let Some(jobs) = &facts.jobs {
        let _ = writeln!(out, "Jobs this session: {jobs}");
    }
    let _ = writeln!(out, "(API keys are never included in this report.)");
    out
}

/// The keychain's state in words: "available", or what is missing and
/// what to do.
pub fn keychain_words(status: &KeychainStatus) -> String {
    match status {
        KeychainStatus::Available => "available".to_owned(),
        KeychainStatus::Unavailable { reason, fix } => format!("not available: {reason} ({fix})"),
    }
}

/// Each provider's set-up as the command line sees it: keys from the
/// environment and the keychain (their sources only), base URLs from the
/// environment or the defaults.
pub fn providers_from_keys(keys: &Keys, lookup: Lookup<'_>) -> Vec<ProviderFacts> {
    ProviderId::ALL
        .into_iter()
        .map(|id| {
            let info = id.info();
            let (credentials, errors) = keys.credentials(id);
            let missing: Vec<&str> = info
                .credentials
                .iter()
                .filter(|c| credentials.source(c.id).is_none())
                .map(|c| c.label)
                .collect();
            let mut sources: Vec<&str> = info
                .credentials
                .iter()
                .filter_map(|c| credentials.source(c.id))
                .collect();
            sources.dedup();
            let detail = if info.credentials.is_empty() {
                "no key needed".to_owned()
            } else if missing.is_empty() {
                format!("key from {}", sources.join(" and "))
            } else {
                let mut detail = format!("not set: {}", missing.join(", "));
                for error in errors {
                    let _ = write!(detail, "; {error}");
                }
                detail
            };
            let endpoints = match config::endpoints(id, lookup) {
                Ok(endpoints) => endpoints.into_iter().collect(),
                Err(_) => Vec::new(),
            };
            ProviderFacts {
                id,
                ready: missing.is_empty(),
                detail,
                endpoints,
                key_test: None,
            }
        })
        .collect()
}

/// `url` without a user name, password, query or fragment: the parts
/// where a token could hide.
pub fn without_secrets(url: &Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::local::backend::{BackendKind, BackendPreference};
    use crate::local::runtime::RuntimeStatus;

    fn facts(providers: Vec<ProviderFacts>) -> Facts {
        Facts {
            front: "command line",
            folders: Ok(Folders {
                settings_file: PathBuf::from("/home/u/.config/cutout/settings.toml"),
                data_dir: PathBuf::from("/home/u/.local/share/cutout"),
                log_dir: PathBuf::from("/nonexistent/logs"),
            }),
            keychain: "available".to_owned(),
            engine: Some(EngineStatus {
                preference: BackendPreference::Auto,
                runtime: RuntimeStatus::NotFound {
                    searched: Vec::new(),
                },
                runtime_text: "no ONNX Runtime library was found".to_owned(),
                backend: BackendKind::Tract,
                threads: 2,
                sessions: Vec::new(),
                hint: None,
            }),
            models: vec![("isnet-general-use".to_owned(), 178_648_008)],
            providers,
            jobs: Some("3 done, 1 failed".to_owned()),
        }
    }

    #[test]
    fn the_report_names_versions_folders_engine_models_and_each_providers_state() {
        let text = report(&facts(vec![
            ProviderFacts {
                id: ProviderId::Local,
                ready: true,
                detail: "no key needed".to_owned(),
                endpoints: Vec::new(),
                key_test: None,
            },
            ProviderFacts {
                id: ProviderId::Removebg,
                ready: false,
                detail: "needs an API key".to_owned(),
                endpoints: vec![("api", Url::parse("https://api.remove.bg/").unwrap())],
                key_test: Some("refused: check the key".to_owned()),
            },
        ]));
        for expected in [
            concat!("Cutout ", env!("CARGO_PKG_VERSION")),
            "Settings: /home/u/.config/cutout/settings.toml",
            "Logs: /nonexistent/logs (0 files)",
            "ONNX Runtime: no ONNX Runtime library was found",
            "models on disk: isnet-general-use (179 MB)",
            "(local): ready, no key needed",
            "(removebg): not ready, needs an API key",
            "last key test: refused: check the key",
            "api: https://api.remove.bg/",
            "Jobs this session: 3 done, 1 failed",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
        }
    }

    #[test]
    fn addresses_lose_user_names_passwords_queries_and_fragments() {
        let url = Url::parse("https://user:hunter2@example.com/v1/?token=abc#frag").unwrap();
        assert_eq!(without_secrets(&url), "https://example.com/v1/");
        let text = report(&facts(vec![ProviderFacts {
            id: ProviderId::Removit,
            ready: true,
            detail: "key from the keychain".to_owned(),
            endpoints: vec![("api", url)],
            key_test: None,
        }]));
        assert!(
            !text.contains("hunter2") && !text.contains("token=abc"),
            "{text}"
        );
    }
}
