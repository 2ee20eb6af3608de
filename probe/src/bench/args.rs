//! The command line of `probe bench`, parsed without touching the system.

use std::fmt;
use std::path::PathBuf;

use super::Workload;

/// What `probe bench WORKLOAD [--batches N] [--batch-ms MS] [--dir DIR] [--exe PATH]` asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchArgs {
    pub workload: Workload,
    /// Measured batches (after one unmeasured warm-up).
    pub batches: u32,
    /// How long one batch should take, in milliseconds.
    pub batch_ms: u64,
    /// Where the file workloads make their files.
    pub dir: PathBuf,
    /// What `fork-exec` runs as `EXE true`: the probe itself, so that the
    /// exec costs the same inside the container and outside.
    pub exe: PathBuf,
}

pub const DEFAULT_BATCHES: u32 = 10;
pub const DEFAULT_BATCH_MS: u64 = 20;
pub const DEFAULT_DIR: &str = "/tmp";
pub const DEFAULT_EXE: &str = "/proc/self/exe";

/// A command line `probe bench` cannot run; the message names the argument.
#[derive(Debug, Clone, PartialEq)]
pub enum ArgError {
    MissingWorkload,
    UnknownWorkload(String),
    /// A flag given last, without its value.
    MissingValue(&'static str),
    /// `--batches` or `--batch-ms` that is not a positive integer.
    NotPositive {
        flag: &'static str,
        value: String,
    },
    EmptyPath(&'static str),
    UnknownFlag(String),
    /// A second positional argument.
    Unexpected(String),
}

impl fmt::Display for ArgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArgError::MissingWorkload => write!(f, "bench: missing workload; known: {}", known_workloads()),
            ArgError::UnknownWorkload(name) => {
                write!(f, "bench: unknown workload {name:?}; known: {}", known_workloads())
            }
            ArgError::MissingValue(flag) => write!(f, "bench: {flag} needs a value"),
            ArgError::NotPositive { flag, value } => {
                write!(f, "bench: {flag} must be a positive integer, got {value:?}")
            }
            ArgError::EmptyPath(flag) => write!(f, "bench: {flag} must not be empty"),
            ArgError::UnknownFlag(flag) => write!(f, "bench: unknown option {flag:?}"),
            ArgError::Unexpected(arg) => write!(f, "bench: unexpected argument {arg:?}"),
        }
    }
}

impl std::error::Error for ArgError {}

fn known_workloads() -> String {
    Workload::ALL.map(Workload::name).join(", ")
}

fn positive<T: std::str::FromStr + PartialEq + Default>(flag: &'static str, value: &str) -> Result<T, ArgError> {
    match value.parse::<T>() {
        Ok(n) if n != T::default() => Ok(n),
        _ => Err(ArgError::NotPositive {
            flag,
            value: value.to_string(),
        }),
    }
}

fn path(flag: &'static str, value: &str) -> Result<PathBuf, ArgError> {
    if value.is_empty() {
        return Err(ArgError::EmptyPath(flag));
    }
    Ok(PathBuf::from(value))
}

/// Parses the arguments after `bench`. Flags take their value as the next
/// argument or after `=`; a flag given twice keeps the last value.
pub fn parse_args(args: &[&str]) -> Result<BenchArgs, ArgError> {
    let mut workload = None;
    let mut batches = DEFAULT_BATCHES;
    let mut batch_ms = DEFAULT_BATCH_MS;
    let mut dir = PathBuf::from(DEFAULT_DIR);
    let mut exe = PathBuf::from(DEFAULT_EXE);
    let mut rest = args.iter();
    while let Some(&arg) = rest.next() {
        if !arg.starts_with("--") {
            if workload.is_some() {
                return Err(ArgError::Unexpected(arg.to_string()));
            }
            workload = Some(Workload::from_name(arg).ok_or_else(|| ArgError::UnknownWorkload(arg.to_string()))?);
            continue;
        }
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (arg, None),
        };
        let flag: &'static str = match name {
            "--batches" => "--batches",
            "--batch-ms" => "--batch-ms",
            "--dir" => "--dir",
            "--exe" => "--exe",
            _ => return Err(ArgError::UnknownFlag(arg.to_string())),
        };
        let value = match inline {
            Some(value) => value,
            None => rest.next().copied().ok_or(ArgError::MissingValue(flag))?,
        };
        match flag {
            "--batches" => batches = positive(flag, value)?,
            "--batch-ms" => batch_ms = positive(flag, value)?,
            "--dir" => dir = path(flag, value)?,
            _ => exe = path(flag, value)?,
        }
    }
    Ok(BenchArgs {
        workload: workload.ok_or(ArgError::MissingWorkload)?,
        batches,
        batch_ms,
        dir,
        exe,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(args: &[&str]) -> String {
        parse_args(args).unwrap_err().to_string()
    }

    #[test]
    fn defaults() {
        let args = parse_args(&["getpid"]).unwrap();
        assert_eq!(
            args,
            BenchArgs {
                workload: Workload::Getpid,
                batches: 10,
                batch_ms: 20,
                dir: PathBuf::from("/tmp"),
                exe: PathBuf::from("/proc/self/exe"),
            }
        );
    }

    #[test]
    fn each_flag() {
        let args = parse_args(&[
            "fork-exec",
            "--batches",
            "3",
            "--batch-ms",
            "7",
            "--dir",
            "/var/tmp",
            "--exe",
            "/probe",
        ])
        .unwrap();
        assert_eq!(args.workload, Workload::ForkExec);
        assert_eq!((args.batches, args.batch_ms), (3, 7));
        assert_eq!(args.dir, PathBuf::from("/var/tmp"));
        assert_eq!(args.exe, PathBuf::from("/probe"));

        let args = parse_args(&["--batches=4", "--batch-ms=5", "--dir=/d", "--exe=/e", "cpu"]).unwrap();
        assert_eq!(args.workload, Workload::Cpu);
        assert_eq!((args.batches, args.batch_ms), (4, 5));
        assert_eq!((args.dir, args.exe), (PathBuf::from("/d"), PathBuf::from("/e")));

        assert_eq!(
            parse_args(&["cpu", "--batches", "2", "--batches", "9"])
                .unwrap()
                .batches,
            9
        );
    }

    #[test]
    fn every_workload_parses_by_its_name() {
        for w in Workload::ALL {
            assert_eq!(parse_args(&[w.name()]).unwrap().workload, w);
        }
    }

    #[test]
    fn bad_numbers_are_named_with_their_value() {
        assert_eq!(
            message(&["getpid", "--batches", "x"]),
            r#"bench: --batches must be a positive integer, got "x""#
        );
        assert_eq!(
            message(&["getpid", "--batches", "0"]),
            r#"bench: --batches must be a positive integer, got "0""#
        );
        assert_eq!(
            message(&["getpid", "--batches=-1"]),
            r#"bench: --batches must be a positive integer, got "-1""#
        );
        assert_eq!(
            message(&["getpid", "--batch-ms", "1.5"]),
            r#"bench: --batch-ms must be a positive integer, got "1.5""#
        );
        assert_eq!(
            message(&["getpid", "--batch-ms", ""]),
            r#"bench: --batch-ms must be a positive integer, got """#
        );
    }

    #[test]
    fn bad_command_lines_are_named() {
        assert_eq!(
            message(&["getppid"]),
            r#"bench: unknown workload "getppid"; known: getpid, open-close, stat, fork-exec, file-io, memory, tcp-loopback, cpu"#
        );
        assert!(message(&[]).starts_with("bench: missing workload; known: getpid, "));
        assert!(message(&["--batches", "2"]).starts_with("bench: missing workload"));
        assert_eq!(message(&["getpid", "--batches"]), "bench: --batches needs a value");
        assert_eq!(message(&["getpid", "--dir", ""]), "bench: --dir must not be empty");
        assert_eq!(message(&["getpid", "--exe="]), "bench: --exe must not be empty");
        assert_eq!(message(&["getpid", "--fast"]), r#"bench: unknown option "--fast""#);
        assert_eq!(message(&["getpid", "cpu"]), r#"bench: unexpected argument "cpu""#);
    }
}
