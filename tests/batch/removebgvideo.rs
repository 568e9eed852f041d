//! removebgvideo.com: local videos are uploaded, jobs are created as drafts
//! and started, then polled to `completed`; `/health` needs no key.

use crate::fakes::removebgvideo::{Ending, FakeRemoveBgVideo, Health, KEY, Script, VideoJob};
use crate::fakes::{Breakage, Fake, Fault, fake_mp4};
use crate::harness::{Outcome, Refusal, Workspace, assert_refusals, assert_same_paths, run_batch};

/// A clip on the web, which goes straight into a job.
const CLIP_URL: &str = "https://media.example/clips/dancer.mp4";

/// Asserts `--out` holds only `name`, byte for byte the output of the one
/// job, and returns that job.
#[track_caller]
fn assert_saved_whole(
    fake: &FakeRemoveBgVideo,
    ws: &Workspace,
    name: &str,
    run: &Outcome,
) -> (String, VideoJob) {
    assert_eq!(ws.out_files(), [name], "{run}");
    let (id, job) = fake.jobs().into_iter().next().expect("a job");
    assert_eq!(
        std::fs::read(ws.out_path(name)).expect("the output"),
        FakeRemoveBgVideo::output_of(&id),
        "{name} is not the job's output"
    );
    (id, job)
}

#[test]
fn a_local_video_is_uploaded_then_drafted_then_started_then_downloaded() {
    let fake = FakeRemoveBgVideo::start(Script::default());
    let ws = Workspace::new();
    let clip = ws.file("clip.mp4", &fake_mp4(7));

    let run = ws.batch_on(&fake).arg(&clip).run();

    run.assert_code(0);
    let (id, job) = assert_saved_whole(&fake, &ws, "clip.webm", &run);
    assert_same_paths(&run.outputs(), &[ws.out_path("clip.webm")]);
    assert_eq!(run.of("done")[0]["remote_id"], id.as_str(), "{run}");
    let progress = run.progress();
    assert!(
        progress.contains(&30) && progress.contains(&70),
        "progress {progress:?}\n{run}"
    );

    let upload = &fake.journal().matching("POST", "/v1/uploads")[0];
    let part = upload.file("file").expect("the video in the `file` part");
    assert_eq!(part.bytes.len(), fake_mp4(7).len());
    assert!(
        job.video_url.contains("/uploads/"),
        "the job must use the uploaded video: {}",
        job.video_url
    );
    assert_eq!(
        job.request["auto_start"], false,
        "jobs are created as drafts: {}",
        job.request
    );
    let order: Vec<String> = fake
        .journal()
        .lines()
        .into_iter()
        .filter(|l| !l.contains("GET"))
        .collect();
    assert_eq!(
        order,
        [
            "main POST /v1/uploads".to_owned(),
            "main POST /v1/jobs".to_owned(),
            format!("main POST /v1/jobs/{id}/start"),
        ],
        "{run}"
    );
    fake.journal().assert_secret_only_in(KEY, Some("x-api-key"));
}

#[test]
fn a_video_url_goes_straight_into_a_job_without_an_upload() {
    let (fake, ws, run) = run_batch::<FakeRemoveBgVideo>(CLIP_URL, |_| {});

    run.assert_code(0);
    assert_eq!(ws.out_files(), ["dancer.webm"], "{run}");
    assert!(
        fake.journal().matching("POST", "/v1/uploads").is_empty(),
        "{run}"
    );
    let (_, job) = fake.jobs().into_iter().next().expect("a job");
    assert_eq!(job.video_url, CLIP_URL);
    assert!(job.started, "the draft was never started\n{run}");
}

#[test]
fn a_failed_job_reports_the_providers_error() {
    let (fake, ws, run) =
        run_batch::<FakeRemoveBgVideo>("https://media.example/clips/empty.mp4", |s| {
            s.ending = Ending::Failed("No foreground subject detected in the video")
        });

    run.assert_one_failure(&[
        "could not process it",
        "No foreground subject detected in the video",
    ]);
    assert_eq!(fake.submissions(), 1, "{run}");
    ws.assert_nothing_written(&run);
}

#[test]
fn refusals_say_what_to_do_in_removebgvideos_own_words() {
    assert_refusals::<FakeRemoveBgVideo>(
        CLIP_URL,
        &[
            Refusal::wrong_key("rbgv-wrong-NEVERPRINT-0000", &["check your key"]),
            Refusal::new("no credits", |s| s.credits = 0, &["out of credits"]),
            Refusal::new("unknown job", |s| s.forgets_jobs = true, &["Job not found"]),
        ],
    );
}

#[test]
fn a_504_on_create_and_429s_while_polling_are_retried_without_a_second_job() {
    let (fake, ws, run) = run_batch::<FakeRemoveBgVideo>(CLIP_URL, |s| {
        s.create_faults = vec![Fault::status(504)];
        s.poll_faults = vec![Fault::throttled().times(2)];
    });

    run.assert_code(0);
    assert_eq!((fake.submissions(), fake.jobs().len()), (2, 1), "{run}");
    assert_eq!(ws.out_files(), ["dancer.webm"]);
}

#[test]
fn an_output_download_that_breaks_once_is_fetched_again_whole() {
    let (fake, ws, run) =
        run_batch::<FakeRemoveBgVideo>(CLIP_URL, |s| s.downloads_break = Breakage::Once);

    run.assert_code(0);
    assert_saved_whole(&fake, &ws, "dancer.webm", &run);
}

#[test]
fn health_exits_0_when_healthy_and_1_when_degraded() {
    for (health, code) in [(Health::Healthy, 0), (Health::Degraded, 1)] {
        let fake = FakeRemoveBgVideo::start(Script {
            health,
            ..Script::default()
        });
        let ws = Workspace::new();

        let run = ws
            .command(["health", "removebgvideo"])
            .env("CUTOUT_REMOVEBGVIDEO_URL", fake.url())
            .run();

        run.assert_code(code);
        assert_eq!(fake.journal().matching("GET", "/health").len(), 1, "{run}");
    }
}
