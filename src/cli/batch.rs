//! `cutout batch`: arguments into a checked plan of jobs, then the engine run
//! with Ctrl-C handling.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Args;

use super::history::open_store_for_run;
use super::report::Report;
use super::{EXIT_ALL_DONE, EXIT_INTERRUPTED, EXIT_SOME_FAILED, UsageError, http_client};
use crate::config::{self, process_env};
use crate::imaging::{Background, OutputFormat};
use crate::jobs::events::OutputSpec;
use crate::jobs::inputs::{self, Skipped};
use crate::jobs::naming::NamingTemplate;
use crate::jobs::{Command, Engine, EngineConfig, JobSettings, NewJob};
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
    /// Output file names: {name} (the input's), {provider}, {model},
    /// {date} (YYYY-MM-DD), {variation}; e.g. "{name}-{provider}".
    #[arg(long, value_name = "TEMPLATE", default_value_t = NamingTemplate::default())]
    pub name: NamingTemplate,
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
    skipped: Vec<Skipped>,
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
    let settings = JobSettings {
        provider: info.id,
        model,
        options,
        output: OutputSpec {
            dir: out_dir.clone(),
            format,
            background: args.bg.unwrap_or_default(),
            naming: args.name.clone(),
        },
    };
    let mut jobs = Vec::new();
    let mut skipped = Vec::new();
    for raw in &args.inputs {
        for input in inputs::expand(raw, Some(info), Some(&out_dir), &mut skipped)? {
            let settings = settings.clone();
            jobs.push(NewJob { input, settings });
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

pub(super) async fn batch(args: BatchArgs) -> Result<u8, UsageError> {
    let plan = plan_batch(&args)?;
    let provider = build_provider(plan.provider)?;
    let http = http_client()?;
    let poll = config::poll_policy(&process_env)?;
    let mut concurrency = BTreeMap::new();
    if let Some(n) = args.concurrency {
        concurrency.insert(plan.provider, usize::from(n));
    }
    let report = Report::new(args.json, plan.jobs.len(), &plan.out_dir);
    report.skipped(&plan.skipped);
    let store = open_store_for_run(&report);
    if let Some(store) = &store
        && let Ok(left @ 1..) = store.count_unfinished_elsewhere()
    {
        report.note(&format!(
            "note: {left} job(s) from an interrupted run are unfinished; `cutout resume` finishes them."
        ));
    }
    let engine = Engine::spawn_recording(
        vec![provider],
        http,
        EngineConfig { poll, concurrency },
        std::sync::Arc::new(|| {}),
        store,
    );
    engine.send(Command::Add(plan.jobs));
    engine.send(Command::Start);
    run_to_end(engine, report).await
}

/// Reports events until every job has ended; the first Ctrl-C cancels
/// what is in flight, a second quits at once. Returns the exit status.
pub(super) async fn run_to_end(
    mut engine: crate::jobs::EngineHandle,
    mut report: Report,
) -> Result<u8, UsageError> {
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

pub(super) fn build_provider(
    id: ProviderId,
) -> Result<std::sync::Arc<dyn providers::Provider>, UsageError> {
    let endpoints = config::endpoints(id, &process_env)?;
    let (credentials, problems) = Keys::for_this_process().credentials(id);
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
}
