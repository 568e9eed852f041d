//! The first-run welcome: a short window that explains the two kinds of
//! provider (this computer: free and private; a cloud service: best
//! quality, uses credits), lets the user pick one as the default, fetch the
//! local model or enter a key right there, and then gets out of the way to
//! the drop zone. Once finished or skipped it is recorded in the settings
//! (`welcome_seen`) and only comes back from Help → "Welcome…".

use egui::RichText;

use crate::jobs::job::InputKind;
use crate::local::catalogue::DEFAULT_MODEL;
use crate::providers::ProviderId;
use crate::secrets::KeychainStatus;
use crate::ui::local::LocalPanel;
use crate::ui::settings::KeyEditor;
use crate::ui::setup::ProviderSetup;

/// The welcome's width: wide enough for the two choices side by side.
const WIDTH: f32 = 620.0;

/// The icon beside the heading.
const ICON_PNG: &[u8] = include_bytes!("../../assets/icon/png/cutout-128.png");

/// Who does the work, as the welcome offers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Choice {
    /// The local engine.
    ThisComputer,
    /// One of the cloud providers that take image files.
    Cloud,
}

/// What the user decided; the app records it in the settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WelcomeAction {
    /// "Start using Cutout": this provider becomes the default for images.
    Finish(ProviderId),
    /// "Skip": nothing changes, and the welcome does not come back.
    Skip,
}

/// The welcome window's state: open or not, and what is picked so far.
pub struct Welcome {
    open: bool,
    choice: Choice,
    cloud: ProviderId,
    keys: KeyEditor,
    /// The app icon beside the heading, made on first show.
    icon: Option<egui::TextureHandle>,
}

impl Welcome {
    /// The welcome, shown at once when `open` (a first run).
    pub fn new(open: bool) -> Welcome {
        Welcome {
            open,
            choice: Choice::ThisComputer,
            cloud: cloud_providers().next().unwrap_or(ProviderId::Removebg),
            keys: KeyEditor::default(),
            icon: None,
        }
    }

    /// Shows it again (Help → "Welcome…"), starting from `current`, the
    /// provider the side panel has now.
    pub fn reopen(&mut self, current: ProviderId) {
        self.open = true;
        if current.info().runs_on_this_machine {
            self.choice = Choice::ThisComputer;
        } else if cloud_providers().any(|id| id == current) {
            self.choice = Choice::Cloud;
            self.cloud = current;
        }
    }

    /// Draws the welcome over the window while open; returns what the user
    /// chose when they leave it. Keys typed go to `setup` (the keychain),
    /// a model download to `local`.
    pub fn welcome_ui(
        &mut self,
        ctx: &egui::Context,
        setup: &mut ProviderSetup,
        local: &mut LocalPanel,
    ) -> Option<WelcomeAction> {
        if !self.open {
            return None;
        }
        let mut action = None;
        egui::Modal::new(egui::Id::unique("welcome")).show(ctx, |ui| {
            ui.set_width(WIDTH);
            action = self.contents_ui(ui, setup, local);
        });
        if action.is_some() {
            self.open = false;
            self.keys.forget_typing();
        }
        action
    }

    fn contents_ui(
        &mut self,
        ui: &mut egui::Ui,
        setup: &mut ProviderSetup,
        local: &mut LocalPanel,
    ) -> Option<WelcomeAction> {
        ui.spacing_mut().item_spacing.y = 8.0;
        let icon = self
            .icon
            .get_or_insert_with(|| icon_texture(ui.ctx()))
            .clone();
        ui.horizontal(|ui| {
            ui.add(egui::Image::new(&icon).fit_to_exact_size(egui::vec2(48.0, 48.0)));
            ui.heading("Welcome to Cutout");
        });
        ui.label(
            "Cutout removes the background from your photos, a whole folder at a time. \
             First, choose who does the work. You can change this any time in ⚙ Settings.",
        );
        ui.add_space(4.0);
        ui.columns(2, |columns| {
            choice_card_ui(
                &mut columns[0],
                &mut self.choice,
                Choice::ThisComputer,
                "💻 On this computer",
                "Free and private",
                "Your photos never leave this computer and nothing is charged. The model is \
                 a one-time download; each photo then takes a few seconds.",
            );
            choice_card_ui(
                &mut columns[1],
                &mut self.choice,
                Choice::Cloud,
                "☁ A cloud service",
                "Best quality, uses credits",
                "Each photo is sent to the service you pick, which sends back the cut-out. \
                 Every image uses credits from your account there; you need its API key.",
            );
        });
        ui.add_space(4.0);
        match self.choice {
            Choice::ThisComputer => {
                ui.label(RichText::new("The local model").strong());
                local.model_download_ui(ui, DEFAULT_MODEL);
                ui.label(
                    RichText::new(
                        "You can also skip this: the model downloads by itself with your \
                         first batch.",
                    )
                    .weak(),
                );
            }
            Choice::Cloud => self.cloud_ui(ui, setup),
        }
        ui.add_space(6.0);
        ui.separator();
        let provider = match self.choice {
            Choice::ThisComputer => ProviderId::Local,
            Choice::Cloud => self.cloud,
        };
        let (skip, start) = egui::Sides::new().show(
            ui,
            |ui| {
                ui.button("Skip")
                    .on_hover_text("Close this and keep the current choice")
                    .clicked()
            },
            |ui| {
                let start = egui::Button::new(RichText::new("Start using Cutout ▶").strong());
                ui.add(start)
                    .on_hover_text(format!(
                        "Use {} for new batches of images",
                        provider.info().name
                    ))
                    .clicked()
            },
        );
        if start {
            Some(WelcomeAction::Finish(provider))
        } else if skip {
            Some(WelcomeAction::Skip)
        } else {
            None
        }
    }

    /// The cloud provider picker and its key fields.
    fn cloud_ui(&mut self, ui: &mut egui::Ui, setup: &mut ProviderSetup) {
        ui.horizontal(|ui| {
            ui.label(RichText::new("Service").strong());
            egui::ComboBox::from_id_salt("welcome cloud provider")
                .selected_text(self.cloud.info().name)
                .show_ui(ui, |ui| {
                    for id in cloud_providers() {
                        ui.selectable_value(&mut self.cloud, id, id.info().name)
                            .on_hover_text(id.info().summary);
                    }
                });
        });
        ui.label(RichText::new(self.cloud.info().summary).weak());
        if let Some(KeychainStatus::Unavailable { reason, .. }) = setup.keychain_status() {
            ui.colored_label(
                ui.visuals().warn_fg_color,
                format!(
                    "Your system keychain is not available ({reason}), so a key is kept only \
                     until Cutout closes. ⚙ Settings says how to fix this."
                ),
            );
        }
        self.keys.provider_keys_ui(ui, setup, self.cloud);
        if setup.keychain_status() == Some(&KeychainStatus::Available) {
            ui.label(
                RichText::new(
                    "Keys are kept in your system keychain, never in a file, and are only \
                     sent to their own service.",
                )
                .weak(),
            );
        }
    }
}

/// The app icon as a texture (a 128 px PNG built into the binary).
fn icon_texture(ctx: &egui::Context) -> egui::TextureHandle {
    let image = match image::load_from_memory(ICON_PNG) {
        Ok(decoded) => {
            let rgba = decoded.to_rgba8();
            let size = [rgba.width() as usize, rgba.height() as usize];
            egui::ColorImage::from_rgba_unmultiplied(size, rgba.as_raw())
        }
        // Cannot happen with the file built in; a blank square is harmless.
        Err(_) => egui::ColorImage::filled([1, 1], egui::Color32::TRANSPARENT),
    };
    ctx.load_texture("welcome icon", image, egui::TextureOptions::LINEAR)
}

/// The providers offered under "A cloud service": those that run
/// elsewhere and take image files, in the usual order.
fn cloud_providers() -> impl Iterator<Item = ProviderId> {
    ProviderId::ALL.into_iter().filter(|id| {
        let info = id.info();
        !info.runs_on_this_machine && info.accepts.contains(&InputKind::ImageFile)
    })
}

/// One of the two big choices: a framed card, highlighted when picked,
/// that picks itself when clicked anywhere.
fn choice_card_ui(
    ui: &mut egui::Ui,
    choice: &mut Choice,
    this: Choice,
    title: &str,
    tagline: &str,
    text: &str,
) {
    let picked = *choice == this;
    let visuals = ui.visuals();
    let stroke = if picked {
        egui::Stroke::new(2.0, visuals.selection.stroke.color)
    } else {
        visuals.widgets.noninteractive.bg_stroke
    };
    let fill = if picked {
        visuals.selection.bg_fill.gamma_multiply(0.25)
    } else {
        visuals.faint_bg_color
    };
    let card = egui::Frame::group(ui.style())
        .stroke(stroke)
        .fill(fill)
        .inner_margin(10.0)
        .show(ui, |ui| {
            ui.set_width(ui.available_width());
            // `columns` justifies; prose reads better ragged.
            ui.with_layout(egui::Layout::top_down(egui::Align::Min), |ui| {
                ui.radio_value(choice, this, RichText::new(title).heading());
                ui.label(RichText::new(tagline).strong());
                ui.label(text);
            });
        });
    let click = ui.interact(
        card.response.rect,
        egui::Id::unique(("welcome card", title)),
        egui::Sense::click(),
    );
    if click.clicked() {
        *choice = this;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cloud_choice_lists_only_services_that_take_image_files() {
        let offered: Vec<ProviderId> = cloud_providers().collect();
        assert!(!offered.contains(&ProviderId::Local));
        assert!(
            !offered.contains(&ProviderId::Removebgvideo),
            "a video-only service cannot be the default for photos"
        );
        assert!(offered.contains(&ProviderId::Removebg), "{offered:?}");
    }
}
