//! The subcommands. `run` takes the arguments after argv[0] and returns the
//! exit code; output is written and flushed before it returns.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::time::Duration;

use serde_json::{json, Value};

use crate::errno::io_error_name;
use crate::{bench, collect, hook, procfs, race, signals, sys, syscall};

pub const USAGE: &str = "usage: probe COMMAND [ARG...]
commands:
  true                     exit 0
  exit N                   exit with code N
  sleep SECONDS|inf        sleep (fractions allowed)
  echo [ARG...]            print the arguments joined by spaces
  cat                      copy stdin to stdout
  listen PORT              echo every TCP connection to PORT (all addresses) back to it;
                           print `listening PORT` once ready
  write PATH [CONTENT]     create or truncate PATH and write CONTENT (\"probe\")
  report [ITEM...]         print the JSON report; ITEM is a path or sysctl:KEY
  syscall NAME [ARG...]    make one raw syscall and print its result as JSON
  race arg GOOD BAD SECRET N | race link LINK TARGET FILE SECRET N
                           open a path N times while another thread changes
                           what it names; count the opens that read SECRET
  signals                  print `ready`, then the name of each signal received
  hook LABEL FILE          record an OCI hook run as a JSON line in FILE
  hook-fail LABEL FILE     the same, then exit 1
  listen-fds               print LISTEN_FDS, LISTEN_PID and the open fds as JSON
  tty                      print the terminal state of stdin/stdout as JSON
  ps                       print the processes visible in /proc as JSON
  bench WORKLOAD [--batches N] [--batch-ms MS] [--dir DIR] [--exe PATH]
                           time WORKLOAD's operations and print ns per op as JSON";

/// Exit code for a bad command line.
pub const EXIT_USAGE: i32 = 2;

fn usage_error(msg: &str) -> i32 {
    let _ = writeln!(io::stderr(), "probe: {msg}\n{USAGE}");
    EXIT_USAGE
}

/// Writes `text` and a newline to stdout and flushes; a closed stdout is not
/// an error worth dying for.
fn print_line(text: &str) {
    let mut out = io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.write_all(b"\n");
    let _ = out.flush();
}

pub fn run(args: &[String]) -> i32 {
    let Some((cmd, rest)) = args.split_first() else {
        return usage_error("missing command");
    };
    let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
    match (cmd.as_str(), rest.as_slice()) {
        ("true", []) => 0,
        ("exit", [code]) => match code.parse::<i32>() {
            Ok(code) => code,
            Err(_) => usage_error(&format!("exit: bad code `{code}`")),
        },
        ("sleep", [secs]) => sleep(secs),
        ("echo", words) => {
            print_line(&words.join(" "));
            0
        }
        ("cat", []) => cat(),
        ("listen", [port]) => match port.parse::<u16>() {
            Ok(p) => listen(p),
            Err(_) => usage_error(&format!("listen: {port:?} is not a port number")),
        },
        ("write", [path]) => write(path, "probe"),
        ("write", [path, content]) => write(path, content),
        ("report", _) => {
            let items: Vec<String> = args[1..].to_vec();
            let report = collect::collect(&items);
            match serde_json::to_string(&report) {
                Ok(text) => {
                    print_line(&text);
                    0
                }
                Err(err) => {
                    let _ = writeln!(io::stderr(), "probe: report: {err}");
                    1
                }
            }
        }
        ("syscall", _) => match syscall::run(&args[1..]) {
            Ok(value) => {
                print_line(&value.to_string());
                0
            }
            Err(syscall::Failure::Usage(msg)) => usage_error(&msg),
            Err(syscall::Failure::Setup(msg)) => {
                let _ = writeln!(io::stderr(), "probe: {msg}");
                1
            }
        },
        ("race", _) => match race::run(&rest) {
            Ok(value) => {
                print_line(&value.to_string());
                0
            }
            Err(msg) => usage_error(&msg),
        },
        ("signals", []) => signals::run(),
        ("bench", _) => run_bench(&rest),
        ("hook", [label, file]) => hook::run(label, file, 0),
        ("hook-fail", [label, file]) => hook::run(label, file, 1),
        ("listen-fds", []) => {
            print_line(&listen_fds().to_string());
            0
        }
        ("tty", []) => {
            print_line(&tty().to_string());
            0
        }
        ("ps", []) => {
            print_line(&ps().to_string());
            0
        }
        ("help" | "--help" | "-h", []) => {
            print_line(USAGE);
            0
        }
        (
            "true" | "exit" | "sleep" | "cat" | "listen" | "write" | "signals" | "hook" | "hook-fail" | "listen-fds"
            | "tty" | "ps",
            _,
        ) => usage_error(&format!("{cmd}: wrong arguments")),
        _ => usage_error(&format!("unknown command `{cmd}`")),
    }
}

fn run_bench(args: &[&str]) -> i32 {
    let parsed = match bench::parse_args(args) {
        Ok(parsed) => parsed,
        Err(err) => return usage_error(&err.to_string()),
    };
    let name = parsed.workload.name();
    // Work from inside DIR, so paths are looked up from the same depth in a
    // container (`/work`) and on the host (a deep temp directory): the
    // comparison is then of the two kernels' lookups, not of path lengths.
    if let Err(err) = std::env::set_current_dir(&parsed.dir) {
        let _ = writeln!(
            io::stderr(),
            "probe: bench {name}: chdir {}: {}",
            parsed.dir.display(),
            io_error_name(&err)
        );
        return 1;
    }
    let parsed = bench::BenchArgs {
        dir: ".".into(),
        ..parsed
    };
    let text = bench::run(&parsed)
        .map_err(|failure| failure.to_string())
        .and_then(|out| serde_json::to_string(&out).map_err(|err| format!("encode the output: {err}")));
    match text {
        Ok(text) => {
            print_line(&text);
            0
        }
        Err(msg) => {
            let _ = writeln!(io::stderr(), "probe: bench {name}: {msg}");
            1
        }
    }
}

/// What `sleep` was asked for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SleepFor {
    Forever,
    For(Duration),
}

pub fn parse_sleep(text: &str) -> Option<SleepFor> {
    if matches!(text, "inf" | "infinity") {
        return Some(SleepFor::Forever);
    }
    let secs: f64 = text.parse().ok()?;
    if secs.is_nan() || secs < 0.0 {
        return None;
    }
    // Too long to represent is as good as forever.
    Some(match Duration::try_from_secs_f64(secs) {
        Ok(d) => SleepFor::For(d),
        Err(_) => SleepFor::Forever,
    })
}

fn sleep(text: &str) -> i32 {
    match parse_sleep(text) {
        Some(SleepFor::For(d)) => {
            std::thread::sleep(d);
            0
        }
        Some(SleepFor::Forever) => loop {
            std::thread::sleep(Duration::from_secs(3600));
        },
        None => usage_error(&format!("sleep: bad duration `{text}`")),
    }
}

fn cat() -> i32 {
    let stdin = io::stdin();
    let mut input = stdin.lock();
    let mut out = io::stdout().lock();
    let copied = io::copy(&mut input, &mut out).and_then(|_| out.flush());
    match copied {
        Ok(()) => 0,
        Err(err) => {
            let _ = writeln!(io::stderr(), "probe: cat: {}", io_error_name(&err));
            1
        }
    }
}

/// A TCP echo server on every address: each connection gets back what it
/// sends, until it closes its side.
fn listen(port: u16) -> i32 {
    let l = match std::net::TcpListener::bind(("0.0.0.0", port)) {
        Ok(l) => l,
        Err(err) => {
            let _ = writeln!(io::stderr(), "probe: listen {port}: {}", io_error_name(&err));
            return 1;
        }
    };
    print_line(&format!("listening {port}"));
    for conn in l.incoming() {
        let Ok(mut c) = conn else { continue };
        std::thread::spawn(move || {
            let Ok(mut r) = c.try_clone() else { return };
            let _ = io::copy(&mut r, &mut c);
        });
    }
    0
}

fn write(path: &str, content: &str) -> i32 {
    let written = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open(path)
        .and_then(|mut f| f.write_all(content.as_bytes()));
    match written {
        Ok(()) => 0,
        Err(err) => {
            let _ = writeln!(io::stderr(), "write {path}: {}", io_error_name(&err));
            1
        }
    }
}

fn listen_fds() -> Value {
    let var = |k: &str| std::env::var_os(k).map(|v| v.to_string_lossy().into_owned());
    let fds = collect::open_fds().unwrap_or_default();
    json!({
        "LISTEN_FDS": var("LISTEN_FDS"),
        "LISTEN_PID": var("LISTEN_PID"),
        "LISTEN_FDNAMES": var("LISTEN_FDNAMES"),
        "pid": sys::getpid(),
        "fds": fds,
    })
}

fn tty() -> Value {
    let size = sys::winsize(0).or_else(|| sys::winsize(1));
    let name = sys::ttyname(0).or_else(|| sys::ttyname(1));
    json!({
        "stdin_tty": sys::isatty(0),
        "stdout_tty": sys::isatty(1),
        "stderr_tty": sys::isatty(2),
        "rows": size.map(|s| s.0),
        "cols": size.map(|s| s.1),
        "ttyname": name,
        "controlling_tty": sys::tcgetsid(0).is_some(),
        "foreground_pgrp": sys::tcgetpgrp(0),
        "pgrp": sys::getpgrp(),
        "sid": sys::getsid(),
    })
}

/// Every numeric directory of /proc with its comm, state and parent.
pub fn ps() -> Value {
    let mut pids: Vec<i32> = fs::read_dir("/proc")
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
                .collect()
        })
        .unwrap_or_default();
    pids.sort_unstable();
    let list: Vec<Value> = pids
        .into_iter()
        .map(|pid| {
            let comm = fs::read_to_string(format!("/proc/{pid}/comm"))
                .map(|c| c.trim_end_matches('\n').to_string())
                .unwrap_or_default();
            let stat = fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| procfs::parse_stat_state_ppid(&s));
            json!({
                "pid": pid,
                "comm": comm,
                "state": stat.as_ref().map(|s| s.0.clone()),
                "ppid": stat.map(|s| s.1),
            })
        })
        .collect();
    Value::Array(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sleep_durations() {
        assert_eq!(parse_sleep("inf"), Some(SleepFor::Forever));
        assert_eq!(parse_sleep("infinity"), Some(SleepFor::Forever));
        assert_eq!(parse_sleep("0.5"), Some(SleepFor::For(Duration::from_millis(500))));
        assert_eq!(parse_sleep("2"), Some(SleepFor::For(Duration::from_secs(2))));
        assert_eq!(parse_sleep("1e300"), Some(SleepFor::Forever));
        assert_eq!(parse_sleep("-1"), None);
        assert_eq!(parse_sleep("NaN"), None);
        assert_eq!(parse_sleep("x"), None);
    }

    #[test]
    fn exit_and_usage_codes() {
        let a = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(run(&a(&["true"])), 0);
        assert_eq!(run(&a(&["exit", "7"])), 7);
        assert_eq!(run(&a(&["exit", "x"])), EXIT_USAGE);
        assert_eq!(run(&a(&["bogus"])), EXIT_USAGE);
        assert_eq!(run(&a(&[])), EXIT_USAGE);
        assert_eq!(run(&a(&["true", "extra"])), EXIT_USAGE);
        assert_eq!(run(&a(&["hook", "only-label"])), EXIT_USAGE);
    }

    #[test]
    fn ps_lists_this_process() {
        let list = ps();
        let me = i64::from(std::process::id());
        assert!(list.as_array().unwrap().iter().any(|p| p["pid"] == me));
    }
}
