//! removebgvideo.com: local videos are uploaded, jobs are created as drafts
//! and started, then polled to `completed`; `/health` needs no key.

use crate::fakes::removebgvideo::{Ending, FakeRemoveBgVideo, Health, KEY, Script};
use crate::fakes::{Breakage, Fault, fake_mp4};
use crate::harness::{Workspace, assert_mentions, assert_same_paths};

#[test]
fn a_local_video_is_uploaded_then_drafted_then_started_then_downloaded() {
    let fake = FakeRemoveBgVideo::start(Script::default());
    let ws = Workspace::new();
    let clip = ws.file("clip.mp4", &fake_mp4(7));

    let run = ws.batch("removebgvideo").envs(fake.env()).arg(&clip).run();

    run.assert_code(0);
    assert_eq!(ws.out_files(), ["clip.webm"], "{run}");
    let (id, job) = fake.jobs().into_iter().next().expect("a job");
    assert_eq!(
        std::fs::read(ws.out_path("clip.webm")).expect("the output"),
        FakeRemoveBgVideo::output_of(&id)
    );
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
    let fake = FakeRemoveBgVideo::start(Script::default());
    let ws = Workspace::new();
    let url = "https://media.example/clips/dancer.mp4";

    let run = ws.batch("removebgvideo").envs(fake.env()).arg(url).run();

    run.assert_code(0);
    assert_eq!(ws.out_files(), ["dancer.webm"], "{run}");
    assert!(
        fake.journal().matching("POST", "/v1/uploads").is_empty(),
        "{run}"
    );
    let (_, job) = fake.jobs().into_iter().next().expect("a job");
    assert_eq!(job.video_url, url);
    assert!(job.started, "the draft was never started\n{run}");
}

#[test]
fn a_failed_job_reports_the_providers_error() {
    let fake = FakeRemoveBgVideo::start(Script {
        ending: Ending::Failed("No foreground subject detected in the video"),
        ..Script::default()
    });
    let ws = Workspace::new();

    let run = ws
        .batch("removebgvideo")
        .envs(fake.env())
        .arg("https://media.example/clips/empty.mp4")
        .run();

    run.assert_code(1);
    let error = run.only_error();
    assert_mentions(&error, "could not process it", &run);
    assert_mentions(&error, "No foreground subject detected in the video", &run);
    assert_eq!(fake.submissions(), 1, "{run}");
    assert!(ws.out_files().is_empty(), "{:?}", ws.out_files());
}

#[test]
fn refusals_say_what_to_do_in_removebgvideos_own_words() {
    let cases: [(&str, Script, Option<&str>, &[&str]); 3] = [
        (
            "bad key",
            Script::default(),
            Some("rbgv-wrong-NEVERPRINT-0000"),
            &["check your key"],
        ),
        (
            "no credits",
            Script {
                credits: 0,
                ..Script::default()
            },
            None,
            &["out of credits"],
        ),
        (
            "unknown job",
            Script {
                forgets_jobs: true,
                ..Script::default()
            },
            None,
            &["Job not found"],
        ),
    ];
    for (case, script, key, expected) in cases {
        let fake = FakeRemoveBgVideo::start(script);
        let ws = Workspace::new();
        let mut cli = ws
            .batch("removebgvideo")
            .envs(fake.env())
            .arg("https://media.example/clips/dancer.mp4");
        if let Some(key) = key {
            cli = cli.env("CUTOUT_REMOVEBGVIDEO_KEY", key);
        }

        let run = cli.run();

        run.assert_code(1);
        let error = run.only_error();
        for needle in expected {
            assert_mentions(&error, needle, &run);
        }
        assert_eq!(
            fake.submissions(),
            1,
            "{case}: a refusal is not retried\n{run}"
        );
    }
}

#[test]
fn a_504_on_create_and_429s_while_polling_are_retried_without_a_second_job() {
    let fake = FakeRemoveBgVideo::start(Script {
        create_faults: vec![Fault::status(504)],
        poll_faults: vec![Fault::throttled().times(2)],
        ..Script::default()
    });
    let ws = Workspace::new();

    let run = ws
        .batch("removebgvideo")
        .envs(fake.env())
        .arg("https://media.example/clips/dancer.mp4")
        .run();

    run.assert_code(0);
    assert_eq!((fake.submissions(), fake.jobs().len()), (2, 1), "{run}");
    assert_eq!(ws.out_files(), ["dancer.webm"]);
}

#[test]
fn an_output_download_that_breaks_once_is_fetched_again_whole() {
    let fake = FakeRemoveBgVideo::start(Script {
        downloads_break: Breakage::Once,
        ..Script::default()
    });
    let ws = Workspace::new();

    let run = ws
        .batch("removebgvideo")
        .envs(fake.env())
        .arg("https://media.example/clips/dancer.mp4")
        .run();

    run.assert_code(0);
    assert_eq!(ws.out_files(), ["dancer.webm"], "{run}");
    let (id, _) = fake.jobs().into_iter().next().expect("a job");
    assert_eq!(
        std::fs::read(ws.out_path("dancer.webm")).expect("the output"),
        FakeRemoveBgVideo::output_of(&id)
    );
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
