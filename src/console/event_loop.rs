//! The console's event loop: keys, snapshots from the monitor thread, a tick and signals become
//! messages for the application state; its commands go to [`Control`]; the view is redrawn after
//! each message (ratatui writes only the cells that changed, and messages come a few times a second
//! apart from keys).
use super::app::{App, Command, Msg};
use super::control::Control;
use super::monitor::Monitor;
use super::snapshot::{JobState, Snapshot};
use super::terminal::{self, Screen};
use super::{settings, views};
use crossterm::event::{Event, EventStream, KeyEventKind};
use futures_util::StreamExt;
use std::time::Duration;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

/// How often the monitor reads the output folder.
const SCAN_INTERVAL: Duration = Duration::from_millis(250);
const TICK: Duration = Duration::from_millis(250);

/// Runs the console until the user quits or the terminal goes away; returns what to print once
/// the terminal is restored. Jobs are never stopped by leaving.
pub fn run(monitor: Monitor, control: Control) -> Result<Option<String>, String> {
    let (settings, notices) = settings::load_settings();
    let mut app = App::new(settings, settings::load_state(), notices);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting the console: {e}"))?;
    let mut screen = terminal::take_over(app.mouse_capture())
        .map_err(|e| format!("opening the terminal: {e}"))?;
    let outcome = runtime.block_on(serve(&mut screen, &mut app, monitor, &control));
    terminal::restore();
    if let Err(e) = settings::save_state(&app.saved_state()) {
        eprintln!("adarat: could not save the console's state: {e}");
    }
    outcome
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
) -> Result<Option<String>, String> {
    let (sender, mut snapshots) = mpsc::channel(2);
    std::thread::Builder::new()
        .name("monitor".to_string())
        .spawn(move || watch(monitor, sender))
        .map_err(|e| format!("starting the monitor: {e}"))?;
    let signal_error = |e: std::io::Error| format!("installing signal handlers: {e}");
    let mut hangup = signal(SignalKind::hangup()).map_err(signal_error)?;
    let mut terminate = signal(SignalKind::terminate()).map_err(signal_error)?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(signal_error)?;
    let mut keys = EventStream::new();
    let mut tick = tokio::time::interval(TICK);
    let mut latest = Snapshot::default();
    let draw = |screen: &mut Screen, app: &App| {
        screen
            .draw(|frame| views::draw(frame, app))
            .map(|_| ())
            .map_err(|e| format!("drawing: {e}"))
    };
    draw(screen, app)?;
    loop {
        let message = tokio::select! {
            event = keys.next() => match event {
                Some(Ok(Event::Key(key))) if key.kind == KeyEventKind::Press => Msg::Key(key),
                Some(Ok(Event::Resize(..))) => {
                    screen.autoresize().map_err(|e| format!("resizing: {e}"))?;
                    draw(screen, app)?;
                    continue;
                }
                Some(Ok(_)) => continue,
                // The terminal went away: leave quietly, the jobs go on.
                Some(Err(_)) | None => return Ok(None),
            },
            snapshot = snapshots.recv() => match snapshot {
                Some(snapshot) => {
                    latest = snapshot.clone();
                    Msg::Snapshot(snapshot)
                }
                None => return Err("the monitor thread stopped".to_string()),
            },
            _ = tick.tick() => Msg::Tick,
            _ = hangup.recv() => return Ok(None),
            _ = terminate.recv() => return Ok(None),
            _ = interrupt.recv() => return Ok(None),
        };
        for command in app.update(message) {
            let command = match command {
                Command::Quit { farewell } => return Ok(farewell),
                // A job that runs now (perhaps started by `adarat run`) is not queued again.
                Command::Enqueue(jobs) => Command::Enqueue(
                    jobs.into_iter()
                        .filter(|job| {
                            !latest
                                .jobs
                                .iter()
                                .any(|row| &row.job == job && row.state == JobState::Running)
                        })
                        .collect(),
                ),
                other => other,
            };
            if matches!(&command, Command::Enqueue(jobs) if jobs.is_empty()) {
                app.update(Msg::Notice("already running".to_string()));
                continue;
            }
            let notice = match control.execute(&command) {
                Ok(line) => line,
                Err(error) => Some(format!("error: {error}")),
            };
            if let Some(line) = notice {
                app.update(Msg::Notice(line));
            }
        }
        draw(screen, app)?;
    }
}
