//! Runs the real `cutout` binary the way a person or a script would: a clean
//! environment (no inherited `CUTOUT_*`, a throwaway `HOME`), fast poll and
//! retry knobs, and `--json` events checked against their contract on every
//! run. Every run also checks that no key reached stdout or stderr.

use std::ffi::OsString;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::fakes::{self, Fake};

/// Every key used in these tests, right or wrong, contains this marker, so
/// one search proves none of them was printed.
pub const KEY_MARKER: &str = "NEVERPRINT";

/// How long a single CLI run may take before the test gives up on it.
const RUN_LIMIT: Duration = Duration::from_secs(60);

/// A throwaway folder with inputs, an output folder and a home directory.
pub struct Workspace {
    dir: tempfile::TempDir,
    /// Where inputs are written.
    pub inputs: PathBuf,
    /// `--out`.
    pub out: PathBuf,
    home: PathBuf,
}

impl Workspace {
    /// A fresh workspace.
    pub fn new() -> Workspace {
        let dir = tempfile::Builder::new()
            .prefix("cutout-e2e-")
            .tempdir()
            .expect("create a temp dir");
        let inputs = dir.path().join("in");
        let out = dir.path().join("out");
        let home = dir.path().join("home");
        for d in [&inputs, &home] {
            std::fs::create_dir_all(d).expect("create a workspace folder");
        }
        Workspace {
            dir,
            inputs,
            out,
            home,
        }
    }

    /// Writes a product-shot photo at `inputs/<relative>` (encoded by its
    /// extension) and returns its path.
    pub fn photo(&self, relative: &str) -> PathBuf {
        let path = self.inputs.join(relative);
        fakes::write_photo(&path);
        path
    }

    /// The home folder the CLI runs with (its settings, history and any
    /// other file it keeps live beneath it).
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// Writes arbitrary bytes at `inputs/<relative>`.
    pub fn file(&self, relative: &str, bytes: &[u8]) -> PathBuf {
        let path = self.inputs.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create the file's folder");
        }
        std::fs::write(&path, bytes).expect("write the file");
        path
    }

    /// `cutout batch --json -p <provider> -o <out>`; add inputs and options.
    pub fn batch(&self, provider: &str) -> Cutout {
        self.command(["batch", "--json", "--provider", provider, "--out"])
            .arg(&self.out)
    }

    /// `cutout batch` pointed at `fake` with the right keys; add inputs and
    /// options.
    pub fn batch_on<F: Fake>(&self, fake: &F) -> Cutout {
        self.batch(F::PROVIDER).envs(fake.env())
    }

    /// An input as a test names it: a URL (`https://…`) is passed as it is,
    /// anything else names a product photo written at `inputs/<input>`.
    pub fn input(&self, input: &str) -> OsString {
        if input.starts_with("https://") {
            input.into()
        } else {
            self.photo(input).into()
        }
    }

    /// `cutout <args>` in this workspace's environment.
    pub fn command<I, S>(&self, args: I) -> Cutout
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        let home = self.home.clone();
        let mut env = vec![
            ("HOME".to_owned(), home.display().to_string()),
            (
                "XDG_CONFIG_HOME".to_owned(),
                home.join(".config").display().to_string(),
            ),
            (
                "XDG_DATA_HOME".to_owned(),
                home.join(".local/share").display().to_string(),
            ),
            (
                "XDG_CACHE_HOME".to_owned(),
                home.join(".cache").display().to_string(),
            ),
            (
                "XDG_STATE_HOME".to_owned(),
                home.join(".local/state").display().to_string(),
            ),
            ("NO_COLOR".to_owned(), "1".to_owned()),
            // Keys a test stores (or a developer's own `cutout` entries) never
            // meet another test's: each workspace has its own keychain service.
            (
                "CUTOUT_KEYCHAIN_SERVICE".to_owned(),
                format!(
                    "cutout-test-{}",
                    self.dir
                        .path()
                        .file_name()
                        .unwrap_or_default()
                        .to_string_lossy()
                ),
            ),
            ("CUTOUT_POLL_INTERVAL_MS".to_owned(), "20".to_owned()),
            ("CUTOUT_RETRY_BASE_MS".to_owned(), "10".to_owned()),
            ("CUTOUT_RETRY_MAX_ATTEMPTS".to_owned(), "4".to_owned()),
            ("CUTOUT_POLL_DEADLINE_SECS".to_owned(), "20".to_owned()),
        ];
        if let Some(path) = std::env::var_os("PATH") {
            env.push(("PATH".to_owned(), path.to_string_lossy().into_owned()));
        }
        Cutout {
            case: None,
            wrapper: Vec::new(),
            args: args.into_iter().map(Into::into).collect(),
            env,
            cwd: self.dir.path().to_owned(),
        }
    }

    /// Every file under `--out`, hidden ones included, as sorted relative
    /// paths with `/` separators.
    pub fn out_files(&self) -> Vec<String> {
        let mut found = Vec::new();
        collect_files(&self.out, &self.out, &mut found);
        found.sort();
        found
    }

    /// `out/<relative>`.
    pub fn out_path(&self, relative: &str) -> PathBuf {
        self.out.join(relative)
    }

    /// Asserts `--out` holds no file: a failed job leaves nothing behind, not
    /// even a partial download.
    #[track_caller]
    pub fn assert_nothing_written(&self, run: &Outcome) {
        let left = self.out_files();
        assert!(left.is_empty(), "left behind: {left:?}\n{run}");
    }
}

fn collect_files(root: &Path, dir: &Path, found: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_files(root, &path, found);
        } else {
            let relative = path.strip_prefix(root).expect("under the root");
            found.push(relative.to_string_lossy().replace('\\', "/"));
        }
    }
}

/// A `cutout` command line being put together.
pub struct Cutout {
    case: Option<String>,
    /// A program `cutout` runs under (`unshare …`), with its arguments.
    wrapper: Vec<OsString>,
    args: Vec<OsString>,
    env: Vec<(String, String)>,
    cwd: PathBuf,
}

impl Cutout {
    /// Names the table row this run belongs to, for failure messages.
    pub fn case(mut self, case: &str) -> Cutout {
        self.case = Some(case.to_owned());
        self
    }

    /// Runs `cutout` as the last arguments of `program args…`, for a test
    /// that needs it in a different world (a small private disk).
    pub fn under<S: Into<OsString>>(mut self, program: S, args: Vec<OsString>) -> Cutout {
        self.wrapper = std::iter::once(program.into()).chain(args).collect();
        self
    }

    /// Adds one argument.
    pub fn arg(mut self, arg: impl Into<OsString>) -> Cutout {
        self.args.push(arg.into());
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(mut self, args: I) -> Cutout
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets a variable, replacing an earlier value.
    pub fn env(mut self, key: &str, value: impl Into<String>) -> Cutout {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_owned(), value.into()));
        self
    }

    /// Sets several variables (a fake's `env()`).
    pub fn envs(mut self, vars: Vec<(&'static str, String)>) -> Cutout {
        for (key, value) in vars {
            self = self.env(key, value);
        }
        self
    }

    /// Removes a variable.
    pub fn without(mut self, key: &str) -> Cutout {
        self.env.retain(|(k, _)| k != key);
        self
    }

    /// Runs to the end and checks the output's contract.
    pub fn run(self) -> Outcome {
        self.spawn().wait()
    }

    /// The process as configured, not started: for tests that need to
    /// watch its output line by line.
    pub fn command(&self) -> Command {
        let cutout = OsString::from(env!("CARGO_BIN_EXE_cutout"));
        let mut command = match self.wrapper.split_first() {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(cutout);
                command
            }
            None => Command::new(cutout),
        };
        command
            .args(&self.args)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&self.cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    /// Starts the process; see [`Running`].
    pub fn spawn(self) -> Running {
        let mut child = self.command().spawn().expect("start the cutout binary");
        let stdout = reader(child.stdout.take().expect("piped stdout"));
        let stderr = reader(child.stderr.take().expect("piped stderr"));
        let args = self
            .args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let log_dir = self.log_dir();
        Running {
            child,
            stdout,
            stderr,
            case: self.case,
            args,
            started: Instant::now(),
            log_dir,
        }
    }

    /// Where this run writes its log files: `logs` in `CUTOUT_DATA_DIR`
    /// when set, else under `XDG_STATE_HOME`, as Cutout decides on Linux.
    pub fn log_dir(&self) -> Option<PathBuf> {
        let var = |name: &str| {
            self.env
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| PathBuf::from(v))
        };
        var("CUTOUT_DATA_DIR")
            .map(|data| data.join("logs"))
            .or_else(|| var("XDG_STATE_HOME").map(|state| state.join("cutout").join("logs")))
    }
}

fn reader(mut stream: impl Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stream.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// A `cutout` process in flight.
pub struct Running {
    child: Child,
    stdout: JoinHandle<String>,
    stderr: JoinHandle<String>,
    case: Option<String>,
    args: Vec<String>,
    started: Instant,
    log_dir: Option<PathBuf>,
}

impl Running {
    /// Sends SIGINT, as Ctrl-C in a terminal does.
    pub fn interrupt(&self) {
        let status = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -INT failed");
    }

    /// Waits for the end (killing it after a minute) and checks the output.
    pub fn wait(mut self) -> Outcome {
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait for cutout") {
                break Some(status);
            }
            if self.started.elapsed() > RUN_LIMIT {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let outcome = Outcome {
            case: self.case,
            args: self.args,
            code: status.and_then(|s| s.code()),
            timed_out: status.is_none(),
            stdout: self.stdout.join().unwrap_or_default(),
            stderr: self.stderr.join().unwrap_or_default(),
            elapsed: self.started.elapsed(),
            events: Vec::new(),
            log: read_logs(self.log_dir.as_deref()),
        };
        outcome.checked()
    }
}

/// Every log file in `dir`, joined (a run appends to the day's file).
fn read_logs(dir: Option<&Path>) -> String {
    let Some(Ok(entries)) = dir.map(std::fs::read_dir) else {
        return String::new();
    };
    let mut files: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    files.sort();
    files
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .collect()
}

/// What a run printed and how it ended.
pub struct Outcome {
    case: Option<String>,
    args: Vec<String>,
    /// The log files' text after the run.
    pub log: String,
    /// The exit code; `None` when killed by a signal or by the time limit.
    pub code: Option<i32>,
    /// Whether the run was killed for taking too long.
    pub timed_out: bool,
    /// Everything on stdout.
    pub stdout: String,
    /// Everything on stderr.
    pub stderr: String,
    /// Wall-clock time.
    pub elapsed: Duration,
    /// The `--json` events, in order.
    pub events: Vec<Value>,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(case) = &self.case {
            writeln!(f, "case: {case}")?;
        }
        writeln!(f, "cutout {}", self.args.join(" "))?;
        writeln!(
            f,
            "exit: {:?} (timed out: {}) after {:?}",
            self.code, self.timed_out, self.elapsed
        )?;
        writeln!(f, "--- stdout ---\n{}", self.stdout)?;
        write!(f, "--- stderr ---\n{}", self.stderr)
    }
}

/// Events about one job; besides them there are `skipped` (an input found in
/// a folder that is neither an image nor a video) and the final `summary`.
const JOB_EVENTS: [&str; 6] = ["added", "state", "warning", "done", "failed", "cancelled"];

impl Outcome {
    fn is_json_batch(&self) -> bool {
        matches!(
            self.args.first().map(String::as_str),
            Some("batch" | "resume")
        ) && self.args.iter().any(|a| a == "--json")
    }

    /// Checks what every run owes: no key printed; for `batch --json` runs
    /// that got going, stdout is only JSON events, each job event carries
    /// `job` and `remote_id`, and the summary comes last.
    fn checked(mut self) -> Outcome {
        assert!(
            !self.timed_out,
            "cutout did not finish within {RUN_LIMIT:?}\n{self}"
        );
        assert!(
            !self.stdout.contains(KEY_MARKER) && !self.stderr.contains(KEY_MARKER),
            "a key was printed\n{self}"
        );
        assert!(
            !self.log.contains(KEY_MARKER),
            "a key was logged\n{self}\n--- log ---\n{}",
            self.log
        );
        if self.is_json_batch() && matches!(self.code, Some(0 | 1 | 130)) {
            let mut events = Vec::new();
            for line in self.stdout.lines().filter(|l| !l.trim().is_empty()) {
                let event: Value = serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}\n{self}"));
                let kind = event["event"]
                    .as_str()
                    .unwrap_or_else(|| panic!("no \"event\" in {line}\n{self}"));
                if JOB_EVENTS.contains(&kind) {
                    assert!(
                        event["job"].is_u64(),
                        "job event without a numeric \"job\": {line}\n{self}"
                    );
                    let remote_id = event.get("remote_id");
                    assert!(
                        remote_id.is_some_and(|r| r.is_null() || r.is_string()),
                        "job event without \"remote_id\" (string or null): {line}\n{self}"
                    );
                } else if kind == "skipped" {
                    assert!(
                        event["input"].is_string(),
                        "skipped without \"input\": {line}\n{self}"
                    );
                } else {
                    assert_eq!(kind, "summary", "unknown event kind: {line}\n{self}");
                }
                events.push(event);
            }
            let last = events.last().and_then(|e| e["event"].as_str());
            assert_eq!(last, Some("summary"), "the summary must come last\n{self}");
            self.events = events;
        }
        self
    }

    /// Panics with the whole run when the exit code is not `code`.
    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Outcome {
        assert_eq!(self.code, Some(code), "unexpected exit code\n{self}");
        self
    }

    /// The events of one kind.
    pub fn of(&self, kind: &str) -> Vec<&Value> {
        self.events.iter().filter(|e| e["event"] == kind).collect()
    }

    /// The `error` texts of `failed` events.
    pub fn errors(&self) -> Vec<String> {
        self.of("failed")
            .iter()
            .map(|e| e["error"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// The one failure's text, panicking unless exactly one job failed.
    #[track_caller]
    pub fn only_error(&self) -> String {
        let errors = self.errors();
        assert_eq!(errors.len(), 1, "expected exactly one failed job\n{self}");
        errors[0].clone()
    }

    /// Asserts the run failed (exit 1) with exactly one failed job whose
    /// error carries each of `says`, and returns that error.
    #[track_caller]
    pub fn assert_one_failure(&self, says: &[&str]) -> String {
        self.assert_code(1);
        let error = self.only_error();
        for needle in says {
            assert_mentions(&error, needle, self);
        }
        error
    }

    /// Asserts the run took at least `secs` seconds, as it must when the
    /// provider answered `Retry-After: secs`.
    #[track_caller]
    pub fn assert_waited_out_retry_after(&self, secs: u64) {
        assert!(
            self.elapsed >= Duration::from_secs(secs),
            "Retry-After: {secs} was not honoured\n{self}"
        );
    }

    /// Every path in `done` events' `outputs`.
    pub fn outputs(&self) -> Vec<PathBuf> {
        self.of("done")
            .iter()
            .flat_map(|e| e["outputs"].as_array().cloned().unwrap_or_default())
            .filter_map(|o| o.as_str().map(PathBuf::from))
            .collect()
    }

    /// The summary event.
    pub fn summary(&self) -> &Value {
        self.events.last().expect("a summary event")
    }

    /// The `state` values reported, in order.
    pub fn states(&self) -> Vec<String> {
        self.of("state")
            .iter()
            .filter_map(|e| e["state"].as_str().map(str::to_owned))
            .collect()
    }

    /// The non-null `progress` values reported while processing, in order.
    pub fn progress(&self) -> Vec<u64> {
        self.of("state")
            .iter()
            .filter_map(|e| e["progress"].as_u64())
            .collect()
    }

    /// Asserts that the summary counts are these.
    #[track_caller]
    pub fn assert_summary(&self, done: u64, failed: u64, cancelled: u64) {
        let summary = self.summary();
        let counts = (
            summary["done"].as_u64(),
            summary["failed"].as_u64(),
            summary["cancelled"].as_u64(),
        );
        assert_eq!(
            counts,
            (Some(done), Some(failed), Some(cancelled)),
            "summary counts\n{self}"
        );
    }
}

/// Starts `F` with its default script changed by `setup` (`|_| {}` for none)
/// and runs `cutout batch` on one input (see [`Workspace::input`]) in a fresh
/// workspace: the setup of most provider tests.
pub fn run_batch<F: Fake>(
    input: &str,
    setup: impl FnOnce(&mut F::Script),
) -> (F, Workspace, Outcome) {
    let mut script = F::Script::default();
    setup(&mut script);
    let fake = F::start(script);
    let ws = Workspace::new();
    let run = ws.batch_on(&fake).arg(ws.input(input)).run();
    (fake, ws, run)
}

/// One way a provider refuses a job: a row of [`assert_refusals`].
#[derive(Clone, Copy)]
pub struct Refusal<S> {
    case: &'static str,
    setup: fn(&mut S),
    wrong_key: Option<&'static str>,
    says: &'static [&'static str],
    submissions: usize,
}

impl<S> Refusal<S> {
    /// The fake, its default script changed by `setup`, refuses the paid
    /// call; the job's error must carry each of `says` (the CLI's advice, the
    /// provider's own words).
    pub fn new(case: &'static str, setup: fn(&mut S), says: &'static [&'static str]) -> Refusal<S> {
        Refusal {
            case,
            setup,
            wrong_key: None,
            says,
            submissions: 1,
        }
    }

    /// The CLI sends `key` instead of the right one to a fake as it comes.
    pub fn wrong_key(key: &'static str, says: &'static [&'static str]) -> Refusal<S> {
        Refusal::new("bad key", |_| {}, says).with_wrong_key(key)
    }

    /// The CLI sends `key` instead of the right one.
    pub fn with_wrong_key(self, key: &'static str) -> Refusal<S> {
        Refusal {
            wrong_key: Some(key),
            ..self
        }
    }

    /// The refusal comes before the paid call, which is then never sent.
    pub fn before_the_paid_call(self) -> Refusal<S> {
        Refusal {
            submissions: 0,
            ..self
        }
    }
}

/// Runs `cutout batch` on `input` once per refusal, each against a fresh `F`
/// in a fresh workspace, and asserts what every refusal owes: exit 1, the one
/// job failed in those words and not retryable, the paid call was sent once
/// at most (a refusal is never retried), and nothing was written.
#[track_caller]
pub fn assert_refusals<F: Fake>(input: &str, refusals: &[Refusal<F::Script>]) {
    for refusal in refusals {
        let mut script = F::Script::default();
        (refusal.setup)(&mut script);
        let fake = F::start(script);
        let ws = Workspace::new();
        let mut cli = ws.batch_on(&fake).case(refusal.case).arg(ws.input(input));
        if let Some(key) = refusal.wrong_key {
            cli = cli.env(F::KEY_VAR, key);
        }

        let run = cli.run();

        run.assert_one_failure(refusal.says);
        assert_eq!(
            run.of("failed")[0]["retryable"],
            false,
            "a refusal is not retryable\n{run}"
        );
        assert_eq!(
            fake.submissions(),
            refusal.submissions,
            "a refusal is not retried\n{run}"
        );
        ws.assert_nothing_written(&run);
    }
}

/// Asserts `text` contains `needle`, showing the run when it does not.
#[track_caller]
pub fn assert_mentions(text: &str, needle: &str, run: &Outcome) {
    assert!(
        text.contains(needle),
        "expected {needle:?} in {text:?}\n{run}"
    );
}

/// Asserts `path` is a PNG of `size` whose corners are transparent and whose
/// centre (where the product stands) is opaque.
#[track_caller]
pub fn assert_cutout_png(path: &Path, size: (u32, u32)) {
    let bytes =
        std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let format = image::guess_format(&bytes).expect("a known image format");
    assert_eq!(
        format,
        image::ImageFormat::Png,
        "{} is not a PNG",
        path.display()
    );
    let image = image::load_from_memory(&bytes)
        .expect("decode the PNG")
        .to_rgba8();
    assert_eq!(
        image.dimensions(),
        size,
        "{} has another size than its input",
        path.display()
    );
    let (w, h) = size;
    for (x, y) in [(0, 0), (w - 1, 0), (0, h - 1), (w - 1, h - 1)] {
        assert_eq!(
            image.get_pixel(x, y)[3],
            0,
            "corner ({x},{y}) of {} is not transparent",
            path.display()
        );
    }
    assert_eq!(
        image.get_pixel(w / 2, h / 2)[3],
        255,
        "the product in {} is not opaque",
        path.display()
    );
}

/// Asserts two paths name the same file (the CLI may print them
/// canonicalised).
#[track_caller]
pub fn assert_same_paths(actual: &[PathBuf], expected: &[PathBuf]) {
    let canonical = |paths: &[PathBuf]| -> Vec<PathBuf> {
        let mut list: Vec<PathBuf> = paths
            .iter()
            .map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| p.clone()))
            .collect();
        list.sort();
        list
    };
    assert_eq!(
        canonical(actual),
        canonical(expected),
        "the outputs reported are not the files written"
    );
}
