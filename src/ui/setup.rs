//! Which providers are usable in the window, built from the keys the user
//! typed (held for this session), the environment (which overrides them, as
//! on the command line) and any base URL overrides. Whenever one of these
//! changes, the provider's client is rebuilt and handed to the engine.

use std::collections::BTreeMap;
use std::sync::Arc;

use secrecy::SecretString;

use crate::config;
use crate::jobs::{Command, CommandSender};
use crate::providers::{self, HttpClient, ProviderConfig, ProviderError, ProviderId};
use crate::secrets::{EnvKeys, Keys, SessionKeys};

/// Reads an environment variable (the process's, or a test's).
pub type Env = config::SharedLookup;

/// Whether a provider can run jobs, and if not, what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderStatus {
    /// Ready; its key came from `key_source` ("environment", "this session").
    Ready {
        /// Where the key came from.
        key_source: &'static str,
    },
    /// Not usable yet; the message says what to set.
    NeedsSetup(String),
}

impl ProviderStatus {
    /// Whether jobs can run.
    pub fn is_ready(&self) -> bool {
        matches!(self, ProviderStatus::Ready { .. })
    }
}

/// The window's provider configuration.
pub struct ProviderSetup {
    env: Env,
    http: HttpClient,
    commands: CommandSender,
    keys: SessionKeys,
    base_urls: BTreeMap<(ProviderId, &'static str), String>,
    concurrency: BTreeMap<ProviderId, usize>,
    status: BTreeMap<ProviderId, ProviderStatus>,
}

impl ProviderSetup {
    /// Builds every provider that already has what it needs (keys from the
    /// environment) and tells the engine.
    pub fn new(env: Env, http: HttpClient, commands: CommandSender) -> Self {
        let mut setup = ProviderSetup {
            env,
            http,
            commands,
            keys: SessionKeys::default(),
            base_urls: BTreeMap::new(),
            concurrency: BTreeMap::new(),
            status: BTreeMap::new(),
        };
        for id in ProviderId::ALL {
            setup.rebuild(id);
        }
        setup
    }

    /// Whether `id` can run jobs.
    pub fn status(&self, id: ProviderId) -> &ProviderStatus {
        static UNKNOWN: ProviderStatus = ProviderStatus::Ready { key_source: "" };
        self.status.get(&id).unwrap_or(&UNKNOWN)
    }

    /// Where a credential currently comes from, if it is set.
    pub fn key_source(&self, id: ProviderId, credential_id: &str) -> Option<&'static str> {
        let (credentials, _) = self.keys_for().credentials(id);
        credentials.source(credential_id)
    }

    /// Whether the environment sets this credential (and so overrides
    /// whatever is typed in the window).
    pub fn env_overrides(&self, id: ProviderId, credential_id: &str) -> bool {
        self.key_source(id, credential_id) == Some("environment")
    }

    /// Keeps a key for this session and rebuilds the provider.
    pub fn set_key(&mut self, id: ProviderId, credential_id: &'static str, secret: SecretString) {
        self.keys.set(id, credential_id, secret);
        self.rebuild(id);
    }

    /// Forgets a session key and rebuilds the provider.
    pub fn remove_key(&mut self, id: ProviderId, credential_id: &str) {
        self.keys.remove(id, credential_id);
        self.rebuild(id);
    }

    /// The base URL override typed in Settings, if any.
    pub fn base_url_override(&self, id: ProviderId, endpoint_id: &'static str) -> Option<&str> {
        self.base_urls.get(&(id, endpoint_id)).map(String::as_str)
    }

    /// Sets (or, with an empty value, clears) a base URL override and
    /// rebuilds the provider; a bad URL shows in its status.
    pub fn set_base_url(&mut self, id: ProviderId, endpoint_id: &'static str, url: String) {
        if url.trim().is_empty() {
            self.base_urls.remove(&(id, endpoint_id));
        } else {
            self.base_urls
                .insert((id, endpoint_id), url.trim().to_owned());
        }
        self.rebuild(id);
    }

    /// Jobs in flight at once for `id`.
    pub fn concurrency(&self, id: ProviderId) -> usize {
        self.concurrency
            .get(&id)
            .copied()
            .unwrap_or(id.info().default_concurrency)
    }

    /// Changes how many jobs run at once for `id`.
    pub fn set_concurrency(&mut self, id: ProviderId, jobs: usize) {
        self.concurrency.insert(id, jobs.clamp(1, 64));
        self.rebuild(id);
    }

    fn keys_for(&self) -> Keys {
        Keys::new(vec![
            Box::new(EnvKeys::new(Arc::clone(&self.env))),
            Box::new(self.keys.clone()),
        ])
    }

    /// Rebuilds `id` from the current keys and URLs; tells the engine to use
    /// it, or to forget it when it can no longer be built.
    fn rebuild(&mut self, id: ProviderId) {
        let env = Arc::clone(&self.env);
        let overrides = self.base_urls.clone();
        let lookup = move |name: &str| {
            env(name).or_else(|| {
                id.info()
                    .endpoints
                    .iter()
                    .find(|e| e.env_var == name)
                    .and_then(|e| overrides.get(&(id, e.id)).cloned())
            })
        };
        let built = config::endpoints(id, &lookup)
            .map_err(|e| e.to_string())
            .and_then(|endpoints| {
                let (credentials, _) = self.keys_for().credentials(id);
                let key_source = id
                    .info()
                    .credentials
                    .first()
                    .and_then(|c| credentials.source(c.id))
                    .unwrap_or("environment");
                let config = ProviderConfig {
                    endpoints,
                    credentials,
                    http: self.http.clone(),
                };
                providers::build(id, config)
                    .map(|provider| (provider, key_source))
                    .map_err(|e| match e {
                        ProviderError::MissingCredential { label, .. } => {
                            format!("Needs its {label}.")
                        }
                        other => other.to_string(),
                    })
            });
        let status = match built {
            Ok((provider, key_source)) => {
                let concurrency = Some(self.concurrency(id));
                self.commands.send(Command::SetProvider {
                    provider,
                    concurrency,
                });
                ProviderStatus::Ready { key_source }
            }
            Err(why) => {
                self.commands.send(Command::UnsetProvider(id));
                ProviderStatus::NeedsSetup(why)
            }
        };
        self.status.insert(id, status);
    }
}
