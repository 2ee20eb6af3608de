//! `probe hook LABEL FILE`: an OCI hook that records how it was run. It
//! reads the state JSON from stdin and appends one JSON line to FILE.

use std::fs::OpenOptions;
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::collect::namespaces;

/// The record for one hook run; `stdin` is the raw text read.
pub fn record(label: &str, stdin: &str) -> Value {
    let state = serde_json::from_str::<Value>(stdin).unwrap_or(Value::Null);
    let time_ns = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0);
    json!({
        "hook": label,
        "state": state,
        "stdin": stdin,
        "pid": crate::sys::getpid(),
        "args": std::env::args_os().map(|a| a.to_string_lossy().into_owned()).collect::<Vec<_>>(),
        "env": std::env::vars_os()
            .map(|(k, v)| format!("{}={}", k.to_string_lossy(), v.to_string_lossy()))
            .collect::<Vec<_>>(),
        "cwd": std::env::current_dir().map(|p| p.to_string_lossy().into_owned()).unwrap_or_default(),
        "namespaces": namespaces(),
        "time_ns": time_ns,
    })
}

/// Appends `record` as one line to `file` with a single write, so that
/// hooks running at once do not interleave.
pub fn append(file: &str, record: &Value) -> io::Result<()> {
    let mut line = record.to_string();
    line.push('\n');
    let mut f = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o644)
        .custom_flags(libc::O_CLOEXEC)
        .open(file)?;
    f.write_all(line.as_bytes())
}

/// Runs the hook; `exit_code` is what it exits with once recorded.
pub fn run(label: &str, file: &str, exit_code: i32) -> i32 {
    let mut raw = Vec::new();
    // A closed or unreadable stdin just means an empty state.
    let _ = io::stdin().lock().read_to_end(&mut raw);
    let stdin = String::from_utf8_lossy(&raw);
    let rec = record(label, &stdin);
    match append(file, &rec) {
        Ok(()) => exit_code,
        Err(err) => {
            eprintln!("probe: hook {label}: {file}: {}", crate::errno::io_error_name(&err));
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_parses_state_and_keeps_raw_text() {
        let r = record("prestart", r#"{"ociVersion":"1.0.2","id":"c1","pid":42}"#);
        assert_eq!(r["hook"], "prestart");
        assert_eq!(r["state"]["id"], "c1");
        assert_eq!(r["pid"], i64::from(std::process::id()));
        assert!(r["time_ns"].as_u64().unwrap() > 0);
        assert!(r["namespaces"].is_object());
    }

    #[test]
    fn invalid_or_empty_stdin_gives_null_state() {
        let r = record("x", "not json");
        assert!(r["state"].is_null());
        assert_eq!(r["stdin"], "not json");
        assert!(record("x", "")["state"].is_null());
    }

    #[test]
    fn append_adds_lines() {
        let path = std::env::temp_dir().join(format!("probe-hook-{}", std::process::id()));
        let p = path.to_str().unwrap();
        append(p, &json!({"a": 1})).unwrap();
        append(p, &json!({"a": 2})).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, "{\"a\":1}\n{\"a\":2}\n");
        std::fs::remove_file(&path).unwrap();
    }
}
