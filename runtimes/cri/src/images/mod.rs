//! Images: pulled from a registry or imported from an OCI layout or archive,
//! verified by digest, unpacked once, and shared between containers through
//! overlayfs snapshots.
