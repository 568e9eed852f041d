//! End-to-end tests of the `cutout` binary (`batch`, `providers`, `health`)
//! against fake providers on 127.0.0.1: nothing here touches the network.
//! One test binary for all of them keeps link time low in CI.

#[path = "fakes/mod.rs"]
mod fakes;

#[path = "batch/commands.rs"]
mod commands;
#[path = "batch/disk.rs"]
mod disk;
#[path = "batch/faults.rs"]
mod faults;
#[path = "batch/harness.rs"]
mod harness;
#[path = "batch/inputs.rs"]
mod inputs;
#[path = "batch/keys.rs"]
mod keys;
#[path = "batch/models.rs"]
mod models;
#[path = "batch/outputs.rs"]
mod outputs;
#[path = "batch/removebg.rs"]
mod removebg;
#[path = "batch/removebgvideo.rs"]
mod removebgvideo;
#[path = "batch/removit.rs"]
mod removit;
#[path = "batch/resume.rs"]
mod resume;
#[path = "batch/uploadcare.rs"]
mod uploadcare;
