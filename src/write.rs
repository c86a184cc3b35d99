//! Putting files in place without ever leaving one half-written: every new content is written to a
//! temporary file in the target's own directory and fsynced before any file is replaced; then each is
//! renamed over its target (keeping the old file's mode), the directories are fsynced, and on any
//! failure the files already replaced are put back. Hooks run after all files are in place; a failing
//! hook puts the previous files back too. A lock file keeps two syncs from overlapping.

use std::fs::{File, OpenOptions, Permissions};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("could not write `{}`", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("another bits-tls sync holds the lock `{}` (waited {waited} s)", .path.display())]
    Locked { path: PathBuf, waited: u64 },
    #[error("the hook `{command}` failed ({status}); the previous files were put back{}", if .restore_failed.is_empty() { String::new() } else { format!(", but re-running hooks on them failed too: {}", .restore_failed) })]
    Hook {
        command: String,
        status: String,
        output: String,
        restore_failed: String,
    },
}

impl WriteError {
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            WriteError::Io { .. } => {
                "nothing was changed; check the directory exists and is writable".into()
            }
            WriteError::Locked { .. } => {
                "wait for the other run to finish, or raise safety.lock_timeout".into()
            }
            WriteError::Hook { output, .. } if !output.trim().is_empty() => {
                format!("the hook said: {}", crate::sanitize::one_line(output))
            }
            WriteError::Hook { .. } => "run the hook by hand to see why it fails".into(),
        })
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> WriteError + '_ {
    move |source| WriteError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// An exclusive lock held until dropped.
pub struct Lock {
    _file: File,
}

impl Lock {
    /// Takes the lock at `path`, waiting up to `timeout` for another holder.
    pub fn acquire(path: &Path, timeout: Duration) -> Result<Lock, WriteError> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(io(path))?;
        let start = Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(Lock { _file: file }),
                Err(std::fs::TryLockError::WouldBlock) if start.elapsed() < timeout => {
                    std::thread::sleep(Duration::from_millis(100))
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(WriteError::Locked {
                        path: path.into(),
                        waited: start.elapsed().as_secs(),
                    })
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(io(path)(e)),
            }
        }
    }
}

/// One file to put in place.
#[derive(Debug, Clone)]
pub struct FileWrite {
    pub path: PathBuf,
    pub content: Vec<u8>,
}

/// What a file was before it was replaced, to put it back.
#[derive(Debug)]
struct Previous {
    path: PathBuf,
    content: Option<Vec<u8>>,
    mode: Option<u32>,
}

/// Files replaced by `apply`, which can be put back.
#[derive(Debug)]
pub struct Applied {
    previous: Vec<Previous>,
}

/// Writes every file or none. `backups` old versions of each are kept as `file.bak.1` (newest) … .
pub fn apply(writes: &[FileWrite], backups: usize) -> Result<Applied, WriteError> {
    // 1. Everything that can fail before a target is touched: read the old files, write and sync temps.
    let mut prepared = Vec::new();
    for w in writes {
        let (content, mode) = match std::fs::read(&w.path) {
            Ok(c) => {
                let mode = std::fs::metadata(&w.path)
                    .map_err(io(&w.path))?
                    .permissions()
                    .mode();
                (Some(c), Some(mode))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (None, None),
            Err(e) => return Err(io(&w.path)(e)),
        };
        let temp = write_temp(&w.path, &w.content, mode.unwrap_or(0o644))?;
        prepared.push((
            temp,
            Previous {
                path: w.path.clone(),
                content,
                mode,
            },
        ));
    }
    // 2. Backups, then the renames; a failed rename puts back what was already replaced.
    let mut done = Applied {
        previous: Vec::new(),
    };
    for (temp, prev) in prepared {
        let step = (|| {
            if let Some(old) = &prev.content {
                rotate_backups(&prev.path, old, prev.mode, backups)?;
            }
            temp.persist(&prev.path)
                .map_err(|e| io(&prev.path)(e.error))?;
            sync_dir(&prev.path)
        })();
        match step {
            Ok(()) => done.previous.push(prev),
            Err(e) => {
                done.restore();
                return Err(e);
            }
        }
    }
    Ok(done)
}

impl Applied {
    /// Puts every replaced file back as it was (a file that did not exist is removed).
    pub fn restore(&self) {
        for p in self.previous.iter().rev() {
            let _ = match &p.content {
                Some(c) => write_temp(&p.path, c, p.mode.unwrap_or(0o644)).and_then(|t| {
                    t.persist(&p.path)
                        .map(|_| ())
                        .map_err(|e| io(&p.path)(e.error))
                }),
                None => std::fs::remove_file(&p.path).map_err(io(&p.path)),
            };
            let _ = sync_dir(&p.path);
        }
    }
}

fn write_temp(
    path: &Path,
    content: &[u8],
    mode: u32,
) -> Result<tempfile::NamedTempFile, WriteError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut temp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".bits-tls-tmp")
        .tempfile_in(dir)
        .map_err(io(path))?;
    temp.write_all(content).map_err(io(path))?;
    temp.as_file()
        .set_permissions(Permissions::from_mode(mode & 0o7777))
        .map_err(io(path))?;
    temp.as_file().sync_all().map_err(io(path))?;
    Ok(temp)
}

fn sync_dir(path: &Path) -> Result<(), WriteError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

fn backup_path(path: &Path, n: usize) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".bak.{n}"));
    PathBuf::from(s)
}

/// `file.bak.{n-1}` → `file.bak.n` …, then the old content becomes `file.bak.1`.
fn rotate_backups(
    path: &Path,
    old: &[u8],
    mode: Option<u32>,
    keep: usize,
) -> Result<(), WriteError> {
    if keep == 0 {
        return Ok(());
    }
    for n in (1..keep).rev() {
        let from = backup_path(path, n);
        if from.exists() {
            std::fs::rename(&from, backup_path(path, n + 1)).map_err(io(&from))?;
        }
    }
    let b = backup_path(path, 1);
    write_temp(&b, old, mode.unwrap_or(0o644))?
        .persist(&b)
        .map_err(|e| io(&b)(e.error))?;
    Ok(())
}

/// Writes `content` to `path` atomically on its own (used for the state file).
pub fn write_atomic(path: &Path, content: &[u8]) -> Result<(), WriteError> {
    let mode = std::fs::metadata(path)
        .map(|m| m.permissions().mode())
        .unwrap_or(0o644);
    write_temp(path, content, mode)?
        .persist(path)
        .map_err(|e| io(path)(e.error))?;
    sync_dir(path)
}

/// A command to run: argv with `{path}` already substituted.
#[derive(Debug, Clone)]
pub struct Hook {
    pub argv: Vec<String>,
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

    /// Runs it (no shell); `Err((status, output))` on failure.
    pub fn run(&self) -> Result<(), (String, String)> {
        let (prog, args) = self
            .argv
            .split_first()
            .ok_or(("empty command".to_string(), String::new()))?;
        match Command::new(prog).args(args).output() {
            Ok(out) if out.status.success() => Ok(()),
            Ok(out) => {
                let mut text = String::from_utf8_lossy(&out.stderr).into_owned();
                text.push_str(&String::from_utf8_lossy(&out.stdout));
                Err((out.status.to_string(), text))
            }
            Err(e) => Err((format!("could not start: {e}"), String::new())),
        }
    }
}

/// Runs hooks in order; on the first failure puts the files back, runs the hooks again so that derived
/// files (postmap's .db) match the restored files, and reports.
pub fn run_hooks(hooks: &[Hook], applied: &Applied) -> Result<(), WriteError> {
    for h in hooks {
        if let Err((status, output)) = h.run() {
            applied.restore();
            let restore_failed: Vec<String> = hooks
                .iter()
                .filter(|h| h.run().is_err())
                .map(|h| h.display())
                .collect();
            return Err(WriteError::Hook {
                command: h.display(),
                status,
                output,
                restore_failed: restore_failed.join(", "),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_all_keeps_mode_and_backups() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        std::fs::write(&a, "old a").unwrap();
        std::fs::set_permissions(&a, Permissions::from_mode(0o640)).unwrap();
        let b = dir.path().join("b");
        let writes = vec![
            FileWrite {
                path: a.clone(),
                content: b"new a".to_vec(),
            },
            FileWrite {
                path: b.clone(),
                content: b"new b".to_vec(),
            },
        ];
        let applied = apply(&writes, 2).unwrap();
        assert_eq!(std::fs::read_to_string(&a).unwrap(), "new a");
        assert_eq!(
            std::fs::metadata(&a).unwrap().permissions().mode() & 0o777,
            0o640
        );
        assert_eq!(
            std::fs::metadata(&b).unwrap().permissions().mode() & 0o777,
            0o644
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("a.bak.1")).unwrap(),
            "old a"
        );
        applied.restore();
        assert_eq!(std::fs::read_to_string(&a).unwrap(), "old a");
        assert!(!b.exists());
        // Rotation keeps the newest `keep`.
        for i in 0..4 {
            apply(
                &[FileWrite {
                    path: a.clone(),
                    content: format!("v{i}").into_bytes(),
                }],
                2,
            )
            .unwrap();
        }
        assert_eq!(
            std::fs::read_to_string(dir.path().join("a.bak.1")).unwrap(),
            "v2"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("a.bak.2")).unwrap(),
            "v1"
        );
        assert!(!dir.path().join("a.bak.3").exists());
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".bits-tls-tmp"))
            .collect();
        assert!(leftovers.is_empty());
    }

    #[test]
    fn nothing_is_replaced_when_one_file_cannot_be_prepared() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        std::fs::write(&a, "old a").unwrap();
        let writes = vec![
            FileWrite {
                path: a.clone(),
                content: b"new".to_vec(),
            },
            FileWrite {
                path: dir.path().join("missing-dir/b"),
                content: b"new".to_vec(),
            },
        ];
        assert!(matches!(apply(&writes, 1), Err(WriteError::Io { .. })));
        assert_eq!(std::fs::read_to_string(&a).unwrap(), "old a");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temp file or backup left"
        );
    }

    #[test]
    fn failing_hook_restores() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        std::fs::write(&a, "old").unwrap();
        let applied = apply(
            &[FileWrite {
                path: a.clone(),
                content: b"new".to_vec(),
            }],
            0,
        )
        .unwrap();
        let ok = Hook::new(&["true".into()], &a);
        let bad = Hook::new(
            &[
                "sh".into(),
                "-c".into(),
                "echo broken {path} >&2; exit 3".into(),
            ],
            &a,
        );
        let err = run_hooks(&[ok, bad], &applied).unwrap_err();
        assert_eq!(std::fs::read_to_string(&a).unwrap(), "old");
        let msg = format!("{err} / {}", err.hint().unwrap());
        assert!(
            msg.contains("exit status: 3") && msg.contains(&format!("broken {}", a.display())),
            "{msg}"
        );
    }

    #[test]
    fn lock_excludes_a_second_holder() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("lock");
        let first = Lock::acquire(&p, Duration::ZERO).unwrap();
        assert!(matches!(
            Lock::acquire(&p, Duration::from_millis(200)),
            Err(WriteError::Locked { .. })
        ));
        drop(first);
        Lock::acquire(&p, Duration::ZERO).unwrap();
    }
}
