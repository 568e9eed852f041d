//! Uploadcare's Remove.bg add-on: a signed upload, a signed REST call to
//! execute, polling, then the result file from the CDN. The fake recomputes
//! every signature itself.

use crate::fakes::uploadcare::{
    ACCEPT, Ending, FakeUploadcare, PUBLIC_KEY, SECRET_KEY, Script, rest_signature,
    upload_signature,
};
use crate::fakes::{Breakage, Fake, Fault, PHOTO_SIZE};
use crate::harness::{Refusal, assert_cutout_png, assert_refusals, assert_same_paths, run_batch};

#[test]
fn the_fakes_signatures_match_uploadcares_published_vectors() {
    let rest = rest_signature(
        "demoprivatekey",
        "GET",
        b"",
        "application/json",
        "Mon, 05 Nov 2018 13:14:41 GMT",
        "/files/?limit=1&stored=true",
    );
    assert_eq!(rest, "3cbc4d2cf91f80c1ba162b926f8a975e8bec7995");
    assert_eq!(
        upload_signature("project_secret_key", "1454903856"),
        "d39a461d41f607338abffee5f31da4d4e46535651c87346e76906bf75c064d47"
    );
}

#[test]
fn a_photo_is_uploaded_signed_then_processed_then_downloaded() {
    let (fake, ws, run) = run_batch::<FakeUploadcare>("bottle.jpg", |_| {});

    run.assert_code(0);
    assert_eq!(ws.out_files(), ["bottle.png"], "{run}");
    assert_cutout_png(&ws.out_path("bottle.png"), PHOTO_SIZE);
    assert_same_paths(&run.outputs(), &[ws.out_path("bottle.png")]);
    let request_id = fake.request_ids().pop().expect("a Remove.bg request");
    assert_eq!(run.of("done")[0]["remote_id"], request_id.as_str(), "{run}");
    assert_eq!(fake.submissions(), 1, "one execution");
    assert!(
        fake.status_polls() >= 3,
        "in_progress twice, then done\n{run}"
    );

    let upload = &fake.journal().matching("POST", "/base/")[0];
    assert_eq!(upload.host, "upload");
    assert_eq!(upload.field("UPLOADCARE_PUB_KEY"), Some(PUBLIC_KEY));
    assert_eq!(upload.field("UPLOADCARE_STORE"), Some("0"));
    assert!(
        upload.file("file").is_some(),
        "the photo goes in the `file` part"
    );
    assert!(
        upload.header("authorization").is_none(),
        "the upload host needs no REST credentials"
    );
    let execute = &fake
        .journal()
        .matching("POST", "/addons/remove_bg/execute/")[0];
    assert_eq!(execute.header("accept"), Some(ACCEPT));
    assert_eq!(execute.media_type(), "application/json");
    assert!(execute.header("date").is_some());
    let rest: Vec<_> = fake
        .journal()
        .all()
        .into_iter()
        .filter(|s| s.host == "api")
        .collect();
    assert!(
        rest.iter().any(|s| s.path().starts_with("/files/")),
        "without a CDN override the result's URL comes from GET /files/{{id}}/\n{run}"
    );
    fake.journal().assert_secret_only_in(SECRET_KEY, None);
}

#[test]
fn a_wrong_secret_is_refused_with_uploadcares_own_words() {
    let wrong_secret = "ucsec-wrong-NEVERPRINT-0000";
    assert_refusals::<FakeUploadcare>(
        "bottle.jpg",
        &[
            // Without signed uploads the upload passes and REST refuses the
            // signature of the (paid) execute call.
            Refusal::new(
                "unsigned uploads",
                |s: &mut Script| s.signed_uploads = false,
                &[
                    "check your key",
                    "Invalid signature. Please check your Secret key.",
                ],
            )
            .with_wrong_key(wrong_secret),
            // With signed uploads the upload itself is refused.
            Refusal::wrong_key(wrong_secret, &["check your key", "Invalid signature."])
                .before_the_paid_call(),
        ],
    );
}

#[test]
fn an_image_url_is_fetched_by_uploadcare_then_processed() {
    let url = "https://shop.example/img/teapot.jpg";

    let (fake, ws, run) = run_batch::<FakeUploadcare>(url, |_| {});

    run.assert_code(0);
    assert_eq!(ws.out_files(), ["teapot.png"], "{run}");
    assert_cutout_png(&ws.out_path("teapot.png"), PHOTO_SIZE);
    let from_url = &fake.journal().matching("POST", "/from_url/")[0];
    assert_eq!(from_url.field("source_url"), Some(url));
    assert_eq!(from_url.field("pub_key"), Some(PUBLIC_KEY));
    assert!(
        fake.journal().matching("POST", "/base/").is_empty(),
        "{run}"
    );
}

#[test]
fn a_throttled_execute_waits_for_retry_after_then_succeeds() {
    let (fake, _ws, run) = run_batch::<FakeUploadcare>("bottle.jpg", |s| {
        s.execute_faults = vec![Fault::throttled().retry_after(1)]
    });

    run.assert_code(0);
    run.assert_waited_out_retry_after(1);
    assert_eq!(
        (fake.submissions(), fake.request_ids().len()),
        (2, 1),
        "{run}"
    );
}

#[test]
fn a_burst_of_502s_while_polling_is_polled_through() {
    let (fake, ws, run) = run_batch::<FakeUploadcare>("bottle.jpg", |s| {
        s.status_faults = vec![Fault::status(502).times(2)]
    });

    run.assert_code(0);
    assert_eq!(fake.submissions(), 1, "{run}");
    assert_cutout_png(&ws.out_path("bottle.png"), PHOTO_SIZE);
}

#[test]
fn a_removal_that_fails_remotely_says_the_provider_could_not_process_it() {
    let (fake, ws, run) = run_batch::<FakeUploadcare>("bottle.jpg", |s| {
        s.ending = Ending::Error("Could not identify foreground in image.")
    });

    run.assert_one_failure(&["could not process it"]);
    assert_eq!(fake.submissions(), 1, "{run}");
    ws.assert_nothing_written(&run);
}

#[test]
fn a_result_download_is_retried_once_broken_and_leaves_nothing_when_always_broken() {
    let (_fake, ws, run) =
        run_batch::<FakeUploadcare>("bottle.jpg", |s| s.downloads_break = Breakage::Once);
    run.assert_code(0);
    assert_cutout_png(&ws.out_path("bottle.png"), PHOTO_SIZE);

    let (fake, ws, run) =
        run_batch::<FakeUploadcare>("bottle.jpg", |s| s.downloads_break = Breakage::Always);
    run.assert_one_failure(&["download"]);
    assert_eq!(
        fake.submissions(),
        1,
        "a failed download must not pay for a new removal\n{run}"
    );
    ws.assert_nothing_written(&run);
}
