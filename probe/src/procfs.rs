//! Pure parsers for the /proc files the probe reads. No I/O here.

use crate::report::{Caps, CgroupEntry, MountInfo};

/// What the probe takes from /proc/self/status.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Status {
    pub caps: Caps,
    pub seccomp: u32,
    pub no_new_privs: Option<bool>,
}

/// Parses /proc/self/status; missing or malformed lines leave defaults.
pub fn parse_status(text: &str) -> Status {
    let mut status = Status::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        let hex = || u64::from_str_radix(value, 16).unwrap_or(0);
        match key {
            "CapInh" => status.caps.inheritable = hex(),
            "CapPrm" => status.caps.permitted = hex(),
            "CapEff" => status.caps.effective = hex(),
            "CapBnd" => status.caps.bounding = hex(),
            "CapAmb" => status.caps.ambient = hex(),
            "Seccomp" => status.seccomp = value.parse().unwrap_or(0),
            "NoNewPrivs" => status.no_new_privs = value.parse::<u32>().ok().map(|v| v != 0),
            _ => {}
        }
    }
    status
}

/// Undoes the octal escapes (`\040` space, `\011` tab, `\012` newline,
/// `\134` backslash) the kernel writes in mountinfo fields. Anything else is
/// kept as it is.
pub fn unescape_octal(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 3 < bytes.len() && is_octal_escape(&bytes[i + 1..i + 4]) {
            let value = bytes[i + 1..i + 4]
                .iter()
                .fold(0u32, |acc, b| acc * 8 + u32::from(b - b'0'));
            // Three octal digits may exceed a byte (\777); keep those verbatim.
            if let Ok(byte) = u8::try_from(value) {
                out.push(byte);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn is_octal_escape(digits: &[u8]) -> bool {
    digits.len() == 3 && digits.iter().all(|b| (b'0'..=b'7').contains(b))
}

/// Parses one line of /proc/PID/mountinfo:
/// `36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue`.
pub fn parse_mountinfo_line(line: &str) -> Option<MountInfo> {
    let fields: Vec<&str> = line.trim_end_matches(['\n', '\r']).split(' ').collect();
    if fields.len() < 7 {
        return None;
    }
    // The optional fields end at the first lone "-" after the sixth field.
    let sep = fields.iter().skip(6).position(|f| *f == "-")? + 6;
    let after = &fields[sep + 1..];
    if after.len() < 2 {
        return None;
    }
    let list = |s: &str| -> Vec<String> { s.split(',').filter(|o| !o.is_empty()).map(unescape_octal).collect() };
    Some(MountInfo {
        id: fields[0].parse().ok()?,
        parent: fields[1].parse().ok()?,
        dev: fields[2].to_string(),
        root: unescape_octal(fields[3]),
        mount_point: unescape_octal(fields[4]),
        options: list(fields[5]),
        optional: fields[6..sep]
            .iter()
            .filter(|f| !f.is_empty())
            .map(|f| f.to_string())
            .collect(),
        fs_type: unescape_octal(after[0]),
        source: unescape_octal(after[1]),
        // Super options may themselves be missing on odd kernels; a source
        // with spaces is escaped, so anything left is the option list.
        super_options: after.get(2).map(|s| list(s)).unwrap_or_default(),
    })
}

/// Parses all of /proc/PID/mountinfo, skipping malformed lines.
pub fn parse_mountinfo(text: &str) -> Vec<MountInfo> {
    text.lines().filter_map(parse_mountinfo_line).collect()
}

/// Parses one line of /proc/PID/cgroup: `ID:CONTROLLERS:PATH`. v1 lines name
/// their controllers (`4:cpu,cpuacct:/x`, `1:name=systemd:/x`); the v2 line
/// is `0::/x`. The path may itself contain colons.
pub fn parse_cgroup_line(line: &str) -> Option<CgroupEntry> {
    let mut parts = line.trim_end_matches(['\n', '\r']).splitn(3, ':');
    let hierarchy = parts.next()?.parse().ok()?;
    let controllers = parts
        .next()?
        .split(',')
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .collect();
    let path = parts.next()?.to_string();
    Some(CgroupEntry {
        hierarchy,
        controllers,
        path,
    })
}

pub fn parse_cgroups(text: &str) -> Vec<CgroupEntry> {
    text.lines().filter_map(parse_cgroup_line).collect()
}

/// Parses /proc/PID/uid_map or gid_map: lines of `inside outside count`.
pub fn parse_id_map(text: &str) -> Vec<[u64; 3]> {
    text.lines()
        .filter_map(|line| {
            let mut nums = line.split_whitespace().map(|n| n.parse::<u64>().ok());
            let entry = [nums.next()??, nums.next()??, nums.next()??];
            nums.next().is_none().then_some(entry)
        })
        .collect()
}

/// Interface names from /proc/net/dev (two header lines, then `name: stats`).
pub fn parse_proc_net_dev(text: &str) -> Vec<String> {
    let mut names: Vec<String> = text
        .lines()
        .filter_map(|line| line.split_once(':'))
        .map(|(name, _)| name.trim().to_string())
        .filter(|name| !name.is_empty() && !name.contains('|'))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// From /proc/PID/stat: the state letter and the parent pid. The command
/// name in parentheses may contain spaces and parentheses, so the fields are
/// counted from the last `)`.
pub fn parse_stat_state_ppid(text: &str) -> Option<(String, i32)> {
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.to_string();
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

/// Maps a dotted sysctl key to its file: `net.ipv4.ip_forward` is
/// /proc/sys/net/ipv4/ip_forward. A key written with slashes is used as is.
pub fn sysctl_path(key: &str) -> String {
    let key = key.trim_start_matches('/');
    if key.contains('/') {
        format!("/proc/sys/{key}")
    } else {
        format!("/proc/sys/{}", key.replace('.', "/"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Name:\tprobe\nUmask:\t0022\nState:\tR (running)\n\
CapInh:\t0000000000000000\nCapPrm:\t00000000a80425fb\nCapEff:\t00000000a80425fb\n\
CapBnd:\t000001ffffffffff\nCapAmb:\t0000000000000001\nNoNewPrivs:\t1\n\
Seccomp:\t2\nSeccomp_filters:\t1\n";

    #[test]
    fn status_caps_and_seccomp() {
        let s = parse_status(STATUS);
        assert_eq!(s.caps.inheritable, 0);
        assert_eq!(s.caps.permitted, 0xa804_25fb);
        assert_eq!(s.caps.effective, 0xa804_25fb);
        assert_eq!(s.caps.bounding, 0x1ff_ffff_ffff);
        assert_eq!(s.caps.ambient, 1);
        assert_eq!(s.seccomp, 2);
        assert_eq!(s.no_new_privs, Some(true));
    }

    #[test]
    fn status_missing_fields_default() {
        let s = parse_status("Name:\tx\nCapEff:\tzz\n");
        assert_eq!(s, Status::default());
        assert_eq!(parse_status(""), Status::default());
    }

    #[test]
    fn unescapes_octal() {
        assert_eq!(unescape_octal(r"/a\040b"), "/a b");
        assert_eq!(unescape_octal(r"/t\011n\012s\134"), "/t\tn\ns\\");
        assert_eq!(unescape_octal(r"/x\04"), r"/x\04");
        assert_eq!(unescape_octal(r"/x\777"), r"/x\777");
        assert_eq!(unescape_octal(r"/x\9999"), r"/x\9999");
        assert_eq!(unescape_octal("plain"), "plain");
        assert_eq!(unescape_octal(r"\"), r"\");
    }

    #[test]
    fn mountinfo_with_optional_fields() {
        let m = parse_mountinfo_line(
            "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 shared:3 - ext3 /dev/root rw,errors=continue",
        )
        .unwrap();
        assert_eq!(m.id, 36);
        assert_eq!(m.parent, 35);
        assert_eq!(m.dev, "98:0");
        assert_eq!(m.root, "/mnt1");
        assert_eq!(m.mount_point, "/mnt2");
        assert_eq!(m.options, ["rw", "noatime"]);
        assert_eq!(m.optional, ["master:1", "shared:3"]);
        assert_eq!(m.fs_type, "ext3");
        assert_eq!(m.source, "/dev/root");
        assert_eq!(m.super_options, ["rw", "errors=continue"]);
    }

    #[test]
    fn mountinfo_without_optional_fields_and_with_escapes() {
        let m = parse_mountinfo_line("100 99 0:52 / /my\\040dir ro,nosuid - tmpfs my\\040src rw,size=64k\n").unwrap();
        assert!(m.optional.is_empty());
        assert_eq!(m.mount_point, "/my dir");
        assert_eq!(m.source, "my src");
        assert_eq!(m.options, ["ro", "nosuid"]);
        assert_eq!(m.super_options, ["rw", "size=64k"]);
    }

    #[test]
    fn mountinfo_empty_source_and_bad_lines() {
        let m = parse_mountinfo_line("1 0 0:1 / / rw - rootfs  rw").unwrap();
        assert_eq!(m.source, "");
        assert_eq!(m.super_options, ["rw"]);
        assert!(parse_mountinfo_line("").is_none());
        assert!(parse_mountinfo_line("1 0 0:1 / / rw shared:1 ext4 /dev/x rw").is_none());
        assert!(parse_mountinfo_line("x 0 0:1 / / rw - ext4 /dev/x rw").is_none());
        let all = parse_mountinfo("garbage\n1 0 0:1 / / rw - ext4 /dev/x rw\n");
        assert_eq!(all.len(), 1);
    }

    #[test]
    fn cgroup_v1_v2_and_hybrid() {
        let text = "12:cpu,cpuacct:/docker/abc\n1:name=systemd:/user.slice\n0::/init.scope\n";
        let all = parse_cgroups(text);
        assert_eq!(all.len(), 3);
        assert_eq!(all[0].hierarchy, 12);
        assert_eq!(all[0].controllers, ["cpu", "cpuacct"]);
        assert_eq!(all[0].path, "/docker/abc");
        assert_eq!(all[1].controllers, ["name=systemd"]);
        assert_eq!(all[2].hierarchy, 0);
        assert!(all[2].controllers.is_empty());
        assert_eq!(all[2].path, "/init.scope");
    }

    #[test]
    fn cgroup_path_with_colons() {
        let e = parse_cgroup_line("0::/a:b:c").unwrap();
        assert_eq!(e.path, "/a:b:c");
        assert!(parse_cgroup_line("nonsense").is_none());
        assert!(parse_cgroup_line("x::/").is_none());
    }

    #[test]
    fn id_maps() {
        let text = "         0       1000          1\n         1     100000      65536\n";
        assert_eq!(parse_id_map(text), [[0, 1000, 1], [1, 100_000, 65536]]);
        assert_eq!(parse_id_map("0 0 4294967295\n"), [[0, 0, 4_294_967_295]]);
        assert!(parse_id_map("1 2\n1 2 3 4\nx y z\n").is_empty());
        assert!(parse_id_map("").is_empty());
    }

    #[test]
    fn proc_net_dev() {
        let text = "Inter-|   Receive                            |  Transmit\n \
face |bytes    packets errs drop fifo frame compressed multicast|bytes\n    \
lo:    1000      10    0    0    0     0          0         0     1000\n  \
eth0: 2000 20 0 0 0 0 0 0 2000\n";
        assert_eq!(parse_proc_net_dev(text), ["eth0", "lo"]);
    }

    #[test]
    fn stat_fields() {
        assert_eq!(
            parse_stat_state_ppid("42 (a b) c)) S 7 42 42 0 -1"),
            Some(("S".to_string(), 7))
        );
        assert_eq!(parse_stat_state_ppid("garbage"), None);
    }

    #[test]
    fn sysctl_paths() {
        assert_eq!(sysctl_path("net.ipv4.ip_forward"), "/proc/sys/net/ipv4/ip_forward");
        assert_eq!(sysctl_path("kernel.hostname"), "/proc/sys/kernel/hostname");
        assert_eq!(
            sysctl_path("net/ipv4/conf/eth0.1/forwarding"),
            "/proc/sys/net/ipv4/conf/eth0.1/forwarding"
        );
    }
}
