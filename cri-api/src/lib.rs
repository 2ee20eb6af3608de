//! The Kubernetes Container Runtime Interface, v1: what kubelet, containerd's
//! CRI plugin, our `cri` server and `harness cri` speak to each other.
//!
//! The types, clients and servers are generated at build time from the
//! project's own `proto/runtime/v1/api.proto`, whose message and field
//! numbers match upstream k8s.io/cri-api so that we are wire compatible.

/// CRI v1 (`package runtime.v1`): messages, `runtime_service_client`,
/// `runtime_service_server`, `image_service_client`, `image_service_server`.
pub mod v1 {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("runtime.v1");
}

/// Exec, attach and port-forward streams: WebSocket and the Kubernetes
/// channel protocols, server and client halves.
pub mod streaming;

/// The API version this crate speaks, as `VersionRequest.version` carries it.
pub const API_VERSION: &str = "v1";

#[cfg(test)]
mod tests {
    use super::v1;
    use prost::Message;

    /// Splits an encoded message into its top-level (field number, wire type)
    /// keys, skipping each field's payload.
    fn keys(mut buf: &[u8]) -> Vec<(u32, u8)> {
        let mut out = Vec::new();
        while !buf.is_empty() {
            let key = prost::encoding::decode_varint(&mut buf).expect("key varint");
            let (field, wire) = ((key >> 3) as u32, (key & 7) as u8);
            match wire {
                0 => {
                    prost::encoding::decode_varint(&mut buf).expect("varint payload");
                }
                2 => {
                    let len = prost::encoding::decode_varint(&mut buf).expect("length") as usize;
                    buf = &buf[len..];
                }
                other => panic!("unexpected wire type {other} for field {field}"),
            }
            out.push((field, wire));
        }
        out
    }

    #[test]
    fn field_numbers_match_upstream_on_the_wire() {
        // Numbers that differ from declaration order upstream are the ones a
        // hand-written proto gets wrong: check those explicitly.
        let config = v1::ContainerConfig {
            log_path: "c/0.log".into(),
            tty: true,
            ..Default::default()
        };
        assert_eq!(keys(&config.encode_to_vec()), vec![(11, 2), (14, 0)]);

        let sc = v1::LinuxContainerSecurityContext {
            run_as_group: Some(v1::Int64Value { value: 7 }),
            no_new_privs: true,
            seccomp: Some(v1::SecurityProfile::default()),
            ..Default::default()
        };
        assert_eq!(keys(&sc.encode_to_vec()), vec![(11, 0), (12, 2), (15, 2)]);

        let pod_sc = v1::LinuxSandboxSecurityContext {
            run_as_group: Some(v1::Int64Value { value: 1 }),
            ..Default::default()
        };
        assert_eq!(keys(&pod_sc.encode_to_vec()), vec![(8, 2)]);

        let spec = v1::ImageSpec {
            image: "busybox".into(),
            user_specified_image: "busybox".into(),
            ..Default::default()
        };
        assert_eq!(keys(&spec.encode_to_vec()), vec![(1, 2), (18, 2)]);

        let status = v1::PodSandboxStatus {
            runtime_handler: "native".into(),
            ..Default::default()
        };
        assert_eq!(keys(&status.encode_to_vec()), vec![(9, 2)]);

        let mount = v1::Mount {
            recursive_read_only: true,
            ..Default::default()
        };
        assert_eq!(keys(&mount.encode_to_vec()), vec![(8, 0)]);
    }

    #[test]
    fn decodes_a_message_encoded_by_field_number() {
        // ExecSyncResponse{stdout: "hi", exit_code: 3} written by hand.
        let wire = [0x0a, 0x02, b'h', b'i', 0x18, 0x03];
        let resp = v1::ExecSyncResponse::decode(&wire[..]).expect("decode");
        assert_eq!(resp.stdout, b"hi");
        assert_eq!(resp.exit_code, 3);
        assert!(resp.stderr.is_empty());
    }
}
