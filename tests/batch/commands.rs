//! Bad usage is refused before anything is sent, and `cutout providers`
//! describes what is on offer.

use serde_json::Value;

use crate::fakes::Fake;
use crate::fakes::removebg::{self, FakeRemoveBg};
use crate::fakes::uploadcare::{self, FakeUploadcare};
use crate::harness::{Workspace, assert_mentions};

/// One way to call `cutout batch` wrongly.
struct Misuse {
    case: &'static str,
    provider: &'static str,
    args: &'static [&'static str],
    unset: Option<&'static str>,
    stderr_mentions: &'static [&'static str],
}

#[test]
fn bad_usage_exits_2_says_what_to_fix_and_sends_nothing() {
    let removebg = FakeRemoveBg::start(removebg::Script::default());
    let uploadcare = FakeUploadcare::start(uploadcare::Script::default());
    let ws = Workspace::new();
    let photo = ws.photo("bottle.jpg");
    let cases = [
        Misuse {
            case: "jpg without a background",
            provider: "removebg",
            args: &["--format", "jpg"],
            unset: None,
            stderr_mentions: &["--bg"],
        },
        Misuse {
            case: "an unknown option",
            provider: "removebg",
            args: &["--option", "colour=red"],
            unset: None,
            stderr_mentions: &["colour", "crop"],
        },
        Misuse {
            case: "an unknown model",
            provider: "removebg",
            args: &["--model", "ultra"],
            unset: None,
            stderr_mentions: &["ultra", "auto"],
        },
        Misuse {
            case: "no key",
            provider: "removebg",
            args: &[],
            unset: Some("CUTOUT_REMOVEBG_KEY"),
            stderr_mentions: &["CUTOUT_REMOVEBG_KEY"],
        },
        Misuse {
            case: "half of Uploadcare's key pair",
            provider: "uploadcare",
            args: &[],
            unset: Some("CUTOUT_UPLOADCARE_SECRET_KEY"),
            stderr_mentions: &["CUTOUT_UPLOADCARE_SECRET_KEY"],
        },
    ];
    for Misuse {
        case,
        provider,
        args,
        unset,
        stderr_mentions,
    } in cases
    {
        let mut cli = ws
            .batch(provider)
            .envs(removebg.env())
            .envs(uploadcare.env())
            .args(args)
            .arg(&photo);
        if let Some(var) = unset {
            cli = cli.without(var);
        }

        let run = cli.run();

        run.assert_code(2);
        for needle in stderr_mentions {
            assert_mentions(&run.stderr, needle, &run);
        }
        let sent = removebg.journal().all().len() + uploadcare.journal().all().len();
        assert_eq!(sent, 0, "{case}: something was sent\n{run}");
    }
    assert!(ws.out_files().is_empty(), "{:?}", ws.out_files());
}

#[test]
fn other_url_schemes_and_plain_http_to_a_remote_provider_are_refused_before_anything_is_sent() {
    let removebg = FakeRemoveBg::start(removebg::Script::default());
    let ws = Workspace::new();
    for (input, says) in [
        ("file:///etc/passwd", "only http(s) URLs"),
        ("ftp://files.example.com/bottle.png", "only http(s) URLs"),
    ] {
        let run = ws.batch_on(&removebg).arg(input).run();

        run.assert_code(2);
        assert_mentions(&run.stderr, says, &run);
        assert_mentions(&run.stderr, input, &run);
    }

    // A key must never travel in the clear: a provider URL on another
    // machine has to be https (plain http stays allowed on 127.0.0.1).
    let photo = ws.photo("bottle.jpg");
    let run = ws
        .batch_on(&removebg)
        .env("CUTOUT_REMOVEBG_URL", "http://api.remove.bg/v1.0")
        .arg(&photo)
        .run();

    run.assert_code(2);
    assert_mentions(&run.stderr, "plain HTTP", &run);
    assert_eq!(
        removebg.journal().all().len(),
        0,
        "something was sent\n{run}"
    );
    assert!(ws.out_files().is_empty(), "{:?}", ws.out_files());
}

/// The provider list, whether printed as one document (an array, or an
/// object holding one) or one object per line.
fn provider_list(stdout: &str) -> Vec<Value> {
    match serde_json::from_str::<Value>(stdout) {
        Ok(Value::Array(list)) => list,
        Ok(Value::Object(map)) => match map.get("providers") {
            Some(Value::Array(list)) => list.clone(),
            _ => vec![Value::Object(map)],
        },
        _ => stdout
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect(),
    }
}

fn model_ids(provider: &Value) -> Vec<String> {
    provider["models"]
        .as_array()
        .map(|models| {
            models
                .iter()
                .filter_map(|m| m.as_str().or_else(|| m["id"].as_str()).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn providers_json_lists_the_five_providers_with_their_models() {
    let ws = Workspace::new();

    let run = ws.command(["providers", "--json"]).run();

    run.assert_code(0);
    let list = provider_list(&run.stdout);
    let mut ids: Vec<&str> = list.iter().filter_map(|p| p["id"].as_str()).collect();
    ids.sort();
    assert_eq!(
        ids,
        [
            "local",
            "removebg",
            "removebgvideo",
            "removit",
            "uploadcare"
        ],
        "{run}"
    );
    for provider in &list {
        assert!(
            !model_ids(provider).is_empty(),
            "{} lists no models\n{run}",
            provider["id"]
        );
    }
    let models_of = |id: &str| model_ids(list.iter().find(|p| p["id"] == id).expect("listed"));
    assert!(models_of("removebg").contains(&"auto".to_owned()), "{run}");
    assert_eq!(models_of("local")[0], "isnet-general-use", "{run}");
    assert!(
        !models_of("local").contains(&"bria-rmbg".to_owned()),
        "non-commercial models are not offered by default\n{run}"
    );
    assert!(
        models_of("removebgvideo").contains(&"original".to_owned()),
        "{run}"
    );
}

#[test]
fn a_batch_leaves_a_days_log_of_what_happened_and_never_the_key() {
    let (_fake, ws, run) = crate::harness::run_batch::<FakeRemoveBg>("bottle.jpg", |script| {
        script.faults = vec![crate::fakes::Fault::status(503)];
    });
    run.assert_code(0);
    let logs = ws.home().join(".local/state/cutout/logs");
    let files: Vec<String> = std::fs::read_dir(&logs)
        .unwrap_or_else(|e| panic!("no log folder ({e}): {}", logs.display()))
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(
        files[0].starts_with("cutout.") && files[0].ends_with(".log"),
        "{files:?}"
    );
    for line in [
        "Cutout started",
        "retrying",
        "job done",
        "provider=removebg",
    ] {
        assert!(
            run.log.contains(line),
            "the log lacks {line:?}:\n{}",
            run.log
        );
    }
    // The harness checks every run's logs for keys; this one had a key.
    assert!(!run.log.contains(removebg::KEY), "{}", run.log);
}

#[test]
fn diagnostics_report_versions_folders_and_provider_set_up_without_keys() {
    let removebg = FakeRemoveBg::start(removebg::Script::default());
    let ws = Workspace::new();
    let run = ws.command(["diagnostics"]).envs(removebg.env()).run();
    run.assert_code(0);
    for expected in [
        concat!("Cutout ", env!("CARGO_PKG_VERSION")),
        "Logs: ",
        "Local engine:",
        "remove.bg (removebg): ready, key from environment",
        "(uploadcare): not ready, not set: public key, secret key",
        "(API keys are never included in this report.)",
    ] {
        assert!(run.stdout.contains(expected), "missing {expected:?}\n{run}");
    }
    assert!(!run.stdout.contains(removebg::KEY), "{run}");
}

#[test]
fn the_man_page_and_completions_come_from_the_argument_definitions() {
    let ws = Workspace::new();
    let man = ws.command(["man"]).run();
    man.assert_code(0);
    assert!(man.stdout.contains(".TH cutout"), "{man}");
    assert!(man.stdout.contains("batch"), "{man}");

    let pages = ws.home().join("man");
    let written = ws.command(["man", "--dir"]).arg(&pages).run();
    written.assert_code(0);
    for page in ["cutout.1", "cutout-batch.1", "cutout-models.1"] {
        assert!(pages.join(page).is_file(), "no {page}\n{written}");
    }

    for (shell, marker) in [
        ("bash", "_cutout()"),
        ("zsh", "#compdef cutout"),
        ("fish", "complete -c cutout"),
    ] {
        let script = ws.command(["completions", shell]).run();
        script.assert_code(0);
        assert!(script.stdout.contains(marker), "{shell}: {script}");
        assert!(script.stdout.contains("provider"), "{shell}: {script}");
    }
    let bad = ws.command(["completions", "tcsh"]).run();
    bad.assert_code(2);
}
