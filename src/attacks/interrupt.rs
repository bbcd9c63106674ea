//! A stop request reaching into a long attack. AutoAttack's sub-attacks run for minutes on a CPU
//! (Square's 5000 queries per point above all), so a stop checked only between them lands late.
//! The final evaluation watches its stop flag for the duration ([`watch`]); APGD, FAB and Square
//! ask [`requested`] between iterations and end early, and the caller then throws the batch's
//! unfinished results away (docs/run-folder.md#final-progressjson).
use std::cell::RefCell;
use std::marker::PhantomData;

type Probe = Box<dyn Fn() -> bool>;

thread_local! {
    /// The probes of the watches alive on this thread, innermost last.
    static PROBES: RefCell<Vec<Probe>> = const { RefCell::new(Vec::new()) };
}

/// While alive, [`requested`] on this thread asks `probe` too; dropping it stops asking.
#[must_use = "the watch ends when dropped"]
pub struct Watch {
    /// Tied to the thread whose probe list it changed.
    _thread: PhantomData<*const ()>,
}

/// Watches `probe` (e.g. a stop flag) on this thread until the returned guard is dropped.
pub fn watch(probe: impl Fn() -> bool + 'static) -> Watch {
    PROBES.with(|probes| probes.borrow_mut().push(Box::new(probe)));
    Watch {
        _thread: PhantomData,
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        PROBES.with(|probes| probes.borrow_mut().pop());
    }
}

/// Whether a watched probe asks the running attack to end now.
pub fn requested() -> bool {
    PROBES.with(|probes| probes.borrow().iter().any(|probe| probe()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::rc::Rc;

    #[test]
    fn a_watch_asks_its_probe_until_dropped_and_watches_nest() {
        assert!(!requested());
        let flag = Rc::new(Cell::new(false));
        let outer = watch({
            let flag = flag.clone();
            move || flag.get()
        });
        assert!(!requested());
        flag.set(true);
        assert!(requested());
        {
            let _inner = watch(|| false);
            assert!(requested(), "the outer watch still counts");
        }
        drop(outer);
        assert!(!requested());
    }
}
