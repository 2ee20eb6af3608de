//! ImageService handlers over the image store. Pulls and the store's disk
//! walks run on the blocking pool; store errors become status codes by kind.

use std::collections::HashMap;
use std::sync::Arc;

use cri_api::v1 as pb;
use cri_api::v1::image_service_server::ImageService;
use tonic::{Request, Response, Status};

use crate::images::{self, Auth, Image, Store};

pub struct ImageSvc {
    pub store: Arc<Store>,
}

type R<T> = Result<Response<T>, Status>;

/// The status code for what the store says: a missing image or tag is
/// NotFound, a bad reference InvalidArgument, a registry that refuses the
/// credentials Unauthenticated or PermissionDenied, one that cannot be
/// reached Unavailable, content that does not match its digest DataLoss.
fn status_of(e: images::Error) -> Status {
    use images::Error as E;
    let msg = e.to_string();
    match e {
        E::NotFound(_) => Status::not_found(msg),
        E::Invalid { ref what, .. } if what.starts_with("image reference") => Status::invalid_argument(msg),
        E::Registry { status: 404, .. } => Status::not_found(msg),
        E::Registry { status: 401, .. } => Status::unauthenticated(msg),
        E::Registry { status: 403, .. } => Status::permission_denied(msg),
        E::Registry { status: 0, .. } | E::Registry { status: 500..=599, .. } => Status::unavailable(msg),
        E::DigestMismatch { .. } => Status::data_loss(msg),
        E::Registry { .. } | E::Invalid { .. } | E::Io { .. } => Status::internal(msg),
    }
}

async fn blocking<T: Send + 'static>(
    store: &Arc<Store>,
    f: impl FnOnce(&Store) -> images::Result<T> + Send + 'static,
) -> Result<T, Status> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || f(&store))
        .await
        .map_err(|e| Status::internal(format!("image operation panicked: {e}")))?
        .map_err(status_of)
}

/// The reference an ImageSpec names; empty is a malformed request.
fn reference(spec: Option<pb::ImageSpec>) -> Result<String, Status> {
    match spec.map(|s| s.image) {
        Some(i) if !i.trim().is_empty() => Ok(i),
        _ => Err(Status::invalid_argument("image.image is required")),
    }
}

fn pb_image(i: Image) -> pb::Image {
    pb::Image {
        uid: i.uid.map(|value| pb::Int64Value { value }),
        spec: Some(pb::ImageSpec {
            image: i.id.clone(),
            ..Default::default()
        }),
        id: i.id,
        repo_tags: i.repo_tags,
        repo_digests: i.repo_digests,
        size: i.size,
        username: i.username,
        pinned: false,
        image_source: String::new(),
    }
}

fn auth(a: pb::AuthConfig) -> Option<Auth> {
    let given = [&a.username, &a.password, &a.auth, &a.identity_token, &a.registry_token]
        .iter()
        .any(|s| !s.is_empty());
    given.then_some(Auth {
        username: a.username,
        password: a.password,
        auth: a.auth,
        identity_token: a.identity_token,
        registry_token: a.registry_token,
    })
}

#[tonic::async_trait]
impl ImageService for ImageSvc {
    async fn list_images(&self, req: Request<pb::ListImagesRequest>) -> R<pb::ListImagesResponse> {
        let wanted = req
            .into_inner()
            .filter
            .and_then(|f| f.image)
            .map(|s| s.image)
            .filter(|s| !s.is_empty());
        let images = blocking(&self.store, move |store| match wanted {
            // A filter names one image, by any of its references or its id.
            Some(r) => match store.status(&r) {
                Ok(found) => Ok(found.into_iter().collect()),
                // A reference that cannot name any image matches none.
                Err(images::Error::Invalid { .. }) => Ok(Vec::new()),
                Err(e) => Err(e),
            },
            None => store.list(),
        })
        .await?;
        Ok(Response::new(pb::ListImagesResponse {
            images: images.into_iter().map(pb_image).collect(),
        }))
    }

    async fn image_status(&self, req: Request<pb::ImageStatusRequest>) -> R<pb::ImageStatusResponse> {
        let req = req.into_inner();
        let r = reference(req.image)?;
        let verbose = req.verbose;
        let (image, info) = blocking(&self.store, move |store| {
            let Some(image) = store.status(&r)? else {
                return Ok((None, HashMap::new()));
            };
            let mut info = HashMap::new();
            if verbose {
                let c = store.image_config(&image.id)?;
                let v = serde_json::json!({
                    "id": image.id,
                    "repoTags": image.repo_tags,
                    "repoDigests": image.repo_digests,
                    "size": image.size,
                    "config": {
                        "Entrypoint": c.entrypoint,
                        "Cmd": c.cmd,
                        "Env": c.env,
                        "WorkingDir": c.working_dir,
                        "User": c.user,
                        "Labels": c.labels,
                        "StopSignal": c.stop_signal,
                    },
                });
                info.insert("info".to_string(), v.to_string());
            }
            Ok((Some(image), info))
        })
        .await?;
        // An absent image is an empty answer, not an error (the CRI's contract).
        Ok(Response::new(pb::ImageStatusResponse {
            image: image.map(pb_image),
            info,
        }))
    }

    async fn pull_image(&self, req: Request<pb::PullImageRequest>) -> R<pb::PullImageResponse> {
        let req = req.into_inner();
        let r = reference(req.image)?;
        let auth = req.auth.and_then(auth);
        let pulled = blocking(&self.store, move |store| store.pull(&r, auth.as_ref())).await?;
        // containerd answers with the image id: what ImageStatus and
        // CreateContainer accept back.
        Ok(Response::new(pb::PullImageResponse { image_ref: pulled.id }))
    }

    async fn remove_image(&self, req: Request<pb::RemoveImageRequest>) -> R<pb::RemoveImageResponse> {
        let r = reference(req.into_inner().image)?;
        blocking(&self.store, move |store| store.remove(&r)).await?;
        Ok(Response::new(pb::RemoveImageResponse {}))
    }

    async fn image_fs_info(&self, _: Request<pb::ImageFsInfoRequest>) -> R<pb::ImageFsInfoResponse> {
        let fs = blocking(&self.store, |store| store.fs_info()).await?;
        Ok(Response::new(pb::ImageFsInfoResponse {
            image_filesystems: vec![pb::FilesystemUsage {
                timestamp: fs.timestamp_ns,
                fs_id: Some(pb::FilesystemIdentifier {
                    mountpoint: fs.mountpoint.display().to_string(),
                }),
                used_bytes: Some(pb::UInt64Value { value: fs.used_bytes }),
                inodes_used: Some(pb::UInt64Value { value: fs.inodes_used }),
            }],
            container_filesystems: Vec::new(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    #[test]
    fn store_errors_map_to_the_status_codes_kubelet_tells_apart() {
        let reg = |status| images::Error::Registry {
            status,
            url: "http://127.0.0.1:1/v2/x/manifests/t".into(),
            message: "m".into(),
        };
        assert_eq!(status_of(images::Error::NotFound("x".into())).code(), Code::NotFound);
        assert_eq!(status_of(reg(404)).code(), Code::NotFound);
        assert_eq!(status_of(reg(401)).code(), Code::Unauthenticated);
        assert_eq!(status_of(reg(0)).code(), Code::Unavailable);
        assert_eq!(status_of(reg(503)).code(), Code::Unavailable);
        let bad = images::Reference::parse("UPPER/Case").unwrap_err();
        assert_eq!(status_of(bad).code(), Code::InvalidArgument);
    }

    #[test]
    fn auth_is_none_unless_something_is_given() {
        assert!(auth(pb::AuthConfig::default()).is_none());
        let a = auth(pb::AuthConfig {
            username: "u".into(),
            password: "p".into(),
            server_address: "127.0.0.1:5000".into(),
            ..Default::default()
        })
        .unwrap();
        assert_eq!((a.username.as_str(), a.password.as_str()), ("u", "p"));
    }
}
