//! `experiments.yaml`: the whole study as data, and the resolved configuration of a job.
pub mod job;
pub use job::*;
mod stub;
pub use stub::*;
