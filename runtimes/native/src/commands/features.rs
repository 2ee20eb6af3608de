//! `native features`: what this runtime supports (features.md).

pub fn run() -> anyhow::Result<i32> {
    println!("{}", serde_json::to_string_pretty(&container::features())?);
    Ok(0)
}
