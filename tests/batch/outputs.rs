//! Rules every provider shares: where outputs go, that nothing is overwritten,
//! local format and background, concurrency, cancelling with Ctrl-C, and the
//! deadline on a job that never finishes.

use std::time::{Duration, Instant};

use crate::fakes::removebg::{self, FakeRemoveBg};
use crate::fakes::removit::{self, FakeRemovit};
use crate::fakes::{Fake, PHOTO_SIZE};
use crate::harness::{Workspace, assert_cutout_png};

/// How the CLI names a result it is still writing.
const PARTIAL_PREFIX: &str = ".cutout-partial-";

/// Waits up to 20 s for `ready`, failing with `what` when it never comes.
#[track_caller]
fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let waiting = Instant::now();
    while !ready() {
        assert!(waiting.elapsed() < Duration::from_secs(20), "{what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_naming_template_names_results_and_a_bad_one_is_refused_before_anything_is_sent() {
    let fake = FakeRemoveBg::start(removebg::Script::default());
    let ws = Workspace::new();
    let run = ws
        .batch_on(&fake)
        .args(["--name", "{name}-{provider}-{model}"])
        .arg(ws.photo("mug.jpg"))
        .run();
    run.assert_code(0);
    assert_eq!(ws.out_files(), ["mug-removebg-auto.png"], "{run}");

    let bad = ws
        .batch_on(&fake)
        .args(["--name", "{name}/{colour}"])
        .arg(ws.photo("cup.jpg"))
        .run();
    bad.assert_code(2);
    assert!(
        bad.stderr.contains("{colour}") || bad.stderr.contains("colour"),
        "{bad}"
    );
    assert_eq!(
        fake.submissions(),
        1,
        "nothing sent for the bad template\n{bad}"
    );
}

#[test]
fn a_folder_keeps_its_tree_and_skips_what_is_not_an_image() {
    let fake = FakeRemoveBg::start(removebg::Script::default());
    let ws = Workspace::new();
    ws.photo("shots/front.jpg");
    ws.photo("shots/detail/cap.png");
    ws.file("shots/notes.txt", b"shoot list");
    ws.file("shots/detail/README.md", b"# detail shots");

    let run = ws.batch_on(&fake).arg(ws.inputs.join("shots")).run();

    run.assert_code(0);
    assert_eq!(
        ws.out_files(),
        ["shots/detail/cap.png", "shots/front.png"],
        "{run}"
    );
    assert_cutout_png(&ws.out_path("shots/detail/cap.png"), PHOTO_SIZE);
    assert_cutout_png(&ws.out_path("shots/front.png"), PHOTO_SIZE);
    assert_eq!(fake.submissions(), 2, "only the images are sent\n{run}");
    let mut skipped: Vec<&str> = run
        .of("skipped")
        .iter()
        .filter_map(|e| e["input"].as_str())
        .collect();
    skipped.sort();
    assert!(
        skipped.len() == 2
            && skipped[0].ends_with("README.md")
            && skipped[1].ends_with("notes.txt"),
        "the skipped files are reported: {skipped:?}\n{run}"
    );
    run.assert_summary(2, 0, 0);
}

#[test]
fn an_existing_output_is_never_overwritten() {
    let fake = FakeRemoveBg::start(removebg::Script::default());
    let ws = Workspace::new();
    let photo = ws.photo("bottle.jpg");
    std::fs::create_dir_all(&ws.out).expect("create out");
    std::fs::write(ws.out_path("bottle.png"), b"yesterday's edit").expect("an earlier output");

    let run = ws.batch_on(&fake).arg(&photo).run();

    run.assert_code(0);
    assert_eq!(
        std::fs::read(ws.out_path("bottle.png")).expect("the earlier file"),
        b"yesterday's edit"
    );
    assert_eq!(ws.out_files(), ["bottle (1).png", "bottle.png"], "{run}");
    assert_cutout_png(&ws.out_path("bottle (1).png"), PHOTO_SIZE);
}

#[test]
fn jpg_on_a_white_background_is_an_opaque_jpeg_of_the_same_size() {
    let fake = FakeRemoveBg::start(removebg::Script::default());
    let ws = Workspace::new();
    let photo = ws.photo("bottle.png");

    let run = ws
        .batch_on(&fake)
        .args(["--format", "jpg", "--bg", "#ffffff"])
        .arg(&photo)
        .run();

    run.assert_code(0);
    assert_eq!(ws.out_files(), ["bottle.jpg"], "{run}");
    let bytes = std::fs::read(ws.out_path("bottle.jpg")).expect("the JPEG");
    assert_eq!(
        image::guess_format(&bytes).ok(),
        Some(image::ImageFormat::Jpeg)
    );
    let image = image::load_from_memory(&bytes).expect("decode the JPEG");
    assert!(!image.color().has_alpha());
    let image = image.to_rgb8();
    assert_eq!(image.dimensions(), PHOTO_SIZE);
    let (w, h) = PHOTO_SIZE;
    for (x, y) in [(0, 0), (w - 1, 0), (0, h - 1), (w - 1, h - 1)] {
        let pixel = image.get_pixel(x, y);
        assert!(
            pixel.0.iter().all(|&c| c >= 245),
            "corner ({x},{y}) is {pixel:?}, not white"
        );
    }
    let centre = image.get_pixel(w / 2, h / 2);
    assert!(
        centre.0.iter().any(|&c| c < 200),
        "the product is missing: {centre:?}"
    );
}

#[test]
fn concurrency_2_is_never_exceeded() {
    let fake = FakeRemoveBg::start(removebg::Script {
        processing_ms: 250,
        ..removebg::Script::default()
    });
    let ws = Workspace::new();
    let photos: Vec<_> = (1..=5).map(|i| ws.photo(&format!("item{i}.jpg"))).collect();

    let run = ws
        .batch_on(&fake)
        .args(["--concurrency", "2"])
        .args(&photos)
        .run();

    run.assert_code(0);
    run.assert_summary(5, 0, 0);
    assert_eq!(
        fake.max_in_flight(),
        2,
        "at most 2 at once, and 2 when there is work\n{run}"
    );
}

#[test]
fn ctrl_c_cancels_jobs_in_flight_and_leaves_nothing_behind() {
    let fake = FakeRemovit::start(removit::Script {
        never_finishes: true,
        ..removit::Script::default()
    });
    let ws = Workspace::new();
    let first = ws.photo("first.jpg");
    let second = ws.photo("second.jpg");

    let running = ws
        .batch_on(&fake)
        .args(["--concurrency", "2"])
        .arg(&first)
        .arg(&second)
        .spawn();
    wait_until("the jobs never reached removit", || {
        fake.jobs_created() >= 2 && fake.status_polls() >= 2
    });
    running.interrupt();
    let run = running.wait();

    run.assert_code(130);
    assert_eq!(run.of("cancelled").len(), 2, "{run}");
    run.assert_summary(0, 0, 2);
    assert!(
        ws.out_files().is_empty(),
        "left behind: {:?}",
        ws.out_files()
    );
    assert_eq!(fake.submissions(), 2, "{run}");
}

#[test]
fn ctrl_c_during_a_download_removes_the_partial_file() {
    let fake = FakeRemovit::start(removit::Script {
        downloads_stall: true,
        ..removit::Script::default()
    });
    let ws = Workspace::new();

    let running = ws.batch_on(&fake).arg(ws.photo("bottle.jpg")).spawn();
    let partial_with_bytes = || {
        ws.out_files().iter().any(|name| {
            name.starts_with(PARTIAL_PREFIX)
                && std::fs::metadata(ws.out_path(name)).is_ok_and(|m| m.len() > 0)
        })
    };
    wait_until("no partial file ever held the first bytes", || {
        !fake.journal().matching("GET", "/results/").is_empty() && partial_with_bytes()
    });
    // The transfer is now stuck mid-way: let the writer settle before Ctrl-C.
    std::thread::sleep(Duration::from_millis(300));
    let before = ws.out_files();
    running.interrupt();
    let run = running.wait();

    assert!(
        before.iter().any(|name| name.starts_with(PARTIAL_PREFIX)),
        "the partial file was gone before Ctrl-C: {before:?}\n{run}"
    );
    run.assert_code(130);
    assert_eq!(run.of("cancelled").len(), 1, "{run}");
    run.assert_summary(0, 0, 1);
    ws.assert_nothing_written(&run);
    assert_eq!(fake.submissions(), 1, "{run}");
}

#[test]
fn a_job_that_never_finishes_fails_at_the_deadline_and_can_be_retried() {
    let fake = FakeRemovit::start(removit::Script {
        never_finishes: true,
        ..removit::Script::default()
    });
    let ws = Workspace::new();

    let run = ws
        .batch_on(&fake)
        .env("CUTOUT_POLL_DEADLINE_SECS", "1")
        .arg(ws.photo("bottle.jpg"))
        .run();

    run.assert_one_failure(&["did not finish within 1 s"]);
    assert_eq!(
        run.of("failed")[0]["retryable"],
        true,
        "waiting longer may yet see it finish\n{run}"
    );
    assert!(
        fake.status_polls() >= 2,
        "it was polled until the deadline\n{run}"
    );
    assert_eq!(fake.submissions(), 1, "the job is not sent twice\n{run}");
    ws.assert_nothing_written(&run);
}

#[test]
fn a_marketplace_square_is_cropped_to_the_product_on_white() {
    let fake = FakeRemoveBg::start(removebg::Script::default());
    let ws = Workspace::new();
    let photo = ws.photo("bottle.jpg");

    let run = ws
        .batch_on(&fake)
        .args(["--canvas", "square:800", "--crop", "5%", "--bg", "#ffffff"])
        .args(["--format", "jpg"])
        .arg(&photo)
        .run();

    run.assert_code(0);
    assert_eq!(ws.out_files(), ["bottle.jpg"], "{run}");
    let image = image::open(ws.out_path("bottle.jpg")).expect("decode the JPEG");
    assert!(!image.color().has_alpha());
    let image = image.to_rgb8();
    assert_eq!(image.dimensions(), (800, 800));
    for (x, y) in [(0, 0), (799, 0), (0, 799), (799, 799)] {
        let pixel = image.get_pixel(x, y);
        assert!(
            pixel.0.iter().all(|&c| c >= 245),
            "corner ({x},{y}) is {pixel:?}, not white"
        );
    }
    let centre = image.get_pixel(400, 400);
    assert!(
        centre.0.iter().any(|&c| c < 200),
        "the product fills the middle: {centre:?}"
    );
}
