//! libtorch's thread-local modes, gradient tracking and bf16 autocast, entered only through guards
//! that put the previous mode back when dropped, so also when a libtorch error unwinds through the
//! region. That matters because a failed job does not end its thread: `adarat run` and the queue
//! worker go on with the next job on the same one, and [`reset`] also puts both modes back to their
//! defaults at the start of every job (docs/architecture.md#errors-and-exit-statuses). tch's own
//! `no_grad` and `with_grad` restore the mode only when their closure returns.
use crate::native::libtorch::{
    autocast_reset, bf16_autocast_enter, bf16_autocast_exit, set_grad_enabled,
};
use tch::Device;

/// Gradient tracking switched on or off until dropped, then set back to what it was.
struct GradMode {
    previous: bool,
}

impl GradMode {
    fn set(enabled: bool) -> GradMode {
        GradMode {
            previous: set_grad_enabled(enabled),
        }
    }
}

impl Drop for GradMode {
    fn drop(&mut self) {
        set_grad_enabled(self.previous);
    }
}

/// Runs `f` without tracking gradients.
pub fn no_grad<T>(f: impl FnOnce() -> T) -> T {
    let _mode = GradMode::set(false);
    f()
}

/// Runs `f` tracking gradients, also inside a [`no_grad`] region (attacks differentiate there).
pub fn with_grad<T>(f: impl FnOnce() -> T) -> T {
    let _mode = GradMode::set(true);
    f()
}

/// A bf16 autocast region on one device type, left when dropped; not nested. Leaving it also
/// drops libtorch's cache of bf16 weight copies, so an optimizer step after it never meets stale
/// copies.
pub struct Bf16Autocast {
    cuda: bool,
    entered: bool,
}

impl Bf16Autocast {
    pub fn enter(device: Device) -> Bf16Autocast {
        let cuda = device.is_cuda();
        let entered = bf16_autocast_enter(cuda);
        Bf16Autocast { cuda, entered }
    }
}

impl Drop for Bf16Autocast {
    fn drop(&mut self) {
        if self.entered {
            bf16_autocast_exit(self.cuda);
        }
    }
}

/// Gradients on and autocast off on this thread, whatever ran on it before.
pub fn reset() {
    set_grad_enabled(true);
    autocast_reset();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::native::libtorch::autocast_enabled;
    use tch::{Kind, Tensor};

    /// Whether this thread tracks gradients, and whether autocast is on.
    fn modes() -> (bool, bool) {
        let grad = set_grad_enabled(true);
        set_grad_enabled(grad);
        (grad, autocast_enabled())
    }

    #[test]
    fn guards_restore_the_modes_when_a_panic_unwinds_through_them() {
        reset();
        assert_eq!(modes(), (true, false));
        let _ = std::panic::catch_unwind(|| no_grad(|| panic!("inside no_grad")));
        assert_eq!(modes(), (true, false));
        let _ = std::panic::catch_unwind(|| {
            let _autocast = Bf16Autocast::enter(Device::Cpu);
            assert_eq!(modes(), (true, true));
            no_grad(|| with_grad(|| panic!("inside autocast, no_grad and with_grad")))
        });
        assert_eq!(modes(), (true, false));
        let a = Tensor::ones([2, 2], (Kind::Float, Device::Cpu));
        assert_eq!(a.matmul(&a).kind(), Kind::Float);
    }

    #[test]
    fn reset_clears_what_a_region_left_open() {
        reset();
        std::mem::forget(Bf16Autocast::enter(Device::Cpu));
        set_grad_enabled(false);
        assert_eq!(modes(), (false, true));
        reset();
        assert_eq!(modes(), (true, false));
        let a = Tensor::ones([2, 2], (Kind::Float, Device::Cpu));
        assert_eq!(a.matmul(&a).kind(), Kind::Float);
        // A region entered after the reset works as before.
        let inside = {
            let _autocast = Bf16Autocast::enter(Device::Cpu);
            a.matmul(&a)
        };
        assert_eq!(inside.kind(), Kind::BFloat16);
        assert_eq!(modes(), (true, false));
    }
}
