//! `cutout diagnostics`, `cutout man` and `cutout completions`: the report
//! a user pastes into a support request, and the manual page and shell
//! completions, generated from the same argument definitions as `--help`
//! so they can never drift from it (the packages install both).

use std::io::Write;
use std::path::Path;

use clap::CommandFactory;

use super::{Cli, EXIT_ALL_DONE, UsageError};
use crate::config::process_env;
use crate::diagnostics::{self, Facts, Folders};
use crate::local::engine::LocalEngine;
use crate::local::models::ModelStore;
use crate::paths::AppDirs;
use crate::secrets::{Keychain, Keys};

/// Prints the support report (never a key) on stdout.
pub(super) fn print_diagnostics() -> Result<u8, UsageError> {
    let dirs = AppDirs::resolve(&process_env);
    let models = match &dirs {
        Ok(dirs) => ModelStore::new(dirs.data_dir())
            .installed()
            .into_iter()
            .map(|m| (m.id, m.size_bytes))
            .collect(),
        Err(_) => Vec::new(),
    };
    let facts = Facts {
        front: "command line",
        folders: dirs
            .map(|dirs| Folders {
                settings_file: dirs.settings_file(),
                data_dir: dirs.data_dir().to_owned(),
                log_dir: dirs.log_dir().to_owned(),
            })
            .map_err(|e| e.to_string()),
        keychain: diagnostics::keychain_words(&Keychain::new(&process_env).status()),
        engine: Some(LocalEngine::shared().status()),
        models,
        providers: diagnostics::providers_from_keys(&Keys::for_this_process(), &process_env),
        jobs: None,
    };
    print!("{}", diagnostics::report(&facts));
    Ok(EXIT_ALL_DONE)
}

/// Prints the roff manual page on stdout (`cutout man | man -l -`), or
/// with `dir` writes it and one page per subcommand (`cutout-batch.1`, …)
/// there, as the packages install them.
pub(super) fn print_man_page(dir: Option<&Path>) -> Result<u8, UsageError> {
    let written = match dir {
        Some(dir) => std::fs::create_dir_all(dir)
            .and_then(|()| clap_mangen::generate_to(Cli::command(), dir)),
        None => {
            let mut out = std::io::stdout().lock();
            clap_mangen::Man::new(Cli::command())
                .render(&mut out)
                .and_then(|()| out.flush())
        }
    };
    written.map_err(|e| {
        let place = dir
            .map(|d| format!(": {}", d.display()))
            .unwrap_or_default();
        UsageError::new(format!("cannot write the manual page ({e}){place}"))
    })?;
    Ok(EXIT_ALL_DONE)
}

/// Prints the completion script for `shell` on stdout. The script is made
/// in memory first: the generator panics on a write error, and a closed
/// pipe (`| head`) must end with a message, not a crash.
pub(super) fn print_completions(shell: clap_complete::Shell) -> Result<u8, UsageError> {
    let mut command = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "cutout", &mut script);
    let mut out = std::io::stdout().lock();
    out.write_all(&script)
        .and_then(|()| out.flush())
        .map_err(|e| UsageError::new(format!("cannot write the completions: {e}")))?;
    Ok(EXIT_ALL_DONE)
}
