//! Image work shared by every provider: turning a provider's cut-out into the
//! format and background the user asked for, so results look the same
//! whichever service made them.

pub mod compose;
pub mod decode;
pub mod encode;
pub mod refine;
pub mod thumbnail;
pub mod upload;

use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use image::{ImageFormat, RgbaImage};
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
    /// Only the alpha channel, as a greyscale PNG: a matte for tools that
    /// combine it with the original themselves.
    Mask,
}

impl OutputFormat {
    /// The file extension.
    pub fn extension(self) -> &'static str {
        match self {
            OutputFormat::Png => "png",
            OutputFormat::Webp => "webp",
            OutputFormat::Jpg => "jpg",
            OutputFormat::Mask => "png",
        }
    }

    /// The value as typed (`--format`, the settings file).
    pub fn as_str(self) -> &'static str {
        match self {
            OutputFormat::Mask => "mask",
            other => other.extension(),
        }
    }

    /// Whether the format keeps transparency.
    pub fn has_alpha(self) -> bool {
        matches!(self, OutputFormat::Png | OutputFormat::Webp)
    }

    /// Whether a transparent background is refused: JPEG has nowhere to
    /// keep it. (A mask needs no background: it is the transparency.)
    pub fn needs_background(self) -> bool {
        self == OutputFormat::Jpg
    }

    /// Whether a quality setting means anything: JPEG, and WebP (where it
    /// makes the file lossy).
    pub fn takes_quality(self) -> bool {
        matches!(self, OutputFormat::Jpg | OutputFormat::Webp)
    }
}

impl FromStr for OutputFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "png" => Ok(OutputFormat::Png),
            "webp" => Ok(OutputFormat::Webp),
            "jpg" | "jpeg" => Ok(OutputFormat::Jpg),
            "mask" => Ok(OutputFormat::Mask),
            _ => Err(format!(
                "`{s}` is not an output format; use png, webp, jpg or mask"
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
    /// The background picture could not be used; the file comes last.
    #[error("cannot use the background picture ({reason}): {}", .path.display())]
    Backdrop {
        /// Why.
        reason: String,
        /// The picture.
        path: std::path::PathBuf,
    },
    /// The result is larger than the format can hold.
    #[error(
        "the result is {width}×{height} px, more than {format} can hold ({limit_px} px a side); \
         choose png or a smaller canvas"
    )]
    TooLargeFor {
        /// The format.
        format: &'static str,
        /// The result's width.
        width: u32,
        /// The result's height.
        height: u32,
        /// The format's longest side.
        limit_px: u32,
    },
    /// An input picture could not be opened; the file comes last.
    #[error("{problem}{}", decode::path_suffix(.path))]
    Open {
        /// What is wrong with it.
        problem: decode::DecodeProblem,
        /// The file, when the picture came from one.
        path: Option<std::path::PathBuf>,
    },
    /// An input is over its provider's limits and the user has not allowed
    /// Cutout to send a smaller copy.
    #[error(
        "{provider} takes images up to {limit}, and this one is {actual}; allow downscaling \
         (\"Downscale to fit\" in the window, or --allow-downscale) to send a smaller copy, \
         the original is never changed: {}",
        .path.display()
    )]
    OverProviderLimit {
        /// The provider's name.
        provider: &'static str,
        /// The limit, in words ("25 MP").
        limit: String,
        /// The input's size against that limit ("48 MP").
        actual: String,
        /// The input.
        path: std::path::PathBuf,
    },
    /// The provider does not take the input's format and this build cannot
    /// convert it.
    #[error(
        "{provider} does not take {format} files and this build of Cutout cannot convert them \
         ({why}); convert it to JPEG or PNG first, or choose a provider that takes {format}: {}",
        .path.display()
    )]
    CannotConvert {
        /// The provider's name.
        provider: &'static str,
        /// The input's format.
        format: decode::SourceFormat,
        /// Why it cannot be converted.
        why: &'static str,
        /// The input.
        path: std::path::PathBuf,
    },
    /// The copy prepared for upload could not be made.
    #[error("cannot prepare the upload copy ({reason}): {}", .path.display())]
    UploadCopy {
        /// What went wrong.
        reason: String,
        /// The input.
        path: std::path::PathBuf,
    },
}

/// Everything about how a result is finished, apart from where it goes:
/// the composition and the file format. The same for every provider.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Finish {
    /// The file format.
    pub format: OutputFormat,
    /// Lossy quality (see [`encode::EncodeOptions::quality`]).
    pub quality: Option<u8>,
    /// Edge refinement ([`compose::Composition::refine`]), background,
    /// crop, canvas, placement and shadow.
    pub composition: compose::Composition,
}

/// Turns a provider's cut-out into the requested format and background.
/// Returns `None` when the bytes are already right (a PNG wanted as a
/// transparent PNG), so they are saved untouched rather than re-encoded.
pub fn finish_image(
    bytes: &[u8],
    format: OutputFormat,
    background: Background,
) -> Result<Option<Vec<u8>>, ImagingError> {
    finish(
        bytes,
        &Finish {
            format,
            quality: None,
            composition: compose::Composition::with_background(background),
        },
    )
}

/// Composes and encodes a provider's cut-out as `finish` says. Returns
/// `None` when nothing would change (no composition, and the bytes are
/// already in the format, with no quality asked for), so the provider's
/// file is saved untouched rather than re-encoded. A result that came with
/// an ICC profile keeps it (its pixels are composed in sRGB and converted
/// back), otherwise the output is sRGB.
pub fn finish(bytes: &[u8], finish: &Finish) -> Result<Option<Vec<u8>>, ImagingError> {
    let composition = &finish.composition;
    let source_format = image::guess_format(bytes).ok();
    let unchanged = composition.is_identity()
        && finish.format != OutputFormat::Mask
        && source_format == Some(image_format(finish.format))
        && (finish.quality.is_none() || finish.format == OutputFormat::Png);
    if unchanged {
        return Ok(None);
    }
    if finish.format.needs_background() && composition.background == compose::Backdrop::Transparent
    {
        return Err(ImagingError::JpgNeedsBackground);
    }
    let decoded = decode::open_bytes(bytes, &decode::DecodeLimits::default())?;
    compose_and_encode(&decoded.image.into_rgba8(), decoded.icc_profile, finish).map(Some)
}

/// Composes and encodes a cut-out that is already in memory (the local
/// engine's), as `finish` says, always producing a file (sRGB).
pub fn finish_pixels(cutout: &RgbaImage, finish: &Finish) -> Result<Vec<u8>, ImagingError> {
    if finish.format.needs_background()
        && finish.composition.background == compose::Backdrop::Transparent
    {
        return Err(ImagingError::JpgNeedsBackground);
    }
    compose_and_encode(cutout, None, finish)
}

/// The part of finishing after decoding: composition, conversion back to
/// the cut-out's own profile when it had one, and encoding.
fn compose_and_encode(
    cutout: &RgbaImage,
    icc_profile: Option<Vec<u8>>,
    finish: &Finish,
) -> Result<Vec<u8>, ImagingError> {
    let composition = &finish.composition;
    let backdrop = match &composition.background {
        compose::Backdrop::Image { path, .. } if finish.format != OutputFormat::Mask => {
            Some(backdrop_image(path)?)
        }
        _ => None,
    };
    let mut composed = if finish.format == OutputFormat::Mask {
        // The matte of the refined, placed subject: no background, no
        // shadow, and no colours to decontaminate.
        let geometry = compose::Composition {
            background: compose::Backdrop::Transparent,
            shadow: None,
            refine: refine::Refine {
                decontaminate: false,
                ..composition.refine
            },
            ..composition.clone()
        };
        compose::compose(cutout, &geometry, None)
    } else {
        compose::compose(cutout, composition, backdrop.as_deref())
    };
    let icc_profile = match icc_profile {
        Some(icc) if decode::srgb_to_profile(&mut composed, &icc) => Some(icc),
        _ => None,
    };
    let options = encode::EncodeOptions {
        format: finish.format,
        quality: finish.quality,
        icc_profile,
    };
    encode::encode(&composed, &options)
}

/// The background picture at `path`, decoded (upright, sRGB) once and kept
/// while it stays the same file, so a batch of 500 results reads it once.
/// The window's preview shares the same copy.
pub fn backdrop_image(path: &std::path::Path) -> Result<Arc<RgbaImage>, ImagingError> {
    type Key = (std::path::PathBuf, Option<std::time::SystemTime>, u64);
    static LAST: Mutex<Option<(Key, Arc<RgbaImage>)>> = Mutex::new(None);
    let failed = |reason: String| ImagingError::Backdrop {
        reason,
        path: path.to_owned(),
    };
    let meta = std::fs::metadata(path).map_err(|e| failed(e.to_string()))?;
    let key: Key = (path.to_owned(), meta.modified().ok(), meta.len());
    // Held while decoding, so jobs finishing together decode it once.
    let mut last = LAST.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((cached, picture)) = last.as_ref()
        && *cached == key
    {
        return Ok(Arc::clone(picture));
    }
    let decoded = decode::open(path, &decode::DecodeLimits::default()).map_err(|e| match e {
        ImagingError::Open { problem, .. } => failed(problem.to_string()),
        other => failed(other.to_string()),
    })?;
    let picture = Arc::new(decoded.image.into_rgba8());
    *last = Some((key, Arc::clone(&picture)));
    Ok(picture)
}

fn image_format(format: OutputFormat) -> ImageFormat {
    match format {
        OutputFormat::Png | OutputFormat::Mask => ImageFormat::Png,
        OutputFormat::Webp => ImageFormat::WebP,
        OutputFormat::Jpg => ImageFormat::Jpeg,
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use image::{DynamicImage, Rgba};

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

    fn png_of(image: &RgbaImage) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        image.write_to(&mut out, ImageFormat::Png).unwrap();
        out.into_inner()
    }

    /// A 300×200 transparent cut-out with a 100×50 opaque red subject at
    /// (150, 100).
    fn product_png() -> Vec<u8> {
        png_of(&RgbaImage::from_fn(300, 200, |x, y| {
            if (150..250).contains(&x) && (100..150).contains(&y) {
                Rgba([210, 20, 20, 255])
            } else {
                Rgba([0, 0, 0, 0])
            }
        }))
    }

    #[test]
    fn a_marketplace_jpeg_is_a_white_square_with_the_product_centred() {
        let finish = Finish {
            format: OutputFormat::Jpg,
            quality: Some(92),
            composition: compose::Composition {
                background: compose::Backdrop::Color([255, 255, 255]),
                crop: Some(compose::Length::ZERO),
                canvas: compose::Canvas::Square { side_px: 400 },
                scale_percent: 50,
                ..compose::Composition::default()
            },
        };
        let bytes = super::finish(&product_png(), &finish).unwrap().unwrap();
        assert_eq!(image::guess_format(&bytes).unwrap(), ImageFormat::Jpeg);
        let rgb = image::load_from_memory(&bytes).unwrap().into_rgb8();
        assert_eq!(rgb.dimensions(), (400, 400));
        // 100×50 fits the square at ×4, placed at ×2: 200×100, centred.
        assert!(rgb.get_pixel(5, 5).0.iter().all(|&c| c >= 250));
        assert!(rgb.get_pixel(200, 140).0.iter().all(|&c| c >= 250));
        let red = rgb.get_pixel(200, 200).0;
        assert!(red[0] > 180 && red[1] < 60, "{red:?}");
        let edge = rgb.get_pixel(110, 200).0;
        assert!(edge[0] > 180 && edge[1] < 60, "{edge:?}");
    }

    #[test]
    fn a_mask_follows_the_crop_but_ignores_background_and_shadow() {
        let finish = Finish {
            format: OutputFormat::Mask,
            quality: None,
            composition: compose::Composition {
                background: compose::Backdrop::Color([0, 0, 255]),
                crop: Some(compose::Length::Px(10)),
                shadow: Some(compose::Shadow::default()),
                ..compose::Composition::default()
            },
        };
        let bytes = super::finish(&product_png(), &finish).unwrap().unwrap();
        let mask = image::load_from_memory(&bytes).unwrap();
        assert_eq!(mask.color(), image::ColorType::L8);
        let mask = mask.into_luma8();
        assert_eq!(mask.dimensions(), (120, 70));
        assert_eq!(mask.get_pixel(0, 0)[0], 0);
        assert_eq!(mask.get_pixel(10, 10)[0], 255);
        assert_eq!(mask.get_pixel(119, 69)[0], 0);
    }

    #[test]
    fn a_mask_is_the_refined_matte_and_a_removed_speck_does_not_widen_the_crop() {
        let mut specked = image::load_from_memory(&product_png())
            .unwrap()
            .into_rgba8();
        specked.put_pixel(5, 5, Rgba([0, 0, 255, 255]));
        let specked = png_of(&specked);
        let crop = compose::Composition {
            crop: Some(compose::Length::ZERO),
            ..compose::Composition::default()
        };
        let mask = |composition: &compose::Composition| {
            let finish = Finish {
                format: OutputFormat::Mask,
                quality: None,
                composition: composition.clone(),
            };
            let bytes = super::finish(&specked, &finish).unwrap().unwrap();
            image::load_from_memory(&bytes).unwrap().into_luma8()
        };
        assert_eq!(mask(&crop).dimensions(), (245, 145), "the speck widens it");
        let refined = compose::Composition {
            refine: refine::Refine {
                remove_speckles: true,
                ..refine::Refine::default()
            },
            ..crop
        };
        let matte = mask(&refined);
        assert_eq!(matte.dimensions(), (100, 50));
        assert!(matte.pixels().all(|p| p[0] == 255));

        // Refining alone is a change: the file is re-encoded, not kept.
        let png = Finish {
            composition: compose::Composition {
                crop: None,
                ..refined
            },
            ..Finish::default()
        };
        let bytes = super::finish(&specked, &png).unwrap().expect("re-encoded");
        let out = image::load_from_memory(&bytes).unwrap().into_rgba8();
        assert_eq!(out.dimensions(), (300, 200));
        assert_eq!(out.get_pixel(5, 5)[3], 0);
        assert_eq!(*out.get_pixel(200, 120), Rgba([210, 20, 20, 255]));
    }

    #[test]
    fn a_background_picture_is_read_once_and_shared() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("studio.png");
        std::fs::write(
            &path,
            png_of(&RgbaImage::from_pixel(60, 40, Rgba([10, 200, 10, 255]))),
        )
        .unwrap();
        let first = backdrop_image(&path).unwrap();
        let again = backdrop_image(&path).unwrap();
        assert!(Arc::ptr_eq(&first, &again), "decoded once");
        let finish = Finish {
            format: OutputFormat::Png,
            quality: None,
            composition: compose::Composition::with_background(compose::Backdrop::Image {
                path: path.clone(),
                fit: compose::BackdropFit::Fill,
            }),
        };
        let bytes = super::finish(&product_png(), &finish).unwrap().unwrap();
        let out = image::load_from_memory(&bytes).unwrap().into_rgba8();
        assert_eq!(out.dimensions(), (300, 200));
        assert_eq!(*out.get_pixel(2, 2), Rgba([10, 200, 10, 255]));
        assert_eq!(*out.get_pixel(200, 120), Rgba([210, 20, 20, 255]));

        let missing = dir.path().join("gone.jpg");
        let err = backdrop_image(&missing).unwrap_err().to_string();
        assert!(
            err.starts_with("cannot use the background picture"),
            "{err}"
        );
        assert!(err.ends_with(&missing.display().to_string()), "{err}");
    }

    #[test]
    fn a_quality_or_a_composition_means_re_encoding_even_in_the_same_format() {
        let plain = Finish::default();
        assert_eq!(super::finish(&product_png(), &plain).unwrap(), None);
        let cropped = Finish {
            composition: compose::Composition {
                crop: Some(compose::Length::ZERO),
                ..compose::Composition::default()
            },
            ..Finish::default()
        };
        let bytes = super::finish(&product_png(), &cropped).unwrap().unwrap();
        let out = image::load_from_memory(&bytes).unwrap();
        assert_eq!((out.width(), out.height()), (100, 50));
    }
}
