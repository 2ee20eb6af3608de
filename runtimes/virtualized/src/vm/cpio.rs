//! A writer of the "newc" cpio format, the one the kernel unpacks into its
//! initial rootfs (Documentation/driver-api/early-userspace/buffer-format.rst).
//! Concatenated archives are unpacked in turn, which is how the per-container
//! bundle is appended to the cached base archive.

use std::io::{self, Read, Write};

const MAGIC: &[u8] = b"070701";
const TRAILER: &str = "TRAILER!!!";

/// One entry's metadata; `mode` holds the file type bits as well.
#[derive(Debug, Clone, Copy, Default)]
pub struct Meta {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: u32,
}

impl Meta {
    pub fn new(mode: u32) -> Meta {
        Meta {
            mode,
            ..Meta::default()
        }
    }
}

/// Writes entries in order; a directory must come before what it holds.
pub struct Writer<W: Write> {
    out: W,
    next_ino: u32,
    written: u64,
}

impl<W: Write> Writer<W> {
    pub fn new(out: W) -> Writer<W> {
        Writer {
            out,
            // Distinct inode numbers per archive keep the kernel from taking
            // two entries for hard links of one file.
            next_ino: 1,
            written: 0,
        }
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    fn header(&mut self, name: &str, meta: Meta, nlink: u32, size: u32, rdev: (u32, u32)) -> io::Result<()> {
        let name = name.trim_start_matches('/');
        let name = if name.is_empty() { "." } else { name };
        let ino = self.next_ino;
        self.next_ino += 1;
        let mut h = Vec::with_capacity(110 + name.len() + 4);
        h.extend_from_slice(MAGIC);
        for v in [
            ino,
            meta.mode,
            meta.uid,
            meta.gid,
            nlink,
            meta.mtime,
            size,
            0,
            0,
            rdev.0,
            rdev.1,
            name.len() as u32 + 1,
            0,
        ] {
            h.extend_from_slice(format!("{v:08x}").as_bytes());
        }
        h.extend_from_slice(name.as_bytes());
        h.push(0);
        pad(&mut h);
        self.put(&h)
    }

    fn put(&mut self, b: &[u8]) -> io::Result<()> {
        self.out.write_all(b)?;
        self.written += b.len() as u64;
        Ok(())
    }

    fn pad_data(&mut self, len: u64) -> io::Result<()> {
        let rem = (4 - (len % 4) as usize) % 4;
        self.put(&[0u8; 3][..rem])
    }

    pub fn dir(&mut self, name: &str, meta: Meta) -> io::Result<()> {
        let meta = Meta {
            mode: libc::S_IFDIR | (meta.mode & 0o7777),
            ..meta
        };
        self.header(name, meta, 2, 0, (0, 0))
    }

    /// A regular file of `size` bytes read from `data`; fails if `data`
    /// holds fewer (a file that shrank while it was packed).
    pub fn file(&mut self, name: &str, meta: Meta, size: u64, data: &mut impl Read) -> io::Result<()> {
        let size32 = u32::try_from(size).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{name}: {size} bytes is over cpio's 4 GiB"),
            )
        })?;
        let meta = Meta {
            mode: libc::S_IFREG | (meta.mode & 0o7777),
            ..meta
        };
        self.header(name, meta, 1, size32, (0, 0))?;
        let copied = io::copy(&mut data.take(size), &mut CountingWriter(self))?;
        if copied != size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{name}: expected {size} bytes, read {copied}"),
            ));
        }
        self.pad_data(size)
    }

    pub fn bytes(&mut self, name: &str, meta: Meta, data: &[u8]) -> io::Result<()> {
        self.file(name, meta, data.len() as u64, &mut &data[..])
    }

    pub fn symlink(&mut self, name: &str, meta: Meta, target: &[u8]) -> io::Result<()> {
        let meta = Meta {
            mode: libc::S_IFLNK | 0o777,
            ..meta
        };
        self.header(name, meta, 1, target.len() as u32, (0, 0))?;
        self.put(target)?;
        self.pad_data(target.len() as u64)
    }

    /// A device node, fifo or other special file: `meta.mode` carries its
    /// type.
    pub fn special(&mut self, name: &str, meta: Meta, rdev: (u32, u32)) -> io::Result<()> {
        self.header(name, meta, 1, 0, rdev)
    }

    /// Writes the trailer and returns the output.
    pub fn finish(mut self) -> io::Result<W> {
        self.header(TRAILER, Meta::default(), 1, 0, (0, 0))?;
        self.out.flush()?;
        Ok(self.out)
    }
}

struct CountingWriter<'a, W: Write>(&'a mut Writer<W>);

impl<W: Write> Write for CountingWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.0.out.write(buf)?;
        self.0.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.out.flush()
    }
}

fn pad(v: &mut Vec<u8>) {
    while !v.len().is_multiple_of(4) {
        v.push(0);
    }
}

/// One entry of an archive being read: its name (no leading `/`), metadata
/// and data (a regular file's bytes, a symlink's target).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry<'a> {
    pub name: &'a str,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: u32,
    pub rdev: (u32, u32),
    pub data: &'a [u8],
}

/// The entries of (possibly concatenated, zero-padded) newc archives, as
/// the kernel's unpacker reads them. A malformed archive is an error naming
/// the offset, never a panic.
pub fn parse(archive: &[u8]) -> Result<Vec<Entry<'_>>, String> {
    let mut out = Vec::new();
    let mut at = 0;
    let field = |at: usize, i: usize| -> Result<u32, String> {
        let f = archive
            .get(at + 6 + 8 * i..at + 14 + 8 * i)
            .ok_or(format!("cpio: truncated header at {at}"))?;
        std::str::from_utf8(f)
            .ok()
            .and_then(|t| u32::from_str_radix(t, 16).ok())
            .ok_or(format!("cpio: bad header field at {at}"))
    };
    loop {
        while archive.get(at) == Some(&0) {
            at += 1;
        }
        if at >= archive.len() {
            return Ok(out);
        }
        if archive.get(at..at + 6) != Some(MAGIC) {
            return Err(format!("cpio: no newc magic at {at}"));
        }
        let (mode, uid, gid, mtime, size) = (
            field(at, 1)?,
            field(at, 2)?,
            field(at, 3)?,
            field(at, 5)?,
            field(at, 6)?,
        );
        let (rmaj, rmin, namesize) = (field(at, 9)?, field(at, 10)?, field(at, 11)? as usize);
        let name_end = (at + 110).checked_add(namesize).filter(|_| namesize > 0);
        let name = name_end
            .and_then(|e| archive.get(at + 110..e - 1))
            .filter(|_| name_end.and_then(|e| archive.get(e - 1)) == Some(&0))
            .and_then(|n| std::str::from_utf8(n).ok())
            .ok_or(format!("cpio: bad name at {at}"))?;
        let data_start = (at + 110 + namesize + 3) & !3;
        let data = archive
            .get(data_start..data_start + size as usize)
            .ok_or(format!("cpio: {name}: data truncated"))?;
        at = (data_start + size as usize + 3) & !3;
        if name != TRAILER {
            out.push(Entry {
                name,
                mode,
                uid,
                gid,
                mtime,
                rdev: (rmaj, rmin),
                data,
            });
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// One entry as a reader sees it.
    #[derive(Debug, Clone, PartialEq)]
    pub struct Entry {
        pub name: String,
        pub mode: u32,
        pub uid: u32,
        pub gid: u32,
        pub rdev: (u32, u32),
        pub data: Vec<u8>,
    }

    /// An independent reader of (possibly concatenated) newc archives, as
    /// the kernel reads them: zero padding between archives is skipped.
    pub fn read_all(mut b: &[u8]) -> Vec<Entry> {
        fn hex(f: &[u8]) -> u32 {
            u32::from_str_radix(std::str::from_utf8(f).unwrap(), 16).unwrap()
        }
        let mut out = Vec::new();
        let total = b.len();
        loop {
            while b.first() == Some(&0) {
                b = &b[1..];
            }
            if b.is_empty() {
                return out;
            }
            let start = total - b.len();
            assert_eq!(start % 4, 0, "entry at {start} is not 4-aligned");
            assert_eq!(&b[..6], MAGIC, "bad magic at {start}");
            let f = |i: usize| hex(&b[6 + 8 * i..14 + 8 * i]);
            let (mode, uid, gid, size, rmaj, rmin, namesize) = (f(1), f(2), f(3), f(6), f(9), f(10), f(11));
            let name_end = 110 + namesize as usize;
            assert_eq!(b[name_end - 1], 0, "name not NUL-terminated");
            let name = String::from_utf8(b[110..name_end - 1].to_vec()).unwrap();
            let data_start = (name_end + 3) & !3;
            let data_end = data_start + size as usize;
            let data = b[data_start..data_end].to_vec();
            b = &b[(data_end + 3) & !3..];
            if name != TRAILER {
                out.push(Entry {
                    name,
                    mode,
                    uid,
                    gid,
                    rdev: (rmaj, rmin),
                    data,
                });
            }
        }
    }

    #[test]
    fn what_is_written_reads_back_across_concatenated_archives() {
        let mut w = Writer::new(Vec::new());
        w.dir(
            "/dev",
            Meta {
                mode: 0o755,
                uid: 3,
                gid: 4,
                mtime: 0,
            },
        )
        .unwrap();
        w.special("dev/console", Meta::new(libc::S_IFCHR | 0o600), (5, 1))
            .unwrap();
        w.bytes("init", Meta::new(0o755), b"hello").unwrap();
        w.symlink("lnk", Meta::default(), b"init").unwrap();
        let mut first = w.finish().unwrap();
        let mut w = Writer::new(Vec::new());
        w.bytes("a/b", Meta::new(0o4711), &[7u8; 4099]).unwrap();
        first.extend(w.finish().unwrap());

        let got = read_all(&first);
        let names: Vec<_> = got.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["dev", "dev/console", "init", "lnk", "a/b"]);
        assert_eq!(got[0].mode, libc::S_IFDIR | 0o755);
        assert_eq!((got[0].uid, got[0].gid), (3, 4));
        assert_eq!(got[1].mode, libc::S_IFCHR | 0o600);
        assert_eq!(got[1].rdev, (5, 1));
        assert_eq!(got[2].data, b"hello");
        assert_eq!(got[3].mode, libc::S_IFLNK | 0o777);
        assert_eq!(got[3].data, b"init");
        assert_eq!(got[4].mode, libc::S_IFREG | 0o4711);
        assert_eq!(got[4].data, vec![7u8; 4099]);
    }

    #[test]
    fn the_system_cpio_lists_what_is_written() {
        if !std::path::Path::new("/usr/bin/cpio").exists() {
            eprintln!("skipped: no /usr/bin/cpio");
            return;
        }
        let mut w = Writer::new(Vec::new());
        w.dir("d", Meta::new(0o700)).unwrap();
        w.bytes("d/f", Meta::new(0o644), b"xyz").unwrap();
        let bytes = w.finish().unwrap();
        let mut child = std::process::Command::new("/usr/bin/cpio")
            .args(["-t", "--quiet"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&bytes).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        assert_eq!(String::from_utf8_lossy(&out.stdout), "d\nd/f\n");
    }

    #[test]
    fn a_short_reader_is_an_error() {
        let mut w = Writer::new(Vec::new());
        let err = w.file("f", Meta::new(0o644), 10, &mut &b"abc"[..]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn the_parser_agrees_with_the_writer_and_refuses_garbage() {
        let mut w = Writer::new(Vec::new());
        w.dir("/run/bundle", Meta::new(0o755)).unwrap();
        w.bytes(
            "run/bundle/config.json",
            Meta {
                mode: 0o600,
                uid: 7,
                gid: 8,
                mtime: 9,
            },
            b"{}",
        )
        .unwrap();
        w.symlink("run/bundle/l", Meta::new(0o777), b"config.json").unwrap();
        w.special("run/bundle/null", Meta::new(libc::S_IFCHR | 0o666), (1, 3))
            .unwrap();
        let mut a = w.finish().unwrap();
        a.extend([0u8; 512]);
        let got = parse(&a).unwrap();
        let names: Vec<_> = got.iter().map(|e| e.name).collect();
        assert_eq!(
            names,
            [
                "run/bundle",
                "run/bundle/config.json",
                "run/bundle/l",
                "run/bundle/null"
            ]
        );
        assert_eq!(got[1].mode, libc::S_IFREG | 0o600);
        assert_eq!(
            (got[1].uid, got[1].gid, got[1].mtime, got[1].data),
            (7, 8, 9, &b"{}"[..])
        );
        assert_eq!(got[2].data, b"config.json");
        assert_eq!(got[3].rdev, (1, 3));
        for n in 0..a.len() - 512 {
            // Cut anywhere inside an entry: an error, never a panic.
            let _ = parse(&a[..n]);
        }
        assert!(parse(b"070701zzzzzzzz").is_err());
        assert!(parse(b"hello").is_err());
    }
}
