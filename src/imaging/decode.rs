//! Opening a picture, the one way every part of Cutout does it (upload
//! preparation, the preview, anything that needs pixels): whatever the file
//! is, the caller gets an upright, 8-bit sRGB image, or a sentence saying
//! why not.
//!
//! Upright: the EXIF orientation is applied first, because phones store
//! photos sideways and say so in a tag. sRGB: an embedded ICC profile (a
//! camera's Adobe RGB, a Mac's Display P3, a print shop's CMYK) is converted
//! with [`moxcms`], the pure-Rust colour engine the `image` crate itself is
//! built on (so it costs no extra build time, needs no C library, and is
//! kept up by the same people; `lcms2` would need a C toolchain on every
//! platform and `qcms` handles no CMYK). Safe: sizes are checked against
//! [`DecodeLimits`] from the header, before any pixel is allocated, so a
//! 40 000 × 40 000 "bomb" of a few bytes is refused with a message naming
//! the limit.
//!
//! Some formats cannot be decoded by this build (see [`input_formats`]);
//! they are still sent as they are to providers that take them.

use std::fmt;
use std::io::Cursor;
use std::path::{Path, PathBuf};

use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageError, ImageFormat, ImageReader, RgbImage};
use moxcms::{ColorProfile, DataColorSpace, Layout, ProfileText, TransformOptions};
use serde::Serialize;

use super::ImagingError;

#[cfg(test)]
#[path = "../../tests/fixtures/images.rs"]
pub(crate) mod fixtures;

/// How big a picture Cutout agrees to open. Checked against the file's
/// header before anything is decoded, so a hostile or absurd file costs
/// nothing but the read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// The longest side, in pixels.
    pub max_side_px: u32,
    /// Width × height, in millions of pixels.
    pub max_megapixels: u32,
    /// Memory one decode may take (the file itself, and the decoded pixels
    /// at their own bit depth), in bytes.
    pub max_alloc_bytes: u64,
}

impl Default for DecodeLimits {
    /// 250 MP (a 20 000 × 12 500 scan; the largest camera sensors are near
    /// 200 MP), 65 535 px a side (JPEG's own maximum) and 2 GiB (a 250 MP
    /// photo at 16 bits per channel).
    fn default() -> Self {
        DecodeLimits {
            max_side_px: 65_535,
            max_megapixels: 250,
            max_alloc_bytes: 2 << 30,
        }
    }
}

/// A picture file format Cutout recognises from its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceFormat {
    /// JPEG, including CMYK, YCCK and progressive files.
    Jpeg,
    /// PNG at any bit depth, palette, grey or colour, with or without alpha.
    Png,
    /// WebP, lossy or lossless.
    Webp,
    /// TIFF (the first page).
    Tiff,
    /// Windows bitmap.
    Bmp,
    /// GIF (the first frame).
    Gif,
    /// AVIF (AV1 in HEIF).
    Avif,
    /// HEIC/HEIF (HEVC in HEIF), as iPhones save photos.
    Heif,
    /// Photoshop document.
    Psd,
}

impl SourceFormat {
    /// The name users know it by.
    pub fn name(self) -> &'static str {
        self.support().name
    }

    /// The usual file extension, for upload copies and messages.
    pub fn extension(self) -> &'static str {
        self.support().extensions[0]
    }

    /// What this build can do with it.
    pub fn support(self) -> &'static FormatSupport {
        INPUT_FORMATS
            .iter()
            .find(|s| s.format == self)
            .unwrap_or(&INPUT_FORMATS[0])
    }

    /// The format a file extension names, if any.
    pub fn from_extension(extension: &str) -> Option<SourceFormat> {
        let extension = extension.to_ascii_lowercase();
        INPUT_FORMATS
            .iter()
            .find(|s| s.extensions.contains(&extension.as_str()))
            .map(|s| s.format)
    }

    /// Why this build cannot decode it; `None` when it can.
    pub fn unavailable_reason(self) -> Option<&'static str> {
        match self {
            SourceFormat::Avif => Some(AVIF_WHY),
            SourceFormat::Heif => Some(HEIF_WHY),
            SourceFormat::Psd => Some(PSD_WHY),
            _ => None,
        }
    }

    fn image_format(self) -> Option<ImageFormat> {
        match self {
            SourceFormat::Jpeg => Some(ImageFormat::Jpeg),
            SourceFormat::Png => Some(ImageFormat::Png),
            SourceFormat::Webp => Some(ImageFormat::WebP),
            SourceFormat::Tiff => Some(ImageFormat::Tiff),
            SourceFormat::Bmp => Some(ImageFormat::Bmp),
            SourceFormat::Gif => Some(ImageFormat::Gif),
            SourceFormat::Avif | SourceFormat::Heif | SourceFormat::Psd => None,
        }
    }
}

impl fmt::Display for SourceFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One input format and whether this build opens it, for the window, `cutout
/// providers` and `--help` to show.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct FormatSupport {
    /// The format.
    pub format: SourceFormat,
    /// Its name.
    pub name: &'static str,
    /// Its file extensions, lowercase, the usual one first.
    pub extensions: &'static [&'static str],
    /// Whether Cutout can decode it (to preview, rotate, convert or
    /// downscale it). Formats it cannot decode still go, as they are, to
    /// providers that take them.
    pub available: bool,
    /// What to know about it, in a sentence.
    pub note: &'static str,
}

/// Why AVIF and HEIC are missing, once, for the notes and the error.
const AVIF_WHY: &str = "decoding AVIF needs the dav1d library 1.3 or newer, which this build does \
     not include";
const HEIF_WHY: &str = "decoding HEIC needs libheif 1.17 or newer with an HEVC decoder, which this \
     build does not include";
const PSD_WHY: &str = "Cutout does not read Photoshop documents";

static INPUT_FORMATS: [FormatSupport; 9] = [
    FormatSupport {
        format: SourceFormat::Jpeg,
        name: "JPEG",
        extensions: &["jpg", "jpeg", "jpe", "jfif"],
        available: true,
        note: "baseline and progressive, RGB, grey, CMYK and YCCK",
    },
    FormatSupport {
        format: SourceFormat::Png,
        name: "PNG",
        extensions: &["png"],
        available: true,
        note: "8 and 16 bits, palette, grey and colour, with or without alpha",
    },
    FormatSupport {
        format: SourceFormat::Webp,
        name: "WebP",
        extensions: &["webp"],
        available: true,
        note: "lossy and lossless; the first frame of an animation",
    },
    FormatSupport {
        format: SourceFormat::Tiff,
        name: "TIFF",
        extensions: &["tif", "tiff"],
        available: true,
        note: "the first page",
    },
    FormatSupport {
        format: SourceFormat::Bmp,
        name: "BMP",
        extensions: &["bmp", "dib"],
        available: true,
        note: "",
    },
    FormatSupport {
        format: SourceFormat::Gif,
        name: "GIF",
        extensions: &["gif"],
        available: true,
        note: "the first frame",
    },
    FormatSupport {
        format: SourceFormat::Avif,
        name: "AVIF",
        extensions: &["avif"],
        available: false,
        note: "not available on this build (no AV1 decoder); sent as they are to providers \
               that take AVIF",
    },
    FormatSupport {
        format: SourceFormat::Heif,
        name: "HEIC",
        extensions: &["heic", "heif", "hif"],
        available: false,
        note: "not available on this build (no HEVC decoder); sent as they are to providers \
               that take HEIC",
    },
    FormatSupport {
        format: SourceFormat::Psd,
        name: "PSD",
        extensions: &["psd"],
        available: false,
        note: "not opened by Cutout; sent as they are to providers that take PSD",
    },
];

/// Every input format Cutout recognises, and whether this build opens it.
pub fn input_formats() -> &'static [FormatSupport] {
    &INPUT_FORMATS
}

/// One line for the window and `--help`: which formats this build cannot
/// open. `None` when it opens them all.
pub fn unavailable_formats_note() -> Option<String> {
    let missing: Vec<_> = INPUT_FORMATS
        .iter()
        .filter(|s| !s.available)
        .map(|s| s.name)
        .collect();
    let (last, rest) = missing.split_last()?;
    let names = if rest.is_empty() {
        (*last).to_owned()
    } else {
        format!("{} and {last}", rest.join(", "))
    };
    Some(format!(
        "This build cannot open {names} files: it sends them, unchanged, to providers that \
         take them, but cannot preview, rotate, convert or downscale them."
    ))
}

/// Recognises a picture format from the first bytes of a file (32 are
/// enough), whatever its name says.
pub fn sniff(bytes: &[u8]) -> Option<SourceFormat> {
    let starts = |magic: &[u8]| bytes.starts_with(magic);
    if starts(&[0xFF, 0xD8, 0xFF]) {
        return Some(SourceFormat::Jpeg);
    }
    // Four bytes, not the whole signature: a PNG whose signature was
    // mangled in transit is a damaged PNG, not "not an image".
    if starts(b"\x89PNG") {
        return Some(SourceFormat::Png);
    }
    if starts(b"GIF87a") || starts(b"GIF89a") {
        return Some(SourceFormat::Gif);
    }
    if starts(b"RIFF") && bytes.get(8..12) == Some(b"WEBP") {
        return Some(SourceFormat::Webp);
    }
    if starts(b"II*\0") || starts(b"MM\0*") || starts(b"II+\0") || starts(b"MM\0+") {
        return Some(SourceFormat::Tiff);
    }
    if starts(b"8BPS") {
        return Some(SourceFormat::Psd);
    }
    if starts(b"BM") && bytes.len() >= 18 {
        // The DIB header's own size tells a bitmap from text starting "BM".
        let header = u32::from_le_bytes([bytes[14], bytes[15], bytes[16], bytes[17]]);
        if matches!(header, 12 | 16 | 40 | 52 | 56 | 64 | 108 | 124) {
            return Some(SourceFormat::Bmp);
        }
    }
    if bytes.get(4..8) == Some(b"ftyp") {
        return sniff_heif_brands(bytes);
    }
    None
}

/// AVIF and HEIC share the HEIF container; the `ftyp` brands tell them
/// apart.
fn sniff_heif_brands(bytes: &[u8]) -> Option<SourceFormat> {
    let size = u32::from_be_bytes(bytes.get(0..4)?.try_into().ok()?) as usize;
    let end = size.clamp(16, 64).min(bytes.len());
    let mut brands = vec![bytes.get(8..12)?];
    brands.extend(bytes.get(16..end)?.chunks_exact(4));
    let any = |names: &[&[u8]]| brands.iter().any(|b| names.contains(b));
    if any(&[b"avif", b"avis"]) {
        Some(SourceFormat::Avif)
    } else if any(&[
        b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1",
    ]) {
        Some(SourceFormat::Heif)
    } else {
        None
    }
}

/// Why a picture cannot be opened, as a clause for the user; the file's
/// path is added after it by [`ImagingError::Open`].
#[derive(Debug, thiserror::Error)]
pub enum DecodeProblem {
    /// The file could not be read at all.
    #[error("cannot read the file ({0})")]
    Unreadable(std::io::Error),
    /// Zero bytes.
    #[error("the file is empty (0 bytes)")]
    Empty,
    /// The content is no picture format Cutout knows, whatever the name.
    #[error("the file is not an image (its content is in no picture format Cutout knows)")]
    NotAnImage,
    /// A format this build cannot decode.
    #[error("{format} files cannot be opened by this build of Cutout: {why}")]
    Unavailable {
        /// The format.
        format: SourceFormat,
        /// Why, and what would be needed.
        why: &'static str,
    },
    /// More pixels than [`DecodeLimits::max_megapixels`].
    #[error(
        "the image is {width} × {height} pixels ({}); Cutout opens images up to {limit_megapixels} MP",
        megapixels(u64::from(*width) * u64::from(*height))
    )]
    TooManyPixels {
        /// Its width.
        width: u32,
        /// Its height.
        height: u32,
        /// The limit, in megapixels.
        limit_megapixels: u32,
    },
    /// A side longer than [`DecodeLimits::max_side_px`].
    #[error(
        "the image is {width} × {height} pixels; Cutout opens images up to {limit_px} pixels on a side"
    )]
    TooLong {
        /// Its width.
        width: u32,
        /// Its height.
        height: u32,
        /// The limit.
        limit_px: u32,
    },
    /// Decoding would take more memory than [`DecodeLimits::max_alloc_bytes`].
    #[error(
        "opening the image would take {} of memory; Cutout allows {} per image",
        mebibytes(*needed_bytes),
        mebibytes(*limit_bytes)
    )]
    TooMuchMemory {
        /// What it would take.
        needed_bytes: u64,
        /// The limit.
        limit_bytes: u64,
    },
    /// The decoder needed more memory than the limit while decoding.
    #[error(
        "opening the image would take more than the {} of memory Cutout allows per image",
        mebibytes(*limit_bytes)
    )]
    OverMemoryLimit {
        /// The limit.
        limit_bytes: u64,
    },
    /// The file ends before the picture does (an interrupted copy or
    /// download).
    #[error("the file is incomplete: it ends before the picture does (copy it again)")]
    Truncated,
    /// The data is damaged.
    #[error("the file is damaged ({0})")]
    Corrupt(String),
    /// A valid file using a feature the decoder lacks.
    #[error("this {format} file uses a feature Cutout cannot read ({detail})")]
    Unsupported {
        /// The format.
        format: SourceFormat,
        /// What the decoder said.
        detail: String,
    },
}

/// `12 MP`, `25.2 MP`, `1600 MP`, `0.3 MP`: sizes as people compare them.
pub fn megapixels(pixels: u64) -> String {
    let mp = pixels as f64 / 1_000_000.0;
    if mp >= 100.0 || mp.fract() == 0.0 {
        format!("{} MP", mp.round())
    } else if mp >= 0.1 {
        format!("{mp:.1} MP")
    } else {
        // Tiny limits only appear in tests and toy setups; keep them exact.
        format!("{mp} MP")
    }
}

fn mebibytes(bytes: u64) -> String {
    format!("{} MB", bytes.div_ceil(1 << 20))
}

/// What a picture's header says, read without decoding any pixel: enough
/// to decide whether a file can go to a provider as it is.
#[derive(Debug, Clone)]
pub struct Header {
    /// The format its content is in.
    pub format: SourceFormat,
    /// Width as stored, before the orientation is applied.
    pub stored_width: u32,
    /// Height as stored.
    pub stored_height: u32,
    /// The EXIF orientation (`NoTransforms` when there is none).
    pub orientation: Orientation,
    /// The embedded ICC profile, byte for byte.
    pub icc_profile: Option<Vec<u8>>,
    /// Whether the pixels are CMYK (or YCCK): no provider expects those.
    pub cmyk: bool,
    /// Whether the colours need converting to sRGB (CMYK, or an RGB
    /// profile other than sRGB).
    pub needs_srgb_conversion: bool,
}

impl Header {
    /// The size once turned upright.
    pub fn upright_size(&self) -> (u32, u32) {
        if swaps_sides(self.orientation) {
            (self.stored_height, self.stored_width)
        } else {
            (self.stored_width, self.stored_height)
        }
    }

    /// Whether the picture must be turned to stand upright.
    pub fn is_rotated(&self) -> bool {
        self.orientation != Orientation::NoTransforms
    }
}

fn swaps_sides(orientation: Orientation) -> bool {
    matches!(
        orientation,
        Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH
    )
}

/// An opened picture.
#[derive(Debug, Clone)]
pub struct Decoded {
    /// The pixels: upright, sRGB, 8 bits per channel; `ImageRgba8` when the
    /// file has an alpha channel, else `ImageRgb8`.
    pub image: DynamicImage,
    /// The format the file's content is in.
    pub format: SourceFormat,
    /// The file's own ICC profile, byte for byte, so an output can carry it
    /// again where the format allows (the pixels above are already sRGB:
    /// convert them back with [`srgb_to_profile`] before embedding it).
    pub icc_profile: Option<Vec<u8>>,
    /// The name of the colour space the pixels were converted from ("Display
    /// P3", "CMYK"), when they were.
    pub converted_from: Option<String>,
    /// Whether the EXIF orientation turned the picture.
    pub rotated: bool,
    /// Things the user should know ("GIF: only the first frame is used").
    pub notes: Vec<String>,
}

impl Decoded {
    /// Whether any pixel is less than fully opaque (an RGBA file whose alpha
    /// is all 255 has no transparency worth keeping).
    pub fn has_transparency(&self) -> bool {
        match &self.image {
            DynamicImage::ImageRgba8(rgba) => rgba.pixels().any(|p| p[3] != 255),
            _ => false,
        }
    }
}

/// Opens a picture file. Errors name the file last.
pub fn open(path: &Path, limits: &DecodeLimits) -> Result<Decoded, ImagingError> {
    let at = |problem| ImagingError::Open {
        problem,
        path: Some(path.to_owned()),
    };
    let bytes = read_within(path, limits).map_err(at)?;
    decode(&bytes, limits).map_err(at)
}

/// Opens a picture already in memory (a download, a paste).
pub fn open_bytes(bytes: &[u8], limits: &DecodeLimits) -> Result<Decoded, ImagingError> {
    decode(bytes, limits).map_err(|problem| ImagingError::Open {
        problem,
        path: None,
    })
}

/// Reads a whole file, refusing one too big to be worth reading.
pub(crate) fn read_within(path: &Path, limits: &DecodeLimits) -> Result<Vec<u8>, DecodeProblem> {
    let length = std::fs::metadata(path)
        .map_err(DecodeProblem::Unreadable)?
        .len();
    if length > limits.max_alloc_bytes {
        return Err(DecodeProblem::TooMuchMemory {
            needed_bytes: length,
            limit_bytes: limits.max_alloc_bytes,
        });
    }
    std::fs::read(path).map_err(DecodeProblem::Unreadable)
}

/// Reads a picture's header: format, size, orientation, colours.
pub fn probe(bytes: &[u8], limits: &DecodeLimits) -> Result<Header, DecodeProblem> {
    Ok(start(bytes, limits)?.header)
}

/// A file whose header has been read and checked, ready to decode.
struct Started<'a> {
    header: Header,
    decoder: Box<dyn ImageDecoder + 'a>,
    jpeg: Option<JpegLayout>,
}

fn start<'a>(bytes: &'a [u8], limits: &DecodeLimits) -> Result<Started<'a>, DecodeProblem> {
    if bytes.is_empty() {
        return Err(DecodeProblem::Empty);
    }
    let format = sniff(bytes).ok_or(DecodeProblem::NotAnImage)?;
    let Some(image_format) = format.image_format() else {
        let why = format.unavailable_reason().unwrap_or(PSD_WHY);
        return Err(DecodeProblem::Unavailable { format, why });
    };
    let jpeg = (format == SourceFormat::Jpeg).then(|| jpeg_layout(bytes));
    if jpeg.as_ref().is_some_and(|j| !j.complete) {
        return Err(DecodeProblem::Truncated);
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), image_format);
    // Sizes are checked below, with messages that name the limit.
    reader.no_limits();
    let mut decoder = reader
        .into_decoder()
        .map_err(|e| problem_from_image(format, limits.max_alloc_bytes, e))?;
    let (width, height) = decoder.dimensions();
    check_size(width, height, limits)?;
    let needed_bytes = decoder.total_bytes().saturating_add(bytes.len() as u64);
    if needed_bytes > limits.max_alloc_bytes {
        return Err(DecodeProblem::TooMuchMemory {
            needed_bytes,
            limit_bytes: limits.max_alloc_bytes,
        });
    }
    let mut image_limits = image::Limits::default();
    image_limits.max_image_width = Some(limits.max_side_px);
    image_limits.max_image_height = Some(limits.max_side_px);
    image_limits.max_alloc = Some(limits.max_alloc_bytes);
    decoder
        .set_limits(image_limits)
        .map_err(|e| problem_from_image(format, limits.max_alloc_bytes, e))?;
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let icc_profile = decoder.icc_profile().ok().flatten();
    let cmyk = jpeg.as_ref().is_some_and(|j| j.components == 4);
    let needs_srgb_conversion = cmyk
        || icc_profile
            .as_deref()
            .and_then(|icc| ColorProfile::new_from_slice(icc).ok())
            .is_some_and(|p| p.color_space == DataColorSpace::Rgb && !is_srgb(&p));
    Ok(Started {
        header: Header {
            format,
            stored_width: width,
            stored_height: height,
            orientation,
            icc_profile,
            cmyk,
            needs_srgb_conversion,
        },
        decoder: Box::new(decoder),
        jpeg,
    })
}

fn check_size(width: u32, height: u32, limits: &DecodeLimits) -> Result<(), DecodeProblem> {
    let pixels = u64::from(width) * u64::from(height);
    if pixels > u64::from(limits.max_megapixels) * 1_000_000 {
        return Err(DecodeProblem::TooManyPixels {
            width,
            height,
            limit_megapixels: limits.max_megapixels,
        });
    }
    if width > limits.max_side_px || height > limits.max_side_px {
        return Err(DecodeProblem::TooLong {
            width,
            height,
            limit_px: limits.max_side_px,
        });
    }
    if pixels == 0 {
        return Err(DecodeProblem::Corrupt("it declares no pixels".to_owned()));
    }
    Ok(())
}

fn decode(bytes: &[u8], limits: &DecodeLimits) -> Result<Decoded, DecodeProblem> {
    let Started {
        header,
        decoder,
        jpeg,
    } = start(bytes, limits)?;
    let format = header.format;
    let mut notes = Vec::new();
    let mut converted_from = None;
    let mut image = match jpeg.filter(|j| j.components == 4) {
        Some(layout) => {
            drop(decoder);
            let (rgb, from) =
                decode_four_channel_jpeg(bytes, &layout, header.icc_profile.as_deref())?;
            converted_from = Some(from);
            DynamicImage::ImageRgb8(rgb)
        }
        None => {
            let decoded = DynamicImage::from_decoder(decoder)
                .map_err(|e| problem_from_image(format, limits.max_alloc_bytes, e))?;
            if decoded.color().has_alpha() {
                DynamicImage::ImageRgba8(decoded.into_rgba8())
            } else {
                DynamicImage::ImageRgb8(decoded.into_rgb8())
            }
        }
    };
    if converted_from.is_none()
        && let Some(icc) = header.icc_profile.as_deref()
    {
        match to_srgb(&mut image, icc) {
            Ok(from) => converted_from = from,
            Err(()) => notes.push(
                "its colour profile could not be read, so its colours are taken as sRGB".to_owned(),
            ),
        }
    }
    if format == SourceFormat::Gif && gif_has_several_frames(bytes) {
        notes.push("GIF: only the first frame is used".to_owned());
    }
    if format == SourceFormat::Webp && webp_is_animated(bytes) {
        notes.push("WebP: only the first frame of the animation is used".to_owned());
    }
    let rotated = header.is_rotated();
    image.apply_orientation(header.orientation);
    Ok(Decoded {
        image,
        format,
        icc_profile: header.icc_profile,
        converted_from,
        rotated,
        notes,
    })
}

fn problem_from_image(format: SourceFormat, limit_bytes: u64, error: ImageError) -> DecodeProblem {
    match error {
        ImageError::IoError(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            DecodeProblem::Truncated
        }
        ImageError::Limits(_) => DecodeProblem::OverMemoryLimit { limit_bytes },
        ImageError::Unsupported(e) => DecodeProblem::Unsupported {
            format,
            detail: e.to_string(),
        },
        other => corrupt_or_truncated(other.to_string()),
    }
}

/// Decoders say "unexpected end of file" in many ways; that is a truncated
/// file, anything else is damage.
fn corrupt_or_truncated(detail: String) -> DecodeProblem {
    let lower = detail.to_ascii_lowercase();
    let ends_early = [
        "eof",
        "end of file",
        "end of data",
        "no more bytes",
        "unexpected end",
    ]
    .iter()
    .any(|needle| lower.contains(needle));
    if ends_early {
        DecodeProblem::Truncated
    } else {
        DecodeProblem::Corrupt(detail)
    }
}

// ---------------------------------------------------------------------------
// JPEG details: CMYK/YCCK, and truncation
// ---------------------------------------------------------------------------

/// What a JPEG's markers say, read by walking them (cheap: no entropy data
/// is decoded).
#[derive(Debug, Clone, Copy)]
struct JpegLayout {
    /// Colour components in the frame: 1 grey, 3 YCbCr/RGB, 4 CMYK/YCCK.
    components: u8,
    /// The Adobe APP14 colour transform (0 CMYK/RGB, 1 YCbCr, 2 YCCK).
    adobe_transform: Option<u8>,
    /// Whether the end-of-image marker follows the first scan: a file cut
    /// short lacks it.
    complete: bool,
}

fn jpeg_layout(bytes: &[u8]) -> JpegLayout {
    let mut layout = JpegLayout {
        components: 0,
        adobe_transform: None,
        complete: false,
    };
    let mut pos = 2;
    while pos + 4 <= bytes.len() {
        if bytes[pos] != 0xFF {
            // Not a marker where one must be: let the decoder judge.
            layout.complete = true;
            return layout;
        }
        let marker = bytes[pos + 1];
        pos += 2;
        match marker {
            0xFF => pos -= 1, // fill byte
            0x01 | 0xD0..=0xD8 => {}
            0xD9 => return layout,
            0xDA => {
                layout.complete = bytes[pos..].windows(2).any(|w| w == [0xFF, 0xD9]);
                return layout;
            }
            _ => {
                let length = usize::from(u16::from_be_bytes([bytes[pos], bytes[pos + 1]]));
                let segment = bytes.get(pos + 2..pos + length).unwrap_or_default();
                let is_frame =
                    matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC);
                if is_frame && segment.len() >= 6 {
                    layout.components = segment[5];
                }
                if marker == 0xEE && segment.len() >= 12 && segment.starts_with(b"Adobe") {
                    layout.adobe_transform = Some(segment[11]);
                }
                pos += length.max(2);
            }
        }
    }
    layout
}

/// Decodes a CMYK or YCCK JPEG to sRGB: through its embedded CMYK profile
/// when it has one (the print shop's own conversion), else the plain
/// formula every viewer uses. Returns the pixels and what they were
/// converted from.
fn decode_four_channel_jpeg(
    bytes: &[u8],
    layout: &JpegLayout,
    icc: Option<&[u8]>,
) -> Result<(RgbImage, String), DecodeProblem> {
    use zune_core::bytestream::ZCursor;
    use zune_core::colorspace::ColorSpace;
    use zune_core::options::DecoderOptions;

    let options = DecoderOptions::default()
        .set_strict_mode(false)
        .set_max_width(usize::MAX)
        .set_max_height(usize::MAX);
    let mut decoder = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(bytes), options);
    let jpeg_problem = |e: zune_jpeg::errors::DecodeErrors| corrupt_or_truncated(e.to_string());
    decoder.decode_headers().map_err(jpeg_problem)?;
    let colourspace = decoder.input_colorspace().unwrap_or(ColorSpace::CMYK);
    // The raw channels, converted below: zune's own conversion ignores
    // profiles.
    decoder.set_options(decoder.options().jpeg_set_out_colorspace(colourspace));
    let raw = decoder.decode().map_err(jpeg_problem)?;
    let (width, height) = decoder
        .dimensions()
        .ok_or_else(|| DecodeProblem::Corrupt("no frame header".to_owned()))?;
    let ycck = colourspace == ColorSpace::YCCK;
    // Photoshop (and every tool that writes the Adobe marker) stores CMYK
    // inverted: 255 is no ink.
    let inverted = layout.adobe_transform.is_some();
    let mut ink = raw;
    for pixel in ink.chunks_exact_mut(4) {
        let stored = if ycck {
            let [r, g, b] = ycc_to_rgb(pixel[0], pixel[1], pixel[2]);
            [255 - r, 255 - g, 255 - b, pixel[3]]
        } else {
            [pixel[0], pixel[1], pixel[2], pixel[3]]
        };
        let value = if inverted {
            stored.map(|v| 255 - v)
        } else {
            stored
        };
        pixel.copy_from_slice(&value);
    }
    let profile = icc
        .and_then(|icc| ColorProfile::new_from_slice(icc).ok())
        .filter(|p| p.color_space == DataColorSpace::Cmyk);
    let mut rgb = vec![0u8; ink.len() / 4 * 3];
    let mut from = "CMYK".to_owned();
    let through_profile = profile.as_ref().and_then(|profile| {
        let transform = profile
            .create_transform_8bit(
                Layout::Rgba,
                &ColorProfile::new_srgb(),
                Layout::Rgb,
                TransformOptions::default(),
            )
            .ok()?;
        transform.transform(&ink, &mut rgb).ok()?;
        Some(profile_name(profile))
    });
    match through_profile {
        Some(name) => from = format!("CMYK ({name})"),
        None => {
            for (out, ink) in rgb.chunks_exact_mut(3).zip(ink.chunks_exact(4)) {
                let k = 255 - u32::from(ink[3]);
                for c in 0..3 {
                    out[c] = (((255 - u32::from(ink[c])) * k + 127) / 255) as u8;
                }
            }
        }
    }
    let image = u32::try_from(width)
        .ok()
        .zip(u32::try_from(height).ok())
        .and_then(|(w, h)| RgbImage::from_raw(w, h, rgb))
        .ok_or_else(|| {
            DecodeProblem::Corrupt("the picture data is shorter than its size".into())
        })?;
    Ok((image, from))
}

/// JFIF's full-range YCbCr → RGB.
fn ycc_to_rgb(y: u8, cb: u8, cr: u8) -> [u8; 3] {
    let (y, cb, cr) = (f32::from(y), f32::from(cb) - 128.0, f32::from(cr) - 128.0);
    [
        y + 1.402 * cr,
        y - 0.344_136 * cb - 0.714_136 * cr,
        y + 1.772 * cb,
    ]
    .map(|v| v.round().clamp(0.0, 255.0) as u8)
}

// ---------------------------------------------------------------------------
// Colour profiles
// ---------------------------------------------------------------------------

/// Converts RGB(A) pixels tagged with `icc` to sRGB in place. `Ok(None)`
/// when nothing needed doing (an sRGB, grey or unusable-but-harmless
/// profile), `Ok(Some(name))` after converting, `Err` when the profile is
/// unreadable.
fn to_srgb(image: &mut DynamicImage, icc: &[u8]) -> Result<Option<String>, ()> {
    let profile = ColorProfile::new_from_slice(icc).map_err(|_| ())?;
    if profile.color_space != DataColorSpace::Rgb || is_srgb(&profile) {
        return Ok(None);
    }
    let srgb = ColorProfile::new_srgb();
    let converted = match image {
        DynamicImage::ImageRgb8(rgb) => transform_in_place(&profile, &srgb, Layout::Rgb, rgb),
        DynamicImage::ImageRgba8(rgba) => transform_in_place(&profile, &srgb, Layout::Rgba, rgba),
        _ => false,
    };
    if converted {
        Ok(Some(profile_name(&profile)))
    } else {
        Err(())
    }
}

/// Converts sRGB pixels into the colour space of `icc`, so a result can
/// carry its original's profile again: call it on the finished pixels, then
/// embed `icc` in the output. Returns whether it converted; when it did
/// not (the profile is sRGB, not RGB, or unreadable), embed nothing and
/// leave the pixels as sRGB.
pub fn srgb_to_profile(image: &mut image::RgbaImage, icc: &[u8]) -> bool {
    let Ok(profile) = ColorProfile::new_from_slice(icc) else {
        return false;
    };
    if profile.color_space != DataColorSpace::Rgb || is_srgb(&profile) {
        return false;
    }
    transform_in_place(&ColorProfile::new_srgb(), &profile, Layout::Rgba, image)
}

/// Runs a transform over a buffer a strip at a time (moxcms wants separate
/// input and output), so converting a 50 MP photo needs no second copy.
fn transform_in_place<P: image::Pixel<Subpixel = u8>>(
    from: &ColorProfile,
    into: &ColorProfile,
    layout: Layout,
    pixels: &mut image::ImageBuffer<P, Vec<u8>>,
) -> bool {
    let Ok(transform) =
        from.create_transform_8bit(layout, into, layout, TransformOptions::default())
    else {
        return false;
    };
    let mut strip = Vec::new();
    for chunk in pixels.chunks_mut(64 * 1024 * usize::from(P::CHANNEL_COUNT)) {
        strip.clear();
        strip.extend_from_slice(chunk);
        if transform.transform(&strip, chunk).is_err() {
            return false;
        }
    }
    true
}

/// Whether a profile is sRGB in all but name: a few colours come through a
/// transform to sRGB unchanged. Cameras and editors embed many byte-wise
/// different sRGB profiles; converting through them would only cost time.
fn is_srgb(profile: &ColorProfile) -> bool {
    const PROBES: [u8; 24] = [
        255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255, 128, 128, 128, 30, 60, 90, 200, 180, 20, 5,
        5, 5,
    ];
    let Ok(transform) = profile.create_transform_8bit(
        Layout::Rgb,
        &ColorProfile::new_srgb(),
        Layout::Rgb,
        TransformOptions::default(),
    ) else {
        return false;
    };
    let mut out = [0u8; 24];
    transform.transform(&PROBES, &mut out).is_ok()
        && PROBES.iter().zip(out).all(|(a, b)| a.abs_diff(b) <= 1)
}

/// The profile's own description ("Display P3", "Adobe RGB (1998)").
fn profile_name(profile: &ColorProfile) -> String {
    let text = match &profile.description {
        Some(ProfileText::PlainString(s)) => Some(s.clone()),
        Some(ProfileText::Localizable(list)) => list.first().map(|l| l.value.clone()),
        Some(ProfileText::Description(d)) => Some(d.ascii_string.clone()),
        None => None,
    };
    text.map(|t| {
        t.trim_matches(|c: char| c == '\0' || c.is_whitespace())
            .to_owned()
    })
    .filter(|t| !t.is_empty())
    .unwrap_or_else(|| "its colour profile".to_owned())
}

// ---------------------------------------------------------------------------
// Animations
// ---------------------------------------------------------------------------

/// Whether a GIF holds more than one frame, found by walking its blocks
/// (no pixel is decoded).
fn gif_has_several_frames(bytes: &[u8]) -> bool {
    let Some(&packed) = bytes.get(10) else {
        return false;
    };
    let mut pos = 13;
    if packed & 0x80 != 0 {
        pos += 3 << ((packed & 0x07) + 1);
    }
    let skip_sub_blocks = |mut pos: usize| -> Option<usize> {
        loop {
            let size = usize::from(*bytes.get(pos)?);
            pos += 1 + size;
            if size == 0 {
                return Some(pos);
            }
        }
    };
    let mut frames = 0;
    while let Some(&block) = bytes.get(pos) {
        match block {
            0x2C => {
                frames += 1;
                if frames > 1 {
                    return true;
                }
                let Some(&local) = bytes.get(pos + 9) else {
                    return false;
                };
                pos += 10;
                if local & 0x80 != 0 {
                    pos += 3 << ((local & 0x07) + 1);
                }
                pos += 1; // LZW minimum code size
                match skip_sub_blocks(pos) {
                    Some(next) => pos = next,
                    None => return false,
                }
            }
            0x21 => match skip_sub_blocks(pos + 2) {
                Some(next) => pos = next,
                None => return false,
            },
            _ => return false,
        }
    }
    false
}

/// Whether a WebP's extended header sets the animation flag.
fn webp_is_animated(bytes: &[u8]) -> bool {
    bytes.get(12..16) == Some(b"VP8X") && bytes.get(20).is_some_and(|flags| flags & 0x02 != 0)
}

/// `: path` after an error's clause, or nothing for a picture with no file.
pub(super) fn path_suffix(path: &Option<PathBuf>) -> String {
    match path {
        Some(path) => format!(": {}", path.display()),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::{self, FourChannel};
    use super::*;
    use image::{GenericImageView, Rgb, Rgba};

    fn limits() -> DecodeLimits {
        DecodeLimits::default()
    }

    fn opened(bytes: &[u8]) -> Decoded {
        open_bytes(bytes, &limits()).unwrap_or_else(|e| panic!("{e}"))
    }

    fn refusal(bytes: &[u8]) -> String {
        match open_bytes(bytes, &limits()) {
            Ok(_) => panic!("opened a file that should be refused"),
            Err(e) => e.to_string(),
        }
    }

    #[track_caller]
    fn assert_near(actual: [u8; 3], expected: [u8; 3], tolerance: u8, what: &str) {
        let close = actual
            .iter()
            .zip(expected)
            .all(|(a, e)| a.abs_diff(e) <= tolerance);
        assert!(
            close,
            "{what}: got {actual:?}, expected {expected:?} ± {tolerance}"
        );
    }

    fn rgb_at(image: &DynamicImage, x: u32, y: u32) -> [u8; 3] {
        let p = image.get_pixel(x, y);
        [p[0], p[1], p[2]]
    }

    #[test]
    fn every_exif_orientation_is_turned_upright_before_anything_else() {
        let upright = fixtures::quadrants(64, 32);
        for orientation in 1..=8 {
            let stored = fixtures::stored_for_orientation(&upright, orientation);
            let file = fixtures::with_exif_orientation(&fixtures::jpeg(&stored), orientation);
            let header = probe(&file, &limits()).unwrap();
            assert_eq!(header.upright_size(), (64, 32), "orientation {orientation}");
            let decoded = opened(&file);
            assert_eq!(decoded.rotated, orientation != 1);
            assert_eq!(
                decoded.image.dimensions(),
                (64, 32),
                "orientation {orientation}"
            );
            let centres = [(16, 8), (48, 8), (16, 24), (48, 24)];
            for ((x, y), colour) in centres.into_iter().zip(fixtures::QUADRANT_COLOURS) {
                assert_near(
                    rgb_at(&decoded.image, x, y),
                    colour,
                    12,
                    &format!("orientation {orientation}, pixel ({x}, {y})"),
                );
            }
        }
    }

    /// Inks of a print shop's swatch card, one per block: cyan, magenta,
    /// yellow, black, a rich brown, 40% grey, paper, and a red.
    const SWATCHES: [[u8; 4]; 8] = [
        [255, 0, 0, 0],
        [0, 255, 0, 0],
        [0, 0, 255, 0],
        [0, 0, 0, 255],
        [60, 180, 220, 40],
        [0, 0, 0, 102],
        [0, 0, 0, 0],
        [0, 240, 230, 0],
    ];

    fn swatch_card(kind: FourChannel) -> Vec<u8> {
        fixtures::adobe_cmyk_jpeg(4, 2, kind, |bx, by| SWATCHES[(by * 4 + bx) as usize])
    }

    #[track_caller]
    fn assert_swatches(decoded: &Decoded, tolerance: u8) {
        assert_eq!(decoded.image.dimensions(), (32, 16));
        for (i, ink) in SWATCHES.iter().enumerate() {
            let (x, y) = ((i as u32 % 4) * 8 + 4, (i as u32 / 4) * 8 + 4);
            assert_near(
                rgb_at(&decoded.image, x, y),
                fixtures::naive_cmyk_to_rgb(*ink),
                tolerance,
                &format!("swatch {i} {ink:?}"),
            );
        }
    }

    #[test]
    fn a_cmyk_jpeg_from_a_print_shop_opens_in_its_colours() {
        let file = swatch_card(FourChannel::Cmyk);
        let header = probe(&file, &limits()).unwrap();
        assert!(header.cmyk && header.needs_srgb_conversion);
        let decoded = opened(&file);
        assert_swatches(&decoded, 2);
        assert_eq!(decoded.converted_from.as_deref(), Some("CMYK"));
        assert!(matches!(decoded.image, DynamicImage::ImageRgb8(_)));
    }

    #[test]
    fn an_adobe_ycck_jpeg_opens_in_the_same_colours_as_its_cmyk_twin() {
        let decoded = opened(&swatch_card(FourChannel::Ycck));
        assert_swatches(&decoded, 3);
        assert_eq!(decoded.converted_from.as_deref(), Some("CMYK"));
    }

    #[test]
    fn a_rotated_cmyk_jpeg_is_both_upright_and_in_rgb() {
        // Blocks of 8 × 8: 4 × 2 blocks stored, tagged "rotate 90° clockwise".
        let file = fixtures::with_exif_orientation(&swatch_card(FourChannel::Cmyk), 6);
        let decoded = opened(&file);
        assert_eq!(decoded.image.dimensions(), (16, 32));
        // The stored top-left swatch (cyan) is now top-right.
        assert_near(
            rgb_at(&decoded.image, 12, 4),
            fixtures::naive_cmyk_to_rgb(SWATCHES[0]),
            2,
            "cyan",
        );
    }

    /// A tiny printer profile: paper (no ink at all) is white, any full
    /// ink is black, with the CLUT interpolating between (linear in XYZ).
    fn paper_or_ink_profile() -> Vec<u8> {
        use moxcms::{LutDataType, LutStore, LutType, LutWarehouse, Matrix3d, ProfileClass};
        let white = [31_595u16, 32_768, 27_030]; // D50 in XYZ's 1.15 fixed point
        let mut clut = vec![0u16; 16 * 3];
        clut[..3].copy_from_slice(&white);
        let lut = LutWarehouse::Lut(LutDataType {
            num_input_channels: 4,
            num_output_channels: 3,
            num_clut_grid_points: 2,
            matrix: Matrix3d::IDENTITY,
            num_input_table_entries: 2,
            num_output_table_entries: 2,
            input_table: LutStore::Store16(vec![0, 65_535, 0, 65_535, 0, 65_535, 0, 65_535]),
            clut_table: LutStore::Store16(clut),
            output_table: LutStore::Store16(vec![0, 65_535, 0, 65_535, 0, 65_535]),
            lut_type: LutType::Lut16,
        });
        let mut profile = ColorProfile::default();
        profile.white_point = ColorProfile::new_srgb().white_point;
        profile.media_white_point = ColorProfile::new_srgb().media_white_point;
        profile.color_space = DataColorSpace::Cmyk;
        profile.pcs = DataColorSpace::Xyz;
        profile.profile_class = ProfileClass::OutputDevice;
        profile.lut_a_to_b_perceptual = Some(lut.clone());
        profile.lut_a_to_b_colorimetric = Some(lut);
        profile.encode().unwrap()
    }

    #[test]
    fn a_cmyk_jpeg_with_a_printer_profile_is_converted_through_that_profile() {
        let icc = paper_or_ink_profile();
        let file = fixtures::with_jpeg_icc(&swatch_card(FourChannel::Cmyk), &icc);
        let decoded = opened(&file);
        assert!(
            decoded
                .converted_from
                .as_deref()
                .unwrap_or_default()
                .starts_with("CMYK ("),
            "{:?}",
            decoded.converted_from
        );
        // Paper stays white (so the inverted Adobe values were read right)…
        assert_near(rgb_at(&decoded.image, 20, 12), [255, 255, 255], 3, "paper");
        // …and full cyan is black through this profile, not cyan.
        assert_near(rgb_at(&decoded.image, 4, 4), [0, 0, 0], 3, "cyan ink");
    }

    #[test]
    fn a_progressive_jpeg_opens_like_a_baseline_one() {
        let colours = [[200, 40, 40], [20, 160, 60], [30, 50, 210], [128, 128, 128]];
        let file = fixtures::progressive_jpeg(2, 2, |bx, by| colours[(by * 2 + bx) as usize]);
        let decoded = opened(&file);
        assert_eq!(decoded.format, SourceFormat::Jpeg);
        assert_eq!(decoded.image.dimensions(), (16, 16));
        for (i, colour) in colours.into_iter().enumerate() {
            let (x, y) = ((i as u32 % 2) * 8 + 4, (i as u32 / 2) * 8 + 4);
            assert_near(
                rgb_at(&decoded.image, x, y),
                colour,
                3,
                &format!("block {i}"),
            );
        }
    }

    #[test]
    fn a_sixteen_bit_png_comes_out_in_eight_bits() {
        let deep = image::ImageBuffer::<Rgb<u16>, Vec<u16>>::from_fn(8, 4, |x, _| {
            if x < 4 {
                Rgb([0xFFFF, 0x8080, 0x0000])
            } else {
                Rgb([0x1010, 0x2020, 0xC0C0])
            }
        });
        let mut bytes = Cursor::new(Vec::new());
        DynamicImage::ImageRgb16(deep)
            .write_to(&mut bytes, ImageFormat::Png)
            .unwrap();
        let decoded = opened(bytes.get_ref());
        let DynamicImage::ImageRgb8(rgb) = &decoded.image else {
            panic!("{:?}", decoded.image.color())
        };
        assert_eq!(rgb.get_pixel(0, 0), &Rgb([255, 128, 0]));
        assert_eq!(rgb.get_pixel(7, 3), &Rgb([16, 32, 192]));
    }

    #[test]
    fn a_palette_png_keeps_its_colours_and_its_transparent_entry() {
        let decoded = opened(&fixtures::palette_png());
        let DynamicImage::ImageRgba8(rgba) = &decoded.image else {
            panic!("{:?}", decoded.image.color())
        };
        assert_eq!(rgba.get_pixel(0, 0), &Rgba([255, 0, 0, 255]));
        assert_eq!(rgba.get_pixel(2, 0), &Rgba([0, 0, 255, 255]));
        assert_eq!(rgba.get_pixel(3, 0)[3], 0);
        assert_eq!(rgba.get_pixel(0, 1)[3], 0);
        assert!(decoded.has_transparency());
    }

    #[test]
    fn grey_with_alpha_opens_as_rgba_and_keeps_its_transparency() {
        let grey = image::GrayAlphaImage::from_fn(4, 4, |x, _| image::LumaA([100, (x * 60) as u8]));
        let mut bytes = Cursor::new(Vec::new());
        DynamicImage::ImageLumaA8(grey)
            .write_to(&mut bytes, ImageFormat::Png)
            .unwrap();
        let decoded = opened(bytes.get_ref());
        let DynamicImage::ImageRgba8(rgba) = &decoded.image else {
            panic!("{:?}", decoded.image.color())
        };
        assert_eq!(rgba.get_pixel(0, 0), &Rgba([100, 100, 100, 0]));
        assert_eq!(rgba.get_pixel(3, 2), &Rgba([100, 100, 100, 180]));
        assert!(decoded.has_transparency());
        // An RGBA file that is fully opaque has nothing to keep.
        let opaque = image::RgbaImage::from_pixel(2, 2, Rgba([1, 2, 3, 255]));
        let mut bytes = Cursor::new(Vec::new());
        opaque.write_to(&mut bytes, ImageFormat::Png).unwrap();
        assert!(!opened(bytes.get_ref()).has_transparency());
    }

    #[test]
    fn webp_tiff_bmp_and_gif_open_too() {
        let picture = fixtures::quadrants(16, 16);
        for format in [
            ImageFormat::WebP,
            ImageFormat::Tiff,
            ImageFormat::Bmp,
            ImageFormat::Gif,
        ] {
            let decoded = opened(&fixtures::encode(&picture, format));
            assert_eq!(decoded.image.dimensions(), (16, 16), "{format:?}");
            assert_near(
                rgb_at(&decoded.image, 12, 12),
                [250, 250, 250],
                8,
                &format!("{format:?}"),
            );
            assert!(decoded.notes.is_empty(), "{format:?}: {:?}", decoded.notes);
        }
    }

    #[test]
    fn an_animated_gif_says_only_its_first_frame_is_used() {
        use image::codecs::gif::GifEncoder;
        let frames = [[255u8, 0, 0, 255], [0, 0, 255, 255]]
            .map(|colour| image::Frame::new(image::RgbaImage::from_pixel(4, 4, Rgba(colour))));
        let mut bytes = Vec::new();
        GifEncoder::new(&mut bytes).encode_frames(frames).unwrap();
        let decoded = opened(&bytes);
        assert_eq!(decoded.notes, ["GIF: only the first frame is used"]);
        assert_near(rgb_at(&decoded.image, 1, 1), [255, 0, 0], 0, "first frame");
    }

    #[test]
    fn a_display_p3_photo_is_converted_to_srgb_and_its_profile_kept() {
        // sRGB's pure red, as a Display P3 file stores it.
        let p3_red = image::RgbImage::from_pixel(4, 4, Rgb([234, 51, 35]));
        let icc = ColorProfile::new_display_p3().encode().unwrap();
        let decoded = opened(&fixtures::png_with_icc(&p3_red, icc.clone()));
        assert_near(
            rgb_at(&decoded.image, 2, 2),
            [255, 0, 0],
            4,
            "P3 red in sRGB",
        );
        assert!(decoded.converted_from.is_some());
        assert_eq!(decoded.icc_profile.as_deref(), Some(icc.as_slice()));

        // The way back, for outputs that carry the original profile again.
        let mut result = image::RgbaImage::from_pixel(1, 1, Rgba([255, 0, 0, 200]));
        assert!(srgb_to_profile(&mut result, &icc));
        let back = result.get_pixel(0, 0);
        assert_near(
            [back[0], back[1], back[2]],
            [234, 51, 35],
            4,
            "sRGB red in P3",
        );
        assert_eq!(back[3], 200, "alpha is left alone");
    }

    #[test]
    fn an_srgb_profile_changes_nothing() {
        let picture = fixtures::quadrants(8, 8);
        let icc = ColorProfile::new_srgb().encode().unwrap();
        let file = fixtures::png_with_icc(&picture, icc);
        assert!(!probe(&file, &limits()).unwrap().needs_srgb_conversion);
        let decoded = opened(&file);
        assert_eq!(decoded.converted_from, None);
        assert_eq!(decoded.image.to_rgb8(), picture);
    }

    #[test]
    fn a_decompression_bomb_is_refused_from_its_header_naming_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bomb.png");
        std::fs::write(&path, fixtures::png_declaring(40_000, 40_000)).unwrap();
        let error = open(&path, &limits()).unwrap_err().to_string();
        assert_eq!(
            error,
            format!(
                "the image is 40000 × 40000 pixels (1600 MP); Cutout opens images up to 250 MP: {}",
                path.display()
            )
        );
        assert_eq!(
            refusal(&fixtures::png_declaring(70_000, 10)),
            "the image is 70000 × 10 pixels; Cutout opens images up to 65535 pixels on a side"
        );
        let tight = DecodeLimits {
            max_alloc_bytes: 1000,
            ..limits()
        };
        let error = open_bytes(&fixtures::png_declaring(100, 100), &tight).unwrap_err();
        assert!(
            error.to_string().contains("Cutout allows 1 MB per image"),
            "{error}"
        );
    }

    #[test]
    fn empty_truncated_and_damaged_files_each_say_what_is_wrong_with_the_path_last() {
        let dir = tempfile::tempdir().unwrap();
        let jpeg = fixtures::jpeg(&fixtures::quadrants(64, 64));
        let png = fixtures::encode(&fixtures::quadrants(64, 64), ImageFormat::Png);
        let mut damaged_png = png.clone();
        for byte in &mut damaged_png[60..120] {
            *byte ^= 0x5A;
        }
        let cases: [(&str, Vec<u8>, &str); 6] = [
            ("empty.jpg", Vec::new(), "the file is empty (0 bytes)"),
            (
                "cut.jpg",
                jpeg[..jpeg.len() / 2].to_vec(),
                "the file is incomplete: it ends before the picture does (copy it again)",
            ),
            (
                "cut.png",
                png[..png.len() / 2].to_vec(),
                "the file is incomplete: it ends before the picture does (copy it again)",
            ),
            ("damaged.png", damaged_png, "the file is damaged ("),
            (
                "letter.jpg",
                b"Dear customer, please find".to_vec(),
                "the file is not an image (its content is in no picture format Cutout knows)",
            ),
            (
                "IMG_0001.heic",
                b"\0\0\0\x18ftypheic\0\0\0\0mif1heic".to_vec(),
                "HEIC files cannot be opened by this build of Cutout: decoding HEIC needs libheif",
            ),
        ];
        for (name, bytes, says) in cases {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).unwrap();
            let error = open(&path, &limits()).unwrap_err().to_string();
            assert!(error.starts_with(says), "{name}: {error}");
            assert!(
                error.ends_with(&format!(": {}", path.display())),
                "{name}: the path must come last: {error}"
            );
        }
        let missing = open(&dir.path().join("gone.png"), &limits()).unwrap_err();
        assert!(
            missing.to_string().starts_with("cannot read the file ("),
            "{missing}"
        );
    }

    #[test]
    fn content_decides_the_format_not_the_name() {
        let jpeg = fixtures::jpeg(&fixtures::quadrants(8, 8));
        assert_eq!(sniff(&jpeg), Some(SourceFormat::Jpeg));
        assert_eq!(sniff(b"BM but this is a text file about BMW"), None);
        let avif = b"\0\0\0\x1cftypavif\0\0\0\0avifmif1miaf";
        assert_eq!(sniff(avif), Some(SourceFormat::Avif));
        assert_eq!(sniff(b"\0\0\0\x18ftypisom\0\0\0\0isomiso2"), None, "an MP4");
        assert!(matches!(
            open_bytes(avif, &limits()),
            Err(ImagingError::Open {
                problem: DecodeProblem::Unavailable {
                    format: SourceFormat::Avif,
                    ..
                },
                path: None
            })
        ));
    }

    #[test]
    fn the_format_list_names_exactly_the_extensions_cutout_accepts() {
        let mut listed: Vec<&str> = input_formats()
            .iter()
            .flat_map(|f| f.extensions.iter().copied())
            .collect();
        let mut accepted = crate::jobs::job::IMAGE_EXTENSIONS.to_vec();
        listed.sort_unstable();
        accepted.sort_unstable();
        assert_eq!(listed, accepted);
        for support in input_formats() {
            assert_eq!(support.format.support().name, support.name);
            assert_eq!(
                support.available,
                support.format.unavailable_reason().is_none(),
                "{}",
                support.name
            );
        }
        let note = unavailable_formats_note().unwrap();
        assert!(note.contains("AVIF, HEIC and PSD"), "{note}");
    }
}
