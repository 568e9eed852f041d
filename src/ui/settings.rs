//! The Settings window and the preferences it edits: API keys per provider
//! (kept in the OS keychain), what new batches start with, how many jobs
//! each provider runs at once, the theme, and (tucked under "Advanced")
//! base URL overrides.
//!
//! Everything but keys lives in the settings file
//! ([`crate::settings`]), loaded at start and saved, atomically and on a
//! worker thread, the moment something changes here. Keys never go near
//! that file: Save hands a key to [`ProviderSetup`], which stores it in the
//! keychain on its worker thread (or, where there is no keychain, keeps it
//! for this session only). The typed text is wiped at once, so the window
//! never shows a stored key and no plain copy lingers in a text buffer or
//! its undo history.
//!
//! Keys and base URLs are applied explicitly, with Save and Apply, so a
//! half-typed key or URL never rebuilds a provider on every keystroke.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use egui::text_edit::TextEditState;
use egui::{Color32, Key, RichText, ThemePreference};
use secrecy::SecretString;
use url::Url;

use crate::config::{Lookup, parse_base_url};
use crate::imaging::{Background, OutputFormat};
use crate::jobs::job::InputKind;
use crate::jobs::naming::NamingTemplate;
use crate::paths::AppDirs;
use crate::providers::{CredentialSpec, EndpointSpec, ProviderId, providers_accepting};
use crate::secrets::KeychainStatus;
use crate::settings::{DefaultChoice, MAX_CONCURRENCY, Settings, SettingsProblem, Theme};
use crate::ui::form::{NAMING_HELP, format_picker_ui};
use crate::ui::local::LocalPanel;
use crate::ui::sentence_case;
use crate::ui::setup::{KeyOrigin, KeyTest, ProviderSetup, Waker};

/// One provider credential: the provider and the credential's id.
type Slot = (ProviderId, &'static str);

/// The width of field labels, so fields line up from block to block.
const LABEL_WIDTH: f32 = 110.0;
/// Button widths, fixed so the field beside them can take the rest of the
/// row without pushing them out of the window.
const EYE_WIDTH: f32 = 48.0;
const APPLY_WIDTH: f32 = 56.0;
const CHOOSE_WIDTH: f32 = 72.0;

/// What the Save button says when keys go into the keychain.
const SAVE: &str = "Save";
/// What it says when there is no keychain.
const KEEP_FOR_SESSION: &str = "Keep for this session";
/// The button that removes a key.
const DELETE: &str = "Delete";

/// What to say when no folder dialog can be shown.
const NO_FOLDER_DIALOG: &str = "No folder dialog is available on this desktop (the XDG desktop \
                                portal is not running). Type the folder's path instead.";

/// What the user prefers for the window as a whole, as opposed to one
/// batch: the settings file, loaded at start and saved on every change.
pub struct Preferences {
    /// Where a new batch saves its results unless the user picks another
    /// folder in the side panel: the settings file's folder, else the
    /// built-in default (or, in tests, the folder the window was started
    /// with).
    pub default_out_dir: PathBuf,
    /// Light, dark, or whatever the desktop uses, as egui wants it.
    theme: ThemePreference,
    settings: Settings,
    /// `Pictures/Cutout`, used while the settings name no folder.
    builtin_out_dir: PathBuf,
    /// The settings file; `None` when there is no folder to keep it in.
    file: Option<PathBuf>,
    saver: Option<Saver>,
    /// Why the last save failed; cleared by the next that works.
    save_error: Option<String>,
}

impl Default for Preferences {
    /// The built-in settings, kept in memory only.
    fn default() -> Self {
        Preferences::from_settings(Settings::default(), None, None)
    }
}

impl Preferences {
    /// Reads the settings file named by `lookup` (`CUTOUT_CONFIG_DIR`, else
    /// the platform's config folder), with one message per value that was
    /// ignored, saying its line and the file's path. Nothing in the file
    /// can stop the window from opening: bad values fall back to defaults.
    pub fn load(lookup: Lookup<'_>, wake: Waker) -> (Preferences, Vec<String>) {
        let dirs = match AppDirs::resolve(lookup) {
            Ok(dirs) => dirs,
            Err(e) => {
                let message = format!("{e}. Changes in Settings last until Cutout closes.");
                return (Preferences::default(), vec![sentence_case(&message)]);
            }
        };
        let path = dirs.settings_file();
        let loaded = Settings::load(&path);
        let mut problems: Vec<String> = loaded.problems.iter().map(problem_text).collect();
        let saver = match Saver::start(path.clone(), wake) {
            Ok(saver) => Some(saver),
            Err(e) => {
                problems.push(format!(
                    "Changes in Settings cannot be saved: Cutout could not start a thread ({e})"
                ));
                None
            }
        };
        (
            Preferences::from_settings(loaded.settings, Some(path), saver),
            problems,
        )
    }

    fn from_settings(settings: Settings, file: Option<PathBuf>, saver: Option<Saver>) -> Self {
        let builtin_out_dir = default_out_dir(home_dir().as_deref());
        Preferences {
            default_out_dir: settings
                .output
                .folder
                .clone()
                .unwrap_or_else(|| builtin_out_dir.clone()),
            theme: egui_theme(settings.appearance.theme),
            settings,
            builtin_out_dir,
            file,
            saver,
            save_error: None,
        }
    }

    /// The settings as now applied.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Where the settings are saved, if anywhere.
    pub fn settings_file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// Why the last save failed, with the file's path.
    pub fn save_error(&self) -> Option<&str> {
        self.save_error.as_deref()
    }

    /// Changes the settings and saves them (on the saving thread). The
    /// default folder and theme follow what changed.
    pub fn edit(&mut self, change: impl FnOnce(&mut Settings)) {
        let folder = self.settings.output.folder.clone();
        change(&mut self.settings);
        if self.settings.output.folder != folder {
            self.default_out_dir = self
                .settings
                .output
                .folder
                .clone()
                .unwrap_or_else(|| self.builtin_out_dir.clone());
        }
        self.theme = egui_theme(self.settings.appearance.theme);
        if let Some(saver) = &self.saver
            && let Err(why) = saver.save(self.settings.clone())
        {
            self.save_error = Some(why);
        }
    }

    /// Takes in how saves went.
    fn receive_saves(&mut self) {
        let Some(saver) = &self.saver else {
            return;
        };
        while let Ok(outcome) = saver.results.try_recv() {
            self.save_error = outcome.err();
        }
    }

    /// Makes the window use the preferred theme. Called every frame, so it
    /// only touches egui's options when the preference differs from what is
    /// in effect: setting the theme restyles every widget.
    pub fn apply_theme(&self, ctx: &egui::Context) {
        if ctx.options(|o| o.theme_preference) != self.theme {
            ctx.set_theme(self.theme);
        }
    }
}

/// The thread that writes the settings file, so the window never waits on
/// the disk. Changes that arrive while it writes are folded into one save
/// of the newest settings.
struct Saver {
    sender: mpsc::Sender<Settings>,
    results: mpsc::Receiver<Result<(), String>>,
}

impl Saver {
    fn start(path: PathBuf, wake: Waker) -> std::io::Result<Saver> {
        let (sender, inbox) = mpsc::channel::<Settings>();
        let (report, results) = mpsc::channel();
        std::thread::Builder::new()
            .name("cutout-settings".to_owned())
            .spawn(move || {
                while let Ok(mut newest) = inbox.recv() {
                    while let Ok(newer) = inbox.try_recv() {
                        newest = newer;
                    }
                    let outcome = newest.save(&path).map_err(|e| e.to_string());
                    if report.send(outcome).is_err() {
                        break;
                    }
                    wake();
                }
            })?;
        Ok(Saver { sender, results })
    }

    fn save(&self, settings: Settings) -> Result<(), String> {
        self.sender.send(settings).map_err(|_| {
            "the settings could not be saved: the thread that saves them has stopped; \
             restart Cutout"
                .to_owned()
        })
    }
}

/// One ignored value in the settings file, as the window's notice says it.
fn problem_text(problem: &SettingsProblem) -> String {
    let path = problem.path.display();
    match problem.line {
        Some(line) => format!("Settings file, line {line}: {}: {path}", problem.message),
        None => format!("Settings file: {}: {path}", problem.message),
    }
}

/// The settings file's theme as egui's.
fn egui_theme(theme: Theme) -> ThemePreference {
    match theme {
        Theme::System => ThemePreference::System,
        Theme::Light => ThemePreference::Light,
        Theme::Dark => ThemePreference::Dark,
    }
}

/// The user's home folder, if the environment names one.
fn home_dir() -> Option<PathBuf> {
    ["HOME", "USERPROFILE"]
        .into_iter()
        .filter_map(std::env::var_os)
        .find(|value| !value.is_empty())
        .map(PathBuf::from)
}

/// `home/Pictures/Cutout` when `home/Pictures` exists, else `home/Cutout`
/// (an app started from a desktop menu has no meaningful working folder),
/// and `cutout-output` in the working folder only when there is no home.
/// Takes the home folder so tests can use their own.
fn default_out_dir(home: Option<&Path>) -> PathBuf {
    match home {
        Some(home) if home.join("Pictures").is_dir() => home.join("Pictures").join("Cutout"),
        Some(home) => home.join("Cutout"),
        None => PathBuf::from("cutout-output"),
    }
}

/// How a folder dialog ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum FolderPick {
    /// The user chose this folder.
    Chosen(PathBuf),
    /// The user closed the dialog without choosing.
    Cancelled,
    /// No dialog could be shown at all.
    Unavailable,
}

impl FolderPick {
    /// Reads what `rfd` returned after the dialog was open for `open_for`.
    fn from_dialog(picked: Option<PathBuf>, open_for: Duration) -> Self {
        match picked {
            Some(folder) => FolderPick::Chosen(folder),
            None if open_for < crate::ui::intake::DIALOG_UNAVAILABLE_WITHIN => {
                FolderPick::Unavailable
            }
            None => FolderPick::Cancelled,
        }
    }
}

/// Whether a status line reads as good news, as something to fix, or as
/// neither (work under way).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Tone {
    Ready,
    NeedsAttention,
    Neutral,
}

/// The Settings window. Holds only what is being typed; everything applied
/// lives in [`ProviderSetup`] and [`Preferences`].
#[derive(Default)]
pub struct SettingsWindow {
    /// Whether the window is shown; the 🗙 and Esc close it.
    pub open: bool,
    /// The key fields.
    keys: KeyEditor,
    /// Base URLs being typed, until Apply.
    url_drafts: BTreeMap<Slot, String>,
    /// Why an address typed under Advanced was not applied.
    url_errors: BTreeMap<Slot, String>,
    /// Jobs at once while a value is being dragged or typed.
    jobs_drafts: BTreeMap<ProviderId, usize>,
    /// The default folder as typed while it is not a full path yet.
    folder_draft: Option<String>,
    /// The default file names as typed, kept while invalid.
    naming_draft: Option<String>,
    /// The folder dialog running on its worker thread.
    folder_pick: Option<mpsc::Receiver<FolderPick>>,
    /// Why the last folder dialog could not be shown.
    folder_problem: Option<&'static str>,
}

/// The API key fields of one window (Settings, the welcome): what is being
/// typed until Save, which fields show their text, and which Delete waits
/// for an answer. Everything saved goes to [`ProviderSetup`].
#[derive(Default)]
pub struct KeyEditor {
    /// Keys being typed, by provider and credential, until Save.
    key_drafts: BTreeMap<Slot, String>,
    /// Key fields the user asked to show in plain text while typing.
    revealed: BTreeSet<Slot>,
    /// The key whose Delete is waiting for "Yes, delete".
    confirm_delete: Option<Slot>,
    /// What the show/hide toggle says, worked out once.
    eye_label: Option<&'static str>,
}

impl KeyEditor {
    /// Forgets every key typed but not saved, wiping the text.
    pub fn forget_typing(&mut self) {
        for draft in self.key_drafts.values_mut() {
            wipe(draft);
        }
        self.key_drafts.clear();
        self.revealed.clear();
        self.confirm_delete = None;
    }

    /// One provider's block: a field and status line per credential, and
    /// "Test key" with its outcome.
    pub fn provider_keys_ui(
        &mut self,
        ui: &mut egui::Ui,
        setup: &mut ProviderSetup,
        id: ProviderId,
    ) {
        let info = id.info();
        egui::Frame::group(ui.style()).show(ui, |ui| {
            ui.set_width(ui.available_width());
            ui.horizontal(|ui| {
                ui.label(RichText::new(info.name).strong())
                    .on_hover_text(info.summary);
                ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                    let ready = setup.status(id).is_ready();
                    let running = setup.key_test(id) == Some(&KeyTest::Running);
                    let test = ui
                        .add_enabled(ready && !running, egui::Button::new("Test key"))
                        .on_hover_text(format!(
                            "Ask {} whether it accepts the key, with a free call",
                            info.name
                        ))
                        .on_disabled_hover_text(if running {
                            "Testing…"
                        } else {
                            "Set the key first"
                        });
                    if test.clicked() {
                        setup.test_key(id);
                    }
                });
            });
            if let Some(problem) = setup.problem(id) {
                ui.add(
                    egui::Label::new(
                        RichText::new(format!("⚠ {}", sentence_case(problem)))
                            .color(ui.visuals().warn_fg_color),
                    )
                    .wrap(),
                );
            }
            for spec in info.credentials {
                self.key_field_ui(ui, setup, id, spec);
            }
            if let Some(test) = setup.key_test(id) {
                key_test_ui(ui, test);
            }
        });
    }

    /// The masked field for one credential, with show/hide, Save (or Keep
    /// for this session) and Delete, then where the key now comes from.
    fn key_field_ui(
        &mut self,
        ui: &mut egui::Ui,
        setup: &mut ProviderSetup,
        id: ProviderId,
        spec: &'static CredentialSpec,
    ) {
        let slot = (id, spec.id);
        let origin = setup.key_origin(id, spec.id);
        let in_keychain = setup.in_keychain(id, spec.id);
        let busy = setup.key_busy(id, spec.id);
        let keychain = setup.keychain_status().cloned();
        let checking = keychain.is_none();
        let keychain_available = keychain == Some(KeychainStatus::Available);
        let deletable = origin == KeyOrigin::Session || in_keychain;
        let save_text = if keychain_available || checking {
            SAVE
        } else {
            KEEP_FOR_SESSION
        };
        ui.horizontal(|ui| {
            let label = field_label_ui(ui, &sentence_case(spec.label));
            let save_width = button_width(ui, save_text);
            let delete_width = button_width(ui, DELETE);
            let mut buttons = vec![EYE_WIDTH, save_width];
            if deletable {
                buttons.push(delete_width);
            }
            let draft = self.key_drafts.entry(slot).or_default();
            let revealed = self.revealed.contains(&slot);
            let field = ui
                .add(
                    egui::TextEdit::singleline(draft)
                        .password(!revealed)
                        .hint_text(key_hint(origin))
                        .desired_width(field_width(ui, &buttons)),
                )
                .labelled_by(label.id)
                .on_hover_text(format!(
                    "Paste your {} {} and press {save_text}",
                    id.info().name,
                    spec.label
                ));
            let entered = field.lost_focus() && ui.input(|i| i.key_pressed(Key::Enter));
            let eye = *self.eye_label.get_or_insert_with(|| {
                eye_label(ui.ctx(), &egui::TextStyle::Button.resolve(ui.style()))
            });
            let toggle = ui
                .add(
                    egui::Button::new(eye)
                        .selected(revealed)
                        .min_size(egui::vec2(EYE_WIDTH, 0.0)),
                )
                .on_hover_text(if revealed {
                    "Hide what you typed"
                } else {
                    "Show what you typed"
                });
            toggle.widget_info(|| {
                egui::WidgetInfo::selected(
                    egui::accesskit::Role::Button,
                    true,
                    revealed,
                    "Show key",
                )
            });
            if toggle.clicked() {
                if revealed {
                    self.revealed.remove(&slot);
                } else {
                    self.revealed.insert(slot);
                }
            }
            let typed = !draft.trim().is_empty();
            let can_save = typed && !busy && !checking;
            let save = ui
                .add_enabled(
                    can_save,
                    egui::Button::new(save_text).min_size(egui::vec2(save_width, 0.0)),
                )
                .on_hover_text(if keychain_available {
                    "Save the key in your system keychain"
                } else {
                    "Use this key until Cutout closes; it is not saved anywhere"
                })
                .on_disabled_hover_text(if checking {
                    "Checking your system keychain…"
                } else {
                    "Paste a key first"
                });
            if can_save && (save.clicked() || entered) {
                let secret = SecretString::from(draft.trim().to_owned());
                wipe(draft);
                forget_undo_history(ui.ctx(), field.id);
                self.revealed.remove(&slot);
                setup.save_key(id, spec.id, secret);
            }
            if deletable
                && ui
                    .add_enabled(
                        !busy,
                        egui::Button::new(DELETE).min_size(egui::vec2(delete_width, 0.0)),
                    )
                    .on_hover_text(if in_keychain {
                        "Remove the key from your system keychain"
                    } else {
                        "Forget the key kept for this session"
                    })
                    .clicked()
            {
                self.confirm_delete = Some(slot);
            }
        });
        let (text, tone) = key_status_text(origin, busy, checking, keychain_available);
        indented_ui(ui, |ui| status_line_ui(ui, &text, tone));
        if self.confirm_delete == Some(slot) {
            indented_ui(ui, |ui| {
                ui.horizontal_wrapped(|ui| {
                    let name = id.info().name;
                    let question = if in_keychain {
                        format!("Delete the {name} {} from your keychain?", spec.label)
                    } else {
                        format!("Forget the {name} {} kept for this session?", spec.label)
                    };
                    ui.label(RichText::new(question).strong());
                    if ui
                        .button(RichText::new("Yes, delete").color(ui.visuals().error_fg_color))
                        .clicked()
                    {
                        setup.delete_key(id, spec.id);
                        self.confirm_delete = None;
                    }
                    if ui.button("Cancel").clicked() {
                        self.confirm_delete = None;
                    }
                });
            });
        }
        if let Some(why) = setup.key_error(id, spec.id) {
            let text = format!("⚠ {}", sentence_case(why));
            indented_ui(ui, |ui| {
                ui.add(
                    egui::Label::new(RichText::new(text).color(ui.visuals().error_fg_color)).wrap(),
                );
            });
        }
    }
}

impl SettingsWindow {
    /// Draws the window while it is open. Keys, jobs at once and base URLs
    /// update `setup` (which rebuilds that provider); everything but keys
    /// is also saved to the settings file through `prefs`. `local` draws
    /// the "Local engine" section.
    pub fn settings_ui(
        &mut self,
        ctx: &egui::Context,
        setup: &mut ProviderSetup,
        prefs: &mut Preferences,
        local: &mut LocalPanel,
    ) {
        prefs.receive_saves();
        self.receive_folder_pick(prefs);
        if !self.open {
            return;
        }
        let mut open = !escape_pressed(ctx);
        if open {
            egui::Window::new("Settings")
                .open(&mut open)
                .collapsible(false)
                .resizable(true)
                .vscroll(true)
                .default_size([600.0, 680.0])
                .min_width(460.0)
                .pivot(egui::Align2::CENTER_CENTER)
                .default_pos(ctx.content_rect().center())
                .show(ctx, |ui| self.contents_ui(ui, setup, prefs, local));
        }
        if !open {
            self.close();
        }
    }

    /// Closes the window, forgetting any key typed but not saved.
    fn close(&mut self) {
        self.open = false;
        self.keys.forget_typing();
        self.folder_draft = None;
        self.naming_draft = None;
    }

    fn contents_ui(
        &mut self,
        ui: &mut egui::Ui,
        setup: &mut ProviderSetup,
        prefs: &mut Preferences,
        local: &mut LocalPanel,
    ) {
        ui.spacing_mut().item_spacing.y = 6.0;
        self.keys_ui(ui, setup);

        ui.add_space(10.0);
        local.settings_section_ui(ui);

        ui.add_space(10.0);
        self.new_batches_ui(ui, prefs);

        ui.add_space(10.0);
        section_heading_ui(ui, "Jobs at once");
        ui.label(
            RichText::new(
                "How many files each provider works on at the same time. More is faster, \
                 but may hit the provider's rate limits.",
            )
            .weak(),
        );
        self.jobs_at_once_ui(ui, setup, prefs);

        ui.add_space(10.0);
        section_heading_ui(ui, "Appearance");
        let current = prefs.settings().appearance.theme;
        let mut theme = current;
        ui.horizontal(|ui| {
            field_label_ui(ui, "Theme");
            ui.radio_value(&mut theme, Theme::System, "Follow system")
                .on_hover_text("Match your desktop's light or dark setting");
            ui.radio_value(&mut theme, Theme::Light, "Light");
            ui.radio_value(&mut theme, Theme::Dark, "Dark");
        });
        if theme != current {
            prefs.edit(|s| s.appearance.theme = theme);
        }

        ui.add_space(8.0);
        egui::CollapsingHeader::new(RichText::new("Advanced").strong())
            .id_salt("settings advanced")
            .default_open(false)
            .show(ui, |ui| self.base_urls_ui(ui, setup, prefs));

        ui.add_space(4.0);
        ui.separator();
        footer_ui(ui, prefs);
    }

    /// The keys section: whether there is a keychain, then one block per
    /// provider.
    fn keys_ui(&mut self, ui: &mut egui::Ui, setup: &mut ProviderSetup) {
        section_heading_ui(ui, "API keys");
        match setup.keychain_status() {
            None => {
                ui.horizontal(|ui| {
                    ui.spinner();
                    ui.label(RichText::new("Checking your system keychain…").weak());
                });
            }
            Some(KeychainStatus::Available) => {
                ui.label(
                    RichText::new(
                        "Keys you save are kept in your system keychain, never in a file. \
                         Cutout never shows a saved key.",
                    )
                    .weak(),
                );
            }
            Some(KeychainStatus::Unavailable { reason, fix }) => {
                no_keychain_banner_ui(ui, reason, fix);
            }
        }
        for problem in setup.keychain_problems() {
            ui.add(
                egui::Label::new(
                    RichText::new(format!(
                        "⚠ Some keys could not be read: {}",
                        sentence_case(problem)
                    ))
                    .color(ui.visuals().warn_fg_color),
                )
                .wrap(),
            );
        }
        // The local engine needs no key; it has a section of its own.
        for id in ProviderId::ALL {
            if !id.info().credentials.is_empty() {
                self.keys.provider_keys_ui(ui, setup, id);
            }
        }
    }

    /// What new batches start with: provider and model for images, where
    /// results go, their format, background and file names.
    fn new_batches_ui(&mut self, ui: &mut egui::Ui, prefs: &mut Preferences) {
        section_heading_ui(ui, "New batches");
        ui.label(
            RichText::new(
                "What the side panel starts with when Cutout opens. A change here also \
                 applies to the batch you are setting up.",
            )
            .weak(),
        );
        self.default_provider_ui(ui, prefs);
        self.output_folder_ui(ui, prefs);

        let current = prefs.settings().output.format;
        let mut format = current;
        ui.horizontal(|ui| {
            let label = field_label_ui(ui, "Format");
            format_picker_ui(ui, "default format", &mut format).labelled_by(label.id);
        });
        if format != current {
            prefs.edit(|s| s.output.format = format);
        }

        let current = prefs.settings().output.background;
        let mut fill = matches!(current, Background::Color(_));
        let mut rgb = match current {
            Background::Color(rgb) => rgb,
            Background::Transparent => [255, 255, 255],
        };
        ui.horizontal(|ui| {
            field_label_ui(ui, "Background");
            ui.radio_value(&mut fill, false, "Transparent");
            ui.radio_value(&mut fill, true, "Colour");
            if fill {
                ui.color_edit_button_srgb(&mut rgb)
                    .on_hover_text("The colour behind the subject");
            }
        });
        let background = if fill {
            Background::Color(rgb)
        } else {
            Background::Transparent
        };
        if background != current {
            prefs.edit(|s| s.output.background = background);
        }
        if format == Some(OutputFormat::Jpg) && !fill {
            indented_ui(ui, |ui| {
                ui.colored_label(
                    ui.visuals().warn_fg_color,
                    "JPEG has no transparency: choose a colour too.",
                );
            });
        }

        self.default_naming_ui(ui, prefs);
    }

    /// The provider (and model) image files start with.
    fn default_provider_ui(&mut self, ui: &mut egui::Ui, prefs: &mut Preferences) {
        let kind = InputKind::ImageFile;
        let current = prefs.settings().defaults.get(kind).cloned();
        let mut provider = current.as_ref().map(|c| c.provider);
        ui.horizontal(|ui| {
            let label = field_label_ui(ui, "Provider");
            egui::ComboBox::from_id_salt("default provider")
                .width(220.0)
                .selected_text(provider.map_or("Automatic", |p| p.info().name))
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut provider, None, "Automatic")
                        .on_hover_text("The first provider that has a key");
                    for id in providers_accepting(kind) {
                        ui.selectable_value(&mut provider, Some(id), id.info().name)
                            .on_hover_text(id.info().summary);
                    }
                })
                .response
                .labelled_by(label.id)
                .on_hover_text("The provider the side panel starts with");
        });
        if provider != current.as_ref().map(|c| c.provider) {
            let choice = provider.map(|provider| DefaultChoice {
                provider,
                model: None,
            });
            prefs.edit(|s| s.defaults.set(kind, choice));
            return;
        }
        let Some(choice) = current else {
            return;
        };
        let info = choice.provider.info();
        let recommended = format!("Recommended ({})", info.default_model());
        let mut model = choice.model.clone();
        ui.horizontal(|ui| {
            let label = field_label_ui(ui, "Model");
            egui::ComboBox::from_id_salt(("default model", choice.provider))
                .width(220.0)
                .selected_text(model.clone().unwrap_or_else(|| recommended.clone()))
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut model, None, &recommended)
                        .on_hover_text("Whatever the provider recommends");
                    for m in info.models {
                        ui.selectable_value(&mut model, Some(m.id.to_owned()), m.id)
                            .on_hover_text(m.summary);
                    }
                })
                .response
                .labelled_by(label.id);
        });
        if model != choice.model {
            let provider = choice.provider;
            prefs.edit(|s| {
                s.defaults
                    .set(kind, Some(DefaultChoice { provider, model }))
            });
        }
    }

    fn output_folder_ui(&mut self, ui: &mut egui::Ui, prefs: &mut Preferences) {
        let mut not_full_path = false;
        ui.horizontal(|ui| {
            let label = field_label_ui(ui, "Save results in");
            let mut text = self
                .folder_draft
                .clone()
                .unwrap_or_else(|| prefs.default_out_dir.display().to_string());
            let field = ui
                .add(
                    egui::TextEdit::singleline(&mut text)
                        .hint_text(prefs.builtin_out_dir.display().to_string())
                        .desired_width(field_width(ui, &[CHOOSE_WIDTH])),
                )
                .labelled_by(label.id)
                .on_hover_text(
                    "New batches save their results here. Leave it empty for the usual folder.",
                );
            if field.changed() {
                let typed = text.trim();
                if typed.is_empty() {
                    prefs.edit(|s| s.output.folder = None);
                } else if Path::new(typed).is_absolute() {
                    let folder = PathBuf::from(typed);
                    prefs.edit(|s| s.output.folder = Some(folder));
                }
                self.folder_draft = Some(text.clone());
            }
            if !field.has_focus() && !field.changed() {
                self.folder_draft = None;
            }
            not_full_path = self
                .folder_draft
                .as_deref()
                .is_some_and(|t| !t.trim().is_empty() && !Path::new(t.trim()).is_absolute());
            let picking = self.folder_pick.is_some();
            if ui
                .add_enabled(
                    !picking,
                    egui::Button::new("Choose…").min_size(egui::vec2(CHOOSE_WIDTH, 0.0)),
                )
                .on_hover_text("Pick the folder in a dialog")
                .clicked()
            {
                self.pick_folder(ui.ctx().clone(), prefs.default_out_dir.clone());
            }
        });
        if not_full_path {
            indented_ui(ui, |ui| {
                ui.colored_label(
                    ui.visuals().warn_fg_color,
                    "Type the folder's full path, from the top of the disk.",
                );
            });
        }
        if let Some(problem) = self.folder_problem {
            indented_ui(ui, |ui| {
                ui.add(
                    egui::Label::new(RichText::new(problem).color(ui.visuals().warn_fg_color))
                        .wrap(),
                );
            });
        }
    }

    /// The default file names, checked as typed; only a valid template is
    /// saved.
    fn default_naming_ui(&mut self, ui: &mut egui::Ui, prefs: &mut Preferences) {
        let applied = prefs.settings().output.naming.as_str().to_owned();
        let mut problem = None;
        ui.horizontal(|ui| {
            let label = field_label_ui(ui, "File names");
            let draft = self.naming_draft.get_or_insert_with(|| applied.clone());
            let field = ui
                .add(
                    egui::TextEdit::singleline(draft)
                        .hint_text("{name}")
                        .desired_width(field_width(ui, &[])),
                )
                .labelled_by(label.id)
                .on_hover_text(NAMING_HELP);
            match NamingTemplate::parse(draft) {
                Ok(template) if field.changed() && template.as_str() != applied => {
                    prefs.edit(|s| s.output.naming = template);
                }
                Ok(_) => {}
                Err(why) => problem = Some(sentence_case(&why.to_string())),
            }
        });
        if let Some(why) = problem {
            indented_ui(ui, |ui| {
                ui.add(
                    egui::Label::new(RichText::new(why).color(ui.visuals().error_fg_color)).wrap(),
                );
            });
        }
    }

    fn jobs_at_once_ui(
        &mut self,
        ui: &mut egui::Ui,
        setup: &mut ProviderSetup,
        prefs: &mut Preferences,
    ) {
        egui::Grid::new("jobs at once")
            .num_columns(2)
            .spacing([16.0, 6.0])
            .show(ui, |ui| {
                for id in ProviderId::ALL {
                    let name = id.info().name;
                    let applied = setup.concurrency(id);
                    let label = ui.label(name);
                    let draft = self.jobs_drafts.entry(id).or_insert(applied);
                    let response = ui
                        .add(
                            egui::DragValue::new(draft)
                                .range(1..=MAX_CONCURRENCY)
                                .speed(0.05),
                        )
                        .labelled_by(label.id)
                        .on_hover_text(format!(
                            "Jobs {name} runs at the same time (1–{MAX_CONCURRENCY}). \
                             Drag, or click to type."
                        ));
                    // Apply once the value settles, not at every step of a drag.
                    let settled = !response.dragged() && !response.has_focus();
                    if settled && *draft != applied {
                        setup.set_concurrency(id, *draft);
                        let jobs = setup.concurrency(id);
                        prefs.edit(|s| s.provider_mut(id).concurrency = Some(jobs));
                    }
                    ui.end_row();
                }
            });
    }

    fn base_urls_ui(
        &mut self,
        ui: &mut egui::Ui,
        setup: &mut ProviderSetup,
        prefs: &mut Preferences,
    ) {
        ui.label(
            RichText::new(
                "Send a provider's requests to a proxy or test server instead of its usual \
                 address. Leave a field empty and Apply to go back to the usual address. \
                 The CUTOUT_…_URL environment variables take precedence over these.",
            )
            .weak(),
        );
        for id in ProviderId::ALL {
            let info = id.info();
            ui.add_space(4.0);
            ui.label(RichText::new(info.name).strong());
            for endpoint in info.endpoints {
                self.base_url_field_ui(ui, setup, prefs, id, endpoint);
            }
        }
    }

    fn base_url_field_ui(
        &mut self,
        ui: &mut egui::Ui,
        setup: &mut ProviderSetup,
        prefs: &mut Preferences,
        id: ProviderId,
        endpoint: &'static EndpointSpec,
    ) {
        let slot = (id, endpoint.id);
        let applied = setup
            .base_url_override(id, endpoint.id)
            .map(Url::to_string)
            .unwrap_or_default();
        ui.horizontal(|ui| {
            let label = field_label_ui(ui, &endpoint_label(endpoint.id));
            let draft = self
                .url_drafts
                .entry(slot)
                .or_insert_with(|| applied.clone());
            let hint = endpoint
                .default
                .unwrap_or("Not set: Uploadcare says where each result is");
            let field = ui
                .add(
                    egui::TextEdit::singleline(draft)
                        .hint_text(hint)
                        .desired_width(field_width(ui, &[APPLY_WIDTH])),
                )
                .labelled_by(label.id)
                .on_hover_text(format!(
                    "Overridden by {} when that is set",
                    endpoint.env_var
                ));
            let entered = field.lost_focus() && ui.input(|i| i.key_pressed(Key::Enter));
            let changed = draft.trim() != applied;
            let apply = ui
                .add_enabled(
                    changed,
                    egui::Button::new("Apply").min_size(egui::vec2(APPLY_WIDTH, 0.0)),
                )
                .on_hover_text("Use this address for the provider from now on");
            if changed && (apply.clicked() || entered) {
                if draft.trim().is_empty() {
                    self.url_errors.remove(&slot);
                    draft.clear();
                    setup.set_base_url(id, endpoint.id, None);
                    prefs.edit(|s| {
                        s.provider_mut(id).base_urls.remove(endpoint.id);
                    });
                } else {
                    match checked_base_url(draft) {
                        Ok(url) => {
                            self.url_errors.remove(&slot);
                            *draft = url.to_string();
                            setup.set_base_url(id, endpoint.id, Some(url.clone()));
                            prefs.edit(|s| {
                                s.provider_mut(id).base_urls.insert(endpoint.id, url);
                            });
                        }
                        Err(why) => {
                            self.url_errors.insert(slot, why);
                        }
                    }
                }
            }
        });
        let problem = if let Some(why) = self.url_errors.get(&slot) {
            Some(format!("Cannot use this address: {why}"))
        } else if setup.env_sets(endpoint.env_var) {
            Some(
                setup
                    .problem(id)
                    .filter(|p| p.contains(endpoint.env_var))
                    .map(sentence_case)
                    .unwrap_or_else(|| {
                        format!(
                            "{} is set in the environment and is used instead",
                            endpoint.env_var
                        )
                    }),
            )
        } else {
            None
        };
        if let Some(problem) = problem {
            indented_ui(ui, |ui| {
                ui.add(
                    egui::Label::new(RichText::new(problem).color(ui.visuals().warn_fg_color))
                        .wrap(),
                );
            });
        }
    }

    /// Runs the folder dialog on its own thread, so the window keeps
    /// drawing while it is open.
    fn pick_folder(&mut self, ctx: egui::Context, start: PathBuf) {
        let (sender, receiver) = mpsc::channel();
        self.folder_pick = Some(receiver);
        self.folder_problem = None;
        std::thread::spawn(move || {
            let opened = Instant::now();
            let picked = rfd::FileDialog::new()
                .set_title("Choose the default output folder")
                .set_directory(start)
                .pick_folder();
            let _ = sender.send(FolderPick::from_dialog(picked, opened.elapsed()));
            ctx.request_repaint();
        });
    }

    fn receive_folder_pick(&mut self, prefs: &mut Preferences) {
        let Some(receiver) = &self.folder_pick else {
            return;
        };
        let pick = match receiver.try_recv() {
            Ok(pick) => pick,
            Err(mpsc::TryRecvError::Empty) => return,
            Err(mpsc::TryRecvError::Disconnected) => FolderPick::Cancelled,
        };
        self.folder_pick = None;
        match pick {
            FolderPick::Chosen(folder) => {
                self.folder_draft = None;
                prefs.edit(|s| s.output.folder = Some(folder));
            }
            FolderPick::Cancelled => {}
            FolderPick::Unavailable => self.folder_problem = Some(NO_FOLDER_DIALOG),
        }
    }
}

/// The plain explanation shown instead of the keychain note when there is
/// no keychain: what is missing, how to fix it, and that keys typed now
/// last for this session only.
fn no_keychain_banner_ui(ui: &mut egui::Ui, reason: &str, fix: &str) {
    let warn = ui.visuals().warn_fg_color;
    egui::Frame::group(ui.style())
        .fill(warn.gamma_multiply(0.08))
        .stroke(egui::Stroke::new(1.0, warn.gamma_multiply(0.6)))
        .show(ui, |ui| {
            ui.set_width(ui.available_width());
            ui.label(
                RichText::new("⚠ No system keychain: keys cannot be saved")
                    .strong()
                    .color(warn),
            );
            ui.add(egui::Label::new(format!("{}.", sentence_case(reason))).wrap());
            ui.add(egui::Label::new(format!("To fix it: {fix}")).wrap());
            ui.add(
                egui::Label::new(
                    RichText::new(
                        "Meanwhile, use “Keep for this session”: the key works until Cutout \
                         closes and is never written to a file.",
                    )
                    .strong(),
                )
                .wrap(),
            );
        });
}

/// The outcome of "Test key".
fn key_test_ui(ui: &mut egui::Ui, test: &KeyTest) {
    match test {
        KeyTest::Running => {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label("Testing the key…");
            });
        }
        other => {
            let (text, tone) = key_test_text(other);
            status_line_ui(ui, &text, tone);
        }
    }
}

/// What "Test key" found, in words.
/// The last key test in words, for the Settings window and diagnostics.
pub(super) fn key_test_text(test: &KeyTest) -> (String, Tone) {
    match test {
        KeyTest::Running => ("Testing the key…".to_owned(), Tone::Neutral),
        KeyTest::Works(Some(detail)) => (format!("Key works — {detail}"), Tone::Ready),
        KeyTest::Works(None) => ("Key works".to_owned(), Tone::Ready),
        KeyTest::Refused(message) => (
            format!("The key was refused: {message}"),
            Tone::NeedsAttention,
        ),
        KeyTest::Failed(why) => (
            format!("Could not test the key: {why}"),
            Tone::NeedsAttention,
        ),
    }
}

/// A status line with its icon and colour.
fn status_line_ui(ui: &mut egui::Ui, text: &str, tone: Tone) {
    let (icon, color) = match tone {
        Tone::Ready => ("✔ ", ready_color(ui.visuals())),
        Tone::NeedsAttention => ("⚠ ", ui.visuals().warn_fg_color),
        Tone::Neutral => ("", ui.visuals().weak_text_color()),
    };
    ui.add(egui::Label::new(RichText::new(format!("{icon}{text}")).color(color)).wrap());
}

/// Where a credential comes from, for the line under its field.
fn key_status_text(
    origin: KeyOrigin,
    busy: bool,
    checking: bool,
    keychain_available: bool,
) -> (String, Tone) {
    if busy {
        return ("Updating the keychain…".to_owned(), Tone::Neutral);
    }
    match origin {
        KeyOrigin::Environment(var) if keychain_available => (
            format!("From the environment ({var}) — overrides the keychain"),
            Tone::Ready,
        ),
        KeyOrigin::Environment(var) => (format!("From the environment ({var})"), Tone::Ready),
        KeyOrigin::Keychain => ("Saved in the keychain".to_owned(), Tone::Ready),
        KeyOrigin::Session => ("This session only".to_owned(), Tone::Ready),
        KeyOrigin::NotSet if checking => ("Checking the keychain…".to_owned(), Tone::Neutral),
        KeyOrigin::NotSet => ("Not set".to_owned(), Tone::NeedsAttention),
    }
}

/// What an empty key field says, depending on where the key now comes from.
fn key_hint(origin: KeyOrigin) -> &'static str {
    match origin {
        KeyOrigin::Environment(_) => "Set in the environment",
        KeyOrigin::Keychain | KeyOrigin::Session => "Paste a new key to replace it",
        KeyOrigin::NotSet => "Paste your key here",
    }
}

/// Where the settings go, or why the last save failed.
fn footer_ui(ui: &mut egui::Ui, prefs: &Preferences) {
    if let Some(why) = prefs.save_error() {
        ui.add(
            egui::Label::new(
                RichText::new(format!("⚠ {}", sentence_case(why)))
                    .color(ui.visuals().error_fg_color),
            )
            .wrap(),
        );
        return;
    }
    let text = match prefs.settings_file() {
        Some(path) => format!("Changes are saved as you make them, in {}", path.display()),
        None => {
            "Changes last until Cutout closes: there is no folder to save settings in.".to_owned()
        }
    };
    ui.add(egui::Label::new(RichText::new(text).small().weak()).wrap());
}

/// A base URL typed under Advanced: what [`parse_base_url`] accepts, and
/// no user name or password (keys belong in the keychain, and the settings
/// file would refuse it on the next start).
fn checked_base_url(text: &str) -> Result<Url, String> {
    let url = parse_base_url(text)?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err("it contains a user name or password, which belong in the keychain".to_owned());
    }
    Ok(url)
}

/// Lines things up under the fields, past the label column.
fn indented_ui<R>(ui: &mut egui::Ui, add: impl FnOnce(&mut egui::Ui) -> R) -> R {
    ui.horizontal(|ui| {
        ui.add_space(LABEL_WIDTH + ui.spacing().item_spacing.x);
        ui.vertical(add).inner
    })
    .inner
}

/// The width a button needs for `text`, so the field beside it can take
/// exactly the rest of the row.
fn button_width(ui: &egui::Ui, text: &str) -> f32 {
    let font = egui::TextStyle::Button.resolve(ui.style());
    let galley = ui
        .painter()
        .layout_no_wrap(text.to_owned(), font, Color32::PLACEHOLDER);
    galley.size().x + 2.0 * ui.spacing().button_padding.x
}

/// A field's label in a column of its own width, so fields line up from
/// block to block.
fn field_label_ui(ui: &mut egui::Ui, text: &str) -> egui::Response {
    let size = egui::vec2(LABEL_WIDTH, ui.spacing().interact_size.y);
    ui.allocate_ui_with_layout(
        size,
        egui::Layout::left_to_right(egui::Align::Center),
        |ui| {
            ui.set_min_width(LABEL_WIDTH);
            ui.label(text)
        },
    )
    .inner
}

/// What is left of the row for a text field once buttons of these widths
/// (and the spacing between them) have their room.
fn field_width(ui: &egui::Ui, buttons: &[f32]) -> f32 {
    let spacing = ui.spacing().item_spacing.x;
    let reserved: f32 = buttons.iter().map(|width| width + spacing).sum();
    (ui.available_width() - reserved).max(120.0)
}

fn section_heading_ui(ui: &mut egui::Ui, title: &str) {
    ui.label(RichText::new(title).heading());
}

/// Whether Esc was pressed this frame. Read from the raw input, since the
/// window's own shortcuts may already have consumed the key (Esc also clears
/// the queue's selection) before the Settings window is drawn.
fn escape_pressed(ctx: &egui::Context) -> bool {
    ctx.input(|i| {
        i.raw.events.iter().any(|event| {
            matches!(
                event,
                egui::Event::Key {
                    key: Key::Escape,
                    pressed: true,
                    ..
                }
            )
        })
    })
}

/// 👁 when the fonts can draw it, else the word: a desktop without an emoji
/// font would show an empty box.
fn eye_label(ctx: &egui::Context, font: &egui::FontId) -> &'static str {
    if ctx.fonts_mut(|fonts| fonts.has_glyph(font, '👁')) {
        "👁"
    } else {
        "Show"
    }
}

/// A green that reads well on both light and dark backgrounds.
fn ready_color(visuals: &egui::Visuals) -> Color32 {
    if visuals.dark_mode {
        Color32::from_rgb(120, 200, 120)
    } else {
        Color32::from_rgb(30, 125, 50)
    }
}

/// Overwrites typed text before dropping it: a best effort that keeps a
/// saved key from lingering in freed memory as plain text.
fn wipe(text: &mut String) {
    let len = text.len();
    text.replace_range(.., &"\0".repeat(len));
    *text = String::new();
}

/// Drops a text field's undo history, which keeps copies of what was typed
/// (password fields included): Ctrl+Z after Save must not bring a key back.
fn forget_undo_history(ctx: &egui::Context, field: egui::Id) {
    if let Some(mut state) = TextEditState::load(ctx, field) {
        state.clear_undoer();
        state.store(ctx, field);
    }
}

/// What to call a base URL in the window.
fn endpoint_label(endpoint_id: &str) -> String {
    match endpoint_id {
        "url" => "API address".to_owned(),
        "api_url" => "REST API address".to_owned(),
        "upload_url" => "Upload address".to_owned(),
        "cdn_url" => "Results CDN address".to_owned(),
        other => format!("{other} address"),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use egui_kittest::Harness;
    use egui_kittest::kittest::Queryable;

    use super::*;
    use crate::jobs::EngineHandle;
    use crate::ui::setup::test_setup;

    #[test]
    fn the_default_folder_is_cutout_inside_pictures_when_the_home_has_one() {
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir(home.path().join("Pictures")).unwrap();
        assert_eq!(
            default_out_dir(Some(home.path())),
            home.path().join("Pictures").join("Cutout")
        );
    }

    #[test]
    fn without_a_pictures_folder_results_go_to_cutout_in_the_home_folder() {
        let home = tempfile::tempdir().unwrap();
        assert_eq!(
            default_out_dir(Some(home.path())),
            home.path().join("Cutout")
        );
        assert_eq!(default_out_dir(None), PathBuf::from("cutout-output"));
    }

    #[test]
    fn each_credential_says_where_its_key_comes_from() {
        let status = |origin, available| key_status_text(origin, false, false, available);
        assert_eq!(
            status(KeyOrigin::Keychain, true),
            ("Saved in the keychain".to_owned(), Tone::Ready)
        );
        assert_eq!(
            status(KeyOrigin::Environment("CUTOUT_REMOVEBG_KEY"), true).0,
            "From the environment (CUTOUT_REMOVEBG_KEY) — overrides the keychain"
        );
        assert_eq!(
            status(KeyOrigin::Environment("CUTOUT_REMOVEBG_KEY"), false).0,
            "From the environment (CUTOUT_REMOVEBG_KEY)"
        );
        assert_eq!(status(KeyOrigin::Session, false).0, "This session only");
        assert_eq!(
            status(KeyOrigin::NotSet, true),
            ("Not set".to_owned(), Tone::NeedsAttention)
        );
        assert_eq!(
            key_status_text(KeyOrigin::NotSet, false, true, false).0,
            "Checking the keychain…"
        );
        assert_eq!(
            key_status_text(KeyOrigin::Keychain, true, false, true).0,
            "Updating the keychain…"
        );
    }

    #[test]
    fn a_key_test_reads_as_works_with_the_balance_or_as_refused() {
        assert_eq!(
            key_test_text(&KeyTest::Works(Some("42 credits left".to_owned()))),
            ("Key works — 42 credits left".to_owned(), Tone::Ready)
        );
        assert_eq!(
            key_test_text(&KeyTest::Refused("Invalid API key".to_owned())).0,
            "The key was refused: Invalid API key"
        );
    }

    #[test]
    fn settings_file_problems_name_the_line_and_the_file() {
        let problem = SettingsProblem {
            path: PathBuf::from("/home/ana/.config/cutout/settings.toml"),
            line: Some(7),
            message: "theme must be \"system\", \"light\" or \"dark\", not \"purple\"; \
                      using \"system\""
                .to_owned(),
        };
        assert_eq!(
            problem_text(&problem),
            "Settings file, line 7: theme must be \"system\", \"light\" or \"dark\", not \
             \"purple\"; using \"system\": /home/ana/.config/cutout/settings.toml"
        );
    }

    #[test]
    fn an_address_with_a_password_or_plain_http_to_a_remote_host_is_refused() {
        assert!(checked_base_url("https://proxy.example.com/v1").is_ok());
        assert!(
            checked_base_url("https://me:pw@proxy.example.com")
                .unwrap_err()
                .contains("user name or password")
        );
        assert!(
            checked_base_url("http://proxy.example.com")
                .unwrap_err()
                .contains("https")
        );
    }

    #[test]
    fn a_folder_dialog_that_returns_at_once_means_there_is_no_portal() {
        assert_eq!(
            FolderPick::from_dialog(None, Duration::from_millis(5)),
            FolderPick::Unavailable
        );
        assert_eq!(
            FolderPick::from_dialog(None, Duration::from_secs(3)),
            FolderPick::Cancelled
        );
        assert_eq!(
            FolderPick::from_dialog(Some(PathBuf::from("/out")), Duration::from_millis(5)),
            FolderPick::Chosen(PathBuf::from("/out"))
        );
    }

    #[test]
    fn the_theme_preference_is_applied_to_the_context() {
        let ctx = egui::Context::default();
        let mut prefs = Preferences::default();
        prefs.edit(|s| s.appearance.theme = Theme::Dark);
        prefs.apply_theme(&ctx);
        assert_eq!(ctx.options(|o| o.theme_preference), ThemePreference::Dark);
        prefs.apply_theme(&ctx);
        assert_eq!(ctx.options(|o| o.theme_preference), ThemePreference::Dark);
    }

    /// Settings read from `CUTOUT_CONFIG_DIR`, saved there on the saving
    /// thread.
    fn load_from(dir: &Path) -> (Preferences, Vec<String>) {
        let config = dir.to_owned();
        let lookup = move |name: &str| {
            (name == crate::paths::CONFIG_DIR_VAR).then(|| config.display().to_string())
        };
        Preferences::load(&lookup, Arc::new(|| {}))
    }

    #[test]
    fn the_settings_file_sets_the_folder_and_theme_and_a_bad_value_is_reported_by_line() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("designs");
        std::fs::write(
            dir.path().join("settings.toml"),
            format!(
                "[output]\nfolder = {:?}\nformat = \"gif\"\n\n[appearance]\ntheme = \"dark\"\n",
                folder.display().to_string()
            ),
        )
        .unwrap();
        let (prefs, problems) = load_from(dir.path());
        assert_eq!(prefs.default_out_dir, folder);
        assert_eq!(prefs.theme, ThemePreference::Dark);
        assert_eq!(prefs.settings().output.format, Some(OutputFormat::Png));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with("Settings file, line 3: format"),
            "{problems:?}"
        );
        assert!(problems[0].ends_with("settings.toml"), "{problems:?}");
    }

    #[test]
    fn an_edit_is_saved_to_the_settings_file_without_waiting_for_it() {
        let dir = tempfile::tempdir().unwrap();
        let (mut prefs, problems) = load_from(dir.path());
        assert!(problems.is_empty());
        prefs.edit(|s| s.provider_mut(ProviderId::Removit).concurrency = Some(3));
        prefs.edit(|s| s.appearance.theme = Theme::Light);
        let file = dir.path().join("settings.toml");
        let started = Instant::now();
        loop {
            let text = std::fs::read_to_string(&file).unwrap_or_default();
            if text.contains("theme = \"light\"") {
                assert!(
                    text.contains("[providers.removit]\nconcurrency = 3"),
                    "{text}"
                );
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "not saved: {text}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        prefs.receive_saves();
        assert_eq!(prefs.save_error(), None);
    }

    #[test]
    fn a_save_that_fails_is_shown_with_the_path() {
        let dir = tempfile::tempdir().unwrap();
        // A file where the config folder should be: nothing can be written.
        let blocked = dir.path().join("blocked");
        std::fs::write(&blocked, b"").unwrap();
        let (mut prefs, _) = load_from(&blocked);
        prefs.edit(|s| s.appearance.theme = Theme::Dark);
        let started = Instant::now();
        while prefs.save_error().is_none() {
            assert!(started.elapsed() < Duration::from_secs(5));
            std::thread::sleep(Duration::from_millis(10));
            prefs.receive_saves();
        }
        let error = prefs.save_error().unwrap();
        assert!(error.starts_with("could not save the settings"), "{error}");
        assert!(error.contains("blocked"), "{error}");
    }

    #[test]
    fn wiping_typed_text_leaves_an_empty_string() {
        let mut text = "rbg_secret".to_owned();
        wipe(&mut text);
        assert!(text.is_empty());
    }

    #[test]
    fn field_labels_start_with_a_capital() {
        assert_eq!(sentence_case("public key"), "Public key");
        assert_eq!(sentence_case(""), "");
    }

    /// The window with a real [`ProviderSetup`] without a keychain and no
    /// keys in the environment.
    struct Fixture {
        window: SettingsWindow,
        setup: ProviderSetup,
        prefs: Preferences,
        local: LocalPanel,
        _engine: EngineHandle,
        _runtime: tokio::runtime::Runtime,
        _data_dir: tempfile::TempDir,
    }

    fn open_settings() -> Harness<'static, Fixture> {
        let (setup, engine, runtime) = test_setup(Arc::new(|_: &str| None));
        let data_dir = tempfile::tempdir().unwrap();
        let data_path = data_dir.path().display().to_string();
        let local = LocalPanel::new(
            &|name: &str| (name == "CUTOUT_DATA_DIR").then(|| data_path.clone()),
            crate::providers::RetryPolicy::default(),
            runtime.handle().clone(),
            Arc::new(|| {}),
        );
        let fixture = Fixture {
            window: SettingsWindow {
                open: true,
                ..SettingsWindow::default()
            },
            setup,
            prefs: Preferences::default(),
            local,
            _engine: engine,
            _runtime: runtime,
            _data_dir: data_dir,
        };
        // The app draws ✔, ⚠ and 👁 with the desktop's fonts; the harness
        // has only egui's bundled font, so it may draw tofu for them.
        let mut harness = Harness::builder()
            .with_size(egui::vec2(900.0, 1400.0))
            .allow_missing_glyphs()
            .build_ui_state(
                |ui, f: &mut Fixture| {
                    let ctx = ui.ctx().clone();
                    f.setup.receive();
                    f.local.receive(&ctx);
                    f.window
                        .settings_ui(&ctx, &mut f.setup, &mut f.prefs, &mut f.local);
                },
                fixture,
            );
        harness.run();
        harness
    }

    /// The masked key field of `id`'s `credential_id`, counted in the order
    /// the window lists them.
    fn key_field_index(id: ProviderId, credential_id: &str) -> usize {
        ProviderId::ALL
            .into_iter()
            .flat_map(|p| p.info().credentials.iter().map(move |c| (p, c.id)))
            .position(|slot| slot == (id, credential_id))
            .unwrap()
    }

    #[test]
    fn without_a_keychain_the_window_says_so_and_offers_to_keep_a_key_for_this_session() {
        let mut harness = open_settings();
        assert!(
            harness
                .query_by_label("⚠ No system keychain: keys cannot be saved")
                .is_some()
        );
        let index = key_field_index(ProviderId::Removit, "key");
        let field = harness
            .get_all_by_role(egui::accesskit::Role::PasswordInput)
            .nth(index)
            .unwrap();
        field.focus();
        field.type_text("rmv_secret_123");
        harness.run();
        harness.key_press(Key::Enter);
        harness.run();

        let state = harness.state();
        assert_eq!(
            state.setup.key_origin(ProviderId::Removit, "key"),
            KeyOrigin::Session
        );
        assert!(state.setup.status(ProviderId::Removit).is_ready());
        assert!(state.window.keys.key_drafts.values().all(String::is_empty));
        assert!(harness.query_by_label_contains("rmv_secret_123").is_none());
        assert!(harness.query_by_label("✔ This session only").is_some());
        assert!(
            harness
                .query_all_by_label(KEEP_FOR_SESSION)
                .next()
                .is_some()
        );
    }

    #[test]
    fn delete_asks_first_and_then_forgets_the_key() {
        let mut harness = open_settings();
        harness.state_mut().setup.keep_for_session(
            ProviderId::Removebg,
            "key",
            SecretString::from("rbg_hidden".to_owned()),
        );
        harness.run();
        let secret_shown = harness
            .root()
            .query_all_by(|node| {
                node.label().is_some_and(|l| l.contains("rbg_hidden"))
                    || node.value().is_some_and(|v| v.contains("rbg_hidden"))
            })
            .next()
            .is_some();
        assert!(!secret_shown);

        harness.get_by_label(DELETE).click();
        harness.run();
        assert!(
            harness
                .query_by_label("Forget the remove.bg API key kept for this session?")
                .is_some()
        );
        assert_eq!(
            harness
                .state()
                .setup
                .key_origin(ProviderId::Removebg, "key"),
            KeyOrigin::Session,
            "nothing is deleted before the answer"
        );
        harness.get_by_label("Yes, delete").click();
        harness.run();
        assert_eq!(
            harness
                .state()
                .setup
                .key_origin(ProviderId::Removebg, "key"),
            KeyOrigin::NotSet
        );
        assert!(harness.query_by_label(DELETE).is_none());
    }

    #[test]
    fn show_reveals_what_is_being_typed_and_hide_masks_it_again() {
        let mut harness = open_settings();
        let password_fields = |h: &Harness<'_, Fixture>| {
            h.get_all_by_role(egui::accesskit::Role::PasswordInput)
                .count()
        };
        let masked = password_fields(&harness);
        harness.get_all_by_label("Show key").next().unwrap().click();
        harness.run();
        assert_eq!(password_fields(&harness), masked - 1);
        harness.get_all_by_label("Show key").next().unwrap().click();
        harness.run();
        assert_eq!(password_fields(&harness), masked);
    }

    #[test]
    fn jobs_at_once_reach_the_provider_setup_and_the_settings_within_range() {
        let mut harness = open_settings();
        let removebg = ProviderId::ALL
            .iter()
            .position(|id| *id == ProviderId::Removebg)
            .unwrap();
        harness
            .get_all_by_role(egui::accesskit::Role::SpinButton)
            .nth(removebg)
            .unwrap()
            .set_value_accesskit(7.0);
        harness.run();
        let state = harness.state();
        assert_eq!(state.setup.concurrency(ProviderId::Removebg), 7);
        assert_eq!(
            state.prefs.settings().concurrency(ProviderId::Removebg),
            Some(7)
        );
        harness
            .get_all_by_role(egui::accesskit::Role::SpinButton)
            .nth(removebg)
            .unwrap()
            .set_value_accesskit(99.0);
        harness.run();
        assert_eq!(
            harness.state().setup.concurrency(ProviderId::Removebg),
            MAX_CONCURRENCY
        );
    }

    #[test]
    fn a_broken_file_names_template_is_explained_and_not_kept() {
        let mut harness = open_settings();
        let field = harness.get_by(|node| {
            node.role() == egui::accesskit::Role::TextInput
                && node.value().as_deref() == Some("{name}")
        });
        field.focus();
        field.type_text("-{colour}");
        harness.run();
        assert!(
            harness
                .query_by_label_contains("unknown placeholder {colour}")
                .is_some()
        );
        assert_eq!(
            harness.state().prefs.settings().output.naming.as_str(),
            "{name}"
        );
    }

    #[test]
    fn escape_closes_the_window_and_forgets_unsaved_typing() {
        let mut harness = open_settings();
        let field = harness
            .get_all_by_role(egui::accesskit::Role::PasswordInput)
            .next()
            .unwrap();
        field.focus();
        field.type_text("half typed");
        harness.run();
        harness.key_press(Key::Escape);
        harness.run();
        let state = harness.state();
        assert!(!state.window.open);
        assert!(state.window.keys.key_drafts.is_empty());
        assert_eq!(
            state.setup.key_origin(ProviderId::Uploadcare, "public_key"),
            KeyOrigin::NotSet
        );
    }
}
