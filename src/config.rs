//! Resolves what the engine and providers run with: built-in defaults, then
//! the user's settings ([`crate::settings`]), then environment variables on
//! top, so headless runs, tests and staging can point anywhere.
//! Lookups go through a function rather than `std::env` directly, so tests
//! never have to mutate the process environment.

use std::collections::BTreeMap;
use std::time::Duration;

use url::Url;

use crate::jobs::PollPolicy;
use crate::providers::http::check_url_is_secure;
use crate::providers::{ProviderId, RetryPolicy};

/// A variable lookup: `std::env::var` in production, a map in tests.
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// A variable lookup that can be shared across threads and kept: what the
/// window and key stores hold.
pub type SharedLookup = std::sync::Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Reads the real process environment, ignoring empty values.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// A setting that cannot be used. The variable's value comes last.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A base URL that does not parse or is not allowed.
    #[error("{variable} is not a usable base URL ({reason}): {value}")]
    BadUrl {
        /// The variable that set it.
        variable: &'static str,
        /// Why it was refused.
        reason: String,
        /// What it held.
        value: String,
    },
    /// A base URL from the settings file that is not allowed. Loading the
    /// settings already refuses these, so this means one was set in code.
    #[error("the {provider} {endpoint} base URL in the settings is not usable ({reason}): {value}")]
    BadSettingsUrl {
        /// The provider it is for.
        provider: ProviderId,
        /// The endpoint id (`url`, `api_url`…).
        endpoint: &'static str,
        /// Why it was refused.
        reason: String,
        /// What it held.
        value: String,
    },
    /// A number that does not parse or is out of range.
    #[error("{variable} must be {expected}: {value}")]
    BadNumber {
        /// The variable that set it.
        variable: &'static str,
        /// What was expected.
        expected: &'static str,
        /// What it held.
        value: String,
    },
}

/// The base URLs for `provider`: environment overrides, else defaults.
/// Endpoints with no default (Uploadcare's CDN) are present only when set.
pub fn endpoints(
    provider: ProviderId,
    lookup: Lookup<'_>,
) -> Result<BTreeMap<&'static str, Url>, ConfigError> {
    endpoints_with(provider, &BTreeMap::new(), lookup)
}

/// The base URLs for `provider`, each from the first of: its `CUTOUT_*_URL`
/// variable, `overrides` (the settings file's `base_urls`, by endpoint id),
/// the built-in default. The environment wins so a headless run or a test
/// can point anywhere without editing the user's settings. Overrides for
/// endpoints the provider does not have are ignored (loading the settings
/// reported them). Endpoints with no default are present only when set.
pub fn endpoints_with(
    provider: ProviderId,
    overrides: &BTreeMap<&'static str, Url>,
    lookup: Lookup<'_>,
) -> Result<BTreeMap<&'static str, Url>, ConfigError> {
    let mut resolved = BTreeMap::new();
    for spec in provider.info().endpoints {
        let url = if let Some(value) = lookup(spec.env_var) {
            parse_base_url(&value).map_err(|reason| ConfigError::BadUrl {
                variable: spec.env_var,
                reason,
                value,
            })?
        } else if let Some(url) = overrides.get(spec.id) {
            check_url_is_secure(url).map_err(|e| ConfigError::BadSettingsUrl {
                provider,
                endpoint: spec.id,
                reason: e.to_string(),
                value: url.to_string(),
            })?;
            url.clone()
        } else if let Some(default) = spec.default {
            parse_base_url(default).map_err(|reason| ConfigError::BadUrl {
                variable: spec.env_var,
                reason,
                value: default.to_owned(),
            })?
        } else {
            continue;
        };
        resolved.insert(spec.id, url);
    }
    Ok(resolved)
}

/// Reads a base URL typed by a person (a variable, the settings file, the
/// Settings window) and checks it is safe to send keys and files to:
/// HTTPS, or plain HTTP only to this machine. The error is the reason alone,
/// so each caller can say where the value came from.
pub fn parse_base_url(value: &str) -> Result<Url, String> {
    let url = Url::parse(value.trim()).map_err(|e| e.to_string())?;
    check_url_is_secure(&url).map_err(|e| e.to_string())?;
    Ok(url)
}

fn number(
    lookup: Lookup<'_>,
    variable: &'static str,
    expected: &'static str,
    min: u64,
) -> Result<Option<u64>, ConfigError> {
    let Some(value) = lookup(variable) else {
        return Ok(None);
    };
    match value.trim().parse::<u64>() {
        Ok(n) if n >= min => Ok(Some(n)),
        _ => Err(ConfigError::BadNumber {
            variable,
            expected,
            value,
        }),
    }
}

/// The retry policy, with `CUTOUT_RETRY_BASE_MS` (backoff base; the cap is
/// 16× it) and `CUTOUT_RETRY_MAX_ATTEMPTS` overrides for tests and
/// impatient staging setups.
pub fn retry_policy(lookup: Lookup<'_>) -> Result<RetryPolicy, ConfigError> {
    let mut policy = RetryPolicy::default();
    if let Some(ms) = number(
        lookup,
        "CUTOUT_RETRY_BASE_MS",
        "a whole number of milliseconds",
        0,
    )? {
        policy.base_delay = Duration::from_millis(ms);
        policy.max_delay = Duration::from_millis(ms.saturating_mul(16));
    }
    if let Some(n) = number(
        lookup,
        "CUTOUT_RETRY_MAX_ATTEMPTS",
        "a whole number of attempts, at least 1",
        1,
    )? {
        policy.max_attempts = n.min(u64::from(u32::MAX)) as u32;
    }
    if let Some(ms) = number(
        lookup,
        "CUTOUT_HTTP_READ_TIMEOUT_MS",
        "a whole number of milliseconds, at least 1",
        1,
    )? {
        policy.read_timeout = Duration::from_millis(ms);
    }
    Ok(policy)
}

/// The polling cadence, with `CUTOUT_POLL_INTERVAL_MS` (first interval; the
/// cap is 2.5× it, as 2 s → 5 s by default) and `CUTOUT_POLL_DEADLINE_SECS`
/// overrides.
pub fn poll_policy(lookup: Lookup<'_>) -> Result<PollPolicy, ConfigError> {
    let mut policy = PollPolicy::default();
    if let Some(ms) = number(
        lookup,
        "CUTOUT_POLL_INTERVAL_MS",
        "a whole number of milliseconds, at least 1",
        1,
    )? {
        policy.initial_interval = Duration::from_millis(ms);
        policy.max_interval = Duration::from_millis(ms.saturating_mul(5) / 2);
    }
    if let Some(secs) = number(
        lookup,
        "CUTOUT_POLL_DEADLINE_SECS",
        "a whole number of seconds, at least 1",
        1,
    )? {
        policy.deadline = Some(Duration::from_secs(secs));
    }
    Ok(policy)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn base_urls_default_to_production_and_environment_overrides_them() {
        let none = env(&[]);
        let urls = endpoints(ProviderId::Removebg, &none).unwrap();
        assert_eq!(urls["url"].as_str(), "https://api.remove.bg/v1.0");
        let local = env(&[("CUTOUT_REMOVEBG_URL", "http://127.0.0.1:4000/v1.0")]);
        let urls = endpoints(ProviderId::Removebg, &local).unwrap();
        assert_eq!(urls["url"].as_str(), "http://127.0.0.1:4000/v1.0");
    }

    #[test]
    fn plain_http_to_a_remote_host_is_refused_naming_the_variable() {
        let insecure = env(&[("CUTOUT_REMOVIT_URL", "http://api.removit.eu")]);
        let err = endpoints(ProviderId::Removit, &insecure)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("CUTOUT_REMOVIT_URL"), "{err}");
        assert!(err.ends_with("http://api.removit.eu"), "{err}");
    }

    #[test]
    fn uploadcare_cdn_is_only_present_when_set() {
        let none = env(&[]);
        let urls = endpoints(ProviderId::Uploadcare, &none).unwrap();
        assert!(urls.contains_key("api_url") && urls.contains_key("upload_url"));
        assert!(!urls.contains_key("cdn_url"));
    }

    fn overrides(pairs: &[(&'static str, &str)]) -> BTreeMap<&'static str, Url> {
        pairs
            .iter()
            .map(|(id, url)| (*id, Url::parse(url).unwrap()))
            .collect()
    }

    #[test]
    fn a_settings_base_url_replaces_the_default_and_the_environment_replaces_both() {
        let settings = overrides(&[("url", "https://proxy.example.com/removebg")]);
        let none = env(&[]);
        let urls = endpoints_with(ProviderId::Removebg, &settings, &none).unwrap();
        assert_eq!(urls["url"].as_str(), "https://proxy.example.com/removebg");
        let local = env(&[("CUTOUT_REMOVEBG_URL", "http://127.0.0.1:4000/v1.0")]);
        let urls = endpoints_with(ProviderId::Removebg, &settings, &local).unwrap();
        assert_eq!(urls["url"].as_str(), "http://127.0.0.1:4000/v1.0");
    }

    #[test]
    fn settings_overrides_only_touch_their_own_endpoints() {
        let settings = overrides(&[
            ("cdn_url", "https://cdn.example.com"),
            ("no_such_endpoint", "https://elsewhere.example.com"),
        ]);
        let urls = endpoints_with(ProviderId::Uploadcare, &settings, &env(&[])).unwrap();
        assert_eq!(urls["cdn_url"].as_str(), "https://cdn.example.com/");
        assert_eq!(
            urls["api_url"],
            endpoints(ProviderId::Uploadcare, &env(&[])).unwrap()["api_url"]
        );
        assert!(!urls.contains_key("no_such_endpoint"));
    }

    #[test]
    fn an_insecure_settings_base_url_is_refused_saying_it_came_from_the_settings() {
        let settings = overrides(&[("url", "http://api.example.com")]);
        let err = endpoints_with(ProviderId::Removit, &settings, &env(&[]))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("the removit url base URL in the settings"),
            "{err}"
        );
        assert!(err.ends_with("http://api.example.com/"), "{err}");
    }

    #[test]
    fn typed_base_urls_are_parsed_and_checked_with_a_reason() {
        assert_eq!(
            parse_base_url(" https://api.example.com/v1 ")
                .unwrap()
                .as_str(),
            "https://api.example.com/v1"
        );
        assert!(parse_base_url("http://localhost:8080").is_ok());
        assert!(
            parse_base_url("api.example.com")
                .unwrap_err()
                .contains("relative URL")
        );
        assert!(
            parse_base_url("http://api.example.com")
                .unwrap_err()
                .contains("https")
        );
        assert!(parse_base_url("ftp://api.example.com").is_err());
    }

    #[test]
    fn tuning_variables_are_checked() {
        let fast = env(&[
            ("CUTOUT_POLL_INTERVAL_MS", "20"),
            ("CUTOUT_RETRY_BASE_MS", "10"),
        ]);
        let poll = poll_policy(&fast).unwrap();
        assert_eq!(poll.initial_interval, Duration::from_millis(20));
        assert_eq!(poll.max_interval, Duration::from_millis(50));
        assert_eq!(
            retry_policy(&fast).unwrap().max_delay,
            Duration::from_millis(160)
        );
        let bad = env(&[("CUTOUT_RETRY_MAX_ATTEMPTS", "0")]);
        assert!(retry_policy(&bad).is_err());
    }
}
