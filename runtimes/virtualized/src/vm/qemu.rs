//! QEMU's command line and process: direct kernel boot, the agent's
//! virtio-serial port and the serial console each on a socket QEMU
//! inherits (no socket file to race on or leave behind), `-no-reboot` so a
//! guest power-off or panic ends the process.

use std::ffi::OsString;
use std::fs;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use super::{Error, Machine, Result};
use crate::proto;

/// The descriptors QEMU finds its sockets at.
const AGENT_FD: i32 = 3;
const CONSOLE_FD: i32 = 4;
const QMP_FD: i32 = 5;

pub const QEMU: &str = "qemu-system-x86_64";

/// What one QEMU run is made of.
#[derive(Debug, Clone)]
pub struct Launch {
    pub machine: Machine,
    pub kvm: bool,
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    pub memory_mib: u32,
    pub cpus: u32,
    pub append: String,
    /// `-accel tcg,thread=multi` (one host thread per vCPU).
    pub mttcg: bool,
    /// `-cpu` under TCG (QEMU's default, qemu64, when None).
    pub cpu: Option<String>,
    /// Appended to the machine's options (e.g. `,pit=off`).
    pub machine_opts: Option<String>,
    /// Guest RAM from this file: `(path, shared)`. A template's is shared
    /// (its pages are the template); a clone maps it private (copy on
    /// write).
    pub memory_file: Option<(PathBuf, bool)>,
    /// A QMP monitor on a socket (for templates: stop, save, restore).
    pub qmp: bool,
    /// Start paused, waiting for `migrate-incoming`.
    pub incoming: bool,
}

/// The kernel command line. `console=ttyS0` gives the boot log (its tail
/// names why a boot failed); `panic=-1` with `-no-reboot` turns a guest
/// panic into QEMU's exit instead of a hang. `tsc_khz`: see
/// [`host_tsc_khz`]. The rest cut the boot (medians of interleaved boots
/// under TCG here; tests/boot.rs `--boots` remeasures them):
/// - `cryptomgr.notests`: no self-tests of every crypto algorithm the kernel
///   registers (about 400 ms); the guest's only use of crypto is module
///   signature checks;
/// - `noreplace-smp`: a one-vCPU kernel keeps its LOCK prefixes instead of
///   patching every one of them out, code writes that TCG pays for with
///   retranslation (about 400 ms);
/// - `tsc=reliable`: no clocksource watchdog, which on microvm (no HPET, no
///   ACPI PM timer) checks the TSC against late TCG ticks, declares it
///   unstable and leaves the guest on jiffies (no cost in time).
///
/// Measured and left out: `quiet` (no faster under TCG here),
/// `rcupdate.rcu_expedited=1`, `initcall_blacklist` of the slowest
/// initcalls (gains within the noise).
///
/// `trims` false leaves those three out (`OCI_VM_TRIMS=0`, to remeasure).
pub fn kernel_cmdline(machine: Machine, tsc_khz: Option<u64>, trims: bool, extra: Option<&str>) -> String {
    let mut a: Vec<String> = ["console=ttyS0", "panic=-1", "reboot=t"].map(String::from).to_vec();
    if trims {
        a.extend(["cryptomgr.notests", "noreplace-smp", "tsc=reliable"].map(String::from));
    }
    if machine == Machine::Microvm {
        // No PCI bus to probe on microvm.
        a.push("pci=off".into());
        if let Some(khz) = tsc_khz {
            a.push(format!("tsc_early_khz={khz}"));
        }
    }
    let mut s = a.join(" ");
    if let Some(e) = extra.filter(|e| !e.trim().is_empty()) {
        s.push(' ');
        s.push_str(e.trim());
    }
    s
}

/// The host's TSC rate, which is the guest's under TCG (QEMU reads the
/// host's counter). microvm has no HPET or ACPI PM timer, so a guest kernel
/// that fails its PIT calibration (timing-sensitive under emulation: about
/// one boot in three here) marks the TSC unstable and hangs before init;
/// told the rate (`tsc_early_khz`), it skips that calibration. Measured
/// once per process over a few milliseconds, median of three windows.
pub fn host_tsc_khz() -> Option<u64> {
    #[cfg(target_arch = "x86_64")]
    {
        static KHZ: OnceLock<Option<u64>> = OnceLock::new();
        *KHZ.get_or_init(|| {
            let mut rates = Vec::new();
            for _ in 0..3 {
                let t = Instant::now();
                // SAFETY: rdtsc has no preconditions on x86_64.
                let c0 = unsafe { core::arch::x86_64::_rdtsc() };
                while t.elapsed() < Duration::from_millis(3) {}
                // SAFETY: as above.
                let c1 = unsafe { core::arch::x86_64::_rdtsc() };
                let ns = t.elapsed().as_nanos() as u64;
                rates.push(c1.wrapping_sub(c0).checked_mul(1_000_000)? / ns.max(1));
            }
            // A preempted window errs either way: the median is the sound one.
            rates.sort();
            Some(rates[1]).filter(|k| *k > 100_000)
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    None
}

/// QEMU's arguments for `l`.
pub fn args(l: &Launch) -> Vec<OsString> {
    let mut a: Vec<OsString> = Vec::new();
    let mut push = |s: &str| a.push(s.into());
    let mut machine = match l.machine {
        // No legacy devices it can do without; the serial console stays.
        Machine::Microvm => "microvm,x-option-roms=off",
        Machine::Q35 => "q35",
    }
    .to_string();
    if let Some(o) = &l.machine_opts {
        machine.push_str(o);
    }
    for s in [
        "-M",
        &machine,
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-no-reboot",
    ] {
        push(s);
    }
    if l.kvm {
        push("-accel");
        push("kvm");
        push("-cpu");
        push("host");
    } else {
        push("-accel");
        push(if l.mttcg {
            "tcg,thread=multi"
        } else {
            "tcg,thread=single"
        });
        if let Some(cpu) = &l.cpu {
            push("-cpu");
            push(cpu);
        }
    }
    push("-m");
    push(&l.memory_mib.to_string());
    push("-smp");
    push(&l.cpus.max(1).to_string());
    let serial_dev = match l.machine {
        Machine::Microvm => "virtio-serial-device",
        Machine::Q35 => "virtio-serial-pci",
    };
    for s in [
        "-device",
        serial_dev,
        "-chardev",
        &format!("socket,id=agent,fd={AGENT_FD}"),
        "-device",
        &format!("virtserialport,chardev=agent,name={}", proto::PORT_NAME),
        "-chardev",
        &format!("socket,id=con,fd={CONSOLE_FD}"),
        "-serial",
        "chardev:con",
    ] {
        push(s);
    }
    if let Some((path, shared)) = &l.memory_file {
        let mut o = OsString::from(format!("memory-backend-file,id=ram,size={}M,mem-path=", l.memory_mib));
        o.push(path);
        o.push(if *shared { ",share=on" } else { ",share=off" });
        a.extend(["-object".into(), o, "-machine".into(), "memory-backend=ram".into()]);
    }
    if l.qmp {
        for s in [
            "-chardev",
            &format!("socket,id=qmp,fd={QMP_FD}"),
            "-mon",
            "chardev=qmp,mode=control",
        ] {
            a.push(s.into());
        }
    }
    if l.incoming {
        a.extend(["-incoming".into(), "defer".into()]);
    }
    a.push("-kernel".into());
    a.push(l.kernel.clone().into());
    a.push("-initrd".into());
    a.push(l.initrd.clone().into());
    a.push("-append".into());
    a.push(l.append.clone().into());
    a
}

/// A started QEMU, before the agent said anything.
pub struct Started {
    pub child: Child,
    pub channel: UnixStream,
    pub start: Instant,
    pub exec: Instant,
    pub first_console: Arc<OnceLock<Instant>>,
    /// When the agent's first line ([`crate::guest::CONSOLE_HELLO`]) came.
    pub agent_console: Arc<OnceLock<Instant>>,
    /// QEMU's monitor, when [`Launch::qmp`].
    pub qmp: Option<UnixStream>,
    pub console_thread: Option<std::thread::JoinHandle<()>>,
}

/// Spawns QEMU for `l`, its stderr to `qemu_log` and the guest's console to
/// `console_log`. QEMU gets SIGKILL when the spawning thread ends (the
/// shim's death must not leave a VM running).
pub fn spawn(l: &Launch, qemu_log: &Path, console_log: &Path) -> Result<Started> {
    let (channel, agent_end) = UnixStream::pair().map_err(|e| Error::Io {
        what: "creating the agent socket pair",
        path: PathBuf::new(),
        source: e,
    })?;
    let (console, console_end) = UnixStream::pair().map_err(|e| Error::Io {
        what: "creating the console socket pair",
        path: PathBuf::new(),
        source: e,
    })?;
    let log = fs::File::create(qemu_log).map_err(|e| Error::Io {
        what: "creating",
        path: qemu_log.to_path_buf(),
        source: e,
    })?;
    let mut con_log = fs::File::create(console_log).map_err(|e| Error::Io {
        what: "creating",
        path: console_log.to_path_buf(),
        source: e,
    })?;
    let (qmp, qmp_end) = match l.qmp {
        true => {
            let (q, e) = UnixStream::pair().map_err(|e| Error::Io {
                what: "creating the QMP socket pair",
                path: PathBuf::new(),
                source: e,
            })?;
            (Some(q), Some(OwnedFd::from(e)))
        }
        false => (None, None),
    };
    let agent_fd: OwnedFd = agent_end.into();
    let console_fd: OwnedFd = console_end.into();
    let (a, c) = (agent_fd.as_raw_fd(), console_fd.as_raw_fd());
    let q = qmp_end.as_ref().map_or(-1, |f| f.as_raw_fd());
    let mut cmd = Command::new(QEMU);
    cmd.args(args(l)).stdin(Stdio::null()).stdout(Stdio::null()).stderr(log);
    // SAFETY: the closure runs in the forked child before exec and only
    // makes async-signal-safe calls (prctl, fcntl, dup2) on descriptors the
    // parent holds open (`agent_fd`, `console_fd`, `qmp_end` live until
    // after spawn). Each is first copied above 100 (close-on-exec) so that
    // placing one at 3, 4 or 5 cannot overwrite another; dup2's copies there
    // are inherited.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may already be gone: then nobody would kill us.
            if libc::getppid() == 1 {
                return Err(std::io::Error::other("the parent died before QEMU started"));
            }
            let ha = libc::fcntl(a, libc::F_DUPFD_CLOEXEC, 100);
            let hc = libc::fcntl(c, libc::F_DUPFD_CLOEXEC, 100);
            if ha < 0 || hc < 0 || libc::dup2(ha, AGENT_FD) < 0 || libc::dup2(hc, CONSOLE_FD) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if q >= 0 {
                let hq = libc::fcntl(q, libc::F_DUPFD_CLOEXEC, 100);
                if hq < 0 || libc::dup2(hq, QMP_FD) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let start = Instant::now();
    // spawn returns once exec succeeded (std reports exec errors through a
    // close-on-exec pipe).
    let child = cmd.spawn().map_err(|e| Error::Io {
        what: "starting",
        path: PathBuf::from(QEMU),
        source: e,
    })?;
    let exec = Instant::now();
    drop(agent_fd);
    drop(console_fd);
    drop(qmp_end);
    let first_console = Arc::new(OnceLock::new());
    let first = first_console.clone();
    let agent_console = Arc::new(OnceLock::new());
    let hello = agent_console.clone();
    let console_thread = std::thread::Builder::new()
        .name("vm-console".into())
        .spawn(move || {
            let mut console = console;
            let mut buf = [0u8; 4096];
            let mut seek = Marker::new(crate::guest::CONSOLE_HELLO.as_bytes());
            loop {
                match console.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        let now = Instant::now();
                        let _ = first.set(now);
                        if hello.get().is_none() && seek.feed(&buf[..n]) {
                            let _ = hello.set(now);
                        }
                        let _ = con_log.write_all(&buf[..n]);
                    }
                }
            }
        })
        .ok();
    Ok(Started {
        child,
        channel,
        start,
        exec,
        first_console,
        agent_console,
        qmp,
        console_thread,
    })
}

/// Finds a byte string in a stream read in pieces (it may straddle two).
pub struct Marker {
    needle: Vec<u8>,
    carry: Vec<u8>,
}

impl Marker {
    pub fn new(needle: &[u8]) -> Marker {
        Marker {
            needle: needle.to_vec(),
            carry: Vec::new(),
        }
    }

    /// True once the stream fed so far contains the needle.
    pub fn feed(&mut self, piece: &[u8]) -> bool {
        self.carry.extend_from_slice(piece);
        let n = self.needle.len();
        if n == 0 || self.carry.windows(n).any(|w| w == self.needle.as_slice()) {
            return true;
        }
        let keep = self.carry.len().min(n - 1);
        self.carry.drain(..self.carry.len() - keep);
        false
    }
}

/// The last `max` bytes of a log, for an error message.
pub fn tail(path: &Path, max: usize) -> String {
    let Ok(b) = fs::read(path) else {
        return String::new();
    };
    let from = b.len().saturating_sub(max);
    String::from_utf8_lossy(&b[from..]).trim().to_string()
}

/// Waits for the agent's `Ready` on `s.channel` until `deadline`, while
/// watching that QEMU is still running.
pub fn wait_ready(s: &mut Started, deadline: Duration) -> std::result::Result<(proto::GuestBoot, Instant), String> {
    let fd = s.channel.as_raw_fd();
    loop {
        let left = deadline.saturating_sub(s.start.elapsed());
        if left.is_zero() {
            return Err(format!(
                "the agent did not say Ready within {} ms",
                deadline.as_millis()
            ));
        }
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        let slice = left.min(Duration::from_millis(50)).as_millis() as i32;
        // SAFETY: one valid pollfd for the duration of the call.
        let r = unsafe { libc::poll(&mut pfd, 1, slice.max(1)) };
        if r > 0 {
            // A frame that has begun arrives whole soon; a stall here is a
            // broken guest, bounded by the read timeout.
            let _ = s.channel.set_read_timeout(Some(Duration::from_secs(5)));
            let frame = proto::read_frame(&mut s.channel);
            let _ = s.channel.set_read_timeout(None);
            match frame {
                Ok(Some(proto::Frame::Control(p))) => match proto::decode::<proto::Event>(&p) {
                    Ok(proto::Event::Ready(g)) => return Ok((g, Instant::now())),
                    Ok(other) => return Err(format!("the agent said {other:?} before Ready")),
                    Err(e) => return Err(e.to_string()),
                },
                Ok(Some(other)) => return Err(format!("the agent sent {other:?} before Ready")),
                Ok(None) => {
                    // QEMU closed the channel: it exited; say how.
                    std::thread::sleep(Duration::from_millis(20));
                    return Err(exited(&mut s.child).unwrap_or_else(|| "the agent's channel closed".into()));
                }
                Err(e) => return Err(e.to_string()),
            }
        }
        if let Some(how) = exited(&mut s.child) {
            return Err(how);
        }
    }
}

fn exited(child: &mut Child) -> Option<String> {
    match child.try_wait() {
        Ok(Some(st)) => Some(format!("QEMU exited ({st}) before the agent was ready")),
        _ => None,
    }
}

/// SIGKILLs and reaps QEMU (no-op once it was reaped).
pub fn kill(child: &mut Child) {
    if let Ok(None) = child.try_wait() {
        let _ = child.kill();
        let _ = child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn launch(machine: Machine) -> Launch {
        Launch {
            machine,
            kvm: false,
            kernel: "/boot/k".into(),
            initrd: "/d/initrd".into(),
            memory_mib: 256,
            cpus: 2,
            append: kernel_cmdline(machine, Some(2_500_000), true, None),
            mttcg: false,
            cpu: None,
            machine_opts: None,
            memory_file: None,
            qmp: false,
            incoming: false,
        }
    }

    fn joined(l: &Launch) -> String {
        args(l)
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn microvm_boots_the_kernel_directly_with_mmio_devices() {
        let s = joined(&launch(Machine::Microvm));
        assert!(s.starts_with("-M microvm,"), "{s}");
        assert!(s.contains("-device virtio-serial-device"), "{s}");
        assert!(s.contains(&format!("name={}", proto::PORT_NAME)), "{s}");
        assert!(s.contains("-kernel /boot/k -initrd /d/initrd"), "{s}");
        assert!(
            s.contains("-no-reboot") && s.contains("-m 256") && s.contains("-smp 2"),
            "{s}"
        );
        assert!(s.contains("-accel tcg,thread=single"), "{s}");
        assert!(s.contains("pci=off") && s.contains("tsc_early_khz=2500000"), "{s}");
    }

    #[test]
    fn q35_uses_pci_and_kvm_when_asked() {
        let mut l = launch(Machine::Q35);
        l.kvm = true;
        let s = joined(&l);
        assert!(s.starts_with("-M q35 "), "{s}");
        assert!(s.contains("-device virtio-serial-pci"), "{s}");
        assert!(s.contains("-accel kvm"), "{s}");
        assert!(!s.contains("pci=off"), "{s}");
    }

    #[test]
    fn the_host_tsc_rate_is_plausible() {
        let khz = host_tsc_khz().expect("x86_64 hosts have a TSC");
        assert!((100_000..10_000_000).contains(&khz), "{khz}");
    }

    #[test]
    fn a_marker_is_found_across_reads() {
        let mut m = Marker::new(b"agent: up");
        assert!(!m.feed(b"[ 1.0] boot\nvirtualized ag"));
        assert!(!m.feed(b"e"));
        assert!(m.feed(b"nt: up\n"));
        let mut m = Marker::new(b"xyz");
        assert!(!m.feed(b"xy"));
        assert!(!m.feed(b"-z"));
        assert!(m.feed(b"xyz"));
    }

    #[test]
    fn extra_kernel_arguments_are_appended() {
        assert_eq!(
            kernel_cmdline(Machine::Q35, Some(1), true, Some(" quiet ")),
            "console=ttyS0 panic=-1 reboot=t cryptomgr.notests noreplace-smp tsc=reliable quiet"
        );
        assert_eq!(
            kernel_cmdline(Machine::Microvm, None, false, None),
            "console=ttyS0 panic=-1 reboot=t pci=off"
        );
    }
}
