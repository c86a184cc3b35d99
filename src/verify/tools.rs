//! Finding the MTA's own programs (on `PATH`, or in a directory the admin names) and running them
//! read-only: arguments as an argv, never a shell; standard input only for lookup keys.

use super::VerifyError;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The first of `names` found in `dir` (when given) or else on `PATH`.
pub fn find(
    names: &[&str],
    dir: Option<&Path>,
    flag: &'static str,
) -> Result<PathBuf, VerifyError> {
    let dirs: Vec<PathBuf> = match dir {
        Some(d) => vec![d.to_path_buf()],
        None => std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).collect())
            .unwrap_or_default(),
    };
    for d in &dirs {
        for n in names {
            let p = d.join(n);
            if is_executable(&p) {
                return Ok(p);
            }
        }
    }
    Err(VerifyError::NotFound {
        program: names.join("` or `"),
        looked: dirs,
        flag,
    })
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// What a program printed, and whether it succeeded.
#[derive(Debug, Clone)]
pub struct Output {
    pub ok: bool,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// `program args…` shown the way an admin would type it.
pub fn display(program: &Path, args: &[&str]) -> String {
    let mut s = program.display().to_string();
    for a in args {
        s.push(' ');
        s.push_str(a);
    }
    s
}

/// Runs `program args…`, with `stdin` fed to it when given. A program that cannot be started is an
/// error; one that exits non-zero is an [`Output`] with `ok: false` for the caller to judge.
pub fn run(program: &Path, args: &[&str], stdin: Option<&str>) -> Result<Output, VerifyError> {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let spawn_err = |source| VerifyError::Spawn {
        command: display(program, args),
        source,
    };
    let mut child = cmd.spawn().map_err(spawn_err)?;
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("piped stdin");
        // Written from another thread, so a program that prints while it reads cannot deadlock us.
        let input = input.to_string();
        let writer = std::thread::spawn(move || {
            let _ = pipe.write_all(input.as_bytes());
        });
        let out = child.wait_with_output().map_err(spawn_err)?;
        let _ = writer.join();
        return Ok(to_output(out));
    }
    Ok(to_output(child.wait_with_output().map_err(spawn_err)?))
}

fn to_output(out: std::process::Output) -> Output {
    Output {
        ok: out.status.success(),
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs a program that must succeed; its failure is an error naming the command and what it said.
pub fn run_ok(program: &Path, args: &[&str]) -> Result<String, VerifyError> {
    let out = run(program, args, None)?;
    if !out.ok {
        return Err(VerifyError::Failed {
            command: display(program, args),
            code: out.code,
            stderr: first_lines(&out.stderr, &out.stdout),
        });
    }
    Ok(out.stdout)
}

/// The first few lines of what a failing program said (stderr, else stdout), as one line.
pub fn first_lines(stderr: &str, stdout: &str) -> String {
    let text = if stderr.trim().is_empty() {
        stdout
    } else {
        stderr
    };
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .take(3)
        .collect();
    crate::sanitize::one_line(&lines.join("; "))
}

/// When a file was last changed, if it exists.
pub fn mtime(p: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// A running process: its id, name (`comm`), parent and start time.
#[derive(Debug, Clone)]
pub struct Process {
    pub pid: u32,
    pub ppid: u32,
    pub comm: String,
    pub started: std::time::SystemTime,
}

/// The process `pid`, read from /proc (Linux), if it runs.
pub fn process(pid: u32) -> Option<Process> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid …`; comm may hold spaces and parentheses, so split at the last `)`.
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat[open + 1..close].to_string();
    let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    let ppid = fields.get(1)?.parse().ok()?;
    // Field 22 of stat (index 19 after the comm) is the start time in clock ticks since boot. Boot
    // time itself is known only to the second (btime); the uptime is known to 10 ms, so the start
    // is placed that far before now.
    let ticks: u64 = fields.get(19)?.parse().ok()?;
    let ago = uptime()? - ticks as f64 / clock_ticks();
    Some(Process {
        pid,
        ppid,
        comm,
        started: std::time::SystemTime::now() - std::time::Duration::from_secs_f64(ago.max(0.0)),
    })
}

/// Seconds since boot, from /proc/uptime.
fn uptime() -> Option<f64> {
    std::fs::read_to_string("/proc/uptime")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Every running process whose parent is `ppid`.
pub fn children(ppid: u32) -> Vec<Process> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut out: Vec<Process> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(process)
        .filter(|p| p.ppid == ppid)
        .collect();
    out.sort_by_key(|p| p.pid);
    out
}

/// Clock ticks per second for /proc start times: 100 on every Linux architecture in use (USER_HZ).
fn clock_ticks() -> f64 {
    100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_on_path_or_in_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        let err = find(&["postconf"], Some(dir.path()), "--postfix-command-dir").unwrap_err();
        assert!(err.to_string().contains(&dir.path().display().to_string()));
        let p = dir.path().join("postconf");
        std::fs::write(&p, "#!/bin/sh\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(find(&["postconf"], Some(dir.path()), "x").unwrap(), p);
    }

    #[test]
    fn this_process_has_a_start_time() {
        let me = process(std::process::id()).expect("/proc/self");
        let now = std::time::SystemTime::now();
        let age = now.duration_since(me.started).unwrap_or_default();
        assert!(age.as_secs() < 3600, "{me:?}");
    }
}
