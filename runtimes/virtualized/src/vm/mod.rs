//! The hypervisor side of the host: finding the guest kernel, probing KVM,
//! generating the initramfs (agent, modules, packed bundle) and driving QEMU
//! to a guest whose agent said `Ready`.

pub mod cpio;
pub mod initramfs;
pub mod kernel;
pub mod kvm;
pub mod lz4;
mod qemu;
pub mod template;

use std::io;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::proto;

/// QEMU's machine type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Machine {
    /// No firmware, no PCI: virtio-mmio devices described by ACPI.
    Microvm,
    /// The fallback: PCI, SeaBIOS's linuxboot option ROM.
    Q35,
}

impl Machine {
    pub fn name(self) -> &'static str {
        match self {
            Machine::Microvm => "microvm",
            Machine::Q35 => "q35",
        }
    }

    /// The kernel modules (built as modules in Debian's cloud kernel) the
    /// guest needs to reach the agent's port on this machine.
    pub fn modules(self) -> &'static [&'static str] {
        match self {
            Machine::Microvm => &["virtio_mmio", "virtio_console"],
            Machine::Q35 => &["virtio_pci", "virtio_console"],
        }
    }
}

/// How QEMU runs the guest's CPUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Accel {
    /// KVM when a probe found it usable (cached), else TCG.
    #[default]
    Auto,
    Kvm,
    Tcg,
}

impl Accel {
    /// `OCI_VM_ACCEL=kvm|tcg|auto` overrides what the caller asked for.
    pub fn with_env_override(self) -> Result<Accel> {
        match std::env::var("OCI_VM_ACCEL") {
            Ok(v) => match v.as_str() {
                "kvm" => Ok(Accel::Kvm),
                "tcg" => Ok(Accel::Tcg),
                "auto" | "" => Ok(Accel::Auto),
                _ => Err(Error::Config(format!("OCI_VM_ACCEL={v:?}: expected kvm, tcg or auto"))),
            },
            Err(_) => Ok(self),
        }
    }
}

/// What one container's VM is made of.
#[derive(Debug, Clone)]
pub struct VmConfig {
    pub id: String,
    /// Per-container host directory for QEMU's sockets, console log and
    /// initramfs.
    pub dir: PathBuf,
    /// The OCI bundle on the host (config.json + rootfs); packed into the
    /// initramfs.
    pub bundle: PathBuf,
    /// Guest RAM.
    pub memory_mib: u32,
    /// Guest CPUs, at least 1.
    pub cpus: u32,
    /// None: Debian's newest /boot/vmlinuz-*-cloud-amd64 (env `OCI_VM_KERNEL`
    /// overrides).
    pub kernel: Option<PathBuf>,
    /// Env `OCI_VM_ACCEL` overrides.
    pub accel: Accel,
}

/// Where a boot's time went. Host-side figures are milliseconds since the
/// spawn of QEMU began. (The agent's channel is a socket QEMU inherits,
/// connected before QEMU runs: there is no connect step to time.)
#[derive(Debug, Clone, Default, Serialize)]
pub struct BootTimes {
    /// Building the initramfs (the cached base copied, the bundle packed),
    /// before the spawn.
    pub initramfs_ms: u64,
    pub initramfs_bytes: u64,
    /// Spawn → QEMU's process exec'd.
    pub exec_ms: u64,
    /// Spawn → the guest's first console byte (the bzImage's setup code, or
    /// with PVH the kernel's first line; none with `quiet`).
    pub console_ms: Option<u64>,
    /// Spawn → the agent's first console line, on the host's clock: QEMU,
    /// firmware and kernel together. (The guest's own clock starts late and
    /// stands still through parts of early boot under TCG.)
    pub agent_console_ms: Option<u64>,
    /// Spawn → the agent's `Ready` read.
    pub ready_ms: u64,
    /// Machine type used (`microvm` or `q35`).
    pub machine: String,
    /// Accelerator used (`kvm` or `tcg`).
    pub accel: String,
    /// How the guest started: `pvh` (the extracted vmlinux booted),
    /// `bzimage`, or `template (pvh)` (a clone of a saved template).
    pub entry: String,
    /// Guest RAM given (the config's, raised to hold the initramfs).
    pub memory_mib: u32,
    /// The guest's own account (its clock); none for a clone of a
    /// template (it did not boot).
    pub guest: Option<proto::GuestBoot>,
    /// When this boot had to make the template it was cloned from first:
    /// how long that took (a boot and a save), included in `ready_ms`'s
    /// wait but not in it.
    pub template_created_ms: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("vm: {0}")]
    Config(String),
    #[error("vm: guest kernel not found: {0}")]
    KernelNotFound(String),
    #[error("vm: {what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("vm: the bundle is too big to pack: {path} ({size} bytes) brings the archive to {total} bytes, over the cap of {cap}")]
    TooBig {
        path: PathBuf,
        size: u64,
        total: u64,
        cap: u64,
    },
    #[error("vm: {0}")]
    Boot(String),
    #[error("vm: {0}")]
    Proto(#[from] proto::Error),
}

pub type Result<T> = std::result::Result<T, Error>;

/// The files a VM keeps in its config's directory (removed by [`Vm::kill`]).
const INITRD: &str = "initrd.cpio";
const CONSOLE_LOG: &str = "console.log";
const QEMU_LOG: &str = "qemu.log";

/// How long the guest has to say `Ready` (`OCI_VM_BOOT_TIMEOUT_MS`).
const BOOT_TIMEOUT: Duration = Duration::from_secs(30);

/// A running guest: the QEMU child and the agent's channel. Dropping it
/// kills the VM.
#[derive(Debug)]
pub struct Vm {
    child: Child,
    channel: UnixStream,
    times: BootTimes,
    dir: PathBuf,
    console_thread: Option<std::thread::JoinHandle<()>>,
}

fn env_ms(name: &str, default: Duration) -> Duration {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .map(Duration::from_millis)
        .unwrap_or(default)
}

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

fn remove_files(dir: &Path) {
    for f in [INITRD, CONSOLE_LOG, QEMU_LOG, template::QEMU_LOG, template::CONSOLE_LOG] {
        let _ = std::fs::remove_file(dir.join(f));
    }
}

impl Vm {
    /// Spawns QEMU, connects the agent port's chardev socket and waits for
    /// the agent's `Ready`. The agent is this very binary (`/proc/self/exe`;
    /// `OCI_VM_AGENT` names another). The machine is microvm, else q35 when
    /// microvm fails (`OCI_VM_MACHINE=microvm|q35` forces one); extra kernel
    /// arguments come from `OCI_VM_APPEND`, a TCG `-cpu` model from
    /// `OCI_VM_CPU`, extra machine options from `OCI_VM_MACHINE_OPTS`
    /// (`,pit=off`), MTTCG from `OCI_VM_MTTCG=1|0`; `OCI_VM_PVH=0` boots
    /// the bzImage instead of the extracted kernel, `OCI_VM_TRIMS=0` leaves
    /// out the command line's boot trims ([`qemu::kernel_cmdline`]).
    pub fn boot(cfg: &VmConfig) -> Result<Vm> {
        let accel = cfg.accel.with_env_override()?;
        let kernel = kernel::find(
            cfg.kernel.as_deref(),
            std::env::var_os("OCI_VM_KERNEL").map(PathBuf::from),
            Path::new("/boot"),
        )?;
        let agent = std::env::var_os("OCI_VM_AGENT")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/proc/self/exe"));
        let machines: &[Machine] = match std::env::var("OCI_VM_MACHINE").as_deref() {
            Ok("microvm") => &[Machine::Microvm],
            Ok("q35") => &[Machine::Q35],
            Ok("") | Err(_) => &[Machine::Microvm, Machine::Q35],
            Ok(other) => {
                return Err(Error::Config(format!(
                    "OCI_VM_MACHINE={other:?}: expected microvm or q35"
                )))
            }
        };
        let kvm = match accel {
            Accel::Kvm => true,
            Accel::Tcg => false,
            Accel::Auto => kvm::usable(&kernel),
        };
        let append_extra = std::env::var("OCI_VM_APPEND").ok();
        let nonempty = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let cpu = nonempty("OCI_VM_CPU");
        let trims = std::env::var("OCI_VM_TRIMS").as_deref() != Ok("0");
        let machine_opts = nonempty("OCI_VM_MACHINE_OPTS");
        let mttcg = std::env::var("OCI_VM_MTTCG").map(|v| v == "1").unwrap_or(cfg.cpus > 1);
        let deadline = env_ms("OCI_VM_BOOT_TIMEOUT_MS", BOOT_TIMEOUT);
        std::fs::create_dir_all(&cfg.dir).map_err(|e| Error::Io {
            what: "creating",
            path: cfg.dir.clone(),
            source: e,
        })?;
        let mut failures = Vec::new();
        // PVH skips the bzImage's real-mode setup and its decompressor,
        // which run at emulated speed under TCG; the bzImage stays the
        // fallback (`OCI_VM_PVH=0` goes straight to it).
        let mut entries = Vec::new();
        if std::env::var("OCI_VM_PVH").as_deref() != Ok("0") {
            match kernel::pvh_image(&kernel, &initramfs::cache_dir()) {
                Ok(p) => entries.push(("pvh", p)),
                Err(e) => failures.push(format!("pvh: {e}")),
            }
        }
        entries.push(("bzimage", kernel.image.clone()));
        // A clone of a saved template, when one can be had (the first boot
        // for a configuration makes it); `OCI_VM_TEMPLATE=0` always boots.
        if std::env::var("OCI_VM_TEMPLATE").as_deref() != Ok("0") && !kvm {
            let launch = qemu::Launch {
                machine: machines[0],
                kvm,
                kernel: entries[0].1.clone(),
                initrd: PathBuf::new(),
                memory_mib: cfg.memory_mib,
                cpus: cfg.cpus.max(1),
                append: qemu::kernel_cmdline(machines[0], qemu::host_tsc_khz(), trims, append_extra.as_deref()),
                mttcg,
                cpu: cpu.clone(),
                machine_opts: machine_opts.clone(),
                memory_file: None,
                qmp: false,
                incoming: false,
            };
            match Vm::from_template(cfg, &agent, &kernel, launch, entries[0].0, deadline) {
                Ok(vm) => return Ok(vm),
                Err(e) => failures.push(format!("template: {e}")),
            }
        }
        for (machine, (entry, image)) in machines.iter().flat_map(|&m| entries.iter().map(move |e| (m, e))) {
            let t0 = Instant::now();
            let base = initramfs::base_archive(
                &initramfs::cache_dir(),
                &agent,
                &kernel,
                Path::new("/lib/modules"),
                machine,
            )?;
            let initrd = cfg.dir.join(INITRD);
            let size = match initramfs::assemble(&base, &cfg.bundle, &initrd, initramfs::DEFAULT_BUNDLE_CAP) {
                Ok(s) => s,
                Err(e) => {
                    remove_files(&cfg.dir);
                    return Err(e);
                }
            };
            let initramfs_ms = ms(t0.elapsed());
            // The guest holds the image and its unpacked files at once, and
            // the kernel and agent need their own room.
            let needed = ((2 * size) >> 20) as u32 + 96;
            let launch = qemu::Launch {
                machine,
                kvm,
                kernel: image.clone(),
                initrd,
                memory_mib: cfg.memory_mib.max(needed),
                cpus: cfg.cpus.max(1),
                append: qemu::kernel_cmdline(machine, qemu::host_tsc_khz(), trims, append_extra.as_deref()),
                mttcg,
                cpu: cpu.clone(),
                machine_opts: machine_opts.clone(),
                memory_file: None,
                qmp: false,
                incoming: false,
            };
            let mut started = match qemu::spawn(&launch, &cfg.dir.join(QEMU_LOG), &cfg.dir.join(CONSOLE_LOG)) {
                Ok(s) => s,
                Err(e) => {
                    remove_files(&cfg.dir);
                    return Err(e);
                }
            };
            match qemu::wait_ready(&mut started, deadline) {
                Ok((guest, ready)) => {
                    let since = |t: Instant| ms(t.saturating_duration_since(started.start));
                    let times = BootTimes {
                        initramfs_ms,
                        initramfs_bytes: size,
                        exec_ms: since(started.exec),
                        console_ms: started.first_console.get().map(|t| since(*t)),
                        agent_console_ms: started.agent_console.get().map(|t| since(*t)),
                        ready_ms: since(ready),
                        machine: machine.name().into(),
                        accel: if kvm { "kvm" } else { "tcg" }.into(),
                        entry: entry.to_string(),
                        memory_mib: launch.memory_mib,
                        guest: Some(guest),
                        template_created_ms: None,
                    };
                    return Ok(Vm {
                        child: started.child,
                        channel: started.channel,
                        times,
                        dir: cfg.dir.clone(),
                        console_thread: started.console_thread,
                    });
                }
                Err(why) => {
                    qemu::kill(&mut started.child);
                    if let Some(t) = started.console_thread.take() {
                        let _ = t.join();
                    }
                    failures.push(format!(
                        "{} {entry} ({} ms): {why}; console: [{}]; qemu: [{}]",
                        machine.name(),
                        started.start.elapsed().as_millis(),
                        qemu::tail(&cfg.dir.join(CONSOLE_LOG), 1500),
                        qemu::tail(&cfg.dir.join(QEMU_LOG), 500)
                    ));
                    remove_files(&cfg.dir);
                }
            }
        }
        Err(Error::Boot(format!(
            "{}: boot failed: {}",
            cfg.id,
            failures.join(" | then ")
        )))
    }

    /// Starts the VM as a clone of the template for `launch` (made first
    /// if there is none), then sends it the bundle.
    fn from_template(
        cfg: &VmConfig,
        agent: &Path,
        kernel: &kernel::Kernel,
        mut launch: qemu::Launch,
        entry: &str,
        deadline: Duration,
    ) -> Result<Vm> {
        let cache = initramfs::cache_dir();
        let t0 = Instant::now();
        launch.initrd = initramfs::base_archive(&cache, agent, kernel, Path::new("/lib/modules"), launch.machine)?;
        let mut w = cpio::Writer::new(Vec::new());
        initramfs::write_bundle(&mut w, &cfg.bundle, &cfg.dir, initramfs::DEFAULT_BUNDLE_CAP)?;
        let archive = w.finish().map_err(|e| Error::Io {
            what: "packing",
            path: cfg.bundle.clone(),
            source: e,
        })?;
        let initramfs_ms = ms(t0.elapsed());
        let base_size = std::fs::metadata(&launch.initrd).map(|m| m.len()).unwrap_or(0);
        // As a boot would size it: the archives and their unpacked files.
        let needed = ((2 * (base_size + archive.len() as u64)) >> 20) as u32 + 96;
        launch.memory_mib = launch.memory_mib.max(needed);
        let dir = template::dir_for(&cache, agent, &launch)?;
        let mut created_ms = None;
        let t = match template::load(&dir) {
            Some(t) => t,
            None => {
                let _lock = template::Lock::take(&dir.with_extension("lock"))?;
                match template::load(&dir) {
                    Some(t) => t,
                    None => {
                        let c = Instant::now();
                        let t = template::create(&dir, &launch, &cfg.dir, deadline)?;
                        created_ms = Some(ms(c.elapsed()));
                        t
                    }
                }
            }
        };
        let mut clone = launch.clone();
        clone.append = t.append.clone();
        clone.memory_file = Some((t.ram(), false));
        clone.qmp = true;
        clone.incoming = true;
        let mut started = qemu::spawn(&clone, &cfg.dir.join(QEMU_LOG), &cfg.dir.join(CONSOLE_LOG))?;
        let run = (|| {
            let qmp = started.qmp.take().expect("spawned with a monitor");
            template::restore(&t, qmp, started.start, deadline)?;
            let left = deadline
                .saturating_sub(started.start.elapsed())
                .max(Duration::from_millis(1));
            template::send_bundle(&started.channel, &archive, left)
        })();
        if let Err(e) = run {
            qemu::kill(&mut started.child);
            if let Some(t) = started.console_thread.take() {
                let _ = t.join();
            }
            let why = format!(
                "{e}; console: [{}]; qemu: [{}]",
                qemu::tail(&cfg.dir.join(CONSOLE_LOG), 1500),
                qemu::tail(&cfg.dir.join(QEMU_LOG), 500)
            );
            remove_files(&cfg.dir);
            return Err(Error::Boot(why));
        }
        let since = |t: Instant| ms(t.saturating_duration_since(started.start));
        let times = BootTimes {
            initramfs_ms,
            initramfs_bytes: archive.len() as u64,
            exec_ms: since(started.exec),
            console_ms: None,
            agent_console_ms: None,
            ready_ms: since(Instant::now()),
            machine: launch.machine.name().into(),
            accel: "tcg".into(),
            entry: format!("template ({entry})"),
            memory_mib: launch.memory_mib,
            guest: None,
            template_created_ms: created_ms,
        };
        Ok(Vm {
            child: started.child,
            channel: started.channel,
            times,
            dir: cfg.dir.clone(),
            console_thread: started.console_thread,
        })
    }

    /// The agent's channel: frames per [`proto`].
    pub fn channel(&self) -> &UnixStream {
        &self.channel
    }

    pub fn qemu_pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn boot_times(&self) -> &BootTimes {
        &self.times
    }

    /// The guest's console output so far (its boot log, and what the agent
    /// wrote to /dev/console).
    pub fn console(&self) -> String {
        qemu::tail(&self.dir.join(CONSOLE_LOG), 64 * 1024)
    }

    /// Waits up to `timeout` for QEMU to exit by itself (after a
    /// `Shutdown`); true if it did.
    pub fn wait_exit(&mut self, timeout: Duration) -> bool {
        let t = Instant::now();
        loop {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            if t.elapsed() >= timeout {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGKILLs QEMU, reaps it and removes its files in the config's
    /// directory. Idempotent.
    pub fn kill(&mut self) {
        qemu::kill(&mut self.child);
        if let Some(t) = self.console_thread.take() {
            let _ = t.join();
        }
        let _ = self.channel.shutdown(std::net::Shutdown::Both);
        remove_files(&self.dir);
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        self.kill();
    }
}
