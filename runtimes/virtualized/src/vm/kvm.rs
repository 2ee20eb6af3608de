//! Whether KVM really works here: probed with a tiny guest, not trusted
//! from /dev/kvm's presence (a nested PVM device lets QEMU start and then
//! crawls; `-cpu host` aborts).
//!
//! The probe boots the guest kernel with no initramfs under `-accel kvm`:
//! it panics at "unable to mount root" and, with `panic=-1 -no-reboot`,
//! QEMU exits. A working KVM gets there in a fraction of TCG's time; the
//! verdict is yes only within [`BOUND`], and is cached with its figure.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::kernel::Kernel;
use super::qemu::QEMU;

/// A kernel that needs longer than this to panic under KVM is not worth
/// KVM (TCG takes about 1.5 s here).
pub const BOUND: Duration = Duration::from_millis(1500);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    pub usable: bool,
    /// How long the probe ran (to the guest's exit, or to the bound).
    pub ms: u64,
    pub kernel: String,
    pub why: String,
}

fn cache_file(cache: &Path) -> PathBuf {
    cache.join("kvm-verdict.json")
}

/// True when KVM runs a guest fast: the cached verdict for this kernel, or
/// a fresh probe.
pub fn usable(kernel: &Kernel) -> bool {
    verdict(&super::initramfs::cache_dir(), kernel).usable
}

/// The cached verdict for `kernel`, probing (and caching) when there is
/// none.
pub fn verdict(cache: &Path, kernel: &Kernel) -> Verdict {
    let file = cache_file(cache);
    if let Some(v) = std::fs::read(&file)
        .ok()
        .and_then(|b| serde_json::from_slice::<Verdict>(&b).ok())
        .filter(|v| v.kernel == kernel.release)
    {
        return v;
    }
    let v = probe(kernel);
    if std::fs::create_dir_all(cache).is_ok() {
        let tmp = cache.join(format!(".kvm-{}.tmp", std::process::id()));
        if std::fs::write(&tmp, serde_json::to_vec(&v).unwrap_or_default()).is_ok() {
            let _ = std::fs::rename(&tmp, &file);
        }
    }
    v
}

/// Boots `kernel` without an initramfs under KVM, bounded by [`BOUND`].
pub fn probe(kernel: &Kernel) -> Verdict {
    let mut v = Verdict {
        usable: false,
        ms: 0,
        kernel: kernel.release.clone(),
        why: String::new(),
    };
    if let Err(e) = std::fs::OpenOptions::new().read(true).write(true).open("/dev/kvm") {
        v.why = format!("/dev/kvm: {e}");
        return v;
    }
    let t = Instant::now();
    let child = Command::new(QEMU)
        .args([
            "-M",
            "microvm,x-option-roms=off",
            "-accel",
            "kvm",
            "-m",
            "128",
            "-smp",
            "1",
        ])
        .args(["-nodefaults", "-no-user-config", "-display", "none", "-no-reboot"])
        .arg("-kernel")
        .arg(&kernel.image)
        .args(["-append", "panic=-1 reboot=t pci=off quiet"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            v.why = format!("starting {QEMU}: {e}");
            return v;
        }
    };
    loop {
        match child.try_wait() {
            Ok(Some(st)) => {
                v.ms = t.elapsed().as_millis() as u64;
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut e, &mut err);
                }
                // The guest's panic-reboot is a clean QEMU exit; an abort or
                // a refusal is not.
                v.usable = st.success() && t.elapsed() <= BOUND;
                v.why = if st.success() {
                    format!("the probe guest ran to its end in {} ms under KVM", v.ms)
                } else {
                    format!("QEMU with KVM failed ({st}): {}", err.trim())
                };
                return v;
            }
            Ok(None) if t.elapsed() > BOUND => {
                let _ = child.kill();
                let _ = child.wait();
                v.ms = t.elapsed().as_millis() as u64;
                v.why = format!(
                    "the probe guest did not finish within {} ms under KVM (it crawls)",
                    BOUND.as_millis()
                );
                return v;
            }
            _ => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cached_verdict_for_the_same_kernel_is_reused_without_probing() {
        let t = tempfile::tempdir().unwrap();
        let k = Kernel {
            image: "/nonexistent/vmlinuz".into(),
            release: "9.9.9-test".into(),
        };
        let cached = Verdict {
            usable: true,
            ms: 42,
            kernel: k.release.clone(),
            why: "cached".into(),
        };
        std::fs::write(cache_file(t.path()), serde_json::to_vec(&cached).unwrap()).unwrap();
        assert_eq!(verdict(t.path(), &k), cached);
        // Another kernel's verdict is not this one's: it is probed (and the
        // image does not exist, so it cannot be usable).
        let other = Kernel {
            release: "1.0.0-other".into(),
            ..k
        };
        let v = verdict(t.path(), &other);
        assert!(!v.usable);
        assert_eq!(v.kernel, "1.0.0-other");
    }
}
