//! The console's screens, one file each: the screen's own state, what it does with the actions the
//! app leaves to the shown screen, and its drawing, a pure function of its state and the [`Shared`]
//! one. The table below lists them in the header's order with the action that shows each; adding a
//! screen is its file and one line of the table.
mod shared;

pub use shared::Shared;

use super::keys::{self, ActionEntry, ScreenTable};
use super::widgets::Theme;
use ratatui::layout::Rect;
use ratatui::Frame;

/// Everything a key can do, showing each screen included.
pub type Action = keys::Action<Screen>;
pub type KeyTable = keys::KeyTable<Screen>;
pub type KeyOverrides = keys::KeyOverrides<Screen>;

/// What every screen provides; [`Screens`] calls the shown one's.
trait View: Default {
    fn draw(&self, frame: &mut Frame, area: Rect, shared: &Shared, theme: Theme);

    /// An action the app leaves to the shown screen (scrolling).
    fn on_action(&mut self, _action: Action, _shared: &Shared) {}

    /// The screens show another run now: a place kept in the last one starts over.
    fn run_changed(&mut self) {}
}

/// Writes [`Screen`], its entries in the key table and [`Screens`], which holds every screen's
/// state and calls the shown one, from one table: `Variant in module: title, action, keys, help`.
macro_rules! screens {
    (
        $($(#[$doc:meta])* $variant:ident in $module:ident:
            $title:literal, $name:literal, [$($key:literal),+], $description:literal;)+
    ) => {
        $(mod $module;)+

        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Screen {
            $($(#[$doc])* $variant),+
        }

        impl Screen {
            /// In the header's order.
            pub const ALL: &'static [Screen] = &[$(Screen::$variant),+];

            pub fn title(self) -> &'static str {
                match self {
                    $(Screen::$variant => $title),+
                }
            }
        }

        impl ScreenTable for Screen {
            const ALL: &'static [Screen] = Screen::ALL;

            fn entry(self) -> ActionEntry {
                match self {
                    $(Screen::$variant => ActionEntry {
                        name: $name,
                        keys: &[$($key),+],
                        description: $description,
                    }),+
                }
            }
        }

        /// Every screen's own state.
        #[derive(Default)]
        pub(super) struct Screens {
            $($module: $module::$variant),+
        }

        impl Screens {
            pub(super) fn draw(
                &self,
                screen: Screen,
                frame: &mut Frame,
                area: Rect,
                shared: &Shared,
                theme: Theme,
            ) {
                match screen {
                    $(Screen::$variant => self.$module.draw(frame, area, shared, theme)),+
                }
            }

            pub(super) fn on_action(&mut self, screen: Screen, action: Action, shared: &Shared) {
                match screen {
                    $(Screen::$variant => self.$module.on_action(action, shared)),+
                }
            }

            pub(super) fn run_changed(&mut self) {
                $(self.$module.run_changed();)+
            }
        }
    };
}

screens! {
    /// The home screen: the grid of jobs, the cursor's job in detail, the queue.
    Grid in grid: "Grid", "grid", ["1", "g"], "grid screen";
    Live in live: "Live", "live", ["2", "v"], "live screen";
    Results in results: "Results", "results", ["3", "r"], "results of the job";
    Compare in compare: "Compare", "compare", ["4", "c"], "compare selected runs";
    /// The study's tables for the cursor's dataset (docs/report.md).
    Study in study: "Study", "study", ["5", "t"], "the study's tables for the cursor's dataset";
}

impl Screen {
    /// The screen `by` places on in the header, wrapping around.
    pub(super) fn shifted(self, by: isize) -> Screen {
        let count = Screen::ALL.len() as isize;
        let index = Screen::ALL.iter().position(|s| *s == self).unwrap_or(0) as isize;
        Screen::ALL[(index + by).rem_euclid(count) as usize]
    }
}
