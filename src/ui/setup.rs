//! Which providers are usable in the window, built from their keys and the
//! per-provider settings (jobs at once, base URL overrides), and handed to
//! the engine whenever one of these changes.
//!
//! Keys come, first hit wins, from the environment (`CUTOUT_<ID>_KEY`, as on
//! the command line), from keys kept for this session only (when there is no
//! keychain), and from the OS keychain. The keychain blocks (a D-Bus round
//! trip, perhaps an unlock prompt), so every keychain call runs on one worker
//! thread, in the order asked, and its answers come back by channel: at
//! start the providers are built from the environment at once, then rebuilt
//! with the keychain's keys when the worker has read them. The keys read are
//! held in memory as [`SecretString`]s, so later rebuilds never wait on the
//! keychain.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use secrecy::SecretString;
use url::Url;

use crate::config;
use crate::jobs::{Command, CommandSender};
use crate::providers::{self, HttpClient, ProviderConfig, ProviderError, ProviderId};
use crate::secrets::{Credentials, EnvKeys, KeyStore, Keychain, KeychainStatus, SessionKeys};
use crate::settings::{MAX_CONCURRENCY, ProviderSettings};

/// Reads an environment variable (the process's, or a test's).
pub type Env = config::SharedLookup;

/// Wakes the window (`ctx.request_repaint`) when a worker has an answer.
pub type Waker = Arc<dyn Fn() + Send + Sync>;

/// One provider credential: the provider and the credential's id.
type Slot = (ProviderId, &'static str);

/// How long [`ProviderSetup::keys_loaded`] waits for the keychain before
/// saying the keys are in anyway: a keychain stuck behind a D-Bus timeout
/// or an unanswered unlock prompt must not hold back the jobs restored from
/// the last run for ever. Keys that arrive later still set up their
/// providers.
pub const KEYCHAIN_PATIENCE: Duration = Duration::from_secs(10);

/// Whether a provider can run jobs, and if not, what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderStatus {
    /// Ready; its (first) key came from `key_source` ("environment",
    /// "this session", "keychain").
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

/// Where a credential in use comes from, for the Settings window's status
/// line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOrigin {
    /// An environment variable (named) sets it; it wins over everything.
    Environment(&'static str),
    /// Typed in the window and kept in memory until Cutout closes.
    Session,
    /// Stored in the OS keychain.
    Keychain,
    /// Nowhere yet.
    NotSet,
}

/// The outcome of the last "Test key" for a provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyTest {
    /// The check is under way.
    Running,
    /// The provider accepted the keys; the note says what it told us
    /// ("42 credits left").
    Works(Option<String>),
    /// The provider refused the keys, in its words.
    Refused(String),
    /// The check could not be completed (network, server, setup).
    Failed(String),
}

/// What the window hands [`ProviderSetup::new`].
pub struct SetupParts {
    /// Environment lookups.
    pub env: Env,
    /// The shared HTTP client.
    pub http: HttpClient,
    /// Where to send the rebuilt clients.
    pub commands: CommandSender,
    /// The runtime key checks run on.
    pub runtime: tokio::runtime::Handle,
    /// Wakes the window when the keychain worker or a key check answers.
    pub wake: Waker,
    /// The OS keychain, or `None` to keep keys for the session only.
    pub keychain: Option<Keychain>,
    /// Jobs at once and base URLs per provider, from the settings file.
    pub providers: BTreeMap<ProviderId, ProviderSettings>,
}

/// What the keychain worker is asked to do.
enum Request {
    /// Check the keychain and read every credential.
    Load,
    /// Store a credential.
    Save { slot: Slot, secret: SecretString },
    /// Remove a credential.
    Delete { slot: Slot },
}

/// What comes back from the keychain worker and from key checks.
enum Reply {
    Loaded {
        status: KeychainStatus,
        found: Vec<(Slot, SecretString)>,
        problems: Vec<String>,
    },
    Saved {
        slot: Slot,
        secret: SecretString,
        result: Result<(), String>,
    },
    Deleted {
        slot: Slot,
        result: Result<(), String>,
    },
    Tested {
        id: ProviderId,
        generation: u64,
        outcome: KeyTest,
    },
}

/// The window's provider configuration.
pub struct ProviderSetup {
    env: Env,
    http: HttpClient,
    commands: CommandSender,
    runtime: tokio::runtime::Handle,
    wake: Waker,
    /// The keychain worker's inbox; `None` when there is no keychain.
    requests: Option<mpsc::Sender<Request>>,
    reply_sender: mpsc::Sender<Reply>,
    replies: mpsc::Receiver<Reply>,
    /// What the keychain worker found; `None` until it answers.
    keychain: Option<KeychainStatus>,
    /// Why some keys could not be read from the keychain.
    keychain_problems: Vec<String>,
    session: SessionKeys,
    /// Keys read from (or saved in) the keychain.
    stored: BTreeMap<Slot, SecretString>,
    /// Credentials with a keychain call under way.
    pending: BTreeSet<Slot>,
    /// Why the last keychain call for a credential failed.
    key_errors: BTreeMap<Slot, String>,
    tests: BTreeMap<ProviderId, (u64, KeyTest)>,
    test_generation: u64,
    providers: BTreeMap<ProviderId, ProviderSettings>,
    status: BTreeMap<ProviderId, ProviderStatus>,
    /// Providers whose only problem is a missing key.
    missing_key: BTreeSet<ProviderId>,
    /// When the keychain was first asked.
    asked_at: Instant,
}

impl ProviderSetup {
    /// Builds every provider that already has what it needs (keys from the
    /// environment) and tells the engine, then asks the keychain worker for
    /// the stored keys; [`receive`](Self::receive) applies its answer.
    pub fn new(parts: SetupParts) -> Self {
        let (reply_sender, replies) = mpsc::channel();
        let (keychain, requests) = match parts.keychain {
            Some(keychain) => {
                match start_keychain_worker(keychain, reply_sender.clone(), Arc::clone(&parts.wake))
                {
                    Ok(requests) => (None, Some(requests)),
                    Err(e) => (
                        Some(KeychainStatus::Unavailable {
                            reason: format!("Cutout could not start its keychain helper ({e})"),
                            fix: "Restart Cutout. Meanwhile, keys you enter are kept for this \
                              session only."
                                .to_owned(),
                        }),
                        None,
                    ),
                }
            }
            None => (
                Some(KeychainStatus::Unavailable {
                    reason: "this window does not use the keychain".to_owned(),
                    fix: "Keys you enter are kept for this session only.".to_owned(),
                }),
                None,
            ),
        };
        let mut setup = ProviderSetup {
            env: parts.env,
            http: parts.http,
            commands: parts.commands,
            runtime: parts.runtime,
            wake: parts.wake,
            requests,
            reply_sender,
            replies,
            keychain,
            keychain_problems: Vec::new(),
            session: SessionKeys::default(),
            stored: BTreeMap::new(),
            pending: BTreeSet::new(),
            key_errors: BTreeMap::new(),
            tests: BTreeMap::new(),
            test_generation: 0,
            providers: parts.providers,
            status: BTreeMap::new(),
            missing_key: BTreeSet::new(),
            asked_at: Instant::now(),
        };
        if setup.keychain.is_none() {
            // Wake the window when patience runs out, so whatever waits on
            // `keys_loaded` goes ahead even if nothing else happens.
            let wake = Arc::clone(&setup.wake);
            let _ = std::thread::Builder::new()
                .name("cutout-keychain-patience".to_owned())
                .spawn(move || {
                    std::thread::sleep(KEYCHAIN_PATIENCE);
                    wake();
                });
        }
        for id in ProviderId::ALL {
            setup.rebuild(id);
        }
        setup
    }

    /// Applies what the keychain worker and key checks answered. Called
    /// every frame; never blocks.
    pub fn receive(&mut self) {
        while let Ok(reply) = self.replies.try_recv() {
            match reply {
                Reply::Loaded {
                    status,
                    found,
                    problems,
                } => {
                    self.keychain = Some(status);
                    self.keychain_problems = problems;
                    let changed: BTreeSet<ProviderId> =
                        found.iter().map(|((id, _), _)| *id).collect();
                    self.stored.extend(found);
                    for id in changed {
                        self.rebuild(id);
                    }
                }
                Reply::Saved {
                    slot,
                    secret,
                    result,
                } => {
                    self.pending.remove(&slot);
                    match result {
                        Ok(()) => {
                            self.stored.insert(slot, secret);
                            self.session.remove(slot.0, slot.1);
                            self.key_errors.remove(&slot);
                            self.forget_test(slot.0);
                            self.rebuild(slot.0);
                        }
                        Err(why) => {
                            self.key_errors.insert(slot, why);
                        }
                    }
                }
                Reply::Deleted { slot, result } => {
                    self.pending.remove(&slot);
                    match result {
                        Ok(()) => {
                            self.stored.remove(&slot);
                            self.key_errors.remove(&slot);
                            self.forget_test(slot.0);
                            self.rebuild(slot.0);
                        }
                        Err(why) => {
                            self.key_errors.insert(slot, why);
                        }
                    }
                }
                Reply::Tested {
                    id,
                    generation,
                    outcome,
                } => {
                    if self.tests.get(&id).is_some_and(|(g, _)| *g == generation) {
                        self.tests.insert(id, (generation, outcome));
                    }
                }
            }
        }
    }

    /// Whether the keychain has been read (or is known to be missing), so
    /// every provider that has a stored key is set up. Jobs restored from
    /// the last run wait for this, so they do not fail for want of a key
    /// that is on its way. After [`KEYCHAIN_PATIENCE`] without an answer it
    /// says yes anyway; [`keychain_status`](Self::keychain_status) still
    /// says the keychain is being checked.
    pub fn keys_loaded(&self) -> bool {
        self.keychain.is_some() || self.asked_at.elapsed() >= KEYCHAIN_PATIENCE
    }

    /// Whether the keychain can be used; `None` while it is being checked.
    pub fn keychain_status(&self) -> Option<&KeychainStatus> {
        self.keychain.as_ref()
    }

    /// Why keys could not be read from the keychain at start (a locked
    /// keychain), for the Settings window.
    pub fn keychain_problems(&self) -> &[String] {
        &self.keychain_problems
    }

    /// Whether `id` can run jobs.
    pub fn status(&self, id: ProviderId) -> &ProviderStatus {
        static UNKNOWN: ProviderStatus = ProviderStatus::Ready { key_source: "" };
        self.status.get(&id).unwrap_or(&UNKNOWN)
    }

    /// What keeps `id` from running other than a missing key (a base URL
    /// that cannot be used), in the provider's words.
    pub fn problem(&self, id: ProviderId) -> Option<&str> {
        match self.status(id) {
            ProviderStatus::NeedsSetup(why) if !self.missing_key.contains(&id) => Some(why),
            _ => None,
        }
    }

    /// Whether the environment sets the variable `name` (which then wins
    /// over what is typed in Settings).
    pub fn env_sets(&self, name: &str) -> bool {
        (self.env)(name).is_some_and(|v| !v.trim().is_empty())
    }

    /// Where a credential in use comes from.
    pub fn key_origin(&self, id: ProviderId, credential_id: &str) -> KeyOrigin {
        let Some(spec) = id.info().credentials.iter().find(|c| c.id == credential_id) else {
            return KeyOrigin::NotSet;
        };
        if matches!(
            EnvKeys::new(Arc::clone(&self.env)).get(id, credential_id),
            Ok(Some(_))
        ) {
            KeyOrigin::Environment(spec.env_var)
        } else if matches!(self.session.get(id, credential_id), Ok(Some(_))) {
            KeyOrigin::Session
        } else if self.in_keychain(id, credential_id) {
            KeyOrigin::Keychain
        } else {
            KeyOrigin::NotSet
        }
    }

    /// Whether the keychain holds this credential (whether or not the
    /// environment overrides it).
    pub fn in_keychain(&self, id: ProviderId, credential_id: &str) -> bool {
        self.stored
            .keys()
            .any(|(p, c)| *p == id && *c == credential_id)
    }

    /// Whether a keychain call for this credential is under way.
    pub fn key_busy(&self, id: ProviderId, credential_id: &str) -> bool {
        self.pending
            .iter()
            .any(|(p, c)| *p == id && *c == credential_id)
    }

    /// Why the last keychain call for this credential failed.
    pub fn key_error(&self, id: ProviderId, credential_id: &str) -> Option<&str> {
        self.key_errors
            .iter()
            .find(|((p, c), _)| *p == id && *c == credential_id)
            .map(|(_, why)| why.as_str())
    }

    /// Stores a key in the keychain (on the worker; the provider is rebuilt
    /// when it answers), or keeps it for this session when there is no
    /// keychain. Nothing happens while the keychain is still being checked.
    pub fn save_key(&mut self, id: ProviderId, credential_id: &'static str, secret: SecretString) {
        match (&self.keychain, &self.requests) {
            (Some(KeychainStatus::Available), Some(requests)) => {
                let slot = (id, credential_id);
                self.key_errors.remove(&slot);
                if requests.send(Request::Save { slot, secret }).is_ok() {
                    self.pending.insert(slot);
                } else {
                    self.key_errors.insert(
                        slot,
                        "the keychain helper has stopped; restart Cutout".into(),
                    );
                }
            }
            (Some(_), _) => self.keep_for_session(id, credential_id, secret),
            (None, _) => {}
        }
    }

    /// Keeps a key in memory until Cutout closes and rebuilds the provider.
    pub fn keep_for_session(
        &mut self,
        id: ProviderId,
        credential_id: &'static str,
        secret: SecretString,
    ) {
        self.session.set(id, credential_id, secret);
        self.forget_test(id);
        self.rebuild(id);
    }

    /// Forgets a key kept for this session and, when the keychain holds
    /// one, removes that too (on the worker).
    pub fn delete_key(&mut self, id: ProviderId, credential_id: &'static str) {
        let slot = (id, credential_id);
        if matches!(self.session.get(id, credential_id), Ok(Some(_))) {
            self.session.remove(id, credential_id);
            self.forget_test(id);
            self.rebuild(id);
        }
        if self.in_keychain(id, credential_id)
            && let Some(requests) = &self.requests
        {
            self.key_errors.remove(&slot);
            if requests.send(Request::Delete { slot }).is_ok() {
                self.pending.insert(slot);
            }
        }
    }

    /// Asks the provider whether it accepts the keys now in use, with one
    /// free call on the engine's runtime; [`key_test`](Self::key_test)
    /// shows the outcome once [`receive`](Self::receive) has it.
    pub fn test_key(&mut self, id: ProviderId) {
        self.test_generation += 1;
        let generation = self.test_generation;
        let config = match self.config(id) {
            Ok(config) => config,
            Err(why) => {
                self.tests.insert(id, (generation, KeyTest::Failed(why)));
                return;
            }
        };
        self.tests.insert(id, (generation, KeyTest::Running));
        let replies = self.reply_sender.clone();
        let wake = Arc::clone(&self.wake);
        self.runtime.spawn(async move {
            let outcome = match providers::test_key(id, &config).await {
                Ok(check) => KeyTest::Works(check.detail),
                Err(ProviderError::Unauthorized { message }) => KeyTest::Refused(message),
                Err(ProviderError::MissingCredential { label, .. }) => {
                    KeyTest::Failed(format!("its {label} is not set"))
                }
                Err(other) => KeyTest::Failed(other.to_string()),
            };
            let _ = replies.send(Reply::Tested {
                id,
                generation,
                outcome,
            });
            wake();
        });
    }

    /// The outcome of the last key check for `id`, if one was run since
    /// its keys last changed.
    pub fn key_test(&self, id: ProviderId) -> Option<&KeyTest> {
        self.tests.get(&id).map(|(_, outcome)| outcome)
    }

    /// The base URL override for `endpoint_id`, if one is set.
    pub fn base_url_override(&self, id: ProviderId, endpoint_id: &str) -> Option<&Url> {
        self.providers.get(&id)?.base_urls.get(endpoint_id)
    }

    /// Sets (or, with `None`, clears) a base URL override, already checked
    /// with [`config::parse_base_url`], and rebuilds the provider.
    pub fn set_base_url(&mut self, id: ProviderId, endpoint_id: &'static str, url: Option<Url>) {
        let settings = self.providers.entry(id).or_default();
        match url {
            Some(url) => {
                settings.base_urls.insert(endpoint_id, url);
            }
            None => {
                settings.base_urls.remove(endpoint_id);
            }
        }
        self.forget_test(id);
        self.rebuild(id);
    }

    /// Jobs in flight at once for `id`.
    pub fn concurrency(&self, id: ProviderId) -> usize {
        self.providers
            .get(&id)
            .and_then(|p| p.concurrency)
            .unwrap_or(id.info().default_concurrency)
    }

    /// Changes how many jobs run at once for `id` (1 to
    /// [`MAX_CONCURRENCY`]).
    pub fn set_concurrency(&mut self, id: ProviderId, jobs: usize) {
        self.providers.entry(id).or_default().concurrency = Some(jobs.clamp(1, MAX_CONCURRENCY));
        self.rebuild(id);
    }

    fn forget_test(&mut self, id: ProviderId) {
        self.tests.remove(&id);
    }

    /// Every credential `id` declares that is set somewhere, first hit
    /// wins: the environment, this session, the keychain.
    fn credentials(&self, id: ProviderId) -> Credentials {
        let env = EnvKeys::new(Arc::clone(&self.env));
        let mut found = Credentials::default();
        for spec in id.info().credentials {
            if let Ok(Some(secret)) = env.get(id, spec.id) {
                found.insert(spec.id, secret, env.name());
            } else if let Ok(Some(secret)) = self.session.get(id, spec.id) {
                found.insert(spec.id, secret, self.session.name());
            } else if let Some(secret) = self.stored.get(&(id, spec.id)) {
                found.insert(spec.id, secret.clone(), "keychain");
            }
        }
        found
    }

    /// `id`'s base URLs as its client uses them (empty when one is
    /// unusable), for "Copy diagnostics".
    pub fn endpoints(&self, id: ProviderId) -> Vec<(&'static str, Url)> {
        self.config(id)
            .map(|config| config.endpoints.into_iter().collect())
            .unwrap_or_default()
    }

    /// What `id`'s client is built from: base URLs (the environment over
    /// the settings over the defaults) and keys.
    fn config(&self, id: ProviderId) -> Result<ProviderConfig, String> {
        let lookup = |name: &str| (self.env)(name);
        let overrides = self
            .providers
            .get(&id)
            .map(|p| p.base_urls.clone())
            .unwrap_or_default();
        let endpoints =
            config::endpoints_with(id, &overrides, &lookup).map_err(|e| e.to_string())?;
        Ok(ProviderConfig {
            endpoints,
            credentials: self.credentials(id),
            http: self.http.clone(),
            data_dir: crate::paths::AppDirs::resolve(&lookup)
                .ok()
                .map(|dirs| dirs.data_dir().to_owned()),
        })
    }

    /// Rebuilds `id` from the current keys and URLs; tells the engine to use
    /// it, or to forget it when it can no longer be built.
    fn rebuild(&mut self, id: ProviderId) {
        let built = self
            .config(id)
            .map_err(|why| (why, false))
            .and_then(|config| {
                let key_source = id
                    .info()
                    .credentials
                    .first()
                    .and_then(|c| config.credentials.source(c.id))
                    .unwrap_or("environment");
                providers::build(id, config)
                    .map(|provider| (provider, key_source))
                    .map_err(|e| match e {
                        ProviderError::MissingCredential { label, .. } => {
                            (format!("Needs its {label}."), true)
                        }
                        other => (other.to_string(), false),
                    })
            });
        let status = match built {
            Ok((provider, key_source)) => {
                let concurrency = Some(self.concurrency(id));
                self.commands.send(Command::SetProvider {
                    provider,
                    concurrency,
                });
                self.missing_key.remove(&id);
                ProviderStatus::Ready { key_source }
            }
            Err((why, missing_key)) => {
                self.commands.send(Command::UnsetProvider(id));
                if missing_key {
                    self.missing_key.insert(id);
                } else {
                    self.missing_key.remove(&id);
                }
                ProviderStatus::NeedsSetup(why)
            }
        };
        self.status.insert(id, status);
    }
}

/// Starts the thread every keychain call runs on, one at a time and in the
/// order asked, and asks it to read the stored keys first. It ends when the
/// window drops its inbox.
fn start_keychain_worker(
    keychain: Keychain,
    replies: mpsc::Sender<Reply>,
    wake: Waker,
) -> std::io::Result<mpsc::Sender<Request>> {
    let (requests, inbox) = mpsc::channel();
    std::thread::Builder::new()
        .name("cutout-keychain".to_owned())
        .spawn(move || {
            for request in inbox {
                let reply = answer(&keychain, request);
                if replies.send(reply).is_err() {
                    break;
                }
                wake();
            }
        })?;
    // The inbox is still open, so this cannot fail.
    let _ = requests.send(Request::Load);
    Ok(requests)
}

/// Runs one keychain request. Blocks.
fn answer(keychain: &Keychain, request: Request) -> Reply {
    match request {
        Request::Load => {
            let status = keychain.status();
            let mut found = Vec::new();
            let mut problems: Vec<String> = Vec::new();
            if status == KeychainStatus::Available {
                for id in ProviderId::ALL {
                    for spec in id.info().credentials {
                        match keychain.get(id, spec.id) {
                            Ok(Some(secret)) => found.push(((id, spec.id), secret)),
                            Ok(None) => {}
                            Err(e) => {
                                let why = e.to_string();
                                if !problems.contains(&why) {
                                    problems.push(why);
                                }
                            }
                        }
                    }
                }
            }
            Reply::Loaded {
                status,
                found,
                problems,
            }
        }
        Request::Save { slot, secret } => {
            let result = keychain
                .set(slot.0, slot.1, &secret)
                .map_err(|e| e.to_string());
            Reply::Saved {
                slot,
                secret,
                result,
            }
        }
        Request::Delete { slot } => {
            let result = keychain
                .delete(slot.0, slot.1)
                .map(|_| ())
                .map_err(|e| e.to_string());
            Reply::Deleted { slot, result }
        }
    }
}

/// A [`ProviderSetup`] without a keychain for the window's unit tests, with
/// the engine and runtime it needs kept alive beside it. The runtime never
/// runs the engine's tasks: commands just queue, which is all a test of
/// the window needs.
#[cfg(test)]
pub(crate) fn test_setup(
    env: Env,
) -> (
    ProviderSetup,
    crate::jobs::EngineHandle,
    tokio::runtime::Runtime,
) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let http = HttpClient::new(providers::RetryPolicy::default());
    let engine = {
        let _inside = runtime.enter();
        crate::jobs::Engine::spawn(
            Vec::new(),
            http.clone(),
            crate::jobs::EngineConfig::default(),
        )
    };
    let setup = ProviderSetup::new(SetupParts {
        env,
        http,
        commands: engine.sender(),
        runtime: runtime.handle().clone(),
        wake: Arc::new(|| {}),
        keychain: None,
        providers: BTreeMap::new(),
    });
    (setup, engine, runtime)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> Env {
        Arc::new(move |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn without_a_keychain_keys_are_kept_for_the_session_and_the_keys_count_as_loaded() {
        let (mut setup, _engine, _runtime) = test_setup(env(&[]));
        assert!(setup.keys_loaded());
        assert!(matches!(
            setup.keychain_status(),
            Some(KeychainStatus::Unavailable { .. })
        ));
        assert_eq!(
            setup.key_origin(ProviderId::Removit, "key"),
            KeyOrigin::NotSet
        );
        assert!(!setup.status(ProviderId::Removit).is_ready());
        assert_eq!(
            setup.problem(ProviderId::Removit),
            None,
            "only a key is missing"
        );

        setup.save_key(
            ProviderId::Removit,
            "key",
            SecretString::from("rmv_1".to_owned()),
        );
        assert_eq!(
            setup.key_origin(ProviderId::Removit, "key"),
            KeyOrigin::Session
        );
        assert_eq!(
            setup.status(ProviderId::Removit),
            &ProviderStatus::Ready {
                key_source: "this session"
            }
        );
        setup.delete_key(ProviderId::Removit, "key");
        assert_eq!(
            setup.key_origin(ProviderId::Removit, "key"),
            KeyOrigin::NotSet
        );
    }

    #[test]
    fn the_environment_overrides_a_session_key_and_names_its_variable() {
        let (mut setup, _engine, _runtime) = test_setup(env(&[("CUTOUT_REMOVEBG_KEY", "rbg_env")]));
        setup.keep_for_session(
            ProviderId::Removebg,
            "key",
            SecretString::from("rbg_typed".to_owned()),
        );
        assert_eq!(
            setup.key_origin(ProviderId::Removebg, "key"),
            KeyOrigin::Environment("CUTOUT_REMOVEBG_KEY")
        );
        let config = setup.config(ProviderId::Removebg).unwrap();
        assert_eq!(config.credentials.source("key"), Some("environment"));
    }

    #[test]
    fn a_settings_base_url_is_used_and_the_environment_still_wins() {
        let (mut setup, _engine, _runtime) = test_setup(env(&[(
            "CUTOUT_UPLOADCARE_UPLOAD_URL",
            "http://127.0.0.1:9/",
        )]));
        let proxy = Url::parse("https://proxy.example.com/api/").unwrap();
        let upload = Url::parse("https://proxy.example.com/upload/").unwrap();
        setup.set_base_url(ProviderId::Uploadcare, "api_url", Some(proxy.clone()));
        setup.set_base_url(ProviderId::Uploadcare, "upload_url", Some(upload));
        let endpoints = setup.config(ProviderId::Uploadcare).unwrap().endpoints;
        assert_eq!(endpoints["api_url"], proxy);
        assert_eq!(endpoints["upload_url"].as_str(), "http://127.0.0.1:9/");
        setup.set_base_url(ProviderId::Uploadcare, "api_url", None);
        assert_eq!(
            setup.base_url_override(ProviderId::Uploadcare, "api_url"),
            None
        );
    }

    #[test]
    fn a_bad_address_in_the_environment_is_a_problem_of_its_own() {
        let (setup, _engine, _runtime) = test_setup(env(&[
            ("CUTOUT_REMOVEBG_URL", "http://api.example.com"),
            ("CUTOUT_REMOVEBG_KEY", "rbg"),
        ]));
        let problem = setup.problem(ProviderId::Removebg).unwrap();
        assert!(problem.starts_with("CUTOUT_REMOVEBG_URL"), "{problem}");
    }

    #[test]
    fn jobs_at_once_stay_within_one_to_sixteen() {
        let (mut setup, _engine, _runtime) = test_setup(env(&[]));
        setup.set_concurrency(ProviderId::Removebg, 99);
        assert_eq!(setup.concurrency(ProviderId::Removebg), MAX_CONCURRENCY);
        assert_eq!(
            setup.concurrency(ProviderId::Removit),
            ProviderId::Removit.info().default_concurrency
        );
    }
}
