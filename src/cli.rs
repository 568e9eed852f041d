//! The headless front end: `cutout batch`, `cutout providers` and
//! `cutout health`. It turns arguments into engine commands and engine
//! events into terminal output (a progress bar and a line per file) or JSON
//! lines for scripts. Like the window, it never touches job state itself.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;
use url::Url;

use crate::config::{self, process_env};
use crate::imaging::{Background, OutputFormat};
use crate::jobs::events::OutputSpec;
use crate::jobs::job::{InputKind, Job, JobId, JobInput, JobState, MediaKind, media_kind_of_name};
use crate::jobs::output::PARTIAL_PREFIX;
use crate::jobs::{Command, Engine, EngineConfig, Event, NewJob};
use crate::providers::{
    self, HttpClient, OptionKind, ProviderConfig, ProviderId, ProviderInfo, ProviderOptions,
};
use crate::secrets::Keys;

/// Exit status when every job finished.
const EXIT_ALL_DONE: u8 = 0;
/// Exit status when at least one job failed (the rest still ran).
const EXIT_SOME_FAILED: u8 = 1;
/// Exit status for bad usage or configuration; nothing was sent anywhere.
const EXIT_USAGE: u8 = 2;
/// Exit status after Ctrl-C, as shells expect (128 + SIGINT).
const EXIT_INTERRUPTED: u8 = 130;

/// Command-line arguments.
#[derive(Debug, Parser)]
#[command(
    name = "cutout",
    version,
    about = "Remove backgrounds from batches of images and videos",
    after_help = "Keys: CUTOUT_<PROVIDER>_KEY (Uploadcare: CUTOUT_UPLOADCARE_PUBLIC_KEY and \
                  CUTOUT_UPLOADCARE_SECRET_KEY). Base URLs: CUTOUT_<PROVIDER>_URL. \
                  Run `cutout providers` to see what is configured."
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Option<CliCommand>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum CliCommand {
    /// Remove backgrounds from many files, folders or URLs in one go.
    #[command(
        after_help = "Exit status: 0 all jobs done; 1 one or more jobs failed (the rest still \
                            finished); 2 bad usage or configuration; 130 cancelled with Ctrl-C."
    )]
    Batch(BatchArgs),
    /// List providers, their models and options, and whether a key is set.
    Providers {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Check the providers that have a health endpoint.
    Health {
        /// Check only this provider.
        #[arg(value_name = "ID")]
        provider: Option<ProviderId>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

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

/// A problem with the arguments or configuration: reported, exit 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(String);

impl UsageError {
    fn new(message: impl Into<String>) -> Self {
        UsageError(message.into())
    }
}

/// Runs the command line and returns the process exit status.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let outcome = match cli.command {
        None => {
            let _ = <Cli as clap::CommandFactory>::command().print_help();
            return ExitCode::SUCCESS;
        }
        Some(CliCommand::Providers { json }) => print_providers(json),
        Some(CliCommand::Health { provider, json }) => {
            runtime().and_then(|rt| rt.block_on(health(provider, json)))
        }
        Some(CliCommand::Batch(args)) => runtime().and_then(|rt| rt.block_on(batch(args))),
    };
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CUTOUT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn runtime() -> Result<tokio::runtime::Runtime, UsageError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| UsageError::new(format!("cannot start the async runtime: {e}")))
}

fn http_client() -> Result<HttpClient, UsageError> {
    let policy = config::retry_policy(&process_env).map_err(|e| UsageError::new(e.to_string()))?;
    HttpClient::new(policy).map_err(|e| UsageError::new(e.to_string()))
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

async fn batch(args: BatchArgs) -> Result<u8, UsageError> {
    let plan = plan_batch(&args)?;
    let provider = build_provider(plan.provider)?;
    let http = http_client()?;
    let poll = config::poll_policy(&process_env).map_err(|e| UsageError::new(e.to_string()))?;
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
    let endpoints =
        config::endpoints(id, &process_env).map_err(|e| UsageError::new(e.to_string()))?;
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

/// How a batch ended.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    done: usize,
    failed: usize,
    cancelled: usize,
}

/// Turns engine events into terminal output or JSON lines, and knows when
/// every job has ended.
struct Report {
    json: bool,
    total: usize,
    out_dir: PathBuf,
    started: Instant,
    finished: BTreeMap<JobId, JobState>,
    names: BTreeMap<JobId, String>,
    bar: ProgressBar,
}

impl Report {
    fn new(json: bool, total: usize, out_dir: &Path) -> Self {
        let bar = if json || !std::io::stderr().is_terminal() {
            ProgressBar::hidden()
        } else {
            let bar =
                ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:32.cyan/blue} {pos}/{len} {msg} (ETA {eta})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        };
        Report {
            json,
            total,
            out_dir: out_dir.to_owned(),
            started: Instant::now(),
            finished: BTreeMap::new(),
            names: BTreeMap::new(),
            bar,
        }
    }

    fn all_finished(&self) -> bool {
        self.finished.len() >= self.total
    }

    fn line(&self, text: &str) {
        if self.bar.is_hidden() {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{text}");
            let _ = out.flush();
        } else {
            self.bar.println(text);
        }
    }

    fn note(&self, text: &str) {
        if self.json {
            eprintln!("{text}");
        } else {
            self.line(text);
        }
    }

    fn skipped(&self, skipped: &[(PathBuf, String)]) {
        for (path, reason) in skipped {
            if self.json {
                self.line(
                    &json!({"event": "skipped", "input": path, "reason": reason}).to_string(),
                );
            } else {
                self.line(&format!("skipped  {}: {reason}", shown(path)));
            }
        }
    }

    fn event(&mut self, event: &Event) {
        match event {
            Event::Added(job) => {
                self.names.insert(job.id, self.name(job));
                if self.json {
                    let mut line = job_json("added", job);
                    line["input"] = json!(job.input.display_name());
                    line["provider"] = json!(job.provider);
                    line["model"] = json!(job.model);
                    self.line(&line.to_string());
                }
            }
            Event::Changed(job) => self.changed(job),
            Event::Warning { job, message } => {
                if self.json {
                    let mut line = job_json("warning", job);
                    line["message"] = json!(message);
                    self.line(&line.to_string());
                } else {
                    self.line(&format!("warning  {}: {message}", self.name(job)));
                }
            }
            Event::Removed(_) | Event::Idle => {}
        }
    }

    fn changed(&mut self, job: &Job) {
        if job.state.is_terminal() {
            self.finished.insert(job.id, job.state.clone());
            self.bar.set_position(self.finished.len() as u64);
            let counts = self.counts();
            self.bar
                .set_message(format!("{} done · {} failed", counts.done, counts.failed));
        }
        if self.json {
            let line = match &job.state {
                JobState::Done { outputs } => {
                    let mut line = job_json("done", job);
                    line["outputs"] = json!(outputs);
                    line["credits_charged"] = json!(job.credits_charged);
                    line
                }
                JobState::Failed { error, retryable } => {
                    let mut line = job_json("failed", job);
                    line["error"] = json!(error);
                    line["retryable"] = json!(retryable);
                    line
                }
                JobState::Cancelled => job_json("cancelled", job),
                state => {
                    let mut line = job_json("state", job);
                    line["state"] = json!(state.name());
                    if let JobState::Processing { progress } = state {
                        line["progress"] = json!(progress);
                    }
                    line
                }
            };
            self.line(&line.to_string());
            return;
        }
        match &job.state {
            JobState::Done { outputs } => {
                let outputs: Vec<_> = outputs.iter().map(|p| shown(p)).collect();
                let credits = match job.credits_charged {
                    Some(1.0) => " (1 credit)".to_owned(),
                    Some(c) => format!(" ({c} credits)"),
                    None => String::new(),
                };
                self.line(&format!(
                    "done     {} → {}{credits}",
                    self.name(job),
                    outputs.join(", ")
                ));
            }
            JobState::Failed { error, .. } => {
                let remote = job
                    .remote_id
                    .as_ref()
                    .map(|id| format!(" [remote id {id}]"))
                    .unwrap_or_default();
                self.line(&format!("failed   {}: {error}{remote}", self.name(job)));
            }
            // Cancelled jobs are counted in the summary rather than listed:
            // after Ctrl-C on a large batch, a line each would bury the rest.
            JobState::Cancelled => {}
            _ => {}
        }
    }

    fn name(&self, job: &Job) -> String {
        match &job.input {
            JobInput::File { path, .. } => shown(path),
            JobInput::Url(url) => url.to_string(),
        }
    }

    fn counts(&self) -> Counts {
        let mut counts = Counts::default();
        for state in self.finished.values() {
            match state {
                JobState::Done { .. } => counts.done += 1,
                JobState::Failed { .. } => counts.failed += 1,
                _ => counts.cancelled += 1,
            }
        }
        counts
    }

    fn finish(self) -> Counts {
        self.bar.finish_and_clear();
        let counts = self.counts();
        if self.json {
            let summary = json!({
                "event": "summary",
                "done": counts.done,
                "failed": counts.failed,
                "cancelled": counts.cancelled,
                "output_dir": self.out_dir,
            });
            self.line(&summary.to_string());
            return counts;
        }
        let elapsed = self.started.elapsed().as_secs_f64();
        let mut summary = format!("{} done, {} failed", counts.done, counts.failed);
        if counts.cancelled > 0 {
            summary.push_str(&format!(", {} cancelled", counts.cancelled));
        }
        let place = if counts.done > 0 {
            format!(" Results are in {}", self.out_dir.display())
        } else {
            String::new()
        };
        self.line(&format!("\n{summary} in {elapsed:.1} s.{place}"));
        if counts.failed > 0 {
            self.line("Failed:");
            for (id, state) in &self.finished {
                if let JobState::Failed { error, .. } = state {
                    let name = self.names.get(id).cloned().unwrap_or_default();
                    self.line(&format!("  {name}: {error}"));
                }
            }
        }
        counts
    }
}

fn job_json(event: &str, job: &Job) -> serde_json::Value {
    json!({"event": event, "job": job.id.0, "remote_id": job.remote_id})
}

/// A path relative to the working folder when it is inside it, else whole.
fn shown(path: &Path) -> String {
    let relative = std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(cwd).ok().map(Path::to_owned));
    relative.as_deref().unwrap_or(path).display().to_string()
}

fn print_providers(as_json: bool) -> Result<u8, UsageError> {
    let keys = Keys::from_environment();
    let mut listed = Vec::new();
    for id in ProviderId::ALL {
        let info = id.info();
        let (credentials, _) = keys.credentials(id);
        let endpoints =
            config::endpoints(id, &process_env).map_err(|e| UsageError::new(e.to_string()))?;
        listed.push(json!({
            "id": id,
            "name": info.name,
            "summary": info.summary,
            "accepts": info.accepts,
            "models": info.models.iter().enumerate().map(|(i, m)| json!({"id": m.id, "summary": m.summary, "default": i == 0})).collect::<Vec<_>>(),
            "options": info.options,
            "credentials": info.credentials.iter().map(|c| json!({
                "id": c.id, "label": c.label, "env_var": c.env_var,
                "configured": credentials.get(c.id).is_some(),
                "source": credentials.source(c.id),
            })).collect::<Vec<_>>(),
            "endpoints": endpoints.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
            "default_concurrency": info.default_concurrency,
            "has_health_check": info.has_health_check,
        }));
        if !as_json {
            print_provider_text(info, &credentials);
        }
    }
    if as_json {
        println!("{}", serde_json::Value::Array(listed));
    }
    Ok(EXIT_ALL_DONE)
}

fn print_provider_text(info: &ProviderInfo, credentials: &crate::secrets::Credentials) {
    println!("{} ({})", info.name, info.id);
    println!("  {}", info.summary);
    let accepts: Vec<_> = info.accepts.iter().map(|k| k.plural_noun()).collect();
    println!("  takes:   {}", accepts.join(", "));
    println!("  models:");
    for (i, model) in info.models.iter().enumerate() {
        let default = if i == 0 { " (default)" } else { "" };
        println!("    {:<12} {}{default}", model.id, model.summary);
    }
    if !info.options.is_empty() {
        println!("  options (--option KEY=VALUE):");
        for option in info.options {
            let kind = match option.kind {
                OptionKind::Bool => "true|false".to_owned(),
                OptionKind::Choice { values } => values.join("|"),
                OptionKind::Text { example, .. } => format!("e.g. {example}"),
            };
            println!("    {:<18} {kind}  {}", option.key, option.help);
        }
    }
    for credential in info.credentials {
        let state = match credentials.source(credential.id) {
            Some(source) => format!("set ({source})"),
            None => format!("not set: set {}", credential.env_var),
        };
        println!("  {}: {state}", credential.label);
    }
    println!();
}

async fn health(only: Option<ProviderId>, as_json: bool) -> Result<u8, UsageError> {
    let http = http_client()?;
    let mut all_healthy = true;
    let mut results = Vec::new();
    for id in ProviderId::ALL
        .into_iter()
        .filter(|id| only.is_none_or(|o| o == *id))
    {
        let endpoints =
            config::endpoints(id, &process_env).map_err(|e| UsageError::new(e.to_string()))?;
        let outcome = providers::check_health(id, &endpoints, &http).await;
        let entry = match outcome {
            None => {
                if !as_json {
                    println!("{id}: no health endpoint; skipped");
                }
                json!({"provider": id, "checked": false})
            }
            Some(Ok(report)) => {
                all_healthy &= report.healthy;
                if !as_json {
                    println!("{id}: {}", report.status);
                    for check in &report.checks {
                        let mark = if check.healthy { "ok" } else { "FAILING" };
                        let detail = check
                            .detail
                            .as_deref()
                            .map(|d| format!(" ({d})"))
                            .unwrap_or_default();
                        println!("  {:<20} {mark}{detail}", check.name);
                    }
                }
                json!({"provider": id, "checked": true, "healthy": report.healthy, "status": report.status, "checks": report.checks})
            }
            Some(Err(error)) => {
                all_healthy = false;
                if !as_json {
                    println!("{id}: unreachable: {error}");
                }
                json!({"provider": id, "checked": true, "healthy": false, "error": error.to_string()})
            }
        };
        results.push(entry);
    }
    if as_json {
        println!("{}", serde_json::Value::Array(results));
    }
    Ok(if all_healthy {
        EXIT_ALL_DONE
    } else {
        EXIT_SOME_FAILED
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
