//! Resolving a container path inside the rootfs on the host, the way the
//! kernel would resolve it if the rootfs were `/`.
//!
//! Mount destinations, device paths and the like are container paths, but
//! they are acted on from the host side before pivot_root. A rootfs built
//! from an untrusted image may hold a symlink like `etc -> /host-etc` or
//! `x -> ../../../..`; joining naively would mount over the host's files.
//! Every symlink met on the way is read and re-resolved inside the rootfs,
//! and `..` stops at the rootfs's top, as it stops at `/`.
//!
//! Limits: resolution is path based, so it is safe against what is in the
//! rootfs when the container is set up (the image), not against a process
//! that swaps components concurrently; no container process runs yet at
//! that point.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io;
use std::path::{Component, Path, PathBuf};

/// Linux's limit on symlinks followed in one lookup (40) is lower; 255
/// matches filepath-securejoin and keeps a loop from spinning forever.
const MAX_SYMLINKS: usize = 255;

fn push_components(queue: &mut VecDeque<OsString>, p: &Path, front: bool) {
    let parts: Vec<OsString> = p
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some("..".into()),
            Component::CurDir | Component::RootDir | Component::Prefix(_) => None,
        })
        .collect();
    if front {
        for c in parts.into_iter().rev() {
            queue.push_front(c);
        }
    } else {
        queue.extend(parts);
    }
}

/// `root` joined with `unsafe_path`, with every symlink inside resolved as
/// if `root` were `/`. The result is always under `root` and, where it
/// exists, names no symlink (components that do not exist are kept as they
/// are: creating them cannot escape).
pub fn secure_join(root: &Path, unsafe_path: &Path) -> io::Result<PathBuf> {
    let mut pending = VecDeque::new();
    push_components(&mut pending, unsafe_path, false);
    let mut resolved: Vec<OsString> = Vec::new();
    let mut links = 0;
    while let Some(c) = pending.pop_front() {
        if c == ".." {
            resolved.pop();
            continue;
        }
        let mut candidate = root.to_path_buf();
        candidate.extend(&resolved);
        candidate.push(&c);
        match std::fs::symlink_metadata(&candidate) {
            Ok(m) if m.file_type().is_symlink() => {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(io::Error::from_raw_os_error(libc::ELOOP));
                }
                let target = std::fs::read_link(&candidate)?;
                if target.is_absolute() {
                    resolved.clear();
                }
                push_components(&mut pending, &target, true);
            }
            Ok(_) => resolved.push(c),
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::ENOTDIR)) => resolved.push(c),
            Err(e) => return Err(e),
        }
    }
    let mut out = root.to_path_buf();
    out.extend(&resolved);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn tree() -> (tempfile::TempDir, PathBuf) {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("rootfs");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::create_dir_all(root.join("usr/lib")).unwrap();
        (t, root)
    }

    #[test]
    fn plain_paths_join() {
        let (_t, root) = tree();
        assert_eq!(
            secure_join(&root, Path::new("/etc/hosts")).unwrap(),
            root.join("etc/hosts")
        );
        assert_eq!(secure_join(&root, Path::new("etc")).unwrap(), root.join("etc"));
        assert_eq!(secure_join(&root, Path::new("/")).unwrap(), root);
        assert_eq!(
            secure_join(&root, Path::new("/./usr/./lib/")).unwrap(),
            root.join("usr/lib")
        );
    }

    #[test]
    fn dotdot_stops_at_the_root() {
        let (_t, root) = tree();
        assert_eq!(
            secure_join(&root, Path::new("/../../../etc")).unwrap(),
            root.join("etc")
        );
        assert_eq!(secure_join(&root, Path::new("/usr/../../x")).unwrap(), root.join("x"));
        assert_eq!(
            secure_join(&root, Path::new("/missing/../../etc")).unwrap(),
            root.join("etc")
        );
    }

    #[test]
    fn absolute_symlink_stays_inside() {
        let (_t, root) = tree();
        symlink("/etc", root.join("cfg")).unwrap();
        assert_eq!(
            secure_join(&root, Path::new("/cfg/passwd")).unwrap(),
            root.join("etc/passwd")
        );
    }

    #[test]
    fn relative_escaping_symlink_stays_inside() {
        let (_t, root) = tree();
        symlink("../../../../../etc", root.join("usr/lib/up")).unwrap();
        assert_eq!(
            secure_join(&root, Path::new("/usr/lib/up/shadow")).unwrap(),
            root.join("etc/shadow")
        );
        symlink("..", root.join("dotdot")).unwrap();
        assert_eq!(
            secure_join(&root, Path::new("/dotdot/dotdot/etc")).unwrap(),
            root.join("etc")
        );
    }

    #[test]
    fn symlink_to_root_itself() {
        let (_t, root) = tree();
        symlink("/", root.join("slash")).unwrap();
        assert_eq!(secure_join(&root, Path::new("/slash")).unwrap(), root);
        assert_eq!(
            secure_join(&root, Path::new("/slash/../etc")).unwrap(),
            root.join("etc")
        );
    }

    #[test]
    fn nested_symlinks_resolve_each_step() {
        let (_t, root) = tree();
        // a -> b/c, b -> /usr, /usr/c -> ../../../lib64 (a dangling, escaping target)
        symlink("b/c", root.join("a")).unwrap();
        symlink("/usr", root.join("b")).unwrap();
        symlink("../../../lib64", root.join("usr/c")).unwrap();
        assert_eq!(secure_join(&root, Path::new("/a/x")).unwrap(), root.join("lib64/x"));
        // A relative symlink is relative to its own directory.
        symlink("lib", root.join("usr/l")).unwrap();
        assert_eq!(secure_join(&root, Path::new("/usr/l")).unwrap(), root.join("usr/lib"));
    }

    #[test]
    fn a_final_symlink_is_resolved_too() {
        let (_t, root) = tree();
        symlink("/etc/real", root.join("etc/link")).unwrap();
        assert_eq!(
            secure_join(&root, Path::new("/etc/link")).unwrap(),
            root.join("etc/real")
        );
    }

    #[test]
    fn the_result_is_always_under_the_root() {
        let (_t, root) = tree();
        symlink("/../..", root.join("s1")).unwrap();
        symlink("../s1/../..", root.join("etc/s2")).unwrap();
        for p in ["/s1", "/etc/s2", "/s1/etc/s2/x", "../../..", "/etc/s2/../../../tmp"] {
            let r = secure_join(&root, Path::new(p)).unwrap();
            assert!(r.starts_with(&root), "{p} -> {}", r.display());
        }
    }

    #[test]
    fn symlink_loops_fail_with_eloop() {
        let (_t, root) = tree();
        symlink("/loop2", root.join("loop1")).unwrap();
        symlink("loop1", root.join("loop2")).unwrap();
        let e = secure_join(&root, Path::new("/loop1/x")).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ELOOP));
    }

    #[test]
    fn a_file_in_the_middle_is_kept_lexically() {
        let (_t, root) = tree();
        std::fs::write(root.join("etc/file"), "").unwrap();
        assert_eq!(
            secure_join(&root, Path::new("/etc/file/x")).unwrap(),
            root.join("etc/file/x")
        );
    }
}
