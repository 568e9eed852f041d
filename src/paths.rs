//! Where Cutout keeps its files on this machine: the settings file in the
//! platform's config directory, the job history and models in its data
//! directory, and the log files where the platform keeps logs.
//! `CUTOUT_CONFIG_DIR` and `CUTOUT_DATA_DIR` override them (logs then go
//! in the data directory's `logs` folder), for portable installs and so
//! tests never touch a real user's files.

use std::path::{Path, PathBuf};

use crate::config::Lookup;

/// Overrides the config directory (where `settings.toml` lives).
pub const CONFIG_DIR_VAR: &str = "CUTOUT_CONFIG_DIR";
/// Overrides the data directory (job history, models, logs).
pub const DATA_DIR_VAR: &str = "CUTOUT_DATA_DIR";

/// The platform has no home directory to put Cutout's files in.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot find a home directory for Cutout's settings and history; set {CONFIG_DIR_VAR} and {DATA_DIR_VAR}"
)]
pub struct NoHomeDir;

/// Cutout's directories, resolved once at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppDirs {
    config_dir: PathBuf,
    data_dir: PathBuf,
    log_dir: PathBuf,
}

impl AppDirs {
    /// The overrides from `lookup` where set, else the platform's own
    /// directories (`~/.config/cutout` and `~/.local/share/cutout` on
    /// Linux, `~/Library/Application Support/Cutout` on macOS, `%APPDATA%`
    /// on Windows).
    pub fn resolve(lookup: Lookup<'_>) -> Result<AppDirs, NoHomeDir> {
        let config_override = lookup(CONFIG_DIR_VAR).map(PathBuf::from);
        let data_override = lookup(DATA_DIR_VAR).map(PathBuf::from);
        if let (Some(config_dir), Some(data_dir)) = (&config_override, &data_override) {
            return Ok(AppDirs::at(config_dir.clone(), data_dir.clone()));
        }
        let project = directories::ProjectDirs::from("", "", "Cutout").ok_or(NoHomeDir)?;
        let log_dir = match &data_override {
            Some(data_dir) => data_dir.join("logs"),
            None => platform_log_dir(&project),
        };
        Ok(AppDirs {
            config_dir: config_override.unwrap_or_else(|| project.config_dir().to_owned()),
            data_dir: data_override.unwrap_or_else(|| project.data_dir().to_owned()),
            log_dir,
        })
    }

    /// Fixed directories, for tests and for callers that already know them;
    /// logs go in the data directory's `logs` folder.
    pub fn at(config_dir: PathBuf, data_dir: PathBuf) -> AppDirs {
        AppDirs {
            log_dir: data_dir.join("logs"),
            config_dir,
            data_dir,
        }
    }

    /// The folder holding the settings file.
    pub fn config_dir(&self) -> &Path {
        &self.config_dir
    }

    /// The folder holding the history database and downloaded models.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The user's settings.
    pub fn settings_file(&self) -> PathBuf {
        self.config_dir.join("settings.toml")
    }

    /// The job history database.
    pub fn history_file(&self) -> PathBuf {
        self.data_dir.join("history.sqlite3")
    }

    /// The folder of rotating log files, the one "Open logs folder" shows.
    pub fn log_dir(&self) -> &Path {
        &self.log_dir
    }
}

/// Where each platform's own tools look for an app's logs: the XDG state
/// directory on Linux (`~/.local/state/cutout/logs`), `~/Library/Logs/Cutout`
/// on macOS (where Console.app lists them), and the local, not roaming,
/// app data on Windows (`%LOCALAPPDATA%\Cutout\logs`).
fn platform_log_dir(project: &directories::ProjectDirs) -> PathBuf {
    if cfg!(target_os = "macos")
        && let Some(base) = directories::BaseDirs::new()
    {
        return base.home_dir().join("Library").join("Logs").join("Cutout");
    }
    if cfg!(target_os = "windows")
        && let Some(local) = project.data_local_dir().parent()
    {
        return local.join("logs");
    }
    project
        .state_dir()
        .unwrap_or_else(|| project.data_local_dir())
        .join("logs")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_replace_the_platform_directories() {
        let lookup = |name: &str| match name {
            CONFIG_DIR_VAR => Some("/tmp/cfg".to_owned()),
            DATA_DIR_VAR => Some("/tmp/data".to_owned()),
            _ => None,
        };
        let dirs = AppDirs::resolve(&lookup).unwrap();
        assert_eq!(dirs.settings_file(), Path::new("/tmp/cfg/settings.toml"));
        assert_eq!(dirs.history_file(), Path::new("/tmp/data/history.sqlite3"));
        assert_eq!(dirs.log_dir(), Path::new("/tmp/data/logs"));
    }
}
