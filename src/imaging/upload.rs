//! Getting an input ready for its provider. Most photos go exactly as they
//! are. The rest get a temporary copy the provider can use: upright (an
//! EXIF-rotated phone photo would come back sideways), sRGB (a CMYK or
//! Display P3 file would come back with shifted colours), in a format the
//! provider takes (HEIC is converted to JPEG where this build can decode
//! it) and, only when the user allowed it, downscaled to the provider's
//! pixel or size limits. The original is never touched, and the job says
//! what was done.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::{CompressionType, FilterType as PngFilter, PngEncoder};
use image::imageops::FilterType;
use image::{DynamicImage, ExtendedColorType, ImageEncoder};

use super::ImagingError;
use super::decode::{self, DecodeLimits, DecodeProblem, SourceFormat, megapixels};
use crate::providers::{InputLimits, ProviderInfo};

/// JPEG quality of upload copies: visually lossless for a photo, a third of
/// a PNG's size.
pub const UPLOAD_JPEG_QUALITY: u8 = 92;

/// How many times a copy still over the file-size limit is shrunk again.
const SHRINK_ATTEMPTS: usize = 6;

/// The file a provider gets for one job: the input itself, or a temporary
/// copy that is deleted when this value is dropped (when the job ends,
/// however it ends).
#[derive(Debug)]
pub struct PreparedUpload {
    path: PathBuf,
    notes: Vec<String>,
    /// Holds the copy; `None` when the input goes as it is.
    _dir: Option<tempfile::TempDir>,
}

impl PreparedUpload {
    /// The input, sent as it is.
    pub fn as_is(path: &Path) -> Self {
        PreparedUpload {
            path: path.to_owned(),
            notes: Vec::new(),
            _dir: None,
        }
    }

    /// The file to upload.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What was done to the input, one sentence each, for the job's
    /// warnings ("rotated upright and converted from HEIC to JPEG for
    /// upload").
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// Whether a copy is sent instead of the input.
    pub fn is_copy(&self) -> bool {
        self._dir.is_some()
    }
}

/// Decides how the image file `input` goes to `provider`, making the copy
/// when one is needed. Slow for large images (it may decode and encode
/// them): call it off the async runtime.
pub fn prepare(
    input: &Path,
    provider: &ProviderInfo,
    allow_downscale: bool,
    decode_limits: &DecodeLimits,
) -> Result<PreparedUpload, ImagingError> {
    let open_error = |problem| ImagingError::Open {
        problem,
        path: Some(input.to_owned()),
    };
    let bytes = decode::read_within(input, decode_limits).map_err(open_error)?;
    if bytes.is_empty() {
        return Err(open_error(DecodeProblem::Empty));
    }
    let format = decode::sniff(&bytes).ok_or_else(|| open_error(DecodeProblem::NotAnImage))?;
    let limits = &provider.input_limits;
    let file_bytes = bytes.len() as u64;
    let bytes_over = limits.max_file_bytes.is_some_and(|max| file_bytes > max);
    let named_as = input
        .extension()
        .and_then(|e| e.to_str())
        .and_then(SourceFormat::from_extension);

    let support = format.support();
    if !support.available {
        if !limits.takes(format) {
            return Err(ImagingError::CannotConvert {
                provider: provider.name,
                format,
                why: format.unavailable_reason().unwrap_or_default(),
                path: input.to_owned(),
            });
        }
        if let (true, Some(max)) = (bytes_over, limits.max_file_bytes) {
            return Err(ImagingError::UploadCopy {
                reason: format!(
                    "{} takes files up to {} and this {format} file is {}, which this build \
                     cannot make smaller",
                    provider.name,
                    size_words(max),
                    size_words(file_bytes)
                ),
                path: input.to_owned(),
            });
        }
        return renamed_if_misnamed(input, &bytes, format, named_as);
    }

    let header = decode::probe(&bytes, decode_limits).map_err(open_error)?;
    let (width, height) = header.upright_size();
    let target = fit(width, height, limits);
    if target.is_some() && !allow_downscale {
        let (limit, actual) = pixel_limit_words(width, height, limits);
        return Err(ImagingError::OverProviderLimit {
            provider: provider.name,
            limit,
            actual,
            path: input.to_owned(),
        });
    }
    let accepted = limits.takes(format);
    if target.is_none()
        && !bytes_over
        && accepted
        && !header.is_rotated()
        && !header.needs_srgb_conversion
    {
        return renamed_if_misnamed(input, &bytes, format, named_as);
    }

    let decoded = decode::open_bytes(&bytes, decode_limits).map_err(|e| match e {
        ImagingError::Open { problem, .. } => open_error(problem),
        other => other,
    })?;
    let transparent = decoded.has_transparency();
    let out_format =
        upload_format(limits, transparent).ok_or_else(|| ImagingError::CannotConvert {
            provider: provider.name,
            format,
            why: "it takes neither JPEG nor PNG, the formats Cutout can write",
            path: input.to_owned(),
        })?;
    let mut notes = Vec::new();
    let mut changes = Vec::new();
    if decoded.rotated {
        changes.push("rotated upright".to_owned());
    }
    if let Some(from) = &decoded.converted_from {
        changes.push(format!("converted colours from {from} to sRGB"));
    }
    if out_format != format {
        changes.push(format!("converted from {format} to {out_format}"));
    } else if changes.is_empty() && bytes_over {
        changes.push(format!("re-encoded as {out_format}"));
    }
    if !changes.is_empty() {
        notes.push(format!("{} for upload", join_words(&changes)));
    }
    notes.extend(decoded.notes.iter().cloned());

    let mut image = decoded.image;
    // The limit the copy was shrunk for, named in the note.
    let mut shrunk_for = None;
    if let Some((new_width, new_height)) = target {
        image = image.resize_exact(new_width, new_height, FilterType::Lanczos3);
        shrunk_for = Some(pixel_limit_words(width, height, limits).0);
    }
    let mut encoded = encode(&image, out_format, input)?;
    if let Some(max) = limits.max_file_bytes {
        let mut attempts = 0;
        while encoded.len() as u64 > max {
            if !allow_downscale {
                return Err(ImagingError::OverProviderLimit {
                    provider: provider.name,
                    limit: size_words(max),
                    actual: format!("{} as {out_format}", size_words(encoded.len() as u64)),
                    path: input.to_owned(),
                });
            }
            attempts += 1;
            if attempts > SHRINK_ATTEMPTS {
                return Err(ImagingError::UploadCopy {
                    reason: format!(
                        "it stays over {}'s {} limit even when shrunk",
                        provider.name,
                        size_words(max)
                    ),
                    path: input.to_owned(),
                });
            }
            let scale = (max as f64 / encoded.len() as f64).sqrt() * 0.9;
            let new_width = ((f64::from(image.width()) * scale) as u32).max(1);
            let new_height = ((f64::from(image.height()) * scale) as u32).max(1);
            image = image.resize_exact(new_width, new_height, FilterType::Lanczos3);
            encoded = encode(&image, out_format, input)?;
            shrunk_for = Some(size_words(max));
        }
    }
    if let Some(limit) = shrunk_for {
        notes.push(format!(
            "downscaled from {width}×{height} to {}×{} to fit {}'s {limit} limit",
            image.width(),
            image.height(),
            provider.name
        ));
    }
    write_copy(input, &encoded, out_format, notes)
}

/// The format of a copy: PNG keeps transparency, JPEG is small for a photo.
fn upload_format(limits: &InputLimits, transparent: bool) -> Option<SourceFormat> {
    let preferred = if transparent {
        [SourceFormat::Png, SourceFormat::Jpeg]
    } else {
        [SourceFormat::Jpeg, SourceFormat::Png]
    };
    preferred.into_iter().find(|f| limits.takes(*f))
}

/// The size that fits the provider's pixel limits, keeping the aspect
/// ratio; `None` when the image fits already.
fn fit(width: u32, height: u32, limits: &InputLimits) -> Option<(u32, u32)> {
    let pixels = u64::from(width) * u64::from(height);
    let mut scale = 1.0f64;
    if let Some(max) = limits.max_pixels
        && pixels > max
    {
        scale = scale.min((max as f64 / pixels as f64).sqrt());
    }
    if let Some(max) = limits.max_side_px
        && width.max(height) > max
    {
        scale = scale.min(f64::from(max) / f64::from(width.max(height)));
    }
    if scale >= 1.0 {
        return None;
    }
    let mut new_width = ((f64::from(width) * scale).floor() as u32).max(1);
    let mut new_height = ((f64::from(height) * scale).floor() as u32).max(1);
    // Rounding can leave a pixel row too many.
    while limits
        .max_pixels
        .is_some_and(|max| u64::from(new_width) * u64::from(new_height) > max)
    {
        if new_width >= new_height {
            new_width -= 1;
        } else {
            new_height -= 1;
        }
    }
    Some((new_width, new_height))
}

/// The pixel limit an image breaks, and its own size against it, in words:
/// ("25 MP", "48 MP (8000 × 6000)").
fn pixel_limit_words(width: u32, height: u32, limits: &InputLimits) -> (String, String) {
    let pixels = u64::from(width) * u64::from(height);
    match limits.max_pixels {
        Some(max) if pixels > max => (
            megapixels(max),
            format!("{} ({width} × {height})", megapixels(pixels)),
        ),
        _ => (
            format!("{} px on a side", limits.max_side_px.unwrap_or_default()),
            format!("{width} × {height} px"),
        ),
    }
}

/// `22 MB`, `850 KB`.
fn size_words(bytes: u64) -> String {
    if bytes >= 1_000_000 {
        let mb = bytes as f64 / 1_000_000.0;
        if mb.fract() == 0.0 || mb >= 100.0 {
            format!("{} MB", mb.round())
        } else {
            format!("{mb:.1} MB")
        }
    } else {
        format!("{} KB", bytes.div_ceil(1000))
    }
}

/// "a", "a and b", "a, b and c".
fn join_words(parts: &[String]) -> String {
    match parts {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

fn encode(
    image: &DynamicImage,
    format: SourceFormat,
    input: &Path,
) -> Result<Vec<u8>, ImagingError> {
    let mut out = Cursor::new(Vec::new());
    let written = match format {
        SourceFormat::Jpeg => {
            let rgb = image.to_rgb8();
            JpegEncoder::new_with_quality(&mut out, UPLOAD_JPEG_QUALITY).write_image(
                rgb.as_raw(),
                rgb.width(),
                rgb.height(),
                ExtendedColorType::Rgb8,
            )
        }
        _ => {
            let rgba;
            let rgb;
            let (raw, colour) = match image {
                DynamicImage::ImageRgb8(pixels) => (pixels.as_raw(), ExtendedColorType::Rgb8),
                DynamicImage::ImageRgba8(pixels) => (pixels.as_raw(), ExtendedColorType::Rgba8),
                other if other.color().has_alpha() => {
                    rgba = other.to_rgba8();
                    (rgba.as_raw(), ExtendedColorType::Rgba8)
                }
                other => {
                    rgb = other.to_rgb8();
                    (rgb.as_raw(), ExtendedColorType::Rgb8)
                }
            };
            PngEncoder::new_with_quality(&mut out, CompressionType::Default, PngFilter::Adaptive)
                .write_image(raw, image.width(), image.height(), colour)
        }
    };
    written.map_err(|e| ImagingError::UploadCopy {
        reason: format!("encoding it as {format} failed: {e}"),
        path: input.to_owned(),
    })?;
    Ok(out.into_inner())
}

/// Writes the copy into a fresh temporary folder, named after the input
/// with the copy's extension (providers show and sometimes check it).
fn write_copy(
    input: &Path,
    bytes: &[u8],
    format: SourceFormat,
    notes: Vec<String>,
) -> Result<PreparedUpload, ImagingError> {
    let failed = |e: std::io::Error| ImagingError::UploadCopy {
        reason: e.to_string(),
        path: input.to_owned(),
    };
    let dir = tempfile::Builder::new()
        .prefix("cutout-upload-")
        .tempdir()
        .map_err(failed)?;
    let stem = input
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "image".to_owned());
    let path = dir.path().join(format!("{stem}.{}", format.extension()));
    std::fs::write(&path, bytes).map_err(failed)?;
    Ok(PreparedUpload {
        path,
        notes,
        _dir: Some(dir),
    })
}

/// The input as it is, unless its extension names another format (a JPEG
/// saved as `.png`): providers trust the name, so it then goes as an
/// unchanged copy under the right one.
fn renamed_if_misnamed(
    input: &Path,
    bytes: &[u8],
    format: SourceFormat,
    named_as: Option<SourceFormat>,
) -> Result<PreparedUpload, ImagingError> {
    match named_as {
        Some(named) if named != format => {
            let note = format!(
                "sent under a .{} name: the file is a {format}, not the {named} its name says",
                format.extension()
            );
            write_copy(input, bytes, format, vec![note])
        }
        _ => Ok(PreparedUpload::as_is(input)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imaging::decode::fixtures::{self, FourChannel};
    use crate::providers::ProviderId;
    use image::{GenericImageView, ImageFormat, Rgb, RgbImage};

    fn remove_bg() -> &'static ProviderInfo {
        ProviderId::Removebg.info()
    }

    /// remove.bg with other limits, to test them on small pictures.
    fn remove_bg_with(limits: InputLimits) -> ProviderInfo {
        ProviderInfo {
            input_limits: limits,
            ..*remove_bg()
        }
    }

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    fn prepare_for(
        path: &Path,
        provider: &ProviderInfo,
        allow_downscale: bool,
    ) -> Result<PreparedUpload, ImagingError> {
        prepare(path, provider, allow_downscale, &DecodeLimits::default())
    }

    /// Noise: a photo-like picture that compresses badly, so file sizes are
    /// predictable enough to test the file-size limit.
    fn noise(width: u32, height: u32) -> RgbImage {
        let mut state = 0x2545_F491_u32;
        RgbImage::from_fn(width, height, |_, _| {
            let mut next = || {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                state as u8
            };
            Rgb([next(), next(), next()])
        })
    }

    #[test]
    fn a_photo_within_the_limits_goes_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let input = write(
            dir.path(),
            "shoe.jpg",
            &fixtures::jpeg(&fixtures::quadrants(64, 48)),
        );
        let prepared = prepare_for(&input, remove_bg(), false).unwrap();
        assert_eq!(prepared.path(), input);
        assert!(!prepared.is_copy());
        assert!(prepared.notes().is_empty());
    }

    #[test]
    fn a_rotated_cmyk_photo_goes_as_an_upright_srgb_jpeg_and_the_job_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let cmyk = fixtures::adobe_cmyk_jpeg(4, 2, FourChannel::Cmyk, |bx, _| {
            if bx == 0 {
                [255, 0, 0, 0]
            } else {
                [0, 0, 0, 0]
            }
        });
        let original = fixtures::with_exif_orientation(&cmyk, 6);
        let input = write(dir.path(), "label.jpg", &original);

        let prepared = prepare_for(&input, remove_bg(), false).unwrap();

        assert!(prepared.is_copy());
        assert_eq!(
            prepared.notes(),
            ["rotated upright and converted colours from CMYK to sRGB for upload"]
        );
        assert_eq!(prepared.path().file_name().unwrap(), "label.jpg");
        assert_ne!(prepared.path(), input);
        let sent = std::fs::read(prepared.path()).unwrap();
        let header = decode::probe(&sent, &DecodeLimits::default()).unwrap();
        assert!(!header.cmyk && !header.is_rotated());
        let upright = image::load_from_memory(&sent).unwrap();
        assert_eq!(upright.dimensions(), (16, 32));
        let cyan = upright.get_pixel(12, 4);
        assert!(cyan[0] < 16 && cyan[1] > 235 && cyan[2] > 235, "{cyan:?}");
        assert_eq!(
            std::fs::read(&input).unwrap(),
            original,
            "the original is untouched"
        );
    }

    #[test]
    fn a_format_the_provider_does_not_take_is_converted_keeping_transparency_in_png() {
        let dir = tempfile::tempdir().unwrap();
        let picture = fixtures::quadrants(16, 16);
        let bmp = write(
            dir.path(),
            "scan.bmp",
            &fixtures::encode(&picture, ImageFormat::Bmp),
        );
        let prepared = prepare_for(&bmp, remove_bg(), false).unwrap();
        assert_eq!(prepared.notes(), ["converted from BMP to JPEG for upload"]);
        assert_eq!(prepared.path().extension().unwrap(), "jpg");

        let mut cut = image::RgbaImage::from_pixel(16, 16, image::Rgba([10, 20, 30, 255]));
        cut.put_pixel(0, 0, image::Rgba([0, 0, 0, 0]));
        let mut tiff = std::io::Cursor::new(Vec::new());
        cut.write_to(&mut tiff, ImageFormat::Tiff).unwrap();
        let tiff = write(dir.path(), "cut.tif", tiff.get_ref());
        let prepared = prepare_for(&tiff, remove_bg(), false).unwrap();
        assert_eq!(prepared.notes(), ["converted from TIFF to PNG for upload"]);
        let sent = image::open(prepared.path()).unwrap().into_rgba8();
        assert_eq!(sent.get_pixel(0, 0)[3], 0);
    }

    #[test]
    fn an_image_over_the_pixel_limit_fails_naming_the_limit_unless_downscaling_is_allowed() {
        let dir = tempfile::tempdir().unwrap();
        let input = write(
            dir.path(),
            "wide.png",
            &fixtures::encode(&fixtures::quadrants(80, 60), ImageFormat::Png),
        );
        let provider = remove_bg_with(InputLimits {
            max_pixels: Some(1200),
            ..remove_bg().input_limits
        });

        let refused = prepare_for(&input, &provider, false)
            .unwrap_err()
            .to_string();
        assert_eq!(
            refused,
            format!(
                "remove.bg takes images up to 0.0012 MP, and this one is 0.0048 MP (80 × 60); \
                 allow downscaling (\"Downscale to fit\" in the window, or --allow-downscale) \
                 to send a smaller copy, the original is never changed: {}",
                input.display()
            )
        );

        let prepared = prepare_for(&input, &provider, true).unwrap();
        assert_eq!(
            prepared.notes(),
            [
                "converted from PNG to JPEG for upload",
                "downscaled from 80×60 to 40×30 to fit remove.bg's 0.0012 MP limit",
            ]
        );
        assert_eq!(image::open(prepared.path()).unwrap().dimensions(), (40, 30));
    }

    #[test]
    fn a_file_over_the_size_limit_is_re_encoded_and_shrunk_only_when_allowed() {
        let dir = tempfile::tempdir().unwrap();
        let input = write(
            dir.path(),
            "noise.png",
            &fixtures::encode(&noise(200, 200), ImageFormat::Png),
        );
        let provider = remove_bg_with(InputLimits {
            max_file_bytes: Some(20_000),
            ..remove_bg().input_limits
        });

        let refused = prepare_for(&input, &provider, false)
            .unwrap_err()
            .to_string();
        assert!(
            refused.starts_with("remove.bg takes images up to 20 KB, and this one is "),
            "{refused}"
        );
        assert!(
            refused.contains(" KB as JPEG; allow downscaling"),
            "{refused}"
        );

        let prepared = prepare_for(&input, &provider, true).unwrap();
        assert!(std::fs::metadata(prepared.path()).unwrap().len() <= 20_000);
        let (width, height) = image::open(prepared.path()).unwrap().dimensions();
        assert!(width < 200 && width == height, "{width}×{height}");
        assert_eq!(
            prepared.notes(),
            [
                "converted from PNG to JPEG for upload".to_owned(),
                format!(
                    "downscaled from 200×200 to {width}×{height} to fit remove.bg's 20 KB limit"
                ),
            ]
        );
    }

    #[test]
    fn heic_goes_unchanged_to_a_provider_that_takes_it_and_fails_clearly_for_one_that_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let avif = write(
            dir.path(),
            "phone.avif",
            b"\0\0\0\x1cftypavif\0\0\0\0avifmif1miaf",
        );
        let prepared = prepare_for(&avif, ProviderId::Removit.info(), false).unwrap();
        assert_eq!(prepared.path(), avif);

        let heic = write(
            dir.path(),
            "IMG_0001.heic",
            b"\0\0\0\x18ftypheic\0\0\0\0mif1heic",
        );
        let refused = prepare_for(&heic, remove_bg(), true)
            .unwrap_err()
            .to_string();
        assert!(
            refused.starts_with(
                "remove.bg does not take HEIC files and this build of Cutout cannot convert them \
                 (decoding HEIC needs libheif"
            ),
            "{refused}"
        );
        assert!(
            refused.ends_with(&format!(": {}", heic.display())),
            "{refused}"
        );
    }

    #[test]
    fn a_jpeg_named_png_goes_unchanged_under_its_real_name() {
        let dir = tempfile::tempdir().unwrap();
        let jpeg = fixtures::jpeg(&fixtures::quadrants(16, 16));
        let input = write(dir.path(), "logo.png", &jpeg);
        let prepared = prepare_for(&input, remove_bg(), false).unwrap();
        assert_eq!(prepared.path().file_name().unwrap(), "logo.jpg");
        assert_eq!(std::fs::read(prepared.path()).unwrap(), jpeg);
        assert_eq!(
            prepared.notes(),
            ["sent under a .jpg name: the file is a JPEG, not the PNG its name says"]
        );
    }

    #[test]
    fn broken_inputs_fail_with_the_decoders_reason_and_the_path_last() {
        let dir = tempfile::tempdir().unwrap();
        let empty = write(dir.path(), "empty.jpg", b"");
        let error = prepare_for(&empty, remove_bg(), true)
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            format!("the file is empty (0 bytes): {}", empty.display())
        );
        let bomb = write(
            dir.path(),
            "bomb.png",
            &fixtures::png_declaring(40_000, 40_000),
        );
        let error = prepare_for(&bomb, remove_bg(), true)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("Cutout opens images up to 250 MP"),
            "{error}"
        );
    }

    #[test]
    fn the_copy_is_deleted_when_the_job_lets_go_of_it() {
        let dir = tempfile::tempdir().unwrap();
        let bmp = fixtures::encode(&fixtures::quadrants(8, 8), ImageFormat::Bmp);
        let input = write(dir.path(), "a.bmp", &bmp);
        let prepared = prepare_for(&input, remove_bg(), false).unwrap();
        let copy = prepared.path().to_owned();
        assert!(copy.exists());
        drop(prepared);
        assert!(!copy.exists());
        assert!(input.exists());
    }

    #[test]
    fn fitting_keeps_the_aspect_ratio_and_lands_just_under_the_limit() {
        let limits = remove_bg().input_limits;
        assert_eq!(fit(8000, 6000, &limits), Some((5773, 4330)));
        assert_eq!(fit(5000, 5000, &limits), None, "exactly 25 MP fits");
        let sided = InputLimits {
            max_pixels: None,
            max_side_px: Some(4096),
            ..limits
        };
        assert_eq!(fit(10_000, 2_500, &sided), Some((4096, 1024)));
    }
}
