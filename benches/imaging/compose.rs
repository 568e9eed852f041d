//! Composition + encode throughput, in megapixels of cut-out per second.
//!
//! One generated 24 MP cut-out (a soft-edged, shaded, noisy subject on
//! transparency) goes through Cutout's pipeline (`imaging::compose` then
//! `imaging::encode`) with the compositions people use, and through the
//! `image` crate's plain PNG and lossless WebP encoders with no composition
//! at all. Every row runs in the same process on the same pixels, so the
//! ratio to the reference holds whatever the machine. Sizes are reported
//! beside times: a faster encoder that writes bigger files is no win.
//!
//! `benches/imaging.rs` calls [`run`] and puts what it returns into its JSON
//! line.

use std::fmt::Write as _;
use std::hint::black_box;
use std::io::Cursor;
use std::time::{Duration, Instant};

use cutout::imaging::OutputFormat;
use cutout::imaging::compose::{Backdrop, Canvas, Composition, Length, Shadow, compose};
use cutout::imaging::encode::{EncodeOptions, encode};
use image::{ImageEncoder, Rgba, RgbaImage};

/// A 24-megapixel camera's 3:2 frame.
const CUTOUT_SIZE: [u32; 2] = [6000, 4000];

/// Times the pipeline against the `image` crate's plain encoders, prints a
/// table, and returns the figures as a JSON object.
pub fn run(runs: u32) -> String {
    let started = Instant::now();
    let cutout = photo_cutout(CUTOUT_SIZE);
    eprintln!(
        "(generated the test cut-out in {:.1} s)",
        started.elapsed().as_secs_f64()
    );
    let megapixels = f64::from(CUTOUT_SIZE[0]) * f64::from(CUTOUT_SIZE[1]) / 1e6;
    println!(
        "\nComposition + encode of a {} × {} cut-out ({megapixels:.0} MP), {runs} timed runs \
         each; MP/s counts the cut-out's pixels\n",
        CUTOUT_SIZE[0], CUTOUT_SIZE[1]
    );
    let tidy = Composition {
        crop: Some(Length::Percent { hundredths: 200 }),
        shadow: Some(Shadow::default()),
        ..Composition::default()
    };
    let marketplace = Composition {
        background: Backdrop::Color([255, 255, 255]),
        crop: Some(Length::Percent { hundredths: 200 }),
        canvas: Canvas::Square { side_px: 2000 },
        scale_percent: 90,
        shadow: Some(Shadow::default()),
        ..Composition::default()
    };
    let cutout_encode = |composition: &Composition, format: OutputFormat, quality| {
        let composed = compose(&cutout, composition, None);
        let options = EncodeOptions {
            format,
            quality,
            icc_profile: None,
        };
        let bytes = encode(&composed, &options).expect("encode the composed cut-out");
        ([composed.width(), composed.height()], bytes.len())
    };

    let mut table = Table::new(megapixels);
    let png = table.row(
        "png",
        "reference: image PngEncoder (default), no composition",
        runs,
        || reference_png(&cutout),
    );
    table.compare_to(png);
    table.row(
        "png",
        "reference: image PngEncoder (Best, adaptive), no composition",
        runs,
        || reference_png_best(&cutout),
    );
    table.row(
        "png",
        "Cutout: crop 2% + shadow (transparent) + PNG",
        runs,
        || cutout_encode(&tidy, OutputFormat::Png, None),
    );
    table.row(
        "png",
        "Cutout: marketplace square 2000 on white + shadow + PNG",
        runs,
        || cutout_encode(&marketplace, OutputFormat::Png, None),
    );
    let webp = table.row(
        "webp",
        "reference: image WebPEncoder (lossless), no composition",
        runs,
        || reference_webp(&cutout),
    );
    table.compare_to(webp);
    table.row(
        "webp",
        "Cutout: crop 2% + shadow (transparent) + WebP lossless",
        runs,
        || cutout_encode(&tidy, OutputFormat::Webp, None),
    );
    table.row(
        "webp",
        "Cutout: crop 2% + shadow (transparent) + WebP lossy q85",
        runs,
        || cutout_encode(&tidy, OutputFormat::Webp, Some(85)),
    );
    table.row(
        "compose",
        "Cutout: crop 2% + shadow, no encode",
        runs,
        || {
            let composed = compose(&cutout, &tidy, None);
            ([composed.width(), composed.height()], 0)
        },
    );
    print!("{}", table.render());
    table.json()
}

/// A photo-like cut-out: a soft-edged rounded subject, lit from the top
/// left, with a woven texture and sensor noise, on full transparency. Flat
/// colour would compress to nothing and time unrealistically well. The same
/// every run (fixed seed).
fn photo_cutout([width, height]: [u32; 2]) -> RgbaImage {
    let mut rng = fastrand::Rng::with_seed(0xC0_7C07);
    let (cx, cy) = (width as f32 * 0.5, height as f32 * 0.55);
    let (rx, ry) = (width as f32 * 0.28, height as f32 * 0.38);
    let edge_px = (width.max(height) as f32 / 1500.0).max(1.0);
    RgbaImage::from_fn(width, height, |x, y| {
        let (dx, dy) = ((x as f32 - cx) / rx, (y as f32 - cy) / ry);
        let r = (dx.abs().powf(2.5) + dy.abs().powf(2.5)).powf(0.4);
        let alpha = (0.5 - (r - 1.0) * rx.min(ry) / edge_px).clamp(0.0, 1.0);
        if alpha == 0.0 {
            return Rgba([0, 0, 0, 0]);
        }
        let texture = ((x as f32 * 0.05).sin() * (y as f32 * 0.031).cos() + 1.0) * 0.5
            + 0.05 * ((x ^ y) & 7) as f32;
        let light = 0.55 + 0.45 * (1.0 - (dx * 0.7 + dy * 0.9 + 0.3).clamp(-1.0, 1.0)) * 0.5;
        let mut channel = |base: f32| {
            let noise = (rng.f32() + rng.f32() + rng.f32() - 1.5) * 2.0;
            (base * light + noise).clamp(0.0, 255.0) as u8
        };
        let rgb = [
            channel(180.0 * texture + 40.0),
            channel(110.0 * texture + 60.0),
            channel(90.0 + 60.0 * (1.0 - texture)),
        ];
        Rgba([rgb[0], rgb[1], rgb[2], (alpha * 255.0).round() as u8])
    })
}

fn reference_png(cutout: &RgbaImage) -> ([u32; 2], usize) {
    let mut out = Cursor::new(Vec::new());
    cutout
        .write_to(&mut out, image::ImageFormat::Png)
        .expect("encode the reference PNG");
    ([cutout.width(), cutout.height()], out.into_inner().len())
}

fn reference_png_best(cutout: &RgbaImage) -> ([u32; 2], usize) {
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new_with_quality(
        &mut out,
        image::codecs::png::CompressionType::Best,
        image::codecs::png::FilterType::Adaptive,
    )
    .write_image(
        cutout.as_raw(),
        cutout.width(),
        cutout.height(),
        image::ExtendedColorType::Rgba8,
    )
    .expect("encode the reference PNG");
    ([cutout.width(), cutout.height()], out.len())
}

fn reference_webp(cutout: &RgbaImage) -> ([u32; 2], usize) {
    let mut out = Vec::new();
    image::codecs::webp::WebPEncoder::new_lossless(&mut out)
        .write_image(
            cutout.as_raw(),
            cutout.width(),
            cutout.height(),
            image::ExtendedColorType::Rgba8,
        )
        .expect("encode the reference WebP");
    ([cutout.width(), cutout.height()], out.len())
}

/// Timed rows, each compared with the reference of its group.
struct Table {
    megapixels: f64,
    rows: Vec<Row>,
    reference: Option<usize>,
}

struct Row {
    group: &'static str,
    label: &'static str,
    mean_ms: f64,
    best_ms: f64,
    size: [u32; 2],
    bytes: usize,
    reference: Option<usize>,
}

impl Table {
    fn new(megapixels: f64) -> Table {
        Table {
            megapixels,
            rows: Vec::new(),
            reference: None,
        }
    }

    /// Times `work`: one warm-up run, then `runs`.
    fn row(
        &mut self,
        group: &'static str,
        label: &'static str,
        runs: u32,
        work: impl Fn() -> ([u32; 2], usize),
    ) -> usize {
        let (size, bytes) = black_box(work());
        let mut times = Vec::new();
        for _ in 0..runs {
            let started = Instant::now();
            black_box(work());
            times.push(started.elapsed());
        }
        let ms = |d: &Duration| d.as_secs_f64() * 1000.0;
        let total: Duration = times.iter().sum();
        self.rows.push(Row {
            group,
            label,
            mean_ms: ms(&total) / f64::from(runs),
            best_ms: times.iter().map(ms).fold(f64::INFINITY, f64::min),
            size,
            bytes,
            reference: self.reference,
        });
        self.rows.len() - 1
    }

    /// Rows after this compare with row `index` (and it with itself).
    fn compare_to(&mut self, index: usize) {
        self.reference = Some(index);
        self.rows[index].reference = Some(index);
    }

    fn throughput(&self, row: &Row) -> f64 {
        self.megapixels / (row.mean_ms / 1000.0)
    }

    /// Time relative to the reference: 1.5 means it takes 1.5× as long.
    fn time_ratio(&self, row: &Row) -> Option<f64> {
        row.reference
            .filter(|_| row.group != "compose")
            .map(|r| row.mean_ms / self.rows[r].mean_ms)
    }

    fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "| group | pipeline | result | ms (mean) | best | MP/s | time vs reference | bytes |"
        );
        let _ = writeln!(out, "|---|---|---|---:|---:|---:|---:|---:|");
        for row in &self.rows {
            let _ = writeln!(
                out,
                "| {} | {} | {}×{} | {:.0} | {:.0} | {:.1} | {} | {} |",
                row.group,
                row.label,
                row.size[0],
                row.size[1],
                row.mean_ms,
                row.best_ms,
                self.throughput(row),
                self.time_ratio(row)
                    .map_or_else(|| "–".to_owned(), |r| format!("{r:.2}×")),
                if row.bytes == 0 {
                    "–".to_owned()
                } else {
                    row.bytes.to_string()
                },
            );
        }
        out
    }

    fn json(&self) -> String {
        let rows: Vec<String> = self
            .rows
            .iter()
            .map(|row| {
                format!(
                    "{{\"group\":\"{}\",\"pipeline\":\"{}\",\"width\":{},\"height\":{},\
                     \"mean_ms\":{:.1},\"best_ms\":{:.1},\"megapixels_per_s\":{:.2},\
                     \"time_vs_reference\":{},\"bytes\":{}}}",
                    row.group,
                    row.label,
                    row.size[0],
                    row.size[1],
                    row.mean_ms,
                    row.best_ms,
                    self.throughput(row),
                    self.time_ratio(row)
                        .map_or_else(|| "null".to_owned(), |r| format!("{r:.3}")),
                    row.bytes,
                )
            })
            .collect();
        format!(
            "{{\"cutout\":{{\"width\":{},\"height\":{}}},\"rows\":[{}]}}",
            CUTOUT_SIZE[0],
            CUTOUT_SIZE[1],
            rows.join(",")
        )
    }
}
