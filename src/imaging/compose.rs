//! Composition: what is done to a cut-out before it is saved, the same for
//! every provider. A [`Composition`] says what goes behind the subject
//! (nothing, a colour or a picture), whether to crop to the subject with a
//! margin, the canvas the result is placed on (the image's own size, a
//! square for marketplaces, any size), where and how large the subject sits
//! on it, and an optional soft drop shadow. Before any of that, its
//! matte can be refined ([`Refine`]: specks, smoothing, hardening, colour
//! decontamination).
//!
//! [`compose`] is pure and size-independent, so the window's live preview
//! runs it on a downscaled cut-out (with [`Composition::scaled`]) and gets
//! the same picture the batch writes, only smaller.
//!
//! Blending and resampling work on premultiplied alpha, so soft edges (hair,
//! glass, motion blur) keep their colour instead of gaining a dark fringe.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use fast_image_resize as fir;
use image::RgbaImage;
use serde::{Deserialize, Serialize};

use super::Background;
use super::refine::{self, Refine};

/// Alpha at or below which a pixel does not count as subject when cropping:
/// providers leave faint haze around a cut-out that should not widen the
/// crop.
pub const SUBJECT_ALPHA_THRESHOLD: u8 = 8;

/// The longest canvas side: larger images open in few tools, and it keeps a
/// typo (`--canvas square:200000`) from allocating gigabytes.
pub const MAX_CANVAS_SIDE_PX: u32 = 16_384;

/// The most pixels a canvas may hold (about 100 MP, 400 MB as RGBA).
pub const MAX_CANVAS_PIXELS: u64 = 100_000_000;

/// The largest length in pixels, for margins, padding and shadows.
pub const MAX_LENGTH_PX: u32 = 10_000;

/// The largest percentage a length may be.
pub const MAX_LENGTH_PERCENT: u32 = 1_000;

/// How a cut-out becomes the saved picture. `Default` leaves it exactly as
/// the provider made it (transparent, uncropped, its own size).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Composition {
    /// What goes behind the subject.
    pub background: Backdrop,
    /// Crop to the subject's bounding box (its alpha above
    /// [`SUBJECT_ALPHA_THRESHOLD`]) plus this margin on every side; a
    /// percentage is of the box's longer side. The crop never reaches past
    /// the image, so a subject cut by the photo's edge stays cut there.
    /// `None` keeps the whole image.
    pub crop: Option<Length>,
    /// The size of the result.
    pub canvas: Canvas,
    /// Where the subject sits on a fixed-size canvas.
    pub anchor: Anchor,
    /// How much of the canvas's inner box (inside the padding) the subject
    /// fills on a fixed-size canvas, 1 to 100: 100 touches the box on its
    /// tighter axis.
    pub scale_percent: u8,
    /// Room between the subject and the canvas edge on every side. On a
    /// fixed canvas it shrinks the inner box (a percentage is of the
    /// canvas's shorter side); on the original canvas it enlarges the
    /// canvas (a percentage is of the image's shorter side).
    pub padding: Length,
    /// A soft shadow under the subject.
    pub shadow: Option<Shadow>,
    /// How the cut-out's matte is cleaned up first (specks, smoothing,
    /// hardening, colour decontamination), before the crop sees it.
    pub refine: Refine,
}

impl Default for Composition {
    fn default() -> Self {
        Composition {
            background: Backdrop::Transparent,
            crop: None,
            canvas: Canvas::Original,
            anchor: Anchor::Center,
            scale_percent: 100,
            padding: Length::ZERO,
            shadow: None,
            refine: Refine::default(),
        }
    }
}

impl Composition {
    /// The composition that only puts `background` behind the subject: what
    /// a background setting meant before compositions existed.
    pub fn with_background(background: impl Into<Backdrop>) -> Self {
        Composition {
            background: background.into(),
            ..Composition::default()
        }
    }

    /// Whether composing changes nothing, so a provider's file can be saved
    /// untouched.
    pub fn is_identity(&self) -> bool {
        self.refine.is_identity() && self.places_as_is()
    }

    /// Whether the subject stays where and as it is: no background, crop,
    /// canvas, padding or shadow (refining aside).
    fn places_as_is(&self) -> bool {
        self.background == Backdrop::Transparent
            && self.crop.is_none()
            && self.canvas == Canvas::Original
            && self.padding.is_zero()
            && self.shadow.is_none()
    }

    /// The same composition for a picture `factor` times the size, for a
    /// preview of a downscaled cut-out: every pixel length and canvas size
    /// is scaled, percentages stay.
    pub fn scaled(&self, factor: f64) -> Composition {
        let factor = if factor.is_finite() && factor > 0.0 {
            factor
        } else {
            1.0
        };
        Composition {
            background: self.background.clone(),
            crop: self.crop.map(|l| l.scaled(factor)),
            canvas: self.canvas.scaled(factor),
            anchor: self.anchor,
            scale_percent: self.scale_percent,
            padding: self.padding.scaled(factor),
            shadow: self.shadow.map(|s| Shadow {
                distance: s.distance.scaled(factor),
                blur: s.blur.scaled(factor),
                ..s
            }),
            refine: self.refine.scaled(factor),
        }
    }

    /// What is wrong with the composition, if anything, in words for the
    /// user. Values parsed from text are already in range; this catches
    /// combinations, and values set in code.
    pub fn problem(&self) -> Option<String> {
        if let Some(problem) = self.refine.problem() {
            return Some(problem);
        }
        if !(1..=100).contains(&self.scale_percent) {
            return Some(format!(
                "scale must be from 1% to 100%, not {}%",
                self.scale_percent
            ));
        }
        if let Length::Percent { hundredths } = self.padding
            && hundredths >= 5_000
            && self.canvas != Canvas::Original
        {
            return Some(format!(
                "padding of {} leaves no room on the canvas; use less than 50%",
                self.padding
            ));
        }
        if let Some(shadow) = &self.shadow
            && shadow.opacity_percent > 100
        {
            return Some(format!(
                "shadow opacity must be from 0% to 100%, not {}%",
                shadow.opacity_percent
            ));
        }
        None
    }
}

/// What goes behind the subject.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backdrop {
    /// Keep the transparency.
    #[default]
    Transparent,
    /// A solid colour, as RGB.
    Color([u8; 3]),
    /// A picture from this machine, scaled to the canvas.
    Image {
        /// The picture; read once per batch.
        path: PathBuf,
        /// How it is scaled to the canvas.
        #[serde(default)]
        fit: BackdropFit,
    },
}

impl Backdrop {
    /// The plain background for providers that compose remotely (video):
    /// they cannot see a picture on this machine, so it becomes transparent.
    pub fn plain(&self) -> Background {
        match self {
            Backdrop::Color(rgb) => Background::Color(*rgb),
            Backdrop::Transparent | Backdrop::Image { .. } => Background::Transparent,
        }
    }

    /// Whether every pixel of the canvas ends up opaque whatever the
    /// subject (a colour, or a picture that fills the canvas), so formats
    /// without alpha lose nothing.
    pub fn is_opaque(&self) -> bool {
        matches!(
            self,
            Backdrop::Color(_)
                | Backdrop::Image {
                    fit: BackdropFit::Fill,
                    ..
                }
        )
    }
}

impl From<Background> for Backdrop {
    fn from(background: Background) -> Self {
        match background {
            Background::Transparent => Backdrop::Transparent,
            Background::Color(rgb) => Backdrop::Color(rgb),
        }
    }
}

/// Written as `transparent`, `#rrggbb` or `image:PATH` (the fit is kept
/// apart, as `--bg-fit` and `background_fit`).
impl fmt::Display for Backdrop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Backdrop::Transparent => f.write_str("transparent"),
            Backdrop::Color(rgb) => write!(f, "{}", Background::Color(*rgb)),
            Backdrop::Image { path, .. } => write!(f, "image:{}", path.display()),
        }
    }
}

impl FromStr for Backdrop {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let text = s.trim();
        if let Some(path) = text
            .strip_prefix("image:")
            .or_else(|| text.strip_prefix("IMAGE:"))
        {
            if path.trim().is_empty() {
                return Err(
                    "image: needs the picture's path, e.g. image:backdrops/studio.jpg".to_owned(),
                );
            }
            return Ok(Backdrop::Image {
                path: PathBuf::from(path),
                fit: BackdropFit::default(),
            });
        }
        text.parse::<Background>().map(Backdrop::from).map_err(|_| {
            format!(
                "`{s}` is not a background; use transparent, #RRGGBB (e.g. #ffffff) or image:PATH"
            )
        })
    }
}

/// How a background picture is scaled to the canvas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackdropFit {
    /// Cover the whole canvas, cutting off what overflows (centred).
    #[default]
    Fill,
    /// Show the whole picture, centred; the rest stays transparent (white
    /// in a JPEG).
    Fit,
}

impl BackdropFit {
    /// The value as typed.
    pub fn as_str(self) -> &'static str {
        match self {
            BackdropFit::Fill => "fill",
            BackdropFit::Fit => "fit",
        }
    }
}

impl fmt::Display for BackdropFit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for BackdropFit {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "fill" | "cover" => Ok(BackdropFit::Fill),
            "fit" | "contain" => Ok(BackdropFit::Fit),
            _ => Err(format!(
                "`{s}` is not a background fit; use fill (cover the canvas) or fit (show it whole)"
            )),
        }
    }
}

/// A distance: pixels, or a percentage of a reference length that each use
/// names (the subject's longer side for a crop margin, the canvas's shorter
/// side for padding…). Written `40px` or `5%` (up to two decimals).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Length {
    /// Pixels of the result.
    Px(u32),
    /// A percentage, in hundredths of a percent so it compares exactly.
    Percent {
        /// 250 is 2.5 %.
        hundredths: u32,
    },
}

impl Length {
    /// No distance.
    pub const ZERO: Length = Length::Px(0);

    /// A percentage, rounded to hundredths (negative and non-finite values
    /// are 0), for sliders.
    pub fn percent(value: f64) -> Length {
        let hundredths = if value.is_finite() && value > 0.0 {
            (value * 100.0)
                .round()
                .min(f64::from(MAX_LENGTH_PERCENT * 100)) as u32
        } else {
            0
        };
        Length::Percent { hundredths }
    }

    /// Whether it is no distance at all.
    pub fn is_zero(self) -> bool {
        matches!(self, Length::Px(0) | Length::Percent { hundredths: 0 })
    }

    /// The distance in pixels, given the length a percentage is of.
    pub fn resolve_px(self, reference_px: u32) -> u32 {
        match self {
            Length::Px(px) => px,
            Length::Percent { hundredths } => {
                (f64::from(reference_px) * f64::from(hundredths) / 10_000.0).round() as u32
            }
        }
    }

    fn scaled(self, factor: f64) -> Length {
        match self {
            Length::Px(px) => Length::Px((f64::from(px) * factor).round() as u32),
            percent => percent,
        }
    }
}

impl fmt::Display for Length {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Length::Px(px) => write!(f, "{px}px"),
            Length::Percent { hundredths } => {
                let (whole, part) = (hundredths / 100, hundredths % 100);
                match part {
                    0 => write!(f, "{whole}%"),
                    p if p % 10 == 0 => write!(f, "{whole}.{}%", p / 10),
                    p => write!(f, "{whole}.{p:02}%"),
                }
            }
        }
    }
}

impl FromStr for Length {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let text = s.trim().to_ascii_lowercase();
        let wrong =
            || format!("`{s}` is not a length; use pixels or a percentage, e.g. 40px or 5%");
        if text == "0" {
            return Ok(Length::ZERO);
        }
        if let Some(number) = text.strip_suffix("px") {
            let px: u32 = number.trim().parse().map_err(|_| wrong())?;
            if px > MAX_LENGTH_PX {
                return Err(format!(
                    "`{s}` is too long; lengths go up to {MAX_LENGTH_PX}px"
                ));
            }
            return Ok(Length::Px(px));
        }
        if let Some(number) = text.strip_suffix('%') {
            let number = number.trim();
            let (whole, part) = number.split_once('.').unwrap_or((number, ""));
            let digits = |t: &str| !t.is_empty() && t.chars().all(|c| c.is_ascii_digit());
            if !digits(whole) || (!part.is_empty() && !digits(part)) {
                return Err(wrong());
            }
            if part.len() > 2 {
                return Err(format!(
                    "`{s}`: percentages take at most two decimals, e.g. 2.5%"
                ));
            }
            let whole: u32 = whole
                .parse()
                .ok()
                .filter(|w| *w <= MAX_LENGTH_PERCENT)
                .ok_or_else(|| {
                    format!("`{s}` is too large; percentages go up to {MAX_LENGTH_PERCENT}%")
                })?;
            let part: u32 = format!("{part:0<2}").parse().unwrap_or(0);
            let hundredths = whole * 100 + part;
            if hundredths > MAX_LENGTH_PERCENT * 100 {
                return Err(format!(
                    "`{s}` is too large; percentages go up to {MAX_LENGTH_PERCENT}%"
                ));
            }
            return Ok(Length::Percent { hundredths });
        }
        if text.parse::<f64>().is_ok() {
            return Err(format!("`{s}` needs a unit: {s}px or {s}%"));
        }
        Err(wrong())
    }
}

impl TryFrom<String> for Length {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<Length> for String {
    fn from(value: Length) -> Self {
        value.to_string()
    }
}

/// The size of the result. Written `original`, `square:2000` or
/// `1600x1200`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Canvas {
    /// The (cropped) image's own size, plus any padding.
    #[default]
    Original,
    /// A square, as marketplaces ask for (e.g. 2000×2000).
    Square {
        /// Its side.
        side_px: u32,
    },
    /// Any size.
    Custom {
        /// Its width.
        width_px: u32,
        /// Its height.
        height_px: u32,
    },
}

impl Canvas {
    /// Its fixed size, if it has one.
    pub fn fixed_size(self) -> Option<(u32, u32)> {
        match self {
            Canvas::Original => None,
            Canvas::Square { side_px } => Some((side_px, side_px)),
            Canvas::Custom {
                width_px,
                height_px,
            } => Some((width_px, height_px)),
        }
    }

    fn scaled(self, factor: f64) -> Canvas {
        let scale = |px: u32| ((f64::from(px) * factor).round() as u32).max(1);
        match self {
            Canvas::Original => Canvas::Original,
            Canvas::Square { side_px } => Canvas::Square {
                side_px: scale(side_px),
            },
            Canvas::Custom {
                width_px,
                height_px,
            } => Canvas::Custom {
                width_px: scale(width_px),
                height_px: scale(height_px),
            },
        }
    }
}

fn check_canvas(width: u32, height: u32, text: &str) -> Result<(), String> {
    if width == 0 || height == 0 {
        return Err(format!("`{text}`: a canvas needs a size of at least 1 px"));
    }
    if width > MAX_CANVAS_SIDE_PX || height > MAX_CANVAS_SIDE_PX {
        return Err(format!(
            "`{text}` is too large; a canvas side is at most {MAX_CANVAS_SIDE_PX} px"
        ));
    }
    if u64::from(width) * u64::from(height) > MAX_CANVAS_PIXELS {
        return Err(format!(
            "`{text}` is too large; a canvas holds at most {} megapixels",
            MAX_CANVAS_PIXELS / 1_000_000
        ));
    }
    Ok(())
}

impl fmt::Display for Canvas {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Canvas::Original => f.write_str("original"),
            Canvas::Square { side_px } => write!(f, "square:{side_px}"),
            Canvas::Custom {
                width_px,
                height_px,
            } => write!(f, "{width_px}x{height_px}"),
        }
    }
}

impl FromStr for Canvas {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let text = s.trim().to_ascii_lowercase();
        let wrong = || {
            format!(
                "`{s}` is not a canvas; use original, square:SIDE (e.g. square:2000) or \
                 WIDTHxHEIGHT (e.g. 1600x1200)"
            )
        };
        let number = |t: &str| -> Result<u32, String> {
            let t = t.trim().trim_end_matches("px");
            if t.is_empty() || !t.chars().all(|c| c.is_ascii_digit()) {
                return Err(wrong());
            }
            // Digits only, so the one failure left is overflow.
            t.parse().or(Ok(u32::MAX))
        };
        if text == "original" {
            return Ok(Canvas::Original);
        }
        if let Some(side) = text.strip_prefix("square") {
            let side = side.trim_start_matches([':', '=', ' ']);
            let side_px = number(side)?;
            check_canvas(side_px, side_px, s)?;
            return Ok(Canvas::Square { side_px });
        }
        let Some((width, height)) = text.split_once(['x', '×']) else {
            return Err(wrong());
        };
        let (width_px, height_px) = (number(width)?, number(height)?);
        check_canvas(width_px, height_px, s)?;
        Ok(Canvas::Custom {
            width_px,
            height_px,
        })
    }
}

impl TryFrom<String> for Canvas {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<Canvas> for String {
    fn from(value: Canvas) -> Self {
        value.to_string()
    }
}

/// Where the subject sits inside the canvas's inner box.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Anchor {
    /// Top left corner.
    TopLeft,
    /// Top edge, centred across.
    Top,
    /// Top right corner.
    TopRight,
    /// Left edge, centred down.
    Left,
    /// The middle.
    #[default]
    Center,
    /// Right edge, centred down.
    Right,
    /// Bottom left corner.
    BottomLeft,
    /// Bottom edge, centred across: products standing on a shelf.
    Bottom,
    /// Bottom right corner.
    BottomRight,
}

impl Anchor {
    /// All nine, row by row from the top left, for pickers.
    pub const ALL: [Anchor; 9] = [
        Anchor::TopLeft,
        Anchor::Top,
        Anchor::TopRight,
        Anchor::Left,
        Anchor::Center,
        Anchor::Right,
        Anchor::BottomLeft,
        Anchor::Bottom,
        Anchor::BottomRight,
    ];

    /// The value as typed.
    pub fn as_str(self) -> &'static str {
        match self {
            Anchor::TopLeft => "top-left",
            Anchor::Top => "top",
            Anchor::TopRight => "top-right",
            Anchor::Left => "left",
            Anchor::Center => "center",
            Anchor::Right => "right",
            Anchor::BottomLeft => "bottom-left",
            Anchor::Bottom => "bottom",
            Anchor::BottomRight => "bottom-right",
        }
    }

    /// Where the subject goes in the spare room, across and down: 0 at
    /// the start, ½ centred, 1 at the end.
    fn fractions(self) -> (f64, f64) {
        let across = match self {
            Anchor::TopLeft | Anchor::Left | Anchor::BottomLeft => 0.0,
            Anchor::Top | Anchor::Center | Anchor::Bottom => 0.5,
            Anchor::TopRight | Anchor::Right | Anchor::BottomRight => 1.0,
        };
        let down = match self {
            Anchor::TopLeft | Anchor::Top | Anchor::TopRight => 0.0,
            Anchor::Left | Anchor::Center | Anchor::Right => 0.5,
            Anchor::BottomLeft | Anchor::Bottom | Anchor::BottomRight => 1.0,
        };
        (across, down)
    }
}

impl fmt::Display for Anchor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Anchor {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut words: Vec<String> = s
            .trim()
            .to_ascii_lowercase()
            .split(['-', '_', ' '])
            .filter(|w| !w.is_empty())
            .map(|w| match w {
                "centre" | "middle" => "center".to_owned(),
                other => other.to_owned(),
            })
            .collect();
        // "left-top" means "top-left".
        if words.len() == 2 && (words[0] == "left" || words[0] == "right") {
            words.swap(0, 1);
        }
        let joined = words.join("-");
        Anchor::ALL
            .into_iter()
            .find(|a| a.as_str() == joined)
            .ok_or_else(|| {
                format!(
                    "`{s}` is not a position; use center, top, bottom, left, right, top-left, \
                     top-right, bottom-left or bottom-right"
                )
            })
    }
}

/// A soft drop shadow cast by the subject onto what is behind it.
/// Percentages are of the placed subject's longer side, so the shadow looks
/// the same at any size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Shadow {
    /// How far the shadow falls from the subject.
    pub distance: Length,
    /// Which way it falls, clockwise from pointing right: 90 is straight
    /// down, 45 down and to the right.
    pub angle_degrees: u16,
    /// How soft its edge is (about twice the Gaussian's standard deviation,
    /// as CSS's blur radius).
    pub blur: Length,
    /// How dark it is where fully covered, 0 to 100.
    pub opacity_percent: u8,
}

impl Default for Shadow {
    fn default() -> Self {
        Shadow {
            distance: Length::Percent { hundredths: 150 },
            angle_degrees: 45,
            blur: Length::Percent { hundredths: 300 },
            opacity_percent: 45,
        }
    }
}

/// A rectangle in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    /// Left edge.
    pub x: u32,
    /// Top edge.
    pub y: u32,
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
}

impl Rect {
    fn right(self) -> u32 {
        self.x + self.width
    }

    fn bottom(self) -> u32 {
        self.y + self.height
    }
}

/// Where things go, worked out before any pixel is touched; the preview can
/// draw guides from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// The result's size.
    pub canvas_px: (u32, u32),
    /// The part of the cut-out that is kept (the crop).
    pub source: Rect,
    /// Where that part lands on the canvas, after scaling.
    pub placed: Rect,
}

/// The subject's bounding box: every pixel whose alpha is above
/// [`SUBJECT_ALPHA_THRESHOLD`]; `None` when there is none.
pub fn subject_box(cutout: &RgbaImage) -> Option<Rect> {
    let (width, height) = cutout.dimensions();
    let raw = cutout.as_raw();
    let stride = width as usize * 4;
    let row_has_subject = |y: u32| {
        let row = &raw[y as usize * stride..(y as usize + 1) * stride];
        row.chunks_exact(4).any(|p| p[3] > SUBJECT_ALPHA_THRESHOLD)
    };
    let top = (0..height).find(|&y| row_has_subject(y))?;
    let bottom = (top..height).rev().find(|&y| row_has_subject(y))?;
    let (mut left, mut right) = (width, 0);
    for y in top..=bottom {
        let row = &raw[y as usize * stride..(y as usize + 1) * stride];
        let mut pixels = row.chunks_exact(4).map(|p| p[3] > SUBJECT_ALPHA_THRESHOLD);
        if let Some(first) = pixels.position(|inside| inside) {
            left = left.min(first as u32);
            let last = row
                .chunks_exact(4)
                .rposition(|p| p[3] > SUBJECT_ALPHA_THRESHOLD)
                .unwrap_or(first);
            right = right.max(last as u32);
        }
    }
    Some(Rect {
        x: left,
        y: top,
        width: right - left + 1,
        height: bottom - top + 1,
    })
}

/// Works out the crop, canvas and placement for `cutout`.
pub fn plan(cutout: &RgbaImage, composition: &Composition) -> Layout {
    let (width, height) = cutout.dimensions();
    let whole = Rect {
        x: 0,
        y: 0,
        width,
        height,
    };
    let source = match composition.crop {
        None => whole,
        Some(margin) => match subject_box(cutout) {
            None => whole,
            Some(subject) => {
                let m = margin.resolve_px(subject.width.max(subject.height));
                let x = subject.x.saturating_sub(m);
                let y = subject.y.saturating_sub(m);
                Rect {
                    x,
                    y,
                    width: subject.right().saturating_add(m).min(width) - x,
                    height: subject.bottom().saturating_add(m).min(height) - y,
                }
            }
        },
    };
    let (cw, ch) = (source.width.max(1), source.height.max(1));
    match composition.canvas.fixed_size() {
        None => {
            let wanted = composition.padding.resolve_px(cw.min(ch));
            // Keep within the canvas limits whatever the padding says.
            let room_w = MAX_CANVAS_SIDE_PX.saturating_sub(cw) / 2;
            let room_h = MAX_CANVAS_SIDE_PX.saturating_sub(ch) / 2;
            let mut pad = wanted.min(room_w).min(room_h);
            while pad > 0 && u64::from(cw + 2 * pad) * u64::from(ch + 2 * pad) > MAX_CANVAS_PIXELS {
                pad /= 2;
            }
            Layout {
                canvas_px: (cw + 2 * pad, ch + 2 * pad),
                source,
                placed: Rect {
                    x: pad,
                    y: pad,
                    width: cw,
                    height: ch,
                },
            }
        }
        Some((canvas_w, canvas_h)) => {
            let shorter = canvas_w.min(canvas_h);
            let pad = composition
                .padding
                .resolve_px(shorter)
                .min(shorter.saturating_sub(1) / 2);
            let (inner_w, inner_h) = (canvas_w - 2 * pad, canvas_h - 2 * pad);
            let scale = f64::from(composition.scale_percent.clamp(1, 100)) / 100.0;
            let fit = (f64::from(inner_w) / f64::from(cw)).min(f64::from(inner_h) / f64::from(ch))
                * scale;
            let placed_w = ((f64::from(cw) * fit).round() as u32).clamp(1, inner_w);
            let placed_h = ((f64::from(ch) * fit).round() as u32).clamp(1, inner_h);
            let (across, down) = composition.anchor.fractions();
            let x = pad + (f64::from(inner_w - placed_w) * across).round() as u32;
            let y = pad + (f64::from(inner_h - placed_h) * down).round() as u32;
            Layout {
                canvas_px: (canvas_w, canvas_h),
                source,
                placed: Rect {
                    x,
                    y,
                    width: placed_w,
                    height: placed_h,
                },
            }
        }
    }
}

/// Composes `cutout` as `composition` says: refines its matte first (see
/// [`refine::refine`]), then crops, places and backs it. `backdrop` is the
/// decoded background picture when the composition has one (see
/// [`super::backdrop_image`]); without it the background stays transparent.
/// Pure and infallible: the preview calls it on every change.
pub fn compose(
    cutout: &RgbaImage,
    composition: &Composition,
    backdrop: Option<&RgbaImage>,
) -> RgbaImage {
    let refined;
    let cutout = if composition.refine.is_identity() {
        cutout
    } else {
        let mut copy = cutout.clone();
        refine::refine(&mut copy, &composition.refine);
        if composition.places_as_is() {
            return copy;
        }
        refined = copy;
        &refined
    };
    if composition.places_as_is() {
        return cutout.clone();
    }
    let layout = plan(cutout, composition);
    let (canvas_w, canvas_h) = layout.canvas_px;
    let mut canvas = match (&composition.background, backdrop) {
        (Backdrop::Color([r, g, b]), _) => {
            RgbaImage::from_pixel(canvas_w, canvas_h, image::Rgba([*r, *g, *b, 255]))
        }
        (Backdrop::Image { fit, .. }, Some(picture)) => {
            backdrop_layer(picture, *fit, canvas_w, canvas_h)
        }
        _ => RgbaImage::new(canvas_w, canvas_h),
    };
    let subject = placed_subject(cutout, &layout);
    let placed = layout.placed;
    if let Some(shadow) = &composition.shadow {
        cast_shadow(&mut canvas, &subject, placed, shadow);
    }
    // Row by row on the raw buffers: this loop touches every pixel of a
    // 24 MP result.
    let visible_w = subject.width().min(canvas_w.saturating_sub(placed.x)) as usize;
    let canvas_stride = canvas_w as usize * 4;
    let subject_stride = subject.width() as usize * 4;
    let canvas_raw: &mut [u8] = &mut canvas;
    for (sy, source_row) in subject.as_raw().chunks_exact(subject_stride).enumerate() {
        let y = placed.y as usize + sy;
        if y >= canvas_h as usize {
            break;
        }
        let start = y * canvas_stride + placed.x as usize * 4;
        let target_row = &mut canvas_raw[start..start + visible_w * 4];
        for (dst, src) in target_row
            .chunks_exact_mut(4)
            .zip(source_row.chunks_exact(4))
        {
            over(dst, [src[0], src[1], src[2], src[3]]);
        }
    }
    canvas
}

/// The kept part of the cut-out at its placed size.
fn placed_subject(cutout: &RgbaImage, layout: &Layout) -> RgbaImage {
    let (source, placed) = (layout.source, layout.placed);
    if source.width == placed.width && source.height == placed.height {
        return image::imageops::crop_imm(cutout, source.x, source.y, source.width, source.height)
            .to_image();
    }
    resize_region(cutout, source, placed.width, placed.height)
}

/// Resamples part of `image` to `width`×`height` on premultiplied alpha
/// (fast_image_resize multiplies and divides by alpha around the
/// convolution), so transparent pixels' colour never bleeds into the
/// edges.
fn resize_region(image: &RgbaImage, region: Rect, width: u32, height: u32) -> RgbaImage {
    let fallback = || {
        let part =
            image::imageops::crop_imm(image, region.x, region.y, region.width, region.height)
                .to_image();
        image::imageops::resize(&part, width, height, image::imageops::FilterType::Triangle)
    };
    let Ok(source) = fir::images::ImageRef::new(
        image.width(),
        image.height(),
        image.as_raw(),
        fir::PixelType::U8x4,
    ) else {
        return fallback();
    };
    let mut target = fir::images::Image::new(width, height, fir::PixelType::U8x4);
    // Lanczos3 keeps detail when shrinking; enlarging with it rings
    // visibly along the subject's edge, so enlarge with Catmull-Rom.
    let filter = if width < region.width || height < region.height {
        fir::FilterType::Lanczos3
    } else {
        fir::FilterType::CatmullRom
    };
    let options = fir::ResizeOptions::new()
        .resize_alg(fir::ResizeAlg::Convolution(filter))
        .crop(
            f64::from(region.x),
            f64::from(region.y),
            f64::from(region.width),
            f64::from(region.height),
        );
    match fir::Resizer::new().resize(&source, &mut target, &options) {
        Ok(()) => RgbaImage::from_raw(width, height, target.into_vec()).unwrap_or_else(fallback),
        Err(_) => fallback(),
    }
}

/// The background picture scaled to the canvas.
fn backdrop_layer(picture: &RgbaImage, fit: BackdropFit, width: u32, height: u32) -> RgbaImage {
    let (pw, ph) = (
        f64::from(picture.width().max(1)),
        f64::from(picture.height().max(1)),
    );
    let (cw, ch) = (f64::from(width), f64::from(height));
    match fit {
        BackdropFit::Fill => {
            // The largest centred part of the picture with the canvas's shape.
            let scale = (cw / pw).max(ch / ph);
            let region_w = ((cw / scale).round() as u32).clamp(1, picture.width());
            let region_h = ((ch / scale).round() as u32).clamp(1, picture.height());
            let region = Rect {
                x: (picture.width() - region_w) / 2,
                y: (picture.height() - region_h) / 2,
                width: region_w,
                height: region_h,
            };
            resize_region(picture, region, width, height)
        }
        BackdropFit::Fit => {
            let scale = (cw / pw).min(ch / ph);
            let fitted_w = ((pw * scale).round() as u32).clamp(1, width);
            let fitted_h = ((ph * scale).round() as u32).clamp(1, height);
            let whole = Rect {
                x: 0,
                y: 0,
                width: picture.width(),
                height: picture.height(),
            };
            let fitted = resize_region(picture, whole, fitted_w, fitted_h);
            let mut layer = RgbaImage::new(width, height);
            image::imageops::replace(
                &mut layer,
                &fitted,
                i64::from((width - fitted_w) / 2),
                i64::from((height - fitted_h) / 2),
            );
            layer
        }
    }
}

/// Porter-Duff "over" on straight-alpha pixels, computed as premultiplied:
/// a half-transparent edge pixel keeps its own colour, weighted by its
/// alpha, instead of being darkened by the transparent black around it.
fn over(dst: &mut [u8], src: [u8; 4]) {
    let sa = u32::from(src[3]);
    if sa == 0 {
        return;
    }
    let da = u32::from(dst[3]);
    if sa == 255 || da == 0 {
        dst.copy_from_slice(&src);
        return;
    }
    if da == 255 {
        for (out, &fg) in dst.iter_mut().zip(&src).take(3) {
            let mixed = u32::from(fg) * sa + u32::from(*out) * (255 - sa);
            *out = ((mixed + 127) / 255) as u8;
        }
        return;
    }
    let (sa, da) = (sa as f32 / 255.0, da as f32 / 255.0);
    let below = da * (1.0 - sa);
    let out_alpha = sa + below;
    for (out, &fg) in dst.iter_mut().zip(&src).take(3) {
        let colour = (f32::from(fg) * sa + f32::from(*out) * below) / out_alpha;
        *out = colour.round().clamp(0.0, 255.0) as u8;
    }
    dst[3] = (out_alpha * 255.0).round() as u8;
}

/// Draws the subject's blurred silhouette, offset and faded, onto the
/// canvas. The blur is three box blurs each way (close to a Gaussian),
/// run at reduced resolution when it is wide, so a large soft shadow on a
/// 24 MP canvas costs about as much as a small one.
fn cast_shadow(canvas: &mut RgbaImage, subject: &RgbaImage, placed: Rect, shadow: &Shadow) {
    let opacity = f32::from(shadow.opacity_percent.min(100)) / 100.0;
    if opacity == 0.0 {
        return;
    }
    let reference = placed.width.max(placed.height);
    let distance = f64::from(shadow.distance.resolve_px(reference));
    let angle = f64::from(shadow.angle_degrees).to_radians();
    let dx = (distance * angle.cos()).round() as i64;
    let dy = (distance * angle.sin()).round() as i64;
    let sigma = shadow.blur.resolve_px(reference) as f32 / 2.0;
    // Work at 1/step resolution: a blur wider than ~4 px per step loses
    // nothing visible.
    let step = ((sigma / 4.0).floor() as u32).clamp(1, 16);
    let plane_sigma = sigma / step as f32;
    let boxes = box_sizes(plane_sigma);
    let spread = boxes.iter().map(|b| b / 2).sum::<usize>() + 1;
    let (sw, sh) = subject.dimensions();
    let core_w = sw.div_ceil(step) as usize;
    let core_h = sh.div_ceil(step) as usize;
    let (pw, ph) = (core_w + 2 * spread, core_h + 2 * spread);
    let mut plane = vec![0f32; pw * ph];
    let weight = 1.0 / (255.0 * (step * step) as f32);
    for (x, y, pixel) in subject.enumerate_pixels() {
        let (px, py) = ((x / step) as usize + spread, (y / step) as usize + spread);
        plane[py * pw + px] += f32::from(pixel.0[3]) * weight;
    }
    if plane_sigma > 0.0 {
        let mut scratch = vec![0f32; plane.len()];
        for size in boxes {
            let radius = size / 2;
            if radius == 0 {
                continue;
            }
            box_blur_rows(&plane, &mut scratch, pw, ph, radius);
            box_blur_columns(&scratch, &mut plane, pw, ph, radius);
        }
    }
    // Where plane pixel (0, 0) starts on the canvas, in canvas pixels.
    let origin_x = i64::from(placed.x) + dx - (spread as i64) * i64::from(step);
    let origin_y = i64::from(placed.y) + dy - (spread as i64) * i64::from(step);
    let extent_w = (pw as i64) * i64::from(step);
    let extent_h = (ph as i64) * i64::from(step);
    let (canvas_w, canvas_h) = (i64::from(canvas.width()), i64::from(canvas.height()));
    let (x0, x1) = (origin_x.max(0), (origin_x + extent_w).min(canvas_w));
    let (y0, y1) = (origin_y.max(0), (origin_y + extent_h).min(canvas_h));
    let inv_step = 1.0 / step as f32;
    let sample = |fx: f32, fy: f32| -> f32 {
        // Bilinear, treating outside the plane as no shadow.
        let (fx, fy) = (fx - 0.5, fy - 0.5);
        let (ix, iy) = (fx.floor(), fy.floor());
        let (tx, ty) = (fx - ix, fy - iy);
        let at = |x: f32, y: f32| -> f32 {
            if x < 0.0 || y < 0.0 || x >= pw as f32 || y >= ph as f32 {
                0.0
            } else {
                plane[y as usize * pw + x as usize]
            }
        };
        let top = at(ix, iy) * (1.0 - tx) + at(ix + 1.0, iy) * tx;
        let bottom = at(ix, iy + 1.0) * (1.0 - tx) + at(ix + 1.0, iy + 1.0) * tx;
        top * (1.0 - ty) + bottom * ty
    };
    let stride = canvas.width() as usize * 4;
    let raw: &mut [u8] = canvas;
    for y in y0..y1 {
        let fy = ((y - origin_y) as f32 + 0.5) * inv_step;
        let row = &mut raw[y as usize * stride..(y as usize + 1) * stride];
        for x in x0..x1 {
            let cover = if step == 1 {
                plane[(y - origin_y) as usize * pw + (x - origin_x) as usize]
            } else {
                sample(((x - origin_x) as f32 + 0.5) * inv_step, fy)
            };
            let alpha = (cover.clamp(0.0, 1.0) * opacity * 255.0).round() as u8;
            if alpha > 0 {
                let at = x as usize * 4;
                over(&mut row[at..at + 4], [0, 0, 0, alpha]);
            }
        }
    }
}

/// The widths of three box blurs whose sum approximates a Gaussian of
/// `sigma` (W. Jarosz / P. Kovesi's construction).
pub(super) fn box_sizes(sigma: f32) -> [usize; 3] {
    if sigma <= 0.0 {
        return [1, 1, 1];
    }
    let n = 3.0f32;
    let ideal = (12.0 * sigma * sigma / n + 1.0).sqrt();
    let mut lower = ideal.floor() as i64;
    if lower % 2 == 0 {
        lower -= 1;
    }
    let lower = lower.max(1);
    let upper = lower + 2;
    let l = lower as f32;
    let m = ((12.0 * sigma * sigma - n * l * l - 4.0 * n * l - 3.0 * n) / (-4.0 * l - 4.0))
        .round()
        .clamp(0.0, 3.0) as usize;
    let mut sizes = [upper as usize; 3];
    for size in sizes.iter_mut().take(m) {
        *size = lower as usize;
    }
    sizes
}

/// A box blur along rows, zero outside the plane.
fn box_blur_rows(src: &[f32], dst: &mut [f32], width: usize, height: usize, radius: usize) {
    let norm = 1.0 / (2 * radius + 1) as f32;
    for y in 0..height {
        let row = &src[y * width..(y + 1) * width];
        let out = &mut dst[y * width..(y + 1) * width];
        let mut sum: f32 = row[..(radius + 1).min(width)].iter().sum();
        for x in 0..width {
            out[x] = sum * norm;
            if x + radius + 1 < width {
                sum += row[x + radius + 1];
            }
            if x >= radius {
                sum -= row[x - radius];
            }
        }
    }
}

/// A box blur along columns, zero outside the plane; walks rows in order
/// so it stays cache-friendly on large planes.
fn box_blur_columns(src: &[f32], dst: &mut [f32], width: usize, height: usize, radius: usize) {
    let norm = 1.0 / (2 * radius + 1) as f32;
    let mut sums = vec![0f32; width];
    for y in 0..(radius + 1).min(height) {
        for (sum, value) in sums.iter_mut().zip(&src[y * width..(y + 1) * width]) {
            *sum += value;
        }
    }
    for y in 0..height {
        for (out, sum) in dst[y * width..(y + 1) * width].iter_mut().zip(&sums) {
            *out = sum * norm;
        }
        if y + radius + 1 < height {
            let row = &src[(y + radius + 1) * width..(y + radius + 2) * width];
            for (sum, value) in sums.iter_mut().zip(row) {
                *sum += value;
            }
        }
        if y >= radius {
            let row = &src[(y - radius) * width..(y - radius + 1) * width];
            for (sum, value) in sums.iter_mut().zip(row) {
                *sum -= value;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use image::Rgba;

    use super::*;

    const RED: Rgba<u8> = Rgba([220, 30, 30, 255]);
    const CLEAR: Rgba<u8> = Rgba([0, 0, 0, 0]);

    /// A `width`×`height` transparent cut-out with an opaque red subject
    /// filling `subject`.
    fn cutout(width: u32, height: u32, subject: Rect) -> RgbaImage {
        RgbaImage::from_fn(width, height, |x, y| {
            let inside = (subject.x..subject.right()).contains(&x)
                && (subject.y..subject.bottom()).contains(&y);
            if inside { RED } else { CLEAR }
        })
    }

    fn rect(x: u32, y: u32, width: u32, height: u32) -> Rect {
        Rect {
            x,
            y,
            width,
            height,
        }
    }

    fn crop(margin: &str) -> Composition {
        Composition {
            crop: Some(margin.parse().unwrap()),
            ..Composition::default()
        }
    }

    #[test]
    fn the_default_composition_returns_the_cut_out_unchanged() {
        let mut image = cutout(30, 20, rect(5, 5, 10, 10));
        image.put_pixel(0, 0, Rgba([7, 8, 9, 0]));
        image.put_pixel(5, 5, Rgba([7, 8, 9, 100]));
        assert!(Composition::default().is_identity());
        assert_eq!(compose(&image, &Composition::default(), None), image);
    }

    #[test]
    fn the_subject_box_ignores_faint_haze() {
        let mut image = cutout(100, 80, rect(30, 20, 20, 40));
        image.put_pixel(2, 2, Rgba([255, 255, 255, SUBJECT_ALPHA_THRESHOLD]));
        image.put_pixel(99, 79, Rgba([255, 255, 255, 3]));
        assert_eq!(subject_box(&image), Some(rect(30, 20, 20, 40)));
        assert_eq!(subject_box(&RgbaImage::new(10, 10)), None);
    }

    #[test]
    fn crop_to_subject_keeps_a_margin_in_pixels() {
        let image = cutout(100, 80, rect(30, 20, 20, 40));
        let out = compose(&image, &crop("5px"), None);
        assert_eq!(out.dimensions(), (30, 50));
        assert_eq!(*out.get_pixel(5, 5), RED, "the subject's top-left");
        assert_eq!(*out.get_pixel(24, 44), RED, "the subject's bottom-right");
        assert_eq!(*out.get_pixel(4, 5), CLEAR);
        assert_eq!(*out.get_pixel(25, 44), CLEAR);
        assert_eq!(*out.get_pixel(5, 45), CLEAR);
    }

    #[test]
    fn a_percentage_margin_is_of_the_subjects_longer_side() {
        let image = cutout(100, 80, rect(30, 20, 20, 40));
        // 10% of 40 px is 4 px on every side.
        let layout = plan(&image, &crop("10%"));
        assert_eq!(layout.source, rect(26, 16, 28, 48));
        assert_eq!(compose(&image, &crop("10%"), None).dimensions(), (28, 48));
        assert_eq!(plan(&image, &crop("0")).source, rect(30, 20, 20, 40));
    }

    #[test]
    fn a_margin_never_reaches_past_the_image() {
        let image = cutout(100, 80, rect(0, 50, 20, 30));
        assert_eq!(plan(&image, &crop("10px")).source, rect(0, 40, 30, 40));
    }

    #[test]
    fn cropping_an_image_without_a_subject_keeps_it_whole() {
        let empty = RgbaImage::new(40, 30);
        assert_eq!(compose(&empty, &crop("5%"), None).dimensions(), (40, 30));
    }

    /// A 40×20 subject on a 200×100 canvas with 10 px padding at 50 %
    /// scale: the inner box is 180×80, the subject fits it at ×4, so it is
    /// placed at ×2 as 80×40 with 100 px across and 40 px down to spare.
    fn placed(anchor: Anchor) -> (Layout, RgbaImage) {
        let image = cutout(100, 100, rect(30, 40, 40, 20));
        let composition = Composition {
            crop: Some(Length::ZERO),
            canvas: "200x100".parse().unwrap(),
            anchor,
            scale_percent: 50,
            padding: Length::Px(10),
            ..Composition::default()
        };
        (
            plan(&image, &composition),
            compose(&image, &composition, None),
        )
    }

    #[test]
    fn each_anchor_places_the_subject_in_its_spot_of_the_inner_box() {
        for (anchor, x, y) in [
            (Anchor::TopLeft, 10, 10),
            (Anchor::Top, 60, 10),
            (Anchor::TopRight, 110, 10),
            (Anchor::Left, 10, 30),
            (Anchor::Center, 60, 30),
            (Anchor::Right, 110, 30),
            (Anchor::BottomLeft, 10, 50),
            (Anchor::Bottom, 60, 50),
            (Anchor::BottomRight, 110, 50),
        ] {
            let (layout, out) = placed(anchor);
            assert_eq!(layout.canvas_px, (200, 100), "{anchor}");
            assert_eq!(layout.placed, rect(x, y, 80, 40), "{anchor}");
            assert_eq!(out.dimensions(), (200, 100), "{anchor}");
            // Inside the placed box: the subject, upscaled; outside it:
            // nothing.
            for (px, py) in [(x + 6, y + 6), (x + 73, y + 33), (x + 40, y + 20)] {
                assert_eq!(*out.get_pixel(px, py), RED, "{anchor} at ({px},{py})");
            }
            for (px, py) in [
                (x - 1, y + 20),
                (x + 80, y + 20),
                (x + 40, y - 1),
                (x + 40, y + 40),
            ] {
                assert_eq!(out.get_pixel(px, py)[3], 0, "{anchor} at ({px},{py})");
            }
        }
    }

    #[test]
    fn a_colour_background_fills_the_canvas_and_soft_edges_blend_with_it() {
        let mut image = cutout(20, 10, rect(5, 2, 10, 6));
        image.put_pixel(4, 4, Rgba([200, 20, 20, 128]));
        let composition = Composition::with_background(Backdrop::Color([0, 0, 255]));
        let out = compose(&image, &composition, None);
        assert_eq!(*out.get_pixel(0, 0), Rgba([0, 0, 255, 255]));
        assert_eq!(*out.get_pixel(19, 9), Rgba([0, 0, 255, 255]));
        assert_eq!(*out.get_pixel(6, 3), RED);
        assert_eq!(*out.get_pixel(4, 4), Rgba([100, 10, 137, 255]));
        assert!(out.pixels().all(|p| p[3] == 255));
    }

    #[test]
    fn canvas_presets_set_the_result_size() {
        let image = cutout(300, 200, rect(100, 50, 100, 100));
        for (canvas, size) in [
            ("original", (300, 200)),
            ("square:800", (800, 800)),
            ("1600x1200", (1600, 1200)),
        ] {
            let composition = Composition {
                canvas: canvas.parse().unwrap(),
                background: Backdrop::Color([255, 255, 255]),
                ..Composition::default()
            };
            assert_eq!(
                compose(&image, &composition, None).dimensions(),
                size,
                "{canvas}"
            );
        }
        // On the original canvas, padding adds a border: 10% of 200 px.
        let bordered = Composition {
            padding: "10%".parse().unwrap(),
            ..Composition::default()
        };
        let layout = plan(&image, &bordered);
        assert_eq!(layout.canvas_px, (340, 240));
        assert_eq!(layout.placed, rect(20, 20, 300, 200));
    }

    /// A 200×100 picture: blue on the left half, green on the right.
    fn two_tone() -> RgbaImage {
        RgbaImage::from_fn(200, 100, |x, _| {
            if x < 100 {
                Rgba([0, 0, 255, 255])
            } else {
                Rgba([0, 255, 0, 255])
            }
        })
    }

    fn on_picture(fit: BackdropFit) -> RgbaImage {
        let image = RgbaImage::new(50, 50);
        let composition = Composition {
            background: Backdrop::Image {
                path: "two-tone.png".into(),
                fit,
            },
            canvas: Canvas::Square { side_px: 100 },
            ..Composition::default()
        };
        compose(&image, &composition, Some(&two_tone()))
    }

    fn close(pixel: &Rgba<u8>, expected: [u8; 4]) -> bool {
        pixel
            .0
            .iter()
            .zip(expected)
            .all(|(a, b)| a.abs_diff(b) <= 3)
    }

    #[test]
    fn an_image_background_can_fill_the_canvas_cutting_off_the_overflow() {
        let out = on_picture(BackdropFit::Fill);
        assert!(out.pixels().all(|p| p[3] == 255));
        // The middle 100×100 of the picture: half blue, half green.
        assert!(close(out.get_pixel(5, 5), [0, 0, 255, 255]));
        assert!(close(out.get_pixel(45, 95), [0, 0, 255, 255]));
        assert!(close(out.get_pixel(55, 5), [0, 255, 0, 255]));
        assert!(close(out.get_pixel(95, 95), [0, 255, 0, 255]));
    }

    #[test]
    fn an_image_background_can_fit_whole_leaving_the_rest_transparent() {
        let out = on_picture(BackdropFit::Fit);
        // 100×50, centred: rows 25 to 74.
        assert_eq!(out.get_pixel(50, 10)[3], 0);
        assert_eq!(out.get_pixel(50, 90)[3], 0);
        assert!(close(out.get_pixel(10, 30), [0, 0, 255, 255]));
        assert!(close(out.get_pixel(90, 70), [0, 255, 0, 255]));
    }

    #[test]
    fn a_shadow_darkens_below_right_of_the_subject_and_nothing_far_away() {
        let image = cutout(200, 200, rect(60, 60, 80, 80));
        let composition = Composition {
            background: Backdrop::Color([255, 255, 255]),
            shadow: Some(Shadow {
                distance: Length::Px(12),
                angle_degrees: 45,
                blur: Length::Px(6),
                opacity_percent: 60,
            }),
            ..Composition::default()
        };
        let out = compose(&image, &composition, None);
        let brightness = |x, y| {
            let p: &Rgba<u8> = out.get_pixel(x, y);
            u32::from(p[0]) + u32::from(p[1]) + u32::from(p[2])
        };
        // Just past the subject's bottom-right corner, inside the shadow.
        assert!(
            brightness(143, 143) < 3 * 200,
            "{:?}",
            out.get_pixel(143, 143)
        );
        assert!(
            brightness(100, 145) < 3 * 200,
            "{:?}",
            out.get_pixel(100, 145)
        );
        // The same distance above and left of the subject: no shadow.
        assert_eq!(brightness(56, 56), 3 * 255);
        // Far away: untouched.
        assert_eq!(brightness(5, 195), 3 * 255);
        assert_eq!(brightness(195, 5), 3 * 255);
        assert_eq!(brightness(198, 198), 3 * 255);
        // The subject itself is drawn over its shadow.
        assert_eq!(*out.get_pixel(100, 100), RED);
        // Soft: darkness fades out gradually, not in one step.
        let fade: Vec<u32> = (140..160).map(|y| brightness(100, y)).collect();
        assert!(fade.windows(2).all(|w| w[0] <= w[1]), "{fade:?}");
        assert!(
            fade.iter()
                .filter(|b| **b > 3 * 60 && **b < 3 * 250)
                .count()
                >= 4
        );
    }

    #[test]
    fn a_shadow_on_a_transparent_background_is_translucent_black() {
        let image = cutout(100, 100, rect(30, 30, 40, 40));
        let composition = Composition {
            shadow: Some(Shadow::default()),
            ..Composition::default()
        };
        let out = compose(&image, &composition, None);
        let below = out.get_pixel(50, 71);
        assert!(below[3] > 0 && below[3] < 255, "{below:?}");
        assert_eq!(&below.0[..3], &[0, 0, 0]);
        assert_eq!(out.get_pixel(2, 2)[3], 0);
    }

    #[test]
    fn a_wide_shadow_is_as_smooth_as_a_narrow_one() {
        // Blurs over ~4 px run at reduced resolution: check the result
        // still fades smoothly (no blocks) across its edge.
        let image = cutout(400, 400, rect(100, 100, 200, 200));
        let composition = Composition {
            background: Backdrop::Color([255, 255, 255]),
            shadow: Some(Shadow {
                distance: Length::Px(0),
                angle_degrees: 0,
                blur: Length::Px(60),
                opacity_percent: 100,
            }),
            ..Composition::default()
        };
        let out = compose(&image, &composition, None);
        let row: Vec<i32> = (300..360)
            .map(|x| i32::from(out.get_pixel(x, 200)[0]))
            .collect();
        assert!(row.windows(2).all(|w| w[0] <= w[1] + 1), "{row:?}");
        assert!(row.windows(2).all(|w| (w[1] - w[0]).abs() <= 12), "{row:?}");
        assert!(row[0] < 160 && row[59] > 240, "{row:?}");
    }

    #[test]
    fn scaling_keeps_soft_edges_free_of_dark_fringes() {
        // A white subject whose edge fades out over transparent *black*:
        // resampling straight alpha would pull the edge towards grey.
        let image = RgbaImage::from_fn(64, 64, |x, _| {
            let alpha = (255 - (x as i32 - 20).clamp(0, 20) * 12).clamp(0, 255) as u8;
            if x < 40 {
                Rgba([255, 255, 255, alpha])
            } else {
                CLEAR
            }
        });
        let composition = Composition {
            canvas: Canvas::Square { side_px: 23 },
            ..Composition::default()
        };
        let out = compose(&image, &composition, None);
        for pixel in out.pixels().filter(|p| p[3] > 0) {
            assert!(pixel.0[..3].iter().all(|&c| c >= 250), "{pixel:?}");
        }
    }

    #[test]
    fn a_scaled_composition_previews_the_same_layout_smaller() {
        let composition = Composition {
            crop: Some(Length::Px(40)),
            canvas: Canvas::Square { side_px: 2000 },
            padding: Length::Px(100),
            shadow: Some(Shadow {
                distance: Length::Px(30),
                blur: Length::Percent { hundredths: 300 },
                ..Shadow::default()
            }),
            ..Composition::default()
        };
        let small = composition.scaled(0.1);
        assert_eq!(small.canvas, Canvas::Square { side_px: 200 });
        assert_eq!(small.crop, Some(Length::Px(4)));
        assert_eq!(small.padding, Length::Px(10));
        let shadow = small.shadow.unwrap();
        assert_eq!(shadow.distance, Length::Px(3));
        assert_eq!(shadow.blur, Length::Percent { hundredths: 300 });
        let full = plan(&cutout(1000, 800, rect(200, 200, 400, 300)), &composition);
        let preview = plan(&cutout(100, 80, rect(20, 20, 40, 30)), &small);
        assert_eq!(preview.canvas_px, (200, 200));
        assert_eq!(full.placed.x / 10, preview.placed.x);
        assert_eq!(full.placed.width / 10, preview.placed.width);
    }

    #[test]
    fn lengths_canvases_anchors_and_backgrounds_read_as_typed_and_print_back() {
        for text in ["40px", "0px", "5%", "2.5%", "0.25%", "1000%"] {
            assert_eq!(text.parse::<Length>().unwrap().to_string(), text);
        }
        assert_eq!("0".parse::<Length>(), Ok(Length::ZERO));
        assert_eq!(" 12 PX ".parse::<Length>(), Ok(Length::Px(12)));
        for bad in ["5", "-3px", "1.234%", "abc", "%", "1001%", "10001px"] {
            assert!(bad.parse::<Length>().is_err(), "{bad}");
        }
        for text in ["original", "square:2000", "1600x1200"] {
            assert_eq!(text.parse::<Canvas>().unwrap().to_string(), text);
        }
        assert_eq!(
            "1600×1200".parse::<Canvas>(),
            Ok(Canvas::Custom {
                width_px: 1600,
                height_px: 1200
            })
        );
        for bad in [
            "square",
            "square:",
            "0x10",
            "20000x10",
            "10000x10001",
            "big",
        ] {
            assert!(bad.parse::<Canvas>().is_err(), "{bad}");
        }
        for anchor in Anchor::ALL {
            assert_eq!(anchor.as_str().parse(), Ok(anchor));
        }
        assert_eq!("Left Top".parse(), Ok(Anchor::TopLeft));
        assert_eq!("centre".parse(), Ok(Anchor::Center));
        assert!("middle-earth".parse::<Anchor>().is_err());
        assert_eq!(
            "image:/tmp/studio.jpg".parse(),
            Ok(Backdrop::Image {
                path: "/tmp/studio.jpg".into(),
                fit: BackdropFit::Fill
            })
        );
        assert_eq!("#FFFFFF".parse(), Ok(Backdrop::Color([255, 255, 255])));
        assert_eq!("transparent".parse(), Ok(Backdrop::Transparent));
        assert!("image:".parse::<Backdrop>().is_err());
    }

    #[test]
    fn a_composition_round_trips_through_json_and_fills_in_what_is_missing() {
        let composition = Composition {
            background: Backdrop::Image {
                path: "/backdrops/studio.jpg".into(),
                fit: BackdropFit::Fit,
            },
            crop: Some(Length::Percent { hundredths: 250 }),
            canvas: Canvas::Custom {
                width_px: 1600,
                height_px: 1200,
            },
            anchor: Anchor::Bottom,
            scale_percent: 90,
            padding: Length::Px(40),
            shadow: Some(Shadow::default()),
            refine: Refine {
                smooth_px: 3,
                decontaminate: true,
                ..Refine::default()
            },
        };
        let json = serde_json::to_string(&composition).unwrap();
        assert!(json.contains("\"canvas\":\"1600x1200\""), "{json}");
        assert!(json.contains("\"crop\":\"2.5%\""), "{json}");
        assert_eq!(
            serde_json::from_str::<Composition>(&json).unwrap(),
            composition
        );
        let partial: Composition = serde_json::from_str(r#"{"canvas":"square:800"}"#).unwrap();
        assert_eq!(partial.canvas, Canvas::Square { side_px: 800 });
        assert_eq!(partial.scale_percent, 100);
        assert!(partial.refine.is_identity(), "records from before refining");
        assert!(serde_json::from_str::<Composition>(r#"{"canvas":"square:0"}"#).is_err());
    }

    #[test]
    fn problems_are_found_in_combinations_set_in_code() {
        let mut composition = Composition {
            canvas: Canvas::Square { side_px: 100 },
            padding: Length::Percent { hundredths: 5_000 },
            ..Composition::default()
        };
        assert!(composition.problem().unwrap().contains("50%"));
        composition.padding = Length::ZERO;
        composition.scale_percent = 0;
        assert!(composition.problem().unwrap().contains("scale"));
        composition.scale_percent = 100;
        assert_eq!(composition.problem(), None);
    }

    #[test]
    fn video_providers_get_a_plain_colour_or_transparency() {
        assert_eq!(
            Backdrop::Color([1, 2, 3]).plain(),
            Background::Color([1, 2, 3])
        );
        let picture = Backdrop::Image {
            path: "/b.jpg".into(),
            fit: BackdropFit::Fill,
        };
        assert_eq!(picture.plain(), Background::Transparent);
    }
}
