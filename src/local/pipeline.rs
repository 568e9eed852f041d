//! rembg's pre- and post-processing, reimplemented so a mask made here
//! matches one made with rembg to within one grey level.
//!
//! In: the upright sRGB picture, Lanczos-resized to the model's square
//! input, divided by the resized picture's maximum value (over all three
//! channels), `(x - mean) / std` per channel, laid out NCHW as float32.
//! Out: channel 0 of the model's first output, a sigmoid for logits,
//! rescaled so its minimum is 0 and its maximum 1, multiplied by 255 and
//! truncated (not rounded) to 8 bits, then Lanczos-resized to the
//! picture's size. Both resizes use `fast_image_resize`'s convolution,
//! which computes what Pillow's does.
//!
//! Only model-sized buffers are allocated besides the full-size mask
//! itself: the resize reads the caller's picture in place.

use fast_image_resize as fir;
use image::{GrayImage, RgbImage};

use super::LocalError;
use super::catalogue::Preprocess;

/// A picture prepared for a model: `1×3×side×side` float32, NCHW.
#[derive(Debug, Clone, PartialEq)]
pub struct InputTensor {
    /// The square side the picture was resized to.
    pub side_px: u32,
    /// The values, channel-major: red plane, green plane, blue plane.
    pub data: Vec<f32>,
}

impl InputTensor {
    /// The tensor's shape as ONNX wants it.
    pub fn shape(&self) -> [usize; 4] {
        let side = self.side_px as usize;
        [1, 3, side, side]
    }
}

/// Channel 0 of a model's first output: what becomes the mask.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// Rows in `values`.
    pub height_px: usize,
    /// Columns in `values`.
    pub width_px: usize,
    /// Row-major, as the model answered (before any sigmoid).
    pub values: Vec<f32>,
}

/// What rembg divides by when a picture is entirely black, so that black
/// stays 0 instead of becoming a division by zero.
const MIN_DIVISOR: f64 = 1e-6;

/// Prepares `image` for a model fed as `preprocess` says, exactly as rembg's
/// `normalize` does.
pub fn to_tensor(image: &RgbImage, preprocess: &Preprocess) -> Result<InputTensor, LocalError> {
    let side = preprocess.size_px;
    if image.width() == 0 || image.height() == 0 {
        return Err(LocalError::Inference(
            "the picture is empty (0 pixels wide or high); nothing to cut out".to_owned(),
        ));
    }
    if side == 0 {
        return Err(LocalError::Inference(
            "the model's input size is 0; re-import the model with its family".to_owned(),
        ));
    }
    let resized = resize(
        image.as_raw(),
        (image.width(), image.height()),
        (side, side),
        fir::PixelType::U8x3,
    )?;

    // numpy divides the uint8 array by its maximum in float64, subtracts
    // the mean and divides by the deviation in float64, and only then casts
    // to float32; a table per channel does the same for all 256 values.
    let max = f64::from(resized.iter().copied().max().unwrap_or(0)).max(MIN_DIVISOR);
    let tables: [[f32; 256]; 3] = std::array::from_fn(|channel| {
        let mean = f64::from(preprocess.mean[channel]);
        let std = f64::from(preprocess.std[channel]);
        std::array::from_fn(|value| ((value as f64 / max - mean) / std) as f32)
    });

    let plane = side as usize * side as usize;
    let mut data = vec![0.0_f32; 3 * plane];
    let (red, rest) = data.split_at_mut(plane);
    let (green, blue) = rest.split_at_mut(plane);
    for (index, pixel) in resized.chunks_exact(3).enumerate() {
        red[index] = tables[0][usize::from(pixel[0])];
        green[index] = tables[1][usize::from(pixel[1])];
        blue[index] = tables[2][usize::from(pixel[2])];
    }
    Ok(InputTensor {
        side_px: side,
        data,
    })
}

/// Channel 0 of batch item 0 of an NCHW output, as rembg's
/// `ort_outs[0][:, 0, :, :]` reads it.
pub fn first_channel(values: &[f32], shape: &[usize]) -> Result<Prediction, LocalError> {
    let &[batch, channels, height, width] = shape else {
        return Err(LocalError::Inference(format!(
            "the model answered a {}-dimensional tensor {shape:?}; a segmentation model answers 1×C×H×W; check the model's family",
            shape.len()
        )));
    };
    let plane = height.saturating_mul(width);
    let expected = batch.saturating_mul(channels).saturating_mul(plane);
    if batch == 0 || channels == 0 || plane == 0 || values.len() != expected {
        return Err(LocalError::Inference(format!(
            "the model answered an empty or inconsistent tensor {shape:?} with {} values",
            values.len()
        )));
    }
    Ok(Prediction {
        height_px: height,
        width_px: width,
        values: values[..plane].to_vec(),
    })
}

/// Turns a model's answer into a mask of `width_px`×`height_px`, exactly as
/// rembg's `predict` does.
///
/// A flat answer (every value the same) has no subject to find: rembg
/// divides zero by zero there, and numpy turns the NaNs into 0, so the mask
/// is all 0 (fully transparent) here too, on purpose. An answer containing
/// NaN is an error, since it means the model itself is broken.
pub fn to_mask(
    prediction: &Prediction,
    preprocess: &Preprocess,
    width_px: u32,
    height_px: u32,
) -> Result<GrayImage, LocalError> {
    let Prediction {
        height_px: rows,
        width_px: columns,
        values,
    } = prediction;
    if values.len() != rows * columns || values.is_empty() {
        return Err(LocalError::Inference(format!(
            "the model's answer has {} values for {columns}×{rows}",
            values.len()
        )));
    }
    let (Ok(small_width), Ok(small_height)) = (u32::try_from(*columns), u32::try_from(*rows))
    else {
        return Err(LocalError::Inference(format!(
            "the model's answer is too large ({columns}×{rows})"
        )));
    };
    if width_px == 0 || height_px == 0 {
        return Err(LocalError::Inference(
            "the picture is empty (0 pixels wide or high); nothing to cut out".to_owned(),
        ));
    }

    let squash = |value: f32| {
        if preprocess.sigmoid {
            1.0 / (1.0 + (-value).exp())
        } else {
            value
        }
    };
    let mut min = f32::INFINITY;
    let mut max = f32::NEG_INFINITY;
    for &value in values {
        let value = squash(value);
        if value.is_nan() {
            return Err(LocalError::Inference(
                "the model answered NaN (not a number); the model file may be damaged, download or import it again".to_owned(),
            ));
        }
        min = min.min(value);
        max = max.max(value);
    }
    let range = max - min;
    let small: Vec<u8> = if range > 0.0 && range.is_finite() {
        // float32 throughout, as numpy computes on the float32 output, and
        // `as u8` truncates as `astype("uint8")` does.
        values
            .iter()
            .map(|&value| ((squash(value) - min) / range * 255.0) as u8)
            .collect()
    } else {
        vec![0; values.len()]
    };

    let mask = resize(
        &small,
        (small_width, small_height),
        (width_px, height_px),
        fir::PixelType::U8,
    )?;
    GrayImage::from_raw(width_px, height_px, mask)
        .ok_or_else(|| LocalError::Inference("the mask has the wrong size".to_owned()))
}

/// Lanczos-3 convolution from `pixels` (`from` = width, height) to a new
/// buffer of `to`, with Pillow's kernel widening when shrinking.
///
/// Pillow resamples rows first, rounds and clips to 8 bits, then columns;
/// `fast_image_resize` does columns first for 8-bit pictures. Where a pass
/// rings past 0 or 255 (sharp, thin lines) the clipping in between makes
/// the order show (by up to 20 levels), so the two passes are made here
/// one at a time in Pillow's order. The buffer in between is the new width
/// by the old height: model-sized on the way in, mask-sized on the way out.
fn resize(
    pixels: &[u8],
    from: (u32, u32),
    to: (u32, u32),
    pixel_type: fir::PixelType,
) -> Result<Vec<u8>, LocalError> {
    let failed = |error: &dyn std::fmt::Display| {
        LocalError::Inference(format!("cannot resize the picture for the model: {error}"))
    };
    let options = fir::ResizeOptions::new()
        .resize_alg(fir::ResizeAlg::Convolution(fir::FilterType::Lanczos3));
    let mut resizer = fir::Resizer::new();
    let mut pass = |pixels: &[u8], from: (u32, u32), to: (u32, u32)| {
        let source = fir::images::ImageRef::new(from.0, from.1, pixels, pixel_type)
            .map_err(|error| failed(&error))?;
        let mut target = fir::images::Image::new(to.0, to.1, pixel_type);
        resizer
            .resize(&source, &mut target, &options)
            .map_err(|error| failed(&error))?;
        Ok::<_, LocalError>(target.into_vec())
    };
    if from.0 != to.0 && from.1 != to.1 {
        let rows = pass(pixels, from, (to.0, from.1))?;
        pass(&rows, (to.0, from.1), to)
    } else {
        pass(pixels, from, to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::local::catalogue::ModelFamily;

    fn flat(width: u32, height: u32, rgb: [u8; 3]) -> RgbImage {
        RgbImage::from_pixel(width, height, image::Rgb(rgb))
    }

    #[test]
    fn the_tensor_is_nchw_with_each_channel_normalised_by_its_own_mean_and_deviation() {
        let preprocess = ModelFamily::U2net.preprocess();
        let tensor = to_tensor(&flat(500, 300, [255, 102, 51]), &preprocess).unwrap();
        assert_eq!(tensor.shape(), [1, 3, 320, 320]);
        assert_eq!(tensor.data.len(), 3 * 320 * 320);
        let plane = 320 * 320;
        // Divided by the maximum (255) first, then (x - mean) / std.
        let expect = |value: f64, channel: usize| {
            ((value / 255.0 - f64::from(preprocess.mean[channel]))
                / f64::from(preprocess.std[channel])) as f32
        };
        assert_eq!(tensor.data[0], expect(255.0, 0));
        assert_eq!(tensor.data[plane + 1234], expect(102.0, 1));
        assert_eq!(tensor.data[2 * plane + plane - 1], expect(51.0, 2));
    }

    #[test]
    fn the_picture_is_divided_by_its_own_maximum_over_all_channels() {
        let preprocess = ModelFamily::Isnet.preprocess();
        // The brightest value anywhere is 100 (in green), so green's 100 is
        // read as 1.0 and red's 50 as 0.5.
        let tensor = to_tensor(&flat(64, 64, [50, 100, 0]), &preprocess).unwrap();
        let plane = 1024 * 1024;
        assert_eq!(tensor.data[0], (0.5 - f64::from(preprocess.mean[0])) as f32);
        assert_eq!(
            tensor.data[plane],
            (1.0 - f64::from(preprocess.mean[1])) as f32
        );
        assert_eq!(
            tensor.data[2 * plane],
            (0.0 - f64::from(preprocess.mean[2])) as f32
        );
    }

    #[test]
    fn a_black_picture_is_not_divided_by_zero() {
        let preprocess = ModelFamily::U2net.preprocess();
        let tensor = to_tensor(&flat(10, 10, [0, 0, 0]), &preprocess).unwrap();
        assert!(tensor.data.iter().all(|value| value.is_finite()));
        assert_eq!(
            tensor.data[0],
            (-f64::from(preprocess.mean[0]) / f64::from(preprocess.std[0])) as f32
        );
    }

    #[test]
    fn an_empty_picture_is_refused() {
        let preprocess = ModelFamily::U2net.preprocess();
        assert!(to_tensor(&RgbImage::new(0, 5), &preprocess).is_err());
    }

    #[test]
    fn only_channel_zero_of_the_first_batch_item_is_read() {
        // 1×2×2×2: channel 0 then channel 1.
        let values = [1.0, 2.0, 3.0, 4.0, 10.0, 20.0, 30.0, 40.0];
        let prediction = first_channel(&values, &[1, 2, 2, 2]).unwrap();
        assert_eq!(prediction.values, vec![1.0, 2.0, 3.0, 4.0]);
        assert_eq!((prediction.width_px, prediction.height_px), (2, 2));
    }

    #[test]
    fn an_answer_without_a_channel_axis_is_refused() {
        let error = first_channel(&[0.0; 4], &[1, 2, 2]).unwrap_err();
        assert!(error.to_string().contains("1×C×H×W"), "{error}");
        assert!(first_channel(&[0.0; 3], &[1, 1, 2, 2]).is_err());
    }

    fn prediction(values: Vec<f32>, width: usize, height: usize) -> Prediction {
        Prediction {
            height_px: height,
            width_px: width,
            values,
        }
    }

    #[test]
    fn the_mask_is_rescaled_to_the_full_range_and_truncated_not_rounded() {
        let preprocess = ModelFamily::U2net.preprocess();
        // min 1, max 3: 2.0 → 0.5 → 127.5 → 127 (truncated), 2.999 → 254.87 → 254.
        let answer = prediction(vec![1.0, 2.0, 2.999, 3.0], 4, 1);
        let mask = to_mask(&answer, &preprocess, 4, 1).unwrap();
        assert_eq!(mask.as_raw(), &vec![0, 127, 254, 255]);
    }

    #[test]
    fn logits_go_through_a_sigmoid_before_the_rescale() {
        let preprocess = ModelFamily::Birefnet.preprocess();
        let answer = prediction(vec![-2.0, 0.0, 1.0], 3, 1);
        let mask = to_mask(&answer, &preprocess, 3, 1).unwrap();
        let sigmoid = |x: f64| 1.0 / (1.0 + (-x).exp());
        let middle = (sigmoid(0.0) - sigmoid(-2.0)) / (sigmoid(1.0) - sigmoid(-2.0)) * 255.0;
        // Without the sigmoid the middle would be 2/3 · 255 = 170.
        assert_eq!(middle.floor(), 158.0);
        assert_eq!(mask.as_raw(), &vec![0, 158, 255]);
    }

    #[test]
    fn a_flat_answer_gives_an_empty_mask_as_rembg_does() {
        let preprocess = ModelFamily::U2net.preprocess();
        let mask = to_mask(&prediction(vec![0.7; 16], 4, 4), &preprocess, 9, 5).unwrap();
        assert_eq!(mask.dimensions(), (9, 5));
        assert!(mask.pixels().all(|pixel| pixel.0[0] == 0));
    }

    #[test]
    fn a_nan_in_the_answer_is_an_error_not_a_mask() {
        let preprocess = ModelFamily::U2net.preprocess();
        let error = to_mask(&prediction(vec![0.0, f32::NAN], 2, 1), &preprocess, 2, 1).unwrap_err();
        assert!(error.to_string().contains("NaN"), "{error}");
    }

    #[test]
    fn the_mask_is_scaled_back_to_the_picture_size() {
        let preprocess = ModelFamily::U2net.preprocess();
        // Left half 0, right half 1, at 8×8; scaled to 40×16.
        let values = (0..64).map(|i| if i % 8 < 4 { 0.0 } else { 1.0 }).collect();
        let mask = to_mask(&prediction(values, 8, 8), &preprocess, 40, 16).unwrap();
        assert_eq!(mask.dimensions(), (40, 16));
        assert_eq!(mask.get_pixel(2, 8).0[0], 0);
        assert_eq!(mask.get_pixel(37, 8).0[0], 255);
    }
}
