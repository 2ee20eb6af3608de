//! Where containers' root filesystems and image configs come from: the image
//! store (`images::Store`), or a plain directory named by an absolute path
//! (used as is, shared, for tests and for rootfs-only workflows).

use std::path::PathBuf;

use crate::spec::ImageConfig;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("image {0:?} not found")]
    NotFound(String),
    #[error("image {reference:?}: {reason}")]
    Other { reference: String, reason: String },
}

pub type Result<T> = std::result::Result<T, Error>;

/// The image side of CreateContainer and RemoveContainer.
pub trait Images: Send + Sync {
    /// The image's id (what Container.image_ref reports).
    fn resolve(&self, reference: &str) -> Result<String>;
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
    fn resolve(&self, reference: &str) -> Result<String> {
        Self::dir(reference).map(|p| p.display().to_string())
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
