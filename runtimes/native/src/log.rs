//! Errors go to stderr and, with `--log`, to a file in runc's text or JSON
//! form (containerd reads the last JSON line to report why a runtime failed).

use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

pub struct Logger {
    /// The binary's name, which stderr lines start with.
    name: &'static str,
    file: Option<PathBuf>,
    format: Format,
    debug: bool,
}

impl Logger {
    pub fn new(name: &'static str, file: Option<PathBuf>, format: Format, debug: bool) -> Logger {
        Logger {
            name,
            file,
            format,
            debug,
        }
    }

    fn write(&self, level: &str, msg: &str) {
        eprintln!("{}: {level}: {msg}", self.name);
        let Some(path) = &self.file else {
            return;
        };
        let time = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let line = match self.format {
            Format::Json => serde_json::json!({"level": level, "msg": msg, "time": time}).to_string(),
            Format::Text => format!("time={time} level={level} msg={msg:?}"),
        };
        if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
            let _ = writeln!(f, "{line}");
        }
    }

    pub fn error(&self, msg: &str) {
        self.write("error", msg);
    }

    pub fn warn(&self, msg: &str) {
        self.write("warning", msg);
    }

    pub fn debug(&self, msg: &str) {
        if self.debug {
            self.write("debug", msg);
        }
    }
}
