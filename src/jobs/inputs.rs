//! Turning what the user gave (paths, folders, URLs) into job inputs, shared
//! by the CLI and the window so both accept and refuse the same things.

use std::path::{Path, PathBuf};

use url::Url;

use crate::imaging::decode;
use crate::jobs::job::{InputKind, JobInput, MediaKind, media_kind_of_name};
use crate::jobs::output::PARTIAL_PREFIX;
use crate::providers::{ProviderInfo, refusal};

/// A file found in a folder that will not be processed, and why; listed to
/// the user once instead of being dropped silently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The file.
    pub path: PathBuf,
    /// Why it is skipped.
    pub reason: String,
}

/// An input that cannot be used at all. The input comes last.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// Looks like a web address but does not parse.
    #[error("not a valid URL ({reason}): {raw}")]
    BadUrl {
        /// Why it does not parse.
        reason: String,
        /// What was given.
        raw: String,
    },
    /// A scheme other than http(s), such as `file:` or `ftp:`.
    #[error("only http(s) URLs are supported, not `{scheme}:`: {raw}")]
    UnsupportedScheme {
        /// The scheme.
        scheme: String,
        /// What was given.
        raw: String,
    },
    /// A path that does not exist or cannot be read.
    #[error("cannot open the input ({source}): {raw}")]
    Unreadable {
        /// Why.
        source: std::io::Error,
        /// What was given.
        raw: String,
    },
    /// A folder that could not be searched to the end.
    #[error("cannot read the folder ({message}): {path}")]
    Folder {
        /// Why.
        message: String,
        /// The folder.
        path: PathBuf,
    },
}

/// Reads `raw` as a web address if it is one: `None` for anything that is
/// not (a path), an error for a URL Cutout will not use.
pub fn parse_url(raw: &str) -> Option<Result<Url, InputError>> {
    let raw = raw.trim();
    let lower = raw.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        return Some(Url::parse(raw).map_err(|e| InputError::BadUrl {
            reason: e.to_string(),
            raw: raw.to_owned(),
        }));
    }
    let (scheme, _) = raw.split_once(':')?;
    let looks_like_scheme = scheme.len() > 1
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    (looks_like_scheme && !Path::new(raw).exists()).then(|| {
        Err(InputError::UnsupportedScheme {
            scheme: scheme.to_owned(),
            raw: raw.to_owned(),
        })
    })
}

/// Turns one thing the user gave into inputs: a URL, a file, or every image
/// or video under a folder (hidden files, unfinished `.cutout-partial-*`
/// files and `skip_dir`, the output folder, left out). With `only_for`, a
/// folder's files that provider cannot take are skipped with the reason;
/// without it (the window, where the provider may still change) they are
/// kept and the engine flags them.
pub fn expand(
    raw: &str,
    only_for: Option<&ProviderInfo>,
    skip_dir: Option<&Path>,
    skipped: &mut Vec<Skipped>,
) -> Result<Vec<JobInput>, InputError> {
    if let Some(url) = parse_url(raw) {
        return Ok(vec![JobInput::Url(url?)]);
    }
    let unreadable = |source| InputError::Unreadable {
        source,
        raw: raw.to_owned(),
    };
    let path = std::path::absolute(raw).map_err(unreadable)?;
    let metadata = std::fs::metadata(&path).map_err(unreadable)?;
    if !metadata.is_dir() {
        return Ok(vec![JobInput::File { path, root: None }]);
    }
    let mut found = Vec::new();
    let walker = walkdir::WalkDir::new(&path)
        .follow_links(true)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|entry| {
            let hidden = entry.depth() > 0 && entry.file_name().to_string_lossy().starts_with('.');
            !hidden && Some(entry.path()) != skip_dir
        });
    for entry in walker {
        let entry = entry.map_err(|e| InputError::Folder {
            message: e.to_string(),
            path: path.clone(),
        })?;
        if !entry.file_type().is_file() {
            continue;
        }
        let name = entry.file_name().to_string_lossy();
        if name.starts_with(PARTIAL_PREFIX) {
            continue;
        }
        let kind = match media_kind_of_name(&name) {
            Some(MediaKind::Image) => {
                if let Some(reason) = not_a_picture(entry.path()) {
                    skipped.push(Skipped {
                        path: entry.into_path(),
                        reason,
                    });
                    continue;
                }
                InputKind::ImageFile
            }
            Some(MediaKind::Video) => InputKind::VideoFile,
            None => {
                let reason = "not an image or video".to_owned();
                skipped.push(Skipped {
                    path: entry.into_path(),
                    reason,
                });
                continue;
            }
        };
        if let Some(reason) = only_for.and_then(|info| refusal(info, kind)) {
            skipped.push(Skipped {
                path: entry.into_path(),
                reason,
            });
            continue;
        }
        found.push(JobInput::File {
            path: entry.into_path(),
            root: Some(path.clone()),
        });
    }
    Ok(found)
}

/// Why a file named like an image is not one, judged by its first bytes:
/// an empty file, or content in no picture format (a PDF renamed `.jpg`, a
/// web page saved as `.png`). `None` when it looks like a picture, or when
/// it cannot be read here (its job then says why).
fn not_a_picture(path: &Path) -> Option<String> {
    use std::io::Read;
    let mut head = Vec::with_capacity(64);
    let file = std::fs::File::open(path).ok()?;
    file.take(64).read_to_end(&mut head).ok()?;
    if head.is_empty() {
        return Some("an empty file (0 bytes)".to_owned());
    }
    match decode::sniff(&head) {
        Some(_) => None,
        None => Some("not an image: its content is in no picture format Cutout knows".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::ProviderId;

    /// A tiny real PNG: folder scans look at the content of image files.
    fn picture_bytes() -> Vec<u8> {
        let mut png = std::io::Cursor::new(Vec::new());
        image::RgbImage::from_pixel(2, 2, image::Rgb([1, 2, 3]))
            .write_to(&mut png, image::ImageFormat::Png)
            .unwrap();
        png.into_inner()
    }

    #[test]
    fn files_named_like_images_that_hold_no_picture_are_skipped_and_listed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("real.jpg"), picture_bytes()).unwrap();
        std::fs::write(dir.path().join("empty.png"), b"").unwrap();
        std::fs::write(dir.path().join("invoice.jpg"), b"%PDF-1.7 an invoice").unwrap();
        std::fs::write(dir.path().join("page.png"), b"<!doctype html><html>").unwrap();
        let mut skipped = Vec::new();
        let found = expand(dir.path().to_str().unwrap(), None, None, &mut skipped).unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        let mut reasons: Vec<_> = skipped
            .iter()
            .map(|s| {
                let name = s.path.file_name().unwrap().to_string_lossy().into_owned();
                (name, s.reason.clone())
            })
            .collect();
        reasons.sort();
        assert_eq!(
            reasons,
            [
                ("empty.png".to_owned(), "an empty file (0 bytes)".to_owned()),
                (
                    "invoice.jpg".to_owned(),
                    "not an image: its content is in no picture format Cutout knows".to_owned()
                ),
                (
                    "page.png".to_owned(),
                    "not an image: its content is in no picture format Cutout knows".to_owned()
                ),
            ]
        );
    }

    #[test]
    fn only_http_urls_are_taken_and_other_schemes_are_refused() {
        let mut skipped = Vec::new();
        let info = ProviderId::Removebg.info();
        let out = Some(Path::new("/out"));
        let err = expand("ftp://host/a.png", Some(info), out, &mut skipped).unwrap_err();
        assert!(err.to_string().contains("only http(s)"), "{err}");
        let err = expand("file:///etc/passwd", Some(info), out, &mut skipped).unwrap_err();
        assert!(err.to_string().contains("only http(s)"), "{err}");
        assert!(parse_url("photos/a.png").is_none());
        assert!(matches!(parse_url(" https://x.test/a.png "), Some(Ok(_))));
    }

    #[test]
    fn a_folder_scan_skips_non_images_hidden_files_and_the_output_folder() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("shots");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::create_dir_all(root.join("cutout-output")).unwrap();
        for name in [
            "a.jpg",
            "sub/b.PNG",
            "notes.pdf",
            ".hidden.png",
            "cutout-output/a.png",
            "clip.mp4",
        ] {
            std::fs::write(root.join(name), picture_bytes()).unwrap();
        }
        let mut skipped = Vec::new();
        let info = ProviderId::Removebg.info();
        let out = root.join("cutout-output");
        let found = expand(root.to_str().unwrap(), Some(info), Some(&out), &mut skipped).unwrap();
        let names: Vec<_> = found
            .iter()
            .map(|i| match i {
                JobInput::File { path, .. } => {
                    path.strip_prefix(&root).unwrap().display().to_string()
                }
                JobInput::Url(_) => unreachable!(),
            })
            .collect();
        assert_eq!(names, ["a.jpg", "sub/b.PNG"]);
        let reasons: Vec<_> = skipped
            .iter()
            .map(|s| {
                let name = s.path.file_name().unwrap().to_string_lossy();
                (name.into_owned(), s.reason.clone())
            })
            .collect();
        assert_eq!(reasons.len(), 2, "{reasons:?}");
        assert!(
            reasons
                .iter()
                .any(|(n, r)| n == "clip.mp4" && r.contains("removebgvideo")),
            "{reasons:?}"
        );
        assert!(reasons.iter().any(|(n, _)| n == "notes.pdf"));
    }

    #[test]
    fn without_a_provider_a_folder_keeps_every_image_and_video() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["a.jpg", "clip.mp4", "readme.txt"] {
            std::fs::write(dir.path().join(name), picture_bytes()).unwrap();
        }
        let mut skipped = Vec::new();
        let found = expand(dir.path().to_str().unwrap(), None, None, &mut skipped).unwrap();
        assert_eq!(found.len(), 2);
        assert_eq!(skipped.len(), 1);
    }
}
