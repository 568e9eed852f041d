//! The batch settings the user picks before pressing Start: provider, model,
//! the provider's options as proper controls, and the Output section:
//! named presets, output folder, format and quality, background, the
//! "Layout" block ([`LayoutEditor`]: crop, canvas, placement, shadow, live
//! preview) and file names. It starts from the defaults in the settings
//! file, follows them when they change in Settings, and turns the choices
//! into the engine's [`JobSettings`], refusing combinations that cannot work
//! (JPEG without a background, a broken naming template) with a reason.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use egui::RichText;
use jiff::civil::Date;

use crate::imaging::compose::{Backdrop, Canvas};
use crate::imaging::encode::{DEFAULT_JPEG_QUALITY, DEFAULT_WEBP_QUALITY};
use crate::imaging::{Background, OutputFormat};
use crate::jobs::job::InputKind;
use crate::jobs::naming::{NameFields, NamingTemplate};
use crate::jobs::{JobSettings, OutputSpec};
use crate::providers::{OptionKind, OptionSpec, ProviderId, ProviderInfo, ProviderOptions};
use crate::settings::{Defaults, OutputSettings, Preset, Settings};
use crate::ui::composition::{LayoutEditor, fixed_label_ui};
use crate::ui::local::LocalPanel;
use crate::ui::sentence_case;
use crate::ui::setup::{ProviderSetup, ProviderStatus};

/// What the file names field's tooltip says: every placeholder, with an
/// example.
pub const NAMING_HELP: &str = "How result files are named. Use:\n\
    {name} — the original file's name\n\
    {provider} — the provider, such as removebg\n\
    {model} — the model used\n\
    {date} — today's date, such as 2025-06-30\n\
    {variation} — the variation, for providers that send several\n\
    Example: {name}-{provider} saves shoe.jpg as shoe-removebg.png";

/// The "Downscale to fit" checkbox's tooltip: the provider's own limits,
/// and what ticking it does.
fn downscale_help(info: &ProviderInfo) -> String {
    let limits = &info.input_limits;
    let mut sizes = Vec::new();
    if let Some(pixels) = limits.max_pixels {
        sizes.push(crate::imaging::decode::megapixels(pixels));
    }
    if let Some(side) = limits.max_side_px {
        sizes.push(format!("{side} px on a side"));
    }
    if let Some(bytes) = limits.max_file_bytes {
        sizes.push(format!("{} MB", bytes / 1_000_000));
    }
    let takes = if sizes.is_empty() {
        format!("{} documents no size limit for images.", info.name)
    } else {
        format!("{} takes images up to {}.", info.name, sizes.join(" and "))
    };
    format!(
        "{takes} Larger images fail unless this is ticked; then Cutout sends a smaller copy \
         and never changes the original."
    )
}

/// Every kind of input, in the order defaults are listed.
const INPUT_KINDS: [InputKind; 4] = [
    InputKind::ImageFile,
    InputKind::ImageUrl,
    InputKind::VideoFile,
    InputKind::VideoUrl,
];

/// The longest preset name: it has to fit the picker.
const MAX_PRESET_NAME_CHARS: usize = 40;

/// What the user has chosen for the next jobs.
pub struct JobForm {
    /// The provider new and unstarted jobs go to.
    pub provider: ProviderId,
    models: BTreeMap<ProviderId, String>,
    options: BTreeMap<ProviderId, ProviderOptions>,
    /// Text being typed into free-text options, kept even while invalid.
    drafts: BTreeMap<(ProviderId, &'static str), String>,
    /// Where results go.
    pub out_dir: PathBuf,
    /// The image format results are converted to; `None` keeps the
    /// provider's own.
    pub format: Option<OutputFormat>,
    /// Whether WebP is saved lossy (much smaller) rather than lossless.
    pub webp_lossy: bool,
    /// JPEG quality, 1 to 100.
    pub jpeg_quality: u8,
    /// Lossy WebP quality, 1 to 100.
    pub webp_quality: u8,
    /// Background, crop, canvas, placement and shadow, with their preview.
    pub layout: LayoutEditor,
    /// The preset last picked, so of two presets that look the same the
    /// picker shows the one the user chose.
    preset_applied: Option<String>,
    /// The "Save as preset" dialog, while it is open.
    preset_naming: Option<PresetNaming>,
    /// The preset the "Delete preset" dialog asks about, while it is open.
    preset_deleting: Option<String>,
    /// Whether images over the provider's limits go as smaller copies.
    pub allow_downscale: bool,
    /// The file names template as typed, kept even while invalid.
    naming_text: String,
    /// The template checked from `naming_text`, or what is wrong with it.
    naming: Result<NamingTemplate, String>,
    /// Whether the user picked the provider here, so defaults arriving
    /// later (keys read from the keychain, a new default in Settings) do
    /// not override that choice.
    provider_chosen: bool,
    /// Whether the provider was picked knowing the keychain's keys.
    keys_seen: bool,
    /// The defaults last followed, to notice a change made in Settings.
    seen_defaults: Defaults,
    /// The output defaults last followed.
    seen_output: OutputSettings,
    /// The date the file names example shows.
    today: Date,
    folder_pick: Option<mpsc::Receiver<Option<PathBuf>>>,
}

/// The name being typed in the "Save as preset" dialog.
struct PresetNaming {
    name: String,
    /// Whether the name field has been given the keyboard focus once.
    focused: bool,
}

/// Something the settings panel asks the app to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormAction {
    /// Open the Settings window (to add a key).
    OpenSettings,
    /// Keep the current output setup in the settings file under `name`,
    /// replacing a preset of that name.
    SavePreset {
        /// The name, trimmed and not empty.
        name: String,
        /// The format, quality and composition.
        preset: Preset,
    },
    /// Remove the named preset from the settings file.
    DeletePreset(String),
}

/// The formats as the Format picker offers them: WebP twice, lossless and
/// lossy, since the difference matters more than a quality number shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FormatChoice {
    Png,
    Webp,
    WebpLossy,
    Jpg,
    Mask,
    Provider,
}

impl FormatChoice {
    const ALL: [FormatChoice; 6] = [
        FormatChoice::Png,
        FormatChoice::Webp,
        FormatChoice::WebpLossy,
        FormatChoice::Jpg,
        FormatChoice::Mask,
        FormatChoice::Provider,
    ];

    fn label(self) -> &'static str {
        match self {
            FormatChoice::Png => "PNG (transparent)",
            FormatChoice::Webp => "WebP (lossless)",
            FormatChoice::WebpLossy => "WebP (smaller, lossy)",
            FormatChoice::Jpg => "JPEG (needs a background)",
            FormatChoice::Mask => "Mask only (greyscale)",
            FormatChoice::Provider => "As the provider sends it",
        }
    }

    /// The label in the closed picker, which has less room than its menu.
    fn short_label(self) -> &'static str {
        match self {
            FormatChoice::Jpg => "JPEG",
            FormatChoice::Provider => "Provider's own",
            other => other.label(),
        }
    }

    fn help(self) -> &'static str {
        match self {
            FormatChoice::Png => "Lossless with transparency; opens everywhere",
            FormatChoice::Webp => "Lossless with transparency, usually smaller than PNG",
            FormatChoice::WebpLossy => {
                "Much smaller files for web shops, with transparency; choose the quality"
            }
            FormatChoice::Jpg => {
                "Small files without transparency: put a colour or picture behind the subject"
            }
            FormatChoice::Mask => {
                "Only the subject's shape, white on black, for tools that cut out the original \
                 themselves"
            }
            FormatChoice::Provider => "Keep the file the provider sends (usually PNG)",
        }
    }
}

impl JobForm {
    /// Starts with `provider`, results going to `out_dir`, and the
    /// built-in output defaults (PNG, transparent, named after the input).
    pub fn new(provider: ProviderId, out_dir: PathBuf) -> Self {
        let output = OutputSettings::default();
        let mut form = JobForm {
            provider,
            models: BTreeMap::new(),
            options: BTreeMap::new(),
            drafts: BTreeMap::new(),
            out_dir,
            format: None,
            webp_lossy: false,
            jpeg_quality: DEFAULT_JPEG_QUALITY,
            webp_quality: DEFAULT_WEBP_QUALITY,
            layout: LayoutEditor::new(),
            preset_applied: None,
            preset_naming: None,
            preset_deleting: None,
            allow_downscale: false,
            naming_text: String::new(),
            naming: Ok(NamingTemplate::default()),
            provider_chosen: false,
            keys_seen: false,
            seen_defaults: Defaults::default(),
            seen_output: output.clone(),
            today: crate::jobs::naming::today(),
            folder_pick: None,
        };
        form.adopt_output(&output);
        form
    }

    /// Starts from the settings file's defaults: the provider for image
    /// files when it is ready (else the first provider that is), the
    /// models chosen per provider, and the output format, background and
    /// file names.
    pub fn from_settings(settings: &Settings, out_dir: PathBuf, setup: &ProviderSetup) -> Self {
        let mut form = JobForm::new(initial_provider(&settings.defaults, setup), out_dir);
        form.adopt_output(&settings.output);
        form.seen_output = settings.output.clone();
        for kind in INPUT_KINDS {
            form.adopt_default_model(settings.defaults.get(kind));
        }
        form.seen_defaults = settings.defaults.clone();
        form.keys_seen = setup.keys_loaded();
        form
    }

    /// Keeps the form in step with the defaults, every frame: once the
    /// keychain's keys are in, the starting provider is picked again (the
    /// default may only now be ready) unless the user already chose one;
    /// a default changed in Settings replaces the form's value when the
    /// form still showed the old default.
    pub fn follow_defaults(&mut self, settings: &Settings, setup: &ProviderSetup) {
        if !self.keys_seen && setup.keys_loaded() {
            self.keys_seen = true;
            if !self.provider_chosen {
                self.provider = initial_provider(&settings.defaults, setup);
            }
        }
        if settings.defaults != self.seen_defaults {
            for kind in INPUT_KINDS {
                let new = settings.defaults.get(kind);
                if new != self.seen_defaults.get(kind) {
                    self.adopt_default_model(new);
                }
            }
            let old = self
                .seen_defaults
                .get(InputKind::ImageFile)
                .map(|c| c.provider);
            let new = settings
                .defaults
                .get(InputKind::ImageFile)
                .map(|c| c.provider);
            if let Some(new) = new
                && new != self.provider
                && (!self.provider_chosen || old == Some(self.provider))
            {
                self.provider = new;
            }
            self.seen_defaults = settings.defaults.clone();
        }
        if settings.output != self.seen_output {
            let old = std::mem::replace(&mut self.seen_output, settings.output.clone());
            let new = &settings.output;
            if self.format == old.format {
                self.format = new.format;
            }
            if self.layout.backdrop() == Backdrop::from(old.background) {
                self.layout.set_backdrop(&Backdrop::from(new.background));
            }
            if self.naming_text == old.naming.as_str() {
                self.set_naming_text(new.naming.as_str().to_owned());
            }
        }
    }

    /// Takes the format, background and file names from `output`.
    fn adopt_output(&mut self, output: &OutputSettings) {
        self.format = output.format;
        self.layout.set_backdrop(&Backdrop::from(output.background));
        self.set_naming_text(output.naming.as_str().to_owned());
    }

    fn adopt_default_model(&mut self, choice: Option<&crate::settings::DefaultChoice>) {
        if let Some(choice) = choice {
            self.models
                .insert(choice.provider, choice.model().to_owned());
        }
    }

    /// Replaces the file names template, checking it.
    pub fn set_naming_text(&mut self, text: String) {
        self.naming = NamingTemplate::parse(&text).map_err(|e| sentence_case(&e.to_string()));
        self.naming_text = text;
    }

    /// The chosen model of the current provider.
    pub fn model(&self) -> &str {
        self.models
            .get(&self.provider)
            .map(String::as_str)
            .unwrap_or_else(|| self.provider.info().default_model())
    }

    /// The plain background, for the preview panel's backdrop.
    pub fn background(&self) -> Background {
        self.layout.plain_background()
    }

    /// The quality the chosen format is saved at, if it takes one.
    pub fn quality(&self) -> Option<u8> {
        match self.format {
            Some(OutputFormat::Jpg) => Some(self.jpeg_quality),
            Some(OutputFormat::Webp) if self.webp_lossy => Some(self.webp_quality),
            _ => None,
        }
    }

    /// The format results are written in: `None` for video providers and
    /// when a provider option picks the provider's own format.
    fn effective_format(&self, info: &ProviderInfo) -> Option<OutputFormat> {
        let options = self.options.get(&self.provider);
        let own_format = options.is_some_and(|o| o.contains_key("output_format"));
        if info.takes_only_video() || own_format {
            None
        } else {
            self.format
        }
    }

    /// The output setup as a preset, when a format is chosen.
    fn look(&self) -> Option<Preset> {
        Some(Preset {
            format: self.format?,
            quality: self.quality(),
            composition: self.layout.composition(),
        })
    }

    /// Shows the preset `name`: its format, quality and composition.
    pub fn apply_preset(&mut self, name: &str, preset: &Preset) {
        self.format = Some(preset.format);
        match (preset.format, preset.quality) {
            (OutputFormat::Jpg, quality) => {
                self.jpeg_quality = quality.unwrap_or(DEFAULT_JPEG_QUALITY);
            }
            (OutputFormat::Webp, Some(quality)) => {
                self.webp_lossy = true;
                self.webp_quality = quality;
            }
            (OutputFormat::Webp, None) => self.webp_lossy = false,
            _ => {}
        }
        self.layout.set_composition(&preset.composition);
        self.preset_applied = Some(name.to_owned());
    }

    /// The preset the form shows now, if it shows one unchanged.
    fn current_preset<'a>(&self, presets: &'a BTreeMap<String, Preset>) -> Option<&'a str> {
        let look = self.look()?;
        let matches = |preset: &Preset| same_look(preset, &look);
        self.preset_applied
            .as_deref()
            .and_then(|name| presets.get_key_value(name))
            .filter(|(_, preset)| matches(preset))
            .or_else(|| presets.iter().find(|(_, preset)| matches(preset)))
            .map(|(name, _)| name.as_str())
    }

    fn format_choice(&self) -> FormatChoice {
        match self.format {
            Some(OutputFormat::Png) => FormatChoice::Png,
            Some(OutputFormat::Webp) if self.webp_lossy => FormatChoice::WebpLossy,
            Some(OutputFormat::Webp) => FormatChoice::Webp,
            Some(OutputFormat::Jpg) => FormatChoice::Jpg,
            Some(OutputFormat::Mask) => FormatChoice::Mask,
            None => FormatChoice::Provider,
        }
    }

    fn set_format_choice(&mut self, choice: FormatChoice) {
        self.format = match choice {
            FormatChoice::Png => Some(OutputFormat::Png),
            FormatChoice::Webp | FormatChoice::WebpLossy => Some(OutputFormat::Webp),
            FormatChoice::Jpg => Some(OutputFormat::Jpg),
            FormatChoice::Mask => Some(OutputFormat::Mask),
            FormatChoice::Provider => None,
        };
        match choice {
            FormatChoice::Webp => self.webp_lossy = false,
            FormatChoice::WebpLossy => self.webp_lossy = true,
            _ => {}
        }
    }

    /// The settings for jobs, or why the current choices cannot run.
    pub fn settings(&self) -> Result<JobSettings, String> {
        let info = self.provider.info();
        if let Some(((_, key), _)) = self
            .drafts
            .iter()
            .find(|((p, key), text)| *p == self.provider && option_error(info, key, text).is_some())
        {
            return Err(format!("fix the `{key}` option first"));
        }
        let options = self
            .options
            .get(&self.provider)
            .cloned()
            .unwrap_or_default();
        let format = self.effective_format(info);
        if let Some(problem) = self.layout.problem(format) {
            return Err(problem);
        }
        let naming = self
            .naming
            .clone()
            .map_err(|_| "fix the file names first".to_owned())?;
        Ok(JobSettings {
            provider: self.provider,
            model: self.model().to_owned(),
            options,
            output: OutputSpec {
                dir: self.out_dir.clone(),
                format,
                quality: format.and(self.quality()),
                composition: Box::new(self.layout.composition()),
                naming,
            },
            allow_downscale: self.allow_downscale,
        })
    }

    /// Draws the batch settings: provider, model, options, output.
    /// `local` lists the local engine's models; `settings` lists the
    /// presets; `focused_result` is the focused job's result, which the
    /// layout preview shows when it is a cut-out.
    pub fn form_ui(
        &mut self,
        ui: &mut egui::Ui,
        setup: &ProviderSetup,
        local: &mut LocalPanel,
        settings: &Settings,
        focused_result: Option<&Path>,
    ) -> Option<FormAction> {
        self.receive_folder_pick();
        let mut action = None;
        let heading = ui.heading("Provider");
        let before = self.provider;
        egui::ComboBox::from_id_salt("provider")
            .width(ui.available_width())
            .selected_text(self.provider.info().name)
            .show_ui(ui, |ui| {
                for id in ProviderId::ALL {
                    let ready = setup.status(id).is_ready();
                    let label = if ready {
                        id.info().name.to_owned()
                    } else {
                        format!("{} (needs a key)", id.info().name)
                    };
                    ui.selectable_value(&mut self.provider, id, label)
                        .on_hover_text(id.info().summary);
                }
            })
            .response
            .labelled_by(heading.id)
            .on_hover_text("Who removes the backgrounds");
        if self.provider != before {
            self.provider_chosen = true;
        }
        let info = self.provider.info();
        ui.label(RichText::new(info.summary).small().weak());
        if let ProviderStatus::NeedsSetup(why) = setup.status(self.provider) {
            ui.horizontal_wrapped(|ui| {
                ui.colored_label(ui.visuals().warn_fg_color, why);
                if ui.button("Open Settings").clicked() {
                    action = Some(FormAction::OpenSettings);
                }
            });
        }
        let takes: Vec<_> = info.accepts.iter().map(|k| k.plural_noun()).collect();
        ui.label(RichText::new(format!("Takes {}", takes.join(", "))).small());

        ui.add_space(6.0);
        let model_label = ui.label("Model");
        let mut model = self.model().to_owned();
        if self.provider == ProviderId::Local {
            local.model_picker_ui(ui, &mut model, model_label.id);
        } else {
            egui::ComboBox::from_id_salt(("model", self.provider))
                .width(ui.available_width())
                .selected_text(&model)
                .show_ui(ui, |ui| {
                    for m in info.models {
                        ui.selectable_value(&mut model, m.id.to_owned(), m.id)
                            .on_hover_text(m.summary);
                    }
                })
                .response
                .labelled_by(model_label.id);
            if let Some(m) = info.models.iter().find(|m| m.id == model) {
                ui.label(RichText::new(m.summary).small().weak());
            }
        }
        self.models.insert(self.provider, model);

        if !info.options.is_empty() {
            ui.add_space(6.0);
            egui::CollapsingHeader::new("Options")
                .id_salt(("options", self.provider))
                .default_open(false)
                .show(ui, |ui| self.options_ui(ui, info));
        }

        ui.separator();
        ui.heading("Output");
        if let Some(preset_action) = self.output_ui(ui, info, settings.presets(), focused_result) {
            action = Some(preset_action);
        }
        action
    }

    fn options_ui(&mut self, ui: &mut egui::Ui, info: &'static ProviderInfo) {
        egui::Grid::new(("option grid", info.id))
            .num_columns(2)
            .spacing([8.0, 6.0])
            .show(ui, |ui| {
                for spec in info.options {
                    ui.label(spec.key).on_hover_text(spec.help);
                    self.option_ui(ui, info, spec);
                    ui.end_row();
                }
            });
    }

    fn option_ui(
        &mut self,
        ui: &mut egui::Ui,
        info: &'static ProviderInfo,
        spec: &'static OptionSpec,
    ) {
        let options = self.options.entry(info.id).or_default();
        let current = options.get(spec.key).cloned();
        match spec.kind {
            OptionKind::Bool | OptionKind::Choice { .. } => {
                let values: Vec<&str> = match spec.kind {
                    OptionKind::Choice { values } => values.to_vec(),
                    _ => vec!["true", "false"],
                };
                let shown = current.clone().unwrap_or_else(|| "default".to_owned());
                let mut chosen = current;
                egui::ComboBox::from_id_salt(("option", info.id, spec.key))
                    .selected_text(shown)
                    .show_ui(ui, |ui| {
                        ui.selectable_value(&mut chosen, None, "default");
                        for value in values {
                            ui.selectable_value(&mut chosen, Some(value.to_owned()), value);
                        }
                    })
                    .response
                    .on_hover_text(spec.help);
                match chosen {
                    Some(value) => options.insert(spec.key.to_owned(), value),
                    None => options.remove(spec.key),
                };
            }
            OptionKind::Text { example, .. } => {
                let draft = self
                    .drafts
                    .entry((info.id, spec.key))
                    .or_insert_with(|| current.unwrap_or_default());
                ui.vertical(|ui| {
                    ui.add(
                        egui::TextEdit::singleline(draft)
                            .hint_text(example)
                            .desired_width(150.0),
                    )
                    .on_hover_text(spec.help);
                    match option_error(info, spec.key, draft) {
                        Some(why) => {
                            ui.colored_label(ui.visuals().error_fg_color, why);
                        }
                        None if draft.trim().is_empty() => {
                            options.remove(spec.key);
                        }
                        None => {
                            options.insert(spec.key.to_owned(), draft.trim().to_owned());
                        }
                    }
                });
            }
        }
    }

    fn output_ui(
        &mut self,
        ui: &mut egui::Ui,
        info: &ProviderInfo,
        presets: &BTreeMap<String, Preset>,
        focused_result: Option<&Path>,
    ) -> Option<FormAction> {
        let video = info.takes_only_video();
        let mut action = None;
        if !video {
            action = self.presets_ui(ui, presets);
            ui.add_space(4.0);
        }
        ui.label("Folder");
        ui.horizontal(|ui| {
            let mut text = self.out_dir.display().to_string();
            let width = (ui.available_width() - 80.0).max(80.0);
            if ui
                .add(egui::TextEdit::singleline(&mut text).desired_width(width))
                .on_hover_text(
                    "Results are saved here as they finish; dropped folders keep their tree",
                )
                .changed()
            {
                self.out_dir = PathBuf::from(text);
            }
            let picking = self.folder_pick.is_some();
            if ui
                .add_enabled(!picking, egui::Button::new("Choose…"))
                .clicked()
            {
                self.pick_output_folder(ui.ctx().clone());
            }
        });
        ui.add_space(4.0);
        let format = self.effective_format(info);
        if video {
            ui.label(
                RichText::new(
                    "Videos keep the provider's format; pick it under Options › output_format.",
                )
                .small(),
            );
        } else {
            self.format_ui(ui, info);
        }
        self.layout.background_ui(ui, format);
        if let Some(problem) = self.layout.problem(format) {
            ui.add(
                egui::Label::new(RichText::new(problem).color(ui.visuals().warn_fg_color)).wrap(),
            );
        }
        if !video {
            self.layout.layout_ui(ui, format, focused_result);
        }
        ui.add_space(4.0);
        self.naming_ui(ui, info);
        if !video {
            ui.checkbox(&mut self.allow_downscale, "Downscale to fit the provider")
                .on_hover_text(downscale_help(info));
        }
        action
    }

    /// The Format picker, and the quality slider for formats that take one.
    fn format_ui(&mut self, ui: &mut egui::Ui, info: &ProviderInfo) {
        let own_format = self
            .options
            .get(&self.provider)
            .is_some_and(|o| o.contains_key("output_format"));
        ui.add_enabled_ui(!own_format, |ui| {
            ui.horizontal(|ui| {
                let label = fixed_label_ui(ui, "Format");
                let mut choice = self.format_choice();
                egui::ComboBox::from_id_salt("format")
                    .truncate()
                    .width(ui.available_width())
                    .selected_text(choice.short_label())
                    .show_ui(ui, |ui| {
                        for option in FormatChoice::ALL {
                            ui.selectable_value(&mut choice, option, option.label())
                                .on_hover_text(option.help());
                        }
                    })
                    .response
                    .labelled_by(label.id)
                    .on_hover_text(choice.help())
                    .on_disabled_hover_text(format!(
                        "{} sends its own format: see Options › output_format",
                        info.name
                    ));
                if choice != self.format_choice() {
                    self.set_format_choice(choice);
                }
            });
            let quality = match self.format {
                Some(OutputFormat::Jpg) => Some(&mut self.jpeg_quality),
                Some(OutputFormat::Webp) if self.webp_lossy => Some(&mut self.webp_quality),
                _ => None,
            };
            if let Some(quality) = quality {
                ui.horizontal(|ui| {
                    let label = fixed_label_ui(ui, "Quality");
                    ui.add(egui::Slider::new(quality, 1..=100))
                        .labelled_by(label.id)
                        .on_hover_text(
                            "Higher keeps more detail, lower makes smaller files; 80 to 90 suits \
                             product pages",
                        );
                });
            }
        });
    }

    /// The Preset picker, with Save as preset… and Delete…, and their
    /// dialogs.
    fn presets_ui(
        &mut self,
        ui: &mut egui::Ui,
        presets: &BTreeMap<String, Preset>,
    ) -> Option<FormAction> {
        let current = self.current_preset(presets).map(str::to_owned);
        let mut picked = None;
        ui.horizontal(|ui| {
            let label = fixed_label_ui(ui, "Preset");
            egui::ComboBox::from_id_salt("preset")
                .truncate()
                .width(ui.available_width())
                .selected_text(current.as_deref().unwrap_or("Custom"))
                .show_ui(ui, |ui| {
                    ui.selectable_label(current.is_none(), "Custom")
                        .on_hover_text("The output as set up below, not saved as a preset");
                    for (name, preset) in presets {
                        if ui
                            .selectable_label(current.as_deref() == Some(name), name)
                            .on_hover_text(describe_preset(preset))
                            .clicked()
                        {
                            picked = Some(name.clone());
                        }
                    }
                    if presets.is_empty() {
                        ui.label(
                            RichText::new(
                                "No presets yet: set up the output, then Save as preset…",
                            )
                            .weak()
                            .small(),
                        );
                    }
                })
                .response
                .labelled_by(label.id)
                .on_hover_text(
                    "Named output setups (format, background, layout), kept in the settings file",
                );
        });
        if let Some(name) = picked
            && let Some(preset) = presets.get(&name)
        {
            self.apply_preset(&name, preset);
        }
        ui.horizontal(|ui| {
            ui.add_space(crate::ui::composition::LABEL_WIDTH + ui.spacing().item_spacing.x);
            let why_not = if self.format.is_none() {
                Some("Choose a format first: a preset names one".to_owned())
            } else {
                self.layout.problem(self.format)
            };
            let save = ui
                .add_enabled(
                    why_not.is_none(),
                    egui::Button::new("Save as preset…").small(),
                )
                .on_hover_text("Keep this output setup under a name, to pick it again later")
                .on_disabled_hover_text(why_not.unwrap_or_default());
            if save.clicked() {
                self.preset_naming = Some(PresetNaming {
                    name: current.clone().unwrap_or_default(),
                    focused: false,
                });
            }
            if let Some(name) = &current
                && ui
                    .add(egui::Button::new("Delete…").small())
                    .on_hover_text(format!("Remove the preset “{name}”"))
                    .clicked()
            {
                self.preset_deleting = Some(name.clone());
            }
        });
        let saved = self.save_preset_dialog_ui(ui.ctx(), presets);
        saved.or_else(|| self.delete_preset_dialog_ui(ui.ctx()))
    }

    fn save_preset_dialog_ui(
        &mut self,
        ctx: &egui::Context,
        presets: &BTreeMap<String, Preset>,
    ) -> Option<FormAction> {
        let look = self.look();
        let naming = self.preset_naming.as_mut()?;
        let mut choice = None;
        let modal = egui::Modal::new(egui::Id::unique("save preset")).show(ctx, |ui| {
            ui.set_width(360.0);
            ui.heading("Save as preset");
            ui.add_space(4.0);
            ui.label("Keep this output setup (format, background and layout) under a name.");
            ui.add_space(8.0);
            let label = ui.label("Name");
            let mut output = egui::TextEdit::singleline(&mut naming.name)
                .hint_text("e.g. Marketplace")
                .char_limit(MAX_PRESET_NAME_CHARS)
                .desired_width(f32::INFINITY)
                .show(ui);
            let field = output.response.response.clone().labelled_by(label.id);
            if !naming.focused {
                // Focused with the suggested name selected, so typing
                // replaces it.
                field.request_focus();
                let all = egui::text::CCursorRange::select_all_str(&naming.name);
                output.state.cursor.set_char_range(Some(all));
                output.state.store(ui.ctx(), field.id);
                naming.focused = true;
            }
            let name = naming.name.trim();
            if presets.contains_key(name) {
                ui.label(
                    RichText::new(format!("Replaces the preset “{name}”."))
                        .small()
                        .color(ui.visuals().warn_fg_color),
                );
            }
            let entered = field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
            ui.add_space(12.0);
            egui::Sides::new().show(
                ui,
                |_| {},
                |ui| {
                    let save = ui.add_enabled(!name.is_empty(), egui::Button::new("Save"));
                    if save.clicked() || (entered && !name.is_empty()) {
                        choice = Some(true);
                    }
                    if ui.button("Cancel").clicked() {
                        choice = Some(false);
                    }
                },
            );
        });
        if choice.is_none() && modal.should_close() {
            choice = Some(false);
        }
        match choice? {
            true => {
                let name = self.preset_naming.take()?.name.trim().to_owned();
                self.preset_applied = Some(name.clone());
                look.map(|preset| FormAction::SavePreset { name, preset })
            }
            false => {
                self.preset_naming = None;
                None
            }
        }
    }

    fn delete_preset_dialog_ui(&mut self, ctx: &egui::Context) -> Option<FormAction> {
        let name = self.preset_deleting.clone()?;
        let mut choice = None;
        let modal = egui::Modal::new(egui::Id::unique("delete preset")).show(ctx, |ui| {
            ui.set_width(360.0);
            ui.heading("Delete preset?");
            ui.add_space(4.0);
            ui.label(format!("Delete the preset “{name}”?"));
            ui.label(
                RichText::new("The output stays set up as it is; results already saved are kept.")
                    .weak(),
            );
            ui.add_space(12.0);
            if let Some(answer) = crate::ui::confirm_buttons_ui(ui, "Delete") {
                choice = Some(answer);
            }
        });
        if choice.is_none() && modal.should_close() {
            choice = Some(false);
        }
        let delete = choice?;
        self.preset_deleting = None;
        delete.then(|| {
            if self.preset_applied.as_deref() == Some(name.as_str()) {
                self.preset_applied = None;
            }
            FormAction::DeletePreset(name)
        })
    }

    /// The file names field: checked as typed, the problem shown under it,
    /// and an example of the name it gives.
    fn naming_ui(&mut self, ui: &mut egui::Ui, info: &ProviderInfo) {
        ui.horizontal(|ui| {
            let label = ui.label("File names");
            let mut text = self.naming_text.clone();
            let field = ui
                .add(
                    egui::TextEdit::singleline(&mut text)
                        .hint_text("{name}")
                        .desired_width(ui.available_width()),
                )
                .labelled_by(label.id)
                .on_hover_text(NAMING_HELP);
            if field.changed() {
                self.set_naming_text(text);
            }
        });
        match &self.naming {
            Err(why) => {
                ui.add(
                    egui::Label::new(RichText::new(why).color(ui.visuals().error_fg_color)).wrap(),
                );
            }
            Ok(template) => {
                let fields = NameFields {
                    name: "bottle",
                    provider: info.id,
                    model: self.model(),
                    date: self.today,
                    variation: None,
                };
                let extension = match self.format {
                    Some(format) if !info.takes_only_video() => format.extension(),
                    _ if info.takes_only_video() => "webm",
                    _ => "png",
                };
                let example = template.render(&fields).stem;
                ui.label(
                    RichText::new(format!("bottle.jpg is saved as {example}.{extension}"))
                        .small()
                        .weak(),
                )
                .on_hover_text(NAMING_HELP);
            }
        }
    }

    fn pick_output_folder(&mut self, ctx: egui::Context) {
        let (sender, receiver) = mpsc::channel();
        self.folder_pick = Some(receiver);
        let start = self.out_dir.clone();
        std::thread::spawn(move || {
            let picked = rfd::FileDialog::new()
                .set_title("Choose the output folder")
                .set_directory(start)
                .pick_folder();
            let _ = sender.send(picked);
            ctx.request_repaint();
        });
    }

    fn receive_folder_pick(&mut self) {
        let Some(receiver) = &self.folder_pick else {
            return;
        };
        match receiver.try_recv() {
            Ok(Some(folder)) => {
                self.out_dir = folder;
                self.folder_pick = None;
            }
            Ok(None) | Err(mpsc::TryRecvError::Disconnected) => self.folder_pick = None,
            Err(mpsc::TryRecvError::Empty) => {}
        }
    }
}

fn option_error(info: &ProviderInfo, key: &str, text: &str) -> Option<String> {
    if text.trim().is_empty() {
        return None;
    }
    info.option(key)?.validate(text.trim()).err()
}

/// Whether two presets save results the same way: JPEG without a quality
/// is JPEG at the default, and formats without a quality ignore one.
fn same_look(a: &Preset, b: &Preset) -> bool {
    let normal = |preset: &Preset| {
        let quality = match (preset.format, preset.quality) {
            (OutputFormat::Jpg, None) => Some(DEFAULT_JPEG_QUALITY),
            (format, _) if !format.takes_quality() => None,
            (_, quality) => quality,
        };
        (preset.format, quality)
    };
    normal(a) == normal(b) && a.composition == b.composition
}

/// A preset in a line, for the picker's tooltips: "JPEG at 90, white
/// (#ffffff), Square 2000, cropped with a 5% margin, drop shadow".
fn describe_preset(preset: &Preset) -> String {
    let format = match (preset.format, preset.quality) {
        (OutputFormat::Png, _) => "PNG".to_owned(),
        (OutputFormat::Webp, None) => "WebP (lossless)".to_owned(),
        (OutputFormat::Webp, Some(q)) => format!("WebP at {q}"),
        (OutputFormat::Jpg, q) => format!("JPEG at {}", q.unwrap_or(DEFAULT_JPEG_QUALITY)),
        (OutputFormat::Mask, _) => "Mask only".to_owned(),
    };
    let c = &preset.composition;
    let mut parts = vec![format];
    parts.push(match &c.background {
        Backdrop::Transparent => "transparent".to_owned(),
        Backdrop::Color(rgb) => format!("{} background", Background::Color(*rgb)),
        Backdrop::Image { path, fit } => format!(
            "{} behind ({fit})",
            path.file_name().map_or_else(
                || path.display().to_string(),
                |n| n.to_string_lossy().into()
            )
        ),
    });
    parts.push(match c.canvas {
        Canvas::Original => "original size".to_owned(),
        Canvas::Square { side_px } => format!("{side_px} × {side_px} px"),
        Canvas::Custom {
            width_px,
            height_px,
        } => format!("{width_px} × {height_px} px"),
    });
    if let Some(margin) = c.crop {
        parts.push(format!("cropped with a {margin} margin"));
    }
    if c.shadow.is_some() {
        parts.push("drop shadow".to_owned());
    }
    if !c.refine.is_identity() {
        parts.push("refined edges".to_owned());
    }
    parts.join(", ")
}

/// What to call an output format in pickers; `None` keeps the provider's.
pub fn format_label(format: Option<OutputFormat>) -> &'static str {
    match format {
        Some(OutputFormat::Png) => "PNG (transparent)",
        Some(OutputFormat::Webp) => "WebP (smaller)",
        Some(OutputFormat::Jpg) => "JPEG (needs a colour)",
        Some(OutputFormat::Mask) => "Mask only (greyscale)",
        None => "As the provider sends it",
    }
}

/// A drop-down of the output formats, shared by the side panel and the
/// defaults in Settings.
pub fn format_picker_ui(
    ui: &mut egui::Ui,
    id_salt: &str,
    format: &mut Option<OutputFormat>,
) -> egui::Response {
    egui::ComboBox::from_id_salt(id_salt)
        .selected_text(format_label(*format))
        .show_ui(ui, |ui| {
            for choice in [
                Some(OutputFormat::Png),
                Some(OutputFormat::Webp),
                Some(OutputFormat::Jpg),
                None,
            ] {
                ui.selectable_value(format, choice, format_label(choice));
            }
        })
        .response
        .on_hover_text("The image format results are saved in")
}

/// The provider the form starts with: the default for image files when it
/// is ready; else a cloud provider the user has keys for (someone who set
/// one up wants it); else that default (so its "needs a key" hint shows);
/// else the local engine, which needs no account, so a new user can drop
/// images and press Start.
pub fn initial_provider(defaults: &Defaults, setup: &ProviderSetup) -> ProviderId {
    let preferred = defaults.get(InputKind::ImageFile).map(|c| c.provider);
    preferred
        .filter(|id| setup.status(*id).is_ready())
        .or_else(|| {
            ProviderId::ALL.into_iter().find(|id| {
                !id.info().credentials.is_empty()
                    && id.info().accepts(InputKind::ImageFile)
                    && setup.status(*id).is_ready()
            })
        })
        .or(preferred)
        .unwrap_or(ProviderId::Local)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jpeg_without_a_background_is_refused_with_a_reason() {
        let mut form = JobForm::new(ProviderId::Removebg, "/out".into());
        form.format = Some(OutputFormat::Jpg);
        assert!(form.settings().unwrap_err().contains("background"));
        form.layout.set_backdrop(&Backdrop::Color([255, 255, 255]));
        let settings = form.settings().unwrap();
        assert_eq!(
            settings.output.composition.background,
            Backdrop::Color([255, 255, 255])
        );
        assert_eq!(settings.output.quality, Some(DEFAULT_JPEG_QUALITY));
        assert_eq!(settings.model, "auto");
    }

    #[test]
    fn a_preset_sets_format_quality_and_layout_and_the_picker_names_it_until_changed() {
        let mut presets = BTreeMap::new();
        let marketplace = Preset {
            format: OutputFormat::Webp,
            quality: Some(80),
            composition: crate::imaging::compose::Composition {
                crop: Some(crate::imaging::compose::Length::Px(40)),
                canvas: Canvas::Square { side_px: 2000 },
                ..crate::imaging::compose::Composition::with_background(Backdrop::Color([
                    255, 255, 255,
                ]))
            },
        };
        presets.insert("marketplace".to_owned(), marketplace.clone());
        let mut form = JobForm::new(ProviderId::Removebg, "/out".into());
        form.format = Some(OutputFormat::Png);
        assert_eq!(form.current_preset(&presets), None);

        form.apply_preset("marketplace", &marketplace);
        assert_eq!(form.format_choice(), FormatChoice::WebpLossy);
        assert_eq!(form.current_preset(&presets), Some("marketplace"));
        let output = form.settings().unwrap().output;
        assert_eq!(output.quality, Some(80));
        assert_eq!(*output.composition, marketplace.composition);

        form.set_format_choice(FormatChoice::Webp);
        assert_eq!(form.settings().unwrap().output.quality, None);
        assert_eq!(form.current_preset(&presets), None);
    }

    #[test]
    fn video_providers_keep_their_own_format() {
        let form = JobForm::new(ProviderId::Removebgvideo, "/out".into());
        assert_eq!(form.settings().unwrap().output.format, None);
    }

    #[test]
    fn the_file_names_template_reaches_the_jobs_and_a_broken_one_stops_start() {
        let mut form = JobForm::new(ProviderId::Removebg, "/out".into());
        form.set_naming_text("{name}-{provider}".to_owned());
        assert_eq!(
            form.settings().unwrap().output.naming.as_str(),
            "{name}-{provider}"
        );
        form.set_naming_text("{name}/{date}".to_owned());
        assert_eq!(form.settings().unwrap_err(), "fix the file names first");
        assert!(
            form.naming
                .unwrap_err()
                .starts_with("The naming template cannot contain `/`")
        );
    }

    fn settings_with_image_default(provider: ProviderId, model: Option<&str>) -> Settings {
        let mut settings = Settings::default();
        settings.defaults.set(
            InputKind::ImageFile,
            Some(crate::settings::DefaultChoice {
                provider,
                model: model.map(str::to_owned),
            }),
        );
        settings
    }

    #[test]
    fn the_image_default_starts_the_form_when_it_has_a_key_else_the_first_ready_provider() {
        let env: crate::ui::setup::Env = std::sync::Arc::new(|name: &str| {
            ["CUTOUT_REMOVIT_KEY", "CUTOUT_REMOVEBG_KEY"]
                .contains(&name)
                .then(|| "key".to_owned())
        });
        let (setup, _engine, _runtime) = crate::ui::setup::test_setup(env);
        let settings = settings_with_image_default(ProviderId::Removebg, Some("preview"));
        let form = JobForm::from_settings(&settings, "/out".into(), &setup);
        assert_eq!(form.provider, ProviderId::Removebg);
        assert_eq!(form.model(), "preview");

        let settings = settings_with_image_default(ProviderId::Uploadcare, None);
        let form = JobForm::from_settings(&settings, "/out".into(), &setup);
        assert_eq!(form.provider, ProviderId::Removit, "Uploadcare has no key");
    }

    #[test]
    fn a_default_changed_in_settings_reaches_the_form_unless_the_user_changed_that_value() {
        let (setup, _engine, _runtime) =
            crate::ui::setup::test_setup(std::sync::Arc::new(|_: &str| None));
        let mut settings = Settings::default();
        let mut form = JobForm::from_settings(&settings, "/out".into(), &setup);
        form.layout.set_backdrop(&Backdrop::Color([255, 255, 255]));

        settings.output.format = Some(OutputFormat::Webp);
        settings.output.background = Background::Color([0, 0, 0]);
        settings.output.naming = NamingTemplate::parse("{name}-cut").unwrap();
        form.follow_defaults(&settings, &setup);
        assert_eq!(form.format, Some(OutputFormat::Webp));
        assert_eq!(form.background(), Background::Color([255, 255, 255]));
        assert_eq!(
            form.settings().unwrap().output.naming.as_str(),
            "{name}-cut"
        );

        let settings = settings_with_image_default(ProviderId::Removit, None);
        form.follow_defaults(&settings, &setup);
        assert_eq!(form.provider, ProviderId::Removit);
    }
}
