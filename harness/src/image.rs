//! The test image as an OCI image layout: one gzip layer holding the static
//! probe at `/probe`, an `/etc/passwd` and `/etc/group` with root and an
//! unprivileged user (uid and gid 1000, `probe`), and a world-writable `/tmp`;
//! a config whose entrypoint is `/probe`. Written as a directory
//! (`oci-layout`, `index.json`, `blobs/sha256/...`) or as an OCI archive (the
//! same tree in a tar), which skopeo copies to a registry and containerd
//! imports.
//!
//! The bytes are a function of the probe and the specs alone (no clock, no
//! owner names, sorted entries): the same inputs give the same digests on
//! every run, so a registry or a content store sees the same blobs again.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// The annotation an OCI layout's index tags a manifest with.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
pub const MEDIA_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const MEDIA_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// The unprivileged user of the image's `/etc/passwd`.
pub const USER_UID: u32 = 1000;
pub const USER_NAME: &str = "probe";

const PASSWD: &str = "root:x:0:0:root:/:/probe\nprobe:x:1000:1000:probe:/tmp:/probe\n";
const GROUP: &str = "root:x:0:\nprobe:x:1000:\n";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading the probe {path}: {source}")]
    Probe { path: PathBuf, source: std::io::Error },
    #[error("writing {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("building the layer tar: {0}")]
    Layer(std::io::Error),
    #[error("image ref name {0:?} appears twice in one layout")]
    DuplicateRef(String),
    #[error("an image layout needs at least one image")]
    Empty,
}

pub type Result<T> = std::result::Result<T, Error>;

/// What the image's config says the container runs, and how; empty fields
/// are left out of the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSpec {
    /// The value of `org.opencontainers.image.ref.name` in the index (a tag
    /// such as `latest`, or a full reference).
    pub ref_name: String,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    /// `KEY=VALUE`.
    pub env: Vec<String>,
    pub working_dir: String,
    /// `uid`, `uid:gid` or a name from the image's /etc/passwd.
    pub user: String,
    /// Config labels.
    pub labels: BTreeMap<String, String>,
}

impl ImageSpec {
    /// The default test image: `/probe sleep inf` (so it also serves as a
    /// pod's sandbox image), a PATH, root, working directory `/`.
    pub fn probe(ref_name: &str) -> Self {
        ImageSpec {
            ref_name: ref_name.to_string(),
            entrypoint: vec!["/probe".into()],
            cmd: vec!["sleep".into(), "inf".into()],
            env: vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()],
            working_dir: "/".into(),
            user: String::new(),
            labels: BTreeMap::new(),
        }
    }

    fn config_json(&self, diff_id: &str) -> Value {
        let mut c = serde_json::Map::new();
        if !self.entrypoint.is_empty() {
            c.insert("Entrypoint".into(), json!(self.entrypoint));
        }
        if !self.cmd.is_empty() {
            c.insert("Cmd".into(), json!(self.cmd));
        }
        if !self.env.is_empty() {
            c.insert("Env".into(), json!(self.env));
        }
        if !self.working_dir.is_empty() {
            c.insert("WorkingDir".into(), json!(self.working_dir));
        }
        if !self.user.is_empty() {
            c.insert("User".into(), json!(self.user));
        }
        if !self.labels.is_empty() {
            c.insert("Labels".into(), json!(self.labels));
        }
        json!({
            "architecture": "amd64",
            "os": "linux",
            "created": "1970-01-01T00:00:00Z",
            "config": Value::Object(c),
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "oci-harness image writer"}],
        })
    }
}

/// A content descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    pub media_type: &'static str,
    /// `sha256:HEX`.
    pub digest: String,
    pub size: u64,
}

impl Descriptor {
    fn of(media_type: &'static str, bytes: &[u8]) -> Self {
        Descriptor {
            media_type,
            digest: sha256(bytes),
            size: bytes.len() as u64,
        }
    }

    fn json(&self) -> Value {
        json!({"mediaType": self.media_type, "digest": self.digest, "size": self.size})
    }
}

/// One image of a layout: its manifest and config descriptors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Built {
    pub ref_name: String,
    pub manifest: Descriptor,
    pub config: Descriptor,
    pub layer: Descriptor,
    /// `sha256:` of the uncompressed layer (the config's diff_id).
    pub diff_id: String,
}

/// An image layout held in memory: blobs by digest, the index, and what each
/// image is.
#[derive(Debug, Clone)]
pub struct Layout {
    pub blobs: BTreeMap<String, Vec<u8>>,
    pub index: Vec<u8>,
    pub images: Vec<Built>,
}

/// `sha256:HEX` of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    let d = Sha256::digest(bytes);
    let mut s = String::with_capacity(7 + 64);
    s.push_str("sha256:");
    for b in d {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(size);
    h
}

/// Appends a directory or a file entry: owner root, mtime 0.
fn append(b: &mut tar::Builder<Vec<u8>>, path: &str, mode: u32, data: Option<&[u8]>) -> std::io::Result<()> {
    match data {
        None => {
            let mut h = header(tar::EntryType::Directory, mode, 0);
            b.append_data(&mut h, path, std::io::empty())
        }
        Some(d) => {
            let mut h = header(tar::EntryType::Regular, mode, d.len() as u64);
            b.append_data(&mut h, path, d)
        }
    }
}

/// The uncompressed layer: the probe, passwd, group, /tmp.
pub fn layer_tar(probe: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    append(&mut b, "etc/", 0o755, None)?;
    append(&mut b, "etc/group", 0o644, Some(GROUP.as_bytes()))?;
    append(&mut b, "etc/passwd", 0o644, Some(PASSWD.as_bytes()))?;
    append(&mut b, "probe", 0o755, Some(probe))?;
    append(&mut b, "tmp/", 0o1777, None)?;
    b.into_inner()
}

/// gzip with no name and mtime 0 in the header, so equal input gives equal
/// bytes.
fn gzip(data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut e = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::default());
    e.write_all(data)?;
    e.finish()
}

fn to_bytes(v: &Value) -> Vec<u8> {
    // serde_json's map is ordered by key here (no preserve_order feature):
    // the bytes, and so the digest, are stable.
    serde_json::to_vec(v).unwrap_or_default()
}

impl Layout {
    /// Builds a layout holding one image per spec, all sharing the probe's
    /// layer.
    pub fn build(probe: &[u8], specs: &[ImageSpec]) -> Result<Self> {
        if specs.is_empty() {
            return Err(Error::Empty);
        }
        let raw = layer_tar(probe).map_err(Error::Layer)?;
        let diff_id = sha256(&raw);
        let layer_bytes = gzip(&raw).map_err(Error::Layer)?;
        let layer = Descriptor::of(MEDIA_LAYER_GZIP, &layer_bytes);
        let mut blobs = BTreeMap::new();
        blobs.insert(layer.digest.clone(), layer_bytes);
        let mut images = Vec::new();
        let mut entries = Vec::new();
        for spec in specs {
            if images.iter().any(|b: &Built| b.ref_name == spec.ref_name) {
                return Err(Error::DuplicateRef(spec.ref_name.clone()));
            }
            let config_bytes = to_bytes(&spec.config_json(&diff_id));
            let config = Descriptor::of(MEDIA_CONFIG, &config_bytes);
            let manifest_bytes = to_bytes(&json!({
                "schemaVersion": 2,
                "mediaType": MEDIA_MANIFEST,
                "config": config.json(),
                "layers": [layer.json()],
            }));
            let manifest = Descriptor::of(MEDIA_MANIFEST, &manifest_bytes);
            blobs.insert(config.digest.clone(), config_bytes);
            blobs.insert(manifest.digest.clone(), manifest_bytes);
            let mut entry = manifest.json();
            entry["annotations"] = json!({ REF_NAME: spec.ref_name });
            entry["platform"] = json!({"architecture": "amd64", "os": "linux"});
            entries.push(entry);
            images.push(Built {
                ref_name: spec.ref_name.clone(),
                manifest,
                config,
                layer: layer.clone(),
                diff_id: diff_id.clone(),
            });
        }
        let index = to_bytes(&json!({
            "schemaVersion": 2,
            "mediaType": MEDIA_INDEX,
            "manifests": entries,
        }));
        Ok(Layout { blobs, index, images })
    }

    /// Reads the probe binary at `probe` and builds the layout.
    pub fn from_probe(probe: &Path, specs: &[ImageSpec]) -> Result<Self> {
        let bytes = std::fs::read(probe).map_err(|e| Error::Probe {
            path: probe.to_path_buf(),
            source: e,
        })?;
        Self::build(&bytes, specs)
    }

    /// Files of the layout, relative to its root, in a stable order.
    fn files(&self) -> Vec<(String, &[u8])> {
        let mut v: Vec<(String, &[u8])> = vec![
            ("oci-layout".into(), OCI_LAYOUT.as_bytes()),
            ("index.json".into(), &self.index),
        ];
        for (digest, bytes) in &self.blobs {
            let hex = digest.trim_start_matches("sha256:");
            v.push((format!("blobs/sha256/{hex}"), bytes));
        }
        v
    }

    /// Writes the layout as a directory at `dir` (made if missing).
    pub fn write_dir(&self, dir: &Path) -> Result<()> {
        let werr = |path: &Path| {
            let path = path.to_path_buf();
            move |e| Error::Write { path, source: e }
        };
        let blobs = dir.join("blobs/sha256");
        std::fs::create_dir_all(&blobs).map_err(werr(&blobs))?;
        for (rel, bytes) in self.files() {
            let p = dir.join(rel);
            std::fs::write(&p, bytes).map_err(werr(&p))?;
        }
        Ok(())
    }

    /// The layout as an OCI archive: a tar of the directory tree.
    pub fn archive(&self) -> Result<Vec<u8>> {
        let mut b = tar::Builder::new(Vec::new());
        let mut go = || -> std::io::Result<()> {
            append(&mut b, "blobs/", 0o755, None)?;
            append(&mut b, "blobs/sha256/", 0o755, None)?;
            for (rel, bytes) in self.files() {
                append(&mut b, &rel, 0o644, Some(bytes))?;
            }
            Ok(())
        };
        go().map_err(Error::Layer)?;
        b.into_inner().map_err(Error::Layer)
    }

    /// Writes the OCI archive to `path`.
    pub fn write_archive(&self, path: &Path) -> Result<()> {
        let bytes = self.archive()?;
        std::fs::write(path, bytes).map_err(|e| Error::Write {
            path: path.to_path_buf(),
            source: e,
        })
    }
}

const OCI_LAYOUT: &str = "{\"imageLayoutVersion\":\"1.0.0\"}";

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn entries(tar_bytes: &[u8]) -> Vec<(String, u32, Vec<u8>)> {
        let mut a = tar::Archive::new(tar_bytes);
        a.entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let path = e.path().unwrap().display().to_string();
                let mode = e.header().mode().unwrap();
                let mut data = Vec::new();
                e.read_to_end(&mut data).unwrap();
                (path, mode, data)
            })
            .collect()
    }

    #[test]
    fn same_inputs_give_same_digests() {
        let a = Layout::build(b"probe-bytes", &[ImageSpec::probe("latest")]).unwrap();
        let b = Layout::build(b"probe-bytes", &[ImageSpec::probe("latest")]).unwrap();
        assert_eq!(a.images, b.images);
        assert_eq!(a.archive().unwrap(), b.archive().unwrap());
        let c = Layout::build(b"other-probe", &[ImageSpec::probe("latest")]).unwrap();
        assert_ne!(a.images[0].manifest.digest, c.images[0].manifest.digest);
    }

    #[test]
    fn every_blob_is_named_by_its_digest_and_the_manifest_points_at_them() {
        let mut user = ImageSpec::probe("user");
        user.user = "1000".into();
        user.working_dir = "/tmp".into();
        let l = Layout::build(b"x", &[ImageSpec::probe("latest"), user]).unwrap();
        for (d, bytes) in &l.blobs {
            assert_eq!(&sha256(bytes), d);
        }
        // One layer shared, a config and a manifest each.
        assert_eq!(l.blobs.len(), 5);
        let index: Value = serde_json::from_slice(&l.index).unwrap();
        let m = &index["manifests"][1];
        assert_eq!(m["annotations"][REF_NAME], "user");
        let manifest: Value = serde_json::from_slice(&l.blobs[m["digest"].as_str().unwrap()]).unwrap();
        let cfg_digest = manifest["config"]["digest"].as_str().unwrap();
        assert_eq!(manifest["config"]["size"], l.blobs[cfg_digest].len());
        let cfg: Value = serde_json::from_slice(&l.blobs[cfg_digest]).unwrap();
        assert_eq!(cfg["config"]["User"], "1000");
        assert_eq!(cfg["config"]["WorkingDir"], "/tmp");
        assert_eq!(cfg["config"]["Entrypoint"], json!(["/probe"]));
        assert_eq!(cfg["rootfs"]["diff_ids"][0], l.images[0].diff_id);
    }

    #[test]
    fn the_layer_holds_the_probe_passwd_and_tmp() {
        let l = Layout::build(b"\x7fELF-probe", &[ImageSpec::probe("latest")]).unwrap();
        let gz = &l.blobs[&l.images[0].layer.digest];
        let mut raw = Vec::new();
        flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut raw).unwrap();
        assert_eq!(sha256(&raw), l.images[0].diff_id);
        let e = entries(&raw);
        let find = |p: &str| {
            e.iter()
                .find(|x| x.0 == p)
                .unwrap_or_else(|| panic!("{p} missing: {e:?}"))
        };
        assert_eq!(find("probe").2, b"\x7fELF-probe");
        assert_eq!(find("probe").1, 0o755);
        assert_eq!(find("tmp/").1, 0o1777);
        let passwd = String::from_utf8(find("etc/passwd").2.clone()).unwrap();
        assert!(passwd.lines().any(|l| l.starts_with("root:x:0:0:")), "{passwd}");
        assert!(passwd.lines().any(|l| l.starts_with("probe:x:1000:1000:")), "{passwd}");
    }

    #[test]
    fn the_archive_and_the_directory_hold_the_same_files() {
        let l = Layout::build(b"p", &[ImageSpec::probe("latest")]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        l.write_dir(dir.path()).unwrap();
        let e = entries(&l.archive().unwrap());
        let files: Vec<_> = e.iter().filter(|x| !x.0.ends_with('/')).collect();
        assert_eq!(files.len(), 2 + l.blobs.len());
        for (rel, _, data) in files {
            assert_eq!(&std::fs::read(dir.path().join(rel)).unwrap(), data, "{rel}");
        }
        let layout: Value = serde_json::from_slice(&std::fs::read(dir.path().join("oci-layout")).unwrap()).unwrap();
        assert_eq!(layout["imageLayoutVersion"], "1.0.0");
    }

    #[test]
    fn duplicate_refs_and_empty_layouts_are_refused() {
        let dup = [ImageSpec::probe("a"), ImageSpec::probe("a")];
        assert!(matches!(Layout::build(b"p", &dup), Err(Error::DuplicateRef(r)) if r == "a"));
        assert!(matches!(Layout::build(b"p", &[]), Err(Error::Empty)));
    }
}
