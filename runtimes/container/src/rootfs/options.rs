//! The Linux mount options of config.md ("Linux mount options") turned into
//! what mount(2) and mount_setattr(2) take.

use libc::c_ulong;

/// mount_setattr(2) attribute bits (linux/mount.h).
pub const MOUNT_ATTR_RDONLY: u64 = 0x1;
pub const MOUNT_ATTR_NOSUID: u64 = 0x2;
pub const MOUNT_ATTR_NODEV: u64 = 0x4;
pub const MOUNT_ATTR_NOEXEC: u64 = 0x8;
pub const MOUNT_ATTR_ATIME_MASK: u64 = 0x70;
pub const MOUNT_ATTR_RELATIME: u64 = 0x0;
pub const MOUNT_ATTR_NOATIME: u64 = 0x10;
pub const MOUNT_ATTR_STRICTATIME: u64 = 0x20;
pub const MOUNT_ATTR_NODIRATIME: u64 = 0x80;
pub const MOUNT_ATTR_NOSYMFOLLOW: u64 = 0x200000;

/// One mount's options, sorted by where they go.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MountOptions {
    /// `MS_*` flags to set (without `MS_BIND`/`MS_REC`, see `bind`).
    pub flags: c_ulong,
    /// Flags an option explicitly cleared (`rw`, `suid`, ...): a bind
    /// remount must not carry them over from the source.
    pub cleared: c_ulong,
    /// `bind` or `rbind` was given.
    pub bind: bool,
    /// `rbind`.
    pub recursive: bool,
    /// Propagation changes (`MS_PRIVATE`, `MS_SHARED | MS_REC`, ...), in
    /// order; each is its own mount(2) call.
    pub propagation: Vec<c_ulong>,
    /// The recursive `r*` options, for mount_setattr(AT_RECURSIVE).
    pub attr_set: u64,
    pub attr_clr: u64,
    /// Filesystem-specific options, for mount(2)'s data argument.
    pub data: Vec<String>,
    /// `idmap` (false) or `ridmap` (true).
    pub idmap: Option<bool>,
    pub tmpcopyup: bool,
}

enum Opt {
    Set(c_ulong),
    Clear(c_ulong),
    Prop(c_ulong),
    /// Recursive attribute: (set, clear).
    Attr(u64, u64),
    Bind(bool),
    Idmap(bool),
    Tmpcopyup,
    Nothing,
}

fn lookup(o: &str) -> Option<Opt> {
    use Opt::*;
    const AT: u64 = MOUNT_ATTR_ATIME_MASK;
    Some(match o {
        "defaults" => Nothing,
        "ro" => Set(libc::MS_RDONLY),
        "rw" => Clear(libc::MS_RDONLY),
        "nosuid" => Set(libc::MS_NOSUID),
        "suid" => Clear(libc::MS_NOSUID),
        "nodev" => Set(libc::MS_NODEV),
        "dev" => Clear(libc::MS_NODEV),
        "noexec" => Set(libc::MS_NOEXEC),
        "exec" => Clear(libc::MS_NOEXEC),
        "sync" => Set(libc::MS_SYNCHRONOUS),
        "async" => Clear(libc::MS_SYNCHRONOUS),
        "dirsync" => Set(libc::MS_DIRSYNC),
        "remount" => Set(libc::MS_REMOUNT),
        "mand" => Set(libc::MS_MANDLOCK),
        "nomand" => Clear(libc::MS_MANDLOCK),
        "atime" => Clear(libc::MS_NOATIME),
        "noatime" => Set(libc::MS_NOATIME),
        "diratime" => Clear(libc::MS_NODIRATIME),
        "nodiratime" => Set(libc::MS_NODIRATIME),
        "relatime" => Set(libc::MS_RELATIME),
        "norelatime" => Clear(libc::MS_RELATIME),
        "strictatime" => Set(libc::MS_STRICTATIME),
        "nostrictatime" => Clear(libc::MS_STRICTATIME),
        "iversion" => Set(libc::MS_I_VERSION),
        "noiversion" => Clear(libc::MS_I_VERSION),
        "lazytime" => Set(libc::MS_LAZYTIME),
        "nolazytime" => Clear(libc::MS_LAZYTIME),
        "silent" => Set(libc::MS_SILENT),
        "loud" => Clear(libc::MS_SILENT),
        "nosymfollow" => Set(libc::MS_NOSYMFOLLOW),
        "symfollow" => Clear(libc::MS_NOSYMFOLLOW),
        "bind" => Bind(false),
        "rbind" => Bind(true),
        "private" => Prop(libc::MS_PRIVATE),
        "rprivate" => Prop(libc::MS_PRIVATE | libc::MS_REC),
        "shared" => Prop(libc::MS_SHARED),
        "rshared" => Prop(libc::MS_SHARED | libc::MS_REC),
        "slave" => Prop(libc::MS_SLAVE),
        "rslave" => Prop(libc::MS_SLAVE | libc::MS_REC),
        "unbindable" => Prop(libc::MS_UNBINDABLE),
        "runbindable" => Prop(libc::MS_UNBINDABLE | libc::MS_REC),
        "rro" => Attr(MOUNT_ATTR_RDONLY, 0),
        "rrw" => Attr(0, MOUNT_ATTR_RDONLY),
        "rnosuid" => Attr(MOUNT_ATTR_NOSUID, 0),
        "rsuid" => Attr(0, MOUNT_ATTR_NOSUID),
        "rnodev" => Attr(MOUNT_ATTR_NODEV, 0),
        "rdev" => Attr(0, MOUNT_ATTR_NODEV),
        "rnoexec" => Attr(MOUNT_ATTR_NOEXEC, 0),
        "rexec" => Attr(0, MOUNT_ATTR_NOEXEC),
        "rnodiratime" => Attr(MOUNT_ATTR_NODIRATIME, 0),
        "rdiratime" => Attr(0, MOUNT_ATTR_NODIRATIME),
        "rnosymfollow" => Attr(MOUNT_ATTR_NOSYMFOLLOW, 0),
        "rsymfollow" => Attr(0, MOUNT_ATTR_NOSYMFOLLOW),
        // The atime modes are one field in mount_setattr: changing it means
        // clearing the whole mask and setting one mode. "Not noatime" and
        // "not strictatime" fall back to the kernel default, relatime; "not
        // relatime" is strictatime.
        "rnoatime" => Attr(MOUNT_ATTR_NOATIME, AT),
        "rstrictatime" => Attr(MOUNT_ATTR_STRICTATIME, AT),
        "rrelatime" => Attr(MOUNT_ATTR_RELATIME, AT),
        "ratime" | "rnostrictatime" => Attr(MOUNT_ATTR_RELATIME, AT),
        "rnorelatime" => Attr(MOUNT_ATTR_STRICTATIME, AT),
        "idmap" => Idmap(false),
        "ridmap" => Idmap(true),
        "tmpcopyup" => Tmpcopyup,
        _ => return None,
    })
}

/// Sorts `options` in order: a later option wins over an earlier opposite
/// one (`ro` then `rw` is `rw`), as with mount(8). Anything not in the
/// table is filesystem-specific data (config.md: "Runtimes SHOULD treat
/// unknown options as filesystem-specific ones").
pub fn parse(options: &[String]) -> MountOptions {
    let mut m = MountOptions::default();
    for o in options {
        match lookup(o) {
            Some(Opt::Set(f)) => {
                m.flags |= f;
                m.cleared &= !f;
            }
            Some(Opt::Clear(f)) => {
                m.flags &= !f;
                m.cleared |= f;
            }
            Some(Opt::Prop(p)) => m.propagation.push(p),
            Some(Opt::Attr(set, clr)) => {
                m.attr_clr = (m.attr_clr | clr) & !set;
                m.attr_set = (m.attr_set | set) & !clr;
                if clr == MOUNT_ATTR_ATIME_MASK {
                    // A later atime mode replaces an earlier one.
                    m.attr_set = (m.attr_set & !MOUNT_ATTR_ATIME_MASK) | set;
                    m.attr_clr |= MOUNT_ATTR_ATIME_MASK;
                }
            }
            Some(Opt::Bind(r)) => {
                m.bind = true;
                m.recursive |= r;
            }
            Some(Opt::Idmap(r)) => m.idmap = Some(r),
            Some(Opt::Tmpcopyup) => m.tmpcopyup = true,
            Some(Opt::Nothing) => {}
            None => m.data.push(o.clone()),
        }
    }
    m
}

/// Flags a bind remount may apply (the rest, like `MS_SYNCHRONOUS`, are
/// superblock flags that a bind mount cannot change).
pub const BIND_REMOUNTABLE: c_ulong = libc::MS_RDONLY
    | libc::MS_NOSUID
    | libc::MS_NODEV
    | libc::MS_NOEXEC
    | libc::MS_NOATIME
    | libc::MS_NODIRATIME
    | libc::MS_RELATIME
    | libc::MS_STRICTATIME
    | libc::MS_NOSYMFOLLOW;

#[cfg(test)]
mod tests {
    use super::*;

    fn p(o: &[&str]) -> MountOptions {
        parse(&o.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn flag_table() {
        let cases: &[(&str, c_ulong)] = &[
            ("ro", libc::MS_RDONLY),
            ("nosuid", libc::MS_NOSUID),
            ("nodev", libc::MS_NODEV),
            ("noexec", libc::MS_NOEXEC),
            ("sync", libc::MS_SYNCHRONOUS),
            ("dirsync", libc::MS_DIRSYNC),
            ("remount", libc::MS_REMOUNT),
            ("mand", libc::MS_MANDLOCK),
            ("noatime", libc::MS_NOATIME),
            ("nodiratime", libc::MS_NODIRATIME),
            ("relatime", libc::MS_RELATIME),
            ("strictatime", libc::MS_STRICTATIME),
            ("iversion", libc::MS_I_VERSION),
            ("lazytime", libc::MS_LAZYTIME),
            ("silent", libc::MS_SILENT),
            ("nosymfollow", libc::MS_NOSYMFOLLOW),
        ];
        for (o, f) in cases {
            let m = p(&[o]);
            assert_eq!(m.flags, *f, "{o}");
            assert!(m.data.is_empty(), "{o}");
        }
    }

    #[test]
    fn opposites_clear_and_the_last_wins() {
        for (set, clear) in [
            ("ro", "rw"),
            ("nosuid", "suid"),
            ("nodev", "dev"),
            ("noexec", "exec"),
            ("sync", "async"),
            ("mand", "nomand"),
            ("noatime", "atime"),
            ("nodiratime", "diratime"),
            ("relatime", "norelatime"),
            ("strictatime", "nostrictatime"),
            ("iversion", "noiversion"),
            ("lazytime", "nolazytime"),
            ("silent", "loud"),
            ("nosymfollow", "symfollow"),
        ] {
            let m = p(&[set, clear]);
            assert_eq!(m.flags, 0, "{set},{clear}");
            assert_ne!(m.cleared, 0, "{set},{clear}");
            let m = p(&[clear, set]);
            assert_ne!(m.flags, 0, "{clear},{set}");
            assert_eq!(m.cleared, 0, "{clear},{set}");
        }
        assert_eq!(p(&["defaults"]), MountOptions::default());
    }

    #[test]
    fn bind_and_propagation() {
        let m = p(&["rbind", "rprivate", "shared"]);
        assert!(m.bind && m.recursive);
        assert_eq!(m.propagation, vec![libc::MS_PRIVATE | libc::MS_REC, libc::MS_SHARED]);
        let m = p(&[
            "bind",
            "slave",
            "rslave",
            "unbindable",
            "runbindable",
            "private",
            "rshared",
        ]);
        assert!(m.bind && !m.recursive);
        assert_eq!(
            m.propagation,
            vec![
                libc::MS_SLAVE,
                libc::MS_SLAVE | libc::MS_REC,
                libc::MS_UNBINDABLE,
                libc::MS_UNBINDABLE | libc::MS_REC,
                libc::MS_PRIVATE,
                libc::MS_SHARED | libc::MS_REC
            ]
        );
        assert_eq!(m.flags, 0);
    }

    #[test]
    fn recursive_attributes() {
        let m = p(&["rro", "rnosuid", "rnodev", "rnoexec", "rnodiratime", "rnosymfollow"]);
        assert_eq!(
            m.attr_set,
            MOUNT_ATTR_RDONLY
                | MOUNT_ATTR_NOSUID
                | MOUNT_ATTR_NODEV
                | MOUNT_ATTR_NOEXEC
                | MOUNT_ATTR_NODIRATIME
                | MOUNT_ATTR_NOSYMFOLLOW
        );
        assert_eq!(m.attr_clr, 0);
        assert_eq!(m.flags, 0);
        let m = p(&["rro", "rrw", "rsuid", "rdev", "rexec", "rdiratime", "rsymfollow"]);
        assert_eq!(m.attr_set, 0);
        assert_eq!(
            m.attr_clr,
            MOUNT_ATTR_RDONLY
                | MOUNT_ATTR_NOSUID
                | MOUNT_ATTR_NODEV
                | MOUNT_ATTR_NOEXEC
                | MOUNT_ATTR_NODIRATIME
                | MOUNT_ATTR_NOSYMFOLLOW
        );
        let m = p(&["rnoatime"]);
        assert_eq!((m.attr_set, m.attr_clr), (MOUNT_ATTR_NOATIME, MOUNT_ATTR_ATIME_MASK));
        let m = p(&["rnoatime", "rstrictatime"]);
        assert_eq!(
            (m.attr_set, m.attr_clr),
            (MOUNT_ATTR_STRICTATIME, MOUNT_ATTR_ATIME_MASK)
        );
        let m = p(&["rstrictatime", "ratime"]);
        assert_eq!((m.attr_set, m.attr_clr), (MOUNT_ATTR_RELATIME, MOUNT_ATTR_ATIME_MASK));
        let m = p(&["rnorelatime"]);
        assert_eq!(m.attr_set, MOUNT_ATTR_STRICTATIME);
    }

    #[test]
    fn unknown_options_are_data_in_order() {
        let m = p(&["nosuid", "mode=755", "size=65536k", "newinstance"]);
        assert_eq!(m.flags, libc::MS_NOSUID);
        assert_eq!(m.data, vec!["mode=755", "size=65536k", "newinstance"]);
    }

    #[test]
    fn idmap_and_tmpcopyup_are_noted() {
        assert_eq!(p(&["idmap"]).idmap, Some(false));
        assert_eq!(p(&["ridmap"]).idmap, Some(true));
        assert!(p(&["tmpcopyup"]).tmpcopyup);
        assert!(p(&["idmap"]).data.is_empty());
    }
}
