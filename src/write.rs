//! File primitives for the transaction in `apply.rs`: every new content is written to a temporary file
//! in the target's own directory, given the old file's owner, group, mode and access-control/security
//! labels, and fsynced before any file is replaced; the old file is kept as an undo copy (a hard link, so
//! it is the very same inode, labels and all) until the sync commits, when it becomes `file.bak.1`.
//! A path that is a symbolic link is written through: the link stays, its target is replaced. A lock
//! file keeps two syncs from overlapping (`check` takes it shared).

use std::ffi::CString;
use std::fs::{File, OpenOptions, Permissions};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use crate::hook::Hook;

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("could not write `{}`", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("could not give `{}` the owner, group or labels of the file it replaces", .path.display())]
    Keep {
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
    #[error("bits-tls was stopped by {signal} during the sync; the previous files were put back")]
    Interrupted { signal: String },
}

impl WriteError {
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            WriteError::Io { .. } => {
                "nothing was changed; check the directory exists and is writable".into()
            }
            WriteError::Keep { .. } => {
                "nothing was changed; run bits-tls as root or as the file's owner, so that the new file can keep the old one's owner and group".into()
            }
            WriteError::Locked { .. } => {
                "wait for the other run to finish, or raise safety.lock_timeout".into()
            }
            WriteError::Hook { output, .. } if !output.trim().is_empty() => {
                format!(
                    "the hook said: {}",
                    crate::sanitize::excerpt(&crate::sanitize::one_line(output), 2000)
                )
            }
            WriteError::Hook { .. } => "run the hook by hand to see why it fails".into(),
            WriteError::Interrupted { .. } => return None,
        })
    }
}

pub fn io(path: &Path) -> impl FnOnce(std::io::Error) -> WriteError + '_ {
    move |source| WriteError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A lock held until dropped: exclusive for `sync`, shared for `check`.
pub struct Lock {
    _file: File,
}

impl Lock {
    /// Takes the exclusive lock at `path`, waiting up to `timeout` for another holder.
    pub fn acquire(path: &Path, timeout: Duration) -> Result<Lock, WriteError> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(io(path))?;
        Lock::wait(file, path, timeout, false)
    }

    /// Takes the lock shared (readers: `check`), waiting up to `timeout` for a sync to finish. `None`
    /// when there is no lock file and none can be made (no sync has run here, or a read-only checkout).
    pub fn acquire_shared(path: &Path, timeout: Duration) -> Result<Option<Lock>, WriteError> {
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                match OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(path)
                {
                    Ok(f) => f,
                    Err(_) => return Ok(None),
                }
            }
            Err(_) => return Ok(None),
        };
        Lock::wait(file, path, timeout, true).map(Some)
    }

    fn wait(file: File, path: &Path, timeout: Duration, shared: bool) -> Result<Lock, WriteError> {
        let start = Instant::now();
        loop {
            let got = if shared {
                file.try_lock_shared()
            } else {
                file.try_lock()
            };
            match got {
                Ok(()) => return Ok(Lock { _file: file }),
                Err(std::fs::TryLockError::WouldBlock) if start.elapsed() < timeout => {
                    std::thread::sleep(Duration::from_millis(50))
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

/// The file `path` names: symbolic links of the last component are followed (a relative link is
/// relative to its own directory), so that a link into a configuration repository is written through
/// and stays a link. A path that does not exist yet is itself.
pub fn resolve(path: &Path) -> std::io::Result<PathBuf> {
    let mut p = path.to_path_buf();
    for _ in 0..40 {
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                let target = std::fs::read_link(&p)?;
                p = if target.is_absolute() {
                    target
                } else {
                    parent(&p).join(target)
                };
            }
            Ok(_) => return Ok(p),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(p),
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other(format!(
        "too many levels of symbolic links at `{}`",
        path.display()
    )))
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The extended attributes a replaced file keeps: its POSIX ACL and its SELinux label.
const KEPT_XATTRS: [&str; 2] = ["system.posix_acl_access", "security.selinux"];

/// What a new file takes over from the file it replaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keep {
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
    pub xattrs: Vec<(String, Vec<u8>)>,
}

impl Keep {
    /// Owner, group, mode and labels of the file at `path` (following links); `None` if it is absent.
    pub fn of(path: &Path) -> Result<Option<Keep>, WriteError> {
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(path)(e)),
        };
        let xattrs = KEPT_XATTRS
            .iter()
            .filter_map(|name| get_xattr(path, name).map(|v| (name.to_string(), v)))
            .collect();
        Ok(Some(Keep {
            uid: meta.uid(),
            gid: meta.gid(),
            mode: meta.mode() & 0o7777,
            xattrs,
        }))
    }

    /// Gives the open file (a temp) this owner, group, mode and these labels.
    fn apply(&self, file: &File, path: &Path) -> Result<(), WriteError> {
        let keep_err = |source| WriteError::Keep {
            path: path.to_path_buf(),
            source,
        };
        let meta = file.metadata().map_err(io(path))?;
        if meta.uid() != self.uid || meta.gid() != self.gid {
            std::os::unix::fs::fchown(file, Some(self.uid), Some(self.gid)).map_err(keep_err)?;
        }
        // chown clears set-id bits, so the mode comes after it.
        file.set_permissions(Permissions::from_mode(self.mode))
            .map_err(io(path))?;
        for (name, value) in &self.xattrs {
            set_xattr(file, name, value).map_err(|source| WriteError::Keep {
                path: path.to_path_buf(),
                source,
            })?;
        }
        Ok(())
    }
}

fn get_xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let p = CString::new(path.as_os_str().as_bytes()).ok()?;
    let n = CString::new(name).ok()?;
    // SAFETY: the C strings live across the calls; the buffer is sized from the first call's answer
    // and its length is passed with it.
    unsafe {
        let len = libc::getxattr(p.as_ptr(), n.as_ptr(), std::ptr::null_mut(), 0);
        if len <= 0 {
            return None;
        }
        let mut buf = vec![0u8; len as usize];
        let got = libc::getxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len());
        (got >= 0).then(|| {
            buf.truncate(got as usize);
            buf
        })
    }
}

fn set_xattr(file: &File, name: &str, value: &[u8]) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let n = CString::new(name).map_err(std::io::Error::other)?;
    // SAFETY: valid descriptor, C string and buffer with its length.
    let rc = unsafe {
        libc::fsetxattr(
            file.as_raw_fd(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Writes `content` to a new temporary file beside `real` (the resolved target), with `keep`'s owner,
/// group, mode and labels (or mode 0644), fsynced.
pub fn write_temp(
    real: &Path,
    content: &[u8],
    keep: Option<&Keep>,
) -> Result<tempfile::NamedTempFile, WriteError> {
    let mut temp = tempfile::Builder::new()
        .prefix(&format!(".{}.", file_name(real)))
        .suffix(TEMP_SUFFIX)
        .tempfile_in(parent(real))
        .map_err(io(real))?;
    temp.write_all(content).map_err(io(real))?;
    match keep {
        Some(k) => k.apply(temp.as_file(), real)?,
        None => temp
            .as_file()
            .set_permissions(Permissions::from_mode(0o644))
            .map_err(io(real))?,
    }
    temp.as_file().sync_all().map_err(io(real))?;
    Ok(temp)
}

const TEMP_SUFFIX: &str = ".bits-tls-tmp";
const UNDO_SUFFIX: &str = ".bits-tls-undo";

/// Fsyncs the directory holding `path`, so a rename in it survives a crash.
pub fn sync_dir(path: &Path) -> Result<(), WriteError> {
    let dir = parent(path);
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

/// Where the old version of `real` waits while a sync is under way: `.NAME.bits-tls-undo` beside it.
pub fn undo_path(real: &Path) -> PathBuf {
    parent(real).join(format!(".{}{UNDO_SUFFIX}", file_name(real)))
}

pub fn backup_path(path: &Path, n: usize) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".bak.{n}"));
    PathBuf::from(s)
}

/// Keeps the current `real` as its undo copy: a hard link (the same inode: content, owner, mode and
/// labels), or, where links are not possible, a copy with the same owner, mode and labels.
pub fn make_undo(real: &Path) -> Result<PathBuf, WriteError> {
    let undo = undo_path(real);
    match std::fs::remove_file(&undo) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(&undo)(e)),
    }
    if std::fs::hard_link(real, &undo).is_err() {
        let content = std::fs::read(real).map_err(io(real))?;
        let keep = Keep::of(real)?;
        write_temp(&undo, &content, keep.as_ref())?
            .persist(&undo)
            .map_err(|e| io(&undo)(e.error))?;
    }
    Ok(undo)
}

/// Puts the undo copy back over `real` (or removes `real` when it did not exist before). Safe to repeat:
/// a copy already put back is simply absent.
pub fn restore(real: &Path, existed: bool) -> Result<(), WriteError> {
    let undo = undo_path(real);
    if existed {
        if undo.exists() {
            std::fs::rename(&undo, real).map_err(io(real))?;
            // rename(2) does nothing when both names are links to one inode (the file was not
            // replaced yet): the undo name is then removed by hand.
            let _ = std::fs::remove_file(&undo);
        }
    } else {
        match std::fs::remove_file(real) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(real)(e)),
        }
    }
    sync_dir(real)
}

/// After a commit: the undo copy becomes `file.bak.1`, older backups move up to make room, and at most
/// `keep` are kept. Backups move into the first free slot only, so a rotation cut short by a crash and
/// done again never drops one early. Safe to repeat: without an undo copy nothing happens.
pub fn commit_backup(real: &Path, keep: usize) -> Result<(), WriteError> {
    let undo = undo_path(real);
    if !undo.exists() {
        return Ok(());
    }
    if keep == 0 {
        return std::fs::remove_file(&undo).map_err(io(&undo));
    }
    let gap = (1..=keep)
        .find(|n| !backup_path(real, *n).exists())
        .unwrap_or(keep);
    for n in (1..gap).rev() {
        let from = backup_path(real, n);
        std::fs::rename(&from, backup_path(real, n + 1)).map_err(io(&from))?;
    }
    let b1 = backup_path(real, 1);
    std::fs::rename(&undo, &b1).map_err(io(&b1))?;
    sync_dir(real)
}

/// Removes what a sync killed mid-way can leave beside `paths`: temporary files (`.NAME.….bits-tls-tmp`)
/// and, when no transaction is pending, undo copies. Returns what was removed. Call with the lock held.
pub fn remove_leftovers(paths: &[PathBuf], undo_too: bool) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    for p in paths {
        let real = resolve(p).unwrap_or_else(|_| p.clone());
        let prefix = format!(".{}.", file_name(&real));
        let Ok(entries) = std::fs::read_dir(parent(&real)) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let ours = name.starts_with(&prefix)
                && (name.ends_with(TEMP_SUFFIX) || (undo_too && name.ends_with(UNDO_SUFFIX)));
            if ours && std::fs::remove_file(e.path()).is_ok() {
                removed.push(e.path());
            }
        }
    }
    removed
}

/// Writes `content` to `path` atomically on its own (the state file), through a symbolic link, keeping
/// the old file's owner, group, mode and labels.
pub fn write_atomic(path: &Path, content: &[u8]) -> Result<(), WriteError> {
    let real = resolve(path).map_err(io(path))?;
    let keep = Keep::of(&real)?;
    write_temp(&real, content, keep.as_ref())?
        .persist(&real)
        .map_err(|e| io(&real)(e.error))?;
    sync_dir(&real)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_atomic_keeps_mode_and_writes_through_links() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        std::fs::write(&real, "old").unwrap();
        std::fs::set_permissions(&real, Permissions::from_mode(0o640)).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink("real", &link).unwrap();
        write_atomic(&link, b"new").unwrap();
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read_to_string(&real).unwrap(), "new");
        assert_eq!(
            std::fs::metadata(&real).unwrap().permissions().mode() & 0o777,
            0o640
        );
        let fresh = dir.path().join("fresh");
        write_atomic(&fresh, b"x").unwrap();
        assert_eq!(
            std::fs::metadata(&fresh).unwrap().permissions().mode() & 0o777,
            0o644
        );
    }

    #[test]
    fn undo_restore_and_backups_rotate_into_the_first_gap() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        for (i, v) in ["v0", "v1", "v2", "v3", "v4"].iter().enumerate() {
            if i > 0 {
                make_undo(&a).unwrap();
            }
            std::fs::write(dir.path().join("t"), v).unwrap();
            std::fs::rename(dir.path().join("t"), &a).unwrap();
            commit_backup(&a, 2).unwrap();
        }
        let read = |n| std::fs::read_to_string(backup_path(&a, n)).ok();
        assert_eq!(read(1).as_deref(), Some("v3"));
        assert_eq!(read(2).as_deref(), Some("v2"));
        assert_eq!(read(3), None);
        // A rotation cut short (bak.1 already moved up) and done again keeps every backup.
        std::fs::rename(backup_path(&a, 1), backup_path(&a, 2)).unwrap();
        make_undo(&a).unwrap();
        commit_backup(&a, 3).unwrap();
        assert_eq!(read(1).as_deref(), Some("v4"));
        assert_eq!(read(2).as_deref(), Some("v3"));
        // Restore puts the very inode back; a second restore is a no-op.
        make_undo(&a).unwrap();
        std::fs::write(dir.path().join("t"), "v5").unwrap();
        std::fs::rename(dir.path().join("t"), &a).unwrap();
        restore(&a, true).unwrap();
        restore(&a, true).unwrap();
        assert_eq!(std::fs::read_to_string(&a).unwrap(), "v4");
        assert!(!undo_path(&a).exists());
        // Undo of a file never replaced (both names one inode) leaves no undo copy behind.
        make_undo(&a).unwrap();
        restore(&a, true).unwrap();
        assert_eq!(std::fs::read_to_string(&a).unwrap(), "v4");
        assert!(!undo_path(&a).exists());
    }

    #[test]
    fn leftovers_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        std::fs::write(&a, "x").unwrap();
        let t = write_temp(&a, b"y", None).unwrap();
        let (_, kept) = t.keep().unwrap();
        make_undo(&a).unwrap();
        std::fs::write(dir.path().join(".other.x.bits-tls-tmp"), "").unwrap();
        let removed = remove_leftovers(std::slice::from_ref(&a), false);
        assert_eq!(removed, vec![kept]);
        assert!(undo_path(&a).exists());
        assert_eq!(
            remove_leftovers(std::slice::from_ref(&a), true),
            vec![undo_path(&a)]
        );
        assert!(dir.path().join(".other.x.bits-tls-tmp").exists());
    }

    #[test]
    fn lock_excludes_a_second_holder_and_readers() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("lock");
        let first = Lock::acquire(&p, Duration::ZERO).unwrap();
        assert!(matches!(
            Lock::acquire(&p, Duration::from_millis(200)),
            Err(WriteError::Locked { .. })
        ));
        assert!(matches!(
            Lock::acquire_shared(&p, Duration::from_millis(200)),
            Err(WriteError::Locked { .. })
        ));
        drop(first);
        let r1 = Lock::acquire_shared(&p, Duration::ZERO).unwrap();
        let r2 = Lock::acquire_shared(&p, Duration::ZERO).unwrap();
        assert!(r1.is_some() && r2.is_some());
        assert!(Lock::acquire(&p, Duration::from_millis(100)).is_err());
        drop((r1, r2));
        Lock::acquire(&p, Duration::ZERO).unwrap();
    }
}
