//! The console through its public API: keys in, state and commands out; and what each screen draws
//! into a test terminal, at 80×24, at 160×48, in plain ASCII and at tiny sizes.
use adarat::config::Protocol;
use adarat::console::app::{App, Msg, Popup};
use adarat::console::control::{Command, Outcome};
use adarat::console::control::{Control, ControlError};
use adarat::console::screens::Screen;
use adarat::console::settings::{load_settings_from, parse_settings, SavedState, Settings};
use adarat::console::snapshot::{FinalStep, JobRow, JobState, Live, Phase, Queued, Snapshot};
use adarat::console::views::draw;
use adarat::lock::{LockOwner, ProcessStart};
use adarat::scheduler::Task;
use adarat::store::events::BatchSample;
use adarat::store::result::{EpochRecord, FinalTable, Peak, Peaks, RunResult};
use adarat::vocab::{
    DatasetKind, FinalAttack, JobName, Method, Mode, ModelKind, SeededJob, Status,
};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::Color;
use ratatui::Terminal;
use std::path::PathBuf;
use std::sync::Arc;

// Fixtures.

const RUNNING: &str = "trades/synthetic/adarat";
const RUNNING_PID: u32 = 4242;

/// A process of the workstation `ws1` as a run's lock records it.
fn owner(pid: u32) -> LockOwner {
    LockOwner {
        host: Some("ws1".into()),
        pid,
        started: Some(ProcessStart {
            boot_id: "b00t".into(),
            ticks: 1234,
        }),
        slurm_task: None,
    }
}

fn job(name: &str) -> JobName {
    name.parse().unwrap()
}

/// A job's run with the fixture's one seed.
fn run(name: &str) -> SeededJob {
    SeededJob {
        job: job(name),
        seed: 1,
    }
}

fn epoch(epoch: usize, sa: f64, ra: f64) -> EpochRecord {
    EpochRecord {
        epoch,
        lr: 0.1,
        train_loss: 2.0 / epoch as f64,
        train_clean_acc: sa + 5.0,
        train_adv_acc: ra + 5.0,
        test_clean_acc: sa,
        test_fgsm_acc: ra + 8.0,
        test_pgd_acc: ra,
        ratio_mean: Some(1.25),
        clean_branch_share: Some(0.25),
        seconds: 12.0,
        images_per_second: 900.0,
        test_seconds: 2.0,
        train_clean_loss: 1.0,
        train_adv_loss: 1.5,
        test_clean_loss: 1.0,
        test_fgsm_loss: 1.2,
        test_pgd_loss: 1.4,
        finished_at: "2025/01/01 10:00:00".into(),
        train_teacher_acc: None,
        test_st_clean_acc: None,
        test_st_pgd_acc: None,
    }
}

/// A finished run whose SA peaks at epoch 4 (83.0) and RA at epoch 3 (49.1).
fn done_result(name: &str, pgd20: f64, autoattack: Option<f64>) -> RunResult {
    let records = vec![
        epoch(1, 60.0, 35.0),
        epoch(2, 75.0, 44.0),
        epoch(3, 80.0, 49.1),
        epoch(4, 83.0, 47.5),
        epoch(5, 82.1, 46.0),
    ];
    let job = job(name);
    RunResult {
        job,
        method: job.method,
        dataset: job.dataset,
        mode: job.mode,
        model: ModelKind::SmallCnn,
        seed: 0,
        protocol: Protocol::Default,
        device: "cpu".into(),
        status: Status::Completed,
        error: None,
        epochs: 5,
        epochs_done: 5,
        seconds: 3723.0,
        peaks: Some(Peaks {
            test_clean_acc: Peak {
                epoch: 4,
                value: 83.0,
            },
            test_pgd_acc: Peak {
                epoch: 3,
                value: 49.1,
            },
        }),
        epochs_log: records,
        final_table: Some(FinalTable {
            clean: Some(82.1),
            accuracies: [
                (FinalAttack::Fgsm, Some(55.3)),
                (FinalAttack::Pgd10, Some(48.9)),
                (FinalAttack::Pgd20, Some(pgd20)),
                (FinalAttack::Pgd50, Some(47.7)),
                (FinalAttack::Cw, Some(46.4)),
                (FinalAttack::AutoAttack, autoattack),
            ]
            .into_iter()
            .filter_map(|(attack, value)| Some((attack, value?)))
            .collect(),
            autoattack_preset: Some("standard".into()),
            ..FinalTable::default()
        }),
    }
}

fn sample(batch: usize, clean_only: bool) -> BatchSample {
    BatchSample {
        epoch: 3,
        batch,
        loss: 1.0 + batch as f64 / 10.0,
        clean_loss: 1.0,
        adv_loss: 1.5,
        clean_acc: 70.0,
        adv_acc: 40.0,
        ratio: (!clean_only).then_some(1.5),
        clean_only: Some(clean_only),
    }
}

fn live() -> Live {
    Live {
        run: run(RUNNING),
        pid: RUNNING_PID,
        device: "cuda:0".into(),
        phase: Phase::Training,
        epoch: 3,
        epochs: 10,
        batch: 4,
        batches_per_epoch: 40,
        lr: 0.1,
        samples: vec![
            sample(1, false),
            sample(2, true),
            sample(3, false),
            sample(4, false),
        ],
        epochs_log: vec![epoch(1, 50.0, 30.0), epoch(2, 61.5, 38.2)],
        images_per_second: Some(1234.0),
        eta_seconds: Some(754.0),
        log: vec![
            "started trades/synthetic/adarat".into(),
            "epoch 2 done".into(),
        ],
        final_step: None,
    }
}

/// The whole grid; a few jobs have something to show. The queue holds two jobs and is paused.
fn snapshot() -> Snapshot {
    let mut jobs = Vec::new();
    for &method in Method::ALL {
        for &mode in Mode::ALL {
            if method == Method::St && mode != Mode::Baseline {
                continue;
            }
            for &dataset in DatasetKind::ALL {
                let job = JobName {
                    method,
                    dataset,
                    mode,
                };
                jobs.push(JobRow {
                    job,
                    seed: 1,
                    folder: PathBuf::from("out").join(job.to_string()),
                    state: JobState::NotRun,
                    result: None,
                    config: None,
                    per_image: None,
                    error: None,
                    owner: None,
                    remote: None,
                });
            }
        }
    }
    let mut snapshot = Snapshot {
        datasets: DatasetKind::ALL.to_vec(),
        seeds: vec![1],
        jobs,
        queue: vec![
            Queued {
                run: run("pgd-at/mnist/adarat"),
                waiting: None,
            },
            Queued {
                run: run("fat/mnist/baseline"),
                waiting: None,
            },
        ],
        paused: true,
        worker: None,
        live: vec![live()],
        problems: Vec::new(),
        scheduler: Some("Slurm"),
    };
    let mut set = |name: &str, state: JobState, result: Option<RunResult>| {
        let row = snapshot
            .jobs
            .iter_mut()
            .find(|r| r.job == job(name))
            .unwrap();
        row.state = state;
        row.result = result.map(Arc::new);
    };
    set(
        "pgd-at/synthetic/adarat",
        JobState::Run(Status::Completed),
        Some(done_result("pgd-at/synthetic/adarat", 48.2, Some(41.0))),
    );
    set(
        "pgd-at/synthetic/baseline",
        JobState::Run(Status::Completed),
        Some(done_result("pgd-at/synthetic/baseline", 44.4, None)),
    );
    set("pgd-at/mnist/adarat", JobState::Queued, None);
    set("fat/mnist/baseline", JobState::Queued, None);
    set("dat/cifar10/baseline", JobState::Run(Status::Failed), None);
    set(RUNNING, JobState::Run(Status::Running), None);
    let failed = snapshot
        .jobs
        .iter_mut()
        .find(|r| r.job == job("dat/cifar10/baseline"));
    failed.unwrap().error = Some("CUDA out of memory".into());
    let running = snapshot.jobs.iter_mut().find(|r| r.job == job(RUNNING));
    running.unwrap().owner = Some(owner(RUNNING_PID));
    snapshot
}

/// A snapshot where nothing runs and the queue is empty.
fn idle_snapshot() -> Snapshot {
    let mut idle = snapshot();
    idle.live.clear();
    idle.queue.clear();
    idle.paused = false;
    for row in &mut idle.jobs {
        if matches!(row.state, JobState::Run(Status::Running) | JobState::Queued) {
            row.state = JobState::NotRun;
            row.owner = None;
        }
    }
    idle
}

fn plain_settings() -> Settings {
    Settings {
        colors: true,
        ..Settings::default()
    }
}

fn app_with(settings: Settings, snapshot: Snapshot) -> App {
    let mut app = App::new(settings, SavedState::default(), Vec::new());
    app.update(Msg::Snapshot(snapshot));
    app
}

fn app() -> App {
    app_with(plain_settings(), snapshot())
}

fn app_at(cursor: &str) -> App {
    let saved = SavedState {
        cursor: Some(cursor.into()),
        selected: Vec::new(),
    };
    let mut app = App::new(plain_settings(), saved, Vec::new());
    app.update(Msg::Snapshot(snapshot()));
    app
}

fn press_key(app: &mut App, code: KeyCode, modifiers: KeyModifiers) -> Vec<Command> {
    app.update(Msg::Key(KeyEvent::new(code, modifiers)))
}

fn press(app: &mut App, code: KeyCode) -> Vec<Command> {
    press_key(app, code, KeyModifiers::NONE)
}

/// Types each character as a key.
fn type_keys(app: &mut App, text: &str) -> Vec<Command> {
    text.chars()
        .flat_map(|c| press(app, KeyCode::Char(c)))
        .collect()
}

fn cursor(app: &App) -> String {
    app.shared()
        .cursor()
        .map(|r| r.job.to_string())
        .unwrap_or_default()
}

fn render(app: &App, width: u16, height: u16) -> Buffer {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|frame| draw(frame, app)).unwrap();
    terminal.backend().buffer().clone()
}

fn text(buffer: &Buffer) -> String {
    let width = buffer.area.width as usize;
    let symbols: Vec<&str> = buffer.content().iter().map(|c| c.symbol()).collect();
    symbols
        .chunks(width)
        .map(|line| line.concat())
        .collect::<Vec<_>>()
        .join("\n")
}

fn screen_text(app: &App, width: u16, height: u16) -> String {
    text(&render(app, width, height))
}

fn assert_contains(screen: &str, wanted: &[&str]) {
    for piece in wanted {
        assert!(screen.contains(piece), "`{piece}` missing from:\n{screen}");
    }
}

// Cursor, selection, search.

#[test]
fn the_cursor_moves_with_arrows_and_hjkl_and_stops_at_the_edges() {
    let mut app = app();
    assert_eq!(cursor(&app), "st/cifar10/baseline");
    press(&mut app, KeyCode::Left);
    press(&mut app, KeyCode::Up);
    assert_eq!(cursor(&app), "st/cifar10/baseline", "edges hold");
    press(&mut app, KeyCode::Right);
    assert_eq!(cursor(&app), "st/cifar100/baseline");
    type_keys(&mut app, "l");
    assert_eq!(cursor(&app), "st/fashion-mnist/baseline");
    press(&mut app, KeyCode::Down);
    assert_eq!(cursor(&app), "pgd-at/fashion-mnist/baseline");
    type_keys(&mut app, "jj");
    assert_eq!(cursor(&app), "pgd-at/fashion-mnist/adarat");
    type_keys(&mut app, "kh");
    assert_eq!(cursor(&app), "pgd-at/cifar100/fixrat");
    type_keys(&mut app, "llllllll");
    assert_eq!(cursor(&app), "pgd-at/synthetic/fixrat");
    type_keys(&mut app, &"j".repeat(40));
    assert_eq!(cursor(&app), "generalist/synthetic/adarat");
}

#[test]
fn the_saved_cursor_and_selection_come_back() {
    let saved = SavedState {
        cursor: Some("fat/mnist/fixrat".into()),
        selected: vec!["st/mnist/baseline".into(), "not a job".into()],
    };
    let mut app = App::new(plain_settings(), saved, Vec::new());
    app.update(Msg::Snapshot(snapshot()));
    assert_eq!(cursor(&app), "fat/mnist/fixrat");
    assert!(app.shared().is_selected(job("st/mnist/baseline")));
    assert_eq!(app.saved_state().selected, vec!["st/mnist/baseline"]);

    let gone = SavedState {
        cursor: Some("pgd-at/cifar10/adarat".into()),
        selected: Vec::new(),
    };
    let mut app = App::new(plain_settings(), gone, Vec::new());
    let mut small = snapshot();
    small.jobs.retain(|r| r.job.method == Method::St);
    app.update(Msg::Snapshot(small));
    assert_eq!(
        cursor(&app),
        "st/cifar10/baseline",
        "a vanished job falls back to the first"
    );
}

#[test]
fn space_toggles_the_selection_and_u_clears_it() {
    let mut app = app();
    type_keys(&mut app, " l ");
    assert!(app.shared().is_selected(job("st/cifar10/baseline")));
    assert!(app.shared().is_selected(job("st/cifar100/baseline")));
    type_keys(&mut app, " ");
    assert!(!app.shared().is_selected(job("st/cifar100/baseline")));
    assert_eq!(app.saved_state().selected, vec!["st/cifar10/baseline"]);
    assert_eq!(
        app.saved_state().cursor.as_deref(),
        Some("st/cifar100/baseline")
    );
    type_keys(&mut app, "u");
    assert!(app.saved_state().selected.is_empty());
}

#[test]
fn slash_jumps_to_a_job_by_part_of_its_name() {
    let mut app = app();
    type_keys(&mut app, "/synth/ada");
    assert!(matches!(app.popup(), Some(Popup::Search { .. })));
    assert_eq!(
        cursor(&app),
        "pgd-at/synthetic/adarat",
        "the cursor follows while typing"
    );
    press(&mut app, KeyCode::Enter);
    assert!(app.popup().is_none());
    assert_eq!(cursor(&app), "pgd-at/synthetic/adarat");

    type_keys(&mut app, "/trades/cifar100/fixrat");
    press(&mut app, KeyCode::Enter);
    assert_eq!(cursor(&app), "trades/cifar100/fixrat");

    type_keys(&mut app, "/kd-at");
    assert_eq!(cursor(&app), "kd-at/cifar10/baseline");
    press(&mut app, KeyCode::Esc);
    assert_eq!(cursor(&app), "trades/cifar100/fixrat", "esc goes back");
    assert!(app.popup().is_none());

    let commands = type_keys(&mut app, "/qq");
    assert!(commands.is_empty(), "q types in the search line");
    press(&mut app, KeyCode::Enter);
    assert!(app
        .status()
        .unwrap_or_default()
        .contains("no job matches `qq`"));
}

// Queueing, stopping, the queue.

#[test]
fn enter_queues_the_cursor_job_or_the_selection() {
    let mut app = app_at("fat/cifar10/fixrat");
    assert_eq!(
        press(&mut app, KeyCode::Enter),
        vec![Command::Enqueue(vec![run("fat/cifar10/fixrat")])]
    );
    type_keys(&mut app, " j ");
    let commands = press(&mut app, KeyCode::Enter);
    assert_eq!(
        commands,
        vec![Command::Enqueue(vec![
            run("fat/cifar10/fixrat"),
            run("fat/cifar10/adarat")
        ])]
    );
    assert!(
        app.saved_state().selected.is_empty(),
        "queued jobs leave the selection"
    );
}

#[test]
fn enter_on_a_done_job_asks_first() {
    let mut app = app_at("pgd-at/synthetic/adarat");
    assert!(press(&mut app, KeyCode::Enter).is_empty());
    let Some(Popup::Confirm(question)) = app.popup() else {
        panic!("expected a question, got {:?}", app.popup());
    };
    assert!(question
        .question(app.shared().snapshot())
        .unwrap()
        .contains("run again? the finished run is kept aside: y/n"));
    assert!(type_keys(&mut app, "n").is_empty());
    assert!(app.popup().is_none());
    press(&mut app, KeyCode::Enter);
    assert_eq!(
        type_keys(&mut app, "y"),
        vec![Command::Rerun(vec![run("pgd-at/synthetic/adarat")])]
    );
}

#[test]
fn enter_on_a_running_or_queued_job_says_so_and_does_nothing() {
    let mut app = app_at(RUNNING);
    assert!(press(&mut app, KeyCode::Enter).is_empty());
    assert!(app.status().unwrap_or_default().contains("already running"));
    let mut app = app_at("pgd-at/mnist/adarat");
    assert!(press(&mut app, KeyCode::Enter).is_empty());
    assert!(app.status().unwrap_or_default().contains("already queued"));
}

#[test]
fn x_stops_the_running_job_only_after_y() {
    let mut app = app_at("st/mnist/baseline");
    assert!(type_keys(&mut app, "x").is_empty());
    assert_eq!(
        app.popup(),
        Some(&Popup::Confirm(Command::Stop {
            run: run(RUNNING),
            owner: owner(RUNNING_PID)
        })),
        "the only running job, from anywhere"
    );
    assert!(type_keys(&mut app, "n").is_empty());
    assert!(app.popup().is_none());
    type_keys(&mut app, "2x");
    assert_eq!(
        type_keys(&mut app, "y"),
        vec![Command::Stop {
            run: run(RUNNING),
            owner: owner(RUNNING_PID)
        }]
    );

    // The job ends while the question is open: y stops nothing.
    type_keys(&mut app, "x");
    app.update(Msg::Snapshot(idle_snapshot()));
    assert!(type_keys(&mut app, "y").is_empty());
    assert!(app
        .status()
        .unwrap_or_default()
        .contains("no longer running"));

    let mut idle = app_with(plain_settings(), idle_snapshot());
    assert!(type_keys(&mut idle, "x").is_empty());
    assert!(idle.popup().is_none());
    assert_eq!(idle.status(), Some("nothing is running"));
}

#[test]
fn queued_jobs_move_and_leave_the_queue() {
    let mut app = app_at("pgd-at/mnist/adarat");
    assert!(type_keys(&mut app, "K").is_empty(), "already first");
    assert!(app.status().unwrap_or_default().contains("already first"));
    let later = Command::MoveQueued {
        run: run("pgd-at/mnist/adarat"),
        by: 1,
    };
    assert_eq!(type_keys(&mut app, "J"), vec![later.clone()]);
    assert_eq!(type_keys(&mut app, "-"), vec![later]);
    assert_eq!(
        press(&mut app, KeyCode::Delete),
        vec![Command::RemoveQueued(run("pgd-at/mnist/adarat"))]
    );

    let mut app = app_at("fat/mnist/baseline");
    assert!(type_keys(&mut app, "J").is_empty(), "already last");
    let earlier = Command::MoveQueued {
        run: run("fat/mnist/baseline"),
        by: -1,
    };
    assert_eq!(type_keys(&mut app, "+"), vec![earlier]);
    assert_eq!(
        type_keys(&mut app, "d"),
        vec![Command::RemoveQueued(run("fat/mnist/baseline"))]
    );

    let mut app = app_at("st/mnist/baseline");
    assert!(type_keys(&mut app, "dK").is_empty());
    assert!(app.status().unwrap_or_default().contains("is not queued"));
}

#[test]
fn s_starts_a_paused_queue_but_not_an_empty_one() {
    let mut app = app();
    assert_eq!(type_keys(&mut app, "s"), vec![Command::StartQueue]);
    let mut idle = app_with(plain_settings(), idle_snapshot());
    assert!(type_keys(&mut idle, "s").is_empty());
}

#[test]
fn a_job_started_while_the_rerun_question_was_open_is_not_queued_again() {
    let started = |name: &str| {
        let mut started = snapshot();
        let row = started.jobs.iter_mut().find(|r| r.job == job(name));
        row.unwrap().state = JobState::Run(Status::Running);
        started
    };
    let mut app = app_at("pgd-at/synthetic/adarat");
    press(&mut app, KeyCode::Enter);
    app.update(Msg::Snapshot(started("pgd-at/synthetic/adarat")));
    assert!(type_keys(&mut app, "y").is_empty());
    assert_eq!(
        app.status(),
        Some("pgd-at/synthetic/adarat is already running")
    );

    // Of two runs to redo, the one that started meanwhile is left out.
    let mut app = app_at("pgd-at/synthetic/adarat");
    type_keys(&mut app, " kk ");
    press(&mut app, KeyCode::Enter);
    assert!(matches!(app.popup(), Some(Popup::Confirm(_))));
    app.update(Msg::Snapshot(started("pgd-at/synthetic/adarat")));
    assert_eq!(
        type_keys(&mut app, "y"),
        vec![Command::Rerun(vec![run("pgd-at/synthetic/baseline")])]
    );
}

/// The status line after a command's result comes back.
fn worded(app: &mut App, done: Result<Outcome, ControlError>) -> String {
    assert!(app.update(Msg::CommandDone(done)).is_empty());
    app.status().unwrap_or_default().to_string()
}

#[test]
fn the_app_words_what_each_command_did() {
    let mut app = app();
    let fixrat = run("fat/cifar10/fixrat");
    let one = Outcome::Enqueued {
        added: vec![fixrat],
        notice: None,
    };
    assert_eq!(worded(&mut app, Ok(one)), "queued fat/cifar10/fixrat");
    let two = Outcome::Enqueued {
        added: vec![fixrat, run("fat/cifar10/adarat")],
        notice: None,
    };
    assert_eq!(worded(&mut app, Ok(two)), "queued 2 runs");
    let none = Outcome::Enqueued {
        added: Vec::new(),
        notice: None,
    };
    assert_eq!(worded(&mut app, Ok(none)), "already queued");
    assert_eq!(worded(&mut app, Ok(Outcome::QueueStarted)), "queue started");
    let stop = Outcome::StopRequested { run: run(RUNNING) };
    assert_eq!(
        worded(&mut app, Ok(stop)),
        "stopping trades/synthetic/adarat at the next batch; the queue is paused"
    );
    let removed = Outcome::RemovedFromQueue {
        run: run("fat/mnist/baseline"),
    };
    assert_eq!(
        worded(&mut app, Ok(removed)),
        "removed fat/mnist/baseline from the queue"
    );
    let elsewhere = ControlError::NotHere(LockOwner {
        host: Some("node7".into()),
        ..owner(RUNNING_PID)
    });
    assert_eq!(
        worded(&mut app, Err(elsewhere)),
        "error: the run is in process 4242 on host node7, which this console cannot stop: stop it \
         there"
    );
}

#[test]
fn an_outcome_with_nothing_to_say_leaves_the_apps_own_message() {
    let notice = "settings file settings.yaml: unknown setting `fancy` ignored".to_string();
    let saved = SavedState {
        cursor: Some("pgd-at/mnist/adarat".into()),
        selected: Vec::new(),
    };
    let mut app = App::new(plain_settings(), saved, vec![notice.clone()]);
    app.update(Msg::Snapshot(snapshot()));
    let later = type_keys(&mut app, "J");
    assert!(matches!(
        later.as_slice(),
        [Command::MoveQueued { by: 1, .. }]
    ));
    assert_eq!(worded(&mut app, Ok(Outcome::MovedInQueue)), notice);
}

// Quitting.

fn farewell(commands: Vec<Command>) -> Option<String> {
    match commands.as_slice() {
        [Command::Quit { farewell }] => farewell.clone(),
        other => panic!("expected a quit, got {other:?}"),
    }
}

#[test]
fn quitting_with_a_running_job_says_it_goes_on_and_how_to_come_back() {
    let mut app = app();
    let words = farewell(type_keys(&mut app, "q")).expect("a farewell");
    assert!(
        words.contains("trades/synthetic/adarat (pid 4242) goes on running"),
        "{words}"
    );
    assert!(
        words.contains("Run `adarat` again to watch or stop it"),
        "{words}"
    );
    let ctrl_c = press_key(&mut app, KeyCode::Char('c'), KeyModifiers::CONTROL);
    assert_eq!(farewell(ctrl_c), Some(words), "ctrl-c quits the same way");
}

#[test]
fn quitting_mentions_a_working_queue_and_is_silent_when_nothing_goes_on() {
    let mut idle = app_with(plain_settings(), idle_snapshot());
    assert_eq!(farewell(type_keys(&mut idle, "q")), None);

    let mut working = idle_snapshot();
    working.queue.push(Queued {
        run: run("fat/cifar10/fixrat"),
        waiting: None,
    });
    working.worker = Some(777);
    let mut app = app_with(plain_settings(), working);
    let words = farewell(type_keys(&mut app, "q")).expect("a farewell");
    assert!(
        words.contains("The queue (1 job) goes on in worker pid 777"),
        "{words}"
    );
}

#[test]
fn ctrl_c_quits_even_from_the_search_line_and_popups() {
    let mut searching = app();
    type_keys(&mut searching, "/pgd");
    let commands = press_key(&mut searching, KeyCode::Char('c'), KeyModifiers::CONTROL);
    assert!(matches!(commands.as_slice(), [Command::Quit { .. }]));
    let mut helped = app();
    type_keys(&mut helped, "?");
    assert!(
        type_keys(&mut helped, "q").is_empty(),
        "q closes the help, it does not quit"
    );
    assert!(helped.popup().is_none());
}

// Screens, help, settings.

#[test]
fn screens_switch_with_tab_numbers_and_letters_and_esc_goes_home() {
    let mut app = app();
    assert_eq!(app.screen(), Screen::Grid);
    press(&mut app, KeyCode::Tab);
    assert_eq!(app.screen(), Screen::Live);
    press_key(&mut app, KeyCode::BackTab, KeyModifiers::SHIFT);
    press_key(&mut app, KeyCode::BackTab, KeyModifiers::SHIFT);
    assert_eq!(app.screen(), Screen::Study);
    press_key(&mut app, KeyCode::BackTab, KeyModifiers::SHIFT);
    assert_eq!(app.screen(), Screen::Compare);
    type_keys(&mut app, "3");
    assert_eq!(app.screen(), Screen::Results);
    type_keys(&mut app, "v");
    assert_eq!(app.screen(), Screen::Live);
    type_keys(&mut app, "c");
    assert_eq!(app.screen(), Screen::Compare);
    press(&mut app, KeyCode::Esc);
    assert_eq!(app.screen(), Screen::Grid);
}

#[test]
fn a_key_override_changes_the_key_and_the_help() {
    let (settings, problems) = parse_settings("keys:\n  stop: X\n  help: f1\n");
    assert!(problems.is_empty(), "{problems:?}");
    let mut app = app_with(settings, snapshot());
    assert!(type_keys(&mut app, "x?").is_empty());
    assert!(app.popup().is_none(), "x and ? no longer do anything");
    press(&mut app, KeyCode::F(1));
    assert!(matches!(app.popup(), Some(Popup::Help { .. })));
    let help = screen_text(&app, 100, 40);
    assert_contains(&help, &["X ", "f1", "stop the running job"]);
    press(&mut app, KeyCode::Esc);
    press_key(&mut app, KeyCode::Char('X'), KeyModifiers::SHIFT);
    assert!(matches!(
        app.popup(),
        Some(Popup::Confirm(Command::Stop { .. }))
    ));
}

#[test]
fn a_broken_settings_file_gives_defaults_and_a_notice_that_expires() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("settings.yaml");
    std::fs::write(&path, "ascii: [true\n").unwrap();
    let (settings, notices) = load_settings_from(&path);
    assert_eq!(settings, Settings::default());
    assert_eq!(notices.len(), 1);
    assert!(
        notices[0].contains(&path.display().to_string()),
        "{notices:?}"
    );
    assert!(notices[0].contains("defaults used"), "{notices:?}");

    let (_, none) = load_settings_from(&dir.path().join("missing.yaml"));
    assert!(none.is_empty(), "a missing file is no problem");

    let mut app = App::new(settings, SavedState::default(), notices.clone());
    app.update(Msg::Snapshot(snapshot()));
    assert_eq!(app.status(), Some(notices[0].as_str()));
    assert!(screen_text(&app, 200, 24).contains("defaults used"));
    for _ in 0..1000 {
        app.update(Msg::Tick);
    }
    assert_eq!(app.status(), None);
}

#[test]
fn output_folder_problems_reach_the_status_line_once() {
    let mut app = app();
    let mut damaged = snapshot();
    damaged.problems = vec!["output/queue.json: expected value at line 1".to_string()];
    app.update(Msg::Snapshot(damaged.clone()));
    assert!(app.status().is_some_and(|s| s.contains("queue.json")));
    for _ in 0..1000 {
        app.update(Msg::Tick);
    }
    // The same problem again is not repeated on every snapshot.
    app.update(Msg::Snapshot(damaged));
    assert_eq!(app.status(), None);
}

#[test]
fn mouse_capture_follows_the_settings() {
    assert!(!app().mouse_capture());
    let (settings, _) = parse_settings("mouse: true");
    assert!(app_with(settings, snapshot()).mouse_capture());
}

// Views.

#[test]
fn the_grid_shows_states_and_headline_numbers() {
    for (width, height) in [(80, 24), (160, 48)] {
        let app = app_at("pgd-at/synthetic/adarat");
        let screen = screen_text(&app, width, height);
        assert_contains(
            &screen,
            &[
                "cifar10",
                "pgd-at",
                "adarat",
                "48.2 41.0",
                "44.4 -",
                "61.5 38.2",
            ],
        );
        // The detail of the cursor's job, with the final table.
        assert_contains(
            &screen,
            &["pgd-at/synthetic/adarat", "epochs 5/5", "PGD20 48.2"],
        );
    }
    let wide = screen_text(&app_at("dat/cifar10/baseline"), 160, 48);
    assert_contains(
        &wide,
        &[
            "not run",
            "queued #1",
            "queued #2",
            "failed",
            "running",
            "error: CUDA out of memory",
        ],
    );
    assert_contains(
        &wide,
        &["paused", "1. pgd-at/mnist/adarat", "2. fat/mnist/baseline"],
    );
    let compact = screen_text(&app_at("dat/cifar10/baseline"), 80, 24);
    assert_contains(
        &compact,
        &[
            "failed",
            "error: CUDA out of memory",
            "out/dat/cifar10/baseline",
        ],
    );
}

#[test]
fn the_grid_scrolls_to_keep_the_cursor_visible_at_80x24() {
    let app = app_at("generalist/synthetic/adarat");
    let screen = screen_text(&app, 80, 24);
    assert!(screen.contains("generalist adarat"), "{screen}");
}

#[test]
fn the_live_screen_shows_progress_sparklines_and_clean_only_batches() {
    for (width, height) in [(80, 24), (160, 48)] {
        let mut app = app();
        type_keys(&mut app, "v");
        let buffer = render(&app, width, height);
        let screen = text(&buffer);
        assert_contains(
            &screen,
            &[
                "trades/synthetic/adarat",
                "pid 4242",
                "cuda:0",
                "epoch   3/10",
                "batch   4/40",
                "1234 img/s",
                "ETA 0:12:34",
                "loss",
                "ratio H' 1.500",
                "train SA 70.0",
                "train RA 40.0",
                "test SA  61.5 e2",
                "test RA  38.2 e2",
                "clean-only batches: epoch 3 25% (1/4)",
                "e1 25% e2 25%",
                "epoch 2 done",
            ],
        );
        // The clean-only batch (the second sample) is drawn with its own symbol.
        assert!(screen.contains('░'), "{screen}");
    }
}

/// Two jobs running on two GPUs, and a student waiting in the queue for its teachers.
fn two_running_snapshot() -> Snapshot {
    let mut two = snapshot();
    let second = "pgd-at/cifar10/baseline";
    let row = two.jobs.iter_mut().find(|r| r.job == job(second)).unwrap();
    row.state = JobState::Run(Status::Running);
    row.owner = Some(owner(5151));
    two.live.push(Live {
        run: run(second),
        pid: 5151,
        device: "cuda:1".into(),
        ..live()
    });
    two.queue[0].waiting = Some("waiting for its teachers: st/mnist/baseline (running)".into());
    two
}

#[test]
fn n_steps_through_running_jobs_and_the_live_screen_follows_with_each_device() {
    let mut app = app_with(plain_settings(), two_running_snapshot());
    type_keys(&mut app, "n");
    assert_eq!(cursor(&app), "pgd-at/cifar10/baseline", "grid order first");
    type_keys(&mut app, "v");
    let screen = screen_text(&app, 120, 40);
    assert_contains(&screen, &["pgd-at/cifar10/baseline", "pid 5151", "cuda:1"]);
    type_keys(&mut app, "n");
    assert_eq!(cursor(&app), RUNNING);
    assert_contains(
        &screen_text(&app, 120, 40),
        &[RUNNING, "pid 4242", "cuda:0"],
    );
    type_keys(&mut app, "n");
    assert_eq!(cursor(&app), "pgd-at/cifar10/baseline", "it wraps around");

    // The grid's queue panel lists each running job's device and why a queued job waits; the
    // cursor's detail says where it runs.
    type_keys(&mut app, "g");
    let grid = screen_text(&app, 200, 50);
    assert_contains(
        &grid,
        &[
            "running on cuda:0 cuda:1",
            "running:",
            "pgd-at/cifar10/baseline  cuda:1",
            "trades/synthetic/adarat  cuda:0",
            "waiting for its teachers:",
            "pid 5151 on cuda:1",
        ],
    );

    let mut idle = app_with(plain_settings(), idle_snapshot());
    let before = cursor(&idle);
    type_keys(&mut idle, "n");
    assert_eq!(cursor(&idle), before);
    assert_eq!(idle.status(), Some("no job is running"));
}

fn slurm_task(id: &str, state: &str, reason: Option<&str>, node: Option<&str>) -> Task {
    Task {
        backend: "slurm",
        id: id.into(),
        state: state.into(),
        active: state != "COMPLETED",
        reason: reason.map(Into::into),
        node: node.map(Into::into),
        elapsed: "1:02:03".into(),
        after: Vec::new(),
    }
}

/// Jobs submitted to Slurm: one pending on resources, one running on a node this machine does not
/// see (its run folder is not locked here), one that completed.
fn slurm_snapshot() -> Snapshot {
    let mut snapshot = idle_snapshot();
    let mut give = |name: &str, task: Task| {
        let row = snapshot
            .jobs
            .iter_mut()
            .find(|r| r.job == job(name))
            .unwrap();
        row.remote = Some(task);
    };
    give(
        "fat/cifar10/adarat",
        slurm_task("12_0", "PENDING", Some("Resources"), None),
    );
    give(
        "dat/cifar10/fixrat",
        slurm_task("12_1", "RUNNING", None, Some("node7")),
    );
    give(
        "pgd-at/synthetic/adarat",
        slurm_task("9_0", "COMPLETED", None, Some("node2")),
    );
    snapshot
}

#[test]
fn slurm_tasks_show_in_the_grid_and_x_cancels_through_slurm_and_s_submits() {
    let mut app = app_with(plain_settings(), slurm_snapshot());
    let grid = screen_text(&app, 200, 50);
    assert_contains(&grid, &["slurm pending", "slurm running"]);
    type_keys(&mut app, "/fat/cifar10/ada");
    press(&mut app, KeyCode::Enter);
    assert_eq!(cursor(&app), "fat/cifar10/adarat");
    assert_contains(
        &screen_text(&app, 200, 50),
        &["slurm 12_0 PENDING (Resources)"],
    );
    assert!(type_keys(&mut app, "x").is_empty());
    assert_eq!(
        app.popup()
            .map(|p| matches!(p, Popup::Confirm(Command::Cancel { .. }))),
        Some(true)
    );
    assert_eq!(
        type_keys(&mut app, "y"),
        vec![Command::Cancel {
            run: run("fat/cifar10/adarat"),
            task: "12_0".into()
        }]
    );
    let said = worded(
        &mut app,
        Ok(Outcome::CancelRequested {
            run: run("fat/cifar10/adarat"),
            task: "12_0".into(),
        }),
    );
    assert!(said.contains("asked Slurm to cancel 12_0"), "{said}");

    type_keys(&mut app, "/dat/cifar10/fix");
    press(&mut app, KeyCode::Enter);
    assert_contains(
        &screen_text(&app, 200, 50),
        &["slurm 12_1 RUNNING on node7,", "1:02:03"],
    );
    // S submits the cursor's job, or the selection.
    assert_eq!(
        type_keys(&mut app, "S"),
        vec![Command::Submit(vec![job("dat/cifar10/fixrat")])]
    );
    let said = worded(
        &mut app,
        Ok(Outcome::Submitted {
            batches: vec!["array 13".into()],
            skipped: Vec::new(),
        }),
    );
    assert_eq!(said, "submitted to Slurm: array 13");
    // What submit left out is said; when it left out everything, that too.
    for (batches, skipped, expected) in [
        (
            vec!["array 14".to_string()],
            vec!["st/cifar10/baseline seed 1: completed".to_string()],
            "submitted to Slurm: array 14; left out st/cifar10/baseline seed 1: completed",
        ),
        (
            Vec::new(),
            vec!["a: completed".to_string(), "b: completed".to_string()],
            "nothing to submit: left out 2 runs (completed, running or on Slurm)",
        ),
    ] {
        type_keys(&mut app, "S");
        let said = worded(&mut app, Ok(Outcome::Submitted { batches, skipped }));
        assert_eq!(said, expected);
    }
    // The submission runs in the background: a second S waits until the first has answered.
    assert_eq!(type_keys(&mut app, "S").len(), 1);
    assert!(type_keys(&mut app, "S").is_empty());
    assert_contains(
        &screen_text(&app, 200, 50),
        &["submission to Slurm is still running"],
    );
    let said = worded(
        &mut app,
        Err(ControlError::Submit("sbatch: no partition".into())),
    );
    assert_eq!(said, "error: adarat submit: sbatch: no partition");
    assert_eq!(type_keys(&mut app, "S").len(), 1);
    // A completed task is history: x on it does not go to Slurm.
    type_keys(&mut app, "/pgd-at/synthetic/ada");
    press(&mut app, KeyCode::Enter);
    type_keys(&mut app, "x");
    assert!(app.popup().is_none());
}

#[test]
fn the_study_screen_shows_the_cursors_dataset_and_e_exports_every_format() {
    // The export draws figures, whose text needs a font.
    if !crate::common::system::installed(&[crate::common::system::Need::Font]) {
        return;
    }
    // The cursor's dataset is synthetic: PGD-AT's baseline (PGD-20 44.4) and AdaRAT (48.2, AA 41.0).
    let mut app = app_at("pgd-at/synthetic/adarat");
    type_keys(&mut app, "t");
    assert_eq!(app.screen(), Screen::Study);
    let narrow = screen_text(&app, 80, 24);
    assert_contains(
        &narrow,
        &[
            "synthetic: mean±sd",
            "pgd-at",
            "baseline",
            "adarat",
            "44.4",
            "48.2",
            "41.0",
        ],
    );
    assert_contains(&narrow, &["peaks", "SA ep", "83.0", "49.1"]);
    let wide = screen_text(&app, 200, 50);
    assert_contains(
        &wide,
        &[
            "(Δ) against the baseline",
            "48.2 +3.8",
            "AutoAttack: standard",
        ],
    );
    assert!(!narrow.contains("+3.8"), "Δ only where there is room");
    // Another dataset without runs says so.
    let mut empty = app_at("pgd-at/cifar10/adarat");
    type_keys(&mut empty, "t");
    assert_contains(
        &screen_text(&empty, 80, 24),
        &["No completed run with a final table on cifar10"],
    );

    assert_eq!(type_keys(&mut app, "E"), vec![Command::Export]);
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("output");
    let folder = output.join("pgd-at_synthetic_adarat_small-cnn_seed0");
    std::fs::create_dir_all(&folder).unwrap();
    let result = done_result("pgd-at/synthetic/adarat", 48.2, Some(41.0));
    std::fs::write(
        folder.join("result.json"),
        serde_json::to_string(&result).unwrap(),
    )
    .unwrap();
    let control = Control {
        output_dir: output.clone(),
        config: None,
        sets: Vec::new(),
        placement: Default::default(),
    };
    let done = control.export();
    let said = worded(&mut app, done);
    let report = output.join("report");
    // Six tables, one TensorBoard file, and four figures as SVG and PNG.
    assert_eq!(said, format!("exported 15 files to {}", report.display()));
    for file in [
        "results.md",
        "results.tex",
        "epochs.csv",
        "attacks.csv",
        "verdict.csv",
        "results.json",
        "figures/curves-pgd-at-synthetic.png",
        "figures/ratio-pgd-at-synthetic.svg",
        "figures/barrier.png",
        "figures/tradeoff-synthetic.svg",
    ] {
        assert!(report.join(file).is_file(), "{file}");
    }
    assert!(std::fs::read_to_string(report.join("results.md"))
        .unwrap()
        .contains("| pgd-at | adarat | 1 |"));
}

#[test]
fn the_live_screen_follows_the_final_evaluation_attack_by_attack() {
    let mut snapshot = snapshot();
    snapshot.live[0].phase = Phase::FinalEvaluation;
    snapshot.live[0].final_step = Some(FinalStep {
        attack: "autoattack/apgd-t".into(),
        batch: 3,
        batches: 40,
    });
    let mut app = app_with(plain_settings(), snapshot);
    type_keys(&mut app, "v");
    let screen = screen_text(&app, 80, 24);
    assert_contains(
        &screen,
        &["final attacks: autoattack/apgd-t", "final   3/40"],
    );
    assert!(!screen.contains("batch   4/40"), "{screen}");
}

#[test]
fn the_live_screen_says_when_there_is_no_ratio_or_nothing_runs() {
    let mut baseline = snapshot();
    baseline.live[0].run.job = job("trades/synthetic/baseline");
    for sample in &mut baseline.live[0].samples {
        sample.ratio = None;
        sample.clean_only = None;
    }
    let mut app = app_with(plain_settings(), baseline);
    type_keys(&mut app, "v");
    let screen = screen_text(&app, 80, 24);
    assert_contains(&screen, &["no ratio in baseline"]);
    assert!(!screen.contains("clean-only"), "{screen}");

    let mut idle = app_with(plain_settings(), idle_snapshot());
    type_keys(&mut idle, "v");
    assert_contains(&screen_text(&idle, 80, 24), &["nothing running"]);
}

#[test]
fn the_results_screen_shows_the_final_table_peaks_and_epochs() {
    for (width, height) in [(80, 24), (160, 48)] {
        let mut app = app_at("pgd-at/synthetic/adarat");
        type_keys(&mut app, "r");
        let screen = screen_text(&app, width, height);
        assert_contains(
            &screen,
            &[
                "pgd-at/synthetic/adarat",
                "completed",
                "1:02:03 (3723 s)",
                "clean    82.1",
                "FGSM     55.3",
                "PGD20    48.2",
                "AA       41.0",
                "AA preset standard",
                "SA peak 83.0 @ epoch 4",
                "RA peak 49.1 @ epoch 3",
                "^",
            ],
        );
        // The epoch table, peak rows named.
        assert_contains(&screen, &["epoch", "FGSM", "RA", "SA"]);
    }
    let mut app = app_at("pgd-at/synthetic/adarat");
    type_keys(&mut app, "r");
    let tall = screen_text(&app, 160, 48);
    let row = |epoch: &str| {
        tall.lines()
            .find(|l| l.starts_with(epoch))
            .map(str::trim_end)
    };
    assert!(row("3 ").is_some_and(|l| l.ends_with("RA")), "{tall}");
    assert!(row("4 ").is_some_and(|l| l.ends_with("SA")), "{tall}");
    assert!(row("5 ").is_some_and(|l| l.ends_with("12")), "{tall}");

    let mut none = app_at("fat/cifar10/fixrat");
    type_keys(&mut none, "r");
    assert_contains(&screen_text(&none, 80, 24), &["no result yet (not run)"]);

    let mut baseline = app_at("pgd-at/synthetic/baseline");
    type_keys(&mut baseline, "r");
    assert_contains(&screen_text(&baseline, 80, 24), &["AA          -"]);
}

/// The screen's text with every run of whitespace made one space: a message wrapped over rows
/// reads as it was written.
fn flowing(screen: &str) -> String {
    screen.split_whitespace().collect::<Vec<_>>().join(" ")
}

const LONG_ERROR: &str = "dataset cifar10 not found: fetching \
     https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz failed: Connection refused (os error 111); \
     without network, put data_batch_1.bin to data_batch_5.bin and test_batch.bin under \
     data/cifar-10-batches-bin/";

#[test]
fn a_long_error_is_shown_whole_at_80x24() {
    // A job that failed before it had a run folder: the queue's reason, on the grid and in Results.
    let mut failed = snapshot();
    let row = failed
        .jobs
        .iter_mut()
        .find(|r| r.job == job("dat/cifar10/baseline"))
        .unwrap();
    row.error = Some(LONG_ERROR.into());
    let mut app = app_with(plain_settings(), failed.clone());
    app.update(Msg::Snapshot(failed.clone()));
    let mut app_at_failed = {
        let saved = SavedState {
            cursor: Some("dat/cifar10/baseline".into()),
            selected: Vec::new(),
        };
        let mut app = App::new(plain_settings(), saved, Vec::new());
        app.update(Msg::Snapshot(failed.clone()));
        app
    };
    let wanted = format!("error: {LONG_ERROR}");
    let grid = screen_text(&app_at_failed, 80, 24);
    assert!(flowing(&grid).contains(&wanted), "{grid}");
    // The cursor's job stays in view above the detail.
    assert!(grid.contains("dat        baseline  failed"), "{grid}");
    // Wide: the side pane (its 40 inner columns) wraps it, long words broken.
    let wide = screen_text(&app_at_failed, 160, 48);
    let pane: String = wide
        .lines()
        .map(|line| line.chars().skip(160 - 41).take(40).collect::<String>())
        .collect();
    let squeezed = |text: &str| text.split_whitespace().collect::<String>();
    assert!(squeezed(&pane).contains(&squeezed(&wanted)), "{wide}");
    type_keys(&mut app_at_failed, "r");
    let results = screen_text(&app_at_failed, 80, 24);
    assert!(flowing(&results).contains(&wanted), "{results}");
    assert!(results.contains("no result yet (failed)"), "{results}");

    // A run that failed with a result.json: the header of Results.
    let mut with_result = failed;
    let row = with_result
        .jobs
        .iter_mut()
        .find(|r| r.job == job("pgd-at/synthetic/adarat"))
        .unwrap();
    let mut result = done_result("pgd-at/synthetic/adarat", 48.2, None);
    result.status = Status::Failed;
    result.error = Some(LONG_ERROR.into());
    row.state = JobState::Run(Status::Failed);
    row.error = Some(LONG_ERROR.into());
    row.result = Some(Arc::new(result));
    let mut app_failed_run = app_at("pgd-at/synthetic/adarat");
    app_failed_run.update(Msg::Snapshot(with_result));
    type_keys(&mut app_failed_run, "r");
    let results = screen_text(&app_failed_run, 80, 24);
    assert!(flowing(&results).contains(&wanted), "{results}");
    assert!(
        results.contains("clean    82.1"),
        "the final table still shows:\n{results}"
    );

    // A long error in the status line, and a long line in the live log.
    let not_started = ControlError::WorkerNotStarted(adarat::worker::WorkerError::Spawn(
        std::io::Error::other(LONG_ERROR),
    ));
    app.update(Msg::CommandDone(Err(not_started)));
    let screen = screen_text(&app, 80, 24);
    assert!(
        flowing(&screen).contains(&format!("error: starting the worker: {LONG_ERROR}")),
        "{screen}"
    );
    let mut running = snapshot();
    running.live[0].log.push(format!("warning: {LONG_ERROR}"));
    let mut live = app_at(RUNNING);
    live.update(Msg::Snapshot(running));
    type_keys(&mut live, "v");
    let screen = screen_text(&live, 80, 24);
    assert!(
        flowing(&screen).contains(&format!("warning: {LONG_ERROR}")),
        "{screen}"
    );
}

#[test]
fn the_results_table_scrolls() {
    let mut app = app_at("pgd-at/synthetic/adarat");
    type_keys(&mut app, "r");
    press(&mut app, KeyCode::PageDown);
    // No further than the last epoch.
    assert_contains(&screen_text(&app, 80, 24), &["epochs from 5 of 5"]);
    press(&mut app, KeyCode::PageUp);
    assert_contains(&screen_text(&app, 80, 24), &["epochs from 1 of 5"]);
}

#[test]
fn compare_puts_the_modes_of_the_cursor_side_by_side_best_marked() {
    let mut ascii = plain_settings();
    ascii.ascii = true;
    let mut app = app_with(ascii, snapshot());
    type_keys(&mut app, "/pgd-at/synthetic/fixrat");
    press(&mut app, KeyCode::Enter);
    type_keys(&mut app, "c");
    for (width, height) in [(80, 24), (160, 48)] {
        let screen = screen_text(&app, width, height);
        assert_contains(
            &screen,
            &[
                "pgd-at on synthetic",
                "baseline",
                "adarat",
                "PGD-20",
                "48.2*",
                "44.4",
                "41.0*",
            ],
        );
        assert_contains(
            &screen,
            &["SA peak", "83.0 @4", "RA peak", "49.1 @3", "5/5"],
        );
        assert!(!screen.contains("44.4*"), "only the best is marked");
        assert!(
            !screen.contains("82.1*"),
            "a row of equal values marks nothing"
        );
    }

    // The selection wins over the cursor's trio.
    let mut app = app_at("pgd-at/synthetic/baseline");
    type_keys(&mut app, " c");
    let screen = screen_text(&app, 80, 24);
    assert_contains(&screen, &["the selected runs", "44.4"]);
    assert!(!screen.contains("48.2"), "{screen}");
}

#[test]
fn help_lists_every_key_at_both_sizes() {
    for (width, height) in [(80, 24), (160, 48)] {
        let mut app = app();
        type_keys(&mut app, "?");
        let screen = screen_text(&app, width, height);
        assert_contains(&screen, &["up/k", "space", "enter", "stop the running job"]);
        if height >= 40 {
            assert_contains(&screen, &["q/ctrl-c", "quit (running jobs go on)"]);
        }
    }
    let mut app = app();
    type_keys(&mut app, "?");
    type_keys(&mut app, &"j".repeat(30));
    let scrolled = screen_text(&app, 80, 24);
    assert_contains(&scrolled, &["q/ctrl-c", "quit (running jobs go on)"]);
}

/// Every screen, with and without popups, the cursor on a done job.
fn every_view(settings: &Settings) -> Vec<App> {
    let keys = ["", "v", "r", "c", "?", "x", "/synth", " j c", "\n", "t"];
    keys.iter()
        .map(|keys| {
            let mut app = app_with(settings.clone(), snapshot());
            type_keys(&mut app, "/pgd-at/synthetic/adarat");
            press(&mut app, KeyCode::Enter);
            for key in keys.chars() {
                let code = if key == '\n' {
                    KeyCode::Enter
                } else {
                    KeyCode::Char(key)
                };
                press(&mut app, code);
            }
            app
        })
        .collect()
}

fn ascii_settings() -> Settings {
    Settings {
        ascii: true,
        ..plain_settings()
    }
}

#[test]
fn ascii_mode_draws_only_ascii() {
    for app in every_view(&ascii_settings()) {
        for (width, height) in [(80, 24), (160, 48), (40, 12)] {
            let buffer = render(&app, width, height);
            let odd: String = buffer
                .content()
                .iter()
                .map(|c| c.symbol())
                .filter(|s| !s.is_ascii())
                .collect();
            assert!(
                odd.is_empty(),
                "{:?} at {width}x{height} draws {odd:?}:\n{}",
                app.screen(),
                text(&buffer)
            );
        }
    }
}

#[test]
fn without_colours_nothing_is_coloured() {
    let settings = Settings {
        colors: false,
        ..Settings::default()
    };
    for app in every_view(&settings) {
        let buffer = render(&app, 160, 48);
        let coloured = buffer
            .content()
            .iter()
            .filter(|c| c.fg != Color::Reset || c.bg != Color::Reset)
            .count();
        assert_eq!(coloured, 0, "{:?}:\n{}", app.screen(), text(&buffer));
    }
}

#[test]
fn tiny_terminals_do_not_panic() {
    for app in every_view(&ascii_settings())
        .into_iter()
        .chain(every_view(&plain_settings()))
    {
        for (width, height) in [(20, 5), (1, 1), (10, 2), (80, 3), (3, 40)] {
            render(&app, width, height);
        }
    }
}

#[test]
fn before_the_first_snapshot_the_console_says_it_is_reading() {
    for keys in ["", "v", "r", "c"] {
        let mut app = App::new(plain_settings(), SavedState::default(), Vec::new());
        type_keys(&mut app, keys);
        assert_contains(&screen_text(&app, 80, 24), &["reading the output folder"]);
    }
}

// Snapshots: each screen at 80×24, as a user sees it, compared whole with `tests/snapshots/`.

/// The screen's text against `tests/snapshots/<name>.txt`. With `ADARAT_UPDATE_SNAPSHOTS=1` the
/// file is written instead (review the diff before committing it).
fn assert_snapshot(name: &str, screen: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(format!("{name}.txt"));
    let screen: String = screen
        .lines()
        .map(|l| format!("{}\n", l.trim_end()))
        .collect();
    if std::env::var_os("ADARAT_UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &screen).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (ADARAT_UPDATE_SNAPSHOTS=1 writes it)",
            path.display()
        )
    });
    assert!(
        screen == expected,
        "{name} at 80×24 changed; ADARAT_UPDATE_SNAPSHOTS=1 rewrites {}:\n{screen}",
        path.display()
    );
}

#[test]
fn every_screen_at_80x24_matches_its_snapshot() {
    let names = [
        "grid",
        "live",
        "results",
        "compare",
        "help",
        "stop",
        "search",
        "compare-selection",
        "requeue-done",
        "study",
    ];
    for (name, app) in names.iter().zip(every_view(&plain_settings())) {
        assert_snapshot(&format!("{name}-80x24"), &screen_text(&app, 80, 24));
    }
    for (name, app) in names.iter().zip(every_view(&ascii_settings())).take(4) {
        assert_snapshot(&format!("{name}-80x24-ascii"), &screen_text(&app, 80, 24));
    }
}

// Seeds: a job of the grid runs once per seed (`grid.seeds`).

/// The fixture with three seeds per job: `pgd-at/synthetic/adarat` has seeds 1 and 2 done (PGD-20
/// 48.2 and 50.2) and seed 3 not run; `pgd-at/synthetic/baseline` has all three done.
fn seeds_snapshot() -> Snapshot {
    let mut one = snapshot();
    let mut jobs = Vec::new();
    for row in one.jobs.drain(..) {
        for seed in [1, 2, 3] {
            let mut copy = row.clone();
            copy.seed = seed;
            let adarat = row.job == job("pgd-at/synthetic/adarat");
            let baseline = row.job == job("pgd-at/synthetic/baseline");
            let busy = matches!(row.state, JobState::Queued | JobState::Run(Status::Running));
            if (adarat && seed == 3) || (busy && seed != 1) {
                copy.state = JobState::NotRun;
                copy.result = None;
                copy.owner = None;
            } else if adarat || baseline {
                let pgd20 = if adarat {
                    46.2 + 2.0 * seed as f64
                } else {
                    44.4
                };
                let mut result = done_result(&row.job.to_string(), pgd20, Some(40.0));
                result.seed = seed;
                copy.result = Some(Arc::new(result));
            }
            jobs.push(copy);
        }
    }
    Snapshot {
        seeds: vec![1, 2, 3],
        jobs,
        ..one
    }
}

#[test]
fn with_seeds_enter_queues_the_missing_seeds_and_asks_only_when_all_are_done() {
    let mut app = app_with(plain_settings(), seeds_snapshot());
    type_keys(&mut app, "/pgd-at/synthetic/adarat");
    press(&mut app, KeyCode::Enter);
    let seed3 = SeededJob {
        seed: 3,
        ..run("pgd-at/synthetic/adarat")
    };
    assert_eq!(
        press(&mut app, KeyCode::Enter),
        vec![Command::Enqueue(vec![seed3])]
    );
    // Every seed done: it asks, naming each run.
    type_keys(&mut app, "/pgd-at/synthetic/baseline");
    press(&mut app, KeyCode::Enter);
    assert!(press(&mut app, KeyCode::Enter).is_empty());
    let Some(Popup::Confirm(question)) = app.popup() else {
        panic!("expected a question, got {:?}", app.popup());
    };
    assert!(question
        .question(app.shared().snapshot())
        .unwrap()
        .starts_with("pgd-at/synthetic/baseline seed 1, pgd-at/synthetic/baseline seed 2, "));
    // Confirmed, they go to the queue as reruns: each is moved aside when it starts.
    let Command::Rerun(runs) = &type_keys(&mut app, "y")[0] else {
        panic!("expected the runs queued to run again");
    };
    assert_eq!(runs.len(), 3);
    // A cell never run queues all its seeds.
    let mut app = app_at("fat/cifar10/fixrat");
    app.update(Msg::Snapshot(seeds_snapshot()));
    let Command::Enqueue(runs) = &press(&mut app, KeyCode::Enter)[0] else {
        panic!("expected the runs queued");
    };
    let seeds: Vec<u64> = runs.iter().map(|r| r.seed).collect();
    assert_eq!(seeds, [1, 2, 3]);
}

#[test]
fn with_seeds_the_grid_counts_done_seeds_and_results_show_mean_and_sd() {
    let mut app = app_with(plain_settings(), seeds_snapshot());
    type_keys(&mut app, "/pgd-at/synthetic/adarat");
    press(&mut app, KeyCode::Enter);
    let grid = screen_text(&app, 200, 50);
    // Seeds 1 and 2 done, PGD-20 48.2 and 50.2: mean 49.2, sd 1.41.
    assert_contains(
        &grid,
        &[
            "2/3 49.2 40.0",
            "3/3 44.4 40.0",
            "running 0/3",
            "queued 0/3",
        ],
    );
    assert!(
        !grid.contains("not run 0/3"),
        "nothing to count in a job never run"
    );
    assert_contains(
        &grid,
        &[
            "pgd-at/synthetic/adarat seed 1",
            "seeds 2/3 done: SA 82.1±0.0  PGD-20",
            "49.2±1.4  AA 40.0±0.0",
        ],
    );
    // `]` shows the next seed; the results give the seed's value beside the mean over seeds.
    type_keys(&mut app, "]");
    assert_eq!(app.shared().cursor().map(|r| r.seed), Some(2));
    type_keys(&mut app, "3");
    let results = screen_text(&app, 120, 40);
    assert_contains(
        &results,
        &[
            "final: seed 2, all seeds",
            "PGD20    50.2  49.2±1.4 n=2",
            "seed 2 of 3",
        ],
    );
    type_keys(&mut app, "]]");
    assert_eq!(
        app.shared().cursor().map(|r| r.seed),
        Some(1),
        "wraps around"
    );
    type_keys(&mut app, "[");
    assert_eq!(app.shared().cursor().map(|r| r.seed), Some(3));
    assert_contains(&screen_text(&app, 120, 40), &["no result yet (not run)"]);
    // Compare: one column per mode, the seeds of each averaged.
    type_keys(&mut app, "4");
    let compare = screen_text(&app, 120, 40);
    assert_contains(
        &compare,
        &["baseline (n=3)", "adarat (n=2)", "49.2±1.4", "44.4±0.0"],
    );
    // With one seed per job, `]` says why it does nothing.
    let mut single = app_with(plain_settings(), snapshot());
    type_keys(&mut single, "]");
    assert!(single
        .status()
        .unwrap_or_default()
        .contains("one seed per job"));
}

#[test]
fn with_seeds_the_grid_reads_at_80x24() {
    let mut app = app_with(plain_settings(), seeds_snapshot());
    type_keys(&mut app, "/pgd-at/synthetic/adarat");
    press(&mut app, KeyCode::Enter);
    let grid = screen_text(&app, 80, 24);
    assert_contains(
        &grid,
        &[
            "2/3 49.2 ",
            "3/3 44.4 ",
            "pgd-at/synthetic/adarat seed 1",
            "seeds 2/3 done: SA 82.1±0.0  PGD-20 49.2±1.4  AA 40.0±0.0",
        ],
    );
}
