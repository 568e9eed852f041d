//! The Settings window and the preferences it edits: API keys per provider,
//! how many jobs each provider runs at once, the default output folder, the
//! theme, and (tucked under "Advanced") base URL overrides.
//!
//! Keys and base URLs are applied explicitly, with Save and Apply, so a
//! half-typed key or URL never rebuilds a provider on every keystroke. A key
//! is only ever typed here: once saved it goes into [`ProviderSetup`] as a
//! [`SecretString`] and the typed text is wiped, so the window never shows a
//! stored key and no plain copy lingers in a text buffer or its undo history.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use egui::text_edit::TextEditState;
use egui::{Color32, Key, RichText, ThemePreference};
use secrecy::SecretString;

use crate::providers::{CredentialSpec, EndpointSpec, ProviderId, ProviderInfo};
use crate::ui::setup::{ProviderSetup, ProviderStatus};

/// The most jobs at once the window offers per provider: more rarely helps
/// and mostly burns through rate limits.
const MOST_JOBS_AT_ONCE: usize = 16;

/// The width of field labels, so fields line up from block to block.
const LABEL_WIDTH: f32 = 110.0;
/// Button widths, fixed so the field beside them can take the rest of the
/// row without pushing them out of the window.
const EYE_WIDTH: f32 = 48.0;
const SAVE_WIDTH: f32 = 56.0;
const REMOVE_WIDTH: f32 = 68.0;
const APPLY_WIDTH: f32 = 56.0;
const CHOOSE_WIDTH: f32 = 72.0;

/// What to say when no folder dialog can be shown.
const NO_FOLDER_DIALOG: &str = "No folder dialog is available on this desktop (the XDG desktop \
                                portal is not running). Type the folder's path instead.";

/// Where a key came from, as [`ProviderSetup::key_source`] names it.
const FROM_SESSION: &str = "this session";
/// Where a key came from when an environment variable set it.
const FROM_ENVIRONMENT: &str = "environment";

/// What the user prefers for the window as a whole, as opposed to one batch.
/// Held for this session until the settings file lands.
pub struct Preferences {
    /// Where a new batch saves its results unless the user picks another
    /// folder in the side panel.
    pub default_out_dir: PathBuf,
    /// Light, dark, or whatever the desktop uses.
    pub theme: ThemePreference,
}

impl Default for Preferences {
    /// Results go to `Pictures/Cutout` in the user's home folder when there
    /// is a `Pictures` folder, where designers look for images first; else
    /// to `Cutout` in the home folder. The home folder is read
    /// from `$HOME` (`%USERPROFILE%` on Windows) rather than through a
    /// platform-directories crate: one well-known folder does not justify a
    /// dependency, and a missing `Pictures` simply falls back.
    fn default() -> Self {
        Preferences {
            default_out_dir: default_out_dir(home_dir().as_deref()),
            theme: ThemePreference::System,
        }
    }
}

impl Preferences {
    /// Makes the window use the preferred theme. Called every frame, so it
    /// only touches egui's options when the preference differs from what is
    /// in effect: setting the theme restyles every widget.
    pub fn apply_theme(&self, ctx: &egui::Context) {
        if ctx.options(|o| o.theme_preference) != self.theme {
            ctx.set_theme(self.theme);
        }
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

/// Whether a status line reads as good news or as something to fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tone {
    Ready,
    NeedsAttention,
}

/// The Settings window. Holds only what is being typed; everything applied
/// lives in [`ProviderSetup`] and [`Preferences`].
#[derive(Default)]
pub struct SettingsWindow {
    /// Whether the window is shown; the 🗙 and Esc close it.
    pub open: bool,
    /// Keys being typed, by provider and credential, until Save.
    key_drafts: BTreeMap<(ProviderId, &'static str), String>,
    /// Key fields the user asked to show in plain text while typing.
    revealed: BTreeSet<(ProviderId, &'static str)>,
    /// Base URLs being typed, until Apply.
    url_drafts: BTreeMap<(ProviderId, &'static str), String>,
    /// Jobs at once while a value is being dragged or typed.
    jobs_drafts: BTreeMap<ProviderId, usize>,
    /// The folder dialog running on its worker thread.
    folder_pick: Option<mpsc::Receiver<FolderPick>>,
    /// Why the last folder dialog could not be shown.
    folder_problem: Option<&'static str>,
    /// What the show/hide toggle says, worked out once.
    eye_label: Option<&'static str>,
}

impl SettingsWindow {
    /// Draws the window while it is open. Saving a key, applying a URL or
    /// changing jobs at once updates `setup` (which rebuilds that provider);
    /// the folder and theme update `prefs`.
    pub fn settings_ui(
        &mut self,
        ctx: &egui::Context,
        setup: &mut ProviderSetup,
        prefs: &mut Preferences,
    ) {
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
                .default_size([560.0, 620.0])
                .min_width(420.0)
                .pivot(egui::Align2::CENTER_CENTER)
                .default_pos(ctx.content_rect().center())
                .show(ctx, |ui| self.contents_ui(ui, setup, prefs));
        }
        if !open {
            self.close();
        }
    }

    /// Closes the window, forgetting any key typed but not saved.
    fn close(&mut self) {
        self.open = false;
        for draft in self.key_drafts.values_mut() {
            wipe(draft);
        }
        self.key_drafts.clear();
        self.revealed.clear();
    }

    fn contents_ui(
        &mut self,
        ui: &mut egui::Ui,
        setup: &mut ProviderSetup,
        prefs: &mut Preferences,
    ) {
        ui.spacing_mut().item_spacing.y = 6.0;
        section_heading_ui(ui, "API keys");
        ui.label(
            RichText::new(
                "Keys you save here are kept only until Cutout closes; saving them in your \
                 system keychain is coming. Cutout never shows a saved key.",
            )
            .weak(),
        );
        for id in ProviderId::ALL {
            self.provider_keys_ui(ui, setup, id);
        }

        ui.add_space(8.0);
        section_heading_ui(ui, "Jobs at once");
        ui.label(
            RichText::new(
                "How many files each provider works on at the same time. More is faster, \
                 but may hit the provider's rate limits.",
            )
            .weak(),
        );
        self.jobs_at_once_ui(ui, setup);

        ui.add_space(8.0);
        section_heading_ui(ui, "Default output folder");
        self.output_folder_ui(ui, prefs);

        ui.add_space(8.0);
        section_heading_ui(ui, "Appearance");
        ui.horizontal(|ui| {
            ui.label("Theme");
            ui.radio_value(&mut prefs.theme, ThemePreference::System, "Follow system")
                .on_hover_text("Match your desktop's light or dark setting");
            ui.radio_value(&mut prefs.theme, ThemePreference::Light, "Light");
            ui.radio_value(&mut prefs.theme, ThemePreference::Dark, "Dark");
        });

        ui.add_space(8.0);
        egui::CollapsingHeader::new(RichText::new("Advanced").strong())
            .id_salt("settings advanced")
            .default_open(false)
            .show(ui, |ui| self.base_urls_ui(ui, setup));
    }

    /// One provider's block: its status and a masked field per credential.
    fn provider_keys_ui(&mut self, ui: &mut egui::Ui, setup: &mut ProviderSetup, id: ProviderId) {
        let info = id.info();
        egui::Frame::group(ui.style()).show(ui, |ui| {
            ui.set_width(ui.available_width());
            ui.label(RichText::new(info.name).strong())
                .on_hover_text(info.summary);
            let sources: Vec<_> = info
                .credentials
                .iter()
                .map(|spec| setup.key_source(id, spec.id))
                .collect();
            let overrides: Vec<_> = info
                .endpoints
                .iter()
                .map(|endpoint| setup.base_url_override(id, endpoint.id))
                .collect();
            let (text, tone) = status_text(info, setup.status(id), &sources, &overrides);
            let color = match tone {
                Tone::Ready => ready_color(ui.visuals()),
                Tone::NeedsAttention => ui.visuals().warn_fg_color,
            };
            let icon = match tone {
                Tone::Ready => "✔",
                Tone::NeedsAttention => "⚠",
            };
            ui.label(RichText::new(format!("{icon} {text}")).color(color));
            for (spec, source) in info.credentials.iter().zip(sources) {
                ui.horizontal(|ui| self.key_field_ui(ui, setup, id, spec, source));
            }
        });
    }

    /// The masked field for one credential, with show/hide, Save and Remove.
    fn key_field_ui(
        &mut self,
        ui: &mut egui::Ui,
        setup: &mut ProviderSetup,
        id: ProviderId,
        spec: &'static CredentialSpec,
        source: Option<&'static str>,
    ) {
        let slot = (id, spec.id);
        let label = field_label_ui(ui, &sentence_case(spec.label));
        let draft = self.key_drafts.entry(slot).or_default();
        let revealed = self.revealed.contains(&slot);
        let session_key = source == Some(FROM_SESSION);
        let from_env = setup.env_overrides(id, spec.id);
        let buttons = if session_key {
            [EYE_WIDTH, SAVE_WIDTH, REMOVE_WIDTH].as_slice()
        } else {
            [EYE_WIDTH, SAVE_WIDTH].as_slice()
        };
        let field = ui
            .add(
                egui::TextEdit::singleline(draft)
                    .password(!revealed)
                    .hint_text(key_hint(session_key, from_env))
                    .desired_width(field_width(ui, buttons)),
            )
            .labelled_by(label.id)
            .on_hover_text(format!(
                "Paste your {} {} and press Save",
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
            egui::WidgetInfo::selected(egui::accesskit::Role::Button, true, revealed, "Show key")
        });
        if toggle.clicked() {
            if revealed {
                self.revealed.remove(&slot);
            } else {
                self.revealed.insert(slot);
            }
        }
        let typed = !draft.trim().is_empty();
        let save = ui
            .add_enabled(
                typed,
                egui::Button::new("Save").min_size(egui::vec2(SAVE_WIDTH, 0.0)),
            )
            .on_hover_text("Use this key until Cutout closes");
        if typed && (save.clicked() || entered) {
            let secret = SecretString::from(draft.trim().to_owned());
            wipe(draft);
            forget_undo_history(ui.ctx(), field.id);
            self.revealed.remove(&slot);
            setup.set_key(id, spec.id, secret);
        }
        if session_key
            && ui
                .add(egui::Button::new("Remove").min_size(egui::vec2(REMOVE_WIDTH, 0.0)))
                .on_hover_text("Forget the key saved for this session")
                .clicked()
        {
            setup.remove_key(id, spec.id);
        }
    }

    fn jobs_at_once_ui(&mut self, ui: &mut egui::Ui, setup: &mut ProviderSetup) {
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
                                .range(1..=MOST_JOBS_AT_ONCE)
                                .speed(0.05),
                        )
                        .labelled_by(label.id)
                        .on_hover_text(format!(
                            "Jobs {name} runs at the same time (1–{MOST_JOBS_AT_ONCE}). \
                             Drag, or click to type."
                        ));
                    // Apply once the value settles, not at every step of a drag.
                    let settled = !response.dragged() && !response.has_focus();
                    if settled && *draft != applied {
                        setup.set_concurrency(id, *draft);
                    }
                    ui.end_row();
                }
            });
    }

    fn output_folder_ui(&mut self, ui: &mut egui::Ui, prefs: &mut Preferences) {
        ui.horizontal(|ui| {
            let mut text = prefs.default_out_dir.display().to_string();
            let field = ui
                .add(
                    egui::TextEdit::singleline(&mut text)
                        .desired_width(field_width(ui, &[CHOOSE_WIDTH])),
                )
                .on_hover_text("New batches save their results here");
            if field.changed() {
                prefs.default_out_dir = PathBuf::from(text);
            }
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
        if let Some(problem) = self.folder_problem {
            ui.colored_label(ui.visuals().warn_fg_color, problem);
        }
        ui.label(
            RichText::new("You can still pick another folder for a batch in the side panel.")
                .weak(),
        );
    }

    fn base_urls_ui(&mut self, ui: &mut egui::Ui, setup: &mut ProviderSetup) {
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
                self.base_url_field_ui(ui, setup, id, endpoint);
            }
        }
    }

    fn base_url_field_ui(
        &mut self,
        ui: &mut egui::Ui,
        setup: &mut ProviderSetup,
        id: ProviderId,
        endpoint: &'static EndpointSpec,
    ) {
        let slot = (id, endpoint.id);
        let applied = setup
            .base_url_override(id, endpoint.id)
            .unwrap_or("")
            .to_owned();
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
                .on_hover_text("Rebuild this provider with the new address");
            if changed && (apply.clicked() || entered) {
                setup.set_base_url(id, endpoint.id, draft.trim().to_owned());
                *draft = draft.trim().to_owned();
            }
        });
        if let ProviderStatus::NeedsSetup(why) = setup.status(id)
            && let Some(problem) = url_problem(
                endpoint,
                why,
                Some(applied.as_str()).filter(|a| !a.is_empty()),
            )
        {
            ui.horizontal(|ui| {
                ui.add_space(LABEL_WIDTH + ui.spacing().item_spacing.x);
                ui.add(
                    egui::Label::new(
                        RichText::new(problem.field_text()).color(ui.visuals().warn_fg_color),
                    )
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
            FolderPick::Chosen(folder) => prefs.default_out_dir = folder,
            FolderPick::Cancelled => {}
            FolderPick::Unavailable => self.folder_problem = Some(NO_FOLDER_DIALOG),
        }
    }
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

/// "public key" → "Public key", for field labels.
fn sentence_case(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// What an empty key field says, depending on where the key now comes from.
fn key_hint(session_key: bool, from_env: bool) -> &'static str {
    if from_env {
        "Set in the environment"
    } else if session_key {
        "Saved; type a new key to replace it"
    } else {
        "Paste your key here"
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

/// The status line for a provider, given its status, where each of its
/// credentials comes from (in [`ProviderInfo::credentials`] order) and the
/// base URLs typed under Advanced (in [`ProviderInfo::endpoints`] order).
///
/// A missing key is phrased as "paste it above" rather than the command
/// line's "set CUTOUT_…_KEY"; any other problem (a bad base URL) is shown
/// as the provider reported it.
fn status_text(
    info: &ProviderInfo,
    status: &ProviderStatus,
    sources: &[Option<&'static str>],
    overrides: &[Option<&str>],
) -> (String, Tone) {
    let plural = info.credentials.len() > 1;
    let noun = if plural { "keys" } else { "key" };
    match status {
        ProviderStatus::Ready { .. } => {
            let from_env: Vec<&str> = info
                .credentials
                .iter()
                .zip(sources)
                .filter(|(_, source)| **source == Some(FROM_ENVIRONMENT))
                .map(|(spec, _)| spec.env_var)
                .collect();
            let from_session = sources.contains(&Some(FROM_SESSION));
            let origin = match (from_env.is_empty(), from_session) {
                (true, true) => FROM_SESSION,
                (false, false) => "the environment",
                (false, true) => "the environment and this session",
                (true, false) => return ("Ready".to_owned(), Tone::Ready),
            };
            let mut text = format!("Ready — {noun} from {origin}");
            if !from_env.is_empty() {
                let verb = if from_env.len() == 1 {
                    "overrides"
                } else {
                    "override"
                };
                text.push_str(&format!(
                    " ({} {verb} what you type here)",
                    from_env.join(", ")
                ));
            }
            (text, Tone::Ready)
        }
        ProviderStatus::NeedsSetup(why) => {
            let typed_problem = info.endpoints.iter().zip(overrides).find_map(
                |(endpoint, typed)| match url_problem(endpoint, why, *typed)? {
                    UrlProblem::Typed(reason) => Some((endpoint, reason)),
                    UrlProblem::Environment(_) => None,
                },
            );
            if let Some((endpoint, reason)) = typed_problem {
                let label = endpoint_label(endpoint.id);
                return (
                    format!("{label} under Advanced cannot be used: {reason}"),
                    Tone::NeedsAttention,
                );
            }
            let missing: Vec<&CredentialSpec> = info
                .credentials
                .iter()
                .zip(sources)
                .filter(|(_, source)| source.is_none())
                .map(|(spec, _)| spec)
                .collect();
            let about_missing_key = missing.iter().any(|spec| why.contains(spec.env_var));
            if !about_missing_key {
                return (why.clone(), Tone::NeedsAttention);
            }
            let labels: Vec<&str> = missing.iter().map(|spec| spec.label).collect();
            let (them, it) = if missing.len() > 1 {
                (labels.join(" and "), "them")
            } else {
                (labels.join(""), "it")
            };
            (
                format!("Needs its {them}: paste {it} below and press Save."),
                Tone::NeedsAttention,
            )
        }
    }
}

/// Why a base URL cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
enum UrlProblem {
    /// The address typed under Advanced is refused; the reason says why.
    Typed(String),
    /// The address an environment variable sets is refused: the provider's
    /// whole message, which names the variable to fix.
    Environment(String),
}

impl UrlProblem {
    /// What to show under the field.
    fn field_text(&self) -> String {
        match self {
            UrlProblem::Typed(reason) => format!("Cannot use this address: {reason}"),
            UrlProblem::Environment(message) => message.clone(),
        }
    }
}

/// Whether the provider's problem `why` is about `endpoint`, whose override
/// typed under Advanced is `typed` (if any). For a typed address, only the
/// reason is kept: the variable name means nothing to someone who typed it
/// here, and the address is in the field already.
fn url_problem(endpoint: &EndpointSpec, why: &str, typed: Option<&str>) -> Option<UrlProblem> {
    if !why.contains(endpoint.env_var) {
        return None;
    }
    let Some(value) = typed else {
        return Some(UrlProblem::Environment(why.to_owned()));
    };
    let prefix = format!("{} is not a usable base URL (", endpoint.env_var);
    let suffix = format!("): {value}");
    let reason = why
        .strip_prefix(&prefix)
        .and_then(|rest| rest.strip_suffix(&suffix))
        .unwrap_or(why);
    Some(UrlProblem::Typed(reason.to_owned()))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use egui_kittest::Harness;
    use egui_kittest::kittest::Queryable;

    use super::*;
    use crate::jobs::{Engine, EngineConfig, EngineHandle};
    use crate::providers::{HttpClient, RetryPolicy};

    fn ready(key_source: &'static str) -> ProviderStatus {
        ProviderStatus::Ready { key_source }
    }

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
    fn a_key_saved_in_the_window_reads_ready_from_this_session() {
        let info = ProviderId::Removebg.info();
        assert_eq!(
            status_text(info, &ready(FROM_SESSION), &[Some(FROM_SESSION)], &[None]),
            ("Ready — key from this session".to_owned(), Tone::Ready)
        );
    }

    #[test]
    fn a_key_from_the_environment_names_the_variable_that_overrides_typing() {
        let info = ProviderId::Removebg.info();
        assert_eq!(
            status_text(
                info,
                &ready(FROM_ENVIRONMENT),
                &[Some(FROM_ENVIRONMENT)],
                &[None]
            )
            .0,
            "Ready — key from the environment \
             (CUTOUT_REMOVEBG_KEY overrides what you type here)"
        );
    }

    #[test]
    fn uploadcare_keys_from_both_places_name_only_the_environment_one() {
        let info = ProviderId::Uploadcare.info();
        let sources = [Some(FROM_ENVIRONMENT), Some(FROM_SESSION)];
        assert_eq!(
            status_text(
                info,
                &ready(FROM_ENVIRONMENT),
                &sources,
                &[None, None, None]
            )
            .0,
            "Ready — keys from the environment and this session \
             (CUTOUT_UPLOADCARE_PUBLIC_KEY overrides what you type here)"
        );
    }

    #[test]
    fn a_missing_key_asks_to_paste_it_rather_than_to_set_a_variable() {
        let info = ProviderId::Removebg.info();
        let status = ProviderStatus::NeedsSetup(
            "remove.bg needs its API key: set CUTOUT_REMOVEBG_KEY".to_owned(),
        );
        assert_eq!(
            status_text(info, &status, &[None], &[None]),
            (
                "Needs its API key: paste it below and press Save.".to_owned(),
                Tone::NeedsAttention
            )
        );
    }

    #[test]
    fn uploadcare_missing_both_keys_asks_for_both() {
        let info = ProviderId::Uploadcare.info();
        let status = ProviderStatus::NeedsSetup(
            "Uploadcare needs its public key: set CUTOUT_UPLOADCARE_PUBLIC_KEY".to_owned(),
        );
        assert_eq!(
            status_text(info, &status, &[None, None], &[None, None, None]).0,
            "Needs its public key and secret key: paste them below and press Save."
        );
    }

    #[test]
    fn any_other_problem_is_shown_as_the_provider_reported_it() {
        let info = ProviderId::Removebg.info();
        let why = "CUTOUT_REMOVEBG_URL is not a usable base URL (relative URL without a base): api";
        let status = ProviderStatus::NeedsSetup(why.to_owned());
        assert_eq!(
            status_text(info, &status, &[None], &[None]),
            (why.to_owned(), Tone::NeedsAttention)
        );
    }

    #[test]
    fn a_bad_typed_address_is_explained_under_its_own_field_without_the_variable() {
        let endpoints = ProviderId::Uploadcare.info().endpoints;
        let typed = "http://upload.example.com";
        let why = format!(
            "CUTOUT_UPLOADCARE_UPLOAD_URL is not a usable base URL \
             (refusing plain HTTP to a remote host; use https: {typed}/): {typed}"
        );
        let problems: Vec<_> = endpoints
            .iter()
            .map(|endpoint| url_problem(endpoint, &why, Some(typed)).map(|p| p.field_text()))
            .collect();
        assert_eq!(
            problems,
            [
                None,
                Some(format!(
                    "Cannot use this address: refusing plain HTTP to a remote host; \
                     use https: {typed}/"
                )),
                None
            ]
        );
    }

    #[test]
    fn a_bad_typed_address_points_the_status_line_at_advanced() {
        let info = ProviderId::Removebg.info();
        let typed = "api.example.com";
        let why = format!(
            "CUTOUT_REMOVEBG_URL is not a usable base URL (relative URL without a base): {typed}"
        );
        let status = ProviderStatus::NeedsSetup(why);
        assert_eq!(
            status_text(info, &status, &[None], &[Some(typed)]).0,
            "API address under Advanced cannot be used: relative URL without a base"
        );
    }

    #[test]
    fn a_bad_address_from_the_environment_keeps_the_variable_name() {
        let endpoint = &ProviderId::Removebg.info().endpoints[0];
        let why = "CUTOUT_REMOVEBG_URL is not a usable base URL (bad): x";
        assert_eq!(
            url_problem(endpoint, why, None),
            Some(UrlProblem::Environment(why.to_owned()))
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
        let prefs = Preferences {
            default_out_dir: PathBuf::from("out"),
            theme: ThemePreference::Dark,
        };
        prefs.apply_theme(&ctx);
        assert_eq!(ctx.options(|o| o.theme_preference), ThemePreference::Dark);
        prefs.apply_theme(&ctx);
        assert_eq!(ctx.options(|o| o.theme_preference), ThemePreference::Dark);
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

    /// The window with a real [`ProviderSetup`] and no keys in the
    /// environment. The engine's runtime never runs its tasks: commands
    /// just queue, which is all the window needs.
    struct Fixture {
        window: SettingsWindow,
        setup: ProviderSetup,
        prefs: Preferences,
        _engine: EngineHandle,
        _runtime: tokio::runtime::Runtime,
    }

    fn open_settings() -> Harness<'static, Fixture> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let http = HttpClient::new(RetryPolicy::default()).unwrap();
        let engine = {
            let _inside = runtime.enter();
            Engine::spawn(Vec::new(), http.clone(), EngineConfig::default())
        };
        let setup = ProviderSetup::new(Arc::new(|_: &str| None), http, engine.sender());
        let fixture = Fixture {
            window: SettingsWindow {
                open: true,
                ..SettingsWindow::default()
            },
            setup,
            prefs: Preferences {
                default_out_dir: PathBuf::from("out"),
                theme: ThemePreference::Light,
            },
            _engine: engine,
            _runtime: runtime,
        };
        // The app draws ✔, ⚠ and 👁 with the desktop's fonts; the harness
        // has only egui's bundled font, so it may draw tofu for them.
        let mut harness = Harness::builder()
            .with_size(egui::vec2(900.0, 900.0))
            .allow_missing_glyphs()
            .build_ui_state(
                |ui, f: &mut Fixture| {
                    let ctx = ui.ctx().clone();
                    f.window.settings_ui(&ctx, &mut f.setup, &mut f.prefs);
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
    fn saving_a_typed_key_hands_it_to_the_provider_and_empties_the_field() {
        let mut harness = open_settings();
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
            state.setup.key_source(ProviderId::Removit, "key"),
            Some(FROM_SESSION)
        );
        assert!(state.setup.status(ProviderId::Removit).is_ready());
        assert!(state.window.key_drafts.values().all(String::is_empty));
        assert!(harness.query_by_label_contains("rmv_secret_123").is_none());
        assert!(
            harness
                .query_by_label("✔ Ready — key from this session")
                .is_some()
        );
    }

    #[test]
    fn the_window_shows_that_a_key_is_saved_without_showing_the_key() {
        let mut harness = open_settings();
        harness.state_mut().setup.set_key(
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
        assert!(harness.query_by_label("Remove").is_some());
        assert!(
            harness
                .query_by_label("✔ Ready — key from this session")
                .is_some()
        );
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
    fn jobs_at_once_reach_the_provider_setup_and_stay_within_range() {
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
        assert_eq!(harness.state().setup.concurrency(ProviderId::Removebg), 7);
        harness
            .get_all_by_role(egui::accesskit::Role::SpinButton)
            .nth(removebg)
            .unwrap()
            .set_value_accesskit(99.0);
        harness.run();
        assert_eq!(
            harness.state().setup.concurrency(ProviderId::Removebg),
            MOST_JOBS_AT_ONCE
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
        assert!(state.window.key_drafts.is_empty());
        assert_eq!(
            state.setup.key_source(ProviderId::Uploadcare, "public_key"),
            None
        );
    }
}
