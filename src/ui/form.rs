//! The batch settings the user picks before pressing Start: provider, model,
//! the provider's options as proper controls, output folder, format,
//! background and file names. It starts from the defaults in the settings
//! file, follows them when they change in Settings, and turns the choices
//! into the engine's [`JobSettings`], refusing combinations that cannot work
//! (JPEG without a background, a broken naming template) with a reason.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::mpsc;

use egui::{Color32, RichText};
use jiff::civil::Date;

use crate::imaging::{Background, OutputFormat};
use crate::jobs::job::InputKind;
use crate::jobs::naming::{NameFields, NamingTemplate};
use crate::jobs::{JobSettings, OutputSpec};
use crate::providers::{OptionKind, OptionSpec, ProviderId, ProviderInfo, ProviderOptions};
use crate::settings::{Defaults, OutputSettings, Settings};
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

/// Every kind of input, in the order defaults are listed.
const INPUT_KINDS: [InputKind; 4] = [
    InputKind::ImageFile,
    InputKind::ImageUrl,
    InputKind::VideoFile,
    InputKind::VideoUrl,
];

/// The colour a background picker starts from.
const DEFAULT_BACKGROUND: [u8; 3] = [255, 255, 255];

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
    /// Whether a colour goes behind the subject.
    pub fill_background: bool,
    /// The colour, when one does.
    pub background_rgb: [u8; 3],
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

/// Something the settings panel asks the app to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormAction {
    /// Open the Settings window (to add a key).
    OpenSettings,
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
            fill_background: false,
            background_rgb: DEFAULT_BACKGROUND,
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
            if self.background() == old.background {
                self.set_background(new.background);
            }
            if self.naming_text == old.naming.as_str() {
                self.set_naming_text(new.naming.as_str().to_owned());
            }
        }
    }

    /// Takes the format, background and file names from `output`.
    fn adopt_output(&mut self, output: &OutputSettings) {
        self.format = output.format;
        self.set_background(output.background);
        self.set_naming_text(output.naming.as_str().to_owned());
    }

    fn adopt_default_model(&mut self, choice: Option<&crate::settings::DefaultChoice>) {
        if let Some(choice) = choice {
            self.models
                .insert(choice.provider, choice.model().to_owned());
        }
    }

    fn set_background(&mut self, background: Background) {
        match background {
            Background::Transparent => self.fill_background = false,
            Background::Color(rgb) => {
                self.fill_background = true;
                self.background_rgb = rgb;
            }
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

    /// The background as the engine wants it.
    pub fn background(&self) -> Background {
        if self.fill_background {
            Background::Color(self.background_rgb)
        } else {
            Background::Transparent
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
        let format = if info.takes_only_video() || options.contains_key("output_format") {
            None
        } else {
            self.format
        };
        if format == Some(OutputFormat::Jpg) && !self.fill_background {
            return Err("JPEG has no transparency: choose a background colour".to_owned());
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
                background: self.background(),
                naming,
            },
        })
    }

    /// Draws the batch settings: provider, model, options, output.
    pub fn form_ui(&mut self, ui: &mut egui::Ui, setup: &ProviderSetup) -> Option<FormAction> {
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
        self.output_ui(ui, info);
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

    fn output_ui(&mut self, ui: &mut egui::Ui, info: &ProviderInfo) {
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
        if info.takes_only_video() {
            ui.label(
                RichText::new(
                    "Videos keep the provider's format; pick it under Options › output_format.",
                )
                .small(),
            );
        } else {
            ui.horizontal(|ui| {
                let format_label_response = ui.label("Format");
                format_picker_ui(ui, "format", &mut self.format)
                    .labelled_by(format_label_response.id);
            });
        }
        ui.horizontal(|ui| {
            ui.label("Background");
            ui.radio_value(&mut self.fill_background, false, "Transparent");
            ui.radio_value(&mut self.fill_background, true, "Colour");
            if self.fill_background {
                ui.color_edit_button_srgb(&mut self.background_rgb)
                    .on_hover_text("The colour behind the subject");
            }
        });
        if self.format == Some(OutputFormat::Jpg)
            && !self.fill_background
            && !info.takes_only_video()
        {
            ui.colored_label(
                Color32::from_rgb(200, 120, 0),
                "JPEG has no transparency: choose a colour.",
            );
        }
        ui.add_space(4.0);
        self.naming_ui(ui, info);
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

/// What to call an output format in pickers; `None` keeps the provider's.
pub fn format_label(format: Option<OutputFormat>) -> &'static str {
    match format {
        Some(OutputFormat::Png) => "PNG (transparent)",
        Some(OutputFormat::Webp) => "WebP (smaller)",
        Some(OutputFormat::Jpg) => "JPEG (needs a colour)",
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
/// is ready, else the first provider that is, else that default (so its
/// "needs a key" hint shows), else remove.bg.
pub fn initial_provider(defaults: &Defaults, setup: &ProviderSetup) -> ProviderId {
    let preferred = defaults.get(InputKind::ImageFile).map(|c| c.provider);
    preferred
        .filter(|id| setup.status(*id).is_ready())
        .or_else(|| {
            ProviderId::ALL
                .into_iter()
                .find(|id| setup.status(*id).is_ready())
        })
        .or(preferred)
        .unwrap_or(ProviderId::Removebg)
}

/// "the naming template…" → "The naming template…".
fn sentence_case(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jpeg_without_a_background_is_refused_with_a_reason() {
        let mut form = JobForm::new(ProviderId::Removebg, "/out".into());
        form.format = Some(OutputFormat::Jpg);
        assert!(form.settings().unwrap_err().contains("background"));
        form.fill_background = true;
        let settings = form.settings().unwrap();
        assert_eq!(
            settings.output.background,
            Background::Color(DEFAULT_BACKGROUND)
        );
        assert_eq!(settings.model, "auto");
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
        form.fill_background = true;

        settings.output.format = Some(OutputFormat::Webp);
        settings.output.background = Background::Color([0, 0, 0]);
        settings.output.naming = NamingTemplate::parse("{name}-cut").unwrap();
        form.follow_defaults(&settings, &setup);
        assert_eq!(form.format, Some(OutputFormat::Webp));
        assert_eq!(form.background(), Background::Color(DEFAULT_BACKGROUND));
        assert_eq!(
            form.settings().unwrap().output.naming.as_str(),
            "{name}-cut"
        );

        let settings = settings_with_image_default(ProviderId::Removit, None);
        form.follow_defaults(&settings, &setup);
        assert_eq!(form.provider, ProviderId::Removit);
    }
}
