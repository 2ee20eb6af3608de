//! `cri`: see the library's documentation.

fn main() {
    std::process::exit(2)
}
