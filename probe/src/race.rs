//! `probe race KIND ... N`: time-of-check/time-of-use attempts. One thread
//! keeps changing what a path means while another opens it `N` times; the
//! report counts the opens that read the secret (an escape), the ones that
//! read something else, and the ones refused, by errno:
//! `{"race": KIND, "attempts": N, "escaped": E, "benign": B, "refused": {"EPERM": R, ...}}`.
//!
//! - `race arg GOOD BAD SECRET N`: the path argument's memory flips between
//!   the bytes of GOOD and of BAD; a checker that reads the argument, decides
//!   on GOOD and lets the kernel read it again would open BAD.
//! - `race link LINK TARGET FILE SECRET N`: LINK is swapped atomically
//!   (`renameat2(RENAME_EXCHANGE)`) between a directory holding FILE and a
//!   symlink to TARGET; the opener opens `LINK/FILE`. A checker that resolves
//!   the path and then opens it again by name follows the swapped link.
//!
//! The secret is recognised by content: an open counts as an escape when the
//! file read begins with SECRET.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};

use crate::errno::errno_name;

/// Spins the flipper holds each path for.
const HOLD_SPINS: u32 = 2000;

/// A path buffer that a flipper thread rewrites while the opener passes its
/// address to `open(2)`. Kept at a fixed address for the whole race.
struct Flip {
    buf: AtomicPtr<u8>,
    len: usize,
}

#[derive(Default)]
struct Tally {
    escaped: u64,
    benign: u64,
    refused: BTreeMap<String, u64>,
}

impl Tally {
    /// Opens the NUL-terminated path at `ptr`, reads its head and files the outcome.
    fn open_and_judge(&mut self, ptr: *const libc::c_char, secret: &[u8]) {
        // SAFETY: `ptr` points to a NUL-terminated buffer that lives for the
        // whole race (the caller owns it); open reads it and keeps nothing.
        let fd = unsafe { libc::open(ptr, libc::O_RDONLY | libc::O_CLOEXEC) };
        if fd < 0 {
            let e = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
            *self.refused.entry(errno_name(e).to_string()).or_default() += 1;
            return;
        }
        let mut head = [0u8; 64];
        // SAFETY: fd is the descriptor just opened; head is a writable buffer of its length.
        let n = unsafe { libc::read(fd, head.as_mut_ptr().cast(), head.len()) };
        // SAFETY: fd is ours and closed once.
        unsafe { libc::close(fd) };
        if n > 0 && head[..n as usize].starts_with(secret) {
            self.escaped += 1;
        } else {
            self.benign += 1;
        }
    }

    fn report(self, kind: &str, attempts: u64) -> Value {
        json!({
            "race": kind,
            "attempts": attempts,
            "escaped": self.escaped,
            "benign": self.benign,
            "refused": self.refused,
        })
    }
}

fn count(s: &str) -> Result<u64, String> {
    s.parse::<u64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("race: N must be a positive count, got {s:?}"))
}

fn cstring(what: &str, s: &str) -> Result<CString, String> {
    CString::new(s).map_err(|_| format!("race: {what} {s:?} has a NUL byte"))
}

/// Runs the race the arguments name.
pub fn run(args: &[&str]) -> Result<Value, String> {
    match args {
        ["arg", good, bad, secret, n] => race_arg(good, bad, secret.as_bytes(), count(n)?),
        ["link", link, target, file, secret, n] => race_link(link, target, file, secret.as_bytes(), count(n)?),
        _ => Err("race: usage: race arg GOOD BAD SECRET N | race link LINK TARGET FILE SECRET N".into()),
    }
}

fn race_arg(good: &str, bad: &str, secret: &[u8], n: u64) -> Result<Value, String> {
    let good = cstring("GOOD", good)?;
    let bad = cstring("BAD", bad)?;
    let len = good.as_bytes_with_nul().len().max(bad.as_bytes_with_nul().len());
    // One buffer, leaked for the race's lifetime so both threads may use its address.
    let buf: &'static mut [u8] = Box::leak(vec![0u8; len].into_boxed_slice());
    buf[..good.as_bytes_with_nul().len()].copy_from_slice(good.as_bytes_with_nul());
    let flip = Arc::new(Flip {
        buf: AtomicPtr::new(buf.as_mut_ptr()),
        len,
    });
    let stop = Arc::new(AtomicBool::new(false));
    let flipper = {
        let (flip, stop) = (flip.clone(), stop.clone());
        let (good, bad) = (good.clone(), bad.clone());
        std::thread::spawn(move || {
            let ptr = flip.buf.load(Ordering::Relaxed);
            while !stop.load(Ordering::Relaxed) {
                for s in [&bad, &good] {
                    let bytes = s.as_bytes_with_nul();
                    // SAFETY: ptr addresses `flip.len` leaked bytes and every
                    // string fits (len is the longer one's); the other thread
                    // only hands the address to the kernel, so a torn read
                    // is a garbled path, never undefined behaviour in Rust.
                    unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), ptr, bytes.len().min(flip.len)) };
                    // Hold each meaning for a moment (about an open's
                    // time), so both are seen whole, not only torn.
                    for _ in 0..HOLD_SPINS {
                        std::hint::spin_loop();
                    }
                }
            }
        })
    };
    let mut tally = Tally::default();
    let ptr = flip.buf.load(Ordering::Relaxed) as *const libc::c_char;
    let attempts = keep_opening(n, || tally.open_and_judge(ptr, secret));
    stop.store(true, Ordering::Relaxed);
    let _ = flipper.join();
    Ok(tally.report("arg", attempts))
}

/// The least time the opener races for: on a busy machine the two threads
/// may take turns on one CPU rather than run at once, and a few of the
/// scheduler's slices are needed for both meanings to be met.
const MIN_RACE: std::time::Duration = std::time::Duration::from_millis(300);

/// Calls `open` at least `n` times and for at least [`MIN_RACE`]; returns
/// how many times it was called.
fn keep_opening(n: u64, mut open: impl FnMut()) -> u64 {
    let start = std::time::Instant::now();
    let mut done = 0u64;
    while done < n || start.elapsed() < MIN_RACE {
        open();
        done += 1;
    }
    done
}

fn race_link(link: &str, target: &str, file: &str, secret: &[u8], n: u64) -> Result<Value, String> {
    let dir = format!("{link}.dir");
    let sym = format!("{link}.swap");
    std::fs::create_dir_all(&dir).map_err(|e| format!("race: mkdir {dir}: {e}"))?;
    std::fs::write(format!("{dir}/{file}"), b"benign").map_err(|e| format!("race: write {dir}/{file}: {e}"))?;
    let _ = std::fs::remove_file(link);
    let _ = std::fs::remove_file(&sym);
    std::fs::rename(&dir, link).map_err(|e| format!("race: rename {dir} to {link}: {e}"))?;
    std::os::unix::fs::symlink(target, &sym).map_err(|e| format!("race: symlink {sym} -> {target}: {e}"))?;
    let a = cstring("LINK", link)?;
    let b = cstring("LINK", &sym)?;
    // Prove the swap works before racing on it: a refused exchange would
    // make the race a test of nothing.
    exchange(&a, &b).map_err(|e| format!("race: renameat2({link}, {sym}, RENAME_EXCHANGE): {e}"))?;
    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let stop = stop.clone();
        let (a, b) = (a.clone(), b.clone());
        std::thread::spawn(move || {
            let mut swaps = 0u64;
            while !stop.load(Ordering::Relaxed) {
                if exchange(&a, &b).is_ok() {
                    swaps += 1;
                }
            }
            swaps
        })
    };
    let path = cstring("LINK/FILE", &format!("{link}/{file}"))?;
    let mut tally = Tally::default();
    let attempts = keep_opening(n, || tally.open_and_judge(path.as_ptr(), secret));
    stop.store(true, Ordering::Relaxed);
    let swaps = swapper.join().unwrap_or(0);
    let mut v = tally.report("link", attempts);
    v["swaps"] = json!(swaps);
    Ok(v)
}

fn exchange(a: &CString, b: &CString) -> std::io::Result<()> {
    // SAFETY: both are NUL-terminated paths that outlive the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_and_counts_are_checked() {
        assert!(run(&["arg", "/a", "/b", "s"]).is_err());
        assert!(run(&["arg", "/a", "/b", "s", "0"]).unwrap_err().contains("positive"));
        assert!(run(&["nope"]).is_err());
    }

    #[test]
    fn an_unguarded_path_argument_race_is_won_on_the_host() {
        // No checker here: the kernel opens whatever the buffer says at the
        // time, so both files are read, and the secret counts as escaped.
        let t = tempfile_dir();
        let good = format!("{t}/good");
        let bad = format!("{t}/bad");
        std::fs::write(&good, "benign").unwrap();
        std::fs::write(&bad, "SECRET!").unwrap();
        let v = run(&["arg", &good, &bad, "SECRET", "20000"]).unwrap();
        assert!(v["attempts"].as_u64().unwrap() >= 20000);
        assert!(v["escaped"].as_u64().unwrap() > 0, "{v}");
        let _ = std::fs::remove_dir_all(&t);
    }

    #[test]
    fn a_symlink_swap_race_is_won_on_the_host() {
        let t = tempfile_dir();
        std::fs::create_dir_all(format!("{t}/host")).unwrap();
        std::fs::write(format!("{t}/host/f"), "SECRET!").unwrap();
        let v = run(&["link", &format!("{t}/l"), &format!("{t}/host"), "f", "SECRET", "20000"]).unwrap();
        assert!(v["swaps"].as_u64().unwrap() > 0, "{v}");
        assert!(v["escaped"].as_u64().unwrap() > 0, "{v}");
        assert!(v["benign"].as_u64().unwrap() > 0, "{v}");
        let _ = std::fs::remove_dir_all(&t);
    }

    fn tempfile_dir() -> String {
        let d = std::env::temp_dir().join(format!(
            "probe-race-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&d).unwrap();
        d.display().to_string()
    }
}
