//! Taking over the terminal and always giving it back: on quit, on a panic (any thread) and on a
//! signal.
use crossterm::event::{DisableMouseCapture, EnableMouseCapture};
use crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use crossterm::{cursor, execute};
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;
use std::io::{stdout, Stdout};
use std::sync::atomic::{AtomicBool, Ordering};

pub type Screen = Terminal<CrosstermBackend<Stdout>>;

/// Whether mouse capture was turned on, so that restoring turns it off again.
static MOUSE: AtomicBool = AtomicBool::new(false);

pub fn take_over(mouse: bool) -> std::io::Result<Screen> {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore();
        previous(info);
    }));
    enable_raw_mode()?;
    execute!(stdout(), EnterAlternateScreen, cursor::Hide)?;
    if mouse {
        execute!(stdout(), EnableMouseCapture)?;
        MOUSE.store(true, Ordering::SeqCst);
    }
    Terminal::new(CrosstermBackend::new(stdout()))
}

/// Gives the terminal back; harmless to call twice or on a terminal that is gone.
pub fn restore() {
    if MOUSE.swap(false, Ordering::SeqCst) {
        let _ = execute!(stdout(), DisableMouseCapture);
    }
    let _ = disable_raw_mode();
    let _ = execute!(stdout(), LeaveAlternateScreen, cursor::Show);
}
