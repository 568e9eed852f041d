//! The window, driven headless through egui_kittest the way a person uses it:
//! drop files, pick a provider, press Start against a fake provider on
//! 127.0.0.1, watch rows reach Done, open the preview, cancel, retry, and
//! see a clear error row. Snapshots of the main states render with Mesa's
//! lavapipe (`mesa-vulkan-drivers`), so CI checks how they look.

#[path = "fakes/mod.rs"]
mod fakes;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cutout::ui::{CutoutApp, Startup};
use egui_kittest::kittest::Queryable;
use egui_kittest::{Harness, SnapshotOptions};

use fakes::Fake;
use fakes::removebg::{FakeRemoveBg, Script};

/// A file as a file manager drops it.
#[derive(Debug)]
struct Dropped(PathBuf);

impl egui::DroppedFile for Dropped {
    fn path(&self) -> &Path {
        &self.0
    }

    fn bytes(&self) -> Result<Vec<u8>, String> {
        std::fs::read(&self.0).map_err(|e| e.to_string())
    }
}

/// A window whose environment holds only `vars` (keys and fake URLs), with
/// its output going to a fresh folder.
struct Window {
    harness: Harness<'static, CutoutApp>,
    dir: WorkDir,
}

/// A folder named after the test, emptied first: paths on screen are the
/// same in every run, so snapshots compare.
struct WorkDir(PathBuf);

impl WorkDir {
    fn new(test: &str) -> WorkDir {
        let dir = std::env::temp_dir().join("cutout-ui-tests").join(test);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        WorkDir(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Window {
    fn open(test: &str, vars: Vec<(&'static str, String)>) -> Window {
        let dir = WorkDir::new(test);
        let mut env: HashMap<String, String> =
            vars.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        env.insert("CUTOUT_POLL_INTERVAL_MS".into(), "20".into());
        env.insert("CUTOUT_RETRY_BASE_MS".into(), "10".into());
        let startup = Startup {
            files: Vec::new(),
            env: Arc::new(move |name: &str| env.get(name).cloned()),
            out_dir: Some(dir.path().join("out")),
        };
        let harness = Harness::builder()
            .with_size([1280.0, 800.0])
            .wgpu()
            .build_eframe(|cc| CutoutApp::new(&cc.egui_ctx, startup).unwrap());
        Window { harness, dir }
    }

    /// Writes product photos (and anything else) into a folder to drop.
    fn folder(&self, names: &[&str]) -> PathBuf {
        let folder = self.dir.path().join("shoot");
        std::fs::create_dir_all(&folder).unwrap();
        for (i, name) in names.iter().enumerate() {
            let path = folder.join(name);
            if name.ends_with(".jpg") {
                fakes::product_shot(320, 240, i as u64 + 1)
                    .save(&path)
                    .unwrap();
            } else {
                std::fs::write(&path, b"not a picture").unwrap();
            }
        }
        folder
    }

    fn drop_paths(&mut self, paths: &[PathBuf]) {
        self.harness.input_mut().dropped_files = paths
            .iter()
            .map(|p| Arc::new(Dropped(p.clone())) as egui::DroppedFileHandle)
            .collect();
        self.harness.step();
    }

    /// Steps the window in real time (the engine works on its own threads)
    /// until `ready`, failing after 15 s with what was on screen.
    fn wait_for(&mut self, what: &str, ready: impl Fn(&Harness<'static, CutoutApp>) -> bool) {
        let started = Instant::now();
        while !ready(&self.harness) {
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "timed out waiting for {what}"
            );
            self.harness.step();
            std::thread::sleep(Duration::from_millis(20));
        }
        self.harness.run_steps(3);
    }

    fn shows(&self, text: &str) -> usize {
        self.harness.query_all_by_label_contains(text).count()
    }

    fn shows_exactly(harness: &Harness<'static, CutoutApp>, label: &str) -> bool {
        harness.query_all_by_label(label).next().is_some()
    }

    fn click(&mut self, label: &str) {
        self.harness.get_by_label(label).click();
        self.harness.run_steps(2);
    }

    /// A snapshot of a state with an animated progress bar, which moves a
    /// few hundred pixels between runs.
    fn snapshot_with_motion(&mut self, name: &str) {
        let options = SnapshotOptions::new()
            .threshold(2.0)
            .max_failed_pixels(3000);
        self.harness.snapshot_options(name, &options);
    }

    fn snapshot(&mut self, name: &str) {
        // Thumbnails and times differ by a few pixels between runs; layout
        // and colour changes do not hide under this threshold.
        let options = SnapshotOptions::new().threshold(2.0).max_failed_pixels(600);
        self.harness.snapshot_options(name, &options);
    }
}

fn removebg(script: Script) -> (FakeRemoveBg, Vec<(&'static str, String)>) {
    let fake = FakeRemoveBg::start(script);
    let env = fake.env();
    (fake, env)
}

#[test]
fn an_empty_window_tells_a_first_time_user_what_to_do() {
    let mut window = Window::open("an_empty_window_tells", Vec::new());
    window.harness.run_steps(3);
    assert_eq!(window.shows("Drop product photos or whole folders here"), 1);
    assert!(window.shows("needs an API key") > 0);
    window.snapshot("empty");
}

#[test]
fn a_dropped_folder_runs_to_done_and_the_preview_offers_the_result() {
    let (fake, env) = removebg(Script::default());
    let mut window = Window::open("a_dropped_folder_runs", env);
    let folder = window.folder(&["bottle.jpg", "mug.jpg", "notes.txt"]);

    window.drop_paths(&[folder]);
    window.wait_for("two queued rows", |h| {
        h.query_all_by_label_contains("Queued").count() >= 2
    });
    assert_eq!(
        window.shows("Skipped 1 file"),
        1,
        "notes.txt is listed once"
    );
    window.snapshot("queued");

    window.click("▶ Start");
    window.wait_for("both rows done", |h| {
        h.query_all_by_label_contains("All 2 done").next().is_some()
    });
    assert!(window.shows("✔ Done") >= 2);
    assert_eq!(fake.submissions(), 2);
    let out = window.dir.path().join("out/shoot");
    let written = walk(window.dir.path());
    assert!(
        out.join("bottle.png").is_file() && out.join("mug.png").is_file(),
        "{written:?}"
    );

    let row = window.harness.query_all_by_label("bottle.jpg").next();
    row.expect("the bottle row").click();
    window.wait_for("the preview", |h| {
        h.query_all_by_label_contains("Save as").next().is_some()
    });
    assert!(window.shows("Copy image") > 0);
    window.snapshot("done_with_preview");
}

#[test]
fn a_refused_key_shows_an_error_row_with_what_to_do_and_retry_runs_it_again() {
    let (fake, mut env) = removebg(Script::default());
    env.retain(|(name, _)| *name != "CUTOUT_REMOVEBG_KEY");
    env.push(("CUTOUT_REMOVEBG_KEY", "wrong-key".to_owned()));
    let mut window = Window::open("a_refused_key_shows", env);
    let folder = window.folder(&["bottle.jpg"]);

    window.drop_paths(&[folder]);
    window.wait_for("a queued row", |h| {
        h.query_all_by_label_contains("Queued").next().is_some()
    });
    window.click("▶ Start");
    window.wait_for("the failed row", |h| Window::shows_exactly(h, "Failed"));
    assert!(window.shows("check your key") > 0);
    assert!(window.shows("Fix the key in Settings") > 0);
    window.snapshot("error");

    window.harness.get_by_label("Retry").click();
    window.wait_for("a second attempt", |_| {
        fake.journal().matching("POST", "/").len() >= 2
    });
    window.wait_for("the failed row again", |h| {
        Window::shows_exactly(h, "Failed")
    });
}

#[test]
fn a_job_in_flight_can_be_cancelled_and_leaves_no_file() {
    let (fake, env) = removebg(Script {
        processing_ms: 20_000,
        ..Script::default()
    });
    let mut window = Window::open("a_job_in_flight", env);
    let folder = window.folder(&["bottle.jpg"]);

    window.drop_paths(&[folder]);
    window.wait_for("a queued row", |h| {
        h.query_all_by_label_contains("Queued").next().is_some()
    });
    window.click("▶ Start");
    window.wait_for("the job in flight", |_| {
        fake.journal().matching("POST", "/").len() == 1
    });
    window.snapshot_with_motion("running");
    window.click("Cancel");
    window.wait_for("the cancelled row", |h| {
        Window::shows_exactly(h, "Cancelled")
    });
    let out = window.dir.path().join("out");
    let left: Vec<_> = walk(&out);
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn a_video_dropped_for_an_image_provider_is_flagged_with_the_provider_that_takes_it() {
    let (_fake, env) = removebg(Script::default());
    let mut window = Window::open("a_video_dropped_for", env);
    let folder = window.dir.path().join("clips");
    std::fs::create_dir_all(&folder).unwrap();
    let clip = folder.join("clip.mp4");
    std::fs::write(&clip, b"not really a video").unwrap();

    window.drop_paths(&[clip]);
    window.wait_for("the flagged row", |h| Window::shows_exactly(h, "Failed"));
    assert!(window.shows("use removebgvideo") > 0);

    // Picking the video provider takes the flagged job along, unstarted.
    window.click("Provider");
    window.click("RemoveBGVideo (needs a key)");
    window.wait_for("the row queued for the video provider", |h| {
        Window::shows_exactly(h, "Queued")
    });
    assert_eq!(window.shows("use removebgvideo"), 0);
    assert!(window.shows("RemoveBGVideo") > 0);
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .flat_map(|e| {
            let path = e.path();
            if path.is_dir() {
                walk(&path)
            } else {
                vec![path]
            }
        })
        .collect()
}

#[test]
fn enter_presses_the_focused_button_rather_than_starting_the_batch() {
    let (fake, env) = removebg(Script::default());
    let mut window = Window::open("enter_on_a_focused", env);
    let folder = window.folder(&["bottle.jpg"]);
    window.drop_paths(&[folder]);
    window.wait_for("a queued row", |h| {
        h.query_all_by_label_contains("Queued").next().is_some()
    });

    window.harness.get_by_label("⚙ Settings").focus();
    window.harness.run_steps(2);
    window.harness.key_press(egui::Key::Enter);
    window.harness.run_steps(5);
    std::thread::sleep(Duration::from_millis(200));
    window.harness.run_steps(3);

    assert!(window.shows("API keys") > 0, "Settings opened");
    assert_eq!(fake.submissions(), 0, "nothing was started");
    assert!(Window::shows_exactly(&window.harness, "Queued"));
}
