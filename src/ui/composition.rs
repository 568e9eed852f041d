//! The look of results, as the side panel's Output section sets it: what
//! goes behind the subject (nothing, a colour or a picture) and, in the
//! "Layout" block, cropping to the subject, the canvas size, where and how
//! large the subject sits on it, a soft drop shadow, and how its edges are
//! refined (specks, smoothing, hardening, colour decontamination), with a
//! small live preview.
//!
//! The preview runs the batch's own [`compose::compose`] on a downscaled
//! cut-out with [`Composition::scaled`], so it shows what the batch writes,
//! only smaller. It renders on a worker thread of its own, at most every
//! [`PREVIEW_EVERY`] while a slider moves, and shows the focused job's
//! cut-out when it is a transparent PNG or WebP, else a sample product.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use egui::{Color32, RichText, Sense, TextureHandle, TextureOptions, Vec2, vec2};
use fast_image_resize as fir;
use image::RgbaImage;

use crate::imaging::compose::{
    self, Anchor, Backdrop, BackdropFit, Canvas, Composition, Length, MAX_CANVAS_PIXELS,
    MAX_CANVAS_SIDE_PX, MAX_LENGTH_PX, Shadow,
};
use crate::imaging::refine::{self, MAX_SMOOTH_PX, Refine};
use crate::imaging::{Background, OutputFormat};
use crate::ui::sentence_case;

/// A cut-out of the sample mug (`assets/samples/mug.jpg`, colour-keyed by
/// the ignored test `generate_the_sample_cut_out` below), previewed until a
/// job has a result of its own.
const SAMPLE_CUTOUT: &[u8] = include_bytes!("../../assets/preview/sample-cutout.png");

/// The preview's longest side, in points: big enough to judge placement,
/// small enough for the side panel.
pub const PREVIEW_SIDE_POINTS: f32 = 240.0;

/// The most often the preview renders while a value changes: fast enough to
/// follow a slider, slow enough not to queue work the user never sees.
pub const PREVIEW_EVERY: Duration = Duration::from_millis(100);

/// The longest side a cut-out is kept at for previews; a fixed canvas is
/// never previewed larger than [`PREVIEW_SIDE_POINTS`] anyway.
const SOURCE_MAX_SIDE_PX: u32 = 1024;

/// The canvas sizes offered by name, as (side, menu text).
const SQUARES: [(u32, &str); 2] = [(2000, "Square 2000 (marketplaces)"), (1000, "Square 1000")];

/// The custom size the canvas picker starts from.
const DEFAULT_CUSTOM_PX: [u32; 2] = [1600, 1200];

/// The margin a crop starts with: room for a soft shadow.
const DEFAULT_MARGIN: Length = Length::Percent { hundredths: 500 };

/// The width of the Output section's label column, so rows line up.
pub const LABEL_WIDTH: f32 = 80.0;

/// What kind of background the user picked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackgroundKind {
    /// Keep the transparency.
    Transparent,
    /// A solid colour.
    Colour,
    /// A picture from this machine.
    Picture,
}

impl BackgroundKind {
    fn label(self) -> &'static str {
        match self {
            BackgroundKind::Transparent => "Transparent",
            BackgroundKind::Colour => "Colour",
            BackgroundKind::Picture => "Picture",
        }
    }

    fn help(self) -> &'static str {
        match self {
            BackgroundKind::Transparent => "Keep the transparency around the subject",
            BackgroundKind::Colour => "Put a solid colour behind the subject",
            BackgroundKind::Picture => {
                "Put a picture behind the subject, such as a studio backdrop"
            }
        }
    }
}

/// The composition controls' state. Values the user switched away from
/// (a colour, a picture, a crop margin, a shadow) are kept, so switching
/// back finds them again.
pub struct LayoutEditor {
    background: BackgroundKind,
    colour: [u8; 3],
    picture: Option<PathBuf>,
    fit: BackdropFit,
    crop: bool,
    margin: Length,
    canvas: Canvas,
    custom_px: [u32; 2],
    anchor: Anchor,
    scale_percent: u8,
    padding: Length,
    shadow_on: bool,
    shadow: Shadow,
    refine: Refine,
    picture_pick: Option<PicturePick>,
    /// Why the last picture dialog showed nothing.
    pick_problem: Option<String>,
    preview: LivePreview,
}

/// A background picture dialog open on its own thread.
struct PicturePick {
    receiver: mpsc::Receiver<Option<PathBuf>>,
    opened: Instant,
}

impl Default for LayoutEditor {
    fn default() -> Self {
        LayoutEditor::new()
    }
}

impl LayoutEditor {
    /// Results as the provider makes them: transparent, uncropped, their
    /// own size. The preview's worker starts when the preview is first
    /// drawn.
    pub fn new() -> Self {
        let mut editor = LayoutEditor {
            background: BackgroundKind::Transparent,
            colour: [255, 255, 255],
            picture: None,
            fit: BackdropFit::Fill,
            crop: false,
            margin: DEFAULT_MARGIN,
            canvas: Canvas::Original,
            custom_px: DEFAULT_CUSTOM_PX,
            anchor: Anchor::Center,
            scale_percent: 100,
            padding: Length::ZERO,
            shadow_on: false,
            shadow: Shadow::default(),
            refine: Refine::default(),
            picture_pick: None,
            pick_problem: None,
            preview: LivePreview::default(),
        };
        editor.set_composition(&Composition::default());
        editor
    }

    /// The composition the controls show.
    pub fn composition(&self) -> Composition {
        Composition {
            background: self.backdrop(),
            crop: self.crop.then_some(self.margin),
            canvas: self.canvas,
            anchor: self.anchor,
            scale_percent: self.scale_percent,
            padding: self.padding,
            shadow: self.shadow_on.then_some(self.shadow),
            refine: self.refine,
        }
    }

    /// Shows `composition` (a preset's, or the settings file's).
    pub fn set_composition(&mut self, composition: &Composition) {
        self.set_backdrop(&composition.background);
        self.crop = composition.crop.is_some();
        if let Some(margin) = composition.crop {
            self.margin = margin;
        }
        self.canvas = composition.canvas;
        if let Some((width, height)) = composition.canvas.fixed_size()
            && !is_named_square(composition.canvas)
        {
            self.custom_px = [width, height];
        }
        self.anchor = composition.anchor;
        self.scale_percent = composition.scale_percent;
        self.padding = composition.padding;
        self.shadow_on = composition.shadow.is_some();
        if let Some(shadow) = composition.shadow {
            self.shadow = shadow;
        }
        self.refine = composition.refine;
    }

    /// The background as it stands; a picture not chosen yet is none.
    pub fn backdrop(&self) -> Backdrop {
        match (self.background, &self.picture) {
            (BackgroundKind::Colour, _) => Backdrop::Color(self.colour),
            (BackgroundKind::Picture, Some(path)) => Backdrop::Image {
                path: path.clone(),
                fit: self.fit,
            },
            _ => Backdrop::Transparent,
        }
    }

    /// Shows `backdrop`, keeping the other kinds' last values.
    pub fn set_backdrop(&mut self, backdrop: &Backdrop) {
        match backdrop {
            Backdrop::Transparent => self.background = BackgroundKind::Transparent,
            Backdrop::Color(rgb) => {
                self.background = BackgroundKind::Colour;
                self.colour = *rgb;
            }
            Backdrop::Image { path, fit } => {
                self.background = BackgroundKind::Picture;
                self.picture = Some(path.clone());
                self.fit = *fit;
            }
        }
    }

    /// The background as providers that compose remotely see it.
    pub fn plain_background(&self) -> Background {
        self.backdrop().plain()
    }

    /// What stops these settings from working with `format`, in words for
    /// the user, if anything.
    pub fn problem(&self, format: Option<OutputFormat>) -> Option<String> {
        let mask = format == Some(OutputFormat::Mask);
        if self.background == BackgroundKind::Picture && self.picture.is_none() && !mask {
            return Some("Choose a background picture, or another background".to_owned());
        }
        if format.is_some_and(OutputFormat::needs_background)
            && self.backdrop() == Backdrop::Transparent
        {
            return Some(
                "JPEG has no transparency: choose a background colour or picture".to_owned(),
            );
        }
        if let Some((width, height)) = self.canvas.fixed_size()
            && u64::from(width) * u64::from(height) > MAX_CANVAS_PIXELS
        {
            return Some(format!(
                "A {width} × {height} px canvas is too large; it can hold at most {} megapixels",
                MAX_CANVAS_PIXELS / 1_000_000
            ));
        }
        self.composition().problem().map(|p| sentence_case(&p))
    }

    /// A few words on the layout, for the collapsed block's header.
    pub fn summary(&self) -> String {
        let mut parts = vec![match self.canvas {
            Canvas::Original => "Original size".to_owned(),
            Canvas::Square { side_px } => format!("Square {side_px}"),
            Canvas::Custom {
                width_px,
                height_px,
            } => format!("{width_px} × {height_px}"),
        }];
        if self.crop {
            parts.push("cropped".to_owned());
        }
        if self.shadow_on {
            parts.push("shadow".to_owned());
        }
        if !self.refine.is_identity() {
            parts.push("edges refined".to_owned());
        }
        parts.join(", ")
    }

    /// The Background row: transparent, a colour, or a picture that fills
    /// or fits the canvas. A mask has no background, so it is off then.
    pub fn background_ui(&mut self, ui: &mut egui::Ui, format: Option<OutputFormat>) {
        self.receive_picture_pick();
        let mask = format == Some(OutputFormat::Mask);
        ui.add_enabled_ui(!mask, |ui| {
            ui.horizontal(|ui| {
                let label = fixed_label_ui(ui, "Background");
                let swatch = ui.spacing().interact_size.x + 2.0 * ui.spacing().item_spacing.x;
                let room = match self.background {
                    BackgroundKind::Colour => swatch,
                    _ => 0.0,
                };
                egui::ComboBox::from_id_salt("background kind")
                    .truncate()
                    .width(ui.available_width() - room)
                    .selected_text(self.background.label())
                    .show_ui(ui, |ui| {
                        for kind in [
                            BackgroundKind::Transparent,
                            BackgroundKind::Colour,
                            BackgroundKind::Picture,
                        ] {
                            ui.selectable_value(&mut self.background, kind, kind.label())
                                .on_hover_text(kind.help());
                        }
                    })
                    .response
                    .labelled_by(label.id)
                    .on_hover_text("What goes behind the subject")
                    .on_disabled_hover_text("A mask is only the subject's shape: no background");
                if self.background == BackgroundKind::Colour {
                    ui.color_edit_button_srgb(&mut self.colour)
                        .on_hover_text("The colour behind the subject");
                }
            });
            if self.background == BackgroundKind::Picture {
                self.picture_ui(ui);
            }
        });
        if let Some(problem) = self.preview.picture_problem(self.picture.as_deref())
            && self.background == BackgroundKind::Picture
            && !mask
        {
            note_ui(ui, ui.visuals().error_fg_color, problem);
        }
    }

    /// The chosen picture, the button to choose one, and Fill / Fit.
    fn picture_ui(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            ui.add_space(LABEL_WIDTH + ui.spacing().item_spacing.x);
            let picking = self.picture_pick.is_some();
            let button = if self.picture.is_some() {
                "Change…"
            } else {
                "Choose picture…"
            };
            if ui
                .add_enabled(!picking, egui::Button::new(button))
                .on_hover_text("Choose the picture to put behind the subject")
                .clicked()
            {
                self.pick_picture(ui.ctx().clone());
            }
            if self.picture.is_some() {
                ui.selectable_value(&mut self.fit, BackdropFit::Fill, "Fill")
                    .on_hover_text("Cover the whole canvas, cutting off what overflows");
                ui.selectable_value(&mut self.fit, BackdropFit::Fit, "Fit")
                    .on_hover_text(
                        "Show the whole picture; the rest stays transparent (white in a JPEG)",
                    );
            }
        });
        if let Some(path) = &self.picture {
            let name = path.file_name().map_or_else(
                || path.display().to_string(),
                |n| n.to_string_lossy().into(),
            );
            ui.horizontal(|ui| {
                ui.add_space(LABEL_WIDTH + ui.spacing().item_spacing.x);
                ui.add(egui::Label::new(RichText::new(name).small()).truncate())
                    .on_hover_text(path.display().to_string());
            });
        }
        if let Some(problem) = &self.pick_problem {
            note_ui(ui, ui.visuals().warn_fg_color, problem);
        }
    }

    fn pick_picture(&mut self, ctx: egui::Context) {
        let (sender, receiver) = mpsc::channel();
        let start = self
            .picture
            .as_deref()
            .and_then(Path::parent)
            .map(Path::to_owned);
        let spawned = std::thread::Builder::new()
            .name("cutout-picture-dialog".to_owned())
            .spawn(move || {
                let mut dialog = rfd::FileDialog::new()
                    .set_title("Choose a background picture")
                    .add_filter("Images", crate::jobs::job::IMAGE_EXTENSIONS);
                if let Some(start) = start {
                    dialog = dialog.set_directory(start);
                }
                let _ = sender.send(dialog.pick_file());
                ctx.request_repaint();
            });
        match spawned {
            Ok(_) => {
                self.pick_problem = None;
                self.picture_pick = Some(PicturePick {
                    receiver,
                    opened: Instant::now(),
                });
            }
            Err(e) => {
                self.pick_problem = Some(format!("The file dialog could not be opened ({e})."));
            }
        }
    }

    fn receive_picture_pick(&mut self) {
        let Some(pick) = &self.picture_pick else {
            return;
        };
        match pick.receiver.try_recv() {
            Ok(Some(path)) => {
                self.picture = Some(std::path::absolute(&path).unwrap_or(path));
                self.picture_pick = None;
            }
            Ok(None) => {
                if pick.opened.elapsed() < crate::ui::intake::DIALOG_UNAVAILABLE_WITHIN {
                    self.pick_problem = Some(
                        "No file dialog is available on this desktop (the XDG desktop portal \
                         is not running), so a background picture cannot be chosen here. \
                         Presets in the settings file can name one."
                            .to_owned(),
                    );
                }
                self.picture_pick = None;
            }
            Err(mpsc::TryRecvError::Disconnected) => self.picture_pick = None,
            Err(mpsc::TryRecvError::Empty) => {}
        }
    }

    /// The "Layout" block: crop, canvas, position, scale, padding, shadow,
    /// edges and the preview, collapsed by default to a one-line summary.
    /// `focused_result` is the focused job's first result, previewed when
    /// it is a transparent cut-out.
    pub fn layout_ui(
        &mut self,
        ui: &mut egui::Ui,
        format: Option<OutputFormat>,
        focused_result: Option<&Path>,
    ) {
        let header = egui::CollapsingHeader::new("Layout")
            .id_salt("layout block")
            .default_open(false)
            .show(ui, |ui| {
                self.controls_ui(ui, format);
                ui.add_space(6.0);
                let source = focused_result.filter(|p| is_previewable(p));
                self.preview
                    .preview_ui(ui, self.composition(), format, source);
            });
        if header.fully_closed() {
            ui.horizontal(|ui| {
                ui.add_space(ui.spacing().indent);
                ui.label(RichText::new(self.summary()).small().weak());
            });
        }
    }

    fn controls_ui(&mut self, ui: &mut egui::Ui, format: Option<OutputFormat>) {
        // Crop.
        ui.checkbox(&mut self.crop, "Crop to subject")
            .on_hover_text(
                "Cut away the empty space around the subject, keeping a margin on every side",
            );
        if self.crop {
            ui.horizontal(|ui| {
                let label = fixed_label_ui(ui, "Margin");
                length_ui(ui, "margin", &mut self.margin, 100.0, label.id).on_hover_text(
                    "Room kept around the subject when cropping; a percentage is of the \
                     subject's longer side",
                );
            });
        }
        ui.add_space(4.0);

        // Canvas.
        ui.horizontal(|ui| {
            let label = fixed_label_ui(ui, "Canvas");
            let custom = Canvas::Custom {
                width_px: self.custom_px[0],
                height_px: self.custom_px[1],
            };
            egui::ComboBox::from_id_salt("canvas size")
                .truncate()
                .width(ui.available_width())
                .selected_text(canvas_label(self.canvas))
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut self.canvas, Canvas::Original, "Original size")
                        .on_hover_text("Each result keeps its own size (plus any padding)");
                    for (side_px, text) in SQUARES {
                        ui.selectable_value(&mut self.canvas, Canvas::Square { side_px }, text)
                            .on_hover_text(format!(
                                "Every result {side_px} × {side_px} px, as marketplaces ask for"
                            ));
                    }
                    let is_custom =
                        !is_named_square(self.canvas) && self.canvas.fixed_size().is_some();
                    if ui
                        .selectable_label(is_custom, "Custom size…")
                        .on_hover_text("Every result the width and height you choose")
                        .clicked()
                        && !is_custom
                    {
                        self.canvas = custom;
                    }
                })
                .response
                .labelled_by(label.id)
                .on_hover_text("The size of every result");
        });
        if let Some((width, height)) = self.canvas.fixed_size()
            && !is_named_square(self.canvas)
        {
            let (mut width, mut height) = (width, height);
            ui.horizontal(|ui| {
                ui.add_space(LABEL_WIDTH + ui.spacing().item_spacing.x);
                let side = 1..=MAX_CANVAS_SIDE_PX;
                let w = ui
                    .add(
                        egui::DragValue::new(&mut width)
                            .range(side.clone())
                            .speed(10),
                    )
                    .on_hover_text("Width in pixels");
                ui.label("×");
                let h = ui
                    .add(egui::DragValue::new(&mut height).range(side).speed(10))
                    .on_hover_text("Height in pixels");
                ui.label("px");
                if w.changed() || h.changed() {
                    self.custom_px = [width, height];
                    self.canvas = Canvas::Custom {
                        width_px: width,
                        height_px: height,
                    };
                }
            });
        }

        // Placement on a fixed canvas.
        let fixed = self.canvas.fixed_size().is_some();
        let why_off = "Choose a canvas size to place the subject on it";
        ui.add_enabled_ui(fixed, |ui| {
            ui.horizontal(|ui| {
                fixed_label_ui(ui, "Position");
                anchor_grid_ui(ui, &mut self.anchor);
            });
            ui.horizontal(|ui| {
                let label = fixed_label_ui(ui, "Scale");
                ui.add(
                    egui::Slider::new(&mut self.scale_percent, 1..=100)
                        .suffix("%")
                        .clamping(egui::SliderClamping::Always),
                )
                .labelled_by(label.id)
                .on_hover_text(
                    "How much of the room inside the padding the subject fills; 100% touches \
                     its edges",
                )
                .on_disabled_hover_text(why_off);
            });
        })
        .response
        .on_disabled_hover_text(why_off);
        ui.horizontal(|ui| {
            let label = fixed_label_ui(ui, "Padding");
            length_ui(ui, "padding", &mut self.padding, 45.0, label.id).on_hover_text(
                "Room between the subject and the canvas edge; a percentage is of the canvas's \
                 shorter side (on the original size, it makes the canvas larger)",
            );
        });
        ui.add_space(4.0);

        // Shadow.
        let mask = format == Some(OutputFormat::Mask);
        ui.add_enabled_ui(!mask, |ui| {
            ui.checkbox(&mut self.shadow_on, "Drop shadow")
                .on_hover_text("A soft shadow under the subject, as if lit from the top left")
                .on_disabled_hover_text("A mask is only the subject's shape: no shadow");
            if self.shadow_on {
                ui.horizontal(|ui| {
                    let label = fixed_label_ui(ui, "Strength");
                    ui.add(
                        egui::Slider::new(&mut self.shadow.opacity_percent, 0..=100).suffix("%"),
                    )
                    .labelled_by(label.id)
                    .on_hover_text("How dark the shadow is");
                });
                ui.horizontal(|ui| {
                    let label = fixed_label_ui(ui, "Softness");
                    let mut softness = softness_of(self.shadow.blur);
                    if ui
                        .add(egui::Slider::new(&mut softness, 0..=100))
                        .labelled_by(label.id)
                        .on_hover_text("How blurred the shadow's edge is")
                        .changed()
                    {
                        self.shadow.blur = blur_for(softness);
                    }
                });
            }
        });
        ui.add_space(4.0);
        self.edges_ui(ui, mask);
    }

    /// The Edges group: how the cut-out's outline is cleaned up before it
    /// is placed (see [`Refine`]).
    fn edges_ui(&mut self, ui: &mut egui::Ui, mask: bool) {
        ui.label("Edges")
            .on_hover_text("Clean up the cut-out's outline before it is placed");
        ui.checkbox(&mut self.refine.remove_speckles, "Remove specks")
            .on_hover_text(
                "Drop stray bits apart from the subject (under 1% of its size) and fill \
                 pinholes in it",
            );
        ui.horizontal(|ui| {
            let label = fixed_label_ui(ui, "Smooth");
            ui.add(
                egui::Slider::new(&mut self.refine.smooth_px, 0..=MAX_SMOOTH_PX)
                    .suffix(" px")
                    .clamping(egui::SliderClamping::Always),
            )
            .labelled_by(label.id)
            .on_hover_text(
                "Round off jagged edges over this many pixels of the result; 0 leaves them \
                 as they are",
            );
        });
        ui.horizontal(|ui| {
            let label = fixed_label_ui(ui, "Harden");
            let mut hardness = f64::from(self.refine.harden_percent) / 100.0;
            if ui
                .add(
                    egui::Slider::new(&mut hardness, 0.0..=1.0)
                        .fixed_decimals(2)
                        .clamping(egui::SliderClamping::Always),
                )
                .labelled_by(label.id)
                .on_hover_text(
                    "Make soft edges crisper: 0 keeps them as they are, 1 makes a near-hard \
                     edge",
                )
                .changed()
            {
                self.refine.harden_percent = refine::hardness_percent(hardness);
            }
        });
        ui.add_enabled_ui(!mask, |ui| {
            ui.checkbox(
                &mut self.refine.decontaminate,
                "Decontaminate colours (no halos)",
            )
            .on_hover_text(
                "Recover the subject's own colours where its edge is see-through, so the old \
                 background does not show as a halo on hair, fur and soft edges",
            )
            .on_disabled_hover_text("A mask is only the subject's shape: no colours");
        });
    }
}

/// A label of the label column's width, for a row's first cell.
pub fn fixed_label_ui(ui: &mut egui::Ui, text: &str) -> egui::Response {
    let size = vec2(LABEL_WIDTH, ui.spacing().interact_size.y);
    let layout = egui::Layout::left_to_right(egui::Align::Center);
    ui.allocate_ui_with_layout(size, layout, |ui| {
        ui.set_min_size(size);
        ui.label(text)
    })
    .inner
}

/// A short coloured note that wraps.
fn note_ui(ui: &mut egui::Ui, colour: Color32, text: &str) {
    ui.add(egui::Label::new(RichText::new(text).small().color(colour)).wrap());
}

/// Whether `canvas` is one of the squares offered by name.
fn is_named_square(canvas: Canvas) -> bool {
    SQUARES
        .iter()
        .any(|(side_px, _)| canvas == Canvas::Square { side_px: *side_px })
}

/// The canvas as the closed picker shows it; the menu says more.
fn canvas_label(canvas: Canvas) -> String {
    match canvas {
        Canvas::Original => "Original size".to_owned(),
        Canvas::Square { side_px } => format!("Square {side_px}"),
        Canvas::Custom { .. } => "Custom size".to_owned(),
    }
}

/// A length as a number and a px / % switch. Switching the unit starts
/// from a sensible value rather than reading 40 px as 40 %.
fn length_ui(
    ui: &mut egui::Ui,
    id_salt: &str,
    length: &mut Length,
    max_percent: f64,
    label: egui::Id,
) -> egui::Response {
    ui.push_id(id_salt, |ui| {
        let mut response = match *length {
            Length::Px(px) => {
                let mut value = px;
                let response = ui
                    .add(egui::DragValue::new(&mut value).range(0..=MAX_LENGTH_PX))
                    .labelled_by(label);
                if response.changed() {
                    *length = Length::Px(value);
                }
                response
            }
            Length::Percent { hundredths } => {
                let mut value = f64::from(hundredths) / 100.0;
                let response = ui
                    .add(
                        egui::DragValue::new(&mut value)
                            .range(0.0..=max_percent)
                            .speed(0.1)
                            .max_decimals(1),
                    )
                    .labelled_by(label);
                if response.changed() {
                    *length = Length::percent(value);
                }
                response
            }
        };
        let in_px = matches!(length, Length::Px(_));
        if ui
            .selectable_label(in_px, "px")
            .on_hover_text("In pixels of the result")
            .clicked()
            && !in_px
        {
            *length = Length::Px(40);
            response.mark_changed();
        }
        if ui
            .selectable_label(!in_px, "%")
            .on_hover_text("As a percentage")
            .clicked()
            && in_px
        {
            *length = Length::percent(5.0);
            response.mark_changed();
        }
        response
    })
    .inner
}

/// What to call a position, for tooltips and assistive technology.
fn anchor_name(anchor: Anchor) -> &'static str {
    match anchor {
        Anchor::TopLeft => "Top left",
        Anchor::Top => "Top",
        Anchor::TopRight => "Top right",
        Anchor::Left => "Left",
        Anchor::Center => "Centre",
        Anchor::Right => "Right",
        Anchor::BottomLeft => "Bottom left",
        Anchor::Bottom => "Bottom (products standing on a shelf)",
        Anchor::BottomRight => "Bottom right",
    }
}

/// Nine small squares, one per position, like a photo editor's anchor
/// picker; the chosen one is filled.
fn anchor_grid_ui(ui: &mut egui::Ui, anchor: &mut Anchor) {
    const CELL: f32 = 18.0;
    ui.vertical(|ui| {
        ui.spacing_mut().item_spacing = vec2(2.0, 2.0);
        for row in Anchor::ALL.chunks(3) {
            ui.horizontal(|ui| {
                for &cell in row {
                    let selected = *anchor == cell;
                    let (rect, response) =
                        ui.allocate_exact_size(Vec2::splat(CELL), Sense::click());
                    let enabled = ui.is_enabled();
                    response.widget_info(|| {
                        egui::WidgetInfo::selected(
                            egui::Role::RadioButton,
                            enabled,
                            selected,
                            anchor_name(cell),
                        )
                    });
                    let response = response.on_hover_text(anchor_name(cell));
                    if response.clicked() {
                        *anchor = cell;
                    }
                    if ui.is_rect_visible(rect) {
                        let visuals = ui.style().interact_selectable(&response, selected);
                        let fill = if selected {
                            ui.visuals().selection.bg_fill
                        } else {
                            visuals.weak_bg_fill
                        };
                        let painter = ui.painter();
                        painter.rect(rect, 3.0, fill, visuals.bg_stroke, egui::StrokeKind::Inside);
                        let dot = if selected {
                            ui.visuals().selection.stroke.color
                        } else {
                            ui.visuals().weak_text_color()
                        };
                        let radius = if selected { 3.5 } else { 2.0 };
                        painter.circle_filled(rect.center(), radius, dot);
                    }
                }
            });
        }
    });
}

/// The Softness slider's value for a blur: 0 to 100, where 100 blurs by
/// 10 % of the subject's size. A blur in pixels (written by hand in the
/// settings file) shows as the default until the slider moves.
fn softness_of(blur: Length) -> u8 {
    match blur {
        Length::Percent { hundredths } => (hundredths / 10).min(100) as u8,
        Length::Px(_) => softness_of(Shadow::default().blur),
    }
}

fn blur_for(softness: u8) -> Length {
    Length::Percent {
        hundredths: u32::from(softness) * 10,
    }
}

/// Whether a result can stand in for the subject in the preview: formats
/// that keep transparency.
fn is_previewable(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("png") || e.eq_ignore_ascii_case("webp"))
}

/// One preview to render.
#[derive(Debug, Clone, PartialEq)]
struct PreviewRequest {
    composition: Composition,
    format: Option<OutputFormat>,
    /// The focused job's cut-out; `None` for the sample.
    source: Option<PathBuf>,
    /// The longest side wanted, in pixels.
    target_px: u32,
}

/// What a preview was rendered from, for the tooltip.
#[derive(Debug, Clone, PartialEq)]
enum SourceUsed {
    /// The sample product.
    Sample,
    /// The focused job's cut-out, by file name.
    Result(String),
    /// The sample, because the focused job's result could not serve.
    SampleInstead {
        /// The result's file name.
        name: String,
        /// Why, as the end of a sentence.
        why: String,
    },
}

impl SourceUsed {
    fn describe(&self) -> String {
        match self {
            SourceUsed::Sample => "a sample product; select a finished job in the queue to \
                                   preview its cut-out instead"
                .to_owned(),
            SourceUsed::Result(name) => format!("the selected job's cut-out, {name}"),
            SourceUsed::SampleInstead { name, why } => {
                format!("a sample product, because the selected job's result {name} {why}")
            }
        }
    }
}

/// A finished render.
struct Rendered {
    request: PreviewRequest,
    outcome: Result<RenderedPicture, String>,
}

struct RenderedPicture {
    image: egui::ColorImage,
    source: SourceUsed,
    /// Why the background picture is not shown, when it is not.
    picture_problem: Option<(PathBuf, String)>,
}

/// The preview's state on the UI side: the texture, what was asked of the
/// worker, and what changed since.
#[derive(Default)]
struct LivePreview {
    worker: Option<PreviewWorker>,
    texture: Option<TextureHandle>,
    source: Option<SourceUsed>,
    /// The last request sent to the worker.
    sent: Option<PreviewRequest>,
    /// The request the texture shows.
    shown: Option<PreviewRequest>,
    /// When the controls first differed from what was last sent.
    changed_at: Option<Instant>,
    problem: Option<String>,
    picture_problem: Option<(PathBuf, String)>,
}

impl LivePreview {
    /// Why the background picture at `path` cannot be used, once a render
    /// has found out.
    fn picture_problem(&self, path: Option<&Path>) -> Option<&str> {
        let (bad, why) = self.picture_problem.as_ref()?;
        (Some(bad.as_path()) == path).then_some(why.as_str())
    }

    fn preview_ui(
        &mut self,
        ui: &mut egui::Ui,
        composition: Composition,
        format: Option<OutputFormat>,
        source: Option<&Path>,
    ) {
        let ctx = ui.ctx().clone();
        self.receive(&ctx);
        let side = PREVIEW_SIDE_POINTS.min(ui.available_width()).max(80.0);
        // Rounded, so resizing the panel does not render on every pixel.
        let target_px = ((side * ctx.pixels_per_point() / 40.0).ceil() * 40.0) as u32;
        let wanted = PreviewRequest {
            composition,
            format,
            source: source.map(Path::to_owned),
            target_px,
        };
        self.send_when_due(&ctx, wanted);

        let tooltip = match &self.source {
            Some(source) => format!(
                "How results look with these settings, shown small on {}.",
                source.describe()
            ),
            None => "How results look with these settings.".to_owned(),
        };
        ui.label("Preview").on_hover_text(&tooltip);
        // The picture fitted into a square of `side`; a 4:3 box until the
        // first render arrives.
        let fitted = match (&self.texture, &self.problem) {
            (Some(texture), None) => {
                let size = texture.size_vec2();
                size * (side / size.x.max(1.0)).min(side / size.y.max(1.0))
            }
            _ => vec2(side, side * 0.75),
        };
        let (area, response) =
            ui.allocate_exact_size(vec2(ui.available_width(), fitted.y + 2.0), Sense::hover());
        let description = match &self.source {
            _ if self.shown != self.sent => "Preview of the layout, updating".to_owned(),
            Some(SourceUsed::Result(name)) => format!("Preview of the layout on {name}"),
            Some(_) => "Preview of the layout on a sample product".to_owned(),
            None => "Preview of the layout, updating".to_owned(),
        };
        response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Image, true, &description));
        response.on_hover_text(&tooltip);
        let shown = egui::Rect::from_center_size(area.center(), fitted);
        let painter = ui.painter();
        match (&self.texture, &self.problem) {
            (_, Some(problem)) => {
                let text = egui::WidgetText::from(RichText::new(problem).small());
                let galley = text.into_galley(
                    ui,
                    Some(egui::TextWrapMode::Wrap),
                    side,
                    egui::TextStyle::Small,
                );
                let at = area.center() - galley.size() / 2.0;
                painter.galley(at, galley, ui.visuals().error_fg_color);
            }
            (Some(texture), None) => {
                painter.image(
                    texture.id(),
                    shown,
                    egui::Rect::from_min_max(egui::pos2(0.0, 0.0), egui::pos2(1.0, 1.0)),
                    Color32::WHITE,
                );
                // The canvas's edge, which a transparent canvas has no
                // other way to show.
                painter.rect_stroke(
                    shown,
                    0.0,
                    egui::Stroke::new(1.0, ui.visuals().widgets.inactive.fg_stroke.color),
                    egui::StrokeKind::Outside,
                );
            }
            (None, None) => {
                painter.rect_filled(shown, 2.0, ui.visuals().faint_bg_color);
                let spinner = egui::Rect::from_center_size(area.center(), Vec2::splat(20.0));
                egui::Spinner::new().size(20.0).paint_at(ui, spinner);
            }
        }
        let size_note = match wanted_canvas(&self.sent) {
            Some((width, height)) => format!("Every result is {width} × {height} px"),
            None => "Every result keeps its own size".to_owned(),
        };
        ui.vertical_centered(|ui| {
            ui.label(RichText::new(size_note).small().weak());
        });
    }

    /// Sends `wanted` to the worker unless it is what was last sent; while
    /// values keep changing, at most every [`PREVIEW_EVERY`].
    fn send_when_due(&mut self, ctx: &egui::Context, wanted: PreviewRequest) {
        if self.sent.as_ref() == Some(&wanted) {
            self.changed_at = None;
            return;
        }
        let changed_at = *self.changed_at.get_or_insert_with(Instant::now);
        let waited = changed_at.elapsed();
        if self.sent.is_some() && waited < PREVIEW_EVERY {
            ctx.request_repaint_after(PREVIEW_EVERY - waited);
            return;
        }
        let worker = self
            .worker
            .get_or_insert_with(|| PreviewWorker::start(ctx.clone()));
        if worker.send(wanted.clone()) {
            self.sent = Some(wanted);
            self.changed_at = None;
        } else {
            self.problem = Some("The preview has stopped; restart Cutout to see it.".to_owned());
        }
    }

    fn receive(&mut self, ctx: &egui::Context) {
        let Some(worker) = &self.worker else {
            return;
        };
        let Some(newest) = worker.results.try_iter().last() else {
            return;
        };
        match newest.outcome {
            Ok(picture) => {
                self.problem = None;
                self.source = Some(picture.source);
                self.picture_problem = picture.picture_problem;
                match &mut self.texture {
                    Some(texture) => texture.set(picture.image, TextureOptions::LINEAR),
                    None => {
                        self.texture = Some(ctx.load_texture(
                            "layout preview",
                            picture.image,
                            TextureOptions::LINEAR,
                        ));
                    }
                }
            }
            Err(problem) => self.problem = Some(problem),
        }
        self.shown = Some(newest.request);
    }
}

/// The fixed canvas of the last request, for the note under the preview.
fn wanted_canvas(sent: &Option<PreviewRequest>) -> Option<(u32, u32)> {
    sent.as_ref()?.composition.canvas.fixed_size()
}

/// The thread that renders previews. Dropping it ends the thread once its
/// current render is done.
struct PreviewWorker {
    requests: mpsc::Sender<PreviewRequest>,
    results: mpsc::Receiver<Rendered>,
}

impl PreviewWorker {
    fn start(ctx: egui::Context) -> PreviewWorker {
        let (requests, inbox) = mpsc::channel::<PreviewRequest>();
        let (report, results) = mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("cutout-layout-preview".to_owned())
            .spawn(move || {
                let mut cache = SourceCache::default();
                while let Ok(mut request) = inbox.recv() {
                    // Only the newest matters.
                    while let Ok(newer) = inbox.try_recv() {
                        request = newer;
                    }
                    let outcome = catch_unwind(AssertUnwindSafe(|| cache.render(&request)))
                        .unwrap_or_else(|_| Err("The preview could not be drawn.".to_owned()));
                    if report.send(Rendered { request, outcome }).is_err() {
                        return;
                    }
                    ctx.request_repaint();
                }
            });
        if let Err(error) = spawned {
            tracing::warn!("cannot start the layout preview: {error}");
        }
        PreviewWorker { requests, results }
    }

    /// Whether the worker took it (it is gone when its thread failed).
    fn send(&self, request: PreviewRequest) -> bool {
        self.requests.send(request).is_ok()
    }
}

/// A cut-out to preview on, downscaled, with its full size.
struct Source {
    image: RgbaImage,
    full_px: (u32, u32),
}

/// What the worker keeps between renders: the sample, the focused result
/// and the background picture, each decoded and downscaled once.
#[derive(Default)]
struct SourceCache {
    sample: Option<Source>,
    result: Option<(PathBuf, Option<SystemTime>, Result<Source, String>)>,
    backdrop: Option<(PathBuf, Result<RgbaImage, String>)>,
}

impl SourceCache {
    fn render(&mut self, request: &PreviewRequest) -> Result<RenderedPicture, String> {
        let composition = &request.composition;
        let mask = request.format == Some(OutputFormat::Mask);
        let picture_path = match &composition.background {
            Backdrop::Image { path, .. } if !mask => Some(path.as_path()),
            _ => None,
        };
        self.load(request.source.as_deref(), picture_path)?;
        let (source, used) = self.source(request.source.as_deref())?;
        let mut picture_problem = None;
        let backdrop = match (picture_path, &self.backdrop) {
            (Some(_), Some((_, Ok(picture)))) => Some(picture),
            (Some(path), Some((_, Err(why)))) => {
                picture_problem = Some((path.to_owned(), why.clone()));
                None
            }
            _ => None,
        };
        let image = render_preview(
            &source.image,
            source.full_px,
            composition,
            request.format,
            backdrop,
            request.target_px,
        );
        Ok(RenderedPicture {
            image,
            source: used,
            picture_problem,
        })
    }

    /// Decodes what `render` needs and is not held yet: the sample, the
    /// focused result (again when the file changed) and the background
    /// picture, downscaled (Fill and Fit depend only on its shape, so a
    /// smaller copy previews the same).
    fn load(&mut self, result: Option<&Path>, picture: Option<&Path>) -> Result<(), String> {
        if self.sample.is_none() {
            let image = image::load_from_memory_with_format(SAMPLE_CUTOUT, image::ImageFormat::Png)
                .map_err(|e| format!("The sample picture could not be read ({e})."))?
                .into_rgba8();
            let full_px = image.dimensions();
            self.sample = Some(Source { image, full_px });
        }
        if let Some(path) = result {
            let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
            let fresh = matches!(&self.result, Some((p, m, _)) if p == path && *m == modified);
            if !fresh {
                self.result = Some((path.to_owned(), modified, load_result(path)));
            }
        }
        if let Some(path) = picture {
            let fresh = matches!(&self.backdrop, Some((p, _)) if p == path);
            if !fresh {
                let loaded = crate::imaging::backdrop_image(path)
                    .map(|full| shrink_to_fit(&full, SOURCE_MAX_SIDE_PX))
                    .map_err(|e| sentence_case(&e.to_string()));
                self.backdrop = Some((path.to_owned(), loaded));
            }
        }
        Ok(())
    }

    /// The focused result when it is a readable transparent cut-out, else
    /// the sample.
    fn source(&self, wanted: Option<&Path>) -> Result<(&Source, SourceUsed), String> {
        let sample = self
            .sample
            .as_ref()
            .ok_or_else(|| "The sample picture could not be read.".to_owned())?;
        let Some(path) = wanted else {
            return Ok((sample, SourceUsed::Sample));
        };
        let name = path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        match &self.result {
            Some((held, _, Ok(source))) if held == path => Ok((source, SourceUsed::Result(name))),
            Some((held, _, Err(why))) if held == path => Ok((
                sample,
                SourceUsed::SampleInstead {
                    name,
                    why: why.clone(),
                },
            )),
            _ => Ok((sample, SourceUsed::Sample)),
        }
    }
}

/// Reads a result for the preview, refusing one without transparency (a
/// result already put on a background shows nothing new).
fn load_result(path: &Path) -> Result<Source, String> {
    let thumbnail = crate::imaging::thumbnail::thumbnail(path, SOURCE_MAX_SIDE_PX)
        .map_err(|_| "cannot be read".to_owned())?;
    let image = thumbnail.image;
    if image.pixels().all(|p| p.0[3] == 255) {
        return Err("has no transparency".to_owned());
    }
    let full_px = image::image_dimensions(path).unwrap_or(image.dimensions());
    Ok(Source { image, full_px })
}

/// Renders `composition` on `cutout` (a downscaled copy of a cut-out
/// `full_px` in size) as a picture no larger than `target_px` a side, the
/// way the batch would write it in `format`, over a checkerboard where it
/// stays transparent. Pure, for tests.
fn render_preview(
    cutout: &RgbaImage,
    full_px: (u32, u32),
    composition: &Composition,
    format: Option<OutputFormat>,
    backdrop: Option<&RgbaImage>,
    target_px: u32,
) -> egui::ColorImage {
    let mask = format == Some(OutputFormat::Mask);
    let geometry;
    let composition = if mask {
        geometry = Composition {
            background: Backdrop::Transparent,
            shadow: None,
            refine: Refine {
                decontaminate: false,
                ..composition.refine
            },
            ..composition.clone()
        };
        &geometry
    } else {
        composition
    };
    // The cut-out's own scale, then as much smaller again as the canvas
    // needs to fit the preview.
    let held = f64::from(cutout.width().max(1)) / f64::from(full_px.0.max(1));
    let at_held = composition.scaled(held);
    let canvas = compose::plan(cutout, &at_held).canvas_px;
    let longest = f64::from(canvas.0.max(canvas.1).max(1));
    let shrink = (f64::from(target_px.max(1)) / longest).min(1.0);
    let factor = held * shrink;
    let composed = if composition.canvas.fixed_size().is_some() {
        // The subject is resampled into its place anyway: keep the detail
        // held and make only the canvas smaller. The crop margin and the
        // edge smoothing are in the cut-out's pixels, so they stay at the
        // held scale.
        let smaller_canvas = Composition {
            crop: at_held.crop,
            refine: at_held.refine,
            ..composition.scaled(factor)
        };
        compose::compose(cutout, &smaller_canvas, backdrop)
    } else {
        let width = ((f64::from(cutout.width()) * shrink).round() as u32).max(1);
        let height = ((f64::from(cutout.height()) * shrink).round() as u32).max(1);
        let smaller = if shrink < 1.0 {
            resize(cutout, width, height)
        } else {
            cutout.clone()
        };
        compose::compose(&smaller, &composition.scaled(factor), backdrop)
    };
    let (width, height) = composed.dimensions();
    let cell = (target_px / 24).max(4);
    let mut pixels = Vec::with_capacity(width as usize * height as usize);
    for (x, y, pixel) in composed.enumerate_pixels() {
        let [r, g, b, a] = pixel.0;
        let under = match format {
            _ if mask => [0, 0, 0],
            Some(OutputFormat::Jpg) => [255, 255, 255],
            _ if (x / cell + y / cell).is_multiple_of(2) => [0xF4; 3],
            _ => [0xD2; 3],
        };
        let colour = if mask {
            [a, a, a]
        } else {
            let blend = |top: u8, bottom: u8| {
                let a = u32::from(a);
                ((u32::from(top) * a + u32::from(bottom) * (255 - a) + 127) / 255) as u8
            };
            [blend(r, under[0]), blend(g, under[1]), blend(b, under[2])]
        };
        pixels.push(Color32::from_rgb(colour[0], colour[1], colour[2]));
    }
    egui::ColorImage::new([width as usize, height as usize], pixels)
}

/// `image` shrunk so its longer side is at most `max_side_px`.
fn shrink_to_fit(image: &RgbaImage, max_side_px: u32) -> RgbaImage {
    let (width, height) = image.dimensions();
    let longest = width.max(height);
    if longest <= max_side_px {
        return image.clone();
    }
    let scale = f64::from(max_side_px) / f64::from(longest);
    resize(
        image,
        ((f64::from(width) * scale).round() as u32).max(1),
        ((f64::from(height) * scale).round() as u32).max(1),
    )
}

/// Resamples with alpha premultiplied (fast_image_resize's default), so
/// transparent pixels' colour never bleeds into the subject's edge.
fn resize(image: &RgbaImage, width: u32, height: u32) -> RgbaImage {
    let fallback =
        || image::imageops::resize(image, width, height, image::imageops::FilterType::Triangle);
    let Ok(source) = fir::images::ImageRef::new(
        image.width(),
        image.height(),
        image.as_raw(),
        fir::PixelType::U8x4,
    ) else {
        return fallback();
    };
    let mut target = fir::images::Image::new(width, height, fir::PixelType::U8x4);
    let options = fir::ResizeOptions::new()
        .resize_alg(fir::ResizeAlg::Convolution(fir::FilterType::Bilinear));
    match fir::Resizer::new().resize(&source, &mut target, &options) {
        Ok(()) => RgbaImage::from_raw(width, height, target.into_vec()).unwrap_or_else(fallback),
        Err(_) => fallback(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgba;

    /// A 400×200 cut-out with an opaque red 100×100 subject at (50, 50).
    fn cutout() -> RgbaImage {
        let mut image = RgbaImage::new(400, 200);
        for y in 50..150 {
            for x in 50..150 {
                image.put_pixel(x, y, Rgba([200, 30, 30, 255]));
            }
        }
        image
    }

    fn pixel(image: &egui::ColorImage, x: usize, y: usize) -> Color32 {
        image.pixels[y * image.size[0] + x]
    }

    #[test]
    fn a_square_canvas_previews_as_a_small_square_with_the_background_colour() {
        let composition = Composition {
            crop: Some(Length::Percent { hundredths: 1000 }),
            canvas: Canvas::Square { side_px: 2000 },
            ..Composition::with_background(Backdrop::Color([255, 255, 255]))
        };
        // Held at half its 800×400 size, as the worker keeps large results.
        let preview = render_preview(&cutout(), (800, 400), &composition, None, None, 240);
        assert_eq!(preview.size, [240, 240]);
        assert_eq!(pixel(&preview, 0, 0), Color32::WHITE);
        assert_eq!(pixel(&preview, 120, 120), Color32::from_rgb(200, 30, 30));
    }

    #[test]
    fn transparency_shows_a_checkerboard_a_jpeg_white_and_a_mask_only_the_shape() {
        let composition = Composition::default();
        let checker = render_preview(&cutout(), (400, 200), &composition, None, None, 400);
        assert_eq!(checker.size, [400, 200]);
        let corners = [pixel(&checker, 0, 0), pixel(&checker, 20, 0)];
        assert_eq!(
            corners,
            [Color32::from_gray(0xF4), Color32::from_gray(0xD2)]
        );
        let jpeg = render_preview(
            &cutout(),
            (400, 200),
            &composition,
            Some(OutputFormat::Jpg),
            None,
            400,
        );
        assert_eq!(pixel(&jpeg, 0, 0), Color32::WHITE);
        let mask = Composition::with_background(Backdrop::Color([0, 0, 255]));
        let mask = render_preview(
            &cutout(),
            (400, 200),
            &mask,
            Some(OutputFormat::Mask),
            None,
            400,
        );
        assert_eq!(pixel(&mask, 0, 0), Color32::BLACK);
        assert_eq!(pixel(&mask, 100, 100), Color32::WHITE);
    }

    #[test]
    fn the_preview_shows_the_refined_edges() {
        let mut specked = cutout();
        specked.put_pixel(300, 20, Rgba([200, 30, 30, 255]));
        let clean = Composition {
            refine: Refine {
                remove_speckles: true,
                ..Refine::default()
            },
            ..Composition::default()
        };
        let red = Color32::from_rgb(200, 30, 30);
        let as_is = render_preview(
            &specked,
            (400, 200),
            &Composition::default(),
            None,
            None,
            400,
        );
        assert_eq!(pixel(&as_is, 300, 20), red);
        let cleaned = render_preview(&specked, (400, 200), &clean, None, None, 400);
        assert_ne!(pixel(&cleaned, 300, 20), red, "the speck is gone");
        assert_eq!(pixel(&cleaned, 100, 100), red, "the subject stays");
    }

    #[test]
    fn the_editor_shows_a_preset_and_gives_it_back_unchanged() {
        let preset = Composition {
            background: Backdrop::Image {
                path: "/backdrops/studio.jpg".into(),
                fit: BackdropFit::Fit,
            },
            crop: Some(Length::Px(40)),
            canvas: Canvas::Square { side_px: 1500 },
            anchor: Anchor::Bottom,
            scale_percent: 80,
            padding: Length::Percent { hundredths: 250 },
            shadow: Some(Shadow::default()),
            refine: Refine {
                smooth_px: 2,
                decontaminate: true,
                ..Refine::default()
            },
        };
        let mut editor = LayoutEditor::new();
        editor.set_composition(&preset);
        assert_eq!(editor.composition(), preset);
        assert_eq!(canvas_label(editor.canvas), "Square 1500");
        assert_eq!(
            editor.summary(),
            "Square 1500, cropped, shadow, edges refined"
        );

        // Switching away and back keeps the picture.
        editor.set_backdrop(&Backdrop::Transparent);
        editor.background = BackgroundKind::Picture;
        assert_eq!(editor.composition(), preset);
    }

    #[test]
    fn jpeg_needs_a_background_and_a_picture_background_needs_a_picture() {
        let mut editor = LayoutEditor::new();
        assert!(
            editor
                .problem(Some(OutputFormat::Jpg))
                .unwrap()
                .starts_with("JPEG has no transparency")
        );
        assert_eq!(editor.problem(Some(OutputFormat::Png)), None);
        editor.background = BackgroundKind::Picture;
        assert!(editor.problem(None).unwrap().contains("background picture"));
        assert_eq!(editor.problem(Some(OutputFormat::Mask)), None);
        editor.background = BackgroundKind::Colour;
        editor.canvas = Canvas::Custom {
            width_px: 16_000,
            height_px: 16_000,
        };
        assert!(editor.problem(None).unwrap().contains("too large"));
    }

    #[test]
    fn the_focused_result_is_previewed_when_it_is_a_transparent_cut_out_else_the_sample() {
        let dir = tempfile::tempdir().unwrap();
        let cut_out = dir.path().join("shoe.png");
        cutout().save(&cut_out).unwrap();
        let on_white = dir.path().join("shoe-white.png");
        RgbaImage::from_pixel(40, 30, Rgba([255, 255, 255, 255]))
            .save(&on_white)
            .unwrap();
        let request = |source: &Path| PreviewRequest {
            composition: Composition::default(),
            format: Some(OutputFormat::Png),
            source: Some(source.to_owned()),
            target_px: 200,
        };
        let mut cache = SourceCache::default();

        let shown = cache.render(&request(&cut_out)).unwrap();
        assert_eq!(shown.source, SourceUsed::Result("shoe.png".to_owned()));
        assert_eq!(shown.image.size, [200, 100]);

        let shown = cache.render(&request(&on_white)).unwrap();
        assert_eq!(
            shown.source,
            SourceUsed::SampleInstead {
                name: "shoe-white.png".to_owned(),
                why: "has no transparency".to_owned()
            }
        );
        assert!(is_previewable(&cut_out) && !is_previewable(Path::new("shoe.jpg")));
    }

    #[test]
    fn the_sample_cut_out_is_a_transparent_product_with_an_opaque_body() {
        let sample = image::load_from_memory(SAMPLE_CUTOUT).unwrap().into_rgba8();
        let transparent = sample.pixels().filter(|p| p.0[3] == 0).count();
        let opaque = sample.pixels().filter(|p| p.0[3] == 255).count();
        let total = sample.pixels().len();
        assert!(transparent > total / 2, "mostly background: {transparent}");
        assert!(opaque > total / 10, "a solid product: {opaque}");
    }

    /// Colour-keys `mug.jpg` (a saturated product on a light grey sweep)
    /// into the sample cut-out: the mug is every pixel more colourful than
    /// the grey backdrop and its soft shadow, shrunk by a pixel to drop the
    /// light JPEG fringe, then feathered by a pixel; edge pixels take the
    /// colour of the mug beside them.
    #[test]
    #[ignore = "writes assets/preview/sample-cutout.png; run by hand after changing the sample"]
    fn generate_the_sample_cut_out() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let photo = image::open(root.join("assets/samples/mug.jpg"))
            .unwrap()
            .into_rgb8();
        let (width, height) = photo.dimensions();
        let colourful = |x: i64, y: i64| {
            if x < 0 || y < 0 || x >= i64::from(width) || y >= i64::from(height) {
                return false;
            }
            let [r, g, b] = photo.get_pixel(x as u32, y as u32).0;
            r.max(g).max(b) - r.min(g).min(b) > 40
        };
        let around =
            |x: i64, y: i64| (-1..=1).flat_map(move |dy| (-1..=1).map(move |dx| (x + dx, y + dy)));
        let inside = |x: i64, y: i64| around(x, y).all(|(nx, ny)| colourful(nx, ny));
        let mut cutout = RgbaImage::new(width, height);
        for (x, y, out) in cutout.enumerate_pixels_mut() {
            let (x, y) = (i64::from(x), i64::from(y));
            let solid: Vec<(i64, i64)> = around(x, y).filter(|&(nx, ny)| inside(nx, ny)).collect();
            if solid.is_empty() {
                continue;
            }
            let alpha = (solid.len() * 255 / 9) as u8;
            let colour = if inside(x, y) {
                photo.get_pixel(x as u32, y as u32).0
            } else {
                let mut sum = [0_usize; 3];
                for &(nx, ny) in &solid {
                    let p = photo.get_pixel(nx as u32, ny as u32).0;
                    for c in 0..3 {
                        sum[c] += usize::from(p[c]);
                    }
                }
                sum.map(|c| (c / solid.len()) as u8)
            };
            *out = Rgba([colour[0], colour[1], colour[2], alpha]);
        }
        let options = crate::imaging::encode::EncodeOptions::default();
        let png = crate::imaging::encode::encode(&cutout, &options).unwrap();
        std::fs::write(root.join("assets/preview/sample-cutout.png"), png).unwrap();
    }
}
