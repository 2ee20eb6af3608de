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
}
