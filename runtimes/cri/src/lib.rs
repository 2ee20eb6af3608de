//! The CRI front-end: a gRPC server (CRI v1 RuntimeService and ImageService
//! on a unix socket) that runs pods and containers with any runc-compatible
//! runtime, and pulls and stores images.
//!
//! Layers: `server` translates protobuf requests into the crate's own types
//! (`spec`) and calls [`Cri`], whose pod and container operations
//! (`pod`, `container`) keep their state on disk (`store`), build OCI
//! configs (`oci`), and run each container under a `monitor` process.

pub mod cni;
pub mod container;
pub mod handlers;
pub mod images;
pub mod monitor;
pub mod oci;
pub mod pause;
pub mod pause_elf;
pub mod pod;
pub mod rootfs;
pub mod runtime;
pub mod server;
pub mod spec;
pub mod stats;
pub mod store;
pub mod streaming;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::handlers::Config;
use crate::rootfs::Images;

/// What a CRI operation can fail with; `server` maps each to a gRPC code.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{kind} {id:?} not found")]
    NotFound { kind: &'static str, id: String },
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    DeadlineExceeded(String),
    #[error("{0}")]
    Unimplemented(String),
    #[error("{0}")]
    Internal(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl From<store::Error> for Error {
    fn from(e: store::Error) -> Error {
        Error::Internal(e.to_string())
    }
}

impl From<runtime::Error> for Error {
    fn from(e: runtime::Error) -> Error {
        Error::Internal(e.to_string())
    }
}

impl From<oci::Error> for Error {
    fn from(e: oci::Error) -> Error {
        Error::InvalidArgument(e.to_string())
    }
}

/// One lock per object id, so operations on different pods and containers
/// run in parallel and two on the same one do not interleave.
#[derive(Default)]
pub struct Locks(Mutex<HashMap<String, Arc<Mutex<()>>>>);

impl Locks {
    pub fn get(&self, id: &str) -> Arc<Mutex<()>> {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(id.to_string()).or_default().clone()
    }
}

/// The server's state: settings, the store, the image source.
pub struct Cri {
    pub config: Config,
    pub store: store::Store,
    /// The `cri` binary: run as `cri monitor` and as the pods' `pause`.
    pub exe: PathBuf,
    pub images: Arc<dyn Images>,
    pub locks: Locks,
    /// The pod CIDR UpdateRuntimeConfig gave.
    pub pod_cidr: Mutex<String>,
    /// Each handler's OCI `features`, asked once (for verbose Status).
    features: std::sync::OnceLock<BTreeMap<String, serde_json::Value>>,
}

impl Cri {
    pub fn new(config: Config, root: &Path, exe: PathBuf, images: Arc<dyn Images>) -> Result<Cri> {
        let store = store::Store::open(root)?;
        let pod_cidr = std::fs::read_to_string(root.join("pod-cidr")).unwrap_or_default();
        Ok(Cri {
            config,
            store,
            exe,
            images,
            locks: Locks::default(),
            pod_cidr: Mutex::new(pod_cidr),
            features: std::sync::OnceLock::new(),
        })
    }

    /// Each handler's OCI `features` document (null for a runtime that has
    /// none), by handler name.
    pub fn handler_features(&self) -> &BTreeMap<String, serde_json::Value> {
        self.features.get_or_init(|| {
            self.config
                .handlers
                .keys()
                .map(|name| {
                    let features = self.runtime(name).ok().and_then(|rt| rt.features());
                    (name.clone(), features.unwrap_or_default())
                })
                .collect()
        })
    }

    /// The handler's runtime, with its own state root under ours.
    pub fn runtime(&self, handler: &str) -> Result<runtime::Runtime> {
        let h = self
            .config
            .handler(handler)
            .ok_or_else(|| Error::InvalidArgument(format!("unknown runtime handler {handler:?}")))?;
        let name = if handler.is_empty() { "default" } else { handler };
        Ok(runtime::Runtime::new(
            h.clone(),
            &self.store.root().join("runtime").join(name),
        ))
    }

    pub fn set_pod_cidr(&self, cidr: &str) -> Result<()> {
        store::write_atomic(&self.store.root().join("pod-cidr"), cidr.as_bytes())?;
        *self.pod_cidr.lock().unwrap_or_else(|p| p.into_inner()) = cidr.to_string();
        Ok(())
    }
}

/// A new object id: 32 random bytes in hex.
pub fn new_id() -> String {
    let mut bytes = [0u8; 32];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = std::io::Read::read_exact(&mut f, &mut bytes);
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
