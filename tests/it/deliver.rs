//! `stack build --deliver` delivers to the cluster `stack cluster up` resolves (tier "docker"): the
//! name in the provider's config file, the registry port the cluster config sets, and no registry
//! at all for an `existing` cluster that names none. Builds run against the rig's real dockerd;
//! pushes go to the rig's registry (127.0.0.1:25000); `kind load` goes through the recording fake
//! (kind clusters cannot run here).

use crate::support;
use std::process::Output;

/// The rig's registry, as the cluster configs below publish it.
const REGISTRY_PORT: &str = "25000";

struct Tree {
    dir: tempfile::TempDir,
    docker_host: String,
    /// Per-test repository prefix, so parallel tests and earlier runs never share image names.
    id: String,
}

/// A copy of the demo app with `cluster` as stack.yaml's cluster section and `files` written
/// beside it (e.g. `kind/cluster.yaml`).
fn tree(cluster: &str, files: &[(&str, &str)]) -> Option<Tree> {
    let support::DockerDir {
        dir,
        docker_host,
        id,
    } = support::docker_dir("d")?;
    support::copy(
        &support::project_root().join("demo"),
        &dir.path().join("demo"),
    );
    let t = Tree {
        dir,
        docker_host,
        id,
    };
    t.write_config(cluster);
    // Content of this test's own, so its image (and image ID) is shared with no other test's.
    std::fs::write(t.dir.path().join("demo/frontend/public/test-id.txt"), &t.id).unwrap();
    for (path, text) in files {
        let path = t.dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    Some(t)
}

impl Tree {
    fn write_config(&self, cluster: &str) {
        let id = &self.id;
        let yaml = format!(
            "apiVersion: stack/v1\nproject: shop\n{cluster}images:\n  backend:\n    context: demo/backend\n    target: dev\n    repository: {id}/backend\n  frontend:\n    context: demo/frontend\n    repository: {id}/frontend\n"
        );
        std::fs::write(self.dir.path().join("stack.yaml"), yaml).unwrap();
    }

    fn stack(&self, args: &[&str]) -> Output {
        std::process::Command::new(support::stack_bin())
            .current_dir(self.dir.path())
            .args(args)
            .env("DOCKER_HOST", &self.docker_host)
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    }

    /// `stack build --format json --deliver IMAGE`: the delivered reference, or the failure.
    fn deliver(&self, image: &str) -> Result<String, String> {
        let o = self.stack(&["build", "--format", "json", "--deliver", image]);
        let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
        match report["images"][0]["delivered"].as_str() {
            Some(d) if o.status.success() => Ok(d.to_owned()),
            _ => Err(format!(
                "exit {:?}\nstdout: {}\nstderr: {}",
                o.status.code(),
                text(&o.stdout),
                text(&o.stderr)
            )),
        }
    }

    fn docker(&self, args: &[&str]) -> Output {
        std::process::Command::new("docker")
            .arg("-H")
            .arg(&self.docker_host)
            .args(args)
            .output()
            .unwrap()
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        // This test's tags only (its own repository prefix, pushed or not), removed by name.
        let all = self.docker(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
        let own = format!("{}/", self.id);
        for name in text(&all.stdout).lines() {
            let repository = name.rsplit_once(':').map_or(name, |(r, _)| r);
            if repository.starts_with(&own) || repository.contains(&format!("/{own}")) {
                let _ = self.docker(&["rmi", name]);
            }
        }
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn kind_load_names_the_cluster_of_the_kind_config() {
    use stack::ops::build;
    use stack::tool::{Output as Out, RecordingRunner};
    // No `cluster.name`: the cluster is the one kind/cluster.yaml names, as `stack cluster up`
    // creates it (not the project's name).
    let Some(t) = tree(
        "cluster:\n  provider: kind\n  registry:\n    enabled: false\n",
        &[(
            "kind/cluster.yaml",
            "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nname: custom\n",
        )],
    ) else {
        return;
    };
    let project = stack::config::Project::load(t.dir.path()).unwrap();
    // kind itself is faked; it answers as `kind load` does on success.
    let runner = RecordingRunner::new();
    runner.on(&["kind", "load", "docker-image"], Out::default());
    runner.on(
        &["git"],
        Out {
            status: 128,
            ..Out::default()
        },
    );
    let mut host = stack::tool::Host::from_env(&runner);
    host.locate = |tool| Ok(std::path::PathBuf::from(tool.name()));
    host.docker_host = t.docker_host.clone();
    let opts = build::Options {
        production: false,
        images: vec!["frontend".into()],
        deliver: true,
        ..Default::default()
    };
    let report = build::run(&project, &opts, &host, &stack::ops::events::Discard).unwrap();
    let reference = report.images[0].reference.clone();
    let loads: Vec<String> = runner
        .lines()
        .into_iter()
        .filter(|l| l.starts_with("kind "))
        .collect();
    assert_eq!(
        loads,
        [format!("kind load docker-image {reference} --name custom")]
    );
    assert_eq!(report.steps.len(), 1);

    // `--deliver --dry-run` announces the same load and runs nothing.
    let runner = RecordingRunner::new();
    runner.on(
        &["git"],
        Out {
            status: 128,
            ..Out::default()
        },
    );
    let mut host = stack::tool::Host::from_env(&runner);
    host.locate = |tool| Ok(std::path::PathBuf::from(tool.name()));
    host.docker_host = t.docker_host.clone();
    let opts = build::Options {
        production: false,
        dry_run: true,
        ..opts
    };
    let report = build::run(&project, &opts, &host, &stack::ops::events::Discard).unwrap();
    assert!(
        !runner.lines().iter().any(|l| l.starts_with("kind ")),
        "a dry run loaded an image: {:?}",
        runner.lines()
    );
    assert_eq!(report.steps.len(), 1, "{:?}", report.steps);
    assert_eq!(
        report.steps[0].status,
        stack::ops::plan::StepStatus::WouldRun
    );
    assert!(report.steps[0]
        .line
        .ends_with(&format!("load docker-image {reference} --name custom")));
    assert_eq!(report.images[0].delivered, None);
}

#[test]
fn pushes_to_the_registry_port_the_k3d_config_creates() {
    // stack.yaml says nothing about the registry (its default port is 5001); k3d's own
    // `registries.create` publishes it on the rig registry's port, so that is where images go.
    let Some(t) = tree(
        "cluster:\n  provider: k3d\n",
        &[(
            "k3d/cluster.yaml",
            &format!("apiVersion: k3d.io/v1alpha5\nkind: Simple\nmetadata:\n  name: custom\nregistries:\n  create:\n    name: k3d-custom-registry\n    host: 127.0.0.1\n    hostPort: \"{REGISTRY_PORT}\"\n"),
        )],
    ) else {
        return;
    };
    let delivered = t.deliver("frontend").unwrap_or_else(|e| panic!("{e}"));
    let expected = format!("localhost:{REGISTRY_PORT}/{}/frontend:", t.id);
    assert!(delivered.starts_with(&expected), "{delivered}");
    // The registry has it (a pull asks the registry even when the tag is here).
    let pulled = t.docker(&["pull", &delivered]);
    assert!(pulled.status.success(), "{}", text(&pulled.stderr));
}

#[test]
fn an_existing_cluster_without_a_registry_is_refused_not_pushed_to_the_default_port() {
    let Some(t) = tree(
        "cluster:\n  provider: existing\n  context: stack-rig\n  allowedContexts: [stack-rig]\n",
        &[],
    ) else {
        return;
    };
    let o = t.stack(&["build", "--deliver", "frontend"]);
    let stderr = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("existing cluster `stack-rig` has no registry"),
        "{stderr}"
    );
    assert!(!stderr.contains("5001"), "{stderr}");

    // Naming the registry the cluster pulls from is what makes delivery possible.
    t.write_config(&format!(
        "cluster:\n  provider: existing\n  context: stack-rig\n  allowedContexts: [stack-rig]\n  registry:\n    hostPort: {REGISTRY_PORT}\n"
    ));
    let delivered = t.deliver("frontend").unwrap_or_else(|e| panic!("{e}"));
    assert!(
        delivered.starts_with(&format!("localhost:{REGISTRY_PORT}/{}/frontend:", t.id)),
        "{delivered}"
    );
}
