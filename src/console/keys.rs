//! The console's keys and their per-user overrides: one table maps each [`Action`] to its keys, and
//! both the update function and the help popup read it, so an override shows in the help.
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

/// Everything a key can do. The names (`Action::name`) are what the settings file's `keys:` uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    Up,
    Down,
    Left,
    Right,
    ToggleSelect,
    ClearSelection,
    Search,
    Enqueue,
    Stop,
    NextRunning,
    NextSeed,
    PreviousSeed,
    Submit,
    StartQueue,
    QueueEarlier,
    QueueLater,
    QueueRemove,
    NextScreen,
    PreviousScreen,
    GridScreen,
    LiveScreen,
    ResultsScreen,
    CompareScreen,
    StudyScreen,
    Export,
    ScrollUp,
    ScrollDown,
    Help,
    Close,
    Quit,
}

impl Action {
    /// In the help popup's order.
    pub const ALL: [Action; 30] = [
        Action::Up,
        Action::Down,
        Action::Left,
        Action::Right,
        Action::ToggleSelect,
        Action::ClearSelection,
        Action::Search,
        Action::Enqueue,
        Action::Stop,
        Action::NextRunning,
        Action::NextSeed,
        Action::PreviousSeed,
        Action::Submit,
        Action::StartQueue,
        Action::QueueEarlier,
        Action::QueueLater,
        Action::QueueRemove,
        Action::NextScreen,
        Action::PreviousScreen,
        Action::GridScreen,
        Action::LiveScreen,
        Action::ResultsScreen,
        Action::CompareScreen,
        Action::StudyScreen,
        Action::Export,
        Action::ScrollUp,
        Action::ScrollDown,
        Action::Help,
        Action::Close,
        Action::Quit,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Action::Up => "up",
            Action::Down => "down",
            Action::Left => "left",
            Action::Right => "right",
            Action::ToggleSelect => "select",
            Action::ClearSelection => "clear-selection",
            Action::Search => "search",
            Action::Enqueue => "enqueue",
            Action::Stop => "stop",
            Action::NextRunning => "next-running",
            Action::NextSeed => "next-seed",
            Action::PreviousSeed => "previous-seed",
            Action::Submit => "submit",
            Action::StartQueue => "start-queue",
            Action::QueueEarlier => "queue-earlier",
            Action::QueueLater => "queue-later",
            Action::QueueRemove => "queue-remove",
            Action::NextScreen => "next-screen",
            Action::PreviousScreen => "previous-screen",
            Action::GridScreen => "grid",
            Action::LiveScreen => "live",
            Action::ResultsScreen => "results",
            Action::CompareScreen => "compare",
            Action::StudyScreen => "study",
            Action::Export => "export",
            Action::ScrollUp => "scroll-up",
            Action::ScrollDown => "scroll-down",
            Action::Help => "help",
            Action::Close => "close",
            Action::Quit => "quit",
        }
    }

    /// What the action does, as the help popup says it.
    pub fn description(self) -> &'static str {
        match self {
            Action::Up => "cursor up (help: scroll)",
            Action::Down => "cursor down (help: scroll)",
            Action::Left => "cursor left",
            Action::Right => "cursor right",
            Action::ToggleSelect => "select or unselect the job",
            Action::ClearSelection => "unselect every job",
            Action::Search => "jump to a job by part of its name",
            Action::Enqueue => "queue the job or the selection, every seed",
            Action::Stop => "stop the running job (asks y/n)",
            Action::NextRunning => "cursor to the next running job",
            Action::NextSeed => "show the job's next seed (grid.seeds)",
            Action::PreviousSeed => "show the job's previous seed",
            Action::Submit => "submit the job or the selection to Slurm",
            Action::StartQueue => "start a paused queue",
            Action::QueueEarlier => "move the queued job earlier",
            Action::QueueLater => "move the queued job later",
            Action::QueueRemove => "remove the job from the queue",
            Action::NextScreen => "next screen",
            Action::PreviousScreen => "previous screen",
            Action::GridScreen => "grid screen",
            Action::LiveScreen => "live screen",
            Action::ResultsScreen => "results of the job",
            Action::CompareScreen => "compare selected runs",
            Action::StudyScreen => "the study's tables for the cursor's dataset",
            Action::Export => "export the study's tables into output/report/",
            Action::ScrollUp => "scroll the epoch table up",
            Action::ScrollDown => "scroll the epoch table down",
            Action::Help => "this help",
            Action::Close => "close a popup, back to the grid",
            Action::Quit => "quit (running jobs go on)",
        }
    }

    fn default_keys(self) -> &'static [&'static str] {
        match self {
            Action::Up => &["up", "k"],
            Action::Down => &["down", "j"],
            Action::Left => &["left", "h"],
            Action::Right => &["right", "l"],
            Action::ToggleSelect => &["space"],
            Action::ClearSelection => &["u"],
            Action::Search => &["/"],
            Action::Enqueue => &["enter"],
            Action::Stop => &["x"],
            Action::NextRunning => &["n"],
            Action::NextSeed => &["]"],
            Action::PreviousSeed => &["["],
            Action::Submit => &["S"],
            Action::StartQueue => &["s"],
            Action::QueueEarlier => &["K", "+"],
            Action::QueueLater => &["J", "-"],
            Action::QueueRemove => &["d", "delete"],
            Action::NextScreen => &["tab"],
            Action::PreviousScreen => &["shift-tab"],
            Action::GridScreen => &["1", "g"],
            Action::LiveScreen => &["2", "v"],
            Action::ResultsScreen => &["3", "r"],
            Action::CompareScreen => &["4", "c"],
            Action::StudyScreen => &["5", "t"],
            Action::Export => &["E"],
            Action::ScrollUp => &["pageup"],
            Action::ScrollDown => &["pagedown"],
            Action::Help => &["?"],
            Action::Close => &["esc"],
            Action::Quit => &["q", "ctrl-c"],
        }
    }
}

impl FromStr for Action {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, KeyError> {
        Action::ALL
            .iter()
            .copied()
            .find(|a| a.name() == s)
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
pub type KeyOverrides = BTreeMap<Action, Vec<Key>>;

/// Each action's keys: the defaults, with the overrides in place.
#[derive(Clone, Debug, PartialEq)]
pub struct KeyTable {
    bindings: Vec<(Action, Vec<Key>)>,
}

impl KeyTable {
    pub fn new(overrides: &KeyOverrides) -> KeyTable {
        let bindings = Action::ALL
            .iter()
            .map(|&action| {
                let mut keys = match overrides.get(&action) {
                    Some(keys) => keys.clone(),
                    None => action
                        .default_keys()
                        .iter()
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
    /// override reuses another action's key, the action first in [`Action::ALL`] wins.
    pub fn action(&self, event: &KeyEvent) -> Option<Action> {
        if event.kind == KeyEventKind::Release {
            return None;
        }
        let key = Key::of_event(event);
        self.bindings
            .iter()
            .find(|(_, keys)| keys.contains(&key))
            .map(|(action, _)| *action)
    }

    pub fn keys(&self, action: Action) -> &[Key] {
        self.bindings
            .iter()
            .find(|(a, _)| *a == action)
            .map(|(_, keys)| keys.as_slice())
            .unwrap_or(&[])
    }

    /// The keys of an action as the help and hints show them: `up/k`.
    pub fn label(&self, action: Action) -> String {
        let keys: Vec<String> = self.keys(action).iter().map(Key::to_string).collect();
        keys.join("/")
    }
}

impl Default for KeyTable {
    fn default() -> Self {
        KeyTable::new(&KeyOverrides::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn press(code: KeyCode, modifiers: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, modifiers)
    }

    #[test]
    fn every_default_key_parses_and_prints_back() {
        for action in Action::ALL {
            for text in action.default_keys() {
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
