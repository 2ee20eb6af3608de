//! RuntimeService handlers.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use cri_api::v1 as pb;
use cri_api::v1::runtime_service_server::RuntimeService;
use tonic::{Request, Response, Status};

use super::{blocking, convert};
use crate::container::{ContainerRecord, State};
use crate::pod::{PodRecord, PodState};
use crate::streaming::{self, StreamServer};
use crate::{Cri, Error};

pub struct RuntimeSvc {
    pub cri: Arc<Cri>,
    /// Where Exec, Attach and PortForward sessions are served.
    pub streams: Arc<StreamServer>,
}

type R<T> = Result<Response<T>, Status>;

fn need_id(id: &str, field: &str) -> Result<(), Status> {
    if id.is_empty() {
        return Err(Status::invalid_argument(format!("{field} is required")));
    }
    Ok(())
}

fn labels_match(labels: &std::collections::BTreeMap<String, String>, selector: &HashMap<String, String>) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

fn map(m: &std::collections::BTreeMap<String, String>) -> HashMap<String, String> {
    m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

fn pod_state(s: PodState) -> i32 {
    (match s {
        PodState::Ready => pb::PodSandboxState::SandboxReady,
        PodState::NotReady => pb::PodSandboxState::SandboxNotready,
    }) as i32
}

fn container_state(s: State) -> i32 {
    (match s {
        State::Created => pb::ContainerState::ContainerCreated,
        State::Running => pb::ContainerState::ContainerRunning,
        State::Exited => pb::ContainerState::ContainerExited,
        State::Unknown => pb::ContainerState::ContainerUnknown,
    }) as i32
}

fn pod_metadata(p: &PodRecord) -> pb::PodSandboxMetadata {
    pb::PodSandboxMetadata {
        name: p.spec.name.clone(),
        uid: p.spec.uid.clone(),
        namespace: p.spec.namespace.clone(),
        attempt: p.spec.attempt,
    }
}

fn container_metadata(c: &ContainerRecord) -> pb::ContainerMetadata {
    pb::ContainerMetadata {
        name: c.spec.name.clone(),
        attempt: c.spec.attempt,
    }
}

fn image_spec(c: &ContainerRecord) -> pb::ImageSpec {
    pb::ImageSpec {
        image: c.spec.image.clone(),
        ..Default::default()
    }
}

fn container_status(cri: &Cri, c: &ContainerRecord) -> pb::ContainerStatus {
    let st = c.status(cri);
    pb::ContainerStatus {
        id: c.id.clone(),
        metadata: Some(container_metadata(c)),
        state: container_state(st.state),
        created_at: c.created_at,
        started_at: c.started_at,
        finished_at: st.exit.as_ref().map(|e| e.finished_at).unwrap_or(0),
        exit_code: st.exit.as_ref().map(|e| e.code).unwrap_or(0),
        image: Some(image_spec(c)),
        image_ref: c.image_ref.clone(),
        image_id: c.image_id.clone(),
        reason: st.reason,
        message: st.message,
        labels: map(&c.spec.labels),
        annotations: map(&c.spec.annotations),
        mounts: c
            .spec
            .mounts
            .iter()
            .map(|m| pb::Mount {
                container_path: m.container_path.clone(),
                host_path: m.host_path.clone(),
                readonly: m.readonly,
                propagation: match m.propagation {
                    crate::spec::Propagation::Private => pb::MountPropagation::PropagationPrivate,
                    crate::spec::Propagation::HostToContainer => pb::MountPropagation::PropagationHostToContainer,
                    crate::spec::Propagation::Bidirectional => pb::MountPropagation::PropagationBidirectional,
                } as i32,
                ..Default::default()
            })
            .collect(),
        log_path: c.log_path.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
        resources: Some(pb::ContainerResources {
            linux: Some(convert::pb_resources(&c.spec.resources)),
        }),
        ..Default::default()
    }
}

fn pod_status(p: &PodRecord) -> pb::PodSandboxStatus {
    pb::PodSandboxStatus {
        id: p.id.clone(),
        metadata: Some(pod_metadata(p)),
        state: pod_state(p.current_state()),
        created_at: p.created_at,
        network: Some(pb::PodSandboxNetworkStatus {
            ip: p
                .network
                .as_ref()
                .and_then(|n| n.ips.first().cloned())
                .unwrap_or_default(),
            additional_ips: p
                .network
                .iter()
                .flat_map(|n| n.ips.iter().skip(1))
                .map(|ip| pb::PodIp { ip: ip.clone() })
                .collect(),
        }),
        linux: Some(pb::LinuxPodSandboxStatus {
            namespaces: Some(pb::Namespace {
                options: Some(pb::NamespaceOption {
                    network: convert::pb_ns_mode(p.spec.network),
                    pid: convert::pb_ns_mode(p.spec.pid),
                    ipc: convert::pb_ns_mode(p.spec.ipc),
                    ..Default::default()
                }),
            }),
        }),
        labels: map(&p.spec.labels),
        annotations: map(&p.spec.annotations),
        runtime_handler: p.spec.handler.clone(),
    }
}

fn container_stats(cri: &Cri, c: &ContainerRecord) -> pb::ContainerStats {
    let u = crate::stats::usage(&c.cgroups_path);
    let writable = cri.store.dir(crate::store::Kind::Container, &c.id);
    let (bytes, inodes) = crate::stats::disk_usage(&writable);
    let v = |x: Option<u64>| x.map(|value| pb::UInt64Value { value });
    pb::ContainerStats {
        attributes: Some(pb::ContainerAttributes {
            id: c.id.clone(),
            metadata: Some(container_metadata(c)),
            labels: map(&c.spec.labels),
            annotations: map(&c.spec.annotations),
        }),
        cpu: Some(pb::CpuUsage {
            timestamp: u.timestamp,
            usage_core_nano_seconds: v(u.cpu_usage_ns),
            ..Default::default()
        }),
        memory: Some(pb::MemoryUsage {
            timestamp: u.timestamp,
            working_set_bytes: v(u.memory_working_set),
            usage_bytes: v(u.memory_usage),
            available_bytes: v(u
                .memory_limit
                .zip(u.memory_working_set)
                .map(|(l, w)| l.saturating_sub(w))),
            ..Default::default()
        }),
        writable_layer: Some(pb::FilesystemUsage {
            timestamp: u.timestamp,
            fs_id: Some(pb::FilesystemIdentifier {
                mountpoint: writable.display().to_string(),
            }),
            used_bytes: Some(pb::UInt64Value { value: bytes }),
            inodes_used: Some(pb::UInt64Value { value: inodes }),
        }),
        swap: None,
    }
}

fn pod_stats(cri: &Cri, p: &PodRecord) -> crate::Result<pb::PodSandboxStats> {
    let u = crate::stats::usage(&p.cgroup_parent);
    let v = |x: Option<u64>| x.map(|value| pb::UInt64Value { value });
    let containers: Vec<pb::ContainerStats> = cri
        .containers()?
        .iter()
        .filter(|c| c.pod_id == p.id && c.status(cri).state == State::Running)
        .map(|c| container_stats(cri, c))
        .collect();
    Ok(pb::PodSandboxStats {
        attributes: Some(pb::PodSandboxAttributes {
            id: p.id.clone(),
            metadata: Some(pod_metadata(p)),
            labels: map(&p.spec.labels),
            annotations: map(&p.spec.annotations),
        }),
        linux: Some(pb::LinuxPodSandboxStats {
            cpu: Some(pb::CpuUsage {
                timestamp: u.timestamp,
                usage_core_nano_seconds: v(u.cpu_usage_ns),
                ..Default::default()
            }),
            memory: Some(pb::MemoryUsage {
                timestamp: u.timestamp,
                working_set_bytes: v(u.memory_working_set),
                usage_bytes: v(u.memory_usage),
                ..Default::default()
            }),
            network: None,
            process: None,
            containers,
        }),
    })
}

/// The most ExecSync returns of each stream (the CRI's cap).
const EXEC_OUTPUT_CAP: usize = 16 << 20;

async fn read_capped(r: Option<impl tokio::io::AsyncRead + Unpin>) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let Some(mut r) = r else { return Vec::new() };
    let mut out = Vec::new();
    let mut buf = vec![0u8; 65536];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => return out,
            Ok(n) => {
                let room = EXEC_OUTPUT_CAP.saturating_sub(out.len());
                out.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
}

#[tonic::async_trait]
impl RuntimeService for RuntimeSvc {
    async fn version(&self, _: Request<pb::VersionRequest>) -> R<pb::VersionResponse> {
        Ok(Response::new(pb::VersionResponse {
            version: "0.1.0".into(),
            runtime_name: "oci-harness-cri".into(),
            runtime_version: env!("CARGO_PKG_VERSION").into(),
            runtime_api_version: cri_api::API_VERSION.into(),
        }))
    }

    async fn run_pod_sandbox(&self, req: Request<pb::RunPodSandboxRequest>) -> R<pb::RunPodSandboxResponse> {
        let spec = convert::pod_spec(req.into_inner())?;
        let id = blocking(&self.cri, move |cri| cri.run_pod(spec)).await?;
        Ok(Response::new(pb::RunPodSandboxResponse { pod_sandbox_id: id }))
    }

    async fn stop_pod_sandbox(&self, req: Request<pb::StopPodSandboxRequest>) -> R<pb::StopPodSandboxResponse> {
        let id = req.into_inner().pod_sandbox_id;
        need_id(&id, "pod_sandbox_id")?;
        blocking(&self.cri, move |cri| cri.stop_pod(&id)).await?;
        Ok(Response::new(pb::StopPodSandboxResponse {}))
    }

    async fn remove_pod_sandbox(&self, req: Request<pb::RemovePodSandboxRequest>) -> R<pb::RemovePodSandboxResponse> {
        let id = req.into_inner().pod_sandbox_id;
        need_id(&id, "pod_sandbox_id")?;
        blocking(&self.cri, move |cri| cri.remove_pod(&id)).await?;
        Ok(Response::new(pb::RemovePodSandboxResponse {}))
    }

    async fn pod_sandbox_status(&self, req: Request<pb::PodSandboxStatusRequest>) -> R<pb::PodSandboxStatusResponse> {
        let id = req.into_inner().pod_sandbox_id;
        need_id(&id, "pod_sandbox_id")?;
        let (status, containers) = blocking(&self.cri, move |cri| {
            let p = cri.pod(&id)?;
            let cs: Vec<pb::ContainerStatus> = cri
                .containers()?
                .iter()
                .filter(|c| c.pod_id == id)
                .map(|c| container_status(cri, c))
                .collect();
            Ok((pod_status(&p), cs))
        })
        .await?;
        Ok(Response::new(pb::PodSandboxStatusResponse {
            status: Some(status),
            info: HashMap::new(),
            containers_statuses: containers,
            timestamp: crate::monitor::now_ns(),
        }))
    }

    async fn list_pod_sandbox(&self, req: Request<pb::ListPodSandboxRequest>) -> R<pb::ListPodSandboxResponse> {
        let filter = req.into_inner().filter.unwrap_or_default();
        let items = blocking(&self.cri, move |cri| {
            Ok(cri
                .pods()?
                .into_iter()
                .filter(|p| filter.id.is_empty() || p.id.starts_with(&filter.id))
                .filter(|p| {
                    filter
                        .state
                        .as_ref()
                        .is_none_or(|s| s.state == pod_state(p.current_state()))
                })
                .filter(|p| labels_match(&p.spec.labels, &filter.label_selector))
                .map(|p| pb::PodSandbox {
                    id: p.id.clone(),
                    metadata: Some(pod_metadata(&p)),
                    state: pod_state(p.current_state()),
                    created_at: p.created_at,
                    labels: map(&p.spec.labels),
                    annotations: map(&p.spec.annotations),
                    runtime_handler: p.spec.handler.clone(),
                })
                .collect())
        })
        .await?;
        Ok(Response::new(pb::ListPodSandboxResponse { items }))
    }

    async fn create_container(&self, req: Request<pb::CreateContainerRequest>) -> R<pb::CreateContainerResponse> {
        let req = req.into_inner();
        need_id(&req.pod_sandbox_id, "pod_sandbox_id")?;
        let spec = convert::container_spec(req.config)?;
        let pod = req.pod_sandbox_id;
        let id = blocking(&self.cri, move |cri| cri.create_container(&pod, spec)).await?;
        Ok(Response::new(pb::CreateContainerResponse { container_id: id }))
    }

    async fn start_container(&self, req: Request<pb::StartContainerRequest>) -> R<pb::StartContainerResponse> {
        let id = req.into_inner().container_id;
        need_id(&id, "container_id")?;
        blocking(&self.cri, move |cri| cri.start_container(&id)).await?;
        Ok(Response::new(pb::StartContainerResponse {}))
    }

    async fn stop_container(&self, req: Request<pb::StopContainerRequest>) -> R<pb::StopContainerResponse> {
        let req = req.into_inner();
        need_id(&req.container_id, "container_id")?;
        blocking(&self.cri, move |cri| {
            // Unknown ids are an error here (kubelet stops what it listed);
            // a container that is already gone after the check is not.
            cri.container(&req.container_id)?;
            cri.stop_container(&req.container_id, req.timeout)
        })
        .await?;
        Ok(Response::new(pb::StopContainerResponse {}))
    }

    async fn remove_container(&self, req: Request<pb::RemoveContainerRequest>) -> R<pb::RemoveContainerResponse> {
        let id = req.into_inner().container_id;
        need_id(&id, "container_id")?;
        blocking(&self.cri, move |cri| cri.remove_container(&id)).await?;
        Ok(Response::new(pb::RemoveContainerResponse {}))
    }

    async fn list_containers(&self, req: Request<pb::ListContainersRequest>) -> R<pb::ListContainersResponse> {
        let filter = req.into_inner().filter.unwrap_or_default();
        let containers = blocking(&self.cri, move |cri| {
            Ok(cri
                .containers()?
                .into_iter()
                .filter(|c| filter.id.is_empty() || c.id.starts_with(&filter.id))
                .filter(|c| filter.pod_sandbox_id.is_empty() || c.pod_id.starts_with(&filter.pod_sandbox_id))
                .filter(|c| labels_match(&c.spec.labels, &filter.label_selector))
                .filter_map(|c| {
                    let state = container_state(c.status(cri).state);
                    if filter.state.as_ref().is_some_and(|s| s.state != state) {
                        return None;
                    }
                    Some(pb::Container {
                        id: c.id.clone(),
                        pod_sandbox_id: c.pod_id.clone(),
                        metadata: Some(container_metadata(&c)),
                        image: Some(image_spec(&c)),
                        image_ref: c.image_ref.clone(),
                        image_id: c.image_id.clone(),
                        state,
                        created_at: c.created_at,
                        labels: map(&c.spec.labels),
                        annotations: map(&c.spec.annotations),
                    })
                })
                .collect())
        })
        .await?;
        Ok(Response::new(pb::ListContainersResponse { containers }))
    }

    async fn container_status(&self, req: Request<pb::ContainerStatusRequest>) -> R<pb::ContainerStatusResponse> {
        let id = req.into_inner().container_id;
        need_id(&id, "container_id")?;
        let status = blocking(&self.cri, move |cri| Ok(container_status(cri, &cri.container(&id)?))).await?;
        Ok(Response::new(pb::ContainerStatusResponse {
            status: Some(status),
            info: HashMap::new(),
        }))
    }

    async fn update_container_resources(
        &self,
        req: Request<pb::UpdateContainerResourcesRequest>,
    ) -> R<pb::UpdateContainerResourcesResponse> {
        let req = req.into_inner();
        need_id(&req.container_id, "container_id")?;
        let resources = convert::resources(req.linux.ok_or_else(|| Status::invalid_argument("linux is required"))?);
        blocking(&self.cri, move |cri| cri.update_container(&req.container_id, resources)).await?;
        Ok(Response::new(pb::UpdateContainerResourcesResponse {}))
    }

    async fn reopen_container_log(
        &self,
        req: Request<pb::ReopenContainerLogRequest>,
    ) -> R<pb::ReopenContainerLogResponse> {
        let id = req.into_inner().container_id;
        need_id(&id, "container_id")?;
        blocking(&self.cri, move |cri| cri.reopen_log(&id)).await?;
        Ok(Response::new(pb::ReopenContainerLogResponse {}))
    }

    async fn exec_sync(&self, req: Request<pb::ExecSyncRequest>) -> R<pb::ExecSyncResponse> {
        let req = req.into_inner();
        need_id(&req.container_id, "container_id")?;
        if req.cmd.is_empty() {
            return Err(Status::invalid_argument("cmd is required"));
        }
        let id = req.container_id.clone();
        let command = blocking(&self.cri, move |cri| {
            let c = cri.container(&id)?;
            if c.status(cri).state != State::Running {
                return Err(Error::FailedPrecondition(format!("container {id} is not running")));
            }
            Ok(cri.runtime(&c.handler)?.exec_command(&id, &req.cmd))
        })
        .await?;
        let mut command = tokio::process::Command::from(command);
        command
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .map_err(|e| Status::internal(format!("exec in {}: {e}", req.container_id)))?;
        let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
        let run = async {
            let (out, err, status) = tokio::join!(read_capped(stdout), read_capped(stderr), child.wait());
            (out, err, status)
        };
        let (stdout, stderr, status) = if req.timeout > 0 {
            match tokio::time::timeout(Duration::from_secs(req.timeout as u64), run).await {
                Ok(r) => r,
                Err(_) => {
                    return Err(Status::deadline_exceeded(format!(
                        "exec in {}: command timed out after {} s",
                        req.container_id, req.timeout
                    )))
                }
            }
        } else {
            run.await
        };
        let status = status.map_err(|e| Status::internal(format!("exec in {}: {e}", req.container_id)))?;
        use std::os::unix::process::ExitStatusExt;
        let exit_code = status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
        Ok(Response::new(pb::ExecSyncResponse {
            stdout,
            stderr,
            exit_code,
        }))
    }

    async fn exec(&self, req: Request<pb::ExecRequest>) -> R<pb::ExecResponse> {
        let r = req.into_inner();
        let req = streaming::ExecRequest {
            container_id: r.container_id,
            cmd: r.cmd,
            tty: r.tty,
            stdin: r.stdin,
            stdout: r.stdout,
            stderr: r.stderr,
        };
        let req = blocking(&self.cri, move |cri| {
            streaming::backend::check_exec(cri, &req).map(|()| req)
        })
        .await?;
        Ok(Response::new(pb::ExecResponse {
            url: self.streams.register_exec(req),
        }))
    }

    async fn attach(&self, req: Request<pb::AttachRequest>) -> R<pb::AttachResponse> {
        let r = req.into_inner();
        let req = streaming::AttachRequest {
            container_id: r.container_id,
            tty: r.tty,
            stdin: r.stdin,
            stdout: r.stdout,
            stderr: r.stderr,
        };
        let req = blocking(&self.cri, move |cri| {
            streaming::backend::check_attach(cri, &req).map(|()| req)
        })
        .await?;
        Ok(Response::new(pb::AttachResponse {
            url: self.streams.register_attach(req),
        }))
    }

    async fn port_forward(&self, req: Request<pb::PortForwardRequest>) -> R<pb::PortForwardResponse> {
        let r = req.into_inner();
        let pod_id = r.pod_sandbox_id;
        let (pod_id, ports) = blocking(&self.cri, move |cri| {
            streaming::backend::check_port_forward(cri, &pod_id, &r.port).map(|ports| (pod_id, ports))
        })
        .await?;
        Ok(Response::new(pb::PortForwardResponse {
            url: self
                .streams
                .register_portforward(streaming::PortForwardRequest { pod_id, ports }),
        }))
    }

    async fn container_stats(&self, req: Request<pb::ContainerStatsRequest>) -> R<pb::ContainerStatsResponse> {
        let id = req.into_inner().container_id;
        need_id(&id, "container_id")?;
        let stats = blocking(&self.cri, move |cri| Ok(container_stats(cri, &cri.container(&id)?))).await?;
        Ok(Response::new(pb::ContainerStatsResponse { stats: Some(stats) }))
    }

    async fn list_container_stats(
        &self,
        req: Request<pb::ListContainerStatsRequest>,
    ) -> R<pb::ListContainerStatsResponse> {
        let filter = req.into_inner().filter.unwrap_or_default();
        let stats = blocking(&self.cri, move |cri| {
            Ok(cri
                .containers()?
                .iter()
                .filter(|c| filter.id.is_empty() || c.id.starts_with(&filter.id))
                .filter(|c| filter.pod_sandbox_id.is_empty() || c.pod_id.starts_with(&filter.pod_sandbox_id))
                .filter(|c| labels_match(&c.spec.labels, &filter.label_selector))
                .filter(|c| c.status(cri).state == State::Running)
                .map(|c| container_stats(cri, c))
                .collect())
        })
        .await?;
        Ok(Response::new(pb::ListContainerStatsResponse { stats }))
    }

    async fn pod_sandbox_stats(&self, req: Request<pb::PodSandboxStatsRequest>) -> R<pb::PodSandboxStatsResponse> {
        let id = req.into_inner().pod_sandbox_id;
        need_id(&id, "pod_sandbox_id")?;
        let stats = blocking(&self.cri, move |cri| pod_stats(cri, &cri.pod(&id)?)).await?;
        Ok(Response::new(pb::PodSandboxStatsResponse { stats: Some(stats) }))
    }

    async fn list_pod_sandbox_stats(
        &self,
        req: Request<pb::ListPodSandboxStatsRequest>,
    ) -> R<pb::ListPodSandboxStatsResponse> {
        let filter = req.into_inner().filter.unwrap_or_default();
        let stats = blocking(&self.cri, move |cri| {
            cri.pods()?
                .iter()
                .filter(|p| filter.id.is_empty() || p.id.starts_with(&filter.id))
                .filter(|p| labels_match(&p.spec.labels, &filter.label_selector))
                .filter(|p| p.current_state() == PodState::Ready)
                .map(|p| pod_stats(cri, p))
                .collect()
        })
        .await?;
        Ok(Response::new(pb::ListPodSandboxStatsResponse { stats }))
    }

    async fn update_runtime_config(
        &self,
        req: Request<pb::UpdateRuntimeConfigRequest>,
    ) -> R<pb::UpdateRuntimeConfigResponse> {
        let cidr = req
            .into_inner()
            .runtime_config
            .and_then(|c| c.network_config)
            .map(|n| n.pod_cidr);
        if let Some(cidr) = cidr {
            blocking(&self.cri, move |cri| cri.set_pod_cidr(&cidr)).await?;
        }
        Ok(Response::new(pb::UpdateRuntimeConfigResponse {}))
    }

    async fn status(&self, req: Request<pb::StatusRequest>) -> R<pb::StatusResponse> {
        let condition = |t: &str| pb::RuntimeCondition {
            r#type: t.into(),
            status: true,
            ..Default::default()
        };
        // Pods off the host's network get only loopback without a CNI
        // network: say so, as containerd does.
        let not_ready = tokio::task::block_in_place(|| self.cri.config.cni.not_ready());
        let network = match not_ready {
            None => condition("NetworkReady"),
            Some(why) => pb::RuntimeCondition {
                r#type: "NetworkReady".into(),
                status: false,
                reason: "NetworkPluginNotReady".into(),
                message: why,
            },
        };
        let mut info = HashMap::new();
        if req.into_inner().verbose {
            let handlers: HashMap<&String, String> = self
                .cri
                .config
                .handlers
                .iter()
                .map(|(k, h)| (k, h.binary.display().to_string()))
                .collect();
            info.insert("handlers".into(), serde_json::to_string(&handlers).unwrap_or_default());
            let cidr = self.cri.pod_cidr.lock().unwrap_or_else(|p| p.into_inner()).clone();
            info.insert("podCIDR".into(), serde_json::to_string(&cidr).unwrap_or_default());
            // What each handler declares of itself (by-design differences
            // among them): `harness cri` reads them.
            let features = tokio::task::block_in_place(|| self.cri.handler_features());
            info.insert("features".into(), serde_json::to_string(features).unwrap_or_default());
        }
        Ok(Response::new(pb::StatusResponse {
            status: Some(pb::RuntimeStatus {
                conditions: vec![condition("RuntimeReady"), network],
            }),
            info,
            runtime_handlers: self
                .cri
                .config
                .handlers
                .keys()
                .map(|name| pb::RuntimeHandler {
                    name: name.clone(),
                    features: Some(pb::RuntimeHandlerFeatures::default()),
                })
                .collect(),
            features: Some(pb::RuntimeFeatures::default()),
        }))
    }
}
