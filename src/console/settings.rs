//! Per-user settings (platform config directory) and the console's own state (state directory).
