//! The job model and the engine that drives jobs through providers. Nothing in
//! here knows about egui or the terminal: front ends send [`events::Command`]s
//! and read [`events::Event`]s.

pub mod engine;
pub mod events;
pub mod job;
pub mod output;

pub use engine::{Engine, EngineConfig, EngineHandle, PollPolicy};
pub use events::{Command, Event, NewJob};
pub use job::{InputKind, Job, JobId, JobInput, JobState, Transition};
