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
