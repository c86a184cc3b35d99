//! Fault injection for the crash tests: `BITS_TLS_FAULT=NAME[:N]` kills the process with SIGKILL the
//! N-th time (default first) it reaches the named point of a sync's transaction. Compiled only into
//! debug builds (`cargo test`); in a release build [`point`] is an empty function.

/// The named points, in the order a sync reaches them (see `apply.rs`).
pub const POINTS: &[&str] = &[
    "after-temps",
    "after-undo",
    "after-journal",
    "after-rename",
    "after-hook",
    "after-state",
    "after-history",
    "after-backup",
    "recovery-after-restore",
    "recovery-after-hook",
];

#[cfg(debug_assertions)]
pub fn point(name: &str) {
    use std::sync::Mutex;
    static SEEN: Mutex<Vec<(String, usize)>> = Mutex::new(Vec::new());
    let Ok(spec) = std::env::var("BITS_TLS_FAULT") else {
        return;
    };
    let (want, nth) = match spec.split_once(':') {
        Some((w, n)) => (w.to_string(), n.parse::<usize>().unwrap_or(1)),
        None => (spec.clone(), 1),
    };
    if want != name {
        return;
    }
    let mut seen = SEEN.lock().unwrap();
    let count = match seen.iter_mut().find(|(n, _)| n == name) {
        Some((_, c)) => {
            *c += 1;
            *c
        }
        None => {
            seen.push((name.to_string(), 1));
            1
        }
    };
    if count == nth {
        // SAFETY: sends SIGKILL to this very process, which ends here as it would under `kill -9`.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
}

#[cfg(not(debug_assertions))]
#[inline(always)]
pub fn point(_name: &str) {}
