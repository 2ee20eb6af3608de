//! Small file helpers the store shares: atomic JSON writes, flock locks,
//! unique temporary names, mount checks.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::error::{Error, Result};

/// An flock(2) lock, released when dropped (the descriptor closes). Each
/// lock opens its own file description, so threads of one process exclude
/// each other as processes do.
pub struct FileLock(#[allow(dead_code)] File);

pub enum LockKind {
    Shared,
    Exclusive,
}

impl FileLock {
    /// Waits for the lock.
    pub fn acquire(path: &Path, kind: LockKind) -> Result<FileLock> {
        Self::take(path, kind, false).map(|l| l.expect("a blocking flock returns only when held"))
    }

    /// None when someone else holds it.
    pub fn try_acquire(path: &Path, kind: LockKind) -> Result<Option<FileLock>> {
        Self::take(path, kind, true)
    }

    fn take(path: &Path, kind: LockKind, nonblock: bool) -> Result<Option<FileLock>> {
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(Error::io("open lock", path))?;
        let mut op = match kind {
            LockKind::Shared => libc::LOCK_SH,
            LockKind::Exclusive => libc::LOCK_EX,
        };
        if nonblock {
            op |= libc::LOCK_NB;
        }
        loop {
            // SAFETY: f is an open file for the duration of the call.
            if unsafe { libc::flock(f.as_raw_fd(), op) } == 0 {
                return Ok(Some(FileLock(f)));
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::EWOULDBLOCK) if nonblock => return Ok(None),
                _ => {
                    return Err(Error::Io {
                        op: "lock",
                        path: path.to_path_buf(),
                        source: e,
                    })
                }
            }
        }
    }
}

/// A name no other thread or process of this store picks at the same time.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Writes `bytes` to a temporary file in the same directory, syncs it and
/// renames it over `path`: readers see the old or the new file, whole.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(unique(".tmp-"));
    let r = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if r.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    r.map_err(Error::io("write", path))
}

/// Whether `path` is a mount point, from /proc/self/mountinfo (a bind or
/// overlay mount on a directory of the same filesystem has no st_dev change).
pub fn is_mount_point(path: &Path) -> Result<bool> {
    let info = fs::read_to_string("/proc/self/mountinfo").map_err(Error::io("read", "/proc/self/mountinfo"))?;
    let want = path.to_string_lossy();
    Ok(info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|mp| unescape_mountinfo(mp) == want))
}

/// mountinfo escapes space, tab, newline and backslash as \ooo.
fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            if let Some(v) = std::str::from_utf8(&b[i + 1..i + 4])
                .ok()
                .and_then(|o| u8::from_str_radix(o, 8).ok())
            {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Removes a tree if it is there.
pub fn remove_tree(path: &Path) -> Result<()> {
    match fs::remove_dir_all(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(Error::Io {
            op: "remove",
            path: path.to_path_buf(),
            source: e,
        }),
        _ => Ok(()),
    }
}

pub fn mkdirs(path: &Path) -> Result<PathBuf> {
    fs::create_dir_all(path).map_err(Error::io("create", path))?;
    Ok(path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes_are_decoded() {
        assert_eq!(unescape_mountinfo(r"/a\040b"), "/a b");
        assert_eq!(unescape_mountinfo(r"/a\134"), r"/a\");
        assert_eq!(unescape_mountinfo("/plain"), "/plain");
    }

    #[test]
    fn a_held_exclusive_lock_refuses_a_try() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("l");
        let held = FileLock::acquire(&p, LockKind::Exclusive).unwrap();
        assert!(FileLock::try_acquire(&p, LockKind::Shared).unwrap().is_none());
        drop(held);
        let a = FileLock::try_acquire(&p, LockKind::Shared).unwrap();
        assert!(a.is_some());
        assert!(FileLock::try_acquire(&p, LockKind::Shared).unwrap().is_some());
        assert!(FileLock::try_acquire(&p, LockKind::Exclusive).unwrap().is_none());
    }

    #[test]
    fn root_is_a_mount_point_and_tmp_dirs_are_not() {
        assert!(is_mount_point(Path::new("/")).unwrap());
        let d = tempfile::tempdir().unwrap();
        assert!(!is_mount_point(d.path()).unwrap());
    }
}
