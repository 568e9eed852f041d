//! The before/after canvas: the original on the left of a draggable split,
//! the cut-out on the right over a checkerboard (or the chosen background
//! colour), with zoom about the pointer and drag to pan.
//!
//! Positions are kept in the image's own pixels (the file's size, not the
//! downscaled texture's), so "100%" means one image pixel per screen pixel
//! however small the preview texture is. The maths is pure and tested; the
//! drawing reads it.

use egui::{
    Color32, CornerRadius, CursorIcon, Key, Modifiers, Pos2, Rect, Response, Sense, Shape, Stroke,
    TextureHandle, TextureId, Ui, Vec2, WidgetInfo, pos2, vec2,
};

/// Empty space kept around the image at "Fit", in points.
const FIT_MARGIN_POINTS: f32 = 12.0;

/// The zoom range, as a share of actual size (1.0 = 100%).
const MIN_ZOOM: f32 = 0.02;
const MAX_ZOOM: f32 = 32.0;

/// One step of the +/− buttons and keys.
pub const ZOOM_STEP: f32 = 1.25;

/// How far one arrow-key press moves the split, as a share of the width.
const SPLIT_STEP: f32 = 0.05;

/// Side of one checkerboard square, in points. Fixed on screen (as in image
/// editors) so transparency reads the same at every zoom.
const CHECKER_SQUARE_POINTS: f32 = 8.0;

/// Where the image sits: `scale` screen points per image pixel, and the image
/// point shown at the centre of the canvas.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Placement {
    /// Points per image pixel.
    pub scale: f32,
    /// The image point (in image pixels) at the canvas centre.
    pub center: Pos2,
}

impl Placement {
    /// The whole image, as large as fits in `view` with a small margin.
    pub fn fit(image: Vec2, view: Rect) -> Self {
        let room = view.shrink(FIT_MARGIN_POINTS).size().max(Vec2::splat(1.0));
        let scale = if image.x > 0.0 && image.y > 0.0 {
            (room.x / image.x).min(room.y / image.y)
        } else {
            1.0
        };
        Placement {
            scale,
            center: (image / 2.0).to_pos2(),
        }
    }

    /// Where the image lands on screen.
    pub fn image_rect(self, image: Vec2, view: Rect) -> Rect {
        let min = view.center() - self.center.to_vec2() * self.scale;
        Rect::from_min_size(min, image * self.scale)
    }

    /// The same view at another scale, keeping the image point under
    /// `anchor` (the pointer, or the canvas centre) where it is.
    pub fn zoomed_about(self, anchor: Pos2, view: Rect, scale: f32, image: Vec2) -> Self {
        let offset = anchor - view.center();
        let under_anchor = self.center + offset / self.scale;
        Placement {
            scale,
            center: under_anchor - offset / scale,
        }
        .clamped(image)
    }

    /// Moved by a drag of `delta` points.
    pub fn panned(self, delta: Vec2, image: Vec2) -> Self {
        Placement {
            scale: self.scale,
            center: self.center - delta / self.scale,
        }
        .clamped(image)
    }

    /// Keeps the canvas centre over the image, so the picture cannot be
    /// dragged out of sight.
    fn clamped(self, image: Vec2) -> Self {
        Placement {
            scale: self.scale,
            center: pos2(
                self.center.x.clamp(0.0, image.x.max(0.0)),
                self.center.y.clamp(0.0, image.y.max(0.0)),
            ),
        }
    }
}

/// How the user has zoomed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Zoom {
    /// Whole image, following the panel's size as it is resized.
    Fit,
    /// Where the user put it.
    Fixed(Placement),
}

/// A zoom asked for with a button, applied once the canvas knows its size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ZoomAction {
    /// Whole image.
    Fit,
    /// 100%.
    ActualSize,
    /// Zoom by a factor about the centre.
    By(f32),
}

/// The canvas's state for the picture on show; reset when another job or
/// variation is shown.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CanvasState {
    /// The zoom and pan.
    pub zoom: Zoom,
    /// Where the split sits, as a share of the canvas width: the original
    /// shows left of it, the cut-out right of it (0 = only the cut-out).
    pub split: f32,
    /// The zoom of the last frame drawn, as a percentage of actual size,
    /// for the label above the canvas.
    pub shown_percent: f32,
}

impl Default for CanvasState {
    fn default() -> Self {
        CanvasState {
            zoom: Zoom::Fit,
            split: 0.5,
            shown_percent: 100.0,
        }
    }
}

impl CanvasState {
    /// The placement in effect for this image and canvas.
    pub fn placement(&self, image: Vec2, view: Rect) -> Placement {
        match self.zoom {
            Zoom::Fit => Placement::fit(image, view),
            Zoom::Fixed(placement) => placement,
        }
    }

    /// Zooms by `factor` about `anchor`, within the allowed range. `pixels_per_point`
    /// turns "100%" into screen pixels.
    pub fn zoom_by(
        &mut self,
        factor: f32,
        anchor: Pos2,
        image: Vec2,
        view: Rect,
        pixels_per_point: f32,
    ) {
        let now = self.placement(image, view);
        let (min, max) = scale_limits(image, view, pixels_per_point);
        let scale = (now.scale * factor).clamp(min, max);
        self.zoom = Zoom::Fixed(now.zoomed_about(anchor, view, scale, image));
    }

    /// Shows the image at actual size (one image pixel per screen pixel)
    /// around `anchor`.
    pub fn actual_size(&mut self, anchor: Pos2, image: Vec2, view: Rect, pixels_per_point: f32) {
        let now = self.placement(image, view);
        let scale = 1.0 / pixels_per_point.max(f32::MIN_POSITIVE);
        self.zoom = Zoom::Fixed(now.zoomed_about(anchor, view, scale, image));
    }

    /// The zoom as a share of actual size, for the "45%" label.
    pub fn zoom_percent(&self, image: Vec2, view: Rect, pixels_per_point: f32) -> f32 {
        self.placement(image, view).scale * pixels_per_point * 100.0
    }
}

/// The smallest and largest scale allowed. "Fit" is always reachable, even
/// for an image so large that it needs less than the minimum zoom.
fn scale_limits(image: Vec2, view: Rect, pixels_per_point: f32) -> (f32, f32) {
    let ppp = pixels_per_point.max(f32::MIN_POSITIVE);
    let fit = Placement::fit(image, view).scale;
    ((MIN_ZOOM / ppp).min(fit), (MAX_ZOOM / ppp).max(fit))
}

/// The split after keyboard or assistive-technology steps (`steps` of
/// [`SPLIT_STEP`], negative to the left), or a jump to an end.
pub fn stepped_split(split: f32, steps: f32, jump: Option<f32>) -> f32 {
    jump.unwrap_or(split + steps * SPLIT_STEP).clamp(0.0, 1.0)
}

/// The biggest rectangle of `inner`'s shape centred in `outer`: where the
/// original goes when the cut-out's frame is a different size (a provider
/// that returns a smaller result) so the two line up.
pub fn fitted(inner: Vec2, outer: Rect) -> Rect {
    if inner.x <= 0.0 || inner.y <= 0.0 {
        return outer;
    }
    let scale = (outer.width() / inner.x).min(outer.height() / inner.y);
    Rect::from_center_size(outer.center(), inner * scale)
}

/// A picture to draw: its texture and its size in image pixels.
#[derive(Clone, Copy)]
pub struct Layer<'a> {
    /// The uploaded, possibly downscaled, texture.
    pub texture: &'a TextureHandle,
    /// The file's own size.
    pub size: Vec2,
}

/// What shows through transparent parts of the cut-out.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Backdrop {
    /// The usual grey-and-white squares (a repeating 2×2 texture).
    Checker(TextureId),
    /// The background colour chosen for the output.
    Color(Color32),
}

/// What the canvas shows.
pub struct Content<'a> {
    /// The original, when it can be shown.
    pub before: Option<Layer<'a>>,
    /// The cut-out, once there is one.
    pub after: Option<Layer<'a>>,
    /// Behind the cut-out.
    pub backdrop: Backdrop,
    /// Words for screen readers.
    pub description: String,
}

impl Content<'_> {
    /// The size that positions are measured in: the cut-out's, else the
    /// original's.
    fn frame(&self) -> Option<Vec2> {
        self.after.or(self.before).map(|layer| layer.size)
    }
}

/// The 2×2 texture the checkerboard repeats.
pub fn checker_image() -> egui::ColorImage {
    let light = Color32::from_gray(0xF4);
    let dark = Color32::from_gray(0xD2);
    egui::ColorImage::new([2, 2], vec![light, dark, dark, light])
}

/// Draws the canvas in a `size` area and handles zoom (including `action`
/// from the buttons), pan and the split. Returns the canvas's response, for
/// messages drawn over it.
pub fn canvas_ui(
    ui: &mut Ui,
    state: &mut CanvasState,
    content: &Content,
    size: Vec2,
    action: Option<ZoomAction>,
) -> Response {
    let (view, response) = ui.allocate_exact_size(size, Sense::click_and_drag());
    let description = content.description.clone();
    response.widget_info(|| WidgetInfo::labeled(egui::Role::Image, true, &description));
    let painter = ui.painter_at(view);
    painter.rect_filled(view, CornerRadius::same(6), ui.visuals().extreme_bg_color);
    let Some(frame) = content.frame() else {
        return response;
    };
    let ppp = ui.ctx().pixels_per_point();
    let compare = content.before.is_some() && content.after.is_some();
    let split_response = compare.then(|| split_handle_ui(ui, state, view));
    let handle_focused = split_response.as_ref().is_some_and(Response::has_focus);
    view_input(ui, state, &response, handle_focused, frame, view, ppp);
    match action {
        Some(ZoomAction::Fit) => state.zoom = Zoom::Fit,
        Some(ZoomAction::ActualSize) => state.actual_size(view.center(), frame, view, ppp),
        Some(ZoomAction::By(factor)) => state.zoom_by(factor, view.center(), frame, view, ppp),
        None => {}
    }
    let percent = state.zoom_percent(frame, view, ppp);
    if (percent - state.shown_percent).abs() > 0.01 {
        state.shown_percent = percent;
        ui.ctx().request_repaint();
    }

    let placement = state.placement(frame, view);
    let image_rect = placement.image_rect(frame, view);
    let split_x = if compare {
        view.left() + state.split * view.width()
    } else {
        view.left()
    };
    if let Some(after) = content.after {
        let right = Rect::from_x_y_ranges(split_x..=view.right(), view.y_range());
        let painter = painter.with_clip_rect(right.intersect(view));
        paint_backdrop(&painter, content.backdrop, image_rect);
        paint_texture(&painter, after.texture, image_rect);
    }
    if let Some(before) = content.before {
        let left_edge = if compare { split_x } else { view.right() };
        let left = Rect::from_x_y_ranges(view.left()..=left_edge, view.y_range());
        let painter = painter.with_clip_rect(left.intersect(view));
        let rect = fitted(before.size, image_rect);
        if let Backdrop::Checker(id) = content.backdrop {
            paint_backdrop(&painter, Backdrop::Checker(id), rect);
        }
        paint_texture(&painter, before.texture, rect);
    }
    if let Some(handle) = split_response {
        paint_labels(ui, view, split_x);
        paint_handle(ui, &handle, view, split_x);
    }
    response
}

/// Zoom (wheel, pinch, keys, double-click) and pan (drag) on the canvas.
fn view_input(
    ui: &Ui,
    state: &mut CanvasState,
    response: &Response,
    handle_focused: bool,
    frame: Vec2,
    view: Rect,
    ppp: f32,
) {
    // The pointer, even over the split handle or the zoom controls.
    let pointer = ui
        .input(|i| i.pointer.hover_pos())
        .filter(|p| view.contains(*p));
    let anchor = pointer.unwrap_or(view.center());
    if response.contains_pointer() {
        let (scroll, pinch) = ui.input_mut(|i| {
            let scroll = i.smooth_scroll_delta;
            i.smooth_scroll_delta = Vec2::ZERO;
            (scroll, i.zoom_delta())
        });
        let factor = pinch * (scroll.y / 500.0).exp();
        if (factor - 1.0).abs() > f32::EPSILON {
            state.zoom_by(factor, anchor, frame, view, ppp);
        }
        if scroll.x.abs() > 0.0 {
            let now = state.placement(frame, view);
            state.zoom = Zoom::Fixed(now.panned(vec2(scroll.x, 0.0), frame));
        }
    }
    if response.dragged() {
        let now = state.placement(frame, view);
        state.zoom = Zoom::Fixed(now.panned(response.drag_delta(), frame));
        ui.ctx().set_cursor_icon(CursorIcon::Grabbing);
    } else if response.hovered() {
        ui.ctx().set_cursor_icon(CursorIcon::Grab);
    }
    if response.double_clicked() {
        match state.zoom {
            Zoom::Fit => state.actual_size(anchor, frame, view, ppp),
            Zoom::Fixed(_) => state.zoom = Zoom::Fit,
        }
    }
    // Keys act on the canvas the pointer is over, unless the user is typing
    // somewhere; or on the canvas or split when they hold the focus.
    let keys_apply = response.has_focus()
        || handle_focused
        || (response.contains_pointer() && !ui.ctx().egui_wants_keyboard_input());
    if keys_apply {
        let (zoom_in, zoom_out, fit, actual) = ui.input_mut(|i| {
            (
                i.consume_key(Modifiers::NONE, Key::Plus)
                    | i.consume_key(Modifiers::NONE, Key::Equals),
                i.consume_key(Modifiers::NONE, Key::Minus),
                i.consume_key(Modifiers::NONE, Key::Num0),
                i.consume_key(Modifiers::NONE, Key::Num1),
            )
        });
        if zoom_in {
            state.zoom_by(ZOOM_STEP, view.center(), frame, view, ppp);
        }
        if zoom_out {
            state.zoom_by(1.0 / ZOOM_STEP, view.center(), frame, view, ppp);
        }
        if fit {
            state.zoom = Zoom::Fit;
        }
        if actual {
            state.actual_size(view.center(), frame, view, ppp);
        }
    }
}

/// The split's drag handle: a strip along the line, focusable, moved by
/// dragging, arrow keys, Home/End and assistive technology.
fn split_handle_ui(ui: &Ui, state: &mut CanvasState, view: Rect) -> Response {
    let x = view.left() + state.split * view.width();
    let strip = Rect::from_x_y_ranges(x - 10.0..=x + 10.0, view.y_range());
    let id = ui.make_persistent_id("before/after split");
    let response = ui
        .interact(strip, id, Sense::click_and_drag())
        .on_hover_cursor(CursorIcon::ResizeHorizontal)
        .on_hover_text(
            "Drag to compare the original (left) with the cut-out (right). Arrow keys move it too.",
        );
    if let Some(pointer) = response.interact_pointer_pos()
        && response.dragged()
    {
        state.split = ((pointer.x - view.left()) / view.width().max(1.0)).clamp(0.0, 1.0);
    }
    if response.has_focus() {
        ui.memory_mut(|m| {
            m.set_focus_lock_filter(
                id,
                egui::EventFilter {
                    horizontal_arrows: true,
                    ..Default::default()
                },
            );
        });
        let (steps, jump) = ui.input(|i| {
            let steps =
                i.num_presses(Key::ArrowRight) as f32 - i.num_presses(Key::ArrowLeft) as f32;
            let jump = if i.key_pressed(Key::Home) {
                Some(0.0)
            } else if i.key_pressed(Key::End) {
                Some(1.0)
            } else {
                None
            };
            (steps, jump)
        });
        state.split = stepped_split(state.split, steps, jump);
    }
    let (assisted, set) = ui.input(|i| {
        use egui::accesskit::{Action, ActionData};
        let steps = i.num_accesskit_action_requests(id, Action::Increment) as f32
            - i.num_accesskit_action_requests(id, Action::Decrement) as f32;
        let set = i
            .accesskit_action_requests(id, Action::SetValue)
            .filter_map(|r| match r.data {
                Some(ActionData::NumericValue(v)) => Some(v as f32 / 100.0),
                _ => None,
            })
            .last();
        (steps, set)
    });
    state.split = stepped_split(state.split, assisted, set);
    let percent = f64::from(state.split) * 100.0;
    response.widget_info(|| {
        WidgetInfo::slider(
            true,
            percent,
            "Before/after split: original on the left, cut-out on the right",
        )
    });
    ui.ctx().accesskit_node_builder(id, |node| {
        use egui::accesskit::Action;
        node.set_min_numeric_value(0.0);
        node.set_max_numeric_value(100.0);
        node.set_numeric_value_step(f64::from(SPLIT_STEP) * 100.0);
        node.add_action(Action::SetValue);
        node.add_action(Action::Increment);
        node.add_action(Action::Decrement);
    });
    response
}

fn paint_texture(painter: &egui::Painter, texture: &TextureHandle, rect: Rect) {
    let uv = Rect::from_min_max(Pos2::ZERO, pos2(1.0, 1.0));
    painter.image(texture.id(), rect, uv, Color32::WHITE);
}

fn paint_backdrop(painter: &egui::Painter, backdrop: Backdrop, rect: Rect) {
    match backdrop {
        Backdrop::Color(color) => {
            painter.rect_filled(rect, CornerRadius::ZERO, color);
        }
        Backdrop::Checker(texture) => {
            // Only the visible part is drawn, with texture coordinates
            // measured from the image's corner so the squares move with it.
            let visible = rect.intersect(painter.clip_rect());
            if visible.is_positive() {
                let tile = 2.0 * CHECKER_SQUARE_POINTS;
                let uv = Rect::from_min_max(
                    ((visible.min - rect.min) / tile).to_pos2(),
                    ((visible.max - rect.min) / tile).to_pos2(),
                );
                painter.image(texture, visible, uv, Color32::WHITE);
            }
        }
    }
}

/// "Original" and "Cut-out" tags in the top corners of each side, hidden
/// when their side is too narrow to hold them.
fn paint_labels(ui: &Ui, view: Rect, split_x: f32) {
    let painter = ui.painter_at(view);
    let font = egui::FontId::proportional(12.0);
    let tag = |text: &str, anchor: Pos2, align: egui::Align2, room: f32| {
        let galley = painter.layout_no_wrap(text.to_owned(), font.clone(), Color32::WHITE);
        let size = galley.size() + vec2(14.0, 6.0);
        if room < size.x + 16.0 {
            return;
        }
        let rect = align.anchor_size(anchor, size);
        painter.rect_filled(rect, CornerRadius::same(9), Color32::from_black_alpha(150));
        painter.galley(rect.min + vec2(7.0, 3.0), galley, Color32::WHITE);
    };
    let top = view.top() + 10.0;
    tag(
        "Original",
        pos2(view.left() + 10.0, top),
        egui::Align2::LEFT_TOP,
        split_x - view.left(),
    );
    tag(
        "Cut-out",
        pos2(view.right() - 10.0, top),
        egui::Align2::RIGHT_TOP,
        view.right() - split_x,
    );
}

fn paint_handle(ui: &Ui, response: &Response, view: Rect, x: f32) {
    let painter = ui.painter_at(view.expand(2.0));
    let shadow = Color32::from_black_alpha(110);
    let line = Color32::WHITE;
    painter.vline(x, view.y_range(), Stroke::new(4.0, shadow));
    painter.vline(x, view.y_range(), Stroke::new(2.0, line));
    let active = response.hovered() || response.dragged();
    let radius = if active { 16.0 } else { 14.0 };
    let center = pos2(x, view.center().y);
    painter.circle(center, radius + 1.0, shadow, Stroke::NONE);
    painter.circle(center, radius, line, Stroke::NONE);
    let arrow = Color32::from_gray(70);
    for direction in [-1.0_f32, 1.0] {
        let tip = center + vec2(direction * 8.0, 0.0);
        let back = center + vec2(direction * 3.0, 0.0);
        let (top, bottom) = (back + vec2(0.0, -4.5), back + vec2(0.0, 4.5));
        // Clockwise on screen, as the tessellator expects.
        let points = if direction > 0.0 {
            vec![top, tip, bottom]
        } else {
            vec![bottom, tip, top]
        };
        painter.add(Shape::convex_polygon(points, arrow, Stroke::NONE));
    }
    if response.has_focus() {
        let ring = ui.visuals().selection.stroke.color;
        painter.circle_stroke(center, radius + 3.0, Stroke::new(2.0, ring));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view() -> Rect {
        Rect::from_min_size(pos2(100.0, 50.0), vec2(424.0, 324.0))
    }

    #[test]
    fn fit_shows_the_whole_image_centred_with_a_margin() {
        let image = vec2(2000.0, 1000.0);
        let fit = Placement::fit(image, view());
        // 424 - 2 × 12 = 400 points for 2000 pixels.
        assert!((fit.scale - 0.2).abs() < 1e-6, "{}", fit.scale);
        let rect = fit.image_rect(image, view());
        assert_eq!(rect.center(), view().center());
        assert!((rect.width() - 400.0).abs() < 1e-3);
        assert!(view().contains_rect(rect));
    }

    #[test]
    fn fit_follows_the_tighter_side() {
        let tall = Placement::fit(vec2(100.0, 1000.0), view());
        assert!((tall.scale - 0.3).abs() < 1e-6, "{}", tall.scale);
        let tiny = Placement::fit(vec2(10.0, 10.0), view());
        assert!(
            tiny.scale > 1.0,
            "small images are enlarged to fill the view"
        );
    }

    #[test]
    fn zooming_keeps_the_point_under_the_pointer_still() {
        let image = vec2(2000.0, 1000.0);
        let before = Placement::fit(image, view());
        let pointer = pos2(180.0, 120.0);
        let image_point = |p: Placement| {
            let rect = p.image_rect(image, view());
            (pointer - rect.min) / p.scale
        };
        let after = before.zoomed_about(pointer, view(), 1.0, image);
        assert_eq!(after.scale, 1.0);
        let (a, b) = (image_point(before), image_point(after));
        assert!((a - b).length() < 1e-2, "{a:?} moved to {b:?}");
    }

    #[test]
    fn actual_size_means_one_image_pixel_per_screen_pixel() {
        let image = vec2(2000.0, 1000.0);
        let mut state = CanvasState::default();
        state.actual_size(view().center(), image, view(), 2.0);
        assert_eq!(state.zoom_percent(image, view(), 2.0), 100.0);
        let Zoom::Fixed(placement) = state.zoom else {
            panic!("not fixed")
        };
        assert_eq!(
            placement.scale, 0.5,
            "on a 2× screen a pixel is half a point"
        );
    }

    #[test]
    fn zoom_stays_within_its_range_but_fit_is_always_reachable() {
        let image = vec2(2000.0, 1000.0);
        let mut state = CanvasState::default();
        for _ in 0..100 {
            state.zoom_by(ZOOM_STEP, view().center(), image, view(), 1.0);
        }
        assert_eq!(state.zoom_percent(image, view(), 1.0), MAX_ZOOM * 100.0);
        for _ in 0..200 {
            state.zoom_by(1.0 / ZOOM_STEP, view().center(), image, view(), 1.0);
        }
        assert!((state.zoom_percent(image, view(), 1.0) - MIN_ZOOM * 100.0).abs() < 1e-3);

        let huge = vec2(100_000.0, 100_000.0);
        let mut state = CanvasState::default();
        let fit = Placement::fit(huge, view()).scale;
        state.zoom_by(1.0 / ZOOM_STEP, view().center(), huge, view(), 1.0);
        let Zoom::Fixed(placement) = state.zoom else {
            panic!("not fixed")
        };
        assert!(
            (placement.scale - fit).abs() < 1e-9,
            "cannot go below fit here"
        );
    }

    #[test]
    fn panning_moves_the_image_with_the_pointer_but_never_out_of_sight() {
        let image = vec2(2000.0, 1000.0);
        let start = Placement {
            scale: 1.0,
            center: pos2(1000.0, 500.0),
        };
        let moved = start.panned(vec2(30.0, -20.0), image);
        let shift = moved.image_rect(image, view()).min - start.image_rect(image, view()).min;
        assert_eq!(shift, vec2(30.0, -20.0));
        let flung = start.panned(vec2(1e6, 1e6), image);
        assert_eq!(flung.center, pos2(0.0, 0.0));
        assert!(flung.image_rect(image, view()).contains(view().center()));
    }

    #[test]
    fn the_split_steps_by_arrow_keys_and_jumps_to_either_end() {
        assert!((stepped_split(0.5, 1.0, None) - 0.55).abs() < 1e-6);
        assert!((stepped_split(0.5, -2.0, None) - 0.4).abs() < 1e-6);
        assert_eq!(stepped_split(0.98, 3.0, None), 1.0);
        assert_eq!(stepped_split(0.5, 0.0, Some(0.0)), 0.0);
        assert_eq!(stepped_split(0.5, 0.0, Some(7.0)), 1.0);
    }

    #[test]
    fn an_original_of_another_size_is_fitted_into_the_cut_outs_frame() {
        let frame = Rect::from_min_size(pos2(0.0, 0.0), vec2(200.0, 100.0));
        assert_eq!(fitted(vec2(4000.0, 2000.0), frame), frame);
        let square = fitted(vec2(500.0, 500.0), frame);
        assert_eq!(
            square,
            Rect::from_center_size(frame.center(), vec2(100.0, 100.0))
        );
    }
}
