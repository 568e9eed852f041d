//! removit.eu: upload, then poll `pending` with rising progress until `done`
//! delivers one or several variations.

use crate::fakes::removit::{FakeRemovit, KEY, Script};
use crate::fakes::{Breakage, Fake, Fault, PHOTO_SIZE};
use crate::harness::{
    Refusal, Workspace, assert_cutout_png, assert_refusals, assert_same_paths, run_batch,
};

#[test]
fn an_uploaded_photo_is_polled_with_rising_progress_until_done() {
    let (fake, ws, run) = run_batch::<FakeRemovit>("bottle.png", |s| s.progress = vec![10, 45, 80]);

    run.assert_code(0);
    assert_eq!(ws.out_files(), ["bottle.png"], "{run}");
    assert_cutout_png(&ws.out_path("bottle.png"), PHOTO_SIZE);
    assert_same_paths(&run.outputs(), &[ws.out_path("bottle.png")]);
    let progress = run.progress();
    assert!(
        progress.contains(&45) && progress.contains(&80),
        "progress {progress:?}\n{run}"
    );
    assert!(
        progress.is_sorted(),
        "progress went backwards: {progress:?}\n{run}"
    );
    let states = run.states();
    for state in ["processing", "downloading"] {
        assert!(
            states.iter().any(|s| s == state),
            "no {state} state in {states:?}\n{run}"
        );
    }
    let job_id = fake.job_ids().pop().expect("a job");
    assert_eq!(run.of("done")[0]["remote_id"], job_id.as_str(), "{run}");
    assert_eq!(fake.submissions(), 1);

    let upload = &fake.journal().matching("POST", "/api/v1/upload")[0];
    assert_eq!(upload.header("x-api-key"), Some(KEY));
    assert!(
        upload.file("file").is_some(),
        "the photo goes in the `file` part"
    );
    fake.journal().assert_secret_only_in(KEY, Some("x-api-key"));
    let downloads = fake.journal().matching("GET", "/results/");
    assert!(
        downloads.iter().all(|d| d.header("x-api-key").is_none()),
        "the key went to a result URL"
    );
}

#[test]
fn variations_are_saved_side_by_side_and_warnings_become_warning_events() {
    let fake = FakeRemovit::start(Script {
        variations: vec!["compose", "shadowTop", "clipping"],
        warnings: vec![("shadow_wall", "params not provided")],
        ignored_variations: vec!["shadow_wall"],
        ..Script::default()
    });
    let ws = Workspace::new();

    let run = ws
        .batch_on(&fake)
        .args(["--option", "mode=params", "--option", "params=catalogue"])
        .arg(ws.photo("bottle.jpg"))
        .run();

    run.assert_code(0);
    assert_eq!(
        ws.out_files(),
        [
            "bottle.clipping.png",
            "bottle.compose.png",
            "bottle.shadowTop.png"
        ],
        "{run}"
    );
    assert_cutout_png(&ws.out_path("bottle.clipping.png"), PHOTO_SIZE);
    assert_eq!(run.outputs().len(), 3, "{run}");
    let warnings: Vec<String> = run
        .of("warning")
        .iter()
        .map(|w| w["message"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(
        warnings.iter().any(|w| w.contains("shadow_wall")),
        "warnings {warnings:?}\n{run}"
    );
    let upload = &fake.journal().matching("POST", "/api/v1/upload")[0];
    assert_eq!(
        (upload.field("mode"), upload.field("params")),
        (Some("params"), Some("catalogue"))
    );
}

#[test]
fn an_image_url_is_sent_as_json_file_url() {
    let url = "https://shop.example/img/lamp.webp";

    let (fake, ws, run) = run_batch::<FakeRemovit>(url, |_| {});

    run.assert_code(0);
    assert_eq!(ws.out_files(), ["lamp.png"], "{run}");
    let upload = &fake.journal().matching("POST", "/api/v1/upload")[0];
    assert_eq!(upload.media_type(), "application/json");
    assert_eq!(upload.json().expect("a JSON body")["file_url"], url);
}

#[test]
fn refusals_say_what_to_do_in_removits_own_words() {
    assert_refusals::<FakeRemovit>(
        "bottle.png",
        &[
            Refusal::wrong_key("rmv-wrong-NEVERPRINT-0000", &["check your key"]),
            Refusal::new("no credits", |s| s.credits = 0, &["out of credits"]),
            Refusal::new(
                "unreadable file",
                |s| s.upload_faults = vec![Fault::status(422)],
                &["Unsupported or corrupt image file."],
            ),
            Refusal::new("unknown job", |s| s.forgets_jobs = true, &["not_found"]),
        ],
    );
}

#[test]
fn a_429_without_retry_after_backs_off_then_succeeds() {
    let (fake, ws, run) = run_batch::<FakeRemovit>("bottle.jpg", |s| {
        s.upload_faults = vec![Fault::throttled().times(2)]
    });

    run.assert_code(0);
    assert_eq!((fake.submissions(), fake.jobs_created()), (3, 1), "{run}");
    assert_cutout_png(&ws.out_path("bottle.png"), PHOTO_SIZE);
}

#[test]
fn a_status_outage_that_clears_is_polled_through() {
    let (fake, ws, run) = run_batch::<FakeRemovit>("bottle.jpg", |s| {
        s.status_faults = vec![Fault::status(503).times(2)]
    });

    run.assert_code(0);
    assert_eq!(fake.jobs_created(), 1, "{run}");
    assert_cutout_png(&ws.out_path("bottle.png"), PHOTO_SIZE);
}

#[test]
fn a_job_that_fails_remotely_fails_with_the_providers_message_and_is_not_resubmitted() {
    let (fake, ws, run) = run_batch::<FakeRemovit>("bottle.jpg", |s| {
        s.status_faults = vec![Fault::status(500).always()]
    });

    let error = run.assert_one_failure(&[]);
    assert!(
        error.contains("Segmentation failed") || error.contains("processing_failed"),
        "the provider's words are missing from {error:?}\n{run}"
    );
    assert_eq!(fake.jobs_created(), 1, "{run}");
    ws.assert_nothing_written(&run);
}

#[test]
fn a_result_download_that_breaks_once_is_fetched_again() {
    let (fake, ws, run) =
        run_batch::<FakeRemovit>("bottle.jpg", |s| s.downloads_break = Breakage::Once);

    run.assert_code(0);
    assert_eq!(ws.out_files(), ["bottle.png"], "{run}");
    assert_cutout_png(&ws.out_path("bottle.png"), PHOTO_SIZE);
    assert_eq!(
        fake.journal().matching("GET", "/results/").len(),
        2,
        "{run}"
    );
}

#[test]
fn a_result_download_that_always_breaks_fails_and_leaves_nothing_behind() {
    let (fake, ws, run) =
        run_batch::<FakeRemovit>("bottle.jpg", |s| s.downloads_break = Breakage::Always);

    run.assert_one_failure(&["download"]);
    assert_eq!(
        fake.jobs_created(),
        1,
        "a failed download must not pay for a new job\n{run}"
    );
    ws.assert_nothing_written(&run);
}

#[test]
fn a_result_link_serving_something_else_than_the_image_fails_the_job_and_saves_nothing() {
    for (case, content_type, body, says) in [
        (
            "an error page sent as an image",
            "image/png",
            &b"<html><body>Link expired</body></html>"[..],
            "should be a PNG image (.png) but starts with `<html><body>Link expired",
        ),
        (
            "plain text",
            "text/plain",
            &b"upstream timeout"[..],
            "starts with `upstream timeout`",
        ),
        ("nothing at all", "image/png", &b""[..], "but is empty"),
    ] {
        let (fake, ws, run) = run_batch::<FakeRemovit>("bottle.jpg", |s| {
            s.results_replaced_by = Some((content_type, body));
        });
        let error = run.only_error();
        assert!(error.contains(says), "{case}: {error}\n{run}");
        assert_eq!(fake.jobs_created(), 1, "{case}: paid once\n{run}");
        ws.assert_nothing_written(&run);
    }
}

#[test]
fn an_expired_result_link_fails_once_as_retryable_without_paying_again() {
    for status in [403, 404, 410] {
        let (fake, ws, run) = run_batch::<FakeRemovit>("bottle.jpg", |s| {
            s.results_gone = Some(status);
        });
        let error = run.only_error();
        assert!(
            error.contains(&format!("expired or is gone (HTTP {status})"))
                && error.contains("Retry fetches a fresh one"),
            "{status}: {error}\n{run}"
        );
        let failed = run.of("failed");
        assert_eq!(failed[0]["retryable"], true, "{status}\n{run}");
        assert_eq!(
            fake.journal().matching("GET", "/results/").len(),
            1,
            "a gone link is not asked again and again\n{run}"
        );
        assert_eq!(fake.jobs_created(), 1, "{status}: paid once\n{run}");
        ws.assert_nothing_written(&run);
    }
}
