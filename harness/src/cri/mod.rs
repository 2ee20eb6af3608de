//! CRI conformance and benchmarks against any CRI v1 endpoint: a client
//! over a unix socket, cases as data grouped like critest's areas, their
//! runner, and the services a run starts for itself (a registry serving the
//! test image, and containerd as a peer endpoint).

pub mod case;
pub mod cases;
pub mod client;
pub mod containerd;
pub mod ctx;
pub mod daemon;
pub mod registry;
pub mod runner;
