//! Result files: telling variations and moving pictures apart by their
//! names, and the actions on them that touch the disk or the desktop (save a
//! copy, open a folder or a player). Actions run on their own threads, so a
//! slow disk or a file dialog never holds up the window.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Instant;

use crate::imaging::{Background, OutputFormat, finish_image};
use crate::jobs::job::JobId;

/// Extensions of results that are not still images: videos, animated GIFs
/// and zipped frame sequences. They go to the system player instead of the
/// canvas.
pub const MOVING_EXTENSIONS: &[&str] = &["webm", "mov", "mp4", "gif", "zip", "avi", "mkv", "m4v"];

/// What to say when "Save as…" cannot show a dialog.
pub const NO_SAVE_DIALOG: &str = "No file dialog is available on this desktop (the XDG desktop \
                                  portal is not running). Use “Open output folder” and copy the \
                                  file from there instead.";

/// Whether a result is played rather than shown on the canvas.
pub fn is_moving_picture(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| MOVING_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// The variation a result file holds, from its name: the engine writes
/// several results as `<stem>.<variation>.<ext>` (or `<stem> (1).<variation>.<ext>`
/// when the plain name was taken).
pub fn variation_of(stem: &str, path: &Path) -> Option<String> {
    let name = path.file_stem()?.to_str()?;
    let rest = name.strip_prefix(stem).unwrap_or(name);
    // Skip a " (n)" that made the name unique.
    let rest = match rest.strip_prefix(" (") {
        Some(numbered) => match numbered.split_once(')') {
            Some((n, after)) if n.chars().all(|c| c.is_ascii_digit()) => after,
            _ => rest,
        },
        None => rest,
    };
    let variation = match rest.strip_prefix('.') {
        Some(variation) => variation,
        // Not named after this stem (renamed by hand?): the last dotted part.
        None if rest == name => name.rsplit_once('.')?.1,
        None => return None,
    };
    (!variation.is_empty()).then(|| variation.to_owned())
}

/// The tab label of a job's `index`th result: its variation in words
/// ("shadowTop" → "Shadow top"), else "Result 2".
pub fn tab_label(stem: &str, path: &Path, index: usize) -> String {
    variation_of(stem, path)
        .map(|v| humanize(&v))
        .unwrap_or_else(|| format!("Result {}", index + 1))
}

/// A provider's identifier as words: `shadowTop`, `shadow_top` and
/// `shadow-top` all read "Shadow top"; all-capital words ("HD") stay.
pub fn humanize(name: &str) -> String {
    let mut words: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut previous_lower = false;
    for c in name.chars() {
        if c == '_' || c == '-' || c == ' ' {
            words.push(std::mem::take(&mut current));
            previous_lower = false;
            continue;
        }
        if c.is_uppercase() && previous_lower {
            words.push(std::mem::take(&mut current));
        }
        previous_lower = c.is_lowercase() || c.is_ascii_digit();
        current.push(c);
    }
    words.push(current);
    let words: Vec<String> = words
        .into_iter()
        .filter(|w| !w.is_empty())
        .map(|w| {
            let acronym = w.chars().count() > 1 && w.chars().all(|c| !c.is_lowercase());
            if acronym { w } else { w.to_lowercase() }
        })
        .collect();
    let joined = words.join(" ");
    let mut chars = joined.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => name.to_owned(),
    }
}

/// How "Save as…" turns the chosen name into a file.
#[derive(Debug, Clone, PartialEq)]
pub enum SavePlan {
    /// Copy the bytes. `replace` is set when the dialog confirmed the name
    /// (so an existing file may be replaced); a name Cutout completed itself
    /// never replaces anything.
    Copy {
        /// Where to.
        target: PathBuf,
        /// Whether an existing file there may be replaced.
        replace: bool,
    },
    /// Re-encode a still image: the user typed another image extension
    /// (`shoe.jpg` for a PNG result).
    Convert {
        /// Where to.
        target: PathBuf,
        /// The format the extension asks for.
        format: OutputFormat,
    },
}

/// Decides how to save `source` under the `chosen` name. A name without the
/// result's extension (or with one Cutout cannot convert to) gets the
/// result's extension added, so the file still opens.
pub fn plan_save(source: &Path, chosen: &Path) -> SavePlan {
    let lower = |p: &Path| {
        p.extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
    };
    let (Some(from), to) = (lower(source), lower(chosen)) else {
        return SavePlan::Copy {
            target: chosen.to_owned(),
            replace: true,
        };
    };
    let image_format = |ext: &str| ext.parse::<OutputFormat>().ok();
    match to {
        Some(to)
            if to == from
                || (image_format(&to).is_some() && image_format(&to) == image_format(&from)) =>
        {
            SavePlan::Copy {
                target: chosen.to_owned(),
                replace: true,
            }
        }
        Some(to) if image_format(&from).is_some() && image_format(&to).is_some() => {
            SavePlan::Convert {
                target: chosen.to_owned(),
                format: image_format(&to).unwrap_or_default(),
            }
        }
        _ => {
            let mut name = chosen.as_os_str().to_owned();
            name.push(".");
            name.push(&from);
            SavePlan::Copy {
                target: PathBuf::from(name),
                replace: false,
            }
        }
    }
}

/// Saves a copy of the result at `source` under the `chosen` name, as
/// [`plan_save`] decides. `background` fills transparency when converting to
/// JPEG (white when the output is transparent). Returns where it went, or
/// a sentence for the user ending with the path.
pub fn save_copy(source: &Path, chosen: &Path, background: Background) -> Result<PathBuf, String> {
    let failed =
        |what: &str, e: io::Error, path: &Path| format!("{what} ({e}): {}", path.display());
    match plan_save(source, chosen) {
        SavePlan::Copy { target, replace } => {
            let mut from =
                File::open(source).map_err(|e| failed("Cannot read the result", e, source))?;
            write_atomically(&target, replace, |file| io::copy(&mut from, file).map(drop))
                .map_err(|e| match e.kind() {
                    io::ErrorKind::AlreadyExists => {
                        format!(
                            "Nothing saved: a file of that name already exists: {}",
                            target.display()
                        )
                    }
                    _ => failed("Cannot save the copy", e, &target),
                })?;
            Ok(target)
        }
        SavePlan::Convert { target, format } => {
            let bytes =
                std::fs::read(source).map_err(|e| failed("Cannot read the result", e, source))?;
            let fill = match background {
                Background::Color(_) => background,
                Background::Transparent if format.has_alpha() => Background::Transparent,
                Background::Transparent => Background::Color([255, 255, 255]),
            };
            let converted = finish_image(&bytes, format, fill)
                .map_err(|e| format!("Cannot convert the result: {e}: {}", source.display()))?;
            let encoded = converted.as_deref().unwrap_or(&bytes);
            write_atomically(&target, true, |file| io::Write::write_all(file, encoded))
                .map_err(|e| failed("Cannot save the copy", e, &target))?;
            Ok(target)
        }
    }
}

/// Writes a file whole or not at all: into a temporary file in the target's
/// folder (so the rename stays on one file system), synced, then renamed
/// over the target (or, without `replace`, only if no file has that name).
pub fn write_atomically(
    target: &Path,
    replace: bool,
    fill: impl FnOnce(&mut File) -> io::Result<()>,
) -> io::Result<()> {
    let dir = match target.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut temp = tempfile::Builder::new()
        .prefix(".cutout-save-")
        .suffix(".part")
        .tempfile_in(dir)?;
    fill(temp.as_file_mut())?;
    temp.as_file().sync_all()?;
    make_shareable(temp.as_file())?;
    if replace {
        temp.persist(target).map_err(|e| e.error)?;
    } else {
        temp.persist_noclobber(target).map_err(|e| e.error)?;
    }
    Ok(())
}

/// Temporary files are private to the user; a saved copy should have the
/// usual permissions of a document.
#[cfg(unix)]
fn make_shareable(file: &File) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(std::fs::Permissions::from_mode(0o644))
}

#[cfg(not(unix))]
fn make_shareable(_file: &File) -> io::Result<()> {
    Ok(())
}

/// How a background action ended, for the line under the buttons.
#[derive(Debug, Clone, PartialEq)]
pub enum Report {
    /// It worked: "Saved a copy as …".
    Done(String),
    /// It failed, and why.
    Problem(String),
}

/// One errand's end.
struct Finished {
    job: JobId,
    report: Option<Report>,
    was_save: bool,
}

/// Runs "Save as…" and "Open" on threads and collects how they ended.
pub struct Errands {
    sender: mpsc::Sender<Finished>,
    receiver: mpsc::Receiver<Finished>,
    saving: usize,
}

impl Errands {
    /// No errands yet.
    pub fn new() -> Self {
        let (sender, receiver) = mpsc::channel();
        Errands {
            sender,
            receiver,
            saving: 0,
        }
    }

    /// Whether a "Save as…" dialog or copy is under way.
    pub fn is_saving(&self) -> bool {
        self.saving > 0
    }

    /// Asks where to save a copy of `source` (suggesting its own name and
    /// folder), then writes it there.
    pub fn save_as(
        &mut self,
        ctx: &egui::Context,
        job: JobId,
        source: PathBuf,
        background: Background,
    ) {
        self.spawn(ctx, job, true, move || {
            let mut dialog = rfd::FileDialog::new().set_title("Save a copy of the result");
            if let Some(name) = source.file_name().and_then(|n| n.to_str()) {
                dialog = dialog.set_file_name(name);
            }
            if let Some(dir) = source.parent() {
                dialog = dialog.set_directory(dir);
            }
            let opened = Instant::now();
            match dialog.save_file() {
                Some(chosen) => Some(match save_copy(&source, &chosen, background) {
                    Ok(saved) => Report::Done(format!("Saved a copy as {}", saved.display())),
                    Err(problem) => Report::Problem(problem),
                }),
                None if opened.elapsed() < crate::ui::intake::DIALOG_UNAVAILABLE_WITHIN => {
                    Some(Report::Problem(NO_SAVE_DIALOG.to_owned()))
                }
                None => None,
            }
        });
    }

    /// Hands a file or folder to the desktop (the system video player, the
    /// file manager). The path is made absolute first: output folders are
    /// often relative to where Cutout was started.
    pub fn open(&mut self, ctx: &egui::Context, job: JobId, path: PathBuf) {
        self.spawn(ctx, job, false, move || {
            let path = std::path::absolute(&path).unwrap_or(path);
            let error = open::that(&path).err()?;
            tracing::warn!("cannot open {}: {error}", path.display());
            let what = if path.is_dir() {
                "Cutout could not open your file manager. The folder is"
            } else {
                "No application on this computer offered to open this file. It is"
            };
            Some(Report::Problem(format!("{what}: {}", path.display())))
        });
    }

    /// Reports that arrived since the last call, with their jobs.
    pub fn finished(&mut self) -> Vec<(JobId, Report)> {
        let mut reports = Vec::new();
        for finished in self.receiver.try_iter() {
            if finished.was_save {
                self.saving = self.saving.saturating_sub(1);
            }
            if let Some(report) = finished.report {
                reports.push((finished.job, report));
            }
        }
        reports
    }

    fn spawn(
        &mut self,
        ctx: &egui::Context,
        job: JobId,
        was_save: bool,
        work: impl FnOnce() -> Option<Report> + Send + 'static,
    ) {
        let sender = self.sender.clone();
        let wake = ctx.clone();
        let spawned = std::thread::Builder::new()
            .name("cutout-preview-errand".into())
            .spawn(move || {
                let report = work();
                let _ = sender.send(Finished {
                    job,
                    report,
                    was_save,
                });
                wake.request_repaint();
            });
        match spawned {
            Ok(_) => self.saving += usize::from(was_save),
            Err(e) => {
                let report = Report::Problem(format!("Cutout could not start this action ({e})."));
                let _ = self.sender.send(Finished {
                    job,
                    report: Some(report),
                    was_save: false,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variations_are_read_from_result_names() {
        let v = |name: &str| variation_of("red shoe", Path::new(name));
        assert_eq!(
            v("/out/red shoe.shadowTop.png").as_deref(),
            Some("shadowTop")
        );
        assert_eq!(v("red shoe (2).compose.jpg").as_deref(), Some("compose"));
        assert_eq!(v("red shoe.png"), None);
        assert_eq!(v("red shoe (1).png"), None);
        assert_eq!(v("renamed.final.png").as_deref(), Some("final"));
        assert_eq!(v("renamed.png"), None);
        // A stem with dots of its own.
        let dotted = variation_of("v1.2 mug", Path::new("v1.2 mug.cropped.webp"));
        assert_eq!(dotted.as_deref(), Some("cropped"));
        assert_eq!(variation_of("v1.2 mug", Path::new("v1.2 mug.webp")), None);
    }

    #[test]
    fn tabs_are_labelled_in_words_or_numbered() {
        assert_eq!(
            tab_label("a", Path::new("a.shadowTop.png"), 0),
            "Shadow top"
        );
        assert_eq!(tab_label("a", Path::new("a.compose.png"), 1), "Compose");
        assert_eq!(tab_label("a", Path::new("a (1).png"), 2), "Result 3");
        assert_eq!(humanize("final_url"), "Final url");
        assert_eq!(humanize("shadow-top"), "Shadow top");
        assert_eq!(humanize("HD"), "HD");
        assert_eq!(humanize("cropHD"), "Crop HD");
    }

    #[test]
    fn videos_gifs_and_zipped_frames_are_moving_pictures() {
        for name in ["a.webm", "a.MOV", "b.mp4", "c.gif", "frames.zip"] {
            assert!(is_moving_picture(Path::new(name)), "{name}");
        }
        for name in ["a.png", "a.jpg", "a.webp", "noext"] {
            assert!(!is_moving_picture(Path::new(name)), "{name}");
        }
    }

    #[test]
    fn the_save_plan_keeps_the_chosen_name_and_adds_a_missing_extension() {
        let src = Path::new("/out/shoe.png");
        assert_eq!(
            plan_save(src, Path::new("/d/new.png")),
            SavePlan::Copy {
                target: "/d/new.png".into(),
                replace: true
            }
        );
        assert_eq!(
            plan_save(src, Path::new("/d/new")),
            SavePlan::Copy {
                target: "/d/new.png".into(),
                replace: false
            }
        );
        assert_eq!(
            plan_save(src, Path::new("/d/new.jpeg")),
            SavePlan::Convert {
                target: "/d/new.jpeg".into(),
                format: OutputFormat::Jpg
            }
        );
        assert_eq!(
            plan_save(Path::new("/out/a.jpg"), Path::new("/d/b.JPEG")),
            SavePlan::Copy {
                target: "/d/b.JPEG".into(),
                replace: true
            }
        );
        assert_eq!(
            plan_save(Path::new("/out/clip.webm"), Path::new("/d/clip.mp4")),
            SavePlan::Copy {
                target: "/d/clip.mp4.webm".into(),
                replace: false
            }
        );
    }

    fn leftovers(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".part"))
            .collect()
    }

    #[test]
    fn save_as_copies_the_result_atomically_and_replaces_a_confirmed_file() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("shoe.png");
        std::fs::write(&source, b"result bytes").unwrap();
        let target_dir = dir.path().join("chosen");
        std::fs::create_dir(&target_dir).unwrap();
        let chosen = target_dir.join("copy.png");
        std::fs::write(&chosen, b"old").unwrap();

        let saved = save_copy(&source, &chosen, Background::Transparent).unwrap();
        assert_eq!(saved, chosen);
        assert_eq!(std::fs::read(&chosen).unwrap(), b"result bytes");
        assert!(leftovers(&target_dir).is_empty());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&chosen).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o644);
        }
    }

    #[test]
    fn a_name_cutout_completed_never_replaces_an_existing_file() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("shoe.png");
        std::fs::write(&source, b"new").unwrap();
        let taken = dir.path().join("mine.png");
        std::fs::write(&taken, b"precious").unwrap();
        let problem =
            save_copy(&source, &dir.path().join("mine"), Background::Transparent).unwrap_err();
        assert!(problem.contains("already exists"), "{problem}");
        assert!(problem.ends_with("mine.png"), "path last: {problem}");
        assert_eq!(std::fs::read(&taken).unwrap(), b"precious");
        assert!(leftovers(dir.path()).is_empty());
    }

    #[test]
    fn saving_as_jpeg_flattens_a_transparent_cut_out_onto_white() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("cut.png");
        image::RgbaImage::from_pixel(4, 4, image::Rgba([0, 0, 0, 0]))
            .save(&source)
            .unwrap();
        let saved = save_copy(
            &source,
            &dir.path().join("flat.jpg"),
            Background::Transparent,
        )
        .unwrap();
        let decoded = image::open(&saved).unwrap().into_rgb8();
        assert!(
            decoded.pixels().all(|p| p.0.iter().all(|&c| c > 245)),
            "white"
        );
        assert_eq!(
            image::ImageFormat::from_path(&saved).unwrap(),
            image::ImageFormat::Jpeg
        );
    }

    #[test]
    fn a_missing_result_saves_nothing_and_says_which_file() {
        let dir = tempfile::tempdir().unwrap();
        let gone = dir.path().join("gone.png");
        let problem =
            save_copy(&gone, &dir.path().join("x.png"), Background::Transparent).unwrap_err();
        assert!(problem.starts_with("Cannot read the result"), "{problem}");
        assert!(problem.ends_with("gone.png"), "{problem}");
        assert!(!dir.path().join("x.png").exists());
    }
}
