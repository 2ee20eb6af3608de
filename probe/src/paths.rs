//! What the probe finds at a path (`PathInfo`), and the device listing.

use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

use crate::errno::io_error_name;
use crate::parse::{dev_major, dev_minor};
use crate::report::{DevNode, PathInfo};
use crate::sys;

/// How much `content` holds at most.
pub const READ_LIMIT: usize = 4096;

/// Character devices safe to read: null, zero, full, random, urandom.
const READABLE_CHAR_DEVICES: [(u64, u64); 5] = [(1, 3), (1, 5), (1, 7), (1, 8), (1, 9)];

/// The kind letter of a file type: `c`, `b`, `p`, `d`, `l`, `f`, `s`.
pub fn kind_letter(file_type: fs::FileType) -> &'static str {
    if file_type.is_symlink() {
        "l"
    } else if file_type.is_dir() {
        "d"
    } else if file_type.is_char_device() {
        "c"
    } else if file_type.is_block_device() {
        "b"
    } else if file_type.is_fifo() {
        "p"
    } else if file_type.is_socket() {
        "s"
    } else {
        "f"
    }
}

/// Whether a character device may be read without blocking or side effects.
pub fn char_device_readable(major: u64, minor: u64) -> bool {
    READABLE_CHAR_DEVICES.contains(&(major, minor))
}

/// Name of the scratch file a directory write test creates.
pub fn write_test_name(pid: u32) -> String {
    format!(".probe-write-test-{pid}")
}

/// Looks at `path` the way `PathInfo` documents: lstat, then a read and a
/// write attempt (following symlinks, as any program opening it would).
pub fn path_info(path: &str) -> PathInfo {
    let mut info = PathInfo::default();
    match fs::symlink_metadata(path) {
        Ok(meta) => {
            info.exists = true;
            info.kind = kind_letter(meta.file_type()).to_string();
            info.mode = meta.mode() & 0o7777;
            info.uid = meta.uid();
            info.gid = meta.gid();
            info.size = meta.size();
            if meta.file_type().is_char_device() || meta.file_type().is_block_device() {
                info.major = dev_major(meta.rdev());
                info.minor = dev_minor(meta.rdev());
            }
            if meta.file_type().is_symlink() {
                info.target = fs::read_link(path).ok().map(|t| t.to_string_lossy().into_owned());
            }
        }
        Err(err) => info.stat_error = Some(io_error_name(&err)),
    }
    // The attempts follow symlinks, so they go by what the path resolves to.
    let target = fs::metadata(path).ok();
    let is_dir = target.as_ref().is_some_and(|m| m.is_dir());
    if is_dir {
        attempt_dir(path, &mut info);
    } else {
        attempt_file(path, target.as_ref(), &mut info);
    }
    info.fs_readonly = sys::fs_readonly(OsStr::new(path)).unwrap_or(false);
    info
}

fn attempt_dir(path: &str, info: &mut PathInfo) {
    match fs::read_dir(path) {
        Ok(entries) => {
            // read_dir already leaves out `.` and `..`.
            let count = entries.filter(|e| e.is_ok()).count();
            info.dir_entries = Some(count as u64);
        }
        Err(err) => info.read_error = Some(io_error_name(&err)),
    }
    let scratch = Path::new(path).join(write_test_name(std::process::id()));
    let created = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(&scratch);
    match created {
        Ok(file) => {
            drop(file);
            let _ = fs::remove_file(&scratch);
        }
        Err(err) => info.write_error = Some(io_error_name(&err)),
    }
}

fn attempt_file(path: &str, target: Option<&fs::Metadata>, info: &mut PathInfo) {
    // O_NONBLOCK keeps fifos and terminals from blocking the open; O_NOCTTY
    // keeps a terminal from becoming the controlling one.
    let flags = libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC;
    match OpenOptions::new().read(true).custom_flags(flags).open(path) {
        Ok(file) => {
            let readable = target.is_some_and(|m| {
                m.file_type().is_file()
                    || (m.file_type().is_char_device()
                        && char_device_readable(dev_major(m.rdev()), dev_minor(m.rdev())))
            });
            if readable {
                match read_prefix(file) {
                    Ok(bytes) => info.content = Some(String::from_utf8_lossy(&bytes).into_owned()),
                    Err(err) => info.read_error = Some(io_error_name(&err)),
                }
            }
        }
        Err(err) => info.read_error = Some(io_error_name(&err)),
    }
    match OpenOptions::new().write(true).custom_flags(flags).open(path) {
        Ok(file) => drop(file),
        Err(err) => info.write_error = Some(io_error_name(&err)),
    }
}

fn read_prefix(file: File) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::with_capacity(READ_LIMIT);
    file.take(READ_LIMIT as u64).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Every entry directly under `dir`, lstat'ed, sorted by path. Entries that
/// vanish or cannot be stat'ed are left out.
pub fn dev_nodes(dir: &str) -> Vec<DevNode> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut nodes: Vec<DevNode> = entries
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let path = entry.path();
            let meta = fs::symlink_metadata(&path).ok()?;
            let ft = meta.file_type();
            let device = ft.is_char_device() || ft.is_block_device();
            Some(DevNode {
                path: String::from_utf8_lossy(path.as_os_str().as_bytes()).into_owned(),
                kind: kind_letter(ft).to_string(),
                major: if device { dev_major(meta.rdev()) } else { 0 },
                minor: if device { dev_minor(meta.rdev()) } else { 0 },
                mode: meta.mode() & 0o7777,
                uid: meta.uid(),
                gid: meta.gid(),
                target: if ft.is_symlink() {
                    fs::read_link(&path).ok().map(|t| t.to_string_lossy().into_owned())
                } else {
                    None
                },
            })
        })
        .collect();
    nodes.sort_by(|a, b| a.path.cmp(&b.path));
    nodes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("probe-paths-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn dev_null_is_a_readable_char_device() {
        let info = path_info("/dev/null");
        assert!(info.exists);
        assert_eq!(info.kind, "c");
        assert_eq!((info.major, info.minor), (1, 3));
        assert_eq!(info.content.as_deref(), Some(""));
        assert_eq!(info.read_error, None);
    }

    #[test]
    fn missing_paths_report_enoent() {
        let info = path_info("/nonexistent/probe/path");
        assert!(!info.exists);
        assert_eq!(info.stat_error.as_deref(), Some("ENOENT"));
        assert_eq!(info.read_error.as_deref(), Some("ENOENT"));
        assert_eq!(info.write_error.as_deref(), Some("ENOENT"));
        assert_eq!(info.kind, "");
    }

    #[test]
    fn files_dirs_and_symlinks() {
        let dir = scratch_dir("kinds");
        let file = dir.join("f");
        fs::write(&file, "hello").unwrap();
        std::os::unix::fs::symlink("f", dir.join("l")).unwrap();

        let f = path_info(file.to_str().unwrap());
        assert_eq!(f.kind, "f");
        assert_eq!(f.size, 5);
        assert_eq!(f.content.as_deref(), Some("hello"));
        assert_eq!(f.write_error, None);

        let l = path_info(dir.join("l").to_str().unwrap());
        assert_eq!(l.kind, "l");
        assert_eq!(l.target.as_deref(), Some("f"));
        assert_eq!(l.content.as_deref(), Some("hello"));

        let d = path_info(dir.to_str().unwrap());
        assert_eq!(d.kind, "d");
        assert_eq!(d.dir_entries, Some(2));
        assert_eq!(d.write_error, None);
        assert_eq!(d.content, None);
        // The write test cleaned up after itself.
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 2);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unsafe_char_devices_are_not_read() {
        assert!(char_device_readable(1, 9));
        assert!(!char_device_readable(5, 0));
        assert!(!char_device_readable(10, 130));
    }

    #[test]
    fn dev_listing_holds_null() {
        let nodes = dev_nodes("/dev");
        let null = nodes.iter().find(|n| n.path == "/dev/null").unwrap();
        assert_eq!((null.kind.as_str(), null.major, null.minor), ("c", 1, 3));
        assert!(dev_nodes("/nonexistent").is_empty());
    }
}
