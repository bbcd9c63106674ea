//! The console's keys and their per-user overrides.
