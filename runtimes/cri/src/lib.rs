//! The CRI front-end: a gRPC server (CRI v1 RuntimeService and ImageService
//! on a unix socket) that runs pods and containers with any runc-compatible
//! runtime, and pulls and stores images.

pub mod images;
