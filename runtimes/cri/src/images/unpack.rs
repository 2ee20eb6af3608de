//! Unpacks one layer (a tar stream, gzip- or zstd-compressed or not) into a
//! directory that overlayfs uses as a lower layer.
//!
//! Every file is created relative to a directory descriptor that was opened
//! without following symlinks, so no entry can write outside the layer: a
//! `..` component is refused, an absolute path is taken relative to the
//! layer, and a path that goes through a symlink (or a non-directory) the
//! layer itself made is refused. Symlink targets are stored as they are:
//! they are resolved inside the container, never by the unpacker.
//!
//! Whiteouts (image-spec layer.md) become overlayfs whiteouts: `.wh.NAME` a
//! 0/0 character device NAME, `.wh..wh..opq` the `trusted.overlay.opaque`
//! attribute on its directory.

use std::ffi::{CStr, CString};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::digest::{Digest, HashReader};
use super::error::{Error, Result};

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE: &str = ".wh..wh..opq";
const OVERLAY_OPAQUE_XATTR: &CStr = c"trusted.overlay.opaque";

/// Unpacks the layer blob at `blob` into the existing empty directory `dest`
/// and checks that the uncompressed stream has the digest `diff_id` (the
/// image config's rootfs.diff_ids entry). Returns the uncompressed size.
pub fn unpack_layer(blob: &Path, dest: &Path, diff_id: &Digest) -> Result<u64> {
    let file = File::open(blob).map_err(Error::io("open layer blob", blob))?;
    let stream = decompress(BufReader::with_capacity(1 << 16, file)).map_err(Error::io("read layer blob", blob))?;
    let mut hashed = HashReader::new(stream);
    let what = format!("layer {diff_id}");
    unpack_tar(&mut hashed, dest, &what)?;
    // The digest covers the whole stream, including the zero blocks after
    // the archive's end that the tar reader leaves unread.
    io::copy(&mut hashed, &mut io::sink()).map_err(Error::io("read layer blob", blob))?;
    let (got, size) = hashed.finish();
    diff_id.verify(&format!("uncompressed {what}"), &got)?;
    Ok(size)
}

/// Recognises the compression by its magic number rather than trusting the
/// media type (Docker's and OCI's names differ, registries mislabel).
fn decompress<'a, R: BufRead + 'a>(mut r: R) -> io::Result<Box<dyn Read + 'a>> {
    let head = r.fill_buf()?;
    Ok(if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::bufread::MultiGzDecoder::new(r))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(ruzstd::decoding::StreamingDecoder::new(r).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?)
    } else {
        Box::new(r)
    })
}

/// Applies a tar stream to `dest`. `what` names the layer in errors.
pub fn unpack_tar<R: Read>(stream: R, dest: &Path, what: &str) -> Result<()> {
    let root = open_dir_path(dest)?;
    // The layer's root is the container's / unless an entry says otherwise.
    fchmod(&root, 0o755).map_err(Error::io("chmod", dest))?;
    let mut archive = tar::Archive::new(stream);
    let mut dir_times: Vec<(Vec<Vec<u8>>, u64)> = Vec::new();
    let entries = archive.entries().map_err(Error::io("read tar of", dest))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| Error::invalid(what, format!("bad tar entry: {e}")))?;
        let raw = entry.path_bytes().into_owned();
        let comps = components(&raw).map_err(|why| Error::invalid(what, entry_msg(&raw, why)))?;
        let kind = entry.header().entry_type();
        if matches!(kind, tar::EntryType::XGlobalHeader | tar::EntryType::XHeader) {
            continue;
        }
        let meta = Meta::of(&mut entry).map_err(|e| Error::invalid(what, entry_msg(&raw, &e.to_string())))?;
        let ctx = |op: &'static str| {
            let path = dest.join(String::from_utf8_lossy(&raw).trim_start_matches('/'));
            move |e: io::Error| Error::Io { op, path, source: e }
        };
        let Some((name, parents)) = comps.split_last() else {
            // "./": the layer's root directory itself.
            if kind == tar::EntryType::Directory {
                meta.apply_fd(&root).map_err(ctx("set attributes of"))?;
                dir_times.push((Vec::new(), meta.mtime));
            }
            continue;
        };
        let parent = walk(&root, parents, true).map_err(|e| walk_error(what, &raw, e))?;
        let name_s = String::from_utf8_lossy(name);
        if name_s == OPAQUE {
            set_xattr(&parent, OVERLAY_OPAQUE_XATTR, b"y").map_err(ctx("mark opaque"))?;
            continue;
        }
        if let Some(hidden) = name_s.strip_prefix(WHITEOUT_PREFIX) {
            if hidden.starts_with(".wh.") {
                continue; // AUFS bookkeeping (.wh..wh.plnk and the like): not content.
            }
            let hidden = cstring(hidden.as_bytes());
            remove_existing(&parent, &hidden, dest, &raw).map_err(ctx("replace"))?;
            mknod(&parent, &hidden, libc::S_IFCHR, 0).map_err(ctx("create whiteout"))?;
            continue;
        }
        let cname = cstring(name);
        let existing = fstatat(&parent, &cname).map_err(ctx("stat"))?;
        let keep_dir = kind == tar::EntryType::Directory && existing.is_some_and(|m| m & libc::S_IFMT == libc::S_IFDIR);
        if existing.is_some() && !keep_dir {
            remove_existing(&parent, &cname, dest, &raw).map_err(ctx("replace"))?;
        }
        match kind {
            tar::EntryType::Directory => {
                if !keep_dir {
                    // SAFETY: parent is an open directory fd, cname a NUL-terminated name.
                    cvt(unsafe { libc::mkdirat(parent.as_raw_fd(), cname.as_ptr(), 0o700) }).map_err(ctx("mkdir"))?;
                }
                let dir = openat_dir(&parent, &cname).map_err(ctx("open"))?;
                meta.apply_fd(&dir).map_err(ctx("set attributes of"))?;
                dir_times.push((comps.clone(), meta.mtime));
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                // SAFETY: as above; O_EXCL|O_NOFOLLOW create a new file, never follow a link.
                let fd = cvt(unsafe {
                    libc::openat(
                        parent.as_raw_fd(),
                        cname.as_ptr(),
                        libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                        0o600,
                    )
                })
                .map_err(ctx("create"))?;
                // SAFETY: fd was just returned by openat and is owned by nobody else.
                let mut file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
                io::copy(&mut entry, &mut file).map_err(ctx("write"))?;
                let fd: OwnedFd = file.into();
                meta.apply_fd(&fd).map_err(ctx("set attributes of"))?;
                set_times_fd(&fd, meta.mtime).map_err(ctx("set times of"))?;
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| Error::invalid(what, entry_msg(&raw, "symlink without target")))?;
                let target = cstring(&target);
                // SAFETY: both strings are NUL-terminated, parent is an open directory.
                cvt(unsafe { libc::symlinkat(target.as_ptr(), parent.as_raw_fd(), cname.as_ptr()) })
                    .map_err(ctx("symlink"))?;
                meta.apply_nofollow(&parent, &cname).map_err(ctx("set attributes of"))?;
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| Error::invalid(what, entry_msg(&raw, "hard link without target")))?;
                let tcomps = components(&target).map_err(|why| Error::invalid(what, entry_msg(&target, why)))?;
                let Some((tname, tparents)) = tcomps.split_last() else {
                    return Err(Error::invalid(what, entry_msg(&raw, "hard link to the layer's root")));
                };
                let tparent = walk(&root, tparents, false).map_err(|e| walk_error(what, &target, e))?;
                let tname = cstring(tname);
                // SAFETY: both directory fds are open, the names NUL-terminated; flags 0 links
                // the entry itself (never what a symlink points to).
                cvt(unsafe {
                    libc::linkat(
                        tparent.as_raw_fd(),
                        tname.as_ptr(),
                        parent.as_raw_fd(),
                        cname.as_ptr(),
                        0,
                    )
                })
                .map_err(ctx("hard link"))?;
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let (fmt, dev) = match kind {
                    tar::EntryType::Char => (libc::S_IFCHR, meta.dev),
                    tar::EntryType::Block => (libc::S_IFBLK, meta.dev),
                    _ => (libc::S_IFIFO, 0),
                };
                mknod(&parent, &cname, fmt, dev).map_err(ctx("mknod"))?;
                meta.apply_nofollow(&parent, &cname).map_err(ctx("set attributes of"))?;
                // SAFETY: parent open, cname NUL-terminated; the node was just made, not a link.
                cvt(unsafe { libc::fchmodat(parent.as_raw_fd(), cname.as_ptr(), meta.mode, 0) })
                    .map_err(ctx("chmod"))?;
            }
            other => {
                return Err(Error::invalid(
                    what,
                    entry_msg(&raw, &format!("unsupported tar entry type {other:?}")),
                ))
            }
        }
    }
    // Directory times last: creating their children changed them.
    for (comps, mtime) in dir_times.iter().rev() {
        if let Ok(dir) = walk(&root, comps, false) {
            set_times_fd(&dir, *mtime).map_err(Error::io(
                "set times of",
                dest.join(String::from_utf8_lossy(&comps.join(&b'/')).as_ref()),
            ))?;
        }
    }
    Ok(())
}

fn entry_msg(raw: &[u8], why: &str) -> String {
    format!("entry {:?}: {why}", String::from_utf8_lossy(raw))
}

/// The path's components relative to the layer root: `.` and empty ones
/// dropped (so `/etc` and `./etc` are `etc`), `..` refused.
fn components(raw: &[u8]) -> Result<Vec<Vec<u8>>, &'static str> {
    let mut out = Vec::new();
    for c in raw.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return Err("'..' would leave the layer"),
            c if c.contains(&0) => return Err("NUL in path"),
            c => out.push(c.to_vec()),
        }
    }
    Ok(out)
}

enum WalkError {
    NotDir(Vec<u8>),
    Io(io::Error),
}

fn walk_error(what: &str, raw: &[u8], e: WalkError) -> Error {
    match e {
        WalkError::NotDir(c) => Error::invalid(
            what,
            entry_msg(
                raw,
                &format!(
                    "goes through {:?}, a symlink or non-directory: refused",
                    String::from_utf8_lossy(&c)
                ),
            ),
        ),
        WalkError::Io(e) => Error::invalid(what, entry_msg(raw, &format!("cannot open its directory: {e}"))),
    }
}

/// Opens the directory `comps` below `root` one component at a time,
/// never following a symlink, creating missing ones when `create`.
fn walk(root: &OwnedFd, comps: &[Vec<u8>], create: bool) -> Result<OwnedFd, WalkError> {
    let mut cur = root.try_clone().map_err(WalkError::Io)?;
    for c in comps {
        let name = cstring(c);
        let next = match openat_dir(&cur, &name) {
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) && create => {
                // SAFETY: cur is an open directory, name NUL-terminated.
                cvt(unsafe { libc::mkdirat(cur.as_raw_fd(), name.as_ptr(), 0o755) }).map_err(WalkError::Io)?;
                openat_dir(&cur, &name)
            }
            r => r,
        };
        cur = match next {
            Ok(fd) => fd,
            Err(e) if matches!(e.raw_os_error(), Some(libc::ELOOP | libc::ENOTDIR)) => {
                return Err(WalkError::NotDir(c.clone()))
            }
            Err(e) => return Err(WalkError::Io(e)),
        };
    }
    Ok(cur)
}

fn open_dir_path(p: &Path) -> Result<OwnedFd> {
    let c = cstring(p.as_os_str().as_bytes());
    // SAFETY: c is NUL-terminated.
    let fd = cvt(unsafe { libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC) })
        .map_err(Error::io("open", p))?;
    // SAFETY: fd was just returned by open.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn openat_dir(dir: &OwnedFd, name: &CStr) -> io::Result<OwnedFd> {
    // SAFETY: dir is open, name NUL-terminated; O_NOFOLLOW makes a symlink fail with ELOOP.
    let fd = cvt(unsafe {
        libc::openat(
            dir.as_raw_fd(),
            name.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    })?;
    // SAFETY: fd was just returned by openat.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The file type bits of `name` in `dir`, None when absent.
fn fstatat(dir: &OwnedFd, name: &CStr) -> io::Result<Option<u32>> {
    // SAFETY: zeroed is a valid stat; fstatat fills it.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: dir open, name NUL-terminated, st a valid out pointer.
    match cvt(unsafe { libc::fstatat(dir.as_raw_fd(), name.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) }) {
        Ok(_) => Ok(Some(st.st_mode)),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Removes what a later entry replaces (a file, a link, or a whole
/// directory tree, which std removes without following symlinks).
fn remove_existing(dir: &OwnedFd, name: &CStr, dest: &Path, raw: &[u8]) -> io::Result<()> {
    match fstatat(dir, name)? {
        None => Ok(()),
        Some(m) if m & libc::S_IFMT == libc::S_IFDIR => {
            // The parents were opened with O_NOFOLLOW just now, so this path
            // names the same directory; the layer is private until renamed.
            let rel = String::from_utf8_lossy(raw).trim_start_matches('/').to_string();
            let path = dest.join(rel);
            let path = if name.to_bytes() != path.file_name().map(|n| n.as_bytes()).unwrap_or_default() {
                path.with_file_name(std::ffi::OsStr::from_bytes(name.to_bytes()))
            } else {
                path
            };
            std::fs::remove_dir_all(path)
        }
        // SAFETY: dir open, name NUL-terminated.
        Some(_) => cvt(unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), 0) }).map(drop),
    }
}

fn mknod(dir: &OwnedFd, name: &CStr, fmt: libc::mode_t, dev: libc::dev_t) -> io::Result<()> {
    // SAFETY: dir open, name NUL-terminated.
    cvt(unsafe { libc::mknodat(dir.as_raw_fd(), name.as_ptr(), fmt | 0o600, dev) }).map(drop)
}

fn fchmod(fd: &OwnedFd, mode: u32) -> io::Result<()> {
    // SAFETY: fd is open.
    cvt(unsafe { libc::fchmod(fd.as_raw_fd(), mode) }).map(drop)
}

fn set_xattr(fd: &OwnedFd, name: &CStr, value: &[u8]) -> io::Result<()> {
    // SAFETY: fd open, name NUL-terminated, value a valid slice of its length.
    cvt(unsafe { libc::fsetxattr(fd.as_raw_fd(), name.as_ptr(), value.as_ptr().cast(), value.len(), 0) }).map(drop)
}

fn set_times_fd(fd: &OwnedFd, mtime: u64) -> io::Result<()> {
    let t = libc::timespec {
        tv_sec: mtime as libc::time_t,
        tv_nsec: 0,
    };
    let times = [t, t];
    // SAFETY: fd open, times an array of two timespecs.
    cvt(unsafe { libc::futimens(fd.as_raw_fd(), times.as_ptr()) }).map(drop)
}

fn cstring(b: &[u8]) -> CString {
    // components() refused NULs; link targets with one are cut there.
    CString::new(b.split(|&c| c == 0).next().unwrap_or_default()).unwrap_or_default()
}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// Ownership, mode, times, device numbers and xattrs of an entry, PAX
/// records taking precedence over the ustar fields they extend.
struct Meta {
    uid: u32,
    gid: u32,
    mode: u32,
    mtime: u64,
    dev: libc::dev_t,
    xattrs: Vec<(CString, Vec<u8>)>,
}

impl Meta {
    fn of<R: Read>(entry: &mut tar::Entry<R>) -> io::Result<Meta> {
        let h = entry.header();
        let mut m = Meta {
            uid: h.uid()? as u32,
            gid: h.gid()? as u32,
            mode: h.mode()? & 0o7777,
            mtime: h.mtime().unwrap_or(0),
            // Only device entries carry numbers; other writers leave the fields blank.
            dev: match h.entry_type() {
                tar::EntryType::Char | tar::EntryType::Block => {
                    libc::makedev(h.device_major()?.unwrap_or(0), h.device_minor()?.unwrap_or(0))
                }
                _ => 0,
            },
            xattrs: Vec::new(),
        };
        if let Some(exts) = entry.pax_extensions()? {
            for ext in exts {
                let ext = ext?;
                let (Ok(key), value) = (ext.key(), ext.value_bytes()) else {
                    continue;
                };
                let num = || {
                    std::str::from_utf8(value)
                        .ok()
                        .and_then(|v| v.split('.').next()?.parse::<u64>().ok())
                };
                match key {
                    "uid" => m.uid = num().unwrap_or(m.uid as u64) as u32,
                    "gid" => m.gid = num().unwrap_or(m.gid as u64) as u32,
                    "mtime" => m.mtime = num().unwrap_or(m.mtime),
                    k => {
                        // Overlay's own attributes (opaque, redirect, metacopy)
                        // come only from whiteouts, never from a layer.
                        if let Some(x) = k
                            .strip_prefix("SCHILY.xattr.")
                            .filter(|x| !x.starts_with("trusted.overlay."))
                        {
                            m.xattrs.push((cstring(x.as_bytes()), value.to_vec()));
                        }
                    }
                }
            }
        }
        Ok(m)
    }

    /// chown before chmod: chown clears the set-id bits.
    fn apply_fd(&self, fd: &OwnedFd) -> io::Result<()> {
        // SAFETY: fd is open.
        cvt(unsafe { libc::fchown(fd.as_raw_fd(), self.uid, self.gid) })?;
        fchmod(fd, self.mode)?;
        for (name, value) in &self.xattrs {
            match set_xattr(fd, name, value) {
                Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => {}
                r => r?,
            }
        }
        Ok(())
    }

    /// For symlinks and device nodes, which cannot be opened safely.
    fn apply_nofollow(&self, dir: &OwnedFd, name: &CStr) -> io::Result<()> {
        // SAFETY: dir open, name NUL-terminated; AT_SYMLINK_NOFOLLOW changes the link itself.
        cvt(unsafe {
            libc::fchownat(
                dir.as_raw_fd(),
                name.as_ptr(),
                self.uid,
                self.gid,
                libc::AT_SYMLINK_NOFOLLOW,
            )
        })?;
        let t = libc::timespec {
            tv_sec: self.mtime as libc::time_t,
            tv_nsec: 0,
        };
        let times = [t, t];
        // SAFETY: as above, times an array of two timespecs.
        cvt(unsafe {
            libc::utimensat(
                dir.as_raw_fd(),
                name.as_ptr(),
                times.as_ptr(),
                libc::AT_SYMLINK_NOFOLLOW,
            )
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};

    /// A tar built entry by entry, the way a layer writer would.
    pub(crate) struct TarBuilder(tar::Builder<Vec<u8>>);

    impl TarBuilder {
        pub(crate) fn new() -> Self {
            TarBuilder(tar::Builder::new(Vec::new()))
        }

        fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(kind);
            h.set_mode(mode);
            h.set_size(size);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(1_700_000_000);
            h
        }

        pub(crate) fn dir(mut self, path: &str) -> Self {
            let mut h = Self::header(tar::EntryType::Directory, 0o755, 0);
            self.0.append_data(&mut h, path, io::empty()).unwrap();
            self
        }

        pub(crate) fn file(self, path: &str, data: &[u8]) -> Self {
            self.file_owned(path, data, 0o644, 0, 0)
        }

        pub(crate) fn file_owned(mut self, path: &str, data: &[u8], mode: u32, uid: u64, gid: u64) -> Self {
            let mut h = Self::header(tar::EntryType::Regular, mode, data.len() as u64);
            h.set_uid(uid);
            h.set_gid(gid);
            self.0.append_data(&mut h, path, data).unwrap();
            self
        }

        /// A raw name, written into the header as is (append_data refuses `..`).
        pub(crate) fn raw_file(mut self, path: &str, data: &[u8]) -> Self {
            let mut h = Self::header(tar::EntryType::Regular, 0o644, data.len() as u64);
            h.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
            h.set_cksum();
            self.0.append(&h, data).unwrap();
            self
        }

        pub(crate) fn symlink(mut self, path: &str, target: &str) -> Self {
            let mut h = Self::header(tar::EntryType::Symlink, 0o777, 0);
            self.0.append_link(&mut h, path, target).unwrap();
            self
        }

        pub(crate) fn hardlink(mut self, path: &str, target: &str) -> Self {
            let mut h = Self::header(tar::EntryType::Link, 0o644, 0);
            self.0.append_link(&mut h, path, target).unwrap();
            self
        }

        pub(crate) fn finish(self) -> Vec<u8> {
            self.0.into_inner().unwrap()
        }
    }

    fn unpack(tar: &[u8]) -> (tempfile::TempDir, Result<()>) {
        let dir = tempfile::tempdir().unwrap();
        let r = unpack_tar(tar, dir.path(), "test layer");
        (dir, r)
    }

    #[test]
    fn files_keep_content_ownership_and_modes() {
        let tar = TarBuilder::new()
            .dir("etc")
            .file_owned("etc/secret", b"s3cret", 0o4750, 1000, 1001)
            .file("usr/bin/tool", b"#!/bin/sh\n")
            .symlink("bin", "usr/bin")
            .symlink("abs", "/etc/secret")
            .hardlink("etc/same", "etc/secret")
            .finish();
        let (dir, r) = unpack(&tar);
        r.unwrap();
        let p = dir.path();
        let m = std::fs::metadata(p.join("etc/secret")).unwrap();
        assert_eq!(
            (m.uid(), m.gid(), m.permissions().mode() & 0o7777),
            (1000, 1001, 0o4750)
        );
        assert_eq!(std::fs::read(p.join("etc/secret")).unwrap(), b"s3cret");
        assert_eq!(m.mtime(), 1_700_000_000);
        assert_eq!(std::fs::read_link(p.join("abs")).unwrap(), Path::new("/etc/secret"));
        assert_eq!(std::fs::read_link(p.join("bin")).unwrap(), Path::new("usr/bin"));
        assert_eq!(std::fs::metadata(p.join("etc/same")).unwrap().ino(), m.ino());
        // Implicit parents are made, and directory times survive their children.
        assert!(p.join("usr/bin").is_dir());
        assert_eq!(std::fs::metadata(p.join("etc")).unwrap().mtime(), 1_700_000_000);
    }

    #[test]
    fn whiteouts_become_overlay_whiteouts() {
        let tar = TarBuilder::new()
            .dir("gone")
            .file("gone/.wh..wh..opq", b"")
            .file("gone/kept", b"this layer's own")
            .file("etc/.wh.passwd", b"")
            .file("etc/.wh..wh.plnk", b"")
            .finish();
        let (dir, r) = unpack(&tar);
        r.unwrap();
        let p = dir.path();
        let w = std::fs::symlink_metadata(p.join("etc/passwd")).unwrap();
        assert!(w.file_type().is_char_device());
        assert_eq!(w.rdev(), 0);
        assert!(!p.join("etc/.wh.passwd").exists() && !p.join("etc/.wh..wh.plnk").exists());
        let gone = CString::new(p.join("gone").as_os_str().as_bytes()).unwrap();
        let mut buf = [0u8; 8];
        // SAFETY: gone is NUL-terminated, buf a valid buffer of its length.
        let n = unsafe {
            libc::getxattr(
                gone.as_ptr(),
                OVERLAY_OPAQUE_XATTR.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        assert_eq!(n, 1, "trusted.overlay.opaque on gone: {}", io::Error::last_os_error());
        assert_eq!(buf[0], b'y');
        assert_eq!(std::fs::read(p.join("gone/kept")).unwrap(), b"this layer's own");
        assert!(!p.join("gone/.wh..wh..opq").exists());
    }

    #[test]
    fn dot_dot_is_refused() {
        let outside = tempfile::tempdir().unwrap();
        let name = format!("../{}/evil", outside.path().file_name().unwrap().to_str().unwrap());
        let tar = TarBuilder::new().raw_file(&name, b"x").finish();
        let (_dir, r) = unpack(&tar);
        let err = r.unwrap_err();
        assert!(
            matches!(err, Error::Invalid { .. }) && err.to_string().contains("'..'"),
            "{err}"
        );
        assert!(!outside.path().join("evil").exists());
    }

    #[test]
    fn writing_through_a_layer_symlink_is_refused() {
        let outside = tempfile::tempdir().unwrap();
        let tar = TarBuilder::new()
            .symlink("escape", outside.path().to_str().unwrap())
            .file("escape/evil", b"x")
            .finish();
        let (_dir, r) = unpack(&tar);
        let err = r.unwrap_err();
        assert!(err.to_string().contains("symlink or non-directory"), "{err}");
        assert!(!outside.path().join("evil").exists());
        // A hard link to a file outside, through the same symlink, is refused too.
        std::fs::write(outside.path().join("target"), b"host").unwrap();
        let tar = TarBuilder::new()
            .symlink("escape", outside.path().to_str().unwrap())
            .hardlink("h", "escape/target")
            .finish();
        let (dir, r) = unpack(&tar);
        assert!(r.is_err());
        assert!(!dir.path().join("h").exists());
    }

    #[test]
    fn absolute_entry_paths_stay_in_the_layer() {
        let tar = TarBuilder::new().raw_file("/abs/file", b"in").finish();
        let (dir, r) = unpack(&tar);
        r.unwrap();
        assert_eq!(std::fs::read(dir.path().join("abs/file")).unwrap(), b"in");
    }

    #[test]
    fn a_later_entry_replaces_an_earlier_one() {
        let tar = TarBuilder::new()
            .dir("x")
            .file("x/a", b"1")
            .file("x", b"now a file")
            .symlink("y", "x")
            .file("y", b"f")
            .finish();
        let (dir, r) = unpack(&tar);
        r.unwrap();
        assert_eq!(std::fs::read(dir.path().join("x")).unwrap(), b"now a file");
        assert!(std::fs::symlink_metadata(dir.path().join("y")).unwrap().is_file());
    }

    #[test]
    fn compressed_layers_are_verified_against_the_diff_id() {
        use std::io::Write;
        let tar = TarBuilder::new().file("a", b"hello").finish();
        let blob_dir = tempfile::tempdir().unwrap();
        let blob = blob_dir.path().join("blob");
        let mut gz = flate2::write::GzEncoder::new(File::create(&blob).unwrap(), flate2::Compression::fast());
        gz.write_all(&tar).unwrap();
        gz.finish().unwrap();
        let dest = tempfile::tempdir().unwrap();
        let size = unpack_layer(&blob, dest.path(), &Digest::of(&tar)).unwrap();
        assert_eq!(size, tar.len() as u64);
        assert_eq!(std::fs::read(dest.path().join("a")).unwrap(), b"hello");
        let dest = tempfile::tempdir().unwrap();
        let err = unpack_layer(&blob, dest.path(), &Digest::of(b"other")).unwrap_err();
        assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
        // Uncompressed layers are read as they are.
        std::fs::write(&blob, &tar).unwrap();
        let dest = tempfile::tempdir().unwrap();
        unpack_layer(&blob, dest.path(), &Digest::of(&tar)).unwrap();
    }

    #[test]
    fn pax_ownership_and_xattrs_apply() {
        let mut b = tar::Builder::new(Vec::new());
        b.append_pax_extensions([
            ("uid", &b"70000"[..]),
            ("SCHILY.xattr.user.note", &b"v"[..]),
            ("SCHILY.xattr.trusted.overlay.redirect", &b"/x"[..]),
        ])
        .unwrap();
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(1);
        h.set_mode(0o600);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        b.append_data(&mut h, "f", &b"z"[..]).unwrap();
        let tar = b.into_inner().unwrap();
        let (dir, r) = unpack(&tar);
        r.unwrap();
        let f = dir.path().join("f");
        assert_eq!(std::fs::metadata(&f).unwrap().uid(), 70000);
        let c = CString::new(f.as_os_str().as_bytes()).unwrap();
        let mut buf = [0u8; 8];
        // SAFETY: NUL-terminated names, a valid buffer of its length.
        let n = unsafe { libc::getxattr(c.as_ptr(), c"user.note".as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            assert_eq!(&buf[..n as usize], b"v");
        }
        // SAFETY: as above.
        let n = unsafe {
            libc::getxattr(
                c.as_ptr(),
                c"trusted.overlay.redirect".as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        assert!(n < 0, "an overlay attribute from a layer must not be applied");
    }
}
