//! CRI protobuf requests into the crate's own types, with the validation
//! that names the offending field.

use cri_api::v1 as pb;

use crate::spec::{
    ContainerSpec, DeviceSpec, Dns, MountSpec, NsMode, PodSpec, Propagation, Resources, Seccomp, Security,
};
use crate::Error;

fn required(field: &str) -> Error {
    Error::InvalidArgument(format!("{field} is required"))
}

pub fn ns_mode(m: i32) -> NsMode {
    match pb::NamespaceMode::try_from(m) {
        Ok(pb::NamespaceMode::Container) => NsMode::Container,
        Ok(pb::NamespaceMode::Node) => NsMode::Node,
        Ok(pb::NamespaceMode::Target) => NsMode::Target,
        _ => NsMode::Pod,
    }
}

pub fn pb_ns_mode(m: NsMode) -> i32 {
    (match m {
        NsMode::Pod => pb::NamespaceMode::Pod,
        NsMode::Container => pb::NamespaceMode::Container,
        NsMode::Node => pb::NamespaceMode::Node,
        NsMode::Target => pb::NamespaceMode::Target,
    }) as i32
}

pub fn pod_spec(req: pb::RunPodSandboxRequest) -> Result<PodSpec, Error> {
    let config = req.config.ok_or_else(|| required("config"))?;
    let meta = config.metadata.ok_or_else(|| required("config.metadata"))?;
    if meta.name.is_empty() {
        return Err(required("config.metadata.name"));
    }
    let linux = config.linux.unwrap_or_default();
    let ns = linux
        .security_context
        .and_then(|s| s.namespace_options)
        .unwrap_or_default();
    Ok(PodSpec {
        name: meta.name,
        uid: meta.uid,
        namespace: meta.namespace,
        attempt: meta.attempt,
        hostname: config.hostname,
        log_directory: config.log_directory,
        dns: config.dns_config.map(|d| Dns {
            servers: d.servers,
            searches: d.searches,
            options: d.options,
        }),
        labels: config.labels.into_iter().collect(),
        annotations: config.annotations.into_iter().collect(),
        cgroup_parent: linux.cgroup_parent,
        network: ns_mode(ns.network),
        pid: ns_mode(ns.pid),
        ipc: ns_mode(ns.ipc),
        handler: req.runtime_handler,
        sysctls: linux.sysctls.into_iter().collect(),
    })
}

pub fn resources(r: pb::LinuxContainerResources) -> Resources {
    Resources {
        cpu_period: r.cpu_period,
        cpu_quota: r.cpu_quota,
        cpu_shares: r.cpu_shares,
        memory_limit: r.memory_limit_in_bytes,
        memory_swap_limit: r.memory_swap_limit_in_bytes,
        oom_score_adj: r.oom_score_adj,
        cpuset_cpus: r.cpuset_cpus,
        cpuset_mems: r.cpuset_mems,
    }
}

pub fn pb_resources(r: &Resources) -> pb::LinuxContainerResources {
    pb::LinuxContainerResources {
        cpu_period: r.cpu_period,
        cpu_quota: r.cpu_quota,
        cpu_shares: r.cpu_shares,
        memory_limit_in_bytes: r.memory_limit,
        memory_swap_limit_in_bytes: r.memory_swap_limit,
        oom_score_adj: r.oom_score_adj,
        cpuset_cpus: r.cpuset_cpus.clone(),
        cpuset_mems: r.cpuset_mems.clone(),
        ..Default::default()
    }
}

fn seccomp(profile: Option<pb::SecurityProfile>, legacy: &str) -> Result<Seccomp, Error> {
    use pb::security_profile::ProfileType;
    if let Some(p) = profile {
        return Ok(match ProfileType::try_from(p.profile_type) {
            Ok(ProfileType::RuntimeDefault) => Seccomp::RuntimeDefault,
            Ok(ProfileType::Unconfined) => Seccomp::Unconfined,
            Ok(ProfileType::Localhost) => {
                if !p.localhost_ref.starts_with('/') {
                    return Err(Error::InvalidArgument(format!(
                        "linux.security_context.seccomp.localhost_ref must be an absolute path, got {:?}",
                        p.localhost_ref
                    )));
                }
                Seccomp::Localhost(p.localhost_ref.into())
            }
            Err(_) => {
                return Err(Error::InvalidArgument(format!(
                    "linux.security_context.seccomp.profile_type {} is unknown",
                    p.profile_type
                )))
            }
        });
    }
    Ok(match legacy {
        "runtime/default" | "docker/default" => Seccomp::RuntimeDefault,
        l if l.starts_with("localhost/") => Seccomp::Localhost(l.trim_start_matches("localhost").into()),
        _ => Seccomp::Unconfined,
    })
}

pub fn container_spec(config: Option<pb::ContainerConfig>) -> Result<ContainerSpec, Error> {
    let c = config.ok_or_else(|| required("config"))?;
    let meta = c.metadata.ok_or_else(|| required("config.metadata"))?;
    if meta.name.is_empty() {
        return Err(required("config.metadata.name"));
    }
    let image = c.image.map(|i| i.image).unwrap_or_default();
    if image.is_empty() {
        return Err(required("config.image.image"));
    }
    let linux = c.linux.unwrap_or_default();
    let sc = linux.security_context.unwrap_or_default();
    let ns = sc.namespace_options.clone().unwrap_or_default();
    let caps = sc.capabilities.clone().unwrap_or_default();
    // Older kubelets send only the deprecated string form.
    #[allow(deprecated)]
    let legacy_seccomp = sc.seccomp_profile_path.clone();
    let mut mounts = Vec::new();
    for (i, m) in c.mounts.into_iter().enumerate() {
        if m.container_path.is_empty() {
            return Err(required(&format!("config.mounts[{i}].container_path")));
        }
        if m.host_path.is_empty() {
            return Err(required(&format!("config.mounts[{i}].host_path")));
        }
        mounts.push(MountSpec {
            container_path: m.container_path,
            host_path: m.host_path,
            readonly: m.readonly,
            propagation: match pb::MountPropagation::try_from(m.propagation) {
                Ok(pb::MountPropagation::PropagationHostToContainer) => Propagation::HostToContainer,
                Ok(pb::MountPropagation::PropagationBidirectional) => Propagation::Bidirectional,
                _ => Propagation::Private,
            },
        });
    }
    if ns_mode(ns.pid) == NsMode::Target && ns.target_id.is_empty() {
        return Err(required(
            "config.linux.security_context.namespace_options.target_id (pid mode TARGET)",
        ));
    }
    if sc.run_as_group.is_some() && sc.run_as_user.is_none() && sc.run_as_username.is_empty() {
        return Err(Error::InvalidArgument(
            "config.linux.security_context.run_as_group needs run_as_user or run_as_username".into(),
        ));
    }
    Ok(ContainerSpec {
        name: meta.name,
        attempt: meta.attempt,
        image,
        command: c.command,
        args: c.args,
        working_dir: c.working_dir,
        envs: c.envs.into_iter().map(|kv| (kv.key, kv.value)).collect(),
        mounts,
        devices: c
            .devices
            .into_iter()
            .map(|d| DeviceSpec {
                container_path: d.container_path,
                host_path: d.host_path,
                permissions: d.permissions,
            })
            .collect(),
        labels: c.labels.into_iter().collect(),
        annotations: c.annotations.into_iter().collect(),
        log_path: c.log_path,
        tty: c.tty,
        stdin: c.stdin,
        stdin_once: c.stdin_once,
        resources: linux.resources.map(resources).unwrap_or_default(),
        security: Security {
            privileged: sc.privileged,
            run_as_user: sc.run_as_user.map(|v| v.value),
            run_as_group: sc.run_as_group.map(|v| v.value),
            run_as_username: sc.run_as_username.clone(),
            readonly_rootfs: sc.readonly_rootfs,
            supplemental_groups: sc.supplemental_groups.clone(),
            no_new_privs: sc.no_new_privs,
            cap_add: caps.add_capabilities,
            cap_drop: caps.drop_capabilities,
            seccomp: seccomp(sc.seccomp.clone(), &legacy_seccomp)?,
            masked_paths: sc.masked_paths.clone(),
            readonly_paths: sc.readonly_paths.clone(),
            pid: ns_mode(ns.pid),
            target_id: ns.target_id,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_fields_are_named() {
        let e = pod_spec(pb::RunPodSandboxRequest::default()).unwrap_err();
        assert_eq!(e.to_string(), "invalid argument: config is required");
        let e = container_spec(Some(pb::ContainerConfig {
            metadata: Some(pb::ContainerMetadata {
                name: "c".into(),
                attempt: 0,
            }),
            ..Default::default()
        }))
        .unwrap_err();
        assert!(e.to_string().contains("config.image.image"), "{e}");
    }

    #[test]
    fn security_context_translates() {
        let c = pb::ContainerConfig {
            metadata: Some(pb::ContainerMetadata {
                name: "c".into(),
                attempt: 1,
            }),
            image: Some(pb::ImageSpec {
                image: "/img".into(),
                ..Default::default()
            }),
            linux: Some(pb::LinuxContainerConfig {
                resources: None,
                security_context: Some(pb::LinuxContainerSecurityContext {
                    run_as_user: Some(pb::Int64Value { value: 1000 }),
                    namespace_options: Some(pb::NamespaceOption {
                        pid: pb::NamespaceMode::Node as i32,
                        ..Default::default()
                    }),
                    seccomp: Some(pb::SecurityProfile {
                        profile_type: pb::security_profile::ProfileType::RuntimeDefault as i32,
                        localhost_ref: String::new(),
                    }),
                    ..Default::default()
                }),
            }),
            ..Default::default()
        };
        let s = container_spec(Some(c)).unwrap();
        assert_eq!(s.security.run_as_user, Some(1000));
        assert_eq!(s.security.pid, NsMode::Node);
        assert_eq!(s.security.seccomp, Seccomp::RuntimeDefault);
        assert_eq!(s.attempt, 1);
    }
}
