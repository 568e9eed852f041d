//! The same faults at every provider's paid call, three files a run, one at
//! a time: a fault that clears costs nothing but time; one that does not
//! fails its own job with a clear message, the other jobs finish, nothing
//! half-written is left, and nothing the provider may have acted on is sent
//! twice.

use std::path::PathBuf;

use crate::fakes::removebg::FakeRemoveBg;
use crate::fakes::removebgvideo::FakeRemoveBgVideo;
use crate::fakes::removit::FakeRemovit;
use crate::fakes::uploadcare::FakeUploadcare;
use crate::fakes::{Fake, Fault, ResultFault, fake_mp4};
use crate::harness::{Outcome, Workspace};

/// One fault at the paid call and what must come of it.
struct Case {
    name: &'static str,
    faults: Vec<Fault>,
    /// The words of the one failure, or `None` when every job must finish.
    fails_with: Option<&'static str>,
    /// Paid calls the provider receives in all, refused ones included.
    paid_calls: usize,
}

fn cases() -> Vec<Case> {
    // The harness allows 4 attempts per call (CUTOUT_RETRY_MAX_ATTEMPTS).
    vec![
        Case {
            name: "a 429 storm without Retry-After",
            faults: vec![Fault::throttled().times(4)],
            fails_with: Some("rate limiting"),
            paid_calls: 4 + 2,
        },
        Case {
            name: "a 429 storm with Retry-After",
            faults: vec![Fault::throttled().retry_after(1).times(4)],
            fails_with: Some("rate limiting"),
            paid_calls: 4 + 2,
        },
        Case {
            name: "a burst of 503s that clears",
            faults: vec![Fault::status(503).times(2)],
            fails_with: None,
            paid_calls: 2 + 3,
        },
        Case {
            name: "a 500, which may have been acted on, so is never replayed",
            faults: vec![Fault::status(500)],
            fails_with: Some("server error"),
            paid_calls: 1 + 2,
        },
    ]
}

/// Runs every case against `F`, whose paid call gets the faults through
/// `paid_faults`, on three inputs made by `inputs`.
fn run_cases<F: Fake>(
    paid_faults: fn(&mut F::Script, Vec<Fault>),
    inputs: fn(&Workspace) -> Vec<PathBuf>,
) {
    for case in cases() {
        let mut script = F::Script::default();
        paid_faults(&mut script, case.faults.clone());
        let fake = F::start(script);
        let ws = Workspace::new();
        let run = ws
            .batch_on(&fake)
            .args(["--concurrency", "1"])
            .args(inputs(&ws))
            .run();
        check(&case, &fake, &ws, &run);
    }
}

fn check<F: Fake>(case: &Case, fake: &F, ws: &Workspace, run: &Outcome) {
    let name = case.name;
    let provider = F::PROVIDER;
    match case.fails_with {
        None => run.assert_summary(3, 0, 0),
        Some(words) => {
            run.assert_summary(2, 1, 0);
            let error = run.only_error();
            assert!(
                error.to_lowercase().contains(words),
                "{provider}, {name}: the error should say {words:?}: {error}\n{run}"
            );
            let failed = run.of("failed");
            assert_eq!(
                failed[0]["retryable"], true,
                "{provider}, {name}: a provider fault can be retried\n{run}"
            );
        }
    }
    let saved = ws.out_files();
    let expected = 3 - usize::from(case.fails_with.is_some());
    assert_eq!(
        saved.len(),
        expected,
        "{provider}, {name}: one file per finished job and nothing half-written: {saved:?}\n{run}"
    );
    assert_eq!(
        fake.submissions(),
        case.paid_calls,
        "{provider}, {name}: paid calls\n{run}"
    );
}

fn photos(ws: &Workspace) -> Vec<PathBuf> {
    ["a.jpg", "b.jpg", "c.jpg"]
        .iter()
        .map(|name| ws.photo(name))
        .collect()
}

fn clips(ws: &Workspace) -> Vec<PathBuf> {
    (1..=3)
        .map(|i| ws.file(&format!("clip{i}.mp4"), &fake_mp4(i)))
        .collect()
}

#[test]
fn remove_bg_survives_throttling_and_server_errors_job_by_job() {
    run_cases::<FakeRemoveBg>(|s, faults| s.faults = faults, photos);
}

#[test]
fn removit_survives_throttling_and_server_errors_job_by_job() {
    run_cases::<FakeRemovit>(|s, faults| s.upload_faults = faults, photos);
}

#[test]
fn uploadcare_survives_throttling_and_server_errors_job_by_job() {
    run_cases::<FakeUploadcare>(|s, faults| s.execute_faults = faults, photos);
}

#[test]
fn removebgvideo_survives_throttling_and_server_errors_job_by_job() {
    run_cases::<FakeRemoveBgVideo>(|s, faults| s.create_faults = faults, clips);
}

/// A job the provider accepts and never finishes fails at the deadline,
/// once, as retryable (waiting longer may yet see it finish), having been
/// polled and paid for once, with nothing written.
fn never_finishes<F: Fake>(script: F::Script, input: fn(&Workspace) -> PathBuf) {
    let fake = F::start(script);
    let ws = Workspace::new();
    let run = ws
        .batch_on(&fake)
        .env("CUTOUT_POLL_DEADLINE_SECS", "1")
        .arg(input(&ws))
        .run();
    let provider = F::PROVIDER;
    run.assert_one_failure(&["did not finish within 1 s"]);
    assert_eq!(run.of("failed")[0]["retryable"], true, "{provider}\n{run}");
    assert_eq!(fake.submissions(), 1, "{provider}: sent once\n{run}");
    ws.assert_nothing_written(&run);
}

#[test]
fn a_job_uploadcare_never_finishes_fails_at_the_deadline_once() {
    never_finishes::<FakeUploadcare>(
        crate::fakes::uploadcare::Script {
            ending: crate::fakes::uploadcare::Ending::Never,
            ..Default::default()
        },
        |ws| ws.photo("bottle.jpg"),
    );
}

#[test]
fn a_job_removebgvideo_never_finishes_fails_at_the_deadline_once() {
    never_finishes::<FakeRemoveBgVideo>(
        crate::fakes::removebgvideo::Script {
            ending: crate::fakes::removebgvideo::Ending::Never,
            ..Default::default()
        },
        |ws| ws.file("clip.mp4", &fake_mp4(1)),
    );
}

// ---------------------------------------------------------------------------
// Garbled answers and words the client does not know
// ---------------------------------------------------------------------------

/// A `{"status":` cut off mid-way: what a dropped proxy connection leaves.
const CUT_SHORT: &str = r#"{"status":"#;

/// What one run of two inputs, one at a time, must end with.
enum Expect {
    /// Every job finishes.
    AllDone,
    /// The first job fails, retryable, with these words; the other finishes.
    FirstFails(&'static [&'static str]),
    /// The first job fails for good (the answer breaks the provider's
    /// contract), with these words; the other finishes.
    FirstFailsForGood(&'static [&'static str]),
}

/// One garbled-answer row: `script` scripts the fault, which hits the first
/// of two jobs run one at a time; `paid_calls` is what the provider
/// receives in all.
fn garbled_row<F: Fake>(
    name: &str,
    script: F::Script,
    inputs: fn(&Workspace) -> Vec<PathBuf>,
    expect: Expect,
    paid_calls: usize,
) {
    let provider = F::PROVIDER;
    let fake = F::start(script);
    let ws = Workspace::new();
    let run = ws
        .batch_on(&fake)
        .args(["--concurrency", "1"])
        .args(&inputs(&ws)[..2])
        .run();
    let saved = ws.out_files();
    match expect {
        Expect::AllDone => {
            run.assert_summary(2, 0, 0);
            assert_eq!(saved.len(), 2, "{provider}, {name}: {saved:?}\n{run}");
        }
        Expect::FirstFails(says) | Expect::FirstFailsForGood(says) => {
            run.assert_summary(1, 1, 0);
            run.assert_one_failure(says);
            assert_eq!(
                run.of("failed")[0]["retryable"],
                matches!(expect, Expect::FirstFails(_)),
                "{provider}, {name}: whether the job may yet be fine at the provider\n{run}"
            );
            assert_eq!(
                saved.len(),
                1,
                "{provider}, {name}: the other job finishes, nothing half-written: {saved:?}\n{run}"
            );
        }
    }
    assert_eq!(
        fake.submissions(),
        paid_calls,
        "{provider}, {name}: paid calls\n{run}"
    );
}

/// A job whose provider answers every poll with a word the client does not
/// know waits out the (1 s) deadline once, and its failure quotes the word.
fn unknown_word<F: Fake>(script: F::Script, inputs: fn(&Workspace) -> Vec<PathBuf>, word: &str) {
    let provider = F::PROVIDER;
    let fake = F::start(script);
    let ws = Workspace::new();
    let run = ws
        .batch_on(&fake)
        .env("CUTOUT_POLL_DEADLINE_SECS", "1")
        .arg(&inputs(&ws)[0])
        .run();
    run.assert_one_failure(&[
        "did not finish within 1 s",
        &format!("its last status was “{word}”"),
    ]);
    assert_eq!(run.of("failed")[0]["retryable"], true, "{provider}\n{run}");
    assert_eq!(fake.submissions(), 1, "{provider}: sent once\n{run}");
    ws.assert_nothing_written(&run);
}

const GARBLED_POLL: &[&str] = &[
    "could not be read after 4 attempt(s)",
    "web page instead of JSON",
];
const GARBLED_PAID: &[&str] = &["could not be read", "not sent again", "cut short"];

/// Where a provider's fake takes faults, and what it calls its calls.
struct GarbledCalls<F: Fake> {
    /// The status (poll) call: safe to ask again.
    status: fn(&mut F::Script, Vec<Fault>),
    status_name: &'static str,
    /// The call that costs money: never sent twice.
    paid: fn(&mut F::Script, Vec<Fault>),
    paid_name: &'static str,
    inputs: fn(&Workspace) -> Vec<PathBuf>,
    /// A status answer carrying the unknown word "paused".
    paused: &'static str,
}

/// The garbled-answer rows for one provider: an HTML page twice on the
/// status call, then the real answer (both jobs done); an HTML page on
/// every attempt of one status call (that job fails, retryable); JSON cut
/// short on the paid call (never resent, that job fails); and an unknown
/// status word until the deadline (the failure names it).
fn garbled_rows<F: Fake>(calls: GarbledCalls<F>) {
    let with = |set: fn(&mut F::Script, Vec<Fault>), fault: Fault| {
        let mut script = F::Script::default();
        set(&mut script, vec![fault]);
        script
    };
    garbled_row::<F>(
        &format!(
            "an HTML page twice on {}, then the real answer",
            calls.status_name
        ),
        with(calls.status, Fault::html_page().times(2)),
        calls.inputs,
        Expect::AllDone,
        2,
    );
    garbled_row::<F>(
        &format!("an HTML page on every attempt of one {}", calls.status_name),
        with(calls.status, Fault::html_page().times(4)),
        calls.inputs,
        Expect::FirstFails(GARBLED_POLL),
        2,
    );
    garbled_row::<F>(
        &format!("JSON cut short in answer to {}", calls.paid_name),
        with(calls.paid, Fault::json_body(CUT_SHORT)),
        calls.inputs,
        Expect::FirstFails(GARBLED_PAID),
        2,
    );
    unknown_word::<F>(
        with(calls.status, Fault::json_body(calls.paused).always()),
        calls.inputs,
        "paused",
    );
}

#[test]
fn removit_asks_again_after_a_garbled_status_but_never_resends_a_garbled_upload() {
    garbled_rows::<FakeRemovit>(GarbledCalls {
        status: |s, faults| s.status_faults = faults,
        status_name: "the status call",
        paid: |s, faults| s.upload_faults = faults,
        paid_name: "the upload",
        inputs: photos,
        paused: r#"{"job_id":"j","state":"paused","status":"paused"}"#,
    });
}

#[test]
fn uploadcare_asks_again_after_a_garbled_status_but_never_resends_a_garbled_execute() {
    garbled_rows::<FakeUploadcare>(GarbledCalls {
        status: |s, faults| s.status_faults = faults,
        status_name: "the add-on status",
        paid: |s, faults| s.execute_faults = faults,
        paid_name: "the add-on's execution",
        inputs: photos,
        paused: r#"{"status":"paused","result":null}"#,
    });
}

#[test]
fn removebgvideo_asks_again_after_a_garbled_status_but_never_resends_a_garbled_create() {
    garbled_rows::<FakeRemoveBgVideo>(GarbledCalls {
        status: |s, faults| s.poll_faults = faults,
        status_name: "the job status",
        paid: |s, faults| s.create_faults = faults,
        paid_name: "the job's creation",
        inputs: clips,
        paused: r#"{"id":"j","status":"paused","progress":40}"#,
    });
}

/// Uploadcare fetching an input URL waits inside the submission; it honours
/// the user's deadline too, and names the word it last saw.
#[test]
fn an_input_url_uploadcare_never_fetches_fails_at_the_users_deadline_naming_its_status() {
    use crate::fakes::uploadcare::Script;
    let fake = FakeUploadcare::start(Script {
        from_url_status_faults: vec![Fault::json_body(r#"{"status":"queued_for_scan"}"#).always()],
        ..Script::default()
    });
    let ws = Workspace::new();
    let run = ws
        .batch_on(&fake)
        .env("CUTOUT_POLL_DEADLINE_SECS", "1")
        .arg("https://images.example/bottle.jpg")
        .run();
    run.assert_one_failure(&["did not finish within 1 s", "“queued_for_scan”"]);
    assert_eq!(run.of("failed")[0]["retryable"], true, "{run}");
    assert_eq!(fake.submissions(), 0, "nothing was paid for\n{run}");
    assert!(run.elapsed < std::time::Duration::from_secs(10), "{run}");
    ws.assert_nothing_written(&run);
}

/// remove.bg answers in the paid call itself, with the picture: a page or
/// cut-off JSON in its place is never sent again and fails clearly.
#[test]
fn remove_bg_never_resends_a_paid_call_whose_answer_is_not_a_picture() {
    use crate::fakes::removebg::Script;
    garbled_row::<FakeRemoveBg>(
        "an HTML page instead of the picture",
        Script {
            faults: vec![Fault::html_page()],
            ..Script::default()
        },
        photos,
        Expect::FirstFailsForGood(&["expected a PNG image but got", "text/html"]),
        2,
    );
}

// ---------------------------------------------------------------------------
// A result of another size
// ---------------------------------------------------------------------------

/// A provider may deliver another size than it was sent (a preview size, its
/// own downscale). Cutout composes from the cut-out alone, never laying it
/// over the input, so nothing is misaligned: saved as delivered, it keeps
/// its size; on a fixed canvas it fills the canvas like any other.
fn another_size<F: Fake>(script: fn() -> F::Script) {
    let provider = F::PROVIDER;
    let delivered = (160, 120);

    let fake = F::start(script());
    let ws = Workspace::new();
    let run = ws.batch_on(&fake).arg(ws.photo("bottle.jpg")).run();
    run.assert_summary(1, 0, 0);
    crate::harness::assert_cutout_png(&ws.out_path("bottle.png"), delivered);

    let fake = F::start(script());
    let ws = Workspace::new();
    let run = ws
        .batch_on(&fake)
        .args(["--canvas", "400x300", "--bg", "#ffffff"])
        .arg(ws.photo("bottle.jpg"))
        .run();
    run.assert_summary(1, 0, 0);
    let saved = image::open(ws.out_path("bottle.png"))
        .unwrap_or_else(|e| panic!("{provider}: the composed result: {e}\n{run}"))
        .to_rgba8();
    assert_eq!(saved.dimensions(), (400, 300), "{provider}\n{run}");
    let corner = saved.get_pixel(0, 0).0;
    assert_eq!(
        corner,
        [255, 255, 255, 255],
        "{provider}: the backdrop\n{run}"
    );
    let centre = saved.get_pixel(200, 150).0;
    assert_ne!(
        centre,
        [255, 255, 255, 255],
        "{provider}: the subject\n{run}"
    );
}

#[test]
fn a_remove_bg_result_of_another_size_is_saved_or_composed_whole() {
    another_size::<FakeRemoveBg>(|| crate::fakes::removebg::Script {
        delivers_size: Some((160, 120)),
        ..Default::default()
    });
}

#[test]
fn a_removit_result_of_another_size_is_saved_or_composed_whole() {
    another_size::<FakeRemovit>(|| crate::fakes::removit::Script {
        delivers_size: Some((160, 120)),
        ..Default::default()
    });
}

// ---------------------------------------------------------------------------
// A service that cannot be reached, a draft never started
// ---------------------------------------------------------------------------

#[test]
fn a_provider_that_cannot_be_reached_fails_each_job_saying_so() {
    // A port that was free a moment ago: nothing listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let ws = Workspace::new();
    let run = ws
        .batch("removit")
        .env("CUTOUT_REMOVIT_URL", format!("http://{closed}"))
        .env("CUTOUT_REMOVIT_KEY", crate::fakes::removit::KEY)
        .arg(ws.photo("bottle.jpg"))
        .run();
    run.assert_one_failure(&["could not reach the service", "4 attempt(s)"]);
    assert_eq!(run.of("failed")[0]["retryable"], true, "{run}");
    ws.assert_nothing_written(&run);
}

/// Regression (F1): a video job's start (the call that bills) that fails
/// in a way that may have reached the service is not sent again and does
/// not fail the job: polling finds the job still a draft and starts it once.
/// Before, the job failed with a created, never-started draft, and a retry
/// paid for a second job.
#[test]
fn regression_f1_a_start_lost_to_a_server_error_is_settled_by_polling() {
    use crate::fakes::removebgvideo::Script;
    let fake = FakeRemoveBgVideo::start(Script {
        start_faults: vec![Fault::status(500)],
        ..Script::default()
    });
    let ws = Workspace::new();
    let run = ws
        .batch_on(&fake)
        .arg(ws.file("clip.mp4", &fake_mp4(1)))
        .run();
    run.assert_summary(1, 0, 0);
    let jobs = fake.jobs();
    assert_eq!(jobs.len(), 1, "one job, never a second: {jobs:?}\n{run}");
    assert!(jobs.values().all(|j| j.started), "{jobs:?}\n{run}");
    assert_eq!(
        fake.start_calls(),
        2,
        "the start that failed, then one from polling\n{run}"
    );
    assert_eq!(ws.out_files(), ["clip.webm"], "{run}");
}

/// A run killed after creating a video job but before starting it: the
/// draft is never started (so never billed); `resume` sends the job afresh
/// and it is started, and paid for, once.
#[test]
fn a_video_job_killed_before_its_start_is_paid_for_once_after_resume() {
    use crate::fakes::removebgvideo::Script;
    let fake = FakeRemoveBgVideo::start(Script {
        start_stalls: 1,
        ..Script::default()
    });
    let ws = Workspace::new();
    let clip = ws.file("clip.mp4", &fake_mp4(1));
    let mut first = ws
        .batch_on(&fake)
        .arg(&clip)
        .command()
        .spawn()
        .expect("start cutout");
    // Killed once its start has reached the fake, which never answers it.
    let waited = std::time::Instant::now();
    while fake.start_calls() == 0 {
        assert!(
            waited.elapsed() < std::time::Duration::from_secs(20),
            "the job was never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    first.kill().expect("kill cutout");
    first.wait().expect("reap cutout");
    assert!(
        fake.jobs().values().all(|j| !j.started),
        "{:?}",
        fake.jobs()
    );

    let resume = ws
        .command(["resume", "--json"])
        .envs(fake.env())
        .env("CUTOUT_POLL_DEADLINE_SECS", "2")
        .run();
    resume.assert_code(0);
    resume.assert_summary(1, 0, 0);
    let started = fake.jobs().values().filter(|j| j.started).count();
    assert_eq!(started, 1, "one job started, so billed, in all\n{resume}");
    assert_eq!(ws.out_files(), ["clip.webm"], "{resume}");
}

// ---------------------------------------------------------------------------
// Result downloads that break, crawl or stall
// ---------------------------------------------------------------------------

/// One way the first job's result download misbehaves (on every attempt)
/// and what must come of it.
struct DownloadCase {
    name: &'static str,
    fault: ResultFault,
    /// `CUTOUT_HTTP_READ_TIMEOUT_MS` for the run.
    read_timeout_ms: u64,
    /// The words of the one failure, or `None` when the result must arrive
    /// whole.
    fails_with: Option<&'static [&'static str]>,
}

fn download_cases() -> Vec<DownloadCase> {
    vec![
        DownloadCase {
            name: "half the body, then a clean close",
            fault: ResultFault::HalfClose,
            read_timeout_ms: 1000,
            fails_with: Some(&["the download broke off", "4 attempt(s)"]),
        },
        DownloadCase {
            // 8 × 80 ms is 640 ms in all, longer than the read timeout:
            // the timeout is on silence, not on the whole transfer.
            name: "a trickle that keeps moving",
            fault: ResultFault::Trickle {
                chunks: 8,
                every_ms: 80,
            },
            read_timeout_ms: 500,
            fails_with: None,
        },
        DownloadCase {
            name: "half the body, then silence past the read timeout",
            fault: ResultFault::Stall,
            // The whole run's timeout: roomy enough for the fakes' own
            // answers on a loaded machine.
            read_timeout_ms: 600,
            fails_with: Some(&["the download broke off", "timed out", "4 attempt(s)"]),
        },
        DownloadCase {
            name: "a reset before any answer",
            fault: ResultFault::ResetBeforeHeaders,
            read_timeout_ms: 1000,
            fails_with: Some(&["network error", "4 attempt(s)"]),
        },
    ]
}

/// Runs every download case against `F`, whose script points the first
/// job's result link at a misbehaving host through `result_fault`, on two of
/// the inputs made by `inputs`, one at a time. A download that never
/// arrives whole is tried within the retry budget, then fails its own job,
/// retryable, with nothing half-written saved as done; a slow one that keeps
/// moving arrives byte for byte; the other job finishes and nothing is paid
/// for twice. The rows run side by side: they mostly wait on the clock.
fn run_download_cases<F: Fake>(
    result_fault: fn(&mut F::Script, ResultFault),
    inputs: fn(&Workspace) -> Vec<PathBuf>,
) {
    std::thread::scope(|rows| {
        for case in download_cases() {
            rows.spawn(move || run_download_case::<F>(&case, result_fault, inputs));
        }
    });
}

fn run_download_case<F: Fake>(
    case: &DownloadCase,
    result_fault: fn(&mut F::Script, ResultFault),
    inputs: fn(&Workspace) -> Vec<PathBuf>,
) {
    let provider = F::PROVIDER;
    let name = case.name;
    let mut script = F::Script::default();
    result_fault(&mut script, case.fault);
    let fake = F::start(script);
    let ws = Workspace::new();
    let run = ws
        .batch_on(&fake)
        .env(
            "CUTOUT_HTTP_READ_TIMEOUT_MS",
            case.read_timeout_ms.to_string(),
        )
        .args(["--concurrency", "1"])
        .args(&inputs(&ws)[..2])
        .run();
    let host = fake.result_host().expect("the fake has a result host");
    let saved = ws.out_files();
    match case.fails_with {
        None => {
            run.assert_summary(2, 0, 0);
            assert_eq!(saved.len(), 2, "{provider}, {name}: {saved:?}\n{run}");
            assert_eq!(
                host.downloads(),
                1,
                "{provider}, {name}: fetched once\n{run}"
            );
            let whole = host.body();
            let identical = saved
                .iter()
                .filter(|file| std::fs::read(ws.out_path(file)).ok() == Some(whole.clone()))
                .count();
            assert_eq!(
                identical, 1,
                "{provider}, {name}: the slow result is saved byte for byte: {saved:?}\n{run}"
            );
        }
        Some(says) => {
            run.assert_summary(1, 1, 0);
            run.assert_one_failure(says);
            assert_eq!(
                run.of("failed")[0]["retryable"],
                true,
                "{provider}, {name}: a broken download can be retried\n{run}"
            );
            assert_eq!(
                saved.len(),
                1,
                "{provider}, {name}: the other job finishes, nothing half-written: {saved:?}\n{run}"
            );
            assert_eq!(
                host.downloads(),
                4,
                "{provider}, {name}: tried within the retry budget, no more\n{run}"
            );
        }
    }
    assert_eq!(
        fake.submissions(),
        2,
        "{provider}, {name}: each job paid for once\n{run}"
    );
}

#[test]
fn a_removit_result_that_trickles_arrives_whole_and_one_that_breaks_or_stalls_fails_alone() {
    run_download_cases::<FakeRemovit>(|s, fault| s.result_fault = Some(fault), photos);
}

#[test]
fn an_uploadcare_result_that_trickles_arrives_whole_and_one_that_breaks_or_stalls_fails_alone() {
    run_download_cases::<FakeUploadcare>(|s, fault| s.result_fault = Some(fault), photos);
}

#[test]
fn a_removebgvideo_output_that_trickles_arrives_whole_and_one_that_breaks_or_stalls_fails_alone() {
    run_download_cases::<FakeRemoveBgVideo>(|s, fault| s.result_fault = Some(fault), clips);
}
