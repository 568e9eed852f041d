//! The window, driven headless through egui_kittest the way a person uses it:
//! drop files, pick a provider, press Start against a fake provider on
//! 127.0.0.1, watch rows reach Done, open the preview, cancel, retry, and
//! see a clear error row, find a past job in the History and run it again,
//! and reopen to find last session's unfinished jobs back in the queue.
//! Snapshots of the main states render with Mesa's lavapipe
//! (`mesa-vulkan-drivers`), so CI checks how they look. Every window keeps
//! its settings and job history in its own folder, never the user's.

#[path = "fakes/mod.rs"]
mod fakes;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cutout::jobs::store::JobStore;
use cutout::jobs::{InputKind, Job, JobId, JobInput, JobSettings, JobState, OutputSpec};
use cutout::local::catalogue::ModelFamily;
use cutout::local::models::ModelStore;
use cutout::providers::ProviderId;
use cutout::secrets::{Keychain, KeychainStatus};
use cutout::ui::{CutoutApp, Startup};
use egui_kittest::kittest::{NodeT, Queryable};
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
        Window::open_after(test, vars, |_| {})
    }

    /// Opens the window after `earlier` has left things in its folder (a
    /// job history from a previous session).
    fn open_after(
        test: &str,
        vars: Vec<(&'static str, String)>,
        earlier: impl FnOnce(&Path),
    ) -> Window {
        Window::start(test, vars, earlier, false)
    }

    /// Opens the window as Cutout starts for a real user: with the
    /// first-run welcome when the settings have not recorded it as seen.
    fn open_first_run(
        test: &str,
        vars: Vec<(&'static str, String)>,
        earlier: impl FnOnce(&Path),
    ) -> Window {
        Window::start(test, vars, earlier, true)
    }

    fn start(
        test: &str,
        vars: Vec<(&'static str, String)>,
        earlier: impl FnOnce(&Path),
        offer_welcome: bool,
    ) -> Window {
        let dir = WorkDir::new(test);
        earlier(dir.path());
        let mut env: HashMap<String, String> =
            vars.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        env.insert("CUTOUT_POLL_INTERVAL_MS".into(), "20".into());
        env.insert("CUTOUT_RETRY_BASE_MS".into(), "10".into());
        env.insert("CUTOUT_CONFIG_DIR".into(), config_dir(dir.path()));
        env.insert("CUTOUT_DATA_DIR".into(), data_dir(dir.path()));
        env.entry("CUTOUT_KEYCHAIN_SERVICE".into())
            .or_insert_with(|| keychain_service(test));
        // A test that writes its own settings file gets the output folder
        // it names, rather than the test folder's `out`.
        let own_settings = Path::new(&config_dir(dir.path()))
            .join("settings.toml")
            .exists();
        let startup = Startup {
            files: Vec::new(),
            env: Arc::new(move |name: &str| env.get(name).cloned()),
            out_dir: (!own_settings).then(|| dir.path().join("out")),
            offer_welcome,
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
            if started.elapsed() > Duration::from_secs(15) {
                let shown: Vec<String> = self
                    .harness
                    .query_all_by(|node| node.label().is_some() || node.value().is_some())
                    .map(|node| {
                        let node = node.accesskit_node();
                        let value = node.value().unwrap_or_default();
                        format!("{} {value}", node.label().unwrap_or_default())
                    })
                    .collect();
                panic!("timed out waiting for {what}; on screen: {shown:#?}");
            }
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

/// Where a test window keeps its settings.
fn config_dir(work: &Path) -> String {
    work.join("config").display().to_string()
}

/// Where a test window keeps its job history.
fn data_dir(work: &Path) -> String {
    work.join("data").display().to_string()
}

/// A keychain service of the test's own, so a window under test never
/// reads or changes a real user's keys.
fn keychain_service(test: &str) -> String {
    format!("cutout-ui-test-{test}-{}", std::process::id())
}

fn history_file(work: &Path) -> PathBuf {
    work.join("data").join("history.sqlite3")
}

fn removebg(script: Script) -> (FakeRemoveBg, Vec<(&'static str, String)>) {
    let fake = FakeRemoveBg::start(script);
    let env = fake.env();
    (fake, env)
}

#[test]
fn a_new_user_without_keys_gets_the_local_engine_and_can_start_at_once() {
    let mut window = Window::open("a_new_user_without_keys", Vec::new());
    window.wait_for("the engine's status under the model", |h| {
        h.query_all_by_label_contains("Runs on").next().is_some()
    });
    assert_eq!(window.shows("Drop product photos or whole folders here"), 1);
    assert!(
        window
            .harness
            .query_all_by_value("Local (this computer)")
            .next()
            .is_some()
    );
    assert!(window.shows("Downloads once when you press Start (about 179 MB)") > 0);
    assert_eq!(window.shows("needs an API key"), 0);
    window.snapshot("empty");

    // Start is not pressed: the model would download from the internet.
    let folder = window.folder(&["bottle.jpg"]);
    window.drop_paths(&[folder]);
    window.wait_for("a queued row", |h| Window::shows_exactly(h, "Queued"));
    assert!(!is_disabled(&window.harness, "▶ Start"));
}

/// A tiny IS-Net-shaped model (random weights) from the test fixtures.
fn tiny_model() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/models/tiny-isnet.onnx")
}

#[test]
fn a_model_already_on_this_computer_cuts_out_a_dropped_photo_locally() {
    let mut window = Window::open_after("a_model_already_on_this_computer", Vec::new(), |work| {
        ModelStore::new(Path::new(&data_dir(work)))
            .import(&tiny_model(), Some("tiny"), ModelFamily::Isnet, false)
            .unwrap();
    });
    let folder = window.folder(&["bottle.jpg"]);
    window.drop_paths(&[folder]);
    window.wait_for("a queued row", |h| Window::shows_exactly(h, "Queued"));

    window.click("Model");
    window.wait_for("the imported model in the picker", |h| {
        h.query_all_by_label_contains("custom:tiny — ")
            .next()
            .is_some()
    });
    window
        .harness
        .get_by_label_contains("custom:tiny — ")
        .click();
    window.harness.run_steps(2);
    assert!(window.shows("Imported from tiny-isnet.onnx; fed as IS-Net") > 0);
    window.click("▶ Start");
    window.wait_for("the job done", |h| Window::shows_exactly(h, "✔ Done"));

    let saved = window.dir.path().join("out/shoot/bottle.png");
    let result = image::open(&saved).unwrap();
    assert_eq!((result.width(), result.height()), (320, 240));
    assert!(result.color().has_alpha(), "the cut-out has a mask");
}

#[test]
fn settings_import_a_model_file_list_it_and_remove_it_after_asking() {
    let mut window = Window::open("settings_import_a_model_file", Vec::new());
    open_settings(&mut window);
    window.wait_for("the engine's status", |h| {
        h.query_all_by_label_contains("None yet").next().is_some()
            && h.query_all_by_label_contains("Looking for ONNX Runtime")
                .next()
                .is_none()
    });

    // The section comes after the API keys, below the window's fold; the
    // scroll animates, so let it settle before clicking.
    window
        .harness
        .get_by_label("Import model file…")
        .scroll_to_me();
    window.harness.run_steps(30);
    window.click("Import model file…");
    window.harness.get_by_label("Model file").focus();
    window.harness.run_steps(1);
    window
        .harness
        .get_by_label("Model file")
        .type_text(&tiny_model().display().to_string());
    window.harness.get_by_label("Name").focus();
    window.harness.run_steps(1);
    window.harness.get_by_label("Name").type_text("shoes");
    window.harness.run_steps(1);
    window.click("Import");
    window.wait_for("the model imported", |h| {
        h.query_all_by_label_contains("Imported as custom:shoes")
            .next()
            .is_some()
    });
    window.wait_for("the model listed", |h| {
        Window::shows_exactly(h, "custom:shoes")
    });
    let copy = Path::new(&data_dir(window.dir.path())).join("models/custom/shoes.onnx");
    assert!(copy.is_file());
    window.snapshot("local_engine");

    window.click("Remove…");
    assert!(window.shows("Your original file is kept") > 0);
    window.click("Remove");
    window.wait_for("the model removed", |h| {
        h.query_all_by_label_contains("Removed custom:shoes")
            .next()
            .is_some()
    });
    assert!(!copy.exists());
    assert!(tiny_model().is_file(), "the user's own file is untouched");
}

#[test]
fn a_dropped_folder_runs_to_done_and_the_preview_offers_the_result() {
    let (fake, env) = removebg(Script::default());
    let mut window = Window::open("a_dropped_folder_runs", env);
    let folder = window.folder(&["bottle.jpg", "mug.jpg", "notes.txt"]);

    window.drop_paths(&[folder]);
    window.wait_for("two queued rows with their thumbnails", |h| {
        h.query_all_by_label_contains("Queued").count() >= 2
            && h.query_all_by_label_contains("Thumbnail of").count() >= 2
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
    window.wait_for("the preview of the original and its cut-out", |h| {
        h.query_all_by_label_contains("Save as").next().is_some()
            && h.query_all_by_label_contains("Before and after")
                .next()
                .is_some()
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

/// Gives every batch and job in the history the same fixed times, so a
/// snapshot of the History shows the same dates in every run. Noon UTC is
/// the same day in every time zone.
fn pin_history_times(work: &Path) {
    const NOON_MS: i64 = 1_741_953_600_000; // 2025-03-14 12:00 UTC
    let db = rusqlite::Connection::open(history_file(work)).unwrap();
    db.busy_timeout(Duration::from_secs(5)).unwrap();
    db.execute_batch(&format!(
        "UPDATE batches SET created_at_ms = {NOON_MS};
         UPDATE jobs SET created_at_ms = {NOON_MS}, updated_at_ms = {NOON_MS},
             finished_at_ms = CASE WHEN finished_at_ms IS NULL THEN NULL ELSE {NOON_MS} END;"
    ))
    .unwrap();
}

#[test]
fn the_history_finds_a_past_job_by_name_and_runs_it_again() {
    let (fake, env) = removebg(Script::default());
    let mut window = Window::open("the_history_finds", env);
    let folder = window.folder(&["bottle.jpg"]);
    window.drop_paths(&[folder]);
    window.wait_for("a queued row", |h| Window::shows_exactly(h, "Queued"));
    window.click("▶ Start");
    window.wait_for("the job done", |h| Window::shows_exactly(h, "✔ Done"));
    pin_history_times(window.dir.path());

    window.click("🕘 History");
    window.wait_for("the past job listed", |h| {
        Window::shows_exactly(h, "Show in folder")
    });
    assert!(
        window.shows("Batch of 2025-03-14") > 0,
        "the batch's header"
    );
    let search = |w: &mut Window, text: &str| {
        w.harness.get_by_label("Search").focus();
        w.harness.run_steps(1);
        w.harness.get_by_label("Search").type_text(text);
        w.harness.run_steps(1);
    };
    search(&mut window, "bottlex");
    window.wait_for("no match", |h| Window::shows_exactly(h, "No jobs match."));
    window.harness.key_press(egui::Key::Backspace);
    window.wait_for("the job found again", |h| {
        Window::shows_exactly(h, "Show in folder")
    });
    window.snapshot("history");

    window.click("↻ Run again");
    window.wait_for("the job queued again", |h| {
        Window::shows_exactly(h, "Queued")
    });
    assert!(window.shows("is back in the queue") > 0);
    std::thread::sleep(Duration::from_millis(200));
    window.harness.run_steps(3);
    assert_eq!(fake.submissions(), 1, "running again waits for Start");

    window.click("Clear history…");
    assert!(window.shows("Delete the record of 1 finished job?") > 0);
    window.click("Clear");
    window.wait_for("the record cleared", |h| {
        h.query_all_by_label_contains("Cleared the record of 1 finished job")
            .next()
            .is_some()
    });
    let results = walk(&window.dir.path().join("out"));
    assert_eq!(results.len(), 1, "the result stays: {results:?}");
}

#[test]
fn jobs_left_unfinished_come_back_queued_and_carry_on_when_started() {
    let (fake, env) = removebg(Script::default());
    let mut window = Window::open_after("jobs_left_unfinished", env, |work| {
        let photo = work.join("shoot").join("bottle.jpg");
        std::fs::create_dir_all(photo.parent().unwrap()).unwrap();
        fakes::product_shot(320, 240, 1).save(&photo).unwrap();
        // A session that queued a job and then ended (its store dropped, as
        // when the window closes), set up to save somewhere of its own.
        let mut earlier = JobStore::open(&history_file(work)).unwrap().store;
        let batch = earlier.begin_batch().unwrap();
        let settings = JobSettings {
            provider: ProviderId::Removebg,
            model: ProviderId::Removebg.info().default_model().to_owned(),
            options: Default::default(),
            output: OutputSpec {
                dir: work.join("earlier-out"),
                format: None,
                quality: None,
                composition: Default::default(),
                naming: Default::default(),
            },
            allow_downscale: false,
        };
        let job = Job {
            id: JobId(earlier.next_job_id().unwrap()),
            input: JobInput::File {
                path: photo,
                root: None,
            },
            kind: Some(InputKind::ImageFile),
            provider: settings.provider,
            model: settings.model.clone(),
            remote_id: None,
            state: JobState::Queued,
            credits_charged: None,
            warnings: Vec::new(),
        };
        earlier.record_added(Some(batch), &job, &settings).unwrap();
    });

    window.wait_for("the job back in the queue", |h| {
        Window::shows_exactly(h, "Queued")
    });
    assert_eq!(
        window.shows("1 job from your last session is back and waiting — press Start to run it."),
        1
    );
    std::thread::sleep(Duration::from_millis(300));
    window.harness.run_steps(3);
    assert_eq!(fake.submissions(), 0, "a waiting job waits for Start");
    assert!(Window::shows_exactly(&window.harness, "Queued"));

    window.click("▶ Start");
    window.wait_for("the job done", |h| Window::shows_exactly(h, "✔ Done"));
    assert_eq!(fake.submissions(), 1);
    let saved = window.dir.path().join("earlier-out").join("bottle.png");
    assert!(
        saved.is_file(),
        "saved where it was set up to go: {:?}",
        walk(window.dir.path())
    );
}

/// Where a provider comes in Settings' "Jobs at once", which lists them
/// all in order.
fn provider_block(id: ProviderId) -> usize {
    ProviderId::ALL.iter().position(|p| *p == id).unwrap()
}

/// Where a provider's block comes under "API keys", which lists the
/// providers that take a key, in order.
fn key_block(id: ProviderId) -> usize {
    ProviderId::ALL
        .iter()
        .filter(|p| !p.info().credentials.is_empty())
        .position(|p| *p == id)
        .unwrap()
}

/// Opens Settings and waits until the keychain has been checked.
fn open_settings(window: &mut Window) {
    window.click("⚙ Settings");
    window.wait_for("the keychain checked", |h| {
        h.query_all_by_label_contains("Checking your system keychain")
            .next()
            .is_none()
    });
}

/// Waits until the settings file says `what`, and returns it.
fn settings_file_saying(window: &mut Window, what: &str) -> String {
    let file = Path::new(&config_dir(window.dir.path())).join("settings.toml");
    window.wait_for(&format!("settings.toml to say {what}"), |_| {
        std::fs::read_to_string(&file).is_ok_and(|t| t.contains(what))
    });
    std::fs::read_to_string(&file).unwrap()
}

#[test]
fn the_settings_file_sets_up_the_batch_and_a_bad_value_is_reported_with_its_line() {
    let designs = std::env::temp_dir().join("cutout-ui-tests/designs");
    let settings = format!(
        "[output]\n\
         folder = {:?}\n\
         format = \"webp\"\n\
         naming = \"{{name}}-{{provider}}\"\n\
         \n\
         [appearance]\n\
         theme = \"dark\"\n\
         \n\
         [providers.removebg]\n\
         concurrency = 99\n",
        designs.display().to_string()
    );
    let mut window = Window::open_after("the_settings_file_sets_up", Vec::new(), |work| {
        let config = config_dir(work);
        std::fs::create_dir_all(&config).unwrap();
        std::fs::write(Path::new(&config).join("settings.toml"), &settings).unwrap();
    });
    window.harness.run_steps(3);
    let field_says = |h: &Harness<'static, CutoutApp>, value: &str| {
        h.query_all_by(|node| {
            node.role() == egui::accesskit::Role::TextInput
                && node.value().as_deref() == Some(value)
        })
        .next()
        .is_some()
    };
    assert!(field_says(&window.harness, &designs.display().to_string()));
    assert!(field_says(&window.harness, "{name}-{provider}"));
    assert!(
        window
            .harness
            .query_all_by_value("WebP (lossless)")
            .next()
            .is_some(),
        "the format picker shows WebP"
    );
    assert!(window.shows("bottle.jpg is saved as bottle-local.webp") > 0);
    assert_eq!(
        window.harness.ctx.options(|o| o.theme_preference),
        egui::ThemePreference::Dark
    );
    assert_eq!(
        window.shows(
            "Settings file, line 10: concurrency for removebg must be a whole number from 1 \
             to 16, not 99; using 4"
        ),
        1,
        "the notice names the line"
    );
}

#[test]
fn changing_jobs_at_once_in_settings_saves_the_settings_file() {
    let mut window = Window::open("changing_jobs_at_once", Vec::new());
    open_settings(&mut window);
    let removebg_block = provider_block(ProviderId::Removebg);
    window
        .harness
        .get_all_by_role(egui::accesskit::Role::SpinButton)
        .nth(removebg_block)
        .unwrap()
        .set_value_accesskit(7.0);
    window.harness.run_steps(2);
    let saved = settings_file_saying(&mut window, "concurrency = 7");
    assert!(
        saved.contains("[providers.removebg]\nconcurrency = 7"),
        "{saved}"
    );
}

#[test]
fn test_key_shows_the_balance_and_a_wrong_key_is_refused() {
    let removebg_block = key_block(ProviderId::Removebg);
    let (fake, env) = removebg(Script::default());
    let mut window = Window::open("test_key_shows", env);
    open_settings(&mut window);
    window
        .harness
        .get_all_by_label("Test key")
        .nth(removebg_block)
        .unwrap()
        .click();
    window.wait_for("the key check", |h| {
        h.query_all_by_label_contains("✔ Key works — ")
            .next()
            .is_some()
    });
    assert!(window.shows("✔ Key works — 50 credits and 50 free API calls left") > 0);
    assert_eq!(fake.journal().matching("GET", "/v1.0/account").len(), 1);
    assert_eq!(fake.submissions(), 0, "a key check starts no paid work");

    let (_fake, mut env) = removebg(Script::default());
    env.retain(|(name, _)| *name != "CUTOUT_REMOVEBG_KEY");
    env.push(("CUTOUT_REMOVEBG_KEY", "wrong-key".to_owned()));
    let mut window = Window::open("test_key_refused", env);
    open_settings(&mut window);
    window
        .harness
        .get_all_by_label("Test key")
        .nth(removebg_block)
        .unwrap()
        .click();
    window.wait_for("the refusal", |h| {
        h.query_all_by_label_contains("The key was refused")
            .next()
            .is_some()
    });
    assert!(window.shows("⚠ The key was refused: API Key invalid") > 0);
}

#[test]
fn a_key_saved_in_settings_lives_in_the_keychain_and_never_in_the_settings_file() {
    let test = "a_key_saved_in_settings";
    let service = keychain_service(test);
    let lookup = |name: &str| (name == "CUTOUT_KEYCHAIN_SERVICE").then(|| service.clone());
    let keychain = Keychain::new(&lookup);
    if let KeychainStatus::Unavailable { reason, .. } = keychain.status() {
        let required = std::env::var("CUTOUT_TEST_KEYCHAIN").as_deref() == Ok("required");
        assert!(!required, "CUTOUT_TEST_KEYCHAIN=required, but {reason}");
        eprintln!("skipped {test}: no OS keychain here ({reason})");
        return;
    }
    let (fake, mut env) = removebg(Script::default());
    env.retain(|(name, _)| *name != "CUTOUT_REMOVEBG_KEY");
    let mut window = Window::open(test, env);
    open_settings(&mut window);
    assert!(window.shows("kept in your system keychain, never in a file") > 0);

    let removebg_field = ProviderId::ALL
        .iter()
        .flat_map(|p| p.info().credentials.iter().map(move |c| (*p, c.id)))
        .position(|slot| slot == (ProviderId::Removebg, "key"))
        .unwrap();
    let field = window
        .harness
        .get_all_by_role(egui::accesskit::Role::PasswordInput)
        .nth(removebg_field)
        .unwrap();
    field.focus();
    field.type_text(fakes::removebg::KEY);
    window.harness.run_steps(1);
    window.harness.key_press(egui::Key::Enter);
    window.wait_for("the key saved", |h| {
        h.query_all_by_label("✔ Saved in the keychain")
            .next()
            .is_some()
    });
    let stored = keychain.has(ProviderId::Removebg, "key");
    let _ = keychain.delete(ProviderId::Removebg, "key");
    assert!(stored.unwrap(), "the key is in the keychain");
    assert_eq!(
        window.shows(fakes::removebg::KEY),
        0,
        "the key is never shown"
    );

    // The provider now runs on the key from the keychain.
    let removebg_block = key_block(ProviderId::Removebg);
    window
        .harness
        .get_all_by_label("Test key")
        .nth(removebg_block)
        .unwrap()
        .click();
    window.wait_for("the key check", |h| {
        h.query_all_by_label_contains("✔ Key works")
            .next()
            .is_some()
    });
    assert_eq!(fake.journal().matching("GET", "/v1.0/account").len(), 1);

    window.harness.get_by_label("Dark").click_accesskit();
    window.harness.run_steps(2);
    let saved = settings_file_saying(&mut window, "theme = \"dark\"");
    assert!(!saved.contains(fakes::removebg::KEY), "{saved}");
    assert!(!saved.contains("key ="), "{saved}");
}

/// Whether the button labelled `label` is greyed out.
fn is_disabled(harness: &Harness<'static, CutoutApp>, label: &str) -> bool {
    harness
        .query_all_by(|node| node.label().as_deref() == Some(label) && node.is_disabled())
        .next()
        .is_some()
}

#[test]
fn square_2000_cropped_on_white_makes_every_result_a_white_2000_px_square() {
    let (_fake, env) = removebg(Script::default());
    let mut window = Window::open("square_2000_cropped_on_white", env);
    let folder = window.folder(&["bottle.jpg"]);
    window.drop_paths(&[folder]);
    window.wait_for("a queued row", |h| Window::shows_exactly(h, "Queued"));

    // Tall enough for the open Layout block and Start below it.
    window.harness.set_size(egui::vec2(1280.0, 1160.0));
    window.click("Layout");
    window.click("Canvas");
    window.click("Square 2000 (marketplaces)");
    window.click("Crop to subject");
    window.click("Background");
    window.click("Colour");
    window.click("▶ Start");
    window.wait_for("the job done", |h| Window::shows_exactly(h, "✔ Done"));

    let saved = window.dir.path().join("out/shoot/bottle.png");
    let result = image::open(&saved).unwrap().into_rgba8();
    assert_eq!(result.dimensions(), (2000, 2000));
    assert_eq!(
        result.get_pixel(0, 0).0,
        [255, 255, 255, 255],
        "a white corner"
    );
}

#[test]
fn jpeg_without_a_background_stops_start_until_a_preset_from_the_settings_file_fixes_it() {
    let test = "jpeg_without_a_background";
    let out = std::env::temp_dir()
        .join("cutout-ui-tests")
        .join(test)
        .join("out");
    let settings = format!(
        "[output]\n\
         folder = {:?}\n\
         \n\
         [presets.marketplace]\n\
         format = \"jpg\"\n\
         background = \"#ffffff\"\n\
         crop = \"5%\"\n\
         canvas = \"square:2000\"\n\
         anchor = \"bottom\"\n\
         shadow = true\n",
        out.display().to_string()
    );
    let (_fake, env) = removebg(Script::default());
    let mut window = Window::open_after(test, env, |work| {
        let config = config_dir(work);
        std::fs::create_dir_all(&config).unwrap();
        std::fs::write(Path::new(&config).join("settings.toml"), &settings).unwrap();
    });
    let folder = window.folder(&["bottle.jpg"]);
    window.drop_paths(&[folder]);
    window.wait_for("a queued row", |h| Window::shows_exactly(h, "Queued"));
    assert!(!is_disabled(&window.harness, "▶ Start"));

    window.click("Format");
    window.click("JPEG (needs a background)");
    assert!(window.shows("JPEG has no transparency: choose a background colour or picture") > 0);
    assert!(is_disabled(&window.harness, "▶ Start"));

    window.click("Preset");
    window.click("marketplace");
    assert!(!is_disabled(&window.harness, "▶ Start"));
    assert_eq!(window.shows("JPEG has no transparency"), 0);
    let shows_value =
        |w: &Window, value: &str| w.harness.query_all_by_value(value).next().is_some();
    assert!(
        shows_value(&window, "marketplace"),
        "the picker names the preset"
    );
    assert!(shows_value(&window, "JPEG"));
    assert!(shows_value(&window, "Colour"));

    window.harness.set_size(egui::vec2(1280.0, 1040.0));
    window.click("Layout");
    assert!(shows_value(&window, "Square 2000"));
    assert!(
        window
            .harness
            .query_all_by(
                |n| n.label().as_deref() == Some("Bottom (products standing on a shelf)")
                    && n.toggled() == Some(egui::accesskit::Toggled::True)
            )
            .next()
            .is_some(),
        "the anchor grid shows the preset's position"
    );
    window.wait_for("the layout preview", |h| {
        Window::shows_exactly(h, "Preview of the layout on a sample product")
    });
    window.snapshot("output_layout");

    // Saving the setup under a new name writes it to the settings file,
    // edge refinement included.
    window
        .harness
        .get_by_label("Decontaminate colours (no halos)")
        .click_accesskit();
    window.harness.run_steps(2);
    window.click("Save as preset…");
    window.harness.get_by_label("Name").type_text("Shop");
    window.harness.run_steps(1);
    window.harness.key_press(egui::Key::Enter);
    let saved = settings_file_saying(&mut window, "[presets.Shop]");
    assert!(saved.contains("canvas = \"square:2000\""), "{saved}");
    assert!(saved.contains("decontaminate = true"), "{saved}");
}

#[test]
fn the_first_run_welcome_sets_the_default_service_and_comes_back_only_from_help() {
    let test = "first_run_welcome";
    let mut window = Window::open_first_run(test, Vec::new(), |_| {});
    window.wait_for("the welcome", |h| {
        Window::shows_exactly(h, "Welcome to Cutout")
    });
    assert!(window.shows("Free and private") > 0);
    assert!(window.shows("Best quality, uses credits") > 0);
    assert!(window.shows("Download the model now") > 0);
    window.snapshot("welcome");

    window.harness.get_by_label("☁ A cloud service").click();
    window.harness.run_steps(2);
    let cloud = ProviderId::Uploadcare;
    assert!(
        window.shows(cloud.info().summary) > 0,
        "the first cloud service is explained"
    );
    assert_eq!(
        window
            .harness
            .get_all_by_role(egui::accesskit::Role::PasswordInput)
            .count(),
        cloud.info().credentials.len(),
        "its key fields are offered"
    );
    window.click("Start using Cutout ▶");
    let saved = settings_file_saying(&mut window, "welcome_seen = true");
    assert!(saved.contains("uploadcare"), "{saved}");
    assert_eq!(window.shows("Welcome to Cutout"), 0);
    assert!(window.shows("Drop product photos or whole folders here") > 0);
    drop(window);

    // The next start goes straight to the drop zone, with the service
    // picked; Help brings the welcome back on request.
    let mut window = Window::open_first_run(test, Vec::new(), |dir| {
        let config = Path::new(&config_dir(dir)).to_owned();
        std::fs::create_dir_all(&config).unwrap();
        std::fs::write(config.join("settings.toml"), &saved).unwrap();
    });
    window.harness.run_steps(5);
    assert_eq!(window.shows("Welcome to Cutout"), 0);
    assert!(
        window
            .harness
            .query_all_by_value(cloud.info().name)
            .next()
            .is_some(),
        "the side panel starts with the service picked"
    );
    window.click("？ Help");
    window.click("Welcome…");
    window.wait_for("the welcome again", |h| {
        Window::shows_exactly(h, "Welcome to Cutout")
    });
    window.click("Skip");
    assert_eq!(window.shows("Welcome to Cutout"), 0);
}

#[test]
fn the_welcome_fetches_the_local_model_and_explains_a_download_that_fails_its_check() {
    let host = fakes::models::FakeFileHost::start(b"<html>not a model</html>".to_vec());
    let mut window = Window::open_first_run(
        "welcome_model_download",
        vec![("CUTOUT_LOCAL_MODELS_URL", host.url())],
        |_| {},
    );
    window.wait_for("the welcome", |h| {
        Window::shows_exactly(h, "Welcome to Cutout")
    });
    window
        .harness
        .query_all_by_label_contains("Download the model now")
        .next()
        .unwrap()
        .click();
    window.wait_for("the download's end", |h| {
        h.query_all_by_label_contains("was not downloaded")
            .next()
            .is_some()
    });
    let said: String = window
        .harness
        .query_all_by_label_contains("was not downloaded")
        .filter_map(|node| node.accesskit_node().value())
        .collect();
    assert!(
        said.contains("damaged or replaced") && said.contains("it was deleted, try again"),
        "{said}"
    );
    assert_eq!(host.paths().len(), 1, "{:?}", host.paths());
    assert!(host.paths()[0].ends_with(".onnx"), "{:?}", host.paths());
    let models = Path::new(&data_dir(window.dir.path())).join("models");
    // Only the download lock file (shared with other Cutout processes) stays.
    let left: Vec<_> = walk(&models)
        .into_iter()
        .filter(|path| path.extension().is_none_or(|ext| ext != "lock"))
        .collect();
    assert!(left.is_empty(), "nothing half-downloaded is kept: {left:?}");
}

#[test]
fn copy_diagnostics_puts_a_report_with_no_key_on_the_clipboard() {
    let (_fake, env) = removebg(Script::default());
    let key = env
        .iter()
        .find(|(name, _)| *name == "CUTOUT_REMOVEBG_KEY")
        .map(|(_, key)| key.clone())
        .unwrap();
    let mut window = Window::open("copy_diagnostics", env);
    window.harness.run_steps(3);
    window.click("？ Help");
    // The copy is in the output of the frame that handles the click.
    window.harness.get_by_label("Copy diagnostics").click();
    window.harness.step();
    let copied: Vec<String> = window
        .harness
        .output()
        .platform_output
        .commands
        .iter()
        .filter_map(|command| match command {
            egui::OutputCommand::CopyText(text) => Some(text.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(copied.len(), 1, "{copied:?}");
    let report = &copied[0];
    assert!(report.starts_with("Cutout diagnostics (window"), "{report}");
    assert!(
        report.contains("remove.bg (removebg): ready, key from"),
        "{report}"
    );
    assert!(report.contains("Jobs this session: 0 queued"), "{report}");
    assert!(!report.contains(&key), "the key never leaves: {report}");
    window.harness.run_steps(2);
    assert!(window.shows("Diagnostics copied") > 0);
}
