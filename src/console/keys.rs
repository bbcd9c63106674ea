//! The console's keys and their per-user overrides: one table gives each [`Action`] its name, its
//! default keys and its help, and the update function, the help popup and the settings file all
//! read it, so an override shows in the help.
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use thiserror::Error;

/// A name in the settings file's `keys:` that is not an action or not a key.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum KeyError {
    #[error("unknown action `{0}`")]
    UnknownAction(String),
    #[error("unknown key `{0}`")]
    UnknownKey(String),
}

/// An action's line in the key table: its name in the settings file's `keys:`, its default keys and
/// what the help popup says it does.
#[derive(Clone, Copy, Debug)]
pub struct ActionEntry {
    pub name: &'static str,
    pub keys: &'static [&'static str],
    pub description: &'static str,
}

/// The screens as the key table sees them: each is shown by an action of its own, whose entry the
/// screen table gives (`screens::Screen`, which sits above the keys and reads them for its hints).
pub trait ScreenTable: Copy + Ord + 'static {
    /// In the header's order, which is also the help's.
    const ALL: &'static [Self];
    fn entry(self) -> ActionEntry;
}

/// Writes [`Action`] and its entries from one table; the screens' actions go where `..screens`
/// stands, which is their place in the help.
macro_rules! actions {
    (
        $($before:ident => $before_name:literal, [$($before_key:literal),+], $before_help:literal;)+
        ..screens;
        $($after:ident => $after_name:literal, [$($after_key:literal),+], $after_help:literal;)+
    ) => {
        /// Everything a key can do: the actions of the table, and showing each screen `S`.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Action<S> {
            $($before,)+
            Show(S),
            $($after,)+
        }

        impl<S: ScreenTable> Action<S> {
            /// Every action, in the help popup's order.
            pub fn all() -> impl Iterator<Item = Action<S>> {
                let screens = S::ALL.iter().map(|screen| Action::Show(*screen));
                [$(Action::$before),+].into_iter().chain(screens).chain([$(Action::$after),+])
            }

            pub fn entry(self) -> ActionEntry {
                match self {
                    $(Action::$before => ActionEntry {
                        name: $before_name,
                        keys: &[$($before_key),+],
                        description: $before_help,
                    },)+
                    Action::Show(screen) => screen.entry(),
                    $(Action::$after => ActionEntry {
                        name: $after_name,
                        keys: &[$($after_key),+],
                        description: $after_help,
                    },)+
                }
            }
        }
    };
}

actions! {
    Up => "up", ["up", "k"], "cursor up (help: scroll)";
    Down => "down", ["down", "j"], "cursor down (help: scroll)";
    Left => "left", ["left", "h"], "cursor left";
    Right => "right", ["right", "l"], "cursor right";
    ToggleSelect => "select", ["space"], "select or unselect the job";
    ClearSelection => "clear-selection", ["u"], "unselect every job";
    Search => "search", ["/"], "jump to a job by part of its name";
    Enqueue => "enqueue", ["enter"], "queue the job or the selection, every seed";
    Stop => "stop", ["x"], "stop the running job (asks y/n)";
    NextRunning => "next-running", ["n"], "cursor to the next running job";
    NextSeed => "next-seed", ["]"], "show the job's next seed (grid.seeds)";
    PreviousSeed => "previous-seed", ["["], "show the job's previous seed";
    Submit => "submit", ["S"], "submit the job or the selection to the scheduler";
    StartQueue => "start-queue", ["s"], "start a paused queue";
    QueueEarlier => "queue-earlier", ["K", "+"], "move the queued job earlier";
    QueueLater => "queue-later", ["J", "-"], "move the queued job later";
    QueueRemove => "queue-remove", ["d", "delete"], "remove the job from the queue";
    NextScreen => "next-screen", ["tab"], "next screen";
    PreviousScreen => "previous-screen", ["shift-tab"], "previous screen";
    ..screens;
    Export => "export", ["E"], "export the study's tables into output/report/";
    ScrollUp => "scroll-up", ["pageup"], "scroll the epoch table up";
    ScrollDown => "scroll-down", ["pagedown"], "scroll the epoch table down";
    Help => "help", ["?"], "this help";
    Close => "close", ["esc"], "close a popup, back to the grid";
    Quit => "quit", ["q", "ctrl-c"], "quit (running jobs go on)";
}

impl<S: ScreenTable> FromStr for Action<S> {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, KeyError> {
        Action::all()
            .find(|a| a.entry().name == s)
            .ok_or_else(|| KeyError::UnknownAction(s.to_string()))
    }
}

/// One key with its modifiers, as written in the settings file: `x`, `X`, `ctrl-c`, `f1`, `enter`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Key {
    code: KeyCode,
    modifiers: KeyModifiers,
}

impl Key {
    pub fn ctrl_c() -> Key {
        Key {
            code: KeyCode::Char('c'),
            modifiers: KeyModifiers::CONTROL,
        }
    }

    /// The key a terminal event stands for. Shift is part of the character itself (`K`), and
    /// terminals disagree on whether they also report it, so it is dropped there.
    pub fn of_event(event: &KeyEvent) -> Key {
        let mut modifiers = event.modifiers & (KeyModifiers::CONTROL | KeyModifiers::ALT);
        let shift_matters = !matches!(event.code, KeyCode::Char(_) | KeyCode::BackTab);
        if shift_matters && event.modifiers.contains(KeyModifiers::SHIFT) {
            modifiers |= KeyModifiers::SHIFT;
        }
        Key {
            code: event.code,
            modifiers,
        }
    }
}

const NAMED_KEYS: [(&str, KeyCode); 15] = [
    ("enter", KeyCode::Enter),
    ("esc", KeyCode::Esc),
    ("tab", KeyCode::Tab),
    ("shift-tab", KeyCode::BackTab),
    ("space", KeyCode::Char(' ')),
    ("up", KeyCode::Up),
    ("down", KeyCode::Down),
    ("left", KeyCode::Left),
    ("right", KeyCode::Right),
    ("home", KeyCode::Home),
    ("end", KeyCode::End),
    ("pageup", KeyCode::PageUp),
    ("pagedown", KeyCode::PageDown),
    ("delete", KeyCode::Delete),
    ("backspace", KeyCode::Backspace),
];

impl FromStr for Key {
    type Err = KeyError;
    fn from_str(text: &str) -> Result<Self, KeyError> {
        let unknown = || KeyError::UnknownKey(text.to_string());
        // `shift-tab` is a key of its own, not a modifier on tab.
        if let Some((_, code)) = NAMED_KEYS.iter().find(|(name, _)| *name == text) {
            return Ok(Key {
                code: *code,
                modifiers: KeyModifiers::NONE,
            });
        }
        let mut modifiers = KeyModifiers::NONE;
        let mut rest = text;
        // A lone `-` or `+` is a key, not a modifier separator.
        while rest.chars().count() > 1 {
            let Some((prefix, tail)) = rest.split_once('-') else {
                break;
            };
            modifiers |= match prefix.to_ascii_lowercase().as_str() {
                "ctrl" | "control" => KeyModifiers::CONTROL,
                "alt" => KeyModifiers::ALT,
                "shift" => KeyModifiers::SHIFT,
                _ => return Err(unknown()),
            };
            rest = tail;
        }
        let mut chars = rest.chars();
        let code = match (chars.next(), chars.next()) {
            (Some(c), None) => KeyCode::Char(c),
            _ => {
                let lower = rest.to_ascii_lowercase();
                if let Some((_, code)) = NAMED_KEYS.iter().find(|(name, _)| *name == lower) {
                    *code
                } else if let Some(n) = lower.strip_prefix('f').and_then(|n| n.parse().ok()) {
                    if !(1..=12).contains(&n) {
                        return Err(unknown());
                    }
                    KeyCode::F(n)
                } else {
                    return Err(unknown());
                }
            }
        };
        // Shift on a character is its upper case, as terminals report it.
        let code = match code {
            KeyCode::Char(c) if modifiers.contains(KeyModifiers::SHIFT) => {
                modifiers -= KeyModifiers::SHIFT;
                KeyCode::Char(c.to_ascii_uppercase())
            }
            other => other,
        };
        Ok(Key { code, modifiers })
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (flag, name) in [
            (KeyModifiers::CONTROL, "ctrl-"),
            (KeyModifiers::ALT, "alt-"),
            (KeyModifiers::SHIFT, "shift-"),
        ] {
            if self.modifiers.contains(flag) {
                f.write_str(name)?;
            }
        }
        if let Some((name, _)) = NAMED_KEYS.iter().find(|(_, code)| *code == self.code) {
            return f.write_str(name);
        }
        match self.code {
            KeyCode::Char(c) => write!(f, "{c}"),
            KeyCode::F(n) => write!(f, "f{n}"),
            other => write!(f, "{other:?}"),
        }
    }
}

/// Overrides from the settings file: each replaces all default keys of its action.
pub type KeyOverrides<S> = BTreeMap<Action<S>, Vec<Key>>;

/// Each action's keys: the defaults, with the overrides in place.
#[derive(Clone, Debug, PartialEq)]
pub struct KeyTable<S> {
    bindings: Vec<(Action<S>, Vec<Key>)>,
}

impl<S: ScreenTable> KeyTable<S> {
    pub fn new(overrides: &KeyOverrides<S>) -> KeyTable<S> {
        let bindings = Action::all()
            .map(|action| {
                let mut keys = match overrides.get(&action) {
                    Some(keys) => keys.clone(),
                    None => (action.entry().keys.iter())
                        .filter_map(|k| k.parse().ok())
                        .collect(),
                };
                // With no SIGINT in raw mode, ctrl-c must always leave.
                if action == Action::Quit && !keys.contains(&Key::ctrl_c()) {
                    keys.push(Key::ctrl_c());
                }
                (action, keys)
            })
            .collect();
        KeyTable { bindings }
    }

    /// The action of a key press; releases (reported on some platforms) do nothing. When an
    /// override reuses another action's key, the action first in [`Action::all`] wins.
    pub fn action(&self, event: &KeyEvent) -> Option<Action<S>> {
        if event.kind == KeyEventKind::Release {
            return None;
        }
        let key = Key::of_event(event);
        self.bindings
            .iter()
            .find(|(_, keys)| keys.contains(&key))
            .map(|(action, _)| *action)
    }

    pub fn keys(&self, action: Action<S>) -> &[Key] {
        self.bindings
            .iter()
            .find(|(a, _)| *a == action)
            .map(|(_, keys)| keys.as_slice())
            .unwrap_or(&[])
    }

    /// The keys of an action as the help and hints show them: `up/k`.
    pub fn label(&self, action: Action<S>) -> String {
        let keys: Vec<String> = self.keys(action).iter().map(Key::to_string).collect();
        keys.join("/")
    }
}

impl<S: ScreenTable> Default for KeyTable<S> {
    fn default() -> Self {
        KeyTable::new(&KeyOverrides::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::screens::Screen;

    type Action = super::Action<Screen>;
    type KeyTable = super::KeyTable<Screen>;

    fn press(code: KeyCode, modifiers: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, modifiers)
    }

    #[test]
    fn every_default_key_parses_and_prints_back() {
        for action in Action::all() {
            for text in action.entry().keys {
                let key: Key = text.parse().unwrap_or_else(|e| panic!("{action:?}: {e}"));
                assert_eq!(key.to_string(), *text);
            }
        }
    }

    #[test]
    fn keys_parse_with_modifiers_and_refuse_nonsense() {
        assert_eq!("ctrl-c".parse::<Key>(), Ok(Key::ctrl_c()));
        assert_eq!("F1".parse::<Key>().map(|k| k.code), Ok(KeyCode::F(1)));
        assert_eq!("shift-x".parse::<Key>(), "X".parse::<Key>());
        assert_eq!("-".parse::<Key>().map(|k| k.code), Ok(KeyCode::Char('-')));
        assert!("f13".parse::<Key>().is_err());
        assert!("hyper-x".parse::<Key>().is_err());
        assert!("banana".parse::<Key>().is_err());
    }

    #[test]
    fn upper_case_matches_with_or_without_a_reported_shift() {
        let table = KeyTable::default();
        let with_shift = press(KeyCode::Char('K'), KeyModifiers::SHIFT);
        let without = press(KeyCode::Char('K'), KeyModifiers::NONE);
        assert_eq!(table.action(&with_shift), Some(Action::QueueEarlier));
        assert_eq!(table.action(&without), Some(Action::QueueEarlier));
        assert_eq!(
            table.action(&press(KeyCode::Char('k'), KeyModifiers::NONE)),
            Some(Action::Up)
        );
        let backtab = press(KeyCode::BackTab, KeyModifiers::SHIFT);
        assert_eq!(table.action(&backtab), Some(Action::PreviousScreen));
    }

    #[test]
    fn an_override_replaces_the_defaults_but_ctrl_c_still_quits() {
        let overrides = KeyOverrides::from([
            (Action::Stop, vec!["X".parse().unwrap()]),
            (Action::Quit, vec!["f10".parse().unwrap()]),
        ]);
        let table = KeyTable::new(&overrides);
        let x = press(KeyCode::Char('x'), KeyModifiers::NONE);
        assert_eq!(table.action(&x), None);
        assert_eq!(
            table.action(&press(KeyCode::Char('X'), KeyModifiers::SHIFT)),
            Some(Action::Stop)
        );
        assert_eq!(table.label(Action::Quit), "f10/ctrl-c");
        let ctrl_c = press(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(table.action(&ctrl_c), Some(Action::Quit));
    }
}
