//! The user's settings file: `settings.toml` in the platform's config
//! directory ([`AppDirs::settings_file`](crate::paths::AppDirs::settings_file)).
//! It holds what should survive a restart: the default provider and model
//! per kind of input, where and how results are saved, how many jobs each
//! provider runs at once, base URL overrides and the theme.
//!
//! People edit this file by hand, so reading it never fails: every value is
//! read on its own, and one that is unknown or wrong is reported with its
//! line and the file's path and replaced by its default, while every other
//! value is kept. Writing goes to a temporary file in the same folder that
//! is then renamed over the old one, so a crash never leaves half a file.
//!
//! API keys are never part of it: they live in the system keychain
//! ([`crate::secrets`]). There is no field for them, and a key written into
//! the file by hand is reported and ignored.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::ser::Error as _;
use serde::{Serialize, Serializer};
use toml::Spanned;
use toml::de::{DeString, DeTable, DeValue};
use url::Url;

use crate::config::parse_base_url;
use crate::imaging::compose::{Anchor, Backdrop, BackdropFit, Canvas, Composition, Length, Shadow};
use crate::imaging::refine::{self, MAX_SMOOTH_PX};
use crate::imaging::{Background, OutputFormat};
use crate::jobs::job::InputKind;
use crate::jobs::naming::NamingTemplate;
use crate::providers::{ProviderId, providers_accepting};

/// The most jobs at once a provider may be given: more rarely helps and
/// mostly burns through rate limits.
pub const MAX_CONCURRENCY: usize = 16;

/// Everything the settings file holds. `Default` is what a new user gets.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Settings {
    /// The provider and model picked for each kind of input.
    pub defaults: Defaults,
    /// Where and how results are saved.
    pub output: OutputSettings,
    /// Per-provider tuning; a provider with nothing set has no entry.
    pub providers: BTreeMap<ProviderId, ProviderSettings>,
    /// How the window looks.
    pub appearance: Appearance,
    /// Named looks for results (`[presets.<name>]`), by name.
    pub presets: BTreeMap<String, Preset>,
}

/// A named look for results, picked with `--preset NAME` or in the window:
/// a format and a composition, so "marketplace" can mean a 2000 px white
/// square JPEG with the product centred.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Preset {
    /// The file format.
    pub format: OutputFormat,
    /// Lossy quality for jpg and webp (see
    /// [`OutputSpec::quality`](crate::jobs::OutputSpec::quality)).
    pub quality: Option<u8>,
    /// Edge refinement, background, crop, canvas, placement and shadow.
    pub composition: Composition,
}

/// The provider (and model) new jobs of each input kind start with, so a
/// dropped video goes to a video provider without the user switching.
/// `None` leaves the choice to the front end.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Defaults {
    /// For still images on this machine.
    pub image_file: Option<DefaultChoice>,
    /// For still images on the web.
    pub image_url: Option<DefaultChoice>,
    /// For videos on this machine.
    pub video_file: Option<DefaultChoice>,
    /// For videos on the web.
    pub video_url: Option<DefaultChoice>,
}

impl Defaults {
    /// The choice for `kind`.
    pub fn get(&self, kind: InputKind) -> Option<&DefaultChoice> {
        self.slot(kind).as_ref()
    }

    /// Sets (or, with `None`, clears) the choice for `kind`.
    pub fn set(&mut self, kind: InputKind, choice: Option<DefaultChoice>) {
        *self.slot_mut(kind) = choice;
    }

    fn slot(&self, kind: InputKind) -> &Option<DefaultChoice> {
        match kind {
            InputKind::ImageFile => &self.image_file,
            InputKind::ImageUrl => &self.image_url,
            InputKind::VideoFile => &self.video_file,
            InputKind::VideoUrl => &self.video_url,
        }
    }

    fn slot_mut(&mut self, kind: InputKind) -> &mut Option<DefaultChoice> {
        match kind {
            InputKind::ImageFile => &mut self.image_file,
            InputKind::ImageUrl => &mut self.image_url,
            InputKind::VideoFile => &mut self.video_file,
            InputKind::VideoUrl => &mut self.video_url,
        }
    }
}

/// A provider, and optionally one of its models.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultChoice {
    /// The provider.
    pub provider: ProviderId,
    /// One of its models; `None` means its default model, so the file keeps
    /// following the provider's recommendation until the user picks one.
    pub model: Option<String>,
}

impl DefaultChoice {
    /// The model to use: the chosen one, else the provider's default.
    pub fn model(&self) -> &str {
        self.model
            .as_deref()
            .unwrap_or_else(|| self.provider.info().default_model())
    }
}

/// Where and how results are saved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputSettings {
    /// The output folder; `None` is the front end's built-in default
    /// (`Pictures/Cutout`), which follows the user's home if it moves.
    pub folder: Option<PathBuf>,
    /// The format results are converted to; `None` keeps what the provider
    /// sends (written `"provider"` in the file), as [`OutputSpec::format`]
    /// does.
    ///
    /// [`OutputSpec::format`]: crate::jobs::OutputSpec::format
    pub format: Option<OutputFormat>,
    /// What goes behind the subject.
    pub background: Background,
    /// How result files are named.
    pub naming: NamingTemplate,
}

impl Default for OutputSettings {
    fn default() -> Self {
        OutputSettings {
            folder: None,
            format: Some(OutputFormat::Png),
            background: Background::Transparent,
            naming: NamingTemplate::default(),
        }
    }
}

/// What the user changed about one provider.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProviderSettings {
    /// Jobs in flight at once (1 to [`MAX_CONCURRENCY`]); `None` is the
    /// provider's own default.
    pub concurrency: Option<usize>,
    /// Base URLs by endpoint id (`url`, `api_url`…), for proxies and
    /// staging; already checked to be HTTPS or plain HTTP to this machine.
    /// The `CUTOUT_*_URL` variables still win over these
    /// ([`config::endpoints_with`](crate::config::endpoints_with)).
    pub base_urls: BTreeMap<&'static str, Url>,
}

impl ProviderSettings {
    /// Whether nothing is set, so the provider needs no section in the file.
    pub fn is_empty(&self) -> bool {
        self.concurrency.is_none() && self.base_urls.is_empty()
    }
}

/// How the window looks.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Appearance {
    /// Light, dark or the desktop's choice.
    pub theme: Theme,
    /// Whether the first-run welcome was seen (finished or skipped), so it
    /// never opens again unless asked for from the Help menu.
    pub welcome_seen: bool,
}

/// The colour scheme. Kept free of egui so the settings load without a
/// window (the command line reads the same file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Theme {
    /// Whatever the desktop uses.
    #[default]
    System,
    /// Always light.
    Light,
    /// Always dark.
    Dark,
}

impl Theme {
    /// The value as written in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            Theme::System => "system",
            Theme::Light => "light",
            Theme::Dark => "dark",
        }
    }
}

impl fmt::Display for Theme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Theme {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "system" => Ok(Theme::System),
            "light" => Ok(Theme::Light),
            "dark" => Ok(Theme::Dark),
            _ => Err(format!(
                "theme must be \"system\", \"light\" or \"dark\", not {}",
                quote(s)
            )),
        }
    }
}

/// The settings read from a file, with everything that was wrong in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedSettings {
    /// The valid values, with defaults wherever a value was missing or wrong.
    pub settings: Settings,
    /// What was ignored and why, in file order; empty for a clean file.
    pub problems: Vec<SettingsProblem>,
}

/// One thing in the settings file that was ignored. Shown to the user, who
/// can fix the file: the message says what was wrong and what is used
/// instead; the line and path say where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsProblem {
    /// The settings file.
    pub path: PathBuf,
    /// The 1-based line, when the problem is at one place in the file.
    pub line: Option<usize>,
    /// What was wrong and what is used instead.
    pub message: String,
}

impl fmt::Display for SettingsProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        write!(f, "{}: {}", self.message, self.path.display())
    }
}

/// Why the settings could not be saved. The path comes last.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// A value has no TOML form (a folder whose name is not Unicode).
    #[error("the settings cannot be written as TOML: {0}")]
    Encode(#[from] toml::ser::Error),
    /// The folder or file could not be written.
    #[error("could not save the settings ({source}): {path}")]
    Write {
        /// Why.
        source: io::Error,
        /// The file (or folder) being written.
        path: PathBuf,
    },
}

/// What heads a saved file, so whoever opens it knows where keys went.
const FILE_HEADER: &str = "\
# Cutout settings. Cutout rewrites this file when you change a setting in
# the window; unknown or invalid values are reported and ignored.
# API keys are never kept here: they live in your system keychain.

";

impl Settings {
    /// Reads the settings file. A missing file gives the defaults with no
    /// problem (a first run); an unreadable or malformed one gives the
    /// defaults and says why; otherwise every valid value is kept.
    pub fn load(path: &Path) -> LoadedSettings {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return LoadedSettings {
                    settings: Settings::default(),
                    problems: Vec::new(),
                };
            }
            Err(e) => {
                return whole_file_problem(
                    path,
                    None,
                    format!("could not read the settings ({e}); using the default settings"),
                );
            }
        };
        match std::str::from_utf8(&bytes) {
            Ok(text) => Settings::parse(text, path),
            Err(e) => whole_file_problem(
                path,
                Some(line_of(&bytes, e.valid_up_to())),
                "the settings file is not UTF-8 text; using the default settings".to_owned(),
            ),
        }
    }

    /// Reads settings from `text`, as [`load`](Self::load) does from a file;
    /// `path` is only used in the problems.
    pub fn parse(text: &str, path: &Path) -> LoadedSettings {
        let root = match DeTable::parse(text) {
            Ok(root) => root,
            Err(e) => {
                let line = e.span().map(|span| line_of(text.as_bytes(), span.start));
                let message = e.message().trim().trim_end_matches('.').to_owned();
                return whole_file_problem(
                    path,
                    line,
                    format!(
                        "the settings file is not valid TOML ({message}); using the default settings"
                    ),
                );
            }
        };
        let mut reader = Reader {
            problems: Vec::new(),
        };
        let settings = reader.settings(root.get_ref());
        let mut problems = reader.problems;
        problems.sort_by_key(|(offset, _)| *offset);
        LoadedSettings {
            settings,
            problems: problems
                .into_iter()
                .map(|(offset, message)| SettingsProblem {
                    path: path.to_owned(),
                    line: Some(line_of(text.as_bytes(), offset)),
                    message,
                })
                .collect(),
        }
    }

    /// The file's text: sections in the order people look for them
    /// (defaults, output, providers, appearance), unset values left out.
    pub fn to_toml(&self) -> Result<String, SettingsError> {
        let body = toml::to_string(self)?;
        Ok(format!("{FILE_HEADER}{body}"))
    }

    /// Writes the settings to `path`, creating its folder: first to a
    /// temporary file beside it, flushed to disk, then renamed over the old
    /// file, so the file is always either the old settings or the new ones.
    ///
    /// A new file gets the ordinary mode the umask allows (usually 0644):
    /// nothing in it is secret, because keys live in the keychain. An
    /// existing file keeps its mode, so a user who made it private keeps it
    /// private. A symbolic link (dotfiles kept in a repository) is followed
    /// and its target replaced, rather than the link itself.
    pub fn save(&self, path: &Path) -> Result<(), SettingsError> {
        let text = self.to_toml()?;
        let target = match std::fs::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                std::fs::canonicalize(path).map_err(|source| SettingsError::Write {
                    source,
                    path: path.to_owned(),
                })?
            }
            _ => path.to_owned(),
        };
        let write_error = |source: io::Error| SettingsError::Write {
            source,
            path: target.clone(),
        };
        let dir = match target.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&dir).map_err(|source| SettingsError::Write {
            source,
            path: dir.clone(),
        })?;
        let existing = std::fs::metadata(&target).ok().map(|m| m.permissions());
        let mut builder = tempfile::Builder::new();
        builder.prefix(".settings-").suffix(".toml.partial");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            builder.permissions(std::fs::Permissions::from_mode(0o666));
        }
        let mut file = builder.tempfile_in(&dir).map_err(write_error)?;
        if let Some(permissions) = existing {
            file.as_file()
                .set_permissions(permissions)
                .map_err(write_error)?;
        }
        file.write_all(text.as_bytes()).map_err(write_error)?;
        file.as_file().sync_all().map_err(write_error)?;
        file.persist(&target).map_err(|e| write_error(e.error))?;
        sync_dir(&dir);
        Ok(())
    }

    /// The jobs at once the user chose for `id`, if any.
    pub fn concurrency(&self, id: ProviderId) -> Option<usize> {
        self.providers.get(&id).and_then(|p| p.concurrency)
    }

    /// The base URL overrides for `id`, for
    /// [`config::endpoints_with`](crate::config::endpoints_with).
    pub fn base_urls(&self, id: ProviderId) -> &BTreeMap<&'static str, Url> {
        static NONE: BTreeMap<&'static str, Url> = BTreeMap::new();
        self.providers.get(&id).map_or(&NONE, |p| &p.base_urls)
    }

    /// The named presets, for pickers and `--preset`.
    pub fn presets(&self) -> &BTreeMap<String, Preset> {
        &self.presets
    }

    /// The preset called `name`, if there is one.
    pub fn preset(&self, name: &str) -> Option<&Preset> {
        self.presets.get(name)
    }

    /// The settings of `id`, created empty if it had none; empty ones are
    /// left out of the file when saving.
    pub fn provider_mut(&mut self, id: ProviderId) -> &mut ProviderSettings {
        self.providers.entry(id).or_default()
    }
}

/// Makes the rename itself durable. Best effort: some platforms and file
/// systems cannot sync a folder, and the file is complete either way.
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(handle) = std::fs::File::open(dir) {
        let _ = handle.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

fn whole_file_problem(path: &Path, line: Option<usize>, message: String) -> LoadedSettings {
    LoadedSettings {
        settings: Settings::default(),
        problems: vec![SettingsProblem {
            path: path.to_owned(),
            line,
            message,
        }],
    }
}

/// The 1-based line holding byte `offset`.
fn line_of(bytes: &[u8], offset: usize) -> usize {
    let end = offset.min(bytes.len());
    bytes[..end].iter().filter(|b| **b == b'\n').count() + 1
}

/// A value as a message shows it: strings quoted with anything odd
/// escaped, and cut short so one wild value cannot flood the window.
fn quote(text: &str) -> String {
    const MOST_CHARS: usize = 60;
    let mut shown: String = text.chars().take(MOST_CHARS).collect();
    if text.chars().nth(MOST_CHARS).is_some() {
        shown.push('…');
    }
    format!("{shown:?}")
}

/// What a wrong value was, for "must be …, not …".
fn describe(value: &DeValue<'_>) -> String {
    match value {
        DeValue::String(s) => quote(s),
        DeValue::Integer(i) => i.to_string(),
        DeValue::Float(f) => f.to_string(),
        DeValue::Boolean(b) => b.to_string(),
        DeValue::Datetime(d) => d.to_string(),
        DeValue::Array(_) => "a list".to_owned(),
        DeValue::Table(_) => "a table".to_owned(),
    }
}

/// Whether a key looks like it holds a secret, so the problem can say
/// where keys belong (and never repeats the value).
fn looks_secret(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["key", "secret", "token", "password"]
        .iter()
        .any(|word| key.contains(word))
}

/// The section a top-level key that is not a section belongs in, so a
/// `theme = "dark"` written at the top can be pointed to its place.
fn section_of(key: &str) -> Option<&'static str> {
    match key {
        "folder" | "format" | "background" | "naming" => Some("[output]"),
        "theme" | "welcome_seen" => Some("[appearance]"),
        "concurrency" | "base_urls" => Some("[providers.<provider>]"),
        "image_file" | "image_url" | "video_file" | "video_url" => Some("[defaults]"),
        "canvas" | "crop" | "anchor" | "scale" | "padding" | "shadow" | "quality" => {
            Some("[presets.<name>]")
        }
        _ => None,
    }
}

type Entry<'t, 'i> = (&'t Spanned<DeString<'i>>, &'t Spanned<DeValue<'i>>);

/// Walks the parsed file, collecting problems by byte offset.
struct Reader {
    problems: Vec<(usize, String)>,
}

impl Reader {
    fn report(&mut self, span: Range<usize>, message: String) {
        self.problems.push((span.start, message));
    }

    /// Reports `key` as unknown in `section`, never repeating its value.
    fn unknown(&mut self, key: &Spanned<DeString<'_>>, section: &str, known: &str) {
        let name = key.get_ref();
        let message = if looks_secret(name) {
            format!(
                "{} does not belong in the settings file: API keys live in the system \
                 keychain (enter them in Settings › API keys, or set the CUTOUT_*_KEY \
                 variables); ignoring it",
                quote(name)
            )
        } else {
            format!(
                "unknown setting {} in {section} ({known}); ignoring it",
                quote(name)
            )
        };
        self.report(key.span(), message);
    }

    /// The table in `value`, or a problem saying `section` must be one.
    fn table<'t, 'i>(
        &mut self,
        section: &str,
        value: &'t Spanned<DeValue<'i>>,
    ) -> Option<&'t DeTable<'i>> {
        match value.get_ref() {
            DeValue::Table(table) => Some(table),
            other => {
                self.report(
                    value.span(),
                    format!(
                        "{section} must be a table of settings, not {}; ignoring it",
                        describe(other)
                    ),
                );
                None
            }
        }
    }

    /// The string in `value`, or a problem built from `invalid` (given a
    /// description of what was there instead).
    fn string<'t>(
        &mut self,
        value: &'t Spanned<DeValue<'_>>,
        invalid: impl FnOnce(&str) -> String,
    ) -> Option<&'t str> {
        match value.get_ref() {
            DeValue::String(s) => Some(s),
            other => {
                let message = invalid(&describe(other));
                self.report(value.span(), message);
                None
            }
        }
    }

    fn settings(&mut self, root: &DeTable<'_>) -> Settings {
        let mut settings = Settings::default();
        for (key, value) in root.iter() {
            match key.get_ref().as_ref() {
                "defaults" => {
                    if let Some(table) = self.table("[defaults]", value) {
                        self.defaults(table, &mut settings.defaults);
                    }
                }
                "output" => {
                    if let Some(table) = self.table("[output]", value) {
                        self.output(table, &mut settings.output);
                    }
                }
                "providers" => {
                    if let Some(table) = self.table("[providers]", value) {
                        self.providers(table, &mut settings.providers);
                    }
                }
                "appearance" => {
                    if let Some(table) = self.table("[appearance]", value) {
                        self.appearance(table, &mut settings.appearance);
                    }
                }
                "presets" => {
                    if let Some(table) = self.table("[presets]", value) {
                        self.presets(table, &mut settings.presets);
                    }
                }
                name => match section_of(name) {
                    Some(section) if !looks_secret(name) => self.report(
                        key.span(),
                        format!("{} belongs under {section}; ignoring it", quote(name)),
                    ),
                    _ => self.unknown(
                        key,
                        "the file",
                        "the sections are [defaults], [output], [providers], [appearance] \
                         and [presets.<name>]",
                    ),
                },
            }
        }
        settings
    }

    fn defaults(&mut self, table: &DeTable<'_>, defaults: &mut Defaults) {
        for (key, value) in table.iter() {
            let kind = match key.get_ref().as_ref() {
                "image_file" => InputKind::ImageFile,
                "image_url" => InputKind::ImageUrl,
                "video_file" => InputKind::VideoFile,
                "video_url" => InputKind::VideoUrl,
                _ => {
                    self.unknown(
                        key,
                        "[defaults]",
                        "use image_file, image_url, video_file or video_url",
                    );
                    continue;
                }
            };
            let section = format!("[defaults.{}]", key.get_ref());
            if let Some(choice) = self.table(&section, value) {
                defaults.set(kind, self.default_choice(kind, &section, choice));
            }
        }
    }

    fn default_choice(
        &mut self,
        kind: InputKind,
        section: &str,
        table: &DeTable<'_>,
    ) -> Option<DefaultChoice> {
        let mut provider = None;
        let mut provider_seen = false;
        let mut model: Option<Entry<'_, '_>> = None;
        let takers: Vec<_> = providers_accepting(kind)
            .iter()
            .map(|id| id.as_str())
            .collect();
        let takers = takers.join(", ");
        for entry @ (key, value) in table.iter() {
            match key.get_ref().as_ref() {
                "provider" => {
                    provider_seen = true;
                    let invalid = |found: &str| {
                        format!(
                            "provider for {} must be one that takes them ({takers}), \
                             not {found}; using none",
                            kind.plural_noun()
                        )
                    };
                    let Some(text) = self.string(value, invalid) else {
                        continue;
                    };
                    match ProviderId::from_str(text.trim()) {
                        Ok(id) if id.info().accepts(kind) => provider = Some(id),
                        _ => self.report(value.span(), invalid(&quote(text))),
                    }
                }
                "model" => model = Some(entry),
                _ => self.unknown(key, section, "use provider and model"),
            }
        }
        let Some(provider) = provider else {
            if let (Some((_, value)), false) = (model, provider_seen) {
                self.report(
                    value.span(),
                    format!(
                        "model for {} needs a provider beside it in {section}; ignoring it",
                        kind.plural_noun()
                    ),
                );
            }
            return None;
        };
        let model = model.and_then(|(_, value)| {
            let fallback = provider.info().default_model();
            let invalid = |why: String| {
                format!(
                    "model for {}: {why}; using {}",
                    kind.plural_noun(),
                    quote(fallback)
                )
            };
            let text = self.string(value, |found| {
                invalid(format!("a model is a name, not {found}"))
            })?;
            match provider.info().check_model(text.trim()) {
                Ok(()) => Some(text.trim().to_owned()),
                Err(why) => {
                    self.report(value.span(), invalid(why));
                    None
                }
            }
        });
        Some(DefaultChoice { provider, model })
    }

    fn output(&mut self, table: &DeTable<'_>, output: &mut OutputSettings) {
        for (key, value) in table.iter() {
            match key.get_ref().as_ref() {
                "folder" => {
                    let invalid = |found: &str| {
                        format!(
                            "folder must be the full path of a folder, not {found}; \
                             using the default folder"
                        )
                    };
                    let Some(text) = self.string(value, invalid) else {
                        continue;
                    };
                    if text.trim().is_empty() {
                        output.folder = None;
                    } else if Path::new(text).is_absolute() {
                        output.folder = Some(PathBuf::from(text));
                    } else {
                        self.report(value.span(), invalid(&quote(text)));
                    }
                }
                "format" => {
                    let invalid = |found: &str| {
                        format!(
                            "format must be \"png\", \"webp\", \"jpg\", \"mask\" or \"provider\", \
                             not {found}; using \"png\""
                        )
                    };
                    let Some(text) = self.string(value, invalid) else {
                        continue;
                    };
                    if text.trim().eq_ignore_ascii_case("provider") {
                        output.format = None;
                    } else {
                        match OutputFormat::from_str(text.trim()) {
                            Ok(format) => output.format = Some(format),
                            Err(_) => self.report(value.span(), invalid(&quote(text))),
                        }
                    }
                }
                "background" => {
                    let invalid = |found: &str| {
                        format!(
                            "background must be \"transparent\" or a colour such as \
                             \"#ffffff\", not {found}; using \"transparent\""
                        )
                    };
                    let Some(text) = self.string(value, invalid) else {
                        continue;
                    };
                    match Background::from_str(text.trim()) {
                        Ok(background) => output.background = background,
                        Err(_) => self.report(value.span(), invalid(&quote(text))),
                    }
                }
                "naming" => {
                    let Some(text) = self.string(value, |found| {
                        format!(
                            "naming must be a template such as \"{{name}}-{{provider}}\", \
                             not {found}; using \"{{name}}\""
                        )
                    }) else {
                        continue;
                    };
                    match NamingTemplate::parse(text) {
                        Ok(naming) => output.naming = naming,
                        Err(why) => {
                            self.report(value.span(), format!("naming: {why}; using \"{{name}}\""))
                        }
                    }
                }
                _ => self.unknown(key, "[output]", "use folder, format, background or naming"),
            }
        }
    }

    fn providers(
        &mut self,
        table: &DeTable<'_>,
        providers: &mut BTreeMap<ProviderId, ProviderSettings>,
    ) {
        for (key, value) in table.iter() {
            let id = match ProviderId::from_str(key.get_ref()) {
                Ok(id) => id,
                Err(_) if looks_secret(key.get_ref()) => {
                    self.unknown(key, "[providers]", "");
                    continue;
                }
                Err(_) => {
                    let known: Vec<_> = ProviderId::ALL.iter().map(|id| id.as_str()).collect();
                    self.report(
                        key.span(),
                        format!(
                            "unknown provider {} in [providers]; the providers are {}; \
                             ignoring it",
                            quote(key.get_ref()),
                            known.join(", ")
                        ),
                    );
                    continue;
                }
            };
            let section = format!("[providers.{id}]");
            if let Some(table) = self.table(&section, value) {
                let settings = self.provider(id, &section, table);
                if !settings.is_empty() {
                    providers.insert(id, settings);
                }
            }
        }
    }

    fn provider(&mut self, id: ProviderId, section: &str, table: &DeTable<'_>) -> ProviderSettings {
        let mut settings = ProviderSettings::default();
        let info = id.info();
        for (key, value) in table.iter() {
            match key.get_ref().as_ref() {
                "concurrency" => {
                    let number = match value.get_ref() {
                        DeValue::Integer(n) => i64::from_str_radix(n.as_str(), n.radix()).ok(),
                        _ => None,
                    };
                    match number.and_then(|n| usize::try_from(n).ok()) {
                        Some(n) if (1..=MAX_CONCURRENCY).contains(&n) => {
                            settings.concurrency = Some(n);
                        }
                        _ => self.report(
                            value.span(),
                            format!(
                                "concurrency for {id} must be a whole number from 1 to \
                                 {MAX_CONCURRENCY}, not {}; using {}",
                                describe(value.get_ref()),
                                info.default_concurrency
                            ),
                        ),
                    }
                }
                "base_urls" => {
                    let urls_section = format!("{section} base_urls");
                    if let Some(urls) = self.table(&urls_section, value) {
                        self.base_urls(id, urls, &mut settings.base_urls);
                    }
                }
                _ => self.unknown(key, section, "use concurrency or base_urls"),
            }
        }
        settings
    }

    fn base_urls(
        &mut self,
        id: ProviderId,
        table: &DeTable<'_>,
        base_urls: &mut BTreeMap<&'static str, Url>,
    ) {
        let info = id.info();
        for (key, value) in table.iter() {
            let Some(spec) = info
                .endpoints
                .iter()
                .find(|e| e.id == key.get_ref().as_ref())
            else {
                let known: Vec<_> = info.endpoints.iter().map(|e| e.id).collect();
                let known = format!("{id}'s base URLs are {}", known.join(", "));
                self.unknown(key, &format!("[providers.{id}.base_urls]"), &known);
                continue;
            };
            let fallback = match spec.default {
                Some(default) => format!("using the default {default}"),
                None => "using none".to_owned(),
            };
            let name = spec.id;
            let Some(text) = self.string(value, |found| {
                format!("base URL {name} for {id} must be an address, not {found}; {fallback}")
            }) else {
                continue;
            };
            match settings_base_url(text) {
                Ok(url) => {
                    base_urls.insert(spec.id, url);
                }
                Err(why) => self.report(
                    value.span(),
                    format!("base URL {name} for {id} cannot be used ({why}); {fallback}"),
                ),
            }
        }
    }

    fn appearance(&mut self, table: &DeTable<'_>, appearance: &mut Appearance) {
        for (key, value) in table.iter() {
            match key.get_ref().as_ref() {
                "theme" => {
                    let invalid = |found: &str| {
                        format!(
                            "theme must be \"system\", \"light\" or \"dark\", not {found}; \
                             using \"system\""
                        )
                    };
                    let Some(text) = self.string(value, invalid) else {
                        continue;
                    };
                    match Theme::from_str(text) {
                        Ok(theme) => appearance.theme = theme,
                        Err(_) => self.report(value.span(), invalid(&quote(text))),
                    }
                }
                "welcome_seen" => match value.get_ref() {
                    DeValue::Boolean(seen) => appearance.welcome_seen = *seen,
                    other => self.report(
                        value.span(),
                        format!(
                            "welcome_seen must be true or false, not {}; using false",
                            describe(other)
                        ),
                    ),
                },
                _ => self.unknown(key, "[appearance]", "use theme or welcome_seen"),
            }
        }
    }
    fn presets(&mut self, table: &DeTable<'_>, presets: &mut BTreeMap<String, Preset>) {
        for (key, value) in table.iter() {
            let name = key.get_ref().trim();
            if name.is_empty() {
                self.report(
                    key.span(),
                    "a preset needs a name, as in [presets.marketplace]; ignoring it".to_owned(),
                );
                continue;
            }
            let section = format!("[presets.{name}]");
            if let Some(table) = self.table(&section, value) {
                let preset = self.preset(&section, table);
                presets.insert(name.to_owned(), preset);
            }
        }
    }

    fn preset(&mut self, section: &str, table: &DeTable<'_>) -> Preset {
        let mut preset = Preset::default();
        let mut fit: Option<(Range<usize>, BackdropFit)> = None;
        let composition = &mut preset.composition;
        for (key, value) in table.iter() {
            match key.get_ref().as_ref() {
                "format" => {
                    let invalid = |found: &str| {
                        format!(
                            "format in {section} must be \"png\", \"webp\", \"jpg\" or \"mask\", \
                             not {found}; using \"png\""
                        )
                    };
                    let Some(text) = self.string(value, invalid) else {
                        continue;
                    };
                    match OutputFormat::from_str(text.trim()) {
                        Ok(format) => preset.format = format,
                        Err(_) => self.report(value.span(), invalid(&quote(text))),
                    }
                }
                "quality" => match whole_number(value.get_ref()) {
                    Some(q @ 1..=100) => preset.quality = Some(q as u8),
                    _ => self.report(
                        value.span(),
                        format!(
                            "quality in {section} must be a whole number from 1 to 100, not {}; \
                             using none (jpg at 90, lossless webp)",
                            describe(value.get_ref())
                        ),
                    ),
                },
                "background" => {
                    let invalid = |found: &str| {
                        format!(
                            "background in {section} must be \"transparent\", a colour such as \
                             \"#ffffff\" or \"image:\" and a picture's full path, not {found}; \
                             using \"transparent\""
                        )
                    };
                    let Some(text) = self.string(value, invalid) else {
                        continue;
                    };
                    match Backdrop::from_str(text) {
                        Ok(Backdrop::Image { path, .. }) if !path.is_absolute() => {
                            self.report(value.span(), invalid(&quote(text)));
                        }
                        Ok(backdrop) => composition.background = backdrop,
                        Err(_) => self.report(value.span(), invalid(&quote(text))),
                    }
                }
                "background_fit" => {
                    let invalid = |found: &str| {
                        format!(
                            "background_fit in {section} must be \"fill\" or \"fit\", not \
                             {found}; using \"fill\""
                        )
                    };
                    let Some(text) = self.string(value, invalid) else {
                        continue;
                    };
                    match BackdropFit::from_str(text) {
                        Ok(chosen) => fit = Some((value.span(), chosen)),
                        Err(_) => self.report(value.span(), invalid(&quote(text))),
                    }
                }
                "crop" => match value.get_ref() {
                    DeValue::Boolean(true) => composition.crop = Some(Length::ZERO),
                    DeValue::Boolean(false) => composition.crop = None,
                    other => {
                        let invalid = |found: &str| {
                            format!(
                                "crop in {section} must be a margin such as \"5%\" or \"40px\", \
                                 or true or false, not {found}; not cropping"
                            )
                        };
                        match other {
                            DeValue::String(text) => match Length::from_str(text) {
                                Ok(margin) => composition.crop = Some(margin),
                                Err(_) => self.report(value.span(), invalid(&quote(text))),
                            },
                            other => self.report(value.span(), invalid(&describe(other))),
                        }
                    }
                },
                "canvas" => {
                    let invalid = |found: &str| {
                        format!(
                            "canvas in {section} must be \"original\", \"square:SIDE\" or \
                             \"WIDTHxHEIGHT\" (up to 16384 px a side), not {found}; using \
                             \"original\""
                        )
                    };
                    let Some(text) = self.string(value, invalid) else {
                        continue;
                    };
                    match Canvas::from_str(text) {
                        Ok(canvas) => composition.canvas = canvas,
                        Err(_) => self.report(value.span(), invalid(&quote(text))),
                    }
                }
                "anchor" => {
                    let invalid = |found: &str| {
                        format!(
                            "anchor in {section} must be a position such as \"center\", \
                             \"bottom\" or \"top-left\", not {found}; using \"center\""
                        )
                    };
                    let Some(text) = self.string(value, invalid) else {
                        continue;
                    };
                    match Anchor::from_str(text) {
                        Ok(anchor) => composition.anchor = anchor,
                        Err(_) => self.report(value.span(), invalid(&quote(text))),
                    }
                }
                "scale" => match percentage(value.get_ref()) {
                    Some(p @ 1..=100) => composition.scale_percent = p as u8,
                    _ => self.report(
                        value.span(),
                        format!(
                            "scale in {section} must be a percentage from 1% to 100%, not {}; \
                             using 100%",
                            describe(value.get_ref())
                        ),
                    ),
                },
                "padding" => {
                    let invalid = |found: &str| {
                        format!(
                            "padding in {section} must be a length such as \"5%\" or \"40px\", \
                             not {found}; using none"
                        )
                    };
                    let Some(text) = self.string(value, invalid) else {
                        continue;
                    };
                    match Length::from_str(text) {
                        Ok(padding) => composition.padding = padding,
                        Err(_) => self.report(value.span(), invalid(&quote(text))),
                    }
                }
                "shadow" => match value.get_ref() {
                    DeValue::Boolean(true) => composition.shadow = Some(Shadow::default()),
                    DeValue::Boolean(false) => composition.shadow = None,
                    DeValue::Table(shadow) => {
                        let shadow_section = format!("{section} shadow");
                        composition.shadow = Some(self.shadow(&shadow_section, shadow));
                    }
                    other => self.report(
                        value.span(),
                        format!(
                            "shadow in {section} must be true, false or a table of distance, \
                             angle, blur and opacity, not {}; using none",
                            describe(other)
                        ),
                    ),
                },
                name @ ("remove_speckles" | "decontaminate") => match value.get_ref() {
                    DeValue::Boolean(on) if name == "remove_speckles" => {
                        composition.refine.remove_speckles = *on;
                    }
                    DeValue::Boolean(on) => composition.refine.decontaminate = *on,
                    other => self.report(
                        value.span(),
                        format!(
                            "{name} in {section} must be true or false, not {}; using false",
                            describe(other)
                        ),
                    ),
                },
                "smooth" => {
                    let px = match value.get_ref() {
                        DeValue::String(text) => refine::parse_smooth_px(text).ok(),
                        other => whole_number(other)
                            .filter(|px| (0..=i64::from(MAX_SMOOTH_PX)).contains(px))
                            .map(|px| px as u16),
                    };
                    match px {
                        Some(px) => composition.refine.smooth_px = px,
                        None => self.report(
                            value.span(),
                            format!(
                                "smooth in {section} must be whole pixels from 0 to \
                                 {MAX_SMOOTH_PX}, such as \"3px\", not {}; not smoothing",
                                describe(value.get_ref())
                            ),
                        ),
                    }
                }
                "harden" => {
                    let percent = match value.get_ref() {
                        DeValue::String(text) => refine::parse_harden(text).ok(),
                        DeValue::Float(f) => {
                            refine::parse_harden(&f.as_str().replace('_', "")).ok()
                        }
                        other => whole_number(other)
                            .filter(|n| (0..=1).contains(n))
                            .map(|n| n as u8 * 100),
                    };
                    match percent {
                        Some(percent) => composition.refine.harden_percent = percent,
                        None => self.report(
                            value.span(),
                            format!(
                                "harden in {section} must be a number from 0 (soft edges kept) \
                                 to 1 (a crisp edge), such as 0.5, not {}; not hardening",
                                describe(value.get_ref())
                            ),
                        ),
                    }
                }
                _ => self.unknown(
                    key,
                    section,
                    "use format, quality, background, background_fit, crop, canvas, anchor, \
                     scale, padding, shadow, remove_speckles, smooth, harden or decontaminate",
                ),
            }
        }
        if let Some((span, chosen)) = fit {
            match &mut preset.composition.background {
                Backdrop::Image { fit, .. } => *fit = chosen,
                _ => self.report(
                    span,
                    format!(
                        "background_fit in {section} is for an \"image:\" background; ignoring it"
                    ),
                ),
            }
        }
        if let Some(problem) = preset.composition.problem() {
            self.report(
                table.iter().next().map_or(0..0, |(key, _)| key.span()),
                format!("{section}: {problem}; using no padding"),
            );
            preset.composition.padding = Length::ZERO;
        }
        if !preset.format.takes_quality() {
            preset.quality = None;
        }
        preset
    }

    fn shadow(&mut self, section: &str, table: &DeTable<'_>) -> Shadow {
        let mut shadow = Shadow::default();
        let defaults = Shadow::default();
        for (key, value) in table.iter() {
            let name = key.get_ref().as_ref();
            match name {
                "distance" | "blur" => {
                    let fallback = if name == "distance" {
                        defaults.distance
                    } else {
                        defaults.blur
                    };
                    let invalid = |found: &str| {
                        format!(
                            "{name} in {section} must be a length such as \"2%\" or \"12px\", \
                             not {found}; using \"{fallback}\""
                        )
                    };
                    let Some(text) = self.string(value, invalid) else {
                        continue;
                    };
                    match Length::from_str(text) {
                        Ok(length) if name == "distance" => shadow.distance = length,
                        Ok(length) => shadow.blur = length,
                        Err(_) => self.report(value.span(), invalid(&quote(text))),
                    }
                }
                "angle" => match whole_number(value.get_ref()) {
                    Some(degrees @ 0..=359) => shadow.angle_degrees = degrees as u16,
                    _ => self.report(
                        value.span(),
                        format!(
                            "angle in {section} must be whole degrees from 0 to 359 (90 is \
                             straight down), not {}; using {}",
                            describe(value.get_ref()),
                            defaults.angle_degrees
                        ),
                    ),
                },
                "opacity" => match percentage(value.get_ref()) {
                    Some(p @ 0..=100) => shadow.opacity_percent = p as u8,
                    _ => self.report(
                        value.span(),
                        format!(
                            "opacity in {section} must be a percentage from 0% to 100%, not {}; \
                             using {}%",
                            describe(value.get_ref()),
                            defaults.opacity_percent
                        ),
                    ),
                },
                _ => self.unknown(key, section, "use distance, angle, blur or opacity"),
            }
        }
        shadow
    }
}

/// A TOML integer as a number, whatever base it was written in.
fn whole_number(value: &DeValue<'_>) -> Option<i64> {
    match value {
        DeValue::Integer(n) => i64::from_str_radix(n.as_str(), n.radix()).ok(),
        _ => None,
    }
}

/// A whole percentage written as a number (`90`) or text (`"90%"`).
fn percentage(value: &DeValue<'_>) -> Option<i64> {
    match value {
        DeValue::String(text) => text
            .trim()
            .strip_suffix('%')
            .unwrap_or(text)
            .trim()
            .parse()
            .ok(),
        other => whole_number(other),
    }
}

/// A base URL from the file: one that [`parse_base_url`] accepts, without a
/// user name or password (credentials belong in the keychain, and the
/// reason never repeats such a URL).
fn settings_base_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text.trim()).map_err(|e| e.to_string())?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(
            "it contains a user name or password, which belong in the system keychain".to_owned(),
        );
    }
    parse_base_url(text)
}

/// The file as written: plain strings, so the TOML reads the way people
/// type it (`background = "#ffffff"`, `format = "provider"`).
#[derive(Serialize)]
struct FileOut<'a> {
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    defaults: BTreeMap<&'static str, ChoiceOut<'a>>,
    output: OutputOut<'a>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    providers: BTreeMap<&'static str, ProviderOut<'a>>,
    appearance: AppearanceOut,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    presets: BTreeMap<&'a str, PresetOut>,
}

#[derive(Serialize)]
struct PresetOut {
    format: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    quality: Option<u8>,
    background: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    background_fit: Option<&'static str>,
    crop: CropOut,
    canvas: String,
    anchor: &'static str,
    scale: String,
    padding: String,
    shadow: ShadowOut,
    remove_speckles: bool,
    smooth: String,
    harden: f64,
    decontaminate: bool,
}

/// `crop = false` or a margin.
#[derive(Serialize)]
#[serde(untagged)]
enum CropOut {
    Off(bool),
    Margin(String),
}

/// `shadow = false` or its table.
#[derive(Serialize)]
#[serde(untagged)]
enum ShadowOut {
    Off(bool),
    On {
        distance: String,
        angle: u16,
        blur: String,
        opacity: String,
    },
}

#[derive(Serialize)]
struct ChoiceOut<'a> {
    provider: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    model: Option<&'a str>,
}

#[derive(Serialize)]
struct OutputOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    folder: Option<&'a str>,
    format: &'static str,
    background: String,
    naming: &'a str,
}

#[derive(Serialize)]
struct ProviderOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    concurrency: Option<usize>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    base_urls: BTreeMap<&'static str, &'a str>,
}

#[derive(Serialize)]
struct AppearanceOut {
    theme: &'static str,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    welcome_seen: bool,
}

/// Writes the file's form; [`Settings::load`] reads it back. There is no
/// `Deserialize`: serde stops at the first bad value, while loading keeps
/// every good one.
impl Serialize for Settings {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let folder = match &self.output.folder {
            None => None,
            Some(folder) => Some(folder.to_str().ok_or_else(|| {
                S::Error::custom(format!(
                    "the output folder's name is not Unicode text: {}",
                    folder.display()
                ))
            })?),
        };
        let defaults = [
            ("image_file", &self.defaults.image_file),
            ("image_url", &self.defaults.image_url),
            ("video_file", &self.defaults.video_file),
            ("video_url", &self.defaults.video_url),
        ]
        .into_iter()
        .filter_map(|(kind, choice)| {
            let choice = choice.as_ref()?;
            Some((
                kind,
                ChoiceOut {
                    provider: choice.provider.as_str(),
                    model: choice.model.as_deref(),
                },
            ))
        })
        .collect();
        let providers = self
            .providers
            .iter()
            .filter(|(_, p)| !p.is_empty())
            .map(|(id, p)| {
                let base_urls = p.base_urls.iter().map(|(k, v)| (*k, v.as_str())).collect();
                (
                    id.as_str(),
                    ProviderOut {
                        concurrency: p.concurrency,
                        base_urls,
                    },
                )
            })
            .collect();
        let presets = self
            .presets
            .iter()
            .map(|(name, preset)| Ok((name.as_str(), preset_out::<S>(preset)?)))
            .collect::<Result<_, S::Error>>()?;
        FileOut {
            defaults,
            output: OutputOut {
                folder,
                format: self.output.format.map_or("provider", OutputFormat::as_str),
                background: self.output.background.to_string(),
                naming: self.output.naming.as_str(),
            },
            providers,
            appearance: AppearanceOut {
                theme: self.appearance.theme.as_str(),
                welcome_seen: self.appearance.welcome_seen,
            },
            presets,
        }
        .serialize(serializer)
    }
}

/// A preset as the file writes it: every value, so a person editing it sees
/// what each can be.
fn preset_out<S: Serializer>(preset: &Preset) -> Result<PresetOut, S::Error> {
    let c = &preset.composition;
    let (background, background_fit) = match &c.background {
        Backdrop::Image { path, fit } => {
            let path = path.to_str().ok_or_else(|| {
                S::Error::custom(format!(
                    "the background picture's name is not Unicode text: {}",
                    path.display()
                ))
            })?;
            (format!("image:{path}"), Some(fit.as_str()))
        }
        other => (other.to_string(), None),
    };
    Ok(PresetOut {
        format: preset.format.as_str(),
        quality: preset.quality,
        background,
        background_fit,
        crop: match c.crop {
            None => CropOut::Off(false),
            Some(margin) => CropOut::Margin(margin.to_string()),
        },
        canvas: c.canvas.to_string(),
        anchor: c.anchor.as_str(),
        scale: format!("{}%", c.scale_percent),
        padding: c.padding.to_string(),
        shadow: match c.shadow {
            None => ShadowOut::Off(false),
            Some(shadow) => ShadowOut::On {
                distance: shadow.distance.to_string(),
                angle: shadow.angle_degrees,
                blur: shadow.blur.to_string(),
                opacity: format!("{}%", shadow.opacity_percent),
            },
        },
        remove_speckles: c.refine.remove_speckles,
        smooth: format!("{}px", c.refine.smooth_px),
        harden: f64::from(c.refine.harden_percent) / 100.0,
        decontaminate: c.refine.decontaminate,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path() -> PathBuf {
        PathBuf::from("/home/u/.config/cutout/settings.toml")
    }

    fn parse(text: &str) -> LoadedSettings {
        Settings::parse(text, &path())
    }

    fn messages(loaded: &LoadedSettings) -> Vec<String> {
        loaded.problems.iter().map(|p| p.to_string()).collect()
    }

    /// A folder that is absolute on every platform the tests run on.
    fn absolute(name: &str) -> PathBuf {
        std::env::temp_dir().join(name)
    }

    fn everything_set() -> Settings {
        let mut settings = Settings::default();
        settings.defaults.set(
            InputKind::ImageFile,
            Some(DefaultChoice {
                provider: ProviderId::Removebg,
                model: Some("full".to_owned()),
            }),
        );
        settings.defaults.set(
            InputKind::VideoUrl,
            Some(DefaultChoice {
                provider: ProviderId::Removebgvideo,
                model: None,
            }),
        );
        settings.output = OutputSettings {
            folder: Some(absolute("cut outs")),
            format: Some(OutputFormat::Webp),
            background: Background::Color([0x12, 0xab, 0xef]),
            naming: NamingTemplate::parse("{name}-{provider}-{{v}}").unwrap(),
        };
        settings.provider_mut(ProviderId::Removebg).concurrency = Some(7);
        settings
            .provider_mut(ProviderId::Uploadcare)
            .base_urls
            .insert("cdn_url", Url::parse("https://cdn.example.com/x/").unwrap());
        settings
            .provider_mut(ProviderId::Removit)
            .base_urls
            .insert("url", Url::parse("http://127.0.0.1:8080/").unwrap());
        settings.appearance.theme = Theme::Dark;
        settings.presets.insert(
            "marketplace".to_owned(),
            Preset {
                format: OutputFormat::Jpg,
                quality: Some(92),
                composition: Composition {
                    background: Backdrop::Color([255, 255, 255]),
                    crop: Some(Length::Percent { hundredths: 250 }),
                    canvas: Canvas::Square { side_px: 2000 },
                    anchor: Anchor::Bottom,
                    scale_percent: 90,
                    padding: Length::Px(40),
                    shadow: Some(Shadow::default()),
                    refine: refine::Refine {
                        remove_speckles: true,
                        smooth_px: 3,
                        harden_percent: 35,
                        decontaminate: true,
                    },
                },
            },
        );
        settings.presets.insert(
            "studio backdrop".to_owned(),
            Preset {
                format: OutputFormat::Webp,
                quality: None,
                composition: Composition::with_background(Backdrop::Image {
                    path: absolute("studio.jpg"),
                    fit: BackdropFit::Fit,
                }),
            },
        );
        settings
    }

    #[test]
    fn a_missing_file_means_the_defaults_without_any_problem() {
        let dir = tempfile::tempdir().unwrap();
        let loaded = Settings::load(&dir.path().join("settings.toml"));
        assert_eq!(loaded.settings, Settings::default());
        assert!(loaded.problems.is_empty());
    }

    #[test]
    fn the_defaults_are_png_transparent_named_after_the_input_in_the_systems_theme() {
        let settings = Settings::default();
        assert_eq!(settings.output.format, Some(OutputFormat::Png));
        assert_eq!(settings.output.background, Background::Transparent);
        assert_eq!(settings.output.naming.as_str(), "{name}");
        assert_eq!(settings.output.folder, None);
        assert_eq!(settings.appearance.theme, Theme::System);
        assert_eq!(settings.defaults, Defaults::default());
        assert!(settings.providers.is_empty());
    }

    #[test]
    fn the_readme_example_is_a_valid_settings_file() {
        let readme = include_str!("../README.md");
        let start = readme
            .find("```toml\n")
            .expect("a toml example in the README")
            + 8;
        let example = &readme[start..];
        let example = &example[..example.find("```").expect("the example's end")];
        let loaded = parse(example);
        assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
        assert_eq!(loaded.settings.output.naming.as_str(), "{name}-{provider}");
        assert_eq!(loaded.settings.concurrency(ProviderId::Removebg), Some(4));
    }

    #[test]
    fn saved_settings_load_back_the_same_without_problems() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("nested").join("settings.toml");
        let settings = everything_set();
        settings.save(&file).unwrap();
        let loaded = Settings::load(&file);
        assert_eq!(messages(&loaded), Vec::<String>::new());
        assert_eq!(loaded.settings, settings);

        Settings::default().save(&file).unwrap();
        let loaded = Settings::load(&file);
        assert!(loaded.problems.is_empty());
        assert_eq!(loaded.settings, Settings::default());
    }

    #[test]
    fn the_saved_file_reads_like_one_a_person_would_write() {
        let text = everything_set().to_toml().unwrap();
        assert!(text.starts_with("# Cutout settings."), "{text}");
        assert!(text.contains("keychain"), "{text}");
        let order: Vec<_> = [
            "[defaults.image_file]",
            "[output]",
            "[providers.removebg]",
            "[appearance]",
        ]
        .iter()
        .map(|header| {
            text.find(header)
                .unwrap_or_else(|| panic!("{header} in {text}"))
        })
        .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{text}");
        assert!(text.contains("background = \"#12abef\""), "{text}");
        assert!(text.contains("format = \"webp\""), "{text}");
        assert!(text.contains("theme = \"dark\""), "{text}");
        assert!(text.contains("concurrency = 7"), "{text}");
    }

    #[test]
    fn presets_are_read_value_by_value_and_written_back_the_same() {
        let backdrop = absolute("studio.jpg");
        let text = format!(
            r##"
[presets.marketplace]
format = "jpg"
quality = 85
background = "#FFFFFF"
crop = "5%"
canvas = "square:2000"
anchor = "bottom"
scale = 90
padding = "40px"
shadow = true
remove_speckles = true
smooth = 2
harden = 0.25
decontaminate = true

[presets.studio]
background = "image:{backdrop}"
background_fit = "fit"
crop = true
shadow = {{ opacity = "30%", blur = "12px", distance = "1%", angle = 90 }}
"##,
            backdrop = backdrop.to_str().unwrap()
        );
        let loaded = parse(&text);
        assert_eq!(messages(&loaded), Vec::<String>::new());
        let presets = loaded.settings.presets();
        assert_eq!(
            presets.keys().collect::<Vec<_>>(),
            ["marketplace", "studio"]
        );
        let market = loaded.settings.preset("marketplace").unwrap();
        assert_eq!(market.format, OutputFormat::Jpg);
        assert_eq!(market.quality, Some(85));
        let c = &market.composition;
        assert_eq!(c.background, Backdrop::Color([255, 255, 255]));
        assert_eq!(c.crop, Some(Length::Percent { hundredths: 500 }));
        assert_eq!(c.canvas, Canvas::Square { side_px: 2000 });
        assert_eq!(c.anchor, Anchor::Bottom);
        assert_eq!(c.scale_percent, 90);
        assert_eq!(c.padding, Length::Px(40));
        assert_eq!(c.shadow, Some(Shadow::default()));
        assert_eq!(
            c.refine,
            refine::Refine {
                remove_speckles: true,
                smooth_px: 2,
                harden_percent: 25,
                decontaminate: true,
            }
        );
        let studio = &presets["studio"];
        assert_eq!(studio.format, OutputFormat::Png);
        assert_eq!(
            studio.composition.background,
            Backdrop::Image {
                path: backdrop,
                fit: BackdropFit::Fit
            }
        );
        assert_eq!(studio.composition.crop, Some(Length::ZERO));
        assert_eq!(
            studio.composition.shadow,
            Some(Shadow {
                distance: Length::Percent { hundredths: 100 },
                angle_degrees: 90,
                blur: Length::Px(12),
                opacity_percent: 30,
            })
        );

        let saved = loaded.settings.to_toml().unwrap();
        assert!(saved.contains("[presets.marketplace]"), "{saved}");
        assert!(saved.contains("canvas = \"square:2000\""), "{saved}");
        assert!(
            saved.contains("smooth = \"2px\"\nharden = 0.25\n"),
            "{saved}"
        );
        let again = parse(&saved);
        assert_eq!(messages(&again), Vec::<String>::new());
        assert_eq!(again.settings, loaded.settings);
    }

    #[test]
    fn a_bad_preset_value_falls_back_alone_naming_its_line() {
        let loaded = parse(
            "[presets.shop]\nformat = \"gif\"\ncanvas = \"square:0\"\nanchor = \"middle-earth\"\n\
             scale = \"150%\"\nbackground = \"image:relative.jpg\"\nbackground_fit = \"fit\"\n\
             padding = \"40px\"\nshadow = { angle = 400 }\ncolour = \"red\"\nsmooth = 99\n\
             harden = 1.5\ndecontaminate = \"yes\"\nremove_speckles = true\n",
        );
        let problems = messages(&loaded);
        assert_eq!(problems.len(), 11, "{problems:#?}");
        assert!(problems[0].starts_with("line 2: format in [presets.shop] must be"));
        assert!(problems[1].starts_with("line 3: canvas in [presets.shop]"));
        assert!(problems[2].starts_with("line 4: anchor in [presets.shop]"));
        assert!(problems[3].starts_with("line 5: scale in [presets.shop]"));
        assert!(problems[4].starts_with("line 6: background in [presets.shop]"));
        assert!(problems[5].starts_with("line 7: background_fit in [presets.shop] is for"));
        assert!(problems[6].starts_with("line 9: angle in [presets.shop] shadow"));
        assert!(problems[7].starts_with("line 10: unknown setting \"colour\""));
        assert!(problems[8].starts_with("line 11: smooth in [presets.shop] must be"));
        assert!(problems[9].starts_with("line 12: harden in [presets.shop] must be"));
        assert!(problems[10].starts_with("line 13: decontaminate in [presets.shop] must be"));
        let shop = loaded.settings.preset("shop").unwrap();
        assert_eq!(shop.format, OutputFormat::Png);
        assert_eq!(shop.composition.canvas, Canvas::Original);
        assert_eq!(shop.composition.padding, Length::Px(40));
        assert_eq!(shop.composition.shadow, Some(Shadow::default()));
        assert_eq!(
            shop.composition.refine,
            refine::Refine {
                remove_speckles: true,
                ..refine::Refine::default()
            }
        );
    }

    #[test]
    fn keeping_the_providers_format_is_written_as_provider() {
        let mut settings = Settings::default();
        settings.output.format = None;
        let text = settings.to_toml().unwrap();
        assert!(text.contains("format = \"provider\""), "{text}");
        assert_eq!(parse(&text).settings.output.format, None);
    }

    #[test]
    fn a_hand_written_file_is_read_value_by_value() {
        let folder = absolute("results");
        let text = format!(
            r##"
[defaults]
image_file = {{ provider = "removit" }}
video_file = {{ provider = "removebgvideo", model = "pro" }}

[output]
folder = {folder:?}
format = "JPEG"
background = "#FFFFFF"
naming = "{{date}} {{name}}"

[providers.removebg]
concurrency = 2
base_urls.url = "https://proxy.example.com/v1.0"

        [appearance]
        theme = "light"
"##,
            folder = folder.to_str().unwrap()
        );
        let loaded = parse(&text);
        assert_eq!(messages(&loaded), Vec::<String>::new());
        let s = loaded.settings;
        let image = s.defaults.get(InputKind::ImageFile).unwrap();
        assert_eq!(image.provider, ProviderId::Removit);
        assert_eq!(image.model(), "removit");
        assert_eq!(s.defaults.get(InputKind::VideoFile).unwrap().model(), "pro");
        assert_eq!(s.defaults.get(InputKind::ImageUrl), None);
        assert_eq!(s.output.folder, Some(folder));
        assert_eq!(s.output.format, Some(OutputFormat::Jpg));
        assert_eq!(s.output.background, Background::Color([255, 255, 255]));
        assert_eq!(s.output.naming.as_str(), "{date} {name}");
        assert_eq!(s.concurrency(ProviderId::Removebg), Some(2));
        assert_eq!(s.concurrency(ProviderId::Removit), None);
        assert_eq!(
            s.base_urls(ProviderId::Removebg)["url"].as_str(),
            "https://proxy.example.com/v1.0"
        );
        assert!(s.base_urls(ProviderId::Uploadcare).is_empty());
        assert_eq!(s.appearance.theme, Theme::Light);
    }

    #[test]
    fn the_welcome_once_seen_stays_seen_and_a_bad_value_means_not_seen() {
        let mut settings = Settings::default();
        assert!(!settings.appearance.welcome_seen);
        let unseen = toml::to_string(&settings).unwrap();
        assert!(!unseen.contains("welcome_seen"), "{unseen}");
        settings.appearance.welcome_seen = true;
        let text = toml::to_string(&settings).unwrap();
        let loaded = parse(&text);
        assert_eq!(messages(&loaded), Vec::<String>::new());
        assert!(loaded.settings.appearance.welcome_seen, "{text}");

        let loaded = parse("[appearance]\nwelcome_seen = \"yes\"\n");
        assert!(!loaded.settings.appearance.welcome_seen);
        assert_eq!(messages(&loaded).len(), 1, "{:?}", messages(&loaded));
        assert!(
            messages(&loaded)[0].contains("welcome_seen must be true or false"),
            "{:?}",
            messages(&loaded)
        );
    }

    #[test]
    fn an_invalid_theme_names_its_line_the_choices_the_fallback_and_the_file() {
        let loaded = parse("[appearance]\n\n\n\n\n\ntheme = \"purple\"\n");
        assert_eq!(
            messages(&loaded),
            [
                "line 7: theme must be \"system\", \"light\" or \"dark\", not \"purple\"; \
                 using \"system\": /home/u/.config/cutout/settings.toml"
            ]
        );
        assert_eq!(loaded.problems[0].line, Some(7));
        assert_eq!(loaded.settings.appearance.theme, Theme::System);
    }

    #[test]
    fn one_bad_value_falls_back_alone_and_every_good_value_is_kept() {
        let text = r##"
[output]
format = "gif"
background = "#000000"
naming = "{name}-{size}"

[providers.removebg]
concurrency = 0

[providers.removit]
concurrency = 3

[appearance]
theme = "dark"
"##;
        let loaded = parse(text);
        let problems = messages(&loaded);
        assert_eq!(problems.len(), 3, "{problems:#?}");
        assert!(
            problems[0].starts_with("line 3: format must be"),
            "{}",
            problems[0]
        );
        assert!(
            problems[0].contains("not \"gif\"; using \"png\""),
            "{}",
            problems[0]
        );
        assert!(
            problems[1].starts_with("line 5: naming: "),
            "{}",
            problems[1]
        );
        assert!(problems[1].contains("{size}"), "{}", problems[1]);
        assert!(
            problems[2].starts_with(
                "line 8: concurrency for removebg must be a whole number from 1 to 16, not 0; \
                 using 4"
            ),
            "{}",
            problems[2]
        );
        let s = loaded.settings;
        assert_eq!(s.output.format, Some(OutputFormat::Png));
        assert_eq!(s.output.background, Background::Color([0, 0, 0]));
        assert_eq!(s.output.naming, NamingTemplate::default());
        assert_eq!(s.concurrency(ProviderId::Removebg), None);
        assert!(!s.providers.contains_key(&ProviderId::Removebg));
        assert_eq!(s.concurrency(ProviderId::Removit), Some(3));
        assert_eq!(s.appearance.theme, Theme::Dark);
    }

    #[test]
    fn values_of_the_wrong_type_are_reported_not_trusted() {
        let loaded = parse(
            "[output]\nformat = 3\nfolder = true\n[providers.removit]\nconcurrency = \"4\"\n\
             [appearance]\ntheme = [\"dark\"]\n",
        );
        let problems = messages(&loaded);
        assert_eq!(problems.len(), 4, "{problems:#?}");
        assert!(problems[0].contains("format must be"), "{}", problems[0]);
        assert!(problems[0].contains("not 3;"), "{}", problems[0]);
        assert!(problems[1].contains("not true;"), "{}", problems[1]);
        assert!(problems[2].contains("not \"4\";"), "{}", problems[2]);
        assert!(problems[3].contains("not a list;"), "{}", problems[3]);
        assert_eq!(loaded.settings, Settings::default());
    }

    #[test]
    fn concurrency_must_be_between_one_and_sixteen() {
        for (value, expected) in [
            ("1", Some(1)),
            ("16", Some(16)),
            ("0x10", Some(16)),
            ("17", None),
            ("-1", None),
            ("2.5", None),
            ("99999999999999999999", None),
        ] {
            let loaded = parse(&format!("[providers.removebg]\nconcurrency = {value}\n"));
            let concurrency = loaded.settings.concurrency(ProviderId::Removebg);
            assert_eq!(concurrency, expected, "{value}");
            assert_eq!(loaded.problems.is_empty(), expected.is_some(), "{value}");
        }
    }

    #[test]
    fn unknown_sections_keys_providers_and_endpoints_are_reported_by_name() {
        let loaded = parse(
            "[window]\nwidth = 3\n[output]\ncolour = \"red\"\n\
             [providers.acme]\nconcurrency = 2\n\
             [providers.removebg.base_urls]\ncdn_url = \"https://cdn.example.com\"\n",
        );
        let problems = messages(&loaded);
        assert_eq!(problems.len(), 4, "{problems:#?}");
        assert!(
            problems[0].starts_with("line 1: unknown setting \"window\" in the file"),
            "{}",
            problems[0]
        );
        assert!(problems[0].contains("[appearance]"), "{}", problems[0]);
        assert!(
            problems[1].starts_with("line 4: unknown setting \"colour\" in [output]"),
            "{}",
            problems[1]
        );
        assert!(
            problems[2].starts_with("line 5: unknown provider \"acme\""),
            "{}",
            problems[2]
        );
        assert!(problems[2].contains("removebgvideo"), "{}", problems[2]);
        assert!(problems[3].starts_with("line 8: "), "{}", problems[3]);
        assert!(problems[3].contains("\"cdn_url\""), "{}", problems[3]);
        assert!(
            problems[3].contains("removebg's base URLs are url"),
            "{}",
            problems[3]
        );
        assert!(loaded.settings.providers.is_empty());
    }

    #[test]
    fn a_setting_written_outside_its_section_is_pointed_to_it() {
        let loaded = parse("theme = \"dark\"\n");
        assert_eq!(
            messages(&loaded),
            [
                "line 1: \"theme\" belongs under [appearance]; ignoring it: \
              /home/u/.config/cutout/settings.toml"
            ]
        );
    }

    #[test]
    fn api_keys_are_never_read_from_the_file_and_the_problem_says_where_they_live() {
        let text = "api_key = \"rbg_topsecret\"\n\
                    [providers.removebg]\nkey = \"rbg_topsecret\"\n\
                    [providers.uploadcare]\nsecret_key = \"uc_topsecret\"\n";
        let loaded = parse(text);
        let problems = messages(&loaded);
        assert_eq!(problems.len(), 3, "{problems:#?}");
        for problem in &problems {
            assert!(problem.contains("keychain"), "{problem}");
            assert!(!problem.contains("topsecret"), "{problem}");
        }
        assert!(
            problems[0].starts_with("line 1: \"api_key\""),
            "{}",
            problems[0]
        );
        assert!(
            problems[1].starts_with("line 3: \"key\""),
            "{}",
            problems[1]
        );
        assert_eq!(loaded.settings, Settings::default());
        assert!(!format!("{:?}", loaded.settings).contains("topsecret"));
    }

    #[test]
    fn a_default_provider_must_take_that_kind_of_input_and_know_the_model() {
        let loaded = parse(
            "[defaults.image_file]\nprovider = \"removebgvideo\"\n\
             [defaults.image_url]\nprovider = \"removebg\"\nmodel = \"huge\"\n\
             [defaults.video_file]\nmodel = \"pro\"\n\
             [defaults.video_url]\nprovider = \"nobody\"\nmodel = \"pro\"\n",
        );
        let problems = messages(&loaded);
        assert_eq!(problems.len(), 4, "{problems:#?}");
        assert!(
            problems[0].starts_with(
                "line 2: provider for image files must be one that takes them \
                 (local, uploadcare, removit, removebg), not \"removebgvideo\"; using none"
            ),
            "{}",
            problems[0]
        );
        assert!(
            problems[1].starts_with("line 5: model for image URLs: "),
            "{}",
            problems[1]
        );
        assert!(problems[1].contains("`huge`"), "{}", problems[1]);
        assert!(problems[1].ends_with("using \"auto\": /home/u/.config/cutout/settings.toml"));
        assert!(problems[2].starts_with("line 7: model for video files needs a provider"));
        assert!(
            problems[3].starts_with("line 9: provider for video URLs"),
            "{}",
            problems[3]
        );
        let d = loaded.settings.defaults;
        assert_eq!(d.image_file, None);
        assert_eq!(
            d.image_url,
            Some(DefaultChoice {
                provider: ProviderId::Removebg,
                model: None
            })
        );
        assert_eq!(d.video_file, None);
        assert_eq!(d.video_url, None);
    }

    #[test]
    fn base_urls_must_be_https_except_to_this_machine_and_carry_no_credentials() {
        let loaded = parse(
            "[providers.removebg.base_urls]\nurl = \"http://api.example.com\"\n\
             [providers.removit.base_urls]\nurl = \"https://user:hunter2@proxy.example.com\"\n\
             [providers.uploadcare.base_urls]\napi_url = \"not a url\"\n\
             upload_url = \"http://localhost:9000\"\n",
        );
        let problems = messages(&loaded);
        assert_eq!(problems.len(), 3, "{problems:#?}");
        assert!(problems[0].contains("base URL url for removebg cannot be used"));
        assert!(problems[0].contains("https"), "{}", problems[0]);
        assert!(problems[0].contains("using the default https://api.remove.bg/v1.0"));
        assert!(problems[1].contains("keychain"), "{}", problems[1]);
        assert!(!problems[1].contains("hunter2"), "{}", problems[1]);
        assert!(problems[2].contains("base URL api_url for uploadcare cannot be used"));
        let s = loaded.settings;
        assert!(s.base_urls(ProviderId::Removebg).is_empty());
        assert!(s.base_urls(ProviderId::Removit).is_empty());
        assert_eq!(
            s.base_urls(ProviderId::Uploadcare)["upload_url"].as_str(),
            "http://localhost:9000/"
        );
    }

    #[test]
    fn a_relative_output_folder_is_refused_and_an_empty_one_means_the_default() {
        let loaded = parse("[output]\nfolder = \"results\"\n");
        assert!(messages(&loaded)[0].contains("full path"));
        assert_eq!(loaded.settings.output.folder, None);
        let loaded = parse("[output]\nfolder = \"\"\n");
        assert!(loaded.problems.is_empty());
        assert_eq!(loaded.settings.output.folder, None);
    }

    #[test]
    fn a_syntax_error_gives_the_defaults_and_one_problem_with_its_line() {
        let loaded = parse("[appearance]\ntheme = \"dark\"\n[output\nformat = \"webp\"\n");
        assert_eq!(loaded.settings, Settings::default());
        assert_eq!(loaded.problems.len(), 1);
        let problem = &loaded.problems[0];
        assert_eq!(problem.line, Some(3));
        let text = problem.to_string();
        assert!(text.contains("not valid TOML"), "{text}");
        assert!(
            text.ends_with("; using the default settings: /home/u/.config/cutout/settings.toml")
        );
    }

    #[test]
    fn a_section_that_is_not_a_table_is_ignored_with_a_reason() {
        let loaded = parse("output = \"fast\"\n[[appearance]]\ntheme = \"dark\"\n");
        let problems = messages(&loaded);
        assert_eq!(problems.len(), 2, "{problems:#?}");
        assert!(
            problems[0].contains("[output] must be a table"),
            "{}",
            problems[0]
        );
        assert!(
            problems[1].contains("[appearance] must be a table"),
            "{}",
            problems[1]
        );
    }

    #[test]
    fn a_file_that_is_not_text_gives_the_defaults_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("settings.toml");
        std::fs::write(&file, b"[appearance]\ntheme = \"\xff\xfe\"\n").unwrap();
        let loaded = Settings::load(&file);
        assert_eq!(loaded.settings, Settings::default());
        assert_eq!(loaded.problems.len(), 1);
        assert_eq!(loaded.problems[0].line, Some(2));
        assert!(loaded.problems[0].to_string().contains("not UTF-8"));
    }

    #[test]
    fn a_folder_where_the_file_should_be_gives_the_defaults_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let loaded = Settings::load(dir.path());
        assert_eq!(loaded.settings, Settings::default());
        assert_eq!(loaded.problems.len(), 1);
        let text = loaded.problems[0].to_string();
        assert!(text.starts_with("could not read the settings"), "{text}");
        assert!(text.ends_with(&dir.path().display().to_string()), "{text}");
    }

    #[test]
    fn no_input_makes_loading_panic() {
        let valid = everything_set().to_toml().unwrap();
        let with_problems =
            "[output]\nformat = \"gif\"\nnaming = \"{x\"\n[appearance]\ntheme = 1\n";
        for source in [valid.as_str(), with_problems] {
            for (end, _) in source.char_indices() {
                let _ = parse(&source[..end]);
                let _ = parse(&source[end..]);
            }
        }
        let mut rng = fastrand::Rng::with_seed(7);
        let alphabet: Vec<char> = "[]{}=\"'#.,\n \\tx01_-:+é✂\u{0}\r".chars().collect();
        for _ in 0..3000 {
            let mut text: Vec<char> = valid.chars().collect();
            for _ in 0..rng.usize(1..8) {
                let at = rng.usize(0..=text.len());
                match rng.u8(0..3) {
                    0 => text.insert(at, alphabet[rng.usize(0..alphabet.len())]),
                    1 if at < text.len() => {
                        text.remove(at);
                    }
                    _ => text.truncate(at),
                }
            }
            let text: String = text.into_iter().collect();
            let loaded = parse(&text);
            // Whatever was read must save and read back clean.
            let again = parse(&loaded.settings.to_toml().unwrap());
            assert!(again.problems.is_empty(), "{text:?}: {:?}", again.problems);
            assert_eq!(again.settings, loaded.settings, "{text:?}");
        }
        for _ in 0..2000 {
            let len = rng.usize(0..200);
            let text: String = (0..len).map(|_| rng.char(..)).collect();
            let _ = parse(&text);
        }
        let deep = format!("x = {}{}", "[".repeat(10_000), "]".repeat(10_000));
        let _ = parse(&deep);
    }

    #[cfg(unix)]
    #[test]
    fn a_new_file_is_an_ordinary_file_and_an_existing_one_keeps_its_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("settings.toml");
        Settings::default().save(&file).unwrap();
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o600, 0o600, "{mode:o}");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        everything_set().save(&file).unwrap();
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }

    #[test]
    fn saving_replaces_the_file_and_leaves_no_temporary_file_behind() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("settings.toml");
        std::fs::write(&file, "[appearance]\ntheme = \"light\"\n").unwrap();
        everything_set().save(&file).unwrap();
        assert_eq!(Settings::load(&file).settings, everything_set());
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["settings.toml"]);
    }

    #[cfg(unix)]
    #[test]
    fn saving_through_a_symbolic_link_replaces_its_target() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("dotfiles").join("cutout.toml");
        std::fs::create_dir_all(real.parent().unwrap()).unwrap();
        std::fs::write(&real, "").unwrap();
        let link = dir.path().join("settings.toml");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        everything_set().save(&link).unwrap();
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(Settings::load(&real).settings, everything_set());
    }

    #[test]
    fn a_save_that_cannot_write_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, "").unwrap();
        let err = Settings::default()
            .save(&blocker.join("settings.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("could not save the settings"), "{err}");
        assert!(err.ends_with(&blocker.display().to_string()), "{err}");
    }

    #[test]
    fn problems_without_a_line_show_only_the_message_and_path() {
        let problem = SettingsProblem {
            path: path(),
            line: None,
            message: "could not read the settings".to_owned(),
        };
        assert_eq!(
            problem.to_string(),
            "could not read the settings: /home/u/.config/cutout/settings.toml"
        );
    }
}
