//! The headless front end: `cutout batch`, `cutout providers`,
//! `cutout health` and the rest. It turns arguments into engine commands and engine
//! events into terminal output (a progress bar and a line per file) or JSON
//! lines for scripts. Like the window, it never touches job state itself.

mod batch;
mod history;
mod info;
mod keys;
mod models;
mod report;
mod support;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{self, process_env};
use crate::providers::{HttpClient, ProviderId};

pub use batch::BatchArgs;

/// Exit status when every job finished.
const EXIT_ALL_DONE: u8 = 0;
/// Exit status when at least one job failed (the rest still ran).
const EXIT_SOME_FAILED: u8 = 1;
/// Exit status for bad usage or configuration; nothing was sent anywhere.
const EXIT_USAGE: u8 = 2;
/// Exit status after Ctrl-C, as shells expect (128 + SIGINT).
const EXIT_INTERRUPTED: u8 = 130;

/// Command-line arguments.
#[derive(Debug, Parser)]
#[command(
    name = "cutout",
    version,
    about = "Remove backgrounds from batches of images and videos",
    long_about = "Remove backgrounds from batches of images and videos. Without a \
                  subcommand, opens the Cutout window with the given files queued.",
    args_conflicts_with_subcommands = true,
    after_help = "Keys: stored in the OS keychain with `cutout keys set <ID>` (or in the window's \
                  Settings); CUTOUT_<PROVIDER>_KEY overrides them (Uploadcare: \
                  CUTOUT_UPLOADCARE_PUBLIC_KEY and CUTOUT_UPLOADCARE_SECRET_KEY). Base URLs: \
                  CUTOUT_<PROVIDER>_URL. Run `cutout providers` to see what is configured."
)]
pub struct Cli {
    /// What to do; none opens the window.
    #[command(subcommand)]
    pub command: Option<CliCommand>,
    /// Images, videos or folders to queue in the window.
    #[arg(value_name = "FILE")]
    pub files: Vec<std::path::PathBuf>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum CliCommand {
    /// Remove backgrounds from many files, folders or URLs in one go.
    #[command(
        after_help = "Exit status: 0 all jobs done; 1 one or more jobs failed (the rest still \
                            finished); 2 bad usage or configuration; 130 cancelled with Ctrl-C."
    )]
    Batch(BatchArgs),
    /// List providers, their models and options, and whether a key is set.
    Providers {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List past jobs from the job history, newest first.
    History(history::HistoryArgs),
    /// Finish the jobs an interrupted run (closed, crashed or killed) left
    /// unfinished: jobs a provider already accepted are polled, not paid for
    /// again.
    #[command(
        after_help = "Exit status: 0 all jobs done (or nothing to resume); 1 one or more jobs failed; \
                      2 bad usage or configuration; 130 cancelled with Ctrl-C."
    )]
    Resume(history::ResumeArgs),
    /// Store, remove, list and test API keys in the OS keychain.
    Keys(keys::KeysArgs),
    /// List, download, import and remove the local engine's models.
    Models(models::ModelsArgs),
    /// Check for, or install, ONNX Runtime (the faster local engine).
    Runtime(models::RuntimeArgs),
    /// Check the providers that have a health endpoint.
    Health {
        /// Check only this provider.
        #[arg(value_name = "ID")]
        provider: Option<ProviderId>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Print a report for support requests: versions, folders, the local
    /// engine and each provider's set-up. API keys are never included.
    Diagnostics,
    /// Print the shell completion script for SHELL; e.g. for bash:
    /// `cutout completions bash > ~/.local/share/bash-completion/completions/cutout`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (`cutout man | man -l -`).
    Man {
        /// Write `cutout.1` and one page per subcommand into this folder
        /// instead.
        #[arg(long, value_name = "DIR")]
        dir: Option<std::path::PathBuf>,
    },
}

/// A problem with the arguments or configuration: reported, exit 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(String);

impl From<config::ConfigError> for UsageError {
    fn from(error: config::ConfigError) -> Self {
        UsageError(error.to_string())
    }
}

impl From<crate::jobs::inputs::InputError> for UsageError {
    fn from(error: crate::jobs::inputs::InputError) -> Self {
        UsageError(error.to_string())
    }
}

impl UsageError {
    fn new(message: impl Into<String>) -> Self {
        UsageError(message.into())
    }
}

/// Runs the command line and returns the process exit status.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // Generated text goes to stdout with no side effects; everything else
    // also logs to the day's log file.
    let to_file = !matches!(
        cli.command,
        Some(CliCommand::Completions { .. } | CliCommand::Man { .. })
    );
    let _logging = crate::logging::init(&process_env, to_file);
    let outcome = match cli.command {
        None => return open_window(cli.files),
        Some(CliCommand::Providers { json }) => info::print_providers(json),
        Some(CliCommand::Health { provider, json }) => {
            runtime().and_then(|rt| rt.block_on(info::health(provider, json)))
        }
        Some(CliCommand::Batch(args)) => runtime().and_then(|rt| rt.block_on(batch::batch(args))),
        Some(CliCommand::Keys(args)) => keys::run(args),
        Some(CliCommand::Models(args)) => models::run_models(args),
        Some(CliCommand::Runtime(args)) => models::run_runtime(args),
        Some(CliCommand::History(args)) => history::print_history(args),
        Some(CliCommand::Resume(args)) => {
            runtime().and_then(|rt| rt.block_on(history::resume(args)))
        }
        Some(CliCommand::Diagnostics) => support::print_diagnostics(),
        Some(CliCommand::Completions { shell }) => support::print_completions(shell),
        Some(CliCommand::Man { dir }) => support::print_man_page(dir.as_deref()),
    };
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// Opens the desktop window; a window that cannot open (no display) is a
/// configuration problem, reported like one.
fn open_window(files: Vec<std::path::PathBuf>) -> ExitCode {
    match crate::ui::run(crate::ui::Startup::from_process(files)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!(
                "error: cannot open the Cutout window ({e}); for headless use, see `cutout batch --help`"
            );
            ExitCode::from(EXIT_USAGE)
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, UsageError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| UsageError::new(format!("cannot start the async runtime: {e}")))
}

fn http_client() -> Result<HttpClient, UsageError> {
    let policy = config::retry_policy(&process_env)?;
    Ok(HttpClient::new(policy))
}
