//! The desktop window, on eframe/egui. Code here only draws and sends
//! [`Command`](crate::jobs::Command)s: the engine owns every job, and the
//! window reads a view model ([`view_model::QueueView`]) rebuilt from engine
//! events each frame. Nothing here waits on disk or network: folder scans,
//! file dialogs, thumbnails and previews run on worker threads and report
//! back through channels.

mod app;
mod composition;
mod form;
mod history;
mod intake;
mod local;
mod preview;
mod queue;
mod selection;
mod settings;
mod setup;
mod thumbnails;
mod view_model;
mod welcome;

pub use app::{CutoutApp, Groundwork, Startup};

/// "the model…" → "The model…": messages built mid-sentence, shown as a
/// line of their own.
fn sentence_case(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The green of "Done", the same in the queue and the History window;
/// egui's visuals have no success colour.
fn success_color(visuals: &egui::Visuals) -> egui::Color32 {
    if visuals.dark_mode {
        egui::Color32::from_rgb(96, 200, 120)
    } else {
        egui::Color32::from_rgb(24, 128, 56)
    }
}

/// The buttons of a modal that asks before destroying something: the
/// action, in the error colour so it reads as destructive, and Cancel, on
/// the right. `Some(true)` when the action was clicked, `Some(false)` for
/// Cancel.
fn confirm_buttons_ui(ui: &mut egui::Ui, action: &str) -> Option<bool> {
    let mut choice = None;
    egui::Sides::new().show(
        ui,
        |_| {},
        |ui| {
            let button =
                egui::Button::new(egui::RichText::new(action).color(ui.visuals().error_fg_color));
            if ui.add(button).clicked() {
                choice = Some(true);
            }
            if ui.button("Cancel").clicked() {
                choice = Some(false);
            }
        },
    );
    choice
}

/// The app id: the desktop file's name and the window's class, so the
/// desktop matches the window to its launcher and icon
/// (`packaging/linux/io.github.cutout.Cutout.desktop`).
pub const APP_ID: &str = "io.github.cutout.Cutout";

/// The window icon (the desktop file's icon is installed by the packages).
const ICON_PNG: &[u8] = include_bytes!("../../assets/icon/png/cutout-256.png");

/// Opens the window and runs until it is closed.
pub fn run(startup: Startup) -> eframe::Result {
    let viewport = egui::ViewportBuilder::default()
        .with_title("Cutout")
        .with_app_id(APP_ID)
        .with_inner_size([1280.0, 820.0])
        .with_min_inner_size([760.0, 480.0])
        .with_drag_and_drop(true);
    let viewport = match eframe::icon_data::from_png_bytes(ICON_PNG) {
        Ok(icon) => viewport.with_icon(icon),
        Err(e) => {
            tracing::warn!(%e, "the window icon cannot be read");
            viewport
        }
    };
    let options = eframe::NativeOptions {
        viewport,
        ..Default::default()
    };
    let probe_first_frame = (startup.env)(FIRST_FRAME_PROBE_VAR).is_some_and(|v| v == "1");
    // Creating the window and its renderer takes most of start-up and
    // little of a second core: the rest is done beside it.
    let env = std::sync::Arc::clone(&startup.env);
    let groundwork = std::thread::Builder::new()
        .name("cutout-start".to_owned())
        .spawn(move || Groundwork::prepare(&env))
        .map_err(|e| eframe::Error::AppCreation(e.into()))?;
    eframe::run_native(
        "Cutout",
        options,
        Box::new(move |cc| {
            let groundwork = groundwork
                .join()
                .map_err(|_| anyhow::anyhow!("Cutout's start-up thread stopped unexpectedly"))??;
            let app = CutoutApp::with_groundwork(&cc.egui_ctx, startup, groundwork);
            Ok(if probe_first_frame {
                Box::new(FirstFrameProbe::new(app))
            } else {
                Box::new(app)
            })
        }),
    )
}

/// Set to `1`, the window prints [`FIRST_FRAME_LINE`] once its first frame
/// is on screen and closes: how `cargo bench --bench app` times start-up
/// from outside the process, the same way for Cutout and for a bare egui
/// window.
pub const FIRST_FRAME_PROBE_VAR: &str = "CUTOUT_PROBE_FIRST_FRAME";

/// What [`FirstFrameProbe`] prints on standard output.
pub const FIRST_FRAME_LINE: &str = "first frame shown";

/// Wraps an app to report when its first frame has been painted, then close
/// the window. eframe calls `logic` at the start of each frame, after the
/// previous one was painted and presented, so the second frame's `logic` is
/// the first moment the window is known to be on screen. Public so the
/// start-up benchmark's reference window is measured by the same code.
pub struct FirstFrameProbe<A> {
    app: A,
    frames_started: u32,
}

impl<A: eframe::App> FirstFrameProbe<A> {
    /// Probes `app`'s first frame.
    pub fn new(app: A) -> Self {
        FirstFrameProbe {
            app,
            frames_started: 0,
        }
    }
}

impl<A: eframe::App> eframe::App for FirstFrameProbe<A> {
    fn logic(&mut self, ctx: &egui::Context, frame: &mut eframe::Frame) {
        self.frames_started += 1;
        if self.frames_started == 2 {
            use std::io::Write as _;
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{FIRST_FRAME_LINE}");
            let _ = out.flush();
            ctx.send_viewport_cmd(egui::ViewportCommand::Close);
        }
        self.app.logic(ctx, frame);
    }

    fn ui(&mut self, ui: &mut egui::Ui, frame: &mut eframe::Frame) {
        self.app.ui(ui, frame);
        // A second frame, even when nothing else asks for one.
        ui.ctx().request_repaint();
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        self.app.save(storage);
    }

    fn on_exit(&mut self) {
        self.app.on_exit();
    }
}
