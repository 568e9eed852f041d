//! Where Cutout keeps its files on this machine: the settings file in the
//! platform's config directory, the job history (and, later, models and
//! logs) in its data directory. `CUTOUT_CONFIG_DIR` and `CUTOUT_DATA_DIR`
//! override both, for portable installs and so tests never touch a real
//! user's files.

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
        Ok(AppDirs {
            config_dir: config_override.unwrap_or_else(|| project.config_dir().to_owned()),
            data_dir: data_override.unwrap_or_else(|| project.data_dir().to_owned()),
        })
    }

    /// Fixed directories, for tests and for callers that already know them.
    pub fn at(config_dir: PathBuf, data_dir: PathBuf) -> AppDirs {
        AppDirs {
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
    }
}
