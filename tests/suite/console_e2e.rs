//! The console end to end, in a real terminal (tmux): open it, jump to a synthetic job, start it,
//! see an epoch finish, lose the terminal, see the job go on, reopen, stop the job, quit.
use crate::common;
use crate::common::tmux::Tmux;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn wait_for(what: &str, limit: Duration, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn console_command(dir: &Path) -> String {
    let home = dir.join("home");
    format!(
        "env OMP_NUM_THREADS=1 TERM=xterm-256color XDG_CONFIG_HOME={home}/config \
         XDG_STATE_HOME={home}/state XDG_DATA_HOME={home}/data {exe} \
         --set datasets.synthetic.train_size=160 --set datasets.synthetic.test_size=64 \
         --set device=cpu --set datasets.synthetic.epochs=50; sleep 30",
        home = home.display(),
        exe = env!("CARGO_BIN_EXE_adarat"),
    )
}

fn pid_in(lock: &Path) -> Option<i32> {
    match adarat::lock::holder(lock) {
        adarat::lock::Holder::Held(Some(owner)) => i32::try_from(owner.pid).ok(),
        _ => None,
    }
}

fn alive(pid: i32) -> bool {
    adarat::native::posix::send_signal(pid as u32, 0).is_ok()
}

#[test]
fn the_console_starts_a_job_that_outlives_its_terminal_and_stops_it_when_reopened() {
    if !common::system::installed(&[common::system::Need::Tmux]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let run: PathBuf = dir
        .path()
        .join("output/pgd-at_synthetic_adarat_small-cnn_seed1");
    let events = run.join("events.jsonl");
    let tmux = Tmux::new();
    tmux.open(dir.path(), &console_command(dir.path()));
    wait_for("the grid", Duration::from_secs(20), || {
        tmux.screen().contains("pgd-at")
    });

    tmux.keys(&["/", "pgd-at/synthetic/adarat", "Enter", "Enter"]);
    wait_for("an epoch to finish", Duration::from_secs(120), || {
        read(&events).contains("epoch_finished")
    });
    // The live screen shows the finished epoch and the batches of the next one.
    tmux.keys(&["v"]);
    wait_for(
        "the live screen's epoch line",
        Duration::from_secs(20),
        || {
            let screen = tmux.screen();
            screen.contains("epoch 1/50: loss") && screen.contains("pgd-at/synthetic/adarat")
        },
    );
    // The job runs in a process of the queue worker's, not in the console.
    let worker = pid_in(&dir.path().join("output/.locks/worker.lock")).expect("a worker runs");
    let runner = pid_in(
        &dir.path()
            .join("output/.locks/pgd-at_synthetic_adarat_small-cnn_seed1.lock"),
    )
    .expect("a process runs the job");
    assert_ne!(runner, worker);
    let parent = std::fs::read_to_string(format!("/proc/{runner}/stat")).unwrap();
    let parent: i32 = parent
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(parent, worker, "the job's process is the worker's child");

    // Drop the terminal; the job goes on.
    tmux.kill();
    let before = read(&events).len();
    wait_for(
        "more batches after the terminal went",
        Duration::from_secs(60),
        || read(&events).len() > before,
    );
    assert!(alive(worker) && alive(runner));

    // Reopen: the job shows live and stops on `x` `y`.
    let tmux = Tmux::new();
    tmux.open(dir.path(), &console_command(dir.path()));
    wait_for(
        "the job running in the reopened console",
        Duration::from_secs(20),
        || tmux.screen().contains("running"),
    );
    tmux.keys(&["x"]);
    wait_for("the stop confirmation", Duration::from_secs(10), || {
        tmux.screen().contains("y/n")
    });
    tmux.keys(&["y"]);
    wait_for("the run to stop", Duration::from_secs(60), || {
        read(&run.join("result.json")).contains("\"stopped\"")
    });
    wait_for(
        "the job's process and the worker to end",
        Duration::from_secs(30),
        || !alive(runner) && !alive(worker),
    );
    tmux.keys(&["q"]);
    wait_for("the console to quit", Duration::from_secs(10), || {
        !tmux.screen().contains("pgd-at")
    });
    assert!(tmux.session_alive());
}
