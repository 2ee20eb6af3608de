//! Running lifecycle hooks (config.md, POSIX-platform Hooks): each gets the
//! container state on stdin, its own args and env, and an optional timeout.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::Hook;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("hooks.{kind}[{index}] ({path}): {reason}")]
    Failed {
        kind: &'static str,
        index: usize,
        path: String,
        reason: String,
    },
}

pub type Result<T> = std::result::Result<T, Error>;

/// Runs `hooks` of `kind` in order, stopping at the first failure.
pub fn run_all(kind: &'static str, hooks: &[Hook], state: &serde_json::Value) -> Result<()> {
    for (i, h) in hooks.iter().enumerate() {
        run_one(kind, i, h, state)?;
    }
    Ok(())
}

/// Runs every hook even when one fails (poststop: failures are warnings);
/// returns the failures.
pub fn run_all_warn(kind: &'static str, hooks: &[Hook], state: &serde_json::Value) -> Vec<Error> {
    hooks
        .iter()
        .enumerate()
        .filter_map(|(i, h)| run_one(kind, i, h, state).err())
        .collect()
}

fn run_one(kind: &'static str, index: usize, h: &Hook, state: &serde_json::Value) -> Result<()> {
    let fail = |reason: String| Error::Failed {
        kind,
        index,
        path: h.path().display().to_string(),
        reason,
    };
    let mut cmd = Command::new(h.path());
    // config.md: args follow execv's convention, args[0] included.
    if let Some(args) = h.args() {
        if let Some((first, rest)) = args.split_first() {
            use std::os::unix::process::CommandExt;
            cmd.arg0(first);
            cmd.args(rest);
        }
    }
    cmd.env_clear();
    for e in h.env().iter().flatten() {
        if let Some((k, v)) = e.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::inherit());
    let mut child = cmd.spawn().map_err(|e| fail(format!("cannot run: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin must not make this fail.
        let _ = stdin.write_all(state.to_string().as_bytes());
    }
    let deadline = h
        .timeout()
        .map(|t| Instant::now() + Duration::from_secs(t.max(1) as u64));
    loop {
        match child.try_wait() {
            Ok(Some(st)) if st.success() => return Ok(()),
            Ok(Some(st)) => return Err(fail(format!("exited with {st}"))),
            Ok(None) => {}
            Err(e) => return Err(fail(format!("waiting: {e}"))),
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(fail(format!("timed out after {}s", h.timeout().unwrap_or(0))));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(json: &str) -> Hook {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn state_arrives_on_stdin_and_args_env_pass() {
        let t = tempfile::tempdir().unwrap();
        let out = t.path().join("out");
        let h = hook(&format!(
            r#"{{"path":"/bin/sh","args":["sh","-c","cat > {} && echo \"$0 $FOO\" >> {}"],"env":["FOO=bar"]}}"#,
            out.display(),
            out.display()
        ));
        run_all("prestart", &[h], &serde_json::json!({"id": "x"})).unwrap();
        let text = std::fs::read_to_string(&out).unwrap();
        assert!(text.starts_with(r#"{"id":"x"}"#), "{text}");
        assert!(text.contains("sh bar"), "{text}");
    }

    #[test]
    fn failure_and_timeout_name_the_hook() {
        let e = run_all("poststart", &[hook(r#"{"path":"/bin/false"}"#)], &serde_json::json!({}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("hooks.poststart[0]") && e.contains("/bin/false"), "{e}");
        let h = hook(r#"{"path":"/bin/sleep","args":["sleep","5"],"timeout":1}"#);
        let start = Instant::now();
        let e = run_all("createRuntime", &[h], &serde_json::json!({}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("timed out"), "{e}");
        assert!(start.elapsed() < Duration::from_secs(4));
    }

    #[test]
    fn poststop_runs_every_hook() {
        let hooks = [
            hook(r#"{"path":"/bin/false"}"#),
            hook(r#"{"path":"/bin/true"}"#),
            hook(r#"{"path":"/bin/false"}"#),
        ];
        let errs = run_all_warn("poststop", &hooks, &serde_json::json!({}));
        assert_eq!(errs.len(), 2);
    }
}
