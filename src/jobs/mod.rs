//! The job model and the engine that drives jobs through providers. Nothing in
//! here knows about egui or the terminal: front ends send [`events::Command`]s
//! and read [`events::Event`]s.

pub mod engine;
pub mod events;
pub mod inputs;
pub mod job;
pub mod naming;
pub mod output;
pub mod store;

pub use engine::{CommandSender, Engine, EngineConfig, EngineHandle, PollPolicy, Waker};
pub use events::{Command, Event, JobSettings, NewJob, OutputSpec};
pub use job::{InputKind, Job, JobId, JobInput, JobState, Transition};
