//! The console (README, "The console"): pure views over an application state that messages update.
//! The console never touches the GPU: queued jobs run in a detached worker process, and everything
//! shown is read back from the output folder, so jobs outlive the terminal.
pub mod app;
pub mod control;
pub mod event_loop;
pub mod keys;
pub mod monitor;
pub mod screens;
pub mod settings;
pub mod snapshot;
pub mod terminal;
pub mod views;
mod widgets;
