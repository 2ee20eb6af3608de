//! File-system calls the supervisor performs for the container (mkdir,
//! rename, symlink, chmod, chown, unlink): each has the effect the kernel's
//! own call would have had, as the caller (owner, umask, permissions).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use harness::bundle::{default_spec, Bundle, SpecExt};
use harness::runtime::{CreateOpts, Runtime};

/// Runs `probe syscall ARGS` as `uid` in the bundle; the result's errno.
fn call(rt: &Runtime, b: &Bundle, root: &Path, uid: u32, args: &[&str]) -> Option<String> {
    let mut spec = default_spec();
    let mut argv = vec!["/probe", "syscall"];
    argv.extend_from_slice(args);
    spec.set_args(&argv);
    spec.set_root(Some(
        oci_spec::runtime::RootBuilder::default()
            .path("rootfs")
            .readonly(false)
            .build()
            .unwrap(),
    ));
    let p = spec.process_mut_or_default();
    let mut user = p.user().clone();
    user.set_uid(uid);
    user.set_gid(uid);
    p.set_user(user);
    b.write_spec(&spec).unwrap();
    let d = rt.driver(root);
    let id = format!("files{}", std::process::id());
    let (_, io) = d.run(&id, &b.dir, &CreateOpts::default()).unwrap();
    let _ = d.delete(&id, true);
    let v: serde_json::Value = serde_json::from_str(io.stdout().lines().last().unwrap_or(""))
        .unwrap_or_else(|_| panic!("{args:?}: {} {}", io.stdout(), io.stderr()));
    v["errno"].as_str().map(str::to_string)
}

#[test]
fn performed_calls_act_as_the_caller_would() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipping: containers need root");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let probe = harness::find_probe().expect("the probe is built beside the test");
    let b = Bundle::prepare(&t.path().join("b"), &probe).unwrap();
    let rt = Runtime::resolve(env!("CARGO_BIN_EXE_sandboxed"), vec![], Duration::from_secs(10)).unwrap();
    let root = t.path().join("root");
    let rootfs = b.rootfs();
    std::fs::create_dir(rootfs.join("locked")).unwrap();
    std::fs::set_permissions(rootfs.join("locked"), std::fs::Permissions::from_mode(0o700)).unwrap();

    assert_eq!(call(&rt, &b, &root, 1000, &["mkdir", "/tmp/d", "0777"]), None);
    let m = std::fs::metadata(rootfs.join("tmp/d")).unwrap();
    assert_eq!(
        (m.uid(), m.mode() & 0o777),
        (1000, 0o755),
        "owned by the caller, its umask 022 applied"
    );
    assert_eq!(
        call(&rt, &b, &root, 1000, &["symlink", "/etc/shadow", "/tmp/d/l"]),
        None
    );
    assert_eq!(
        std::fs::read_link(rootfs.join("tmp/d/l")).unwrap(),
        Path::new("/etc/shadow")
    );
    assert_eq!(call(&rt, &b, &root, 1000, &["rename", "/tmp/d/l", "/tmp/d/m"]), None);
    assert!(rootfs.join("tmp/d/m").symlink_metadata().is_ok() && !rootfs.join("tmp/d/l").exists());
    assert_eq!(call(&rt, &b, &root, 1000, &["chmod", "/tmp/d", "0700"]), None);
    assert_eq!(std::fs::metadata(rootfs.join("tmp/d")).unwrap().mode() & 0o777, 0o700);
    assert_eq!(call(&rt, &b, &root, 1000, &["unlink", "/tmp/d/m"]), None);
    assert!(rootfs.join("tmp/d/m").symlink_metadata().is_err());
    // What the caller may not do, the supervisor does not do for it.
    assert_eq!(
        call(&rt, &b, &root, 1000, &["mkdir", "/locked/x", "0755"]).as_deref(),
        Some("EACCES")
    );
    assert_eq!(
        call(&rt, &b, &root, 1000, &["chown", "/tmp/d", "0", "0"]).as_deref(),
        Some("EPERM")
    );
    assert_eq!(
        call(&rt, &b, &root, 1000, &["rmdir", "/locked"]).as_deref(),
        Some("EACCES")
    );
    assert!(rootfs.join("locked").is_dir());
    // Root in the container holds the default capabilities, without
    // CAP_CHOWN: the supervisor acts with those, not with its own.
    assert_eq!(
        call(&rt, &b, &root, 0, &["chown", "/tmp/d", "0", "0"]).as_deref(),
        Some("EPERM")
    );
}
