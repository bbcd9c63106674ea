//! What some tests need from the system besides `.venv`: a real Slurm, tmux, LaTeX, a font, Debian's
//! Fashion-MNIST. `tests/system-packages.sh` is the one list of them; `make test` installs what it
//! can, and a test whose need is still missing is skipped with one line, except under CI
//! (docs/testing.md#system-packages).
use std::io::Write;
use std::path::Path;
use std::process::Command;

/// A need of `tests/system-packages.sh`.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Need {
    Slurm,
    Tmux,
    Latex,
    Font,
    FashionMnist,
}

impl Need {
    fn name(self) -> &'static str {
        match self {
            Need::Slurm => "slurm",
            Need::Tmux => "tmux",
            Need::Latex => "latex",
            Need::Font => "font",
            Need::FashionMnist => "fashion-mnist",
        }
    }

    /// Why the need is not met, or None when it is.
    fn missing(self) -> Option<String> {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/system-packages.sh");
        let out = Command::new(&script)
            .args(["check", self.name()])
            .output()
            .unwrap_or_else(|e| panic!("{}: {e}", script.display()));
        let why = String::from_utf8_lossy(&out.stdout).trim().to_string();
        match out.status.code() {
            Some(0) => None,
            Some(1) if !why.is_empty() => Some(why),
            _ => panic!("{} check {}: {out:?}", script.display(), self.name()),
        }
    }
}

/// Under CI every test runs: a missing need fails the test rather than skipping it.
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !matches!(v.as_str(), "" | "0" | "false"))
}

/// True when every need is met. Otherwise the test is to return at once: this records it as
/// skipped (in `ADARAT_SKIPPED`, which `make test` counts at the end) and prints why; under CI it
/// fails instead.
pub(crate) fn installed(needs: &[Need]) -> bool {
    let Some(why) = needs.iter().find_map(|need| need.missing()) else {
        return true;
    };
    let test = std::thread::current()
        .name()
        .unwrap_or("a test")
        .to_string();
    assert!(
        !in_ci(),
        "{test}: {why}; under CI every test runs (`make system-deps` installs the tests' packages)"
    );
    eprintln!("skipped {test}: {why} (sudo make system-deps installs it)");
    if let Some(log) = std::env::var_os("ADARAT_SKIPPED") {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        writeln!(file, "{test}\t{why}").unwrap();
    }
    false
}
