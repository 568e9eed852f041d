//! `cutout batch`: arguments into a checked plan of jobs, then the engine run
//! with Ctrl-C handling.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Args;

use super::history::open_store_for_run;
use super::report::Report;
use super::{EXIT_ALL_DONE, EXIT_INTERRUPTED, EXIT_SOME_FAILED, UsageError, http_client};
use crate::config::{self, process_env};
use crate::imaging::compose::{Anchor, Backdrop, BackdropFit, Canvas, Composition, Length};
use crate::imaging::encode::DEFAULT_WEBP_QUALITY;
use crate::imaging::refine;
use crate::imaging::{self, OutputFormat};
use crate::jobs::events::OutputSpec;
use crate::jobs::inputs::{self, Skipped};
use crate::jobs::naming::NamingTemplate;
use crate::jobs::{Command, Engine, EngineConfig, JobSettings, NewJob};
use crate::paths::AppDirs;
use crate::providers::{self, ProviderConfig, ProviderId, ProviderInfo, ProviderOptions};
use crate::secrets::Keys;
use crate::settings::{Preset, Settings};

/// `cutout batch` arguments.
#[derive(Debug, Args)]
pub struct BatchArgs {
    /// Image or video files, folders (searched recursively) or http(s) URLs.
    /// Cutout opens JPEG (CMYK too), PNG, WebP, TIFF, BMP and GIF; AVIF,
    /// HEIC and PSD go unchanged to providers that take them (`cutout
    /// providers` lists what each takes).
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<String>,
    /// local | uploadcare | removit | removebgvideo | removebg. `local`
    /// runs a model on this computer: free, private, no account.
    #[arg(short, long, value_name = "ID")]
    pub provider: ProviderId,
    /// One of the provider's models (default: the provider's default). For
    /// `local`, a model from `cutout models list` (downloaded on first use)
    /// or an imported `custom:NAME`.
    #[arg(short, long, value_name = "NAME")]
    pub model: Option<String>,
    /// With `-p local`: run this .onnx model file instead of a catalogue
    /// model, for machines without internet (needs --model-family).
    #[arg(
        long,
        value_name = "PATH",
        requires = "model_family",
        conflicts_with = "model"
    )]
    pub model_file: Option<PathBuf>,
    /// The architecture of --model-file, so images are prepared as the
    /// model expects: u2net | isnet | birefnet.
    #[arg(long, value_name = "FAMILY", requires = "model_file")]
    pub model_family: Option<crate::local::catalogue::ModelFamily>,
    /// Output folder; a folder input's tree is kept beneath it.
    #[arg(short, long, value_name = "DIR", default_value = "cutout-output")]
    pub out: PathBuf,
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
    /// Send a smaller copy of an image that is over the provider's limits
    /// (pixels or file size) instead of failing; the original is never
    /// changed.
    #[arg(long)]
    pub allow_downscale: bool,
    /// Print one JSON object per line for every job event.
    #[arg(long)]
    pub json: bool,
    /// How results look and the format they are saved in.
    #[command(flatten)]
    pub look: Box<LookArgs>,
}

/// The result's format and composition: the same for every image provider,
/// done on this machine after the provider returns the cut-out.
#[derive(Debug, Default, Args)]
#[command(next_help_heading = "Result format and composition (images)")]
pub struct LookArgs {
    /// png | webp | webp-lossy | jpg | mask (jpg needs --bg; mask saves
    /// the transparency as a greyscale PNG).
    #[arg(long, value_name = "F", value_parser = parse_format)]
    pub format: Option<FormatChoice>,
    /// Lossy quality from 1 to 100: jpg (default 90), webp (makes it lossy;
    /// webp-lossy defaults to 85).
    #[arg(long, value_name = "1-100", value_parser = clap::value_parser!(u8).range(1..=100))]
    pub quality: Option<u8>,
    /// transparent | #RRGGBB | image:PATH (a picture behind the subject).
    #[arg(long, value_name = "B")]
    pub bg: Option<Backdrop>,
    /// How an image background covers the canvas: fill (default: covers it,
    /// cutting off the overflow) | fit (shown whole).
    #[arg(long, value_name = "FIT")]
    pub bg_fit: Option<BackdropFit>,
    /// Crop to the subject plus a margin: pixels or % of the subject's
    /// longer side, e.g. 5% or 40px; no value means no margin.
    #[arg(
        long,
        value_name = "MARGIN",
        num_args = 0..=1,
        default_missing_value = "0px",
        value_parser = parse_crop
    )]
    pub crop: Option<Length>,
    /// original | square:SIDE | WIDTHxHEIGHT, e.g. square:2000 for
    /// marketplaces or 1600x1200.
    #[arg(long, value_name = "C")]
    pub canvas: Option<Canvas>,
    /// Where the subject sits on a fixed canvas: center | top | bottom |
    /// left | right | top-left | top-right | bottom-left | bottom-right.
    #[arg(long, value_name = "POS")]
    pub anchor: Option<Anchor>,
    /// How much of the canvas (inside the padding) the subject fills on a
    /// fixed canvas, 1% to 100% (default 100%).
    #[arg(long, value_name = "PCT", value_parser = parse_scale)]
    pub scale: Option<u8>,
    /// Room around the subject: pixels or % of the canvas's shorter side
    /// (on the original canvas it adds a border).
    #[arg(long, value_name = "LEN")]
    pub padding: Option<Length>,
    /// A soft drop shadow under the subject, falling down and to the right.
    #[arg(long)]
    pub shadow: bool,
    /// Shadow darkness, 0% to 100% (default 45%); implies --shadow.
    #[arg(long, value_name = "PCT", value_parser = parse_opacity)]
    pub shadow_opacity: Option<u8>,
    /// Shadow softness: pixels or % of the subject's longer side (default
    /// 3%); implies --shadow.
    #[arg(long, value_name = "LEN")]
    pub shadow_blur: Option<Length>,
    /// How far the shadow falls: pixels or % (default 1.5%); implies
    /// --shadow.
    #[arg(long, value_name = "LEN")]
    pub shadow_distance: Option<Length>,
    /// Which way the shadow falls, in degrees clockwise from pointing
    /// right: 90 is straight down (default 45); implies --shadow.
    #[arg(long, value_name = "DEG", value_parser = clap::value_parser!(u16).range(0..360))]
    pub shadow_angle: Option<u16>,
    /// Drop stray specks (pieces under 1% of the subject) and fill
    /// pinholes in the subject.
    #[arg(long)]
    pub remove_speckles: bool,
    /// Smooth jagged edges over this many pixels, 0 to 50 (e.g. 3).
    #[arg(long, value_name = "PX", value_parser = refine::parse_smooth_px)]
    pub smooth: Option<u16>,
    /// Make soft edges crisper, 0 (as they are) to 1 (a near-hard edge),
    /// e.g. 0.5.
    #[arg(long, value_name = "0-1", value_parser = refine::parse_harden)]
    pub harden: Option<u8>,
    /// Recover the subject's own colours at soft edges, so the old
    /// background does not show as a halo on hair and fur.
    #[arg(long)]
    pub decontaminate: bool,
    /// A preset from the settings file ([presets.NAME]); the flags above
    /// change its values.
    #[arg(long, value_name = "NAME")]
    pub preset: Option<String>,
}

/// A `--format` value: a file format, and whether WebP should be lossy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FormatChoice {
    /// The file format.
    pub format: OutputFormat,
    /// `webp-lossy`: WebP at the default lossy quality.
    pub lossy: bool,
}

fn parse_format(text: &str) -> Result<FormatChoice, String> {
    let lowered = text.trim().to_ascii_lowercase();
    if matches!(lowered.as_str(), "webp-lossy" | "webp_lossy" | "lossy-webp") {
        return Ok(FormatChoice {
            format: OutputFormat::Webp,
            lossy: true,
        });
    }
    match lowered.parse::<OutputFormat>() {
        Ok(format) => Ok(FormatChoice {
            format,
            lossy: false,
        }),
        Err(_) => Err(format!(
            "`{text}` is not an output format; use png, webp, webp-lossy, jpg or mask"
        )),
    }
}

/// `--crop`'s margin. Since the margin is optional, a path right after
/// `--crop` is taken for it: say so rather than only "not a length".
fn parse_crop(text: &str) -> Result<Length, String> {
    text.parse::<Length>().map_err(|why| {
        if text.trim().starts_with(|c: char| c.is_ascii_digit()) {
            why
        } else {
            format!(
                "--crop takes an optional margin such as 5% or 40px, not `{text}`; to crop \
                 without a margin, write --crop=0 or put --crop after the inputs"
            )
        }
    })
}

fn parse_percentage(text: &str, low: u8, what: &str) -> Result<u8, String> {
    let number = text.trim().trim_end_matches('%').trim();
    match number.parse::<u8>() {
        Ok(n) if (low..=100).contains(&n) => Ok(n),
        _ => Err(format!(
            "{what} is a percentage from {low}% to 100%, not `{text}`"
        )),
    }
}

fn parse_scale(text: &str) -> Result<u8, String> {
    parse_percentage(text, 1, "--scale")
}

fn parse_opacity(text: &str) -> Result<u8, String> {
    parse_percentage(text, 0, "--shadow-opacity")
}

impl LookArgs {
    /// The flags that ask for local conversion (everything but a plain
    /// `--bg` colour, which video providers take too), by name.
    fn local_flags(&self) -> Vec<&'static str> {
        let mut flags = Vec::new();
        let mut note = |set: bool, flag: &'static str| {
            if set {
                flags.push(flag);
            }
        };
        note(self.format.is_some(), "--format");
        note(self.quality.is_some(), "--quality");
        note(
            matches!(self.bg, Some(Backdrop::Image { .. })),
            "--bg image:",
        );
        note(self.bg_fit.is_some(), "--bg-fit");
        note(self.crop.is_some(), "--crop");
        note(self.canvas.is_some(), "--canvas");
        note(self.anchor.is_some(), "--anchor");
        note(self.scale.is_some(), "--scale");
        note(self.padding.is_some(), "--padding");
        note(self.wants_shadow(), "--shadow");
        note(self.remove_speckles, "--remove-speckles");
        note(self.smooth.is_some(), "--smooth");
        note(self.harden.is_some(), "--harden");
        note(self.decontaminate, "--decontaminate");
        note(self.preset.is_some(), "--preset");
        flags
    }

    fn wants_shadow(&self) -> bool {
        self.shadow
            || self.shadow_opacity.is_some()
            || self.shadow_blur.is_some()
            || self.shadow_distance.is_some()
            || self.shadow_angle.is_some()
    }
}

/// How results are saved: the format (`None` keeps the provider's), its
/// quality and the composition.
#[derive(Debug, Clone, PartialEq)]
struct Look {
    format: Option<OutputFormat>,
    quality: Option<u8>,
    composition: Composition,
}

/// Everything `batch` needs, checked before anything is sent.
struct BatchPlan {
    provider: ProviderId,
    jobs: Vec<NewJob>,
    skipped: Vec<Skipped>,
    out_dir: PathBuf,
}

fn plan_batch(args: &BatchArgs, preset: Option<&Preset>) -> Result<BatchPlan, UsageError> {
    let info = args.provider.info();
    let model = args
        .model
        .clone()
        .unwrap_or_else(|| info.default_model().to_owned());
    info.check_model(&model).map_err(UsageError::new)?;
    let mut options = parse_options(info, &args.options)?;
    let model = match (&args.model_file, args.model_family) {
        (Some(path), Some(family)) => {
            if args.provider != ProviderId::Local {
                return Err(UsageError::new(
                    "--model-file runs a model on this computer; use it with -p local",
                ));
            }
            if !path.is_file() {
                return Err(UsageError::new(format!(
                    "there is no model file at {}",
                    path.display()
                )));
            }
            options.insert(
                providers::local::MODEL_FILE_OPTION.to_owned(),
                path.display().to_string(),
            );
            options.insert(
                providers::local::MODEL_FAMILY_OPTION.to_owned(),
                family.as_str().to_owned(),
            );
            providers::local::MODEL_FILE.to_owned()
        }
        _ => model,
    };
    let look = resolve_look(info, &args.look, &options, preset)?;
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
            format: look.format,
            quality: look.quality,
            composition: Box::new(look.composition),
            naming: args.name.clone(),
        },
        allow_downscale: args.allow_downscale,
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

/// The preset called `name` in the settings file.
fn load_preset(name: &str) -> Result<Preset, UsageError> {
    let dirs = AppDirs::resolve(&process_env).map_err(|e| UsageError::new(e.to_string()))?;
    let path = dirs.settings_file();
    let loaded = Settings::load(&path);
    if let Some(preset) = loaded.settings.preset(name) {
        return Ok(preset.clone());
    }
    let names: Vec<&str> = loaded
        .settings
        .presets()
        .keys()
        .map(String::as_str)
        .collect();
    let known = if names.is_empty() {
        "there are none; add one as [presets.NAME]".to_owned()
    } else {
        format!("the presets are {}", names.join(", "))
    };
    Err(UsageError::new(format!(
        "no preset named `{name}` in the settings ({known}): {}",
        path.display()
    )))
}

/// The format, quality and composition results are saved with: the preset's
/// (if any), changed by the flags, checked together.
fn resolve_look(
    info: &ProviderInfo,
    args: &LookArgs,
    options: &ProviderOptions,
    preset: Option<&Preset>,
) -> Result<Look, UsageError> {
    let local = args.local_flags();
    if info.takes_only_video() {
        if let Some(flag) = local.first() {
            return Err(UsageError::new(format!(
                "{flag} is for images; {} composes video remotely: use --bg transparent or \
                 --bg '#RRGGBB', and --option for the rest (see `cutout providers`)",
                info.id
            )));
        }
        return Ok(Look {
            format: None,
            quality: None,
            composition: Composition::with_background(args.bg.clone().unwrap_or_default()),
        });
    }
    if options.contains_key("output_format") {
        if !local.is_empty() || args.bg.is_some() {
            return Err(UsageError::new(
                "--format, --bg and the other result flags convert results locally; drop them, \
                 or drop --option output_format to let Cutout convert",
            ));
        }
        return Ok(Look {
            format: None,
            quality: None,
            composition: Composition::default(),
        });
    }
    let (mut format, mut quality, mut composition) = match preset {
        Some(preset) => (preset.format, preset.quality, preset.composition.clone()),
        None => (OutputFormat::default(), None, Composition::default()),
    };
    if let Some(choice) = args.format {
        format = choice.format;
        quality = choice.lossy.then_some(DEFAULT_WEBP_QUALITY);
    }
    if let Some(q) = args.quality {
        if !format.takes_quality() {
            return Err(UsageError::new(format!(
                "--quality is for jpg and webp; {} is always lossless",
                format.as_str()
            )));
        }
        quality = Some(q);
    }
    if let Some(background) = &args.bg {
        composition.background = match background {
            Backdrop::Image { path, fit } => Backdrop::Image {
                path: std::path::absolute(path).unwrap_or_else(|_| path.clone()),
                fit: *fit,
            },
            other => other.clone(),
        };
    }
    if let Some(chosen) = args.bg_fit {
        match &mut composition.background {
            Backdrop::Image { fit, .. } => *fit = chosen,
            _ => {
                return Err(UsageError::new(
                    "--bg-fit is for a picture background: add --bg image:PATH",
                ));
            }
        }
    }
    if let Some(margin) = args.crop {
        composition.crop = Some(margin);
    }
    if let Some(canvas) = args.canvas {
        composition.canvas = canvas;
    }
    if let Some(anchor) = args.anchor {
        composition.anchor = anchor;
    }
    if let Some(scale) = args.scale {
        composition.scale_percent = scale;
    }
    if let Some(padding) = args.padding {
        composition.padding = padding;
    }
    if args.wants_shadow() {
        let mut shadow = composition.shadow.unwrap_or_default();
        if let Some(opacity) = args.shadow_opacity {
            shadow.opacity_percent = opacity;
        }
        if let Some(blur) = args.shadow_blur {
            shadow.blur = blur;
        }
        if let Some(distance) = args.shadow_distance {
            shadow.distance = distance;
        }
        if let Some(angle) = args.shadow_angle {
            shadow.angle_degrees = angle;
        }
        composition.shadow = Some(shadow);
    }
    let edges = &mut composition.refine;
    edges.remove_speckles |= args.remove_speckles;
    edges.smooth_px = args.smooth.unwrap_or(edges.smooth_px);
    edges.harden_percent = args.harden.unwrap_or(edges.harden_percent);
    edges.decontaminate |= args.decontaminate;
    if (args.anchor.is_some() || args.scale.is_some()) && composition.canvas == Canvas::Original {
        return Err(UsageError::new(
            "--anchor and --scale place the subject on a fixed canvas: add --canvas square:SIDE \
             or --canvas WIDTHxHEIGHT",
        ));
    }
    if let Some(problem) = composition.problem() {
        return Err(UsageError::new(problem));
    }
    if format.needs_background() && composition.background == Backdrop::Transparent {
        return Err(UsageError::new(
            "jpg has no transparency: add a background, e.g. --bg '#ffffff'",
        ));
    }
    if let Backdrop::Image { path, .. } = &composition.background {
        // Read it now: a missing picture should stop the batch before
        // anything is sent (and the engine then reuses this copy).
        imaging::backdrop_image(path).map_err(|e| UsageError::new(e.to_string()))?;
    }
    if !format.takes_quality() {
        quality = None;
    }
    Ok(Look {
        format: Some(format),
        quality,
        composition,
    })
}

pub(super) async fn batch(args: BatchArgs) -> Result<u8, UsageError> {
    let preset = match &args.look.preset {
        Some(name) => Some(load_preset(name)?),
        None => None,
    };
    let plan = plan_batch(&args, preset.as_ref())?;
    // A local model not downloaded yet is fetched first, with a progress
    // bar; in JSON mode stdout carries events only, so the first job
    // fetches it quietly instead.
    if plan.provider == ProviderId::Local
        && !args.json
        && let Some(model) = plan.jobs.first().map(|job| job.settings.model.clone())
        && let Some(code) = super::models::fetch_for_batch(&model)?
    {
        return Ok(code);
    }
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
                Some(event) => {
                    report.event(&event);
                    while let Some(event) = engine.try_next_event() {
                        report.event(&event);
                    }
                    report.flush();
                }
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
            data_dir: AppDirs::resolve(&process_env)
                .ok()
                .map(|dirs| dirs.data_dir().to_owned()),
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

    fn look(extra: &[&str]) -> Result<Look, UsageError> {
        look_with(extra, None)
    }

    fn look_with(extra: &[&str], preset: Option<&Preset>) -> Result<Look, UsageError> {
        let mut argv = vec!["-p", "removebg"];
        argv.extend_from_slice(extra);
        argv.push("x.png");
        let a = args(&argv);
        resolve_look(a.provider.info(), &a.look, &ProviderOptions::new(), preset)
    }

    fn refusal(extra: &[&str]) -> String {
        look(extra).unwrap_err().to_string()
    }

    #[test]
    fn jpg_without_a_background_is_refused_before_anything_runs() {
        assert!(refusal(&["--format", "jpg"]).contains("--bg"));
        let jpg = look(&["--format", "jpg", "--bg", "#ffffff"]).unwrap();
        assert_eq!(jpg.format, Some(OutputFormat::Jpg));
        assert_eq!(jpg.composition.background, Backdrop::Color([255, 255, 255]));
    }

    #[test]
    fn without_flags_results_are_transparent_pngs_as_delivered() {
        let plain = look(&[]).unwrap();
        assert_eq!(plain.format, Some(OutputFormat::Png));
        assert_eq!(plain.quality, None);
        assert!(plain.composition.is_identity());
    }

    #[test]
    fn webp_lossy_and_quality_choose_lossy_webp() {
        assert_eq!(look(&["--format", "webp-lossy"]).unwrap().quality, Some(85));
        let chosen = look(&["--format", "webp", "--quality", "70"]).unwrap();
        assert_eq!(
            (chosen.format, chosen.quality),
            (Some(OutputFormat::Webp), Some(70))
        );
        assert_eq!(look(&["--format", "webp"]).unwrap().quality, None);
        assert!(refusal(&["--format", "png", "--quality", "80"]).contains("always lossless"));
        assert!(refusal(&["--format", "mask", "--quality", "80"]).contains("mask"));
    }

    #[test]
    fn composition_flags_build_the_composition() {
        let marketplace = look(&[
            "--canvas",
            "square:2000",
            "--crop",
            "5%",
            "--anchor",
            "bottom",
            "--scale",
            "90%",
            "--padding",
            "40px",
            "--shadow-opacity",
            "30",
            "--bg",
            "#ffffff",
        ])
        .unwrap();
        let c = marketplace.composition;
        assert_eq!(c.canvas, Canvas::Square { side_px: 2000 });
        assert_eq!(c.crop, Some(Length::Percent { hundredths: 500 }));
        assert_eq!(c.anchor, Anchor::Bottom);
        assert_eq!(c.scale_percent, 90);
        assert_eq!(c.padding, Length::Px(40));
        assert_eq!(c.shadow.unwrap().opacity_percent, 30);
        assert_eq!(c.background, Backdrop::Color([255, 255, 255]));
    }

    #[test]
    fn edge_flags_refine_the_matte_on_top_of_a_preset() {
        let plain = look(&[]).unwrap();
        assert!(plain.composition.refine.is_identity());
        let preset = Preset {
            composition: Composition {
                refine: refine::Refine {
                    smooth_px: 2,
                    harden_percent: 30,
                    ..refine::Refine::default()
                },
                ..Composition::default()
            },
            ..Preset::default()
        };
        let edges = look_with(
            &["--remove-speckles", "--harden", "0.8", "--decontaminate"],
            Some(&preset),
        )
        .unwrap()
        .composition
        .refine;
        assert_eq!(
            edges,
            refine::Refine {
                remove_speckles: true,
                smooth_px: 2,
                harden_percent: 80,
                decontaminate: true,
            }
        );
        let smooth = look(&["--smooth", "4px"]).unwrap().composition.refine;
        assert_eq!(smooth.smooth_px, 4);
        let a = args(&["-p", "removebgvideo", "--decontaminate", "clip.mp4"]);
        let err = resolve_look(a.provider.info(), &a.look, &ProviderOptions::new(), None)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("--decontaminate is for images"), "{err}");
    }

    #[test]
    fn crop_alone_crops_without_a_margin_and_a_path_after_it_is_explained() {
        let argv = ["cutout", "batch", "-p", "removebg", "x.png", "--crop"];
        let Some(CliCommand::Batch(a)) = Cli::try_parse_from(argv).unwrap().command else {
            panic!()
        };
        assert_eq!(a.look.crop, Some(Length::ZERO));
        let argv = ["cutout", "batch", "-p", "removebg", "--crop", "shoes/"];
        let err = Cli::try_parse_from(argv).unwrap_err().to_string();
        assert!(err.contains("--crop=0"), "{err}");
    }

    #[test]
    fn bad_values_are_refused_with_what_would_work() {
        for (flags, says) in [
            (&["--anchor", "bottom"][..], "--canvas"),
            (&["--bg-fit", "fit"][..], "image:"),
            (&["--canvas", "square:0"][..], "at least 1 px"),
            (&["--canvas", "square:99999"][..], "16384"),
            (&["--crop", "5"][..], "5px or 5%"),
            (&["--scale", "0%"][..], "1% to 100%"),
            (&["--format", "gif"][..], "webp-lossy"),
            (&["--bg", "red"][..], "image:PATH"),
            (&["--smooth", "80"][..], "0 to 50"),
            (&["--harden", "2"][..], "0 (soft edges kept) to 1"),
            (
                &["--canvas", "square:800", "--padding", "50%"][..],
                "less than 50%",
            ),
            (
                &["--bg", "image:/no/such/backdrop.jpg"][..],
                "/no/such/backdrop.jpg",
            ),
        ] {
            let mut argv = vec!["cutout", "batch", "-p", "removebg"];
            argv.extend_from_slice(flags);
            argv.push("x.png");
            let err = match Cli::try_parse_from(&argv) {
                Err(e) => e.to_string(),
                Ok(cli) => {
                    let Some(CliCommand::Batch(a)) = cli.command else {
                        panic!()
                    };
                    resolve_look(a.provider.info(), &a.look, &ProviderOptions::new(), None)
                        .unwrap_err()
                        .to_string()
                }
            };
            assert!(err.contains(says), "{flags:?}: {err}");
        }
    }

    #[test]
    fn a_preset_is_the_starting_point_and_flags_change_it() {
        let preset = Preset {
            format: OutputFormat::Jpg,
            quality: Some(80),
            composition: Composition {
                canvas: Canvas::Square { side_px: 2000 },
                ..Composition::with_background(Backdrop::Color([255, 255, 255]))
            },
        };
        let plain = look_with(&[], Some(&preset)).unwrap();
        assert_eq!(
            (plain.format, plain.quality),
            (Some(OutputFormat::Jpg), Some(80))
        );
        assert_eq!(plain.composition, preset.composition);
        let changed =
            look_with(&["--canvas", "1600x1200", "--format", "png"], Some(&preset)).unwrap();
        assert_eq!(changed.format, Some(OutputFormat::Png));
        assert_eq!(changed.quality, None);
        assert_eq!(
            changed.composition.canvas,
            Canvas::Custom {
                width_px: 1600,
                height_px: 1200
            }
        );
        assert_eq!(
            changed.composition.background,
            Backdrop::Color([255, 255, 255])
        );
    }

    #[test]
    fn video_providers_take_only_a_plain_background() {
        let a = args(&["-p", "removebgvideo", "--bg", "#00ff00", "clip.mp4"]);
        let video = resolve_look(a.provider.info(), &a.look, &ProviderOptions::new(), None);
        assert_eq!(
            video.unwrap().composition.background.plain(),
            crate::imaging::Background::Color([0, 255, 0])
        );
        let a = args(&["-p", "removebgvideo", "--canvas", "square:800", "clip.mp4"]);
        let err = resolve_look(a.provider.info(), &a.look, &ProviderOptions::new(), None)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("--canvas is for images"), "{err}");
    }

    #[test]
    fn options_must_be_key_value_pairs_named_once() {
        let info = ProviderId::Removebg.info();
        assert!(parse_options(info, &["crop".into()]).is_err());
        assert!(parse_options(info, &["crop=true".into(), "crop=false".into()]).is_err());
    }
}
