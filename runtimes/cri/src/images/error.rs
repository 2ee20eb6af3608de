//! The image store's errors: each names the thing it is about, so a gRPC
//! handler can pick the status code (NotFound, InvalidArgument, Unavailable...)
//! from the variant and pass the message on.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("image not found: {0}")]
    NotFound(String),
    #[error("invalid {what}: {why}")]
    Invalid { what: String, why: String },
    #[error("digest mismatch for {what}: expected {expected}, got {got}")]
    DigestMismatch {
        what: String,
        expected: String,
        got: String,
    },
    #[error("registry error: {status} from {url}: {message}")]
    Registry { status: u16, url: String, message: String },
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn invalid(what: impl Into<String>, why: impl Into<String>) -> Error {
        Error::Invalid {
            what: what.into(),
            why: why.into(),
        }
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { op, path, source }
    }
}
