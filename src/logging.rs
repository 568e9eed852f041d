//! Where Cutout writes what it did, for support requests: a log file in the
//! platform's log folder ([`AppDirs::log_dir`]), a new one each day and the
//! last [`KEPT_LOG_FILES`] kept, so a user can send "the logs" without
//! anyone asking them to rerun with a flag. The command line also prints
//! warnings on stderr, as before.
//!
//! What is logged is Cutout's own work at `info` (jobs accepted, finished
//! and failed, retries, the local engine's runtime and models) and every
//! other crate's warnings. Keys never reach a log line: they are held as
//! [`secrecy::SecretString`]s whose `Debug` is redacted, and no message
//! formats one. `CUTOUT_LOG` (an `EnvFilter`, e.g. `debug` or
//! `cutout=trace`) overrides both levels.

use std::path::{Path, PathBuf};

use tracing_appender::non_blocking::WorkerGuard;
use tracing_appender::rolling::{RollingFileAppender, Rotation};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::Lookup;
use crate::paths::AppDirs;

/// Overrides what is logged (an `EnvFilter` directive).
pub const LOG_FILTER_VAR: &str = "CUTOUT_LOG";
/// Days of logs kept: a week covers "it went wrong on Monday".
pub const KEPT_LOG_FILES: usize = 7;
/// Log files are `cutout.<date>.log`.
const LOG_FILE_PREFIX: &str = "cutout";
const LOG_FILE_SUFFIX: &str = "log";
/// The log file's level when `CUTOUT_LOG` is not set.
const DEFAULT_FILE_FILTER: &str = "warn,cutout=info";
/// The terminal's level when `CUTOUT_LOG` is not set: warnings only, so
/// the progress bar and result lines stay readable.
const DEFAULT_TERMINAL_FILTER: &str = "warn";

/// Keeps the log file written: the file writer runs on its own thread, and
/// dropping this flushes what is buffered. Hold it until the process ends.
#[must_use = "dropping the guard stops the log file being written"]
pub struct Logging {
    _file_writer: Option<WorkerGuard>,
    /// The folder the log files go to, when there is one.
    pub log_dir: Option<PathBuf>,
    /// Why there is no log file this run, in words.
    pub problem: Option<String>,
}

/// Starts logging for this process: to the terminal (warnings) and, when
/// `to_file`, to the day's log file. A log folder that cannot be made does
/// not stop Cutout; the reason is kept in [`Logging::problem`] and logged
/// to the terminal.
pub fn init(lookup: Lookup<'_>, to_file: bool) -> Logging {
    let directive = lookup(LOG_FILTER_VAR);
    let filter = |default: &str| {
        directive
            .as_deref()
            .and_then(|d| EnvFilter::try_new(d).ok())
            .unwrap_or_else(|| EnvFilter::new(default))
    };
    let terminal = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(filter(DEFAULT_TERMINAL_FILTER));
    let mut problem = None;
    let mut log_dir = None;
    let mut guard = None;
    let file = if to_file {
        match AppDirs::resolve(lookup)
            .map_err(|e| e.to_string())
            .and_then(|dirs| open_log_files(dirs.log_dir()).map(|w| (dirs, w)))
        {
            Ok((dirs, appender)) => {
                let (writer, file_guard) = tracing_appender::non_blocking(appender);
                guard = Some(file_guard);
                log_dir = Some(dirs.log_dir().to_owned());
                Some(
                    tracing_subscriber::fmt::layer()
                        .with_writer(writer)
                        .with_ansi(false)
                        .with_filter(filter(DEFAULT_FILE_FILTER)),
                )
            }
            Err(why) => {
                problem = Some(why);
                None
            }
        }
    } else {
        None
    };
    let installed = tracing_subscriber::registry()
        .with(terminal)
        .with(file)
        .try_init()
        .is_ok();
    if let Some(why) = &problem {
        tracing::warn!("no log file this run: {why}");
    }
    if installed && log_dir.is_some() {
        log_panics();
        tracing::info!(
            version = env!("CARGO_PKG_VERSION"),
            os = std::env::consts::OS,
            arch = std::env::consts::ARCH,
            "Cutout started"
        );
    }
    Logging {
        _file_writer: guard,
        log_dir,
        problem,
    }
}

/// The rotating writer for `dir`, made if missing. The folder is made
/// first: the appender prunes old files before creating it, and would
/// print an error about a missing folder on a first run.
fn open_log_files(dir: &Path) -> Result<RollingFileAppender, String> {
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("cannot make the log folder ({e}): {}", dir.display()))?;
    RollingFileAppender::builder()
        .rotation(Rotation::DAILY)
        .filename_prefix(LOG_FILE_PREFIX)
        .filename_suffix(LOG_FILE_SUFFIX)
        .max_log_files(KEPT_LOG_FILES)
        .build(dir)
        .map_err(|e| format!("cannot write log files ({e}): {}", dir.display()))
}

/// Puts a crash's message and place in the log file too, then lets the
/// default hook print it as usual: a user's "it just closed" report then
/// comes with the reason.
fn log_panics() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let place = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        tracing::error!(%place, %message, "Cutout crashed");
        previous(info);
    }));
}

/// The log files in `dir`, newest first, for diagnostics.
pub fn log_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| {
                    name.starts_with(LOG_FILE_PREFIX) && name.ends_with(LOG_FILE_SUFFIX)
                })
        })
        .collect();
    files.sort();
    files.reverse();
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_logged_land_in_the_days_file_in_the_log_folder() {
        let dir = tempfile::tempdir().unwrap();
        let logs = dir.path().join("state").join("logs");
        let appender = open_log_files(&logs).expect("the folder is made");
        let (writer, guard) = tracing_appender::non_blocking(appender);
        let subscriber = tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .with_writer(writer)
                .with_ansi(false)
                .with_filter(EnvFilter::new(DEFAULT_FILE_FILTER)),
        );
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(target: "cutout::jobs", job = 7, "job done");
            tracing::info!(target: "wgpu_core", "chatter that stays out");
        });
        drop(guard);

        let files = log_files(&logs);
        assert_eq!(files.len(), 1, "{files:?}");
        let name = files[0].file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.starts_with("cutout.") && name.ends_with(".log"),
            "{name}"
        );
        let text = std::fs::read_to_string(&files[0]).unwrap();
        assert!(
            text.contains("job done") && text.contains("job=7"),
            "{text}"
        );
        assert!(!text.contains("chatter"), "{text}");
    }

    #[test]
    fn a_log_folder_that_cannot_be_made_is_explained_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, b"x").unwrap();
        let why = open_log_files(&blocker.join("logs")).unwrap_err();
        assert!(why.starts_with("cannot make the log folder"), "{why}");
        assert!(
            why.ends_with(&blocker.join("logs").display().to_string()),
            "{why}"
        );
    }

    #[test]
    fn log_files_are_listed_newest_first_and_other_files_ignored() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "cutout.2026-11-20.log",
            "cutout.2026-11-22.log",
            "notes.txt",
            "cutout.2026-11-21.log",
        ] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        let names: Vec<String> = log_files(dir.path())
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "cutout.2026-11-22.log",
                "cutout.2026-11-21.log",
                "cutout.2026-11-20.log"
            ]
        );
    }
}
