//! The integration tests, one binary (one libtorch link): the real binary and engine on tiny
//! synthetic sets, adarat against PyTorch and torchattacks on the same checkpoints, the console
//! through ratatui's `TestBackend` and in a real terminal. docs/testing.md says how they stay true on
//! every CPU. Run one file's tests with `cargo test --test suite -- run::`; the tests that inject
//! faults need `--features fault-injection` (`make test` turns it on).
mod common;

mod attack_table;
mod attacks;
mod bench;
mod config;
mod console;
mod console_e2e;
mod data;
mod export;
#[cfg(feature = "fault-injection")]
mod faults;
mod generalist;
mod methods;
mod models;
mod run;
mod slurm;
mod stats;
mod teachers;
mod unattended;
mod verdict;
mod worker;
