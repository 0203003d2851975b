//! `stack up` / `stack down` on the reference stack against the rig (tier "rig"): real dockerd and
//! registry for the images, real helm, real API server + controllers; kwok simulates the kubelet.
//! The cluster is the rig's (provider `existing`, context `stack-rig` in the allowlist).

use crate::support;
use std::path::Path;
use std::process::Output;

struct Dev {
    dir: tempfile::TempDir,
    env: support::RigEnv,
    namespace: String,
}

fn dev() -> Option<Dev> {
    let env = support::rig_env().and_then(|e| support::rig_docker().map(|_| e));
    if !support::require("rig", env.as_ref().map(|_| ()).map_err(Clone::clone)) {
        return None;
    }
    let env = env.unwrap();
    let dir = tempfile::tempdir().unwrap();
    for item in ["stack.yaml", "charts", "envs", "demo"] {
        support::copy(&support::project_root().join(item), &dir.path().join(item));
    }
    let _ = std::fs::remove_dir_all(dir.path().join("charts/app/charts"));
    let namespace = format!(
        "up-{}",
        dir.path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .to_lowercase()
            .replace(['.', '_'], "")
    );
    let yaml = std::fs::read_to_string(dir.path().join("stack.yaml")).unwrap().replace(
        "cluster:\n  provider: kind\n  name: stack\n  config: kind/cluster.yaml\n",
        "cluster:\n  provider: existing\n  context: stack-rig\n  allowedContexts: [stack-rig]\n  registry:\n    hostPort: 25000\n",
    );
    let yaml = yaml.replace(
        "dev:\n  env: local/dev\n",
        &format!("dev:\n  env: local/dev\n  namespace: {namespace}\n"),
    );
    assert!(
        yaml.contains("provider: existing") && yaml.contains(&namespace),
        "stack.yaml changed shape:\n{yaml}"
    );
    std::fs::write(dir.path().join("stack.yaml"), yaml).unwrap();
    Some(Dev {
        dir,
        env,
        namespace,
    })
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

impl Dev {
    fn cmd(&self, program: &Path) -> std::process::Command {
        let mut c = std::process::Command::new(program);
        c.current_dir(self.dir.path())
            .envs(&self.env.vars)
            .env("NO_COLOR", "1");
        let mut path = vec![self.env.bin_dir.clone()];
        path.extend(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        ));
        c.env("PATH", std::env::join_paths(path).unwrap());
        c
    }

    fn stack(&self, args: &[&str]) -> Output {
        self.cmd(&support::stack_bin()).args(args).output().unwrap()
    }

    fn up(&self) -> serde_json::Value {
        let o = self.stack(&["up", "--once", "--format", "json"]);
        assert_eq!(
            o.status.code(),
            Some(0),
            "stack up failed:\n{}{}",
            text(&o.stdout),
            text(&o.stderr)
        );
        serde_json::from_slice(&o.stdout).unwrap()
    }

    fn kubectl(&self, args: &[&str]) -> String {
        let o = self
            .cmd(&self.env.bin_dir.join("kubectl"))
            .args(["--context", "stack-rig"])
            .args(args)
            .output()
            .unwrap();
        assert!(o.status.success(), "kubectl {args:?}: {}", text(&o.stderr));
        text(&o.stdout)
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.stack(&["down"]);
        let _ = self
            .cmd(&self.env.bin_dir.join("kubectl"))
            .args([
                "--context",
                "stack-rig",
                "delete",
                "namespace",
                &self.namespace,
                "--wait=false",
            ])
            .output();
    }
}

fn image_statuses(report: &serde_json::Value) -> Vec<String> {
    report["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["outcome"]["status"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn up_deploys_then_does_nothing_when_nothing_changed() {
    let Some(d) = dev() else { return };
    let first = d.up();
    assert_eq!(first["helm"]["status"], "upgraded", "{first}");
    assert_eq!(first["helm"]["revision"], 1);
    assert_eq!(
        first["rollout"]["status"], "ready",
        "waited for the Deployments: {first}"
    );
    let cmd = first["helm"]["command"].as_str().unwrap();
    assert!(
        cmd.contains("--kube-context stack-rig")
            && cmd.contains("--kubeconfig ")
            && cmd.contains(&format!("-n {}", d.namespace)),
        "explicit context, kubeconfig and namespace: {cmd}"
    );
    assert!(cmd.ends_with("-f envs/aws.yaml -f envs/local/default.yaml -f envs/local/dev.yaml -f .stack/up/shop-dev.values.json"), "{cmd}");

    // The release runs the images stack built and pushed.
    let images = d.kubectl(&[
        "get",
        "deploy",
        "-n",
        &d.namespace,
        "-o",
        "jsonpath={.items[*].spec.template.spec.containers[0].image}",
    ]);
    let backend = first["images"][0]["delivered"].as_str().unwrap();
    assert!(
        backend.starts_with("localhost:25000/stack/backend:"),
        "{backend}"
    );
    assert!(
        images.split_whitespace().filter(|i| *i == backend).count() == 2,
        "backend-api and backend-ws run {backend}: {images}"
    );

    // Nothing changed: no build, no helm upgrade.
    let second = d.up();
    assert_eq!(image_statuses(&second), ["up-to-date", "up-to-date"]);
    assert_eq!(second["helm"]["status"], "up-to-date", "{second}");
    assert_eq!(second["rollout"]["status"], "ready");
    assert_eq!(second["helm"]["revision"], 1);
    let history = d.kubectl(&[
        "get",
        "secrets",
        "-n",
        &d.namespace,
        "-l",
        "owner=helm,name=shop-dev",
        "-o",
        "name",
    ]);
    assert_eq!(
        history.lines().count(),
        1,
        "one helm revision only: {history}"
    );

    // A values change upgrades without building; a source change rebuilds and upgrades.
    let dev_yaml = d.dir.path().join("envs/local/dev.yaml");
    let mut v = std::fs::read_to_string(&dev_yaml).unwrap();
    v.push_str("frontend:\n  replicaCount: 2\n");
    std::fs::write(&dev_yaml, v).unwrap();
    let third = d.up();
    assert_eq!(image_statuses(&third), ["up-to-date", "up-to-date"]);
    assert_eq!(
        (
            third["helm"]["status"].as_str(),
            third["helm"]["revision"].as_u64()
        ),
        (Some("upgraded"), Some(2))
    );
    // Unique content: the daemon may hold images of earlier runs (builds are content-addressed).
    let page = format!("<h1>{}</h1>\n", d.namespace);
    std::fs::write(d.dir.path().join("demo/frontend/public/index.html"), page).unwrap();
    let fourth = d.up();
    assert_eq!(image_statuses(&fourth), ["up-to-date", "built"]);
    assert_eq!(
        (
            fourth["helm"]["status"].as_str(),
            fourth["helm"]["revision"].as_u64()
        ),
        (Some("upgraded"), Some(3))
    );

    // down uninstalls the release; a second down has nothing to do.
    let o = d.stack(&["down"]);
    assert!(
        o.status.success() && text(&o.stdout).contains("shop-dev uninstalled"),
        "{}{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    let o = d.stack(&["down"]);
    assert!(
        o.status.success() && text(&o.stdout).contains("was not installed"),
        "{}{}",
        text(&o.stdout),
        text(&o.stderr)
    );
}

#[test]
fn up_refuses_contexts_outside_the_allowlist_and_invalid_envs() {
    let Some(d) = dev() else { return };
    let yaml = std::fs::read_to_string(d.dir.path().join("stack.yaml"))
        .unwrap()
        .replace("allowedContexts: [stack-rig]", "allowedContexts: []");
    std::fs::write(d.dir.path().join("stack.yaml"), &yaml).unwrap();
    let o = d.stack(&["up", "--once"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("refusing to deploy on context `stack-rig`"),
        "{}",
        text(&o.stderr)
    );
    let ns = d.kubectl(&["get", "namespace", "-o", "name"]);
    assert!(!ns.contains(&d.namespace), "nothing was created");

    // An env with a schema error is refused before anything is built or deployed.
    std::fs::write(
        d.dir.path().join("stack.yaml"),
        yaml.replace("allowedContexts: []", "allowedContexts: [stack-rig]"),
    )
    .unwrap();
    let dev_yaml = d.dir.path().join("envs/local/dev.yaml");
    let mut v = std::fs::read_to_string(&dev_yaml).unwrap();
    v.push_str("frontend:\n  replicaCount: many\n");
    std::fs::write(&dev_yaml, v).unwrap();
    let o = d.stack(&["up", "--once"]);
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert!(
        err.contains("the dev env `local/dev` has errors") && err.contains("envs/local/dev.yaml:"),
        "{err}"
    );
    assert!(
        !text(&o.stderr).contains("building"),
        "nothing was built: {err}"
    );
}

#[test]
fn up_names_why_a_rollout_fails_and_writes_diagnostics() {
    let Some(d) = dev() else { return };
    // No node carries this label: the scheduler reports the pods Unschedulable.
    let dev_yaml = d.dir.path().join("envs/local/dev.yaml");
    let mut v = std::fs::read_to_string(&dev_yaml).unwrap();
    v.push_str("frontend:\n  nodeSelector:\n    disk: none-such\n");
    std::fs::write(&dev_yaml, v).unwrap();
    let o = d.stack(&["up", "--once", "--format", "json"]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["rollout"]["status"], "failed", "{report}");
    let failures = report["rollout"]["failures"].as_array().unwrap();
    assert!(
        failures.iter().any(|f| f["reason"] == "Unschedulable"
            && f["owner"].as_str().is_some_and(|o| o.contains("frontend"))),
        "{failures:?}"
    );
    let dir = d
        .dir
        .path()
        .join(report["rollout"]["diagnostics"].as_str().unwrap());
    for f in ["events.txt", "helm-status.json"] {
        assert!(dir.join(f).is_file(), "{} missing in {}", f, dir.display());
    }
    // The human view names the reason and where the diagnostics are.
    let o = d.stack(&["up", "--once"]);
    let out = text(&o.stdout);
    assert!(
        out.contains("Unschedulable") && out.contains(".stack/diagnostics/shop-dev/"),
        "{out}"
    );
}
