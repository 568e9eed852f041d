//! `cutout keys` against the real OS keychain (on Linux, the Secret Service
//! on the session bus that `scripts/test` starts with a throwaway GNOME
//! Keyring). Every test files its keys under a keychain service of its own
//! (`CUTOUT_KEYCHAIN_SERVICE`), so it never sees or touches a real user's
//! entries. Where no Secret Service is reachable the keychain tests are
//! skipped with a note, unless `CUTOUT_TEST_KEYCHAIN=required`, which
//! `scripts/test` sets, makes that a failure.

use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::fakes::Fake;
use crate::fakes::removebg::{self, FakeRemoveBg, KEY};
use crate::fakes::removebgvideo::FakeRemoveBgVideo;
use crate::fakes::removit::FakeRemovit;
use crate::fakes::uploadcare::FakeUploadcare;
use crate::harness::{Cutout, KEY_MARKER, Outcome, Workspace, assert_mentions};

/// A key remove.bg refuses; it carries the marker, so the harness proves it
/// is never printed either.
const WRONG_KEY: &str = "rbg-wrong-NEVERPRINT-0000";

/// What a `cutout` run fed on standard input printed, and how it ended.
struct Fed {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl std::fmt::Display for Fed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "exit: {:?}", self.code)?;
        writeln!(f, "--- stdout ---\n{}", self.stdout)?;
        write!(f, "--- stderr ---\n{}", self.stderr)
    }
}

/// Runs `cli` with `input` on standard input (not a terminal, as when a key
/// is piped in) and checks that no key was printed.
fn feed(cli: Cutout, input: &str) -> Fed {
    let mut command = cli.command();
    command.stdin(Stdio::piped());
    let mut child = command.spawn().expect("start the cutout binary");
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(input.as_bytes())
        .expect("write the key to cutout's stdin");
    let output = child.wait_with_output().expect("wait for cutout");
    let fed = Fed {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    assert!(
        !fed.stdout.contains(KEY_MARKER) && !fed.stderr.contains(KEY_MARKER),
        "a key was printed\n{fed}"
    );
    fed
}

/// A keychain service name no other test (and no user) uses.
fn own_service(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("cutout-e2e-{test}-{}-{nanos}", std::process::id())
}

/// A workspace whose `cutout` runs reach the test session's keychain under
/// `service`; `None` (after a skip note) when there is no Secret Service to
/// reach, which fails the test instead when the run requires one.
struct Keyring {
    bus: String,
    service: String,
}

impl Keyring {
    fn reach(test: &str) -> Option<Keyring> {
        let required = std::env::var("CUTOUT_TEST_KEYCHAIN").as_deref() == Ok("required");
        let skip = |why: String| {
            assert!(!required, "CUTOUT_TEST_KEYCHAIN=required, but {why}");
            eprintln!("skipped {test}: {why}");
            None
        };
        let Some(bus) = std::env::var("DBUS_SESSION_BUS_ADDRESS")
            .ok()
            .filter(|a| !a.is_empty())
        else {
            return skip("DBUS_SESSION_BUS_ADDRESS is not set".to_owned());
        };
        let keyring = Keyring {
            bus,
            service: own_service(test),
        };
        let run = keyring
            .on(Workspace::new().command(["keys", "status", "--json"]))
            .run();
        run.assert_code(0);
        let status: Value = serde_json::from_str(&run.stdout).expect("status --json is JSON");
        if status["keychain"]["available"] != true {
            return skip(format!(
                "no Secret Service answers on the session bus: {}",
                status["keychain"]["reason"]
            ));
        }
        Some(keyring)
    }

    /// `cli` pointed at this keychain.
    fn on(&self, cli: Cutout) -> Cutout {
        cli.env("DBUS_SESSION_BUS_ADDRESS", self.bus.clone())
            .env("CUTOUT_KEYCHAIN_SERVICE", self.service.clone())
    }
}

/// The `keys status --json` entry for one credential.
fn credential_status(run: &Outcome, provider: &str, credential: &str) -> Value {
    let status: Value = serde_json::from_str(&run.stdout).expect("status --json is JSON");
    status["credentials"]
        .as_array()
        .and_then(|list| {
            list.iter()
                .find(|c| c["provider"] == provider && c["credential"] == credential)
        })
        .cloned()
        .unwrap_or_else(|| panic!("no {provider}/{credential} in\n{run}"))
}

#[test]
fn a_key_set_from_stdin_lives_in_the_keychain_runs_a_batch_and_is_gone_once_deleted() {
    let Some(keyring) = Keyring::reach("roundtrip") else {
        return;
    };
    let fake = FakeRemoveBg::start(removebg::Script::default());
    let ws = Workspace::new();
    let photo = ws.photo("bottle.jpg");
    // Everything below runs without CUTOUT_REMOVEBG_KEY: the key can only
    // come from the keychain.
    let cli = |args: &[&str]| {
        keyring
            .on(ws.command(args.iter().copied()))
            .env(FakeRemoveBg::URL_VAR, fake.url())
    };

    let set = feed(cli(&["keys", "set", "removebg"]), &format!("  {KEY}  \n"));
    assert_eq!(set.code, Some(0), "{set}");
    assert!(
        set.stdout
            .contains("Saved the remove.bg API key in the OS keychain."),
        "{set}"
    );

    let status = cli(&["keys", "status"]).run();
    status.assert_code(0);
    assert_mentions(
        &status.stdout,
        "remove.bg (removebg)\n  API key: set in the keychain",
        &status,
    );
    assert_mentions(
        &status.stdout,
        "removit.eu (removit)\n  API key: missing",
        &status,
    );
    let json = cli(&["keys", "status", "--json"]).run();
    let entry = credential_status(&json, "removebg", "key");
    assert_eq!(entry["source"], "keychain", "{json}");
    assert_eq!(entry["environment"], false, "{json}");

    let run = keyring
        .on(ws.batch("removebg"))
        .env(FakeRemoveBg::URL_VAR, fake.url())
        .arg(&photo)
        .run();
    run.assert_code(0);
    run.assert_summary(1, 0, 0);
    let sent = fake.journal().matching("POST", "/v1.0/removebg");
    assert_eq!(sent.len(), 1, "{run}");
    assert_eq!(
        sent[0].header("x-api-key"),
        Some(KEY),
        "the key from the keychain, trimmed"
    );

    let test = cli(&["keys", "test", "removebg"]).run();
    test.assert_code(0);
    assert_mentions(
        &test.stdout,
        "remove.bg accepted the key from the keychain: 49 credits and 50 free API calls left.",
        &test,
    );
    assert_eq!(fake.journal().matching("GET", "/v1.0/account").len(), 1);

    let replaced = feed(cli(&["keys", "set", "removebg"]), &format!("{WRONG_KEY}\n"));
    assert_eq!(replaced.code, Some(0), "{replaced}");
    let refused = cli(&["keys", "test", "removebg"]).run();
    refused.assert_code(1);
    for needle in [
        "the key from the keychain was refused by remove.bg",
        "API Key invalid",
        "cutout keys set removebg",
    ] {
        assert_mentions(&refused.stderr, needle, &refused);
    }

    let deleted = cli(&["keys", "delete", "removebg"]).run();
    deleted.assert_code(0);
    assert_mentions(
        &deleted.stdout,
        "Deleted the remove.bg API key from the OS keychain.",
        &deleted,
    );
    let again = cli(&["keys", "delete", "removebg"]).run();
    again.assert_code(0);
    assert_mentions(
        &again.stdout,
        "The OS keychain held no remove.bg API key.",
        &again,
    );

    let run = keyring
        .on(ws.batch("removebg"))
        .env(FakeRemoveBg::URL_VAR, fake.url())
        .arg(&photo)
        .run();
    run.assert_code(2);
    assert_mentions(&run.stderr, "CUTOUT_REMOVEBG_KEY", &run);
    let test = cli(&["keys", "test", "removebg"]).run();
    test.assert_code(2);
    assert_mentions(&test.stderr, "remove.bg is not set up", &test);
    assert_mentions(&test.stderr, "cutout keys set removebg", &test);
    assert_eq!(
        fake.journal().matching("POST", "/v1.0/removebg").len(),
        1,
        "nothing more was sent once the key was gone"
    );
}

#[test]
fn the_environment_overrides_the_keychain_and_status_says_so() {
    let Some(keyring) = Keyring::reach("override") else {
        return;
    };
    let fake = FakeRemoveBg::start(removebg::Script::default());
    let ws = Workspace::new();
    let cli = |args: &[&str]| {
        keyring
            .on(ws.command(args.iter().copied()))
            .env(FakeRemoveBg::URL_VAR, fake.url())
    };
    let set = feed(cli(&["keys", "set", "removebg"]), &format!("{WRONG_KEY}\n"));
    assert_eq!(set.code, Some(0), "{set}");

    let status = cli(&["keys", "status"])
        .env(FakeRemoveBg::KEY_VAR, KEY)
        .run();
    assert_mentions(
        &status.stdout,
        "API key: set in the environment (CUTOUT_REMOVEBG_KEY), which overrides the one in the keychain",
        &status,
    );
    let test = cli(&["keys", "test", "removebg"])
        .env(FakeRemoveBg::KEY_VAR, KEY)
        .run();
    test.assert_code(0);
    assert_mentions(
        &test.stdout,
        "remove.bg accepted the key from the environment",
        &test,
    );

    let deleted = cli(&["keys", "delete", "removebg"]).run();
    deleted.assert_code(0);
}

#[test]
fn set_refuses_empty_input_and_a_provider_with_two_keys_needs_credential() {
    let Some(keyring) = Keyring::reach("refusals") else {
        return;
    };
    let ws = Workspace::new();
    let cli = |args: &[&str]| keyring.on(ws.command(args.iter().copied()));

    let empty = feed(cli(&["keys", "set", "removit"]), "   \n");
    assert_eq!(empty.code, Some(2), "{empty}");
    assert!(empty.stderr.contains("no key was given"), "{empty}");

    let which = feed(cli(&["keys", "set", "uploadcare"]), "ucpub\n");
    assert_eq!(which.code, Some(2), "{which}");
    assert!(
        which
            .stderr
            .contains("--credential public_key or --credential secret_key"),
        "{which}"
    );

    let public = feed(
        cli(&["keys", "set", "uploadcare", "--credential", "public_key"]),
        "ucpub-demo\n",
    );
    assert_eq!(public.code, Some(0), "{public}");
    let status = cli(&["keys", "status", "--json"]).run();
    assert_eq!(
        credential_status(&status, "uploadcare", "public_key")["source"],
        "keychain",
        "{status}"
    );
    assert_eq!(
        credential_status(&status, "uploadcare", "secret_key")["source"],
        Value::Null,
        "{status}"
    );
    let test = cli(&["keys", "test", "uploadcare"]).run();
    test.assert_code(2);
    assert_mentions(
        &test.stderr,
        "cutout keys set uploadcare --credential secret_key",
        &test,
    );

    let deleted = cli(&["keys", "delete", "uploadcare"]).run();
    deleted.assert_code(0);
    assert_mentions(
        &deleted.stdout,
        "Deleted the Uploadcare (Remove.bg add-on) public key",
        &deleted,
    );
    assert_mentions(
        &deleted.stdout,
        "The OS keychain held no Uploadcare (Remove.bg add-on) secret key.",
        &deleted,
    );
}

#[test]
fn without_any_session_bus_status_explains_the_fix_at_once_and_set_refuses() {
    let ws = Workspace::new();
    // No DBUS_SESSION_BUS_ADDRESS (the harness clears the environment), and
    // an empty runtime folder where the bus would otherwise be looked for.
    let runtime = ws.home().join("runtime");
    std::fs::create_dir_all(&runtime).expect("create the runtime folder");
    let no_bus = |args: &[&str]| {
        ws.command(args.iter().copied())
            .env("XDG_RUNTIME_DIR", runtime.display().to_string())
            .env("CUTOUT_KEYCHAIN_SERVICE", own_service("no-bus"))
    };

    let started = Instant::now();
    let status = no_bus(&["keys", "status"]).run();
    status.assert_code(0);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "an absent keychain must not make Cutout slow\n{status}"
    );
    for needle in [
        "OS keychain: not available: there is no D-Bus session bus",
        "Install and start GNOME Keyring",
        "KeePassXC",
        "CUTOUT_<PROVIDER>_KEY",
        "never writes keys to a plain file",
        "remove.bg (removebg)\n  API key: missing: run `cutout keys set removebg` or set CUTOUT_REMOVEBG_KEY",
    ] {
        assert_mentions(&status.stdout, needle, &status);
    }
    assert!(status.stderr.is_empty(), "nothing on stderr\n{status}");

    let set = feed(no_bus(&["keys", "set", "removebg"]), &format!("{KEY}\n"));
    assert_eq!(set.code, Some(2), "{set}");
    assert!(
        set.stderr
            .contains("cannot store the key: the OS keychain is not available"),
        "{set}"
    );

    // Keys in the environment still work, quietly: no warning about the
    // missing keychain.
    let fake = FakeRemoveBg::start(removebg::Script::default());
    let run = ws
        .batch_on(&fake)
        .env("XDG_RUNTIME_DIR", runtime.display().to_string())
        .arg(ws.photo("bottle.jpg"))
        .run();
    run.assert_code(0);
    assert!(!run.stderr.contains("keychain"), "{run}");
    let test = no_bus(&["keys", "test", "removebg"]).envs(fake.env()).run();
    test.assert_code(0);
    assert_mentions(
        &test.stdout,
        "remove.bg accepted the key from the environment",
        &test,
    );
}

/// `cutout keys` with no keychain in reach (an empty runtime folder where
/// the session bus would be) and a keychain service of its own: for tests
/// whose keys come from the environment.
fn without_keychain(ws: &Workspace, args: &[&str]) -> Cutout {
    let runtime = ws.home().join("runtime");
    std::fs::create_dir_all(&runtime).expect("create the runtime folder");
    ws.command(args.iter().copied())
        .env("XDG_RUNTIME_DIR", runtime.display().to_string())
        .env("CUTOUT_KEYCHAIN_SERVICE", own_service("no-keychain"))
}

/// `keys test` against `F`: accepted with the right key (saying `accepted`),
/// refused with a wrong one (in the provider's `refused_words`), each with
/// exactly one free `GET` to `path` and nothing paid.
#[track_caller]
fn assert_key_test<F: Fake>(accepted: &str, path: &str, refused_words: &str) {
    let fake = F::start(F::Script::default());
    let ws = Workspace::new();

    let run = without_keychain(&ws, &["keys", "test", F::PROVIDER])
        .envs(fake.env())
        .run();
    run.assert_code(0);
    assert_mentions(&run.stdout, accepted, &run);

    let run = without_keychain(&ws, &["keys", "test", F::PROVIDER])
        .envs(fake.env())
        .env(F::KEY_VAR, WRONG_KEY)
        .run();
    run.assert_code(1);
    let name = accepted.split(" accepted").next().unwrap_or_default();
    let refused = format!("the key from the environment was refused by {name}");
    assert_mentions(&run.stderr, &refused, &run);
    assert_mentions(&run.stderr, refused_words, &run);

    let calls = fake.journal().all();
    assert_eq!(
        calls.len(),
        2,
        "one call per test: {:?}",
        fake.journal().lines()
    );
    for call in &calls {
        assert_eq!(call.method, "GET", "{:?}", fake.journal().lines());
        assert_eq!(call.path(), path, "{:?}", fake.journal().lines());
    }
    assert_eq!(fake.submissions(), 0, "a key test must cost nothing");
}

#[test]
fn keys_test_asks_each_provider_with_one_free_call_and_tells_a_refused_key_apart() {
    assert_key_test::<FakeRemoveBg>(
        "remove.bg accepted the key from the environment: 50 credits and 50 free API calls left.",
        "/v1.0/account",
        "API Key invalid (auth_failed)",
    );
    assert_key_test::<FakeRemoveBgVideo>(
        "RemoveBGVideo accepted the key from the environment: 0 jobs, 0 credits used in the last day.",
        "/v1/usage/summary",
        "Invalid API key (invalid_api_key",
    );
    assert_key_test::<FakeUploadcare>(
        "Uploadcare (Remove.bg add-on) accepted the key from the environment: 0 stored files in the project.",
        "/files/",
        "Invalid signature. Please check your Secret key.",
    );
    assert_key_test::<FakeRemovit>(
        "removit.eu accepted the key from the environment.",
        "/api/v1/status",
        "API key invalid",
    );
}
