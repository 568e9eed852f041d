//! How fast Cutout's image work is, on pictures like the ones shops drop in.
//!
//! Thumbnails: per 24-megapixel JPEG, the queue's fast path
//! (`cutout::imaging::thumbnail`: the embedded EXIF thumbnail, or a JPEG
//! decoded at 1/8 and shrunk with `fast_image_resize`) against what an app
//! does without one: a full decode with the `image` crate, then its
//! `thumbnail` or `resize`. Both run in the same process on the same files,
//! so the ratio holds whatever the machine.
//!
//! Run with `cargo bench --bench imaging`. `CUTOUT_BENCH_RUNS` sets the timed
//! runs per row (default 5, after one warm-up run). The test photos are
//! generated, deterministically, into a temporary folder: no file is
//! committed or downloaded. The last line printed is every figure as JSON.

use std::fmt::Write as _;
use std::hint::black_box;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cutout::imaging::thumbnail::{ThumbnailRoute, thumbnail};
use image::codecs::jpeg::JpegEncoder;
use image::imageops::FilterType;
use image::{ImageEncoder, ImageReader, Rgb, RgbImage};

/// Composition and encoding throughput, timed after the thumbnails. (A
/// bench's root resolves modules beside it, hence the path.)
#[path = "imaging/compose.rs"]
mod compose;

/// A 24-megapixel camera's 3:2 frame.
const PHOTO_SIZE: [u32; 2] = [6000, 4000];

/// What cameras and phones save at.
const JPEG_QUALITY: u8 = 90;

/// The queue's thumbnail box (48 px shown at 2× for high-DPI screens).
const QUEUE_BOX_PX: u32 = 96;

/// The preview panel's longest side.
const PREVIEW_BOX_PX: u32 = 2048;

fn main() {
    let runs = std::env::var("CUTOUT_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .filter(|&n| n > 0)
        .unwrap_or(5);
    let dir = tempfile::tempdir().expect("a temporary folder for the test photos");
    let photos = Photos::generate(dir.path());
    println!(
        "Thumbnails of a {} × {} JPEG (quality {JPEG_QUALITY}, {:.1} MB; with an EXIF thumbnail \
         {:.1} MB), {runs} timed runs each, one thread per decode unless noted\n",
        PHOTO_SIZE[0],
        PHOTO_SIZE[1],
        megabytes(&photos.plain),
        megabytes(&photos.with_exif_thumbnail),
    );

    let mut table = Table::default();
    let queue_baseline = table.row(
        "queue",
        "image: full decode + thumbnail() (before)",
        runs,
        || image_decode_then(&photos.plain, |i| i.thumbnail(QUEUE_BOX_PX, QUEUE_BOX_PX)),
    );
    table.compare_to(queue_baseline);
    table.row(
        "queue",
        "image: full decode + resize(Lanczos3)",
        runs,
        || {
            image_decode_then(&photos.plain, |i| {
                i.resize(QUEUE_BOX_PX, QUEUE_BOX_PX, FilterType::Lanczos3)
            })
        },
    );
    table.row(
        "queue",
        "fast path: JPEG decoded at 1/8 + SIMD resize",
        runs,
        || {
            fast_path(&photos.plain, QUEUE_BOX_PX, |route| {
                matches!(route, ThumbnailRoute::ScaledJpeg { denominator: 8 })
            })
        },
    );
    table.row("queue", "fast path: embedded EXIF thumbnail", runs, || {
        fast_path(&photos.with_exif_thumbnail, QUEUE_BOX_PX, |route| {
            route == ThumbnailRoute::ExifThumbnail
        })
    });

    let preview_baseline = table.row(
        "preview",
        "image: full decode + thumbnail() (before)",
        runs,
        || {
            image_decode_then(&photos.plain, |i| {
                i.thumbnail(PREVIEW_BOX_PX, PREVIEW_BOX_PX)
            })
        },
    );
    table.compare_to(preview_baseline);
    table.row(
        "preview",
        "fast path: JPEG decoded at 1/2 + SIMD resize",
        runs,
        || {
            fast_path(&photos.plain, PREVIEW_BOX_PX, |route| {
                matches!(route, ThumbnailRoute::ScaledJpeg { denominator: 2 })
            })
        },
    );
    print!("{}", table.render());

    let compose_json = compose::run(runs);

    println!(
        "{{\"bench\":\"imaging\",\"photo\":{{\"width\":{},\"height\":{},\"quality\":{JPEG_QUALITY},\
         \"bytes\":{},\"bytes_with_exif_thumbnail\":{}}},\"runs\":{runs},\"thumbnail\":{},\
         \"compose\":{compose_json}}}",
        PHOTO_SIZE[0],
        PHOTO_SIZE[1],
        std::fs::metadata(&photos.plain).map_or(0, |m| m.len()),
        std::fs::metadata(&photos.with_exif_thumbnail).map_or(0, |m| m.len()),
        table.json(),
    );
}

/// The two test files: the same photo with and without an embedded
/// thumbnail.
struct Photos {
    plain: PathBuf,
    with_exif_thumbnail: PathBuf,
}

impl Photos {
    fn generate(dir: &Path) -> Photos {
        let started = Instant::now();
        let photo = photo_like(PHOTO_SIZE);
        // Cameras embed a 160 × 120 or 160 × 107 thumbnail of the frame.
        let small = image::imageops::thumbnail(&photo, 160, 107);
        let plain = dir.join("photo.jpg");
        let with_exif_thumbnail = dir.join("photo-exif-thumbnail.jpg");
        std::fs::write(&plain, encode_jpeg(&photo, None)).expect("write the test photo");
        std::fs::write(&with_exif_thumbnail, encode_jpeg(&photo, Some(&small)))
            .expect("write the test photo");
        eprintln!(
            "(generated the test photos in {:.1} s)",
            started.elapsed().as_secs_f64()
        );
        Photos {
            plain,
            with_exif_thumbnail,
        }
    }
}

/// A picture with what makes real photos cost what they cost to encode and
/// decode: smooth gradients (sky, studio backdrop), hard-edged shapes of
/// several colours (the product), fine texture and sensor noise. Flat
/// colour would compress to nothing and decode unrealistically fast. The
/// same every run (fixed seed).
fn photo_like([width, height]: [u32; 2]) -> RgbImage {
    let mut rng = fastrand::Rng::with_seed(0x0C07_0C07);
    let shapes: Vec<([f32; 2], f32, [f32; 3], bool)> = (0..40)
        .map(|_| {
            let centre = [rng.f32() * width as f32, rng.f32() * height as f32];
            let radius = (0.03 + rng.f32() * 0.15) * height as f32;
            let colour = [rng.f32() * 255.0, rng.f32() * 255.0, rng.f32() * 255.0];
            (centre, radius, colour, rng.bool())
        })
        .collect();
    let mut photo = RgbImage::new(width, height);
    for (x, y, pixel) in photo.enumerate_pixels_mut() {
        let (fx, fy) = (x as f32 / width as f32, y as f32 / height as f32);
        let mut rgb = [
            60.0 + 150.0 * fy,
            90.0 + 100.0 * fx,
            200.0 - 120.0 * fy + 20.0 * (fx * 9.0).sin(),
        ];
        for (centre, radius, colour, square) in &shapes {
            let (dx, dy) = (x as f32 - centre[0], y as f32 - centre[1]);
            let inside = if *square {
                dx.abs().max(dy.abs()) < *radius
            } else {
                dx * dx + dy * dy < radius * radius
            };
            if inside {
                // Shaded, like a lit object, with a woven texture.
                let shade = 0.75 + 0.25 * (dy / radius) + 0.05 * ((x ^ y) & 7) as f32;
                rgb = colour.map(|c| c * shade);
            }
        }
        *pixel = Rgb(rgb.map(|c| (c + (rng.f32() - 0.5) * 10.0).clamp(0.0, 255.0) as u8));
    }
    photo
}

/// Baseline JPEG at [`JPEG_QUALITY`], with an EXIF block holding
/// `thumbnail` when given (as cameras write it: APP1, IFD1).
fn encode_jpeg(picture: &RgbImage, thumbnail: Option<&RgbImage>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY);
    if let Some(thumbnail) = thumbnail {
        let small_jpeg = encode_jpeg(thumbnail, None);
        let orientation = exif::Field {
            tag: exif::Tag::Orientation,
            ifd_num: exif::In::PRIMARY,
            value: exif::Value::Short(vec![1]),
        };
        let mut writer = exif::experimental::Writer::new();
        writer.push_field(&orientation);
        writer.set_jpeg(&small_jpeg, exif::In::THUMBNAIL);
        let mut tiff = Cursor::new(Vec::new());
        writer.write(&mut tiff, true).expect("an EXIF block");
        encoder
            .set_exif_metadata(tiff.into_inner())
            .expect("JPEG takes EXIF");
    }
    encoder
        .write_image(
            picture.as_raw(),
            picture.width(),
            picture.height(),
            image::ExtendedColorType::Rgb8,
        )
        .expect("encode the test photo");
    out
}

/// The path an app takes without a fast path: decode everything, then shrink.
fn image_decode_then(
    path: &Path,
    shrink: impl Fn(&image::DynamicImage) -> image::DynamicImage,
) -> [u32; 2] {
    let full = ImageReader::open(path)
        .and_then(|r| r.with_guessed_format())
        .expect("open the test photo")
        .decode()
        .expect("decode the test photo");
    let small = shrink(&full);
    [small.width(), small.height()]
}

/// Cutout's thumbnail, checked to have taken the route the row is about.
fn fast_path(path: &Path, max_side_px: u32, expected: impl Fn(ThumbnailRoute) -> bool) -> [u32; 2] {
    let small = thumbnail(path, max_side_px).expect("thumbnail of the test photo");
    assert!(expected(small.route), "took {:?}", small.route);
    [small.image.width(), small.image.height()]
}

/// Timed rows, each compared with the baseline of its group.
#[derive(Default)]
struct Table {
    rows: Vec<Row>,
    baseline: Option<usize>,
}

struct Row {
    group: &'static str,
    label: &'static str,
    mean_ms: f64,
    best_ms: f64,
    /// Processor time over wall time: more than 1 when the decoder uses
    /// extra threads. `None` where the platform does not say.
    cpu_per_wall: Option<f64>,
    size: [u32; 2],
    baseline: Option<usize>,
}

impl Table {
    /// Times `work`: one warm-up run (file cache, allocator), then `runs`.
    fn row(
        &mut self,
        group: &'static str,
        label: &'static str,
        runs: u32,
        work: impl Fn() -> [u32; 2],
    ) -> usize {
        let size = black_box(work());
        let mut times = Vec::new();
        let cpu_before = process_cpu_time();
        for _ in 0..runs {
            let started = Instant::now();
            black_box(work());
            times.push(started.elapsed());
        }
        let wall: Duration = times.iter().sum();
        let cpu_per_wall = process_cpu_time()
            .zip(cpu_before)
            .map(|(after, before)| (after - before).as_secs_f64() / wall.as_secs_f64());
        let ms = |d: &Duration| d.as_secs_f64() * 1000.0;
        self.rows.push(Row {
            group,
            label,
            mean_ms: ms(&wall) / f64::from(runs),
            best_ms: times.iter().map(ms).fold(f64::INFINITY, f64::min),
            cpu_per_wall,
            size,
            baseline: self.baseline,
        });
        self.rows.len() - 1
    }

    /// Rows after this compare with row `index` (and it with itself).
    fn compare_to(&mut self, index: usize) {
        self.baseline = Some(index);
        self.rows[index].baseline = Some(index);
    }

    fn speedup(&self, row: &Row) -> Option<f64> {
        row.baseline.map(|b| self.rows[b].mean_ms / row.mean_ms)
    }

    fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "| box | route | result | ms/image (mean) | best | CPU/wall | speed-up |"
        );
        let _ = writeln!(out, "|---|---|---|---:|---:|---:|---:|");
        for row in &self.rows {
            let _ = writeln!(
                out,
                "| {} | {} | {}×{} | {:.1} | {:.1} | {} | {} |",
                row.group,
                row.label,
                row.size[0],
                row.size[1],
                row.mean_ms,
                row.best_ms,
                row.cpu_per_wall
                    .map_or_else(|| "–".to_owned(), |r| format!("{r:.1}")),
                self.speedup(row)
                    .map_or_else(|| "–".to_owned(), |s| format!("{s:.1}×")),
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
                    "{{\"box\":\"{}\",\"route\":\"{}\",\"width\":{},\"height\":{},\
                     \"mean_ms\":{:.2},\"best_ms\":{:.2},\"cpu_per_wall\":{},\"speedup\":{}}}",
                    row.group,
                    row.label,
                    row.size[0],
                    row.size[1],
                    row.mean_ms,
                    row.best_ms,
                    row.cpu_per_wall
                        .map_or_else(|| "null".to_owned(), |r| format!("{r:.2}")),
                    self.speedup(row)
                        .map_or_else(|| "null".to_owned(), |s| format!("{s:.2}")),
                )
            })
            .collect();
        format!("[{}]", rows.join(","))
    }
}

/// This process's processor time so far, all threads (Linux only: the
/// `utime` and `stime` fields of `/proc/self/stat`, in 1/100 s ticks).
fn process_cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

fn megabytes(path: &Path) -> f64 {
    std::fs::metadata(path).map_or(0.0, |m| m.len() as f64 / 1e6)
}
