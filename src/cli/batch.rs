//! `cutout batch`: arguments into a checked plan of jobs, then the engine run
//! with Ctrl-C handling.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::Args;
use url::Url;

use super::report::Report;
use super::{EXIT_ALL_DONE, EXIT_INTERRUPTED, EXIT_SOME_FAILED, UsageError, http_client};
use crate::config::{self, process_env};
use crate::imaging::{Background, OutputFormat};
use crate::jobs::events::OutputSpec;
use crate::jobs::job::{InputKind, JobInput, MediaKind, media_kind_of_name};
use crate::jobs::output::PARTIAL_PREFIX;
use crate::jobs::{Command, Engine, EngineConfig, NewJob};
use crate::providers::{self, ProviderConfig, ProviderId, ProviderInfo, ProviderOptions};
use crate::secrets::Keys;

/// `cutout batch` arguments.
#[derive(Debug, Args)]
pub struct BatchArgs {
    /// Image or video files, folders (searched recursively) or http(s) URLs.
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<String>,
    /// uploadcare | removit | removebgvideo | removebg
    #[arg(short, long, value_name = "ID")]
    pub provider: ProviderId,
    /// One of the provider's models (default: the provider's default).
    #[arg(short, long, value_name = "NAME")]
    pub model: Option<String>,
    /// Output folder; a folder input's tree is kept beneath it.
    #[arg(short, long, value_name = "DIR", default_value = "cutout-output")]
    pub out: PathBuf,
    /// png | webp | jpg (jpg needs --bg).
    #[arg(long, value_name = "F")]
    pub format: Option<OutputFormat>,
    /// transparent | #RRGGBB
    #[arg(long, value_name = "B")]
    pub bg: Option<Background>,
    /// Jobs in flight at once (default: the provider's own limit).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: Option<u16>,
    /// Provider-specific option, repeatable (e.g. mode=clipping, crop=true).
    #[arg(long = "option", value_name = "K=V")]
    pub options: Vec<String>,
    /// Print one JSON object per line for every job event.
    #[arg(long)]
    pub json: bool,
}

/// Everything `batch` needs, checked before anything is sent.
struct BatchPlan {
    provider: ProviderId,
    jobs: Vec<NewJob>,
    skipped: Vec<(PathBuf, String)>,
    out_dir: PathBuf,
}

fn plan_batch(args: &BatchArgs) -> Result<BatchPlan, UsageError> {
    let info = args.provider.info();
    let model = args
        .model
        .clone()
        .unwrap_or_else(|| info.default_model().to_owned());
    info.check_model(&model).map_err(UsageError::new)?;
    let options = parse_options(info, &args.options)?;
    let format = output_format(info, args, &options)?;
    let out_dir = std::path::absolute(&args.out).map_err(|e| {
        UsageError::new(format!(
            "cannot use the output folder ({e}): {}",
            args.out.display()
        ))
    })?;
    let output = OutputSpec {
        dir: out_dir.clone(),
        format,
        background: args.bg.unwrap_or_default(),
    };
    let mut jobs = Vec::new();
    let mut skipped = Vec::new();
    for raw in &args.inputs {
        for input in expand_input(raw, info, &out_dir, &mut skipped)? {
            jobs.push(NewJob {
                input,
                provider: info.id,
                model: model.clone(),
                options: options.clone(),
                output: output.clone(),
            });
        }
    }
    if jobs.is_empty() {
        let what = if info.takes_only_video() {
            "videos"
        } else {
            "images"
        };
        return Err(UsageError::new(format!(
            "nothing to do: the inputs hold no {what} that {} can take",
            info.id
        )));
    }
    Ok(BatchPlan {
        provider: info.id,
        jobs,
        skipped,
        out_dir,
    })
}

fn parse_options(info: &ProviderInfo, raw: &[String]) -> Result<ProviderOptions, UsageError> {
    let mut options = ProviderOptions::new();
    for pair in raw {
        let Some((key, value)) = pair.split_once('=') else {
            return Err(UsageError::new(format!(
                "--option takes KEY=VALUE, not `{pair}`"
            )));
        };
        let (key, value) = (key.trim(), value.trim());
        if options.insert(key.to_owned(), value.to_owned()).is_some() {
            return Err(UsageError::new(format!("--option {key} is given twice")));
        }
    }
    info.check_options(&options).map_err(UsageError::new)?;
    Ok(options)
}

/// The image format to convert results to, or `None` to keep the provider's.
fn output_format(
    info: &ProviderInfo,
    args: &BatchArgs,
    options: &ProviderOptions,
) -> Result<Option<OutputFormat>, UsageError> {
    if info.takes_only_video() {
        if args.format.is_some() {
            return Err(UsageError::new(format!(
                "--format is for images; {} video results keep the format you choose with --option output_format=…",
                info.id
            )));
        }
        return Ok(None);
    }
    if options.contains_key("output_format") {
        if args.format.is_some() || args.bg.is_some() {
            return Err(UsageError::new(
                "--format and --bg convert results locally; drop them, or drop --option output_format to let Cutout convert",
            ));
        }
        return Ok(None);
    }
    let format = args.format.unwrap_or_default();
    if !format.has_alpha() && args.bg.unwrap_or_default() == Background::Transparent {
        return Err(UsageError::new(
            "jpg has no transparency: add a background, e.g. --bg '#ffffff'",
        ));
    }
    Ok(Some(format))
}

/// Turns one argument into inputs: a URL, a file, or every acceptable file
/// under a folder. Files a folder holds that the provider cannot take are
/// listed in `skipped` with the reason.
fn expand_input(
    raw: &str,
    info: &ProviderInfo,
    out_dir: &Path,
    skipped: &mut Vec<(PathBuf, String)>,
) -> Result<Vec<JobInput>, UsageError> {
    let lower = raw.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        let url = Url::parse(raw)
            .map_err(|e| UsageError::new(format!("not a valid URL ({e}): {raw}")))?;
        return Ok(vec![JobInput::Url(url)]);
    }
    if let Some((scheme, _)) = raw.split_once(':')
        && scheme.len() > 1
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        && !Path::new(raw).exists()
    {
        return Err(UsageError::new(format!(
            "only http(s) URLs are supported, not `{scheme}:`: {raw}"
        )));
    }
    let path = std::path::absolute(raw).map_err(|e| UsageError::new(format!("{e}: {raw}")))?;
    let metadata = std::fs::metadata(&path)
        .map_err(|e| UsageError::new(format!("cannot open the input ({e}): {raw}")))?;
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
            !hidden && entry.path() != out_dir
        });
    for entry in walker {
        let entry = entry.map_err(|e| UsageError::new(format!("cannot read the folder: {e}")))?;
        if !entry.file_type().is_file() {
            continue;
        }
        let name = entry.file_name().to_string_lossy();
        if name.starts_with(PARTIAL_PREFIX) {
            continue;
        }
        let kind = match media_kind_of_name(&name) {
            Some(MediaKind::Image) => InputKind::ImageFile,
            Some(MediaKind::Video) => InputKind::VideoFile,
            None => {
                skipped.push((entry.into_path(), "not an image or video".to_owned()));
                continue;
            }
        };
        if !info.accepts(kind) {
            let others: Vec<_> = providers::providers_accepting(kind)
                .iter()
                .map(|p| p.as_str())
                .collect();
            let reason = format!(
                "{} cannot take {} (use {})",
                info.id,
                kind.plural_noun(),
                others.join(" or ")
            );
            skipped.push((entry.into_path(), reason));
            continue;
        }
        found.push(JobInput::File {
            path: entry.into_path(),
            root: Some(path.clone()),
        });
    }
    Ok(found)
}

pub(super) async fn batch(args: BatchArgs) -> Result<u8, UsageError> {
    let plan = plan_batch(&args)?;
    let provider = build_provider(plan.provider)?;
    let http = http_client()?;
    let poll = config::poll_policy(&process_env)?;
    let mut concurrency = BTreeMap::new();
    if let Some(n) = args.concurrency {
        concurrency.insert(plan.provider, usize::from(n));
    }
    let mut engine = Engine::spawn(vec![provider], http, EngineConfig { poll, concurrency });
    let mut report = Report::new(args.json, plan.jobs.len(), &plan.out_dir);
    report.skipped(&plan.skipped);
    engine.send(Command::Add(plan.jobs));
    engine.send(Command::Start);

    let mut interrupted = false;
    let mut ctrl_c = Box::pin(tokio::signal::ctrl_c());
    while !report.all_finished() {
        tokio::select! {
            event = engine.next_event() => match event {
                Some(event) => report.event(&event),
                None => break,
            },
            _ = &mut ctrl_c => {
                if interrupted {
                    report.note("Stopped at once; unfinished temporary files may remain.");
                    return Ok(EXIT_INTERRUPTED);
                }
                interrupted = true;
                report.note("Cancelling: jobs in flight are being stopped (press Ctrl-C again to quit at once)…");
                engine.send(Command::CancelAll);
                ctrl_c = Box::pin(tokio::signal::ctrl_c());
            }
        }
    }
    let counts = report.finish();
    Ok(if interrupted || counts.cancelled > 0 {
        EXIT_INTERRUPTED
    } else if counts.failed > 0 {
        EXIT_SOME_FAILED
    } else {
        EXIT_ALL_DONE
    })
}

fn build_provider(id: ProviderId) -> Result<std::sync::Arc<dyn providers::Provider>, UsageError> {
    let endpoints = config::endpoints(id, &process_env)?;
    let (credentials, problems) = Keys::from_environment().credentials(id);
    for problem in problems {
        tracing::warn!(%problem, "a key store could not be read");
    }
    let http = http_client()?;
    providers::build(
        id,
        ProviderConfig {
            endpoints,
            credentials,
            http,
        },
    )
    .map_err(|e| UsageError::new(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::super::{Cli, CliCommand};
    use super::*;
    use clap::Parser;

    fn args(extra: &[&str]) -> BatchArgs {
        let mut argv = vec!["cutout", "batch"];
        argv.extend_from_slice(extra);
        match Cli::try_parse_from(argv).unwrap().command {
            Some(CliCommand::Batch(args)) => args,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn jpg_without_a_background_is_refused_before_anything_runs() {
        let a = args(&["-p", "removebg", "--format", "jpg", "x.png"]);
        let err = output_format(a.provider.info(), &a, &ProviderOptions::new()).unwrap_err();
        assert!(err.to_string().contains("--bg"), "{err}");
        let a = args(&[
            "-p", "removebg", "--format", "jpg", "--bg", "#ffffff", "x.png",
        ]);
        assert_eq!(
            output_format(a.provider.info(), &a, &ProviderOptions::new()).unwrap(),
            Some(OutputFormat::Jpg)
        );
    }

    #[test]
    fn options_must_be_key_value_pairs_named_once() {
        let info = ProviderId::Removebg.info();
        assert!(parse_options(info, &["crop".into()]).is_err());
        assert!(parse_options(info, &["crop=true".into(), "crop=false".into()]).is_err());
    }

    #[test]
    fn other_url_schemes_are_refused() {
        let mut skipped = Vec::new();
        let info = ProviderId::Removebg.info();
        let err =
            expand_input("ftp://host/a.png", info, Path::new("/out"), &mut skipped).unwrap_err();
        assert!(err.to_string().contains("only http(s)"), "{err}");
        let err =
            expand_input("file:///etc/passwd", info, Path::new("/out"), &mut skipped).unwrap_err();
        assert!(err.to_string().contains("only http(s)"), "{err}");
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
            std::fs::write(root.join(name), b"x").unwrap();
        }
        let mut skipped = Vec::new();
        let info = ProviderId::Removebg.info();
        let found = expand_input(
            root.to_str().unwrap(),
            info,
            &root.join("cutout-output"),
            &mut skipped,
        )
        .unwrap();
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
            .map(|(p, r)| {
                (
                    p.file_name().unwrap().to_string_lossy().into_owned(),
                    r.clone(),
                )
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
}
