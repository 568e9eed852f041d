//! The preview of the focused job: the original and its cut-out side by
//! side under a draggable split, over a checkerboard (or the chosen
//! background colour), with zoom and pan; a tab per variation; the system
//! player for video results; and the actions on a result (save a copy,
//! copy to the clipboard, open its folder) with the job's details.
//!
//! Pictures are decoded on worker threads ([`decode`]), uploaded once as
//! textures and kept for the last few jobs shown, so going back and forth
//! between two jobs is instant and memory stays bounded.

mod canvas;
mod decode;
mod files;

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::time::Instant;

use egui::{Color32, RichText, TextureHandle, TextureOptions, Ui, Vec2, vec2};

use crate::imaging::Background;
use crate::jobs::job::{InputKind, Job, JobId, JobInput, JobState};
use crate::ui::view_model::JobRow;
use canvas::{Backdrop, CanvasState, Content, Layer, ZOOM_STEP, Zoom, ZoomAction};
use decode::{Decoded, Decoder, PictureKey, Purpose};
use files::{Errands, Report};

/// How many jobs keep their textures: the one shown and the last few, so
/// flipping between neighbours does not decode again.
const CACHED_JOBS: usize = 3;

/// Room kept under the canvas for the buttons and details, in points.
const BELOW_CANVAS_POINTS: f32 = 250.0;

/// The smallest canvas worth drawing, in points.
const MIN_CANVAS_HEIGHT_POINTS: f32 = 160.0;

/// The preview panel.
pub struct PreviewPanel {
    decoder: Option<Decoder>,
    jobs: HashMap<JobId, JobPictures>,
    /// Jobs with pictures, most recently shown first.
    recent: VecDeque<JobId>,
    /// The job the canvas state belongs to, and whether it showed a result
    /// (the frame changes from the original to the cut-out when it arrives).
    shown: Option<(JobId, bool)>,
    canvas: CanvasState,
    /// A zoom button pressed last frame, for the canvas to apply.
    zoom_asked: Option<ZoomAction>,
    checker: Option<TextureHandle>,
    errands: Errands,
    /// The result being decoded at full size for the clipboard.
    copying: Option<PictureKey>,
    /// The last action's outcome, for the job it concerns.
    report: Option<(JobId, Report)>,
}

/// What the panel holds for one job.
#[derive(Default)]
struct JobPictures {
    slots: HashMap<PathBuf, Slot>,
    /// The result tab on show.
    tab: usize,
}

/// One picture's state.
enum Slot {
    Loading,
    Ready(Ready),
    Failed(String),
}

/// An uploaded picture.
struct Ready {
    texture: TextureHandle,
    /// The file's own size in pixels.
    size: Vec2,
}

impl Default for PreviewPanel {
    fn default() -> Self {
        Self::new()
    }
}

impl PreviewPanel {
    /// An empty panel; workers start on first use.
    pub fn new() -> Self {
        PreviewPanel {
            decoder: None,
            jobs: HashMap::new(),
            recent: VecDeque::new(),
            shown: None,
            canvas: CanvasState::default(),
            zoom_asked: None,
            checker: None,
            errands: Errands::new(),
            copying: None,
            report: None,
        }
    }

    /// Draws the preview of the focused job.
    pub fn preview_ui(&mut self, ui: &mut Ui, row: &JobRow, background: Background) {
        let ctx = ui.ctx().clone();
        self.receive(&ctx);
        self.remember(row.job.id);
        let job = &row.job;
        let outputs = outputs_of(job);
        let tab = {
            let pictures = self.jobs.entry(job.id).or_default();
            pictures.tab = pictures.tab.min(outputs.len().saturating_sub(1));
            pictures.tab
        };
        let output = outputs.get(tab);
        let moving = is_moving_job(job, outputs);
        if !moving {
            self.request_pictures(&ctx, job, outputs);
        }
        // A new job starts at Fit; flipping between variations keeps the
        // zoom, so the same detail can be compared across them.
        let shown = (job.id, output.is_some());
        if self.shown != Some(shown) {
            self.shown = Some(shown);
            self.canvas = CanvasState::default();
        }

        ui.add_space(6.0);
        header_ui(ui, row);
        ui.add_space(4.0);
        state_ui(ui, job);
        if let Some(new_tab) = tabs_ui(ui, job, outputs, tab)
            && let Some(pictures) = self.jobs.get_mut(&job.id)
        {
            pictures.tab = new_tab;
        }
        if moving {
            moving_ui(ui, &mut self.errands, job, output);
        } else {
            self.canvas_area_ui(ui, job, output, background);
        }
        ui.add_space(6.0);
        self.actions_ui(ui, job, output, moving, background);
        self.report_ui(ui, job.id);
        ui.separator();
        egui::ScrollArea::vertical()
            .auto_shrink([false, false])
            .show(ui, |ui| {
                self.details_ui(ui, row, outputs);
            });
    }

    /// Frees what the panel holds for a job that left the queue.
    pub fn forget(&mut self, id: JobId) {
        self.jobs.remove(&id);
        self.recent.retain(|j| *j != id);
        if let Some(decoder) = &self.decoder {
            decoder.retain(|key| key.job != id);
        }
        if self.shown.as_ref().is_some_and(|(job, _)| *job == id) {
            self.shown = None;
        }
        if self.report.as_ref().is_some_and(|(job, _)| *job == id) {
            self.report = None;
        }
        if self.copying.as_ref().is_some_and(|key| key.job == id) {
            self.copying = None;
        }
    }

    /// Puts `id` first among the cached jobs and drops the oldest beyond
    /// [`CACHED_JOBS`], with their textures and queued decodes.
    fn remember(&mut self, id: JobId) {
        if self.recent.front() == Some(&id) {
            return;
        }
        self.recent.retain(|j| *j != id);
        self.recent.push_front(id);
        while self.recent.len() > CACHED_JOBS {
            if let Some(old) = self.recent.pop_back() {
                self.jobs.remove(&old);
            }
        }
        if let Some(decoder) = &self.decoder {
            let recent = &self.recent;
            decoder.retain(|key| recent.contains(&key.job));
        }
    }

    /// Asks for the pictures of this job not asked for yet: the result on
    /// show first, then the original, then the other results.
    fn request_pictures(&mut self, ctx: &egui::Context, job: &Job, outputs: &[PathBuf]) {
        let Some(pictures) = self.jobs.get_mut(&job.id) else {
            return;
        };
        let mut wanted: Vec<&Path> = Vec::new();
        if let Some(selected) = outputs.get(pictures.tab) {
            wanted.push(selected);
        }
        if let JobInput::File { path, .. } = &job.input {
            wanted.push(path);
        }
        wanted.extend(outputs.iter().map(PathBuf::as_path));
        // A retried job drops its old results, so a new result written under
        // the same name is read afresh.
        pictures
            .slots
            .retain(|path, _| wanted.contains(&path.as_path()));
        let decoder = self.decoder.get_or_insert_with(|| {
            let wake = ctx.clone();
            Decoder::new(move || wake.request_repaint())
        });
        for path in wanted {
            if !pictures.slots.contains_key(path) {
                pictures.slots.insert(path.to_owned(), Slot::Loading);
                let key = PictureKey {
                    job: job.id,
                    path: path.to_owned(),
                };
                decoder.request(key, Purpose::Preview);
            }
        }
    }

    /// Takes in finished decodes and errands.
    fn receive(&mut self, ctx: &egui::Context) {
        let finished: Vec<Decoded> = match &self.decoder {
            Some(decoder) => decoder.finished().collect(),
            None => Vec::new(),
        };
        for Decoded {
            key,
            purpose,
            result,
        } in finished
        {
            match purpose {
                Purpose::Preview => {
                    let Some(pictures) = self.jobs.get_mut(&key.job) else {
                        continue;
                    };
                    let slot = match result {
                        Ok(picture) => {
                            let name = format!("preview {} {}", key.job, key.path.display());
                            let [w, h] = picture.original_size;
                            Slot::Ready(Ready {
                                texture: ctx.load_texture(
                                    name,
                                    picture.image,
                                    TextureOptions::LINEAR,
                                ),
                                size: vec2(w as f32, h as f32),
                            })
                        }
                        Err(problem) => Slot::Failed(problem),
                    };
                    pictures.slots.insert(key.path, slot);
                }
                Purpose::Clipboard => {
                    if self.copying.as_ref() != Some(&key) {
                        continue;
                    }
                    self.copying = None;
                    let report = match result {
                        Ok(picture) => {
                            ctx.copy_image(picture.image);
                            Report::Done("Copied the cut-out to the clipboard.".to_owned())
                        }
                        Err(problem) => Report::Problem(format!("Nothing copied: {problem}")),
                    };
                    self.report = Some((key.job, report));
                }
            }
        }
        for (job, report) in self.errands.finished() {
            self.report = Some((job, report));
        }
    }

    fn checker(&mut self, ctx: &egui::Context) -> egui::TextureId {
        self.checker
            .get_or_insert_with(|| {
                ctx.load_texture(
                    "preview checkerboard",
                    canvas::checker_image(),
                    TextureOptions::NEAREST_REPEAT,
                )
            })
            .id()
    }

    fn slot(&self, job: JobId, path: &Path) -> Option<&Slot> {
        self.jobs.get(&job)?.slots.get(path)
    }

    /// The canvas, its zoom controls and whatever it cannot show yet.
    fn canvas_area_ui(
        &mut self,
        ui: &mut Ui,
        job: &Job,
        output: Option<&PathBuf>,
        background: Background,
    ) {
        let backdrop = match background {
            Background::Color([r, g, b]) => Backdrop::Color(Color32::from_rgb(r, g, b)),
            Background::Transparent => Backdrop::Checker(self.checker(ui.ctx())),
        };
        let input_path = match &job.input {
            JobInput::File { path, .. } => Some(path.as_path()),
            JobInput::Url(_) => None,
        };
        let slots = self.jobs.get(&job.id).map(|pictures| &pictures.slots);
        let slot_of = |path: &Path| slots.and_then(|s| s.get(path));
        let before_slot = input_path.and_then(slot_of);
        let after_slot = output.and_then(|p| slot_of(p));
        let result_failed = matches!(after_slot, Some(Slot::Failed(_)));
        let content = Content {
            // Under a result that cannot be shown, the original alone would
            // look like the result; the message says what happened instead.
            before: layer(before_slot).filter(|_| !result_failed),
            after: layer(after_slot),
            backdrop,
            description: match (before_slot, after_slot) {
                (Some(Slot::Ready(_)), Some(Slot::Ready(_))) => {
                    "Before and after: the original on the left, the cut-out on the right"
                }
                (_, Some(Slot::Ready(_))) => "The cut-out",
                (Some(Slot::Ready(_)), _) => "The original",
                _ => "Preview",
            }
            .to_owned(),
        };
        let drawable = content.before.is_some() || content.after.is_some();
        let height = (ui.available_height() - BELOW_CANVAS_POINTS).max(MIN_CANVAS_HEIGHT_POINTS);
        let size = vec2(ui.available_width(), height);
        let asked = self.zoom_asked.take();
        let response = canvas::canvas_ui(ui, &mut self.canvas, &content, size, asked);
        let rect = response.rect;
        if drawable {
            self.zoom_asked = zoom_bar_ui(ui, rect, &self.canvas);
        }

        // What the canvas cannot show, in its middle.
        let done = matches!(job.state, JobState::Done { .. });
        let loading = matches!(after_slot, Some(Slot::Loading))
            || (!drawable && matches!(before_slot, Some(Slot::Loading)));
        if let Some(Slot::Failed(problem)) = after_slot {
            let path = output.map(PathBuf::as_path);
            centered_message_ui(ui, rect, "The result cannot be shown", problem, path);
        } else if loading {
            let spinner = egui::Rect::from_center_size(rect.center(), Vec2::splat(28.0));
            egui::Spinner::new().size(28.0).paint_at(ui, spinner);
        } else if !drawable && !done {
            match before_slot {
                Some(Slot::Failed(problem)) => {
                    centered_message_ui(
                        ui,
                        rect,
                        "The original cannot be shown",
                        problem,
                        input_path,
                    );
                }
                _ if input_path.is_none() => centered_message_ui(
                    ui,
                    rect,
                    "The original is on the web",
                    "Its preview appears here once the result is ready.",
                    None,
                ),
                _ => {}
            }
        }
        if let (Some(Slot::Failed(problem)), Some(Slot::Ready(_))) = (before_slot, after_slot) {
            ui.label(
                RichText::new(format!("The original is not shown: {problem}"))
                    .weak()
                    .small(),
            );
        }
    }

    /// Save as…, Copy, Open output folder.
    fn actions_ui(
        &mut self,
        ui: &mut Ui,
        job: &Job,
        output: Option<&PathBuf>,
        moving: bool,
        background: Background,
    ) {
        let Some(output) = output else {
            return;
        };
        let ctx = ui.ctx().clone();
        ui.horizontal_wrapped(|ui| {
            let saving = self.errands.is_saving();
            let save = ui
                .add_enabled(!saving, egui::Button::new("Save as…"))
                .on_hover_text("Save a copy of this result somewhere else, or in another format (PNG, WebP or JPEG)");
            if save.clicked() {
                self.errands.save_as(&ctx, job.id, output.clone(), background);
            }
            if saving {
                ui.spinner();
            }
            if !moving {
                let readable = matches!(self.slot(job.id, output), Some(Slot::Ready(_)));
                let copying = self.copying.is_some();
                let copy = ui
                    .add_enabled(readable && !copying, egui::Button::new("Copy image"))
                    .on_hover_text("Copy the cut-out, at full size and with its transparency, to paste into another app");
                if copy.clicked() {
                    let key = PictureKey {
                        job: job.id,
                        path: output.clone(),
                    };
                    if let Some(decoder) = &self.decoder {
                        decoder.request(key.clone(), Purpose::Clipboard);
                        self.copying = Some(key);
                    }
                }
                if copying {
                    ui.spinner();
                }
            }
            if let Some(folder) = output.parent() {
                let open = ui
                    .button("Open output folder")
                    .on_hover_text(format!("Show the folder in your file manager: {}", folder.display()));
                if open.clicked() {
                    self.errands.open(&ctx, job.id, folder.to_owned());
                }
            }
        });
    }

    /// The last action's outcome, for the job it concerns.
    fn report_ui(&mut self, ui: &mut Ui, job: JobId) {
        let Some((for_job, report)) = &self.report else {
            return;
        };
        if *for_job != job {
            return;
        }
        let mut dismissed = false;
        ui.horizontal(|ui| {
            let (text, color) = match report {
                Report::Done(text) => (format!("✔ {text}"), ui.visuals().text_color()),
                Report::Problem(text) => (format!("⚠ {text}"), ui.visuals().error_fg_color),
            };
            if ui.small_button("🗙").on_hover_text("Dismiss").clicked() {
                dismissed = true;
            }
            ui.add(egui::Label::new(RichText::new(text).color(color)).wrap());
        });
        if dismissed {
            self.report = None;
        }
    }

    /// File, sizes, provider and model, remote id, credits, outputs.
    fn details_ui(&self, ui: &mut Ui, row: &JobRow, outputs: &[PathBuf]) {
        let job = &row.job;
        // Rows stay put while pictures load, so the grid does not jump.
        let moving = is_moving_job(job, outputs);
        let size_of = |path: &Path| match self.slot(job.id, path) {
            _ if moving => None,
            Some(Slot::Ready(ready)) => Some(format!("{} × {} px", ready.size.x, ready.size.y)),
            Some(Slot::Failed(_)) => Some("unknown".to_owned()),
            Some(Slot::Loading) | None => Some("reading…".to_owned()),
        };
        egui::Grid::new("preview details")
            .num_columns(2)
            .spacing([12.0, 6.0])
            .striped(true)
            .show(ui, |ui| {
                let key = |ui: &mut Ui, text: &str| {
                    ui.label(RichText::new(text).weak());
                };
                key(ui, "Original");
                match &job.input {
                    JobInput::File { path, .. } => {
                        ui.add(egui::Label::new(path.display().to_string()).wrap());
                    }
                    JobInput::Url(url) => {
                        ui.hyperlink_to(url.as_str(), url.as_str());
                    }
                }
                ui.end_row();
                if let JobInput::File { path, .. } = &job.input
                    && let Some(size) = size_of(path)
                {
                    key(ui, "Original size");
                    ui.label(size);
                    ui.end_row();
                }
                let info = job.provider.info();
                key(ui, "Provider");
                ui.label(format!("{} · model {}", info.name, job.model));
                ui.end_row();
                if let Some(remote) = &job.remote_id {
                    key(ui, "Job ID");
                    ui.horizontal(|ui| {
                        ui.add(
                            egui::Label::new(RichText::new(remote).monospace()).selectable(true),
                        )
                        .on_hover_text(format!(
                            "{}'s id for this job: quote it when you contact their support",
                            info.name
                        ));
                        if ui
                            .small_button("Copy")
                            .on_hover_text("Copy the job ID")
                            .clicked()
                        {
                            ui.ctx().copy_text(remote.clone());
                        }
                    });
                    ui.end_row();
                }
                if let Some(credits) = job.credits_charged {
                    key(ui, "Credits charged");
                    ui.label(format_credits(credits));
                    ui.end_row();
                }
                if let Some(elapsed) = row.elapsed(Instant::now()) {
                    key(ui, "Time");
                    ui.label(format!("{:.1} s", elapsed.as_secs_f32()));
                    ui.end_row();
                }
                for (i, output) in outputs.iter().enumerate() {
                    key(
                        ui,
                        if outputs.len() == 1 {
                            "Result"
                        } else if i == 0 {
                            "Results"
                        } else {
                            ""
                        },
                    );
                    ui.vertical(|ui| {
                        ui.add(egui::Label::new(output.display().to_string()).wrap());
                        if let Some(size) = size_of(output) {
                            ui.label(RichText::new(size).weak().small());
                        }
                    });
                    ui.end_row();
                }
            });
        if !job.warnings.is_empty() {
            ui.add_space(8.0);
            ui.label(RichText::new(format!("Notes from {}", job.provider.info().name)).strong());
            for warning in &job.warnings {
                ui.add(
                    egui::Label::new(
                        RichText::new(format!("⚠ {warning}")).color(ui.visuals().warn_fg_color),
                    )
                    .wrap(),
                );
            }
        }
    }
}

/// A picture the canvas can draw, if it is ready.
fn layer(slot: Option<&Slot>) -> Option<Layer<'_>> {
    match slot {
        Some(Slot::Ready(ready)) => Some(Layer {
            texture: &ready.texture,
            size: ready.size,
        }),
        _ => None,
    }
}

/// The job's results, when it has finished.
fn outputs_of(job: &Job) -> &[PathBuf] {
    match &job.state {
        JobState::Done { outputs } => outputs,
        _ => &[],
    }
}

/// Whether the job's results are videos (or other moving pictures), which
/// the system player shows instead of the canvas.
fn is_moving_job(job: &Job, outputs: &[PathBuf]) -> bool {
    job.kind.is_some_and(InputKind::is_video) || outputs.iter().any(|o| files::is_moving_picture(o))
}

/// The file name in large type, with the state beside it.
fn header_ui(ui: &mut Ui, row: &JobRow) {
    let job = &row.job;
    let name = match &job.input {
        JobInput::File { path, .. } => path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        ),
        JobInput::Url(url) => url
            .path_segments()
            .and_then(|mut s| s.next_back())
            .filter(|s| !s.is_empty())
            .map_or_else(|| url.to_string(), str::to_owned),
    };
    ui.horizontal(|ui| {
        ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
            let (text, color) = state_badge(ui, &job.state);
            egui::Frame::new()
                .fill(color.gamma_multiply(0.18))
                .corner_radius(8)
                .inner_margin(egui::Margin::symmetric(8, 2))
                .show(ui, |ui| {
                    ui.label(RichText::new(text).color(color).small().strong())
                });
            ui.with_layout(egui::Layout::left_to_right(egui::Align::Center), |ui| {
                ui.add(egui::Label::new(RichText::new(name).heading().strong()).truncate())
                    .on_hover_text(job.input.display_name());
            });
        });
    });
}

/// A word and a colour for the state badge.
fn state_badge(ui: &Ui, state: &JobState) -> (&'static str, Color32) {
    let visuals = ui.visuals();
    match state {
        JobState::Queued => ("Queued", visuals.weak_text_color()),
        JobState::Done { .. } => ("Done", Color32::from_rgb(0x2e, 0xa0, 0x43)),
        JobState::Failed { .. } => ("Failed", visuals.error_fg_color),
        JobState::Cancelled => ("Cancelled", visuals.warn_fg_color),
        _ => ("Working", visuals.selection.bg_fill),
    }
}

/// Where the job stands, while it is not done: progress, or the error and
/// what to do about it.
fn state_ui(ui: &mut Ui, job: &Job) {
    let provider = job.provider.info().name;
    let working = |ui: &mut Ui, text: String, progress: Option<f32>| {
        let bar = match progress {
            Some(p) => egui::ProgressBar::new(p).text(text),
            None => egui::ProgressBar::new(0.0).text(text).animate(true),
        };
        ui.add(bar);
    };
    match &job.state {
        JobState::Queued => {
            note_ui(
                ui,
                ui.visuals().weak_text_color(),
                "Waiting in the queue.",
                Some("It starts when you press ▶ Start (or Enter) and a slot is free."),
            );
        }
        JobState::Preparing => working(ui, "Preparing…".to_owned(), None),
        JobState::Uploading => working(ui, format!("Uploading to {provider}…"), None),
        JobState::Submitted { .. } => working(
            ui,
            format!("Sent to {provider}; waiting for it to start…"),
            None,
        ),
        JobState::Processing { progress: Some(p) } => {
            working(
                ui,
                format!("{provider} is removing the background… {p}%"),
                Some(f32::from(*p) / 100.0),
            );
        }
        JobState::Processing { progress: None } => {
            working(ui, format!("{provider} is removing the background…"), None);
        }
        JobState::Downloading => working(ui, "Downloading the result…".to_owned(), None),
        JobState::Done { .. } => {}
        JobState::Failed { error, retryable } => {
            let hint = if *retryable {
                "This is usually temporary. Choose “Retry failed” in the left panel to try again."
            } else {
                "Fix the cause above (an API key in ⚙ Settings, the file, or the chosen options), then choose “Retry failed” in the left panel."
            };
            egui::Frame::new()
                .fill(ui.visuals().error_fg_color.gamma_multiply(0.12))
                .stroke(egui::Stroke::new(
                    1.0,
                    ui.visuals().error_fg_color.gamma_multiply(0.6),
                ))
                .corner_radius(6)
                .inner_margin(10)
                .show(ui, |ui| {
                    ui.set_width(ui.available_width());
                    ui.label(
                        RichText::new("⚠ This job failed")
                            .strong()
                            .color(ui.visuals().error_fg_color),
                    );
                    ui.add(egui::Label::new(error.as_str()).wrap().selectable(true));
                    ui.label(RichText::new(hint).weak());
                });
        }
        JobState::Cancelled => {
            note_ui(
                ui,
                ui.visuals().warn_fg_color,
                "This job was cancelled.",
                Some("Choose “Retry failed” in the left panel to run it again."),
            );
        }
    }
    ui.add_space(4.0);
}

fn note_ui(ui: &mut Ui, color: Color32, text: &str, hint: Option<&str>) {
    egui::Frame::new()
        .fill(ui.visuals().faint_bg_color)
        .corner_radius(6)
        .inner_margin(8)
        .show(ui, |ui| {
            ui.set_width(ui.available_width());
            ui.label(RichText::new(text).color(color));
            if let Some(hint) = hint {
                ui.label(RichText::new(hint).weak().small());
            }
        });
}

/// A tab per result when there are several. Returns the tab picked.
fn tabs_ui(ui: &mut Ui, job: &Job, outputs: &[PathBuf], tab: usize) -> Option<usize> {
    if outputs.len() < 2 {
        return None;
    }
    let stem = job.input.stem();
    let mut picked = None;
    ui.horizontal_wrapped(|ui| {
        for (i, output) in outputs.iter().enumerate() {
            let label = files::tab_label(&stem, output, i);
            let name = output
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if ui
                .selectable_label(i == tab, label)
                .on_hover_text(name)
                .clicked()
                && i != tab
            {
                picked = Some(i);
            }
        }
    });
    ui.add_space(2.0);
    picked
}

/// The zoom controls, floating in the canvas's bottom-right corner as in
/// image viewers. Returns what was asked, applied on the next frame once the
/// canvas knows its size.
fn zoom_bar_ui(ui: &mut Ui, canvas_rect: egui::Rect, canvas: &CanvasState) -> Option<ZoomAction> {
    let mut action = None;
    let mut child = ui.new_child(
        egui::UiBuilder::new()
            .max_rect(canvas_rect.shrink(10.0))
            .layout(egui::Layout::right_to_left(egui::Align::Max)),
    );
    egui::Frame::new()
        .fill(child.visuals().window_fill.gamma_multiply(0.92))
        .stroke(child.visuals().window_stroke)
        .corner_radius(8)
        .inner_margin(egui::Margin::symmetric(6, 4))
        .shadow(egui::Shadow {
            offset: [0, 2],
            blur: 8,
            spread: 0,
            color: Color32::from_black_alpha(60),
        })
        .show(&mut child, |ui| {
            // Anchored to the right, this row fills from the right: the
            // controls are added last to first.
            ui.horizontal(|ui| {
                ui.spacing_mut().item_spacing.x = 4.0;
                let button = |text: &str| egui::Button::new(text).frame_when_inactive(false);
                let actual = ui
                    .add(button("100%"))
                    .on_hover_text("Actual size: one image pixel per screen pixel (1 key)");
                if actual.clicked() {
                    action = Some(ZoomAction::ActualSize);
                }
                let fit = ui
                    .add(button("Fit").selected(canvas.zoom == Zoom::Fit))
                    .on_hover_text("Show the whole image (0 key)");
                if fit.clicked() {
                    action = Some(ZoomAction::Fit);
                }
                ui.separator();
                let zoom_in = ui
                    .add(button("+"))
                    .on_hover_text("Zoom in (+ key, or scroll up over the image)");
                if zoom_in.clicked() {
                    action = Some(ZoomAction::By(ZOOM_STEP));
                }
                let percent = RichText::new(format!("{:.0}%", canvas.shown_percent)).monospace();
                ui.add(egui::Label::new(percent)).on_hover_text(
                    "Scroll or pinch over the image to zoom, drag to move it, and \
                     double-click to switch between Fit and 100%.",
                );
                let zoom_out = ui
                    .add(button("−"))
                    .on_hover_text("Zoom out (− key, or scroll down over the image)");
                if zoom_out.clicked() {
                    action = Some(ZoomAction::By(1.0 / ZOOM_STEP));
                }
            });
        });
    if action.is_some() {
        ui.ctx().request_repaint();
    }
    action
}

/// A title, a sentence and maybe a path, centred in `rect`.
fn centered_message_ui(
    ui: &mut Ui,
    rect: egui::Rect,
    title: &str,
    detail: &str,
    path: Option<&Path>,
) {
    // A child that does not move the panel's layout: it sits on the canvas.
    let mut child = ui.new_child(egui::UiBuilder::new().max_rect(rect.shrink(24.0)).layout(
        egui::Layout::centered_and_justified(egui::Direction::TopDown),
    ));
    child.vertical_centered(|ui| {
        ui.add_space((rect.height() / 2.0 - 70.0).max(0.0));
        egui::Frame::new()
            .fill(ui.visuals().window_fill)
            .stroke(ui.visuals().window_stroke)
            .corner_radius(8)
            .inner_margin(14)
            .show(ui, |ui| {
                ui.vertical_centered(|ui| {
                    ui.label(RichText::new(title).strong().size(16.0));
                    ui.add(egui::Label::new(RichText::new(detail).weak()).wrap());
                    if let Some(path) = path {
                        let path = RichText::new(path.display().to_string()).small().weak();
                        ui.add(egui::Label::new(path).wrap());
                    }
                });
            });
    });
}

/// Videos and other moving pictures: a card with "Open" for the system player.
fn moving_ui(ui: &mut Ui, errands: &mut Errands, job: &Job, output: Option<&PathBuf>) {
    let height =
        (ui.available_height() - BELOW_CANVAS_POINTS).clamp(MIN_CANVAS_HEIGHT_POINTS, 260.0);
    let (rect, _) =
        ui.allocate_exact_size(vec2(ui.available_width(), height), egui::Sense::hover());
    ui.painter()
        .rect_filled(rect, 6, ui.visuals().extreme_bg_color);
    let ctx = ui.ctx().clone();
    let mut child = ui.new_child(
        egui::UiBuilder::new()
            .max_rect(rect.shrink(16.0))
            .layout(egui::Layout::top_down(egui::Align::Center)),
    );
    {
        let ui = &mut child;
        {
            ui.add_space((rect.height() / 2.0 - 70.0).max(0.0));
            let (icon, _) = ui.allocate_exact_size(Vec2::splat(56.0), egui::Sense::hover());
            paint_play_icon(ui, icon);
            match output {
                Some(output) => {
                    let name = output
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    ui.label(RichText::new(name).strong());
                    ui.label(
                        RichText::new(
                            "Cutout does not play videos itself; open it in your video player.",
                        )
                        .weak(),
                    );
                    ui.add_space(6.0);
                    let open = ui
                        .add(
                            egui::Button::new(RichText::new("▶ Open").strong())
                                .min_size(vec2(120.0, 30.0)),
                        )
                        .on_hover_text("Open the result in the system's default player");
                    if open.clicked() {
                        errands.open(&ctx, job.id, output.clone());
                    }
                }
                None => {
                    ui.label(RichText::new("Video").strong());
                    ui.label(
                        RichText::new("The result can be opened here once it is ready.").weak(),
                    );
                    if let JobInput::File { path, .. } = &job.input {
                        ui.add_space(6.0);
                        if ui
                            .button("▶ Open the original")
                            .on_hover_text("Play the original in the system's default player")
                            .clicked()
                        {
                            errands.open(&ctx, job.id, path.clone());
                        }
                    }
                }
            }
        }
    }
}

/// A round "play" sign: the video card's picture, drawn rather than taken
/// from an emoji font the desktop may not have.
fn paint_play_icon(ui: &Ui, rect: egui::Rect) {
    let painter = ui.painter();
    let color = ui.visuals().weak_text_color();
    let center = rect.center();
    let radius = rect.width() / 2.0 - 2.0;
    painter.circle_stroke(center, radius, egui::Stroke::new(2.5, color));
    let r = radius * 0.45;
    let points = vec![
        center + vec2(-0.5 * r, -0.87 * r),
        center + vec2(r, 0.0),
        center + vec2(-0.5 * r, 0.87 * r),
    ];
    painter.add(egui::Shape::convex_polygon(
        points,
        color,
        egui::Stroke::NONE,
    ));
}

/// "1 credit", "0.5 credits", "2 credits".
fn format_credits(credits: f64) -> String {
    let number = if credits.fract() == 0.0 {
        format!("{credits:.0}")
    } else {
        format!("{credits}")
    };
    let noun = if credits == 1.0 { "credit" } else { "credits" };
    format!("{number} {noun}")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use egui_kittest::Harness;
    use egui_kittest::kittest::Queryable;

    use super::*;
    use crate::providers::ProviderId;

    #[test]
    fn credits_read_naturally() {
        assert_eq!(format_credits(1.0), "1 credit");
        assert_eq!(format_credits(2.0), "2 credits");
        assert_eq!(format_credits(0.25), "0.25 credits");
    }

    struct Fixture {
        panel: PreviewPanel,
        row: JobRow,
        _dir: tempfile::TempDir,
    }

    fn png(path: &Path, rgba: [u8; 4]) {
        image::RgbaImage::from_pixel(60, 40, image::Rgba(rgba))
            .save_with_format(path, image::ImageFormat::Png)
            .unwrap();
    }

    /// A job on `provider` for `input` (a PNG written under that name) in
    /// `state`, whose outputs are written as small PNGs unless they are
    /// videos.
    fn fixture(provider: ProviderId, input: &str, kind: InputKind, state: JobState) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(input);
        png(&path, [200, 200, 200, 255]);
        let state = match state {
            JobState::Done { outputs } => JobState::Done {
                outputs: outputs
                    .into_iter()
                    .map(|name| {
                        let out = dir.path().join(name);
                        if files::is_moving_picture(&out) {
                            std::fs::write(&out, b"video").unwrap();
                        } else {
                            png(&out, [20, 90, 200, 128]);
                        }
                        out
                    })
                    .collect(),
            },
            other => other,
        };
        let job = Job {
            id: JobId(7),
            input: JobInput::File { path, root: None },
            kind: Some(kind),
            provider,
            model: provider.info().default_model().to_owned(),
            remote_id: Some("rm-4821".to_owned()),
            state,
            credits_charged: Some(1.0),
            warnings: Vec::new(),
        };
        Fixture {
            panel: PreviewPanel::new(),
            row: JobRow {
                job,
                started_at: None,
                finished_at: None,
            },
            _dir: dir,
        }
    }

    fn show(fixture: Fixture) -> Harness<'static, Fixture> {
        Harness::builder()
            .with_size(vec2(520.0, 820.0))
            // The app draws ✔, ⚠ and ▶ with the desktop's fonts; the
            // harness has only egui's bundled font.
            .allow_missing_glyphs()
            .build_ui_state(
                |ui, f: &mut Fixture| {
                    f.panel.preview_ui(ui, &f.row, Background::Transparent);
                },
                fixture,
            )
    }

    /// Steps until every picture of the job is decoded (or failed).
    fn settle(harness: &mut Harness<'static, Fixture>) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            harness.step();
            let f = harness.state();
            let loading = f
                .panel
                .jobs
                .get(&f.row.job.id)
                .is_none_or(|p| p.slots.values().any(|s| matches!(s, Slot::Loading)));
            if !loading {
                harness.step();
                return;
            }
            assert!(Instant::now() < deadline, "pictures never arrived");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn done(outputs: &[&str]) -> JobState {
        JobState::Done {
            outputs: outputs.iter().map(PathBuf::from).collect(),
        }
    }

    #[test]
    fn a_result_with_variations_has_a_tab_each_and_a_click_switches_to_it() {
        let state = done(&["shoe.compose.png", "shoe.shadowTop.png"]);
        let mut harness = show(fixture(
            ProviderId::Removit,
            "shoe.jpg",
            InputKind::ImageFile,
            state,
        ));
        settle(&mut harness);
        harness.get_by_label("Compose");
        harness.get_by_label("Shadow top").click();
        harness.step();
        harness.step();
        let f = harness.state();
        assert_eq!(f.panel.jobs[&JobId(7)].tab, 1);
        assert_eq!(f.panel.shown, Some((JobId(7), true)));
        harness.get_by_label("Save as…");
        harness.get_by_label("Copy image");
        harness.get_by_label("Open output folder");
    }

    #[test]
    fn the_details_show_sizes_provider_remote_id_and_credits() {
        let state = done(&["shoe.png"]);
        let mut harness = show(fixture(
            ProviderId::Removebg,
            "shoe.jpg",
            InputKind::ImageFile,
            state,
        ));
        settle(&mut harness);
        harness.get_by_label("rm-4821");
        harness.get_by_label("1 credit");
        assert_eq!(
            harness.get_all_by_label("60 × 40 px").count(),
            2,
            "original and result"
        );
        harness.get_by_label_contains("remove.bg");
    }

    #[test]
    fn the_split_moves_with_arrow_keys_and_assistive_technology() {
        let state = done(&["shoe.png"]);
        let mut harness = show(fixture(
            ProviderId::Removebg,
            "shoe.jpg",
            InputKind::ImageFile,
            state,
        ));
        settle(&mut harness);
        let label = "Before/after split: original on the left, cut-out on the right";
        harness.get_by_label(label).focus();
        // Focus lands in one frame; the arrow keys are held by the handle
        // from the next (as for egui's own sliders).
        harness.step();
        harness.step();
        harness.key_press(egui::Key::ArrowRight);
        harness.step();
        assert!((harness.state().panel.canvas.split - 0.55).abs() < 1e-4);
        harness.key_press(egui::Key::ArrowRight);
        harness.step();
        assert!((harness.state().panel.canvas.split - 0.6).abs() < 1e-4);
        assert!(
            harness.get_by_label(label).is_focused(),
            "arrows keep the focus"
        );
        harness.key_press(egui::Key::Home);
        harness.step();
        assert_eq!(harness.state().panel.canvas.split, 0.0);
        harness.get_by_label(label).increment_accesskit();
        harness.step();
        assert!((harness.state().panel.canvas.split - 0.05).abs() < 1e-4);
    }

    #[test]
    fn a_video_result_offers_the_system_player_instead_of_a_canvas() {
        let state = done(&["clip.webm"]);
        let mut harness = show(fixture(
            ProviderId::Removebgvideo,
            "clip.mp4",
            InputKind::VideoFile,
            state,
        ));
        harness.run_steps(3);
        harness.get_by_label("▶ Open");
        harness.get_by_label("Save as…");
        assert!(harness.query_by_label("Copy image").is_none());
        assert!(harness.state().panel.decoder.is_none(), "nothing to decode");
    }

    #[test]
    fn a_failed_job_says_what_went_wrong_and_what_to_do() {
        let state = JobState::Failed {
            error: "remove.bg refused the API key; check it in Settings".to_owned(),
            retryable: false,
        };
        let mut harness = show(fixture(
            ProviderId::Removebg,
            "shoe.jpg",
            InputKind::ImageFile,
            state,
        ));
        settle(&mut harness);
        harness.get_by_label_contains("This job failed");
        harness.get_by_label("remove.bg refused the API key; check it in Settings");
        harness.get_by_label_contains("Retry failed");
        assert!(harness.query_by_label("Save as…").is_none());
    }

    #[test]
    fn an_unreadable_result_is_explained_instead_of_drawn() {
        let state = done(&["shoe.png"]);
        let mut fixture = fixture(
            ProviderId::Removebg,
            "shoe.jpg",
            InputKind::ImageFile,
            state,
        );
        let JobState::Done { outputs } = &fixture.row.job.state else {
            unreachable!()
        };
        std::fs::write(&outputs[0], b"\x89PNG garbage").unwrap();
        fixture
            .row
            .job
            .warnings
            .push("variation x was ignored".to_owned());
        let mut harness = show(fixture);
        settle(&mut harness);
        harness.get_by_label("The result cannot be shown");
        harness.get_by_label_contains("damaged");
        harness.get_by_label_contains("variation x was ignored");
    }

    #[test]
    fn textures_are_kept_for_a_few_jobs_and_freed_when_a_job_leaves() {
        let state = done(&["shoe.png"]);
        let mut harness = show(fixture(
            ProviderId::Removebg,
            "shoe.jpg",
            InputKind::ImageFile,
            state,
        ));
        settle(&mut harness);
        for id in 8..12 {
            harness.state_mut().row.job.id = JobId(id);
            settle(&mut harness);
        }
        let panel = &harness.state().panel;
        assert_eq!(panel.jobs.len(), CACHED_JOBS);
        assert!(panel.jobs.contains_key(&JobId(11)));
        assert!(!panel.jobs.contains_key(&JobId(7)));
        harness.state_mut().panel.forget(JobId(11));
        let panel = &harness.state().panel;
        assert!(!panel.jobs.contains_key(&JobId(11)));
        assert!(!panel.recent.contains(&JobId(11)));
    }
}
