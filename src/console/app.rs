//! The console's application state and its update function: messages in, state and commands out.
//! The state is the latest snapshot plus the console's own: cursor, selection, screen, popup and a
//! transient status message. Everything else is derived from the snapshot when asked. Every
//! decision is taken here; the event loop only carries out the commands and brings back their
//! outcomes, which the application words.
use super::control::ControlError;
use super::keys::{Action, Key, KeyTable};
use super::settings::{SavedState, Settings};
use super::snapshot::{JobRow, JobState, Live, Snapshot};
use crate::vocab::{JobName, Mode, Status};
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use std::collections::BTreeSet;

/// Everything that changes the application state.
#[derive(Debug)]
pub enum Msg {
    Key(KeyEvent),
    /// The monitor's latest view of the output folder.
    Snapshot(Snapshot),
    /// A few times a second, for messages that expire.
    Tick,
    /// What a command did in the outside world, or why it did not happen.
    CommandDone(Result<Outcome, ControlError>),
}

/// What the application asks the outside world to do; the event loop carries it out.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// Append these jobs to the queue (skipping those already waiting) and start the queue
    /// (un-pause it and make sure a worker runs it).
    Enqueue(Vec<JobName>),
    /// Un-pause the queue and make sure a worker runs it.
    StartQueue,
    /// Stop the running job (SIGTERM to its process); the queue pauses.
    Stop {
        job: JobName,
        pid: u32,
    },
    /// Cancel a job's Slurm task (`scancel`): its run stops at its next batch.
    Cancel {
        job: JobName,
        task: String,
    },
    /// Submit these jobs (and the teachers they lack) to Slurm with `adarat submit`.
    Submit(Vec<JobName>),
    /// Write the study's tables, in every format, into the output folder's `report/`.
    Export,
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

/// What a command did; the application words it for the status line.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// The jobs that went into the queue (none when all were waiting already); a worker runs it.
    Enqueued {
        added: Vec<JobName>,
    },
    /// The queue is un-paused and a worker runs it.
    QueueStarted,
    /// The job's process was asked to stop at its next batch (which pauses the queue).
    StopRequested {
        job: JobName,
    },
    MovedInQueue,
    RemovedFromQueue {
        job: JobName,
    },
    /// Slurm took the request to cancel the job's task.
    CancelRequested {
        job: JobName,
        task: String,
    },
    /// `adarat submit` submitted the arrays it names.
    Submitted {
        arrays: Vec<String>,
    },
    /// The study's tables were written into this folder.
    Exported {
        folder: std::path::PathBuf,
        files: usize,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Screen {
    Grid,
    Live,
    Results,
    Compare,
    /// The study's tables for the cursor's dataset (docs/report.md).
    Study,
}

impl Screen {
    pub const ALL: [Screen; 5] = [
        Screen::Grid,
        Screen::Live,
        Screen::Results,
        Screen::Compare,
        Screen::Study,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Screen::Grid => "Grid",
            Screen::Live => "Live",
            Screen::Results => "Results",
            Screen::Compare => "Compare",
            Screen::Study => "Study",
        }
    }

    fn shifted(self, by: isize) -> Screen {
        let count = Screen::ALL.len() as isize;
        let index = Screen::ALL.iter().position(|s| *s == self).unwrap_or(0) as isize;
        Screen::ALL[(index + by).rem_euclid(count) as usize]
    }
}

/// A question the user answers with `y` (anything else cancels).
#[derive(Clone, Debug, PartialEq)]
pub enum Confirmation {
    /// Queue `jobs`, of which `done` have finished runs that will be kept aside.
    Rerun {
        jobs: Vec<JobName>,
        done: Vec<JobName>,
    },
    Stop {
        job: JobName,
        pid: u32,
    },
    Cancel {
        job: JobName,
        task: String,
    },
}

impl Confirmation {
    pub fn question(&self) -> String {
        match self {
            Confirmation::Rerun { done, .. } => {
                let names: Vec<String> = done.iter().map(JobName::to_string).collect();
                format!(
                    "{} done: run again? the finished run is kept aside: y/n",
                    names.join(", ")
                )
            }
            Confirmation::Stop { job, pid } => format!("stop {job} (pid {pid})? y/n"),
            Confirmation::Cancel { job, task } => {
                format!("cancel {job} (Slurm task {task})? y/n")
            }
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Popup {
    Help {
        scroll: usize,
    },
    /// The search line: the cursor follows the first match while typing; esc goes back to `from`.
    Search {
        text: String,
        from: Option<JobName>,
    },
    Confirm(Confirmation),
}

/// Ticks a status message stays; settings notices stay longer since they matter once.
const STATUS_TICKS: u32 = 20;
const NOTICE_TICKS: u32 = 120;

#[derive(Clone, Debug, PartialEq)]
struct StatusMessage {
    text: String,
    ticks_left: u32,
}

pub struct App {
    settings: Settings,
    keys: KeyTable,
    snapshot: Snapshot,
    /// False until the monitor's first snapshot: the screens say they are reading.
    has_snapshot: bool,
    cursor: Option<JobName>,
    selected: BTreeSet<JobName>,
    screen: Screen,
    popup: Option<Popup>,
    status: Option<StatusMessage>,
    /// First row shown of the results screen's per-epoch table.
    epoch_scroll: usize,
}

impl App {
    pub fn new(settings: Settings, saved: SavedState, notices: Vec<String>) -> App {
        let keys = KeyTable::new(&settings.keys);
        let status = (!notices.is_empty()).then(|| StatusMessage {
            text: notices.join("; "),
            ticks_left: NOTICE_TICKS,
        });
        App {
            settings,
            keys,
            snapshot: Snapshot::default(),
            has_snapshot: false,
            cursor: saved.cursor.and_then(|name| name.parse().ok()),
            selected: saved
                .selected
                .iter()
                .filter_map(|n| n.parse().ok())
                .collect(),
            screen: Screen::Grid,
            popup: None,
            status,
            epoch_scroll: 0,
        }
    }

    pub fn update(&mut self, msg: Msg) -> Vec<Command> {
        match msg {
            Msg::Tick => {
                if let Some(status) = &mut self.status {
                    status.ticks_left = status.ticks_left.saturating_sub(1);
                    if status.ticks_left == 0 {
                        self.status = None;
                    }
                }
                Vec::new()
            }
            Msg::Snapshot(snapshot) => {
                // A damaged queue file is said once, when it appears or changes.
                if !snapshot.problems.is_empty() && snapshot.problems != self.snapshot.problems {
                    self.say(snapshot.problems.join("; "));
                }
                self.snapshot = snapshot;
                self.has_snapshot = true;
                if self.cursor().is_none() {
                    self.cursor = self.snapshot.jobs.first().map(|row| row.job);
                }
                Vec::new()
            }
            Msg::Key(event) => self.on_key(event),
            Msg::CommandDone(done) => {
                self.on_command_done(done);
                Vec::new()
            }
        }
    }

    pub fn saved_state(&self) -> SavedState {
        SavedState {
            cursor: self.cursor.map(|job| job.to_string()),
            selected: self.selected.iter().map(JobName::to_string).collect(),
        }
    }

    pub fn mouse_capture(&self) -> bool {
        self.settings.mouse
    }

    // What the views read.

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn keys(&self) -> &KeyTable {
        &self.keys
    }

    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    pub fn has_snapshot(&self) -> bool {
        self.has_snapshot
    }

    pub fn screen(&self) -> Screen {
        self.screen
    }

    pub fn popup(&self) -> Option<&Popup> {
        self.popup.as_ref()
    }

    pub fn status(&self) -> Option<&str> {
        self.status.as_ref().map(|s| s.text.as_str())
    }

    pub fn epoch_scroll(&self) -> usize {
        self.epoch_scroll
    }

    /// The job under the cursor.
    pub fn cursor(&self) -> Option<&JobRow> {
        self.cursor.and_then(|job| self.snapshot.row(job))
    }

    pub fn is_selected(&self, job: JobName) -> bool {
        self.selected.contains(&job)
    }

    /// The selected jobs that the snapshot knows, in grid order.
    pub fn selection(&self) -> Vec<&JobRow> {
        self.snapshot
            .jobs
            .iter()
            .filter(|row| self.selected.contains(&row.job))
            .collect()
    }

    /// The live view the live screen shows: the cursor's job if it runs, else the first one.
    pub fn shown_live(&self) -> Option<&Live> {
        let live = &self.snapshot.live;
        live.iter()
            .find(|l| Some(l.job) == self.cursor)
            .or_else(|| live.first())
    }

    /// The runs the compare screen puts side by side, and what they are.
    pub fn compared(&self) -> (String, Vec<&JobRow>) {
        let selection = self.selection();
        if !selection.is_empty() {
            let with_results = selection.into_iter().filter(|r| r.result.is_some());
            return ("the selected runs".into(), with_results.collect());
        }
        let Some(cursor) = self.cursor() else {
            return ("nothing".into(), Vec::new());
        };
        let (method, dataset) = (cursor.job.method, cursor.job.dataset);
        let trio = Mode::ALL.iter().filter_map(|&mode| {
            self.snapshot.row(JobName {
                method,
                dataset,
                mode,
            })
        });
        let runs = trio.filter(|r| r.result.is_some()).collect();
        (format!("{method} on {dataset}, every mode"), runs)
    }

    // Keys.

    fn on_key(&mut self, event: KeyEvent) -> Vec<Command> {
        if event.kind == KeyEventKind::Release {
            return Vec::new();
        }
        // With no SIGINT in raw mode, ctrl-c must leave from anywhere, the search line included.
        if Key::of_event(&event) == Key::ctrl_c() {
            return vec![self.quit()];
        }
        match self.popup.take() {
            Some(Popup::Search { text, from }) => {
                self.on_search_key(event, text, from);
                Vec::new()
            }
            Some(Popup::Confirm(question)) => self.on_confirm_key(event, question),
            Some(Popup::Help { scroll }) => {
                self.popup = match self.keys.action(&event) {
                    Some(Action::Help | Action::Close | Action::Quit) => None,
                    Some(Action::Up | Action::ScrollUp) => Some(Popup::Help {
                        scroll: scroll.saturating_sub(1),
                    }),
                    Some(Action::Down | Action::ScrollDown) => Some(Popup::Help {
                        scroll: (scroll + 1).min(Action::ALL.len()),
                    }),
                    _ => Some(Popup::Help { scroll }),
                };
                Vec::new()
            }
            None => match self.keys.action(&event) {
                Some(action) => self.on_action(action),
                None => Vec::new(),
            },
        }
    }

    fn on_action(&mut self, action: Action) -> Vec<Command> {
        match action {
            Action::Up => self.move_cursor(0, -1),
            Action::Down => self.move_cursor(0, 1),
            Action::Left => self.move_cursor(-1, 0),
            Action::Right => self.move_cursor(1, 0),
            Action::ToggleSelect => {
                if let Some(job) = self.cursor {
                    if !self.selected.remove(&job) {
                        self.selected.insert(job);
                    }
                }
            }
            Action::ClearSelection => self.selected.clear(),
            Action::Search => {
                self.popup = Some(Popup::Search {
                    text: String::new(),
                    from: self.cursor,
                })
            }
            Action::Enqueue => return self.enqueue(),
            Action::Stop => self.ask_stop(),
            Action::NextRunning => self.next_running(),
            Action::Submit => return self.submit(),
            Action::StartQueue => return self.start_queue(),
            Action::QueueEarlier => return self.move_queued(-1),
            Action::QueueLater => return self.move_queued(1),
            Action::QueueRemove => return self.remove_queued(),
            Action::NextScreen => self.screen = self.screen.shifted(1),
            Action::PreviousScreen => self.screen = self.screen.shifted(-1),
            Action::GridScreen => self.screen = Screen::Grid,
            Action::LiveScreen => self.screen = Screen::Live,
            Action::ResultsScreen => self.screen = Screen::Results,
            Action::CompareScreen => self.screen = Screen::Compare,
            Action::StudyScreen => self.screen = Screen::Study,
            Action::Export => {
                self.say("exporting the study's tables...");
                return vec![Command::Export];
            }
            Action::ScrollUp => self.epoch_scroll = self.epoch_scroll.saturating_sub(5),
            Action::ScrollDown => {
                let epochs = self.cursor().and_then(|r| r.result.as_ref());
                let last = epochs.map_or(0, |r| r.epochs_log.len().saturating_sub(1));
                self.epoch_scroll = (self.epoch_scroll + 5).min(last);
            }
            Action::Help => self.popup = Some(Popup::Help { scroll: 0 }),
            Action::Close => self.screen = Screen::Grid,
            Action::Quit => return vec![self.quit()],
        }
        Vec::new()
    }

    /// Puts the cursor on the running job after the cursor's, in grid order, wrapping around.
    fn next_running(&mut self) {
        let running: Vec<JobName> = (self.snapshot.running().into_iter())
            .map(|(job, _)| job)
            .filter(|job| self.snapshot.row(*job).is_some())
            .collect();
        let after = (self.cursor)
            .and_then(|cursor| running.iter().position(|job| *job == cursor))
            .map_or(0, |place| place + 1);
        match running.get(after % running.len().max(1)) {
            Some(job) => self.cursor = Some(*job),
            None => self.say("no job is running"),
        }
    }

    /// Words a command's outcome; one with nothing to say leaves the status line as it is.
    fn on_command_done(&mut self, done: Result<Outcome, ControlError>) {
        let message = match done {
            Ok(Outcome::Enqueued { added }) => match added.as_slice() {
                [] => "already queued".to_string(),
                [job] => format!("queued {job}"),
                jobs => format!("queued {} jobs", jobs.len()),
            },
            Ok(Outcome::QueueStarted) => "queue started".to_string(),
            Ok(Outcome::StopRequested { job }) => {
                format!("stopping {job} at the next batch; the queue is paused")
            }
            // The queue's new order shows in the grid and the queue pane.
            Ok(Outcome::MovedInQueue) => return,
            Ok(Outcome::RemovedFromQueue { job }) => format!("removed {job} from the queue"),
            Ok(Outcome::CancelRequested { job, task }) => {
                format!("asked Slurm to cancel {task}: {job} stops at its next batch")
            }
            Ok(Outcome::Submitted { arrays }) => {
                format!("submitted to Slurm: array {}", arrays.join(", "))
            }
            Ok(Outcome::Exported { folder, files }) => {
                format!("exported {files} files to {}", folder.display())
            }
            Err(error) => format!("error: {error}"),
        };
        self.say(message);
    }

    fn say(&mut self, text: impl Into<String>) {
        self.status = Some(StatusMessage {
            text: text.into(),
            ticks_left: STATUS_TICKS,
        });
    }

    /// Moves by whole cells, skipping grid cells without a job; stays put at the edges.
    fn move_cursor(&mut self, columns: isize, rows: isize) {
        let Some(current) = self.cursor().map(|r| r.job) else {
            return;
        };
        let shape = self.snapshot.grid_shape();
        let row_of = |job: JobName| shape.rows.iter().position(|r| *r == (job.method, job.mode));
        let column_of = |job: JobName| shape.datasets.iter().position(|d| *d == job.dataset);
        let (Some(mut row), Some(mut column)) = (row_of(current), column_of(current)) else {
            return;
        };
        loop {
            let (next_row, next_column) = (row as isize + rows, column as isize + columns);
            if next_row < 0
                || next_column < 0
                || next_row as usize >= shape.rows.len()
                || next_column as usize >= shape.datasets.len()
            {
                return;
            }
            (row, column) = (next_row as usize, next_column as usize);
            let (method, mode) = shape.rows[row];
            let job = JobName {
                method,
                dataset: shape.datasets[column],
                mode,
            };
            if self.snapshot.row(job).is_some() {
                self.cursor = Some(job);
                self.epoch_scroll = 0;
                return;
            }
        }
    }

    fn on_search_key(&mut self, event: KeyEvent, mut text: String, from: Option<JobName>) {
        let typing = !event
            .modifiers
            .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT);
        match event.code {
            KeyCode::Esc => {
                self.cursor = from;
                return;
            }
            KeyCode::Enter => {
                if !text.is_empty() && self.snapshot.first_match(&text).is_none() {
                    self.say(format!("no job matches `{text}`"));
                }
                return;
            }
            KeyCode::Backspace => {
                text.pop();
            }
            KeyCode::Char(c) if typing => text.push(c),
            _ => {}
        }
        self.cursor = if text.is_empty() {
            from
        } else {
            self.snapshot.first_match(&text).or(self.cursor)
        };
        self.epoch_scroll = 0;
        self.popup = Some(Popup::Search { text, from });
    }

    fn on_confirm_key(&mut self, event: KeyEvent, question: Confirmation) -> Vec<Command> {
        let yes = matches!(event.code, KeyCode::Char('y' | 'Y'));
        match (yes, question) {
            (true, Confirmation::Rerun { jobs, .. }) => {
                let jobs = self.startable(jobs);
                self.queue_jobs(jobs)
            }
            // The job may have ended while the question was open; its pid could be reused since.
            (true, Confirmation::Stop { job, pid })
                if self.snapshot.running().contains(&(job, Some(pid))) =>
            {
                vec![Command::Stop { job, pid }]
            }
            (true, Confirmation::Stop { job, .. }) => {
                self.say(format!("{job} is no longer running"));
                Vec::new()
            }
            (false, Confirmation::Rerun { .. }) => {
                self.say("nothing queued");
                Vec::new()
            }
            (false, Confirmation::Stop { job, .. } | Confirmation::Cancel { job, .. }) => {
                self.say(format!("{job} goes on"));
                Vec::new()
            }
            (true, Confirmation::Cancel { job, task }) => vec![Command::Cancel { job, task }],
        }
    }

    /// What enter and `S` act on: the selection if any, else the cursor's job.
    fn targets(&self) -> Vec<JobName> {
        match self.selection() {
            selection if !selection.is_empty() => selection.iter().map(|r| r.job).collect(),
            _ => self.cursor().map(|r| r.job).into_iter().collect(),
        }
    }

    /// The selection if any, else the cursor's job, to Slurm.
    fn submit(&mut self) -> Vec<Command> {
        let targets = self.targets();
        if targets.is_empty() {
            return Vec::new();
        }
        self.say(format!("submitting {} job(s) to Slurm...", targets.len()));
        vec![Command::Submit(targets)]
    }

    /// Enter: the selection if any, else the cursor's job; finished runs ask first.
    fn enqueue(&mut self) -> Vec<Command> {
        let targets = self.targets();
        let jobs = self.startable(targets);
        let completed = |job: &JobName| {
            let state = self.snapshot.row(*job).map(|r| r.state);
            state == Some(JobState::Run(Status::Completed))
        };
        let done: Vec<JobName> = jobs.iter().copied().filter(completed).collect();
        if done.is_empty() {
            self.queue_jobs(jobs)
        } else {
            self.popup = Some(Popup::Confirm(Confirmation::Rerun { jobs, done }));
            Vec::new()
        }
    }

    /// The jobs that are neither queued nor running now, saying so when none is left. A question
    /// may have been open for a while: a job started meanwhile (perhaps by `adarat run`) is not
    /// queued again.
    fn startable(&mut self, jobs: Vec<JobName>) -> Vec<JobName> {
        let busy_state = |job: &JobName| {
            let state = self.snapshot.row(*job)?.state;
            matches!(state, JobState::Queued | JobState::Run(Status::Running)).then_some(state)
        };
        let (busy, startable): (Vec<JobName>, Vec<JobName>) =
            jobs.into_iter().partition(|job| busy_state(job).is_some());
        let refusal = match busy.as_slice() {
            _ if !startable.is_empty() => None,
            [] => None,
            [job] => busy_state(job).map(|state| format!("{job} is already {}", state.as_str())),
            _ => Some(format!(
                "the {} jobs are already queued or running",
                busy.len()
            )),
        };
        if let Some(message) = refusal {
            self.say(message);
        }
        startable
    }

    fn queue_jobs(&mut self, jobs: Vec<JobName>) -> Vec<Command> {
        if jobs.is_empty() {
            return Vec::new();
        }
        self.selected.clear();
        vec![Command::Enqueue(jobs)]
    }

    /// `x`: the cursor's job if it runs, else the only running job.
    fn ask_stop(&mut self) {
        // A job waiting or running on a Slurm cluster is stopped through Slurm.
        let on_slurm = (self.cursor())
            .and_then(|row| Some((row.job, row.slurm.as_ref().filter(|t| t.is_active())?)));
        if let Some((job, task)) = on_slurm {
            let task = task.id.clone();
            self.popup = Some(Popup::Confirm(Confirmation::Cancel { job, task }));
            return;
        }
        let running = self.snapshot.running();
        let cursor = self.cursor;
        let target =
            running
                .iter()
                .find(|(job, _)| Some(*job) == cursor)
                .or(match running.as_slice() {
                    [only] => Some(only),
                    _ => None,
                });
        match (target, running.len()) {
            (Some(&(job, Some(pid))), _) => {
                self.popup = Some(Popup::Confirm(Confirmation::Stop { job, pid }));
            }
            (Some(&(job, None)), _) => self.say(format!("{job} runs but its process is unknown")),
            (None, 0) => self.say("nothing is running"),
            (None, n) => self.say(format!("{n} jobs run: put the cursor on the one to stop")),
        }
    }

    fn start_queue(&mut self) -> Vec<Command> {
        let queue = &self.snapshot.queue;
        if queue.is_empty() && !self.snapshot.paused {
            self.say("the queue is empty: enter queues the job under the cursor");
            return Vec::new();
        }
        vec![Command::StartQueue]
    }

    /// The cursor's job, when it is queued.
    fn queued_cursor(&mut self) -> Option<(JobName, usize)> {
        let job = self.cursor()?.job;
        match self.snapshot.queue_position(job) {
            Some(position) => Some((job, position)),
            None => {
                self.say(format!("{job} is not queued"));
                None
            }
        }
    }

    fn move_queued(&mut self, by: isize) -> Vec<Command> {
        let Some((job, position)) = self.queued_cursor() else {
            return Vec::new();
        };
        let last = self.snapshot.queue.len() - 1;
        if (by < 0 && position == 0) || (by > 0 && position == last) {
            let edge = if by < 0 { "first" } else { "last" };
            self.say(format!("{job} is already {edge} in the queue"));
            return Vec::new();
        }
        vec![Command::MoveQueued { job, by }]
    }

    fn remove_queued(&mut self) -> Vec<Command> {
        let Some((job, _)) = self.queued_cursor() else {
            return Vec::new();
        };
        vec![Command::RemoveQueued(job)]
    }

    fn quit(&self) -> Command {
        Command::Quit {
            farewell: self.farewell(),
        }
    }

    /// What goes on after the console is gone, and how to come back to it.
    fn farewell(&self) -> Option<String> {
        let running: Vec<String> = self
            .snapshot
            .running()
            .iter()
            .map(|(job, pid)| match pid {
                Some(pid) => format!("{job} (pid {pid})"),
                None => job.to_string(),
            })
            .collect();
        let mut lines = Vec::new();
        match running.len() {
            0 => {}
            1 => lines.push(format!("{} goes on running.", running[0])),
            _ => lines.push(format!("{} go on running.", running.join(", "))),
        }
        let queued = self.snapshot.queue.len();
        if let (Some(worker), false, false) =
            (self.snapshot.worker, queued == 0, self.snapshot.paused)
        {
            let jobs = if queued == 1 { "job" } else { "jobs" };
            lines.push(format!(
                "The queue ({queued} {jobs}) goes on in worker pid {worker}."
            ));
        }
        if lines.is_empty() {
            return None;
        }
        lines.push("Run `adarat` again to watch or stop it.".into());
        Some(lines.join("\n"))
    }
}
