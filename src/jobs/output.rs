//! Where results go and how they get there: names from the input, the dropped
//! folder's tree kept, and every file written to a temporary name in the
//! target folder then moved into place without replacing anything. A crash
//! leaves at most a `.cutout-partial-*` file, never a half-written result or a
//! lost one.

use std::io;
use std::path::{Component, Path, PathBuf};

use tempfile::NamedTempFile;

use crate::jobs::job::JobInput;

/// The prefix of in-progress files, so they are easy to recognise and sweep.
pub const PARTIAL_PREFIX: &str = ".cutout-partial-";

/// The folder a job's outputs go in: `out_dir`, plus, for a file found in a
/// dropped folder, that folder's name and the file's sub-folders
/// (`shots/a/b.jpg` dropped as `shots` → `<out>/shots/a/`).
pub fn output_dir_for(out_dir: &Path, input: &JobInput) -> PathBuf {
    let JobInput::File {
        path,
        root: Some(root),
    } = input
    else {
        return out_dir.to_owned();
    };
    let mut dir = out_dir.to_owned();
    if let Some(name) = root.file_name() {
        dir.push(name);
    }
    if let Some(parent) = path.parent().and_then(|p| p.strip_prefix(root).ok()) {
        // Only plain names: a `..` could climb out of the output folder.
        for part in parent.components() {
            if let Component::Normal(name) = part {
                dir.push(name);
            }
        }
    }
    dir
}

/// The part of a temporary file's name that says which run wrote it:
/// `.cutout-partial-s42-…` for history session 42.
pub fn partial_owner_tag(session: u64) -> String {
    format!("s{session}-")
}

/// Deletes the temporary files that the run tagged `owner` left in `dir`
/// (a run that was killed cannot clean up after itself). Files of other runs,
/// which may still be writing, are left alone. Returns how many were removed.
pub fn sweep_partials(dir: &Path, owner: &str) -> io::Result<usize> {
    let prefix = format!("{PARTIAL_PREFIX}{owner}");
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry?;
        let is_ours = entry
            .file_name()
            .to_str()
            .is_some_and(|name| name.starts_with(&prefix));
        if is_ours && entry.file_type()?.is_file() {
            std::fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// The file name for attempt `n` (0 = the plain name): `stem.ext`,
/// `stem.variation.ext`, then `stem (1).ext`, `stem (2).ext`…
pub fn candidate_name(stem: &str, variation: Option<&str>, extension: &str, n: u32) -> String {
    let numbered = if n == 0 {
        stem.to_owned()
    } else {
        format!("{stem} ({n})")
    };
    match variation {
        Some(variation) => format!("{numbered}.{variation}.{extension}"),
        None => format!("{numbered}.{extension}"),
    }
}

/// A result being written: a temporary file in the target folder, removed if
/// dropped before [`commit`](PendingOutput::commit).
#[derive(Debug)]
pub struct PendingOutput {
    file: NamedTempFile,
    dir: PathBuf,
}

impl PendingOutput {
    /// Creates the target folder (and parents) and a temporary file in it, so
    /// the final rename stays on one file system and is atomic. `owner` (the
    /// history session's [`partial_owner_tag`], or empty) goes into the name,
    /// so a later run can sweep exactly the files a killed run left behind.
    pub fn create(dir: &Path, owner: &str) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let mut builder = tempfile::Builder::new();
        let prefix = format!("{PARTIAL_PREFIX}{owner}");
        builder.prefix(&prefix);
        // Temporary files are private (0600) by default; results are the
        // user's ordinary files, so they get the usual mode the umask allows.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            builder.permissions(std::fs::Permissions::from_mode(0o666));
        }
        let file = builder.tempfile_in(dir)?;
        Ok(PendingOutput {
            file,
            dir: dir.to_owned(),
        })
    }

    /// The temporary file's path, for writing.
    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// A second handle to the temporary file, for writing asynchronously.
    pub fn reopen(&self) -> io::Result<std::fs::File> {
        self.file.reopen()
    }

    /// Moves the file (which the writer has synced) to the first free name, never
    /// replacing an existing file (the check and the move are one atomic
    /// step, so two jobs racing for `a.png` get `a.png` and `a (1).png`).
    pub fn commit(
        self,
        stem: &str,
        variation: Option<&str>,
        extension: &str,
    ) -> io::Result<PathBuf> {
        let mut file = self.file;
        for n in 0..10_000 {
            let target = self.dir.join(candidate_name(stem, variation, extension, n));
            match file.persist_noclobber(&target) {
                Ok(_) => return Ok(target),
                Err(e) if e.error.kind() == io::ErrorKind::AlreadyExists => file = e.file,
                Err(e) => return Err(e.error),
            }
        }
        Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("10,000 files named {stem} already exist"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_are_named_after_the_input_and_variation() {
        assert_eq!(candidate_name("shoe", None, "png", 0), "shoe.png");
        assert_eq!(
            candidate_name("shoe", Some("shadowTop"), "png", 0),
            "shoe.shadowTop.png"
        );
        assert_eq!(candidate_name("shoe", None, "webm", 2), "shoe (2).webm");
        assert_eq!(
            candidate_name("shoe", Some("compose"), "jpg", 1),
            "shoe (1).compose.jpg"
        );
    }

    #[test]
    fn a_dropped_folders_tree_is_kept_beneath_the_output_folder() {
        let input = JobInput::File {
            path: "/photos/summer/shoes/red.jpg".into(),
            root: Some("/photos/summer".into()),
        };
        assert_eq!(
            output_dir_for(Path::new("/out"), &input),
            Path::new("/out/summer/shoes")
        );
        let single = JobInput::File {
            path: "/photos/red.jpg".into(),
            root: None,
        };
        assert_eq!(
            output_dir_for(Path::new("/out"), &single),
            Path::new("/out")
        );
    }

    #[test]
    fn an_existing_file_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.png"), b"precious").unwrap();
        let first = PendingOutput::create(dir.path(), "").unwrap();
        std::fs::write(first.path(), b"new").unwrap();
        let written = first.commit("a", None, "png").unwrap();
        assert_eq!(written, dir.path().join("a (1).png"));
        assert_eq!(
            std::fs::read(dir.path().join("a.png")).unwrap(),
            b"precious"
        );
        assert_eq!(std::fs::read(&written).unwrap(), b"new");
    }

    #[cfg(unix)]
    #[test]
    fn results_are_ordinary_files_readable_by_others_not_private_temp_files() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let pending = PendingOutput::create(dir.path(), "").unwrap();
        let written = pending.commit("a", None, "png").unwrap();
        let mode = std::fs::metadata(written).unwrap().permissions().mode();
        assert_eq!(mode & 0o044, 0o044, "{mode:o}");
    }

    #[test]
    fn a_sweep_removes_only_the_partial_files_of_the_named_run() {
        let dir = tempfile::tempdir().unwrap();
        let dead = PendingOutput::create(dir.path(), &partial_owner_tag(7)).unwrap();
        let alive = PendingOutput::create(dir.path(), &partial_owner_tag(71)).unwrap();
        std::fs::write(dir.path().join("s7-result.png"), b"a result").unwrap();
        let dead_path = dead.path().to_owned();
        // A killed run never drops its files: forget instead of deleting.
        std::mem::forget(dead);
        assert!(dead_path.exists());
        assert_eq!(
            sweep_partials(dir.path(), &partial_owner_tag(7)).unwrap(),
            1
        );
        assert!(!dead_path.exists());
        assert!(alive.path().exists());
        assert!(dir.path().join("s7-result.png").exists());
        assert_eq!(sweep_partials(&dir.path().join("gone"), "s1-").unwrap(), 0);
    }

    #[test]
    fn a_dropped_pending_output_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let pending = PendingOutput::create(&dir.path().join("nested"), "").unwrap();
        std::fs::write(pending.path(), b"half").unwrap();
        drop(pending);
        let left: Vec<_> = std::fs::read_dir(dir.path().join("nested"))
            .unwrap()
            .collect();
        assert!(left.is_empty());
    }
}
