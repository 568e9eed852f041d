//! `cutout runtime install` (and the app's *Install* button): fetches
//! Microsoft's official ONNX Runtime build for this platform and puts its
//! shared library in Cutout's data directory, where the loader looks.
//!
//! Microsoft publishes the library inside the `onnxruntime` wheel on PyPI;
//! a wheel is a zip, so Cutout downloads the wheel for this platform
//! (checked against a SHA-256 pinned here, so a changed or tampered file is
//! refused even from a mirror), extracts the library with its licence
//! notices, and deletes the wheel.

use std::io::Read;
use std::path::{Path, PathBuf};

use tokio_util::sync::CancellationToken;
use url::Url;

use super::LocalError;
use super::download::{Digest, DownloadProgress, DownloadRequest, Downloader};
use super::runtime::runtime_dir;
use crate::providers::http::endpoint_url;

/// The ONNX Runtime version Cutout installs and is tested with.
pub const ORT_VERSION: &str = "1.32.0";

/// Where PyPI serves the wheels; each build's path below it is pinned.
pub const DEFAULT_RUNTIME_URL: &str = "https://files.pythonhosted.org/packages/";

/// Overrides [`DEFAULT_RUNTIME_URL`] (a mirror, or a test's fake); the
/// pinned digests still apply.
pub const RUNTIME_URL_VAR: &str = "CUTOUT_RUNTIME_URL";

/// What an offline user can do instead of installing.
const OFFLINE_HINT: &str = "download ONNX Runtime yourself and set ORT_DYLIB_PATH to its library \
                            (or put it beside the cutout executable); until then the built-in \
                            engine is used";

/// The licence texts shipped with the library, copied beside it.
const NOTICE_MEMBERS: [&str; 2] = ["onnxruntime/LICENSE", "onnxruntime/ThirdPartyNotices.txt"];

/// One official build: Microsoft's wheel for a platform, its digest and
/// where the library sits inside it.
struct PinnedBuild {
    os: &'static str,
    arch: &'static str,
    /// The wheel's path below [`DEFAULT_RUNTIME_URL`], as PyPI's index
    /// gives it (the folders are derived from the file's digest).
    wheel: &'static str,
    sha256: &'static str,
    library_member: &'static str,
}

/// The official builds: digests measured with `pip download
/// onnxruntime==1.32.0` for each platform, paths from PyPI's index
/// (`https://pypi.org/simple/onnxruntime/`).
const OFFICIAL_BUILDS: [PinnedBuild; 4] = [
    PinnedBuild {
        os: "linux",
        arch: "x86_64",
        wheel: "1d/46/e6f356c9539d2eed44126de3421a81e217da2ad91b22dc11b379cb1e384f/onnxruntime-1.32.0-cp311-cp311-manylinux_2_28_x86_64.whl",
        sha256: "5a34fc4dfeb5a7b4a74c95dcba1e773d722abda720b474edf1b0c419dc6d163d",
        library_member: "onnxruntime/capi/libonnxruntime.so.1.32.0",
    },
    PinnedBuild {
        os: "linux",
        arch: "aarch64",
        wheel: "b7/30/103820b32e9dc1d1fcfc5b519fd2de5bd699d25a25895caf5d726350d1b5/onnxruntime-1.32.0-cp311-cp311-manylinux_2_28_aarch64.whl",
        sha256: "2303372a85299b6757b0e11e1cbf13e410ddf7e10c37f4b37e99d1c90e7daf7c",
        library_member: "onnxruntime/capi/libonnxruntime.so.1.32.0",
    },
    PinnedBuild {
        os: "windows",
        arch: "x86_64",
        wheel: "07/ff/c797464da311c580ec477077a5c65d7841599a46c35392b5978c0a5ae9a4/onnxruntime-1.32.0-cp311-cp311-win_amd64.whl",
        sha256: "d7e0c45cc5f456ad7805e6dd256a7662736cda9c2fd17becae194eb3c2f6df72",
        library_member: "onnxruntime/capi/onnxruntime.dll",
    },
    PinnedBuild {
        os: "macos",
        arch: "aarch64",
        wheel: "b7/5d/50be370b540a6cb9ea173503f5418e8315dfe5757400ad7720542d348b94/onnxruntime-1.32.0-cp311-cp311-macosx_14_0_arm64.whl",
        sha256: "366b9e53d07812cc5c92822cecf7563b76a8a0f32ba3bb8dd232a206ac3bcb6c",
        library_member: "onnxruntime/capi/libonnxruntime.1.32.0.dylib",
    },
];

/// What to install: an archive, its pinned digest, and which of its
/// members to extract. [`RuntimeRelease::official`] gives the one for this
/// platform; tests build their own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeRelease {
    /// The version, for messages.
    pub version: String,
    /// The archive (a wheel, which is a zip).
    pub url: Url,
    /// Its SHA-256, hex; anything else is refused.
    pub sha256: String,
    /// The shared library's path inside the archive; it is installed under
    /// its own file name.
    pub library_member: String,
    /// Licence files copied beside the library when the archive has them.
    pub notice_members: Vec<String>,
}

impl RuntimeRelease {
    /// Microsoft's build for the platform Cutout runs on, fetched from
    /// `base_url` (normally [`DEFAULT_RUNTIME_URL`]). A platform without an
    /// official build is a [`LocalError::Runtime`] saying the built-in
    /// engine is used.
    pub fn official(base_url: &Url) -> Result<RuntimeRelease, LocalError> {
        let os = std::env::consts::OS;
        let arch = std::env::consts::ARCH;
        if cfg!(target_env = "musl") {
            return Err(no_official_build("linux-musl", arch));
        }
        RuntimeRelease::for_platform(os, arch, base_url)
    }

    /// The official build for `os`/`arch` (as [`std::env::consts`] names
    /// them).
    pub fn for_platform(
        os: &str,
        arch: &str,
        base_url: &Url,
    ) -> Result<RuntimeRelease, LocalError> {
        let build = OFFICIAL_BUILDS
            .iter()
            .find(|build| build.os == os && build.arch == arch)
            .ok_or_else(|| no_official_build(os, arch))?;
        Ok(RuntimeRelease {
            version: ORT_VERSION.to_owned(),
            url: endpoint_url(base_url, build.wheel),
            sha256: build.sha256.to_owned(),
            library_member: build.library_member.to_owned(),
            notice_members: NOTICE_MEMBERS.iter().map(|m| (*m).to_owned()).collect(),
        })
    }

    /// The library's file name once installed (`libonnxruntime.so.1.32.0`).
    pub fn library_file_name(&self) -> &str {
        member_file_name(&self.library_member)
    }

    fn archive_file_name(&self) -> String {
        self.url
            .path_segments()
            .and_then(|mut segments| segments.next_back())
            .filter(|name| !name.is_empty())
            .unwrap_or("onnxruntime.zip")
            .to_owned()
    }
}

fn no_official_build(os: &str, arch: &str) -> LocalError {
    LocalError::Runtime(format!(
        "Microsoft publishes no official build for {os}/{arch}; the built-in engine is used \
         (slower), or build ONNX Runtime {ORT_VERSION} yourself and set ORT_DYLIB_PATH to it"
    ))
}

fn member_file_name(member: &str) -> &str {
    member.rsplit('/').next().unwrap_or(member)
}

/// The runtime once installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledRuntime {
    /// The shared library.
    pub library: PathBuf,
    /// Its version.
    pub version: String,
    /// The library's size.
    pub size_bytes: u64,
}

/// Downloads `release` (resuming an interrupted attempt), checks its pinned
/// digest, and extracts the library and its notices into
/// [`runtime_dir`]`(data_dir)`, each written to a temporary file and renamed
/// into place, so a library already there is replaced whole or not at all.
/// The archive is deleted afterwards.
pub async fn install(
    downloader: &Downloader,
    release: &RuntimeRelease,
    data_dir: &Path,
    progress: &(dyn Fn(DownloadProgress) + Send + Sync),
    cancel: &CancellationToken,
) -> Result<InstalledRuntime, LocalError> {
    let dir = runtime_dir(data_dir);
    let archive = dir.join(release.archive_file_name());
    let request = DownloadRequest {
        url: &release.url,
        dest: &archive,
        digest: Digest::Sha256(release.sha256.clone()),
        offline_hint: OFFLINE_HINT,
    };
    downloader.download(&request, progress, cancel).await?;

    let owned_release = release.clone();
    let owned_dir = dir.clone();
    let owned_archive = archive.clone();
    let extracted =
        tokio::task::spawn_blocking(move || extract(&owned_archive, &owned_release, &owned_dir))
            .await
            .map_err(|e| LocalError::Runtime(format!("the installation stopped: {e}")))
            .and_then(|outcome| outcome);
    let _ = tokio::fs::remove_file(&archive).await;
    let library = extracted?;
    let size_bytes = std::fs::metadata(&library).map(|m| m.len()).unwrap_or(0);
    Ok(InstalledRuntime {
        library,
        version: release.version.clone(),
        size_bytes,
    })
}

/// Extracts the library (required) and the notices (when present) from the
/// zip at `archive` into `dir`; returns the library's path.
fn extract(archive: &Path, release: &RuntimeRelease, dir: &Path) -> Result<PathBuf, LocalError> {
    let open_error = |reason: String| {
        LocalError::Runtime(format!(
            "the downloaded archive cannot be opened ({reason}); run the installation again: {}",
            archive.display()
        ))
    };
    let file = std::fs::File::open(archive).map_err(|e| open_error(e.to_string()))?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| open_error(e.to_string()))?;
    let library =
        extract_member(&mut zip, &release.library_member, dir, archive)?.ok_or_else(|| {
            LocalError::Runtime(format!(
                "the archive has no {}; it is not the build Cutout expects: {}",
                release.library_member, release.url
            ))
        })?;
    for notice in &release.notice_members {
        if extract_member(&mut zip, notice, dir, archive)?.is_none() {
            tracing::warn!("the ONNX Runtime archive has no {notice}");
        }
    }
    Ok(library)
}

/// Copies one member into `dir` under its file name, through a temporary
/// file in `dir`; `None` when the archive has no such member.
fn extract_member(
    zip: &mut zip::ZipArchive<std::fs::File>,
    member: &str,
    dir: &Path,
    archive: &Path,
) -> Result<Option<PathBuf>, LocalError> {
    let mut entry = match zip.by_name(member) {
        Ok(entry) => entry,
        Err(zip::result::ZipError::FileNotFound) => return Ok(None),
        Err(e) => {
            return Err(LocalError::Runtime(format!(
                "cannot read {member} from the archive ({e}); run the installation again: {}",
                archive.display()
            )));
        }
    };
    let target = dir.join(member_file_name(member));
    let write_error = |source: std::io::Error| LocalError::Io {
        action: "cannot install the ONNX Runtime file",
        source,
        path: target.clone(),
    };
    let mut temp = tempfile::Builder::new()
        .prefix(".install-")
        .tempfile_in(dir)
        .map_err(write_error)?;
    // Reading to the end checks the member's CRC, so a damaged member fails
    // here rather than at load time.
    let mut buffer = Vec::new();
    entry.read_to_end(&mut buffer).map_err(|e| {
        LocalError::Runtime(format!(
            "{member} in the archive is damaged ({e}); run the installation again: {}",
            archive.display()
        ))
    })?;
    std::io::Write::write_all(temp.as_file_mut(), &buffer).map_err(write_error)?;
    temp.as_file().sync_all().map_err(write_error)?;
    temp.persist(&target).map_err(|e| LocalError::Io {
        action: "cannot put the ONNX Runtime file in place (is Cutout still using the old one? \
                 close other Cutout windows and try again)",
        source: e.error,
        path: target.clone(),
    })?;
    Ok(Some(target))
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use zip::write::SimpleFileOptions;

    use super::*;
    use crate::local::download::tests::{FakeFiles, quick_downloader, sha256_of};

    /// A small wheel-shaped zip holding a "library" and the licence.
    fn wheel(library: &[u8]) -> Vec<u8> {
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let options =
            SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        zip.start_file("onnxruntime/__init__.py", options).unwrap();
        zip.write_all(b"# python").unwrap();
        zip.start_file("onnxruntime/capi/libonnxruntime.so.1.32.0", options)
            .unwrap();
        zip.write_all(library).unwrap();
        zip.start_file("onnxruntime/LICENSE", options).unwrap();
        zip.write_all(b"MIT License").unwrap();
        zip.finish().unwrap().into_inner()
    }

    fn release(url: Url, sha256: String) -> RuntimeRelease {
        RuntimeRelease {
            version: ORT_VERSION.to_owned(),
            url,
            sha256,
            library_member: "onnxruntime/capi/libonnxruntime.so.1.32.0".to_owned(),
            notice_members: NOTICE_MEMBERS.iter().map(|m| (*m).to_owned()).collect(),
        }
    }

    #[tokio::test]
    async fn the_library_and_its_licence_are_extracted_and_the_archive_deleted() {
        let fake = FakeFiles::start().await;
        let library = b"\x7fELF pretend shared library".repeat(100);
        let archive = wheel(&library);
        let url = fake.publish("onnxruntime.whl", archive.clone());
        let data = tempfile::tempdir().unwrap();
        let Digest::Sha256(sha256) = sha256_of(&archive) else {
            unreachable!()
        };

        let installed = install(
            &quick_downloader(),
            &release(url, sha256),
            data.path(),
            &|_| {},
            &CancellationToken::new(),
        )
        .await
        .unwrap();

        let dir = runtime_dir(data.path());
        assert_eq!(installed.library, dir.join("libonnxruntime.so.1.32.0"));
        assert_eq!(std::fs::read(&installed.library).unwrap(), library);
        assert_eq!(installed.size_bytes, library.len() as u64);
        assert_eq!(std::fs::read(dir.join("LICENSE")).unwrap(), b"MIT License");
        let mut left: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|name| !name.starts_with('.'))
            .collect();
        left.sort();
        assert_eq!(left, ["LICENSE", "libonnxruntime.so.1.32.0"]);
    }

    #[tokio::test]
    async fn an_archive_that_is_not_the_pinned_one_is_refused_and_nothing_installed() {
        let fake = FakeFiles::start().await;
        let url = fake.publish("onnxruntime.whl", wheel(b"tampered"));
        let data = tempfile::tempdir().unwrap();
        let Digest::Sha256(pinned) = sha256_of(&wheel(b"the real one")) else {
            unreachable!()
        };

        let error = install(
            &quick_downloader(),
            &release(url, pinned),
            data.path(),
            &|_| {},
            &CancellationToken::new(),
        )
        .await
        .unwrap_err();

        assert!(matches!(
            error,
            LocalError::ChecksumMismatch {
                algorithm: "SHA-256",
                ..
            }
        ));
        assert!(
            !runtime_dir(data.path())
                .join("libonnxruntime.so.1.32.0")
                .exists()
        );
    }

    #[tokio::test]
    async fn an_archive_without_the_library_says_so() {
        let fake = FakeFiles::start().await;
        let archive = wheel(b"lib");
        let url = fake.publish("onnxruntime.whl", archive.clone());
        let data = tempfile::tempdir().unwrap();
        let Digest::Sha256(sha256) = sha256_of(&archive) else {
            unreachable!()
        };
        let mut wrong = release(url, sha256);
        wrong.library_member = "onnxruntime/capi/onnxruntime.dll".to_owned();

        let error = install(
            &quick_downloader(),
            &wrong,
            data.path(),
            &|_| {},
            &CancellationToken::new(),
        )
        .await
        .unwrap_err()
        .to_string();

        assert!(
            error.contains("has no onnxruntime/capi/onnxruntime.dll"),
            "{error}"
        );
    }

    #[test]
    fn every_supported_platform_has_a_pinned_build_and_others_are_told_why_not() {
        let base = Url::parse(DEFAULT_RUNTIME_URL).unwrap();
        for (os, arch, file) in [
            ("linux", "x86_64", "libonnxruntime.so.1.32.0"),
            ("linux", "aarch64", "libonnxruntime.so.1.32.0"),
            ("windows", "x86_64", "onnxruntime.dll"),
            ("macos", "aarch64", "libonnxruntime.1.32.0.dylib"),
        ] {
            let release = RuntimeRelease::for_platform(os, arch, &base).unwrap();
            assert_eq!(release.library_file_name(), file);
            assert_eq!(release.sha256.len(), 64);
            assert!(
                release
                    .url
                    .as_str()
                    .starts_with("https://files.pythonhosted.org/packages/"),
                "{}",
                release.url
            );
            assert!(
                release.url.as_str().contains("/onnxruntime-1.32.0-cp311-"),
                "{}",
                release.url
            );
        }
        let error = RuntimeRelease::for_platform("freebsd", "x86_64", &base)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("no official build for freebsd/x86_64"),
            "{error}"
        );
        assert!(error.contains("built-in engine"), "{error}");
    }
}
