//! A blocking CRI v1 client over a unix socket: every call has a deadline
//! (sent as `grpc-timeout` and enforced here too, so a server that never
//! answers cannot hang a case), and an error names the RPC.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use cri_api::v1 as api;
use cri_api::v1::image_service_client::ImageServiceClient;
use cri_api::v1::runtime_service_client::RuntimeServiceClient;
use tonic::transport::{Channel, Endpoint, Uri};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("endpoint {0:?} is not unix:///PATH (only unix sockets are supported)")]
    Endpoint(String),
    #[error("connecting to {endpoint}: {reason}")]
    Connect { endpoint: String, reason: String },
    #[error("starting the client's I/O runtime: {0}")]
    Runtime(std::io::Error),
}

/// How one call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    #[error("{rpc}: {code:?}: {message}")]
    Status {
        rpc: &'static str,
        code: tonic::Code,
        message: String,
    },
    #[error("{rpc}: no answer within {secs:.1}s")]
    Timeout { rpc: &'static str, secs: f64 },
}

impl CallError {
    /// The gRPC status code, `DeadlineExceeded` for a local timeout.
    pub fn code(&self) -> tonic::Code {
        match self {
            CallError::Status { code, .. } => *code,
            CallError::Timeout { .. } => tonic::Code::DeadlineExceeded,
        }
    }
}

pub type CallResult<T> = std::result::Result<T, CallError>;

/// The socket path of `unix:///PATH` (or a bare absolute path).
pub fn socket_path(endpoint: &str) -> Result<PathBuf, Error> {
    let p = endpoint.strip_prefix("unix://").unwrap_or(endpoint);
    if p.starts_with('/') {
        Ok(PathBuf::from(p))
    } else {
        Err(Error::Endpoint(endpoint.to_string()))
    }
}

/// A connection to one CRI endpoint; shareable between threads.
pub struct Client {
    pub endpoint: String,
    /// Deadline of each call.
    pub timeout: Duration,
    rt: tokio::runtime::Runtime,
    runtime: RuntimeServiceClient<Channel>,
    image: ImageServiceClient<Channel>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("endpoint", &self.endpoint).finish()
    }
}

impl Client {
    /// Connects to `endpoint` (`unix:///PATH`); `timeout` is the deadline
    /// of the connection and of each call.
    pub fn connect(endpoint: &str, timeout: Duration) -> Result<Self, Error> {
        let path = socket_path(endpoint)?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .thread_name("cri-client")
            .build()
            .map_err(Error::Runtime)?;
        let channel = rt
            .block_on(async {
                // The URI is required by the API but unused: the connector
                // below dials the socket.
                let ep = Endpoint::from_static("http://localhost").connect_timeout(timeout);
                let connect = ep.connect_with_connector(tower::service_fn(move |_: Uri| {
                    let path = path.clone();
                    async move {
                        let s = tokio::net::UnixStream::connect(path).await?;
                        Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(s))
                    }
                }));
                tokio::time::timeout(timeout, connect).await
            })
            .map_err(|_| Error::Connect {
                endpoint: endpoint.to_string(),
                reason: format!("no connection within {:.1}s", timeout.as_secs_f64()),
            })?
            .map_err(|e| Error::Connect {
                endpoint: endpoint.to_string(),
                reason: error_chain(&e),
            })?;
        Ok(Client {
            endpoint: endpoint.to_string(),
            timeout,
            rt,
            runtime: RuntimeServiceClient::new(channel.clone()).max_decoding_message_size(64 << 20),
            image: ImageServiceClient::new(channel).max_decoding_message_size(64 << 20),
        })
    }

    /// Runs `f` on the client's runtime with `deadline`.
    fn block<T, F>(&self, rpc: &'static str, deadline: Duration, f: F) -> CallResult<T>
    where
        F: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        match self.rt.block_on(async { tokio::time::timeout(deadline, f).await }) {
            Ok(Ok(r)) => Ok(r.into_inner()),
            Ok(Err(s)) => Err(CallError::Status {
                rpc,
                code: s.code(),
                message: s.message().to_string(),
            }),
            Err(_) => Err(CallError::Timeout {
                rpc,
                secs: deadline.as_secs_f64(),
            }),
        }
    }

    /// A call with an explicit deadline (ExecSync and StopContainer wait
    /// longer than an ordinary call).
    pub fn with_deadline(&self, deadline: Duration) -> Calls<'_> {
        Calls { c: self, deadline }
    }

    fn calls(&self) -> Calls<'_> {
        Calls {
            c: self,
            deadline: self.timeout,
        }
    }
}

/// The calls, with one deadline.
pub struct Calls<'a> {
    c: &'a Client,
    deadline: Duration,
}

macro_rules! define_calls {
    ($($svc:ident $method:ident $name:literal ($req:ident) -> $resp:ident;)*) => {
        impl Calls<'_> {
            $(
                #[doc = concat!("`", $name, "`.")]
                pub fn $method(&self, req: api::$req) -> CallResult<api::$resp> {
                    let mut svc = self.c.$svc.clone();
                    let mut r = tonic::Request::new(req);
                    r.set_timeout(self.deadline);
                    self.c.block($name, self.deadline, async move { svc.$method(r).await })
                }
            )*
        }
        impl Client {
            $(
                #[doc = concat!("`", $name, "` with the default deadline.")]
                pub fn $method(&self, req: api::$req) -> CallResult<api::$resp> {
                    self.calls().$method(req)
                }
            )*
        }
    };
}

define_calls! {
    runtime version "Version" (VersionRequest) -> VersionResponse;
    runtime status "Status" (StatusRequest) -> StatusResponse;
    runtime run_pod_sandbox "RunPodSandbox" (RunPodSandboxRequest) -> RunPodSandboxResponse;
    runtime stop_pod_sandbox "StopPodSandbox" (StopPodSandboxRequest) -> StopPodSandboxResponse;
    runtime remove_pod_sandbox "RemovePodSandbox" (RemovePodSandboxRequest) -> RemovePodSandboxResponse;
    runtime pod_sandbox_status "PodSandboxStatus" (PodSandboxStatusRequest) -> PodSandboxStatusResponse;
    runtime list_pod_sandbox "ListPodSandbox" (ListPodSandboxRequest) -> ListPodSandboxResponse;
    runtime create_container "CreateContainer" (CreateContainerRequest) -> CreateContainerResponse;
    runtime start_container "StartContainer" (StartContainerRequest) -> StartContainerResponse;
    runtime stop_container "StopContainer" (StopContainerRequest) -> StopContainerResponse;
    runtime remove_container "RemoveContainer" (RemoveContainerRequest) -> RemoveContainerResponse;
    runtime list_containers "ListContainers" (ListContainersRequest) -> ListContainersResponse;
    runtime container_status "ContainerStatus" (ContainerStatusRequest) -> ContainerStatusResponse;
    runtime update_container_resources "UpdateContainerResources" (UpdateContainerResourcesRequest) -> UpdateContainerResourcesResponse;
    runtime reopen_container_log "ReopenContainerLog" (ReopenContainerLogRequest) -> ReopenContainerLogResponse;
    runtime exec_sync "ExecSync" (ExecSyncRequest) -> ExecSyncResponse;
    runtime exec "Exec" (ExecRequest) -> ExecResponse;
    runtime attach "Attach" (AttachRequest) -> AttachResponse;
    runtime port_forward "PortForward" (PortForwardRequest) -> PortForwardResponse;
    runtime container_stats "ContainerStats" (ContainerStatsRequest) -> ContainerStatsResponse;
    runtime list_container_stats "ListContainerStats" (ListContainerStatsRequest) -> ListContainerStatsResponse;
    runtime pod_sandbox_stats "PodSandboxStats" (PodSandboxStatsRequest) -> PodSandboxStatsResponse;
    runtime update_runtime_config "UpdateRuntimeConfig" (UpdateRuntimeConfigRequest) -> UpdateRuntimeConfigResponse;
    image list_images "ListImages" (ListImagesRequest) -> ListImagesResponse;
    image image_status "ImageStatus" (ImageStatusRequest) -> ImageStatusResponse;
    image pull_image "PullImage" (PullImageRequest) -> PullImageResponse;
    image remove_image "RemoveImage" (RemoveImageRequest) -> RemoveImageResponse;
    image image_fs_info "ImageFsInfo" (ImageFsInfoRequest) -> ImageFsInfoResponse;
}

/// An error and its sources, on one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_must_be_unix_sockets() {
        assert_eq!(socket_path("unix:///run/x.sock").unwrap(), PathBuf::from("/run/x.sock"));
        assert_eq!(socket_path("/run/x.sock").unwrap(), PathBuf::from("/run/x.sock"));
        assert!(matches!(socket_path("tcp://1.2.3.4:5"), Err(Error::Endpoint(_))));
    }

    #[test]
    fn a_missing_socket_fails_to_connect_naming_it() {
        let e = Client::connect("unix:///nonexistent/cri.sock", Duration::from_secs(2)).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/cri.sock"), "{e}");
    }

    #[test]
    fn a_server_that_never_answers_times_out() {
        // A socket that accepts and never speaks HTTP/2.
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("mute.sock");
        let l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let _keep = std::thread::spawn(move || {
            let conns: Vec<_> = l.incoming().take(4).collect();
            std::thread::sleep(Duration::from_secs(5));
            drop(conns);
        });
        let start = std::time::Instant::now();
        let r = Client::connect(&format!("unix://{}", sock.display()), Duration::from_millis(500))
            .map(|c| c.version(api::VersionRequest::default()).map(|_| ()));
        let ok = matches!(r, Err(_) | Ok(Err(_)));
        assert!(ok, "a mute server must not answer");
        assert!(start.elapsed() < Duration::from_secs(3), "{:?}", start.elapsed());
    }
}
