//! The per-container host process that owns the VM: started by `create`, it
//! boots QEMU, relays the container's stdio, serves the command line's
//! requests and, when the container's process ends, ends with its status.
