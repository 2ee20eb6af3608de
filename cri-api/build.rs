//! Compiles `proto/runtime/v1/api.proto` into prost types and tonic clients
//! and servers. protoc comes from the `protoc-bin-vendored` crate, so the
//! build needs nothing installed beyond cargo.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    let include = protoc_bin_vendored::include_path()?;
    // prost-build (under tonic-build) runs the protoc that PROTOC names.
    std::env::set_var("PROTOC", protoc);

    let proto_dir = PathBuf::from("proto");
    let api = proto_dir.join("runtime/v1/api.proto");
    println!("cargo:rerun-if-changed={}", api.display());
    tonic_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_protos(&[api], &[proto_dir, include])?;
    Ok(())
}
