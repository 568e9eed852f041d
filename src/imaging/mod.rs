//! Image work shared by every provider: turning a provider's cut-out into the
//! format and background the user asked for, so results look the same
//! whichever service made them.

use std::fmt;
use std::io::Cursor;
use std::str::FromStr;

use image::{DynamicImage, ImageFormat, Rgba, RgbaImage};
use serde::{Deserialize, Serialize};

/// What goes behind the subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Background {
    /// Keep the alpha channel.
    #[default]
    Transparent,
    /// A solid colour, as RGB.
    Color([u8; 3]),
}

impl Background {
    /// `#RRGGBB`, for providers that take a colour string.
    pub fn hex(self) -> Option<String> {
        match self {
            Background::Transparent => None,
            Background::Color([r, g, b]) => Some(format!("#{r:02x}{g:02x}{b:02x}")),
        }
    }
}

impl fmt::Display for Background {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.hex() {
            None => f.write_str("transparent"),
            Some(hex) => f.write_str(&hex),
        }
    }
}

impl FromStr for Background {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("transparent") {
            return Ok(Background::Transparent);
        }
        let hex = s.strip_prefix('#').unwrap_or(s);
        let valid = hex.len() == 6 && hex.chars().all(|c| c.is_ascii_hexdigit());
        if !valid {
            return Err(format!(
                "`{s}` is not a background; use transparent or #RRGGBB (e.g. #ffffff)"
            ));
        }
        let channel = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).expect("checked hex");
        Ok(Background::Color([channel(0), channel(2), channel(4)]))
    }
}

/// The file format results are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    /// Lossless with alpha; the default.
    #[default]
    Png,
    /// Lossless WebP with alpha: smaller files for the web.
    Webp,
    /// JPEG: no alpha, so it needs a background colour.
    Jpg,
}

impl OutputFormat {
    /// The file extension.
    pub fn extension(self) -> &'static str {
        match self {
            OutputFormat::Png => "png",
            OutputFormat::Webp => "webp",
            OutputFormat::Jpg => "jpg",
        }
    }

    /// Whether the format keeps transparency.
    pub fn has_alpha(self) -> bool {
        !matches!(self, OutputFormat::Jpg)
    }
}

impl FromStr for OutputFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "png" => Ok(OutputFormat::Png),
            "webp" => Ok(OutputFormat::Webp),
            "jpg" | "jpeg" => Ok(OutputFormat::Jpg),
            _ => Err(format!(
                "`{s}` is not an output format; use png, webp or jpg"
            )),
        }
    }
}

/// Why a result could not be turned into the requested output.
#[derive(Debug, thiserror::Error)]
pub enum ImagingError {
    /// The provider's bytes are not an image Cutout can read.
    #[error("the result is not a readable image: {0}")]
    Decode(image::ImageError),
    /// Encoding failed.
    #[error("could not encode the result as {format}: {source}")]
    Encode {
        /// The target format.
        format: &'static str,
        /// Why.
        source: image::ImageError,
    },
    /// JPEG was asked for with a transparent background.
    #[error("jpg has no transparency; choose a background colour")]
    JpgNeedsBackground,
}

/// Turns a provider's cut-out into the requested format and background.
/// Returns `None` when the bytes are already right (a PNG wanted as a
/// transparent PNG), so they are saved untouched rather than re-encoded.
pub fn finish_image(
    bytes: &[u8],
    format: OutputFormat,
    background: Background,
) -> Result<Option<Vec<u8>>, ImagingError> {
    let source_format = image::guess_format(bytes).ok();
    if background == Background::Transparent && source_format == Some(image_format(format)) {
        return Ok(None);
    }
    if background == Background::Transparent && !format.has_alpha() {
        return Err(ImagingError::JpgNeedsBackground);
    }
    let decoded = image::load_from_memory(bytes).map_err(ImagingError::Decode)?;
    let composed = match background {
        Background::Transparent => decoded,
        Background::Color(rgb) => DynamicImage::ImageRgba8(flatten(decoded.into_rgba8(), rgb)),
    };
    let out = match format {
        OutputFormat::Jpg => DynamicImage::ImageRgb8(composed.into_rgb8()),
        _ => DynamicImage::ImageRgba8(composed.into_rgba8()),
    };
    let mut encoded = Cursor::new(Vec::new());
    out.write_to(&mut encoded, image_format(format))
        .map_err(|source| ImagingError::Encode {
            format: format.extension(),
            source,
        })?;
    Ok(Some(encoded.into_inner()))
}

fn image_format(format: OutputFormat) -> ImageFormat {
    match format {
        OutputFormat::Png => ImageFormat::Png,
        OutputFormat::Webp => ImageFormat::WebP,
        OutputFormat::Jpg => ImageFormat::Jpeg,
    }
}

/// Composites the cut-out over a solid colour ("over" with straight alpha).
fn flatten(mut image: RgbaImage, rgb: [u8; 3]) -> RgbaImage {
    for Rgba([r, g, b, a]) in image.pixels_mut() {
        let alpha = u16::from(*a);
        let mix = |fg: u8, bg: u8| {
            ((u16::from(fg) * alpha + u16::from(bg) * (255 - alpha) + 127) / 255) as u8
        };
        *r = mix(*r, rgb[0]);
        *g = mix(*g, rgb[1]);
        *b = mix(*b, rgb[2]);
        *a = 255;
    }
    image
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cutout_png() -> Vec<u8> {
        // Left half: opaque red subject; right half: fully transparent; one
        // half-transparent pixel at (1, 0).
        let mut img = RgbaImage::from_pixel(4, 2, Rgba([0, 0, 0, 0]));
        for y in 0..2 {
            for x in 0..2 {
                img.put_pixel(x, y, Rgba([200, 20, 20, 255]));
            }
        }
        img.put_pixel(1, 0, Rgba([200, 20, 20, 128]));
        let mut out = Cursor::new(Vec::new());
        DynamicImage::ImageRgba8(img)
            .write_to(&mut out, ImageFormat::Png)
            .unwrap();
        out.into_inner()
    }

    #[test]
    fn a_transparent_png_is_kept_byte_for_byte() {
        assert_eq!(
            finish_image(&cutout_png(), OutputFormat::Png, Background::Transparent).unwrap(),
            None
        );
    }

    #[test]
    fn a_colour_background_fills_transparent_pixels_and_blends_soft_edges() {
        let bytes = finish_image(
            &cutout_png(),
            OutputFormat::Png,
            Background::Color([0, 0, 255]),
        )
        .unwrap()
        .unwrap();
        let img = image::load_from_memory(&bytes).unwrap().into_rgba8();
        assert_eq!(img.get_pixel(0, 0), &Rgba([200, 20, 20, 255]));
        assert_eq!(img.get_pixel(3, 1), &Rgba([0, 0, 255, 255]));
        assert_eq!(img.get_pixel(1, 0), &Rgba([100, 10, 137, 255]));
    }

    #[test]
    fn jpg_needs_a_background_and_then_has_no_alpha() {
        assert!(matches!(
            finish_image(&cutout_png(), OutputFormat::Jpg, Background::Transparent),
            Err(ImagingError::JpgNeedsBackground)
        ));
        let bytes = finish_image(
            &cutout_png(),
            OutputFormat::Jpg,
            Background::Color([255, 255, 255]),
        )
        .unwrap()
        .unwrap();
        assert_eq!(image::guess_format(&bytes).unwrap(), ImageFormat::Jpeg);
        let img = image::load_from_memory(&bytes).unwrap();
        assert_eq!((img.width(), img.height()), (4, 2));
        assert!(!img.color().has_alpha());
    }

    #[test]
    fn webp_keeps_transparency() {
        let bytes = finish_image(&cutout_png(), OutputFormat::Webp, Background::Transparent)
            .unwrap()
            .unwrap();
        let img = image::load_from_memory(&bytes).unwrap().into_rgba8();
        assert_eq!(img.get_pixel(3, 1)[3], 0);
        assert_eq!(img.get_pixel(0, 0)[3], 255);
    }

    #[test]
    fn backgrounds_parse_from_the_command_line() {
        assert_eq!("transparent".parse(), Ok(Background::Transparent));
        assert_eq!("#FF8000".parse(), Ok(Background::Color([255, 128, 0])));
        assert!("#ff80".parse::<Background>().is_err());
        assert!("red".parse::<Background>().is_err());
    }
}
