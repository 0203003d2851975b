//! `stack cluster up | down | status` and `stack doctor`.
//!
//! kind and k3d clusters cannot start on these machines, so their CLIs are the recording fake
//! (`RecordingRunner`) answering exactly as the real tools document (tool-semantics.md §5–6): the
//! tests assert the exact command lines. What stack asks the cluster's API (nodes, `/readyz`, the
//! identity, the registry ConfigMap) goes through kube-rs to the rig's real API server, which plays
//! the kind/k3d cluster's API: the fixture's `.stack/kubeconfig` is the rig's under the provider's
//! context name (an absent cluster's API: https://127.0.0.1:1). The registry wiring runs against
//! real Docker (rig tier) with real containers standing in for kind's node containers; the real
//! pinned `kind` binary checks that every flag stack passes exists.

use crate::support;
use stack::config::Project;
use stack::error::StackError;
use stack::ops::cluster::{self, Host, Options};
use stack::ops::doctor;
use stack::tool::{Cmd, Output, RecordingRunner, RunError, Runner, Tool};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

fn ok(stdout: &str) -> Output {
    Output {
        status: 0,
        stdout: stdout.into(),
        stderr: String::new(),
    }
}

fn fail(status: i32, stderr: &str) -> Output {
    Output {
        status,
        stdout: String::new(),
        stderr: stderr.into(),
    }
}

/// Tools are found under their own names, so recorded lines start with `kind`, `docker`, ...
fn by_name(t: Tool) -> Result<PathBuf, StackError> {
    Ok(PathBuf::from(t.name()))
}

fn host<'a>(runner: &'a dyn Runner, user_kubeconfig: &Path) -> Host<'a> {
    Host {
        runner,
        locate: by_name,
        kind_network: "kind".into(),
        user_kubeconfig: user_kubeconfig.to_path_buf(),
        proc_root: PathBuf::from("/nonexistent-proc"),
        docker_host: "unix:///nonexistent/docker.sock".into(),
        docker_source: "test".into(),
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A project directory with stack.yaml and a provider config.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new(stack_yaml: &str, files: &[(&str, &str)]) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("stack.yaml"), stack_yaml).unwrap();
        for (path, text) in files {
            let p = dir.path().join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        Fixture { dir }
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn project(&self) -> Project {
        Project::load(self.root()).unwrap()
    }

    /// What `kind create cluster --kubeconfig` / `k3d kubeconfig merge` would have written, for a
    /// cluster whose API server does not answer.
    fn write_kubeconfig(&self, context: &str) {
        self.write_stack_kubeconfig(&format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: {context}\n  cluster:\n    server: {NO_API}\ncontexts:\n- name: {context}\n  context:\n    cluster: {context}\n    user: {context}\ncurrent-context: {context}\nusers:\n- name: {context}\n  user: {{}}\n"
        ));
    }

    /// The same, for a cluster whose API is the rig's real API server.
    fn write_rig_kubeconfig(&self, env: &support::RigEnv, context: &str) {
        self.write_stack_kubeconfig(&rig_kubeconfig(env, context));
    }

    fn write_stack_kubeconfig(&self, text: &str) {
        let p = self.root().join(".stack/kubeconfig");
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
}

/// An API server address nothing answers on.
const NO_API: &str = "https://127.0.0.1:1";

/// The rig, for tests whose cluster API is the rig's real API server.
fn rig() -> Option<support::RigEnv> {
    let env = support::rig_env();
    if !support::require("rig", env.as_ref().map(|_| ()).map_err(Clone::clone)) {
        return None;
    }
    env.ok()
}

/// The rig's kubeconfig with its context (and the cluster and user entries it names) renamed:
/// what `kind create cluster --kubeconfig` or `k3d kubeconfig merge` writes for `context`, here
/// pointing at the rig's API server.
fn rig_kubeconfig(env: &support::RigEnv, context: &str) -> String {
    let path = env
        .vars
        .get("KUBECONFIG")
        .expect("the rig names its kubeconfig");
    std::fs::read_to_string(path)
        .unwrap()
        .replace("stack-rig", context)
}

/// kubectl on the rig (the test's own look at the API server, never stack's).
fn rig_kubectl(env: &support::RigEnv, args: &[&str]) -> String {
    let out = std::process::Command::new(env.bin_dir.join("kubectl"))
        .args([
            "--kubeconfig",
            &env.vars["KUBECONFIG"],
            "--context",
            "stack-rig",
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The rig's own identity: its kube-system namespace UID.
fn rig_uid(env: &support::RigEnv) -> String {
    rig_kubectl(
        env,
        &[
            "get",
            "namespace",
            "kube-system",
            "-o",
            "jsonpath={.metadata.uid}",
        ],
    )
}

/// The rig's `kube-public/local-registry-hosting`, held by one test at a time (tests of this and
/// other processes on the shared rig apply it too), absent at the start and deleted at the end.
/// The hold is a lock file in the rig's state directory naming its process (created atomically;
/// one left by a process that died is taken over).
struct RegistryConfigMap<'a> {
    env: &'a support::RigEnv,
    lock: PathBuf,
}

impl<'a> RegistryConfigMap<'a> {
    fn take(env: &'a support::RigEnv) -> Self {
        use std::io::Write as _;
        let lock = PathBuf::from(&env.vars["STACK_RIG_DIR"]).join("local-registry-hosting.lock");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
        loop {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&lock)
            {
                Ok(mut f) => {
                    write!(f, "{}", std::process::id()).unwrap();
                    break;
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let owner = std::fs::read_to_string(&lock).unwrap_or_default();
                    // Empty: its creator is about to write its pid (or died doing so long ago).
                    let young = || {
                        std::fs::metadata(&lock)
                            .and_then(|m| m.modified())
                            .is_ok_and(|t| t.elapsed().unwrap_or_default().as_secs() < 5)
                    };
                    let alive = if owner.trim().is_empty() {
                        young()
                    } else {
                        Path::new("/proc").join(owner.trim()).exists()
                    };
                    if !alive {
                        let _ = std::fs::remove_file(&lock);
                        continue;
                    }
                    assert!(
                        std::time::Instant::now() < deadline,
                        "{} held by process {owner} for 5 minutes",
                        lock.display()
                    );
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                Err(e) => panic!("{}: {e}", lock.display()),
            }
        }
        let held = RegistryConfigMap { env, lock };
        held.delete();
        held
    }

    /// Best effort (also runs while a failed test unwinds).
    fn delete(&self) {
        let _ = std::process::Command::new(self.env.bin_dir.join("kubectl"))
            .args(["--kubeconfig", &self.env.vars["KUBECONFIG"]])
            .args(["--context", "stack-rig", "-n", "kube-public", "delete"])
            .args(["configmap", "local-registry-hosting", "--ignore-not-found"])
            .output();
    }

    /// `{.data.localRegistryHosting\.v1}` and the field managers, as the API server has them.
    fn read(&self) -> (String, String) {
        let get = |path: &str| {
            rig_kubectl(
                self.env,
                &[
                    "-n",
                    "kube-public",
                    "get",
                    "configmap",
                    "local-registry-hosting",
                    "-o",
                    &format!("jsonpath={path}"),
                ],
            )
        };
        (
            get(r"{.data.localRegistryHosting\.v1}"),
            get("{.metadata.managedFields[*].manager}"),
        )
    }
}

impl Drop for RegistryConfigMap<'_> {
    fn drop(&mut self) {
        self.delete();
        let _ = std::fs::remove_file(&self.lock);
    }
}

/// The reference layout: kind provider, cluster `stack`, ingress ports and the registry on free
/// ports (so the port check passes on any machine).
fn kind_fixture(ingress: u16, registry: u16) -> Fixture {
    kind_fixture_named("stack", ingress, registry)
}

/// The same, for cluster `name` (tests on the shared Docker daemon use names of their own).
fn kind_fixture_named(name: &str, ingress: u16, registry: u16) -> Fixture {
    Fixture::new(
        &format!(
            "apiVersion: stack/v1\nproject: shop\ncluster:\n  provider: kind\n  name: {name}\n  config: kind/cluster.yaml\n  registry:\n    hostPort: {registry}\n"
        ),
        &[(
            "kind/cluster.yaml",
            &format!(
                "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nname: {name}\nnodes:\n  - role: control-plane\n    labels:\n      ingress-ready: \"true\"\n    extraPortMappings:\n      - containerPort: 80\n        hostPort: {ingress}\n        listenAddress: 127.0.0.1\n        protocol: TCP\n"
            ),
        )],
    )
}

const NO_KIND_CLUSTERS: &str = "No kind clusters found.\n";

fn hosts_toml(registry: &str) -> String {
    format!("[host.\"http://{registry}:5000\"]\n")
}

/// kind is the fake (its `create` leaves a busybox node and kind's network in the rig's real
/// Docker, as kind would); the registry, the network wiring and hosts.toml go to the rig's real
/// Docker through its API, so only kind's command lines are recorded; the plan's steps show the
/// Docker changes as the equivalent `docker` commands.
#[test]
fn kind_up_twice_down_twice_exact_command_lines() {
    let Some(env) = rig() else { return };
    let Some(d) = RigDocker::take() else { return };
    let configmap = RegistryConfigMap::take(&env);
    let name = d.id.clone();
    let (registry, node, network) = (d.name("registry"), d.name("control-plane"), d.name("kind"));
    let (ingress, reg) = (free_port(), free_port());
    let fx = kind_fixture_named(&name, ingress, reg);
    let project = fx.project();
    // What the fake `kind create cluster --kubeconfig .stack/kubeconfig` writes: the rig's API
    // server under kind's context name (read only after the create: the identity, the ConfigMap).
    fx.write_rig_kubeconfig(&env, &format!("kind-{name}"));
    let r = FakeKind {
        fake: RecordingRunner::new(),
        docker: &d,
        network: network.clone(),
        nodes: vec![node.clone()],
    };
    // Nothing exists yet: kind's "none" is on STDERR with exit 0; Docker has no such container
    // and no kind network.
    r.fake
        .on(&["kind", "get", "clusters"], fail(0, NO_KIND_CLUSTERS));
    r.fake.on(
        &["kind", "create", "cluster"],
        fail(0, &format!("Creating cluster \"{name}\" ...\n")),
    );
    let h = d.host(&r, &fx.root().join("no-kubeconfig"), &network);
    let report = cluster::up(
        &project,
        &h,
        &Options::default(),
        &stack::ops::events::Discard,
    )
    .unwrap();
    let hosts_dir = format!("/etc/containerd/certs.d/localhost:{reg}");
    assert_eq!(
        r.fake.lines(),
        vec![
            "kind get clusters".to_owned(),
            format!("kind create cluster --name {name} --config kind/cluster.yaml --kubeconfig .stack/kubeconfig"),
        ]
    );
    // Every command runs in the project root.
    let calls = r.fake.calls();
    assert!(calls.iter().all(|c| c.cwd.as_deref() == Some(fx.root())));
    let root = fx.root().display();
    let lines: Vec<&str> = report.steps.iter().map(|s| s.line.as_str()).collect();
    assert_eq!(
        lines,
        [
            format!("docker run -d --restart=always --name {registry} -p 127.0.0.1:{reg}:5000 --label dev.stack.cluster={name} --label dev.stack.owned=true registry:2"),
            format!("cd {root} && kind create cluster --name {name} --config kind/cluster.yaml --kubeconfig .stack/kubeconfig"),
            format!("write {root}/.stack/clusters/kind-{name}.json (uid: the uid of namespace kube-system, read through the API)"),
            format!("docker exec {node} mkdir -p {hosts_dir}"),
            format!("docker exec -i {node} sh -c 'cat > \"$1\"' sh {hosts_dir}/hosts.toml < <redacted>"),
            format!("docker network connect {network} {registry}"),
            "apply configmap kube-public/local-registry-hosting (server-side, manager stack, force-conflicts)".to_owned(),
        ]
    );
    // What those steps did, as the daemon reports it.
    let inspect: serde_json::Value =
        serde_json::from_str(&d.ok(&["container", "inspect", &registry])).unwrap();
    let c = &inspect[0];
    assert_eq!(c["State"]["Running"], true);
    assert_eq!(c["HostConfig"]["RestartPolicy"]["Name"], "always");
    assert!(c["NetworkSettings"]["Networks"][&network].is_object());
    assert_eq!(
        d.ok(&["exec", &node, "cat", &format!("{hosts_dir}/hosts.toml")]),
        hosts_toml(&registry)
    );
    // The ConfigMap as the API server now has it, applied by field manager `stack`.
    let hosting = format!(
        "host: \"localhost:{reg}\"\nhelp: \"https://kind.sigs.k8s.io/docs/user/local-registry/\"\n"
    );
    assert_eq!(configmap.read(), (hosting.clone(), "stack".to_owned()));
    // The identity is the API server's own kube-system UID, read once the create succeeded.
    let record_path = fx.root().join(format!(".stack/clusters/kind-{name}.json"));
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&record_path).unwrap()).unwrap();
    assert_eq!(record["uid"], rig_uid(&env).as_str(), "{record}");

    // Second up: the cluster, the registry (connected), hosts.toml and the ConfigMap all exist.
    let r = RecordingRunner::new();
    r.on(&["kind", "get", "clusters"], ok(&format!("{name}\n")));
    r.on(
        &["kind", "get", "nodes", "--name", &name],
        ok(&format!("{node}\n")),
    );
    let h = d.host(&r, &fx.root().join("no-kubeconfig"), &network);
    let report = cluster::up(
        &project,
        &h,
        &Options::default(),
        &stack::ops::events::Discard,
    )
    .unwrap();
    assert!(report.steps.is_empty(), "{:?}", report.steps);
    assert_eq!(
        r.lines(),
        vec![
            "kind get clusters".to_owned(),
            format!("kind get nodes --name {name}"),
        ]
    );

    // Somebody else changed the ConfigMap: up applies it again, taking over the field (stack
    // wires this registry; the other writer's value is stale).
    rig_kubectl(
        &env,
        &[
            "-n",
            "kube-public",
            "patch",
            "configmap",
            "local-registry-hosting",
            "--type=merge",
            "-p",
            r#"{"data":{"localRegistryHosting.v1":"host: \"localhost:1\"\n"}}"#,
        ],
    );
    let report = cluster::up(
        &project,
        &h,
        &Options::default(),
        &stack::ops::events::Discard,
    )
    .unwrap();
    let lines: Vec<&str> = report.steps.iter().map(|s| s.line.as_str()).collect();
    assert_eq!(
        lines,
        ["apply configmap kube-public/local-registry-hosting (server-side, manager stack, force-conflicts)"]
    );
    assert_eq!(configmap.read().0, hosting);

    // First down: the cluster stack recorded, and the containers carrying its labels.
    let r = RecordingRunner::new();
    r.on(&["kind", "get", "clusters"], ok(&format!("{name}\n")));
    r.on(
        &["kind", "delete", "cluster"],
        fail(0, &format!("Deleting cluster \"{name}\" ...\n")),
    );
    let h = d.host(&r, &fx.root().join("no-kubeconfig"), &network);
    let report = cluster::down(
        &project,
        &h,
        &Options::default(),
        &stack::ops::events::Discard,
    )
    .unwrap();
    assert_eq!(
        r.lines(),
        vec![
            "kind get clusters".to_owned(),
            format!("kind delete cluster --name {name} --kubeconfig .stack/kubeconfig"),
        ]
    );
    let lines: Vec<&str> = report.steps.iter().map(|s| s.line.as_str()).collect();
    assert_eq!(
        lines,
        [
            format!(
                "cd {root} && kind delete cluster --name {name} --kubeconfig .stack/kubeconfig"
            ),
            format!("rm -f {}", record_path.display()),
            format!("docker network disconnect {network} {registry}"),
            format!("docker rm -f {registry}"),
        ]
    );
    assert!(!record_path.exists());
    assert!(!d.exists(&registry), "the registry is gone");

    // Second down: nothing left, nothing done.
    let r = RecordingRunner::new();
    r.on(&["kind", "get", "clusters"], fail(0, NO_KIND_CLUSTERS));
    let h = d.host(&r, &fx.root().join("no-kubeconfig"), &network);
    let report = cluster::down(
        &project,
        &h,
        &Options::default(),
        &stack::ops::events::Discard,
    )
    .unwrap();
    assert!(report.steps.is_empty());
    assert_eq!(r.lines(), vec!["kind get clusters".to_owned()]);
}

#[test]
fn dry_run_runs_only_read_only_commands_and_prints_the_plan() {
    let Some(d) = RigDocker::take() else { return };
    let name = d.id.clone();
    let (ingress, reg) = (free_port(), free_port());
    let fx = kind_fixture_named(&name, ingress, reg);
    let r = RecordingRunner::new();
    r.on(&["kind", "get", "clusters"], fail(0, NO_KIND_CLUSTERS));
    let h = d.host(&r, &fx.root().join("none"), &d.name("kind"));
    let opts = Options {
        dry_run: true,
        context: None,
    };
    let report = cluster::up(&fx.project(), &h, &opts, &stack::ops::events::Discard).unwrap();
    // Docker is only asked (the registry container, kind's network), through its API.
    assert_eq!(r.lines(), vec!["kind get clusters"]);
    assert!(
        !d.exists(&d.name("registry")),
        "a dry run created the registry"
    );
    assert!(report.dry_run);
    let lines: Vec<&str> = report.steps.iter().map(|s| s.line.as_str()).collect();
    let root = fx.root().display().to_string();
    assert_eq!(lines[0], format!("docker run -d --restart=always --name {name}-registry -p 127.0.0.1:{reg}:5000 --label dev.stack.cluster={name} --label dev.stack.owned=true registry:2"));
    assert_eq!(lines[1], format!("cd {root} && kind create cluster --name {name} --config kind/cluster.yaml --kubeconfig .stack/kubeconfig"));
    // The ownership record comes after the create it records; its identity is read through the
    // API when the step runs.
    assert_eq!(
        lines[2],
        format!("write {root}/.stack/clusters/kind-{name}.json (uid: the uid of namespace kube-system, read through the API)")
    );
    let record: serde_json::Value =
        serde_json::from_str(report.steps[2].contents.as_deref().unwrap()).unwrap();
    assert_eq!(record["uid"], "<uid of namespace kube-system>");
    assert!(!fx.root().join(".stack").exists(), "dry run wrote files");
    let human = stack::ui::cluster::change_human(&report, false);
    assert!(human.contains("dry run — nothing was changed; these steps would run:"));
    // What an API step applies is never shown, not even the (harmless) registry ConfigMap: one
    // rule for every object (it could be a Secret).
    assert!(!human.contains("localRegistryHosting.v1"), "{human}");
    assert!(
        human.contains("apply configmap kube-public/local-registry-hosting (server-side, manager stack, force-conflicts)"),
        "{human}"
    );
    assert!(human.contains("7 steps planned"));
    let json: serde_json::Value =
        serde_json::from_str(&serde_json::to_string(&report).unwrap()).unwrap();
    assert_eq!(json["dryRun"], true);
    assert_eq!(json["context"], format!("kind-{name}"));
    assert_eq!(json["steps"].as_array().unwrap().len(), 7);
}

#[test]
fn kind_create_on_an_existing_name_fails_with_kinds_message() {
    // A cluster created by someone else between our check and our create: kind refuses (exit 1).
    // (The registry, started first, is the rig Docker's real one.)
    let Some(d) = RigDocker::take() else { return };
    let name = d.id.clone();
    let fx = kind_fixture_named(&name, free_port(), free_port());
    let r = RecordingRunner::new();
    r.on(&["kind", "get", "clusters"], fail(0, NO_KIND_CLUSTERS));
    r.on(
        &["kind", "create", "cluster"],
        fail(
            1,
            &format!("ERROR: failed to create cluster: node(s) already exist for a cluster with the name \"{name}\"\n"),
        ),
    );
    let h = d.host(&r, &fx.root().join("none"), &d.name("kind"));
    let err = cluster::up(
        &fx.project(),
        &h,
        &Options::default(),
        &stack::ops::events::Discard,
    )
    .unwrap_err();
    let text = format!("{err:#}");
    assert!(
        text.contains(&format!("could not create kind cluster {name}")),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "node(s) already exist for a cluster with the name \"{name}\""
        )),
        "{text}"
    );
    // Stopped at the failure: nothing after the create ran.
    assert_eq!(r.lines().last().unwrap(), &format!("kind create cluster --name {name} --config kind/cluster.yaml --kubeconfig .stack/kubeconfig"));
    // No ownership record for a cluster that was never created: a later `down` must not delete a
    // same-named cluster somebody else makes.
    assert!(!fx
        .root()
        .join(format!(".stack/clusters/kind-{name}.json"))
        .exists());
    // A tool that ran and failed is exit 4 (not a configuration error), naming the command line.
    assert_eq!(stack::ui::exit_code(&err), 4);
    let failed = err
        .chain()
        .find_map(|c| c.downcast_ref::<StackError>())
        .unwrap();
    let StackError::ToolFailed {
        tool,
        command,
        status,
        ..
    } = failed
    else {
        panic!("{failed:?}")
    };
    assert_eq!((tool.as_str(), *status), ("kind", 1));
    assert!(
        command.contains(&format!("&& kind create cluster --name {name}")),
        "{command}"
    );
}

#[test]
fn port_conflicts_are_all_reported_before_anything_is_created() {
    let ingress = TcpListener::bind("127.0.0.1:0").unwrap();
    let registry = TcpListener::bind("127.0.0.1:0").unwrap();
    let (ip, rp) = (
        ingress.local_addr().unwrap().port(),
        registry.local_addr().unwrap().port(),
    );
    let Some(d) = RigDocker::take() else { return };
    let name = d.id.clone();
    let fx = kind_fixture_named(&name, ip, rp);
    let r = RecordingRunner::new();
    r.on(&["kind", "get", "clusters"], fail(0, NO_KIND_CLUSTERS));
    let h = d.host(&r, &fx.root().join("none"), &d.name("kind"));
    let err = cluster::up(
        &fx.project(),
        &h,
        &Options::default(),
        &stack::ops::events::Discard,
    )
    .unwrap_err();
    let se = err.downcast_ref::<StackError>().unwrap();
    assert_eq!(se.exit_code(), 2);
    let msg = se.to_string();
    assert!(
        msg.starts_with("2 host port conflicts — nothing was created"),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("host port 127.0.0.1:{ip}/tcp for extraPortMappings containerPort 80 is not free (kind/cluster.yaml:")),
        "{msg}"
    );
    assert!(
        msg.contains(&format!(
            "host port 127.0.0.1:{rp}/tcp for registry {name}-registry is not free"
        )),
        "{msg}"
    );
    assert!(msg.contains("change the hostPort"));
    assert_eq!(r.lines(), vec!["kind get clusters"]);
    assert!(!d.exists(&d.name("registry")));
}

#[test]
fn a_registry_container_stack_did_not_create_is_refused_not_reused() {
    let Some(d) = RigDocker::take() else { return };
    let name = d.id.clone();
    // Someone's own container under the registry's name, without stack's labels.
    d.container(&d.name("registry"), &[]);
    let fx = kind_fixture_named(&name, free_port(), free_port());
    let r = RecordingRunner::new();
    r.on(&["kind", "get", "clusters"], fail(0, NO_KIND_CLUSTERS));
    let h = d.host(&r, &fx.root().join("none"), &d.name("kind"));
    let err = cluster::up(
        &fx.project(),
        &h,
        &Options::default(),
        &stack::ops::events::Discard,
    )
    .unwrap_err();
    let se = err.downcast_ref::<StackError>().unwrap();
    assert_eq!(se.exit_code(), 2);
    assert!(se.to_string().contains(&format!(
        "a container named `{name}-registry` exists but was not created by stack"
    )));
    assert!(se.hint().unwrap().contains("cluster.registry.name"));
    assert_eq!(r.lines().len(), 1);
    assert!(d.exists(&d.name("registry")), "left alone");
}

#[test]
fn down_keeps_a_cluster_stack_did_not_create() {
    let Some(d) = RigDocker::take() else { return };
    let name = d.id.clone();
    d.container(&d.name("registry"), &["--label", "app=mine"]);
    let fx = kind_fixture_named(&name, free_port(), free_port());
    let r = RecordingRunner::new();
    r.on(&["kind", "get", "clusters"], ok(&format!("kind\n{name}\n")));
    let h = d.host(&r, &fx.root().join("none"), &d.name("kind"));
    let report = cluster::down(
        &fx.project(),
        &h,
        &Options::default(),
        &stack::ops::events::Discard,
    )
    .unwrap();
    assert!(report.steps.is_empty());
    assert_eq!(report.kept.len(), 2, "{:?}", report.kept);
    assert!(report.kept[0].starts_with(&format!("kind cluster {name}: not created by stack")));
    assert!(report.kept[1].contains("not labelled dev.stack.owned=true"));
    assert!(d.exists(&d.name("registry")), "left alone");
    assert!(!r
        .lines()
        .iter()
        .any(|l| l.contains("delete") || l.contains(" rm ")));
}

#[test]
fn node_labels_reach_kind_through_a_generated_config() {
    let Some(d) = RigDocker::take() else { return };
    let name = d.id.clone();
    // kind's network is left over from an earlier cluster: the registry starts on it.
    let network = d.name("kind");
    d.network(&network);
    let reg = free_port();
    let fx = Fixture::new(
        &format!("apiVersion: stack/v1\ncluster:\n  name: {name}\n  registry:\n    hostPort: {reg}\n  nodeLabels:\n    hardware/gpu: \"true\"\n"),
        &[(
            "kind/cluster.yaml",
            "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n  - role: control-plane\n    labels:\n      ingress-ready: \"true\"\n  - role: worker\n  - role: worker\n",
        )],
    );
    let r = RecordingRunner::new();
    r.on(&["kind", "get", "clusters"], fail(0, NO_KIND_CLUSTERS));
    let h = d.host(&r, &fx.root().join("none"), &network);
    let opts = Options {
        dry_run: true,
        context: None,
    };
    let report = cluster::up(&fx.project(), &h, &opts, &stack::ops::events::Discard).unwrap();
    let write = report
        .steps
        .iter()
        .find(|s| s.line.ends_with(&format!(".stack/kind-{name}.yaml")))
        .expect("generated config");
    let cfg: serde_json::Value = serde_json::from_str(write.contents.as_ref().unwrap()).unwrap();
    assert_eq!(cfg["nodes"][0]["labels"]["ingress-ready"], "true");
    assert_eq!(cfg["nodes"][0]["labels"]["hardware/gpu"], "true");
    assert_eq!(cfg["nodes"][2]["labels"]["hardware/gpu"], "true");
    let lines: Vec<&str> = report.steps.iter().map(|s| s.line.as_str()).collect();
    assert!(lines.iter().any(|l| l.ends_with(&format!(
        "kind create cluster --name {name} --config .stack/kind-{name}.yaml --kubeconfig .stack/kubeconfig"
    ))));
    assert_eq!(lines[0], format!("docker run -d --restart=always --name {name}-registry --network {network} -p 127.0.0.1:{reg}:5000 --label dev.stack.cluster={name} --label dev.stack.owned=true registry:2"));
    assert!(!lines.iter().any(|l| l.contains("network connect")));
    // Every node kind will create gets hosts.toml: kind's node names, in config order.
    for node in ["control-plane", "worker", "worker2"].map(|n| d.name(n)) {
        assert!(
            lines
                .iter()
                .any(|l| l.contains(&format!("docker exec {node} mkdir -p"))),
            "{lines:#?}"
        );
    }
}

fn k3d_fixture(lb: u16, reg: u16) -> Fixture {
    Fixture::new(
        "apiVersion: stack/v1\ncluster:\n  provider: k3d\n",
        &[(
            "k3d/cluster.yaml",
            &format!(
                "apiVersion: k3d.io/v1alpha5\nkind: Simple\nmetadata:\n  name: stack\nservers: 1\nagents: 0\nports:\n  - port: 127.0.0.1:{lb}:80\n    nodeFilters: [loadbalancer]\nregistries:\n  create:\n    name: k3d-stack-registry\n    host: 127.0.0.1\n    hostPort: \"{reg}\"\noptions:\n  kubeconfig:\n    updateDefaultKubeconfig: true\n    switchCurrentContext: false\n"
            ),
        )],
    )
}

const K3D_LIST_ONE: &str = r#"[{"name":"stack","network":{"name":"k3d-stack","external":false},"nodes":[{"name":"k3d-stack-server-0","role":"server","State":{"Running":true,"Status":"running","Started":""}},{"name":"k3d-stack-serverlb","role":"loadbalancer","State":{"Running":true,"Status":"running","Started":""}}],"serversRunning":1,"serversCount":1,"agentsRunning":0,"agentsCount":0,"hasLoadbalancer":true}]"#;

#[test]
fn k3d_up_twice_down_twice_exact_command_lines() {
    let Some(env) = rig() else { return };
    let fx = k3d_fixture(free_port(), free_port());
    let project = fx.project();
    // What the fake `k3d kubeconfig merge` writes: the rig's API server as k3d's context.
    fx.write_rig_kubeconfig(&env, "k3d-stack");
    let r = RecordingRunner::new();
    r.on(&["k3d", "cluster", "list", "-o", "json"], ok("[]\n"));
    r.on(&["k3d", "cluster", "create"], ok(""));
    r.on(&["k3d", "kubeconfig", "merge"], ok(".stack/kubeconfig\n"));
    let h = host(&r, &fx.root().join("none"));
    let report = cluster::up(
        &project,
        &h,
        &Options::default(),
        &stack::ops::events::Discard,
    )
    .unwrap();
    assert_eq!(
        r.lines(),
        vec![
            "k3d cluster list -o json",
            "k3d cluster create stack --config k3d/cluster.yaml --kubeconfig-update-default=false --kubeconfig-switch-context=false",
            "k3d kubeconfig merge stack --output .stack/kubeconfig --kubeconfig-switch-context=false",
        ]
    );
    assert_eq!(report.context, "k3d-stack");
    // The identity is read through the API once the kubeconfig holds the new context.
    let lines: Vec<&str> = report.steps.iter().map(|s| s.line.as_str()).collect();
    assert_eq!(
        lines.last().copied(),
        Some(format!("write {}/.stack/clusters/k3d-stack.json (uid: the uid of namespace kube-system, read through the API)", fx.root().display()).as_str())
    );
    let record: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fx.root().join(".stack/clusters/k3d-stack.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(record["uid"], rig_uid(&env).as_str(), "{record}");

    let r = RecordingRunner::new();
    r.on(&["k3d", "cluster", "list", "-o", "json"], ok(K3D_LIST_ONE));
    let h = host(&r, &fx.root().join("none"));
    let report = cluster::up(
        &project,
        &h,
        &Options::default(),
        &stack::ops::events::Discard,
    )
    .unwrap();
    assert!(report.steps.is_empty());
    assert_eq!(r.lines(), vec!["k3d cluster list -o json"]);

    let r = RecordingRunner::new();
    r.on(&["k3d", "cluster", "list", "-o", "json"], ok(K3D_LIST_ONE));
    r.on(&["k3d", "cluster", "delete"], ok(""));
    r.on(&["kubectl", "config"], ok(""));
    let h = host(&r, &fx.root().join("none"));
    cluster::down(
        &project,
        &h,
        &Options::default(),
        &stack::ops::events::Discard,
    )
    .unwrap();
    // k3d cleans only the default kubeconfig: stack removes what it merged into its own file
    // (kubectl edits the file; the entries are the ones the context names).
    assert_eq!(
        r.lines(),
        vec![
            "k3d cluster list -o json",
            "k3d cluster delete stack",
            "kubectl config delete-context k3d-stack --kubeconfig .stack/kubeconfig",
            "kubectl config delete-cluster k3d-stack --kubeconfig .stack/kubeconfig",
            "kubectl config delete-user k3d-stack-admin --kubeconfig .stack/kubeconfig",
        ]
    );

    let r = RecordingRunner::new();
    r.on(&["k3d", "cluster", "list", "-o", "json"], ok("[]\n"));
    let h = host(&r, &fx.root().join("none"));
    let report = cluster::down(
        &project,
        &h,
        &Options::default(),
        &stack::ops::events::Discard,
    )
    .unwrap();
    assert!(report.steps.is_empty());
    assert_eq!(r.lines(), vec!["k3d cluster list -o json"]);
}

#[test]
fn k3d_gets_stacks_registry_and_labels_when_its_config_has_none() {
    let reg = free_port();
    let fx = Fixture::new(
        &format!("apiVersion: stack/v1\ncluster:\n  provider: k3d\n  name: dev\n  registry:\n    hostPort: {reg}\n  nodeLabels:\n    hardware/gpu: \"true\"\n"),
        &[],
    );
    let r = RecordingRunner::new();
    r.on(&["k3d", "cluster", "list", "-o", "json"], ok("[]\n"));
    let h = host(&r, &fx.root().join("none"));
    let opts = Options {
        dry_run: true,
        context: None,
    };
    let report = cluster::up(&fx.project(), &h, &opts, &stack::ops::events::Discard).unwrap();
    let write = report
        .steps
        .iter()
        .find(|s| s.line.ends_with(".stack/k3d-dev.yaml"))
        .expect("generated config");
    let cfg: serde_json::Value = serde_json::from_str(write.contents.as_ref().unwrap()).unwrap();
    assert_eq!(
        cfg["registries"]["create"],
        serde_json::json!({"name": "k3d-dev-registry", "host": "127.0.0.1", "hostPort": reg.to_string()})
    );
    assert_eq!(
        cfg["options"]["k3s"]["nodeLabels"],
        serde_json::json!([{"label": "hardware/gpu=true", "nodeFilters": ["server:*"]}])
    );
    assert!(report.steps.iter().any(|s| s.line.ends_with(
        "k3d cluster create dev --config .stack/k3d-dev.yaml --kubeconfig-update-default=false --kubeconfig-switch-context=false"
    )));
}

#[test]
fn contexts_outside_the_allowlist_are_refused_before_anything_runs() {
    let fx = Fixture::new(
        "apiVersion: stack/v1\ncluster:\n  provider: existing\n  context: prod-eu\n  allowedContexts: [staging]\n",
        &[],
    );
    let r = RecordingRunner::new();
    let h = host(&r, &fx.root().join("kubeconfig"));
    for result in [
        cluster::up(
            &fx.project(),
            &h,
            &Options::default(),
            &stack::ops::events::Discard,
        ),
        cluster::down(
            &fx.project(),
            &h,
            &Options::default(),
            &stack::ops::events::Discard,
        ),
    ] {
        let err = result.unwrap_err();
        let se = err.downcast_ref::<StackError>().unwrap();
        assert_eq!(se.exit_code(), 2);
        assert!(
            se.to_string()
                .contains("context `prod-eu`: it is not in the allowlist [staging]"),
            "{se}"
        );
    }
    assert!(r.lines().is_empty());

    // A kind project cannot be pointed at another context either.
    let kfx = kind_fixture(free_port(), free_port());
    let opts = Options {
        dry_run: false,
        context: Some("prod-eu".into()),
    };
    let err = cluster::up(&kfx.project(), &h, &opts, &stack::ops::events::Discard).unwrap_err();
    let se = err.downcast_ref::<StackError>().unwrap();
    assert_eq!(se.exit_code(), 2);
    assert!(se.to_string().contains("`kind-stack`"), "{se}");
    assert!(r.lines().is_empty());
}

#[test]
fn existing_context_in_the_allowlist_is_checked_not_changed() {
    let Some(env) = rig() else { return };
    let fx = Fixture::new(
        "apiVersion: stack/v1\ncluster:\n  provider: existing\n  context: staging\n  allowedContexts: [staging]\n",
        &[],
    );
    // `staging` is the rig's API server: its /readyz is asked through the API, no process runs.
    fx.write_rig_kubeconfig(&env, "staging");
    let kubeconfig = fx.root().join(".stack/kubeconfig");
    let r = RecordingRunner::new();
    let h = host(&r, &kubeconfig);
    let report = cluster::up(
        &fx.project(),
        &h,
        &Options::default(),
        &stack::ops::events::Discard,
    )
    .unwrap();
    assert!(report.steps.is_empty());
    assert!(
        report.notes.iter().any(|n| n.contains("staging answers")),
        "{:?}",
        report.notes
    );
    let report = cluster::down(
        &fx.project(),
        &h,
        &Options::default(),
        &stack::ops::events::Discard,
    )
    .unwrap();
    assert!(report.steps.is_empty());
    assert_eq!(r.lines(), Vec::<String>::new());

    // An API server that does not answer: exit 3 naming the context and the server.
    fx.write_kubeconfig("staging");
    let err = cluster::up(
        &fx.project(),
        &h,
        &Options::default(),
        &stack::ops::events::Discard,
    )
    .unwrap_err();
    let se = err.downcast_ref::<StackError>().expect("a StackError");
    assert_eq!(se.exit_code(), 3);
    let text = se.to_string();
    assert!(
        text.contains(NO_API) && text.contains("context `staging`"),
        "{text}"
    );
}

#[test]
fn status_reports_cluster_nodes_registry_and_context() {
    let Some(env) = rig() else { return };
    let Some(d) = RigDocker::take() else { return };
    let name = d.id.clone();
    let (registry, network) = (d.name("registry"), d.name("kind"));
    let reg = free_port();
    // The registry as `stack cluster up` leaves it in the rig's real Docker: labelled, published
    // on 127.0.0.1, started, then connected to kind's network.
    d.network(&network);
    d.ok(&[
        "run",
        "-d",
        "--name",
        &registry,
        "-p",
        &format!("127.0.0.1:{reg}:5000"),
        "--label",
        "dev.stack.owned=true",
        "--label",
        &format!("dev.stack.cluster={name}"),
        "registry:2",
    ]);
    d.ok(&["network", "connect", &network, &registry]);
    let fx = kind_fixture_named(&name, free_port(), reg);
    // The cluster's API is the rig's: its one (kwok) node is listed through the API.
    fx.write_rig_kubeconfig(&env, &format!("kind-{name}"));
    let r = RecordingRunner::new();
    r.on(&["kind", "get", "clusters"], ok(&format!("{name}\n")));
    r.on(
        &["kind", "get", "nodes"],
        ok(&format!("{name}-control-plane\n")),
    );
    let h = d.host(&r, &fx.root().join("none"), &network);
    let report = cluster::status(&fx.project(), &h, &Options::default()).unwrap();
    assert_eq!(
        r.lines(),
        vec![
            "kind get clusters".to_owned(),
            format!("kind get nodes --name {name}"),
        ]
    );
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "provider": "kind", "name": name, "context": format!("kind-{name}"),
            "kubeconfig": ".stack/kubeconfig", "contextAllowed": true,
            "allowlist": ["kind-*", "k3d-*"], "contextInKubeconfig": true,
            "exists": true, "reachable": true,
            "nodes": [{"name": "stack-rig-node", "role": "agent", "ready": true}],
            "registry": {"name": registry, "host": format!("localhost:{reg}"), "exists": true,
                "running": true, "ownedByStack": true, "networks": ["bridge", network],
                "ports": [format!("127.0.0.1:{reg}->5000/tcp")]},
        })
    );
    let port = reg.to_string();
    insta::assert_json_snapshot!(
        "cluster_status_json",
        support::redact(
            &json,
            &[
                (port.as_str(), "<port>"),
                (network.as_str(), "kind"),
                (name.as_str(), "stack")
            ]
        )
    );
    let human = stack::ui::cluster::status_human(&report, false);
    assert_eq!(
        human,
        format!("cluster   kind {name}: running, API server reachable\ncontext   kind-{name} in .stack/kubeconfig (present; allowed for changes)\nnodes     stack-rig-node  agent  Ready\nregistry  {registry} (localhost:{reg}): running, created by stack, networks [bridge, {network}], ports [127.0.0.1:{reg}->5000/tcp]\n")
    );

    // kind has the cluster, but its API server does not answer: kind's node names, readiness
    // unknown, and why.
    fx.write_kubeconfig(&format!("kind-{name}"));
    let report = cluster::status(&fx.project(), &h, &Options::default()).unwrap();
    assert_eq!(report.reachable, Some(false));
    let problem = report.problem.clone().unwrap();
    assert!(
        problem.contains(NO_API) && problem.contains(&format!("context `kind-{name}`")),
        "{problem}"
    );
    let nodes: Vec<(&str, &str, Option<bool>)> = report
        .nodes
        .iter()
        .map(|n| (n.name.as_str(), n.role.as_str(), n.ready))
        .collect();
    let node = format!("{name}-control-plane");
    assert_eq!(nodes, [(node.as_str(), "control-plane", None)]);

    // Absent cluster (kind's "none" on stderr) and no registry container.
    d.ok(&["network", "disconnect", &network, &registry]);
    d.ok(&["rm", "-f", &registry]);
    let r = RecordingRunner::new();
    r.on(&["kind", "get", "clusters"], fail(0, NO_KIND_CLUSTERS));
    let h = d.host(&r, &fx.root().join("none"), &network);
    let report = cluster::status(&fx.project(), &h, &Options::default()).unwrap();
    assert!(!report.exists && report.nodes.is_empty());
    assert!(report.registry.as_ref().is_some_and(|r| !r.exists));
    let human = stack::ui::cluster::status_human(&report, false);
    assert!(
        human.starts_with(&format!("cluster   kind {name}: absent\n")),
        "{human}"
    );
    assert!(human.contains("hint: `stack cluster up` creates it"));
}

#[test]
fn k3d_status_reads_the_json_list() {
    let fx = k3d_fixture(free_port(), free_port());
    let r = RecordingRunner::new();
    let Some(d) = RigDocker::take() else { return };
    r.on(&["k3d", "cluster", "list", "-o", "json"], ok(K3D_LIST_ONE));
    // The registry k3d would have made is asked for through the Docker API (absent here).
    let h = d.host(&r, &fx.root().join("none"), "kind");
    let report = cluster::status(&fx.project(), &h, &Options::default()).unwrap();
    assert_eq!(r.lines(), ["k3d cluster list -o json"]);
    assert!(report.registry.as_ref().is_some_and(|r| !r.exists));
    assert!(report.exists);
    let nodes: Vec<(&str, &str, Option<bool>)> = report
        .nodes
        .iter()
        .map(|n| (n.name.as_str(), n.role.as_str(), n.ready))
        .collect();
    assert_eq!(
        nodes,
        vec![
            ("k3d-stack-server-0", "server", Some(true)),
            ("k3d-stack-serverlb", "loadbalancer", Some(true))
        ]
    );
    assert!(report.problem.unwrap().contains("has no context k3d-stack"));
}

#[test]
fn docker_down_is_exit_3_with_the_fix() {
    let fx = kind_fixture(free_port(), free_port());
    let r = RecordingRunner::new();
    r.on(&["kind", "get", "clusters"], fail(1, "ERROR: failed to list clusters: command \"docker ps -a --filter label=io.x-k8s.kind.cluster --format '{{.Label \"io.x-k8s.kind.cluster\"}}'\" failed with error: exit status 1\n\nCommand Output: Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?\n"));
    let h = host(&r, &fx.root().join("none"));
    let err = cluster::up(
        &fx.project(),
        &h,
        &Options::default(),
        &stack::ops::events::Discard,
    )
    .unwrap_err();
    let se = err.downcast_ref::<StackError>().unwrap();
    assert_eq!(se.exit_code(), 3);
    assert!(se.to_string().contains("start Docker"), "{se}");
}

fn doctor_tools(t: Tool) -> Result<PathBuf, StackError> {
    match t {
        Tool::K3d | Tool::Tofu => Err(StackError::MissingTool {
            tool: t.name().into(),
            hint: format!("install {}", t.name()),
        }),
        _ => Ok(PathBuf::from(format!("/opt/bin/{}", t.name()))),
    }
}

#[test]
fn doctor_reports_each_check_with_its_fix() {
    let fx = kind_fixture(free_port(), free_port());
    fx.write_kubeconfig("kind-stack");
    let proc_root = fx.root().join("proc");
    std::fs::create_dir_all(proc_root.join("sys/fs/inotify")).unwrap();
    std::fs::write(proc_root.join("sys/fs/inotify/max_user_watches"), "8192\n").unwrap();
    std::fs::write(
        proc_root.join("sys/fs/inotify/max_user_instances"),
        "1024\n",
    )
    .unwrap();
    let r = RecordingRunner::new();
    r.on(&["helm", "version"], ok("v3.21.4+g1a2b3c4\n"));
    r.on(
        &["kubectl", "version"],
        ok("Client Version: v1.35.4\nKustomize Version: v5.7.1\n"),
    );
    r.on(
        &["kind", "version"],
        ok("kind v0.33.0 go1.26.8 linux/amd64\n"),
    );
    r.on(
        &["docker", "--version"],
        ok("Docker version 26.1.5+dfsg1, build a72d7cd\n"),
    );
    r.on(&["git", "version"], ok("git version 2.47.3\n"));
    let h = Host {
        runner: &r,
        locate: doctor_tools,
        kind_network: "kind".into(),
        user_kubeconfig: fx.root().join("none"),
        proc_root,
        docker_host: "unix:///nonexistent/docker.sock".into(),
        docker_source: "test".into(),
    };
    let report = doctor::run(&fx.project(), &h).unwrap();
    assert_eq!(
        r.lines(),
        vec![
            "helm version --short",
            "kubectl version --client",
            "kind version",
            "docker --version",
            "git version",
        ]
    );
    // The daemon is asked through the API client build uses (no `docker version` run), at the
    // endpoint Host resolved; the connection error names it.
    let human = stack::ui::cluster::doctor_human(&report, false);
    let daemon_line = human
        .lines()
        .find(|l| l.starts_with("problem  docker daemon"))
        .unwrap_or_else(|| panic!("{human}"));
    assert!(
        daemon_line.contains("unix:///nonexistent/docker.sock"),
        "{daemon_line}"
    );
    // The cluster's /readyz is asked through the API (no kubectl run); the error names the
    // server and the context.
    let cluster_line = human
        .lines()
        .find(|l| l.starts_with("problem  cluster kind-stack"))
        .unwrap_or_else(|| panic!("{human}"));
    assert!(
        cluster_line.contains(&format!(
            "the Kubernetes API server {NO_API} (context `kind-stack`) is not reachable"
        )),
        "{cluster_line}"
    );
    let human = human
        .replace(
            daemon_line,
            "problem  docker daemon               <connection error>",
        )
        .replace(
            cluster_line,
            "problem  cluster kind-stack          <not reachable>  .stack/kubeconfig",
        );
    let expected = "\
ok       helm                        v3.21.4+g1a2b3c4  /opt/bin/helm
ok       kubectl                     v1.35.4  /opt/bin/kubectl
ok       kind                        kind v0.33.0 go1.26.8 linux/amd64  /opt/bin/kind
skipped  k3d                         not found; not needed here (cluster.provider is not k3d)
                                     fix: install k3d
skipped  tofu                        not found; not needed here (only `stack preview` needs it)
                                     fix: install tofu
ok       docker                      Docker version 26.1.5+dfsg1, build a72d7cd  /opt/bin/docker
ok       git                         git version 2.47.3  /opt/bin/git
problem  docker daemon               <connection error>
                                     fix: start Docker (`sudo systemctl start docker`, colima, or Docker Desktop), or point DOCKER_HOST (or `docker context use`) at a running daemon; without sudo, add yourself to the `docker` group
problem  cluster kind-stack          <not reachable>  .stack/kubeconfig
                                     fix: run `stack cluster status`; if its nodes are stopped, `stack cluster down && stack cluster up` recreates it
problem  inotify max_user_watches    8192 (file watching and kind clusters need at least 524288)
                                     fix: sudo sysctl -w fs.inotify.max_user_watches=524288 && echo fs.inotify.max_user_watches=524288 | sudo tee -a /etc/sysctl.d/99-stack.conf
ok       inotify max_user_instances  1024
3 problems
";
    assert_eq!(human, expected);
    let mut json = serde_json::to_value(&report).unwrap();
    // The machine-specific texts: the daemon connection error, the API server's (it names the
    // temporary kubeconfig).
    for c in json["checks"].as_array_mut().unwrap() {
        if c["name"] == "docker daemon" {
            c["detail"] = "<connection error>".into();
        }
        if c["name"] == "cluster kind-stack" {
            c["detail"] = "<not reachable>".into();
        }
    }
    insta::assert_json_snapshot!("doctor_json", json);
    assert_eq!(json["problems"], 3);
    assert_eq!(json["checks"][0]["name"], "helm");
    assert_eq!(json["checks"][0]["status"], "ok");
    assert_eq!(json["checks"][3]["status"], "skipped");
}

#[test]
fn doctor_needs_k3d_when_the_provider_is_k3d() {
    let fx = k3d_fixture(free_port(), free_port());
    let r = RecordingRunner::new();
    r.on(&[], ok("v1\n"));
    let h = Host {
        runner: &r,
        locate: doctor_tools,
        kind_network: "kind".into(),
        user_kubeconfig: fx.root().join("none"),
        proc_root: fx.root().join("proc"),
        docker_host: "unix:///nonexistent/docker.sock".into(),
        docker_source: "test".into(),
    };
    let report = doctor::run(&fx.project(), &h).unwrap();
    let k3d = report.checks.iter().find(|c| c.name == "k3d").unwrap();
    assert_eq!(k3d.status, doctor::Status::Problem);
    assert_eq!(k3d.fix.as_deref(), Some("install k3d"));
    let kind = report.checks.iter().find(|c| c.name == "kind").unwrap();
    assert_eq!(kind.status, doctor::Status::Ok);
    let cluster = report.checks.iter().find(|c| c.group == "cluster").unwrap();
    assert_eq!(cluster.status, doctor::Status::Warning);
    assert_eq!(
        cluster.fix.as_deref(),
        Some("run `stack cluster up` to create it")
    );
}

/// The binary end to end: a refused context is exit 2 naming the context and the allowlist.
#[test]
fn binary_refuses_a_context_outside_the_allowlist() {
    let fx = Fixture::new(
        "apiVersion: stack/v1\ncluster:\n  provider: existing\n  context: prod\n",
        &[],
    );
    let out = std::process::Command::new(support::stack_bin())
        .args(["cluster", "up", "-C"])
        .arg(fx.root())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The local defaults (kind-*, k3d-*) cover only clusters stack creates: nothing is allowed here.
    assert!(stderr.contains("error: refusing to create or change a cluster on context `prod`: no context of your kubeconfig is allowed"), "{stderr}");
    assert!(stderr.contains("hint: if `prod` really is a cluster stack may change, add it to `cluster.allowedContexts`"), "{stderr}");
}

/// Every kind flag stack passes exists in the pinned, real kind.
#[test]
fn kind_cli_has_every_flag_stack_passes() {
    let kind = support::find_tool("kind");
    if !support::require("kind", kind.as_ref().map(|_| ()).map_err(Clone::clone)) {
        return;
    }
    let kind = kind.unwrap();
    let help = |args: &[&str]| {
        let out = std::process::Command::new(&kind)
            .args(args)
            .arg("--help")
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let create = help(&["create", "cluster"]);
    for flag in ["--name string", "--config string", "--kubeconfig string"] {
        assert!(create.contains(flag), "kind create cluster lacks {flag}");
    }
    let delete = help(&["delete", "cluster"]);
    assert!(delete.contains("--name string") && delete.contains("--kubeconfig string"));
    assert!(delete.contains("idempotent"));
    let export = help(&["export", "kubeconfig"]);
    assert!(export.contains("--name string") && export.contains("--kubeconfig string"));
    assert!(help(&["get", "nodes"]).contains("--name string"));
    assert!(help(&["get", "clusters"]).contains("kind get clusters"));
}

/// The rig's real Docker for one test. Names are unique to the test (the cluster is named
/// [`RigDocker::id`], so its registry is `<id>-registry` and kind's node `<id>-control-plane`);
/// everything the test makes, and the registry stack makes for its cluster, is removed by name
/// when this is dropped — at the end, or while a failed test unwinds. The test's own setup and
/// checks use the docker CLI; stack itself talks to the same daemon through its API.
struct RigDocker {
    bin: PathBuf,
    host: String,
    id: String,
    containers: Mutex<Vec<String>>,
    networks: Mutex<Vec<String>>,
}

impl RigDocker {
    /// `None` (the test skips) when the rig's Docker does not answer.
    fn take() -> Option<RigDocker> {
        static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let found =
            support::rig_docker().and_then(|host| Ok((support::find_tool("docker")?, host)));
        if !support::require("docker", found.as_ref().map(|_| ()).map_err(Clone::clone)) {
            return None;
        }
        let (bin, host) = found.unwrap();
        let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let id = format!("st{}x{seq}", std::process::id());
        Some(RigDocker {
            bin,
            host,
            containers: Mutex::new(vec![format!("{id}-registry")]),
            networks: Mutex::new(Vec::new()),
            id,
        })
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        std::process::Command::new(&self.bin)
            .args(args)
            .env("DOCKER_HOST", &self.host)
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "docker {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `<id>-<what>`.
    fn name(&self, what: &str) -> String {
        format!("{}-{what}", self.id)
    }

    /// A network as kind leaves one (internal: the rig's containers never reach the outside).
    fn network(&self, name: &str) {
        self.networks.lock().unwrap().push(name.to_owned());
        self.ok(&["network", "create", "--internal", name]);
    }

    /// A running busybox container (kind's node, or a look-alike), with extra `docker run` flags.
    fn container(&self, name: &str, flags: &[&str]) {
        self.containers.lock().unwrap().push(name.to_owned());
        let mut args = vec!["run", "-d", "--name", name];
        args.extend(flags);
        args.extend(["busybox:latest", "sleep", "3600"]);
        self.ok(&args);
    }

    fn exists(&self, container: &str) -> bool {
        self.run(&["container", "inspect", container])
            .status
            .success()
    }

    /// A host whose Docker is this daemon and whose kind network is `kind_network`.
    fn host<'a>(
        &self,
        runner: &'a dyn Runner,
        user_kubeconfig: &Path,
        kind_network: &str,
    ) -> Host<'a> {
        Host {
            kind_network: kind_network.to_owned(),
            docker_host: self.host.clone(),
            docker_source: "DOCKER_HOST".into(),
            ..host(runner, user_kubeconfig)
        }
    }
}

impl Drop for RigDocker {
    fn drop(&mut self) {
        let networks = self.networks.lock().unwrap().clone();
        for c in self.containers.lock().unwrap().iter() {
            // A container connected to a network after it started leaves its endpoint behind on
            // this daemon unless it is disconnected first.
            for n in &networks {
                let _ = self.run(&["network", "disconnect", "-f", n, c]);
            }
            let _ = self.run(&["rm", "-f", c]);
        }
        for n in &networks {
            let _ = self.run(&["network", "rm", n]);
        }
    }
}

/// The recording fake of kind, plus what `kind create cluster` leaves in Docker, made for real:
/// its network (when missing) and a busybox container per node, so the steps after the create
/// (exec into the node, connect the registry) meet what they would meet.
struct FakeKind<'a> {
    fake: RecordingRunner,
    docker: &'a RigDocker,
    network: String,
    nodes: Vec<String>,
}

impl Runner for FakeKind<'_> {
    fn output(&self, cmd: &Cmd) -> Result<Output, RunError> {
        let out = self.fake.output(cmd)?;
        if cmd
            .args
            .starts_with(&["create".to_owned(), "cluster".to_owned()])
            && out.success()
        {
            if !self
                .docker
                .run(&["network", "inspect", &self.network])
                .status
                .success()
            {
                self.docker.network(&self.network);
            }
            for node in &self.nodes {
                self.docker.container(node, &["--network", &self.network]);
            }
        }
        Ok(out)
    }
}

/// The kind registry recipe against real Docker: a busybox container plays kind's node (same name,
/// same network), kind is the fake, the rig's API server plays the cluster's API. Up creates,
/// labels, publishes on 127.0.0.1, connects, writes hosts.toml and applies the ConfigMap for real;
/// a second up changes nothing; down removes exactly the labelled container, and an unlabelled
/// look-alike survives.
#[test]
fn registry_wiring_with_real_containers() {
    let Some(d) = RigDocker::take() else { return };
    let Some(env) = rig() else { return };
    let configmap = RegistryConfigMap::take(&env);
    let cluster_name = d.id.clone();
    let network = d.name("kind");
    let node = d.name("control-plane");
    let reg_name = d.name("registry");
    let lookalike = d.name("registry-2");
    // What `kind create cluster` would have made: the network and a node container.
    d.network(&network);
    d.container(
        &node,
        &[
            "--network",
            &network,
            "--label",
            &format!("io.x-k8s.kind.cluster={cluster_name}"),
        ],
    );
    // Someone else's container with a similar name: never touched.
    d.container(&lookalike, &[]);

    let reg_port = free_port();
    let fx = Fixture::new(
        &format!("apiVersion: stack/v1\ncluster:\n  name: {cluster_name}\n  registry:\n    hostPort: {reg_port}\n"),
        &[(
            "kind/cluster.yaml",
            "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n  - role: control-plane\n",
        )],
    );
    // What the fake `kind create cluster` writes: the rig's API server as kind's context.
    fx.write_rig_kubeconfig(&env, &format!("kind-{cluster_name}"));
    let fake = RecordingRunner::new();
    fake.on(&["kind", "get", "clusters"], fail(0, NO_KIND_CLUSTERS));
    fake.on(&["kind", "create", "cluster"], ok(""));
    let h = d.host(&fake, &fx.root().join("none"), &network);
    cluster::up(
        &fx.project(),
        &h,
        &Options::default(),
        &stack::ops::events::Discard,
    )
    .unwrap();

    let inspect: serde_json::Value =
        serde_json::from_str(&d.ok(&["container", "inspect", &reg_name])).unwrap();
    let c = &inspect[0];
    assert_eq!(c["Config"]["Labels"]["dev.stack.owned"], "true");
    assert_eq!(
        c["Config"]["Labels"]["dev.stack.cluster"],
        cluster_name.as_str()
    );
    assert_eq!(c["Config"]["Image"], "registry:2");
    assert_eq!(
        c["HostConfig"]["PortBindings"]["5000/tcp"][0],
        serde_json::json!({"HostIp": "127.0.0.1", "HostPort": reg_port.to_string()})
    );
    assert_eq!(c["State"]["Running"], true);
    assert!(c["NetworkSettings"]["Networks"][&network].is_object());
    let hosts = d.ok(&[
        "exec",
        &node,
        "cat",
        &format!("/etc/containerd/certs.d/localhost:{reg_port}/hosts.toml"),
    ]);
    assert_eq!(hosts, format!("[host.\"http://{reg_name}:5000\"]\n"));
    // The node reaches the registry by name over the cluster network, as containerd will.
    let v2 = d.run(&[
        "exec",
        &node,
        "wget",
        "-q",
        "-O",
        "-",
        &format!("http://{reg_name}:5000/v2/"),
    ]);
    assert!(
        v2.status.success(),
        "node cannot reach the registry: {}",
        String::from_utf8_lossy(&v2.stderr)
    );
    assert!(
        configmap
            .read()
            .0
            .starts_with(&format!("host: \"localhost:{reg_port}\"\n")),
        "{:?}",
        configmap.read()
    );

    // Second up: kind now knows the cluster; nothing changes.
    fake.on(
        &["kind", "get", "clusters"],
        ok(&format!("{cluster_name}\n")),
    );
    fake.on(&["kind", "get", "nodes"], ok(&format!("{node}\n")));
    let report = cluster::up(
        &fx.project(),
        &h,
        &Options::default(),
        &stack::ops::events::Discard,
    )
    .unwrap();
    assert!(report.steps.is_empty(), "{:#?}", report.steps);

    // Down: only the labelled container goes; the look-alike and the node (kind's) stay.
    fake.on(&["kind", "delete", "cluster"], ok(""));
    cluster::down(
        &fx.project(),
        &h,
        &Options::default(),
        &stack::ops::events::Discard,
    )
    .unwrap();
    assert!(!d.exists(&reg_name));
    assert!(d.exists(&lookalike) && d.exists(&node));
    // Second down: nothing to remove.
    fake.on(&["kind", "get", "clusters"], fail(0, NO_KIND_CLUSTERS));
    let report = cluster::down(
        &fx.project(),
        &h,
        &Options::default(),
        &stack::ops::events::Discard,
    )
    .unwrap();
    assert!(report.steps.is_empty(), "{:#?}", report.steps);
}

/// A kind project with the reference chart and one dev env file.
fn up_fixture(extra_yaml: &str, dev_env: &str) -> Fixture {
    let (ingress, reg) = (free_port(), free_port());
    let fx = kind_fixture(ingress, reg);
    let cfg = std::fs::read_to_string(fx.root().join("stack.yaml")).unwrap() + extra_yaml;
    std::fs::write(fx.root().join("stack.yaml"), cfg).unwrap();
    support::copy(
        &support::project_root().join("charts"),
        &fx.root().join("charts"),
    );
    let _ = std::fs::remove_dir_all(fx.root().join("charts/app/charts"));
    std::fs::create_dir_all(fx.root().join("envs/local")).unwrap();
    std::fs::write(fx.root().join("envs/local/dev.yaml"), dev_env).unwrap();
    fx
}

use stack::ops::events::Discard as QuietUp;

#[test]
fn up_validates_the_dev_env_before_touching_the_cluster() {
    let fx = up_fixture("", "backend-api:\n  replicaCont: 2\n");
    let r = RecordingRunner::new();
    let h = host(&r, &fx.root().join("no-kubeconfig"));
    let err = stack::ops::up::up(&fx.project(), &h, &Default::default(), &QuietUp).unwrap_err();
    assert!(err.to_string().contains("replicaCont"), "{err}");
    // A values typo costs milliseconds: no kind (nor any other) command ran.
    assert_eq!(r.lines(), Vec::<String>::new());
}

#[test]
fn up_judges_the_dev_env_by_its_own_files() {
    // dev.env is an extra target made of a chart lifecycle file only; a typo in another env's
    // file must not block it.
    let fx = up_fixture(
        "dev:\n  env: dev\nenvs:\n  extraTargets:\n    - name: dev\n      type: local\n      layers: [charts/app/values.local.dev.yaml]\n",
        "",
    );
    std::fs::write(
        fx.root().join("charts/app/values.local.dev.yaml"),
        "backend-ws:\n  enabled: false\n",
    )
    .unwrap();
    std::fs::write(fx.root().join("envs/local/other.yaml"), "ingrss: {}\n").unwrap();
    let r = RecordingRunner::new();
    r.on(
        &["kind", "get", "clusters"],
        fail(1, "simulated: stop here\n"),
    );
    let h = host(&r, &fx.root().join("no-kubeconfig"));
    let err = stack::ops::up::up(&fx.project(), &h, &Default::default(), &QuietUp).unwrap_err();
    assert!(!err.to_string().contains("has errors"), "{err}");
    assert_eq!(
        r.lines().first().map(String::as_str),
        Some("kind get clusters")
    );
}

#[test]
fn overlapping_image_value_paths_are_a_configuration_error_not_a_panic() {
    let fx = up_fixture(
        "images:\n  backend:\n    context: demo\n    values: [backend-api.image, backend-api.image.tag]\n",
        "",
    );
    let r = RecordingRunner::new();
    let h = host(&r, &fx.root().join("no-kubeconfig"));
    let err = stack::ops::up::up(&fx.project(), &h, &Default::default(), &QuietUp).unwrap_err();
    let e = err.downcast_ref::<StackError>().expect("a StackError");
    assert_eq!(e.exit_code(), 2);
    assert!(
        err.to_string().contains(
            "`backend-api.image` and images.backend.values `backend-api.image.tag` overlap"
        ),
        "{err}"
    );
    assert_eq!(r.lines(), Vec::<String>::new());
}

#[test]
fn host_ports_above_65535_are_errors_at_their_line_not_truncated() {
    // 70000 as u16 would be 4464: a port the user never asked for.
    let fx = kind_fixture(free_port(), free_port());
    let cfg = std::fs::read_to_string(fx.root().join("kind/cluster.yaml")).unwrap();
    let cfg = cfg.replacen("hostPort: ", "hostPort: 7000", 1);
    std::fs::write(fx.root().join("kind/cluster.yaml"), cfg).unwrap();
    // The config is checked before Docker is asked anything (this host has no Docker).
    let r = RecordingRunner::new();
    r.on(&["kind", "get", "clusters"], fail(0, NO_KIND_CLUSTERS));
    let h = host(&r, &fx.root().join("no-kubeconfig"));
    let err = cluster::up(
        &fx.project(),
        &h,
        &Options::default(),
        &stack::ops::events::Discard,
    )
    .unwrap_err();
    let err = err.downcast_ref::<StackError>().expect("a StackError");
    assert_eq!(err.exit_code(), 2);
    let StackError::Config {
        origin, message, ..
    } = err
    else {
        panic!("{err:?}")
    };
    assert!(message.contains("is not a port number"), "{message}");
    assert_eq!(origin.as_ref().map(|o| o.pos.line), Some(10), "{origin:?}");
    assert!(
        !r.lines().iter().any(|l| l.contains("create")),
        "{:?}",
        r.lines()
    );

    let fx = k3d_fixture(free_port(), free_port());
    let cfg = std::fs::read_to_string(fx.root().join("k3d/cluster.yaml")).unwrap();
    let cfg = cfg.replacen("  - port: 127.0.0.1:", "  - port: 127.0.0.1:9", 1);
    std::fs::write(fx.root().join("k3d/cluster.yaml"), cfg).unwrap();
    let r = RecordingRunner::new();
    r.on(&["k3d", "cluster", "list", "-o", "json"], ok("[]\n"));
    let h = host(&r, &fx.root().join("no-kubeconfig"));
    let err = cluster::up(
        &fx.project(),
        &h,
        &Options::default(),
        &stack::ops::events::Discard,
    )
    .unwrap_err();
    assert!(err.to_string().contains("is not a port number"), "{err}");
    assert!(
        !r.lines().iter().any(|l| l.contains("create")),
        "{:?}",
        r.lines()
    );
}

/// The identity check of `down` against the rig's real API server (playing kind's cluster): kind
/// and docker are the fake, the identity is read through the API.
#[test]
fn cluster_down_deletes_only_the_cluster_whose_identity_stack_recorded() {
    let Some(env) = rig() else { return };
    // Down lists stack's containers of the cluster through the rig's real Docker (none here).
    let Some(d) = RigDocker::take() else { return };
    let fx = Fixture::new(
        "apiVersion: stack/v1\ncluster:\n  provider: kind\n  name: stack\n  registry:\n    enabled: false\n",
        &[],
    );
    // What `kind create cluster --kubeconfig .stack/kubeconfig` writes: here, the rig's API server
    // under kind's context name. The fake create "writes" it before the identity is read.
    let renamed = rig_kubeconfig(&env, "kind-stack");
    fx.write_stack_kubeconfig(&renamed);
    let fake = RecordingRunner::new();
    fake.on(&["kind", "get", "clusters"], fail(0, NO_KIND_CLUSTERS));
    fake.on(
        &["kind", "create", "cluster"],
        fail(0, "Creating cluster \"stack\" ...\n"),
    );
    let h = d.host(&fake, &fx.root().join("none"), "kind");
    cluster::up(
        &fx.project(),
        &h,
        &Options::default(),
        &stack::ops::events::Discard,
    )
    .unwrap();
    let record_path = fx.root().join(".stack/clusters/kind-stack.json");
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&record_path).unwrap()).unwrap();
    let real_uid = rig_uid(&env);
    assert!(!real_uid.is_empty());
    assert_eq!(
        record["uid"],
        real_uid.as_str(),
        "the API server's own kube-system UID"
    );

    // The cluster stack recorded was deleted and somebody made another of the same name: its
    // identity differs, so down keeps it (and forgets the stale record).
    let mut stale = record.clone();
    stale["uid"] = "00000000-0000-0000-0000-000000000000".into();
    std::fs::write(&record_path, stale.to_string()).unwrap();
    let fake = RecordingRunner::new();
    fake.on(&["kind", "get", "clusters"], ok("stack\n"));
    let h = d.host(&fake, &fx.root().join("none"), "kind");
    let report = cluster::down(
        &fx.project(),
        &h,
        &Options::default(),
        &stack::ops::events::Discard,
    )
    .unwrap();
    assert!(
        !fake.lines().iter().any(|l| l.starts_with("kind delete")),
        "deleted a cluster stack did not create: {:?}",
        fake.lines()
    );
    assert!(
        report
            .kept
            .iter()
            .any(|k| k.contains("re-created outside stack") && k.contains(&real_uid)),
        "{:?}",
        report.kept
    );
    assert!(!record_path.exists(), "the stale record is forgotten");

    // The right identity: down deletes it.
    std::fs::write(&record_path, record.to_string()).unwrap();
    let fake = RecordingRunner::new();
    fake.on(&["kind", "get", "clusters"], ok("stack\n"));
    fake.on(&["kind", "delete", "cluster"], ok(""));
    let h = d.host(&fake, &fx.root().join("none"), "kind");
    cluster::down(
        &fx.project(),
        &h,
        &Options::default(),
        &stack::ops::events::Discard,
    )
    .unwrap();
    assert_eq!(
        fake.lines(),
        [
            "kind get clusters",
            "kind delete cluster --name stack --kubeconfig .stack/kubeconfig",
        ]
    );

    // An API server that does not answer: nothing is deleted, the record is kept.
    std::fs::write(&record_path, record.to_string()).unwrap();
    fx.write_stack_kubeconfig(&renamed.replace(&server_of(&renamed), NO_API));
    let fake = RecordingRunner::new();
    fake.on(&["kind", "get", "clusters"], ok("stack\n"));
    let h = d.host(&fake, &fx.root().join("none"), "kind");
    let report = cluster::down(
        &fx.project(),
        &h,
        &Options::default(),
        &stack::ops::events::Discard,
    )
    .unwrap();
    assert!(!fake.lines().iter().any(|l| l.starts_with("kind delete")));
    assert!(
        report.kept.iter().any(
            |k| k.contains("cannot check that it is the cluster stack created")
                && k.contains(NO_API)
        ),
        "{:?}",
        report.kept
    );
    assert!(record_path.exists(), "an unverified record is kept");
}

/// The `server:` URL of the (only) cluster in a kubeconfig.
fn server_of(kubeconfig: &str) -> String {
    kubeconfig
        .lines()
        .find_map(|l| l.trim().strip_prefix("server: "))
        .expect("a server line")
        .trim()
        .to_owned()
}
