//! The local engine end to end, on both engines: a known picture through
//! each family's tiny model (tests/fixtures/models, made by
//! scripts/make_test_models.py) gives mask values predicted by hand, and
//! a photo-like picture gives the mask rembg's own code gives.
//!
//! tract runs always. ONNX Runtime runs when `ORT_DYLIB_PATH` names its
//! library; with `CUTOUT_TEST_ORT=required` (CI) its absence, or that of
//! Python with onnxruntime and Pillow for the rembg comparison, fails the
//! tests instead of skipping them.

use std::path::{Path, PathBuf};
use std::process::Command;

use cutout::local::backend::{BackendKind, BackendPreference, SessionOptions};
use cutout::local::catalogue::ModelFamily;
use cutout::local::engine::LocalEngine;
use cutout::local::{LocalError, ResolvedModel, runtime};
use image::{GrayImage, Rgb, RgbImage};

// The tiny models' weights, as in scripts/make_test_models.py.
const W0: [f64; 3] = [0.5, 0.25, 0.125];
const B0: f64 = 3.0;
const W0_LOGITS: [f64; 3] = [0.5, 0.25, 0.125];
const B0_LOGITS: f64 = 0.25;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/models")
        .join(name)
}

fn tiny_model(family: ModelFamily) -> ResolvedModel {
    let name = match family {
        ModelFamily::U2net => "tiny-u2net.onnx",
        ModelFamily::Isnet => "tiny-isnet.onnx",
        ModelFamily::Birefnet => "tiny-birefnet.onnx",
    };
    ResolvedModel::from_file(fixture(name), family)
}

fn ort_required() -> bool {
    std::env::var("CUTOUT_TEST_ORT").is_ok_and(|value| value == "required")
}

/// The engines to test on: tract always, ONNX Runtime where it loads.
fn engines() -> Vec<(&'static str, LocalEngine)> {
    let mut engines = vec![("tract", engine(BackendPreference::Tract))];
    if runtime::available_for_tests() {
        engines.push(("ONNX Runtime", engine(BackendPreference::OnnxRuntime)));
    }
    engines
}

fn engine(backend: BackendPreference) -> LocalEngine {
    LocalEngine::new(SessionOptions {
        backend,
        threads: Some(2),
        use_gpu: false,
        data_dir: None,
    })
}

/// Three flat vertical bands, 300 px each: black, a colour, white. Black
/// and white hold the darkest and brightest values any pixel can have, so
/// the model's answer (rising with every channel) is lowest and highest at
/// their centres whatever the resize rings at the edges, and every band's
/// centre is far from the ringing.
const COLOUR: [u8; 3] = [200, 60, 120];

fn bands() -> RgbImage {
    RgbImage::from_fn(900, 300, |x, _| match x / 300 {
        0 => Rgb([0, 0, 0]),
        1 => Rgb(COLOUR),
        _ => Rgb([255, 255, 255]),
    })
}

/// The mask value at the colour band's centre, computed from rembg's
/// formula in float64: divide by the maximum (255 here), normalise, the
/// model's 1×1 convolution, squared (U²-Net, IS-Net stand-ins) or a
/// sigmoid (BiRefNet), min–max against the black and white bands, × 255,
/// truncated.
fn predicted_colour_value(family: ModelFamily) -> u8 {
    let preprocess = family.preprocess();
    let answer = |rgb: [u8; 3]| {
        let (weights, bias) = if preprocess.sigmoid {
            (W0_LOGITS, B0_LOGITS)
        } else {
            (W0, B0)
        };
        let conv: f64 = (0..3)
            .map(|c| {
                let x = (f64::from(rgb[c]) / 255.0 - f64::from(preprocess.mean[c]))
                    / f64::from(preprocess.std[c]);
                weights[c] * x
            })
            .sum::<f64>()
            + bias;
        if preprocess.sigmoid {
            1.0 / (1.0 + (-conv).exp())
        } else {
            conv * conv
        }
    };
    let (low, high) = (answer([0, 0, 0]), answer([255, 255, 255]));
    let scaled = (answer(COLOUR) - low) / (high - low) * 255.0;
    // The engines compute in float32; keep clear of a truncation boundary
    // so their rounding cannot change the expected value.
    let fraction = scaled - scaled.floor();
    assert!(
        (0.01..0.99).contains(&fraction),
        "pick another test colour: {scaled} is too close to an integer"
    );
    scaled.floor() as u8
}

fn assert_band_centres(mask: &GrayImage, colour_value: u8, context: &str) {
    assert_eq!(mask.dimensions(), (900, 300), "{context}");
    for y in [20, 150, 280] {
        assert_eq!(
            mask.get_pixel(150, y).0[0],
            0,
            "{context}: black band, row {y}"
        );
        assert_eq!(
            mask.get_pixel(450, y).0[0],
            colour_value,
            "{context}: colour band, row {y}"
        );
        assert_eq!(
            mask.get_pixel(750, y).0[0],
            255,
            "{context}: white band, row {y}"
        );
    }
}

fn check_family(family: ModelFamily) {
    let expected = predicted_colour_value(family);
    let model = tiny_model(family);
    let picture = bands();
    for (name, engine) in engines() {
        let mask = engine.cut_out(&model, &picture).unwrap();
        assert_band_centres(&mask, expected, &format!("{family} on {name}"));
    }
}

#[test]
fn u2net_masks_match_rembgs_formula_on_both_engines() {
    // 109.74… → 109; reading channel 1 or the second output, skipping the
    // mean or the deviation, or rounding instead of truncating gives
    // something else.
    assert_eq!(predicted_colour_value(ModelFamily::U2net), 109);
    check_family(ModelFamily::U2net);
}

#[test]
fn isnet_masks_match_rembgs_formula_on_both_engines() {
    // IS-Net divides by no deviation: 139.6… → 139.
    assert_eq!(predicted_colour_value(ModelFamily::Isnet), 139);
    check_family(ModelFamily::Isnet);
}

#[test]
fn birefnet_masks_go_through_the_sigmoid_on_both_engines() {
    // Logits through a sigmoid: 170.49… → 170 (without it: 147.9… → 147).
    assert_eq!(predicted_colour_value(ModelFamily::Birefnet), 170);
    check_family(ModelFamily::Birefnet);
}

#[test]
fn the_session_says_which_engine_and_processor_it_runs_on() {
    for (name, engine) in engines() {
        let session = engine.session(&tiny_model(ModelFamily::U2net)).unwrap();
        let description = session.description();
        let text = description.to_string();
        match description.kind {
            BackendKind::Tract => assert_eq!(text, "tract (pure Rust) · CPU · 2 threads"),
            BackendKind::OnnxRuntime => {
                assert!(text.starts_with("ONNX Runtime 1."), "{name}: {text}");
                assert!(text.ends_with(" · CPU · 2 threads"), "{name}: {text}");
            }
        }
        assert!(description.fallback_reason.is_none(), "{name}");
    }
}

#[test]
fn a_model_imported_with_the_wrong_family_is_refused_with_a_clear_message() {
    // tiny-u2net takes 320×320; IS-Net is fed 1024×1024.
    let model = ResolvedModel::from_file(fixture("tiny-u2net.onnx"), ModelFamily::Isnet);
    for (name, engine) in engines() {
        let error = engine.session(&model).unwrap_err();
        let LocalError::BadModel { reason, path } = &error else {
            panic!("{name}: {error}");
        };
        assert_eq!(path, &model.path, "{name}");
        assert!(reason.contains("1×3×1024×1024"), "{name}: {reason}");
        assert!(reason.contains("family"), "{name}: {reason}");
    }
}

#[test]
fn a_model_whose_answer_has_no_channel_axis_is_refused() {
    let model = ResolvedModel::from_file(fixture("tiny-bad-output.onnx"), ModelFamily::U2net);
    for (name, engine) in engines() {
        let error = engine.session(&model).unwrap_err();
        assert!(
            matches!(&error, LocalError::BadModel { reason, .. } if reason.contains("3 dimensions")),
            "{name}: {error}"
        );
    }
}

#[test]
fn a_file_that_is_not_a_model_is_refused_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.onnx");
    std::fs::write(&path, b"\x08\x07 not protobuf at all \xff\xff\xff").unwrap();
    let model = ResolvedModel::from_file(path.clone(), ModelFamily::U2net);
    for (name, engine) in engines() {
        let error = engine.session(&model).unwrap_err();
        assert!(
            matches!(&error, LocalError::BadModel { path: p, .. } if p == &path),
            "{name}: {error}"
        );
    }
}

/// A deterministic picture with what photos have: smooth gradients, hard
/// edges, small detail and noise; not square, not a round size.
fn photo_like() -> RgbImage {
    let mut state: u32 = 0x2545_f491;
    let mut noise = move || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        (state % 17) as i32 - 8
    };
    RgbImage::from_fn(643, 401, |x, y| {
        let (fx, fy) = (f64::from(x) / 643.0, f64::from(y) / 401.0);
        let mut rgb = [
            20.0 + 200.0 * fx,
            30.0 + 180.0 * fy,
            120.0 + 90.0 * (fx * 9.0).sin() * (fy * 5.0).cos(),
        ];
        let (dx, dy) = (f64::from(x) - 300.0, f64::from(y) - 190.0);
        if dx * dx + dy * dy < 120.0 * 120.0 {
            rgb = [230.0, 200.0 - 80.0 * fy, 40.0];
        }
        if (420..560).contains(&x) && (60..330).contains(&y) {
            rgb = [25.0, 60.0 + 100.0 * fx, 190.0];
        }
        if (x + y) % 23 < 2 {
            rgb = [250.0, 250.0, 250.0];
        }
        Rgb(rgb.map(|value| (value as i32 + noise()).clamp(0, 255) as u8))
    })
}

/// Whether Python can run scripts/rembg_reference.py here.
fn python_with_rembgs_dependencies() -> bool {
    let works = Command::new("python3")
        .args(["-c", "import numpy, onnxruntime, PIL"])
        .output()
        .is_ok_and(|output| output.status.success());
    assert!(
        works || !ort_required(),
        "CUTOUT_TEST_ORT=required but python3 cannot import numpy, onnxruntime and PIL; pip install onnxruntime==1.32.0 numpy pillow"
    );
    if !works {
        eprintln!("note: rembg comparison skipped; pip install onnxruntime numpy pillow to run it");
    }
    works
}

#[test]
fn masks_match_rembgs_own_code_within_one_level() {
    if !python_with_rembgs_dependencies() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let picture = photo_like();
    let picture_path = dir.path().join("photo.png");
    picture.save(&picture_path).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/rembg_reference.py");

    for family in ModelFamily::ALL {
        let model = tiny_model(family);
        let reference_path = dir.path().join(format!("{family}-rembg.png"));
        let output = Command::new("python3")
            .arg(&script)
            .arg(&model.path)
            .arg(family.as_str())
            .arg(&picture_path)
            .arg(&reference_path)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "rembg_reference.py failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let reference = image::open(&reference_path).unwrap().into_luma8();

        for (name, engine) in engines() {
            let mask = engine.cut_out(&model, &picture).unwrap();
            assert_eq!(mask.dimensions(), reference.dimensions());
            let total = mask.len();
            let mut within_one = 0;
            let mut max_difference = 0;
            for (ours, theirs) in mask.as_raw().iter().zip(reference.as_raw()) {
                let difference = ours.abs_diff(*theirs);
                max_difference = max_difference.max(difference);
                if difference <= 1 {
                    within_one += 1;
                }
            }
            let share = within_one as f64 / total as f64;
            eprintln!(
                "{family} on {name}: {:.4}% of pixels within ±1 of rembg, largest difference {max_difference}",
                share * 100.0
            );
            assert!(
                share >= 0.999,
                "{family} on {name}: only {:.3}% within ±1 (largest difference {max_difference})",
                share * 100.0
            );
        }
    }
}
