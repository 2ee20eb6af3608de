//! Per-container root filesystems: an overlayfs mount whose lower layers are
//! the image's unpacked layers (shared, read-only) and whose upper and work
//! directories belong to the container alone.
//!
//! On disk, `snapshots/<container id>/` holds `snapshot.json` (written
//! before the mount, so a snapshot that may be mounted is always recorded),
//! `upper/`, `work/` and `rootfs/`, the mount point.

use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::digest::Digest;
use super::error::{Error, Result};
use super::fsutil::{is_mount_point, remove_tree, write_atomic};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SnapshotRecord {
    pub container_id: String,
    pub image_id: Digest,
    /// The layer directories' names (diff_id hex), bottom layer first.
    pub layers: Vec<String>,
}

/// Container ids name directories and appear in mount options: the
/// characters CRI implementations use for ids, nothing that could split an
/// option list (`,` `:`) or a path.
pub fn check_container_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            format!("container id {id:?}"),
            "expected 1 to 128 of [A-Za-z0-9_.-], not starting with '.'",
        ))
    }
}

pub fn read_record(dir: &Path) -> Option<SnapshotRecord> {
    serde_json::from_slice(&fs::read(dir.join("snapshot.json")).ok()?).ok()
}

/// Mounts the snapshot of `record` under `root/snapshots/<id>/rootfs`.
/// `root` holds `layers/`. Asking again for a snapshot that is mounted for
/// the same image returns it (a restarted server finds its mounts).
pub fn create(root: &Path, record: &SnapshotRecord) -> Result<PathBuf> {
    let id = &record.container_id;
    let dir = root.join("snapshots").join(id);
    let rootfs = dir.join("rootfs");
    if dir.exists() {
        return match read_record(&dir) {
            Some(r) if r.image_id == record.image_id && is_mount_point(&rootfs)? => Ok(rootfs),
            _ => Err(Error::invalid(
                format!("container id {id:?}"),
                "a snapshot with this id already exists",
            )),
        };
    }
    let lower = |name: &str| format!("layers/{name}");
    let mut lowers: Vec<String> = record.layers.iter().rev().map(|l| lower(l)).collect();
    if lowers.is_empty() {
        // overlayfs needs one lower layer; an image without layers gets an empty one.
        fs::create_dir_all(root.join("layers/empty")).map_err(Error::io("create", root.join("layers/empty")))?;
        lowers.push(lower("empty"));
    }
    let data = format!(
        "lowerdir={},upperdir=snapshots/{id}/upper,workdir=snapshots/{id}/work",
        lowers.join(":")
    );
    // The options are one page at most (the kernel copies one page).
    if data.len() >= 4096 {
        return Err(Error::invalid(
            format!("image {}", record.image_id),
            format!(
                "{} layers do not fit in one overlay mount's options",
                record.layers.len()
            ),
        ));
    }
    fs::create_dir_all(&dir).map_err(Error::io("create", &dir))?;
    let made = (|| {
        write_atomic(
            &dir.join("snapshot.json"),
            &serde_json::to_vec_pretty(record).expect("serialisable"),
        )?;
        for sub in ["upper", "work", "rootfs"] {
            fs::create_dir(dir.join(sub)).map_err(Error::io("create", dir.join(sub)))?;
        }
        // The merged root is the upper directory's inode: give it the
        // image's root ownership and mode, as the top layer has them.
        let top = root.join(&lowers[0]);
        let m = fs::metadata(&top).map_err(Error::io("stat", &top))?;
        let upper = dir.join("upper");
        std::os::unix::fs::chown(&upper, Some(m.uid()), Some(m.gid())).map_err(Error::io("chown", &upper))?;
        fs::set_permissions(&upper, fs::Permissions::from_mode(m.mode() & 0o7777))
            .map_err(Error::io("chmod", &upper))?;
        mount_overlay(root, &rootfs, &data)
    })();
    match made {
        Ok(()) => Ok(rootfs),
        Err(e) => {
            let _ = remove(root, id);
            Err(e)
        }
    }
}

/// Mounts with paths relative to `root`, from a thread whose working
/// directory is its own (unshare(CLONE_FS)), so the option string stays
/// short and the rest of the process keeps its working directory.
fn mount_overlay(root: &Path, target: &Path, data: &str) -> Result<()> {
    let root_c = CString::new(root.as_os_str().as_bytes()).map_err(|_| Error::invalid("store root", "contains NUL"))?;
    let target_c =
        CString::new(target.as_os_str().as_bytes()).map_err(|_| Error::invalid("mount point", "contains NUL"))?;
    let data_c = CString::new(data).map_err(|_| Error::invalid("overlay options", "contain NUL"))?;
    let r = std::thread::scope(|s| {
        s.spawn(|| -> io::Result<()> {
            // SAFETY: unshare(CLONE_FS) only detaches this thread's cwd/root/umask.
            if unsafe { libc::unshare(libc::CLONE_FS) } != 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: root_c is NUL-terminated; the cwd changed is this thread's own.
            if unsafe { libc::chdir(root_c.as_ptr()) } != 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: every pointer is a NUL-terminated string alive for the call.
            let rc = unsafe {
                libc::mount(
                    c"overlay".as_ptr(),
                    target_c.as_ptr(),
                    c"overlay".as_ptr(),
                    0,
                    data_c.as_ptr().cast(),
                )
            };
            if rc != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        })
        .join()
    });
    match r {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(Error::Io {
            op: "mount overlay on",
            path: target.to_path_buf(),
            source: e,
        }),
        Err(_) => Err(Error::Io {
            op: "mount overlay on",
            path: target.to_path_buf(),
            source: io::Error::other("mount thread panicked"),
        }),
    }
}

/// Unmounts the snapshot of `id` and deletes its directories; nothing to do
/// when there is none. The directory is never deleted while still mounted:
/// that would delete through the overlay into the shared layers.
pub fn remove(root: &Path, id: &str) -> Result<()> {
    let dir = root.join("snapshots").join(id);
    if !dir.exists() {
        return Ok(());
    }
    let rootfs = dir.join("rootfs");
    let c = CString::new(rootfs.as_os_str().as_bytes()).map_err(|_| Error::invalid("mount point", "contains NUL"))?;
    // A rootfs may have been mounted more than once (a crash between two
    // attempts); unmount until nothing is left.
    for _ in 0..16 {
        if !is_mount_point(&rootfs)? {
            break;
        }
        // SAFETY: c is a NUL-terminated path.
        if unsafe { libc::umount2(c.as_ptr(), 0) } != 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EBUSY) {
                return Err(Error::Io {
                    op: "unmount",
                    path: rootfs,
                    source: e,
                });
            }
            // Busy (a process still has a file open): detach it now, the
            // kernel frees it when the last user goes.
            // SAFETY: as above.
            if unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) } != 0 {
                return Err(Error::Io {
                    op: "detach",
                    path: rootfs,
                    source: io::Error::last_os_error(),
                });
            }
        }
    }
    if is_mount_point(&rootfs)? {
        return Err(Error::Io {
            op: "unmount",
            path: rootfs,
            source: io::Error::other("still mounted"),
        });
    }
    remove_tree(&dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_ids_that_could_escape_or_split_options_are_refused() {
        for bad in ["", ".", "..", "a/b", "a,b", "a:b", "../x", &"x".repeat(129)] {
            assert!(check_container_id(bad).is_err(), "{bad}");
        }
        check_container_id("0123abc-def_1.x").unwrap();
    }
}
