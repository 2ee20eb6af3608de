//! One module per verb of the runc-compatible command line (parsed by
//! `native::Cli`), each a thin call into the shim or the state store.
