//! The workloads. Each is prepared once (files made, buffers touched,
//! connections set up), then runs batches of operations in a loop that makes
//! no allocation and whose work `black_box` keeps from being optimised away.

use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::hint::black_box;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use super::{error_text, os, BenchArgs, Failure};
use crate::sys::cstring;

/// What `probe bench` can measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    Getpid,
    OpenClose,
    Stat,
    ForkExec,
    FileIo,
    Memory,
    TcpLoopback,
    Cpu,
}

impl Workload {
    pub const ALL: [Workload; 8] = [
        Workload::Getpid,
        Workload::OpenClose,
        Workload::Stat,
        Workload::ForkExec,
        Workload::FileIo,
        Workload::Memory,
        Workload::TcpLoopback,
        Workload::Cpu,
    ];

    /// The name on the command line and in the output.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Getpid => "getpid",
            Workload::OpenClose => "open-close",
            Workload::Stat => "stat",
            Workload::ForkExec => "fork-exec",
            Workload::FileIo => "file-io",
            Workload::Memory => "memory",
            Workload::TcpLoopback => "tcp-loopback",
            Workload::Cpu => "cpu",
        }
    }

    /// What one operation is, in words.
    pub fn op(self) -> &'static str {
        match self {
            Workload::Getpid => "getppid syscall",
            Workload::OpenClose => "open + close",
            Workload::Stat => "stat",
            Workload::ForkExec => "fork + exec + wait",
            Workload::FileIo => "64 KiB pwrite + 64 KiB pread",
            Workload::Memory => "copy 1 MiB",
            Workload::TcpLoopback => "64-byte TCP round trip on loopback",
            Workload::Cpu => "1000 rounds of integer mixing",
        }
    }

    pub fn from_name(name: &str) -> Option<Workload> {
        Workload::ALL.into_iter().find(|w| w.name() == name)
    }
}

/// A prepared workload.
pub trait Batch {
    /// Runs `ops` operations; this is the timed part.
    fn run(&mut self, ops: u64) -> Result<(), Failure>;

    /// Removes what preparing made; runs once, also after a failure.
    fn cleanup(&mut self) -> Result<(), Failure> {
        Ok(())
    }
}

pub fn prepare(args: &BenchArgs) -> Result<Box<dyn Batch>, Failure> {
    Ok(match args.workload {
        Workload::Getpid => Box::new(Getppid),
        Workload::OpenClose => Box::new(OpenClose(existing_file(&args.dir)?)),
        Workload::Stat => Box::new(Stat(existing_file(&args.dir)?)),
        Workload::ForkExec => Box::new(ForkExec::prepare(&args.exe)?),
        Workload::FileIo => Box::new(FileIo::prepare(&args.dir)?),
        Workload::Memory => Box::new(Memory::prepare()?),
        Workload::TcpLoopback => Box::new(TcpLoopback::prepare()?),
        Workload::Cpu => Box::new(Cpu {
            state: 0x9E37_79B9_7F4A_7C15,
        }),
    })
}

struct Getppid;

impl Batch for Getppid {
    fn run(&mut self, ops: u64) -> Result<(), Failure> {
        for _ in 0..ops {
            // A seccomp filter could make it fail; timing an error path
            // would measure something else.
            if black_box(os::getppid_raw()) < 0 {
                return Err(Failure::os("getppid", &io::Error::last_os_error()));
            }
        }
        Ok(())
    }
}

/// The file `open-close` and `stat` use: `DIR/probe-bench-open`, made when
/// missing and left in place (its name has no pid, so runs share it).
pub const OPEN_FILE: &str = "probe-bench-open";

/// A path and its C string, made before timing.
struct Target {
    path: PathBuf,
    c_path: CString,
}

fn existing_file(dir: &Path) -> Result<Target, Failure> {
    let path = dir.join(OPEN_FILE);
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o644)
        .open(&path)
        .map_err(|e| Failure::os(format!("create {}", path.display()), &e))?;
    let c_path = cstring(&path).map_err(|e| Failure::os(format!("path {}", path.display()), &e))?;
    Ok(Target { path, c_path })
}

struct OpenClose(Target);

impl Batch for OpenClose {
    fn run(&mut self, ops: u64) -> Result<(), Failure> {
        for _ in 0..ops {
            let fd = os::open_rdonly(&self.0.c_path)
                .map_err(|e| Failure::os(format!("open {}", self.0.path.display()), &e))?;
            // Dropping the descriptor is the close.
            drop(black_box(fd));
        }
        Ok(())
    }
}

struct Stat(Target);

impl Batch for Stat {
    fn run(&mut self, ops: u64) -> Result<(), Failure> {
        for _ in 0..ops {
            let st =
                os::stat(&self.0.c_path).map_err(|e| Failure::os(format!("stat {}", self.0.path.display()), &e))?;
            black_box(st);
        }
        Ok(())
    }
}

struct ForkExec {
    exe: PathBuf,
    exec: os::Exec,
}

impl ForkExec {
    fn prepare(exe: &Path) -> Result<ForkExec, Failure> {
        let c_exe = cstring(exe).map_err(|e| Failure::os(format!("exe {}", exe.display()), &e))?;
        // The child's exec errno would be lost to `_exit(127)`; name it here.
        os::access_exec(&c_exe).map_err(|e| Failure::os(format!("cannot execute {}", exe.display()), &e))?;
        let args = vec![c"probe".to_owned(), c"true".to_owned()];
        Ok(ForkExec {
            exe: exe.to_path_buf(),
            exec: os::Exec::new(c_exe, args),
        })
    }

    fn check(&self, status: libc::c_int) -> Result<(), Failure> {
        let what = format!("`{} true`", self.exe.display());
        if libc::WIFEXITED(status) {
            match libc::WEXITSTATUS(status) {
                0 => Ok(()),
                127 => Err(Failure::new(format!(
                    "{what} exited with 127 (exec failed in the child)"
                ))),
                code => Err(Failure::new(format!("{what} exited with {code}"))),
            }
        } else if libc::WIFSIGNALED(status) {
            Err(Failure::new(format!(
                "{what} was killed by signal {}",
                libc::WTERMSIG(status)
            )))
        } else {
            Err(Failure::new(format!("{what} ended with wait status {status:#x}")))
        }
    }
}

impl Batch for ForkExec {
    fn run(&mut self, ops: u64) -> Result<(), Failure> {
        for _ in 0..ops {
            let pid = self.exec.spawn().map_err(|e| Failure::os("fork", &e))?;
            let status = os::wait(pid).map_err(|e| Failure::os("waitpid", &e))?;
            self.check(status)?;
        }
        Ok(())
    }
}

const IO_FILE_BYTES: u64 = 16 << 20;
const IO_BLOCK: usize = 64 << 10;
const IO_BLOCKS: u64 = IO_FILE_BYTES / IO_BLOCK as u64;

/// `DIR/probe-bench-io-<pid>`, removed by `cleanup` or, failing that, on drop.
struct FileIo {
    path: PathBuf,
    file: File,
    block: Vec<u8>,
    op: u64,
    removed: bool,
}

impl FileIo {
    fn prepare(dir: &Path) -> Result<FileIo, Failure> {
        let path = dir.join(format!("probe-bench-io-{}", std::process::id()));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| Failure::os(format!("create {}", path.display()), &e))?;
        let mut io = FileIo {
            path,
            file,
            block: vec![0x5a; IO_BLOCK],
            op: 0,
            removed: false,
        };
        if let Err(err) = io.fill() {
            let first = Failure::os(format!("fill {}", io.path.display()), &err);
            return Err(match io.cleanup() {
                Ok(()) => first,
                Err(cleanup) => first.and_cleanup(cleanup),
            });
        }
        Ok(io)
    }

    /// Writes every block once and flushes it to the device, so that the
    /// timed writes overwrite cached data and no writeback of the fill is
    /// left to land in a measured batch.
    fn fill(&mut self) -> io::Result<()> {
        for block in 0..IO_BLOCKS {
            self.file.write_all_at(&self.block, block * IO_BLOCK as u64)?;
        }
        self.file.sync_data()
    }
}

impl Batch for FileIo {
    fn run(&mut self, ops: u64) -> Result<(), Failure> {
        for _ in 0..ops {
            let block = self.op % IO_BLOCKS;
            // The read is half the file away from the write, so it is not
            // the block just written.
            let other = (block + IO_BLOCKS / 2) % IO_BLOCKS;
            self.file
                .write_all_at(&self.block, block * IO_BLOCK as u64)
                .map_err(|e| Failure::os(format!("pwrite {}", self.path.display()), &e))?;
            self.file
                .read_exact_at(&mut self.block, other * IO_BLOCK as u64)
                .map_err(|e| Failure::os(format!("pread {}", self.path.display()), &e))?;
            self.op += 1;
        }
        black_box(&self.block);
        Ok(())
    }

    fn cleanup(&mut self) -> Result<(), Failure> {
        if self.removed {
            return Ok(());
        }
        self.removed = true;
        match fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Failure::os(format!("remove {}", self.path.display()), &e)),
        }
    }
}

impl Drop for FileIo {
    fn drop(&mut self) {
        let _ = self.cleanup();
    }
}

const MEMORY_BYTES: usize = 64 << 20;
const MEMORY_COPY: usize = 1 << 20;
const MEMORY_WINDOWS: usize = MEMORY_BYTES / MEMORY_COPY;

/// Two buffers larger than any cache, so each copy goes to memory.
struct Memory {
    src: Vec<u8>,
    dst: Vec<u8>,
    op: usize,
}

impl Memory {
    fn prepare() -> Result<Memory, Failure> {
        Ok(Memory {
            src: touched(0x5a)?,
            dst: touched(0xa5)?,
            op: 0,
        })
    }
}

/// A buffer of `MEMORY_BYTES` with every page written, so that no page fault
/// lands in a timed batch. Allocation failure is reported, not an abort.
fn touched(byte: u8) -> Result<Vec<u8>, Failure> {
    let mut buf = Vec::new();
    buf.try_reserve_exact(MEMORY_BYTES)
        .map_err(|_| Failure::os("allocate 64 MiB", &io::Error::from_raw_os_error(libc::ENOMEM)))?;
    buf.resize(MEMORY_BYTES, byte);
    Ok(black_box(buf))
}

impl Batch for Memory {
    fn run(&mut self, ops: u64) -> Result<(), Failure> {
        for _ in 0..ops {
            let from = (self.op % MEMORY_WINDOWS) * MEMORY_COPY;
            let to = ((self.op + MEMORY_WINDOWS / 2) % MEMORY_WINDOWS) * MEMORY_COPY;
            let dst = &mut self.dst[to..to + MEMORY_COPY];
            dst.copy_from_slice(&self.src[from..from + MEMORY_COPY]);
            black_box(dst);
            self.op += 1;
        }
        Ok(())
    }
}

const ROUND_TRIP_BYTES: usize = 64;

struct TcpLoopback {
    client: TcpStream,
    echo: Option<JoinHandle<io::Result<()>>>,
    buf: [u8; ROUND_TRIP_BYTES],
}

impl TcpLoopback {
    fn prepare() -> Result<TcpLoopback, Failure> {
        // A failure to bring lo up only matters if loopback then does not
        // work; it is named with what fails.
        let lo = os::loopback_up().err();
        let with_lo = |failure: Failure| match &lo {
            Some(err) => Failure::new(format!("{failure} (bringing lo up failed: {})", error_text(err))),
            None => failure,
        };
        let listener =
            TcpListener::bind("127.0.0.1:0").map_err(|e| with_lo(Failure::os("listen on 127.0.0.1:0", &e)))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Failure::os("getsockname of the listener", &e))?;
        // The connection completes in the backlog, so accepting here does
        // not block.
        let client = TcpStream::connect(addr).map_err(|e| with_lo(Failure::os(format!("connect to {addr}"), &e)))?;
        let (server, _) = listener
            .accept()
            .map_err(|e| Failure::os(format!("accept on {addr}"), &e))?;
        for end in [&client, &server] {
            end.set_nodelay(true).map_err(|e| Failure::os("set TCP_NODELAY", &e))?;
        }
        let echo = std::thread::Builder::new()
            .name("echo".to_string())
            .spawn(move || echo(server))
            .map_err(|e| Failure::os("start the echo thread", &e))?;
        Ok(TcpLoopback {
            client,
            echo: Some(echo),
            buf: [0x5a; ROUND_TRIP_BYTES],
        })
    }
}

/// Sends back every 64 bytes received, until the peer stops sending.
fn echo(mut stream: TcpStream) -> io::Result<()> {
    let mut buf = [0u8; ROUND_TRIP_BYTES];
    loop {
        match stream.read_exact(&mut buf) {
            Ok(()) => stream.write_all(&buf)?,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

impl Batch for TcpLoopback {
    fn run(&mut self, ops: u64) -> Result<(), Failure> {
        for _ in 0..ops {
            self.client
                .write_all(&self.buf)
                .map_err(|e| Failure::os("write to the echo thread", &e))?;
            self.client
                .read_exact(&mut self.buf)
                .map_err(|e| Failure::os("read from the echo thread", &e))?;
        }
        Ok(())
    }

    fn cleanup(&mut self) -> Result<(), Failure> {
        let Some(echo) = self.echo.take() else {
            return Ok(());
        };
        // End of stream is the echo thread's signal to stop; if it already
        // stopped, the socket may be gone and that is not news.
        let _ = self.client.shutdown(Shutdown::Write);
        match echo.join() {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Failure::os("echo thread", &e)),
            Err(_) => Err(Failure::new("echo thread panicked")),
        }
    }
}

/// One op is 1000 rounds of xorshift64 and an odd multiply: a serial chain
/// of register operations the optimiser cannot fold, with no syscall and no
/// memory access. Neither step maps a non-zero state to zero.
struct Cpu {
    state: u64,
}

impl Batch for Cpu {
    fn run(&mut self, ops: u64) -> Result<(), Failure> {
        let mut x = self.state;
        for _ in 0..ops {
            let mut v = black_box(x);
            for _ in 0..1000 {
                v ^= v << 13;
                v ^= v >> 7;
                v ^= v << 17;
                v = v.wrapping_mul(0x2545_F491_4F6C_DD1D);
            }
            x = black_box(v);
        }
        self.state = x;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{measure_and_clean, run, BenchOutput};
    use super::*;

    /// A fresh directory under the system temp dir, removed on drop.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let dir = std::env::temp_dir().join(format!("probe-bench-test-{}-{name}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }

        fn entries(&self) -> Vec<String> {
            fs::read_dir(&self.0)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn args(workload: Workload, dir: &Path, exe: &str) -> BenchArgs {
        BenchArgs {
            workload,
            batches: 2,
            batch_ms: 2,
            dir: dir.to_path_buf(),
            exe: PathBuf::from(exe),
        }
    }

    fn quick(workload: Workload) -> BenchOutput {
        let scratch = Scratch::new(workload.name());
        let out = run(&args(workload, &scratch.0, "/bin/true")).unwrap();
        assert_eq!(out.schema, super::super::BENCH_SCHEMA);
        assert_eq!(out.workload, workload.name());
        assert_eq!(out.op, workload.op());
        assert!(out.ops_per_batch >= 1);
        assert_eq!(out.ns_per_op.len(), 2);
        assert!(
            out.ns_per_op.iter().all(|ns| ns.is_finite() && *ns > 0.0),
            "{:?}",
            out.ns_per_op
        );
        out
    }

    #[test]
    fn getpid_runs() {
        quick(Workload::Getpid);
    }

    #[test]
    fn open_close_runs() {
        quick(Workload::OpenClose);
    }

    #[test]
    fn stat_runs() {
        quick(Workload::Stat);
    }

    #[test]
    fn open_close_and_stat_share_one_file() {
        let scratch = Scratch::new("shared-open");
        run(&args(Workload::OpenClose, &scratch.0, "/bin/true")).unwrap();
        run(&args(Workload::Stat, &scratch.0, "/bin/true")).unwrap();
        assert_eq!(scratch.entries(), [OPEN_FILE]);
    }

    #[test]
    fn file_workloads_name_a_missing_dir() {
        let dir = Path::new("/nonexistent/probe-bench");
        for w in [Workload::OpenClose, Workload::Stat] {
            let err = run(&args(w, dir, "/bin/true")).unwrap_err();
            assert_eq!(
                err.to_string(),
                "create /nonexistent/probe-bench/probe-bench-open: ENOENT"
            );
        }
        let err = run(&args(Workload::FileIo, dir, "/bin/true")).unwrap_err();
        let expected = format!(
            "create /nonexistent/probe-bench/probe-bench-io-{}: ENOENT",
            std::process::id()
        );
        assert_eq!(err.to_string(), expected);
    }

    #[test]
    fn fork_exec_runs() {
        // `/bin/true true` exits 0 like `probe true`; the real probe is run
        // in tests/bench.rs.
        quick(Workload::ForkExec);
    }

    #[test]
    fn fork_exec_fails_when_the_child_does() {
        let scratch = Scratch::new("fork-fail");
        let err = run(&args(Workload::ForkExec, &scratch.0, "/bin/false")).unwrap_err();
        assert_eq!(err.to_string(), "`/bin/false true` exited with 1");
        let err = run(&args(Workload::ForkExec, &scratch.0, "/nonexistent/probe")).unwrap_err();
        assert_eq!(err.to_string(), "cannot execute /nonexistent/probe: ENOENT");
        // A directory passes access(X_OK) but execv refuses it.
        let err = run(&args(Workload::ForkExec, &scratch.0, "/")).unwrap_err();
        assert_eq!(err.to_string(), "`/ true` exited with 127 (exec failed in the child)");
    }

    #[test]
    fn file_io_runs_and_leaves_no_file() {
        let scratch = Scratch::new("file-io");
        let out = run(&args(Workload::FileIo, &scratch.0, "/bin/true")).unwrap();
        assert_eq!(out.ns_per_op.len(), 2);
        assert!(scratch.entries().is_empty(), "{:?}", scratch.entries());
    }

    #[test]
    fn file_io_removes_its_file_when_a_batch_fails() {
        let scratch = Scratch::new("file-io-fail");
        let mut io = FileIo::prepare(&scratch.0).unwrap();
        assert_eq!(fs::metadata(&io.path).unwrap().len(), IO_FILE_BYTES);
        // A read-only descriptor makes the timed pwrite fail.
        io.file = File::open(&io.path).unwrap();
        let err = measure_and_clean(&mut io, 2, 2).unwrap_err();
        assert!(err.to_string().starts_with("pwrite "), "{err}");
        assert!(err.to_string().ends_with(": EBADF"), "{err}");
        assert!(scratch.entries().is_empty(), "{:?}", scratch.entries());
    }

    #[test]
    fn file_io_removes_its_file_when_dropped() {
        let scratch = Scratch::new("file-io-drop");
        let io = FileIo::prepare(&scratch.0).unwrap();
        assert_eq!(scratch.entries().len(), 1);
        drop(io);
        assert!(scratch.entries().is_empty(), "{:?}", scratch.entries());
    }

    #[test]
    fn file_io_alternates_write_and_read_blocks() {
        let scratch = Scratch::new("file-io-blocks");
        let mut io = FileIo::prepare(&scratch.0).unwrap();
        io.run(IO_BLOCKS + 3).unwrap();
        assert_eq!(io.op, IO_BLOCKS + 3);
        assert_eq!(
            fs::metadata(&io.path).unwrap().len(),
            IO_FILE_BYTES,
            "writes stay inside the file"
        );
        io.cleanup().unwrap();
    }

    #[test]
    fn memory_runs() {
        quick(Workload::Memory);
    }

    #[test]
    fn memory_copies_the_window() {
        let mut mem = Memory::prepare().unwrap();
        mem.src[..MEMORY_COPY].fill(7);
        mem.run(1).unwrap();
        let to = (MEMORY_WINDOWS / 2) * MEMORY_COPY;
        assert!(mem.dst[to..to + MEMORY_COPY].iter().all(|b| *b == 7));
        assert!(mem.dst[..MEMORY_COPY].iter().all(|b| *b == 0xa5));
    }

    #[test]
    fn tcp_loopback_runs() {
        quick(Workload::TcpLoopback);
    }

    #[test]
    fn tcp_loopback_echoes_and_stops() {
        let mut tcp = TcpLoopback::prepare().unwrap();
        tcp.buf = [3; ROUND_TRIP_BYTES];
        tcp.run(10).unwrap();
        assert_eq!(tcp.buf, [3; ROUND_TRIP_BYTES]);
        tcp.cleanup().unwrap();
        assert!(tcp.echo.is_none());
    }

    #[test]
    fn cpu_runs() {
        quick(Workload::Cpu);
    }

    #[test]
    fn cpu_state_moves_and_never_sticks_at_zero() {
        let mut cpu = Cpu { state: 1 };
        cpu.run(3).unwrap();
        assert_ne!(cpu.state, 1);
        assert_ne!(cpu.state, 0);
    }

    #[test]
    fn workload_names_round_trip() {
        for w in Workload::ALL {
            assert_eq!(Workload::from_name(w.name()), Some(w));
        }
        assert_eq!(Workload::from_name("getppid"), None);
    }
}
