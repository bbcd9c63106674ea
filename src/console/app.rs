//! The console's application state and its update function: messages in, state and commands out.
use super::snapshot::Snapshot;
use crate::vocab::JobName;
use crossterm::event::KeyEvent;

/// Everything that changes the application state.
#[derive(Clone, Debug)]
pub enum Msg {
    Key(KeyEvent),
    /// The monitor's latest view of the output folder.
    Snapshot(Snapshot),
    /// A few times a second, for messages that expire.
    Tick,
}

/// What the application asks the outside world to do; the event loop carries it out.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// Append these jobs to the queue (skipping those already queued or running) and start the
    /// queue (un-pause it and make sure a worker runs it).
    Enqueue(Vec<JobName>),
    /// Un-pause the queue and make sure a worker runs it.
    StartQueue,
    /// Stop the running job (SIGTERM to its process); the queue pauses.
    Stop {
        job: JobName,
        pid: u32,
    },
    /// Move a queued job by this many places (negative: earlier).
    MoveQueued {
        job: JobName,
        by: isize,
    },
    RemoveQueued(JobName),
    /// Leave the console; `farewell` is printed after the terminal is restored.
    Quit {
        farewell: Option<String>,
    },
}
