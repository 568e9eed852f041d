//! Awkward inputs, end to end: what a provider receives is upright and in
//! sRGB whatever the file was, an image over a provider's limit fails
//! before anything is paid for, and a folder's non-images are listed, not
//! sent.

#[path = "../fixtures/images.rs"]
mod images;

use images::FourChannel;

use crate::fakes::Fake;
use crate::fakes::removebg::{self, FakeRemoveBg};
use crate::harness::Workspace;

/// Inks of the test label, one per 8 × 8 block, 4 blocks across and 2
/// down: cyan first, then paper.
fn label_ink(bx: u32, by: u32) -> [u8; 4] {
    if (bx, by) == (0, 0) {
        [255, 0, 0, 0]
    } else {
        [0, 0, 0, 0]
    }
}

#[test]
fn a_rotated_cmyk_jpeg_reaches_remove_bg_upright_and_in_srgb_and_the_job_says_so() {
    let fake = FakeRemoveBg::start(removebg::Script::default());
    let ws = Workspace::new();
    // A print shop's CMYK label, stored sideways with "rotate 90°" in EXIF.
    let cmyk = images::adobe_cmyk_jpeg(4, 2, FourChannel::Cmyk, label_ink);
    let original = images::with_exif_orientation(&cmyk, 6);
    let label = ws.file("label.jpg", &original);

    let run = ws.batch_on(&fake).arg(&label).run();

    run.assert_code(0);
    let sent = fake.journal().matching("POST", "/v1.0/removebg");
    assert_eq!(sent.len(), 1, "{run}");
    let part = sent[0]
        .file("image_file")
        .expect("the label in `image_file`");
    assert_eq!(part.file_name.as_deref(), Some("label.jpg"), "{run}");
    assert_eq!(part.content_type.as_deref(), Some("image/jpeg"), "{run}");
    let received = image::load_from_memory(&part.bytes).expect("remove.bg got a readable JPEG");
    assert_eq!(
        received.color(),
        image::ColorType::Rgb8,
        "RGB, not CMYK\n{run}"
    );
    let received = received.to_rgb8();
    assert_eq!(received.dimensions(), (16, 32), "upright\n{run}");
    // The stored top-left (cyan) block is the upright top-right one.
    let cyan = received.get_pixel(12, 4);
    assert!(
        cyan[0] < 16 && cyan[1] > 235 && cyan[2] > 235,
        "cyan ink is sRGB cyan, got {cyan:?}\n{run}"
    );
    let paper = received.get_pixel(4, 28);
    assert!(
        paper.0.iter().all(|&v| v > 240),
        "paper is white, got {paper:?}"
    );

    let warnings: Vec<&str> = run
        .of("warning")
        .iter()
        .filter_map(|w| w["message"].as_str())
        .collect();
    assert_eq!(
        warnings,
        ["rotated upright and converted colours from CMYK to sRGB for upload"],
        "{run}"
    );
    assert_eq!(ws.out_files(), ["label.png"], "{run}");
    let result = image::open(ws.out_path("label.png")).expect("the cut-out");
    assert_eq!((result.width(), result.height()), (16, 32), "{run}");
    assert_eq!(
        std::fs::read(&label).expect("the original"),
        original,
        "the original is never changed"
    );
}

#[test]
fn a_photo_over_remove_bgs_25_megapixels_fails_before_upload_saying_how_to_allow_downscaling() {
    let fake = FakeRemoveBg::start(removebg::Script::default());
    let ws = Workspace::new();
    // 6000 × 4200 = 25.2 MP of flat blocks: a small file, a big picture.
    let big =
        images::progressive_jpeg(750, 525, |bx, by| [(bx % 256) as u8, (by % 256) as u8, 128]);
    let photo = ws.file("camera.jpg", &big);

    let run = ws.batch_on(&fake).arg(&photo).run();

    let error = run.assert_one_failure(&[
        "remove.bg takes images up to 25 MP, and this one is 25.2 MP (6000 × 4200)",
        "--allow-downscale",
    ]);
    assert!(
        error.ends_with("camera.jpg"),
        "the path comes last: {error}"
    );
    assert_eq!(run.of("failed")[0]["retryable"], false, "{run}");
    assert_eq!(fake.submissions(), 0, "nothing was sent\n{run}");
    ws.assert_nothing_written(&run);
}

#[test]
fn a_folder_skips_and_lists_files_named_like_images_that_are_not_pictures() {
    let fake = FakeRemoveBg::start(removebg::Script::default());
    let ws = Workspace::new();
    ws.photo("shots/front.jpg");
    ws.file(
        "shots/invoice.jpg",
        b"%PDF-1.7\n% an invoice saved with the photos",
    );
    ws.file("shots/empty.png", b"");

    let run = ws.batch_on(&fake).arg(ws.inputs.join("shots")).run();

    run.assert_code(0);
    assert_eq!(fake.submissions(), 1, "only the photo is sent\n{run}");
    let mut skipped: Vec<(String, String)> = run
        .of("skipped")
        .iter()
        .map(|e| {
            let input = e["input"].as_str().unwrap_or_default();
            let name = input.rsplit(['/', '\\']).next().unwrap_or_default();
            let reason = e["reason"].as_str().unwrap_or_default();
            (name.to_owned(), reason.to_owned())
        })
        .collect();
    skipped.sort();
    assert_eq!(
        skipped,
        [
            ("empty.png".to_owned(), "an empty file (0 bytes)".to_owned()),
            (
                "invoice.jpg".to_owned(),
                "not an image: its content is in no picture format Cutout knows".to_owned()
            ),
        ],
        "{run}"
    );
}
