//! The console's event loop: keys, snapshots from the monitor thread, a tick and signals become
//! messages for the application state; the commands it answers with go to [`Control`] and their
//! outcomes come back as messages; the view is redrawn after each message (ratatui writes only the
//! cells that changed, and messages come a few times a second apart from keys). The loop decides
//! nothing itself.
use super::app::{App, Msg};
use super::control::Command;
use super::control::Control;
use super::monitor::Monitor;
use super::snapshot::Snapshot;
use super::terminal::{Screen, TerminalGuard};
use super::{settings, views};
use crossterm::event::{Event, EventStream, KeyEventKind};
use futures_util::StreamExt;
use std::collections::VecDeque;
use std::io;
use std::time::Duration;
use thiserror::Error;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

/// How often the monitor reads the output folder.
const SCAN_INTERVAL: Duration = Duration::from_millis(250);
const TICK: Duration = Duration::from_millis(250);

/// Why the console could not go on.
#[derive(Debug, Error)]
pub enum LoopError {
    #[error("starting the console: {0}")]
    Runtime(io::Error),
    #[error("opening the terminal: {0}")]
    Terminal(io::Error),
    #[error("starting the monitor: {0}")]
    MonitorNotStarted(io::Error),
    #[error("the monitor thread stopped")]
    MonitorStopped,
    #[error("installing signal handlers: {0}")]
    Signals(io::Error),
    #[error("drawing: {0}")]
    Drawing(io::Error),
    #[error("resizing: {0}")]
    Resizing(io::Error),
}

/// Runs the console until the user quits or the terminal goes away; returns what to print once
/// the terminal is restored, or why the console stopped. Jobs are never stopped by leaving.
pub fn run(monitor: Monitor, control: Control) -> Result<Option<String>, LoopError> {
    let (settings, notices) = settings::load_settings();
    let mut app = App::new(settings, settings::load_state(), notices);
    let outcome = run_app(&mut app, monitor, &control);
    if let Err(e) = settings::save_state(&app.saved_state()) {
        eprintln!("adarat: could not save the console's state: {e}");
    }
    outcome
}

/// The terminal is given back when this returns, before anything is printed.
fn run_app(
    app: &mut App,
    monitor: Monitor,
    control: &Control,
) -> Result<Option<String>, LoopError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(LoopError::Runtime)?;
    let mut terminal = TerminalGuard::take(app.mouse_capture()).map_err(LoopError::Terminal)?;
    runtime.block_on(serve(&mut terminal, app, monitor, control))
}

/// Reads the output folder a few times a second and sends each snapshot that differs from the
/// last; ends when the console has gone.
fn watch(mut monitor: Monitor, snapshots: mpsc::Sender<Snapshot>) {
    let mut last = None;
    loop {
        let snapshot = monitor.scan();
        if last.as_ref() != Some(&snapshot) {
            if snapshots.blocking_send(snapshot.clone()).is_err() {
                return;
            }
            last = Some(snapshot);
        }
        std::thread::sleep(SCAN_INTERVAL);
    }
}

async fn serve(
    screen: &mut Screen,
    app: &mut App,
    monitor: Monitor,
    control: &Control,
) -> Result<Option<String>, LoopError> {
    let (sender, mut snapshots) = mpsc::channel(2);
    std::thread::Builder::new()
        .name("monitor".to_string())
        .spawn(move || watch(monitor, sender))
        .map_err(LoopError::MonitorNotStarted)?;
    let mut hangup = signal(SignalKind::hangup()).map_err(LoopError::Signals)?;
    let mut terminate = signal(SignalKind::terminate()).map_err(LoopError::Signals)?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(LoopError::Signals)?;
    // Commands that wait on another program (`sbatch`) report here, so the console draws meanwhile.
    let (finished_sender, mut finished) = mpsc::unbounded_channel();
    let mut keys = EventStream::new();
    let mut tick = tokio::time::interval(TICK);
    let draw = |screen: &mut Screen, app: &App| {
        screen
            .draw(|frame| views::draw(frame, app))
            .map(|_| ())
            .map_err(LoopError::Drawing)
    };
    draw(screen, app)?;
    loop {
        let message = tokio::select! {
            event = keys.next() => match event {
                Some(Ok(Event::Key(key))) if key.kind == KeyEventKind::Press => Msg::Key(key),
                Some(Ok(Event::Resize(..))) => {
                    screen.autoresize().map_err(LoopError::Resizing)?;
                    draw(screen, app)?;
                    continue;
                }
                Some(Ok(_)) => continue,
                // The terminal went away: leave quietly, the jobs go on.
                Some(Err(_)) | None => return Ok(None),
            },
            snapshot = snapshots.recv() => match snapshot {
                Some(snapshot) => Msg::Snapshot(snapshot),
                None => return Err(LoopError::MonitorStopped),
            },
            Some(done) = finished.recv() => Msg::CommandDone(done),
            _ = tick.tick() => Msg::Tick,
            _ = hangup.recv() => return Ok(None),
            _ = terminate.recv() => return Ok(None),
            _ = interrupt.recv() => return Ok(None),
        };
        let mut commands = VecDeque::from(app.update(message));
        while let Some(command) = commands.pop_front() {
            let done = match command {
                Command::Quit { farewell } => return Ok(farewell),
                Command::Enqueue(jobs) => control.enqueue(&jobs, false),
                Command::Rerun(jobs) => control.enqueue(&jobs, true),
                Command::StartQueue => control.start_queue(),
                Command::Stop { run, owner } => control.stop(run, &owner),
                Command::Cancel { run, task } => control.cancel(run, task),
                Command::Submit(jobs) => {
                    let (control, finished) = (control.clone(), finished_sender.clone());
                    tokio::task::spawn_blocking(move || finished.send(control.submit(&jobs)));
                    continue;
                }
                Command::Export => control.export(),
                Command::MoveQueued { run, by } => control.move_queued(run, by),
                Command::RemoveQueued(run) => control.remove_queued(run),
            };
            commands.extend(app.update(Msg::CommandDone(done)));
        }
        draw(screen, app)?;
    }
}
