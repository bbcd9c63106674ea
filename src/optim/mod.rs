//! What moves the weights, below the methods and the training loop that use it: SGD with PyTorch's
//! semantics and the learning-rate schedules.
pub mod schedule;
pub mod sgd;

pub use sgd::{MomentumError, Sgd};
