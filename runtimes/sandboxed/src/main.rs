//! `sandboxed`: the bundled runtime of gVisor's class. The same command line
//! as `native` (the shared library, with the [`Sandboxed`] flavor), plus the
//! internal `supervise` verb that `create` starts for each container.

use sandboxed::flavor::Sandboxed;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("supervise") {
        std::process::exit(sandboxed::supervise::main(&args[2..]));
    }
    native::main_with(&Sandboxed)
}
