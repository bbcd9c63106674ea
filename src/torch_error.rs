//! libtorch's error text, reduced to what a person reads: its first line. libtorch appends a C++
//! backtrace to every message; tch returns it inside `TchError`, or, from its panicking calls, inside
//! a panic whose message is `TchError`'s Debug text.

/// The first line of a libtorch error (or of any multi-line message).
pub fn first_line(message: &str) -> String {
    message
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// The first line of a panic's message; for a libtorch error raised by tch, `libtorch: ` and the
/// first line of libtorch's own.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    let text = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("unknown error");
    // tch's unwrap prints `Torch("<libtorch message>\nException raised from ...")` on one line,
    // the newlines escaped.
    match text.split_once("Torch(\"") {
        Some((_, libtorch)) => {
            let first = libtorch.split("\\n").next().unwrap_or(libtorch);
            format!("libtorch: {}", first.trim_end_matches("\")").trim())
        }
        None => first_line(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_libtorch_panic_reads_as_its_first_line() {
        let failure = std::panic::catch_unwind(|| {
            let a = tch::Tensor::zeros([2, 3], (tch::Kind::Float, tch::Device::Cpu));
            let b = tch::Tensor::zeros([4, 5], (tch::Kind::Float, tch::Device::Cpu));
            a.matmul(&b)
        })
        .unwrap_err();
        let message = panic_message(failure.as_ref());
        assert!(message.starts_with("libtorch: "), "{message}");
        assert!(!message.contains("Exception raised from"), "{message}");
        assert!(!message.contains('\n'), "{message}");
    }

    #[test]
    fn other_panics_and_errors_keep_their_first_line() {
        let failure = std::panic::catch_unwind(|| panic!("first\nsecond")).unwrap_err();
        assert_eq!(panic_message(failure.as_ref()), "first");
        assert_eq!(
            first_line("  shapes differ \nException raised from"),
            "shapes differ"
        );
    }
}
