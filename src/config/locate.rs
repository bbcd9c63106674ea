//! Finds the line of a dotted path in YAML text, so that a value refused after parsing (serde keeps
//! no spans) is still reported at its line. Handles block mappings and one-line flow mappings.

/// 1-based line of `path` (e.g. `methods.pgd-at.datasets.cifar10.up`), or of its deepest ancestor found.
pub(super) fn locate(text: &str, path: &str) -> Option<usize> {
    let segments: Vec<&str> = path.split('.').collect();
    let mut found = None;
    let mut depth = 0;
    // Indentation of the mapping whose keys we are scanning (None until its first key is seen).
    let mut level_indent: Option<usize> = None;
    let mut parent_indent: Option<usize> = None;
    for (number, raw) in text.lines().enumerate() {
        let line = raw.split(" #").next().unwrap_or(raw);
        let content = line.trim_start();
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        let indent = line.len() - content.len();
        if parent_indent.is_some_and(|p| indent <= p) {
            break; // left the block of the last key found
        }
        let level = *level_indent.get_or_insert(indent);
        if indent != level {
            continue;
        }
        let Some((key, rest)) = content.split_once(':') else {
            continue;
        };
        if key.trim().trim_matches('"') != segments[depth] {
            continue;
        }
        found = Some(number + 1);
        depth += 1;
        if depth == segments.len() || flow_contains(rest, &segments[depth..]) {
            return found;
        }
        parent_indent = Some(indent);
        level_indent = None;
    }
    found
}

/// Whether a one-line flow mapping such as `{ratio: {up: 1.1}}` holds the remaining keys.
fn flow_contains(rest: &str, keys: &[&str]) -> bool {
    rest.trim_start().starts_with('{') && keys.iter().all(|k| rest.contains(&format!("{k}:")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "training:\n  epochs: 120\n  batch_size: 128\nmethods:\n  pgd-at:\n    settings: {beta: 0.04, up: 1.1}\n    datasets:\n      cifar100:\n        up: 1.5\n  trades:\n    datasets:\n      cifar100: {up: 2.3}\n";

    #[test]
    fn finds_block_and_flow_keys() {
        assert_eq!(locate(TEXT, "training.batch_size"), Some(3));
        assert_eq!(locate(TEXT, "methods.pgd-at.settings.up"), Some(6));
        assert_eq!(locate(TEXT, "methods.pgd-at.datasets.cifar100.up"), Some(9));
        assert_eq!(
            locate(TEXT, "methods.trades.datasets.cifar100.up"),
            Some(12)
        );
        // An absent key falls back to its deepest ancestor.
        assert_eq!(locate(TEXT, "methods.trades.settings.up"), Some(10));
        assert_eq!(locate(TEXT, "nothing.here"), None);
    }
}
