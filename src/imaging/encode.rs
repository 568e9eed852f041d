//! Writing a composed result in the format the user asked for, as small as
//! it reasonably gets without making a 24 MP result slow to save.
//!
//! * PNG goes through the `png` crate at zlib level 6 with adaptive row
//!   filters, after two lossless reductions: fully transparent pixels get
//!   colour 0 (providers often leave the photo's colour under alpha 0, which
//!   costs bytes and shows nothing), and an image with no transparency is
//!   stored as RGB. On real cut-outs this is within about 1.15× of oxipng's
//!   best at roughly 20× its speed (see the README's figures).
//! * WebP lossless uses the pure-Rust `image-webp` encoder (fast; files about
//!   the size of an optimised PNG); lossy WebP uses libwebp (the `webp`
//!   crate, built from vendored C source), the only encoder that does it.
//! * JPEG has no alpha: whatever transparency is left is flattened onto
//!   white (callers refuse JPEG with a transparent background first).
//! * Mask is the alpha channel as a greyscale PNG, for tools that take a
//!   matte instead of a cut-out.
//!
//! Colour: results are sRGB. PNG says so with an sRGB chunk; a result that
//! came with an ICC profile keeps it in every format.

use std::io::Cursor;

use image::{
    ExtendedColorType, ImageEncoder, ImageError, ImageFormat, RgbImage, RgbaImage,
    error::{EncodingError, ImageFormatHint},
};

use super::{ImagingError, OutputFormat};

/// JPEG quality when none is given: visually lossless for product shots.
pub const DEFAULT_JPEG_QUALITY: u8 = 90;

/// Lossy WebP quality when lossy WebP is asked for without a number.
pub const DEFAULT_WEBP_QUALITY: u8 = 85;

/// The widest and tallest WebP image the format can hold.
pub const WEBP_MAX_SIDE_PX: u32 = 16_383;

/// The widest and tallest JPEG image the format can hold.
pub const JPEG_MAX_SIDE_PX: u32 = 65_535;

/// How to write one result.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EncodeOptions {
    /// The file format.
    pub format: OutputFormat,
    /// Lossy quality, 1 to 100: JPEG (default [`DEFAULT_JPEG_QUALITY`]) and
    /// WebP, where a quality means lossy and none means lossless. Ignored by
    /// PNG and mask, which are always lossless.
    pub quality: Option<u8>,
    /// The colour profile to embed, when the result came with one; without
    /// it the result is sRGB (and a PNG is tagged so).
    pub icc_profile: Option<Vec<u8>>,
}

/// Encodes `image` (straight alpha) as `options` says.
pub fn encode(image: &RgbaImage, options: &EncodeOptions) -> Result<Vec<u8>, ImagingError> {
    let icc = options.icc_profile.as_deref().filter(|p| !p.is_empty());
    match options.format {
        OutputFormat::Png => {
            let mut tidy = image.clone();
            clear_transparent_colour(&mut tidy);
            let opaque = tidy.pixels().all(|p| p.0[3] == 255);
            if opaque {
                let rgb = drop_alpha(&tidy);
                write_png(rgb.as_raw(), tidy.dimensions(), png::ColorType::Rgb, icc)
            } else {
                write_png(tidy.as_raw(), tidy.dimensions(), png::ColorType::Rgba, icc)
            }
        }
        OutputFormat::Mask => {
            let alpha: Vec<u8> = image.pixels().map(|p| p.0[3]).collect();
            write_png(&alpha, image.dimensions(), png::ColorType::Grayscale, None)
        }
        OutputFormat::Jpg => {
            check_size(image, "jpg", JPEG_MAX_SIDE_PX)?;
            let rgb = flatten_onto_white(image);
            let quality = options
                .quality
                .unwrap_or(DEFAULT_JPEG_QUALITY)
                .clamp(1, 100);
            let mut out = Vec::new();
            let mut encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality);
            if let Some(icc) = icc {
                // JPEG carries ICC profiles in APP2; the encoder supports it.
                let _ = encoder.set_icc_profile(icc.to_vec());
            }
            encoder
                .write_image(
                    rgb.as_raw(),
                    rgb.width(),
                    rgb.height(),
                    ExtendedColorType::Rgb8,
                )
                .map_err(|source| ImagingError::Encode {
                    format: "jpg",
                    source,
                })?;
            Ok(out)
        }
        OutputFormat::Webp => {
            check_size(image, "webp", WEBP_MAX_SIDE_PX)?;
            let mut tidy = image.clone();
            clear_transparent_colour(&mut tidy);
            match options.quality {
                None => webp_lossless(&tidy, icc),
                Some(quality) => {
                    let lossy = webp_lossy(&tidy, quality.clamp(1, 100))?;
                    Ok(match icc {
                        Some(icc) => {
                            let alpha = tidy.pixels().any(|p| p.0[3] < 255);
                            with_webp_icc(&lossy, icc, tidy.dimensions(), alpha).unwrap_or(lossy)
                        }
                        None => lossy,
                    })
                }
            }
        }
    }
}

/// Gives every fully transparent pixel colour 0. Nothing visible changes;
/// files shrink a lot when a provider left the photo under alpha 0.
pub fn clear_transparent_colour(image: &mut RgbaImage) {
    for pixel in image.pixels_mut() {
        if pixel.0[3] == 0 {
            pixel.0 = [0, 0, 0, 0];
        }
    }
}

/// Composites onto white and drops alpha, for formats without it.
pub fn flatten_onto_white(image: &RgbaImage) -> RgbImage {
    let mut rgb = RgbImage::new(image.width(), image.height());
    for (out, pixel) in rgb.pixels_mut().zip(image.pixels()) {
        let alpha = u32::from(pixel.0[3]);
        for i in 0..3 {
            let mixed = u32::from(pixel.0[i]) * alpha + 255 * (255 - alpha);
            out.0[i] = ((mixed + 127) / 255) as u8;
        }
    }
    rgb
}

fn drop_alpha(image: &RgbaImage) -> RgbImage {
    let mut rgb = RgbImage::new(image.width(), image.height());
    for (out, pixel) in rgb.pixels_mut().zip(image.pixels()) {
        out.0 = [pixel.0[0], pixel.0[1], pixel.0[2]];
    }
    rgb
}

fn encode_error(format: &'static str, image_format: ImageFormat, why: String) -> ImagingError {
    ImagingError::Encode {
        format,
        source: ImageError::Encoding(EncodingError::new(
            ImageFormatHint::Exact(image_format),
            why,
        )),
    }
}

fn check_size(image: &RgbaImage, format: &'static str, limit_px: u32) -> Result<(), ImagingError> {
    let (width, height) = image.dimensions();
    if width > limit_px || height > limit_px {
        return Err(ImagingError::TooLargeFor {
            format,
            width,
            height,
            limit_px,
        });
    }
    Ok(())
}

fn write_png(
    data: &[u8],
    (width, height): (u32, u32),
    color: png::ColorType,
    icc: Option<&[u8]>,
) -> Result<Vec<u8>, ImagingError> {
    let failed = |e: png::EncodingError| encode_error("png", ImageFormat::Png, e.to_string());
    let mut out = Vec::new();
    let mut info = png::Info::with_size(width, height);
    if let Some(icc) = icc {
        info.icc_profile = Some(std::borrow::Cow::Borrowed(icc));
    }
    let mut encoder = png::Encoder::with_info(&mut out, info).map_err(failed)?;
    encoder.set_color(color);
    encoder.set_depth(png::BitDepth::Eight);
    if icc.is_none() && color != png::ColorType::Grayscale {
        encoder.set_source_srgb(png::SrgbRenderingIntent::Perceptual);
    }
    encoder.set_deflate_compression(png::DeflateCompression::Level(6));
    encoder.set_filter(png::Filter::Adaptive);
    let mut writer = encoder.write_header().map_err(failed)?;
    writer.write_image_data(data).map_err(failed)?;
    writer.finish().map_err(failed)?;
    Ok(out)
}

fn webp_lossless(image: &RgbaImage, icc: Option<&[u8]>) -> Result<Vec<u8>, ImagingError> {
    let mut out = Vec::new();
    let mut encoder = image::codecs::webp::WebPEncoder::new_lossless(Cursor::new(&mut out));
    if let Some(icc) = icc {
        let _ = encoder.set_icc_profile(icc.to_vec());
    }
    encoder
        .write_image(
            image.as_raw(),
            image.width(),
            image.height(),
            ExtendedColorType::Rgba8,
        )
        .map_err(|source| ImagingError::Encode {
            format: "webp",
            source,
        })?;
    Ok(out)
}

fn webp_lossy(image: &RgbaImage, quality: u8) -> Result<Vec<u8>, ImagingError> {
    let failed = |why: String| encode_error("webp", ImageFormat::WebP, why);
    let mut config = webp::WebPConfig::new().map_err(|()| failed("libwebp is unusable".into()))?;
    config.lossless = 0;
    config.quality = f32::from(quality);
    // Alpha stays exact: lossy edges on a cut-out show as halos.
    config.alpha_compression = 1;
    config.alpha_quality = 100;
    // Effort 3 of 6: about a third faster than libwebp's default 4 on a
    // cut-out, for files about 3 % larger; the alpha plane is encoded on a
    // second thread.
    config.method = 3;
    config.thread_level = 1;
    let opaque = image.pixels().all(|p| p.0[3] == 255);
    let encoded = if opaque {
        let rgb = drop_alpha(image);
        webp::Encoder::from_rgb(rgb.as_raw(), rgb.width(), rgb.height())
            .encode_advanced(&config)
            .map(|memory| memory.to_vec())
    } else {
        webp::Encoder::from_rgba(image.as_raw(), image.width(), image.height())
            .encode_advanced(&config)
            .map(|memory| memory.to_vec())
    };
    encoded.map_err(|e| failed(format!("libwebp failed: {e:?}")))
}

/// Adds an ICC profile to a WebP file (an `ICCP` chunk after `VP8X`,
/// creating the extended header a simple file lacks). `None` when the
/// file is not a WebP this understands, so the caller keeps it as is.
fn with_webp_icc(
    webp: &[u8],
    icc: &[u8],
    (width, height): (u32, u32),
    has_alpha: bool,
) -> Option<Vec<u8>> {
    const ICC_FLAG: u8 = 0x20;
    const ALPHA_FLAG: u8 = 0x10;
    if webp.len() < 12 || &webp[0..4] != b"RIFF" || &webp[8..12] != b"WEBP" {
        return None;
    }
    let mut chunks = Vec::new();
    let mut at = 12;
    while at + 8 <= webp.len() {
        let fourcc: [u8; 4] = webp[at..at + 4].try_into().ok()?;
        let size = u32::from_le_bytes(webp[at + 4..at + 8].try_into().ok()?) as usize;
        let end = at.checked_add(8)?.checked_add(size)?;
        if end > webp.len() {
            return None;
        }
        chunks.push((fourcc, &webp[at + 8..end]));
        at = end + (size & 1);
    }
    let chunk = |out: &mut Vec<u8>, fourcc: &[u8; 4], body: &[u8]| {
        out.extend_from_slice(fourcc);
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(body);
        if body.len() % 2 == 1 {
            out.push(0);
        }
    };
    let mut body = Vec::with_capacity(webp.len() + icc.len() + 32);
    body.extend_from_slice(b"WEBP");
    match chunks.first() {
        Some((fourcc, header)) if fourcc == b"VP8X" && header.len() >= 10 => {
            let mut header = header.to_vec();
            header[0] |= ICC_FLAG;
            chunk(&mut body, b"VP8X", &header);
        }
        Some(_) => {
            let mut header = vec![ICC_FLAG | if has_alpha { ALPHA_FLAG } else { 0 }, 0, 0, 0];
            header.extend_from_slice(&(width - 1).to_le_bytes()[..3]);
            header.extend_from_slice(&(height - 1).to_le_bytes()[..3]);
            chunk(&mut body, b"VP8X", &header);
        }
        None => return None,
    }
    chunk(&mut body, b"ICCP", icc);
    for (fourcc, data) in &chunks {
        if fourcc != b"VP8X" && fourcc != b"ICCP" {
            chunk(&mut body, fourcc, data);
        }
    }
    let mut out = Vec::with_capacity(body.len() + 8);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    Some(out)
}

#[cfg(test)]
mod tests {
    use image::{DynamicImage, GenericImageView, ImageDecoder, ImageReader, Rgba};

    use super::*;

    /// A photo-like cut-out: a soft-edged blob of shaded, textured colour
    /// with sensor-like noise, on transparency whose colour a provider left
    /// behind (noise too), as real results arrive.
    pub(crate) fn photo_cutout(width: u32, height: u32, seed: u64) -> RgbaImage {
        let mut rng = fastrand::Rng::with_seed(seed);
        let (cx, cy) = (width as f32 * 0.5, height as f32 * 0.55);
        let (rx, ry) = (width as f32 * 0.3, height as f32 * 0.38);
        RgbaImage::from_fn(width, height, |x, y| {
            let (dx, dy) = ((x as f32 - cx) / rx, (y as f32 - cy) / ry);
            let r = (dx.abs().powf(2.5) + dy.abs().powf(2.5)).powf(0.4);
            let alpha = ((1.0 - r) * rx.min(ry) / 2.0 + 0.5).clamp(0.0, 1.0);
            let texture = ((x as f32 * 0.05).sin() * (y as f32 * 0.031).cos() + 1.0) * 0.5;
            let light = 0.6 + 0.4 * (1.0 - (dx * 0.7 + dy * 0.9 + 0.3).clamp(-1.0, 1.0)) * 0.5;
            let mut channel = |base: f32| {
                let noise = (rng.f32() + rng.f32() + rng.f32() - 1.5) * 4.0;
                (base * light + noise).clamp(0.0, 255.0) as u8
            };
            let colour = [
                channel(190.0 * texture + 40.0),
                channel(110.0 * texture + 60.0),
                channel(90.0 + 60.0 * (1.0 - texture)),
            ];
            Rgba([
                colour[0],
                colour[1],
                colour[2],
                (alpha * 255.0).round() as u8,
            ])
        })
    }

    fn options(format: OutputFormat, quality: Option<u8>) -> EncodeOptions {
        EncodeOptions {
            format,
            quality,
            icc_profile: None,
        }
    }

    fn decode(bytes: &[u8]) -> DynamicImage {
        image::load_from_memory(bytes).unwrap()
    }

    /// What an image looks like: fully transparent pixels are all alike.
    fn visible(image: &RgbaImage) -> RgbaImage {
        let mut image = image.clone();
        clear_transparent_colour(&mut image);
        image
    }

    fn mean_error(a: &RgbaImage, b: &RgbaImage) -> f64 {
        let total: u64 = a
            .as_raw()
            .iter()
            .zip(b.as_raw())
            .map(|(x, y)| u64::from(x.abs_diff(*y)))
            .sum();
        total as f64 / a.as_raw().len() as f64
    }

    #[test]
    fn png_round_trips_every_visible_pixel_exactly() {
        let image = photo_cutout(96, 64, 1);
        let bytes = encode(&image, &options(OutputFormat::Png, None)).unwrap();
        assert_eq!(decode(&bytes).into_rgba8(), visible(&image));
    }

    #[test]
    fn an_opaque_png_is_stored_as_rgb_and_tagged_srgb() {
        let image = RgbaImage::from_fn(40, 30, |x, y| Rgba([x as u8 * 6, y as u8 * 8, 77, 255]));
        let bytes = encode(&image, &options(OutputFormat::Png, None)).unwrap();
        let decoded = decode(&bytes);
        assert_eq!(decoded.color(), image::ColorType::Rgb8);
        assert_eq!(decoded.into_rgba8(), image);
        assert!(bytes.windows(4).any(|w| w == b"sRGB"), "an sRGB chunk");
    }

    #[test]
    fn webp_lossless_round_trips_every_visible_pixel_exactly() {
        let image = photo_cutout(96, 64, 2);
        let bytes = encode(&image, &options(OutputFormat::Webp, None)).unwrap();
        assert_eq!(image::guess_format(&bytes).unwrap(), ImageFormat::WebP);
        assert_eq!(decode(&bytes).into_rgba8(), visible(&image));
    }

    #[test]
    fn webp_with_a_quality_is_lossy_but_close_and_keeps_transparency() {
        let image = photo_cutout(128, 96, 3);
        let lossless = encode(&image, &options(OutputFormat::Webp, None)).unwrap();
        let bytes = encode(&image, &options(OutputFormat::Webp, Some(80))).unwrap();
        assert!(
            bytes.len() < lossless.len() / 2,
            "{} vs {}",
            bytes.len(),
            lossless.len()
        );
        let decoded = decode(&bytes).into_rgba8();
        assert_eq!(decoded.dimensions(), image.dimensions());
        let error = mean_error(&visible(&decoded), &visible(&image));
        assert!(error < 3.0, "mean error {error}");
        for (got, want) in decoded.pixels().zip(image.pixels()) {
            assert!(got[3].abs_diff(want[3]) <= 2, "{got:?} vs {want:?}");
        }
    }

    #[test]
    fn jpeg_flattens_what_is_left_transparent_onto_white() {
        let mut image = RgbaImage::from_pixel(32, 32, Rgba([0, 0, 0, 0]));
        for y in 8..24 {
            for x in 8..24 {
                image.put_pixel(x, y, Rgba([20, 40, 200, 255]));
            }
        }
        let bytes = encode(&image, &options(OutputFormat::Jpg, Some(95))).unwrap();
        let decoded = decode(&bytes);
        assert!(!decoded.color().has_alpha());
        let rgb = decoded.into_rgb8();
        assert!(rgb.get_pixel(1, 1).0.iter().all(|&c| c >= 250));
        let centre = rgb.get_pixel(16, 16).0;
        assert!(centre[2] > 180 && centre[0] < 50, "{centre:?}");
    }

    #[test]
    fn jpeg_quality_trades_size_for_fidelity() {
        let image = photo_cutout(128, 96, 4);
        let flat = RgbaImage::from_raw(128, 96, {
            let rgb = flatten_onto_white(&image);
            rgb.pixels().flat_map(|p| [p[0], p[1], p[2], 255]).collect()
        })
        .unwrap();
        let small = encode(&image, &options(OutputFormat::Jpg, Some(40))).unwrap();
        let fine = encode(&image, &options(OutputFormat::Jpg, None)).unwrap();
        assert!(small.len() < fine.len());
        let fine = decode(&fine).into_rgba8();
        assert!(mean_error(&fine, &flat) < 3.0);
    }

    #[test]
    fn a_mask_is_the_alpha_channel_as_greyscale() {
        let image = photo_cutout(64, 48, 5);
        let bytes = encode(&image, &options(OutputFormat::Mask, None)).unwrap();
        let decoded = decode(&bytes);
        assert_eq!(decoded.color(), image::ColorType::L8);
        let mask = decoded.into_luma8();
        for (m, p) in mask.pixels().zip(image.pixels()) {
            assert_eq!(m[0], p[3]);
        }
    }

    fn embedded_icc(bytes: &[u8]) -> Option<Vec<u8>> {
        let reader = ImageReader::new(std::io::Cursor::new(bytes))
            .with_guessed_format()
            .unwrap();
        reader.into_decoder().unwrap().icc_profile().unwrap()
    }

    #[test]
    fn an_icc_profile_is_carried_in_every_format_that_has_room_for_it() {
        let image = photo_cutout(40, 30, 6);
        // The decoders hand the bytes back as they are; any payload does.
        let icc: Vec<u8> = (0..=255u8).cycle().take(601).collect();
        for (format, quality) in [
            (OutputFormat::Png, None),
            (OutputFormat::Jpg, None),
            (OutputFormat::Webp, None),
            (OutputFormat::Webp, Some(80)),
        ] {
            let bytes = encode(
                &image,
                &EncodeOptions {
                    format,
                    quality,
                    icc_profile: Some(icc.clone()),
                },
            )
            .unwrap();
            assert_eq!(
                embedded_icc(&bytes),
                Some(icc.clone()),
                "{format:?} {quality:?}"
            );
            assert_eq!(
                decode(&bytes).dimensions(),
                (40, 30),
                "{format:?} {quality:?}"
            );
        }
    }

    #[test]
    fn webp_refuses_results_wider_than_it_can_hold() {
        let wide = RgbaImage::new(WEBP_MAX_SIDE_PX + 1, 1);
        let err = encode(&wide, &options(OutputFormat::Webp, None)).unwrap_err();
        assert!(err.to_string().contains("16383"), "{err}");
    }

    #[test]
    fn png_of_a_photo_like_cut_out_is_near_the_best_the_standard_encoder_does() {
        let image = photo_cutout(384, 256, 7);
        let ours = encode(&image, &options(OutputFormat::Png, None)).unwrap();
        let mut best = Vec::new();
        image::codecs::png::PngEncoder::new_with_quality(
            &mut best,
            image::codecs::png::CompressionType::Best,
            image::codecs::png::FilterType::Adaptive,
        )
        .write_image(image.as_raw(), 384, 256, ExtendedColorType::Rgba8)
        .unwrap();
        let raw = image.as_raw().len();
        // Colour left under alpha 0 costs the plain encoder dearly; ours
        // drops it, and must in any case stay near zlib's best effort and
        // far below the raw size.
        assert!(
            ours.len() * 100 <= best.len() * 105,
            "{} vs {}",
            ours.len(),
            best.len()
        );
        assert!(ours.len() * 100 < raw * 45, "{} of {raw}", ours.len());
    }
}
