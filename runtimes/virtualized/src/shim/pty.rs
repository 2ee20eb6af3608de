//! The host's end of a container's terminal: a pty pair whose master goes
//! to `--console-socket` (as the native runtime sends it), whose slave the
//! shim relays to and from the guest's own pty (stream 0). The slave is raw:
//! the guest's line discipline does the echoing and translating, once.

use std::ffi::CStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

fn last(what: &str) -> io::Error {
    let e = io::Error::last_os_error();
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// Opens a pty pair: (master, slave), both close-on-exec.
pub fn open(size: Option<(u16, u16)>) -> io::Result<(OwnedFd, File)> {
    // SAFETY: posix_openpt takes flags only; a non-negative result is a new
    // fd nobody else owns.
    let m = unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) };
    if m < 0 {
        return Err(last("posix_openpt"));
    }
    // SAFETY: `m` was just opened and is owned here alone.
    let master = unsafe { OwnedFd::from_raw_fd(m) };
    // SAFETY: grantpt and unlockpt take the master fd, valid above.
    if unsafe { libc::grantpt(m) } != 0 || unsafe { libc::unlockpt(m) } != 0 {
        return Err(last("unlocking the pty"));
    }
    let mut name = [0 as libc::c_char; 128];
    // SAFETY: ptsname_r writes a NUL-terminated name of at most `len` bytes
    // into the buffer we own.
    if unsafe { libc::ptsname_r(m, name.as_mut_ptr(), name.len()) } != 0 {
        return Err(last("ptsname_r"));
    }
    // SAFETY: ptsname_r succeeded, so `name` holds a NUL-terminated string.
    let slave_name = unsafe { CStr::from_ptr(name.as_ptr()) };
    // SAFETY: open with a valid NUL-terminated path and flags.
    let s = unsafe { libc::open(slave_name.as_ptr(), libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) };
    if s < 0 {
        return Err(last("opening the pty slave"));
    }
    // SAFETY: `s` was just opened and is owned here alone.
    let slave = unsafe { File::from_raw_fd(s) };
    make_raw(&slave)?;
    if let Some((rows, cols)) = size {
        set_size(&slave, rows, cols)?;
    }
    Ok((master, slave))
}

fn make_raw(tty: &File) -> io::Result<()> {
    // SAFETY: termios is plain data; tcgetattr fills it from a valid tty fd.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: `tty` is an open terminal; `t` is a valid out pointer.
    if unsafe { libc::tcgetattr(tty.as_raw_fd(), &mut t) } != 0 {
        return Err(last("tcgetattr on the pty"));
    }
    // SAFETY: cfmakeraw edits the struct we own.
    unsafe { libc::cfmakeraw(&mut t) };
    // SAFETY: `tty` is an open terminal; `t` is a valid termios.
    if unsafe { libc::tcsetattr(tty.as_raw_fd(), libc::TCSANOW, &t) } != 0 {
        return Err(last("tcsetattr on the pty"));
    }
    Ok(())
}

pub fn set_size(tty: &File, rows: u16, cols: u16) -> io::Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize from the pointer, valid here.
    if unsafe { libc::ioctl(tty.as_raw_fd(), libc::TIOCSWINSZ, &ws) } != 0 {
        return Err(last("TIOCSWINSZ"));
    }
    Ok(())
}

/// The terminal's window size (rows, columns).
pub fn size(tty: &impl AsRawFd) -> io::Result<(u16, u16)> {
    // SAFETY: winsize is plain data; all zeroes is valid.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ fills the winsize we own.
    if unsafe { libc::ioctl(tty.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) } != 0 {
        return Err(last("TIOCGWINSZ"));
    }
    Ok((ws.ws_row, ws.ws_col))
}

/// Sends the master to the console socket, as the native runtime does.
pub fn send_master(socket: &Path, master: &OwnedFd) -> io::Result<()> {
    let sock = UnixStream::connect(socket)
        .map_err(|e| io::Error::new(e.kind(), format!("--console-socket {}: {e}", socket.display())))?;
    container::unix::send_fd(&sock, b"/dev/ptmx", master.as_fd())
        .map_err(|e| io::Error::new(e.kind(), format!("sending the pty to --console-socket: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn bytes_cross_the_raw_pair_untranslated() {
        let (master, slave) = open(Some((24, 80))).unwrap();
        let mut m = File::from(master);
        m.write_all(b"a\rb\n").unwrap();
        let mut got = [0u8; 4];
        (&slave).read_exact(&mut got).unwrap();
        assert_eq!(&got, b"a\rb\n");
        (&slave).write_all(b"out\n").unwrap();
        let mut got = [0u8; 4];
        m.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"out\n");
        assert_eq!(size(&slave).unwrap(), (24, 80));
        set_size(&slave, 40, 100).unwrap();
        assert_eq!(size(&m).unwrap(), (40, 100));
    }
}
