//! The window's figures: how long a frame of the queue takes with thousands
//! of jobs while their events stream in, and how long the window takes to
//! show its first frame.

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cutout::ui::{CutoutApp, FIRST_FRAME_LINE, FIRST_FRAME_PROBE_VAR, FirstFrameProbe, Startup};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;

/// A display refreshes about every 16 ms; the window is stepped at that pace
/// so that events pile up between frames as they do for a person watching.
const FRAME_PACE: Duration = Duration::from_millis(16);

/// Frame times of one stretch, in milliseconds, sorted.
pub struct FrameTimes(Vec<f64>);

impl FrameTimes {
    /// The `p`-th percentile (0–100), nearest rank.
    pub fn percentile(&self, p: f64) -> f64 {
        let rank = ((p / 100.0) * self.0.len() as f64).ceil() as usize;
        self.0[rank.clamp(1, self.0.len()) - 1]
    }

    /// Frames measured.
    pub fn count(&self) -> usize {
        self.0.len()
    }
}

/// What the queue benchmark measured.
pub struct QueueFigures {
    /// The queue filled and waiting for Start: nothing streams in.
    pub idle: FrameTimes,
    /// While jobs run and their events arrive.
    pub streaming: FrameTimes,
    /// Jobs finished while `streaming` was measured.
    pub finished_while_measured: usize,
}

/// Drops a folder of `jobs` photos on the window, measures frames with the
/// queue full and idle, presses Start against the fake at `fake_url`, and
/// measures frames while the jobs run (at most `stream_for`).
///
/// A frame is one `Harness::step`: the app's logic (draining engine events,
/// at most its 4 ms budget), layout, drawing commands and the accessibility
/// tree, without the GPU upload, which the real window does on another
/// driver thread.
pub fn queue_frames(
    work: &Path,
    jobs: usize,
    fake_url: &str,
    key: &str,
    stream_for: Duration,
) -> QueueFigures {
    let shoot = work.join("shoot");
    std::fs::create_dir_all(&shoot).expect("the photo folder");
    let photo = super::small_photo_jpeg();
    for i in 0..jobs {
        std::fs::write(shoot.join(format!("item-{i:05}.jpg")), &photo).expect("write a photo");
    }
    let env: HashMap<String, String> = [
        ("CUTOUT_REMOVEBG_URL", fake_url.to_owned()),
        ("CUTOUT_REMOVEBG_KEY", key.to_owned()),
        (
            "CUTOUT_CONFIG_DIR",
            work.join("config").display().to_string(),
        ),
        ("CUTOUT_DATA_DIR", work.join("data").display().to_string()),
        (
            "CUTOUT_KEYCHAIN_SERVICE",
            format!("cutout-bench-{}", std::process::id()),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let startup = Startup {
        files: Vec::new(),
        env: Arc::new(move |name: &str| env.get(name).cloned()),
        out_dir: Some(work.join("out")),
        offer_welcome: false,
    };
    let mut harness = Harness::builder()
        .with_size([1280.0, 800.0])
        .build_eframe(|cc| CutoutApp::new(&cc.egui_ctx, startup).expect("the window opens"));

    harness.input_mut().dropped_files = vec![Arc::new(Dropped(shoot)) as egui::DroppedFileHandle];
    let waiting = format!("{jobs} files waiting");
    step_until(&mut harness, Duration::from_secs(120), |h| {
        h.query_all_by_label_contains(&waiting).next().is_some()
    })
    .unwrap_or_else(|| panic!("the queue never showed “{waiting}”"));
    // Thumbnails of the rows on screen settle.
    paced_frames(&mut harness, 60, |_| false);
    let idle = paced_frames(&mut harness, 300, |_| false);

    harness.get_by_label("▶ Start").click();
    let all_done = format!("All {jobs} done");
    let started = Instant::now();
    let mut streaming = Vec::new();
    while started.elapsed() < stream_for {
        let frames = paced_frames(&mut harness, 30, |h| {
            h.query_all_by_label_contains(&all_done).next().is_some()
        });
        let ended = frames.count() < 30;
        streaming.extend(frames.0);
        if ended {
            break;
        }
    }
    streaming.sort_by(f64::total_cmp);
    let finished = super::count_files(&work.join("out"));
    QueueFigures {
        idle,
        streaming: FrameTimes(streaming),
        finished_while_measured: finished,
    }
}

/// Steps `count` frames at the display's pace, stopping early once `done`.
fn paced_frames(
    harness: &mut Harness<'static, CutoutApp>,
    count: usize,
    done: impl Fn(&Harness<'static, CutoutApp>) -> bool,
) -> FrameTimes {
    let mut times = Vec::with_capacity(count);
    for _ in 0..count {
        let started = Instant::now();
        harness.step();
        let took = started.elapsed();
        times.push(took.as_secs_f64() * 1000.0);
        if done(harness) {
            break;
        }
        std::thread::sleep(FRAME_PACE.saturating_sub(took));
    }
    times.sort_by(f64::total_cmp);
    FrameTimes(times)
}

fn step_until(
    harness: &mut Harness<'static, CutoutApp>,
    limit: Duration,
    ready: impl Fn(&Harness<'static, CutoutApp>) -> bool,
) -> Option<()> {
    let started = Instant::now();
    while !ready(harness) {
        if started.elapsed() > limit {
            return None;
        }
        harness.step();
        std::thread::sleep(FRAME_PACE);
    }
    Some(())
}

/// A folder as a file manager drops it.
#[derive(Debug)]
struct Dropped(PathBuf);

impl egui::DroppedFile for Dropped {
    fn path(&self) -> &Path {
        &self.0
    }

    fn bytes(&self) -> Result<Vec<u8>, String> {
        Err("a folder".to_owned())
    }
}

/// Whether a window can open here.
pub fn has_display() -> bool {
    std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some()
}

/// Milliseconds from spawning `command` to its first frame on screen, as
/// [`FirstFrameProbe`] reports it.
pub fn first_frame_ms(mut command: Command) -> f64 {
    command
        .env(FIRST_FRAME_PROBE_VAR, "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let started = Instant::now();
    let mut child = command.spawn().expect("start the window");
    let stdout = child.stdout.take().expect("the window's output");
    let mut shown = None;
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        if line == FIRST_FRAME_LINE {
            shown = Some(started.elapsed());
            break;
        }
    }
    let status = child.wait().expect("the window closes");
    let shown = shown.unwrap_or_else(|| panic!("the window never showed a frame ({status})"));
    shown.as_secs_f64() * 1000.0
}

/// `app bare-window`: the least an egui window does, probed like Cutout's,
/// as the reference for start-up time.
pub fn bare_window_main() {
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("bare")
            .with_inner_size([1280.0, 820.0]),
        ..Default::default()
    };
    eframe::run_native(
        "bare",
        options,
        Box::new(|_| Ok(Box::new(FirstFrameProbe::new(Bare)))),
    )
    .expect("the bare window runs");
}

struct Bare;

impl eframe::App for Bare {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        egui::CentralPanel::default().show(ui, |ui| {
            ui.label("A bare egui window");
        });
    }
}
