//! The parts of the OCI image spec (and Docker's schema 2, its ancestor)
//! that the store reads. Unknown fields are ignored; the raw bytes are kept
//! where a digest is computed over them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::digest::Digest;
use super::error::{Error, Result};

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// containerd's export writes the full name here, the tag in REF_NAME.
pub const CONTAINERD_NAME: &str = "io.containerd.image.name";

/// A manifest bigger than this is refused before it is read whole.
pub const MAX_MANIFEST: u64 = 4 << 20;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Descriptor {
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

/// An index or a manifest: which one is told by mediaType, or by which of
/// `manifests` and `layers` is present (the OCI spec makes mediaType optional).
#[derive(Debug, Deserialize)]
pub struct AnyManifest {
    #[serde(rename = "mediaType", default)]
    pub media_type: Option<String>,
    #[serde(default)]
    pub manifests: Option<Vec<Descriptor>>,
    #[serde(default)]
    pub config: Option<Descriptor>,
    #[serde(default)]
    pub layers: Option<Vec<Descriptor>>,
}

pub enum Parsed {
    Index(Vec<Descriptor>),
    Manifest {
        config: Descriptor,
        layers: Vec<Descriptor>,
    },
}

impl AnyManifest {
    pub fn parse(what: &str, bytes: &[u8]) -> Result<Parsed> {
        let m: AnyManifest =
            serde_json::from_slice(bytes).map_err(|e| Error::invalid(what, format!("not a manifest or index: {e}")))?;
        match (m.media_type.as_deref(), m.manifests, m.config, m.layers) {
            (Some(OCI_INDEX | DOCKER_LIST) | None, Some(list), None, _) => Ok(Parsed::Index(list)),
            (Some(OCI_MANIFEST | DOCKER_MANIFEST) | None, None, Some(config), Some(layers)) => {
                Ok(Parsed::Manifest { config, layers })
            }
            (Some(t), ..) if ![OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST].contains(&t) => {
                Err(Error::invalid(what, format!("unsupported media type {t}")))
            }
            _ => Err(Error::invalid(
                what,
                "neither an index (manifests) nor a manifest (config and layers)",
            )),
        }
    }
}

/// Picks the linux/amd64 entry of an index (the machine this server runs on).
pub fn pick_platform<'a>(what: &str, list: &'a [Descriptor]) -> Result<&'a Descriptor> {
    let usable = |d: &&Descriptor| matches!(d.media_type.as_str(), OCI_MANIFEST | DOCKER_MANIFEST | "");
    list.iter()
        .filter(usable)
        .find(|d| {
            d.platform
                .as_ref()
                .is_some_and(|p| p.os == "linux" && p.architecture == "amd64")
        })
        // An index without platforms (an OCI layout's index.json) names one
        // image per entry: a single one is taken as is.
        .or_else(|| {
            let mut plain = list.iter().filter(usable).filter(|d| d.platform.is_none());
            match (plain.next(), plain.next()) {
                (Some(d), None) => Some(d),
                _ => None,
            }
        })
        .ok_or_else(|| Error::invalid(what, "the index has no linux/amd64 manifest"))
}

/// The image configuration: what a container runs by default, and the
/// uncompressed digests of the layers (diff_ids) that unpacking verifies.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ImageConfigFile {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub config: Option<RunConfig>,
    pub rootfs: RootFs,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RunConfig {
    #[serde(rename = "User", default)]
    pub user: Option<String>,
    #[serde(rename = "Env", default)]
    pub env: Option<Vec<String>>,
    #[serde(rename = "Entrypoint", default)]
    pub entrypoint: Option<Vec<String>>,
    #[serde(rename = "Cmd", default)]
    pub cmd: Option<Vec<String>>,
    #[serde(rename = "WorkingDir", default)]
    pub working_dir: Option<String>,
    #[serde(rename = "Labels", default)]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(rename = "StopSignal", default)]
    pub stop_signal: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    pub diff_ids: Vec<Digest>,
}
