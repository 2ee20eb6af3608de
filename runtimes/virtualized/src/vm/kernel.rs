//! Finding the guest kernel and its release (for `/lib/modules/<release>`).

use std::cmp::Ordering;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::{Error, Result};

/// A bzImage to boot and the release its modules are filed under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kernel {
    pub image: PathBuf,
    pub release: String,
}

/// The kernel to boot: `explicit` (the config's), else `env` (`OCI_VM_KERNEL`),
/// else the newest `vmlinuz-*-cloud-amd64` in `boot_dir`, else the newest
/// `vmlinuz-*` there.
pub fn find(explicit: Option<&Path>, env: Option<PathBuf>, boot_dir: &Path) -> Result<Kernel> {
    if let Some(p) = explicit.map(Path::to_path_buf).or(env) {
        if !p.is_file() {
            return Err(Error::KernelNotFound(format!("{} is not a file", p.display())));
        }
        let release = release_of(&p)?;
        return Ok(Kernel { image: p, release });
    }
    let entries = fs::read_dir(boot_dir).map_err(|e| Error::Io {
        what: "reading",
        path: boot_dir.to_path_buf(),
        source: e,
    })?;
    let mut found: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter_map(|n| n.strip_prefix("vmlinuz-").map(str::to_string))
        .filter(|r| !r.is_empty())
        .collect();
    found.sort_by(|a, b| version_cmp(a, b));
    let pick = found
        .iter()
        .rev()
        .find(|r| r.ends_with("-cloud-amd64"))
        .or(found.last())
        .ok_or_else(|| {
            Error::KernelNotFound(format!(
                "looked in {} for vmlinuz-*-cloud-amd64 (or any vmlinuz-*); set OCI_VM_KERNEL",
                boot_dir.display()
            ))
        })?;
    Ok(Kernel {
        image: boot_dir.join(format!("vmlinuz-{pick}")),
        release: pick.clone(),
    })
}

/// The release of a kernel image: from its `vmlinuz-<release>` name, else
/// from the version string the x86 boot protocol points at
/// (Documentation/arch/x86/boot.rst: `kernel_version` at 0x20e, an offset
/// from 0x200).
pub fn release_of(image: &Path) -> Result<String> {
    if let Some(r) = image
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("vmlinuz-"))
        .filter(|r| !r.is_empty())
    {
        return Ok(r.to_string());
    }
    let io = |e| Error::Io {
        what: "reading kernel",
        path: image.to_path_buf(),
        source: e,
    };
    let mut head = vec![0u8; 64 * 1024];
    let mut f = fs::File::open(image).map_err(io)?;
    let n = read_full(&mut f, &mut head).map_err(io)?;
    head.truncate(n);
    bzimage_release(&head).ok_or_else(|| {
        Error::KernelNotFound(format!(
            "{}: not a vmlinuz-<release> name and no bzImage version string",
            image.display()
        ))
    })
}

fn read_full(f: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

fn bzimage_release(head: &[u8]) -> Option<String> {
    if head.get(0x202..0x206)? != b"HdrS" {
        return None;
    }
    let off = u16::from_le_bytes([*head.get(0x20e)?, *head.get(0x20f)?]) as usize + 0x200;
    let s = head.get(off..)?;
    let end = s.iter().position(|&c| c == 0 || c == b' ')?;
    String::from_utf8(s[..end].to_vec()).ok().filter(|r| !r.is_empty())
}

/// The compressed payload of a bzImage (Documentation/arch/x86/boot.rst:
/// `payload_offset` and `payload_length` at 0x248, protocol 2.08+, counted
/// from the protected-mode code after the `setup_sects` sectors).
pub fn bzimage_payload(image: &[u8]) -> Option<&[u8]> {
    if image.get(0x202..0x206)? != b"HdrS" {
        return None;
    }
    let version = u16::from_le_bytes(image.get(0x206..0x208)?.try_into().ok()?);
    if version < 0x208 {
        return None;
    }
    let setup_sects = match *image.get(0x1f1)? {
        0 => 4,
        n => n as usize,
    };
    let u32_at = |o: usize| Some(u32::from_le_bytes(image.get(o..o + 4)?.try_into().ok()?) as usize);
    let start = (setup_sects + 1) * 512 + u32_at(0x248)?;
    image.get(start..start.checked_add(u32_at(0x24c)?)?)
}

/// The 32-bit PVH entry point an ELF64 kernel announces (the Xen ELF note
/// XEN_ELFNOTE_PHYS32_ENTRY, type 18, which QEMU needs to boot it without
/// the bzImage's real-mode setup and decompressor).
pub fn pvh_entry(elf: &[u8]) -> Option<u32> {
    if elf.get(..6)? != b"\x7fELF\x02\x01" {
        return None;
    }
    let u16_at = |o: usize| Some(u16::from_le_bytes(elf.get(o..o + 2)?.try_into().ok()?) as usize);
    let u32_at = |o: usize| Some(u32::from_le_bytes(elf.get(o..o + 4)?.try_into().ok()?));
    let u64_at = |o: usize| Some(u64::from_le_bytes(elf.get(o..o + 8)?.try_into().ok()?) as usize);
    let (phoff, phentsize, phnum) = (u64_at(0x20)?, u16_at(0x36)?, u16_at(0x38)?);
    for i in 0..phnum {
        let ph = phoff.checked_add(i.checked_mul(phentsize)?)?;
        if u32_at(ph)? != 4 {
            continue; // not PT_NOTE
        }
        let (off, size) = (u64_at(ph + 8)?, u64_at(ph + 32)?);
        let notes = elf.get(off..off.checked_add(size)?)?;
        let mut n = 0;
        let align4 = |x: usize| x.checked_add(3).map(|x| x & !3);
        while n + 12 <= notes.len() {
            let word = |o: usize| u32::from_le_bytes(notes[o..o + 4].try_into().unwrap()) as usize;
            let (namesz, descsz, kind) = (word(n), word(n + 4), word(n + 8));
            let name_at = n + 12;
            let desc_at = name_at.checked_add(align4(namesz)?)?;
            let next = desc_at.checked_add(align4(descsz)?)?;
            let name = notes.get(name_at..name_at + namesz)?;
            if name == b"Xen\0" && kind == 18 && descsz >= 4 {
                return Some(u32::from_le_bytes(notes.get(desc_at..desc_at + 4)?.try_into().ok()?));
            }
            n = next;
        }
    }
    None
}

/// The kernel inside a bzImage, as an ELF file with a PVH entry. Debian's
/// x86 kernels compress it with LZ4 (legacy frames); the build appends the
/// decompressed size as a little-endian u32, which is checked.
pub fn extract_vmlinux(image: &Path) -> Result<Vec<u8>> {
    let bz = fs::read(image).map_err(|e| Error::Io {
        what: "reading kernel",
        path: image.to_path_buf(),
        source: e,
    })?;
    let bad = |why: String| Error::Config(format!("{}: no PVH kernel to extract: {why}", image.display()));
    let payload = bzimage_payload(&bz).ok_or_else(|| bad("not a bzImage (boot protocol 2.08+)".into()))?;
    let magic = payload.get(..4).unwrap_or_default();
    if magic != super::lz4::LEGACY_MAGIC.to_le_bytes() {
        let what = match magic {
            [0x1f, 0x8b, ..] => "gzip",
            [0xfd, b'7', b'z', b'X'] => "xz",
            [0x28, 0xb5, 0x2f, 0xfd] => "zstd",
            [b'B', b'Z', b'h', _] => "bzip2",
            _ => "an unknown format",
        };
        return Err(bad(format!("the payload is {what}, only LZ4 is decoded")));
    }
    let (stream, size) = payload.split_at(payload.len().saturating_sub(4));
    let size = u32::from_le_bytes(size.try_into().map_err(|_| bad("payload too short".into()))?) as usize;
    let out = super::lz4::decode_legacy(stream, size).map_err(|e| bad(e.to_string()))?;
    if out.len() != size {
        return Err(bad(format!("decoded {} bytes, the image says {size}", out.len())));
    }
    if pvh_entry(&out).is_none() {
        return Err(bad("the kernel has no PVH entry note (CONFIG_PVH)".into()));
    }
    Ok(out)
}

/// The extracted kernel for `kernel`, cached in `cache` beside the base
/// initramfs archives (written once, atomically; keyed by the bzImage's
/// identity, so an upgraded kernel is extracted anew).
pub fn pvh_image(kernel: &Kernel, cache: &Path) -> Result<PathBuf> {
    let key = format!("{}|{}", kernel.release, super::initramfs::exe_identity(&kernel.image)?);
    let hash = super::initramfs::fnv64(&key);
    let path = cache.join(format!("{}-{hash:016x}.vmlinux", kernel.release));
    if path.is_file() {
        return Ok(path);
    }
    let elf = extract_vmlinux(&kernel.image)?;
    let io = |what, p: &Path| {
        let p = p.to_path_buf();
        move |e| Error::Io {
            what,
            path: p,
            source: e,
        }
    };
    fs::create_dir_all(cache).map_err(io("creating", cache))?;
    let tmp = cache.join(format!(".vmlinux-{}-{hash:x}.tmp", std::process::id()));
    if let Err(e) = fs::write(&tmp, &elf) {
        let _ = fs::remove_file(&tmp);
        return Err(io("writing", &tmp)(e));
    }
    fs::rename(&tmp, &path).map_err(io("renaming into place", &path))?;
    Ok(path)
}

/// Compares releases number by number ("6.10.0" after "6.9.3").
fn version_cmp(a: &str, b: &str) -> Ordering {
    fn parts(s: &str) -> Vec<std::result::Result<u64, &str>> {
        let mut out = Vec::new();
        let mut rest = s;
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits > 0 {
                out.push(Ok(rest[..digits].parse().unwrap_or(u64::MAX)));
                rest = &rest[digits..];
            } else {
                let other = rest.bytes().take_while(|c| !c.is_ascii_digit()).count();
                out.push(Err(&rest[..other]));
                rest = &rest[other..];
            }
        }
        out
    }
    let (pa, pb) = (parts(a), parts(b));
    for (x, y) in pa.iter().zip(pb.iter()) {
        let o = match (x, y) {
            (Ok(x), Ok(y)) => x.cmp(y),
            (Err(x), Err(y)) => x.cmp(y),
            (Ok(_), Err(_)) => Ordering::Greater,
            (Err(_), Ok(_)) => Ordering::Less,
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    pa.len().cmp(&pb.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(dir: &Path, name: &str) {
        fs::write(dir.join(name), b"").unwrap();
    }

    #[test]
    fn the_newest_cloud_kernel_wins_over_newer_generic_ones() {
        let t = tempfile::tempdir().unwrap();
        for n in [
            "vmlinuz-6.1.0-9-cloud-amd64",
            "vmlinuz-6.1.0-56-cloud-amd64",
            "vmlinuz-6.9.0-1-amd64",
            "config-6.1.0-99-cloud-amd64",
        ] {
            touch(t.path(), n);
        }
        let k = find(None, None, t.path()).unwrap();
        assert_eq!(k.release, "6.1.0-56-cloud-amd64");
        assert_eq!(k.image, t.path().join("vmlinuz-6.1.0-56-cloud-amd64"));
    }

    #[test]
    fn any_kernel_serves_when_there_is_no_cloud_one() {
        let t = tempfile::tempdir().unwrap();
        touch(t.path(), "vmlinuz-6.9.0-1-amd64");
        touch(t.path(), "vmlinuz-6.10.0-1-amd64");
        assert_eq!(find(None, None, t.path()).unwrap().release, "6.10.0-1-amd64");
    }

    #[test]
    fn no_kernel_names_where_it_looked() {
        let t = tempfile::tempdir().unwrap();
        let e = find(None, None, t.path()).unwrap_err().to_string();
        assert!(
            e.contains("guest kernel not found") && e.contains("OCI_VM_KERNEL"),
            "{e}"
        );
    }

    #[test]
    fn an_explicit_path_wins_and_its_release_is_read_from_the_image() {
        let t = tempfile::tempdir().unwrap();
        touch(t.path(), "vmlinuz-6.1.0-56-cloud-amd64");
        let mut img = vec![0u8; 0x1000];
        img[0x202..0x206].copy_from_slice(b"HdrS");
        img[0x20e..0x210].copy_from_slice(&0x300u16.to_le_bytes());
        img[0x500..0x500 + 24].copy_from_slice(b"6.2.0-test (b@h) #1 SMP\0");
        let p = t.path().join("bzImage");
        fs::write(&p, &img).unwrap();
        let k = find(None, Some(p.clone()), t.path()).unwrap();
        assert_eq!(
            k,
            Kernel {
                image: p.clone(),
                release: "6.2.0-test".into()
            }
        );
        let missing = t.path().join("nope");
        assert!(find(Some(&missing), Some(p), t.path()).is_err());
    }

    #[test]
    fn the_installed_kernel_reports_the_release_of_its_name() {
        let Ok(k) = find(None, None, Path::new("/boot")) else {
            eprintln!("skipped: no kernel in /boot");
            return;
        };
        let mut f = fs::File::open(&k.image).unwrap();
        let mut head = vec![0u8; 64 * 1024];
        let n = read_full(&mut f, &mut head).unwrap();
        assert_eq!(bzimage_release(&head[..n]).as_deref(), Some(k.release.as_str()));
    }

    /// A minimal ELF64 with one PT_NOTE segment holding `notes`.
    fn elf_with_notes(notes: &[(&[u8], u32, &[u8])]) -> Vec<u8> {
        let mut body = Vec::new();
        for (name, kind, desc) in notes {
            body.extend((name.len() as u32).to_le_bytes());
            body.extend((desc.len() as u32).to_le_bytes());
            body.extend(kind.to_le_bytes());
            body.extend(*name);
            body.resize(body.len().next_multiple_of(4), 0);
            body.extend(*desc);
            body.resize(body.len().next_multiple_of(4), 0);
        }
        let mut e = vec![0u8; 64 + 56];
        e[..6].copy_from_slice(b"\x7fELF\x02\x01");
        e[0x20..0x28].copy_from_slice(&64u64.to_le_bytes());
        e[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        e[0x38..0x3a].copy_from_slice(&1u16.to_le_bytes());
        e[64..68].copy_from_slice(&4u32.to_le_bytes());
        e[64 + 8..64 + 16].copy_from_slice(&120u64.to_le_bytes());
        e[64 + 32..64 + 40].copy_from_slice(&(body.len() as u64).to_le_bytes());
        e.extend(body);
        e
    }

    #[test]
    fn the_pvh_entry_is_read_from_the_xen_note() {
        let e = elf_with_notes(&[
            (b"GNU\0", 3, &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]),
            (b"Xen\0", 6, b"linux\0"),
            (b"Xen\0", 18, &0x0100_0850u32.to_le_bytes()),
        ]);
        assert_eq!(pvh_entry(&e), Some(0x0100_0850));
        let none = elf_with_notes(&[(b"Xen\0", 6, b"linux\0")]);
        assert_eq!(pvh_entry(&none), None);
        // Truncated or lying headers are refused, not a panic.
        for n in 0..e.len() {
            let _ = pvh_entry(&e[..n]);
        }
        let mut lying = e.clone();
        lying[64 + 32..64 + 40].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(pvh_entry(&lying), None);
        assert_eq!(pvh_entry(b"#!/bin/sh\n"), None);
    }

    #[test]
    fn the_payload_is_found_from_the_setup_header() {
        let mut img = vec![0u8; 0x2000];
        img[0x1f1] = 2;
        img[0x202..0x206].copy_from_slice(b"HdrS");
        img[0x206..0x208].copy_from_slice(&0x20fu16.to_le_bytes());
        img[0x248..0x24c].copy_from_slice(&0x10u32.to_le_bytes());
        img[0x24c..0x250].copy_from_slice(&5u32.to_le_bytes());
        img[3 * 512 + 0x10..3 * 512 + 0x15].copy_from_slice(b"hello");
        assert_eq!(bzimage_payload(&img), Some(&b"hello"[..]));
        img[0x24c..0x250].copy_from_slice(&0x10000u32.to_le_bytes());
        assert_eq!(bzimage_payload(&img), None);
        img[0x206..0x208].copy_from_slice(&0x206u16.to_le_bytes());
        assert_eq!(bzimage_payload(&img), None);
    }

    #[test]
    fn the_installed_kernel_yields_a_pvh_vmlinux() {
        let Ok(k) = find(None, None, Path::new("/boot")) else {
            eprintln!("skipped: no kernel in /boot");
            return;
        };
        match extract_vmlinux(&k.image) {
            Ok(elf) => assert!(pvh_entry(&elf).is_some()),
            // Only a kernel that is not LZ4 or lacks CONFIG_PVH may refuse.
            Err(e) => {
                let e = e.to_string();
                assert!(e.contains("only LZ4") || e.contains("PVH entry note"), "{e}");
            }
        }
    }
}
