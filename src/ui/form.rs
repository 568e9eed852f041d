//! The batch settings the user picks before pressing Start: provider, model,
//! the provider's options as proper controls, output folder, format and
//! background. It turns them into the engine's [`JobSettings`], refusing
//! combinations that cannot work (JPEG without a background) with a reason.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::mpsc;

use egui::{Color32, RichText};

use crate::imaging::{Background, OutputFormat};
use crate::jobs::{JobSettings, OutputSpec};
use crate::providers::{OptionKind, OptionSpec, ProviderId, ProviderInfo, ProviderOptions};
use crate::ui::setup::{ProviderSetup, ProviderStatus};

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
    /// The image format results are converted to.
    pub format: OutputFormat,
    /// Whether a colour goes behind the subject.
    pub fill_background: bool,
    /// The colour, when one does.
    pub background_rgb: [u8; 3],
    folder_pick: Option<mpsc::Receiver<Option<PathBuf>>>,
}

/// Something the settings panel asks the app to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormAction {
    /// Open the Settings window (to add a key).
    OpenSettings,
}

impl JobForm {
    /// Starts with `provider` and results going to `out_dir`.
    pub fn new(provider: ProviderId, out_dir: PathBuf) -> Self {
        JobForm {
            provider,
            models: BTreeMap::new(),
            options: BTreeMap::new(),
            drafts: BTreeMap::new(),
            out_dir,
            format: OutputFormat::Png,
            fill_background: false,
            background_rgb: DEFAULT_BACKGROUND,
            folder_pick: None,
        }
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
            Some(self.format)
        };
        if format == Some(OutputFormat::Jpg) && !self.fill_background {
            return Err("JPEG has no transparency: choose a background colour".to_owned());
        }
        Ok(JobSettings {
            provider: self.provider,
            model: self.model().to_owned(),
            options,
            output: OutputSpec {
                dir: self.out_dir.clone(),
                format,
                background: self.background(),
            },
        })
    }

    /// Draws the batch settings: provider, model, options, output.
    pub fn form_ui(&mut self, ui: &mut egui::Ui, setup: &ProviderSetup) -> Option<FormAction> {
        self.receive_folder_pick();
        let mut action = None;
        let heading = ui.heading("Provider");
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
                egui::ComboBox::from_id_salt("format")
                    .selected_text(format_label(self.format))
                    .show_ui(ui, |ui| {
                        for format in [OutputFormat::Png, OutputFormat::Webp, OutputFormat::Jpg] {
                            ui.selectable_value(&mut self.format, format, format_label(format));
                        }
                    })
                    .response
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
        if self.format == OutputFormat::Jpg && !self.fill_background && !info.takes_only_video() {
            ui.colored_label(
                Color32::from_rgb(200, 120, 0),
                "JPEG has no transparency: choose a colour.",
            );
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

fn format_label(format: OutputFormat) -> &'static str {
    match format {
        OutputFormat::Png => "PNG (transparent)",
        OutputFormat::Webp => "WebP (smaller)",
        OutputFormat::Jpg => "JPEG (needs a colour)",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jpeg_without_a_background_is_refused_with_a_reason() {
        let mut form = JobForm::new(ProviderId::Removebg, "/out".into());
        form.format = OutputFormat::Jpg;
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
}
