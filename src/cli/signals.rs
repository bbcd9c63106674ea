//! Signals for processes that train (`adarat run` and the queue worker). SIGTERM and SIGINT ask
//! the run to stop at the next batch boundary (a second SIGINT exits at once: every file a later
//! step reads is written atomically, so nothing is corrupted). SIGHUP, a lost terminal, never
//! stops a run: output goes to /dev/null from then on.
use super::exit::ExitStatus;
use crate::train::StopFlag;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

pub(super) fn install(stop: &StopFlag) -> std::io::Result<()> {
    // Registered first: the second SIGINT finds the flag already set and exits.
    signal_hook::flag::register_conditional_shutdown(
        SIGINT,
        i32::from(ExitStatus::Stopped.code()),
        stop.shared(),
    )?;
    signal_hook::flag::register(SIGINT, stop.shared())?;
    signal_hook::flag::register(SIGTERM, stop.shared())?;
    let mut hangups = signal_hook::iterator::Signals::new([SIGHUP])?;
    std::thread::spawn(move || {
        if hangups.forever().next().is_some() {
            detach_output();
            // Later hangups are ignored by the handler that stays registered.
            for _ in hangups.forever() {}
        }
    });
    Ok(())
}

/// Points stdout and stderr at /dev/null, so writes to the vanished terminal neither fail nor
/// block.
fn detach_output() {
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        crate::native::posix::redirect_output(&null);
    }
}
