//! Where containers' root filesystems and image configs come from: the image
//! store (`images::Store`), or a plain directory named by an absolute path
//! (used as is, shared, for tests and for rootfs-only workflows).

use std::path::{Path, PathBuf};

use crate::images;
use crate::spec::ImageConfig;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("image {0:?} not found")]
    NotFound(String),
    #[error("invalid image reference {reference:?}: {reason}")]
    Invalid { reference: String, reason: String },
    #[error("image {reference:?}: {reason}")]
    Other { reference: String, reason: String },
}

pub type Result<T> = std::result::Result<T, Error>;

/// Which image a reference names, as ContainerStatus reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The image id (`sha256:` of its config): Container.image_id.
    pub id: String,
    /// A digested reference (`name@sha256:...`) when the image has one, else
    /// the id: Container.image_ref, as containerd reports it.
    pub image_ref: String,
}

/// The image side of CreateContainer and RemoveContainer.
pub trait Images: Send + Sync {
    fn resolve(&self, reference: &str) -> Result<Resolved>;
    fn image_config(&self, reference: &str) -> Result<ImageConfig>;
    /// A root filesystem for the container, ready to use.
    fn snapshot(&self, reference: &str, container_id: &str) -> Result<PathBuf>;
    /// Releases what `snapshot` made; succeeds when there is nothing.
    fn remove_snapshot(&self, container_id: &str) -> Result<()>;
}

/// Directory rootfs images: the reference is the directory's absolute path;
/// an optional `image-config.json` beside it, named `<dir>.json`, gives
/// the image config (`spec::ImageConfig` fields).
#[derive(Debug, Default)]
pub struct Directories;

impl Directories {
    fn dir(reference: &str) -> Result<PathBuf> {
        let p = PathBuf::from(reference);
        if p.is_absolute() && p.is_dir() {
            Ok(p)
        } else {
            Err(Error::NotFound(reference.into()))
        }
    }
}

impl Images for Directories {
    fn resolve(&self, reference: &str) -> Result<Resolved> {
        let id = Self::dir(reference)?.display().to_string();
        Ok(Resolved {
            image_ref: id.clone(),
            id,
        })
    }

    fn image_config(&self, reference: &str) -> Result<ImageConfig> {
        let dir = Self::dir(reference)?;
        let file = dir.with_extension("json");
        match std::fs::read(&file) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| Error::Other {
                reference: reference.into(),
                reason: format!("{}: {e}", file.display()),
            }),
            Err(_) => Ok(ImageConfig::default()),
        }
    }

    fn snapshot(&self, reference: &str, _container_id: &str) -> Result<PathBuf> {
        Self::dir(reference)
    }

    fn remove_snapshot(&self, _container_id: &str) -> Result<()> {
        Ok(())
    }
}

/// The image store, with absolute directory paths still taken as
/// directory images (tests, rootfs-only workflows).
impl Images for images::Store {
    fn resolve(&self, reference: &str) -> Result<Resolved> {
        if is_directory(reference) {
            return Directories.resolve(reference);
        }
        let image = self
            .status(reference)
            .map_err(|e| store_error(reference, e))?
            .ok_or_else(|| Error::NotFound(reference.into()))?;
        Ok(Resolved {
            image_ref: image.repo_digests.first().cloned().unwrap_or_else(|| image.id.clone()),
            id: image.id,
        })
    }

    fn image_config(&self, reference: &str) -> Result<ImageConfig> {
        if is_directory(reference) {
            return Directories.image_config(reference);
        }
        let c = images::Store::image_config(self, reference).map_err(|e| store_error(reference, e))?;
        Ok(ImageConfig {
            entrypoint: c.entrypoint,
            cmd: c.cmd,
            env: c.env,
            working_dir: c.working_dir,
            user: c.user,
        })
    }

    fn snapshot(&self, reference: &str, container_id: &str) -> Result<PathBuf> {
        if is_directory(reference) {
            return Directories.snapshot(reference, container_id);
        }
        images::Store::snapshot(self, reference, container_id).map_err(|e| store_error(reference, e))
    }

    fn remove_snapshot(&self, container_id: &str) -> Result<()> {
        images::Store::remove_snapshot(self, container_id).map_err(|e| Error::Other {
            reference: format!("snapshot of container {container_id}"),
            reason: e.to_string(),
        })
    }
}

/// An absolute path: a directory image (a missing one is NotFound there,
/// not a malformed image reference here).
fn is_directory(reference: &str) -> bool {
    Path::new(reference).is_absolute()
}

fn store_error(reference: &str, e: images::Error) -> Error {
    match e {
        images::Error::NotFound(_) => Error::NotFound(reference.into()),
        // What the store finds invalid before touching anything is the reference.
        images::Error::Invalid { what, why } if what.starts_with("image reference") => Error::Invalid {
            reference: reference.into(),
            reason: why,
        },
        other => Error::Other {
            reference: reference.into(),
            reason: other.to_string(),
        },
    }
}
