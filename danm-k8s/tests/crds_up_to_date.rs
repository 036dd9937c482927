//! The CRD files under `deploy/crds/` are what the Rust types generate.

use std::path::Path;

use danm_k8s::crd::manifest;

#[test]
fn deploy_crds_are_up_to_date() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/crds");
    let differences = manifest::differences(&dir).expect("reading deploy/crds");
    assert!(
        differences.is_empty(),
        "deploy/crds does not match the CRD types:\n  {}\nRegenerate the files from the workspace root with:\n  {}",
        differences.join("\n  "),
        manifest::REGENERATE,
    );
}
