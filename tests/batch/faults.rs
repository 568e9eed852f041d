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
use crate::fakes::{Fake, Fault, fake_mp4};
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
