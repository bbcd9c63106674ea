//! The console's application state and its update function: messages in, state and commands out.
//! The state is what every screen shares (the latest snapshot, cursor, selection: [`Shared`]), the
//! screen shown and each screen's own state ([`Screens`]), the popup and a transient status
//! message. Everything else is derived from the snapshot when asked. Every decision that sends a
//! command is taken here; the event loop only carries out the commands and brings back their
//! outcomes, which the application words.
use super::control::{Command, ControlError, Outcome};
use super::keys::Key;
use super::screens::{Action, KeyTable, Screen, Screens, Shared};
use super::settings::{SavedState, Settings};
use super::snapshot::{JobState, Snapshot};
use crate::vocab::{JobName, SeededJob, Status};
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

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

impl Command {
    /// The question asked before the command is sent (`y` sends it, anything else cancels); None
    /// for a command sent without asking. Runs are named as the snapshot's grid names them.
    pub fn question(&self, snapshot: &Snapshot) -> Option<String> {
        match self {
            Command::Rerun(done) => {
                let names: Vec<String> = done.iter().map(|run| snapshot.name(*run)).collect();
                Some(format!(
                    "{} done: run again? the finished run is kept aside: y/n",
                    names.join(", ")
                ))
            }
            Command::Stop { run, owner } => {
                Some(format!("stop {} in {owner}? y/n", snapshot.name(*run)))
            }
            Command::Cancel { run, task } => Some(format!(
                "cancel {} ({} task {task})? y/n",
                snapshot.name(*run),
                snapshot.scheduler_label()
            )),
            _ => None,
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
    /// A command that waits for `y` ([`Command::question`]).
    Confirm(Command),
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
    shared: Shared,
    /// False until the monitor's first snapshot: the screens say they are reading.
    has_snapshot: bool,
    screen: Screen,
    screens: Screens,
    popup: Option<Popup>,
    status: Option<StatusMessage>,
    /// An `adarat submit` runs in the background; a second `S` waits for it.
    submitting: bool,
}

impl App {
    pub fn new(settings: Settings, saved: SavedState, notices: Vec<String>) -> App {
        let keys = KeyTable::new(&settings.keys);
        let status = (!notices.is_empty()).then(|| StatusMessage {
            text: notices.join("; "),
            ticks_left: NOTICE_TICKS,
        });
        let shared = Shared {
            keys,
            snapshot: Snapshot::default(),
            cursor: saved.cursor.and_then(|name| name.parse().ok()),
            seed: None,
            selected: saved
                .selected
                .iter()
                .filter_map(|n| n.parse().ok())
                .collect(),
        };
        App {
            settings,
            shared,
            has_snapshot: false,
            screen: Screen::Grid,
            screens: Screens::default(),
            popup: None,
            status,
            submitting: false,
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
                if !snapshot.problems.is_empty()
                    && snapshot.problems != self.shared.snapshot.problems
                {
                    self.say(snapshot.problems.join("; "));
                }
                self.shared.snapshot = snapshot;
                self.has_snapshot = true;
                if self.shared.cursor().is_none() {
                    self.shared.cursor = self.shared.snapshot.jobs.first().map(|row| row.job);
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
            cursor: self.shared.cursor.map(|job| job.to_string()),
            selected: self
                .shared
                .selected
                .iter()
                .map(JobName::to_string)
                .collect(),
        }
    }

    pub fn mouse_capture(&self) -> bool {
        self.settings.mouse
    }

    // What the views read.

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// What every screen reads: the snapshot, the cursor, the selection, the keys.
    pub fn shared(&self) -> &Shared {
        &self.shared
    }

    pub fn has_snapshot(&self) -> bool {
        self.has_snapshot
    }

    pub fn screen(&self) -> Screen {
        self.screen
    }

    pub(super) fn screens(&self) -> &Screens {
        &self.screens
    }

    pub fn popup(&self) -> Option<&Popup> {
        self.popup.as_ref()
    }

    pub fn status(&self) -> Option<&str> {
        self.status.as_ref().map(|s| s.text.as_str())
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
                self.popup = match self.shared.keys.action(&event) {
                    Some(Action::Help | Action::Close | Action::Quit) => None,
                    Some(Action::Up | Action::ScrollUp) => Some(Popup::Help {
                        scroll: scroll.saturating_sub(1),
                    }),
                    Some(Action::Down | Action::ScrollDown) => Some(Popup::Help {
                        scroll: (scroll + 1).min(Action::all().count()),
                    }),
                    _ => Some(Popup::Help { scroll }),
                };
                Vec::new()
            }
            None => match self.shared.keys.action(&event) {
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
                if let Some(job) = self.shared.cursor {
                    if !self.shared.selected.remove(&job) {
                        self.shared.selected.insert(job);
                    }
                }
            }
            Action::ClearSelection => self.shared.selected.clear(),
            Action::Search => {
                self.popup = Some(Popup::Search {
                    text: String::new(),
                    from: self.shared.cursor,
                })
            }
            Action::Enqueue => return self.enqueue(),
            Action::Stop => self.ask_stop(),
            Action::NextRunning => self.next_running(),
            Action::NextSeed => self.shift_seed(1),
            Action::PreviousSeed => self.shift_seed(-1),
            Action::Submit => return self.submit(),
            Action::StartQueue => return self.start_queue(),
            Action::QueueEarlier => return self.move_queued(-1),
            Action::QueueLater => return self.move_queued(1),
            Action::QueueRemove => return self.remove_queued(),
            Action::NextScreen => self.screen = self.screen.shifted(1),
            Action::PreviousScreen => self.screen = self.screen.shifted(-1),
            Action::Show(screen) => self.screen = screen,
            Action::Export => {
                self.say("exporting the study's tables...");
                return vec![Command::Export];
            }
            Action::ScrollUp | Action::ScrollDown => {
                (self.screens).on_action(self.screen, action, &self.shared)
            }
            Action::Help => self.popup = Some(Popup::Help { scroll: 0 }),
            Action::Close => self.screen = Screen::Grid,
            Action::Quit => return vec![self.quit()],
        }
        Vec::new()
    }

    /// Puts the cursor on the running run after the cursor's, in grid order, wrapping around.
    fn next_running(&mut self) {
        let running: Vec<SeededJob> = (self.shared.snapshot.running().into_iter())
            .map(|(run, _)| run)
            .filter(|run| self.shared.snapshot.row(*run).is_some())
            .collect();
        let cursor = self.shared.cursor().map(|row| row.run());
        let after = (cursor)
            .and_then(|cursor| running.iter().position(|run| *run == cursor))
            .map_or(0, |place| place + 1);
        match running.get(after % running.len().max(1)) {
            Some(run) => {
                self.shared.cursor = Some(run.job);
                self.shared.seed = Some(run.seed);
            }
            None => self.say("no job is running"),
        }
    }

    /// `]` and `[`: the screens show the cursor's job with its next or previous seed.
    fn shift_seed(&mut self, by: isize) {
        let seeds: Vec<u64> = self
            .shared
            .cursor_runs()
            .iter()
            .map(|row| row.seed)
            .collect();
        if seeds.len() < 2 {
            self.say("the grid has one seed per job (grid.seeds)");
            return;
        }
        let at = (self.shared.cursor().map(|row| row.seed))
            .and_then(|seed| seeds.iter().position(|s| *s == seed))
            .unwrap_or(0) as isize;
        let next = seeds[(at + by).rem_euclid(seeds.len() as isize) as usize];
        self.shared.seed = Some(next);
        self.screens.run_changed();
    }

    /// Words a command's outcome; one with nothing to say leaves the status line as it is.
    fn on_command_done(&mut self, done: Result<Outcome, ControlError>) {
        if matches!(
            done,
            Ok(Outcome::Submitted { .. }) | Err(ControlError::Submit(_))
        ) {
            self.submitting = false;
        }
        let message = match done {
            Ok(Outcome::Enqueued { added, .. }) => match added.as_slice() {
                [] => "already queued".to_string(),
                [run] => format!("queued {}", self.shared.snapshot.name(*run)),
                runs => format!("queued {} runs", runs.len()),
            },
            Ok(Outcome::QueueStarted) => "queue started".to_string(),
            Ok(Outcome::StopRequested { run }) => format!(
                "stopping {} at the next batch; the queue is paused",
                self.shared.snapshot.name(run)
            ),
            // The queue's new order shows in the grid and the queue pane.
            Ok(Outcome::MovedInQueue) => return,
            Ok(Outcome::RemovedFromQueue { run }) => {
                format!("removed {} from the queue", self.shared.snapshot.name(run))
            }
            Ok(Outcome::CancelRequested { run, task }) => format!(
                "asked {} to cancel {task}: {} stops at its next batch",
                self.shared.snapshot.scheduler_label(),
                self.shared.snapshot.name(run)
            ),
            Ok(Outcome::Submitted { batches, skipped }) => {
                let to = self.shared.snapshot.scheduler_label();
                let left_out = match skipped.as_slice() {
                    [] => String::new(),
                    [one] => format!("left out {one}"),
                    many => format!(
                        "left out {} runs (completed, running or on {to})",
                        many.len()
                    ),
                };
                match (batches.is_empty(), left_out.is_empty()) {
                    (true, _) => format!("nothing to submit: {left_out}"),
                    (false, true) => format!("submitted to {to}: {}", batches.join(", ")),
                    (false, false) => {
                        format!("submitted to {to}: {}; {left_out}", batches.join(", "))
                    }
                }
            }
            Ok(Outcome::Exported {
                folder,
                files,
                figures_failed,
            }) => {
                let mut text = format!("exported {files} files to {}", folder.display());
                if let Some(why) = figures_failed {
                    text += &format!("; no figures: {why}");
                }
                text
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
        let Some(current) = self.shared.cursor().map(|r| r.job) else {
            return;
        };
        let shape = self.shared.snapshot.grid_shape();
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
            if !self.shared.snapshot.runs_of(job).is_empty() {
                self.shared.cursor = Some(job);
                self.screens.run_changed();
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
                self.shared.cursor = from;
                return;
            }
            KeyCode::Enter => {
                if !text.is_empty() && self.shared.snapshot.first_match(&text).is_none() {
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
        self.shared.cursor = if text.is_empty() {
            from
        } else {
            self.shared
                .snapshot
                .first_match(&text)
                .or(self.shared.cursor)
        };
        self.screens.run_changed();
        self.popup = Some(Popup::Search { text, from });
    }

    fn on_confirm_key(&mut self, event: KeyEvent, asked: Command) -> Vec<Command> {
        let yes = matches!(event.code, KeyCode::Char('y' | 'Y'));
        match (yes, asked) {
            (true, Command::Rerun(done)) => {
                let runs = self.startable(done);
                self.queue_runs(runs)
                    .into_iter()
                    .map(|command| match command {
                        Command::Enqueue(runs) => Command::Rerun(runs),
                        other => other,
                    })
                    .collect()
            }
            // The run may have ended while the question was open; its pid could be reused since.
            (true, Command::Stop { run, owner })
                if (self.shared.snapshot.running().iter())
                    .any(|(r, o)| *r == run && o.as_ref() == Some(&owner)) =>
            {
                vec![Command::Stop { run, owner }]
            }
            (true, Command::Stop { run, .. }) => {
                self.say(format!(
                    "{} is no longer running",
                    self.shared.snapshot.name(run)
                ));
                Vec::new()
            }
            (false, Command::Rerun(_)) => {
                self.say("nothing queued");
                Vec::new()
            }
            (false, Command::Stop { run, .. } | Command::Cancel { run, .. }) => {
                self.say(format!("{} goes on", self.shared.snapshot.name(run)));
                Vec::new()
            }
            (false, _) => Vec::new(),
            (true, asked) => vec![asked],
        }
    }

    /// What enter and `S` act on: the selection's jobs if any, else the cursor's job.
    fn targets(&self) -> Vec<JobName> {
        if self.shared.selected.is_empty() {
            return self.shared.cursor().map(|r| r.job).into_iter().collect();
        }
        let mut jobs: Vec<JobName> = self.shared.selection().iter().map(|r| r.job).collect();
        jobs.dedup();
        jobs
    }

    /// The selection if any, else the cursor's job, to the study's scheduler.
    fn submit(&mut self) -> Vec<Command> {
        let targets = self.targets();
        if targets.is_empty() {
            return Vec::new();
        }
        let to = self.shared.snapshot.scheduler_label();
        if self.submitting {
            self.say(format!(
                "a submission to {to} is still running; press S again when it is done"
            ));
            return Vec::new();
        }
        self.submitting = true;
        self.say(format!("submitting {} job(s) to {to}...", targets.len()));
        vec![Command::Submit(targets)]
    }

    /// Enter: every seed of the selection's jobs if any, else of the cursor's job. The runs not
    /// finished yet are queued; only when every one is finished does it ask to run them again.
    fn enqueue(&mut self) -> Vec<Command> {
        let runs: Vec<SeededJob> = (self.targets().into_iter())
            .flat_map(|job| self.shared.snapshot.runs_of(job))
            .map(|row| row.run())
            .collect();
        let runs = self.startable(runs);
        let completed = |run: &SeededJob| {
            let state = self.shared.snapshot.row(*run).map(|r| r.state);
            state == Some(JobState::Run(Status::Completed))
        };
        let (done, missing): (Vec<SeededJob>, Vec<SeededJob>) =
            runs.into_iter().partition(completed);
        if !missing.is_empty() || done.is_empty() {
            self.queue_runs(missing)
        } else {
            self.popup = Some(Popup::Confirm(Command::Rerun(done)));
            Vec::new()
        }
    }

    /// The runs that are neither queued nor running now, saying so when none is left. A question
    /// may have been open for a while: a run started meanwhile (perhaps by `adarat run`) is not
    /// queued again.
    fn startable(&mut self, runs: Vec<SeededJob>) -> Vec<SeededJob> {
        let busy_state = |run: &SeededJob| {
            let state = self.shared.snapshot.row(*run)?.state;
            matches!(state, JobState::Queued | JobState::Run(Status::Running)).then_some(state)
        };
        let (busy, startable): (Vec<SeededJob>, Vec<SeededJob>) =
            runs.into_iter().partition(|run| busy_state(run).is_some());
        let refusal = match busy.as_slice() {
            _ if !startable.is_empty() => None,
            [] => None,
            [run] => busy_state(run).map(|state| {
                format!(
                    "{} is already {}",
                    self.shared.snapshot.name(*run),
                    state.as_str()
                )
            }),
            _ => Some(format!(
                "the {} runs are already queued or running",
                busy.len()
            )),
        };
        if let Some(message) = refusal {
            self.say(message);
        }
        startable
    }

    fn queue_runs(&mut self, runs: Vec<SeededJob>) -> Vec<Command> {
        if runs.is_empty() {
            return Vec::new();
        }
        self.shared.selected.clear();
        vec![Command::Enqueue(runs)]
    }

    /// `x`: the cursor's job if it runs, else the only running job.
    fn ask_stop(&mut self) {
        // A job waiting or running on the study's scheduler (a Slurm cluster) is stopped there.
        let remote = (self.shared.cursor())
            .and_then(|row| Some((row.run(), row.remote.as_ref().filter(|t| t.active)?)));
        if let Some((run, task)) = remote {
            let task = task.id.clone();
            self.popup = Some(Popup::Confirm(Command::Cancel { run, task }));
            return;
        }
        let running = self.shared.snapshot.running();
        let cursor = self.shared.cursor().map(|row| row.run());
        // The cursor's run, else the only running seed of its job, else the only running run.
        let of_job: Vec<_> = (running.iter())
            .filter(|(run, _)| Some(run.job) == self.shared.cursor)
            .collect();
        let target = (running.iter()).find(|(run, _)| Some(*run) == cursor).or(
            match (of_job.as_slice(), running.as_slice()) {
                ([only], _) => Some(*only),
                ([], [only]) => Some(only),
                _ => None,
            },
        );
        match (target, running.len()) {
            (Some((run, Some(owner))), _) => {
                let (run, owner) = (*run, owner.clone());
                self.popup = Some(Popup::Confirm(Command::Stop { run, owner }));
            }
            (Some(&(run, None)), _) => self.say(format!(
                "{} runs but its process is unknown",
                self.shared.snapshot.name(run)
            )),
            (None, 0) => self.say("nothing is running"),
            (None, n) => self.say(format!("{n} jobs run: put the cursor on the one to stop")),
        }
    }

    fn start_queue(&mut self) -> Vec<Command> {
        let queue = &self.shared.snapshot.queue;
        if queue.is_empty() && !self.shared.snapshot.paused {
            self.say("the queue is empty: enter queues the job under the cursor");
            return Vec::new();
        }
        vec![Command::StartQueue]
    }

    /// The cursor's run when it is queued, else the first queued seed of the cursor's job.
    fn queued_cursor(&mut self) -> Option<(SeededJob, usize)> {
        let shown = self.shared.cursor()?.run();
        let queued = std::iter::once(shown)
            .chain(self.shared.cursor_runs().iter().map(|row| row.run()))
            .find_map(|run| Some((run, self.shared.snapshot.queue_position(run)?)));
        if queued.is_none() {
            self.say(format!(
                "{} is not queued",
                self.shared.snapshot.name(shown)
            ));
        }
        queued
    }

    fn move_queued(&mut self, by: isize) -> Vec<Command> {
        let Some((run, position)) = self.queued_cursor() else {
            return Vec::new();
        };
        let last = self.shared.snapshot.queue.len() - 1;
        if (by < 0 && position == 0) || (by > 0 && position == last) {
            let edge = if by < 0 { "first" } else { "last" };
            let name = self.shared.snapshot.name(run);
            self.say(format!("{name} is already {edge} in the queue"));
            return Vec::new();
        }
        vec![Command::MoveQueued { run, by }]
    }

    fn remove_queued(&mut self) -> Vec<Command> {
        let Some((run, _)) = self.queued_cursor() else {
            return Vec::new();
        };
        vec![Command::RemoveQueued(run)]
    }

    fn quit(&self) -> Command {
        Command::Quit {
            farewell: self.farewell(),
        }
    }

    /// What goes on after the console is gone, and how to come back to it.
    fn farewell(&self) -> Option<String> {
        let running: Vec<String> = self
            .shared
            .snapshot
            .running()
            .iter()
            .map(|(run, owner)| match owner {
                Some(owner) => format!("{} (pid {})", self.shared.snapshot.name(*run), owner.pid),
                None => self.shared.snapshot.name(*run),
            })
            .collect();
        let mut lines = Vec::new();
        match running.len() {
            0 => {}
            1 => lines.push(format!("{} goes on running.", running[0])),
            _ => lines.push(format!("{} go on running.", running.join(", "))),
        }
        let queued = self.shared.snapshot.queue.len();
        if let (Some(worker), false, false) = (
            self.shared.snapshot.worker,
            queued == 0,
            self.shared.snapshot.paused,
        ) {
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
