//! Images: pulled from a registry or imported from an OCI layout or archive,
//! verified by digest, unpacked once, and shared between containers through
//! overlayfs snapshots.

mod digest;
mod error;
mod fsutil;
mod reference;
mod registry;
mod snapshot;
mod spec;
mod store;
mod unpack;

use std::collections::BTreeMap;
use std::path::PathBuf;

pub use digest::Digest;
pub use error::{Error, Result};
pub use reference::Reference;
pub use registry::Auth;
pub use store::{Options, Store};

/// What a pull or an import made: the image id (its config digest) and the
/// names it got.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRef {
    pub id: String,
    /// `docker.io/library/busybox:latest`, when a tag was given.
    pub repo_tag: Option<String>,
    /// `docker.io/library/busybox@sha256:...`: the digest of what the
    /// registry served for the reference (an index for multi-platform images).
    pub repo_digest: Option<String>,
}

/// An image as CRI's ListImages and ImageStatus describe it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    pub id: String,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    /// Manifests, config and compressed layers, in bytes.
    pub size: u64,
    /// The config's user when it is numeric.
    pub uid: Option<i64>,
    /// The config's user when it is a name.
    pub username: String,
}

/// What a container runs unless its CRI config says otherwise.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageConfig {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: String,
    pub user: String,
    pub labels: BTreeMap<String, String>,
    pub stop_signal: String,
}

/// The store's use of its filesystem (CRI ImageFsInfo).
#[derive(Clone, Debug)]
pub struct FsInfo {
    pub mountpoint: PathBuf,
    pub used_bytes: u64,
    pub inodes_used: u64,
    pub timestamp_ns: i64,
}
