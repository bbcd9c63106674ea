//! Every call across the foreign-function boundary, each behind a safe function: the C++ shims in
//! `src/native/` (libtorch's autocast and CUDA graphs, which tch does not expose), libtorch's grad
//! mode, and the few POSIX calls std lacks. This is the crate's only module allowed `unsafe`
//! (`unsafe_code = "deny"` in Cargo.toml's `[lints]`), so every safety argument is in this file.

/// libtorch's thread-local modes and CUDA graphs.
pub mod libtorch {
    use std::ffi::{c_char, c_void, CStr};

    extern "C" {
        fn adarat_bf16_autocast_enter(cuda: i32) -> i32;
        fn adarat_bf16_autocast_exit(cuda: i32) -> i32;
        fn adarat_autocast_reset() -> i32;
        fn adarat_autocast_enabled() -> i32;
        fn adarat_graph_begin(device: i32, error: *mut *mut c_char) -> *mut c_void;
        fn adarat_graph_end(graph: *mut c_void, error: *mut *mut c_char) -> i32;
        fn adarat_graph_replay(graph: *mut c_void, error: *mut *mut c_char) -> i32;
        fn adarat_graph_free(graph: *mut c_void);
    }

    /// Sets this thread's gradient mode; returns the one before.
    pub fn set_grad_enabled(enabled: bool) -> bool {
        // SAFETY: flips libtorch's thread-local grad mode, which cannot fail.
        unsafe { torch_sys::at_grad_set_enabled(i32::from(enabled)) != 0 }
    }

    /// Enters bf16 autocast on the CPU or on CUDA; false if libtorch refused.
    pub fn bf16_autocast_enter(cuda: bool) -> bool {
        // SAFETY: the shim only sets libtorch's thread-local autocast state and catches every
        // exception.
        unsafe { adarat_bf16_autocast_enter(i32::from(cuda)) == 0 }
    }

    /// Leaves the region [`bf16_autocast_enter`] entered.
    pub fn bf16_autocast_exit(cuda: bool) {
        // SAFETY: as in `bf16_autocast_enter`.
        unsafe { adarat_bf16_autocast_exit(i32::from(cuda)) };
    }

    /// Autocast off on this thread, its nesting level and weight cache cleared.
    pub fn autocast_reset() {
        // SAFETY: as in `bf16_autocast_enter`.
        unsafe { adarat_autocast_reset() };
    }

    /// Whether autocast is on for the CPU or CUDA on this thread.
    pub fn autocast_enabled() -> bool {
        // SAFETY: reads libtorch's thread-local autocast flags.
        unsafe { adarat_autocast_enabled() != 0 }
    }

    /// The message a shim allocated, freed here; its first line.
    fn take_message(error: *mut c_char) -> String {
        if error.is_null() {
            return "no message".to_string();
        }
        // SAFETY: the shim hands over a NUL-terminated string from malloc, owned by the caller.
        let text = unsafe { CStr::from_ptr(error) }
            .to_string_lossy()
            .into_owned();
        // SAFETY: allocated with malloc by the shim, freed once.
        unsafe { libc::free(error.cast()) };
        crate::torch_error::first_line(&text)
    }

    /// A CUDA graph being captured on a side stream of one device, or captured; freed when dropped.
    pub struct Graph {
        raw: *mut c_void,
        captured: bool,
    }

    impl Graph {
        /// Starts capturing the work this thread queues on CUDA device `device`.
        pub fn begin(device: usize) -> Result<Graph, String> {
            let device = i32::try_from(device).map_err(|_| format!("no CUDA device {device}"))?;
            let mut error = std::ptr::null_mut();
            // SAFETY: begin returns an owned handle, or null and a message.
            let raw = unsafe { adarat_graph_begin(device, &mut error) };
            if raw.is_null() {
                return Err(take_message(error));
            }
            Ok(Graph {
                raw,
                captured: false,
            })
        }

        /// Ends the capture; the graph can be replayed if this succeeds.
        pub fn end(&mut self) -> Result<(), String> {
            if self.captured {
                return Err("the capture has ended already".to_string());
            }
            self.captured = true;
            let mut error = std::ptr::null_mut();
            // SAFETY: `raw` is the live handle from begin, and end is called once (`captured`).
            if unsafe { adarat_graph_end(self.raw, &mut error) } == 0 {
                Ok(())
            } else {
                Err(take_message(error))
            }
        }

        /// Launches the captured work again.
        pub fn replay(&mut self) -> Result<(), String> {
            if !self.captured {
                return Err("the graph is still being captured".to_string());
            }
            let mut error = std::ptr::null_mut();
            // SAFETY: `raw` is a live handle whose capture has ended; the shim reports a failed
            // capture as an error.
            if unsafe { adarat_graph_replay(self.raw, &mut error) } == 0 {
                Ok(())
            } else {
                Err(take_message(error))
            }
        }
    }

    impl Drop for Graph {
        fn drop(&mut self) {
            if !self.captured {
                // Ends a capture a panic interrupted, so the stream is usable again.
                let _ = self.end();
            }
            // SAFETY: `raw` came from begin and is freed once, here.
            unsafe { adarat_graph_free(self.raw) };
        }
    }
}

/// The POSIX calls std does not wrap: signals, sessions, descriptors and open-file-description
/// locks; and glibc's allocator settings.
pub mod posix {
    use std::fs::File;
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    use std::process::Command;

    /// Makes glibc's malloc keep freed tensor memory for reuse instead of handing it back to the
    /// kernel. By default every buffer over 128 KiB (an activation, a gradient) is a fresh `mmap`
    /// whose pages the kernel faults in and zeroes on first touch and unmaps when freed; a CPU
    /// attack or training step allocates and frees the same buffers again and again, and a fifth
    /// of its time went to those page faults (README, Performance). Buffers up to 32 MiB (glibc's
    /// most) now come from the heap, and freed memory stays in it: the process holds its peak.
    pub fn keep_freed_memory() {
        #[cfg(target_env = "gnu")]
        // SAFETY: mallopt only changes allocator parameters; glibc accepts it at any time.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
            libc::mallopt(libc::M_TRIM_THRESHOLD, libc::c_int::MAX);
        }
    }

    /// Sends SIGTERM to process `pid`.
    pub fn terminate(pid: u32) -> std::io::Result<()> {
        send_signal(pid, libc::SIGTERM)
    }

    /// Sends `signal` to process `pid`; signal 0 only checks that the process exists.
    pub fn send_signal(pid: u32, signal: libc::c_int) -> std::io::Result<()> {
        let pid = libc::pid_t::try_from(pid)
            .ok()
            .filter(|&p| p > 0)
            .ok_or_else(|| std::io::Error::from_raw_os_error(libc::ESRCH))?;
        // SAFETY: kill has no memory effects; a wrong pid yields an error.
        if unsafe { libc::kill(pid, signal) } == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }

    /// This machine's host name, as `hostname` prints it.
    pub fn hostname() -> std::io::Result<String> {
        // Linux allows 64 bytes (HOST_NAME_MAX) and a NUL.
        let mut buffer = [0u8; 256];
        // SAFETY: the buffer is valid for its whole length, which is passed; glibc NUL-terminates
        // the name when it fits, and the search below stops at the buffer's end if it does not.
        if unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let end = buffer.iter().position(|&b| b == 0).unwrap_or(buffer.len());
        Ok(String::from_utf8_lossy(&buffer[..end]).into_owned())
    }

    /// Ends this process at once with SIGKILL, as `kill -9` would: no cleanup runs.
    pub fn kill_self() {
        // SAFETY: sends SIGKILL to this very process, which ends it.
        unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
    }

    /// Makes `command`'s child start a session of its own, away from this terminal (no SIGHUP
    /// reaches it when the terminal goes).
    pub fn in_new_session(command: &mut Command) -> &mut Command {
        // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
        unsafe {
            command.pre_exec(|| {
                libc::setsid();
                Ok(())
            })
        }
    }

    /// Points stdout and stderr at `target`, atomically.
    pub fn redirect_output(target: &File) {
        for descriptor in [libc::STDOUT_FILENO, libc::STDERR_FILENO] {
            // SAFETY: both descriptors are valid; dup2 atomically replaces the target.
            unsafe { libc::dup2(target.as_raw_fd(), descriptor) };
        }
    }

    /// The kind of an open-file-description lock request.
    #[derive(Clone, Copy)]
    pub enum Lock {
        /// Take the write lock now or fail (F_OFD_SETLK).
        Try,
        /// Wait for the write lock (F_OFD_SETLKW).
        Wait,
        /// Only ask who holds it (F_OFD_GETLK).
        Query,
    }

    /// What a lock request found.
    #[derive(Debug, PartialEq, Eq)]
    pub enum Locked {
        /// Taken (Try, Wait), or free (Query).
        Free,
        /// Held by another open file description.
        Held,
    }

    /// An exclusive open-file-description lock request on the whole of `file`.
    pub fn lock(file: &File, request: Lock) -> std::io::Result<Locked> {
        // SAFETY: `flock` is plain old data; all-zero is a valid value (whole file, pid 0 as OFD
        // locks require).
        let mut flock: libc::flock = unsafe { std::mem::zeroed() };
        flock.l_type = libc::F_WRLCK as libc::c_short;
        flock.l_whence = libc::SEEK_SET as libc::c_short;
        let command = match request {
            Lock::Try => libc::F_OFD_SETLK,
            Lock::Wait => libc::F_OFD_SETLKW,
            Lock::Query => libc::F_OFD_GETLK,
        };
        // SAFETY: a valid descriptor and a valid `flock` that lives across the call; GETLK only
        // fills it in.
        if unsafe { libc::fcntl(file.as_raw_fd(), command, &mut flock) } != 0 {
            let error = std::io::Error::last_os_error();
            return match error.raw_os_error() {
                Some(libc::EAGAIN) | Some(libc::EACCES) => Ok(Locked::Held),
                _ => Err(error),
            };
        }
        match request {
            Lock::Query if flock.l_type != libc::F_UNLCK as libc::c_short => Ok(Locked::Held),
            _ => Ok(Locked::Free),
        }
    }
}
