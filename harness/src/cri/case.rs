//! A CRI case is data plus a check, like a conformance case: an id
//! `area::case`, the CRI contracts it enforces (`cri.RPC`, see
//! [`CLAUSES`]), one line on what it checks, and the function that drives
//! the endpoint and judges what it saw.

use super::ctx::Ctx;
use crate::case::CaseResult;

#[derive(Clone, Copy)]
pub struct CriCase {
    /// `area::case`.
    pub id: &'static str,
    /// `cri.RPC` ids from [`CLAUSES`].
    pub clauses: &'static [&'static str],
    pub summary: &'static str,
    pub run: fn(&mut Ctx) -> CaseResult,
}

impl CriCase {
    pub fn group(&self) -> &'static str {
        self.id.split("::").next().unwrap_or(self.id)
    }
}

impl crate::cases::Selectable for CriCase {
    fn id(&self) -> &str {
        self.id
    }
}

impl std::fmt::Debug for CriCase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CriCase")
            .field("id", &self.id)
            .field("clauses", &self.clauses)
            .finish()
    }
}

/// The CRI v1 contracts the cases cite: one per RPC (what the API's
/// comments require of it, in our words) and the log format.
pub const CLAUSES: &[(&str, &str)] = &[
    ("cri.Version", "returns the runtime's name and version and the CRI version it speaks"),
    ("cri.Status", "reports the runtime's conditions; RuntimeReady and NetworkReady are required"),
    ("cri.RunPodSandbox", "creates and starts a pod sandbox; once it returns the sandbox is ready"),
    ("cri.StopPodSandbox", "stops the sandbox's processes and reclaims its network; idempotent"),
    ("cri.RemovePodSandbox", "removes the sandbox and its containers, stopping running ones; idempotent: no error when already removed"),
    ("cri.PodSandboxStatus", "returns the sandbox's status; an unknown sandbox is an error (NotFound)"),
    ("cri.ListPodSandbox", "lists sandboxes, every set filter field applied"),
    ("cri.CreateContainer", "creates a container in the given sandbox from its config"),
    ("cri.StartContainer", "starts a created container"),
    ("cri.StopContainer", "stops a running container, killing it after the grace timeout; idempotent"),
    ("cri.RemoveContainer", "removes the container, forcibly if running; idempotent: no error when already removed"),
    ("cri.ListContainers", "lists containers, every set filter field applied"),
    ("cri.ContainerStatus", "returns the container's status; an unknown container is an error (NotFound)"),
    ("cri.UpdateContainerResources", "updates the container's resources"),
    ("cri.ReopenContainerLog", "reopens the container's log file; an error when the container is not running"),
    ("cri.ExecSync", "runs a command in the container and returns its output and exit code, within the timeout"),
    ("cri.Exec", "prepares a streaming endpoint to run a command in the container"),
    ("cri.Attach", "prepares a streaming endpoint to attach to the container"),
    ("cri.PortForward", "prepares a streaming endpoint to forward ports from the sandbox"),
    ("cri.ContainerStats", "returns the container's resource usage"),
    ("cri.ListContainerStats", "returns the usage of every matching running container"),
    ("cri.PodSandboxStats", "returns the sandbox's resource usage"),
    ("cri.UpdateRuntimeConfig", "updates the runtime configuration (the pod CIDR)"),
    ("cri.PullImage", "pulls the image with the given reference; returns its reference"),
    ("cri.ImageStatus", "returns the image's status, and no image (not an error) when it is not present"),
    ("cri.ListImages", "lists the images present"),
    ("cri.RemoveImage", "removes the image; idempotent: no error when it is not present"),
    ("cri.ImageFsInfo", "returns the filesystems that hold images"),
    ("cri.ContainerConfig", "the container runs with the config's command, args, env, working dir, mounts and the image's defaults for what is unset"),
    ("cri.SecurityContext", "the container's and sandbox's security context (user, group, capabilities, privileged, read-only rootfs, no_new_privs) is applied"),
    ("cri.NamespaceOption", "network, PID and IPC namespaces are the pod's, the container's own or the node's as asked; containers of a pod share network, IPC and UTS"),
    ("cri.LogFormat", "container output goes to log_directory/log_path as lines `RFC3339NANO STREAM F|P CONTENT`"),
];
