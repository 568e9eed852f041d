//! Where API keys come from. Lookups go through [`KeyStore`] layers, first hit
//! wins: the environment (`CUTOUT_<ID>_KEY`, for headless use and CI) comes
//! first as an override; the OS keychain slots in after it. Keys are held as
//! [`SecretString`], so `Debug` prints `[REDACTED]` and nothing logs them by
//! accident.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use secrecy::SecretString;

use crate::config::SharedLookup;
use crate::providers::ProviderId;

/// Why a key store could not answer.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    /// The store exists but refused or failed (a locked keychain).
    #[error("{store} is unavailable: {message}")]
    Unavailable {
        /// Which store.
        store: &'static str,
        /// What it said.
        message: String,
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
/// secrets and never written anywhere, until the OS keychain store lands.
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

    /// What a headless run uses today: the environment only.
    pub fn from_environment() -> Self {
        Keys::new(vec![Box::new(EnvKeys::default())])
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
            Err(SecretsError::Unavailable {
                store: "keychain",
                message: "locked".into(),
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
}
