//! Edge refinement: cleaning up a provider's matte before the cut-out is
//! composed, the same for every provider (remote or local). Segmentation
//! models leave stray specks, pinholes and staircase edges, and a cut-out
//! that kept the photo's colours at its soft edges shows a halo of the old
//! background on hair and fur once it sits on anything else. [`Refine`]
//! says which of the four fixes to apply; [`refine`] applies them in a
//! fixed order, each linear in the number of pixels whatever its settings:
//!
//! 1. **remove speckles**: pieces of the subject much smaller than the
//!    main one are dropped, and pinholes inside it are filled;
//! 2. **smooth**: the alpha is blurred (three box blurs, close to a
//!    Gaussian), rounding off jagged edges;
//! 3. **harden**: a contrast curve on the alpha around 50 %, turning a soft
//!    edge into a crisp one;
//! 4. **decontaminate**: the true subject colour is estimated wherever the
//!    alpha is partial, so the old background no longer shows through
//!    (colours use the final alpha, hence last).

use image::RgbaImage;
use serde::{Deserialize, Serialize};

use super::compose::{SUBJECT_ALPHA_THRESHOLD, box_sizes};

/// The largest smoothing radius: wider only melts the subject's shape.
pub const MAX_SMOOTH_PX: u16 = 50;

/// A piece of the subject is a speck when it covers less than 1/this of
/// the largest piece (1 %).
const SPECK_SHARE: u64 = 100;

/// A hole in the subject is a pinhole, filled, when it is smaller than
/// 1/this of the largest piece's area (0.1 %): gaps between arms and body,
/// or a mug's handle, stay open.
const PINHOLE_SHARE: u64 = 1_000;

/// Alpha at or above which a pixel is solid subject (50 %), for finding
/// holes.
const SOLID_ALPHA: u8 = 128;

/// The wide pass of colour estimation works on cells this many pixels a
/// side: a blur about 90 px wide loses nothing there, and the cells are
/// 1/25 of the pixels.
const WIDE_STEP_PX: usize = 5;

/// The wide pass's box radius, in cells: 19 cells, 95 px across, the
/// paper's 90 px rounded to whole cells.
const WIDE_RADIUS_CELLS: usize = 9;

/// The narrow pass's box radius in pixels: 7 px across, the paper's 6 px
/// made symmetric.
const NARROW_RADIUS_PX: usize = 3;

/// How a cut-out's matte is cleaned up before it is composed. `Default`
/// changes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Refine {
    /// Drop specks (separate pieces covering less than 1 % of the largest
    /// piece, counting partial alpha) and fill pinholes (enclosed holes
    /// smaller than 0.1 % of it, taking the colour around them).
    pub remove_speckles: bool,
    /// Soften the edge over about this many pixels (a Gaussian blur of the
    /// alpha whose radius is about twice its standard deviation), up to
    /// [`MAX_SMOOTH_PX`]; 0 is off. Pixels that become visible take the
    /// colour of the subject beside them.
    pub smooth_px: u16,
    /// How far soft alpha is pushed towards fully clear or fully solid
    /// around 50 %, 0 (off) to 100 (a near-binary edge); see [`harden`].
    pub harden_percent: u8,
    /// Estimate the subject's own colour where it is partly transparent,
    /// so the old background does not show as a halo on hair and soft
    /// edges (Forte & Pitié's blur fusion, see [`decontaminate`]).
    pub decontaminate: bool,
}

impl Refine {
    /// Whether refining changes nothing, so a provider's file can be saved
    /// untouched.
    pub fn is_identity(&self) -> bool {
        !self.remove_speckles
            && self.smooth_px == 0
            && self.harden_percent == 0
            && !self.decontaminate
    }

    /// The same refinement for a picture `factor` times the size, for a
    /// preview of a downscaled cut-out: the smoothing radius is scaled
    /// (keeping at least a pixel when it was on); the rest is relative to
    /// the subject already.
    pub fn scaled(&self, factor: f64) -> Refine {
        let factor = if factor.is_finite() && factor > 0.0 {
            factor
        } else {
            1.0
        };
        let smooth_px = match self.smooth_px {
            0 => 0,
            px => ((f64::from(px) * factor).round() as u16).max(1),
        };
        Refine { smooth_px, ..*self }
    }

    /// What is wrong with the values, if anything, in words for the user.
    /// Values parsed from text are already in range; this catches values
    /// set in code.
    pub fn problem(&self) -> Option<String> {
        if self.smooth_px > MAX_SMOOTH_PX {
            return Some(format!(
                "smoothing goes up to {MAX_SMOOTH_PX} px, not {} px",
                self.smooth_px
            ));
        }
        if self.harden_percent > 100 {
            return Some(format!(
                "hardness goes from 0 to 1, not {}",
                hardness_text(self.harden_percent)
            ));
        }
        None
    }
}

/// A smoothing radius as typed: whole pixels, `3` or `3px`.
pub fn parse_smooth_px(text: &str) -> Result<u16, String> {
    let number = text.trim().to_ascii_lowercase();
    let number = number.strip_suffix("px").unwrap_or(&number).trim();
    match number.parse::<u16>() {
        Ok(px) if px <= MAX_SMOOTH_PX => Ok(px),
        _ => Err(format!(
            "smoothing is whole pixels from 0 to {MAX_SMOOTH_PX}, e.g. 3, not `{text}`"
        )),
    }
}

/// A hardness as typed: a number from 0 to 1 (`0.6`) or a percentage
/// (`60%`), kept as whole percent.
pub fn parse_harden(text: &str) -> Result<u8, String> {
    let trimmed = text.trim();
    let value = match trimmed.strip_suffix('%') {
        Some(percent) => percent.trim().parse::<f64>().map(|p| p / 100.0),
        None => trimmed.parse::<f64>(),
    };
    match value {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(hardness_percent(v)),
        _ => Err(format!(
            "hardness is a number from 0 (soft edges kept) to 1 (a crisp edge), e.g. 0.5, not \
             `{text}`"
        )),
    }
}

/// A hardness from 0 to 1 as whole percent (out-of-range values are
/// clamped).
pub fn hardness_percent(value: f64) -> u8 {
    if value.is_finite() {
        (value.clamp(0.0, 1.0) * 100.0).round() as u8
    } else {
        0
    }
}

/// A hardness as the settings file and the window show it: `0.6`.
pub fn hardness_text(percent: u8) -> String {
    let value = f64::from(percent) / 100.0;
    format!("{value}")
}

/// Applies `refine` to `image` (straight, not premultiplied, alpha) in
/// place, in the order the module documentation gives.
pub fn refine(image: &mut RgbaImage, refine: &Refine) {
    if image.width() == 0 || image.height() == 0 {
        return;
    }
    if refine.remove_speckles {
        remove_speckles(image);
    }
    if refine.smooth_px > 0 {
        // Decontamination recomputes every soft pixel's colour anyway.
        smooth(
            image,
            refine.smooth_px.min(MAX_SMOOTH_PX),
            !refine.decontaminate,
        );
    }
    if refine.harden_percent > 0 {
        harden(image, refine.harden_percent);
    }
    if refine.decontaminate {
        decontaminate(image);
    }
}

/// Drops specks and fills pinholes. Pieces are the 8-connected regions of
/// alpha above [`SUBJECT_ALPHA_THRESHOLD`] (so a speck's faint fringe goes
/// with it), weighed by their summed alpha; holes are the 4-connected
/// regions below [`SOLID_ALPHA`] that do not reach the image's border.
/// Regions are labelled run by run (each row's runs joined to the
/// overlapping runs above with union-find): linear, no recursion, and
/// memory for the runs only.
pub fn remove_speckles(image: &mut RgbaImage) {
    let (w, h) = (image.width() as usize, image.height() as usize);
    let raw: &mut [u8] = image;

    let pieces = Regions::label(raw, w, h, |a| a > SUBJECT_ALPHA_THRESHOLD, true);
    let mut coverage = vec![0u64; pieces.runs.len()];
    for (index, run) in pieces.runs.iter().enumerate() {
        let row = &raw[run.y * w * 4..(run.y + 1) * w * 4];
        coverage[pieces.root[index]] += row[run.start * 4..run.end * 4]
            .chunks_exact(4)
            .map(|p| u64::from(p[3]))
            .sum::<u64>();
    }
    let Some(largest) = coverage.iter().copied().max().filter(|&c| c > 0) else {
        return;
    };
    for (index, run) in pieces.runs.iter().enumerate() {
        if coverage[pieces.root[index]] * SPECK_SHARE < largest {
            let row = &mut raw[run.y * w * 4..(run.y + 1) * w * 4];
            for pixel in row[run.start * 4..run.end * 4].chunks_exact_mut(4) {
                pixel[3] = 0;
            }
        }
    }

    // Pinholes, up to this many pixels, not reaching the border.
    let pinhole_px = (largest / 255 / PINHOLE_SHARE).max(1) as usize;
    let holes = Regions::label(raw, w, h, |a| a < SOLID_ALPHA, false);
    let mut area = vec![0usize; holes.runs.len()];
    let mut open = vec![false; holes.runs.len()];
    for (index, run) in holes.runs.iter().enumerate() {
        let root = holes.root[index];
        area[root] += run.end - run.start;
        open[root] |= run.start == 0 || run.end == w || run.y == 0 || run.y + 1 == h;
    }
    let fillable = |root: usize| !open[root] && area[root] <= pinhole_px;
    // The colour around each pinhole: its solid 4-neighbours' mean.
    let mut around = vec![[0u64; 4]; holes.runs.len()];
    for (index, run) in holes.runs.iter().enumerate() {
        let root = holes.root[index];
        if !fillable(root) {
            continue;
        }
        for x in run.start..run.end {
            let i = run.y * w + x;
            for j in [i - 1, i + 1, i - w, i + w] {
                let pixel = &raw[j * 4..j * 4 + 4];
                if pixel[3] >= SOLID_ALPHA {
                    for (sum, &c) in around[root].iter_mut().zip(&pixel[..3]) {
                        *sum += u64::from(c);
                    }
                    around[root][3] += 1;
                }
            }
        }
    }
    for (index, run) in holes.runs.iter().enumerate() {
        let root = holes.root[index];
        let [r, g, b, count] = around[root];
        if !fillable(root) || count == 0 {
            continue;
        }
        let colour = [r, g, b].map(|sum| ((sum + count / 2) / count) as u8);
        let row = &mut raw[run.y * w * 4..(run.y + 1) * w * 4];
        for pixel in row[run.start * 4..run.end * 4].chunks_exact_mut(4) {
            pixel[..3].copy_from_slice(&colour);
            pixel[3] = 255;
        }
    }
}

/// A horizontal run of pixels `start..end` in row `y`.
#[derive(Debug, Clone, Copy)]
struct Run {
    y: usize,
    start: usize,
    end: usize,
}

/// The connected regions of the pixels whose alpha passes a test: every
/// maximal run of such pixels in each row, and for each run the index of
/// its region's root run.
struct Regions {
    runs: Vec<Run>,
    root: Vec<usize>,
}

impl Regions {
    /// Labels the pixels of `raw` (RGBA, `w`×`h`) whose alpha passes
    /// `inside`; runs in adjacent rows join when they overlap, or with
    /// `diagonal` also when they only touch at a corner.
    fn label(
        raw: &[u8],
        w: usize,
        h: usize,
        inside: impl Fn(u8) -> bool,
        diagonal: bool,
    ) -> Regions {
        let mut runs: Vec<Run> = Vec::new();
        let mut parent: Vec<usize> = Vec::new();
        let reach = usize::from(diagonal);
        let mut previous = 0..0;
        for (y, row) in raw.chunks_exact(w * 4).enumerate().take(h) {
            let first = runs.len();
            let mut x = 0;
            while x < w {
                if !inside(row[x * 4 + 3]) {
                    x += 1;
                    continue;
                }
                let start = x;
                while x < w && inside(row[x * 4 + 3]) {
                    x += 1;
                }
                runs.push(Run { y, start, end: x });
                parent.push(runs.len() - 1);
            }
            let current = first..runs.len();
            // Join with the runs above: both lists are sorted, so walk
            // them together, moving past whichever run ends first.
            let (mut above, mut here) = (previous.start, current.start);
            while above < previous.end && here < current.end {
                let (a, b) = (runs[above], runs[here]);
                if a.start < b.end + reach && b.start < a.end + reach {
                    union(&mut parent, above, here);
                }
                if a.end < b.end {
                    above += 1;
                } else {
                    here += 1;
                }
            }
            previous = current;
        }
        let root = (0..runs.len()).map(|i| find(&mut parent, i)).collect();
        Regions { runs, root }
    }
}

/// The root of `i`'s set, halving the path on the way.
fn find(parent: &mut [usize], mut i: usize) -> usize {
    while parent[i] != i {
        parent[i] = parent[parent[i]];
        i = parent[i];
    }
    i
}

fn union(parent: &mut [usize], a: usize, b: usize) {
    let (a, b) = (find(parent, a), find(parent, b));
    if a != b {
        parent[a.max(b)] = a.min(b);
    }
}

/// Blurs the alpha over about `radius_px` (σ = radius / 2) with three box
/// blurs each way, on 8.8 fixed point with running sums: linear whatever
/// the radius. The image's border repeats outwards, so a subject cut by
/// the photo's edge stays solid there. With `fill_colours`, pixels that
/// were fully transparent and become visible take the subject's colour
/// nearby (their own colour means nothing, and is often black or the old
/// background).
pub fn smooth(image: &mut RgbaImage, radius_px: u16, fill_colours: bool) {
    let (w, h) = (image.width() as usize, image.height() as usize);
    let boxes = box_sizes(f32::from(radius_px) / 2.0);
    let support_px: usize = boxes.iter().map(|b| b / 2).sum();
    if support_px == 0 {
        return;
    }
    let colours = fill_colours.then(|| {
        let radius_cells = (support_px.div_ceil(WIDE_STEP_PX) + 2).max(WIDE_RADIUS_CELLS);
        MeanGrid::build(image, WIDE_STEP_PX, radius_cells)
    });
    let raw: &mut [u8] = image;
    let mut plane: Vec<u16> = raw.chunks_exact(4).map(|p| u16::from(p[3]) << 8).collect();
    let mut scratch = vec![0u16; plane.len()];
    for size in boxes {
        let radius = size / 2;
        if radius > 0 {
            box_rows_clamped(&plane, &mut scratch, w, radius);
            box_columns_clamped(&scratch, &mut plane, w, h, radius);
        }
    }
    let mut grid_row = Vec::new();
    for y in 0..h {
        if let Some(grid) = &colours {
            grid.row(y, &mut grid_row);
        }
        let row = &mut raw[y * w * 4..(y + 1) * w * 4];
        for (x, (pixel, &value)) in row
            .chunks_exact_mut(4)
            .zip(&plane[y * w..(y + 1) * w])
            .enumerate()
        {
            let alpha = ((u32::from(value) + 128) >> 8).min(255) as u8;
            if pixel[3] == 0
                && alpha > 0
                && let Some(grid) = &colours
            {
                let sums = grid.at(&grid_row, x);
                if sums[3] > 0.0 {
                    for (c, &s) in pixel.iter_mut().zip(&sums[..3]) {
                        *c = (s / sums[3]).round().clamp(0.0, 255.0) as u8;
                    }
                }
            }
            pixel[3] = alpha;
        }
    }
}

/// Divides box sums by the box's size, rounded, with a multiplication (a
/// division per pixel would cost most of the blur's time). Exact for sums
/// of equal values, so flat regions stay exactly as they were.
#[derive(Clone, Copy)]
struct BoxAverage {
    half: u64,
    reciprocal: u64,
}

impl BoxAverage {
    fn new(size: u32) -> BoxAverage {
        BoxAverage {
            half: u64::from(size / 2),
            reciprocal: (1u64 << 32).div_ceil(u64::from(size)),
        }
    }

    fn of(self, sum: u32) -> u16 {
        (((u64::from(sum) + self.half) * self.reciprocal) >> 32) as u16
    }
}

/// A box blur of radius `radius` along rows, the edge pixel repeated
/// outwards.
fn box_rows_clamped(src: &[u16], dst: &mut [u16], w: usize, radius: usize) {
    let average = BoxAverage::new((2 * radius + 1) as u32);
    let last = w - 1;
    for (row, out) in src.chunks_exact(w).zip(dst.chunks_exact_mut(w)) {
        let mut sum = u32::from(row[0]) * (radius as u32 + 1)
            + (1..=radius)
                .map(|i| u32::from(row[i.min(last)]))
                .sum::<u32>();
        for x in 0..w {
            out[x] = average.of(sum);
            sum += u32::from(row[(x + radius + 1).min(last)]);
            sum -= u32::from(row[x.saturating_sub(radius)]);
        }
    }
}

/// A box blur of radius `radius` along columns, the edge row repeated
/// outwards; walks rows in order so it stays cache-friendly.
fn box_columns_clamped(src: &[u16], dst: &mut [u16], w: usize, h: usize, radius: usize) {
    let average = BoxAverage::new((2 * radius + 1) as u32);
    let last = h - 1;
    let row = |y: usize| &src[y * w..(y + 1) * w];
    let mut sums: Vec<u32> = row(0)
        .iter()
        .map(|&v| u32::from(v) * (radius as u32 + 1))
        .collect();
    for i in 1..=radius {
        for (sum, &v) in sums.iter_mut().zip(row(i.min(last))) {
            *sum += u32::from(v);
        }
    }
    for y in 0..h {
        for (out, &sum) in dst[y * w..(y + 1) * w].iter_mut().zip(&sums) {
            *out = average.of(sum);
        }
        let (incoming, outgoing) = (
            row((y + radius + 1).min(last)),
            row(y.saturating_sub(radius)),
        );
        for ((sum, &add), &remove) in sums.iter_mut().zip(incoming).zip(outgoing) {
            *sum = *sum + u32::from(add) - u32::from(remove);
        }
    }
}

/// The curve [`harden`] applies to alpha `a` (0 to 1) at hardness `h`
/// (0 to 1): a straight line through (½, ½) with gain
/// `g = 1 / (1 − 0.98·h)`, clamped to 0..1, so `a' = clamp(½ + (a − ½)·g)`.
/// At 0 it is the identity; at 1 the gain is 50 and only alpha within 1 %
/// of ½ stays partial. Fully clear and fully solid pixels never change, and
/// the order of alphas is kept.
pub fn harden_curve(alpha: f32, hardness: f32) -> f32 {
    let gain = 1.0 / (1.0 - 0.98 * hardness.clamp(0.0, 1.0));
    (0.5 + (alpha - 0.5) * gain).clamp(0.0, 1.0)
}

/// Applies [`harden_curve`] at `percent` / 100 to every pixel's alpha.
pub fn harden(image: &mut RgbaImage, percent: u8) {
    let hardness = f32::from(percent.min(100)) / 100.0;
    let table: [u8; 256] =
        std::array::from_fn(|a| (harden_curve(a as f32 / 255.0, hardness) * 255.0).round() as u8);
    for pixel in image.pixels_mut() {
        pixel.0[3] = table[usize::from(pixel.0[3])];
    }
}

/// Re-estimates the subject's colour F at every partly transparent pixel,
/// with the "blur fusion" of Forte & Pitié, *Approximate Fast Foreground
/// Colour Estimation* (ICIP 2021). Each pixel's colour is I = αF + (1−α)B
/// for an unknown background B. With local means F̄ (of colours weighted
/// by α) and B̄ (weighted by 1−α),
///
/// F ← F̄ + α·(I − α·F̄ − (1−α)·B̄),
///
/// run twice: first with F = B = I over a box about 90 px wide, then with
/// the first pass's F and B̄ over 7 px. The wide pass works on 5 px cells
/// (its blur loses nothing there) and is interpolated back; the narrow
/// pass streams through seven rows at a time and only where a row near it
/// has partial alpha, so the whole is linear in the pixels with memory for
/// a few rows. Fully solid pixels keep their colour exactly; fully clear
/// ones keep theirs (which nothing shows).
pub fn decontaminate(image: &mut RgbaImage) {
    let (w, h) = (image.width() as usize, image.height() as usize);
    let partial = |a: u8| a > 0 && a < 255;
    // Each row's span of partly transparent pixels, if any.
    let spans: Vec<Option<(usize, usize)>> = image
        .as_raw()
        .chunks_exact(w * 4)
        .map(|row| {
            let first = row.chunks_exact(4).position(|p| partial(p[3]))?;
            let last = row.chunks_exact(4).rposition(|p| partial(p[3]))?;
            Some((first, last + 1))
        })
        .collect();
    if spans.iter().all(Option::is_none) {
        return;
    }
    let wide = MeanGrid::build(image, WIDE_STEP_PX, WIDE_RADIUS_CELLS);
    let window = 2 * NARROW_RADIUS_PX + 1;
    // Per pixel of the rows in the window, the narrow pass's inputs summed
    // across the row: F·α (3), α, B·(1−α) (3), 1−α.
    let mut ring: Vec<Vec<[f32; 8]>> = vec![vec![[0.0; 8]; w]; window];
    let mut inputs: Vec<[f32; 8]> = vec![[0.0; 8]; w];
    let mut grid_row = Vec::new();
    let mut computed_to = 0usize;
    let raw: &mut [u8] = image;
    for y in 0..h {
        let Some((from, to)) = spans[y] else {
            continue;
        };
        let first = y.saturating_sub(NARROW_RADIUS_PX);
        let last = (y + NARROW_RADIUS_PX).min(h - 1);
        for row_y in first.max(computed_to)..=last {
            // Only the part of the row that partial pixels up to the
            // window's reach away sum over; the rest never counts.
            let around =
                row_y.saturating_sub(NARROW_RADIUS_PX)..=(row_y + NARROW_RADIUS_PX).min(h - 1);
            let (lo, hi) = spans[around]
                .iter()
                .flatten()
                .fold((w, 0), |(lo, hi), &(a, b)| (lo.min(a), hi.max(b)));
            if lo >= hi {
                continue;
            }
            let (lo, hi) = (
                lo.saturating_sub(NARROW_RADIUS_PX),
                (hi + NARROW_RADIUS_PX).min(w),
            );
            let row = &raw[row_y * w * 4..(row_y + 1) * w * 4];
            wide.row(row_y, &mut grid_row);
            for (x, (pixel, input)) in row
                .chunks_exact(4)
                .zip(inputs.iter_mut())
                .enumerate()
                .take(hi)
                .skip(lo)
            {
                *input = first_pass(pixel, || wide.at(&grid_row, x));
            }
            row_box_sums(
                &inputs[lo..hi],
                &mut ring[row_y % window][lo..hi],
                NARROW_RADIUS_PX,
            );
        }
        computed_to = last + 1;
        let row = &mut raw[y * w * 4..(y + 1) * w * 4];
        for (x, pixel) in row.chunks_exact_mut(4).enumerate().take(to).skip(from) {
            if !partial(pixel[3]) {
                continue;
            }
            let mut sums = [0f32; 8];
            for held in first..=last {
                for (sum, value) in sums.iter_mut().zip(ring[held % window][x]) {
                    *sum += value;
                }
            }
            let alpha = f32::from(pixel[3]) / 255.0;
            let colour = [pixel[0], pixel[1], pixel[2]].map(f32::from);
            let estimate = fuse(colour, alpha, &sums);
            for (c, value) in pixel.iter_mut().zip(estimate) {
                *c = value.round() as u8;
            }
        }
    }
}

/// The wide pass's estimate at one pixel, as the narrow pass's inputs:
/// `[F·α (3), α, B̄·(1−α) (3), 1−α]`. `wide` gives the wide sums there
/// (only asked for where they matter).
fn first_pass(pixel: &[u8], wide: impl FnOnce() -> [f32; 8]) -> [f32; 8] {
    let alpha = f32::from(pixel[3]) / 255.0;
    let colour = [pixel[0], pixel[1], pixel[2]].map(f32::from);
    if pixel[3] == 255 {
        // The formula gives the pixel's own colour, exactly.
        return [colour[0], colour[1], colour[2], 1.0, 0.0, 0.0, 0.0, 0.0];
    }
    let sums = wide();
    let background = mean(&sums[4..7], sums[7]);
    let clear = 1.0 - alpha;
    let mut out = [
        0.0,
        0.0,
        0.0,
        alpha,
        background[0] * clear,
        background[1] * clear,
        background[2] * clear,
        clear,
    ];
    if pixel[3] > 0 {
        let foreground = fuse(colour, alpha, &sums);
        for (o, f) in out.iter_mut().zip(foreground) {
            *o = f * alpha;
        }
    }
    out
}

/// F̄ + α·(I − α·F̄ − (1−α)·B̄), clamped to 0..255, from the sums
/// `[ΣF·α (3), Σα, ΣB·(1−α) (3), Σ(1−α)]` around the pixel.
fn fuse(colour: [f32; 3], alpha: f32, sums: &[f32; 8]) -> [f32; 3] {
    let foreground = mean(&sums[..3], sums[3]);
    let background = mean(&sums[4..7], sums[7]);
    std::array::from_fn(|c| {
        let residual = colour[c] - alpha * foreground[c] - (1.0 - alpha) * background[c];
        (foreground[c] + alpha * residual).clamp(0.0, 255.0)
    })
}

/// Weighted sums over their weight; 0 where nothing was weighed.
fn mean(sums: &[f32], weight: f32) -> [f32; 3] {
    if weight > 1e-6 {
        [sums[0] / weight, sums[1] / weight, sums[2] / weight]
    } else {
        [0.0; 3]
    }
}

/// Box sums of radius `radius` along a row, zero outside it.
fn row_box_sums(values: &[[f32; 8]], out: &mut [[f32; 8]], radius: usize) {
    let w = values.len();
    let mut sum = [0f32; 8];
    for value in &values[..(radius + 1).min(w)] {
        add(&mut sum, value, 1.0);
    }
    for x in 0..w {
        out[x] = sum;
        if x + radius + 1 < w {
            add(&mut sum, &values[x + radius + 1], 1.0);
        }
        if x >= radius {
            add(&mut sum, &values[x - radius], -1.0);
        }
    }
}

fn add(sum: &mut [f32; 8], value: &[f32; 8], sign: f32) {
    for (s, v) in sum.iter_mut().zip(value) {
        *s += sign * v;
    }
}

/// Local sums for colour estimation on a grid of `step`-pixel cells, box
/// blurred over `radius` cells each way: per cell `[ΣI·α (3), Σα,
/// ΣI·(1−α) (3), Σ(1−α)]` (colours 0 to 255, alpha 0 to 1). Sampled
/// bilinearly back at any pixel; interpolating sums rather than means lets
/// cells with no subject weigh nothing.
struct MeanGrid {
    step: usize,
    columns: usize,
    rows: usize,
    sums: Vec<[f32; 8]>,
}

impl MeanGrid {
    fn build(image: &RgbaImage, step: usize, radius: usize) -> MeanGrid {
        let (w, h) = (image.width() as usize, image.height() as usize);
        let (columns, rows) = (w.div_ceil(step), h.div_ceil(step));
        let mut cells = vec![[0f32; 8]; columns * rows];
        for (y, row) in image.as_raw().chunks_exact(w * 4).enumerate() {
            let cell_row = &mut cells[(y / step) * columns..(y / step + 1) * columns];
            for (cell, pixels) in cell_row.iter_mut().zip(row.chunks(step * 4)) {
                for pixel in pixels.chunks_exact(4) {
                    let colour = [pixel[0], pixel[1], pixel[2]].map(f32::from);
                    match pixel[3] {
                        255 => {
                            for c in 0..3 {
                                cell[c] += colour[c];
                            }
                            cell[3] += 1.0;
                        }
                        0 => {
                            for c in 0..3 {
                                cell[4 + c] += colour[c];
                            }
                            cell[7] += 1.0;
                        }
                        a => {
                            let alpha = f32::from(a) / 255.0;
                            for c in 0..3 {
                                cell[c] += colour[c] * alpha;
                                cell[4 + c] += colour[c] * (1.0 - alpha);
                            }
                            cell[3] += alpha;
                            cell[7] += 1.0 - alpha;
                        }
                    }
                }
            }
        }
        // Box sums across, then down (back into `cells`), zero outside the
        // grid; running sums in f64 so they do not drift.
        let mut across = vec![[0f32; 8]; cells.len()];
        for (row, out) in cells
            .chunks_exact(columns)
            .zip(across.chunks_exact_mut(columns))
        {
            let mut sum = [0f64; 8];
            for cell in &row[..(radius + 1).min(columns)] {
                add_f64(&mut sum, cell, 1.0);
            }
            for x in 0..columns {
                out[x] = sum.map(|s| s.max(0.0) as f32);
                if x + radius + 1 < columns {
                    add_f64(&mut sum, &row[x + radius + 1], 1.0);
                }
                if x >= radius {
                    add_f64(&mut sum, &row[x - radius], -1.0);
                }
            }
        }
        // Down the columns, a row at a time so memory is read in order.
        let mut sums = cells;
        let row = |y: usize| &across[y * columns..(y + 1) * columns];
        let mut running = vec![[0f64; 8]; columns];
        for y in 0..(radius + 1).min(rows) {
            for (sum, cell) in running.iter_mut().zip(row(y)) {
                add_f64(sum, cell, 1.0);
            }
        }
        for y in 0..rows {
            for (out, sum) in sums[y * columns..(y + 1) * columns]
                .iter_mut()
                .zip(&running)
            {
                *out = sum.map(|s| s.max(0.0) as f32);
            }
            if y + radius + 1 < rows {
                for (sum, cell) in running.iter_mut().zip(row(y + radius + 1)) {
                    add_f64(sum, cell, 1.0);
                }
            }
            if y >= radius {
                for (sum, cell) in running.iter_mut().zip(row(y - radius)) {
                    add_f64(sum, cell, -1.0);
                }
            }
        }
        MeanGrid {
            step,
            columns,
            rows,
            sums,
        }
    }

    /// Where pixel `p`'s centre falls between cell centres along one axis:
    /// the two cells and the weight of the second.
    fn between(&self, p: usize, cells: usize) -> (usize, usize, f32) {
        let u = (p as f32 + 0.5) / self.step as f32 - 0.5;
        let first = (u.max(0.0).floor() as usize).min(cells - 1);
        let second = (first + 1).min(cells - 1);
        (first, second, (u - first as f32).clamp(0.0, 1.0))
    }

    /// The sums interpolated down to pixel row `y`, one per cell column,
    /// for [`MeanGrid::at`].
    fn row(&self, y: usize, out: &mut Vec<[f32; 8]>) {
        let (top, bottom, t) = self.between(y, self.rows);
        let (top, bottom) = (
            &self.sums[top * self.columns..(top + 1) * self.columns],
            &self.sums[bottom * self.columns..(bottom + 1) * self.columns],
        );
        out.clear();
        out.extend(
            top.iter()
                .zip(bottom)
                .map(|(a, b)| std::array::from_fn(|i| a[i] + (b[i] - a[i]) * t)),
        );
    }

    /// The sums at pixel `x` of the row [`MeanGrid::row`] gave.
    fn at(&self, row: &[[f32; 8]], x: usize) -> [f32; 8] {
        let (left, right, t) = self.between(x, self.columns);
        let (a, b) = (row[left], row[right]);
        std::array::from_fn(|i| a[i] + (b[i] - a[i]) * t)
    }
}

fn add_f64(sum: &mut [f64; 8], value: &[f32; 8], sign: f64) {
    for (s, v) in sum.iter_mut().zip(value) {
        *s += sign * f64::from(*v);
    }
}

#[cfg(test)]
mod tests {
    use image::Rgba;

    use super::*;

    const RED: Rgba<u8> = Rgba([220, 30, 30, 255]);

    /// A `size`×`size` transparent image with an opaque red square from
    /// `from` to `to` (exclusive) each way.
    fn square(size: u32, from: u32, to: u32) -> RgbaImage {
        RgbaImage::from_fn(size, size, |x, y| {
            if (from..to).contains(&x) && (from..to).contains(&y) {
                RED
            } else {
                Rgba([0, 0, 0, 0])
            }
        })
    }

    fn alpha_row(image: &RgbaImage, y: u32) -> Vec<u8> {
        (0..image.width())
            .map(|x| image.get_pixel(x, y)[3])
            .collect()
    }

    #[test]
    fn refining_with_nothing_on_leaves_the_bytes_identical() {
        let mut image = square(40, 10, 30);
        image.put_pixel(3, 3, Rgba([1, 2, 3, 77]));
        let before = image.clone();
        refine(&mut image, &Refine::default());
        assert_eq!(image, before);
        assert!(Refine::default().is_identity());
        let on = Refine {
            decontaminate: true,
            ..Refine::default()
        };
        assert!(!on.is_identity());
    }

    #[test]
    fn a_far_speck_disappears_and_a_pinhole_is_filled_while_the_subject_stays() {
        let mut image = square(80, 20, 60);
        image.put_pixel(2, 75, Rgba([0, 0, 255, 255]));
        // A soft speck: its faint fringe goes with it.
        image.put_pixel(70, 5, Rgba([0, 255, 0, 200]));
        image.put_pixel(71, 5, Rgba([0, 255, 0, 20]));
        image.put_pixel(40, 40, Rgba([0, 0, 0, 0]));
        let before = image.clone();
        remove_speckles(&mut image);
        assert_eq!(image.get_pixel(2, 75)[3], 0, "the speck is gone");
        assert_eq!(image.get_pixel(70, 5)[3], 0);
        assert_eq!(image.get_pixel(71, 5)[3], 0);
        assert_eq!(
            *image.get_pixel(40, 40),
            RED,
            "the pinhole takes the colour around it"
        );
        for (x, y, pixel) in image.enumerate_pixels() {
            if (20..60).contains(&x) && (20..60).contains(&y) {
                assert_eq!(*pixel, RED, "the subject at ({x}, {y}) stays");
            } else if ![(2, 75), (70, 5), (71, 5)].contains(&(x, y)) {
                assert_eq!(pixel, before.get_pixel(x, y), "({x}, {y}) stays");
            }
        }
    }

    #[test]
    fn a_second_piece_and_a_real_gap_are_kept() {
        // Two shoes: the smaller one is a third of the larger.
        let mut image = square(100, 10, 70);
        for y in 75..95 {
            for x in 40..100 {
                image.put_pixel(x, y, RED);
            }
        }
        // A 20×20 gap inside the big shoe is 11 % of it: not a pinhole.
        for y in 30..50 {
            for x in 30..50 {
                image.put_pixel(x, y, Rgba([0, 0, 0, 0]));
            }
        }
        let before = image.clone();
        remove_speckles(&mut image);
        assert_eq!(image, before);
    }

    #[test]
    fn smoothing_a_hard_edge_ramps_within_the_radius_and_leaves_far_pixels_alone() {
        // Solid on the left half of a 60-px-wide strip.
        let mut image = RgbaImage::from_fn(60, 8, |x, _| if x < 30 { RED } else { Rgba([0; 4]) });
        smooth(&mut image, 4, true);
        for y in 0..8 {
            let row = alpha_row(&image, y);
            assert!(row.windows(2).all(|w| w[0] >= w[1]), "monotonic: {row:?}");
            assert!(row[..20].iter().all(|&a| a == 255), "{row:?}");
            assert!(row[40..].iter().all(|&a| a == 0), "{row:?}");
            let (inside, outside) = (u32::from(row[29]), u32::from(row[30]));
            assert!(
                inside > 128 && (254..=256).contains(&(inside + outside)),
                "{row:?}"
            );
            assert!(row[27] > 128 && row[27] < 255, "{row:?}");
            assert!(row[32] > 0 && row[32] < 128, "{row:?}");
        }
        // Newly visible pixels take the subject's colour, not black.
        let fringe = image.get_pixel(32, 4);
        assert_eq!([fringe[0], fringe[1], fringe[2]], [220, 30, 30]);
        // Far pixels keep their colour too.
        assert_eq!(*image.get_pixel(5, 4), RED);
        assert_eq!(*image.get_pixel(55, 4), Rgba([0; 4]));
    }

    #[test]
    fn a_subject_cut_by_the_image_border_stays_solid_there_when_smoothed() {
        let mut image = RgbaImage::from_pixel(20, 20, RED);
        smooth(&mut image, 6, true);
        assert!(image.pixels().all(|p| *p == RED));
    }

    #[test]
    fn full_hardness_makes_the_edge_near_binary_and_none_changes_nothing() {
        let mut image = RgbaImage::from_fn(5, 1, |x, _| {
            Rgba([9, 9, 9, [0, 102, 128, 153, 255][x as usize]])
        });
        let before = image.clone();
        harden(&mut image, 0);
        assert_eq!(image, before);
        harden(&mut image, 100);
        let alpha = alpha_row(&image, 0);
        assert_eq!(alpha[0], 0);
        assert!(alpha[1] <= 5, "0.4 goes to near 0: {alpha:?}");
        assert!(alpha[3] >= 250, "0.6 goes to near 1: {alpha:?}");
        assert_eq!(alpha[4], 255);
        let half = alpha_row(
            &{
                let mut i = before.clone();
                harden(&mut i, 50);
                i
            },
            0,
        );
        assert!(half[1] < 102 && half[1] > 10, "in between: {half:?}");
        assert!(harden_curve(0.25, 0.3) < harden_curve(0.3, 0.3));
    }

    /// A red subject on the left fading over a 20 px ramp into a green
    /// background, with the colours a naive cut-out keeps: I = αF + (1−α)B.
    fn red_on_green() -> RgbaImage {
        RgbaImage::from_fn(160, 40, |x, _| {
            let alpha = ((80.0 - x as f32) / 20.0).clamp(0.0, 1.0);
            let mix = |f: f32, b: f32| (alpha * f + (1.0 - alpha) * b).round() as u8;
            Rgba([
                mix(255.0, 0.0),
                mix(0.0, 255.0),
                0,
                (alpha * 255.0).round() as u8,
            ])
        })
    }

    #[test]
    fn decontamination_removes_the_green_halo_and_keeps_solid_pixels() {
        let mut image = red_on_green();
        let before = image.clone();
        decontaminate(&mut image);
        let mut checked = 0;
        for (x, y, pixel) in image.enumerate_pixels() {
            let was = before.get_pixel(x, y);
            match was[3] {
                255 => assert_eq!(pixel, was, "solid ({x}, {y}) unchanged"),
                0 => assert_eq!(pixel, was, "clear ({x}, {y}) unchanged"),
                alpha => {
                    assert_eq!(pixel[3], alpha, "alpha is kept");
                    assert!(
                        pixel[1] <= 30,
                        "no green at ({x}, {y}) with alpha {alpha}: {pixel:?}, was {was:?}"
                    );
                    assert!(pixel[0] >= 225, "red at ({x}, {y}): {pixel:?}");
                    checked += 1;
                }
            }
        }
        assert!(checked > 500, "{checked}");
        // The published algorithm, run in floating point at full resolution
        // (NumPy, boxes of radius 45 then 3), gives these red and green
        // values along the ramp; the cell-based wide pass stays close.
        let reference = [
            (62, 252.6, 2.4),
            (66, 244.2, 10.8),
            (70, 237.2, 18.3),
            (74, 231.7, 23.0),
            (78, 230.6, 24.5),
        ];
        for (x, red, green) in reference {
            let pixel = image.get_pixel(x, 20);
            assert!(
                (f32::from(pixel[0]) - red).abs() <= 3.0
                    && (f32::from(pixel[1]) - green).abs() <= 3.0,
                "at x = {x}: {pixel:?}, the reference has ({red}, {green})"
            );
        }
    }

    #[test]
    fn decontamination_is_deterministic_and_safe_on_tiny_images() {
        for (w, h) in [(1, 1), (1, 9), (9, 1), (3, 2)] {
            let mut image =
                RgbaImage::from_fn(w, h, |x, y| Rgba([(x * 25) as u8, 9, y as u8, 128]));
            let mut again = image.clone();
            decontaminate(&mut image);
            decontaminate(&mut again);
            assert_eq!(image, again);
            refine(
                &mut image,
                &Refine {
                    remove_speckles: true,
                    smooth_px: 50,
                    harden_percent: 70,
                    decontaminate: true,
                },
            );
        }
    }

    #[test]
    fn values_read_as_typed_and_scale_for_previews() {
        assert_eq!(parse_smooth_px("3"), Ok(3));
        assert_eq!(parse_smooth_px("12px"), Ok(12));
        assert!(parse_smooth_px("51").unwrap_err().contains("0 to 50"));
        assert!(parse_smooth_px("-1").is_err());
        assert_eq!(parse_harden("0.6"), Ok(60));
        assert_eq!(parse_harden("25%"), Ok(25));
        assert_eq!(parse_harden("1"), Ok(100));
        assert!(parse_harden("1.5").unwrap_err().contains("from 0"));
        assert!(parse_harden("soft").is_err());
        assert_eq!(hardness_text(60), "0.6");
        assert_eq!(hardness_text(100), "1");
        let refine = Refine {
            smooth_px: 8,
            ..Refine::default()
        };
        assert_eq!(refine.scaled(0.25).smooth_px, 2);
        assert_eq!(refine.scaled(0.01).smooth_px, 1);
        assert_eq!(Refine::default().scaled(0.5), Refine::default());
        assert!(
            Refine {
                smooth_px: 99,
                ..Refine::default()
            }
            .problem()
            .is_some()
        );
    }
}
