//! Running a hook (`postmap`, a reload) so that it can never hold a sync for ever: no shell, no stdin,
//! its own process group (ended whole on a timeout or when bits-tls is told to stop), a time limit, and
//! its output capped to the last [`OUTPUT_TAIL`] bytes (the end of a long output is where the error is).

use crate::signals;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How much of a hook's output (stdout and stderr together) is kept: the last this many bytes.
pub const OUTPUT_TAIL: usize = 16 * 1024;

/// How long a hook's process group gets to end after SIGTERM before it is sent SIGKILL.
const GRACE: Duration = Duration::from_secs(2);

/// A command to run: argv with `{path}` already substituted.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Hook {
    pub argv: Vec<String>,
}

/// Why a hook did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookFailure {
    /// `exit status: 3`, `timed out after 60 s`, `interrupted by SIGTERM`, `could not start: …`.
    pub status: String,
    /// The tail of what it printed (stderr and stdout interleaved), with a note if the start was cut.
    pub output: String,
    /// bits-tls itself was told to stop (SIGTERM, SIGINT, SIGHUP) while the hook ran.
    pub interrupted: bool,
}

impl Hook {
    pub fn new(template: &[String], path: &Path) -> Hook {
        let p = path.display().to_string();
        Hook {
            argv: template.iter().map(|a| a.replace("{path}", &p)).collect(),
        }
    }

    pub fn display(&self) -> String {
        self.argv.join(" ")
    }

    /// Runs it (no shell) for at most `timeout`; a stop request (SIGTERM, SIGINT, SIGHUP) ends it.
    pub fn run_for(&self, timeout: Duration) -> Result<(), HookFailure> {
        self.run_inner(timeout, true)
    }

    /// Runs it for at most `timeout` even when bits-tls is stopping: used to bring derived files
    /// (`postmap`'s `.db`) back in line with restored files on the way out.
    pub fn run_to_restore(&self, timeout: Duration) -> Result<(), HookFailure> {
        self.run_inner(timeout, false)
    }

    fn run_inner(&self, timeout: Duration, interruptible: bool) -> Result<(), HookFailure> {
        let fail = |status: String| HookFailure {
            status,
            output: String::new(),
            interrupted: false,
        };
        let (prog, args) = self
            .argv
            .split_first()
            .ok_or_else(|| fail("empty command".into()))?;
        if interruptible && signals::stop_requested().is_some() {
            return Err(HookFailure {
                interrupted: true,
                ..fail("not started: bits-tls is stopping".into())
            });
        }
        let (reader, writer) =
            std::io::pipe().map_err(|e| fail(format!("could not start: {e}")))?;
        let writer2 = writer
            .try_clone()
            .map_err(|e| fail(format!("could not start: {e}")))?;
        let mut cmd = Command::new(prog);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(writer)
            .stderr(writer2)
            // Its own process group: a terminal's Ctrl-C reaches bits-tls only, and a timeout ends the
            // hook together with everything it started.
            .process_group(0);
        let mut child = cmd
            .spawn()
            .map_err(|e| fail(format!("could not start: {e}")))?;
        // Our copies of the pipe's write end are gone with `cmd`: the reader sees EOF when the hook
        // (and whatever it started that kept the pipe) is done.
        drop(cmd);
        let tail = Arc::new(Mutex::new(Tail::default()));
        let reader_done = {
            let tail = tail.clone();
            let (tx, rx) = std::sync::mpsc::channel::<()>();
            std::thread::spawn(move || {
                let mut reader = reader;
                let mut buf = [0u8; 8192];
                while let Ok(n) = reader.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    tail.lock().unwrap().push(&buf[..n]);
                }
                let _ = tx.send(());
            });
            rx
        };
        let start = Instant::now();
        let outcome = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Ok(status),
                Ok(None) => {}
                Err(e) => break Err(format!("could not wait for it: {e}")),
            }
            if let Some(sig) = signals::stop_requested().filter(|_| interruptible) {
                end_group(&mut child);
                break Err(format!("interrupted by {sig}"));
            }
            if start.elapsed() >= timeout {
                end_group(&mut child);
                break Err(format!(
                    "timed out after {} s (safety.hook_timeout)",
                    timeout.as_secs()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        // A daemon the hook started may keep the pipe open; its output is not waited for.
        let _ = reader_done.recv_timeout(Duration::from_millis(500));
        let output = tail.lock().unwrap().text();
        match outcome {
            Ok(status) if status.success() => Ok(()),
            Ok(status) => Err(HookFailure {
                status: status.to_string(),
                output,
                interrupted: false,
            }),
            Err(status) => Err(HookFailure {
                interrupted: status.starts_with("interrupted"),
                status,
                output,
            }),
        }
    }
}

/// SIGTERM to the hook's process group, then SIGKILL after a grace period; reaps the hook.
fn end_group(child: &mut Child) {
    let pgid = child.id() as libc::pid_t;
    // SAFETY: kill(2) with a negative pid signals a process group; no memory is involved.
    unsafe { libc::kill(-pgid, libc::SIGTERM) };
    let until = Instant::now() + GRACE;
    while Instant::now() < until {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // Whatever of the group is left (the hook, or children it started) is killed.
    // SAFETY: as above.
    unsafe { libc::kill(-pgid, libc::SIGKILL) };
    let _ = child.wait();
}

/// The last [`OUTPUT_TAIL`] bytes of a stream, and how many were dropped before them.
#[derive(Default)]
struct Tail {
    buf: std::collections::VecDeque<u8>,
    dropped: u64,
}

impl Tail {
    fn push(&mut self, bytes: &[u8]) {
        self.buf.extend(bytes);
        let over = self.buf.len().saturating_sub(OUTPUT_TAIL);
        if over > 0 {
            self.buf.drain(..over);
            self.dropped += over as u64;
        }
    }

    fn text(&self) -> String {
        let bytes: Vec<u8> = self.buf.iter().copied().collect();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if self.dropped > 0 {
            format!("[… {} earlier bytes not kept]\n{text}", self.dropped)
        } else {
            text
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Hook {
        Hook {
            argv: vec!["sh".into(), "-c".into(), script.into()],
        }
    }

    #[test]
    fn success_failure_and_output() {
        assert_eq!(sh("exit 0").run_for(Duration::from_secs(5)), Ok(()));
        let f = sh("echo out; echo err >&2; exit 3")
            .run_for(Duration::from_secs(5))
            .unwrap_err();
        assert_eq!(f.status, "exit status: 3");
        assert!(
            f.output.contains("out") && f.output.contains("err"),
            "{f:?}"
        );
        let f = Hook {
            argv: vec!["/nonexistent/hook".into()],
        }
        .run_for(Duration::from_secs(5))
        .unwrap_err();
        assert!(f.status.starts_with("could not start"), "{f:?}");
    }

    #[test]
    fn a_hung_hook_and_its_children_are_ended_at_the_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let start = Instant::now();
        let f = sh(&format!(
            "sleep 300 & echo $! > {}; wait",
            pidfile.display()
        ))
        .run_for(Duration::from_millis(600))
        .unwrap_err();
        assert!(f.status.starts_with("timed out"), "{f:?}");
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{:?}",
            start.elapsed()
        );
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        std::thread::sleep(Duration::from_millis(100));
        // Alive: it exists and is not a zombie waiting for a reaper.
        let alive = std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
            s.rsplit(')')
                .next()
                .is_some_and(|t| !t.trim_start().starts_with('Z'))
        });
        assert!(!alive, "the hook's child {pid} outlived the timeout");
    }

    #[test]
    fn output_is_capped_to_its_tail() {
        // 20 MB of output: only the tail is kept, and memory stays small.
        let f = sh("head -c 20000000 /dev/zero | tr '\\0' x; echo THE-END; exit 1")
            .run_for(Duration::from_secs(30))
            .unwrap_err();
        assert!(f.output.len() < OUTPUT_TAIL + 100, "{}", f.output.len());
        assert!(f.output.trim_end().ends_with("THE-END"));
        assert!(f.output.starts_with("[… 1998"), "{}", &f.output[..40]);
    }
}
