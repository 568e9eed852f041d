//! Small previews for the queue list, made on worker threads so scrolling
//! through a thousand rows never waits on disk. They come from
//! [`crate::imaging::thumbnail`]'s fast path (a JPEG's embedded EXIF
//! thumbnail, or the JPEG decoded at an eighth of its size), so no
//! full-size photo is ever held for a queue row; only the small pixels come
//! back to the UI thread.
//!
//! Requests are served newest first and can be withdrawn, so rows the user
//! scrolled past do not hold up the ones now on screen.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use crate::imaging::ImagingError;
use crate::imaging::decode::DecodeProblem;
use crate::jobs::job::JobId;

/// Half the cores, between two and four: a screenful of 24 MP photos
/// arrives in well under a second on the fast path, without taking the
/// cores the engine and the window need.
fn worker_count() -> usize {
    std::thread::available_parallelism().map_or(2, |n| (n.get() / 2).clamp(2, 4))
}

/// What became of one request.
#[derive(Debug)]
pub enum Thumbnail {
    /// The downscaled picture, ready to upload as a texture.
    Image(egui::ColorImage),
    /// A format Cutout sends to providers but cannot draw itself (HEIC, PSD,
    /// TIFF…). Not a problem with the file, so the row shows a neutral icon.
    Unsupported,
    /// The file is missing, unreadable or corrupt; the reason, for a tooltip.
    Unreadable(String),
}

/// Decodes thumbnails on background threads. Dropping it stops the workers
/// once they finish the picture in hand; nothing waits for them.
pub struct ThumbnailLoader {
    shared: Arc<Shared>,
    results: Receiver<(JobId, Thumbnail)>,
}

struct Shared {
    pending: Mutex<Pending>,
    wake_worker: Condvar,
}

#[derive(Default)]
struct Pending {
    /// Requests not yet taken by a worker; the newest is served first.
    requests: Vec<(JobId, PathBuf)>,
    closed: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        // A worker that panicked mid-push leaves a valid Vec; keep going.
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl ThumbnailLoader {
    /// Starts the workers. `max_side_px` bounds the decoded thumbnails;
    /// `wake` is called after each result so the window redraws to show it.
    pub fn new(max_side_px: u32, wake: impl Fn() + Send + Sync + 'static) -> Self {
        Self::with_workers(worker_count(), max_side_px, wake)
    }

    fn with_workers(
        count: usize,
        max_side_px: u32,
        wake: impl Fn() + Send + Sync + 'static,
    ) -> Self {
        let shared = Arc::new(Shared {
            pending: Mutex::new(Pending::default()),
            wake_worker: Condvar::new(),
        });
        let (sender, results) = mpsc::channel();
        let wake: Arc<dyn Fn() + Send + Sync> = Arc::new(wake);
        for n in 0..count {
            let shared = Arc::clone(&shared);
            let sender = sender.clone();
            let wake = Arc::clone(&wake);
            let spawned = std::thread::Builder::new()
                .name(format!("cutout-thumbnails-{n}"))
                .spawn(move || worker(&shared, &sender, max_side_px, wake.as_ref()));
            if let Err(e) = spawned {
                // Rows keep their placeholders; the rest of the window works.
                tracing::warn!("cannot start a thumbnail worker: {e}");
            }
        }
        ThumbnailLoader { shared, results }
    }

    /// Asks for the thumbnail of a job's input file.
    pub fn request(&self, id: JobId, path: PathBuf) {
        self.shared.lock().requests.push((id, path));
        self.shared.wake_worker.notify_one();
    }

    /// Withdraws waiting requests for jobs `keep` rejects (rows scrolled out
    /// of view) and returns their ids, so they can be asked for again when
    /// they come back. Requests a worker already took still complete.
    pub fn keep_only(&self, keep: impl Fn(JobId) -> bool) -> Vec<JobId> {
        let mut pending = self.shared.lock();
        let mut withdrawn = Vec::new();
        pending.requests.retain(|(id, _)| {
            let kept = keep(*id);
            if !kept {
                withdrawn.push(*id);
            }
            kept
        });
        withdrawn
    }

    /// A finished thumbnail, if one is ready; never waits.
    pub fn try_next(&self) -> Option<(JobId, Thumbnail)> {
        self.results.try_recv().ok()
    }
}

impl Drop for ThumbnailLoader {
    fn drop(&mut self) {
        let mut pending = self.shared.lock();
        pending.closed = true;
        pending.requests.clear();
        drop(pending);
        self.shared.wake_worker.notify_all();
    }
}

fn worker(
    shared: &Shared,
    results: &Sender<(JobId, Thumbnail)>,
    max_side_px: u32,
    wake: &(dyn Fn() + Send + Sync),
) {
    loop {
        let (id, path) = {
            let mut pending = shared.lock();
            loop {
                if pending.closed {
                    return;
                }
                if let Some(request) = pending.requests.pop() {
                    break request;
                }
                pending = shared
                    .wake_worker
                    .wait(pending)
                    .unwrap_or_else(PoisonError::into_inner);
            }
        };
        let thumbnail = catch_unwind(AssertUnwindSafe(|| decode_thumbnail(&path, max_side_px)))
            .unwrap_or_else(|_| Thumbnail::Unreadable("the decoder crashed on this file".into()));
        if results.send((id, thumbnail)).is_err() {
            return;
        }
        wake();
    }
}

/// Reads an image file and shrinks it to fit a `max_side_px` square, keeping
/// its proportions and turned upright. Never panics on a bad file: the
/// reason comes back instead.
pub fn decode_thumbnail(path: &Path, max_side_px: u32) -> Thumbnail {
    match crate::imaging::thumbnail::thumbnail(path, max_side_px) {
        Ok(small) => {
            let size = [small.image.width() as usize, small.image.height() as usize];
            Thumbnail::Image(egui::ColorImage::from_rgba_unmultiplied(
                size,
                small.image.as_raw(),
            ))
        }
        Err(ImagingError::Open { problem, .. }) => match problem {
            // Not the file's fault: a HEIC on a build without an HEVC
            // decoder, an arithmetic-coded JPEG, a video or PDF.
            DecodeProblem::Unavailable { .. }
            | DecodeProblem::Unsupported { .. }
            | DecodeProblem::NotAnImage => Thumbnail::Unsupported,
            // The clause alone: the row already shows which file it is.
            problem => Thumbnail::Unreadable(problem.to_string()),
        },
        Err(other) => Thumbnail::Unreadable(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn write_png(dir: &Path, name: &str, width: u32, height: u32) -> PathBuf {
        let path = dir.join(name);
        image::RgbaImage::from_pixel(width, height, image::Rgba([200, 10, 10, 255]))
            .save(&path)
            .unwrap();
        path
    }

    fn next_result(loader: &ThumbnailLoader) -> (JobId, Thumbnail) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(result) = loader.try_next() {
                return result;
            }
            assert!(Instant::now() < deadline, "no thumbnail within 10 s");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn a_large_image_shrinks_to_fit_the_box_keeping_its_proportions() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_png(dir.path(), "wide.png", 400, 200);
        let Thumbnail::Image(image) = decode_thumbnail(&path, 96) else {
            panic!("expected an image");
        };
        assert_eq!(image.size, [96, 48]);
    }

    #[test]
    fn a_small_image_is_not_enlarged() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_png(dir.path(), "icon.png", 40, 30);
        let Thumbnail::Image(image) = decode_thumbnail(&path, 96) else {
            panic!("expected an image");
        };
        assert_eq!(image.size, [40, 30]);
    }

    #[test]
    fn a_file_with_the_wrong_extension_is_read_by_its_content() {
        let dir = tempfile::tempdir().unwrap();
        let png = write_png(dir.path(), "real.png", 10, 10);
        let misnamed = dir.path().join("actually-a-png.jpg");
        std::fs::rename(png, &misnamed).unwrap();
        assert!(matches!(
            decode_thumbnail(&misnamed, 96),
            Thumbnail::Image(_)
        ));
    }

    #[test]
    fn corrupt_and_missing_files_come_back_unreadable_not_as_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let corrupt = dir.path().join("broken.jpg");
        std::fs::write(&corrupt, b"\xFF\xD8\xFF\xE0 this is not really a jpeg").unwrap();
        assert!(matches!(
            decode_thumbnail(&corrupt, 96),
            Thumbnail::Unreadable(_)
        ));
        let missing = dir.path().join("gone.png");
        assert!(matches!(
            decode_thumbnail(&missing, 96),
            Thumbnail::Unreadable(_)
        ));
    }

    #[test]
    fn formats_cutout_cannot_draw_are_unsupported_rather_than_broken() {
        let dir = tempfile::tempdir().unwrap();
        let heic = dir.path().join("phone.heic");
        // An HEIF `ftyp` box: recognised, but this build has no HEVC decoder.
        std::fs::write(&heic, b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic").unwrap();
        assert!(matches!(
            decode_thumbnail(&heic, 96),
            Thumbnail::Unsupported
        ));
    }

    #[test]
    fn a_24_megapixel_phone_photo_comes_out_small_and_upright() {
        use crate::imaging::decode::fixtures::{progressive_jpeg, with_exif_orientation};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("IMG_0001.jpg");
        // 6000 × 4000 stored landscape, its top-left quarter red, tagged
        // "turn a quarter clockwise" (orientation 6) as phones held upright
        // write it: the red quarter must be shown top-right. (Flat 8 × 8
        // blocks, so a debug build writes 24 MP in a blink.)
        let stored = progressive_jpeg(750, 500, |bx, by| {
            if bx < 375 && by < 250 {
                [220, 20, 20]
            } else {
                [20, 20, 220]
            }
        });
        std::fs::write(&path, with_exif_orientation(&stored, 6)).unwrap();
        let Thumbnail::Image(image) = decode_thumbnail(&path, 96) else {
            panic!("expected an image");
        };
        assert_eq!(image.size, [64, 96]);
        let red = |x: usize, y: usize| {
            let pixel = image.pixels[y * image.size[0] + x];
            pixel.r() > 150 && pixel.b() < 100
        };
        assert!(red(50, 10), "the top right is red");
        assert!(!red(10, 10) && !red(50, 80) && !red(10, 80));
    }

    #[test]
    fn the_loader_decodes_requests_in_the_background_and_wakes_the_window() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_png(dir.path(), "a.png", 20, 30);
        let woken = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = Arc::clone(&woken);
        let loader = ThumbnailLoader::new(96, move || {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        });
        loader.request(JobId(7), path);
        let (id, thumbnail) = next_result(&loader);
        assert_eq!(id, JobId(7));
        assert!(matches!(thumbnail, Thumbnail::Image(ref i) if i.size == [20, 30]));
        assert!(woken.load(std::sync::atomic::Ordering::SeqCst) >= 1);
    }

    #[test]
    fn withdrawn_requests_are_reported_so_they_can_be_asked_for_again() {
        // No workers: requests stay waiting, so the test sees all of them.
        let loader = ThumbnailLoader::with_workers(0, 96, || {});
        for id in 1..=3 {
            loader.request(JobId(id), format!("{id}.png").into());
        }
        assert_eq!(loader.keep_only(|id| id == JobId(2)), [JobId(1), JobId(3)]);
        assert_eq!(loader.keep_only(|_| false), [JobId(2)]);
        assert!(loader.try_next().is_none());
    }
}
