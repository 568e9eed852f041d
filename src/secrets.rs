//! Where API keys come from. Lookups go through [`KeyStore`] layers, first hit
//! wins: the environment (`CUTOUT_<ID>_KEY`, for headless use and CI) comes
//! first as an override, then the OS keychain ([`Keychain`]: Secret Service on
//! Linux, Keychain on macOS, Credential Manager on Windows). Keys are held as
//! [`SecretString`], so `Debug` prints `[REDACTED]` and nothing logs them by
//! accident. There is deliberately no plain-file store: where no keychain
//! exists, keys come from the environment or last for one window session.
//!
//! Keychain calls block (a D-Bus round trip on Linux, possibly an unlock
//! prompt), so callers on a UI thread or an async executor run them on a
//! worker thread (`spawn_blocking`).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};

use crate::config::{Lookup, SharedLookup};
use crate::providers::{CredentialSpec, ProviderId};

/// The keychain service name Cutout's entries are filed under.
pub const KEYCHAIN_SERVICE: &str = "cutout";

/// Overrides [`KEYCHAIN_SERVICE`]. Meant for tests, so that each one works on
/// its own entries and never reads or deletes a real user's keys.
pub const KEYCHAIN_SERVICE_VAR: &str = "CUTOUT_KEYCHAIN_SERVICE";

/// Why a key store could not answer. No variant ever holds a key.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    /// There is no keychain to use on this machine or in this session.
    #[error("the OS keychain is not available: {reason}. {fix}")]
    Unavailable {
        /// What is missing, in the user's words.
        reason: String,
        /// What to do about it.
        fix: String,
    },
    /// The keychain is there but locked, has no default keyring to store
    /// keys in, or refused access (a dismissed unlock prompt).
    #[error(
        "the OS keychain is locked or has no default keyring ({detail}); unlock or create your \
         login keyring (on Linux, e.g. with Seahorse, \"Passwords and Keys\") and try again"
    )]
    Locked {
        /// What the keychain said.
        detail: String,
    },
    /// The keychain failed in some other way.
    #[error("the OS keychain failed: {detail}")]
    Failed {
        /// What the keychain said.
        detail: String,
    },
    /// An entry holds something that is not a usable key.
    #[error(
        "the keychain entry {entry} does not hold a usable key; set it again with `cutout keys set {provider}`"
    )]
    Unreadable {
        /// The entry's name (`removebg/key`).
        entry: String,
        /// The provider's id, for the command to run.
        provider: ProviderId,
    },
    /// More than one entry answers to the same name.
    #[error(
        "several keychain entries are named {entry} under the service {service}; delete them with `cutout keys delete {provider}` or your keychain manager, then set the key again"
    )]
    Ambiguous {
        /// The entry's name.
        entry: String,
        /// The keychain service.
        service: String,
        /// The provider's id.
        provider: ProviderId,
    },
    /// The provider declares no credential with that id.
    #[error("{provider} has no credential `{credential}`; its credentials are {known}")]
    UnknownCredential {
        /// The provider's id.
        provider: ProviderId,
        /// The id asked for.
        credential: String,
        /// The ids it has, comma-separated.
        known: String,
    },
}

/// One place keys can come from.
pub trait KeyStore: Send + Sync {
    /// The store's name, shown as where a key came from.
    fn name(&self) -> &'static str;

    /// The credential `credential_id` of `provider`, if this store has it.
    fn get(
        &self,
        provider: ProviderId,
        credential_id: &str,
    ) -> Result<Option<SecretString>, SecretsError>;
}

/// Keys from environment variables named by each provider's
/// [`CredentialSpec::env_var`](crate::providers::CredentialSpec::env_var).
/// Variables are read through a lookup function, so the window's tests can
/// give it a fake environment.
#[derive(Clone)]
pub struct EnvKeys {
    lookup: SharedLookup,
}

impl Default for EnvKeys {
    fn default() -> Self {
        EnvKeys::new(Arc::new(|name: &str| std::env::var(name).ok()))
    }
}

impl EnvKeys {
    /// Reads variables through `lookup`.
    pub fn new(lookup: SharedLookup) -> Self {
        EnvKeys { lookup }
    }
}

impl KeyStore for EnvKeys {
    fn name(&self) -> &'static str {
        "environment"
    }

    fn get(
        &self,
        provider: ProviderId,
        credential_id: &str,
    ) -> Result<Option<SecretString>, SecretsError> {
        let Some(spec) = provider
            .info()
            .credentials
            .iter()
            .find(|c| c.id == credential_id)
        else {
            return Ok(None);
        };
        Ok((self.lookup)(spec.env_var)
            .filter(|v| !v.trim().is_empty())
            .map(|v| SecretString::from(v.trim().to_owned())))
    }
}

/// Keys typed into the window for this session only: held in memory as
/// secrets and never written anywhere. What the window offers when
/// [`Keychain::status`] says there is no keychain.
#[derive(Default, Clone)]
pub struct SessionKeys {
    keys: BTreeMap<(ProviderId, &'static str), SecretString>,
}

impl fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let held: Vec<_> = self.keys.keys().collect();
        f.debug_struct("SessionKeys").field("held", &held).finish()
    }
}

impl SessionKeys {
    /// Remembers a credential for this session.
    pub fn set(&mut self, provider: ProviderId, credential_id: &'static str, secret: SecretString) {
        self.keys.insert((provider, credential_id), secret);
    }

    /// Forgets a credential.
    pub fn remove(&mut self, provider: ProviderId, credential_id: &str) {
        self.keys
            .retain(|(p, c), _| !(*p == provider && *c == credential_id));
    }
}

impl KeyStore for SessionKeys {
    fn name(&self) -> &'static str {
        "this session"
    }

    fn get(
        &self,
        provider: ProviderId,
        credential_id: &str,
    ) -> Result<Option<SecretString>, SecretsError> {
        Ok(self
            .keys
            .iter()
            .find(|((p, c), _)| *p == provider && *c == credential_id)
            .map(|(_, secret)| secret.clone()))
    }
}

/// Whether the OS keychain can be used, with what to do when it cannot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeychainStatus {
    /// Keys can be stored and read.
    Available,
    /// No keychain can be reached (on Linux: no D-Bus session, or no Secret
    /// Service on it). Keys then come from the environment or last for one
    /// window session; they are never written to a file instead.
    Unavailable {
        /// What is missing, in the user's words.
        reason: String,
        /// What to install or start, in the user's words.
        fix: String,
    },
}

/// The OS keychain: one entry per provider credential, named
/// `<provider>/<credential>` (`removebg/key`, `uploadcare/secret_key`) under
/// the service [`KEYCHAIN_SERVICE`].
///
/// The platform store is opened once per process, on first use, by the
/// `keyring` crate; when it cannot be opened every later call answers at once
/// without retrying, so a machine without a keychain pays for one failed
/// connection, not one per lookup. The flip side is that a keychain started
/// after Cutout is only seen after a restart, which [`status`](Self::status)
/// says in its fix.
///
/// Every method blocks (D-Bus on Linux, perhaps an unlock prompt): call them
/// off UI and async executor threads.
#[derive(Debug, Clone)]
pub struct Keychain {
    service: String,
}

impl Default for Keychain {
    fn default() -> Self {
        Keychain::new(&crate::config::process_env)
    }
}

impl Keychain {
    /// The keychain under [`KEYCHAIN_SERVICE`], or under the service named by
    /// [`KEYCHAIN_SERVICE_VAR`] when `lookup` has it (tests).
    pub fn new(lookup: Lookup<'_>) -> Self {
        let service = lookup(KEYCHAIN_SERVICE_VAR)
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| KEYCHAIN_SERVICE.to_owned());
        Keychain { service }
    }

    /// The service name entries are filed under, to show users where to
    /// look in their keychain manager.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// The entry name for one credential: `removebg/key`.
    pub fn entry_name(provider: ProviderId, credential_id: &str) -> String {
        format!("{provider}/{credential_id}")
    }

    /// Whether the keychain can be used, and if not why and what to do.
    /// The first call in a process opens the platform store (milliseconds,
    /// or up to the D-Bus timeout on a broken session bus).
    pub fn status(&self) -> KeychainStatus {
        match keyring::Entry::store_status() {
            Ok(()) => KeychainStatus::Available,
            Err(error) => {
                let (reason, fix) = unavailable_words(error);
                KeychainStatus::Unavailable { reason, fix }
            }
        }
    }

    /// Stores (or replaces) a credential.
    pub fn set(
        &self,
        provider: ProviderId,
        credential_id: &str,
        secret: &SecretString,
    ) -> Result<(), SecretsError> {
        let entry = self.entry(provider, credential_id)?;
        entry
            .set_password(secret.expose_secret())
            .map_err(|e| self.error(e, provider, credential_id))
    }

    /// Removes a credential; `Ok(false)` when there was none.
    pub fn delete(&self, provider: ProviderId, credential_id: &str) -> Result<bool, SecretsError> {
        let entry = self.entry(provider, credential_id)?;
        match entry.delete_credential() {
            Ok(()) => Ok(true),
            Err(keyring::Error::NoEntry) => Ok(false),
            Err(e) => Err(self.error(e, provider, credential_id)),
        }
    }

    /// Whether a credential is stored. Reads it (the Secret Service has no
    /// cheaper way to ask), but drops it at once.
    pub fn has(&self, provider: ProviderId, credential_id: &str) -> Result<bool, SecretsError> {
        self.read(provider, credential_id)
            .map(|found| found.is_some())
    }

    fn read(
        &self,
        provider: ProviderId,
        credential_id: &str,
    ) -> Result<Option<SecretString>, SecretsError> {
        let entry = self.entry(provider, credential_id)?;
        match entry.get_password() {
            Ok(password) => {
                let secret = SecretString::from(password);
                let trimmed = secret.expose_secret().trim();
                if trimmed.is_empty() {
                    return Ok(None);
                }
                if trimmed.len() == secret.expose_secret().len() {
                    Ok(Some(secret))
                } else {
                    Ok(Some(SecretString::from(trimmed.to_owned())))
                }
            }
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(self.error(e, provider, credential_id)),
        }
    }

    /// The entry for a credential the provider declares.
    fn entry(
        &self,
        provider: ProviderId,
        credential_id: &str,
    ) -> Result<keyring::Entry, SecretsError> {
        credential_spec(provider, credential_id)?;
        let name = Keychain::entry_name(provider, credential_id);
        keyring::Entry::new(&self.service, &name)
            .map_err(|e| self.error(e, provider, credential_id))
    }

    /// The keyring crate's error in the user's words. Only the platform's
    /// own message is quoted: keyring errors that carry data (undecodable
    /// bytes) are described, never printed.
    fn error(
        &self,
        error: keyring::Error,
        provider: ProviderId,
        credential_id: &str,
    ) -> SecretsError {
        let entry = Keychain::entry_name(provider, credential_id);
        match error {
            keyring::Error::NoDefaultStore => match self.status() {
                KeychainStatus::Unavailable { reason, fix } => {
                    SecretsError::Unavailable { reason, fix }
                }
                KeychainStatus::Available => SecretsError::Failed {
                    detail: "no keychain is open".to_owned(),
                },
            },
            keyring::Error::NoStorageAccess(platform) => SecretsError::Locked {
                detail: platform.to_string(),
            },
            keyring::Error::PlatformFailure(platform) => SecretsError::Failed {
                detail: platform.to_string(),
            },
            keyring::Error::BadEncoding(_) | keyring::Error::BadDataFormat(..) => {
                SecretsError::Unreadable { entry, provider }
            }
            keyring::Error::Ambiguous(_) => SecretsError::Ambiguous {
                entry,
                service: self.service.clone(),
                provider,
            },
            keyring::Error::TooLong(what, limit) => SecretsError::Failed {
                detail: format!("the {what} is longer than the keychain's limit of {limit}"),
            },
            keyring::Error::Invalid(what, why) => SecretsError::Failed {
                detail: format!("the {what} is not accepted: {why}"),
            },
            keyring::Error::NoEntry => SecretsError::Failed {
                detail: format!("there is no entry {entry}"),
            },
            other => SecretsError::Failed {
                detail: other.to_string(),
            },
        }
    }
}

impl KeyStore for Keychain {
    fn name(&self) -> &'static str {
        "keychain"
    }

    /// A missing keychain answers "no key" quietly: `cutout keys status` and
    /// the Settings window explain it, and a warning on every lookup would
    /// only be noise where keys come from the environment.
    fn get(
        &self,
        provider: ProviderId,
        credential_id: &str,
    ) -> Result<Option<SecretString>, SecretsError> {
        match self.read(provider, credential_id) {
            Err(SecretsError::Unavailable { .. }) => Ok(None),
            other => other,
        }
    }
}

/// The credential `credential_id` of `provider`, or the error listing the
/// ones it has.
pub fn credential_spec(
    provider: ProviderId,
    credential_id: &str,
) -> Result<&'static CredentialSpec, SecretsError> {
    let credentials = provider.info().credentials;
    credentials
        .iter()
        .find(|c| c.id == credential_id)
        .ok_or_else(|| SecretsError::UnknownCredential {
            provider,
            credential: credential_id.to_owned(),
            known: credentials
                .iter()
                .map(|c| c.id)
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// Why the platform store could not be opened, and what to do, in words a
/// user can act on.
fn unavailable_words(error: &keyring::Error) -> (String, String) {
    let detail = match error {
        keyring::Error::PlatformFailure(e) | keyring::Error::NoStorageAccess(e) => e.to_string(),
        other => other.to_string(),
    };
    let meanwhile = "Until then, set keys in CUTOUT_<PROVIDER>_KEY environment variables, \
                     or type them into the window for this session only; Cutout never \
                     writes keys to a plain file";
    if cfg!(any(target_os = "macos", target_os = "windows")) {
        let store = if cfg!(target_os = "macos") {
            "the macOS Keychain"
        } else {
            "the Windows Credential Manager"
        };
        return (
            format!("{store} could not be opened ({detail})"),
            format!(
                "Check that you are logged in to a normal desktop session, then restart Cutout. {meanwhile}."
            ),
        );
    }
    let lower = detail.to_ascii_lowercase();
    let reason = if lower.contains("no secret service provider or dbus session")
        || lower.contains("no such file")
        || lower.contains("connection refused")
        || lower.contains("dbus_session_bus_address")
    {
        "there is no D-Bus session bus, so no Secret Service (the Linux keychain) can be reached; \
         this is usual over SSH, in containers and under minimal window managers"
            .to_owned()
    } else if lower.contains("serviceunknown") || lower.contains("not provided by any") {
        "no Secret Service (the Linux keychain) is running in this session".to_owned()
    } else {
        format!("the Secret Service (the Linux keychain) could not be reached ({detail})")
    };
    let fix = format!(
        "Install and start GNOME Keyring (package gnome-keyring), or KeePassXC with its \
         Secret Service integration turned on (KDE: KWallet's Secret Service), in your \
         desktop session, then restart Cutout. {meanwhile}."
    );
    (reason, fix)
}

/// The ordered stores; the first that has a key wins.
pub struct Keys {
    layers: Vec<Box<dyn KeyStore>>,
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<_> = self.layers.iter().map(|l| l.name()).collect();
        f.debug_struct("Keys").field("layers", &names).finish()
    }
}

impl Keys {
    /// Layers in priority order.
    pub fn new(layers: Vec<Box<dyn KeyStore>>) -> Self {
        Keys { layers }
    }

    /// The environment only: for callers that must not touch the keychain.
    pub fn from_environment() -> Self {
        Keys::new(vec![Box::new(EnvKeys::default())])
    }

    /// What this machine offers, in priority order: environment variables
    /// read through `lookup`, then the OS keychain (its service name also
    /// read through `lookup`, see [`KEYCHAIN_SERVICE_VAR`]). A key in the
    /// environment is found without the keychain being asked at all.
    pub fn for_this_machine(lookup: SharedLookup) -> Self {
        let keychain = Keychain::new(&*lookup);
        Keys::new(vec![Box::new(EnvKeys::new(lookup)), Box::new(keychain)])
    }

    /// [`for_this_machine`](Self::for_this_machine) with the real process
    /// environment: what the command line uses.
    pub fn for_this_process() -> Self {
        Keys::for_this_machine(Arc::new(crate::config::process_env))
    }

    /// Every credential `provider` declares that some store has, with the
    /// store it came from. A failing store is reported and skipped, so a
    /// locked keychain does not hide a key set in the environment.
    pub fn credentials(&self, provider: ProviderId) -> (Credentials, Vec<SecretsError>) {
        let mut found = Credentials::default();
        let mut errors = Vec::new();
        for spec in provider.info().credentials {
            for layer in &self.layers {
                match layer.get(provider, spec.id) {
                    Ok(Some(secret)) => {
                        found.insert(spec.id, secret, layer.name());
                        break;
                    }
                    Ok(None) => {}
                    Err(e) => errors.push(e),
                }
            }
        }
        (found, errors)
    }
}

/// A provider's resolved credentials. `Debug` shows which are present and
/// where they came from, never their values.
#[derive(Default, Clone)]
pub struct Credentials {
    entries: BTreeMap<&'static str, (SecretString, &'static str)>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for (id, (_, source)) in &self.entries {
            map.entry(id, &format_args!("[REDACTED] from {source}"));
        }
        map.finish()
    }
}

impl Credentials {
    /// Adds a credential found in `source`.
    pub fn insert(&mut self, id: &'static str, secret: SecretString, source: &'static str) {
        self.entries.insert(id, (secret, source));
    }

    /// The credential with this id.
    pub fn get(&self, id: &str) -> Option<&SecretString> {
        self.entries.get(id).map(|(secret, _)| secret)
    }

    /// Where the credential came from ("environment").
    pub fn source(&self, id: &str) -> Option<&'static str> {
        self.entries.get(id).map(|(_, source)| *source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    struct Fixed(&'static str, Option<&'static str>);

    impl KeyStore for Fixed {
        fn name(&self) -> &'static str {
            self.0
        }
        fn get(&self, _: ProviderId, _: &str) -> Result<Option<SecretString>, SecretsError> {
            Ok(self.1.map(|k| SecretString::from(k.to_owned())))
        }
    }

    struct Broken;

    impl KeyStore for Broken {
        fn name(&self) -> &'static str {
            "keychain"
        }
        fn get(&self, _: ProviderId, _: &str) -> Result<Option<SecretString>, SecretsError> {
            Err(SecretsError::Locked {
                detail: "locked".into(),
            })
        }
    }

    #[test]
    fn the_first_store_with_a_key_wins() {
        let keys = Keys::new(vec![
            Box::new(Fixed("environment", None)),
            Box::new(Fixed("keychain", Some("k2"))),
        ]);
        let (creds, errors) = keys.credentials(ProviderId::Removebg);
        assert!(errors.is_empty());
        assert_eq!(creds.get("key").unwrap().expose_secret(), "k2");
        assert_eq!(creds.source("key"), Some("keychain"));
    }

    #[test]
    fn a_broken_store_is_reported_but_does_not_hide_later_ones() {
        let keys = Keys::new(vec![
            Box::new(Broken),
            Box::new(Fixed("environment", Some("k"))),
        ]);
        let (creds, errors) = keys.credentials(ProviderId::Removit);
        assert_eq!(creds.get("key").unwrap().expose_secret(), "k");
        assert_eq!(errors.len(), 1);
    }

    #[test]
    fn debug_output_never_shows_a_key() {
        let mut creds = Credentials::default();
        creds.insert(
            "key",
            SecretString::from("sk_live_very_secret".to_owned()),
            "environment",
        );
        let shown = format!("{creds:?}");
        assert!(!shown.contains("sk_live_very_secret"), "{shown}");
        assert!(shown.contains("REDACTED"));
    }

    #[test]
    fn keychain_entries_are_named_provider_slash_credential_under_one_service() {
        assert_eq!(
            Keychain::entry_name(ProviderId::Removebg, "key"),
            "removebg/key"
        );
        assert_eq!(
            Keychain::entry_name(ProviderId::Uploadcare, "secret_key"),
            "uploadcare/secret_key"
        );
        let none = |_: &str| None;
        assert_eq!(Keychain::new(&none).service(), "cutout");
        let test =
            |name: &str| (name == KEYCHAIN_SERVICE_VAR).then(|| " cutout-test-1 ".to_owned());
        assert_eq!(Keychain::new(&test).service(), "cutout-test-1");
    }

    #[test]
    fn an_unknown_credential_is_refused_before_the_keychain_is_asked() {
        let error = Keychain::new(&|_: &str| None)
            .set(
                ProviderId::Uploadcare,
                "key",
                &SecretString::from("x".to_owned()),
            )
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "uploadcare has no credential `key`; its credentials are public_key, secret_key"
        );
    }

    #[test]
    fn keychain_and_keys_debug_output_never_shows_a_key() {
        let keychain = Keychain::new(&|_: &str| None);
        let shown = format!("{keychain:?}");
        assert!(shown.contains("cutout"), "{shown}");
        let keys = Keys::new(vec![
            Box::new(Fixed("environment", Some("sk_live_very_secret"))),
            Box::new(keychain),
        ]);
        let (creds, _) = keys.credentials(ProviderId::Removebg);
        for shown in [
            format!("{keys:?}"),
            format!("{creds:?}"),
            format!("{creds:#?}"),
        ] {
            assert!(!shown.contains("sk_live_very_secret"), "{shown}");
        }
    }

    #[test]
    fn the_environment_wins_and_the_keychain_is_not_needed_for_it() {
        let lookup: SharedLookup = Arc::new(|name: &str| match name {
            "CUTOUT_REMOVIT_KEY" => Some(" rmv_env ".to_owned()),
            KEYCHAIN_SERVICE_VAR => Some("cutout-test-unused".to_owned()),
            _ => None,
        });
        let (creds, errors) = Keys::for_this_machine(lookup).credentials(ProviderId::Removit);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(creds.get("key").unwrap().expose_secret(), "rmv_env");
        assert_eq!(creds.source("key"), Some("environment"));
    }

    #[test]
    fn unavailable_keychain_words_name_the_fix_and_never_a_plain_file_fallback() {
        let (reason, fix) = unavailable_words(&keyring::Error::PlatformFailure(Box::new(
            std::io::Error::other("no secret service provider or dbus session found"),
        )));
        if cfg!(target_os = "linux") {
            assert!(reason.contains("no D-Bus session bus"), "{reason}");
            assert!(
                fix.contains("GNOME Keyring") && fix.contains("KeePassXC"),
                "{fix}"
            );
        }
        assert!(fix.contains("CUTOUT_<PROVIDER>_KEY"), "{fix}");
        assert!(fix.contains("never writes keys to a plain file"), "{fix}");
    }

    /// A keychain service of its own for one test, so the test never sees or
    /// touches a real user's entries.
    fn test_keychain(name: &str) -> Keychain {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let service = format!("cutout-test-{name}-{}-{nanos}", std::process::id());
        Keychain::new(&move |var: &str| (var == KEYCHAIN_SERVICE_VAR).then(|| service.clone()))
    }

    /// Whether the real keychain can be used here; panics when the run
    /// requires it (`CUTOUT_TEST_KEYCHAIN=required`, as `scripts/test` sets).
    fn keychain_reachable(keychain: &Keychain) -> bool {
        match keychain.status() {
            KeychainStatus::Available => true,
            KeychainStatus::Unavailable { reason, .. } => {
                let required = std::env::var("CUTOUT_TEST_KEYCHAIN").as_deref() == Ok("required");
                assert!(!required, "CUTOUT_TEST_KEYCHAIN=required but {reason}");
                eprintln!("skipped: no OS keychain here ({reason})");
                false
            }
        }
    }

    #[test]
    fn a_key_set_in_the_real_keychain_is_found_then_deleted() {
        let keychain = test_keychain("roundtrip");
        if !keychain_reachable(&keychain) {
            return;
        }
        let provider = ProviderId::Uploadcare;
        assert!(!keychain.has(provider, "secret_key").unwrap());
        assert!(!keychain.delete(provider, "secret_key").unwrap());

        let secret = SecretString::from("ucsec_roundtrip_value".to_owned());
        keychain.set(provider, "secret_key", &secret).unwrap();
        assert!(keychain.has(provider, "secret_key").unwrap());
        assert!(!keychain.has(provider, "public_key").unwrap());
        let found = keychain.get(provider, "secret_key").unwrap().unwrap();
        assert_eq!(found.expose_secret(), "ucsec_roundtrip_value");

        let replaced = SecretString::from("ucsec_second_value".to_owned());
        keychain.set(provider, "secret_key", &replaced).unwrap();
        let found = keychain.get(provider, "secret_key").unwrap().unwrap();
        assert_eq!(found.expose_secret(), "ucsec_second_value");

        assert!(keychain.delete(provider, "secret_key").unwrap());
        assert!(keychain.get(provider, "secret_key").unwrap().is_none());
    }
}
