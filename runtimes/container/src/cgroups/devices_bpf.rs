//! The device cgroup on v2: there are no `devices.allow` files, the kernel
//! asks a BPF_PROG_TYPE_CGROUP_DEVICE program attached to the cgroup. The
//! OCI rules (config-linux.md, Device allowlist: later rules override
//! earlier ones) are compiled here into that program, last rule first, each
//! returning its verdict on a match; nothing matching is denied.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use super::plan::DeviceRule;

/// One eBPF instruction (uapi `struct bpf_insn`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    code: u8,
    /// dst in the low nibble, src in the high one.
    regs: u8,
    off: i16,
    imm: i32,
}

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | (dst & 0x0f),
        off,
        imm,
    }
}

// Opcodes (uapi bpf_common.h / bpf.h).
const LDX_MEM_W: u8 = 0x61;
const ALU64_AND_K: u8 = 0x57;
const ALU64_RSH_K: u8 = 0x77;
const ALU64_MOV_K: u8 = 0xb7;
const JMP_JNE_K: u8 = 0x55;
const EXIT: u8 = 0x95;

// struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }:
// access_type = (access << 16) | type.
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;
const ACC_MKNOD: i32 = 1;
const ACC_READ: i32 = 2;
const ACC_WRITE: i32 = 4;

/// The program for `rules` (validated, in config order).
pub fn program(rules: &[DeviceRule]) -> Vec<Insn> {
    // r2 = type, r3 = access, r4 = major, r5 = minor.
    let mut p = vec![
        insn(LDX_MEM_W, 2, 1, 0, 0),
        insn(ALU64_AND_K, 2, 0, 0, 0xffff),
        insn(LDX_MEM_W, 3, 1, 0, 0),
        insn(ALU64_RSH_K, 3, 0, 0, 16),
        insn(LDX_MEM_W, 4, 1, 4, 0),
        insn(LDX_MEM_W, 5, 1, 8, 0),
    ];
    for r in rules.iter().rev() {
        let mut block = Vec::new();
        // Each test jumps past the rest of the block when it fails; the
        // offsets are patched once the block's length is known.
        let mut skips = Vec::new();
        match r.typ {
            'b' => {
                skips.push(block.len());
                block.push(insn(JMP_JNE_K, 2, 0, 0, DEV_BLOCK));
            }
            'c' => {
                skips.push(block.len());
                block.push(insn(JMP_JNE_K, 2, 0, 0, DEV_CHAR));
            }
            _ => {}
        }
        let mask = r.access.chars().fold(0, |m, c| {
            m | match c {
                'r' => ACC_READ,
                'w' => ACC_WRITE,
                'm' => ACC_MKNOD,
                _ => 0,
            }
        });
        if r.typ != 'a' && mask != ACC_READ | ACC_WRITE | ACC_MKNOD {
            // The request must ask for nothing outside the rule's access:
            // r0 = access & ~mask; if r0 != 0 skip.
            block.push(insn(0xbf, 0, 3, 0, 0));
            block.push(insn(ALU64_AND_K, 0, 0, 0, !mask & 7));
            skips.push(block.len());
            block.push(insn(JMP_JNE_K, 0, 0, 0, 0));
        }
        if r.typ != 'a' {
            if let Some(m) = r.major {
                skips.push(block.len());
                block.push(insn(JMP_JNE_K, 4, 0, 0, m as i32));
            }
            if let Some(m) = r.minor {
                skips.push(block.len());
                block.push(insn(JMP_JNE_K, 5, 0, 0, m as i32));
            }
        }
        block.push(insn(ALU64_MOV_K, 0, 0, 0, i32::from(r.allow)));
        block.push(insn(EXIT, 0, 0, 0, 0));
        let len = block.len();
        let unconditional = skips.is_empty();
        for at in skips {
            // Jump to the instruction after this block.
            block[at].off = (len - at - 1) as i16;
        }
        p.extend(block);
        // A rule that matches everything decides alone; the verifier
        // refuses code after it as unreachable.
        if unconditional {
            return p;
        }
    }
    // Nothing matched: deny.
    p.push(insn(ALU64_MOV_K, 0, 0, 0, 0));
    p.push(insn(EXIT, 0, 0, 0, 0));
    p
}

#[repr(C)]
#[derive(Default)]
struct ProgLoad {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    _rest: [u64; 11],
}

#[repr(C)]
#[derive(Default)]
struct ProgAttach {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
    _rest: [u32; 27],
}

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

/// Loads the program for `rules` and attaches it to the v2 cgroup `dir`.
pub fn attach(dir: &Path, rules: &[DeviceRule]) -> std::io::Result<()> {
    let prog = program(rules);
    let mut log = vec![0u8; 64 * 1024];
    let license = c"Apache";
    let mut load = ProgLoad {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: prog.len() as u32,
        insns: prog.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: 1,
        log_size: log.len() as u32,
        log_buf: log.as_mut_ptr() as u64,
        ..Default::default()
    };
    // SAFETY: bpf(BPF_PROG_LOAD) reads `load` (uapi layout, zero-padded
    // to the size passed) and the instruction, license and log buffers it
    // points to, all alive across the call; it returns a new fd or -1.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_LOAD,
            &mut load as *mut ProgLoad,
            std::mem::size_of::<ProgLoad>(),
        )
    };
    if fd < 0 {
        let e = std::io::Error::last_os_error();
        let verifier = String::from_utf8_lossy(&log[..log.iter().position(|&b| b == 0).unwrap_or(0)]).into_owned();
        return Err(std::io::Error::new(
            e.kind(),
            format!("loading the device program: {e}: {verifier}"),
        ));
    }
    // SAFETY: the kernel just returned this fd; it is owned here alone.
    let prog_fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let cg = std::fs::File::open(dir)?;
    let mut at = ProgAttach {
        target_fd: cg.as_raw_fd() as u32,
        attach_bpf_fd: prog_fd.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        ..Default::default()
    };
    // SAFETY: bpf(BPF_PROG_ATTACH) reads `at` (uapi layout); both fds are
    // open for the duration of the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_ATTACH,
            &mut at as *mut ProgAttach,
            std::mem::size_of::<ProgAttach>(),
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // The attachment keeps the program alive; our fd can go.
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(allow: bool, typ: char, major: Option<i64>, minor: Option<i64>, access: &str) -> DeviceRule {
        DeviceRule {
            allow,
            typ,
            major,
            minor,
            access: access.into(),
        }
    }

    /// A tiny interpreter for exactly the instructions `program` emits.
    fn run(p: &[Insn], typ: i32, access: i32, major: u32, minor: u32) -> u64 {
        let ctx = [((access as u32) << 16) | typ as u32, major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        loop {
            let i = p[pc];
            let (dst, src) = ((i.regs & 0x0f) as usize, (i.regs >> 4) as usize);
            pc += 1;
            match i.code {
                LDX_MEM_W => r[dst] = u64::from(ctx[i.off as usize / 4]),
                ALU64_AND_K => r[dst] &= i.imm as u64,
                ALU64_RSH_K => r[dst] >>= i.imm,
                ALU64_MOV_K => r[dst] = i.imm as u64,
                0xbf => r[dst] = r[src],
                JMP_JNE_K => {
                    if r[dst] != i.imm as u64 {
                        pc += i.off as usize;
                    }
                }
                EXIT => return r[0],
                other => panic!("unexpected opcode {other:#x}"),
            }
        }
    }

    #[test]
    fn later_rules_override_earlier_ones_and_the_rest_is_denied() {
        let rules = [
            rule(false, 'a', None, None, "rwm"),
            rule(true, 'c', Some(1), Some(3), "rwm"),
            rule(true, 'c', Some(1), None, "r"),
            rule(false, 'c', Some(1), Some(7), "rwm"),
        ];
        let p = program(&rules);
        assert_eq!(run(&p, DEV_CHAR, ACC_WRITE, 1, 3), 1, "/dev/null writable");
        assert_eq!(run(&p, DEV_CHAR, ACC_READ, 1, 5), 1, "1:* readable");
        assert_eq!(run(&p, DEV_CHAR, ACC_WRITE, 1, 5), 0, "1:5 not writable");
        assert_eq!(run(&p, DEV_CHAR, ACC_READ, 1, 7), 0, "1:7 denied by the last rule");
        assert_eq!(run(&p, DEV_BLOCK, ACC_READ, 1, 3), 0, "block 1:3 is another device");
        assert_eq!(run(&p, DEV_CHAR, ACC_READ, 5, 0), 0, "unlisted denied");
    }

    #[test]
    fn nothing_follows_an_unconditional_rule() {
        let p = program(&[
            rule(true, 'c', Some(1), Some(3), "rwm"),
            rule(false, 'a', None, None, "rwm"),
        ]);
        assert_eq!(p.last().map(|i| i.code), Some(EXIT));
        assert_eq!(run(&p, DEV_CHAR, ACC_READ, 1, 3), 0, "the last rule denies everything");
        assert_eq!(p.len(), 6 + 2, "loads, then one verdict");
    }

    #[test]
    fn allow_all_and_empty() {
        assert_eq!(
            run(
                &program(&[rule(true, 'a', None, None, "rwm")]),
                DEV_BLOCK,
                ACC_MKNOD,
                8,
                0
            ),
            1
        );
        assert_eq!(run(&program(&[]), DEV_CHAR, ACC_READ, 1, 3), 0);
    }

    #[test]
    fn the_kernel_enforces_it() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipping: needs root");
            return;
        }
        let Some(unified) = ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
            .iter()
            .map(Path::new)
            .find(|p| {
                p.join("cgroup.procs").exists()
                    && std::fs::read_to_string("/proc/self/mountinfo")
                        .unwrap_or_default()
                        .contains(&format!(" {} ", p.display()))
            })
        else {
            eprintln!("skipping: no cgroup2 mount");
            return;
        };
        let dir = unified.join(format!("container-bpf-test-{}", std::process::id()));
        std::fs::create_dir(&dir).unwrap();
        // The shape clients send: deny everything, then an allow list.
        // /dev/null may be read, not written.
        attach(
            &dir,
            &[
                rule(false, 'a', None, None, "rwm"),
                rule(true, 'c', Some(1), Some(3), "r"),
            ],
        )
        .unwrap();
        // SAFETY: fork of the test thread's process; the child only joins
        // the cgroup, opens /dev/null and exits with what it saw.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let me = std::process::id().to_string();
            let code = if std::fs::write(dir.join("cgroup.procs"), me).is_err() {
                3
            } else {
                let r = std::fs::File::open("/dev/null").is_ok();
                let w = std::fs::OpenOptions::new().write(true).open("/dev/null").is_ok();
                match (r, w) {
                    (true, false) => 0,
                    (true, true) => 1,
                    _ => 2,
                }
            };
            // SAFETY: ends the forked child at once.
            unsafe { libc::_exit(code) };
        }
        let mut st = 0;
        // SAFETY: waits for the child forked above.
        unsafe { libc::waitpid(pid, &mut st, 0) };
        let _ = std::fs::remove_dir(&dir);
        assert_eq!(
            libc::WEXITSTATUS(st),
            0,
            "read allowed and write denied (1: write allowed, 2: read denied, 3: join failed)"
        );
    }
}
