//! Thumbnails made the cheapest correct way, so a folder of five hundred
//! 24-megapixel photos fills the queue in seconds and never holds a
//! full-size picture in memory.
//!
//! In order of preference:
//! 1. the small JPEG that cameras and phones embed in the EXIF block, when it
//!    is at least as big as the box and has the photo's shape (only the
//!    file's header is read);
//! 2. a JPEG decoded at 1/2, 1/4 or 1/8 of its size straight from its DCT
//!    coefficients (a 6000×4000 photo becomes 750×500 without ever existing
//!    at full size);
//! 3. any other file decoded in full.
//!
//! Each is then shrunk to fit the box with `fast_image_resize` (SIMD,
//! Lanczos3) and turned upright by the photo's EXIF orientation. Embedded
//! thumbnails are stored the same way round as the photo, so they are turned
//! too.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use exif::{In, Tag};
use fast_image_resize as fir;
use image::metadata::Orientation;
use image::{DynamicImage, RgbImage, RgbaImage};

use super::ImagingError;
use super::decode::{self, DecodeLimits};

/// The filter for the final shrink: sharp without ringing on photos.
const FILTER: fir::FilterType = fir::FilterType::Lanczos3;

/// How a thumbnail was made. Tests and the benchmark check that the fast
/// paths are really the ones taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThumbnailRoute {
    /// The JPEG thumbnail embedded in the file's EXIF block.
    ExifThumbnail,
    /// The JPEG decoded at 1/`denominator` of its size (1, 2, 4 or 8).
    ScaledJpeg {
        /// How many times smaller than the photo the decoded picture was.
        denominator: u8,
    },
    /// Decoded at full size, then shrunk: every format but JPEG, and JPEGs
    /// the scaled decoder cannot read (arithmetic coding, 12-bit, lossless).
    FullDecode,
}

/// A picture shrunk to fit a square box, upright.
#[derive(Debug, Clone)]
pub struct Thumbnail {
    /// The pixels, straight (not premultiplied) alpha.
    pub image: RgbaImage,
    /// Which way it was made.
    pub route: ThumbnailRoute,
}

/// Reads an image file and shrinks it to fit a `max_side_px` square,
/// keeping its proportions and never enlarging it, turned upright by its
/// EXIF orientation. Takes the fastest route the file allows (see the
/// module documentation); a file no fast route can read is decoded in full,
/// so the errors are the full decoder's.
pub fn thumbnail(path: &Path, max_side_px: u32) -> Result<Thumbnail, ImagingError> {
    let max_side_px = max_side_px.max(1);
    if let Some(thumbnail) = jpeg_thumbnail(path, max_side_px) {
        return Ok(thumbnail);
    }
    let full = decode_full(path)?;
    Ok(Thumbnail {
        image: shrink(full, max_side_px),
        route: ThumbnailRoute::FullDecode,
    })
}

/// The two JPEG routes. `None` sends the file to the full decoder: not a
/// JPEG, or one these routes cannot read (the full decoder then reports
/// why, in the same words as everywhere else).
fn jpeg_thumbnail(path: &Path, max_side_px: u32) -> Option<Thumbnail> {
    let mut reader = BufReader::new(File::open(path).ok()?);
    if !reader.fill_buf().ok()?.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return None;
    }
    let mut decoder = jpeg_decoder::Decoder::new(reader);
    // Reads the markers up to the frame header only: EXIF comes before it.
    decoder.read_info().ok()?;
    let info = decoder.info()?;
    if info.coding_process == jpeg_decoder::CodingProcess::Lossless {
        return None;
    }
    let (width, height) = (u32::from(info.width), u32::from(info.height));
    // Too large or empty: the full decoder refuses it with a message that
    // names the limit.
    let limit = u64::from(DecodeLimits::default().max_megapixels) * 1_000_000;
    if width == 0 || height == 0 || u64::from(width) * u64::from(height) > limit {
        return None;
    }
    let exif = decoder.exif_data().and_then(parse_exif);
    let orientation = exif.as_ref().map_or(Orientation::NoTransforms, orientation);
    let wanted = fit([width, height], max_side_px);

    if let Some(embedded) = exif
        .as_ref()
        .and_then(|exif| embedded_thumbnail(exif, [width, height], max_side_px))
    {
        return Some(finish(
            embedded,
            wanted,
            orientation,
            ThumbnailRoute::ExifThumbnail,
        ));
    }

    // The smallest of 1/1, 1/2, 1/4, 1/8 that still fills the box. Both
    // sides fit in u16: they are no larger than the JPEG's own u16 sizes.
    let (scaled_width, scaled_height) = decoder
        .scale(
            u16::try_from(wanted[0]).ok()?,
            u16::try_from(wanted[1]).ok()?,
        )
        .ok()?;
    let pixels = decoder.decode().ok()?;
    let format = decoder.info()?.pixel_format;
    let scaled = to_rgb(
        pixels,
        format,
        u32::from(scaled_width),
        u32::from(scaled_height),
    )?;
    let denominator = (f64::from(width) / f64::from(scaled_width)).round() as u8;
    Some(finish(
        scaled,
        wanted,
        orientation,
        ThumbnailRoute::ScaledJpeg { denominator },
    ))
}

/// Shrinks a reduced picture to `size`, the photo's own size fitted to the
/// box (the reduced picture's rounding would be off by a pixel), upright.
fn finish(
    picture: RgbImage,
    size: [u32; 2],
    orientation: Orientation,
    route: ThumbnailRoute,
) -> Thumbnail {
    let mut small = DynamicImage::ImageRgba8(shrink_to(DynamicImage::ImageRgb8(picture), size));
    // Turning the small picture is as right as turning the large one, and
    // far cheaper.
    small.apply_orientation(orientation);
    Thumbnail {
        image: small.into_rgba8(),
        route,
    }
}

/// Parses the EXIF block; damage past the fields we need is tolerated.
fn parse_exif(raw: &[u8]) -> Option<exif::Exif> {
    exif::Reader::new()
        .continue_on_error(true)
        .read_raw(raw.to_vec())
        .or_else(|error| error.distill_partial_result(|_| {}))
        .ok()
}

fn orientation(exif: &exif::Exif) -> Orientation {
    exif.get_field(Tag::Orientation, In::PRIMARY)
        .and_then(|field| field.value.get_uint(0))
        .and_then(|value| u8::try_from(value).ok())
        .and_then(Orientation::from_exif)
        .unwrap_or(Orientation::NoTransforms)
}

/// The embedded JPEG thumbnail, if it is big enough for the box and has the
/// photo's shape. A different shape means black bars (a 4:3 thumbnail of a
/// 3:2 photo) or a thumbnail an editor forgot to update after a crop or a
/// turn; either would show the wrong picture.
fn embedded_thumbnail(exif: &exif::Exif, photo: [u32; 2], max_side_px: u32) -> Option<RgbImage> {
    let uint = |tag| {
        exif.get_field(tag, In::THUMBNAIL)
            .and_then(|field| field.value.get_uint(0))
            .and_then(|value| usize::try_from(value).ok())
    };
    let offset = uint(Tag::JPEGInterchangeFormat)?;
    let length = uint(Tag::JPEGInterchangeFormatLength)?;
    let bytes = exif.buf().get(offset..offset.checked_add(length)?)?;
    let mut decoder = jpeg_decoder::Decoder::new(bytes);
    decoder.read_info().ok()?;
    let info = decoder.info()?;
    let size = [u32::from(info.width), u32::from(info.height)];
    let big_enough = size[0].max(size[1]) >= max_side_px;
    let not_larger = size[0] <= photo[0] && size[1] <= photo[1];
    if !(big_enough && not_larger && same_shape(size, photo)) {
        return None;
    }
    let pixels = decoder.decode().ok()?;
    to_rgb(pixels, info.pixel_format, size[0], size[1])
}

/// Whether a `small` picture is `large` scaled down, to within a pixel.
fn same_shape(small: [u32; 2], large: [u32; 2]) -> bool {
    let [sw, sh] = small.map(u64::from);
    let [lw, lh] = large.map(u64::from);
    // |sw/sh - lw/lh|, measured in pixels of the small picture's long side.
    (sw * lh).abs_diff(sh * lw) <= lw.max(lh)
}

/// The decoder's pixels as RGB. CMYK is converted naively (no colour
/// profile): right enough for a 48-pixel preview, and not worth an ICC
/// transform per row.
fn to_rgb(
    pixels: Vec<u8>,
    format: jpeg_decoder::PixelFormat,
    width: u32,
    height: u32,
) -> Option<RgbImage> {
    use jpeg_decoder::PixelFormat;
    let rgb = match format {
        PixelFormat::RGB24 => pixels,
        PixelFormat::L8 => pixels.iter().flat_map(|&l| [l, l, l]).collect(),
        // jpeg-decoder gives ink amounts (0 = no ink), Adobe inversion undone.
        PixelFormat::CMYK32 => pixels
            .chunks_exact(4)
            .flat_map(|cmyk| {
                let paper = |ink: u8| 255 - u16::from(ink);
                let k = paper(cmyk[3]);
                [0, 1, 2].map(|i| ((paper(cmyk[i]) * k + 127) / 255) as u8)
            })
            .collect(),
        // 16-bit grey comes only from lossless JPEGs, which never get here.
        PixelFormat::L16 => return None,
    };
    RgbImage::from_raw(width, height, rgb)
}

/// Shrinks to fit the box; a picture that already fits is kept as it is.
fn shrink(picture: DynamicImage, max_side_px: u32) -> RgbaImage {
    let size = fit([picture.width(), picture.height()], max_side_px);
    shrink_to(picture, size)
}

/// Resizes to exactly `[width, height]` with `fast_image_resize`.
fn shrink_to(picture: DynamicImage, [width, height]: [u32; 2]) -> RgbaImage {
    let size = [picture.width(), picture.height()];
    if [width, height] == size {
        return picture.into_rgba8();
    }
    if picture.color().has_alpha() {
        let rgba = picture.into_rgba8();
        resize(rgba.as_raw(), size, [width, height], fir::PixelType::U8x4)
            .and_then(|raw| RgbaImage::from_raw(width, height, raw))
            .unwrap_or_else(|| image::imageops::thumbnail(&rgba, width, height))
    } else {
        let rgb = picture.into_rgb8();
        let small = resize(rgb.as_raw(), size, [width, height], fir::PixelType::U8x3)
            .and_then(|raw| RgbImage::from_raw(width, height, raw))
            .unwrap_or_else(|| image::imageops::thumbnail(&rgb, width, height));
        DynamicImage::ImageRgb8(small).into_rgba8()
    }
}

/// `None` only if the buffer does not match its size, which `shrink` rules
/// out; it then falls back to `image`'s slower resize rather than fail.
fn resize(
    pixels: &[u8],
    [width, height]: [u32; 2],
    [to_width, to_height]: [u32; 2],
    pixel_type: fir::PixelType,
) -> Option<Vec<u8>> {
    let source = fir::images::ImageRef::new(width, height, pixels, pixel_type).ok()?;
    let mut target = fir::images::Image::new(to_width, to_height, pixel_type);
    // Alpha is premultiplied during the resize, so transparent pixels do not
    // bleed their colour into the edges.
    let options = fir::ResizeOptions::new()
        .resize_alg(fir::ResizeAlg::Convolution(FILTER))
        .use_alpha(true);
    fir::Resizer::new()
        .resize(&source, &mut target, &options)
        .ok()?;
    Some(target.into_vec())
}

/// The size that fits a `max_side_px` square with the same proportions,
/// never larger than `size`, never zero.
fn fit(size: [u32; 2], max_side_px: u32) -> [u32; 2] {
    let [width, height] = size;
    if width <= max_side_px && height <= max_side_px {
        return size;
    }
    let scaled = |short: u32, long: u32| {
        let (short, long, max) = (u64::from(short), u64::from(long), u64::from(max_side_px));
        // At most max_side_px, so it fits in u32.
        ((short * max + long / 2) / long).clamp(1, max) as u32
    };
    if width >= height {
        [max_side_px, scaled(height, width)]
    } else {
        [scaled(width, height), max_side_px]
    }
}

/// The general decoder: upright, sRGB, CMYK and colour profiles handled,
/// and its limits enforced.
fn decode_full(path: &Path) -> Result<DynamicImage, ImagingError> {
    Ok(decode::open(path, &DecodeLimits::default())?.image)
}

#[cfg(test)]
pub(crate) mod fixtures {
    //! JPEGs written the way cameras write them, shared with the queue's
    //! thumbnail tests.

    use std::io::Cursor;

    use image::codecs::jpeg::JpegEncoder;
    use image::{ImageEncoder, RgbImage};

    /// A photo-sized JPEG whose top-left quarter is red and the rest blue,
    /// so a test can tell which way up it came out.
    pub(crate) fn quartered(width: u32, height: u32) -> RgbImage {
        RgbImage::from_fn(width, height, |x, y| {
            if x < width / 2 && y < height / 2 {
                image::Rgb([220, 20, 20])
            } else {
                image::Rgb([20, 20, 220])
            }
        })
    }

    /// Encodes `photo` as a JPEG with an EXIF block holding `orientation`
    /// and, if given, an embedded JPEG `thumbnail`.
    pub(crate) fn jpeg_with_exif(
        photo: &RgbImage,
        orientation: u16,
        thumbnail: Option<&RgbImage>,
    ) -> Vec<u8> {
        let thumbnail_jpeg = thumbnail.map(|t| encode(t, None));
        let orientation_field = exif::Field {
            tag: exif::Tag::Orientation,
            ifd_num: exif::In::PRIMARY,
            value: exif::Value::Short(vec![orientation]),
        };
        let mut writer = exif::experimental::Writer::new();
        writer.push_field(&orientation_field);
        if let Some(jpeg) = &thumbnail_jpeg {
            writer.set_jpeg(jpeg, exif::In::THUMBNAIL);
        }
        let mut tiff = Cursor::new(Vec::new());
        writer.write(&mut tiff, false).unwrap();
        encode(photo, Some(tiff.into_inner()))
    }

    fn encode(picture: &RgbImage, exif: Option<Vec<u8>>) -> Vec<u8> {
        let mut out = Vec::new();
        let mut encoder = JpegEncoder::new_with_quality(&mut out, 85);
        if let Some(exif) = exif {
            encoder.set_exif_metadata(exif).unwrap();
        }
        encoder
            .write_image(
                picture.as_raw(),
                picture.width(),
                picture.height(),
                image::ExtendedColorType::Rgb8,
            )
            .unwrap();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::{jpeg_with_exif, quartered};
    use super::*;
    use crate::imaging::decode::fixtures::{
        FourChannel, adobe_cmyk_jpeg, naive_cmyk_to_rgb, progressive_jpeg,
    };
    use image::{Rgb, Rgba};

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    fn is_red(pixel: &Rgba<u8>) -> bool {
        pixel[0] > 150 && pixel[2] < 100
    }

    #[test]
    fn a_large_jpeg_is_decoded_at_an_eighth_and_shrunk_to_fit_the_box() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "photo.jpg",
            &jpeg_with_exif(&quartered(800, 600), 1, None),
        );
        let thumb = thumbnail(&path, 96).unwrap();
        assert_eq!(thumb.route, ThumbnailRoute::ScaledJpeg { denominator: 8 });
        assert_eq!(thumb.image.dimensions(), (96, 72));
        assert!(is_red(thumb.image.get_pixel(10, 10)));
        assert!(!is_red(thumb.image.get_pixel(85, 60)));
    }

    #[test]
    fn a_box_larger_than_an_eighth_decodes_at_the_smallest_scale_that_still_fills_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "photo.jpg",
            &jpeg_with_exif(&quartered(800, 600), 1, None),
        );
        let thumb = thumbnail(&path, 300).unwrap();
        assert_eq!(thumb.route, ThumbnailRoute::ScaledJpeg { denominator: 2 });
        assert_eq!(thumb.image.dimensions(), (300, 225));
    }

    #[test]
    fn a_turned_phone_photo_comes_out_upright() {
        let dir = tempfile::tempdir().unwrap();
        // Stored landscape with orientation 6: shown turned a quarter clockwise,
        // so the stored top-left corner ends up top-right.
        let path = write(
            dir.path(),
            "phone.jpg",
            &jpeg_with_exif(&quartered(800, 600), 6, None),
        );
        let thumb = thumbnail(&path, 96).unwrap();
        assert_eq!(thumb.image.dimensions(), (72, 96));
        assert!(is_red(thumb.image.get_pixel(60, 10)), "top right is red");
        assert!(!is_red(thumb.image.get_pixel(10, 10)));
    }

    #[test]
    fn an_embedded_thumbnail_of_the_right_shape_is_used_and_turned_like_the_photo() {
        let dir = tempfile::tempdir().unwrap();
        // The embedded thumbnail is green, the photo is not, so the test
        // sees which one was used.
        let embedded = RgbImage::from_pixel(160, 120, Rgb([20, 200, 20]));
        let path = write(
            dir.path(),
            "camera.jpg",
            &jpeg_with_exif(&quartered(800, 600), 8, Some(&embedded)),
        );
        let thumb = thumbnail(&path, 96).unwrap();
        assert_eq!(thumb.route, ThumbnailRoute::ExifThumbnail);
        assert_eq!(thumb.image.dimensions(), (72, 96), "turned upright");
        let pixel = thumb.image.get_pixel(36, 48);
        assert!(pixel[1] > 150 && pixel[0] < 100, "{pixel:?}");
    }

    #[test]
    fn an_embedded_thumbnail_that_is_too_small_or_the_wrong_shape_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let tiny = RgbImage::from_pixel(80, 60, Rgb([20, 200, 20]));
        let path = write(
            dir.path(),
            "tiny.jpg",
            &jpeg_with_exif(&quartered(800, 600), 1, Some(&tiny)),
        );
        assert_eq!(
            thumbnail(&path, 96).unwrap().route,
            ThumbnailRoute::ScaledJpeg { denominator: 8 }
        );
        // 4:3 thumbnail of a 16:9 photo: it would show black bars.
        let letterboxed = RgbImage::from_pixel(160, 120, Rgb([0, 0, 0]));
        let path = write(
            dir.path(),
            "wide.jpg",
            &jpeg_with_exif(&quartered(800, 450), 1, Some(&letterboxed)),
        );
        let thumb = thumbnail(&path, 96).unwrap();
        assert_eq!(thumb.route, ThumbnailRoute::ScaledJpeg { denominator: 8 });
        assert_eq!(thumb.image.dimensions(), (96, 54));
    }

    #[test]
    fn a_png_with_transparency_is_decoded_in_full_and_keeps_its_alpha() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cutout.png");
        let mut picture = RgbaImage::from_pixel(400, 200, Rgba([0, 0, 0, 0]));
        for y in 0..200 {
            for x in 0..200 {
                picture.put_pixel(x, y, Rgba([200, 10, 10, 255]));
            }
        }
        picture.save(&path).unwrap();
        let thumb = thumbnail(&path, 96).unwrap();
        assert_eq!(thumb.route, ThumbnailRoute::FullDecode);
        assert_eq!(thumb.image.dimensions(), (96, 48));
        assert_eq!(thumb.image.get_pixel(10, 24), &Rgba([200, 10, 10, 255]));
        assert_eq!(thumb.image.get_pixel(90, 24)[3], 0);
    }

    #[test]
    fn a_small_picture_is_never_enlarged() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "icon.jpg",
            &jpeg_with_exif(&quartered(40, 30), 1, None),
        );
        let thumb = thumbnail(&path, 96).unwrap();
        assert_eq!(thumb.image.dimensions(), (40, 30));
    }

    #[test]
    fn damaged_truncated_and_missing_files_are_the_full_decoders_errors_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let broken = write(
            dir.path(),
            "broken.jpg",
            b"\xFF\xD8\xFF\xE0 not really a jpeg",
        );
        assert!(matches!(
            thumbnail(&broken, 96),
            Err(ImagingError::Open { .. })
        ));
        let whole = jpeg_with_exif(&quartered(800, 600), 1, None);
        let cut = write(dir.path(), "cut.jpg", &whole[..whole.len() / 2]);
        let error = thumbnail(&cut, 96).unwrap_err().to_string();
        assert!(error.contains("incomplete"), "{error}");
        assert!(matches!(
            thumbnail(&dir.path().join("gone.jpg"), 96),
            Err(ImagingError::Open { .. })
        ));
    }

    #[test]
    fn print_shop_cmyk_and_ycck_jpegs_take_the_fast_path_with_sane_colours() {
        let dir = tempfile::tempdir().unwrap();
        // 800 × 600: cyan ink on the left half, 50% black on the right.
        let ink = |bx: u32, _by: u32| {
            if bx < 50 {
                [255, 0, 0, 0]
            } else {
                [0, 0, 0, 128]
            }
        };
        for kind in [FourChannel::Cmyk, FourChannel::Ycck] {
            let path = write(
                dir.path(),
                "print.jpg",
                &adobe_cmyk_jpeg(100, 75, kind, ink),
            );
            let thumb = thumbnail(&path, 96).unwrap();
            assert_eq!(thumb.route, ThumbnailRoute::ScaledJpeg { denominator: 8 });
            assert_eq!(thumb.image.dimensions(), (96, 72));
            for (x, ink) in [(20, [255, 0, 0, 0]), (76, [0, 0, 0, 128])] {
                let [r, g, b] = naive_cmyk_to_rgb(ink);
                let got = thumb.image.get_pixel(x, 36);
                let close = |a: u8, b: u8| a.abs_diff(b) <= 3;
                assert!(
                    close(got[0], r) && close(got[1], g) && close(got[2], b),
                    "{kind:?} at x = {x}: {got:?}, expected {:?}",
                    [r, g, b]
                );
            }
        }
    }

    #[test]
    fn a_progressive_jpeg_is_decoded_scaled_too() {
        let dir = tempfile::tempdir().unwrap();
        let jpeg = progressive_jpeg(100, 75, |bx, _| {
            if bx < 50 {
                [200, 30, 30]
            } else {
                [30, 30, 200]
            }
        });
        let path = write(dir.path(), "progressive.jpg", &jpeg);
        let thumb = thumbnail(&path, 96).unwrap();
        assert_eq!(thumb.route, ThumbnailRoute::ScaledJpeg { denominator: 8 });
        assert!(is_red(thumb.image.get_pixel(10, 36)));
        assert!(!is_red(thumb.image.get_pixel(86, 36)));
    }

    #[test]
    fn fitting_keeps_proportions_and_never_reaches_zero() {
        assert_eq!(fit([6000, 4000], 96), [96, 64]);
        assert_eq!(fit([4000, 6000], 96), [64, 96]);
        assert_eq!(fit([10_000, 10], 96), [96, 1]);
        assert_eq!(fit([50, 20], 96), [50, 20]);
    }

    #[test]
    fn shapes_match_to_within_a_pixel_of_rounding() {
        assert!(same_shape([160, 107], [6000, 4000]));
        assert!(same_shape([160, 120], [4032, 3024]));
        assert!(!same_shape([160, 120], [6000, 4000]));
        assert!(!same_shape([120, 160], [4032, 3024]));
    }
}
