//! Per-user settings (platform config directory) and the console's own state (state directory).
//!
//! The settings file is `<config dir>/adarat/settings.yaml` (on Linux `~/.config/adarat/settings.yaml`,
//! or under `$XDG_CONFIG_HOME`). Every entry is optional; a missing file means the defaults:
//!
//! ```yaml
//! ascii: false    # true: plain-ASCII glyphs only (borders +-|, ASCII bars), for terminals without
//!                 # braille or block characters
//! colors: true    # false: no colours (bold and reverse remain); the default is false when NO_COLOR is set
//! mouse: false    # true: capture the mouse (breaks copy and paste over SSH)
//! keys:           # override any action's keys: one key or a list; the defaults of that action go
//!   stop: X       # (the action names are those of the help popup, `?`)
//!   help: [F1, "?"]
//! ```
//!
//! Keys are written `x`, `X` (shift-x), `ctrl-x`, `alt-x`, `f1`..`f12`, `enter`, `esc`, `tab`,
//! `shift-tab`, `space`, `up`, `down`, `left`, `right`, `home`, `end`, `pageup`, `pagedown`,
//! `delete`, `backspace`. `ctrl-c` always quits. An unknown entry, action or key is reported in the
//! status line and ignored; an unreadable file is reported and the defaults are used.
//!
//! The console's state (the cursor's job and the selection, restored at start) is
//! `<state dir>/state.json` (on Linux `~/.local/state/adarat/state.json`).
use super::keys::{Key, KeyError};
use super::screens::{Action, KeyOverrides};
use directories::ProjectDirs;
use serde::{Deserialize, Serialize};
use serde_yaml::Value;
use std::path::{Path, PathBuf};
use thiserror::Error;

#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// Plain-ASCII glyphs only.
    pub ascii: bool,
    pub colors: bool,
    pub mouse: bool,
    pub keys: KeyOverrides,
}

impl Default for Settings {
    /// Colours are on unless `NO_COLOR` is set to anything non-empty (no-color.org).
    fn default() -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Settings {
            ascii: false,
            colors: !no_color,
            mouse: false,
            keys: KeyOverrides::new(),
        }
    }
}

/// What the console remembers between sessions.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SavedState {
    /// The job under the cursor, `method/dataset/mode`.
    pub cursor: Option<String>,
    /// The selected jobs.
    pub selected: Vec<String>,
}

fn project_dirs() -> Option<ProjectDirs> {
    ProjectDirs::from("", "", "adarat")
}

pub fn settings_path() -> Option<PathBuf> {
    project_dirs().map(|dirs| dirs.config_dir().join("settings.yaml"))
}

/// The platform state directory where there is one (Linux), else the local data directory.
pub fn state_path() -> Option<PathBuf> {
    let dirs = project_dirs()?;
    let dir = dirs.state_dir().unwrap_or_else(|| dirs.data_local_dir());
    Some(dir.join("state.json"))
}

/// The settings and what was wrong with the file; never fails.
pub fn load_settings() -> (Settings, Vec<String>) {
    match settings_path() {
        Some(path) => load_settings_from(&path),
        None => (Settings::default(), Vec::new()),
    }
}

/// [`load_settings`] from a given file: missing means defaults without a notice.
pub fn load_settings_from(path: &Path) -> (Settings, Vec<String>) {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return (Settings::default(), Vec::new())
        }
        Err(e) => {
            let notice = format!("settings file {}: {e} (defaults used)", path.display());
            return (Settings::default(), vec![notice]);
        }
    };
    let (settings, problems) = parse_settings(&text);
    let notices = problems
        .into_iter()
        .map(|problem| format!("settings file {}: {problem}", path.display()))
        .collect();
    (settings, notices)
}

/// Settings from the file's text, and its problems. A file that is not YAML or not a mapping gives
/// the defaults and one problem; a bad entry is skipped with its own problem, the rest applies.
pub fn parse_settings(text: &str) -> (Settings, Vec<String>) {
    let mut settings = Settings::default();
    let mut problems = Vec::new();
    let document: Value = match serde_yaml::from_str(text) {
        Ok(document) => document,
        Err(e) => return (settings, vec![format!("{e} (defaults used)")]),
    };
    let entries = match document {
        Value::Null => return (settings, problems),
        Value::Mapping(entries) => entries,
        _ => {
            return (
                settings,
                vec!["not a mapping of settings (defaults used)".into()],
            )
        }
    };
    for (name, value) in entries {
        let name = yaml_text(&name);
        let flag = match name.as_str() {
            "ascii" => &mut settings.ascii,
            "colors" | "colours" => &mut settings.colors,
            "mouse" => &mut settings.mouse,
            "keys" => {
                parse_key_overrides(&value, &mut settings.keys, &mut problems);
                continue;
            }
            _ => {
                problems.push(format!("unknown setting `{name}` ignored"));
                continue;
            }
        };
        match value {
            Value::Bool(on) => *flag = on,
            other => problems.push(format!(
                "`{name}` must be true or false, not `{}` (ignored)",
                yaml_text(&other)
            )),
        }
    }
    (settings, problems)
}

fn parse_key_overrides(value: &Value, overrides: &mut KeyOverrides, problems: &mut Vec<String>) {
    let Value::Mapping(entries) = value else {
        problems.push("`keys` must map action names to keys (ignored)".into());
        return;
    };
    for (action, keys) in entries {
        let action = match yaml_text(action).parse::<Action>() {
            Ok(action) => action,
            Err(e) => {
                problems.push(format!("keys: {e} ignored"));
                continue;
            }
        };
        let texts: Vec<String> = match keys {
            Value::Sequence(items) => items.iter().map(yaml_text).collect(),
            single => vec![yaml_text(single)],
        };
        let parsed: Result<Vec<Key>, KeyError> = texts.iter().map(|t| t.parse()).collect();
        match parsed {
            Ok(keys) if !keys.is_empty() => {
                overrides.insert(action, keys);
            }
            Ok(_) => problems.push(format!(
                "keys: `{}` has no key (ignored)",
                action.entry().name
            )),
            Err(e) => problems.push(format!("keys: `{}`: {e} (ignored)", action.entry().name)),
        }
    }
}

/// A scalar as the user wrote it (`1` and `true` are keys too).
fn yaml_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Null => "null".into(),
        other => serde_yaml::to_string(other)
            .map(|s| s.trim().to_string())
            .unwrap_or_default(),
    }
}

/// The saved state; a missing or unreadable file gives the default.
pub fn load_state() -> SavedState {
    state_path()
        .map(|path| load_state_from(&path))
        .unwrap_or_default()
}

pub fn load_state_from(path: &Path) -> SavedState {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default()
}

/// Why the console's state was not saved.
#[derive(Debug, Error)]
pub enum SaveStateError {
    #[error("no state directory for this user")]
    NoStateDirectory,
    #[error("saving {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("saving {}: {source}", path.display())]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
}

pub fn save_state(state: &SavedState) -> Result<(), SaveStateError> {
    let path = state_path().ok_or(SaveStateError::NoStateDirectory)?;
    save_state_to(state, &path)
}

/// Writes through a temporary file so that a crash never leaves half a file.
pub fn save_state_to(state: &SavedState, path: &Path) -> Result<(), SaveStateError> {
    let io_error = |source| SaveStateError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io_error)?;
    }
    let text = serde_json::to_string_pretty(state).map_err(|source| SaveStateError::Json {
        path: path.to_path_buf(),
        source,
    })?;
    let temporary = path.with_extension("json.tmp");
    std::fs::write(&temporary, text).map_err(io_error)?;
    std::fs::rename(&temporary, path).map_err(io_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_file_applies_every_entry() {
        let text =
            "ascii: true\ncolors: false\nmouse: true\nkeys:\n  stop: X\n  help: [F1, \"?\"]\n";
        let (settings, problems) = parse_settings(text);
        assert!(problems.is_empty(), "{problems:?}");
        assert!(settings.ascii && !settings.colors && settings.mouse);
        assert_eq!(settings.keys[&Action::Stop], vec!["X".parse().unwrap()]);
        assert_eq!(settings.keys[&Action::Help].len(), 2);
    }

    #[test]
    fn bad_entries_are_reported_and_skipped_while_the_rest_applies() {
        let text = "ascii: true\nfancy: 3\nmouse: maybe\nkeys:\n  explode: x\n  stop: hyper-x\n  quit: Q\n";
        let (settings, problems) = parse_settings(text);
        assert!(settings.ascii);
        assert!(!settings.mouse);
        assert_eq!(settings.keys.len(), 1, "only quit: {:?}", settings.keys);
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(problems[0].contains("fancy"));
        assert!(problems[1].contains("maybe"));
        assert!(problems[2].contains("explode"));
        assert!(problems[3].contains("hyper-x"));
    }

    #[test]
    fn an_unreadable_file_gives_defaults_and_one_problem() {
        let (settings, problems) = parse_settings("ascii: [unclosed");
        assert_eq!(settings, Settings::default());
        assert_eq!(problems.len(), 1);
        let (_, problems) = parse_settings("- a list");
        assert_eq!(problems.len(), 1);
        let (settings, problems) = parse_settings("");
        assert!(problems.is_empty());
        assert_eq!(settings, Settings::default());
    }

    #[test]
    fn state_round_trips_and_a_broken_file_gives_the_default() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("deeper").join("state.json");
        assert_eq!(load_state_from(&path), SavedState::default());
        let state = SavedState {
            cursor: Some("pgd-at/synthetic/adarat".into()),
            selected: vec!["st/mnist/baseline".into()],
        };
        save_state_to(&state, &path).unwrap();
        assert_eq!(load_state_from(&path), state);
        std::fs::write(&path, "{not json").unwrap();
        assert_eq!(load_state_from(&path), SavedState::default());
    }
}
