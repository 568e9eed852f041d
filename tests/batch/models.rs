//! `cutout models` and `cutout runtime`: downloads are checked against the
//! published checksums (a fake host cannot serve the real files, so a
//! download from it must be refused), an offline machine is told what to do,
//! imported models are listed and removable, and the runtime installer
//! refuses anything but the pinned build.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::fakes::models::FakeFileHost;
use crate::harness::{Cutout, Workspace, assert_mentions};

/// The data folder the CLI runs with in `ws`.
fn data_dir(ws: &Workspace) -> PathBuf {
    ws.home().join("data")
}

/// `cutout <args>` with the data folder under the workspace.
fn cutout(ws: &Workspace, args: &[&str]) -> Cutout {
    ws.command(args.iter().copied())
        .env("CUTOUT_DATA_DIR", data_dir(ws).display().to_string())
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/models")
        .join(name)
}

/// Every file under `dir`, as paths relative to it.
fn files_under(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in walkdir::WalkDir::new(dir).into_iter().flatten() {
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        if entry.file_type().is_file() && !hidden {
            let relative = entry.path().strip_prefix(dir).expect("under the folder");
            found.push(relative.to_string_lossy().replace('\\', "/"));
        }
    }
    found.sort();
    found
}

#[test]
fn a_download_that_does_not_match_the_published_checksum_is_refused_and_deleted() {
    let host = FakeFileHost::start(b"not the real u2netp".to_vec());
    let ws = Workspace::new();

    let run = cutout(&ws, &["models", "download", "u2netp"])
        .env("CUTOUT_LOCAL_MODELS_URL", host.url())
        .run();

    run.assert_code(1);
    assert_mentions(&run.stderr, "cannot download u2netp", &run);
    assert_mentions(&run.stderr, "damaged or replaced", &run);
    assert_mentions(&run.stderr, "8e83ca70e441ab06c318d82300c84806", &run);
    assert_eq!(host.paths(), ["/u2netp.onnx"], "{run}");
    let left: Vec<String> = files_under(&data_dir(&ws).join("models"))
        .into_iter()
        .filter(|f| f.ends_with(".onnx") || f.ends_with(".part"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}\n{run}");
}

#[test]
fn an_unreachable_host_reads_as_offline_and_points_at_import() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a port");
        listener.local_addr().expect("its address").port()
    };
    let ws = Workspace::new();

    let run = cutout(&ws, &["models", "download", "u2netp"])
        .env(
            "CUTOUT_LOCAL_MODELS_URL",
            format!("http://127.0.0.1:{port}/"),
        )
        .run();

    run.assert_code(1);
    assert_mentions(&run.stderr, "cannot reach 127.0.0.1", &run);
    assert_mentions(&run.stderr, "check the internet connection", &run);
    assert_mentions(&run.stderr, "cutout models import", &run);
}

#[test]
fn unknown_models_and_remote_plain_http_are_bad_usage() {
    let ws = Workspace::new();

    let run = cutout(&ws, &["models", "download", "sam"]).run();
    run.assert_code(2);
    assert_mentions(&run.stderr, "unknown model `sam`", &run);
    assert_mentions(&run.stderr, "isnet-general-use", &run);

    let run = cutout(&ws, &["models", "download", "u2netp"])
        .env("CUTOUT_LOCAL_MODELS_URL", "http://mirror.example/")
        .run();
    run.assert_code(2);
    assert_mentions(&run.stderr, "CUTOUT_LOCAL_MODELS_URL", &run);
}

#[test]
fn an_imported_model_is_listed_usable_by_its_id_and_removable() {
    let ws = Workspace::new();
    let source = fixture("tiny-isnet.onnx");
    let original = std::fs::read(&source).expect("the fixture model");

    let run = cutout(&ws, &["models", "import"])
        .arg(&source)
        .args(["--family", "isnet", "--name", "t"])
        .run();
    run.assert_code(0);
    assert_mentions(&run.stdout, "custom:t", &run);
    assert_eq!(std::fs::read(&source).expect("the fixture"), original);

    let run = cutout(&ws, &["models", "list"]).run();
    run.assert_code(0);
    let line = run
        .stdout
        .lines()
        .find(|l| l.contains("custom:t"))
        .unwrap_or_else(|| panic!("custom:t is not listed\n{run}"));
    assert_mentions(line, "IS-Net", &run);
    assert_mentions(line, "tiny-isnet.onnx", &run);

    let run = cutout(&ws, &["models", "list", "--json"]).run();
    run.assert_code(0);
    let listed: Value = serde_json::from_str(&run.stdout).expect("JSON");
    let custom = listed["models"]
        .as_array()
        .expect("a list of models")
        .iter()
        .find(|m| m["id"] == "custom:t")
        .unwrap_or_else(|| panic!("custom:t missing from JSON\n{run}"));
    assert_eq!(custom["family"], "isnet");
    assert_eq!(custom["size_bytes"], original.len() as u64);

    let run = cutout(&ws, &["models", "import"])
        .arg(&source)
        .args(["--family", "u2net", "--name", "t"])
        .run();
    run.assert_code(2);
    assert_mentions(&run.stderr, "already imported", &run);

    let run = cutout(&ws, &["models", "remove", "custom:t"]).run();
    run.assert_code(0);
    assert_mentions(&run.stdout, "Removed custom:t", &run);
    let run = cutout(&ws, &["models", "list"]).run();
    assert!(!run.stdout.contains("custom:t"), "{run}");
    assert!(source.exists());
}

#[test]
fn a_file_that_is_not_onnx_is_not_imported() {
    let ws = Workspace::new();
    let picture = ws.photo("shoes.png");

    let run = cutout(&ws, &["models", "import"])
        .arg(&picture)
        .args(["--family", "u2net"])
        .run();

    run.assert_code(2);
    assert_mentions(&run.stderr, "not an ONNX model file", &run);
    assert!(
        files_under(&data_dir(&ws).join("models")).is_empty(),
        "{run}"
    );
}

#[test]
fn non_commercial_models_are_listed_only_when_asked_and_flagged() {
    let ws = Workspace::new();

    let run = cutout(&ws, &["models", "list"]).run();
    run.assert_code(0);
    assert!(!run.stdout.contains("bria-rmbg"), "{run}");
    assert_mentions(&run.stdout, "--all", &run);

    let run = cutout(&ws, &["models", "list", "--all"]).run();
    let line = run
        .stdout
        .lines()
        .find(|l| l.contains("bria-rmbg"))
        .unwrap_or_else(|| panic!("bria-rmbg is not listed\n{run}"));
    assert_mentions(line, "NON-COMMERCIAL", &run);
}

#[test]
fn the_runtime_installer_refuses_a_build_that_is_not_the_pinned_one() {
    let host = FakeFileHost::start(b"PK not the official wheel".to_vec());
    let ws = Workspace::new();

    let run = cutout(&ws, &["runtime", "install"])
        .env("CUTOUT_RUNTIME_URL", host.url())
        .run();

    run.assert_code(1);
    let supported = matches!(
        (std::env::consts::OS, std::env::consts::ARCH),
        ("linux", "x86_64") | ("linux", "aarch64") | ("windows", "x86_64") | ("macos", "aarch64")
    ) && !cfg!(target_env = "musl");
    if supported {
        assert_mentions(&run.stderr, "damaged or replaced", &run);
        assert_mentions(&run.stderr, "SHA-256", &run);
        let paths = host.paths();
        assert_eq!(paths.len(), 1, "{run}");
        assert!(paths[0].contains("/onnxruntime-1.32.0-"), "{run}");
        assert!(paths[0].ends_with(".whl"), "{run}");
    } else {
        assert_mentions(&run.stderr, "no official build", &run);
    }
    let left = files_under(&data_dir(&ws).join("runtime"));
    assert!(left.is_empty(), "left behind: {left:?}\n{run}");
}

#[test]
fn runtime_status_says_where_it_looked() {
    let ws = Workspace::new();

    let run = cutout(&ws, &["runtime", "status"]).run();

    run.assert_code(0);
    assert_mentions(&run.stdout, "ORT_DYLIB_PATH: not set", &run);
    let runtime_dir = data_dir(&ws).join("runtime");
    assert_mentions(&run.stdout, &runtime_dir.display().to_string(), &run);
}
