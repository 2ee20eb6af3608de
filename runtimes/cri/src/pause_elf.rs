//! A pause program small enough to travel into a VM: a static x86-64 ELF
//! of a few hundred bytes, assembled here.
//!
//! A pod whose handler runs it in one VM (Kata's way) gets its infra
//! container's rootfs packed into the guest; the server's own binary (which
//! holds `cri pause`) is far too big to go with every pod. This program
//! does what `cri pause` does for a pod: brings the loopback interface of
//! its network namespace up (if it may; otherwise that stays as it is) and
//! then waits for ever, reaping the children it inherits as the init of a
//! shared PID namespace (it checks again every second when it has none).
//! It installs no signal handler: as a PID namespace's init it ends only by
//! SIGKILL, which is what the server sends it.

/// Where the program is loaded.
const BASE: u64 = 0x40_0000;
const EHDR: usize = 64;
const PHDR: usize = 56;

/// The machine code, position-independent; starts at its first byte.
fn code() -> Vec<u8> {
    let mut c: Vec<u8> = Vec::new();
    // socket(AF_INET, SOCK_DGRAM, 0); the fd (or -errno) kept in r12d. A
    // failure only makes the ioctls below fail: loopback is then left as
    // it is.
    c.extend([0xb8, 41, 0, 0, 0]); // mov eax, SYS_socket
    c.extend([0xbf, 2, 0, 0, 0]); // mov edi, AF_INET
    c.extend([0xbe, 2, 0, 0, 0]); // mov esi, SOCK_DGRAM
    c.extend([0x31, 0xd2]); // xor edx, edx
    c.extend([0x0f, 0x05]); // syscall
    c.extend([0x41, 0x89, 0xc4]); // mov r12d, eax
                                  // struct ifreq (40 bytes) on the stack, zeroed, named "lo".
    c.extend([0x48, 0x83, 0xec, 40]); // sub rsp, 40
    c.extend([0x31, 0xc0]); // xor eax, eax
    c.extend([0x48, 0x89, 0x04, 0x24]); // mov [rsp], rax
    for off in [8u8, 16, 24, 32] {
        c.extend([0x48, 0x89, 0x44, 0x24, off]); // mov [rsp+off], rax
    }
    c.extend([0x66, 0xc7, 0x04, 0x24, b'l', b'o']); // mov word [rsp], "lo"
                                                    // ioctl(fd, SIOCGIFFLAGS, &ifr); ifr_flags |= IFF_UP;
                                                    // ioctl(fd, SIOCSIFFLAGS, &ifr).
    for (request, then_set_up) in [(0x8913u16, true), (0x8914, false)] {
        c.extend([0xb8, 16, 0, 0, 0]); // mov eax, SYS_ioctl
        c.extend([0x44, 0x89, 0xe7]); // mov edi, r12d
        let r = request.to_le_bytes();
        c.extend([0xbe, r[0], r[1], 0, 0]); // mov esi, request
        c.extend([0x48, 0x89, 0xe2]); // mov rdx, rsp
        c.extend([0x0f, 0x05]); // syscall
        if then_set_up {
            c.extend([0x66, 0x83, 0x4c, 0x24, 16, 0x01]); // or word [rsp+16], IFF_UP
        }
    }
    // The descriptor is left open: closing it would only cost bytes.
    let top = c.len();
    // wait4(-1, NULL, 0, NULL): reaps a child, or fails at once (ECHILD)
    // when there is none.
    c.extend([0xb8, 61, 0, 0, 0]); // mov eax, SYS_wait4
    c.extend([0xbf, 0xff, 0xff, 0xff, 0xff]); // mov edi, -1
    c.extend([0x31, 0xf6]); // xor esi, esi
    c.extend([0x31, 0xd2]); // xor edx, edx
    c.extend([0x45, 0x31, 0xd2]); // xor r10d, r10d
    c.extend([0x0f, 0x05]); // syscall
    c.extend([0x85, 0xc0]); // test eax, eax
    let back = |c: &Vec<u8>| -> u8 { (top as isize - (c.len() as isize + 2)) as i8 as u8 };
    let rel = back(&c);
    c.extend([0x79, rel]); // jns top: reaped one, look for the next
                           // nanosleep(&{1, 0}, NULL).
    c.extend([0x6a, 0x00]); // push 0 (tv_nsec)
    c.extend([0x6a, 0x01]); // push 1 (tv_sec)
    c.extend([0xb8, 35, 0, 0, 0]); // mov eax, SYS_nanosleep
    c.extend([0x48, 0x89, 0xe7]); // mov rdi, rsp
    c.extend([0x31, 0xf6]); // xor esi, esi
    c.extend([0x0f, 0x05]); // syscall
    c.extend([0x48, 0x83, 0xc4, 16]); // add rsp, 16
    let rel = back(&c);
    c.extend([0xeb, rel]); // jmp top
    c
}

/// The whole program: an ELF header, one loadable segment (the file,
/// readable and executable) and the code.
pub fn program() -> Vec<u8> {
    let code = code();
    let size = (EHDR + PHDR + code.len()) as u64;
    let entry = BASE + (EHDR + PHDR) as u64;
    let mut f: Vec<u8> = Vec::with_capacity(size as usize);
    // e_ident: magic, 64-bit, little-endian, version 1, System V ABI.
    f.extend([0x7f, b'E', b'L', b'F', 2, 1, 1, 0]);
    f.extend([0u8; 8]);
    f.extend(2u16.to_le_bytes()); // e_type: ET_EXEC
    f.extend(0x3eu16.to_le_bytes()); // e_machine: x86-64
    f.extend(1u32.to_le_bytes()); // e_version
    f.extend(entry.to_le_bytes()); // e_entry
    f.extend((EHDR as u64).to_le_bytes()); // e_phoff
    f.extend(0u64.to_le_bytes()); // e_shoff
    f.extend(0u32.to_le_bytes()); // e_flags
    f.extend((EHDR as u16).to_le_bytes()); // e_ehsize
    f.extend((PHDR as u16).to_le_bytes()); // e_phentsize
    f.extend(1u16.to_le_bytes()); // e_phnum
    f.extend([0u8; 6]); // e_shentsize, e_shnum, e_shstrndx
    debug_assert_eq!(f.len(), EHDR);
    f.extend(1u32.to_le_bytes()); // p_type: PT_LOAD
    f.extend(5u32.to_le_bytes()); // p_flags: PF_R | PF_X
    f.extend(0u64.to_le_bytes()); // p_offset
    f.extend(BASE.to_le_bytes()); // p_vaddr
    f.extend(BASE.to_le_bytes()); // p_paddr
    f.extend(size.to_le_bytes()); // p_filesz
    f.extend(size.to_le_bytes()); // p_memsz
    f.extend(0x1000u64.to_le_bytes()); // p_align
    debug_assert_eq!(f.len(), EHDR + PHDR);
    f.extend(code);
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;

    #[test]
    fn the_program_is_one_small_executable_segment() {
        let p = program();
        assert!(p.len() < 512, "{} bytes", p.len());
        assert_eq!(&p[..4], b"\x7fELF");
        let entry = u64::from_le_bytes(p[24..32].try_into().unwrap());
        assert_eq!(entry, BASE + 120);
        let filesz = u64::from_le_bytes(p[EHDR + 32..EHDR + 40].try_into().unwrap());
        assert_eq!(filesz, p.len() as u64);
    }

    /// Whether loopback is up in the network namespace of `pid`, read by a
    /// thread that enters it.
    fn lo_up_in(pid: u32) -> bool {
        let ns = std::fs::File::open(format!("/proc/{pid}/ns/net")).unwrap();
        std::thread::spawn(move || {
            // SAFETY: setns on this thread alone, with a namespace fd we own.
            assert_eq!(unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) }, 0);
            // SAFETY: a plain socket(2) call.
            let s = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0) };
            assert!(s >= 0);
            // SAFETY: ifreq is plain data; all zeroes is valid.
            let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
            ifr.ifr_name[0] = b'l' as libc::c_char;
            ifr.ifr_name[1] = b'o' as libc::c_char;
            // SAFETY: SIOCGIFFLAGS fills the ifreq we pass.
            let r = unsafe { libc::ioctl(s, libc::SIOCGIFFLAGS, &mut ifr) };
            // SAFETY: s is our socket.
            unsafe { libc::close(s) };
            assert_eq!(r, 0);
            // SAFETY: SIOCGIFFLAGS set the flags member of the union.
            let flags = unsafe { ifr.ifr_ifru.ifru_flags };
            flags & libc::IFF_UP as libc::c_short != 0
        })
        .join()
        .unwrap()
    }

    #[test]
    fn it_brings_loopback_up_and_waits_for_sigkill() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipping: a network namespace needs root");
            return;
        }
        let t = tempfile::tempdir().unwrap();
        let exe = t.path().join("pause");
        std::fs::write(&exe, program()).unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut cmd = std::process::Command::new(&exe);
        // SAFETY: unshare(2) only, between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::unshare(libc::CLONE_NEWNET) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            })
        };
        let mut child = cmd.spawn().unwrap();
        let up = (0..200).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(10));
            lo_up_in(child.id())
        });
        assert!(up, "loopback stayed down");
        assert!(child.try_wait().unwrap().is_none(), "pause ended by itself");
        // It sleeps: a second of waiting costs it next to no CPU time (a
        // spinning loop would show about 100 ticks).
        std::thread::sleep(std::time::Duration::from_secs(1));
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", child.id())).unwrap();
        let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        assert!(ticks < 20, "pause used {ticks} ticks of CPU in a second");
        child.kill().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&child.wait().unwrap()),
            Some(libc::SIGKILL)
        );
    }
}
