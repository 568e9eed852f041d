//! Getting work into the queue without blocking the window: dropped paths
//! and folders are scanned on a worker thread, native file dialogs run on
//! their own thread, and pasted text is split into URLs. Results come back
//! through a channel that the app drains each frame.

use std::path::PathBuf;
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use crate::jobs::inputs::{self, Skipped};
use crate::jobs::job::JobInput;

/// What one batch of added paths, URLs or dialog picks produced.
#[derive(Debug, Default)]
pub struct Intake {
    /// Inputs to add to the queue.
    pub inputs: Vec<JobInput>,
    /// Files left out, with the reason, shown once.
    pub skipped: Vec<Skipped>,
    /// Inputs that could not be used at all (a missing file, an `ftp:` URL).
    pub problems: Vec<String>,
}

/// Runs scans and dialogs off the UI thread.
pub struct IntakeWorker {
    sender: mpsc::Sender<Intake>,
    receiver: mpsc::Receiver<Intake>,
    wake: Arc<dyn Fn() + Send + Sync>,
    pending: usize,
}

/// A dialog that answers this fast was never shown: there is no portal.
pub const DIALOG_UNAVAILABLE_WITHIN: Duration = Duration::from_millis(250);

/// What to say when no native file dialog can be shown.
pub const NO_DIALOG: &str = "No file dialog is available on this desktop (the XDG desktop portal \
                             is not running). Drag images or folders onto the window instead.";

impl IntakeWorker {
    /// `wake` asks the window to repaint when a result is ready.
    pub fn new(wake: impl Fn() + Send + Sync + 'static) -> Self {
        let (sender, receiver) = mpsc::channel();
        IntakeWorker {
            sender,
            receiver,
            wake: Arc::new(wake),
            pending: 0,
        }
    }

    /// Whether a scan or dialog is still running.
    pub fn is_busy(&self) -> bool {
        self.pending > 0
    }

    /// Scans dropped or given paths (files and folders) on a worker thread.
    pub fn add_paths(&mut self, paths: Vec<PathBuf>) {
        if paths.is_empty() {
            return;
        }
        let raw: Vec<String> = paths
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        self.spawn(move || expand_all(&raw));
    }

    /// Splits pasted or typed text into URLs (one per line or separated by
    /// spaces) and adds them; anything else in it is reported.
    pub fn add_urls(&mut self, text: &str) -> Intake {
        let mut intake = Intake::default();
        for word in text.split_whitespace() {
            match inputs::parse_url(word) {
                Some(Ok(url)) => intake.inputs.push(JobInput::Url(url)),
                Some(Err(error)) => intake.problems.push(error.to_string()),
                None => intake
                    .problems
                    .push(format!("not a web address; paste http(s) URLs: {word}")),
            }
        }
        intake
    }

    /// Opens the native "Add images" dialog.
    pub fn pick_images(&mut self) {
        self.spawn(|| {
            let opened = Instant::now();
            let picked = rfd::FileDialog::new()
                .set_title("Add images")
                .add_filter(
                    "Images and videos",
                    &[
                        crate::jobs::job::IMAGE_EXTENSIONS,
                        crate::jobs::job::VIDEO_EXTENSIONS,
                    ]
                    .concat(),
                )
                .pick_files();
            dialog_result(picked, opened)
        });
    }

    /// Opens the native "Add folder" dialog.
    pub fn pick_folder(&mut self) {
        self.spawn(|| {
            let opened = Instant::now();
            let picked = rfd::FileDialog::new()
                .set_title("Add a folder")
                .pick_folder()
                .map(|p| vec![p]);
            dialog_result(picked, opened)
        });
    }

    /// Results that arrived since the last call.
    pub fn drain(&mut self) -> Vec<Intake> {
        let done: Vec<Intake> = self.receiver.try_iter().collect();
        self.pending = self.pending.saturating_sub(done.len());
        done
    }

    fn spawn(&mut self, work: impl FnOnce() -> Intake + Send + 'static) {
        self.pending += 1;
        let sender = self.sender.clone();
        let wake = Arc::clone(&self.wake);
        std::thread::spawn(move || {
            let _ = sender.send(work());
            wake();
        });
    }
}

fn expand_all(raw: &[String]) -> Intake {
    let mut intake = Intake::default();
    for item in raw {
        match inputs::expand(item, None, None, &mut intake.skipped) {
            Ok(found) => intake.inputs.extend(found),
            Err(error) => intake.problems.push(error.to_string()),
        }
    }
    intake
}

fn dialog_result(picked: Option<Vec<PathBuf>>, opened: Instant) -> Intake {
    match picked {
        Some(paths) => {
            let raw: Vec<String> = paths
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect();
            expand_all(&raw)
        }
        None if opened.elapsed() < DIALOG_UNAVAILABLE_WITHIN => Intake {
            problems: vec![NO_DIALOG.to_owned()],
            ..Intake::default()
        },
        None => Intake::default(),
    }
}
