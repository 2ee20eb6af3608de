//! State on disk under the server's root: `pods/<id>/pod.json` and
//! `containers/<id>/container.json` (plus what the monitor writes beside
//! it), written atomically so a server killed mid-write leaves the old or
//! the new record, and read back by a restarted server.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("state {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("state {path}: {source}")]
    Json { path: PathBuf, source: serde_json::Error },
}

pub type Result<T> = std::result::Result<T, Error>;

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.into(),
        source,
    }
}

/// The two kinds of record.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Pod,
    Container,
}

impl Kind {
    fn dir(self) -> &'static str {
        match self {
            Kind::Pod => "pods",
            Kind::Container => "containers",
        }
    }
    fn file(self) -> &'static str {
        match self {
            Kind::Pod => "pod.json",
            Kind::Container => "container.json",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    pub fn open(root: &Path) -> Result<Store> {
        for kind in [Kind::Pod, Kind::Container] {
            let d = root.join(kind.dir());
            std::fs::create_dir_all(&d).map_err(io(&d))?;
        }
        Ok(Store {
            root: root.to_path_buf(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The object's directory (it exists once the object was saved).
    pub fn dir(&self, kind: Kind, id: &str) -> PathBuf {
        self.root.join(kind.dir()).join(id)
    }

    pub fn save<T: Serialize>(&self, kind: Kind, id: &str, record: &T) -> Result<()> {
        let dir = self.dir(kind, id);
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let path = dir.join(kind.file());
        let json = serde_json::to_vec_pretty(record).map_err(|source| Error::Json {
            path: path.clone(),
            source,
        })?;
        write_atomic(&path, &json)
    }

    /// None when there is no such record.
    pub fn load<T: DeserializeOwned>(&self, kind: Kind, id: &str) -> Result<Option<T>> {
        if id.is_empty() || id.contains('/') || id.starts_with('.') {
            return Ok(None);
        }
        let path = self.dir(kind, id).join(kind.file());
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(Error::Io { path, source }),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| Error::Json { path, source })
    }

    /// Every record of a kind, in no particular order; directories without a
    /// record (an object half made or half removed) are skipped.
    pub fn list<T: DeserializeOwned>(&self, kind: Kind) -> Result<Vec<T>> {
        let dir = self.root.join(kind.dir());
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(io(&dir))? {
            let entry = entry.map_err(io(&dir))?;
            let Some(id) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if let Some(r) = self.load(kind, &id)? {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// Removes the object's directory and everything in it; succeeds when it
    /// is already gone.
    pub fn remove(&self, kind: Kind, id: &str) -> Result<()> {
        let dir = self.dir(kind, id);
        // The record goes first: a crash in the middle leaves a directory
        // that `list` skips rather than a record whose files are gone.
        let record = dir.join(kind.file());
        match std::fs::remove_file(&record) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(Error::Io { path: record, source }),
        }
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(Error::Io { path: dir, source }),
        }
    }
}

/// Writes `path` through a temporary file and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct R {
        id: String,
        n: u32,
    }

    #[test]
    fn records_round_trip_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        s.save(Kind::Pod, "a", &R { id: "a".into(), n: 1 }).unwrap();
        s.save(Kind::Pod, "a", &R { id: "a".into(), n: 2 }).unwrap();
        s.save(Kind::Container, "c", &R { id: "c".into(), n: 3 }).unwrap();
        // A directory without a record is not listed.
        std::fs::create_dir_all(s.dir(Kind::Pod, "half")).unwrap();
        let s = Store::open(dir.path()).unwrap();
        let pods: Vec<R> = s.list(Kind::Pod).unwrap();
        assert_eq!(pods, vec![R { id: "a".into(), n: 2 }]);
        assert_eq!(s.load::<R>(Kind::Container, "c").unwrap().unwrap().n, 3);
        assert!(s.load::<R>(Kind::Container, "a").unwrap().is_none());
        assert!(s.load::<R>(Kind::Container, "../pods/a").unwrap().is_none());
        s.remove(Kind::Pod, "a").unwrap();
        s.remove(Kind::Pod, "a").unwrap();
        assert!(!s.dir(Kind::Pod, "a").exists());
    }
}
