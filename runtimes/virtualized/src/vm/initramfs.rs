//! The guest's initramfs: a base archive (the agent as `/init`, the kernel
//! modules the machine needs, the directories the agent mounts on), cached
//! and shared by every container, followed by a per-container archive that
//! packs the bundle (config.json rewritten for the guest, and the rootfs).
//! Both are uncompressed: under TCG the guest would pay for decompression
//! at emulated speed.

use std::collections::HashMap;
use std::fs;
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::cpio::{Meta, Writer};
use super::kernel::Kernel;
use super::{Error, Machine, Result};

/// Where the guest finds the packed bundle.
pub const GUEST_BUNDLE: &str = "/run/bundle";
/// The modules to load, in order, one absolute path a line.
pub const GUEST_MODULE_ORDER: &str = "/lib/modules/load-order";
/// Directories the agent mounts on or works in.
pub const GUEST_DIRS: &[&str] = &[
    "dev",
    "proc",
    "sys",
    "tmp",
    "run",
    "run/oci",
    "mnt",
    "lib",
    "lib/modules",
];
/// Bumped whenever the base archive's layout changes, so cached ones are
/// not reused across it.
const LAYOUT: u32 = 1;
/// Largest per-container archive: the guest holds it in RAM twice (the
/// initrd image and the unpacked files) until the kernel frees the image.
pub const DEFAULT_BUNDLE_CAP: u64 = 512 << 20;

fn io_err(what: &'static str, path: &Path) -> impl FnOnce(io::Error) -> Error {
    let path = path.to_path_buf();
    move |source| Error::Io { what, path, source }
}

/// The modules (paths relative to `/lib/modules/<release>`) that `wanted`
/// need, dependencies first, each once, from a `modules.dep` text.
pub fn module_closure(dep_text: &str, wanted: &[&str]) -> Result<Vec<String>> {
    let mut deps: HashMap<&str, Vec<&str>> = HashMap::new();
    let mut by_name: HashMap<String, &str> = HashMap::new();
    for line in dep_text.lines() {
        let Some((m, rest)) = line.split_once(':') else {
            continue;
        };
        deps.insert(m, rest.split_whitespace().collect());
        by_name.insert(module_name(m), m);
    }
    fn visit<'a>(
        m: &'a str,
        deps: &HashMap<&'a str, Vec<&'a str>>,
        seen: &mut Vec<&'a str>,
        stack: &mut Vec<&'a str>,
    ) -> Result<()> {
        if seen.contains(&m) {
            return Ok(());
        }
        if stack.contains(&m) {
            return Err(Error::Config(format!("modules.dep: dependency cycle through {m}")));
        }
        stack.push(m);
        // modules.dep lists a module's whole closure; visiting each entry in
        // turn (depth first) puts every dependency before its users whatever
        // order the line has.
        for d in deps.get(m).into_iter().flatten() {
            visit(d, deps, seen, stack)?;
        }
        stack.pop();
        seen.push(m);
        Ok(())
    }
    let mut seen = Vec::new();
    for w in wanted {
        let m = by_name
            .get(*w)
            .ok_or_else(|| Error::Config(format!("kernel module {w} is not in modules.dep")))?;
        visit(m, &deps, &mut seen, &mut Vec::new())?;
    }
    Ok(seen.into_iter().map(str::to_string).collect())
}

/// `kernel/drivers/virtio/virtio_pci.ko[.xz]` → `virtio_pci` (dashes and
/// underscores are one to modprobe).
fn module_name(path: &str) -> String {
    let file = path.rsplit('/').next().unwrap_or(path);
    file.split(".ko").next().unwrap_or(file).replace('-', "_")
}

/// The prefix of an ELF64 file that its program headers cover: what the
/// kernel and a static-pie loader read. Debug sections and the section
/// header table after it are dropped (a debug build of the agent shrinks
/// from ~50 MB to a few), and the header is told there are no sections.
/// `None` if this is not a little-endian ELF64 file.
pub fn strip_elf(mut bytes: Vec<u8>) -> Option<Vec<u8>> {
    if bytes.len() < 64 || bytes[..4] != *b"\x7fELF" || bytes[4] != 2 || bytes[5] != 1 {
        return None;
    }
    let u16_at = |b: &[u8], o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as u64;
    let u64_at = |b: &[u8], o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap());
    let phoff = u64_at(&bytes, 0x20);
    let phentsize = u16_at(&bytes, 0x36);
    let phnum = u16_at(&bytes, 0x38);
    let mut end = phoff.checked_add(phentsize * phnum)?;
    for i in 0..phnum {
        let ph = usize::try_from(phoff + i * phentsize).ok()?;
        if ph + 56 > bytes.len() {
            return None;
        }
        end = end.max(u64_at(&bytes, ph + 8).checked_add(u64_at(&bytes, ph + 32))?);
    }
    let end = usize::try_from(end).ok()?;
    if end > bytes.len() {
        return None;
    }
    bytes.truncate(end);
    bytes[0x28..0x30].fill(0); // e_shoff
    bytes[0x3c..0x40].fill(0); // e_shnum, e_shstrndx
    Some(bytes)
}

/// What identifies the running binary: a rebuilt agent gets a new base
/// archive.
pub(crate) fn exe_identity(exe: &Path) -> Result<String> {
    let m = fs::metadata(exe).map_err(io_err("reading", exe))?;
    Ok(format!(
        "{}:{}:{}:{}.{}",
        m.dev(),
        m.ino(),
        m.size(),
        m.mtime(),
        m.mtime_nsec()
    ))
}

pub(crate) fn fnv64(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

/// The directory the base archives are cached in: `OCI_VM_CACHE`, else
/// /var/cache/virtualized.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("OCI_VM_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/virtualized"))
}

/// The cached base archive for `agent` (the binary that becomes `/init`),
/// `kernel` and `machine`, written first if missing (atomically: a
/// concurrent writer's rename replaces an identical file).
pub fn base_archive(
    cache: &Path,
    agent: &Path,
    kernel: &Kernel,
    modules_root: &Path,
    machine: Machine,
) -> Result<PathBuf> {
    let key = format!(
        "{LAYOUT}|{}|{}|{}",
        exe_identity(agent)?,
        kernel.release,
        machine.name()
    );
    let path = cache.join(format!("base-{:016x}.cpio", fnv64(&key)));
    if path.is_file() {
        return Ok(path);
    }
    fs::create_dir_all(cache).map_err(io_err("creating", cache))?;
    let tmp = cache.join(format!(".base-{}-{:x}.tmp", std::process::id(), fnv64(&key)));
    let written = write_base(&tmp, agent, kernel, modules_root, machine);
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    fs::rename(&tmp, &path).map_err(io_err("renaming into place", &path))?;
    prune(cache, &path);
    Ok(path)
}

/// Drops base archives and extracted kernels not used for a day (one per
/// agent build otherwise piles up).
fn prune(cache: &Path, keep: &Path) {
    let Ok(entries) = fs::read_dir(cache) else { return };
    let day = std::time::Duration::from_secs(24 * 3600);
    for e in entries.flatten() {
        let p = e.path();
        let stale = e
            .metadata()
            .and_then(|m| m.accessed())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > day);
        if p != keep && stale && p.extension().is_some_and(|x| x == "cpio" || x == "vmlinux") {
            let _ = fs::remove_file(p);
        }
    }
}

fn write_base(out: &Path, agent: &Path, kernel: &Kernel, modules_root: &Path, machine: Machine) -> Result<()> {
    let file = fs::File::create(out).map_err(io_err("creating", out))?;
    let mut w = Writer::new(BufWriter::new(file));
    let werr = io_err("writing", out);
    let result = (|| -> io::Result<std::result::Result<(), Error>> {
        for d in GUEST_DIRS {
            w.dir(d, Meta::new(0o755))?;
        }
        // The kernel opens /dev/console for init's stdio before anyone has
        // mounted devtmpfs.
        w.special("dev/console", Meta::new(libc::S_IFCHR | 0o600), (5, 1))?;
        let exe = match fs::read(agent) {
            Ok(b) => b,
            Err(e) => return Ok(Err(io_err("reading the agent", agent)(e))),
        };
        let exe = strip_elf(exe.clone()).unwrap_or(exe);
        w.bytes("init", Meta::new(0o755), &exe)?;

        let mod_dir = modules_root.join(&kernel.release);
        let dep_path = mod_dir.join("modules.dep");
        let dep = match fs::read_to_string(&dep_path) {
            Ok(t) => t,
            Err(e) => return Ok(Err(io_err("reading", &dep_path)(e))),
        };
        let order = match module_closure(&dep, machine.modules()) {
            Ok(o) => o,
            Err(e) => return Ok(Err(e)),
        };
        let guest_dir = format!("lib/modules/{}", kernel.release);
        let mut made = vec![guest_dir.clone()];
        w.dir(&guest_dir, Meta::new(0o755))?;
        let mut list = String::new();
        for m in &order {
            let rel = Path::new(m);
            let mut dir = PathBuf::from(&guest_dir);
            for c in rel.parent().into_iter().flat_map(|p| p.components()) {
                dir.push(c);
                let d = dir.to_string_lossy().into_owned();
                if !made.contains(&d) {
                    w.dir(&d, Meta::new(0o755))?;
                    made.push(d);
                }
            }
            let host = mod_dir.join(rel);
            let bytes = match fs::read(&host) {
                Ok(b) => b,
                Err(e) => return Ok(Err(io_err("reading module", &host)(e))),
            };
            let guest = format!("{guest_dir}/{m}");
            w.bytes(&guest, Meta::new(0o644), &bytes)?;
            list.push_str(&format!("/{guest}\n"));
        }
        w.bytes(GUEST_MODULE_ORDER, Meta::new(0o644), list.as_bytes())?;
        Ok(Ok(()))
    })();
    match result {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(e),
        Err(e) => return Err(werr(e)),
    }
    let buf = w.finish().map_err(io_err("writing", out))?;
    let file = buf.into_inner().map_err(|e| io_err("writing", out)(e.into_error()))?;
    file.sync_all().map_err(io_err("syncing", out))
}

/// A host file or tree (a bind mount's source, a createContainer hook's
/// binary) packed into the guest at `guest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackedMount {
    pub host: PathBuf,
    pub guest: String,
}

/// The hook kinds whose path is resolved and run in the runtime namespace
/// (config.md, POSIX-platform Hooks). A VM runtime's is the host's: the
/// shim runs them there, and the guest's config does not hold them, so
/// they run once.
pub const HOST_HOOKS: [&str; 4] = ["prestart", "createRuntime", "poststart", "poststop"];

/// What goes into the guest for one bundle.
#[derive(Debug, Clone, PartialEq)]
pub struct GuestBundle {
    /// config.json as the guest reads it.
    pub config: Value,
    /// The host rootfs, packed at `/run/bundle/rootfs`.
    pub rootfs: PathBuf,
    /// Bind-mount sources, packed under `/run/bundle/mounts`.
    pub mounts: Vec<PackedMount>,
    /// createContainer hook binaries, packed under `/run/bundle/hooks`.
    pub hooks: Vec<PackedMount>,
}

fn is_bind(m: &Value) -> bool {
    m.get("type").and_then(Value::as_str) == Some("bind")
        || m.get("options")
            .and_then(Value::as_array)
            .is_some_and(|o| o.iter().any(|x| matches!(x.as_str(), Some("bind" | "rbind"))))
}

/// The bundle's config.json as the guest needs it: `root.path` is
/// `rootfs` (packed beside it), and each bind mount whose source is a host
/// regular file or directory outside /dev points at its packed copy under
/// `/run/bundle/mounts/N`. Hooks: see [`rewrite_hooks`].
pub fn rewrite_config(cfg: Value, bundle: &Path) -> Result<GuestBundle> {
    rewrite_config_in(cfg, bundle, GUEST_BUNDLE)
}

/// [`rewrite_config`] for a bundle the guest holds at `guest_dir`.
pub fn rewrite_config_in(mut cfg: Value, bundle: &Path, guest_dir: &str) -> Result<GuestBundle> {
    let root = cfg
        .pointer("/root/path")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::Config(format!("{}/config.json: root.path is missing", bundle.display())))?;
    let rootfs = bundle.join(root);
    cfg["root"]["path"] = Value::from("rootfs");
    let mut mounts = Vec::new();
    if let Some(list) = cfg.get_mut("mounts").and_then(Value::as_array_mut) {
        for m in list.iter_mut().filter(|m| is_bind(m)) {
            let Some(src) = m.get("source").and_then(Value::as_str) else {
                continue;
            };
            if src == "/dev" || src.starts_with("/dev/") {
                continue;
            }
            let host = bundle.join(src);
            let Ok(meta) = fs::metadata(&host) else { continue };
            if !(meta.is_file() || meta.is_dir()) {
                continue;
            }
            let guest = format!("{guest_dir}/mounts/{}", mounts.len());
            m["source"] = Value::from(guest.clone());
            mounts.push(PackedMount { host, guest });
        }
    }
    let hooks = rewrite_hooks(&mut cfg, guest_dir);
    Ok(GuestBundle {
        config: cfg,
        rootfs,
        mounts,
        hooks,
    })
}

/// The guest's hooks: the kinds of [`HOST_HOOKS`] are removed (the shim
/// runs them on the host). A createContainer hook's path is resolved in the
/// runtime namespace, the host's, but the hook runs in the container's
/// namespaces, in the guest: its binary (the host file the path names,
/// symlinks followed) is packed at `/run/bundle/hooks/N`, once per file,
/// and the path points there. A path that names no regular file on the host
/// is left as it is, to fail in the guest when the hook's turn comes, as it
/// would natively. startContainer paths are the container's and stay.
/// Only the binary travels: an interpreter or shared libraries it needs
/// must be in the guest.
fn rewrite_hooks(cfg: &mut Value, guest_dir: &str) -> Vec<PackedMount> {
    let mut packed: Vec<PackedMount> = Vec::new();
    let Some(hooks) = cfg.get_mut("hooks").and_then(Value::as_object_mut) else {
        return packed;
    };
    for kind in HOST_HOOKS {
        hooks.remove(kind);
    }
    let Some(list) = hooks.get_mut("createContainer").and_then(Value::as_array_mut) else {
        return packed;
    };
    for h in list {
        let Some(path) = h.get("path").and_then(Value::as_str).map(Path::new) else {
            continue;
        };
        if !path.is_absolute() {
            continue;
        }
        let Ok(host) = fs::canonicalize(path) else { continue };
        if !fs::metadata(&host).is_ok_and(|m| m.is_file()) {
            continue;
        }
        let guest = match packed.iter().find(|p| p.host == host) {
            Some(p) => p.guest.clone(),
            None => {
                let guest = format!("{guest_dir}/hooks/{}", packed.len());
                packed.push(PackedMount {
                    host,
                    guest: guest.clone(),
                });
                guest
            }
        };
        h["path"] = Value::from(guest);
    }
    packed
}

/// Packs host trees into an archive under a size cap.
struct Packer<'a, W: Write> {
    w: &'a mut Writer<W>,
    cap: u64,
    out: &'a Path,
}

impl<W: Write> Packer<'_, W> {
    fn check_cap(&self, host: &Path, size: u64) -> Result<()> {
        let total = self.w.written() + size;
        if total > self.cap {
            return Err(Error::TooBig {
                path: host.to_path_buf(),
                size,
                total,
                cap: self.cap,
            });
        }
        Ok(())
    }

    fn werr(&self) -> impl FnOnce(io::Error) -> Error {
        io_err("writing", self.out)
    }

    /// Packs `host` (not following a symlink at it) at `guest`, and what is
    /// under it when it is a directory.
    fn tree(&mut self, host: &Path, guest: &str) -> Result<()> {
        let md = fs::symlink_metadata(host).map_err(io_err("reading", host))?;
        let meta = Meta {
            mode: md.mode(),
            uid: md.uid(),
            gid: md.gid(),
            mtime: md.mtime().clamp(0, u32::MAX as i64) as u32,
        };
        let ft = md.file_type();
        if ft.is_dir() {
            self.w.dir(guest, meta).map_err(self.werr())?;
            let mut names: Vec<_> = fs::read_dir(host)
                .map_err(io_err("reading", host))?
                .map(|e| e.map(|e| e.file_name()))
                .collect::<io::Result<_>>()
                .map_err(io_err("reading", host))?;
            names.sort();
            for n in names {
                let child = format!("{guest}/{}", n.to_string_lossy());
                self.tree(&host.join(&n), &child)?;
            }
        } else if ft.is_file() {
            self.check_cap(host, md.size())?;
            let mut f = fs::File::open(host).map_err(io_err("opening", host))?;
            self.w.file(guest, meta, md.size(), &mut f).map_err(self.werr())?;
        } else if ft.is_symlink() {
            let target = fs::read_link(host).map_err(io_err("reading link", host))?;
            use std::os::unix::ffi::OsStrExt;
            self.w
                .symlink(guest, meta, target.as_os_str().as_bytes())
                .map_err(self.werr())?;
        } else if ft.is_char_device() || ft.is_block_device() || ft.is_fifo() {
            let rdev = (libc::major(md.rdev()), libc::minor(md.rdev()));
            self.w.special(guest, meta, rdev).map_err(self.werr())?;
        }
        // Sockets are left out: one bound on the host means nothing in the
        // guest.
        Ok(())
    }
}

/// Writes the per-container archive of `bundle` to `w`: config.json
/// rewritten, the rootfs, and the bind-mount sources and createContainer
/// hook binaries it packs.
pub fn write_bundle<W: Write>(w: &mut Writer<W>, bundle: &Path, out: &Path, cap: u64) -> Result<()> {
    write_bundle_in(w, bundle, out, cap, GUEST_BUNDLE)
}

/// [`write_bundle`] for a bundle the guest holds at `guest_dir` (a further
/// container of a pod's VM), its parents included.
pub fn write_bundle_in<W: Write>(
    w: &mut Writer<W>,
    bundle: &Path,
    out: &Path,
    cap: u64,
    guest_dir: &str,
) -> Result<()> {
    let cfg_path = bundle.join("config.json");
    let text = fs::read(&cfg_path).map_err(io_err("reading", &cfg_path))?;
    let cfg: Value =
        serde_json::from_slice(&text).map_err(|e| Error::Config(format!("{}: {e}", cfg_path.display())))?;
    let g = rewrite_config_in(cfg, bundle, guest_dir)?;
    let guest_dir = guest_dir.trim_start_matches('/');
    // The guest has its top-level directories (GUEST_DIRS); the ones
    // below are the archive's.
    let mut parent = String::new();
    for (depth, part) in guest_dir.split('/').enumerate() {
        if depth > 0 {
            parent.push('/');
        }
        parent.push_str(part);
        if depth > 0 {
            w.dir(&parent, Meta::new(0o755)).map_err(io_err("writing", out))?;
        }
    }
    let json = serde_json::to_vec(&g.config).expect("a Value serializes");
    w.bytes(&format!("{guest_dir}/config.json"), Meta::new(0o644), &json)
        .map_err(io_err("writing", out))?;
    let mut p = Packer { w, cap, out };
    p.tree(&g.rootfs, &format!("{guest_dir}/rootfs"))?;
    for (dir, files) in [("mounts", &g.mounts), ("hooks", &g.hooks)] {
        if !files.is_empty() {
            p.w.dir(&format!("{guest_dir}/{dir}"), Meta::new(0o755))
                .map_err(io_err("writing", out))?;
        }
        for m in files {
            p.tree(&m.host, &m.guest)?;
        }
    }
    Ok(())
}

/// The initrd QEMU loads for one container: a copy of `base` (copy_file_range:
/// no trip through user space) with the bundle's archive appended. Returns
/// its size.
pub fn assemble(base: &Path, bundle: &Path, out: &Path, cap: u64) -> Result<u64> {
    fs::copy(base, out).map_err(io_err("copying the base archive to", out))?;
    let f = fs::OpenOptions::new()
        .append(true)
        .open(out)
        .map_err(io_err("opening", out))?;
    let mut w = Writer::new(BufWriter::with_capacity(1 << 20, f));
    write_bundle(&mut w, bundle, out, cap)?;
    let buf = w.finish().map_err(io_err("writing", out))?;
    buf.into_inner().map_err(|e| io_err("writing", out)(e.into_error()))?;
    Ok(fs::metadata(out).map_err(io_err("reading", out))?.len())
}

#[cfg(test)]
mod tests {
    use super::super::cpio::tests::read_all;
    use super::*;

    const DEP: &str = "\
kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/virtio/virtio_mmio.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_legacy_dev.ko kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_pci_legacy_dev.ko:
kernel/drivers/virtio/virtio_pci_modern_dev.ko:
kernel/drivers/char/virtio_console.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
";

    fn names(v: &[String]) -> Vec<String> {
        v.iter().map(|m| module_name(m)).collect()
    }

    #[test]
    fn dependencies_come_first_and_once() {
        let o = module_closure(DEP, &["virtio_mmio", "virtio_console"]).unwrap();
        assert_eq!(names(&o), ["virtio_ring", "virtio", "virtio_mmio", "virtio_console"]);
        let o = module_closure(DEP, &["virtio_pci", "virtio_console"]).unwrap();
        assert_eq!(
            names(&o),
            [
                "virtio_pci_legacy_dev",
                "virtio_pci_modern_dev",
                "virtio_ring",
                "virtio",
                "virtio_pci",
                "virtio_console"
            ]
        );
        let e = module_closure(DEP, &["9pnet_virtio"]).unwrap_err().to_string();
        assert!(e.contains("9pnet_virtio"), "{e}");
    }

    #[test]
    fn a_cycle_is_an_error_not_a_hang() {
        let e = module_closure("a.ko: b.ko\nb.ko: a.ko\n", &["a"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("cycle"), "{e}");
    }

    #[test]
    fn the_installed_modules_close_over_their_dependencies() {
        let Ok(k) = super::super::kernel::find(None, None, Path::new("/boot")) else {
            eprintln!("skipped: no kernel in /boot");
            return;
        };
        let Ok(dep) = fs::read_to_string(format!("/lib/modules/{}/modules.dep", k.release)) else {
            eprintln!("skipped: no modules.dep for {}", k.release);
            return;
        };
        for machine in [Machine::Microvm, Machine::Q35] {
            let o = module_closure(&dep, machine.modules()).unwrap();
            let n = names(&o);
            for m in machine.modules() {
                assert!(n.contains(&m.to_string()), "{m} missing from {n:?}");
            }
            // Everything a module depends on is listed before it.
            for (i, m) in o.iter().enumerate() {
                let line = dep.lines().find(|l| l.starts_with(&format!("{m}:"))).unwrap();
                for d in line.split_once(':').unwrap().1.split_whitespace() {
                    assert!(o[..i].iter().any(|x| x == d), "{d} not before {m}");
                }
            }
        }
    }

    #[test]
    fn config_is_rewritten_for_the_guest() {
        let t = tempfile::tempdir().unwrap();
        let b = t.path();
        fs::write(b.join("hosts"), b"127.0.0.1 x\n").unwrap();
        fs::create_dir(b.join("data")).unwrap();
        let cfg = serde_json::json!({
            "root": {"path": "/elsewhere/rootfs", "readonly": true},
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/etc/hosts", "type": "bind", "source": b.join("hosts"), "options": ["ro"]},
                {"destination": "/data", "source": "data", "options": ["rbind"]},
                {"destination": "/dev/null2", "type": "bind", "source": "/dev/null"},
                {"destination": "/gone", "type": "bind", "source": "/does/not/exist"}
            ]
        });
        let GuestBundle {
            config: c,
            rootfs,
            mounts: packed,
            hooks,
        } = rewrite_config(cfg, b).unwrap();
        assert!(hooks.is_empty());
        assert_eq!(rootfs, PathBuf::from("/elsewhere/rootfs"));
        assert_eq!(c["root"], serde_json::json!({"path": "rootfs", "readonly": true}));
        assert_eq!(c["mounts"][0]["source"], "proc");
        assert_eq!(c["mounts"][1]["source"], "/run/bundle/mounts/0");
        assert_eq!(c["mounts"][2]["source"], "/run/bundle/mounts/1");
        assert_eq!(c["mounts"][3]["source"], "/dev/null");
        assert_eq!(c["mounts"][4]["source"], "/does/not/exist");
        assert_eq!(
            packed,
            [
                PackedMount {
                    host: b.join("hosts"),
                    guest: "/run/bundle/mounts/0".into()
                },
                PackedMount {
                    host: b.join("data"),
                    guest: "/run/bundle/mounts/1".into()
                },
            ]
        );
    }

    #[test]
    fn host_hooks_leave_the_guest_and_create_container_binaries_travel() {
        let t = tempfile::tempdir().unwrap();
        let b = t.path();
        fs::write(b.join("hook"), b"#!hook").unwrap();
        std::os::unix::fs::symlink(b.join("hook"), b.join("alias")).unwrap();
        fs::write(b.join("other"), b"#!other").unwrap();
        let host = |p: &str| serde_json::json!([{"path": b.join(p), "args": ["x", p]}]);
        let cfg = serde_json::json!({
            "root": {"path": "rootfs"},
            "hooks": {
                "prestart": host("hook"),
                "createRuntime": host("hook"),
                "createContainer": [
                    {"path": b.join("hook"), "args": ["h", "1"], "env": ["A=1"], "timeout": 3},
                    {"path": b.join("other")},
                    {"path": b.join("alias")},
                    {"path": "/does/not/exist"},
                    {"path": "relative"}
                ],
                "startContainer": [{"path": "/in/the/container"}],
                "poststart": host("hook"),
                "poststop": host("hook")
            }
        });
        let g = rewrite_config(cfg, b).unwrap();
        let hooks = g.config["hooks"].as_object().unwrap();
        let mut kinds: Vec<&str> = hooks.keys().map(String::as_str).collect();
        kinds.sort();
        assert_eq!(kinds, ["createContainer", "startContainer"]);
        let cc = &hooks["createContainer"];
        // Only the path changes; the same file (through a symlink too) is
        // packed once.
        assert_eq!(
            cc[0],
            serde_json::json!({"path": "/run/bundle/hooks/0", "args": ["h", "1"], "env": ["A=1"], "timeout": 3})
        );
        assert_eq!(cc[1]["path"], "/run/bundle/hooks/1");
        assert_eq!(cc[2]["path"], "/run/bundle/hooks/0");
        assert_eq!(cc[3]["path"], "/does/not/exist");
        assert_eq!(cc[4]["path"], "relative");
        assert_eq!(hooks["startContainer"][0]["path"], "/in/the/container");
        let real = fs::canonicalize(b).unwrap();
        assert_eq!(
            g.hooks,
            [
                PackedMount {
                    host: real.join("hook"),
                    guest: "/run/bundle/hooks/0".into()
                },
                PackedMount {
                    host: real.join("other"),
                    guest: "/run/bundle/hooks/1".into()
                },
            ]
        );
        assert!(g.mounts.is_empty());
    }

    fn small_bundle(b: &Path) {
        let r = b.join("rootfs");
        fs::create_dir_all(r.join("bin")).unwrap();
        fs::write(r.join("bin/tool"), b"#!tool").unwrap();
        fs::set_permissions(r.join("bin/tool"), std::os::unix::fs::PermissionsExt::from_mode(0o751)).unwrap();
        std::os::unix::fs::symlink("bin/tool", r.join("t")).unwrap();
        std::os::unix::fs::chown(r.join("bin/tool"), Some(1000), Some(1001)).ok();
        fs::write(b.join("extra"), b"xx").unwrap();
        fs::write(b.join("hook"), b"#!hook").unwrap();
        fs::set_permissions(b.join("hook"), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let hook = serde_json::json!([{"path": b.join("hook")}]);
        let cfg = serde_json::json!({
            "root": {"path": "rootfs"},
            "mounts": [{"destination": "/x", "type": "bind", "source": b.join("extra")}],
            "hooks": {"prestart": hook, "createContainer": hook}
        });
        fs::write(b.join("config.json"), cfg.to_string()).unwrap();
    }

    #[test]
    fn the_bundle_archive_holds_config_rootfs_and_mounts() {
        let t = tempfile::tempdir().unwrap();
        small_bundle(t.path());
        let out = t.path().join("out");
        let mut w = Writer::new(Vec::new());
        write_bundle(&mut w, t.path(), &out, DEFAULT_BUNDLE_CAP).unwrap();
        let got = read_all(&w.finish().unwrap());
        let find = |n: &str| {
            got.iter()
                .find(|e| e.name == n)
                .unwrap_or_else(|| panic!("{n}: {got:?}"))
        };
        let cfg: Value = serde_json::from_slice(&find("run/bundle/config.json").data).unwrap();
        assert_eq!(cfg["mounts"][0]["source"], "/run/bundle/mounts/0");
        let tool = find("run/bundle/rootfs/bin/tool");
        assert_eq!(tool.mode, libc::S_IFREG | 0o751);
        assert_eq!(tool.data, b"#!tool");
        let md = fs::metadata(t.path().join("rootfs/bin/tool")).unwrap();
        assert_eq!((tool.uid, tool.gid), (md.uid(), md.gid()));
        assert_eq!(find("run/bundle/rootfs/t").data, b"bin/tool");
        assert_eq!(find("run/bundle/mounts/0").data, b"xx");
        assert!(cfg["hooks"].get("prestart").is_none());
        assert_eq!(cfg["hooks"]["createContainer"][0]["path"], "/run/bundle/hooks/0");
        let hook = find("run/bundle/hooks/0");
        assert_eq!((hook.mode, &hook.data[..]), (libc::S_IFREG | 0o755, &b"#!hook"[..]));
        // Parents come before what they hold.
        let pos = |n: &str| got.iter().position(|e| e.name == n).unwrap();
        assert!(pos("run/bundle/rootfs") < pos("run/bundle/rootfs/bin"));
        assert!(pos("run/bundle/rootfs/bin") < pos("run/bundle/rootfs/bin/tool"));
    }

    #[test]
    fn the_size_cap_names_the_file_that_crossed_it() {
        let t = tempfile::tempdir().unwrap();
        small_bundle(t.path());
        fs::write(t.path().join("rootfs/big"), vec![0u8; 10_000]).unwrap();
        let mut w = Writer::new(Vec::new());
        let e = write_bundle(&mut w, t.path(), &t.path().join("out"), 8_000)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("rootfs/big") && e.contains("10000") && e.contains("8000"),
            "{e}"
        );
    }

    #[test]
    fn a_stripped_binary_still_runs() {
        let exe = std::env::current_exe().unwrap();
        let bytes = fs::read(&exe).unwrap();
        let stripped = strip_elf(bytes.clone()).unwrap();
        assert!(stripped.len() <= bytes.len());
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("stripped");
        fs::write(&p, &stripped).unwrap();
        fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let out = std::process::Command::new(&p).arg("--list").output().unwrap();
        assert!(out.status.success(), "{out:?}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("a_stripped_binary_still_runs"));
        assert!(strip_elf(b"#!/bin/sh\n".to_vec()).is_none());
    }
}
