//! adarat: the engine behind the console and `adarat run` for the AdaRAT adversarial-training study.
//!
//! Layers, bottom up; a module uses only those above it in this list (docs/architecture.md#layers):
//! - at the bottom: [`vocab`] and [`config`], the study's names and settings; [`torch_error`],
//!   libtorch's messages; [`native`], the only module with `unsafe` (the C++ shims and POSIX
//!   calls); [`faults`], fault injection for the tests; [`lock`], process locks that record who
//!   holds them; [`streams`], the seed of every random stream;
//! - the engine: [`device`] meets the configured device with this machine's,
//!   [`thread_modes`] enters libtorch's thread-local modes through guards, [`losses`] and
//!   [`optim`] are shared by everything above, [`ratio`] weighs the standard loss against the
//!   regulariser (FixRAT/AdaRAT), [`attacks`] crafts adversarial examples, [`models`] builds the
//!   networks, [`data`] reads the datasets onto the device;
//! - the run folder and its formats: [`store`]; above it [`methods`] hold the per-method losses
//!   and hooks (loading teachers from their run folders), [`report`] turns run folders into the
//!   paper's tables, [`plan`] orders jobs after their teachers, and [`train`] runs the epochs, the
//!   per-epoch test and the final attack table;
//! - orchestration: [`worker`] runs the console's queue on the machine's devices, [`scheduler`]
//!   sends runs where they run (the local worker, a Slurm cluster); [`bench`] times the engine
//!   against the research code;
//! - the front ends: [`console`] and [`cli`].
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
pub mod streams;
pub mod thread_modes;
pub mod torch_error;
pub mod train;
pub mod vocab;
pub mod worker;
