//! `native features`: what this runtime supports (features.md).

pub fn run(flavor: &dyn crate::Flavor) -> anyhow::Result<i32> {
    println!(
        "{}",
        serde_json::to_string_pretty(&flavor.features(container::features()))?
    );
    Ok(0)
}
