//! `native`: the bundled runtime of runc's class.

fn main() {
    native::main_with(&native::Native)
}
