//! `cutout history` (past jobs from the job history) and `cutout resume`
//! (finish the jobs an interrupted run left unfinished).

use std::collections::BTreeSet;

use clap::Args;
use serde_json::json;

use super::batch::{build_provider, run_to_end};
use super::report::Report;
use super::{EXIT_ALL_DONE, UsageError, http_client};
use crate::config::{self, process_env};
use crate::jobs::store::{History, HistoryFilter, HistoryJob, JobStore, local_time};
use crate::jobs::{Command, Engine, EngineConfig, JobState};
use crate::paths::AppDirs;
use crate::providers::ProviderId;

/// `cutout history` arguments.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Only jobs whose file name or URL contains this text (any case).
    #[arg(short, long, value_name = "TEXT")]
    pub search: Option<String>,
    /// Only this provider's jobs.
    #[arg(short, long, value_name = "ID")]
    pub provider: Option<ProviderId>,
    /// Only jobs in this state: done, failed, cancelled, queued, processing…
    #[arg(long, value_name = "STATE")]
    pub state: Option<String>,
    /// How many jobs to show, newest first (0 for all).
    #[arg(short = 'n', long, value_name = "N", default_value_t = 50)]
    pub limit: u64,
    /// Print one JSON object per job instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `cutout resume` arguments.
#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// Print one JSON object per line for every job event.
    #[arg(long)]
    pub json: bool,
}

/// Where the history lives on this machine.
pub(super) fn history_path() -> Result<std::path::PathBuf, UsageError> {
    let dirs = AppDirs::resolve(&process_env).map_err(|e| UsageError::new(e.to_string()))?;
    Ok(dirs.history_file())
}

/// Opens the history for a run that adds jobs. A history that cannot be
/// used is reported and the run goes on unrecorded: removing backgrounds
/// matters more than remembering it.
pub(super) fn open_store_for_run(report: &Report) -> Option<JobStore> {
    let opened = history_path()
        .and_then(|path| JobStore::open(&path).map_err(|e| UsageError::new(e.to_string())));
    match opened {
        Ok(opened) => {
            if let Some(notice) = &opened.notice {
                report.note(notice);
            }
            Some(opened.store)
        }
        Err(error) => {
            report.note(&format!(
                "note: this run is not recorded in the history: {error}"
            ));
            None
        }
    }
}

pub(super) fn print_history(args: HistoryArgs) -> Result<u8, UsageError> {
    let path = history_path()?;
    if !path.exists() {
        if !args.json {
            println!("No jobs yet: the history is empty.");
        }
        return Ok(EXIT_ALL_DONE);
    }
    let history = History::open(&path).map_err(|e| UsageError::new(e.to_string()))?;
    let filter = HistoryFilter {
        search: args.search.unwrap_or_default(),
        provider: args.provider,
        state: args.state.map(|s| s.trim().to_ascii_lowercase()),
        limit: (args.limit > 0).then_some(args.limit),
    };
    let jobs = history
        .jobs(&filter)
        .map_err(|e| UsageError::new(e.to_string()))?;
    if args.json {
        for job in &jobs {
            println!("{}", history_json(job));
        }
        return Ok(EXIT_ALL_DONE);
    }
    if jobs.is_empty() {
        println!("No jobs match.");
        return Ok(EXIT_ALL_DONE);
    }
    for job in &jobs {
        println!("{}", history_line(job));
    }
    Ok(EXIT_ALL_DONE)
}

/// One job as a line: id, when, state, provider/model, input, then the
/// result or the error.
fn history_line(job: &HistoryJob) -> String {
    let outcome = match &job.state {
        JobState::Done { outputs } => {
            let outputs: Vec<_> = outputs.iter().map(|p| p.display().to_string()).collect();
            format!(" → {}", outputs.join(", "))
        }
        JobState::Failed { error, .. } => format!(": {error}"),
        _ => String::new(),
    };
    format!(
        "#{:<5} {}  {:<11} {}/{}  {}{outcome}",
        job.id.0,
        local_time(job.created_at_ms),
        job.state.name(),
        job.settings.provider,
        job.settings.model,
        job.input.display_name(),
    )
}

fn history_json(job: &HistoryJob) -> serde_json::Value {
    let mut line = json!({
        "job": job.id.0,
        "batch": job.batch,
        "input": job.input.display_name(),
        "provider": job.settings.provider,
        "model": job.settings.model,
        "options": job.settings.options,
        "output_dir": job.settings.output.dir,
        "remote_id": job.remote_id,
        "state": job.state.name(),
        "credits_charged": job.credits_charged,
        "warnings": job.warnings,
        "created_at_ms": job.created_at_ms,
        "finished_at_ms": job.finished_at_ms,
    });
    match &job.state {
        JobState::Done { outputs } => line["outputs"] = json!(outputs),
        JobState::Failed { error, retryable } => {
            line["error"] = json!(error);
            line["retryable"] = json!(retryable);
        }
        _ => {}
    }
    line
}

pub(super) async fn resume(args: ResumeArgs) -> Result<u8, UsageError> {
    let path = history_path()?;
    let opened = JobStore::open(&path).map_err(|e| UsageError::new(e.to_string()))?;
    if let Some(notice) = &opened.notice {
        eprintln!("{notice}");
    }
    let mut store = opened.store;
    let restored = store
        .claim_unfinished()
        .map_err(|e| UsageError::new(e.to_string()))?;
    if restored.is_empty() {
        if !args.json {
            println!("Nothing to resume: every job in the history has finished.");
        }
        return Ok(EXIT_ALL_DONE);
    }
    let provider_ids: BTreeSet<ProviderId> =
        restored.iter().map(|r| r.spec.settings.provider).collect();
    let mut providers = Vec::new();
    for id in provider_ids {
        // A provider that cannot be built (its key is gone) fails its jobs
        // with "not set up", keeping their remote ids for a later retry.
        match build_provider(id) {
            Ok(provider) => providers.push(provider),
            Err(error) => eprintln!("{id}: {error}"),
        }
    }
    let http = http_client()?;
    let poll = config::poll_policy(&process_env)?;
    let out_dir = restored[0].spec.settings.output.dir.clone();
    let report = Report::new(args.json, restored.len(), &out_dir);
    let resuming = restored.iter().filter(|r| r.accepted).count();
    report.note(&format!(
        "Resuming {} unfinished job(s): {resuming} already with their provider, {} to send.",
        restored.len(),
        restored.len() - resuming
    ));
    let engine = Engine::spawn_recording(
        providers,
        http,
        EngineConfig {
            poll,
            ..EngineConfig::default()
        },
        std::sync::Arc::new(|| {}),
        Some(store),
    );
    engine.send(Command::Restore(restored));
    engine.send(Command::Start);
    run_to_end(engine, report).await
}
