//! The gRPC layer: CRI v1 RuntimeService and ImageService on a unix socket. Handlers translate requests with
//! `convert`, run the blocking work of [`Cri`] on tokio's blocking pool, and
//! map [`Error`]s to status codes.

// tonic's Status is large, and every handler returns it: boxing it would only
// move the allocation, as tonic's own generated code does not.
#![allow(clippy::result_large_err)]

pub mod convert;
mod image_service;
mod runtime_service;

use std::path::Path;
use std::sync::Arc;

use tonic::{Code, Status};

use crate::images;
use crate::{Cri, Error};

impl From<Error> for Status {
    fn from(e: Error) -> Status {
        let code = match &e {
            Error::NotFound { .. } => Code::NotFound,
            Error::InvalidArgument(_) => Code::InvalidArgument,
            Error::FailedPrecondition(_) => Code::FailedPrecondition,
            Error::AlreadyExists(_) => Code::AlreadyExists,
            Error::DeadlineExceeded(_) => Code::DeadlineExceeded,
            Error::Unimplemented(_) => Code::Unimplemented,
            Error::Internal(_) => Code::Internal,
        };
        Status::new(code, e.to_string())
    }
}

/// Runs `f` on the blocking pool.
pub(crate) async fn blocking<T: Send + 'static>(
    cri: &Arc<Cri>,
    f: impl FnOnce(&Cri) -> crate::Result<T> + Send + 'static,
) -> Result<T, Status> {
    let cri = cri.clone();
    tokio::task::spawn_blocking(move || f(&cri))
        .await
        .map_err(|e| Status::internal(format!("operation panicked: {e}")))?
        .map_err(Status::from)
}

/// Serves CRI on the unix socket `socket` until `shutdown` resolves; the
/// ImageService answers from `images` (the store `cri` creates containers
/// from), Exec, Attach and PortForward hand out URLs of a streaming server
/// on the config's `streaming_address`.
pub async fn serve(
    cri: Arc<Cri>,
    images: Arc<images::Store>,
    socket: &Path,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let backend = Arc::new(crate::streaming::backend::CriBackend::new(cri.clone()));
    let address = cri.config.streaming_address.clone();
    let streams = crate::streaming::StreamServer::start(&address, backend)
        .map_err(|e| format!("streaming server on {address}: {e}"))?;
    if socket.exists() {
        std::fs::remove_file(socket)?;
    }
    if let Some(parent) = socket.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let listener = tokio::net::UnixListener::bind(socket)?;
    let incoming = tokio_stream::wrappers::UnixListenerStream::new(listener);
    let runtime = runtime_service::RuntimeSvc {
        cri,
        streams: Arc::new(streams),
    };
    let image = image_service::ImageSvc { store: images };
    let served = tonic::transport::Server::builder()
        .add_service(cri_api::v1::runtime_service_server::RuntimeServiceServer::new(runtime))
        .add_service(cri_api::v1::image_service_server::ImageServiceServer::new(image))
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await;
    // A socket left behind would look like a live server to the next client.
    let _ = std::fs::remove_file(socket);
    served?;
    Ok(())
}
