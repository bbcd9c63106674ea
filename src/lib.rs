//! adarat: the engine behind the console and `adarat run` for the AdaRAT adversarial-training study.
//!
//! Layout, in the order a run uses it: [`config`] resolves a job from `experiments.yaml`; [`data`] reads
//! the datasets onto the device; [`models`] builds the networks; [`attacks`] crafts adversarial
//! examples; [`ratio`] weighs the standard loss against the regulariser (FixRAT/AdaRAT); [`methods`]
//! hold the per-method losses; [`train`] runs the epochs and the per-epoch test; [`store`] writes the
//! run folder; [`cli`] is the command line; [`bench`] times the engine against the research code.
pub mod attacks;
pub mod bench;
pub mod cli;
pub mod config;
pub mod console;
pub mod data;
pub mod faults;
pub mod methods;
pub mod models;
pub mod ratio;
pub mod store;
pub mod train;
pub mod vocab;
pub mod worker;
