//! SIGTERM (what systemd sends on stop or timeout), SIGINT (Ctrl-C) and SIGHUP during a sync's
//! transaction are requests to stop, not deaths: while a [`StopGuard`] is held they are recorded, the
//! running hook is ended, and the transaction rolls back before bits-tls exits. Outside it (fetching,
//! planning) nothing has been written, and the default action, ending the process, is right.

use std::sync::atomic::{AtomicI32, Ordering};

static CAUGHT: AtomicI32 = AtomicI32::new(0);

const SIGNALS: [libc::c_int; 3] = [libc::SIGTERM, libc::SIGINT, libc::SIGHUP];

extern "C" fn record(sig: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    CAUGHT.store(sig, Ordering::SeqCst);
}

/// The name of the stop signal received while a [`StopGuard`] was held, if any.
pub fn stop_requested() -> Option<&'static str> {
    match CAUGHT.load(Ordering::SeqCst) {
        0 => None,
        libc::SIGTERM => Some("SIGTERM"),
        libc::SIGINT => Some("SIGINT"),
        libc::SIGHUP => Some("SIGHUP"),
        _ => Some("a signal"),
    }
}

/// Records stop signals instead of dying, until dropped (then the previous dispositions return).
pub struct StopGuard {
    previous: Vec<(libc::c_int, libc::sigaction)>,
}

impl StopGuard {
    pub fn install() -> StopGuard {
        let mut previous = Vec::new();
        for sig in SIGNALS {
            // SAFETY: a zeroed sigaction is a valid starting value; the handler only does an atomic
            // store, which is async-signal-safe; the old action is saved to be put back.
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = record as *const () as libc::sighandler_t;
                action.sa_flags = libc::SA_RESTART;
                libc::sigemptyset(&mut action.sa_mask);
                let mut old: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(sig, &action, &mut old) == 0 {
                    previous.push((sig, old));
                }
            }
        }
        StopGuard { previous }
    }
}

impl Drop for StopGuard {
    fn drop(&mut self) {
        for (sig, old) in &self.previous {
            // SAFETY: restores the action saved by `install`.
            unsafe {
                libc::sigaction(*sig, old, std::ptr::null_mut());
            }
        }
    }
}
