//! Disk faults mid-batch: the output folder removed, a file standing where
//! a folder should be, a full disk. The jobs that cannot be written fail
//! with words a person can act on and can be retried; the results already
//! saved are never touched; nothing half-written is left; and no photo is
//! sent (and paid for) twice.
//!
//! The full disk is a 256 KiB tmpfs mounted over the output folder in a
//! private mount namespace (`unshare -Urm`, no root needed). Where
//! namespaces are not allowed the test is skipped with a note, unless
//! `CUTOUT_TEST_MOUNTS=required` (as `scripts/test` sets), which fails it.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::fakes::Fake;
use crate::fakes::removebg::{FakeRemoveBg, Script};
use crate::harness::{Workspace, assert_mentions};

/// What Cutout calls its temporary files while writing.
const PARTIAL_PREFIX: &str = ".cutout-partial-";

/// A remove.bg that takes long enough per photo for a test to change the
/// disk between two jobs.
fn slow_removebg() -> FakeRemoveBg {
    FakeRemoveBg::start(Script {
        processing_ms: 400,
        ..Script::default()
    })
}

fn partials(files: &[String]) -> Vec<&String> {
    files
        .iter()
        .filter(|f| {
            f.rsplit('/')
                .next()
                .is_some_and(|n| n.starts_with(PARTIAL_PREFIX))
        })
        .collect()
}

/// Waits for the batch's first saved result (jobs may start in any order)
/// and returns its path relative to the output folder.
#[track_caller]
fn first_result(ws: &Workspace, candidates: &[&str]) -> String {
    let waiting = Instant::now();
    loop {
        if let Some(found) = candidates.iter().find(|c| ws.out_path(c).is_file()) {
            return (*found).to_owned();
        }
        assert!(
            waiting.elapsed() < Duration::from_secs(20),
            "no result appeared: {:?}",
            ws.out_files()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn an_output_folder_removed_mid_batch_is_made_again_for_the_next_result() {
    let fake = slow_removebg();
    let ws = Workspace::new();
    ws.photo("shoot/a.jpg");
    ws.photo("shoot/b.jpg");
    let running = ws
        .batch_on(&fake)
        .args(["--concurrency", "1"])
        .arg(ws.inputs.join("shoot"))
        .spawn();
    let first = first_result(&ws, &["shoot/a.png", "shoot/b.png"]);

    std::fs::remove_dir_all(&ws.out).expect("remove the output folder");
    let run = running.wait();

    run.assert_code(0);
    let second = if first == "shoot/a.png" {
        "shoot/b.png"
    } else {
        "shoot/a.png"
    };
    assert_eq!(ws.out_files(), [second], "{run}");
    assert_eq!(fake.submissions(), 2, "{run}");
}

#[test]
fn a_file_where_the_output_folder_goes_fails_that_job_retryably_and_keeps_what_was_saved() {
    let fake = slow_removebg();
    let ws = Workspace::new();
    ws.photo("shoot/one/a.jpg");
    ws.photo("shoot/two/b.jpg");
    let running = ws
        .batch_on(&fake)
        .args(["--concurrency", "1"])
        .arg(ws.inputs.join("shoot"))
        .spawn();
    let saved = first_result(&ws, &["shoot/one/a.png", "shoot/two/b.png"]);
    let saved_bytes = std::fs::read(ws.out_path(&saved)).expect("read the saved result");
    let other_folder = if saved.starts_with("shoot/one/") {
        "shoot/two"
    } else {
        "shoot/one"
    };

    std::fs::write(ws.out_path(other_folder), b"a file, not a folder").expect("block the folder");
    let run = running.wait();

    run.assert_code(1);
    run.assert_summary(1, 1, 0);
    let failed = run.of("failed");
    let error = failed[0]["error"].as_str().unwrap_or_default();
    assert_mentions(error, "cannot write to the output folder", &run);
    assert_mentions(error, "a file stands where a folder should be", &run);
    assert_eq!(failed[0]["retryable"], true, "{run}");
    assert_eq!(
        std::fs::read(ws.out_path(&saved)).ok(),
        Some(saved_bytes),
        "{run}"
    );
    assert!(partials(&ws.out_files()).is_empty(), "{:?}", ws.out_files());
    assert_eq!(fake.submissions(), 2, "each photo sent once\n{run}");
}

/// Whether this machine lets a test mount a tmpfs in a namespace of its
/// own; `None` after a skip note, or a failure when mounts are required.
fn private_mounts(test: &str) -> Option<()> {
    let required = std::env::var("CUTOUT_TEST_MOUNTS").as_deref() == Ok("required");
    let works = Command::new("unshare")
        .args(["-Urm", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if works {
        return Some(());
    }
    let why = "`unshare -Urm` is not allowed here (no private mount namespaces)";
    assert!(!required, "CUTOUT_TEST_MOUNTS=required, but {why}");
    eprintln!("skipped {test}: {why}");
    None
}

/// Runs the rest of the command line with a 256 KiB tmpfs over `$1`
/// holding `$2` as an earlier result, then made full (`$4` = `full`: filled
/// to the last byte) or read-only, and copies what the disk holds to `$3`
/// afterwards (the tmpfs ends with the namespace).
const SMALL_DISK: &str = r#"
set -eu
out=$1 earlier=$2 seen=$3 trouble=$4
shift 4
mkdir -p "$out"
mount -t tmpfs -o size=256k cutout-test "$out"
mkdir "$out/shoot"
cp "$earlier" "$out/shoot/earlier.png"
case $trouble in
  full) cat /dev/zero > "$out/filler" 2>/dev/null || true ;;
  read-only) mount -o remount,ro "$out" ;;
esac
set +e
"$@"
code=$?
cp -a "$out/shoot" "$seen/"
exit $code
"#;

/// A disk trouble, and the words the failed jobs must use for it.
struct DiskTrouble {
    name: &'static str,
    says: &'static str,
}

#[test]
fn a_full_or_read_only_disk_fails_the_jobs_retryably_instead_of_saving_empty_files_as_done() {
    if private_mounts("a_full_or_read_only_disk_fails_the_jobs").is_none() {
        return;
    }
    let troubles = [
        DiskTrouble {
            name: "full",
            says: "the disk is full",
        },
        DiskTrouble {
            name: "read-only",
            says: "the disk is read-only",
        },
    ];
    for DiskTrouble { name, says } in troubles {
        let fake = FakeRemoveBg::start(Script::default());
        let ws = Workspace::new();
        ws.photo("shoot/a.jpg");
        ws.photo("shoot/b.jpg");
        let earlier = ws.file(
            "earlier.png",
            &crate::fakes::png(&crate::fakes::cut_out(&crate::fakes::product_shot(
                64, 48, 9,
            ))),
        );
        let seen: PathBuf = ws.out.with_file_name("on-the-small-disk");
        std::fs::create_dir_all(&seen).expect("a folder for the disk's contents");
        let wrapper: Vec<OsString> = ["-Urm", "sh", "-c", SMALL_DISK, "sh"]
            .into_iter()
            .map(OsString::from)
            .chain([
                ws.out.clone().into(),
                earlier.clone().into(),
                seen.clone().into(),
                name.into(),
            ])
            .collect();

        let run = ws
            .batch_on(&fake)
            .case(name)
            .under("unshare", wrapper)
            .arg(ws.inputs.join("shoot"))
            .run();

        run.assert_code(1);
        run.assert_summary(0, 2, 0);
        for failed in run.of("failed") {
            let error = failed["error"].as_str().unwrap_or_default();
            assert_mentions(error, says, &run);
            assert_mentions(error, &ws.out.join("shoot").display().to_string(), &run);
            assert!(
                !error.contains(PARTIAL_PREFIX),
                "{name}: names a temporary file: {error}"
            );
            assert_eq!(failed["retryable"], true, "{run}");
        }
        let on_disk: Vec<String> = std::fs::read_dir(seen.join("shoot"))
            .expect("the output folder on the small disk")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(on_disk, ["earlier.png"], "{name}: {run}");
        assert_eq!(
            std::fs::read(seen.join("shoot/earlier.png")).ok(),
            std::fs::read(&earlier).ok(),
            "{name}: the earlier result is intact"
        );
        assert_eq!(
            fake.submissions(),
            2,
            "{name}: a disk error never sends a photo again\n{run}"
        );
    }
}
