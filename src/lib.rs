//! adarat: the engine behind the console and `adarat run` for the AdaRAT adversarial-training study.
//!
//! Layers, bottom up; a module uses only those below it (docs/architecture.md):
//! - at the bottom: [`vocab`] and [`config`], the study's names and settings; [`faults`], fault
//!   injection for the tests; [`torch_error`], libtorch's messages; [`native`], the only module with
//!   `unsafe` (the C++ shims and POSIX calls); [`lock`], process locks that record who holds them;
//! - the engine: [`device`] meets the configured device with this machine's, [`data`] reads the
//!   datasets onto the device, [`models`] builds the networks,
//!   [`thread_modes`] enters libtorch's thread-local modes through guards, [`losses`] and [`optim`] are
//!   shared by everything above, [`attacks`] crafts adversarial
//!   examples, [`ratio`] weighs the standard loss against the regulariser (FixRAT/AdaRAT),
//!   [`methods`] hold the per-method losses, [`train`] runs the epochs, the per-epoch test and the
//!   final attack table;
//! - the run folder and its formats: [`store`]; [`report`] turns run folders into the paper's tables;
//! - orchestration: [`plan`] orders jobs after their teachers, [`worker`] runs the console's queue
//!   on the machine's devices, [`scheduler`] sends runs where they run (the local worker, a
//!   Slurm cluster);
//! - the front ends: [`cli`], [`console`], and [`bench`], which times the engine against the
//!   research code.
pub mod attacks;
pub mod bench;
pub mod cli;
pub mod config;
pub mod console;
pub mod data;
pub mod device;
pub mod faults;
pub mod lock;
pub mod losses;
pub mod methods;
pub mod models;
#[allow(unsafe_code)]
pub mod native;
pub mod optim;
pub mod plan;
pub mod ratio;
pub mod report;
pub mod scheduler;
pub mod store;
pub mod thread_modes;
pub mod torch_error;
pub mod train;
pub mod vocab;
pub mod worker;
