//! Rules every provider shares: where outputs go, that nothing is overwritten,
//! local format and background, concurrency, cancelling with Ctrl-C, and the
//! deadline on a job that never finishes.

use std::time::{Duration, Instant};

use crate::fakes::removebg::{self, FakeRemoveBg};
use crate::fakes::removit::{self, FakeRemovit};
use crate::fakes::{self, Fake, PHOTO_SIZE};
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

#[test]
fn refined_edges_drop_a_speck_and_take_the_old_backdrop_out_of_soft_pixels() {
    let fake = FakeRemoveBg::start(removebg::Script::default());
    let ws = Workspace::new();
    let (width, height) = PHOTO_SIZE;
    // A red ball with a soft, out-of-focus edge on a light backdrop, and a
    // fleck of dust far from it, which the fake's cut-out keeps as a speck.
    let (red, backdrop) = ([220.0, 30.0, 30.0], [238.0, 236.0, 230.0]);
    let fleck = [(20, 30), (21, 30), (20, 31), (21, 31)];
    let photo = image::RgbImage::from_fn(width, height, |x, y| {
        if fleck.contains(&(x, y)) {
            return image::Rgb([60, 60, 60]);
        }
        let r = (x as f32 - 160.0).hypot(y as f32 - 120.0);
        let t = ((60.0 - r) / 25.0 + 0.5).clamp(0.0, 1.0);
        image::Rgb([0, 1, 2].map(|c| (t * red[c] + (1.0 - t) * backdrop[c]).round() as u8))
    });
    let path = ws.file("ball.png", b"");
    photo.save(&path).expect("write the photo");
    let delivered = fakes::cut_out(&photo);
    assert_eq!(
        delivered.get_pixel(20, 30)[3],
        255,
        "the fake keeps the fleck"
    );

    let run = ws
        .batch_on(&fake)
        .args(["--decontaminate", "--remove-speckles"])
        .arg(&path)
        .run();

    run.assert_code(0);
    assert_eq!(ws.out_files(), ["ball.png"], "{run}");
    let refined = image::open(ws.out_path("ball.png"))
        .expect("decode the result")
        .into_rgba8();
    assert_eq!(refined.dimensions(), PHOTO_SIZE);
    for (x, y) in fleck {
        assert_eq!(
            refined.get_pixel(x, y)[3],
            0,
            "the fleck at ({x}, {y}) is gone"
        );
    }
    // The fake keeps the photo's colours, part backdrop at the soft edge
    // (I = αF + (1−α)B), so the edge shows a pale halo; the recovered
    // colours there are the nearby subject's (the fake's opaque rim is pink
    // itself, so about twice as far from the backdrop). Opaque pixels are
    // kept as they were.
    let from_backdrop = |p: &image::Rgba<u8>| {
        (0..3)
            .map(|c| (f32::from(p[c]) - backdrop[c]).powi(2))
            .sum::<f32>()
            .sqrt()
    };
    let (mut soft, mut before, mut after) = (0, 0.0, 0.0);
    for (x, y, pixel) in delivered.enumerate_pixels() {
        let result = refined.get_pixel(x, y);
        match pixel[3] {
            255 if !fleck.contains(&(x, y)) => {
                assert_eq!(result, pixel, "opaque ({x}, {y}) is kept")
            }
            1..255 => {
                assert_eq!(result[3], pixel[3], "alpha is kept");
                assert!(
                    result[1] <= pixel[1] && result[2] <= pixel[2],
                    "({x}, {y}) is no paler: {result:?}, was {pixel:?}"
                );
                before += from_backdrop(pixel);
                after += from_backdrop(result);
                soft += 1;
            }
            _ => {}
        }
    }
    assert!(
        after > 2.0 * before,
        "soft pixels are the ball's colour, not the backdrop's: {} → {} from it on average",
        before / soft as f32,
        after / soft as f32
    );
    assert!(soft > 100, "the ball has a soft edge: {soft} pixels");
}
