//! Taking over the terminal and always giving it back: [`TerminalGuard`] gives it back when dropped
//! (on quit, a signal, an error or a panic unwinding), and a panic hook gives it back before the
//! panic's message is printed, whichever thread panics.
use crossterm::event::{DisableMouseCapture, EnableMouseCapture};
use crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use crossterm::{cursor, execute};
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;
use std::io::{stdout, Stdout};
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;

pub type Screen = Terminal<CrosstermBackend<Stdout>>;

/// Whether the terminal is taken, so that giving it back happens once (the hook outlives the
/// guard) and never touches a terminal the console no longer holds.
static TAKEN: AtomicBool = AtomicBool::new(false);
/// Whether mouse capture was turned on, so that giving back turns it off again.
static MOUSE: AtomicBool = AtomicBool::new(false);
static PANIC_HOOK: Once = Once::new();

/// The terminal in raw mode on the alternate screen (capturing the mouse if asked), drawn through
/// [`Screen`]; dropping it gives the terminal back.
pub(crate) struct TerminalGuard {
    screen: Screen,
    _given_back: GiveBack,
}

/// Gives the terminal back when dropped, also when taking it over fails half-way.
struct GiveBack;

impl Drop for GiveBack {
    fn drop(&mut self) {
        give_back();
    }
}

impl TerminalGuard {
    pub(crate) fn take(mouse: bool) -> std::io::Result<TerminalGuard> {
        PANIC_HOOK.call_once(|| {
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                give_back();
                previous(info);
            }));
        });
        TAKEN.store(true, Ordering::SeqCst);
        let given_back = GiveBack;
        enable_raw_mode()?;
        execute!(stdout(), EnterAlternateScreen, cursor::Hide)?;
        if mouse {
            MOUSE.store(true, Ordering::SeqCst);
            execute!(stdout(), EnableMouseCapture)?;
        }
        Ok(TerminalGuard {
            screen: Terminal::new(CrosstermBackend::new(stdout()))?,
            _given_back: given_back,
        })
    }
}

impl Deref for TerminalGuard {
    type Target = Screen;
    fn deref(&self) -> &Screen {
        &self.screen
    }
}

impl DerefMut for TerminalGuard {
    fn deref_mut(&mut self) -> &mut Screen {
        &mut self.screen
    }
}

/// Harmless on a terminal that is gone: every step is tried.
fn give_back() {
    if !TAKEN.swap(false, Ordering::SeqCst) {
        return;
    }
    if MOUSE.swap(false, Ordering::SeqCst) {
        let _ = execute!(stdout(), DisableMouseCapture);
    }
    let _ = disable_raw_mode();
    let _ = execute!(stdout(), LeaveAlternateScreen, cursor::Show);
}
