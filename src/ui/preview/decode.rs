//! Reading pictures for the preview off the UI thread. A small pool of
//! worker threads decodes files into `egui::ColorImage`s and hands them back
//! through a channel, so a 40-megapixel original never freezes the window.
//! Requests for jobs the user has moved away from can be dropped before they
//! start, so clicking quickly through a long queue does not pile up work.

use std::collections::VecDeque;
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, mpsc};

use crate::imaging::ImagingError;
use crate::imaging::decode::{self, DecodeLimits, DecodeProblem};
use crate::jobs::job::JobId;

/// The longest side of a preview texture. Results are often 4000–6000 px,
/// far more than a side panel shows; 2048 keeps edges crisp at "Fit" while
/// holding each texture near 16 MB.
pub const PREVIEW_MAX_SIDE_PX: u32 = 2048;

/// Decoding is CPU-bound; two workers keep the input and its cut-out
/// arriving together without starving the engine's threads.
const WORKERS: usize = 2;

/// One picture of one job: its input or one of its results.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PictureKey {
    /// The job it belongs to, so everything of a job can be dropped at once.
    pub job: JobId,
    /// The file.
    pub path: PathBuf,
}

/// What the picture is decoded for, which decides its size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Shown in the panel: downscaled to [`PREVIEW_MAX_SIDE_PX`].
    Preview,
    /// Copied to the clipboard: full size, so the pasted image is the result.
    Clipboard,
}

/// A decoded picture.
pub struct Picture {
    /// The pixels, downscaled for [`Purpose::Preview`].
    pub image: egui::ColorImage,
    /// The file's own size in pixels (after EXIF rotation), for "100%" and
    /// the details.
    pub original_size: [u32; 2],
}

/// A finished request.
pub struct Decoded {
    /// The picture asked for.
    pub key: PictureKey,
    /// Why it was asked for.
    pub purpose: Purpose,
    /// The picture, or a sentence for the user on why it cannot be shown.
    pub result: Result<Picture, String>,
}

/// The worker pool. Dropping it stops the workers once their current file
/// is done.
pub struct Decoder {
    shared: Arc<Shared>,
    results: mpsc::Receiver<Decoded>,
}

struct Shared {
    pending: Mutex<Pending>,
    signal: Condvar,
}

#[derive(Default)]
struct Pending {
    requests: VecDeque<(PictureKey, Purpose)>,
    closed: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Decoder {
    /// Starts the workers; `wake` asks the window to repaint when a picture
    /// is ready.
    pub fn new(wake: impl Fn() + Send + Sync + 'static) -> Self {
        let shared = Arc::new(Shared {
            pending: Mutex::new(Pending::default()),
            signal: Condvar::new(),
        });
        let (sender, results) = mpsc::channel();
        let wake: Arc<dyn Fn() + Send + Sync> = Arc::new(wake);
        for n in 0..WORKERS {
            let shared = Arc::clone(&shared);
            let sender = sender.clone();
            let wake = Arc::clone(&wake);
            let spawned = std::thread::Builder::new()
                .name(format!("cutout-preview-{n}"))
                .spawn(move || work(&shared, &sender, wake.as_ref()));
            if let Err(error) = spawned {
                tracing::warn!("cannot start a preview worker: {error}");
            }
        }
        Decoder { shared, results }
    }

    /// Queues a file. The caller keeps track of what it asked for, so each
    /// picture is asked for once.
    pub fn request(&self, key: PictureKey, purpose: Purpose) {
        self.shared.lock().requests.push_back((key, purpose));
        self.shared.signal.notify_one();
    }

    /// Drops queued previews that are no longer wanted (a job left the
    /// queue or the cache); ones already running finish. Clipboard copies
    /// are kept: the user is waiting for them.
    pub fn retain(&self, keep: impl Fn(&PictureKey) -> bool) {
        self.shared
            .lock()
            .requests
            .retain(|(key, purpose)| *purpose == Purpose::Clipboard || keep(key));
    }

    /// Pictures finished since the last call.
    pub fn finished(&self) -> impl Iterator<Item = Decoded> + '_ {
        self.results.try_iter()
    }
}

impl Drop for Decoder {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.signal.notify_all();
    }
}

fn work(shared: &Shared, sender: &mpsc::Sender<Decoded>, wake: &(dyn Fn() + Send + Sync)) {
    loop {
        let (key, purpose) = {
            let mut pending = shared.lock();
            loop {
                if pending.closed {
                    return;
                }
                if let Some(next) = pending.requests.pop_front() {
                    break next;
                }
                pending = shared
                    .signal
                    .wait(pending)
                    .unwrap_or_else(PoisonError::into_inner);
            }
        };
        let max_side = match purpose {
            Purpose::Preview => Some(PREVIEW_MAX_SIDE_PX),
            Purpose::Clipboard => None,
        };
        // A decoder bug on a hostile file must cost one preview, not a worker.
        let result = catch_unwind(AssertUnwindSafe(|| read_picture(&key.path, max_side)))
            .unwrap_or_else(|_| Err("Cutout could not read this image.".to_owned()));
        if sender
            .send(Decoded {
                key,
                purpose,
                result,
            })
            .is_err()
        {
            return;
        }
        wake();
    }
}

/// Decodes a file the way every part of Cutout opens pictures
/// ([`decode::open`]): turned upright by its EXIF orientation (phone photos
/// are stored sideways), its colours converted to sRGB, and with
/// `max_side` shrunk so its longer side fits. Errors are sentences for the
/// user, without the path (the panel shows it).
pub fn read_picture(path: &Path, max_side: Option<u32>) -> Result<Picture, String> {
    let decoded = decode::open(path, &DecodeLimits::default()).map_err(|error| match error {
        ImagingError::Open { problem, .. } => describe(&problem),
        other => sentence(&other.to_string()),
    })?;
    let mut image = decoded.image;
    let original_size = [image.width(), image.height()];
    if let Some(max) = max_side
        && (image.width() > max || image.height() > max)
    {
        image = image.thumbnail(max, max);
    }
    let rgba = image.into_rgba8();
    let size = [rgba.width() as usize, rgba.height() as usize];
    Ok(Picture {
        image: egui::ColorImage::from_rgba_unmultiplied(size, rgba.as_raw()),
        original_size,
    })
}

fn describe(problem: &DecodeProblem) -> String {
    match problem {
        DecodeProblem::Unreadable(e) => describe_io(e),
        DecodeProblem::NotAnImage => {
            "Cutout cannot show this kind of file here: its content is not a picture.".to_owned()
        }
        DecodeProblem::Unavailable { format, .. } => format!(
            "Cutout cannot show {format} files on this build; they are still sent to providers \
             that take {format}."
        ),
        DecodeProblem::Truncated | DecodeProblem::Corrupt(_) => {
            "The file is damaged or incomplete, so it cannot be shown.".to_owned()
        }
        other => sentence(&other.to_string()),
    }
}

/// A clause made a sentence: capital first, full stop last.
fn sentence(clause: &str) -> String {
    let mut chars = clause.chars();
    let mut text: String = match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    };
    if !text.ends_with('.') {
        text.push('.');
    }
    text
}

fn describe_io(error: &io::Error) -> String {
    match error.kind() {
        io::ErrorKind::NotFound => {
            "The file is no longer there: it was moved, renamed or deleted.".to_owned()
        }
        io::ErrorKind::PermissionDenied => "Cutout is not allowed to read this file.".to_owned(),
        io::ErrorKind::UnexpectedEof | io::ErrorKind::InvalidData => {
            "The file is damaged or incomplete, so it cannot be shown.".to_owned()
        }
        _ => format!("The file could not be read ({error})."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn write_png(dir: &Path, name: &str, width: u32, height: u32) -> PathBuf {
        let path = dir.join(name);
        image::RgbaImage::from_pixel(width, height, image::Rgba([10, 200, 30, 128]))
            .save(&path)
            .unwrap();
        path
    }

    #[test]
    fn a_large_picture_is_shrunk_to_the_preview_size_and_remembers_its_own_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_png(dir.path(), "wide.png", 3000, 1000);
        let picture = read_picture(&path, Some(PREVIEW_MAX_SIDE_PX)).unwrap();
        assert_eq!(picture.original_size, [3000, 1000]);
        assert_eq!(picture.image.size[0], 2048);
        assert!(
            (680..=684).contains(&picture.image.size[1]),
            "{:?}",
            picture.image.size
        );
    }

    #[test]
    fn a_small_picture_and_a_clipboard_copy_keep_every_pixel() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_png(dir.path(), "small.png", 40, 30);
        assert_eq!(
            read_picture(&path, Some(2048)).unwrap().image.size,
            [40, 30]
        );
        let big = write_png(dir.path(), "big.png", 2100, 10);
        assert_eq!(read_picture(&big, None).unwrap().image.size, [2100, 10]);
    }

    #[test]
    fn damaged_missing_and_foreign_files_give_a_sentence_instead_of_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let truncated = dir.path().join("cut.png");
        let full = write_png(dir.path(), "full.png", 64, 64);
        let bytes = std::fs::read(&full).unwrap();
        std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
        let damaged = read_picture(&truncated, Some(2048)).err().unwrap();
        assert!(damaged.contains("damaged"), "{damaged}");

        let missing = read_picture(&dir.path().join("gone.png"), None)
            .err()
            .unwrap();
        assert!(missing.contains("no longer there"), "{missing}");

        let text = dir.path().join("phone.heic");
        std::fs::write(&text, "not a format Cutout decodes").unwrap();
        let foreign = read_picture(&text, None).err().unwrap();
        assert!(foreign.contains("cannot show"), "{foreign}");
    }

    #[test]
    fn the_pool_decodes_in_the_background_and_wakes_the_window() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_png(dir.path(), "a.png", 8, 8);
        let woken = Arc::new(Mutex::new(0));
        let counter = Arc::clone(&woken);
        let decoder = Decoder::new(move || *counter.lock().unwrap() += 1);
        let key = PictureKey {
            job: JobId(1),
            path,
        };
        decoder.request(key.clone(), Purpose::Preview);
        let deadline = Instant::now() + Duration::from_secs(10);
        let decoded = loop {
            if let Some(done) = decoder.finished().next() {
                break done;
            }
            assert!(Instant::now() < deadline, "no picture arrived");
            std::thread::sleep(Duration::from_millis(5));
        };
        assert_eq!(decoded.key, key);
        assert_eq!(decoded.result.unwrap().original_size, [8, 8]);
        assert_eq!(*woken.lock().unwrap(), 1);
    }

    #[test]
    fn previews_no_longer_wanted_are_dropped_before_they_start() {
        let decoder = Decoder {
            shared: Arc::new(Shared {
                pending: Mutex::new(Pending::default()),
                signal: Condvar::new(),
            }),
            results: mpsc::channel().1,
        };
        for job in 1..=3 {
            let key = PictureKey {
                job: JobId(job),
                path: format!("{job}.png").into(),
            };
            decoder.request(key, Purpose::Preview);
        }
        let copy = PictureKey {
            job: JobId(4),
            path: "4.png".into(),
        };
        decoder.request(copy, Purpose::Clipboard);
        decoder.retain(|key| key.job == JobId(2));
        let left: Vec<JobId> = decoder
            .shared
            .lock()
            .requests
            .iter()
            .map(|(k, _)| k.job)
            .collect();
        assert_eq!(left, [JobId(2), JobId(4)], "a clipboard copy is kept");
    }
}
