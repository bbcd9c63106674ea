//! A tmux server of the test's own: the console in a real terminal.
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Each server its own socket, also for two in one test process.
static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A tmux server of its own, killed when the test ends.
pub(crate) struct Tmux {
    socket: String,
}

impl Tmux {
    pub(crate) fn new() -> Tmux {
        Tmux {
            socket: format!(
                "adarat-e2e-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            ),
        }
    }

    pub(crate) fn command(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .args(["-L", &self.socket, "-f", "/dev/null"])
            .args(args)
            .output()
            .expect("tmux runs")
    }

    /// Opens the console in a new 80×24 session.
    pub(crate) fn open(&self, dir: &Path, console: &str) {
        self.open_sized(dir, console, 80, 24);
    }

    pub(crate) fn open_sized(&self, dir: &Path, console: &str, width: u16, height: u16) {
        let out = self.command(&[
            "new-session",
            "-d",
            "-s",
            "console",
            "-x",
            &width.to_string(),
            "-y",
            &height.to_string(),
            &format!("cd {} && {console}", dir.display()),
        ]);
        assert!(out.status.success(), "{out:?}");
    }

    pub(crate) fn keys(&self, keys: &[&str]) {
        for key in keys {
            let out = self.command(&["send-keys", "-t", "console", key]);
            assert!(out.status.success(), "{out:?}");
            std::thread::sleep(Duration::from_millis(150));
        }
    }

    /// The text of the console's screen.
    pub(crate) fn screen(&self) -> String {
        String::from_utf8_lossy(
            &self
                .command(&["capture-pane", "-p", "-t", "console"])
                .stdout,
        )
        .into_owned()
    }

    pub(crate) fn session_alive(&self) -> bool {
        self.command(&["has-session", "-t", "console"])
            .status
            .success()
    }

    /// Kills the server: the console's terminal goes away as with a dropped SSH connection.
    pub(crate) fn kill(&self) {
        self.command(&["kill-server"]);
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.kill();
    }
}
