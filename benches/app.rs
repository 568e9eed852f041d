//! Cutout as a whole, against yardsticks measured in the same run: the
//! batch pipeline against the least a tokio + reqwest program does for the
//! same cut-outs, concurrency against the ideal wall time, memory for 100
//! and 1,000 twelve-megapixel photos, the queue's frame time with 5,000 jobs
//! streaming in, and the window's start-up against a bare egui window.
//!
//! Run with `cargo bench --bench app` (a release build of `cutout` and of
//! this bench); the start-up row needs a display (`xvfb-run` will do). It
//! prints a table, writes every figure as JSON to `target/bench/app.json`
//! (or `CUTOUT_BENCH_JSON`) for comparing versions, and exits 1 if a figure
//! misses its target. `CUTOUT_BENCH_ONLY=pipeline,memory` picks rows;
//! `CUTOUT_BENCH_RUNS` sets the timed runs of the pipeline and start-up rows
//! (default 3 and 5). Inputs are generated into a temporary folder; nothing
//! is downloaded and nothing leaves 127.0.0.1.

#[path = "../tests/fakes/mod.rs"]
mod fakes;

#[path = "app/fake.rs"]
mod fake;
#[path = "app/reference.rs"]
mod reference;
#[path = "app/window.rs"]
mod window;

use std::fmt::Write as _;
use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{Value, json};

use fake::{Behaviour, FakeRemoveBg};

/// Images through the pipeline row, and jobs in the window's queue.
const PIPELINE_IMAGES: usize = 1000;
const QUEUE_JOBS: usize = 5000;

/// The concurrency row: jobs, the fake's time per job and the jobs it
/// allows in flight (Cutout is set to the same).
const CONCURRENCY_JOBS: usize = 200;
const CONCURRENCY_JOB_TIME: Duration = Duration::from_millis(500);
const CONCURRENCY_LIMIT: usize = 8;

/// Jobs in flight in the pipeline row, for Cutout and the reference alike.
const PIPELINE_CONCURRENCY: usize = 8;

/// A twelve-megapixel camera's 4:3 frame, for the memory row.
const BIG_PHOTO: (u32, u32) = (4000, 3000);

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--bench"))
        .collect();
    match args.first().map(String::as_str) {
        Some("reference-client") => return reference::main(&args[1..]),
        Some("bare-window") => return window::bare_window_main(),
        _ => {}
    }
    let only = std::env::var("CUTOUT_BENCH_ONLY").ok();
    let wanted = |row: &str| {
        only.as_deref()
            .is_none_or(|list| list.split(',').any(|r| r.trim() == row))
    };
    let runs = std::env::var("CUTOUT_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|&n| n > 0);

    let mut report = Report::default();
    if wanted("pipeline") {
        pipeline(&mut report, runs.unwrap_or(3), PRODUCT_PHOTO, Some(1.15));
        pipeline(&mut report, runs.unwrap_or(3), SMALL_PHOTO, None);
    }
    if wanted("concurrency") {
        concurrency(&mut report);
    }
    if wanted("queue") {
        queue(&mut report);
    }
    if wanted("startup") {
        startup(&mut report, runs.unwrap_or(5));
    }
    // Last: it writes gigabytes, whose flushing would disturb what follows.
    if wanted("memory") {
        memory(&mut report);
    }
    println!("\n{}", report.table());
    let path = std::env::var_os("CUTOUT_BENCH_JSON").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench/app.json"),
        PathBuf::from,
    );
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("the JSON's folder");
    }
    let json = report.json();
    std::fs::write(&path, format!("{json:#}\n")).expect("write the JSON");
    println!("Figures as JSON: {}", path.display());
    if report.rows.iter().any(|row| row.met == Some(false)) {
        std::process::exit(1);
    }
}

// ---------------------------------------------------------------------------
// Rows
// ---------------------------------------------------------------------------

/// 1,000 photos of `size` through a remove.bg that answers at once with
/// their full-size cut-out: Cutout's wall time over the reference client's,
/// the two alternating so that neither gets a warmer machine. `target` is
/// the ratio to stay under, if this size has one: tiny photos show the
/// per-job cost at its most exposed, as information.
fn pipeline(report: &mut Report, runs: usize, size: (u32, u32), target: Option<f64>) {
    let shot = fakes::product_shot(size.0, size.1, 1);
    let photo = fakes::jpeg(&shot);
    let cutout = fakes::png(&fakes::cut_out(&shot));
    println!(
        "pipeline: {PIPELINE_IMAGES} photos of {} × {} ({} KB, cut-outs of {} KB), \
         {PIPELINE_CONCURRENCY} in flight, {runs} runs each after a warm-up",
        size.0,
        size.1,
        photo.len() / 1000,
        cutout.len() / 1000,
    );
    let fake = FakeRemoveBg::start(Behaviour {
        result: Bytes::from(cutout),
        result_size: size,
        processing: Duration::ZERO,
        limit: usize::MAX,
    });
    let work = scratch("pipeline");
    let inputs = work.join("in");
    std::fs::create_dir_all(&inputs).expect("the inputs folder");
    for i in 0..PIPELINE_IMAGES {
        std::fs::write(inputs.join(format!("item-{i:04}.jpg")), &photo).expect("write a photo");
    }
    let mut cutout_secs = Vec::new();
    let mut reference_secs = Vec::new();
    let mut minimal_secs = Vec::new();
    for run in 0..=runs {
        let out = work.join("out-reference");
        let reference = |durable| {
            settle();
            let measured = time(reference_client(&fake, &inputs, &out, durable));
            let saved = count_files(&out);
            assert_eq!(saved, PIPELINE_IMAGES, "the reference saved every cut-out");
            let _ = std::fs::remove_dir_all(&out);
            measured
        };
        let (minimal, _) = reference(false);
        let (took, reference_usage) = reference(true);
        let out = work.join("out-cutout");
        settle();
        let batch = CutoutRun::new(&work, &fake, &inputs, &out)
            .concurrency(PIPELINE_CONCURRENCY)
            .run();
        batch.assert_all_done(PIPELINE_IMAGES, &out);
        let _ = std::fs::remove_dir_all(&out);
        if run > 0 {
            minimal_secs.push(minimal.as_secs_f64());
            reference_secs.push(took.as_secs_f64());
            cutout_secs.push(batch.wall.as_secs_f64());
        }
        println!(
            "  run {run}{}: reference saving without fsync {:.2} s, reference {:.2} s{}, \
             Cutout {:.2} s{}",
            if run == 0 { " (warm-up)" } else { "" },
            minimal.as_secs_f64(),
            took.as_secs_f64(),
            reference_usage.cpu_text(),
            batch.wall.as_secs_f64(),
            batch.usage.cpu_text(),
        );
    }
    let cutout = median(&cutout_secs);
    let reference = median(&reference_secs);
    let minimal = median(&minimal_secs);
    let ratio = cutout / reference;
    report.add(Row {
        id: if target.is_some() {
            "pipeline"
        } else {
            "pipeline_small"
        },
        what: format!(
            "{PIPELINE_IMAGES} photos of {} × {}, instant fake, {PIPELINE_CONCURRENCY} in flight",
            size.0, size.1
        ),
        figure: Figure::Secs(cutout),
        reference: format!(
            "tokio + reqwest client, saving the same way: {reference:.2} s \
             (without fsync: {minimal:.2} s, Cutout {:.2}× that)",
            cutout / minimal
        ),
        ratio,
        target: target.map_or_else(|| "none (worst case)".to_owned(), |t| format!("≤ {t:.2}×")),
        met: target.map(|t| ratio <= t),
        extra: json!({
            "photo_px": [size.0, size.1],
            "cutout_secs": cutout_secs,
            "reference_secs": reference_secs,
            "reference_without_fsync_secs": minimal_secs,
            "ratio_without_fsync": cutout / minimal,
        }),
    });
}

/// 200 jobs of 500 ms each with 8 allowed in flight: the ideal is
/// 200 / 8 × 0.5 s, and a job over the limit would be refused (and show).
fn concurrency(report: &mut Report) {
    let fake = FakeRemoveBg::start(Behaviour {
        result: Bytes::from(small_cutout_png()),
        result_size: SMALL_PHOTO,
        processing: CONCURRENCY_JOB_TIME,
        limit: CONCURRENCY_LIMIT,
    });
    let work = scratch("concurrency");
    let inputs = work.join("in");
    std::fs::create_dir_all(&inputs).expect("the inputs folder");
    let photo = small_photo_jpeg();
    for i in 0..CONCURRENCY_JOBS {
        std::fs::write(inputs.join(format!("item-{i:03}.jpg")), &photo).expect("write a photo");
    }
    let ideal =
        CONCURRENCY_JOBS as f64 / CONCURRENCY_LIMIT as f64 * CONCURRENCY_JOB_TIME.as_secs_f64();
    println!(
        "concurrency: {CONCURRENCY_JOBS} jobs × {} ms, {CONCURRENCY_LIMIT} allowed in flight \
         (ideal {ideal:.2} s)",
        CONCURRENCY_JOB_TIME.as_millis()
    );
    let out = work.join("out");
    settle();
    let batch = CutoutRun::new(&work, &fake, &inputs, &out)
        .concurrency(CONCURRENCY_LIMIT)
        .run();
    batch.assert_all_done(CONCURRENCY_JOBS, &out);
    assert_eq!(fake.answered(), CONCURRENCY_JOBS, "each job sent once");
    let wall = batch.wall.as_secs_f64();
    let ratio = wall / ideal;
    println!(
        "  Cutout {wall:.2} s, {} at most in flight, {} refused for exceeding the limit",
        fake.most_in_flight(),
        fake.over_limit()
    );
    report.add(Row {
        id: "concurrency",
        what: format!(
            "{CONCURRENCY_JOBS} jobs × {} ms, {CONCURRENCY_LIMIT} in flight",
            CONCURRENCY_JOB_TIME.as_millis()
        ),
        figure: Figure::Secs(wall),
        reference: format!("ideal 200/{CONCURRENCY_LIMIT} × 0.5 s = {ideal:.2} s"),
        ratio,
        target: "≤ 1.10×".into(),
        met: Some(ratio <= 1.10 && fake.over_limit() == 0),
        extra: json!({
            "ideal_secs": ideal,
            "most_in_flight": fake.most_in_flight(),
            "refused_over_limit": fake.over_limit(),
        }),
    });
}

/// Peak memory of `cutout batch` for 100 and for 1,000 twelve-megapixel
/// photos (full-size cut-outs back): flat means the batch streams.
fn memory(report: &mut Report) {
    let (width, height) = BIG_PHOTO;
    println!("memory: making a {width} × {height} photo and its cut-out…");
    let shot = fakes::product_shot(width, height, 3);
    let photo = fakes::jpeg(&shot);
    let cutout = fakes::png(&fakes::cut_out(&shot));
    println!(
        "  photo {:.1} MB, cut-out {:.1} MB",
        photo.len() as f64 / 1e6,
        cutout.len() as f64 / 1e6
    );
    let fake = FakeRemoveBg::start(Behaviour {
        result: Bytes::from(cutout),
        result_size: BIG_PHOTO,
        processing: Duration::ZERO,
        limit: usize::MAX,
    });
    let work = scratch("memory");
    let original = work.join("photo.jpg");
    std::fs::write(&original, &photo).expect("write the photo");
    let mut peaks = Vec::new();
    for count in [100, 1000] {
        let inputs = work.join(format!("in-{count}"));
        std::fs::create_dir_all(&inputs).expect("the inputs folder");
        for i in 0..count {
            // Links, not copies: the same bytes under 1,000 names cost no
            // disk, and Cutout reads each as a photo of its own.
            std::fs::hard_link(&original, inputs.join(format!("item-{i:04}.jpg")))
                .expect("link a photo");
        }
        let out = work.join(format!("out-{count}"));
        settle();
        let batch = CutoutRun::new(&work, &fake, &inputs, &out).run();
        batch.assert_all_done(count, &out);
        let _ = std::fs::remove_dir_all(&out);
        let _ = std::fs::remove_dir_all(&inputs);
        let peak_mb = batch.usage.peak_rss_kb.expect("peak memory (Linux)") as f64 / 1024.0;
        println!(
            "  {count} photos: peak {peak_mb:.0} MB in {:.1} s",
            batch.wall.as_secs_f64()
        );
        peaks.push(peak_mb);
    }
    let ratio = peaks[1] / peaks[0];
    report.add(Row {
        id: "memory",
        what: format!(
            "peak RSS, 1,000 photos of {} MP",
            width * height / 1_000_000
        ),
        figure: Figure::Megabytes(peaks[1]),
        reference: format!("100 photos: {:.0} MB", peaks[0]),
        ratio,
        target: "≤ 1.20×, < 400 MB".into(),
        met: Some(ratio <= 1.20 && peaks[1] < 400.0),
        extra: json!({"peak_mb_100": peaks[0], "peak_mb_1000": peaks[1]}),
    });
}

/// The window's queue with 5,000 jobs: frame times while the jobs' events
/// stream in, against the same window idle.
fn queue(report: &mut Report) {
    let fake = FakeRemoveBg::start(Behaviour {
        result: Bytes::from(small_cutout_png()),
        result_size: SMALL_PHOTO,
        processing: Duration::from_millis(5),
        limit: usize::MAX,
    });
    let work = scratch("queue");
    println!("queue: {QUEUE_JOBS} jobs dropped on the window…");
    settle();
    let figures = window::queue_frames(
        &work,
        QUEUE_JOBS,
        fake.base_url(),
        fake::KEY,
        Duration::from_secs(20),
    );
    let p99 = figures.streaming.percentile(99.0);
    let idle_p99 = figures.idle.percentile(99.0);
    println!(
        "  idle: p50 {:.2} ms, p99 {idle_p99:.2} ms over {} frames; streaming: p50 {:.2} ms, \
         p99 {p99:.2} ms, max {:.2} ms over {} frames, {} jobs done meanwhile",
        figures.idle.percentile(50.0),
        figures.idle.count(),
        figures.streaming.percentile(50.0),
        figures.streaming.percentile(100.0),
        figures.streaming.count(),
        figures.finished_while_measured,
    );
    report.add(Row {
        id: "queue",
        what: format!("frame p99, {QUEUE_JOBS} jobs, events streaming"),
        figure: Figure::Millis(p99),
        reference: format!("same queue idle: p99 {idle_p99:.2} ms"),
        ratio: p99 / idle_p99,
        target: "p99 < 8 ms".into(),
        met: Some(p99 < 8.0),
        extra: json!({
            "streaming_p50_ms": figures.streaming.percentile(50.0),
            "streaming_p99_ms": p99,
            "streaming_max_ms": figures.streaming.percentile(100.0),
            "streaming_frames": figures.streaming.count(),
            "idle_p50_ms": figures.idle.percentile(50.0),
            "idle_p99_ms": idle_p99,
            "jobs_done_while_measured": figures.finished_while_measured,
        }),
    });
}

/// Time to the first frame on screen: Cutout's window (a returning user's,
/// with settings and an empty history) against a bare egui window.
fn startup(report: &mut Report, runs: usize) {
    if !window::has_display() {
        println!("startup: skipped, no display (run under xvfb-run)");
        report.add(Row {
            id: "startup",
            what: "time to first frame".into(),
            figure: Figure::Skipped,
            reference: "no display".into(),
            ratio: f64::NAN,
            target: "< 300 ms".into(),
            met: None,
            extra: Value::Null,
        });
        return;
    }
    let work = scratch("startup");
    let config = work.join("config");
    std::fs::create_dir_all(&config).expect("the settings folder");
    std::fs::write(
        config.join("settings.toml"),
        "[appearance]\nwelcome_seen = true\n",
    )
    .expect("write the settings");
    let cutout_window = || {
        let mut command = Command::new(env!("CARGO_BIN_EXE_cutout"));
        command
            .env("HOME", &work)
            .env("CUTOUT_CONFIG_DIR", &config)
            .env("CUTOUT_DATA_DIR", work.join("data"))
            .env("XDG_STATE_HOME", work.join("state"));
        command
    };
    let bare_window = || {
        let mut command = Command::new(std::env::current_exe().expect("this bench"));
        command.arg("bare-window");
        command
    };
    println!("startup: time to first frame, {runs} runs each after a warm-up");
    let mut cutout_ms = Vec::new();
    let mut bare_ms = Vec::new();
    for run in 0..=runs {
        settle();
        let bare = window::first_frame_ms(bare_window());
        let cutout = window::first_frame_ms(cutout_window());
        println!("  run {run}: bare egui {bare:.0} ms, Cutout {cutout:.0} ms");
        if run > 0 {
            bare_ms.push(bare);
            cutout_ms.push(cutout);
        }
    }
    let cutout = median(&cutout_ms);
    let bare = median(&bare_ms);
    report.add(Row {
        id: "startup",
        what: "time to first frame".into(),
        figure: Figure::Millis(cutout),
        reference: format!("bare egui window: {bare:.0} ms"),
        ratio: cutout / bare,
        target: "< 300 ms".into(),
        met: Some(cutout < 300.0),
        extra: json!({"cutout_ms": cutout_ms, "bare_window_ms": bare_ms}),
    });
}

// ---------------------------------------------------------------------------
// Running Cutout and the reference
// ---------------------------------------------------------------------------

/// One `cutout batch` against the fake, in a home of its own.
struct CutoutRun {
    command: Command,
}

/// What a `cutout batch` run came to.
struct Finished {
    wall: Duration,
    usage: Usage,
    summary: Value,
}

impl CutoutRun {
    fn new(work: &Path, fake: &FakeRemoveBg, inputs: &Path, out: &Path) -> CutoutRun {
        let home = work.join("home");
        let mut command = Command::new(env!("CARGO_BIN_EXE_cutout"));
        command
            .args(["batch", "--json", "--provider", "removebg", "--out"])
            .arg(out)
            .arg(inputs)
            .env_clear()
            .env("HOME", &home)
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("XDG_DATA_HOME", home.join(".local/share"))
            .env("XDG_STATE_HOME", home.join(".local/state"))
            .env("XDG_CACHE_HOME", home.join(".cache"))
            .env("CUTOUT_REMOVEBG_URL", fake.base_url())
            .env("CUTOUT_REMOVEBG_KEY", fake::KEY)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(path) = std::env::var_os("PATH") {
            command.env("PATH", path);
        }
        CutoutRun { command }
    }

    fn concurrency(mut self, jobs: usize) -> CutoutRun {
        self.command.args(["--concurrency", &jobs.to_string()]);
        self
    }

    /// Runs to the end, reading its events as they come (as a script or the
    /// window would), and keeps the summary.
    fn run(mut self) -> Finished {
        let started = Instant::now();
        let mut child = self.command.spawn().expect("start cutout");
        let stdout = child.stdout.take().expect("cutout's output");
        let reader = std::thread::spawn(move || {
            let mut summary = Value::Null;
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.contains("\"summary\"")
                    && let Ok(event) = serde_json::from_str::<Value>(&line)
                {
                    summary = event;
                }
            }
            summary
        });
        let (status, usage) = wait_with_usage(child);
        let wall = started.elapsed();
        let summary = reader.join().expect("the event reader");
        assert!(
            status.success(),
            "cutout batch failed ({status}); summary: {summary}"
        );
        Finished {
            wall,
            usage,
            summary,
        }
    }
}

impl Finished {
    fn assert_all_done(&self, count: usize, out: &Path) {
        assert_eq!(
            self.summary["done"].as_u64(),
            Some(count as u64),
            "every job done: {}",
            self.summary
        );
        assert_eq!(
            count_files(out),
            count,
            "one cut-out per photo in {}",
            out.display()
        );
    }
}

/// What a finished process used, where the platform says.
#[derive(Default)]
struct Usage {
    peak_rss_kb: Option<u64>,
    /// User plus system time, all threads.
    cpu: Option<Duration>,
}

impl Usage {
    fn cpu_text(&self) -> String {
        self.cpu.map_or_else(String::new, |cpu| {
            format!(" ({:.2} s CPU)", cpu.as_secs_f64())
        })
    }
}

/// Waits for `child` and reads its peak resident memory and processor time
/// from the kernel's accounting of it (`wait4`), which sees every
/// allocation, even one that lived a millisecond.
#[cfg(target_os = "linux")]
fn wait_with_usage(child: std::process::Child) -> (std::process::ExitStatus, Usage) {
    use std::os::unix::process::ExitStatusExt as _;
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: `rusage` is plain data the kernel fills in; the pid is our own
    // child, reaped here exactly once (`child` is dropped unwaited).
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(reaped, pid, "wait for the child process");
    drop(child);
    let seconds = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    (
        std::process::ExitStatus::from_raw(status),
        Usage {
            // Linux reports kilobytes.
            peak_rss_kb: Some(usage.ru_maxrss as u64),
            cpu: Some(seconds(usage.ru_utime) + seconds(usage.ru_stime)),
        },
    )
}

#[cfg(not(target_os = "linux"))]
fn wait_with_usage(mut child: std::process::Child) -> (std::process::ExitStatus, Usage) {
    (
        child.wait().expect("wait for the child process"),
        Usage::default(),
    )
}

/// The reference client on the same inputs, as its own process, with
/// [`PIPELINE_CONCURRENCY`] in flight; `durable` saves as Cutout must.
fn reference_client(fake: &FakeRemoveBg, inputs: &Path, out: &Path, durable: bool) -> Command {
    let mut command = Command::new(std::env::current_exe().expect("this bench"));
    command
        .arg("reference-client")
        .args(["--url", fake.base_url(), "--key", fake::KEY])
        .args(["--concurrency", &PIPELINE_CONCURRENCY.to_string()])
        .arg("--out")
        .arg(out)
        .arg("--inputs")
        .arg(inputs)
        .stdout(Stdio::null());
    if durable {
        command.arg("--durable");
    }
    command
}

fn time(mut command: Command) -> (Duration, Usage) {
    let started = Instant::now();
    let child = command.spawn().expect("start the reference client");
    let (status, usage) = wait_with_usage(child);
    assert!(status.success(), "the reference client failed ({status})");
    (started.elapsed(), usage)
}

// ---------------------------------------------------------------------------
// Inputs
// ---------------------------------------------------------------------------

/// A shop's product photo, as the pipeline row sends them.
const PRODUCT_PHOTO: (u32, u32) = (1600, 1200);

/// Thumbnails: the concurrency and queue rows' photos, and the pipeline's
/// worst case, where the client's own work per job is all there is.
const SMALL_PHOTO: (u32, u32) = (320, 240);

fn small_photo_jpeg() -> Vec<u8> {
    fakes::jpeg(&fakes::product_shot(SMALL_PHOTO.0, SMALL_PHOTO.1, 1))
}

fn small_cutout_png() -> Vec<u8> {
    let shot = fakes::product_shot(SMALL_PHOTO.0, SMALL_PHOTO.1, 1);
    fakes::png(&fakes::cut_out(&shot))
}

/// Lets the disk finish writing what earlier runs left in the page cache, so
/// that each measurement starts on a quiet machine.
fn settle() {
    let _ = Command::new("sync").status();
}

/// A fresh folder for one row, under the system's temporary folder, removed
/// when the bench starts the row again.
fn scratch(row: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cutout-bench-{row}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch folder");
    dir
}

/// Files under `dir`, sub-folders included (a folder input's tree is kept).
fn count_files(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .flatten()
            .map(|e| match e.file_type() {
                Ok(t) if t.is_dir() => count_files(&e.path()),
                Ok(t) if t.is_file() => 1,
                _ => 0,
            })
            .sum()
    })
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    if sorted.len().is_multiple_of(2) {
        (sorted[middle - 1] + sorted[middle]) / 2.0
    } else {
        sorted[middle]
    }
}

// ---------------------------------------------------------------------------
// The report
// ---------------------------------------------------------------------------

#[derive(Default)]
struct Report {
    rows: Vec<Row>,
}

struct Row {
    id: &'static str,
    what: String,
    figure: Figure,
    reference: String,
    /// The figure over the reference.
    ratio: f64,
    target: String,
    /// `None` when the row could not be measured here.
    met: Option<bool>,
    extra: Value,
}

enum Figure {
    Secs(f64),
    Millis(f64),
    Megabytes(f64),
    Skipped,
}

impl Figure {
    fn text(&self) -> String {
        match self {
            Figure::Secs(s) => format!("{s:.2} s"),
            Figure::Millis(ms) => format!("{ms:.1} ms"),
            Figure::Megabytes(mb) => format!("{mb:.0} MB"),
            Figure::Skipped => "–".to_owned(),
        }
    }

    fn json(&self) -> Value {
        match self {
            Figure::Secs(s) => json!({"secs": s}),
            Figure::Millis(ms) => json!({"ms": ms}),
            Figure::Megabytes(mb) => json!({"mb": mb}),
            Figure::Skipped => Value::Null,
        }
    }
}

impl Report {
    fn add(&mut self, row: Row) {
        self.rows.push(row);
    }

    /// A Markdown table, as the README keeps it.
    fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "| benchmark | Cutout | reference (same run) | ratio | target | met |"
        );
        let _ = writeln!(out, "|---|---:|---|---:|---|---|");
        for row in &self.rows {
            let ratio = if row.ratio.is_finite() {
                format!("{:.2}×", row.ratio)
            } else {
                "–".to_owned()
            };
            let met = match (row.met, &row.figure) {
                (Some(true), _) => "yes",
                (Some(false), _) => "**no**",
                (None, Figure::Skipped) => "not measured",
                (None, _) => "–",
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {ratio} | {} | {met} |",
                row.what,
                row.figure.text(),
                row.reference,
                row.target
            );
        }
        out
    }

    fn json(&self) -> Value {
        let rows: Vec<Value> = self
            .rows
            .iter()
            .map(|row| {
                json!({
                    "id": row.id,
                    "what": row.what,
                    "figure": row.figure.json(),
                    "reference": row.reference,
                    "ratio": row.ratio.is_finite().then_some(row.ratio),
                    "target": row.target,
                    "met": row.met,
                    "details": row.extra,
                })
            })
            .collect();
        json!({
            "version": env!("CARGO_PKG_VERSION"),
            "cores": std::thread::available_parallelism().map_or(0, |n| n.get()),
            "rows": rows,
        })
    }
}
