//! The window's top level: owns the engine connection, drains its events into
//! the view model each frame within a small time budget, lays out the panels
//! and turns keyboard shortcuts, drops and pastes into commands. At start it
//! opens the job history and brings back the jobs the last session left
//! unfinished.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use egui::{Key, KeyboardShortcut, Modifiers, RichText};

use crate::config;
use crate::diagnostics::{self, Facts, Folders, ProviderFacts};
use crate::jobs::inputs::Skipped;
use crate::jobs::job::{JobId, JobState};
use crate::jobs::store::{JobStore, RestoredJob};
use crate::jobs::{
    Command, CommandSender, Engine, EngineConfig, EngineHandle, Event, JobSettings, NewJob,
};
use crate::paths::AppDirs;
use crate::providers::{HttpClient, ProviderId};
use crate::secrets::Keychain;
use crate::settings::DefaultChoice;
use crate::ui::form::{FormAction, JobForm};
use crate::ui::history::{HistoryAction, HistoryWindow};
use crate::ui::intake::{Intake, IntakeWorker};
use crate::ui::local::LocalPanel;
use crate::ui::preview::PreviewPanel;
use crate::ui::queue::{QueuePanel, status_bar_ui};
use crate::ui::selection::Selection;
use crate::ui::settings::{Preferences, SettingsWindow, key_test_text};
use crate::ui::setup::{Env, ProviderSetup, ProviderStatus, SetupParts, Waker};
use crate::ui::view_model::QueueView;
use crate::ui::welcome::{Welcome, WelcomeAction};

/// How long one frame may spend applying engine events; the rest wait for
/// the next frame, so a flood of events never makes the window stutter.
const EVENT_BUDGET: Duration = Duration::from_millis(4);

/// How often to redraw while jobs run, so elapsed times tick.
const TICK_WHILE_BUSY: Duration = Duration::from_millis(250);

/// What the window starts with.
pub struct Startup {
    /// Files given on the command line (`cutout a.jpg b.png`).
    pub files: Vec<PathBuf>,
    /// How to read environment variables: the process's in the app, a
    /// fake in tests.
    pub env: Env,
    /// The output folder to start with instead of the default one.
    pub out_dir: Option<PathBuf>,
    /// Whether to show the first-run welcome when the settings say it was
    /// never seen (tests that are not about it turn it off).
    pub offer_welcome: bool,
}

impl Startup {
    /// The real process environment and the given files.
    pub fn from_process(files: Vec<PathBuf>) -> Self {
        Startup {
            files,
            env: Arc::new(config::process_env),
            out_dir: None,
            offer_welcome: true,
        }
    }
}

/// A message shown above the queue until dismissed.
#[derive(Debug, Clone, PartialEq)]
struct Notice {
    text: String,
    details: Vec<String>,
}

/// The Cutout window.
pub struct CutoutApp {
    /// Runs the engine; held so it lives as long as the window. Dropping it
    /// drops every job task, which deletes partial outputs.
    _runtime: tokio::runtime::Runtime,
    engine: EngineHandle,
    commands: CommandSender,
    queue: QueueView,
    selection: Selection,
    form: JobForm,
    /// The settings last applied to unstarted jobs.
    applied: Option<JobSettings>,
    setup: ProviderSetup,
    prefs: Preferences,
    /// The default output folder the form was last given, so a new default
    /// from Settings reaches the form unless the user chose another folder.
    default_out_dir: PathBuf,
    intake: IntakeWorker,
    queue_panel: QueuePanel,
    preview: PreviewPanel,
    settings: SettingsWindow,
    history: HistoryWindow,
    /// The local engine's models, downloads and installation.
    local: LocalPanel,
    /// Jobs that keep the settings they were set up with instead of
    /// following the form: ones brought back from the last session and ones
    /// run again from the history.
    own_settings: HashSet<JobId>,
    /// Jobs sent to run again whose ids are not known yet; each is matched
    /// with the job the engine adds for it.
    reruns_sent: Vec<NewJob>,
    /// Jobs from the last session, held until every stored key is read so
    /// the ones already with their provider find it set up.
    to_restore: Vec<RestoredJob>,
    url_text: String,
    notices: Vec<Notice>,
    title: String,
    /// The first-run welcome, also opened from Help.
    welcome: Welcome,
    /// Cutout's folders (the logs folder for Help), or why there are none.
    dirs: Result<AppDirs, String>,
}

/// The job history as this session found it.
struct SessionHistory {
    /// The engine's writer, when the history can be used.
    store: Option<JobStore>,
    /// The database the History window reads, or why there is none.
    path: Result<PathBuf, String>,
    /// Jobs the last session left unfinished, now this session's.
    restored: Vec<RestoredJob>,
}

impl SessionHistory {
    /// Opens the history, moving a damaged one aside, and claims what ended
    /// runs left unfinished. Nothing here stops the window from opening: a
    /// history that cannot be used is said in a notice and the session goes
    /// on unrecorded. Opening and claiming take a few milliseconds (SQLite's
    /// quick check and a few indexed queries): part of the [`Groundwork`]
    /// done while the window is being created.
    fn open(lookup: config::Lookup<'_>, notices: &mut Vec<Notice>) -> SessionHistory {
        let off = |why: String| {
            Notice::text(format!(
                "Cutout works as usual, but this session is not kept in the job history: {why}"
            ))
        };
        let path = match AppDirs::resolve(lookup) {
            Ok(dirs) => dirs.history_file(),
            Err(e) => {
                notices.push(off(e.to_string()));
                return SessionHistory {
                    store: None,
                    path: Err(format!("The job history is off this session: {e}")),
                    restored: Vec::new(),
                };
            }
        };
        let opened_at = Instant::now();
        let opened = match JobStore::open(&path) {
            Ok(opened) => opened,
            Err(e) => {
                notices.push(off(e.to_string()));
                return SessionHistory {
                    store: None,
                    path: Err(format!("The job history is off this session: {e}")),
                    restored: Vec::new(),
                };
            }
        };
        if let Some(notice) = opened.notice {
            notices.push(Notice::text(notice));
        }
        let mut store = opened.store;
        let restored = store.claim_unfinished().unwrap_or_else(|e| {
            notices.push(Notice::text(format!(
                "Jobs left unfinished last time could not be brought back: {e}"
            )));
            Vec::new()
        });
        tracing::debug!(
            elapsed_ms = opened_at.elapsed().as_millis() as u64,
            restored = restored.len(),
            "opened the job history"
        );
        SessionHistory {
            store: Some(store),
            path: Ok(path),
            restored,
        }
    }
}

/// The window's start-up work that needs no window: the engine's runtime
/// and the job history. [`crate::ui::run`] does it on a thread while the window and its
/// renderer are being created, so the first frame does not wait for both
/// one after the other.
pub struct Groundwork {
    runtime: tokio::runtime::Runtime,
    retry: crate::providers::RetryPolicy,
    poll: crate::jobs::PollPolicy,
    http: HttpClient,
    history: SessionHistory,
    notices: Vec<Notice>,
}

impl Groundwork {
    /// Does the work. Fails only when the machine cannot start threads.
    pub fn prepare(env: &Env) -> anyhow::Result<Groundwork> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("cutout-engine")
            .enable_all()
            .build()?;
        let lookup = |name: &str| env(name);
        let mut notices = Vec::new();
        let retry = config::retry_policy(&lookup).unwrap_or_else(|e| {
            notices.push(Notice::text(e.to_string()));
            Default::default()
        });
        let poll = config::poll_policy(&lookup).unwrap_or_else(|e| {
            notices.push(Notice::text(e.to_string()));
            Default::default()
        });
        let http = HttpClient::new(retry.clone());
        let history = SessionHistory::open(&lookup, &mut notices);
        Ok(Groundwork {
            runtime,
            retry,
            poll,
            http,
            history,
            notices,
        })
    }
}

impl CutoutApp {
    /// Starts the engine and queues the files given on the command line.
    /// Fails only when the machine cannot start threads.
    pub fn new(ctx: &egui::Context, startup: Startup) -> anyhow::Result<Self> {
        let groundwork = Groundwork::prepare(&startup.env)?;
        Ok(CutoutApp::with_groundwork(ctx, startup, groundwork))
    }

    /// [`new`](Self::new), with the work that needs no window done already.
    pub fn with_groundwork(ctx: &egui::Context, startup: Startup, groundwork: Groundwork) -> Self {
        let Groundwork {
            runtime,
            retry,
            poll,
            http,
            history,
            mut notices,
        } = groundwork;
        let env = startup.env;
        let lookup = |name: &str| env(name);
        let local = LocalPanel::new(
            &lookup,
            retry.clone(),
            runtime.handle().clone(),
            Arc::new({
                let ctx = ctx.clone();
                move || ctx.request_repaint()
            }),
        );
        let repaint = ctx.clone();
        let waker = Arc::new(move || repaint.request_repaint());
        let engine = {
            let _inside = runtime.enter();
            let config = EngineConfig {
                poll,
                ..EngineConfig::default()
            };
            Engine::spawn_recording(Vec::new(), http.clone(), config, waker, history.store)
        };
        let commands = engine.sender();
        let repaint = ctx.clone();
        let wake: Waker = Arc::new(move || repaint.request_repaint());
        let (mut prefs, problems) = Preferences::load(&lookup, Arc::clone(&wake));
        notices.extend(problems.into_iter().map(Notice::text));
        if let Some(dir) = startup.out_dir {
            prefs.default_out_dir = dir;
        }
        let setup = ProviderSetup::new(SetupParts {
            env: Arc::clone(&env),
            http,
            commands: commands.clone(),
            runtime: runtime.handle().clone(),
            wake,
            keychain: Some(Keychain::new(&lookup)),
            providers: prefs.settings().providers.clone(),
        });
        let own_settings: HashSet<JobId> = history.restored.iter().map(|r| r.job.id).collect();
        if !history.restored.is_empty() {
            notices.push(Notice::restored(&history.restored));
        }
        let form = JobForm::from_settings(prefs.settings(), prefs.default_out_dir.clone(), &setup);
        // Jobs follow the form only once the user changes it: restored jobs
        // keep what they were set up with.
        let applied = form.settings().ok();
        let default_out_dir = prefs.default_out_dir.clone();
        let wake = ctx.clone();
        let mut intake = IntakeWorker::new(move || wake.request_repaint());
        intake.add_paths(startup.files);
        let welcome =
            Welcome::new(startup.offer_welcome && !prefs.settings().appearance.welcome_seen);
        let dirs = AppDirs::resolve(&lookup).map_err(|e| e.to_string());
        CutoutApp {
            _runtime: runtime,
            engine,
            commands,
            queue: QueueView::default(),
            selection: Selection::default(),
            form,
            applied,
            setup,
            prefs,
            default_out_dir,
            intake,
            queue_panel: QueuePanel::new(),
            preview: PreviewPanel::new(),
            settings: SettingsWindow::default(),
            history: HistoryWindow::new(history.path),
            local,
            own_settings,
            reruns_sent: Vec::new(),
            to_restore: history.restored,
            url_text: String::new(),
            notices,
            title: String::new(),
            welcome,
            dirs,
        }
    }

    /// Applies waiting engine events, at most [`EVENT_BUDGET`] per frame.
    fn drain_events(&mut self, ctx: &egui::Context) {
        let started = Instant::now();
        let now = Instant::now();
        while let Some(event) = self.engine.try_next_event() {
            let history_changes = match &event {
                Event::Added(job) => {
                    let rerun = self.reruns_sent.iter().position(|sent| {
                        sent.input == job.input
                            && sent.settings.provider == job.provider
                            && sent.settings.model == job.model
                    });
                    if let Some(at) = rerun {
                        self.reruns_sent.remove(at);
                        self.own_settings.insert(job.id);
                    }
                    true
                }
                Event::Changed(job) => job.state.is_terminal(),
                Event::Removed(_) => true,
                Event::Warning { .. } | Event::Idle => false,
            };
            if history_changes {
                self.history.jobs_changed();
            }
            if matches!(event, Event::Idle) {
                // Local jobs may have loaded models: say what they run on.
                self.local.refresh_status(false);
            }
            if let Some(removed) = self.queue.apply(event, now) {
                self.selection.forget(removed);
                self.queue_panel.forget(removed);
                self.preview.forget(removed);
                self.own_settings.remove(&removed);
            }
            if started.elapsed() > EVENT_BUDGET {
                ctx.request_repaint();
                break;
            }
        }
    }

    /// Hands the last session's unfinished jobs to the engine once every
    /// stored key has been read: a job already with its provider resumes at
    /// once, and must find that provider set up rather than fail for want of
    /// a key that was on its way. The others wait for Start.
    fn restore_when_keys_are_read(&mut self) {
        if !self.to_restore.is_empty() && self.setup.keys_loaded() {
            let restored = std::mem::take(&mut self.to_restore);
            self.commands.send(Command::Restore(restored));
        }
    }

    /// Queues what the intake worker found and lists what it skipped.
    fn receive_intake(&mut self) {
        for intake in self.intake.drain() {
            self.accept(intake);
        }
    }

    fn accept(&mut self, intake: Intake) {
        let Intake {
            inputs,
            skipped,
            problems,
        } = intake;
        if !skipped.is_empty() {
            self.notices.push(Notice::skipped(&skipped));
        }
        for problem in problems {
            self.notices.push(Notice::text(problem));
        }
        if inputs.is_empty() {
            return;
        }
        // Jobs are added with the current choices; invalid choices still
        // queue the work, and Start stays disabled until they are fixed.
        let settings = self
            .form
            .settings()
            .or_else(|_| self.form_fallback_settings());
        let Ok(settings) = settings else { return };
        let jobs = inputs
            .into_iter()
            .map(|input| NewJob {
                input,
                settings: settings.clone(),
            })
            .collect();
        self.commands.send(Command::Add(jobs));
    }

    /// Settings for queuing while the form is mid-edit (say, JPEG chosen but
    /// no colour yet): the same provider and model with PNG output.
    fn form_fallback_settings(&self) -> Result<JobSettings, String> {
        let mut settings =
            JobForm::new(self.form.provider, self.form.out_dir.clone()).settings()?;
        settings.model = self.form.model().to_owned();
        Ok(settings)
    }

    /// Keeps unstarted jobs on the provider and output the user now shows,
    /// so "drop, then pick, then Start" works.
    fn apply_form_to_unstarted(&mut self) {
        let Ok(settings) = self.form.settings() else {
            return;
        };
        if self.applied.as_ref() == Some(&settings) {
            return;
        }
        let own = &self.own_settings;
        // Failed jobs too: the engine gives new settings to those that never
        // reached their provider (an input over its limits, no key yet), so
        // fixing the setting and pressing Start fixes them.
        let ids = self.queue.ids_where(|row| {
            let unsent =
                row.started_at.is_none() || matches!(row.job.state, JobState::Failed { .. });
            unsent && !own.contains(&row.job.id)
        });
        if !ids.is_empty() {
            self.commands.send(Command::Reconfigure {
                ids,
                settings: settings.clone(),
            });
        }
        self.applied = Some(settings);
    }

    fn start(&mut self) {
        if self.form.settings().is_ok() {
            self.apply_form_to_unstarted();
            self.commands.send(Command::Start);
        }
    }

    fn retry_failed(&self) {
        let failed = self.queue.ids_where(|row| {
            matches!(row.job.state, JobState::Failed { .. } | JobState::Cancelled)
        });
        for id in failed {
            self.commands.send(Command::Retry(id));
        }
    }

    fn remove_selected(&mut self) {
        for id in self.selection.ids() {
            self.commands.send(Command::Remove(id));
        }
    }

    fn queue_order(&self) -> Vec<JobId> {
        self.queue.rows().iter().map(|r| r.job.id).collect()
    }

    /// Keyboard shortcuts that act on the whole window. They yield to text
    /// fields: Enter in the URL box adds URLs instead of starting.
    fn shortcuts(&mut self, ctx: &egui::Context) {
        let typing = ctx.egui_wants_keyboard_input();
        let open = KeyboardShortcut::new(Modifiers::COMMAND, Key::O);
        let select_all = KeyboardShortcut::new(Modifiers::COMMAND, Key::A);
        let history = KeyboardShortcut::new(Modifiers::COMMAND, Key::H);
        if ctx.input_mut(|i| i.consume_shortcut(&open)) {
            self.intake.pick_images();
        }
        if ctx.input_mut(|i| i.consume_shortcut(&history)) {
            self.history.toggle();
        }
        if typing {
            return;
        }
        let pasted: Vec<String> = ctx.input(|i| {
            i.events
                .iter()
                .filter_map(|e| match e {
                    egui::Event::Paste(text) => Some(text.clone()),
                    _ => None,
                })
                .collect()
        });
        for text in pasted {
            let intake = self.intake.add_urls(&text);
            self.accept(intake);
        }
        if ctx.input_mut(|i| i.consume_shortcut(&select_all)) {
            let order = self.queue_order();
            self.selection.select_all(&order);
        }
        // Enter activates whatever widget has keyboard focus (egui turns it
        // into a click); only with nothing focused does it mean Start, so
        // one key press never does two things.
        let nothing_focused = ctx.memory(|m| m.focused().is_none());
        if nothing_focused && ctx.input_mut(|i| i.consume_key(Modifiers::NONE, Key::Enter)) {
            self.start();
        }
        if ctx.input_mut(|i| i.consume_key(Modifiers::NONE, Key::Delete)) {
            self.remove_selected();
        }
        // Esc closes the Settings or History window when one is open, and
        // only then clears the selection.
        let window_open = self.settings.open || self.history.is_open();
        if !window_open && ctx.input_mut(|i| i.consume_key(Modifiers::NONE, Key::Escape)) {
            self.selection.clear();
        }
    }

    fn dropped_files(&mut self, ctx: &egui::Context) {
        let dropped: Vec<PathBuf> = ctx.input(|i| {
            i.raw
                .dropped_files
                .iter()
                .map(|f| f.path().to_owned())
                .collect()
        });
        self.intake.add_paths(dropped);
    }

    fn follow_default_out_dir(&mut self) {
        if self.prefs.default_out_dir != self.default_out_dir {
            if self.form.out_dir == self.default_out_dir {
                self.form.out_dir = self.prefs.default_out_dir.clone();
            }
            self.default_out_dir = self.prefs.default_out_dir.clone();
        }
    }

    fn update_title(&mut self, ctx: &egui::Context) {
        let title = self.queue.title();
        if title != self.title {
            ctx.send_viewport_cmd(egui::ViewportCommand::Title(title.clone()));
            self.title = title;
        }
    }

    fn top_bar_ui(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            if ui
                .button("✚ Add images…")
                .on_hover_text("Choose image or video files (Ctrl+O)")
                .clicked()
            {
                self.intake.pick_images();
            }
            if ui
                .button("🗁 Add folder…")
                .on_hover_text("Add every image in a folder and its sub-folders")
                .clicked()
            {
                self.intake.pick_folder();
            }
            ui.separator();
            let url_box = ui.add(
                egui::TextEdit::singleline(&mut self.url_text)
                    .hint_text("Paste image or video URLs (Ctrl+V)")
                    .desired_width((ui.available_width() - 380.0).max(160.0)),
            );
            let entered = url_box.lost_focus() && ui.input(|i| i.key_pressed(Key::Enter));
            let add = ui.add_enabled(
                !self.url_text.trim().is_empty(),
                egui::Button::new("Add URLs"),
            );
            if (entered || add.clicked()) && !self.url_text.trim().is_empty() {
                let intake = self.intake.add_urls(&std::mem::take(&mut self.url_text));
                self.accept(intake);
            }
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                self.help_menu_ui(ui);
                if ui.button("⚙ Settings").clicked() {
                    self.settings.open = true;
                }
                if ui
                    .button("🕘 History")
                    .on_hover_text("Past batches: open a result or run a job again (Ctrl+H)")
                    .clicked()
                {
                    self.history.toggle();
                }
                if self.intake.is_busy() {
                    ui.spinner();
                    ui.label("Scanning…");
                }
            });
        });
    }

    /// Help: the welcome again, the logs folder, diagnostics for support,
    /// and the version.
    fn help_menu_ui(&mut self, ui: &mut egui::Ui) {
        ui.menu_button("？ Help", |ui| {
            if ui
                .button("Welcome…")
                .on_hover_text("Choose who removes backgrounds: this computer or a cloud service")
                .clicked()
            {
                self.welcome.reopen(self.form.provider);
            }
            ui.separator();
            if ui
                .button("Open logs folder")
                .on_hover_text(
                    "What Cutout did, day by day: attach these files to a support request",
                )
                .clicked()
            {
                self.open_logs_folder();
            }
            if ui
                .button("Copy diagnostics")
                .on_hover_text(
                    "Copy versions, the local engine and each service's set-up, for a support \
                     request. API keys are never included.",
                )
                .clicked()
            {
                ui.ctx().copy_text(self.diagnostics());
                self.notices.push(Notice::text(
                    "Diagnostics copied: paste them into your support request. They hold no API \
                     keys."
                        .to_owned(),
                ));
            }
            ui.separator();
            ui.label(RichText::new(format!("Cutout {}", env!("CARGO_PKG_VERSION"))).weak());
        });
    }

    /// Shows the logs folder in the file manager, making it first if no log
    /// was written yet.
    fn open_logs_folder(&mut self) {
        let dir = match &self.dirs {
            Ok(dirs) => dirs.log_dir().to_owned(),
            Err(why) => {
                self.notices
                    .push(Notice::text(format!("There is no logs folder: {why}")));
                return;
            }
        };
        let opened = std::fs::create_dir_all(&dir).and_then(|()| open::that_detached(&dir));
        if let Err(e) = opened {
            self.notices.push(Notice::text(format!(
                "The logs folder could not be opened ({e}): {}",
                dir.display()
            )));
        }
    }

    /// The support report: versions, folders, the local engine, each
    /// provider's set-up and this session's queue. Never a key: the
    /// providers contribute only their state.
    fn diagnostics(&self) -> String {
        let (engine, models) = self.local.diagnostics();
        let providers = ProviderId::ALL
            .into_iter()
            .map(|id| {
                let (ready, detail) = match self.setup.status(id) {
                    ProviderStatus::Ready { .. } if id.info().credentials.is_empty() => {
                        (true, "no key needed".to_owned())
                    }
                    ProviderStatus::Ready { key_source } => {
                        (true, format!("key from {key_source}"))
                    }
                    ProviderStatus::NeedsSetup(what) => (false, what.clone()),
                };
                ProviderFacts {
                    id,
                    ready,
                    detail,
                    endpoints: self.setup.endpoints(id),
                    key_test: self.setup.key_test(id).map(|test| key_test_text(test).0),
                }
            })
            .collect();
        let counts = self.queue.counts();
        let facts = Facts {
            front: "window",
            folders: self
                .dirs
                .as_ref()
                .map(|dirs| Folders {
                    settings_file: dirs.settings_file(),
                    data_dir: dirs.data_dir().to_owned(),
                    log_dir: dirs.log_dir().to_owned(),
                })
                .map_err(Clone::clone),
            keychain: match self.setup.keychain_status() {
                Some(status) => diagnostics::keychain_words(status),
                None => "still being checked".to_owned(),
            },
            engine,
            models,
            providers,
            jobs: Some(format!(
                "{} queued, {} running, {} done, {} failed, {} cancelled",
                counts.queued, counts.active, counts.done, counts.failed, counts.cancelled
            )),
        };
        diagnostics::report(&facts)
    }

    /// Records what the welcome decided: it was seen, and the provider
    /// picked becomes the default for images and the side panel's choice.
    fn finish_welcome(&mut self, action: WelcomeAction) {
        let provider = match action {
            WelcomeAction::Finish(provider) => Some(provider),
            WelcomeAction::Skip => None,
        };
        self.prefs.edit(|s| {
            s.appearance.welcome_seen = true;
            if let Some(provider) = provider {
                s.defaults.image_file = Some(DefaultChoice {
                    provider,
                    model: None,
                });
            }
        });
        if let Some(provider) = provider {
            self.form.provider = provider;
        }
    }

    /// The focused job's first result, for the layout preview.
    fn focused_result(&self) -> Option<PathBuf> {
        let row = self.queue.row(self.selection.focused()?)?;
        match &row.job.state {
            JobState::Done { outputs } => outputs.first().cloned(),
            _ => None,
        }
    }

    fn batch_panel_ui(&mut self, ui: &mut egui::Ui) {
        let focused_result = self.focused_result();
        egui::ScrollArea::vertical()
            .auto_shrink([false, false])
            .show(ui, |ui| {
                let action = self.form.form_ui(
                    ui,
                    &self.setup,
                    &mut self.local,
                    self.prefs.settings(),
                    focused_result.as_deref(),
                );
                match action {
                    Some(FormAction::OpenSettings) => self.settings.open = true,
                    // Saved like every other setting: on the settings
                    // thread, into settings.toml.
                    Some(FormAction::SavePreset { name, preset }) => self.prefs.edit(|s| {
                        s.presets.insert(name, preset);
                    }),
                    Some(FormAction::DeletePreset(name)) => self.prefs.edit(|s| {
                        s.presets.remove(&name);
                    }),
                    None => {}
                }
                ui.separator();
                let counts = self.queue.counts();
                let ready = self.form.settings();
                let can_start = counts.queued > 0 && ready.is_ok();
                let start = ui
                    .add_enabled(
                        can_start,
                        egui::Button::new(RichText::new("▶ Start").heading())
                            .min_size(egui::vec2(ui.available_width(), 36.0)),
                    )
                    .on_hover_text("Process every queued job (Enter)");
                if start.clicked() {
                    self.start();
                }
                if let Err(why) = ready {
                    ui.colored_label(ui.visuals().warn_fg_color, why);
                }
                self.local.downloads_ui(ui);
                ui.horizontal(|ui| {
                    if ui
                        .add_enabled(counts.remaining() > 0, egui::Button::new("Cancel all"))
                        .clicked()
                    {
                        self.commands.send(Command::CancelAll);
                    }
                    let retryable = counts.failed + counts.cancelled;
                    if ui
                        .add_enabled(
                            retryable > 0,
                            egui::Button::new(format!("Retry failed ({retryable})")),
                        )
                        .clicked()
                    {
                        self.retry_failed();
                    }
                });
                if ui
                    .add_enabled(
                        !self.selection.is_empty(),
                        egui::Button::new("Remove selected"),
                    )
                    .on_hover_text("Delete")
                    .clicked()
                {
                    self.remove_selected();
                }
            });
    }

    fn notices_ui(&mut self, ui: &mut egui::Ui) {
        let mut dismissed = None;
        for (i, notice) in self.notices.iter().enumerate() {
            egui::Frame::group(ui.style())
                .fill(ui.visuals().faint_bg_color)
                .show(ui, |ui| {
                    ui.horizontal(|ui| {
                        ui.label(&notice.text);
                        ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                            if ui.small_button("🗙").on_hover_text("Dismiss").clicked() {
                                dismissed = Some(i);
                            }
                        });
                    });
                    if !notice.details.is_empty() {
                        egui::CollapsingHeader::new("Show files")
                            .id_salt(("notice", i))
                            .show(ui, |ui| {
                                for line in &notice.details {
                                    ui.label(RichText::new(line).small());
                                }
                            });
                    }
                });
        }
        if let Some(i) = dismissed {
            self.notices.remove(i);
        }
    }

    fn empty_state_ui(&mut self, ui: &mut egui::Ui) {
        ui.vertical_centered(|ui| {
            ui.add_space(ui.available_height() * 0.25);
            ui.label(RichText::new("🖼").size(64.0));
            ui.heading("Drop product photos or whole folders here");
            ui.label(
                "Cutout removes their backgrounds and saves the results in your output folder.",
            );
            ui.add_space(8.0);
            ui.horizontal(|ui| {
                let width = 300.0;
                ui.add_space((ui.available_width() - width).max(0.0) / 2.0);
                if ui.button("✚ Add images…").clicked() {
                    self.intake.pick_images();
                }
                if ui.button("🗁 Add folder…").clicked() {
                    self.intake.pick_folder();
                }
            });
            ui.add_space(8.0);
            ui.label(RichText::new("You can also paste image or video links with Ctrl+V.").weak());
            if !self.setup.status(self.form.provider).is_ready() {
                ui.add_space(12.0);
                ui.label(
                    RichText::new(format!(
                        "{} needs an API key before it can run: open ⚙ Settings.",
                        self.form.provider.info().name
                    ))
                    .color(ui.visuals().warn_fg_color),
                );
            }
        });
    }

    fn drop_overlay_ui(&self, ui: &mut egui::Ui) {
        let hovering = ui.input(|i| !i.raw.hovered_files.is_empty());
        if !hovering {
            return;
        }
        let screen = ui.ctx().content_rect();
        let painter = ui.ctx().layer_painter(egui::LayerId::new(
            egui::Order::Foreground,
            egui::Id::unique("drop overlay"),
        ));
        let accent = ui.visuals().selection.bg_fill;
        painter.rect_filled(screen, 0.0, accent.gamma_multiply(0.25));
        painter.rect_stroke(
            screen.shrink(8.0),
            12.0,
            egui::Stroke::new(3.0, accent),
            egui::StrokeKind::Inside,
        );
        painter.text(
            screen.center(),
            egui::Align2::CENTER_CENTER,
            "Drop to add to the queue",
            egui::FontId::proportional(28.0),
            ui.visuals().strong_text_color(),
        );
    }
}

impl Notice {
    fn text(text: String) -> Self {
        Notice {
            text,
            details: Vec::new(),
        }
    }

    fn skipped(skipped: &[Skipped]) -> Self {
        let count = skipped.len();
        let noun = if count == 1 { "file" } else { "files" };
        Notice {
            text: format!("Skipped {count} {noun} that Cutout cannot use."),
            details: skipped
                .iter()
                .map(|s| format!("{}: {}", s.path.display(), s.reason))
                .collect(),
        }
    }

    /// What came back from the last session: the jobs already with their
    /// provider carry on by themselves; the rest wait for Start.
    fn restored(restored: &[RestoredJob]) -> Self {
        let finishing = restored
            .iter()
            .filter(|r| r.accepted && r.job.remote_id.is_some())
            .count();
        Notice::text(restored_text(restored.len(), finishing))
    }
}

/// "12 jobs from your last session are back: 4 are finishing with their
/// provider; 8 are waiting — press Start to run them."
fn restored_text(total: usize, finishing: usize) -> String {
    let waiting = total - finishing;
    let jobs = |n: usize| if n == 1 { "job" } else { "jobs" };
    let are = |n: usize| if n == 1 { "is" } else { "are" };
    let them = |n: usize| if n == 1 { "it" } else { "them" };
    let their = |n: usize| if n == 1 { "its" } else { "their" };
    let back = format!(
        "{total} {} from your last session {} back",
        jobs(total),
        are(total)
    );
    match (finishing, waiting) {
        (_, 0) => format!("{back} and finishing with {} provider.", their(total)),
        (0, _) => format!("{back} and waiting — press Start to run {}.", them(total)),
        _ => format!(
            "{back}: {finishing} {} finishing with {} provider; {waiting} {} waiting — press Start to run {}.",
            are(finishing),
            their(finishing),
            are(waiting),
            them(waiting)
        ),
    }
}

impl eframe::App for CutoutApp {
    fn logic(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        self.drain_events(ctx);
        self.setup.receive();
        self.local.receive(ctx);
        self.form
            .follow_defaults(self.prefs.settings(), &self.setup);
        self.restore_when_keys_are_read();
        self.receive_intake();
        self.dropped_files(ctx);
        self.shortcuts(ctx);
        self.follow_default_out_dir();
        self.apply_form_to_unstarted();
        self.prefs.apply_theme(ctx);
        self.update_title(ctx);
        if self.queue.counts().active > 0 || self.intake.is_busy() {
            ctx.request_repaint_after(TICK_WHILE_BUSY);
        }
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        egui::Panel::top("toolbar").show(ui, |ui| {
            ui.add_space(4.0);
            self.top_bar_ui(ui);
            ui.add_space(4.0);
        });
        egui::Panel::bottom("status").show(ui, |ui| {
            status_bar_ui(ui, &self.queue);
        });
        egui::Panel::left("batch")
            .resizable(true)
            .default_size(290.0)
            .show(ui, |ui| self.batch_panel_ui(ui));
        let focused = self.selection.focused().and_then(|id| self.queue.row(id));
        if let Some(row) = focused {
            egui::Panel::right("preview")
                .resizable(true)
                .default_size(ui.available_width() * 0.45)
                .show(ui, |ui| {
                    self.preview.preview_ui(ui, row, self.form.background());
                });
        }
        egui::CentralPanel::default().show(ui, |ui| {
            self.notices_ui(ui);
            if self.queue.is_empty() {
                self.empty_state_ui(ui);
            } else {
                self.queue_panel
                    .queue_ui(ui, &self.queue, &mut self.selection, &self.commands);
            }
        });
        self.settings
            .settings_ui(ui.ctx(), &mut self.setup, &mut self.prefs, &mut self.local);
        if let Some(action) = self
            .welcome
            .welcome_ui(ui.ctx(), &mut self.setup, &mut self.local)
        {
            self.finish_welcome(action);
        }
        for action in self.history.history_ui(ui.ctx()) {
            match action {
                HistoryAction::RunAgain(job) => {
                    self.reruns_sent.push(job.clone());
                    self.commands.send(Command::Add(vec![job]));
                }
            }
        }
        self.drop_overlay_ui(ui);
    }

    fn on_exit(&mut self) {
        // Jobs are not cancelled: the history holds them as they are, and the
        // next start carries them on (polling the ones the provider already
        // has, so nothing is paid twice). Dropping the runtime stops their
        // tasks, which deletes any partial output.
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_restore_notice_says_what_carries_on_and_what_waits_for_start() {
        assert_eq!(
            restored_text(12, 4),
            "12 jobs from your last session are back: 4 are finishing with their provider; \
             8 are waiting — press Start to run them."
        );
        assert_eq!(
            restored_text(1, 0),
            "1 job from your last session is back and waiting — press Start to run it."
        );
        assert_eq!(
            restored_text(3, 3),
            "3 jobs from your last session are back and finishing with their provider."
        );
        assert_eq!(
            restored_text(2, 1),
            "2 jobs from your last session are back: 1 is finishing with its provider; \
             1 is waiting — press Start to run it."
        );
    }
}
