//! The store on disk, under one root:
//!
//! - `blobs/sha256/<hex>`: manifests, configs and layer blobs, each written
//!   to `ingest/` first, verified (size and digest), then renamed in place;
//! - `layers/<diff_id hex>/`: each layer unpacked once, shared by every image
//!   and snapshot that uses it;
//! - `images.json`: the images (id = config digest) with their names,
//!   replaced atomically under `locks/index.lock`;
//! - `snapshots/<container id>/`: see snapshot.rs;
//! - `locks/`: flock files. A pull holds `pull-<name>` so concurrent pulls of
//!   one image download it once; pulls, imports and snapshots hold `gc`
//!   shared, garbage collection takes it exclusive (and skips when busy).
//!
//! Removing an image drops its names at once; its blobs and layers are
//! deleted when no image and no snapshot uses them any more (as containerd
//! does): a running container keeps its layers, kubelet's image GC is not
//! refused.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::digest::{Digest, HashWriter};
use super::error::{Error, Result};
use super::fsutil::{mkdirs, remove_tree, unique, write_atomic, FileLock, LockKind};
use super::reference::{valid_tag, Reference};
use super::registry::{Auth, Client};
use super::snapshot::{self, SnapshotRecord};
use super::spec::{self, AnyManifest, Descriptor, ImageConfigFile, Parsed, MAX_MANIFEST};
use super::unpack::unpack_layer;
use super::{FsInfo, Image, ImageConfig, ImageRef};

/// A config larger than this is refused before it is read whole.
const MAX_CONFIG: u64 = 16 << 20;

#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Registries (`host[:port]`) reached over plain http besides loopback.
    pub insecure_registries: Vec<String>,
}

pub struct Store {
    root: PathBuf,
    options: Options,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct ImageRecord {
    id: Digest,
    /// The platform manifest.
    manifest: Digest,
    /// Manifests, index and config: what GC keeps for this image.
    blobs: Vec<Digest>,
    layers: Vec<LayerRecord>,
    repo_tags: Vec<String>,
    repo_digests: Vec<String>,
    size: u64,
    user: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct LayerRecord {
    blob: Digest,
    diff_id: Digest,
    size: u64,
}

#[derive(Default, Serialize, Deserialize)]
struct Index {
    images: Vec<ImageRecord>,
}

/// Where blobs come from: a registry or an OCI layout directory.
trait Source {
    /// Writes the blob's bytes to `out`; the store verifies them.
    fn fetch(&self, digest: &Digest, out: &mut dyn Write) -> Result<()>;
}

impl Source for Client {
    fn fetch(&self, digest: &Digest, out: &mut dyn Write) -> Result<()> {
        self.blob(digest, out).map(drop)
    }
}

struct Layout(PathBuf);

impl Source for Layout {
    fn fetch(&self, digest: &Digest, out: &mut dyn Write) -> Result<()> {
        let p = self.0.join("blobs/sha256").join(digest.hex());
        let mut f = File::open(&p).map_err(Error::io("open layout blob", &p))?;
        io::copy(&mut f, out)
            .map_err(Error::io("read layout blob", &p))
            .map(drop)
    }
}

/// The names an installed image gets.
struct Names {
    tag: Option<String>,
    /// `name` whose `name@<top digest>` becomes a repo digest.
    name: Option<String>,
}

impl Store {
    pub fn open(root: &Path) -> Result<Store> {
        Store::open_with(root, Options::default())
    }

    pub fn open_with(root: &Path, options: Options) -> Result<Store> {
        let root = mkdirs(root)?;
        let root = root.canonicalize().map_err(Error::io("resolve", &root))?;
        for sub in ["blobs/sha256", "ingest", "layers", "snapshots", "locks", "tmp"] {
            mkdirs(&root.join(sub))?;
        }
        let store = Store { root, options };
        // Leftovers of an interrupted pull or import (ingest, half-unpacked layers).
        store.gc()?;
        Ok(store)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn blob_path(&self, d: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(d.hex())
    }

    fn lock(&self, name: &str, kind: LockKind) -> Result<FileLock> {
        FileLock::acquire(&self.root.join("locks").join(name), kind)
    }

    pub fn pull(&self, reference: &str, auth: Option<&Auth>) -> Result<ImageRef> {
        let r = Reference::parse(reference)?;
        let plain_http = r.is_loopback() || self.options.insecure_registries.contains(&r.domain);
        let _gc = self.lock("gc", LockKind::Shared)?;
        let _pull = self.lock(
            &format!("pull-{}", &Digest::of(r.to_string().as_bytes()).hex()[..32]),
            LockKind::Exclusive,
        )?;
        let client = Client::new(&r, auth, plain_http);
        let top = client.manifest(r.object())?;
        let top_digest = Digest::of(&top);
        if let Some(d) = &r.digest {
            d.verify(&format!("manifest of {r}"), &top_digest)?;
        }
        let names = Names {
            tag: r.tagged(),
            name: Some(r.name()),
        };
        let rec = self.install(&client, &r.to_string(), &top_digest, &top, names)?;
        Ok(ImageRef {
            id: rec.id.to_string(),
            repo_tag: r.tagged(),
            repo_digest: Some(format!("{}@{top_digest}", r.name())),
        })
    }

    /// Imports every image of an OCI layout directory, or of a tar archive
    /// of one (gzip-compressed or not).
    pub fn import(&self, path: &Path, name: Option<&str>) -> Result<Vec<ImageRef>> {
        // A name without a tag takes the tag of the layout's ref.name annotation.
        let given = name
            .map(|n| {
                Ok::<_, Error>((
                    Reference::parse(n)?,
                    n.rsplit('/').next().is_some_and(|last| last.contains(':')),
                ))
            })
            .transpose()?;
        let _gc = self.lock("gc", LockKind::Shared)?;
        let meta = fs::metadata(path).map_err(Error::io("stat", path))?;
        if meta.is_dir() {
            return self.import_layout(path, given.as_ref().map(|(r, t)| (r, *t)));
        }
        let tmp = self.root.join("tmp").join(unique("import-"));
        let r = extract_layout_archive(path, &tmp)
            .and_then(|()| self.import_layout(&tmp, given.as_ref().map(|(r, t)| (r, *t))));
        let cleaned = remove_tree(&tmp);
        let refs = r?;
        cleaned?;
        Ok(refs)
    }

    fn import_layout(&self, dir: &Path, given: Option<(&Reference, bool)>) -> Result<Vec<ImageRef>> {
        let what = format!("OCI layout {}", dir.display());
        let marker = dir.join("oci-layout");
        let layout: serde_json::Value = serde_json::from_slice(&fs::read(&marker).map_err(Error::io("read", &marker))?)
            .map_err(|e| Error::invalid(&what, format!("oci-layout is not JSON: {e}")))?;
        if layout.get("imageLayoutVersion").and_then(|v| v.as_str()).is_none() {
            return Err(Error::invalid(&what, "oci-layout has no imageLayoutVersion"));
        }
        let index_path = dir.join("index.json");
        let index = read_limited(&index_path, MAX_MANIFEST)?;
        let Parsed::Index(entries) = AnyManifest::parse(&format!("{what}: index.json"), &index)? else {
            return Err(Error::invalid(&what, "index.json is a manifest, not an index"));
        };
        if entries.is_empty() {
            return Err(Error::invalid(&what, "index.json lists no image"));
        }
        let source = Layout(dir.to_path_buf());
        let mut refs = Vec::new();
        for entry in &entries {
            let annotation = entry
                .annotations
                .get(spec::CONTAINERD_NAME)
                .or_else(|| entry.annotations.get(spec::REF_NAME));
            let reference = match (given, annotation) {
                (Some((g, _)), None) if entries.len() == 1 => Some(g.clone()),
                (Some((g, true)), Some(a)) if entries.len() == 1 && valid_tag(a) => Some(g.clone()),
                (Some((g, _)), Some(a)) if valid_tag(a) => Some(Reference {
                    tag: Some(a.clone()),
                    digest: None,
                    ..g.clone()
                }),
                (_, Some(a)) if !valid_tag(a) => Some(Reference::parse(a)?),
                (Some(_), None) => {
                    return Err(Error::invalid(
                        &what,
                        format!("several images, and {} has no name annotation", entry.digest),
                    ))
                }
                // Only a tag and no name to put it on: the image is known by its id.
                _ => None,
            };
            let top = self.ensure_small_blob(
                &source,
                entry,
                &format!("{what}: manifest {}", entry.digest),
                MAX_MANIFEST,
            )?;
            let names = Names {
                tag: reference.as_ref().and_then(Reference::tagged),
                name: reference.as_ref().map(Reference::name),
            };
            let rec = self.install(&source, &what, &entry.digest, &top, names)?;
            refs.push(ImageRef {
                id: rec.id.to_string(),
                repo_tag: reference.as_ref().and_then(Reference::tagged),
                repo_digest: reference.as_ref().map(|r| format!("{}@{}", r.name(), entry.digest)),
            });
        }
        Ok(refs)
    }

    /// Fetches what `top` leads to (the linux/amd64 manifest of an index,
    /// its config and layers), unpacks the layers and records the image.
    fn install(
        &self,
        src: &dyn Source,
        what: &str,
        top_digest: &Digest,
        top: &[u8],
        names: Names,
    ) -> Result<ImageRecord> {
        self.put_blob(top_digest, top)?;
        let mut blobs = vec![top_digest.clone()];
        let mut size = top.len() as u64;
        let (manifest_digest, config, layers) = match AnyManifest::parse(&format!("{what}: {top_digest}"), top)? {
            Parsed::Manifest { config, layers } => (top_digest.clone(), config, layers),
            Parsed::Index(list) => {
                let desc = spec::pick_platform(&format!("{what}: index {top_digest}"), &list)?.clone();
                let bytes =
                    self.ensure_small_blob(src, &desc, &format!("{what}: manifest {}", desc.digest), MAX_MANIFEST)?;
                blobs.push(desc.digest.clone());
                size += bytes.len() as u64;
                match AnyManifest::parse(&format!("{what}: manifest {}", desc.digest), &bytes)? {
                    Parsed::Manifest { config, layers } => (desc.digest, config, layers),
                    Parsed::Index(_) => return Err(Error::invalid(what, "an index inside an index is not supported")),
                }
            }
        };
        let config_bytes =
            self.ensure_small_blob(src, &config, &format!("{what}: config {}", config.digest), MAX_CONFIG)?;
        let parsed: ImageConfigFile = serde_json::from_slice(&config_bytes)
            .map_err(|e| Error::invalid(format!("{what}: config {}", config.digest), e.to_string()))?;
        if parsed.rootfs.diff_ids.len() != layers.len() {
            return Err(Error::invalid(
                format!("{what}: config {}", config.digest),
                format!("{} diff_ids for {} layers", parsed.rootfs.diff_ids.len(), layers.len()),
            ));
        }
        blobs.push(config.digest.clone());
        size += config.size;
        let mut records = Vec::new();
        for (desc, diff_id) in layers.iter().zip(&parsed.rootfs.diff_ids) {
            self.ensure_layer(src, what, desc, diff_id)?;
            size += desc.size;
            records.push(LayerRecord {
                blob: desc.digest.clone(),
                diff_id: diff_id.clone(),
                size: desc.size,
            });
        }
        let rec = ImageRecord {
            id: config.digest.clone(),
            manifest: manifest_digest,
            blobs,
            layers: records,
            repo_tags: names.tag.into_iter().collect(),
            repo_digests: names.name.map(|n| format!("{n}@{top_digest}")).into_iter().collect(),
            size,
            user: parsed.config.and_then(|c| c.user).unwrap_or_default(),
        };
        self.record(rec.clone())?;
        Ok(rec)
    }

    /// Stores bytes already verified against `d` (a manifest read whole).
    fn put_blob(&self, d: &Digest, bytes: &[u8]) -> Result<()> {
        let p = self.blob_path(d);
        if p.exists() {
            return Ok(());
        }
        d.verify("blob", &Digest::of(bytes))?;
        write_atomic(&p, bytes)
    }

    /// The blob of `desc`, fetched and verified unless present.
    fn ensure_blob(&self, src: &dyn Source, desc: &Descriptor, what: &str) -> Result<PathBuf> {
        let dest = self.blob_path(&desc.digest);
        if dest.exists() {
            return Ok(dest);
        }
        let tmp = self.root.join("ingest").join(unique(""));
        let r = (|| {
            let f = File::create(&tmp).map_err(Error::io("create", &tmp))?;
            let mut w = HashWriter::new(io::BufWriter::new(f));
            src.fetch(&desc.digest, &mut w)?;
            let (buf, got, len) = w.finish();
            let f = buf.into_inner().map_err(|e| Error::Io {
                op: "write",
                path: tmp.clone(),
                source: e.into_error(),
            })?;
            if len != desc.size {
                return Err(Error::invalid(
                    what,
                    format!("size: the descriptor says {} bytes, got {len}", desc.size),
                ));
            }
            desc.digest.verify(what, &got)?;
            f.sync_all().map_err(Error::io("sync", &tmp))?;
            fs::rename(&tmp, &dest).map_err(Error::io("rename into", &dest))
        })();
        if r.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        r.map(|()| dest)
    }

    fn ensure_small_blob(&self, src: &dyn Source, desc: &Descriptor, what: &str, limit: u64) -> Result<Vec<u8>> {
        if desc.size > limit {
            return Err(Error::invalid(
                what,
                format!("{} bytes, more than the {limit} allowed", desc.size),
            ));
        }
        let p = self.ensure_blob(src, desc, what)?;
        read_limited(&p, limit)
    }

    /// Unpacks a layer once: into a private directory, renamed into place
    /// when whole. A layer already there is neither fetched nor unpacked.
    fn ensure_layer(&self, src: &dyn Source, what: &str, desc: &Descriptor, diff_id: &Digest) -> Result<()> {
        let dest = self.root.join("layers").join(diff_id.hex());
        if dest.exists() {
            return Ok(());
        }
        let blob = self.ensure_blob(src, desc, &format!("{what}: layer {}", desc.digest))?;
        let tmp = self.root.join("layers").join(unique(".tmp-"));
        fs::create_dir(&tmp).map_err(Error::io("create", &tmp))?;
        let r = unpack_layer(&blob, &tmp, diff_id).and_then(|_| match fs::rename(&tmp, &dest) {
            // Another store on this root unpacked it meanwhile.
            Err(_) if dest.exists() => remove_tree(&tmp),
            r => r.map_err(Error::io("rename into", &dest)),
        });
        if r.is_err() {
            let _ = remove_tree(&tmp);
        }
        r
    }

    fn load(&self) -> Result<Index> {
        let p = self.root.join("images.json");
        match fs::read(&p) {
            Ok(b) => serde_json::from_slice(&b)
                .map_err(|e| Error::invalid(format!("image index {}", p.display()), e.to_string())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Index::default()),
            Err(e) => Err(Error::Io {
                op: "read",
                path: p,
                source: e,
            }),
        }
    }

    fn save(&self, index: &Index) -> Result<()> {
        write_atomic(
            &self.root.join("images.json"),
            &serde_json::to_vec_pretty(index).expect("serialisable"),
        )
    }

    /// Adds an image, or names to the image with its id. A tag names one
    /// image: it moves from any other, which goes when it has no name left.
    fn record(&self, rec: ImageRecord) -> Result<()> {
        let _l = self.lock("index.lock", LockKind::Exclusive)?;
        let mut index = self.load()?;
        for other in index.images.iter_mut().filter(|i| i.id != rec.id) {
            other.repo_tags.retain(|t| !rec.repo_tags.contains(t));
        }
        index
            .images
            .retain(|i| i.id == rec.id || !i.repo_tags.is_empty() || !i.repo_digests.is_empty());
        match index.images.iter_mut().find(|i| i.id == rec.id) {
            Some(old) => {
                for t in rec.repo_tags {
                    if !old.repo_tags.contains(&t) {
                        old.repo_tags.push(t);
                    }
                }
                for d in rec.repo_digests {
                    if !old.repo_digests.contains(&d) {
                        old.repo_digests.push(d);
                    }
                }
                for b in rec.blobs {
                    if !old.blobs.contains(&b) {
                        old.blobs.push(b);
                    }
                }
            }
            None => index.images.push(rec),
        }
        self.save(&index)
    }

    pub fn list(&self) -> Result<Vec<Image>> {
        Ok(self.load()?.images.iter().map(image_of).collect())
    }

    pub fn status(&self, reference: &str) -> Result<Option<Image>> {
        Ok(resolve(&self.load()?, reference)?.map(image_of))
    }

    /// Removes the image and all its names (CRI RemoveImage); absent is fine.
    pub fn remove(&self, reference: &str) -> Result<()> {
        {
            let _l = self.lock("index.lock", LockKind::Exclusive)?;
            let mut index = self.load()?;
            let Some(id) = resolve(&index, reference)?.map(|i| i.id.clone()) else {
                return Ok(());
            };
            index.images.retain(|i| i.id != id);
            self.save(&index)?;
        }
        self.gc()
    }

    pub fn image_config(&self, reference: &str) -> Result<ImageConfig> {
        let index = self.load()?;
        let rec = resolve(&index, reference)?.ok_or_else(|| Error::NotFound(reference.to_string()))?;
        let bytes = read_limited(&self.blob_path(&rec.id), MAX_CONFIG)?;
        let file: ImageConfigFile =
            serde_json::from_slice(&bytes).map_err(|e| Error::invalid(format!("config {}", rec.id), e.to_string()))?;
        let c = file.config.unwrap_or_default();
        Ok(ImageConfig {
            entrypoint: c.entrypoint.unwrap_or_default(),
            cmd: c.cmd.unwrap_or_default(),
            env: c.env.unwrap_or_default(),
            working_dir: c.working_dir.unwrap_or_default(),
            user: c.user.unwrap_or_default(),
            labels: c.labels.unwrap_or_default(),
            stop_signal: c.stop_signal.unwrap_or_default(),
        })
    }

    pub fn fs_info(&self) -> Result<FsInfo> {
        let dev = fs::metadata(&self.root).map_err(Error::io("stat", &self.root))?.dev();
        let mut seen = HashSet::new();
        let (mut bytes, mut inodes) = (0u64, 0u64);
        let mut stack = vec![self.root.clone()];
        while let Some(p) = stack.pop() {
            let m = match fs::symlink_metadata(&p) {
                Ok(m) => m,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue, // removed meanwhile
                Err(e) => {
                    return Err(Error::Io {
                        op: "stat",
                        path: p,
                        source: e,
                    })
                }
            };
            // Mounted snapshots are other filesystems: their content is counted in the layers and uppers.
            if m.dev() != dev || !seen.insert(m.ino()) {
                continue;
            }
            bytes += m.blocks() * 512;
            inodes += 1;
            if m.is_dir() {
                for e in fs::read_dir(&p).map_err(Error::io("list", &p))? {
                    stack.push(e.map_err(Error::io("list", &p))?.path());
                }
            }
        }
        let timestamp_ns = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as i64)
            .unwrap_or(0);
        Ok(FsInfo {
            mountpoint: self.root.clone(),
            used_bytes: bytes,
            inodes_used: inodes,
            timestamp_ns,
        })
    }

    pub fn snapshot(&self, reference: &str, container_id: &str) -> Result<PathBuf> {
        snapshot::check_container_id(container_id)?;
        let _gc = self.lock("gc", LockKind::Shared)?;
        let index = self.load()?;
        let rec = resolve(&index, reference)?.ok_or_else(|| Error::NotFound(reference.to_string()))?;
        let record = SnapshotRecord {
            container_id: container_id.to_string(),
            image_id: rec.id.clone(),
            layers: rec.layers.iter().map(|l| l.diff_id.hex().to_string()).collect(),
        };
        snapshot::create(&self.root, &record)
    }

    pub fn remove_snapshot(&self, container_id: &str) -> Result<()> {
        snapshot::check_container_id(container_id)?;
        snapshot::remove(&self.root, container_id)?;
        self.gc()
    }

    /// Deletes blobs and layers no image or snapshot uses, and leftovers of
    /// interrupted work. Skipped while a pull, import or snapshot runs (the
    /// next one collects).
    fn gc(&self) -> Result<()> {
        let Some(_gc) = FileLock::try_acquire(&self.root.join("locks/gc"), LockKind::Exclusive)? else {
            return Ok(());
        };
        let index = self.load()?;
        let mut blobs: HashSet<String> = HashSet::new();
        let mut layers: HashSet<String> = HashSet::from(["empty".to_string()]);
        for i in &index.images {
            blobs.extend(i.blobs.iter().map(|b| b.hex().to_string()));
            for l in &i.layers {
                blobs.insert(l.blob.hex().to_string());
                layers.insert(l.diff_id.hex().to_string());
            }
        }
        let snaps = self.root.join("snapshots");
        for e in fs::read_dir(&snaps).map_err(Error::io("list", &snaps))? {
            let dir = e.map_err(Error::io("list", &snaps))?.path();
            match snapshot::read_record(&dir) {
                Some(r) => layers.extend(r.layers),
                // Created but never recorded, so never mounted: a crash in create.
                None => {
                    let id = dir
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    snapshot::remove(&self.root, &id)?;
                }
            }
        }
        let sweep = |dir: &Path, keep: &dyn Fn(&str) -> bool| -> Result<()> {
            for e in fs::read_dir(dir).map_err(Error::io("list", dir))? {
                let e = e.map_err(Error::io("list", dir))?;
                let name = e.file_name().to_string_lossy().into_owned();
                if !keep(&name) {
                    let p = e.path();
                    if e.file_type().map_err(Error::io("stat", &p))?.is_dir() {
                        remove_tree(&p)?;
                    } else {
                        fs::remove_file(&p).map_err(Error::io("remove", &p))?;
                    }
                }
            }
            Ok(())
        };
        sweep(&self.root.join("blobs/sha256"), &|n| blobs.contains(n))?;
        sweep(&self.root.join("layers"), &|n| layers.contains(n))?;
        sweep(&self.root.join("ingest"), &|_| false)?;
        sweep(&self.root.join("tmp"), &|_| false)?;
        Ok(())
    }
}

/// Finds an image by id (`sha256:<hex>`, the bare hex, or an unambiguous
/// prefix of at least 12 digits), by `name@digest` or by `name[:tag]`.
fn resolve<'a>(index: &'a Index, reference: &str) -> Result<Option<&'a ImageRecord>> {
    let s = reference.trim();
    if s.starts_with("sha256:") {
        let d = Digest::parse(s)?;
        return Ok(index.images.iter().find(|i| i.id == d));
    }
    let is_hex = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if is_hex && s.len() == 64 {
        return Ok(index.images.iter().find(|i| i.id.hex() == s));
    }
    let by_name = match Reference::parse(s) {
        Ok(r) => {
            let found = match (&r.digest, r.tagged()) {
                (Some(d), _) => {
                    let want = format!("{}@{d}", r.name());
                    index.images.iter().find(|i| i.repo_digests.contains(&want))
                }
                (None, Some(t)) => index.images.iter().find(|i| i.repo_tags.contains(&t)),
                (None, None) => None,
            };
            if found.is_some() {
                return Ok(found);
            }
            Ok(())
        }
        Err(e) => Err(e),
    };
    if is_hex && s.len() >= 12 {
        let mut m = index.images.iter().filter(|i| i.id.hex().starts_with(s));
        if let (Some(one), None) = (m.next(), m.next()) {
            return Ok(Some(one));
        }
    }
    by_name.map(|()| None)
}

fn image_of(r: &ImageRecord) -> Image {
    // "uid", "uid:gid", "name" or "name:group": a number is a uid, anything else a user name.
    let user = r.user.split(':').next().unwrap_or_default();
    let (uid, username) = match user.parse::<i64>() {
        Ok(n) => (Some(n), String::new()),
        Err(_) => (None, user.to_string()),
    };
    Image {
        id: r.id.to_string(),
        repo_tags: r.repo_tags.clone(),
        repo_digests: r.repo_digests.clone(),
        size: r.size,
        uid,
        username,
    }
}

fn read_limited(p: &Path, limit: u64) -> Result<Vec<u8>> {
    let f = File::open(p).map_err(Error::io("open", p))?;
    let mut out = Vec::new();
    f.take(limit + 1).read_to_end(&mut out).map_err(Error::io("read", p))?;
    if out.len() as u64 > limit {
        return Err(Error::invalid(
            p.display().to_string(),
            format!("larger than {limit} bytes"),
        ));
    }
    Ok(out)
}

/// Extracts the parts of an OCI layout that an import reads (oci-layout,
/// index.json, blobs/sha256/<hex>) from a tar archive; other entries are
/// skipped, so nothing is written outside `dest`.
fn extract_layout_archive(archive: &Path, dest: &Path) -> Result<()> {
    mkdirs(&dest.join("blobs/sha256"))?;
    let f = File::open(archive).map_err(Error::io("open", archive))?;
    let mut r = io::BufReader::new(f);
    let gz = io::BufRead::fill_buf(&mut r)
        .map_err(Error::io("read", archive))?
        .starts_with(&[0x1f, 0x8b]);
    let stream: Box<dyn Read> = if gz {
        Box::new(flate2::bufread::MultiGzDecoder::new(r))
    } else {
        Box::new(r)
    };
    let what = format!("OCI archive {}", archive.display());
    let mut tar = tar::Archive::new(stream);
    for entry in tar.entries().map_err(Error::io("read", archive))? {
        let mut entry = entry.map_err(|e| Error::invalid(&what, format!("bad tar entry: {e}")))?;
        if entry.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let path = String::from_utf8_lossy(&entry.path_bytes())
            .trim_start_matches("./")
            .to_string();
        let target = match path.as_str() {
            "oci-layout" | "index.json" => dest.join(&path),
            p => match p
                .strip_prefix("blobs/sha256/")
                .map(|h| Digest::parse(&format!("sha256:{h}")))
            {
                Some(Ok(d)) => dest.join("blobs/sha256").join(d.hex()),
                _ => continue,
            },
        };
        let mut out = File::create(&target).map_err(Error::io("create", &target))?;
        io::copy(&mut entry, &mut out).map_err(Error::io("extract", &target))?;
    }
    Ok(())
}
