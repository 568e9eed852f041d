//! The History window: past batches from the job history, newest first, each
//! opening onto its jobs, with a search by file name and filters by provider
//! and state. A result can be opened or shown in its folder, a finished job
//! run again (it joins the queue like a new one and waits for Start), and the
//! record of finished jobs cleared.
//!
//! Reading the history is SQLite work, so it runs on a worker thread with a
//! connection of its own ([`History`]): the window asks for a listing and
//! draws the last one it got, never waiting. Only the rows on screen are laid
//! out (every row has the same height), so a history of tens of thousands of
//! jobs scrolls as smoothly as a short one.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use egui::{
    Align, Align2, Color32, FontId, Layout, Rect, RichText, Sense, Stroke, UiBuilder, vec2,
};

use crate::jobs::NewJob;
use crate::jobs::job::{JobInput, JobState};
use crate::jobs::store::{
    BatchSummary, History, HistoryFilter, HistoryJob, StoreError, local_time,
};
use crate::providers::ProviderId;

/// Height of every row, batch or job. Fixed, because the scroll area finds
/// the visible rows by dividing the scroll offset by it.
const ROW_HEIGHT: f32 = 46.0;

/// How far job rows sit in from their batch's header.
const JOB_INDENT: f32 = 30.0;

/// Space around a row's contents.
const ROW_PADDING: f32 = 8.0;

/// Size of the secondary line in a job row (result path, error).
const DETAIL_TEXT_SIZE: f32 = 12.0;

/// How long typing in the search box must pause before the history is
/// searched, so each keystroke does not start a query.
const TYPING_PAUSE: Duration = Duration::from_millis(300);

/// How long to gather job changes before listing again while the window is
/// open: a batch finishing many jobs at once refreshes once.
const JOBS_CHANGED_PAUSE: Duration = Duration::from_millis(500);

/// The most jobs one listing holds, newest first; older ones are found by
/// searching or filtering.
const MAX_JOBS_LISTED: u64 = 20_000;

/// Which jobs the state menu shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum StateFilter {
    #[default]
    Any,
    Done,
    Failed,
    Cancelled,
    Unfinished,
}

impl StateFilter {
    const ALL: [StateFilter; 5] = [
        StateFilter::Any,
        StateFilter::Done,
        StateFilter::Failed,
        StateFilter::Cancelled,
        StateFilter::Unfinished,
    ];

    fn label(self) -> &'static str {
        match self {
            StateFilter::Any => "Any state",
            StateFilter::Done => "Done",
            StateFilter::Failed => "Failed",
            StateFilter::Cancelled => "Cancelled",
            StateFilter::Unfinished => "Unfinished",
        }
    }

    /// The history's name for this choice; `None` for all.
    fn state_name(self) -> Option<&'static str> {
        match self {
            StateFilter::Any => None,
            StateFilter::Done => Some("done"),
            StateFilter::Failed => Some("failed"),
            StateFilter::Cancelled => Some("cancelled"),
            StateFilter::Unfinished => Some(crate::jobs::store::UNFINISHED),
        }
    }
}

/// What the user asked to see.
#[derive(Debug, Clone, Default, PartialEq)]
struct Query {
    search: String,
    provider: Option<ProviderId>,
    state: StateFilter,
}

impl Query {
    /// Whether anything narrows the listing (every batch then opens, since
    /// the user is looking for jobs, not batches).
    fn narrows(&self) -> bool {
        !self.search.trim().is_empty() || self.provider.is_some() || self.state != StateFilter::Any
    }
}

/// One batch and the jobs of it that match.
struct Group {
    summary: BatchSummary,
    jobs: Vec<HistoryJob>,
}

/// The answer to a [`Query`].
struct Listing {
    query: Query,
    groups: Vec<Group>,
    /// Jobs in the whole history, whatever the query: none means a first run.
    total_jobs: u64,
    /// Finished jobs in the whole history: what "Clear history" deletes.
    finished_jobs: u64,
    /// More jobs matched than one listing holds.
    capped: bool,
}

/// What the window asks of its worker.
enum Request {
    List { generation: u64, query: Query },
    Clear,
}

/// What the worker answers.
enum Reply {
    Listed {
        generation: u64,
        listing: Result<Listing, String>,
    },
    Cleared(Result<usize, String>),
}

/// The thread that reads the history.
struct Worker {
    requests: mpsc::Sender<Request>,
    replies: mpsc::Receiver<Reply>,
}

impl Worker {
    fn spawn(path: PathBuf, ctx: egui::Context) -> std::io::Result<Worker> {
        let (requests, inbox) = mpsc::channel::<Request>();
        let (outbox, replies) = mpsc::channel();
        std::thread::Builder::new()
            .name("cutout-history".into())
            .spawn(move || {
                let mut history = None;
                while let Ok(first) = inbox.recv() {
                    let mut waiting = vec![first];
                    waiting.extend(inbox.try_iter());
                    // Only the newest listing is worth making; a clear
                    // always runs, in its place among them.
                    let newest_list = waiting
                        .iter()
                        .rposition(|r| matches!(r, Request::List { .. }));
                    for (index, request) in waiting.into_iter().enumerate() {
                        let reply = match request {
                            Request::List { .. } if Some(index) != newest_list => continue,
                            Request::List { generation, query } => Reply::Listed {
                                generation,
                                listing: connection(&mut history, &path)
                                    .and_then(|h| list(h, &query).map_err(|e| e.to_string())),
                            },
                            Request::Clear => Reply::Cleared(
                                connection(&mut history, &path)
                                    .and_then(|h| h.clear().map_err(|e| e.to_string())),
                            ),
                        };
                        if outbox.send(reply).is_err() {
                            return;
                        }
                        ctx.request_repaint();
                    }
                }
            })?;
        Ok(Worker { requests, replies })
    }
}

/// The worker's connection, opened on first use (and again after a failure).
fn connection<'h>(slot: &'h mut Option<History>, path: &Path) -> Result<&'h mut History, String> {
    if slot.is_none() {
        *slot = Some(History::open(path).map_err(|e| e.to_string())?);
    }
    slot.as_mut()
        .ok_or_else(|| format!("the job history cannot be opened: {}", path.display()))
}

/// Runs a query: the matching jobs grouped under their batches, newest
/// first, and the totals the window needs whatever the filter.
fn list(history: &History, query: &Query) -> Result<Listing, StoreError> {
    let filter = HistoryFilter {
        search: query.search.trim().to_owned(),
        provider: query.provider,
        state: query.state.state_name().map(str::to_owned),
        limit: Some(MAX_JOBS_LISTED),
    };
    let jobs = history.jobs(&filter)?;
    let summaries = history.batches(&HistoryFilter {
        limit: None,
        ..filter
    })?;
    let capped = jobs.len() as u64 >= MAX_JOBS_LISTED;
    let everything = history.batches(&HistoryFilter::default())?;
    Ok(Listing {
        query: query.clone(),
        groups: group(summaries, jobs),
        total_jobs: everything.iter().map(|b| b.jobs).sum(),
        finished_jobs: everything
            .iter()
            .map(|b| b.done + b.failed + b.cancelled)
            .sum(),
        capped,
    })
}

/// Puts each job under its batch. A job whose batch was never recorded (the
/// disk was full at the time) gets a group of its own making. Batches none
/// of whose jobs were listed are left out.
fn group(summaries: Vec<BatchSummary>, jobs: Vec<HistoryJob>) -> Vec<Group> {
    let mut index: HashMap<u64, usize> = HashMap::new();
    let mut groups: Vec<Group> = Vec::with_capacity(summaries.len());
    for summary in summaries {
        index.insert(summary.id, groups.len());
        groups.push(Group {
            summary,
            jobs: Vec::new(),
        });
    }
    for job in jobs {
        let at = match index.get(&job.batch) {
            Some(&at) => at,
            None => {
                index.insert(job.batch, groups.len());
                groups.push(Group {
                    summary: BatchSummary {
                        id: job.batch,
                        created_at_ms: job.created_at_ms,
                        jobs: 0,
                        done: 0,
                        failed: 0,
                        cancelled: 0,
                        providers: Vec::new(),
                    },
                    jobs: Vec::new(),
                });
                groups.len() - 1
            }
        };
        let group = &mut groups[at];
        if group.summary.jobs == 0 {
            // Made up here: count what it holds.
            let counted = &mut group.summary;
            counted.done += u64::from(matches!(job.state, JobState::Done { .. }));
            counted.failed += u64::from(matches!(job.state, JobState::Failed { .. }));
            if !counted.providers.contains(&job.settings.provider) {
                counted.providers.push(job.settings.provider);
            }
        }
        group.jobs.push(job);
    }
    groups.retain(|g| !g.jobs.is_empty());
    for group in &mut groups {
        if group.summary.jobs == 0 {
            group.summary.jobs = group.jobs.len() as u64;
        }
    }
    groups
}

/// A line of the list.
#[derive(Debug, Clone, Copy)]
enum Row {
    /// A batch's header: index into the listing's groups.
    Batch(usize),
    /// A job: its group and its place in it.
    Job(usize, usize),
}

/// What the window asks of the app.
#[derive(Debug, Clone)]
pub enum HistoryAction {
    /// Put this job in the queue again, exactly as it was set up.
    RunAgain(NewJob),
}

/// What a click in a job row asks for.
enum JobAction {
    Open(PathBuf),
    ShowFolder(PathBuf),
    RunAgain(Box<NewJob>, String),
}

/// A line under the filters saying how the last action went.
enum Note {
    Done(String),
    Problem(String),
}

/// The History window.
pub struct HistoryWindow {
    open: bool,
    /// The history database, or why this session has none.
    path: Result<PathBuf, String>,
    worker: Option<Worker>,
    query: Query,
    /// When to list again: after typing pauses, or after jobs changed.
    refresh_at: Option<Instant>,
    /// Counts listings asked for, so a slow answer to an older query is
    /// never shown over a newer one.
    generation: u64,
    loading: bool,
    listing: Option<Listing>,
    rows: Vec<Row>,
    /// Batches the user opened or closed, over the default (the newest
    /// open, or every one while searching).
    batch_open: HashMap<u64, bool>,
    /// Why the history could not be read.
    problem: Option<String>,
    note: Option<Note>,
    confirm_clear: bool,
    /// "Open" and "Show in folder" report problems here from their threads.
    errands: (mpsc::Sender<String>, mpsc::Receiver<String>),
}

impl HistoryWindow {
    /// A closed window reading the history at `path`, or explaining why
    /// there is none.
    pub fn new(path: Result<PathBuf, String>) -> Self {
        HistoryWindow {
            open: false,
            path,
            worker: None,
            query: Query::default(),
            refresh_at: None,
            generation: 0,
            loading: false,
            listing: None,
            rows: Vec::new(),
            batch_open: HashMap::new(),
            problem: None,
            note: None,
            confirm_clear: false,
            errands: mpsc::channel(),
        }
    }

    /// Whether the window is shown.
    pub fn is_open(&self) -> bool {
        self.open
    }

    /// Opens the window (listing afresh) or closes it.
    pub fn toggle(&mut self) {
        self.open = !self.open;
        self.confirm_clear = false;
        if self.open {
            self.note = None;
            self.refresh_at = Some(Instant::now());
        }
    }

    /// Jobs were added or finished: list again soon if the window is open.
    pub fn jobs_changed(&mut self) {
        if self.open && self.refresh_at.is_none() {
            self.refresh_at = Some(Instant::now() + JOBS_CHANGED_PAUSE);
        }
    }

    /// Draws the window while it is open; returns what the app should do.
    pub fn history_ui(&mut self, ctx: &egui::Context) -> Vec<HistoryAction> {
        self.receive();
        let mut actions = Vec::new();
        if !self.open {
            return actions;
        }
        if !self.confirm_clear && escape_pressed(ctx) {
            self.toggle();
            return actions;
        }
        self.refresh_if_due(ctx);
        let mut open = true;
        let mut job_actions = Vec::new();
        egui::Window::new("History")
            .open(&mut open)
            .collapsible(false)
            .resizable(true)
            .default_size([880.0, 600.0])
            .min_width(600.0)
            .min_height(280.0)
            .pivot(Align2::CENTER_CENTER)
            .default_pos(ctx.content_rect().center())
            .show(ctx, |ui| self.contents_ui(ui, &mut job_actions));
        if !open {
            self.toggle();
        }
        for action in job_actions {
            match action {
                JobAction::Open(path) => self.open_in_background(ctx, path),
                JobAction::ShowFolder(path) => self.open_in_background(ctx, path),
                JobAction::RunAgain(job, name) => {
                    self.note = Some(Note::Done(format!(
                        "{name} is back in the queue. Press Start to run it."
                    )));
                    actions.push(HistoryAction::RunAgain(*job));
                }
            }
        }
        if self.confirm_clear {
            self.confirm_clear_ui(ctx);
        }
        actions
    }

    /// Takes in the worker's answers and the errands' problems.
    fn receive(&mut self) {
        for problem in self.errands.1.try_iter() {
            self.note = Some(Note::Problem(problem));
        }
        let Some(worker) = &self.worker else { return };
        let replies: Vec<Reply> = worker.replies.try_iter().collect();
        for reply in replies {
            match reply {
                Reply::Listed {
                    generation,
                    listing,
                } if generation == self.generation => {
                    self.loading = false;
                    match listing {
                        Ok(listing) => {
                            self.problem = None;
                            self.listing = Some(listing);
                            self.rebuild_rows();
                        }
                        Err(problem) => self.problem = Some(problem),
                    }
                }
                Reply::Listed { .. } => {}
                Reply::Cleared(Ok(deleted)) => {
                    let noun = if deleted == 1 { "job" } else { "jobs" };
                    self.note = Some(Note::Done(format!(
                        "Cleared the record of {deleted} finished {noun}."
                    )));
                    self.refresh_at = Some(Instant::now());
                }
                Reply::Cleared(Err(problem)) => self.note = Some(Note::Problem(problem)),
            }
        }
    }

    fn refresh_if_due(&mut self, ctx: &egui::Context) {
        let Some(at) = self.refresh_at else { return };
        let now = Instant::now();
        if now < at {
            ctx.request_repaint_after(at - now);
            return;
        }
        self.refresh_at = None;
        self.generation += 1;
        let request = Request::List {
            generation: self.generation,
            query: self.query.clone(),
        };
        self.send(ctx, request);
        self.loading = self.problem.is_none();
    }

    /// Hands a request to the worker, starting it on first use.
    fn send(&mut self, ctx: &egui::Context, request: Request) {
        let path = match &self.path {
            Ok(path) => path.clone(),
            Err(why) => {
                self.problem = Some(why.clone());
                return;
            }
        };
        if self.worker.is_none() {
            match Worker::spawn(path, ctx.clone()) {
                Ok(worker) => self.worker = Some(worker),
                Err(e) => {
                    self.problem =
                        Some(format!("Cutout could not start reading the history ({e})."));
                    return;
                }
            }
        }
        let sent = self
            .worker
            .as_ref()
            .is_some_and(|w| w.requests.send(request).is_ok());
        if !sent {
            // The thread died (it never should); start a new one next time.
            self.worker = None;
            self.problem = Some(
                "Cutout stopped reading the history; close and reopen this window.".to_owned(),
            );
        }
    }

    fn rebuild_rows(&mut self) {
        self.rows.clear();
        let Some(listing) = &self.listing else { return };
        let narrows = listing.query.narrows();
        for (g, group) in listing.groups.iter().enumerate() {
            self.rows.push(Row::Batch(g));
            let open = self
                .batch_open
                .get(&group.summary.id)
                .copied()
                .unwrap_or(narrows || g == 0);
            if open {
                self.rows
                    .extend((0..group.jobs.len()).map(|j| Row::Job(g, j)));
            }
        }
    }

    fn contents_ui(&mut self, ui: &mut egui::Ui, actions: &mut Vec<JobAction>) {
        self.filters_ui(ui);
        if let Some(note) = &self.note {
            let (text, color) = match note {
                Note::Done(text) => (text, ui.visuals().text_color()),
                Note::Problem(text) => (text, ui.visuals().error_fg_color),
            };
            ui.add(egui::Label::new(RichText::new(text).color(color)).wrap());
        }
        ui.separator();
        if let Some(problem) = &self.problem {
            ui.add_space(8.0);
            ui.colored_label(ui.visuals().error_fg_color, problem);
            return;
        }
        let Some(listing) = &self.listing else {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label("Reading the history…");
            });
            return;
        };
        if listing.total_jobs == 0 {
            centered_message_ui(
                ui,
                "No jobs yet — finished batches show up here.",
                "Every job you run is remembered, so you can find a result or run it again later.",
            );
            return;
        }
        if listing.groups.is_empty() {
            centered_message_ui(
                ui,
                "No jobs match.",
                "Try another name, or show every provider and state.",
            );
            return;
        }
        if listing.capped {
            ui.label(
                RichText::new(format!(
                    "Showing the newest {MAX_JOBS_LISTED} matching jobs. Search or filter to find older ones."
                ))
                .weak(),
            );
        }
        self.list_ui(ui, actions);
    }

    fn filters_ui(&mut self, ui: &mut egui::Ui) {
        let before = self.query.clone();
        let mut search_now = false;
        ui.horizontal(|ui| {
            let label = ui.label("Search");
            let search = ui
                .add(
                    egui::TextEdit::singleline(&mut self.query.search)
                        .hint_text("File name")
                        .desired_width(200.0),
                )
                .labelled_by(label.id)
                .on_hover_text("Show only jobs whose file name or web address contains this");
            search_now = search.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
            ui.add_space(8.0);
            let label = ui.label("Provider");
            let provider_name = self
                .query
                .provider
                .map_or("All providers", |id| id.info().name);
            egui::ComboBox::from_id_salt("history provider")
                .selected_text(provider_name)
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut self.query.provider, None, "All providers");
                    for id in ProviderId::ALL {
                        ui.selectable_value(&mut self.query.provider, Some(id), id.info().name);
                    }
                })
                .response
                .labelled_by(label.id)
                .on_hover_text("Show only one provider's jobs");
            ui.add_space(8.0);
            let label = ui.label("State");
            egui::ComboBox::from_id_salt("history state")
                .selected_text(self.query.state.label())
                .show_ui(ui, |ui| {
                    for state in StateFilter::ALL {
                        ui.selectable_value(&mut self.query.state, state, state.label());
                    }
                })
                .response
                .labelled_by(label.id)
                .on_hover_text("Show only jobs that ended this way");
            ui.with_layout(Layout::right_to_left(Align::Center), |ui| {
                let finished = self.listing.as_ref().map_or(0, |l| l.finished_jobs);
                if ui
                    .add_enabled(finished > 0, egui::Button::new("Clear history…"))
                    .on_hover_text("Forget finished jobs; your images and results are not touched")
                    .on_disabled_hover_text("No finished jobs to forget")
                    .clicked()
                {
                    self.confirm_clear = true;
                }
                if self.loading {
                    ui.spinner();
                }
            });
        });
        if search_now {
            self.refresh_at = Some(Instant::now());
        } else if self.query.search != before.search {
            self.refresh_at = Some(Instant::now() + TYPING_PAUSE);
        } else if self.query != before {
            self.refresh_at = Some(Instant::now());
        }
    }

    fn list_ui(&mut self, ui: &mut egui::Ui, actions: &mut Vec<JobAction>) {
        let Some(listing) = &self.listing else { return };
        let palette = Palette::new(ui.visuals());
        let spacing = ui.spacing().item_spacing;
        let mut toggled = None;
        let rows = &self.rows;
        let batch_open = &self.batch_open;
        let narrows = listing.query.narrows();
        ui.scope(|ui| {
            // Rows touch; a hairline separates them.
            ui.spacing_mut().item_spacing.y = 0.0;
            egui::ScrollArea::vertical()
                .auto_shrink([false, false])
                .show_rows(ui, ROW_HEIGHT, rows.len(), |ui, range| {
                    for row in &rows[range] {
                        match *row {
                            Row::Batch(g) => {
                                let summary = &listing.groups[g].summary;
                                let open = batch_open
                                    .get(&summary.id)
                                    .copied()
                                    .unwrap_or(narrows || g == 0);
                                if batch_row_ui(ui, summary, open, &palette).clicked() {
                                    toggled = Some((summary.id, !open));
                                }
                            }
                            Row::Job(g, j) => {
                                let job = &listing.groups[g].jobs[j];
                                job_row_ui(ui, job, &palette, spacing, actions);
                            }
                        }
                    }
                });
        });
        if let Some((id, open)) = toggled {
            self.batch_open.insert(id, open);
            self.rebuild_rows();
        }
    }

    fn confirm_clear_ui(&mut self, ctx: &egui::Context) {
        let finished = self.listing.as_ref().map_or(0, |l| l.finished_jobs);
        let mut choice = None;
        let modal = egui::Modal::new(egui::Id::unique("history clear")).show(ctx, |ui| {
            ui.set_width(400.0);
            ui.heading("Clear history?");
            ui.add_space(4.0);
            let noun = if finished == 1 { "job" } else { "jobs" };
            ui.label(format!(
                "Delete the record of {finished} finished {noun}? Your images and results stay where they are."
            ));
            ui.label(
                RichText::new("Jobs that have not finished are kept, so they can still carry on.")
                    .weak(),
            );
            ui.add_space(12.0);
            if let Some(answer) = crate::ui::confirm_buttons_ui(ui, "Clear") {
                choice = Some(answer);
            }
        });
        if choice.is_none() && modal.should_close() {
            choice = Some(false);
        }
        match choice {
            Some(true) => {
                self.confirm_clear = false;
                self.send(ctx, Request::Clear);
            }
            Some(false) => self.confirm_clear = false,
            None => {}
        }
    }

    /// Hands a file or folder to the desktop on a thread of its own (some
    /// platforms' openers take a moment); a problem comes back as a note.
    fn open_in_background(&self, ctx: &egui::Context, path: PathBuf) {
        let problems = self.errands.0.clone();
        let wake = ctx.clone();
        let spawned = std::thread::Builder::new()
            .name("cutout-open".into())
            .spawn(move || {
                let path = std::path::absolute(&path).unwrap_or(path);
                let problem = if !path.exists() {
                    Some(format!(
                        "It is no longer there (moved or deleted): {}",
                        path.display()
                    ))
                } else {
                    open::that(&path).err().map(|e| {
                        tracing::warn!("cannot open {}: {e}", path.display());
                        let what = if path.is_dir() {
                            "Cutout could not open your file manager. The folder is"
                        } else {
                            "No application on this computer offered to open this file. It is"
                        };
                        format!("{what}: {}", path.display())
                    })
                };
                if let Some(problem) = problem {
                    let _ = problems.send(problem);
                    wake.request_repaint();
                }
            });
        if let Err(e) = spawned {
            let _ = self
                .errands
                .0
                .send(format!("Cutout could not start this action ({e})."));
        }
    }
}

/// The colours rows use, worked out once per frame.
struct Palette {
    success: Color32,
    error: Color32,
    accent: Color32,
    weak: Color32,
    text: Color32,
    strong: Color32,
    header_fill: Color32,
    hover_fill: Color32,
    separator: Stroke,
}

impl Palette {
    fn new(visuals: &egui::Visuals) -> Self {
        let success = crate::ui::success_color(visuals);
        Palette {
            success,
            error: visuals.error_fg_color,
            accent: visuals.hyperlink_color,
            weak: visuals.weak_text_color(),
            text: visuals.text_color(),
            strong: visuals.strong_text_color(),
            header_fill: visuals.faint_bg_color,
            hover_fill: visuals.widgets.hovered.weak_bg_fill.gamma_multiply(0.5),
            separator: Stroke::new(1.0, visuals.widgets.noninteractive.bg_stroke.color),
        }
    }
}

/// A batch's header: when, how many, how it went, with which providers.
/// Clicking it opens or closes the batch.
fn batch_row_ui(
    ui: &mut egui::Ui,
    summary: &BatchSummary,
    open: bool,
    palette: &Palette,
) -> egui::Response {
    let width = ui.available_width();
    let (rect, response) = ui.allocate_exact_size(vec2(width, ROW_HEIGHT), Sense::click());
    let when = local_time(summary.created_at_ms);
    let counts = batch_counts(summary);
    let providers = summary
        .providers
        .iter()
        .map(|p| p.info().name)
        .collect::<Vec<_>>()
        .join(", ");
    response.widget_info(|| {
        egui::WidgetInfo::selected(
            egui::Role::DisclosureTriangle,
            true,
            open,
            format!("Batch of {when}, {counts}"),
        )
    });
    if !ui.is_rect_visible(rect) {
        return response;
    }
    let painter = ui.painter_at(rect);
    let fill = if response.hovered() {
        palette.hover_fill
    } else {
        palette.header_fill
    };
    painter.rect_filled(rect.shrink2(vec2(0.0, 2.0)), 4.0, fill);
    let arrow = Rect::from_center_size(
        egui::pos2(rect.left() + ROW_PADDING + 7.0, rect.center().y),
        vec2(9.0, 9.0),
    );
    let points = if open {
        vec![arrow.left_top(), arrow.right_top(), arrow.center_bottom()]
    } else {
        vec![arrow.left_top(), arrow.right_center(), arrow.left_bottom()]
    };
    painter.add(egui::Shape::convex_polygon(
        points,
        palette.text,
        Stroke::NONE,
    ));
    let text_left = rect.left() + JOB_INDENT;
    let when_rect = painter.text(
        egui::pos2(text_left, rect.center().y),
        Align2::LEFT_CENTER,
        &when,
        FontId::proportional(15.0),
        palette.strong,
    );
    painter.text(
        egui::pos2(when_rect.right() + 16.0, rect.center().y),
        Align2::LEFT_CENTER,
        &counts,
        FontId::proportional(14.0),
        palette.text,
    );
    painter.text(
        egui::pos2(rect.right() - ROW_PADDING, rect.center().y),
        Align2::RIGHT_CENTER,
        providers,
        FontId::proportional(13.0),
        palette.weak,
    );
    response.on_hover_text(if open {
        "Hide this batch's jobs"
    } else {
        "Show this batch's jobs"
    })
}

/// "12 jobs · 10 done · 2 failed".
fn batch_counts(summary: &BatchSummary) -> String {
    let noun = if summary.jobs == 1 { "job" } else { "jobs" };
    let mut parts = vec![format!("{} {noun}", summary.jobs)];
    if summary.done > 0 {
        parts.push(format!("{} done", summary.done));
    }
    if summary.failed > 0 {
        parts.push(format!("{} failed", summary.failed));
    }
    parts.join(" · ")
}

/// One past job: name and outcome (result path or error), state, provider
/// and model, and what can be done with it.
fn job_row_ui(
    ui: &mut egui::Ui,
    job: &HistoryJob,
    palette: &Palette,
    spacing: egui::Vec2,
    actions: &mut Vec<JobAction>,
) {
    let width = ui.available_width();
    let (rect, _) = ui.allocate_exact_size(vec2(width, ROW_HEIGHT), Sense::hover());
    if !ui.is_rect_visible(rect) {
        return;
    }
    ui.painter()
        .hline(rect.x_range(), rect.bottom() - 0.5, palette.separator);
    let inner = rect.shrink2(vec2(ROW_PADDING, 0.0));
    let buttons_width = 270.0_f32.min(inner.width() * 0.4);
    let provider_width = 140.0;
    let state_width = 130.0;
    let buttons = Rect::from_min_max(
        egui::pos2(inner.right() - buttons_width, inner.top()),
        inner.max,
    );
    let provider = Rect::from_min_max(
        egui::pos2(buttons.left() - provider_width, inner.top()),
        egui::pos2(buttons.left() - 8.0, inner.bottom()),
    );
    let state = Rect::from_min_max(
        egui::pos2(provider.left() - state_width, inner.top()),
        egui::pos2(provider.left() - 8.0, inner.bottom()),
    );
    let main = Rect::from_min_max(
        egui::pos2(inner.left() + JOB_INDENT, inner.top()),
        egui::pos2(state.left() - 12.0, inner.bottom()),
    );
    let name = short_name(&job.input);
    let two_lines = |ui: &mut egui::Ui| ui.add_space((ROW_HEIGHT - 34.0) / 2.0);

    column_ui(ui, main, spacing, Layout::top_down(Align::Min), |ui| {
        two_lines(ui);
        ui.add(
            egui::Label::new(RichText::new(&name).color(palette.strong))
                .truncate()
                .selectable(false),
        )
        .on_hover_text(job.input.display_name());
        let (detail, full, color) = match &job.state {
            JobState::Done { outputs } => match outputs.first() {
                Some(output) => (saved_as(output), output.display().to_string(), palette.weak),
                None => (String::new(), String::new(), palette.weak),
            },
            JobState::Failed { error, .. } => (error.clone(), error.clone(), palette.error),
            _ => {
                let input = job.input.display_name();
                (input.clone(), input, palette.weak)
            }
        };
        ui.add(
            egui::Label::new(RichText::new(&detail).size(DETAIL_TEXT_SIZE).color(color))
                .truncate()
                .show_tooltip_when_elided(false),
        )
        .on_hover_text(full);
    });
    column_ui(ui, state, spacing, Layout::top_down(Align::Min), |ui| {
        two_lines(ui);
        let (label, color) = state_look(&job.state, palette);
        let shown = ui.add(
            egui::Label::new(RichText::new(label).color(color))
                .truncate()
                .selectable(false),
        );
        if !job.state.is_terminal() {
            shown.on_hover_text(
                "Cutout was closed before this job finished, or it is running now. \
                 Unfinished jobs carry on the next time Cutout starts.",
            );
        }
        if let Some(at) = job.finished_at_ms {
            ui.add(
                egui::Label::new(
                    RichText::new(local_time(at))
                        .size(DETAIL_TEXT_SIZE)
                        .color(palette.weak),
                )
                .truncate()
                .selectable(false),
            );
        }
    });
    column_ui(ui, provider, spacing, Layout::top_down(Align::Min), |ui| {
        two_lines(ui);
        ui.add(
            egui::Label::new(job.settings.provider.info().name)
                .truncate()
                .selectable(false),
        );
        ui.add(
            egui::Label::new(
                RichText::new(&job.settings.model)
                    .size(DETAIL_TEXT_SIZE)
                    .color(palette.weak),
            )
            .truncate()
            .selectable(false),
        );
    });
    column_ui(
        ui,
        buttons,
        spacing,
        Layout::right_to_left(Align::Center),
        |ui| {
            if job.state.is_terminal()
                && ui
                    .button("↻ Run again")
                    .on_hover_text("Add this job to the queue again, set up as it was")
                    .clicked()
            {
                actions.push(JobAction::RunAgain(Box::new(job.rerun()), name.clone()));
            }
            if let JobState::Done { outputs } = &job.state
                && let Some(output) = outputs.first()
            {
                if let Some(folder) = output.parent()
                    && ui
                        .button("Show in folder")
                        .on_hover_text(format!("Open the folder: {}", folder.display()))
                        .clicked()
                {
                    actions.push(JobAction::ShowFolder(folder.to_owned()));
                }
                if ui
                    .button("Open")
                    .on_hover_text(format!("Open the result: {}", output.display()))
                    .clicked()
                {
                    actions.push(JobAction::Open(output.clone()));
                }
            }
        },
    );
}

/// Where a result went, file name first since the end of a long line is
/// cut off: "shoe.png in /Users/me/Pictures/Cutout".
fn saved_as(output: &Path) -> String {
    let name = output
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match output.parent() {
        Some(folder) if !folder.as_os_str().is_empty() => {
            format!("{name} in {}", folder.display())
        }
        _ => name,
    }
}

/// The state in a word and its colour.
fn state_look(state: &JobState, palette: &Palette) -> (&'static str, Color32) {
    match state {
        JobState::Done { .. } => ("✔ Done", palette.success),
        JobState::Failed { .. } => ("Failed", palette.error),
        JobState::Cancelled => ("Cancelled", palette.weak),
        _ => ("Unfinished", palette.accent),
    }
}

/// A child area of a row, with normal widget spacing, clipped to it. The
/// row already took its space, so the column must not move the list's
/// cursor (an empty column would pull the next row up).
fn column_ui(
    ui: &mut egui::Ui,
    rect: Rect,
    spacing: egui::Vec2,
    layout: Layout,
    add_contents: impl FnOnce(&mut egui::Ui),
) {
    if rect.width() <= 0.0 {
        return;
    }
    let mut column = ui.new_child(UiBuilder::new().max_rect(rect).layout(layout));
    column.spacing_mut().item_spacing = spacing;
    column.set_clip_rect(rect.intersect(ui.clip_rect()));
    add_contents(&mut column);
}

fn centered_message_ui(ui: &mut egui::Ui, heading: &str, detail: &str) {
    ui.vertical_centered(|ui| {
        ui.add_space((ui.available_height() * 0.3).min(160.0));
        ui.label(RichText::new("🕘").size(48.0).weak());
        ui.heading(heading);
        ui.label(RichText::new(detail).weak());
    });
}

/// The name a row shows: the file name, or a URL's last path segment (its
/// host when it has none).
fn short_name(input: &JobInput) -> String {
    match input {
        JobInput::File { path, .. } => path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string()),
        JobInput::Url(url) => url
            .path_segments()
            .and_then(|mut s| s.next_back())
            .filter(|s| !s.is_empty())
            .map(|s| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8_lossy()
                    .into_owned()
            })
            .or_else(|| url.host_str().map(str::to_owned))
            .unwrap_or_else(|| url.to_string()),
    }
}

fn escape_pressed(ctx: &egui::Context) -> bool {
    ctx.input(|i| {
        i.raw.events.iter().any(|event| {
            matches!(
                event,
                egui::Event::Key {
                    key: egui::Key::Escape,
                    pressed: true,
                    ..
                }
            )
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::job::{InputKind, Job, JobId};
    use crate::jobs::store::JobStore;
    use crate::jobs::{JobSettings, OutputSpec};

    fn settings(provider: ProviderId) -> JobSettings {
        JobSettings {
            provider,
            model: provider.info().default_model().to_owned(),
            options: Default::default(),
            output: OutputSpec {
                dir: "/out".into(),
                format: None,
                quality: None,
                composition: Default::default(),
                naming: Default::default(),
            },
            allow_downscale: false,
        }
    }

    fn job(id: u64, name: &str, provider: ProviderId) -> Job {
        Job {
            id: JobId(id),
            input: JobInput::File {
                path: format!("/photos/{name}").into(),
                root: None,
            },
            kind: Some(InputKind::ImageFile),
            provider,
            model: provider.info().default_model().to_owned(),
            remote_id: None,
            state: JobState::Queued,
            credits_charged: None,
            warnings: Vec::new(),
        }
    }

    /// Two batches: a finished one (done, failed) and one with a job still
    /// waiting.
    fn two_batches(path: &Path) -> JobStore {
        let mut store = JobStore::open(path).unwrap().store;
        let first = store.begin_batch().unwrap();
        for (id, name, state) in [
            (
                1,
                "shoe.jpg",
                JobState::Done {
                    outputs: vec!["/out/shoe.png".into()],
                },
            ),
            (
                2,
                "bag.jpg",
                JobState::Failed {
                    error: "refused".into(),
                    retryable: false,
                },
            ),
        ] {
            let mut j = job(id, name, ProviderId::Removebg);
            store
                .record_added(Some(first), &j, &settings(ProviderId::Removebg))
                .unwrap();
            j.state = state;
            store.record_changed(&j, true, None).unwrap();
        }
        let second = store.begin_batch().unwrap();
        store
            .record_added(
                Some(second),
                &job(3, "hat.jpg", ProviderId::Removit),
                &settings(ProviderId::Removit),
            )
            .unwrap();
        store
    }

    fn listed(listing: &Listing) -> Vec<(u64, Vec<u64>)> {
        listing
            .groups
            .iter()
            .map(|g| (g.summary.id, g.jobs.iter().map(|j| j.id.0).collect()))
            .collect()
    }

    #[test]
    fn jobs_are_listed_under_their_batches_newest_first_with_totals() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.sqlite3");
        let _store = two_batches(&path);
        let history = History::open(&path).unwrap();
        let listing = list(&history, &Query::default()).unwrap();
        assert_eq!(listed(&listing), [(2, vec![3]), (1, vec![2, 1])]);
        assert_eq!(listing.total_jobs, 3);
        assert_eq!(listing.finished_jobs, 2);
        assert_eq!(
            batch_counts(&listing.groups[1].summary),
            "2 jobs · 1 done · 1 failed"
        );
    }

    #[test]
    fn the_unfinished_filter_gathers_every_state_short_of_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.sqlite3");
        let _store = two_batches(&path);
        let history = History::open(&path).unwrap();
        let query = |state, search: &str| Query {
            search: search.into(),
            provider: None,
            state,
        };
        let unfinished = list(&history, &query(StateFilter::Unfinished, "")).unwrap();
        assert_eq!(listed(&unfinished), [(2, vec![3])]);
        assert_eq!(unfinished.groups[0].summary.jobs, 1);
        let failed = list(&history, &query(StateFilter::Failed, "")).unwrap();
        assert_eq!(listed(&failed), [(1, vec![2])]);
        let searched = list(&history, &query(StateFilter::Any, "SHOE")).unwrap();
        assert_eq!(listed(&searched), [(1, vec![1])]);
        assert_eq!(searched.total_jobs, 3, "totals ignore the filter");
    }
}
