//! `native spec`: writes a default config.json, as `runc spec` does.

use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, short = 'b', default_value = ".")]
    pub bundle: PathBuf,
}

pub fn run(a: Args) -> anyhow::Result<i32> {
    let path = a.bundle.join("config.json");
    if path.exists() {
        anyhow::bail!("{} already exists", path.display());
    }
    let mut spec = oci_spec::runtime::Spec::default();
    spec.set_version(container::OCI_VERSION.to_string());
    spec.set_hostname(Some("native".into()));
    std::fs::write(&path, serde_json::to_string_pretty(&spec)?)?;
    Ok(0)
}
