//! `virtualized [--root DIR] port-forward ID PORT`: relays this command's
//! stdin and stdout to TCP `PORT` on the loopback address of the
//! container's network, which is in its VM. A CRI server cannot enter a pod
//! VM's network to forward a port: it runs this instead (its handler says
//! `pod_vm`). Once connected it says `connected` on stderr; it ends when
//! the connection does. A container that is not running, or nothing
//! listening, is a non-zero exit with the reason on stderr.
//!
//! Not a runc verb: runc-compatible callers never ask for it.

use std::os::fd::BorrowedFd;
use std::path::PathBuf;

use crate::shim::control::{self, Reply, Request};
use crate::shim::state::Store;

pub const VERB: &str = "port-forward";

/// The global flags that take a value, as the native command line has
/// them: skipped (or read, for `--root`) before the verb.
const VALUED: &[&str] = &["--root", "--log", "--log-format"];

/// Whether the verb of these arguments (after argv[0]) is this one: the
/// first that is not a global flag or a flag's value.
pub fn is_invoked(args: &[String]) -> bool {
    let mut i = 0;
    while let Some(a) = args.get(i) {
        if VALUED.contains(&a.as_str()) {
            i += 2;
        } else if a.starts_with('-') {
            i += 1;
        } else {
            return a == VERB;
        }
    }
    false
}

/// (root, id, port) from the arguments after argv[0].
fn parse(args: &[String]) -> Result<(PathBuf, String, u16), String> {
    let at = args.iter().position(|a| a == VERB).ok_or("no port-forward verb")?;
    let mut root = PathBuf::from(super::DEFAULT_ROOT);
    let mut i = 0;
    while i < at {
        let a = &args[i];
        if let Some(v) = a.strip_prefix("--root=") {
            root = PathBuf::from(v);
        } else if VALUED.contains(&a.as_str()) {
            let v = args
                .get(i + 1)
                .filter(|_| i + 1 < at)
                .ok_or(format!("{a} needs a value"))?;
            if a == "--root" {
                root = PathBuf::from(v);
            }
            i += 1;
        } else if !a.starts_with('-') {
            return Err(format!("unexpected {a:?} before {VERB}"));
        }
        i += 1;
    }
    match &args[at + 1..] {
        [id, port] => {
            let port = port
                .parse::<u16>()
                .ok()
                .filter(|&p| p > 0)
                .ok_or(format!("{VERB}: PORT {port:?} is not a port number"))?;
            Ok((root, id.clone(), port))
        }
        _ => Err(format!("usage: {VERB} ID PORT")),
    }
}

pub fn main(args: &[String]) -> i32 {
    let (root, id, port) = match parse(args) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("virtualized: {e}");
            return 2;
        }
    };
    match run(&Store::new(&root), &id, port) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("virtualized: error: {e:#}");
            1
        }
    }
}

fn run(store: &Store, id: &str, port: u16) -> anyhow::Result<()> {
    let status = store.load(id)?.status();
    if !status.can_exec() {
        return Err(container::state::Error::Illegal {
            id: id.to_string(),
            status,
            op: VERB,
        }
        .into());
    }
    // SAFETY: fds 0, 1 and 2 are open for the life of this process; the
    // borrows end when the request is sent.
    let stdio = unsafe {
        [
            BorrowedFd::borrow_raw(0),
            BorrowedFd::borrow_raw(1),
            BorrowedFd::borrow_raw(2),
        ]
    };
    let mut call = control::call(&store.dir(id), &Request::Connect { port }, &stdio)?;
    match call.reply()? {
        Reply::Ok => eprintln!("connected"),
        Reply::Error { message } => anyhow::bail!("{message}"),
        other => anyhow::bail!("{VERB}: unexpected answer from the shim: {other:?}"),
    }
    match call.reply()? {
        Reply::Exited { .. } => Ok(()),
        Reply::Error { message } => anyhow::bail!("{message}"),
        Reply::Ok => anyhow::bail!("{VERB}: the shim answered twice"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_root_and_the_operands_are_read_around_the_verb() {
        let (root, id, port) = parse(&args(&["--root", "/r", "--debug", "port-forward", "c1", "8080"])).unwrap();
        assert_eq!((root, id.as_str(), port), (PathBuf::from("/r"), "c1", 8080));
        let (root, ..) = parse(&args(&["--root=/x", "port-forward", "c", "1"])).unwrap();
        assert_eq!(root, PathBuf::from("/x"));
        assert!(parse(&args(&["port-forward", "c", "0"])).unwrap_err().contains("\"0\""));
        assert!(parse(&args(&["port-forward", "c"])).unwrap_err().contains("usage"));
        assert!(parse(&args(&["--root", "port-forward", "c", "1"])).is_err());
        assert!(is_invoked(&args(&["--root", "/r", "port-forward", "c", "1"])));
        // A container's command named so is exec's business.
        assert!(!is_invoked(&args(&["--root", "/r", "exec", "c", "port-forward"])));
        assert!(!is_invoked(&args(&["--root", "port-forward", "state", "c"])));
    }
}
