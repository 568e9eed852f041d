//! How fast and how light the local engine is, against rembg's way of
//! doing the same thing measured in the same run.
//!
//! The reference is `benches/local/reference.py`: Python, Pillow, numpy and
//! the `onnxruntime` wheel, doing per image exactly what rembg does (decode,
//! EXIF-transpose, Lanczos to the model's side, normalise, run, min–max,
//! Lanczos the mask back). Cutout's side does the same work through
//! `cutout::local` (decode, the same pre- and post-processing, the same ONNX
//! Runtime library), on the same model, the same photo and the same number
//! of threads, then the same on its built-in engine (tract). Each side runs
//! in its own process, so peak memory is that side's alone.
//!
//! The model: `CUTOUT_BENCH_MODEL` (with `CUTOUT_BENCH_FAMILY`, default
//! `isnet`) names a real one; otherwise a stand-in with IS-Net's interface
//! and a comparable amount of work is written by
//! `benches/local/make_bench_model.py` (real weights cannot be fetched in
//! CI). The photo: a generated 3000 × 2000 JPEG.
//!
//! Run `scripts/bench-local` (it sets up ONNX Runtime and Python first), or
//! `cargo bench --bench local` with `ORT_DYLIB_PATH` set and
//! `CUTOUT_TEST_PYTHON` naming a Python that has onnxruntime, onnx, numpy
//! and Pillow. `CUTOUT_BENCH_RUNS` sets the timed runs (default 5, after a
//! warm-up); `CUTOUT_BENCH_THREADS` the threads (default: every core). The
//! last line printed is every figure as JSON, also written to
//! `target/bench-local.json`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use cutout::local::ResolvedModel;
use cutout::local::backend::{BackendPreference, SessionOptions};
use cutout::local::catalogue::ModelFamily;
use cutout::local::engine::LocalEngine;
use serde::{Deserialize, Serialize};

/// Set in the child process that measures one Cutout backend.
const CHILD_VAR: &str = "CUTOUT_BENCH_CHILD";

/// A phone photo's size, 6 MP.
const PHOTO_SIZE: [u32; 2] = [3000, 2000];

/// What one side measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Measurement {
    /// What ran: `onnxruntime 1.32.0 (Python)`, `Cutout · ONNX Runtime …`.
    runtime: String,
    /// Loading the model into a session.
    load_ms: f64,
    /// Each timed image, file to mask.
    latencies_ms: Vec<f64>,
    /// The process's peak resident memory.
    peak_rss_kb: u64,
}

impl Measurement {
    fn median_ms(&self) -> f64 {
        let mut sorted = self.latencies_ms.clone();
        sorted.sort_by(f64::total_cmp);
        let mid = sorted.len() / 2;
        if sorted.len().is_multiple_of(2) {
            (sorted[mid - 1] + sorted[mid]) / 2.0
        } else {
            sorted[mid]
        }
    }
}

/// What the parent hands each side.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Setup {
    model: PathBuf,
    family: String,
    photo: PathBuf,
    threads: usize,
    runs: usize,
}

fn main() {
    if let Ok(setup) = std::env::var(CHILD_VAR) {
        let (backend, setup): (String, Setup) =
            serde_json::from_str(&setup).expect("the parent's setup");
        let measured = measure_cutout(&setup, backend.parse().expect("a backend"));
        println!("{}", serde_json::to_string(&measured).expect("JSON"));
        return;
    }
    // `cargo bench` passes `--bench`; nothing else is taken.
    let runs = env_number("CUTOUT_BENCH_RUNS").unwrap_or(5);
    let threads = env_number("CUTOUT_BENCH_THREADS")
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
    let python = std::env::var("CUTOUT_TEST_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let work = tempfile::tempdir().expect("a temporary folder");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));

    let (model, family) = match std::env::var_os("CUTOUT_BENCH_MODEL") {
        Some(model) => (
            PathBuf::from(model),
            std::env::var("CUTOUT_BENCH_FAMILY").unwrap_or_else(|_| "isnet".to_owned()),
        ),
        None => {
            let model = work.path().join("bench-isnet-shaped.onnx");
            run_checked(
                Command::new(&python)
                    .arg(root.join("benches/local/make_bench_model.py"))
                    .arg(&model),
                "writing the benchmark model (needs Python with onnx and numpy)",
            );
            (model, "isnet".to_owned())
        }
    };
    let photo = work.path().join("photo.jpg");
    write_photo(&photo);
    let setup = Setup {
        model: model.clone(),
        family: family.clone(),
        photo,
        threads,
        runs,
    };

    println!(
        "Local engine: {} ({family}), a {} × {} JPEG, {threads} thread(s), {runs} timed runs after a warm-up\n",
        model.display(),
        PHOTO_SIZE[0],
        PHOTO_SIZE[1],
    );
    let reference = run_reference(&python, root, &setup);
    let ort = run_child("onnxruntime", &setup);
    let tract = run_child("tract", &setup);

    let rows: Vec<(&str, &Measurement)> = [
        ("rembg way (reference)", Some(&reference)),
        ("Cutout, ONNX Runtime", ort.as_ref()),
        ("Cutout, tract", tract.as_ref()),
    ]
    .into_iter()
    .filter_map(|(name, m)| m.map(|m| (name, m)))
    .collect();
    println!(
        "{:<24} {:>10} {:>12} {:>9} {:>11} {:>9}  runtime",
        "side", "load ms", "median ms", "× ref", "peak MB", "× ref"
    );
    for (name, m) in &rows {
        println!(
            "{:<24} {:>10.0} {:>12.0} {:>9.2} {:>11.0} {:>9.2}  {}",
            name,
            m.load_ms,
            m.median_ms(),
            m.median_ms() / reference.median_ms(),
            m.peak_rss_kb as f64 / 1024.0,
            m.peak_rss_kb as f64 / reference.peak_rss_kb as f64,
            m.runtime
        );
    }
    let json = serde_json::json!({
        "model": model.display().to_string(),
        "family": family,
        "photo_px": PHOTO_SIZE,
        "threads": threads,
        "runs": runs,
        "reference": reference,
        "cutout_onnxruntime": ort,
        "cutout_tract": tract,
        "latency_ratio_onnxruntime": ort.as_ref().map(|m| m.median_ms() / reference.median_ms()),
        "latency_ratio_tract": tract.as_ref().map(|m| m.median_ms() / reference.median_ms()),
        "peak_memory_ratio_onnxruntime": ort.as_ref().map(|m| m.peak_rss_kb as f64 / reference.peak_rss_kb as f64),
        "peak_memory_ratio_tract": tract.as_ref().map(|m| m.peak_rss_kb as f64 / reference.peak_rss_kb as f64),
    });
    let out = root.join("target").join("bench-local.json");
    if let Err(e) = std::fs::write(&out, json.to_string()) {
        eprintln!("could not write {}: {e}", out.display());
    }
    println!("\n{json}");
}

/// Times Cutout's engine on `backend` in this (child) process.
fn measure_cutout(setup: &Setup, backend: BackendPreference) -> Measurement {
    let family: ModelFamily = setup.family.parse().expect("a model family");
    let engine = LocalEngine::new(SessionOptions {
        backend,
        threads: Some(setup.threads),
        use_gpu: false,
        data_dir: None,
    });
    let model = ResolvedModel::from_file(setup.model.clone(), family);
    let started = Instant::now();
    let session = engine.session(&model).expect("the model loads");
    let load_ms = started.elapsed().as_secs_f64() * 1000.0;
    let runtime = format!("Cutout · {}", session.description());
    let one = || {
        let started = Instant::now();
        let decoded = cutout::imaging::decode::open(&setup.photo, &Default::default())
            .expect("the photo opens");
        let rgb = decoded.image.into_rgb8();
        let mask = engine.cut_out(&model, &rgb).expect("the model runs");
        std::hint::black_box(mask);
        started.elapsed().as_secs_f64() * 1000.0
    };
    one();
    let latencies_ms = (0..setup.runs).map(|_| one()).collect();
    Measurement {
        runtime,
        load_ms,
        latencies_ms,
        peak_rss_kb: peak_rss_kb(),
    }
}

/// Runs one Cutout backend in a child process; `None` (with the reason
/// printed) where that backend cannot run here.
fn run_child(backend: &str, setup: &Setup) -> Option<Measurement> {
    let exe = std::env::current_exe().expect("this benchmark's path");
    let output = Command::new(exe)
        .env(
            CHILD_VAR,
            serde_json::to_string(&(backend, setup)).expect("JSON"),
        )
        .output()
        .expect("the benchmark starts itself");
    if !output.status.success() {
        eprintln!(
            "Cutout on {backend} did not run:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        return None;
    }
    Some(last_json_line(&output.stdout))
}

fn run_reference(python: &str, root: &Path, setup: &Setup) -> Measurement {
    let output = run_checked(
        Command::new(python)
            .arg(root.join("benches/local/reference.py"))
            .arg(&setup.model)
            .arg(&setup.family)
            .arg(&setup.photo)
            .arg(setup.threads.to_string())
            // One more than timed: the Rust side warms up untimed, so the
            // reference's first run is dropped below.
            .arg((setup.runs + 1).to_string()),
        "the Python reference (needs onnxruntime, numpy and Pillow)",
    );
    let mut measured = last_json_line(&output);
    measured.latencies_ms.remove(0);
    measured
}

fn run_checked(command: &mut Command, what: &str) -> Vec<u8> {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{what} did not start: {e}"));
    assert!(
        output.status.success(),
        "{what} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

fn last_json_line(stdout: &[u8]) -> Measurement {
    let text = String::from_utf8_lossy(stdout);
    let line = text.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| panic!("unexpected output `{text}`: {e}"))
}

/// A photo-like JPEG: smooth gradients and a few shapes, so the decoder
/// and the resizes do real work.
fn write_photo(path: &Path) {
    let [width, height] = PHOTO_SIZE;
    let image = image::RgbImage::from_fn(width, height, |x, y| {
        let cx = x as f32 / width as f32 - 0.5;
        let cy = y as f32 / height as f32 - 0.5;
        let inside = cx * cx + cy * cy < 0.08;
        if inside {
            image::Rgb([
                200,
                (120.0 + 80.0 * cx) as u8,
                (60.0 + 100.0 * cy).max(0.0) as u8,
            ])
        } else {
            image::Rgb([(x * 255 / width) as u8, (y * 255 / height) as u8, 180])
        }
    });
    image.save(path).expect("the photo is written");
}

/// The peak resident memory of this process (Linux), else 0.
fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status.lines().find_map(|line| {
                line.strip_prefix("VmHWM:")
                    .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            })
        })
        .unwrap_or(0)
}

fn env_number(name: &str) -> Option<usize> {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
}
