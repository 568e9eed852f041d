//! The queue list and the status bar. The list stays smooth with thousands of
//! jobs: only the rows on screen are laid out (every row has the same height,
//! so the scroll area can tell which those are), and only they ask for
//! thumbnails, which are decoded off the UI thread and uploaded once.
//!
//! Like every panel, it only draws and sends commands: Cancel, Retry and
//! Remove go to the engine, and the row changes when the engine says so.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use egui::{
    Align, Align2, Color32, CornerRadius, FontId, Layout, Rect, RichText, Sense, Stroke, UiBuilder,
    vec2,
};

use crate::jobs::job::{JobId, JobInput, JobState};
use crate::jobs::{Command, CommandSender};
use crate::ui::selection::{ClickMode, Selection};
use crate::ui::thumbnails::{Thumbnail, ThumbnailLoader};
use crate::ui::view_model::{Counts, JobRow, QueueView};

/// Height of every row. Fixed, because the scroll area finds the visible
/// rows by dividing the scroll offset by it.
const ROW_HEIGHT: f32 = 64.0;

/// The thumbnail's box on screen.
const THUMB_SIDE: f32 = 48.0;

/// Thumbnails are decoded at twice the box size, so they stay sharp on
/// high-DPI screens.
const THUMB_DECODE_SIDE_PX: u32 = 96;

/// Thumbnail textures kept for rows off screen; beyond this, the ones seen
/// longest ago are freed (and decoded again if the user scrolls back).
const MAX_THUMB_TEXTURES: usize = 400;

/// Redraw rate for the moving "working" bars.
const ANIMATION_FRAME: Duration = Duration::from_millis(33);

/// Size of the secondary lines in a row (provider, outcome, hint).
const DETAIL_TEXT_SIZE: f32 = 12.0;

/// Space around a row's contents.
const ROW_PADDING: f32 = 10.0;

/// The queue list: what it remembers between frames is only thumbnails.
pub struct QueuePanel {
    /// Started on the first frame, when there is a context to wake.
    loader: Option<ThumbnailLoader>,
    thumbs: HashMap<JobId, Thumb>,
    /// Counts frames, to free the thumbnails seen longest ago first.
    frame: u64,
}

/// What a row shows in its thumbnail box.
enum Thumb {
    /// Asked for; a worker is decoding it.
    Loading,
    /// On the GPU. Dropping the handle frees the texture.
    Ready {
        texture: egui::TextureHandle,
        last_seen_frame: u64,
    },
    /// A format Cutout cannot draw (the provider may still take it).
    Unsupported,
    /// Missing or corrupt; why, for the tooltip.
    Unreadable(String),
}

/// What a click in the list asks for, applied once the rows are drawn.
enum RowAction {
    Select(JobId, ClickMode),
    Send(Command),
    Open(PathBuf),
}

impl Default for QueuePanel {
    fn default() -> Self {
        Self::new()
    }
}

impl QueuePanel {
    /// An empty panel; the thumbnail workers start with the first frame.
    pub fn new() -> Self {
        QueuePanel {
            loader: None,
            thumbs: HashMap::new(),
            frame: 0,
        }
    }

    /// Draws the queue: one row per job, with thumbnail, name, provider,
    /// state, progress, time and actions. Clicks select (Ctrl/Cmd toggles,
    /// Shift extends); buttons and the right-click menu send commands.
    pub fn queue_ui(
        &mut self,
        ui: &mut egui::Ui,
        queue: &QueueView,
        selection: &mut Selection,
        commands: &CommandSender,
    ) {
        self.frame += 1;
        self.receive_thumbnails(ui.ctx());
        let rows = queue.rows();
        let palette = Palette::new(ui.visuals());
        let now = Instant::now();
        let mut actions = Vec::new();
        let mut visible = HashSet::new();
        let mut animating = false;
        let spacing = ui.spacing().item_spacing;
        ui.scope(|ui| {
            // Rows touch; a hairline separates them.
            ui.spacing_mut().item_spacing.y = 0.0;
            egui::ScrollArea::vertical()
                .auto_shrink([false, false])
                .show_rows(ui, ROW_HEIGHT, rows.len(), |ui, range| {
                    for row in &rows[range] {
                        visible.insert(row.job.id);
                        self.request_thumbnail(row);
                        let look = RowLook {
                            selected: selection.contains(row.job.id),
                            now,
                            palette: &palette,
                            spacing,
                        };
                        animating |= self.row_ui(ui, row, &look, queue, selection, &mut actions);
                    }
                });
        });
        if animating {
            ui.ctx().request_repaint_after(ANIMATION_FRAME);
        }
        self.settle_thumbnails(&visible);
        for action in actions {
            match action {
                RowAction::Select(id, mode) => {
                    let order: Vec<JobId> = rows.iter().map(|r| r.job.id).collect();
                    selection.click(id, mode, &order);
                }
                RowAction::Send(command) => commands.send(command),
                RowAction::Open(path) => open_in_background(path),
            }
        }
    }

    /// Frees the thumbnail of a job that left the queue.
    pub fn forget(&mut self, id: JobId) {
        self.thumbs.remove(&id);
    }

    /// Uploads finished thumbnails, each once, for rows still waiting.
    fn receive_thumbnails(&mut self, ctx: &egui::Context) {
        let loader = self.loader.get_or_insert_with(|| {
            let wake = ctx.clone();
            ThumbnailLoader::new(THUMB_DECODE_SIDE_PX, move || wake.request_repaint())
        });
        while let Some((id, thumbnail)) = loader.try_next() {
            let Some(slot) = self.thumbs.get_mut(&id) else {
                continue; // The job left the queue meanwhile.
            };
            *slot = match thumbnail {
                Thumbnail::Image(image) => Thumb::Ready {
                    texture: ctx.load_texture(
                        format!("thumbnail {id}"),
                        image,
                        egui::TextureOptions::LINEAR,
                    ),
                    last_seen_frame: self.frame,
                },
                Thumbnail::Unsupported => Thumb::Unsupported,
                Thumbnail::Unreadable(why) => Thumb::Unreadable(why),
            };
        }
    }

    /// Asks for the thumbnail of a visible row that has none yet.
    fn request_thumbnail(&mut self, row: &JobRow) {
        let id = row.job.id;
        if let Some(Thumb::Ready {
            last_seen_frame, ..
        }) = self.thumbs.get_mut(&id)
        {
            *last_seen_frame = self.frame;
            return;
        }
        if self.thumbs.contains_key(&id) {
            return;
        }
        let Some(path) = thumbnail_source(row) else {
            return;
        };
        if let Some(loader) = &self.loader {
            loader.request(id, path.to_owned());
            self.thumbs.insert(id, Thumb::Loading);
        }
    }

    /// Withdraws requests for rows that scrolled away, and frees the
    /// textures seen longest ago once there are too many.
    fn settle_thumbnails(&mut self, visible: &HashSet<JobId>) {
        if let Some(loader) = &self.loader {
            for id in loader.keep_only(|id| visible.contains(&id)) {
                if matches!(self.thumbs.get(&id), Some(Thumb::Loading)) {
                    self.thumbs.remove(&id);
                }
            }
        }
        let ready = self
            .thumbs
            .values()
            .filter(|t| matches!(t, Thumb::Ready { .. }))
            .count();
        if ready <= MAX_THUMB_TEXTURES {
            return;
        }
        let mut idle: Vec<(u64, JobId)> = self
            .thumbs
            .iter()
            .filter_map(|(id, thumb)| match thumb {
                Thumb::Ready {
                    last_seen_frame, ..
                } if !visible.contains(id) => Some((*last_seen_frame, *id)),
                _ => None,
            })
            .collect();
        idle.sort_unstable();
        // Free a quarter more than needed, so this does not run every frame.
        let excess = ready - MAX_THUMB_TEXTURES + MAX_THUMB_TEXTURES / 4;
        for (_, id) in idle.into_iter().take(excess) {
            self.thumbs.remove(&id);
        }
    }

    /// Draws one row; returns whether it shows a moving bar.
    fn row_ui(
        &self,
        ui: &mut egui::Ui,
        row: &JobRow,
        look: &RowLook<'_>,
        queue: &QueueView,
        selection: &Selection,
        actions: &mut Vec<RowAction>,
    ) -> bool {
        let job = &row.job;
        let width = ui.available_width();
        let (rect, response) = ui.allocate_exact_size(vec2(width, ROW_HEIGHT), Sense::click());
        let name = short_name(&job.input);
        response.widget_info(|| {
            egui::WidgetInfo::selected(
                egui::Role::ListItem,
                true,
                look.selected,
                format!("{name}, {}", state_label(&job.state)),
            )
        });
        if !ui.is_rect_visible(rect) {
            return false;
        }
        let palette = look.palette;
        let painter = ui.painter_at(rect);
        if look.selected {
            painter.rect_filled(rect, 0.0, palette.selected_fill);
            painter.rect_filled(
                Rect::from_min_size(rect.min, vec2(3.0, rect.height())),
                0.0,
                palette.accent,
            );
        } else if response.hovered() {
            painter.rect_filled(rect, 0.0, palette.hover_fill);
        }
        painter.hline(rect.x_range(), rect.bottom() - 0.5, palette.separator);

        // Columns, right to left: actions, then state with elapsed time; the
        // name takes what is left. Narrow lists shrink the state column first.
        let inner = rect.shrink2(vec2(ROW_PADDING, 0.0));
        let actions_width = 104.0;
        let state_width = (inner.width() * 0.3).clamp(150.0, 240.0);
        let thumb_rect = Rect::from_center_size(
            egui::pos2(inner.left() + THUMB_SIDE / 2.0, inner.center().y),
            egui::Vec2::splat(THUMB_SIDE),
        );
        let actions_rect = Rect::from_min_max(
            egui::pos2(inner.right() - actions_width, inner.top()),
            inner.max,
        );
        let state_rect = Rect::from_min_max(
            egui::pos2(actions_rect.left() - state_width, inner.top()),
            egui::pos2(actions_rect.left() - 16.0, inner.bottom()),
        );
        let main_rect = Rect::from_min_max(
            egui::pos2(thumb_rect.right() + 12.0, inner.top()),
            egui::pos2(state_rect.left() - 16.0, inner.bottom()),
        );

        self.thumbnail_ui(ui, thumb_rect, row, palette);
        column_ui(
            ui,
            main_rect,
            look.spacing,
            Layout::top_down(Align::Min),
            |ui| {
                details_ui(ui, row, &name, palette);
            },
        );
        let mut animating = false;
        let elapsed = row.elapsed(look.now);
        column_ui(
            ui,
            state_rect,
            look.spacing,
            Layout::top_down(Align::Min),
            |ui| {
                animating = state_ui(ui, &job.state, elapsed, palette);
            },
        );
        column_ui(
            ui,
            actions_rect,
            look.spacing,
            Layout::right_to_left(Align::Center),
            |ui| row_buttons_ui(ui, row, actions),
        );

        if response.clicked() {
            let mode = click_mode(ui.input(|i| i.modifiers));
            actions.push(RowAction::Select(job.id, mode));
        }
        if response.double_clicked()
            && let Some(output) = first_output(&job.state)
        {
            actions.push(RowAction::Open(output.to_owned()));
        }
        response.context_menu(|ui| {
            context_menu_ui(ui, row, look.selected, queue, selection, actions);
        });
        animating
    }

    fn thumbnail_ui(&self, ui: &egui::Ui, rect: Rect, row: &JobRow, palette: &Palette) {
        let painter = ui.painter();
        let radius = CornerRadius::same(6);
        painter.rect_filled(rect, radius, palette.thumb_fill);
        let id = row.job.id;
        let kind = row.job.kind.or_else(|| row.job.input.kind(false));
        if kind.is_some_and(|k| k.is_video()) {
            paint_icon(painter, rect, Icon::Video, palette.weak);
            tooltip_at(ui, rect, id, "Video");
            return;
        }
        if let JobInput::Url(_) = row.job.input {
            paint_icon(painter, rect, Icon::Link, palette.weak);
            tooltip_at(ui, rect, id, "Image from the web");
            return;
        }
        match self.thumbs.get(&id) {
            Some(Thumb::Ready { texture, .. }) => {
                egui::Image::from_texture(texture)
                    .uv(center_square_uv(texture.size_vec2()))
                    .corner_radius(radius)
                    .paint_at(ui, rect);
                // Named for screen readers (and so tests can wait for it).
                let name = short_name(&row.job.input);
                ui.interact(
                    rect,
                    egui::Id::unique(("queue thumbnail", id)),
                    Sense::hover(),
                )
                .widget_info(|| {
                    egui::WidgetInfo::labeled(
                        egui::Role::Image,
                        true,
                        format!("Thumbnail of {name}"),
                    )
                });
            }
            Some(Thumb::Unsupported) => {
                paint_icon(painter, rect, Icon::Picture, palette.weak);
                tooltip_at(
                    ui,
                    rect,
                    id,
                    "No preview for this format; the provider can still process it",
                );
            }
            Some(Thumb::Unreadable(why)) => {
                paint_icon(painter, rect, Icon::Broken, palette.warn);
                tooltip_at(ui, rect, id, &format!("Cannot show a preview: {why}"));
            }
            Some(Thumb::Loading) | None => {}
        }
    }
}

/// The middle square of a picture, in texture coordinates, so every
/// thumbnail fills its box the same way whatever its proportions.
fn center_square_uv(size: egui::Vec2) -> Rect {
    if size.x <= 0.0 || size.y <= 0.0 {
        return Rect::from_min_max(egui::pos2(0.0, 0.0), egui::pos2(1.0, 1.0));
    }
    let (w, h) = if size.x > size.y {
        (size.y / size.x, 1.0)
    } else {
        (1.0, size.x / size.y)
    };
    Rect::from_center_size(egui::pos2(0.5, 0.5), vec2(w, h))
}

/// Icons for thumbnail boxes, drawn rather than typed so they look the same
/// whatever fonts the desktop has.
#[derive(Debug, Clone, Copy)]
enum Icon {
    Video,
    Link,
    Picture,
    Broken,
}

fn paint_icon(painter: &egui::Painter, rect: Rect, icon: Icon, color: Color32) {
    let c = rect.center();
    let stroke = Stroke::new(1.6, color);
    match icon {
        Icon::Video => {
            let frame = Rect::from_center_size(c, vec2(26.0, 20.0));
            painter.rect_stroke(frame, 3.0, stroke, egui::StrokeKind::Middle);
            let play = vec![
                c + vec2(-4.0, -6.0),
                c + vec2(6.0, 0.0),
                c + vec2(-4.0, 6.0),
            ];
            painter.add(egui::Shape::convex_polygon(play, color, Stroke::NONE));
        }
        Icon::Link => {
            let along = vec2(1.0, -1.0).normalized();
            for offset in [-4.5, 4.5] {
                let points = capsule(c + along * offset, along, 4.0, 4.0);
                painter.add(egui::Shape::closed_line(points, stroke));
            }
        }
        Icon::Picture => {
            let frame = Rect::from_center_size(c, vec2(26.0, 20.0));
            painter.rect_stroke(frame, 3.0, stroke, egui::StrokeKind::Middle);
            painter.circle_filled(frame.right_top() + vec2(-6.0, 6.0), 2.2, color);
            let hills = vec![
                frame.left_bottom() + vec2(2.0, -2.0),
                frame.left_bottom() + vec2(9.0, -10.0),
                frame.left_bottom() + vec2(14.0, -5.0),
                frame.left_bottom() + vec2(18.0, -8.0),
                frame.right_bottom() + vec2(-2.0, -2.0),
            ];
            painter.add(egui::Shape::line(hills, stroke));
        }
        Icon::Broken => {
            painter.text(
                c,
                Align2::CENTER_CENTER,
                "⚠",
                FontId::proportional(22.0),
                color,
            );
        }
    }
}

/// The outline of a stadium shape (a chain link) along `direction`.
fn capsule(
    center: egui::Pos2,
    direction: egui::Vec2,
    half_length: f32,
    radius: f32,
) -> Vec<egui::Pos2> {
    let normal = direction.rot90();
    let steps = 10;
    let mut points = Vec::with_capacity(2 * (steps + 1));
    for (end, sign) in [
        (center + direction * half_length, 1.0),
        (center - direction * half_length, -1.0),
    ] {
        for i in 0..=steps {
            let angle =
                std::f32::consts::PI * (i as f32 / steps as f32) - std::f32::consts::FRAC_PI_2;
            let offset = (direction * angle.cos() + normal * angle.sin()) * radius * sign;
            points.push(end + offset);
        }
    }
    points
}

/// What every row needs to know besides its job.
struct RowLook<'a> {
    selected: bool,
    now: Instant,
    palette: &'a Palette,
    /// The spacing widgets inside a row use (the list itself has none).
    spacing: egui::Vec2,
}

/// The list's colours, taken from the theme so light and dark both work.
struct Palette {
    accent: Color32,
    success: Color32,
    error: Color32,
    warn: Color32,
    weak: Color32,
    selected_fill: Color32,
    hover_fill: Color32,
    separator: Stroke,
    thumb_fill: Color32,
    track: Color32,
}

impl Palette {
    fn new(visuals: &egui::Visuals) -> Self {
        let success = crate::ui::success_color(visuals);
        let accent = visuals.hyperlink_color;
        Palette {
            accent,
            success,
            error: visuals.error_fg_color,
            warn: visuals.warn_fg_color,
            weak: visuals.weak_text_color(),
            selected_fill: visuals.selection.bg_fill.gamma_multiply(0.45),
            hover_fill: visuals.widgets.hovered.weak_bg_fill.gamma_multiply(0.5),
            separator: Stroke::new(1.0, visuals.widgets.noninteractive.bg_stroke.color),
            thumb_fill: visuals.extreme_bg_color,
            track: visuals.widgets.inactive.bg_fill,
        }
    }
}

/// A child area of a row, with normal widget spacing.
fn column_ui(
    ui: &mut egui::Ui,
    rect: Rect,
    spacing: egui::Vec2,
    layout: Layout,
    add_contents: impl FnOnce(&mut egui::Ui),
) {
    if rect.width() <= 0.0 {
        return;
    }
    ui.scope_builder(UiBuilder::new().max_rect(rect).layout(layout), |ui| {
        ui.spacing_mut().item_spacing = spacing;
        ui.set_clip_rect(rect.intersect(ui.clip_rect()));
        add_contents(ui);
    });
}

/// A tooltip over a painted area that has no widget of its own.
fn tooltip_at(ui: &egui::Ui, rect: Rect, id: JobId, text: &str) {
    let response = ui.interact(
        rect,
        egui::Id::unique(("queue thumbnail", id)),
        Sense::hover(),
    );
    response.on_hover_text(text);
}

/// Name, provider and model, and the outcome (file saved, or the error).
fn details_ui(ui: &mut egui::Ui, row: &JobRow, name: &str, palette: &Palette) {
    let job = &row.job;
    let lines = if job.state.is_terminal() && !matches!(job.state, JobState::Cancelled) {
        3.0
    } else {
        2.0
    };
    ui.add_space(((ROW_HEIGHT - lines * 17.0) / 2.0 - 1.0).max(0.0));
    ui.horizontal(|ui| {
        ui.spacing_mut().item_spacing.x = 6.0;
        if !job.warnings.is_empty() {
            let warnings = job.warnings.join("\n");
            ui.add(
                egui::Label::new(RichText::new("⚠").color(palette.warn))
                    .selectable(false)
                    .sense(Sense::hover()),
            )
            .on_hover_text(format!("The provider noted:\n{warnings}"));
        }
        ui.add(
            egui::Label::new(RichText::new(name).strong())
                .selectable(false)
                .truncate(),
        )
        .on_hover_text(job.input.display_name());
    });
    let mut meta = format!("{} · {}", job.provider.info().name, job.model);
    if let Some(credits) = job.credits_charged {
        let noun = if (credits - 1.0).abs() < f64::EPSILON {
            "credit"
        } else {
            "credits"
        };
        meta.push_str(&format!(" · {credits} {noun}"));
    }
    ui.add(
        egui::Label::new(
            RichText::new(meta)
                .size(DETAIL_TEXT_SIZE)
                .color(palette.weak),
        )
        .selectable(false)
        .truncate(),
    );
    match &job.state {
        JobState::Failed { error, .. } => {
            ui.add(
                egui::Label::new(
                    RichText::new(error.clone())
                        .size(DETAIL_TEXT_SIZE)
                        .color(palette.error),
                )
                .selectable(false)
                .truncate(),
            )
            .on_hover_text(error.clone());
        }
        JobState::Done { outputs } => {
            let (text, hover) = match outputs.as_slice() {
                [] => ("Finished; nothing to save".to_owned(), String::new()),
                [one] => (
                    format!("Saved as {}", file_name(one)),
                    one.display().to_string(),
                ),
                many => (
                    format!("Saved {} files", many.len()),
                    many.iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join("\n"),
                ),
            };
            let label = ui.add(
                egui::Label::new(
                    RichText::new(text)
                        .size(DETAIL_TEXT_SIZE)
                        .color(palette.weak),
                )
                .selectable(false)
                .truncate(),
            );
            if !hover.is_empty() {
                label.on_hover_text(hover);
            }
        }
        _ => {}
    }
}

/// The state in words and colour, the time spent, and a bar or, for
/// failures, what to do. Returns whether the bar moves (so the list keeps
/// redrawing).
fn state_ui(
    ui: &mut egui::Ui,
    state: &JobState,
    elapsed: Option<Duration>,
    palette: &Palette,
) -> bool {
    let color = match state {
        JobState::Queued | JobState::Cancelled => palette.weak,
        JobState::Done { .. } => palette.success,
        JobState::Failed { .. } => palette.error,
        _ => palette.accent,
    };
    let hint = match state {
        JobState::Failed { error, retryable } => {
            hint_for(error).or(retryable.then_some("Retry to try again"))
        }
        _ => None,
    };
    let bar = match state {
        JobState::Done { .. } => Some(Bar::Fraction(1.0)),
        JobState::Processing {
            progress: Some(percent),
        } => Some(Bar::Fraction(f32::from(*percent) / 100.0)),
        JobState::Queued | JobState::Failed { .. } | JobState::Cancelled => None,
        _ => Some(Bar::Working),
    };
    let content_height = match (hint, bar) {
        (Some(_), _) => 34.0,
        (None, Some(_)) => 27.0,
        (None, None) => 18.0,
    };
    ui.add_space(((ROW_HEIGHT - content_height) / 2.0).max(0.0));
    egui::Sides::new().shrink_left().truncate().show(
        ui,
        |ui| {
            ui.add(
                egui::Label::new(RichText::new(state_label(state)).color(color)).selectable(false),
            );
        },
        |ui| {
            if let Some(elapsed) = elapsed {
                ui.add(
                    egui::Label::new(RichText::new(elapsed_text(elapsed)).color(palette.weak))
                        .selectable(false),
                )
                .on_hover_text("Time spent on this job");
            }
        },
    );
    if let Some(hint) = hint {
        ui.add(
            egui::Label::new(RichText::new(hint).size(DETAIL_TEXT_SIZE))
                .selectable(false)
                .truncate(),
        );
        return false;
    }
    let Some(bar) = bar else { return false };
    ui.add_space(4.0);
    let (rect, _) = ui.allocate_exact_size(vec2(ui.available_width(), 5.0), Sense::hover());
    paint_bar(ui, rect, bar, color, palette.track);
    matches!(bar, Bar::Working)
}

/// How full a row's bar is.
#[derive(Debug, Clone, Copy)]
enum Bar {
    /// 0–1.
    Fraction(f32),
    /// Busy, with no figure to show: a segment sweeps across.
    Working,
}

fn paint_bar(ui: &egui::Ui, rect: Rect, bar: Bar, color: Color32, track: Color32) {
    let painter = ui.painter();
    let radius = CornerRadius::same((rect.height() / 2.0) as u8);
    painter.rect_filled(rect, radius, track);
    let filled = match bar {
        Bar::Fraction(fraction) => {
            let mut filled = rect;
            filled.set_right(rect.left() + rect.width() * fraction.clamp(0.0, 1.0));
            filled
        }
        Bar::Working => {
            let segment = rect.width() * 0.3;
            let phase = (ui.input(|i| i.time) * 0.8).fract() as f32;
            let left = rect.left() - segment + phase * (rect.width() + segment);
            Rect::from_x_y_ranges(
                left.max(rect.left())..=(left + segment).min(rect.right()),
                rect.y_range(),
            )
        }
    };
    if filled.width() > 0.0 {
        painter.rect_filled(filled, radius, color);
    }
}

/// The buttons at the end of a row: the main action for its state, and
/// Remove.
fn row_buttons_ui(ui: &mut egui::Ui, row: &JobRow, actions: &mut Vec<RowAction>) {
    let id = row.job.id;
    let remove = ui
        .add(egui::Button::new("🗙").frame_when_inactive(false))
        .on_hover_text("Remove from the queue");
    // The glyph alone would be read out as "multiplication sign".
    remove.widget_info(|| {
        egui::WidgetInfo::labeled(egui::Role::Button, true, "Remove from the queue")
    });
    if remove.clicked() {
        actions.push(RowAction::Send(Command::Remove(id)));
    }
    if can_cancel(&row.job.state) {
        if ui.button("Cancel").on_hover_text("Stop this job").clicked() {
            actions.push(RowAction::Send(Command::Cancel(id)));
        }
    } else if can_retry(&row.job.state) {
        let retry = ui.button("↻ Retry").on_hover_text("Run this job again");
        retry.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Button, true, "Retry"));
        if retry.clicked() {
            actions.push(RowAction::Send(Command::Retry(id)));
        }
    } else if let Some(output) = first_output(&row.job.state)
        && ui
            .button("Open")
            .on_hover_text(format!("Open the result: {}", output.display()))
            .clicked()
    {
        actions.push(RowAction::Open(output.to_owned()));
    }
}

/// The right-click menu. On a row that is part of a multiple selection, it
/// acts on every selected job that the action suits.
fn context_menu_ui(
    ui: &mut egui::Ui,
    row: &JobRow,
    selected: bool,
    queue: &QueueView,
    selection: &Selection,
    actions: &mut Vec<RowAction>,
) {
    let ids = selection.ids();
    let group: Vec<&JobRow> = if selected && ids.len() > 1 {
        ids.iter().filter_map(|id| queue.row(*id)).collect()
    } else {
        vec![row]
    };
    let cancellable: Vec<JobId> = group
        .iter()
        .filter(|r| can_cancel(&r.job.state))
        .map(|r| r.job.id)
        .collect();
    let retryable: Vec<JobId> = group
        .iter()
        .filter(|r| can_retry(&r.job.state))
        .map(|r| r.job.id)
        .collect();
    if group.len() == 1
        && let Some(output) = first_output(&row.job.state)
    {
        if ui.button("Open result").clicked() {
            actions.push(RowAction::Open(output.to_owned()));
            ui.close();
        }
        if let Some(folder) = output.parent()
            && ui.button("Open output folder").clicked()
        {
            actions.push(RowAction::Open(folder.to_owned()));
            ui.close();
        }
        ui.separator();
    }
    for_each_item_ui(ui, actions, "Cancel", cancellable, Command::Cancel);
    for_each_item_ui(ui, actions, "Retry", retryable, Command::Retry);
    if let (1, JobState::Failed { error, .. }) = (group.len(), &row.job.state)
        && ui.button("Copy error message").clicked()
    {
        ui.ctx().copy_text(error.clone());
        ui.close();
    }
    let everyone = group.iter().map(|r| r.job.id).collect();
    for_each_item_ui(ui, actions, "Remove from queue", everyone, Command::Remove);
}

/// A context-menu item that sends `command` for each of `ids` ("Retry",
/// "Retry (3 jobs)"); absent when no job qualifies.
fn for_each_item_ui(
    ui: &mut egui::Ui,
    actions: &mut Vec<RowAction>,
    verb: &str,
    ids: Vec<JobId>,
    command: fn(JobId) -> Command,
) {
    if !ids.is_empty() && ui.button(verb_for(verb, ids.len())).clicked() {
        actions.extend(ids.into_iter().map(|id| RowAction::Send(command(id))));
        ui.close();
    }
}

/// "Cancel" for one job, "Cancel (3 jobs)" for several.
fn verb_for(verb: &str, count: usize) -> String {
    if count == 1 {
        verb.to_owned()
    } else {
        format!("{verb} ({count} jobs)")
    }
}

fn can_cancel(state: &JobState) -> bool {
    !state.is_terminal()
}

fn can_retry(state: &JobState) -> bool {
    matches!(state, JobState::Failed { .. } | JobState::Cancelled)
}

fn first_output(state: &JobState) -> Option<&Path> {
    match state {
        JobState::Done { outputs } => outputs.first().map(PathBuf::as_path),
        _ => None,
    }
}

/// Opens a file or folder in the desktop's own app, on a thread of its own:
/// some platforms' openers take a moment, and the window must not wait.
fn open_in_background(path: PathBuf) {
    let spawned = std::thread::Builder::new()
        .name("cutout-open".into())
        .spawn(move || {
            if let Err(e) = open::that(&path) {
                tracing::warn!("cannot open {e}: {}", path.display());
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("cannot start a thread to open a file: {e}");
    }
}

/// The file-manager rule for a click with these keys held.
fn click_mode(modifiers: egui::Modifiers) -> ClickMode {
    if modifiers.shift {
        ClickMode::Extend
    } else if modifiers.command {
        ClickMode::Toggle
    } else {
        ClickMode::Replace
    }
}

/// The name a row shows: the file name, or a URL's last path segment (its
/// host when it has none).
fn short_name(input: &JobInput) -> String {
    match input {
        JobInput::File { path, .. } => file_name(path),
        JobInput::Url(url) => url
            .path_segments()
            .and_then(|mut s| s.next_back())
            .filter(|s| !s.is_empty())
            .map(|s| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8_lossy()
                    .into_owned()
            })
            .or_else(|| url.host_str().map(str::to_owned))
            .unwrap_or_else(|| url.to_string()),
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// The local file to draw a thumbnail from; `None` for URLs and videos,
/// which get an icon instead.
fn thumbnail_source(row: &JobRow) -> Option<&Path> {
    let kind = row.job.kind.or_else(|| row.job.input.kind(false));
    if kind.is_some_and(|k| k.is_video()) {
        return None;
    }
    match &row.job.input {
        JobInput::File { path, .. } => Some(path),
        JobInput::Url(_) => None,
    }
}

/// The state in a few words, as the row shows it.
fn state_label(state: &JobState) -> String {
    match state {
        JobState::Queued => "Queued".into(),
        JobState::Preparing => "Preparing…".into(),
        JobState::Uploading => "Uploading…".into(),
        JobState::Submitted { .. } => "Sent to the provider…".into(),
        JobState::Processing { progress: None } => "Processing…".into(),
        JobState::Processing {
            progress: Some(percent),
        } => format!("Processing · {percent}%"),
        JobState::Downloading => "Saving result…".into(),
        JobState::Done { .. } => "✔ Done".into(),
        JobState::Failed { .. } => "Failed".into(),
        JobState::Cancelled => "Cancelled".into(),
    }
}

/// What the user can do about a failure, from the wording of its message
/// (the engine's and the providers' messages say what happened; this says
/// where in the window to fix it).
fn hint_for(error: &str) -> Option<&'static str> {
    let error = error.to_lowercase();
    let has = |needle: &str| error.contains(needle);
    if has("check your key")
        || has("key was refused")
        || has("is not set up")
        || has("needs its")
        || has("check your secret key")
    {
        Some("Fix the key in Settings")
    } else if has("rate limit") {
        Some("Retry later")
    } else if has("cannot take") {
        Some("Pick a provider that takes it")
    } else if has("out of credits") {
        Some("Top up, then retry")
    } else if has("network error") {
        Some("Check your connection")
    } else if has("did not finish within") {
        Some("Retry to keep waiting")
    } else if has("cannot read the input") {
        Some("Check the file still exists")
    } else if has("server error") {
        Some("Provider trouble; retry later")
    } else {
        None
    }
}

/// Time spent on a job, as a clock: `0:07`, `12:34`, `1:02:03`.
fn elapsed_text(elapsed: Duration) -> String {
    let secs = elapsed.as_secs();
    let (hours, minutes, seconds) = (secs / 3600, secs / 60 % 60, secs % 60);
    if hours > 0 {
        format!("{hours}:{minutes:02}:{seconds:02}")
    } else {
        format!("{minutes}:{seconds:02}")
    }
}

/// Time left in words; an estimate, so it never pretends to the second.
fn time_left_text(left: Duration) -> String {
    let secs = left.as_secs();
    if secs < 60 {
        return "less than a minute left".into();
    }
    let minutes = (secs + 30) / 60;
    if minutes < 60 {
        return format!("about {minutes} min left");
    }
    let (hours, minutes) = (minutes / 60, minutes % 60);
    if minutes == 0 {
        format!("about {hours} h left")
    } else {
        format!("about {hours} h {minutes} min left")
    }
}

/// "1 file", "3 files".
fn files(count: usize) -> String {
    if count == 1 {
        "1 file".into()
    } else {
        format!("{count} files")
    }
}

/// How the status bar's main sentence is coloured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tone {
    Plain,
    /// Everything finished and nothing failed.
    Good,
    /// The batch is over and some jobs failed.
    Bad,
}

/// What the status bar says.
#[derive(Debug, Clone, PartialEq, Eq)]
struct StatusLine {
    text: String,
    tone: Tone,
    /// A quieter addition: the time left, or how the last batch went.
    detail: Option<String>,
}

/// "22 done, 2 failed, 1 cancelled", or "All 24 done".
fn outcome_text(counts: Counts) -> String {
    let finished = counts.done + counts.failed + counts.cancelled;
    if counts.done == finished {
        return if counts.done == 1 {
            "1 done".into()
        } else {
            format!("All {} done", counts.done)
        };
    }
    // Refused inputs fail before anything runs; "0 done" would only confuse.
    let mut parts = Vec::new();
    if counts.done > 0 {
        parts.push(format!("{} done", counts.done));
    }
    if counts.failed > 0 {
        parts.push(format!("{} failed", counts.failed));
    }
    if counts.cancelled > 0 {
        parts.push(format!("{} cancelled", counts.cancelled));
    }
    parts.join(", ")
}

/// The status bar's words for these counts.
fn status_line(counts: Counts, time_left: Option<Duration>) -> StatusLine {
    let finished = counts.done + counts.failed + counts.cancelled;
    let plain = |text: String, detail: Option<String>| StatusLine {
        text,
        tone: Tone::Plain,
        detail,
    };
    if counts.total() == 0 {
        return plain("Add images to get started".into(), None);
    }
    if counts.active > 0 {
        let mut parts = vec![format!("{} done", counts.done)];
        if counts.failed > 0 {
            parts.push(format!("{} failed", counts.failed));
        }
        if counts.cancelled > 0 {
            parts.push(format!("{} cancelled", counts.cancelled));
        }
        parts.push(format!("{} remaining", counts.remaining()));
        let eta = time_left.map_or_else(|| "estimating time left…".into(), time_left_text);
        return plain(parts.join(" · "), Some(eta));
    }
    if counts.queued > 0 {
        let waiting = format!("{} waiting · press Start to begin", files(counts.queued));
        return plain(waiting, (finished > 0).then(|| outcome_text(counts)));
    }
    let tone = if counts.failed > 0 {
        Tone::Bad
    } else if counts.done == finished {
        Tone::Good
    } else {
        Tone::Plain
    };
    StatusLine {
        text: outcome_text(counts),
        tone,
        detail: None,
    }
}

/// The bottom bar: overall progress, counts and time left while a batch
/// runs, and a summary once it is over.
pub fn status_bar_ui(ui: &mut egui::Ui, queue: &QueueView) {
    let counts = queue.counts();
    let line = status_line(counts, queue.time_left());
    let palette = Palette::new(ui.visuals());
    ui.add_space(3.0);
    ui.horizontal(|ui| {
        // The bar shows while work runs and, full, once all of it has ended;
        // before Start it would only show refusals as "progress".
        let all_ended = counts.total() > 0 && counts.remaining() == 0;
        if let Some(progress) = queue.progress().filter(|_| counts.active > 0 || all_ended) {
            let color = match line.tone {
                Tone::Good => palette.success,
                Tone::Bad => palette.error,
                Tone::Plain => palette.accent,
            };
            let (rect, response) = ui.allocate_exact_size(vec2(200.0, 6.0), Sense::hover());
            paint_bar(ui, rect, Bar::Fraction(progress), color, palette.track);
            let percent = format!("{:.0}% finished", progress * 100.0);
            response.widget_info(|| {
                egui::WidgetInfo::labeled(egui::Role::ProgressIndicator, true, &percent)
            });
            response.on_hover_text(percent);
            ui.add_space(6.0);
        }
        let color = match line.tone {
            Tone::Good => palette.success,
            Tone::Bad => palette.error,
            Tone::Plain => ui.visuals().text_color(),
        };
        ui.label(RichText::new(line.text).color(color));
        if let Some(detail) = line.detail {
            ui.label(RichText::new("·").color(palette.weak));
            ui.label(RichText::new(detail).color(palette.weak));
        }
    });
    ui.add_space(1.0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_or_missing_key_points_to_settings() {
        let refused = "the API key was refused, check your key: API key invalid";
        assert_eq!(hint_for(refused), Some("Fix the key in Settings"));
        let unset = "remove.bg is not set up: add its key in Settings (or set REMOVEBG_API_KEY)";
        assert_eq!(hint_for(unset), Some("Fix the key in Settings"));
    }

    #[test]
    fn rate_limits_and_refused_inputs_get_their_own_hints() {
        let limited =
            "the provider is rate limiting us and still was after 5 attempts; retry later";
        assert_eq!(hint_for(limited), Some("Retry later"));
        let refused = "removebg cannot take video files; use unscreen instead";
        assert_eq!(hint_for(refused), Some("Pick a provider that takes it"));
        assert_eq!(
            hint_for("Out of credits, top up your account and retry: none left"),
            Some("Top up, then retry")
        );
    }

    #[test]
    fn an_unrecognised_error_has_no_hint() {
        assert_eq!(hint_for("the provider could not process it: blurry"), None);
    }

    #[test]
    fn elapsed_time_reads_like_a_clock() {
        assert_eq!(elapsed_text(Duration::from_millis(7_900)), "0:07");
        assert_eq!(elapsed_text(Duration::from_secs(754)), "12:34");
        assert_eq!(elapsed_text(Duration::from_secs(3723)), "1:02:03");
    }

    #[test]
    fn time_left_is_rounded_to_what_a_person_would_say() {
        assert_eq!(
            time_left_text(Duration::from_secs(20)),
            "less than a minute left"
        );
        assert_eq!(time_left_text(Duration::from_secs(95)), "about 2 min left");
        assert_eq!(time_left_text(Duration::from_secs(180)), "about 3 min left");
        assert_eq!(time_left_text(Duration::from_secs(3600)), "about 1 h left");
        assert_eq!(
            time_left_text(Duration::from_secs(4900)),
            "about 1 h 22 min left"
        );
    }

    #[test]
    fn a_running_batch_shows_counts_and_time_left() {
        let counts = Counts {
            queued: 10,
            active: 2,
            done: 5,
            failed: 1,
            cancelled: 0,
        };
        let line = status_line(counts, Some(Duration::from_secs(180)));
        assert_eq!(line.text, "5 done · 1 failed · 12 remaining");
        assert_eq!(line.detail.as_deref(), Some("about 3 min left"));
        let line = status_line(counts, None);
        assert_eq!(line.detail.as_deref(), Some("estimating time left…"));
    }

    #[test]
    fn a_finished_batch_is_summed_up() {
        let all_done = Counts {
            done: 24,
            ..Counts::default()
        };
        let line = status_line(all_done, None);
        assert_eq!((line.text.as_str(), line.tone), ("All 24 done", Tone::Good));
        let some_failed = Counts {
            done: 22,
            failed: 2,
            ..Counts::default()
        };
        let line = status_line(some_failed, None);
        assert_eq!(
            (line.text.as_str(), line.tone),
            ("22 done, 2 failed", Tone::Bad)
        );
    }

    #[test]
    fn an_unstarted_queue_says_how_to_begin() {
        let waiting = Counts {
            queued: 1,
            ..Counts::default()
        };
        let line = status_line(waiting, None);
        assert_eq!(line.text, "1 file waiting · press Start to begin");
        assert_eq!(line.detail, None);
        let after_a_batch = Counts {
            queued: 3,
            done: 22,
            failed: 2,
            ..Counts::default()
        };
        let line = status_line(after_a_batch, None);
        assert_eq!(line.text, "3 files waiting · press Start to begin");
        assert_eq!(line.detail.as_deref(), Some("22 done, 2 failed"));
        let refused_only = Counts {
            queued: 4,
            failed: 1,
            ..Counts::default()
        };
        let line = status_line(refused_only, None);
        assert_eq!(line.detail.as_deref(), Some("1 failed"), "no \"0 done\"");
        assert_eq!(
            status_line(Counts::default(), None).text,
            "Add images to get started"
        );
    }

    #[test]
    fn rows_are_named_by_file_name_or_the_urls_last_segment() {
        let file = JobInput::File {
            path: "/shots/spring/red shoe.jpg".into(),
            root: None,
        };
        assert_eq!(short_name(&file), "red shoe.jpg");
        let url =
            JobInput::Url(url::Url::parse("https://cdn.test/img/blue%20bag.png?x=1").unwrap());
        assert_eq!(short_name(&url), "blue bag.png");
        let bare = JobInput::Url(url::Url::parse("https://cdn.test/").unwrap());
        assert_eq!(short_name(&bare), "cdn.test");
    }

    #[test]
    fn modifier_keys_pick_the_selection_rule() {
        assert_eq!(click_mode(egui::Modifiers::NONE), ClickMode::Replace);
        assert_eq!(click_mode(egui::Modifiers::COMMAND), ClickMode::Toggle);
        assert_eq!(click_mode(egui::Modifiers::SHIFT), ClickMode::Extend);
    }

    /// The panel against a real engine with no providers: jobs can be added,
    /// removed and selected, and never start.
    mod window {
        use std::time::{Duration, Instant};

        use egui_kittest::Harness;
        use egui_kittest::kittest::Queryable;

        use super::super::*;
        use crate::jobs::{
            Engine, EngineConfig, EngineHandle, Event, JobSettings, NewJob, OutputSpec,
        };
        use crate::providers::{HttpClient, ProviderId, RetryPolicy};

        struct Fixture {
            panel: QueuePanel,
            queue: QueueView,
            selection: Selection,
            commands: CommandSender,
            engine: EngineHandle,
            _runtime: tokio::runtime::Runtime,
            _dir: tempfile::TempDir,
        }

        impl Fixture {
            /// Applies engine events until `done` says so, for at most 10 s.
            fn wait_for(&mut self, done: impl Fn(&Event) -> bool) {
                let deadline = Instant::now() + Duration::from_secs(10);
                loop {
                    while let Some(event) = self.engine.try_next_event() {
                        let finished = done(&event);
                        if let Some(id) = self.queue.apply(event, Instant::now()) {
                            self.selection.forget(id);
                            self.panel.forget(id);
                        }
                        if finished {
                            return;
                        }
                    }
                    assert!(Instant::now() < deadline, "the engine did not answer");
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }

        /// A queue of three small PNGs, drawn in a 900 × 400 window.
        fn queue_of_three() -> Harness<'static, Fixture> {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            let dir = tempfile::tempdir().unwrap();
            let engine = {
                let _inside = runtime.enter();
                let http = HttpClient::new(RetryPolicy::default());
                Engine::spawn(Vec::new(), http, EngineConfig::default())
            };
            let settings = JobSettings {
                provider: ProviderId::Removebg,
                model: "auto".into(),
                options: Default::default(),
                output: OutputSpec {
                    dir: dir.path().join("out"),
                    format: None,
                    quality: None,
                    composition: Default::default(),
                    naming: Default::default(),
                },
                allow_downscale: false,
            };
            let jobs = ["a.png", "b.png", "c.png"]
                .into_iter()
                .map(|name| {
                    let path = dir.path().join(name);
                    image::RgbaImage::from_pixel(40, 30, image::Rgba([0, 90, 200, 255]))
                        .save(&path)
                        .unwrap();
                    NewJob {
                        input: JobInput::File { path, root: None },
                        settings: settings.clone(),
                    }
                })
                .collect();
            let commands = engine.sender();
            commands.send(Command::Add(jobs));
            let mut fixture = Fixture {
                panel: QueuePanel::new(),
                queue: QueueView::default(),
                selection: Selection::default(),
                commands,
                engine,
                _runtime: runtime,
                _dir: dir,
            };
            fixture.wait_for(|e| matches!(e, Event::Added(job) if job.id == JobId(3)));
            let mut harness = Harness::builder()
                .with_size(egui::vec2(900.0, 400.0))
                .allow_missing_glyphs()
                .build_ui_state(
                    |ui, f: &mut Fixture| {
                        f.panel
                            .queue_ui(ui, &f.queue, &mut f.selection, &f.commands);
                    },
                    fixture,
                );
            harness.run();
            harness
        }

        fn click_row(harness: &mut Harness<'_, Fixture>, name: &str, modifiers: egui::Modifiers) {
            harness
                .get_by_label(&format!("{name}, Queued"))
                .click_modifiers(modifiers);
            harness.run();
        }

        #[test]
        fn rows_select_like_a_file_manager() {
            let mut harness = queue_of_three();
            click_row(&mut harness, "a.png", egui::Modifiers::NONE);
            assert_eq!(harness.state().selection.ids(), [JobId(1)]);
            click_row(&mut harness, "c.png", egui::Modifiers::SHIFT);
            assert_eq!(
                harness.state().selection.ids(),
                [JobId(1), JobId(2), JobId(3)]
            );
            click_row(&mut harness, "b.png", egui::Modifiers::COMMAND);
            assert_eq!(harness.state().selection.ids(), [JobId(1), JobId(3)]);
        }

        #[test]
        fn the_remove_button_asks_the_engine_to_drop_that_job() {
            let mut harness = queue_of_three();
            harness
                .get_all_by_label("Remove from the queue")
                .nth(1)
                .unwrap()
                .click();
            harness.run();
            harness
                .state_mut()
                .wait_for(|e| matches!(e, Event::Removed(_)));
            harness.run();
            let left: Vec<JobId> = harness
                .state()
                .queue
                .rows()
                .iter()
                .map(|r| r.job.id)
                .collect();
            assert_eq!(left, [JobId(1), JobId(3)]);
            assert!(harness.query_by_label("b.png, Queued").is_none());
        }

        #[test]
        fn thumbnails_are_decoded_in_the_background_and_freed_with_their_job() {
            let mut harness = queue_of_three();
            let deadline = Instant::now() + Duration::from_secs(10);
            let ready = |f: &Fixture| {
                f.panel
                    .thumbs
                    .values()
                    .filter(|t| matches!(t, Thumb::Ready { .. }))
                    .count()
            };
            while ready(harness.state()) < 3 {
                assert!(Instant::now() < deadline, "thumbnails did not arrive");
                std::thread::sleep(Duration::from_millis(10));
                harness.run();
            }
            let Some(Thumb::Ready { texture, .. }) = harness.state().panel.thumbs.get(&JobId(1))
            else {
                panic!("no thumbnail for the first job");
            };
            assert_eq!(texture.size(), [40, 30], "small images are not enlarged");
            harness.state_mut().panel.forget(JobId(1));
            assert_eq!(ready(harness.state()), 2);
        }
    }
}
