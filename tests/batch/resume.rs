//! The job history and resume: a batch killed mid-way (SIGKILL, as a crash or
//! power cut would) is finished by `cutout resume` with exactly one paid
//! submission per job and no temporary files left; `cutout history` lists
//! what happened; keys never reach any file Cutout keeps.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Child;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::fakes::removit::{FakeRemovit, Script};
use crate::fakes::{Fake, PHOTO_SIZE};
use crate::harness::{KEY_MARKER, Workspace, assert_cutout_png};

/// A `cutout` run whose JSON lines are read as they come.
struct Watched {
    child: Child,
    lines: mpsc::Receiver<Value>,
    seen: Vec<Value>,
}

impl Watched {
    fn start(mut command: std::process::Command) -> Watched {
        let mut child = command.spawn().expect("start cutout");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(value) = serde_json::from_str::<Value>(&line) {
                    let _ = tx.send(value);
                }
            }
        });
        Watched {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Reads events until `done` says the moment has come.
    fn wait_until(&mut self, what: &str, done: impl Fn(&[Value]) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !done(&self.seen) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(value) => self.seen.push(value),
                Err(_) => panic!(
                    "gave up waiting for {what}; events so far: {:#?}",
                    self.seen
                ),
            }
        }
    }

    /// SIGKILL: no clean-up, no last words, as in a crash.
    fn kill(mut self) {
        self.child.kill().expect("kill cutout");
        self.child.wait().expect("reap cutout");
    }
}

/// Jobs that reached `state` (by their ids).
fn jobs_in(events: &[Value], state: &str) -> BTreeSet<u64> {
    events
        .iter()
        .filter(|e| e["state"] == state || e["event"] == state)
        .filter_map(|e| e["job"].as_u64())
        .collect()
}

fn partial_files(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(".cutout-partial-"))
        .collect()
}

#[test]
fn a_batch_killed_mid_way_resumes_with_one_submission_per_job() {
    // Each job stays `pending` for 40 polls (about two seconds), so two jobs
    // are reliably mid-processing when the kill lands and no upload is in
    // flight.
    let fake = FakeRemovit::start(Script {
        progress: vec![20; 40],
        ..Script::default()
    });
    let ws = Workspace::new();
    let photos: Vec<_> = (1..=6).map(|n| ws.photo(&format!("item{n}.png"))).collect();
    let batch = ws
        .batch_on(&fake)
        .args(["--concurrency", "2"])
        .args(photos.iter().map(|p| p.as_os_str().to_owned()));
    let mut first = Watched::start(batch.command());
    first.wait_until("two jobs processing at the provider", |events| {
        jobs_in(events, "processing").len() >= 2
    });
    assert_eq!(fake.submissions(), 2, "only the two running jobs were sent");
    let accepted_before_kill = fake.job_ids();
    first.kill();

    let resume = ws.command(["resume", "--json"]).envs(fake.env()).run();
    resume.assert_code(0);
    resume.assert_summary(6, 0, 0);
    assert_eq!(
        fake.submissions(),
        6,
        "each of the six jobs was submitted exactly once across both runs\n{resume}"
    );
    assert_eq!(fake.jobs_created(), 6);
    // The two accepted jobs were polled to the end, not sent again.
    let remote_ids: BTreeSet<String> = resume
        .of("done")
        .iter()
        .filter_map(|e| e["remote_id"].as_str().map(str::to_owned))
        .collect();
    for id in &accepted_before_kill {
        assert!(remote_ids.contains(id), "{id} was not resumed\n{resume}");
    }
    let mut files = ws.out_files();
    files.sort();
    assert_eq!(
        files,
        (1..=6).map(|n| format!("item{n}.png")).collect::<Vec<_>>(),
        "six results, no temporary files\n{resume}"
    );
    for n in 1..=6 {
        assert_cutout_png(&ws.out_path(&format!("item{n}.png")), PHOTO_SIZE);
    }

    // A second resume finds nothing left to do, and the history has it all.
    let again = ws.command(["resume"]).envs(fake.env()).run();
    again.assert_code(0);
    assert!(again.stdout.contains("Nothing to resume"), "{again}");
    let history = ws.command(["history", "--json"]).run();
    history.assert_code(0);
    let jobs: Vec<Value> = history
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(jobs.len(), 6, "{history}");
    assert!(jobs.iter().all(|j| j["state"] == "done"), "{history}");
}

#[test]
fn a_run_killed_while_writing_a_result_leaves_no_temporary_file_after_resume() {
    // Downloads stall half-way, so the first run is killed with a
    // half-written temporary file in the output folder.
    let fake = FakeRemovit::start(Script {
        progress: vec![],
        downloads_stall: true,
        ..Script::default()
    });
    let ws = Workspace::new();
    let photo = ws.photo("stalled.png");
    let batch = ws.batch_on(&fake).arg(&photo);
    let mut first = Watched::start(batch.command());
    first.wait_until("the download to start", |events| {
        !jobs_in(events, "downloading").is_empty()
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while partial_files(&ws.out).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        partial_files(&ws.out).len(),
        1,
        "a temporary file while writing"
    );
    first.kill();
    assert_eq!(partial_files(&ws.out).len(), 1, "a kill cannot clean up");

    // The resumed job stalls again (the fake never finishes a download), so
    // stop it with Ctrl-C: what matters is that the killed run's file went.
    let resumed = ws.command(["resume", "--json"]).envs(fake.env()).spawn();
    let deadline = Instant::now() + Duration::from_secs(10);
    while fake.journal().matching("GET", "/results/").len() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    resumed.interrupt();
    let resumed = resumed.wait();
    assert_eq!(resumed.code, Some(130), "{resumed}");
    assert!(
        partial_files(&ws.out).is_empty(),
        "temporary files left: {:?}\n{resumed}",
        partial_files(&ws.out)
    );
    assert_eq!(fake.submissions(), 1, "resumed, not sent again\n{resumed}");
}

#[test]
fn history_lists_past_jobs_and_filters_them() {
    let fake = FakeRemovit::start(Script {
        progress: vec![],
        ..Script::default()
    });
    let ws = Workspace::new();
    let run = ws
        .batch_on(&fake)
        .arg(ws.photo("red shoe.png"))
        .arg(ws.photo("blue bag.png"))
        .run();
    run.assert_code(0);

    let all = ws.command(["history"]).run();
    all.assert_code(0);
    assert!(all.stdout.contains("red shoe.png"), "{all}");
    assert!(all.stdout.contains("blue bag.png"), "{all}");
    assert!(all.stdout.contains("done"), "{all}");
    assert!(all.stdout.contains("removit/"), "{all}");

    let found = ws.command(["history", "--search", "SHOE"]).run();
    assert!(found.stdout.contains("red shoe.png"), "{found}");
    assert!(!found.stdout.contains("blue bag.png"), "{found}");

    let none = ws.command(["history", "--provider", "removebg"]).run();
    assert!(none.stdout.contains("No jobs match"), "{none}");

    let failed = ws.command(["history", "--state", "failed"]).run();
    assert!(failed.stdout.contains("No jobs match"), "{failed}");
}

#[test]
fn keys_never_reach_the_logs_the_history_or_any_file_cutout_keeps() {
    let fake = FakeRemovit::start(Script {
        progress: vec![50],
        ..Script::default()
    });
    let ws = Workspace::new();
    let run = ws
        .batch_on(&fake)
        .env("CUTOUT_LOG", "trace")
        .arg(ws.photo("secret.png"))
        .run();
    run.assert_code(0);
    let history = ws
        .command(["history", "--json"])
        .env("CUTOUT_LOG", "trace")
        .run();
    history.assert_code(0);

    for (what, text) in [
        ("batch stdout", &run.stdout),
        ("batch stderr (trace logs)", &run.stderr),
        ("history output", &history.stdout),
        ("history stderr", &history.stderr),
    ] {
        assert!(!text.contains(KEY_MARKER), "the key is in the {what}");
    }
    assert!(
        run.stderr.contains("TRACE") || run.stderr.contains("DEBUG"),
        "trace logging was on, so the logs were really checked:\n{}",
        run.stderr
    );
    let files = walkdir(ws.home());
    assert!(
        files.iter().any(|f| f.ends_with("history.sqlite3")),
        "the run was recorded, so the history was really checked: {files:?}"
    );
    for entry in files {
        let bytes = std::fs::read(&entry).expect("read a file Cutout keeps");
        let found = bytes
            .windows(KEY_MARKER.len())
            .any(|w| w == KEY_MARKER.as_bytes());
        assert!(!found, "the key is in {}", entry.display());
    }
}

fn walkdir(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
}

#[test]
fn killed_at_random_points_and_resumed_every_job_ends_exactly_once() {
    // Seeded, so a failure names the kill time that found it.
    let mut rng = fastrand::Rng::with_seed(0x5eed_c0de);
    for round in 0..4 {
        let fake = FakeRemovit::start(Script {
            progress: vec![30; 6],
            ..Script::default()
        });
        let ws = Workspace::new();
        let photos: Vec<_> = (1..=4).map(|n| ws.photo(&format!("p{n}.png"))).collect();
        let batch = ws
            .batch_on(&fake)
            .args(["--concurrency", "2"])
            .args(photos.iter().map(|p| p.as_os_str().to_owned()));
        let kill_after = Duration::from_millis(rng.u64(50..900));
        let first = Watched::start(batch.command());
        std::thread::sleep(kill_after);
        first.kill();

        let resume = ws.command(["resume", "--json"]).envs(fake.env()).run();
        let case = format!("round {round}, killed after {kill_after:?}");
        assert!(
            matches!(resume.code, Some(0)),
            "{case}: resume must finish the rest\n{resume}"
        );
        let mut files = ws.out_files();
        files.sort();
        assert_eq!(
            files,
            (1..=4).map(|n| format!("p{n}.png")).collect::<Vec<_>>(),
            "{case}: one result per job, no duplicate and no temporary file\n{resume}"
        );
        // A paid call in flight at the kill has no answer to resume from,
        // so at most the jobs running then (two) are sent again.
        assert!(
            fake.jobs_created() <= 4 + 2,
            "{case}: {} jobs created\n{resume}",
            fake.jobs_created()
        );
        let history = ws.command(["history", "--json"]).run();
        let states: Vec<String> = history
            .stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .map(|j| j["state"].as_str().unwrap_or_default().to_owned())
            .collect();
        assert_eq!(
            states,
            vec!["done"; 4],
            "{case}: every job ends once\n{history}"
        );
    }
}
