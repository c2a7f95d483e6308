//! examples/gitops: a kustomize base and a production overlay where a release is one edit (the
//! overlay's `images[].newTag`) that moves the Rollout's image tag, `spec.version` and
//! `DEMO_VERSION` together.
//!
//! - `the_base_is_a_valid_rollout_and_the_overlay_has_one_release_value` needs nothing: it parses
//!   the files and runs the CRD's CEL rules client-side.
//! - The two cluster-tier tests render the overlay with the run's real `kubectl kustomize`
//!   (`KUBECTL` from the env file) and server-side dry-run the result against the local
//!   apiserver: `bash tests/cluster/run-peer-tests.sh --test it gitops_example:: -- --include-ignored`.

use std::path::{Path, PathBuf};

use kube::api::{Api, DynamicObject, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::CustomResourceExt;
use serde_json::{json, Value};
use tollgate::crd::Rollout;

use crate::support::cluster::TestEnv;

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

const OVERLAY: &str = "examples/gitops/overlays/production";

fn yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The overlay's one release value: `images[name=demo].newTag`.
fn release_value(overlay: &Path) -> String {
    let k = yaml(&overlay.join("kustomization.yaml"));
    let images = k["images"].as_array().expect("images: in the overlay");
    let demo: Vec<&Value> = images.iter().filter(|i| i["name"] == "demo").collect();
    assert_eq!(
        demo.len(),
        1,
        "exactly one images entry for demo: {images:?}"
    );
    demo[0]["newTag"]
        .as_str()
        .expect("newTag is a string (quote it: \"2.5.0\")")
        .to_string()
}

/// (spec.version, image tag, DEMO_VERSION) of a Rollout object.
fn versions(rollout: &Value) -> (String, String, String) {
    let containers = rollout["spec"]["template"]["spec"]["containers"]
        .as_array()
        .expect("spec.template.spec.containers");
    let app = containers
        .iter()
        .find(|c| c["name"] == "app")
        .expect("a container named app");
    let image = app["image"].as_str().expect("image");
    let (_, tag) = image
        .rsplit_once(':')
        .unwrap_or_else(|| panic!("{image}: no tag"));
    let env = app["env"].as_array().expect("env");
    let demo_version = env
        .iter()
        .find(|e| e["name"] == "DEMO_VERSION")
        .and_then(|e| e["value"].as_str())
        .expect("DEMO_VERSION as a string value");
    (
        rollout["spec"]["version"]
            .as_str()
            .expect("spec.version is a string")
            .to_string(),
        tag.to_string(),
        demo_version.to_string(),
    )
}

fn cel_violations(rollout: &Value) -> Vec<String> {
    let crd = Rollout::crd();
    let schema = crd.spec.versions[0]
        .schema
        .as_ref()
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .expect("the CRD has a schema");
    let schema = serde_json::to_value(schema).expect("schema serializes");
    match kube::core::cel::Validator::new().validate(&schema, rollout, None) {
        Ok(()) => Vec::new(),
        Err(errors) => errors.into_vec().into_iter().map(|e| e.message).collect(),
    }
}

#[test]
fn the_base_is_a_valid_rollout_and_the_overlay_has_one_release_value() {
    let base = yaml(&repo("examples/gitops/base/rollout.yaml"));
    let rollout: Rollout =
        serde_json::from_value(base.clone()).expect("the base is a tollgate.dev Rollout");
    let as_json = serde_json::to_value(&rollout).expect("serializes");
    assert_eq!(cel_violations(&as_json), Vec::<String>::new());
    let (version, tag, demo) = versions(&base);
    assert_eq!(
        (&tag, &demo),
        (&version, &version),
        "the base must agree with itself"
    );

    let overlay = repo(OVERLAY);
    let release = release_value(&overlay);
    assert_ne!(
        release, version,
        "the overlay should set a release different from the base's default"
    );
    // The replacements that carry the tag, in the overlay itself (a component's or the base's
    // would run before the overlay's images transformer and copy the old tag).
    let k = yaml(&overlay.join("kustomization.yaml"));
    let r = &k["replacements"][0];
    assert_eq!(
        r["source"]["fieldPath"],
        "spec.template.spec.containers.[name=app].image"
    );
    assert_eq!(
        r["source"]["options"],
        json!({"delimiter": ":", "index": 1})
    );
    let targets: Vec<&str> = r["targets"][0]["fieldPaths"]
        .as_array()
        .expect("fieldPaths")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        targets,
        [
            "spec.version",
            "spec.template.spec.containers.[name=app].env.[name=DEMO_VERSION].value"
        ]
    );
}

/// `kubectl kustomize DIR` with the run's kubectl; the Rollout of its output.
fn render(env: &TestEnv, dir: &Path) -> Value {
    let out = std::process::Command::new(env.bin("KUBECTL"))
        .arg("kustomize")
        .arg(dir)
        .output()
        .unwrap_or_else(|e| panic!("running kubectl kustomize: {e}"));
    assert!(
        out.status.success(),
        "kubectl kustomize {} failed: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("UTF-8 output");
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text)
        .unwrap_or_else(|e| panic!("kustomize output is not YAML ({e}):\n{text}"));
    let rollouts: Vec<Value> = docs
        .into_iter()
        .filter(|d| d["kind"] == "Rollout")
        .collect();
    assert_eq!(rollouts.len(), 1, "one Rollout in:\n{text}");
    rollouts.into_iter().next().expect("one Rollout")
}

/// Copies examples/gitops to a temp dir (base and overlay keep their relative paths).
fn copy_example() -> tempdir::TempTree {
    let tmp = tempdir::TempTree::new("tollgate-gitops");
    copy_dir(&repo("examples/gitops"), tmp.path());
    tmp
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// A throwaway directory removed on drop (std only).
mod tempdir {
    use std::path::{Path, PathBuf};

    pub struct TempTree(PathBuf);

    impl TempTree {
        pub fn new(prefix: &str) -> TempTree {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            let dir =
                std::env::temp_dir().join(format!("{prefix}-{}-{nanos:x}", std::process::id()));
            std::fs::create_dir_all(&dir).expect("temp dir");
            TempTree(dir)
        }

        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempTree {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

#[test]
#[ignore = "needs the local cluster: run tests/run-all.sh"]
fn the_overlay_moves_version_image_and_demo_version_with_one_edit() {
    let env = TestEnv::load();
    let overlay = repo(OVERLAY);
    let release = release_value(&overlay);
    let rollout = render(&env, &overlay);
    assert_eq!(rollout["metadata"]["namespace"], "shop");
    assert_eq!(
        versions(&rollout),
        (release.clone(), release.clone(), release.clone()),
        "spec.version, image tag and DEMO_VERSION must all be the overlay's newTag"
    );
    assert_eq!(
        rollout["spec"]["contractGate"]["environment"], "production",
        "the production patch applies"
    );

    // The release edit, in a copy: one line, and everything moves; a version that YAML would
    // read as a number stays a string.
    for next in ["2.5.0", "2.10", "3.0.0-rc.1"] {
        let tmp = copy_example();
        let file = tmp.path().join("overlays/production/kustomization.yaml");
        let text = std::fs::read_to_string(&file).expect("overlay");
        let edited = text.replace(
            &format!("newTag: \"{release}\""),
            &format!("newTag: \"{next}\""),
        );
        assert_ne!(
            edited,
            text,
            "the newTag line was not found in {}",
            file.display()
        );
        assert_eq!(
            edited
                .lines()
                .zip(text.lines())
                .filter(|(a, b)| a != b)
                .count(),
            1,
            "a release must be a one-line change"
        );
        std::fs::write(&file, edited).expect("write overlay");
        let moved = render(&env, &tmp.path().join("overlays/production"));
        assert_eq!(
            versions(&moved),
            (next.to_string(), next.to_string(), next.to_string()),
            "after setting newTag to {next}"
        );
        // Nothing else changed.
        let mut a = moved.clone();
        let mut b = rollout.clone();
        for v in [&mut a, &mut b] {
            v["spec"]["version"] = Value::Null;
            let app = &mut v["spec"]["template"]["spec"]["containers"][0];
            app["image"] = Value::Null;
            app["env"] = Value::Null;
        }
        assert_eq!(a, b, "only the version fields may change");
    }
}

#[tokio::test]
#[ignore = "needs the local cluster: run tests/run-all.sh"]
async fn the_rendered_overlay_passes_server_side_dry_run() {
    let env = TestEnv::load();
    env.install_crds().await;
    let ns = env.namespace("gitops-example").await;
    let mut rollout = render(&env, &repo(OVERLAY));
    rollout["metadata"]["namespace"] = json!(ns.name);
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("tollgate.dev", "v1alpha1", "Rollout"),
        "rollouts",
    );
    let api: Api<DynamicObject> = Api::namespaced_with(ns.client.clone(), &ns.name, &resource);
    let obj: DynamicObject = serde_json::from_value(rollout.clone()).expect("dynamic object");
    api.create(
        &PostParams {
            dry_run: true,
            ..Default::default()
        },
        &obj,
    )
    .await
    .unwrap_or_else(|e| panic!("the API server rejects the rendered overlay: {e}\n{rollout:#}"));
    ns.delete().await;
}
