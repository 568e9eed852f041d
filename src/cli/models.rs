//! `cutout models` (list, download, import and remove the local engine's
//! models) and `cutout runtime` (where ONNX Runtime was looked for and
//! found; install Microsoft's official build). Downloads show a progress bar
//! on a terminal and resume where an interrupted one stopped.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use url::Url;

use super::{EXIT_ALL_DONE, EXIT_INTERRUPTED, EXIT_SOME_FAILED, UsageError, runtime};
use crate::config::{self, process_env};
use crate::local::LocalError;
use crate::local::catalogue::{self, CatalogueModel, ModelFamily};
use crate::local::download::{DownloadProgress, DownloadStage, Downloader, human_bytes};
use crate::local::install::{self, ORT_VERSION, RUNTIME_URL_VAR, RuntimeRelease};
use crate::local::models::{InstalledModel, ModelOrigin, ModelStore};
use crate::local::runtime::{self as ort_runtime, DYLIB_PATH_VAR, RuntimeStatus};
use crate::paths::AppDirs;

/// Overrides the address the catalogue's models are downloaded from (a
/// mirror, or a test's fake); the published checksums still apply.
pub const MODELS_URL_VAR: &str = "CUTOUT_LOCAL_MODELS_URL";

/// `cutout models` arguments.
#[derive(Debug, Args)]
pub struct ModelsArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: ModelsCommand,
}

/// The `cutout models` subcommands.
#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// List the local models: which are downloaded, their size, family,
    /// what each is good for and its licence; imported models too.
    List {
        /// Also list models whose licence forbids commercial use.
        #[arg(long)]
        all: bool,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Download models from the catalogue (resuming an interrupted
    /// download), checking each against its published checksum.
    #[command(
        after_help = "Exit status: 0 every model is here; 1 a download failed (the others still \
                      ran); 2 an unknown model; 130 stopped with Ctrl-C (what was downloaded is \
                      kept, and the same command continues from it). Offline? Copy the .onnx file \
                      over and use `cutout models import`."
    )]
    Download {
        /// Model ids, as `cutout models list --all` shows them.
        #[arg(value_name = "ID", required = true)]
        ids: Vec<String>,
    },
    /// Copy an ONNX model file into Cutout (for machines without internet,
    /// or a model of your own); it is used as `custom:<name>`. The file
    /// itself is left as it is.
    Import {
        /// The .onnx file.
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Its architecture, which decides how images are fed to it: u2net
        /// (also u2netp, silueta, u2net_human_seg), isnet or birefnet.
        #[arg(long, value_name = "FAMILY")]
        family: ModelFamily,
        /// The name to use it by (default: from the file's name); lower-case
        /// letters, digits, `-`, `_` and `.`.
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
        /// Replace an imported model of the same name.
        #[arg(long)]
        replace: bool,
    },
    /// Delete downloaded or imported models and say how much space that
    /// freed.
    Remove {
        /// Model ids (`custom:<name>` for imported ones).
        #[arg(value_name = "ID", required = true)]
        ids: Vec<String>,
    },
}

/// `cutout runtime` arguments.
#[derive(Debug, Args)]
pub struct RuntimeArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: RuntimeCommand,
}

/// The `cutout runtime` subcommands.
#[derive(Debug, Subcommand)]
pub enum RuntimeCommand {
    /// Show where ONNX Runtime (the faster engine for local models) was
    /// looked for, in order, and what was found.
    Status {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Download Microsoft's official ONNX Runtime build for this platform
    /// into Cutout's data folder, checked against a pinned checksum.
    #[command(
        after_help = "Exit status: 0 installed; 1 the download or installation failed, \
                      or there is no official build for this platform; 130 stopped with Ctrl-C."
    )]
    Install,
}

/// Runs one `cutout models` command and returns the exit status.
pub(super) fn run_models(args: ModelsArgs) -> Result<u8, UsageError> {
    let data_dir = data_dir()?;
    let store = ModelStore::new(&data_dir);
    match args.command {
        ModelsCommand::List { all, json } => {
            list(&store, all, json);
            Ok(EXIT_ALL_DONE)
        }
        ModelsCommand::Download { ids } => download(&store, &ids),
        ModelsCommand::Import {
            file,
            family,
            name,
            replace,
        } => import(&store, &file, family, name.as_deref(), replace),
        ModelsCommand::Remove { ids } => remove(&store, &ids),
    }
}

/// Runs one `cutout runtime` command and returns the exit status.
pub(super) fn run_runtime(args: RuntimeArgs) -> Result<u8, UsageError> {
    let data_dir = data_dir()?;
    match args.command {
        RuntimeCommand::Status { json } => runtime_status(&data_dir, json),
        RuntimeCommand::Install => runtime_install(&data_dir),
    }
}

fn data_dir() -> Result<PathBuf, UsageError> {
    let dirs = AppDirs::resolve(&process_env).map_err(|e| UsageError::new(e.to_string()))?;
    Ok(dirs.data_dir().to_owned())
}

/// A base URL from `variable`, else `default`.
fn base_url(variable: &'static str, default: &str) -> Result<Url, UsageError> {
    let (value, from_variable) = match process_env(variable) {
        Some(value) => (value, true),
        None => (default.to_owned(), false),
    };
    config::parse_base_url(&value).map_err(|reason| {
        let source = if from_variable {
            variable
        } else {
            "the built-in address"
        };
        UsageError::new(format!(
            "{source} is not a usable address ({reason}): {value}"
        ))
    })
}

fn downloader() -> Result<Downloader, UsageError> {
    let policy = config::retry_policy(&process_env)?;
    Ok(Downloader::new(policy))
}

fn list(store: &ModelStore, all: bool, as_json: bool) {
    let installed = store.installed();
    let on_disk = |id: &str| installed.iter().find(|m| m.id == id);
    let shown: Vec<&CatalogueModel> = catalogue::CATALOGUE
        .iter()
        .filter(|m| all || !m.non_commercial)
        .collect();
    let hidden = catalogue::CATALOGUE.len() - shown.len();
    let imported: Vec<&InstalledModel> = installed
        .iter()
        .filter(|m| matches!(m.origin, ModelOrigin::Imported { .. }))
        .collect();

    if as_json {
        let mut models: Vec<_> = shown
            .iter()
            .map(|model| {
                let here = on_disk(model.id);
                json!({
                    "id": model.id,
                    "source": "catalogue",
                    "family": model.family,
                    "downloaded": here.is_some(),
                    "size_bytes": here.map(|m| m.size_bytes),
                    "approx_bytes": model.approx_bytes,
                    "path": here.map(|m| m.path.display().to_string()),
                    "good_for": model.good_for,
                    "licence": model.licence,
                    "non_commercial": model.non_commercial,
                    "default": model.id == catalogue::DEFAULT_MODEL,
                })
            })
            .collect();
        for model in &imported {
            let ModelOrigin::Imported {
                original_file_name,
                imported_at,
            } = &model.origin
            else {
                continue;
            };
            models.push(json!({
                "id": model.id,
                "source": "imported",
                "family": model.family,
                "downloaded": true,
                "size_bytes": model.size_bytes,
                "path": model.path.display().to_string(),
                "original_file_name": original_file_name,
                "imported_at": imported_at,
            }));
        }
        println!(
            "{}",
            json!({"folder": store.dir().display().to_string(), "models": models})
        );
        return;
    }

    println!("Local models (kept in {})", store.dir().display());
    let id_width = shown
        .iter()
        .map(|m| m.id.len())
        .chain(imported.iter().map(|m| m.id.len()))
        .max()
        .unwrap_or(0);
    for model in &shown {
        let here = on_disk(model.id);
        let mark = if here.is_some() { "✓" } else { " " };
        let size = match here {
            Some(m) => human_bytes(m.size_bytes),
            None => format!("~{}", human_bytes(model.approx_bytes)),
        };
        let mut notes = Vec::new();
        if model.id == catalogue::DEFAULT_MODEL {
            notes.push("default".to_owned());
        }
        if model.non_commercial {
            notes.push("NON-COMMERCIAL USE ONLY".to_owned());
        }
        let notes = if notes.is_empty() {
            String::new()
        } else {
            format!(" [{}]", notes.join(", "))
        };
        println!(
            "{mark} {:id_width$}  {:8}  {:>9}  {:12}  {}{notes}",
            model.id,
            model.family.display_name(),
            size,
            model.licence,
            model.good_for,
        );
    }
    if !imported.is_empty() {
        println!();
        println!("Imported:");
        for model in &imported {
            let from = match &model.origin {
                ModelOrigin::Imported {
                    original_file_name, ..
                } => format!("from {original_file_name}"),
                ModelOrigin::Catalogue(_) => String::new(),
            };
            println!(
                "✓ {:id_width$}  {:8}  {:>9}  {from}",
                model.id,
                model.family.display_name(),
                human_bytes(model.size_bytes),
            );
        }
    }
    println!();
    println!("✓ = on this machine. Download with `cutout models download <ID>`;");
    println!(
        "offline, copy a .onnx file over and `cutout models import <FILE> --family <FAMILY>`."
    );
    if hidden > 0 {
        println!(
            "{hidden} more model(s) whose licence forbids commercial use: `cutout models list --all`."
        );
    }
}

/// A byte progress bar on stderr, or nothing when stderr is not a terminal.
fn progress_bar(label: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template(
        "{prefix} {msg} {bar:32.cyan/blue} {bytes}/{total_bytes} {bytes_per_sec} (ETA {eta})",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_prefix(label.to_owned());
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// Moves `bar` along with a download.
fn follow(bar: &ProgressBar, progress: DownloadProgress) {
    if let Some(total) = progress.total_bytes {
        bar.set_length(total);
    }
    bar.set_position(progress.done_bytes);
    match progress.stage {
        DownloadStage::WaitingForOtherDownload => {
            bar.set_message("waiting for another Cutout downloading it")
        }
        DownloadStage::Downloading => bar.set_message(""),
        DownloadStage::Verifying => bar.set_message("checking"),
    }
}

/// Runs `work` until it ends or Ctrl-C cancels it; `None` after Ctrl-C.
fn until_interrupted<T>(
    work: impl AsyncFnOnce(&CancellationToken) -> T,
) -> Result<Option<T>, UsageError> {
    let cancel = CancellationToken::new();
    runtime()?.block_on(async {
        let interrupted = cancel.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                interrupted.cancel();
            }
        });
        let outcome = work(&cancel).await;
        if cancel.is_cancelled() {
            Ok(None)
        } else {
            Ok(Some(outcome))
        }
    })
}

/// Downloads the catalogue model a `cutout batch -p local` run needs, with
/// the same progress bar as `cutout models download`, before any job
/// starts. `Some(exit code)` when the batch should not go on (the download
/// failed or was interrupted); `None` when the model is here (or is not a
/// catalogue model, which the job itself resolves).
pub(super) fn fetch_for_batch(model: &str) -> Result<Option<u8>, UsageError> {
    let store = ModelStore::new(&data_dir()?);
    if catalogue::find(model).is_none() || store.is_downloaded(model) {
        return Ok(None);
    }
    let code = download(&store, &[model.to_owned()])?;
    Ok((code != EXIT_ALL_DONE).then_some(code))
}

fn download(store: &ModelStore, ids: &[String]) -> Result<u8, UsageError> {
    let mut models = Vec::new();
    for id in ids {
        let id = id.trim();
        match catalogue::find(id) {
            Some(model) => models.push(model),
            None if id.starts_with(crate::local::models::CUSTOM_PREFIX) => {
                return Err(UsageError::new(format!(
                    "`{id}` is an imported model, already on this machine; only catalogue models \
                     are downloaded (see `cutout models list --all`)"
                )));
            }
            None => {
                let ids: Vec<&str> = catalogue::CATALOGUE.iter().map(|m| m.id).collect();
                return Err(UsageError::new(format!(
                    "unknown model `{id}`; choose one of {}",
                    ids.join(", ")
                )));
            }
        }
    }
    let base = base_url(MODELS_URL_VAR, catalogue::DEFAULT_MODELS_URL)?;
    let downloader = downloader()?;
    let mut failed = 0;
    for model in models {
        if model.non_commercial {
            eprintln!(
                "note: the licence of {} ({}) allows non-commercial use only.",
                model.id, model.licence
            );
        }
        let path = store.model_path(model);
        if store.is_downloaded(model.id) {
            let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            println!(
                "{} is already here ({}): {}",
                model.id,
                human_bytes(size),
                path.display()
            );
            continue;
        }
        let bar = progress_bar(model.id);
        if bar.is_hidden() {
            eprintln!(
                "Downloading {} (about {})…",
                model.id,
                human_bytes(model.approx_bytes)
            );
        }
        let follow_bar = bar.clone();
        let outcome = until_interrupted(async |cancel| {
            store
                .download(
                    &downloader,
                    &base,
                    model,
                    &move |progress| follow(&follow_bar, progress),
                    cancel,
                )
                .await
        })?;
        bar.finish_and_clear();
        match outcome {
            None | Some(Err(LocalError::Cancelled)) => {
                eprintln!(
                    "Stopped. What was downloaded is kept; `cutout models download {}` continues \
                     from it.",
                    model.id
                );
                return Ok(EXIT_INTERRUPTED);
            }
            Some(Ok(path)) => {
                let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                println!(
                    "Downloaded {} ({}, checksum verified): {}",
                    model.id,
                    human_bytes(size),
                    path.display()
                );
            }
            Some(Err(e)) => {
                eprintln!("error: cannot download {}: {e}", model.id);
                failed += 1;
            }
        }
    }
    Ok(if failed > 0 {
        EXIT_SOME_FAILED
    } else {
        EXIT_ALL_DONE
    })
}

fn import(
    store: &ModelStore,
    file: &Path,
    family: ModelFamily,
    name: Option<&str>,
    replace: bool,
) -> Result<u8, UsageError> {
    match store.import(file, name, family, replace) {
        Ok(model) => {
            println!(
                "Imported {} ({}) from {}; it is used as the model `{}`. Your file was left as it is.",
                model.id,
                family.display_name(),
                file.display(),
                model.id
            );
            Ok(EXIT_ALL_DONE)
        }
        Err(e @ LocalError::BadModel { .. }) => Err(UsageError::new(e.to_string())),
        Err(e) => {
            eprintln!("error: {e}");
            Ok(EXIT_SOME_FAILED)
        }
    }
}

fn remove(store: &ModelStore, ids: &[String]) -> Result<u8, UsageError> {
    let mut failed = 0;
    for id in ids {
        match store.remove(id) {
            Ok(0) => println!("{} was not on this machine; nothing to remove.", id.trim()),
            Ok(freed) => println!("Removed {}, freeing {}.", id.trim(), human_bytes(freed)),
            Err(e @ LocalError::UnknownModel { .. }) => return Err(UsageError::new(e.to_string())),
            Err(e) => {
                eprintln!("error: {e}");
                failed += 1;
            }
        }
    }
    Ok(if failed > 0 {
        EXIT_SOME_FAILED
    } else {
        EXIT_ALL_DONE
    })
}

fn runtime_status(data_dir: &Path, as_json: bool) -> Result<u8, UsageError> {
    let variable = std::env::var_os(DYLIB_PATH_VAR).filter(|v| !v.is_empty());
    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_owned));
    let install_dir = ort_runtime::runtime_dir(data_dir);
    let status = ort_runtime::load(Some(data_dir));
    let official = base_url(RUNTIME_URL_VAR, install::DEFAULT_RUNTIME_URL)
        .ok()
        .map(|base| RuntimeRelease::official(&base));
    if as_json {
        let (loaded, path, version, reason) = match &status {
            RuntimeStatus::Loaded { path, version } => (
                true,
                Some(path.display().to_string()),
                Some(version.clone()),
                None,
            ),
            RuntimeStatus::NotFound { .. } => (false, None, None, Some(status.explain())),
            RuntimeStatus::Failed { path, reason } => (
                false,
                Some(path.display().to_string()),
                None,
                Some(reason.clone()),
            ),
        };
        println!(
            "{}",
            json!({
                "loaded": loaded,
                "path": path,
                "version": version,
                "reason": reason,
                "searched": {
                    "ORT_DYLIB_PATH": variable.as_ref().map(|v| PathBuf::from(v).display().to_string()),
                    "beside_executable": exe_dir.as_ref().map(|d| d.display().to_string()),
                    "data_folder": install_dir.display().to_string(),
                },
                "installable": matches!(official, Some(Ok(_))),
                "install_version": ORT_VERSION,
            })
        );
        return Ok(EXIT_ALL_DONE);
    }
    println!("ONNX Runtime, the faster engine for local models, is looked for in this order:");
    match &variable {
        Some(value) => println!("  1. {DYLIB_PATH_VAR}: {}", PathBuf::from(value).display()),
        None => println!("  1. {DYLIB_PATH_VAR}: not set"),
    }
    match &exe_dir {
        Some(dir) => println!("  2. beside the cutout executable: {}", dir.display()),
        None => println!("  2. beside the cutout executable: (cannot tell where it is)"),
    }
    println!("  3. Cutout's data folder: {}", install_dir.display());
    println!();
    println!("Result: {}", status.explain());
    if !status.is_loaded() {
        match official {
            Some(Ok(_)) => println!(
                "Until it is there, local models run on the built-in engine (slower). Install \
                 ONNX Runtime {ORT_VERSION} with `cutout runtime install`."
            ),
            Some(Err(e)) => println!("{e}"),
            None => {}
        }
    }
    Ok(EXIT_ALL_DONE)
}

fn runtime_install(data_dir: &Path) -> Result<u8, UsageError> {
    let base = base_url(RUNTIME_URL_VAR, install::DEFAULT_RUNTIME_URL)?;
    let release = match RuntimeRelease::official(&base) {
        Ok(release) => release,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(EXIT_SOME_FAILED);
        }
    };
    let downloader = downloader()?;
    let bar = progress_bar("ONNX Runtime");
    if bar.is_hidden() {
        eprintln!("Downloading ONNX Runtime {}…", release.version);
    }
    let follow_bar = bar.clone();
    let outcome = until_interrupted(async |cancel| {
        install::install(
            &downloader,
            &release,
            data_dir,
            &move |progress| follow(&follow_bar, progress),
            cancel,
        )
        .await
    })?;
    bar.finish_and_clear();
    let installed = match outcome {
        None | Some(Err(LocalError::Cancelled)) => {
            eprintln!(
                "Stopped. What was downloaded is kept; `cutout runtime install` continues from it."
            );
            return Ok(EXIT_INTERRUPTED);
        }
        Some(Err(e)) => {
            eprintln!("error: cannot install ONNX Runtime: {e}");
            return Ok(EXIT_SOME_FAILED);
        }
        Some(Ok(installed)) => installed,
    };
    match ort_runtime::probe_library(&installed.library) {
        Ok(version) => {
            println!(
                "Installed ONNX Runtime {version} ({}, checksum verified): {}",
                human_bytes(installed.size_bytes),
                installed.library.display()
            );
            println!("Local models now run on it.");
            Ok(EXIT_ALL_DONE)
        }
        Err(reason) => {
            eprintln!(
                "error: ONNX Runtime was installed but this system cannot use it ({reason}); \
                 local models keep running on the built-in engine: {}",
                installed.library.display()
            );
            Ok(EXIT_SOME_FAILED)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Cli, CliCommand};
    use super::*;
    use clap::Parser;

    #[test]
    fn import_needs_a_family_and_takes_it_as_users_write_it() {
        let parsed = Cli::try_parse_from([
            "cutout", "models", "import", "m.onnx", "--family", "IS-Net", "--name", "t",
        ])
        .unwrap();
        assert!(matches!(
            parsed.command,
            Some(CliCommand::Models(ModelsArgs {
                command: ModelsCommand::Import { family: ModelFamily::Isnet, name: Some(ref n), replace: false, .. }
            })) if n == "t"
        ));
        assert!(Cli::try_parse_from(["cutout", "models", "import", "m.onnx"]).is_err());
        assert!(
            Cli::try_parse_from(["cutout", "models", "import", "m.onnx", "--family", "sam"])
                .is_err()
        );
    }

    #[test]
    fn download_and_remove_need_at_least_one_model() {
        assert!(Cli::try_parse_from(["cutout", "models", "download"]).is_err());
        assert!(Cli::try_parse_from(["cutout", "models", "remove"]).is_err());
        assert!(Cli::try_parse_from(["cutout", "runtime", "install"]).is_ok());
    }
}
