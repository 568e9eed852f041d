//! remove.bg: one synchronous call per image, paid per call, so nothing may be
//! sent twice unless the service surely did not act on it.

use crate::fakes::removebg::{FakeRemoveBg, KEY};
use crate::fakes::{Breakage, Fake, Fault, PHOTO_SIZE};
use crate::harness::{Refusal, assert_cutout_png, assert_refusals, assert_same_paths, run_batch};

#[test]
fn a_photo_comes_back_as_a_transparent_png_of_the_same_size_with_its_credits() {
    let (fake, ws, run) = run_batch::<FakeRemoveBg>("bottle.jpg", |_| {});

    run.assert_code(0);
    assert_eq!(ws.out_files(), ["bottle.png"], "{run}");
    assert_cutout_png(&ws.out_path("bottle.png"), PHOTO_SIZE);
    assert_same_paths(&run.outputs(), &[ws.out_path("bottle.png")]);
    let added = run.of("added");
    assert_eq!(added.len(), 1, "{run}");
    assert_eq!(added[0]["provider"], "removebg", "{run}");
    assert_eq!(added[0]["model"], "auto", "{run}");
    assert_eq!(
        run.of("done")[0]["credits_charged"].as_f64(),
        Some(1.0),
        "{run}"
    );
    run.assert_summary(1, 0, 0);

    let sent = fake.journal().matching("POST", "/v1.0/removebg");
    assert_eq!(sent.len(), 1, "exactly one paid call");
    assert_eq!(sent[0].header("x-api-key"), Some(KEY));
    assert_eq!(sent[0].field("size"), Some("auto"));
    assert_eq!(sent[0].field("format"), Some("png"));
    let part = sent[0]
        .file("image_file")
        .expect("the photo in `image_file`");
    assert!(
        part.content_type
            .as_deref()
            .is_some_and(|t| t.starts_with("image/")),
        "{part:?}"
    );
    fake.journal().assert_secret_only_in(KEY, Some("x-api-key"));
}

#[test]
fn an_image_url_is_passed_for_remove_bg_to_fetch_and_named_after_its_last_segment() {
    let url = "https://shop.example/catalogue/red-bottle.jpg";

    let (fake, ws, run) = run_batch::<FakeRemoveBg>(url, |_| {});

    run.assert_code(0);
    assert_eq!(ws.out_files(), ["red-bottle.png"], "{run}");
    assert_cutout_png(&ws.out_path("red-bottle.png"), PHOTO_SIZE);
    let sent = fake.journal().matching("POST", "/v1.0/removebg");
    assert_eq!(sent[0].field("image_url"), Some(url));
    assert!(sent[0].file("image_file").is_none());
}

#[test]
fn refusals_say_what_to_do_in_remove_bgs_own_words() {
    assert_refusals::<FakeRemoveBg>(
        "bottle.png",
        &[
            Refusal::wrong_key(
                "rbg-wrong-NEVERPRINT-0000",
                &["check your key", "API Key invalid"],
            ),
            Refusal::new(
                "a refusal that quotes the key back",
                |s: &mut crate::fakes::removebg::Script| s.quotes_refused_keys = true,
                &["check your key", "API Key invalid: [key hidden]"],
            )
            .with_wrong_key("rbg-wrong-NEVERPRINT-0000"),
            Refusal::new("no credits", |s| s.credits = 0.0, &["out of credits"]),
            Refusal::new(
                "no foreground",
                |s| s.finds_foreground = false,
                &["Could not identify foreground in image"],
            ),
        ],
    );
}

#[test]
fn a_429_with_retry_after_is_waited_out_then_succeeds() {
    let (fake, ws, run) = run_batch::<FakeRemoveBg>("bottle.jpg", |s| {
        s.faults = vec![Fault::throttled().retry_after(1)]
    });

    run.assert_code(0);
    run.assert_waited_out_retry_after(1);
    assert_eq!((fake.submissions(), fake.charged()), (2, 1), "{run}");
    assert_cutout_png(&ws.out_path("bottle.png"), PHOTO_SIZE);
}

#[test]
fn a_429_that_never_clears_fails_as_rate_limiting_after_the_retry_budget() {
    let (fake, _ws, run) = run_batch::<FakeRemoveBg>("bottle.jpg", |s| {
        s.faults = vec![Fault::throttled().always()]
    });

    run.assert_one_failure(&["rate limiting"]);
    assert_eq!(run.of("failed")[0]["retryable"], true, "{run}");
    assert_eq!(
        fake.submissions(),
        4,
        "CUTOUT_RETRY_MAX_ATTEMPTS=4 attempts\n{run}"
    );
    assert_eq!(fake.charged(), 0);
}

#[test]
fn a_503_burst_clears_but_a_500_is_never_replayed() {
    let (fake, _ws, run) = run_batch::<FakeRemoveBg>("bottle.jpg", |s| {
        s.faults = vec![Fault::status(503).times(2)]
    });
    run.assert_code(0);
    assert_eq!((fake.submissions(), fake.charged()), (3, 1), "{run}");

    // A 500 may mean the image was processed and paid for: never again.
    let (fake, ws, run) =
        run_batch::<FakeRemoveBg>("bottle.jpg", |s| s.faults = vec![Fault::status(500)]);
    run.assert_code(1);
    assert_eq!(
        fake.submissions(),
        1,
        "a 500 on a paid call was replayed\n{run}"
    );
    ws.assert_nothing_written(&run);
}

#[test]
fn a_response_that_breaks_off_fails_without_paying_twice_or_leaving_a_partial_file() {
    let (fake, ws, run) =
        run_batch::<FakeRemoveBg>("bottle.jpg", |s| s.response_breaks = Breakage::Once);

    run.assert_one_failure(&[]);
    assert_eq!(
        fake.submissions(),
        1,
        "the broken (already paid) call was sent again\n{run}"
    );
    ws.assert_nothing_written(&run);
}

#[test]
fn a_video_url_is_refused_without_sending_it_and_the_error_names_removebgvideo() {
    let video = "https://media.example/clips/dancer.mp4";

    let (fake, _ws, run) = run_batch::<FakeRemoveBg>(video, |_| {});

    run.assert_one_failure(&["removebgvideo"]);
    assert_eq!(fake.submissions(), 0, "{run}");
}

#[test]
fn a_call_that_never_answers_times_out_alone_is_not_paid_twice_and_the_rest_finish() {
    let fake = FakeRemoveBg::start(crate::fakes::removebg::Script {
        hangs_first: 1,
        ..Default::default()
    });
    let ws = crate::harness::Workspace::new();
    let photos: Vec<_> = ["a.jpg", "b.jpg", "c.jpg"]
        .iter()
        .map(|name| ws.photo(name))
        .collect();
    let run = ws
        .batch_on(&fake)
        .env("CUTOUT_HTTP_READ_TIMEOUT_MS", "300")
        .args(["--concurrency", "1"])
        .args(&photos)
        .run();

    let error = run.assert_one_failure(&["timed out"]);
    assert!(error.contains("network error"), "{error}\n{run}");
    assert!(
        run.elapsed < crate::fakes::removebg::HANG,
        "the timeout, not the server, ended the wait\n{run}"
    );
    assert_eq!(ws.out_files().len(), 2, "{run}");
    assert_eq!(
        fake.journal().matching("POST", "/v1.0/removebg").len(),
        3,
        "a paid call that timed out is not sent again\n{run}"
    );
}
