//! Cutout: batch background removal through remote providers (and, later, a
//! local model). The library holds everything the front ends share, so the
//! headless CLI and the desktop window drive exactly the same engine.

pub mod cli;
pub mod config;
pub mod diagnostics;
pub mod imaging;
pub mod jobs;
pub mod local;
pub mod logging;
pub mod paths;
pub mod providers;
pub mod secrets;
pub mod settings;
pub mod ui;
