//! Finding and loading the ONNX Runtime library at run time.
//!
//! Cutout does not link ONNX Runtime: the library is a 20–300 MB download
//! that differs per platform and per GPU, so it is looked for when the local
//! engine first runs, in this order:
//! 1. the file named by `ORT_DYLIB_PATH` (developers, CI, custom builds);
//! 2. where installers ship it ([`bundled_dirs`]): beside the `cutout`
//!    executable, in `../lib/cutout` (.deb, AppImage) or `../Frameworks`
//!    (macOS `.app`);
//! 3. [`runtime_dir`] in Cutout's data directory (where
//!    `cutout runtime install` puts it).
//!
//! The first library that loads is kept for the life of the process (ONNX
//! Runtime cannot be swapped once loaded). Where none loads, the local
//! engine runs on the built-in pure-Rust engine instead and says why.
//! Nothing here panics on a missing, damaged, foreign or too old file: each
//! is checked (it must export `OrtGetApiBase` and report a new enough
//! version) before `ort` is handed it.

use std::ffi::{CStr, OsStr, OsString};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use ort::environment::Environment;

/// Names the ONNX Runtime library to use, ahead of every other place.
pub const DYLIB_PATH_VAR: &str = "ORT_DYLIB_PATH";

/// The oldest ONNX Runtime release (1.x) whose C API Cutout's `ort` speaks.
pub const MINIMUM_MINOR_VERSION: u32 = ort::MINOR_VERSION;

/// What a user can do when the fast engine is missing.
pub const INSTALL_HINT: &str = "run `cutout runtime install` for the faster ONNX Runtime engine";

/// The folder in Cutout's data directory that `cutout runtime install`
/// extracts the library into (for example
/// `<data_dir>/runtime/libonnxruntime.so.1.32.0`), and the last place
/// searched.
pub fn runtime_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("runtime")
}

/// Whether ONNX Runtime is available to this process, and if not, why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum RuntimeStatus {
    /// Loaded and usable.
    Loaded {
        /// The library file.
        path: PathBuf,
        /// Its version, as it reports it (`1.32.0`).
        version: String,
    },
    /// No library file in any of the places searched.
    NotFound {
        /// Every file or folder looked at, in order.
        searched: Vec<PathBuf>,
    },
    /// A library was found but cannot be used.
    Failed {
        /// The file that failed (the first, where several did).
        path: PathBuf,
        /// Why, in words.
        reason: String,
    },
}

impl RuntimeStatus {
    /// Whether sessions can run on ONNX Runtime.
    pub fn is_loaded(&self) -> bool {
        matches!(self, RuntimeStatus::Loaded { .. })
    }

    /// One line for the UI and the CLI: what was loaded, or why nothing was.
    pub fn explain(&self) -> String {
        match self {
            RuntimeStatus::Loaded { path, version } => {
                format!("ONNX Runtime {version}: {}", path.display())
            }
            RuntimeStatus::NotFound { searched } => {
                let places: Vec<String> = searched
                    .iter()
                    .map(|path| path.display().to_string())
                    .collect();
                format!(
                    "no ONNX Runtime library was found (looked in {})",
                    places.join(", ")
                )
            }
            RuntimeStatus::Failed { path, reason } => {
                format!(
                    "the ONNX Runtime library cannot be used ({reason}): {}",
                    path.display()
                )
            }
        }
    }
}

/// Where to look, in order: the environment variable's file, then the
/// library files beside the executable and where the installers put them
/// ([`bundled_dirs`]), then those in [`runtime_dir`]. Returns the files to
/// try and every place looked at (for [`RuntimeStatus::NotFound`]).
pub fn candidates(
    dylib_path: Option<&OsStr>,
    exe_dir: Option<&Path>,
    data_dir: Option<&Path>,
) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let mut found = Vec::new();
    let mut searched = Vec::new();
    if let Some(path) = dylib_path.filter(|path| !path.is_empty()) {
        let path = PathBuf::from(path);
        if path.exists() {
            found.push(path.clone());
        }
        searched.push(path);
    }
    let bundled = exe_dir.map(bundled_dirs).unwrap_or_default();
    let runtime = data_dir.map(runtime_dir);
    for dir in bundled.iter().chain(runtime.as_ref()) {
        found.extend(libraries_in(dir));
        searched.push(dir.clone());
    }
    (found, searched)
}

/// The folders an installed Cutout carries its own ONNX Runtime in, from
/// the executable's folder: beside it (Windows, a portable copy), then
/// `../lib/cutout` (the .deb and the AppImage keep libraries out of
/// `/usr/bin`), then `../Frameworks` (inside the macOS `.app`). Only
/// folders that exist are listed after the first, so the "looked in" list
/// stays short on each platform.
pub fn bundled_dirs(exe_dir: &Path) -> Vec<PathBuf> {
    let mut dirs = vec![exe_dir.to_owned()];
    if let Some(prefix) = exe_dir.parent() {
        for dir in [prefix.join("lib").join("cutout"), prefix.join("Frameworks")] {
            if dir.is_dir() {
                dirs.push(dir);
            }
        }
    }
    dirs
}

/// The ONNX Runtime library files in `dir`, the plain name first, then
/// versioned names from the newest version down.
fn libraries_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut libraries: Vec<(Option<Vec<u32>>, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name();
            let version = library_version_in_name(name.to_str()?)?;
            Some((version, entry.path()))
        })
        .collect();
    // The plain name (None) first, then the highest version.
    libraries.sort_by(|a, b| match (&a.0, &b.0) {
        (None, None) => a.1.cmp(&b.1),
        (None, Some(_)) => std::cmp::Ordering::Less,
        (Some(_), None) => std::cmp::Ordering::Greater,
        (Some(x), Some(y)) => y.cmp(x),
    });
    libraries.into_iter().map(|(_, path)| path).collect()
}

/// `Some(None)` for this platform's plain library name, `Some(Some(version))`
/// for a versioned one (`libonnxruntime.so.1.32.0`,
/// `libonnxruntime.1.32.0.dylib`), `None` for anything else (including
/// `libonnxruntime_providers_cuda.so`).
fn library_version_in_name(name: &str) -> Option<Option<Vec<u32>>> {
    let parse = |version: &str| -> Option<Vec<u32>> {
        version.split('.').map(|part| part.parse().ok()).collect()
    };
    if cfg!(target_os = "windows") {
        return name.eq_ignore_ascii_case("onnxruntime.dll").then_some(None);
    }
    if cfg!(target_os = "macos") {
        if name == "libonnxruntime.dylib" {
            return Some(None);
        }
        let version = name
            .strip_prefix("libonnxruntime.")?
            .strip_suffix(".dylib")?;
        return parse(version).map(Some);
    }
    if name == "libonnxruntime.so" {
        return Some(None);
    }
    parse(name.strip_prefix("libonnxruntime.so.")?).map(Some)
}

/// Checks that `path` is an ONNX Runtime library new enough for Cutout and
/// returns its version, without handing it to `ort` (whose own checks
/// panic on some foreign libraries). A library that opens stays loaded:
/// unloading C++ libraries can crash, and `ort` opens it again next.
pub fn probe_library(path: &Path) -> Result<String, String> {
    let metadata = std::fs::metadata(path).map_err(|error| format!("cannot read it: {error}"))?;
    if !metadata.is_file() {
        return Err("it is not a file".to_owned());
    }
    // SAFETY: opening a shared library runs its initialisers; the file was
    // named by the user or installed by Cutout as ONNX Runtime.
    let library = unsafe { libloading::Library::new(path) }
        .map_err(|error| format!("it is not a library this system can load: {error}"))?;
    let version = {
        // SAFETY: `OrtGetApiBase` has this signature in every ONNX Runtime
        // release; the symbol's absence is checked.
        let get_api_base: libloading::Symbol<
            '_,
            unsafe extern "system" fn() -> *const ort::sys::OrtApiBase,
        > = unsafe { library.get(b"OrtGetApiBase\0") }
            .map_err(|_| "it is not ONNX Runtime (it has no `OrtGetApiBase`)".to_owned())?;
        // SAFETY: calling ONNX Runtime's entry point, which takes nothing
        // and returns a static table (checked for null).
        let base = unsafe { get_api_base() };
        if base.is_null() {
            return Err("it is not a working ONNX Runtime (no API table)".to_owned());
        }
        // SAFETY: the table is static and its version string is a static,
        // NUL-terminated string (checked for null).
        let version = unsafe { ((*base).GetVersionString)() };
        if version.is_null() {
            return Err("it reports no version".to_owned());
        }
        // SAFETY: non-null, NUL-terminated, static.
        unsafe { CStr::from_ptr(version) }
            .to_string_lossy()
            .into_owned()
    };
    // Keep it loaded (see above).
    std::mem::forget(library);
    let minor = version
        .split('.')
        .nth(1)
        .and_then(|minor| minor.parse::<u32>().ok());
    match minor {
        Some(minor) if version.starts_with("1.") && minor >= MINIMUM_MINOR_VERSION => Ok(version),
        _ => Err(format!(
            "it is version {version}; Cutout needs 1.{MINIMUM_MINOR_VERSION} or newer"
        )),
    }
}

static STATUS: Mutex<Option<RuntimeStatus>> = Mutex::new(None);
static ENVIRONMENT: OnceLock<Environment> = OnceLock::new();

/// ONNX Runtime for this process: loaded on the first call from the first
/// place that has a working library; later calls return that first answer
/// (call [`retry`] after installing one).
pub fn load(data_dir: Option<&Path>) -> RuntimeStatus {
    let mut status = STATUS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    status
        .get_or_insert_with(|| search_and_load(data_dir))
        .clone()
}

/// Looks again unless a library is already loaded: for after
/// `cutout runtime install`, or after the user fixed `ORT_DYLIB_PATH`.
pub fn retry(data_dir: Option<&Path>) -> RuntimeStatus {
    let mut status = STATUS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    match &*status {
        Some(loaded @ RuntimeStatus::Loaded { .. }) => loaded.clone(),
        _ => status.insert(search_and_load(data_dir)).clone(),
    }
}

/// The environment sessions are created in, once [`load`] succeeded.
pub(crate) fn environment() -> Option<&'static Environment> {
    ENVIRONMENT.get()
}

fn search_and_load(data_dir: Option<&Path>) -> RuntimeStatus {
    let variable: Option<OsString> = std::env::var_os(DYLIB_PATH_VAR);
    let exe = std::env::current_exe().ok();
    let exe_dir = exe.as_deref().and_then(Path::parent);
    let (found, searched) = candidates(variable.as_deref(), exe_dir, data_dir);
    load_first(&found, searched)
}

/// Loads the first of `found` that works into `ort`; `searched` is what
/// [`RuntimeStatus::NotFound`] reports when `found` is empty.
fn load_first(found: &[PathBuf], searched: Vec<PathBuf>) -> RuntimeStatus {
    let mut first_failure = None;
    for path in found {
        match probe_library(path).and_then(|version| start(path).map(|()| version)) {
            Ok(version) => {
                tracing::info!(path = %path.display(), %version, "loaded ONNX Runtime");
                return RuntimeStatus::Loaded {
                    path: path.clone(),
                    version,
                };
            }
            Err(reason) => {
                tracing::warn!(path = %path.display(), %reason, "cannot use this ONNX Runtime");
                first_failure.get_or_insert(RuntimeStatus::Failed {
                    path: path.clone(),
                    reason,
                });
            }
        }
    }
    first_failure.unwrap_or(RuntimeStatus::NotFound { searched })
}

/// Hands the checked library to `ort` and creates the process's one
/// environment.
fn start(path: &Path) -> Result<(), String> {
    if ENVIRONMENT.get().is_some() {
        return Ok(());
    }
    let builder = ort::init_from(path).map_err(|error| error.to_string())?;
    let environment = builder
        .with_name("cutout")
        .with_telemetry(false)
        .build()
        .map_err(|error| format!("it loaded but would not start: {error}"))?;
    let _ = ENVIRONMENT.set(environment);
    Ok(())
}

/// For tests: whether ONNX Runtime loads in this process, from
/// `ORT_DYLIB_PATH` only. Panics (failing the test) when it does not and
/// `CUTOUT_TEST_ORT=required`, so CI cannot silently skip the ONNX Runtime
/// half of the tests.
#[doc(hidden)]
pub fn available_for_tests() -> bool {
    let status = load(None);
    if status.is_loaded() {
        return true;
    }
    let required = std::env::var("CUTOUT_TEST_ORT").is_ok_and(|value| value == "required");
    assert!(
        !required,
        "CUTOUT_TEST_ORT=required but ONNX Runtime is not usable: {}; set {DYLIB_PATH_VAR} to libonnxruntime",
        status.explain()
    );
    eprintln!(
        "note: ONNX Runtime tests skipped ({}); set {DYLIB_PATH_VAR} to run them",
        status.explain()
    );
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_variable_comes_first_then_the_executable_folder_then_the_data_folder() {
        let root = tempfile::tempdir().unwrap();
        let named = root.path().join("custom-ort.so");
        std::fs::write(&named, b"x").unwrap();
        let exe_dir = root.path().join("bin");
        let data_dir = root.path().join("data");
        let runtime = runtime_dir(&data_dir);
        std::fs::create_dir_all(&exe_dir).unwrap();
        std::fs::create_dir_all(&runtime).unwrap();
        let beside = exe_dir.join(platform_name(None));
        let installed = runtime.join(platform_name(Some("1.32.0")));
        std::fs::write(&beside, b"x").unwrap();
        std::fs::write(&installed, b"x").unwrap();
        std::fs::write(runtime.join("README.txt"), b"x").unwrap();

        let (found, searched) =
            candidates(Some(named.as_os_str()), Some(&exe_dir), Some(&data_dir));
        assert_eq!(found, vec![named.clone(), beside, installed]);
        assert_eq!(searched, vec![named, exe_dir, runtime]);
    }

    #[test]
    fn an_installed_cutout_finds_the_library_its_package_put_in_lib_cutout_or_frameworks() {
        let root = tempfile::tempdir().unwrap();
        let exe_dir = root.path().join("usr").join("bin");
        let packaged = root.path().join("usr").join("lib").join("cutout");
        let frameworks = root.path().join("usr").join("Frameworks");
        std::fs::create_dir_all(&exe_dir).unwrap();
        std::fs::create_dir_all(&packaged).unwrap();
        std::fs::create_dir_all(&frameworks).unwrap();
        let library = packaged.join(platform_name(Some("1.32.0")));
        std::fs::write(&library, b"x").unwrap();

        let (found, searched) = candidates(None, Some(&exe_dir), None);
        assert_eq!(found, vec![library]);
        assert_eq!(searched, vec![exe_dir, packaged, frameworks]);
    }

    #[test]
    fn the_plain_name_comes_before_versioned_ones_and_newer_versions_first() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            platform_name(Some("1.9.0")),
            platform_name(Some("1.32.0")),
            platform_name(None),
            "libonnxruntime_providers_shared.so".to_owned(),
        ] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        let names: Vec<String> = libraries_in(dir.path())
            .iter()
            .map(|path| path.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        if cfg!(target_os = "windows") {
            assert_eq!(names, vec![platform_name(None)]);
        } else {
            assert_eq!(
                names,
                vec![
                    platform_name(None),
                    platform_name(Some("1.32.0")),
                    platform_name(Some("1.9.0"))
                ]
            );
        }
    }

    fn platform_name(version: Option<&str>) -> String {
        match (
            cfg!(target_os = "windows"),
            cfg!(target_os = "macos"),
            version,
        ) {
            (true, _, _) => "onnxruntime.dll".to_owned(),
            (_, true, None) => "libonnxruntime.dylib".to_owned(),
            (_, true, Some(version)) => format!("libonnxruntime.{version}.dylib"),
            (_, _, None) => "libonnxruntime.so".to_owned(),
            (_, _, Some(version)) => format!("libonnxruntime.so.{version}"),
        }
    }

    #[test]
    fn nothing_found_lists_every_place_searched() {
        let root = tempfile::tempdir().unwrap();
        let missing = root.path().join("nowhere.so");
        let (found, searched) = candidates(
            Some(missing.as_os_str()),
            Some(root.path()),
            Some(root.path()),
        );
        assert!(found.is_empty());
        let status = load_first(&found, searched);
        let RuntimeStatus::NotFound { searched } = &status else {
            panic!("{status:?}");
        };
        assert_eq!(searched.len(), 3);
        assert!(
            status.explain().contains("nowhere.so"),
            "{}",
            status.explain()
        );
    }

    #[test]
    fn a_file_that_is_not_a_library_fails_with_a_reason_instead_of_crashing() {
        let dir = tempfile::tempdir().unwrap();
        let garbage = dir.path().join(platform_name(Some("1.32.0")));
        std::fs::write(&garbage, b"this is not a shared library").unwrap();
        let empty = dir.path().join(platform_name(None));
        std::fs::write(&empty, b"").unwrap();

        let status = load_first(&[garbage.clone(), empty], Vec::new());
        let RuntimeStatus::Failed { path, reason } = &status else {
            panic!("{status:?}");
        };
        assert_eq!(path, &garbage);
        assert!(reason.contains("not a library"), "{reason}");
        assert!(!status.is_loaded());
    }

    #[test]
    fn a_folder_named_as_the_library_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let reason = probe_library(dir.path()).unwrap_err();
        assert!(reason.contains("not a file"), "{reason}");
    }

    #[test]
    fn a_real_onnx_runtime_reports_a_version_cutout_accepts() {
        let Some(path) = std::env::var_os(DYLIB_PATH_VAR) else {
            // Fails under CUTOUT_TEST_ORT=required, prints why otherwise.
            available_for_tests();
            return;
        };
        let version = probe_library(Path::new(&path)).unwrap();
        assert!(version.starts_with("1."), "{version}");
        let minor: u32 = version.split('.').nth(1).unwrap().parse().unwrap();
        assert!(minor >= MINIMUM_MINOR_VERSION, "{version}");
    }
}
