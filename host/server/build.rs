//! Generates the gRPC services (the cart API, the cluster's control plane)
//! from `proto/` with a vendored `protoc`,
//! so building needs no system protobuf compiler.

use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize()?;
    let protos = [root.join("proto/corral/cart/v1/cart.proto"), root.join("proto/corral/cluster/v1/cluster.proto")];
    for proto in &protos {
        println!("cargo:rerun-if-changed={}", proto.display());
    }
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    tonic_prost_build::configure().build_client(true).build_server(true).compile_with_config(
        config,
        &protos,
        &[root.join("proto")],
    )?;
    Ok(())
}
