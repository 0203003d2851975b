//! `stack release` end to end (tier "rig"): the built binary in a real git repository, real helm
//! (`helm package`, `helm push`), the rig's real registry (Debian's docker-registry, plain HTTP on
//! 127.0.0.1:25000) under a repository path unique to each test, and — for a push that fails after
//! every check passed — a second real docker-registry process in read-only mode.

use crate::support;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const CHART_YAML: &str = "\
apiVersion: v2
# The chart stack releases.
name: app
description: A test chart   # kept as written
type: application

# Bumped by `stack release`.
version: 0.1.0 # the chart version

# Quoted on purpose.
appVersion: \"1.16.0\"
";

const RELEASED_0_2_0: &str = "\
apiVersion: v2
# The chart stack releases.
name: app
description: A test chart   # kept as written
type: application

# Bumped by `stack release`.
version: 0.2.0 # the chart version

# Quoted on purpose.
appVersion: \"0.2.0\"
";

struct Repo {
    dir: tempfile::TempDir,
    helm: PathBuf,
    /// `oci://127.0.0.1:25000/<unique>`.
    registry: String,
}

fn repo(registry: Option<&str>) -> Option<Repo> {
    repo_with(registry, "")
}

/// A repository whose stack.yaml `release:` section also has `extra` (lines indented by two).
fn repo_with(registry: Option<&str>, extra: &str) -> Option<Repo> {
    let found = support::find_tool("helm").and_then(|helm| {
        let env = support::rig_env()?;
        let address = env
            .vars
            .get("STACK_RIG_REGISTRY")
            .cloned()
            .ok_or("the rig env names no STACK_RIG_REGISTRY")?;
        std::net::TcpStream::connect_timeout(
            &address.parse().map_err(|e| format!("{address}: {e}"))?,
            Duration::from_secs(2),
        )
        .map_err(|e| format!("the rig registry {address} does not answer: {e}"))?;
        Ok((helm, address))
    });
    let available = found
        .as_ref()
        .map(|_| ())
        .map_err(|e| format!("{e} (run `cargo xtask rig up`)"));
    if !support::require("rig", available) {
        return None;
    }
    let (helm, address) = found.unwrap();
    let id = format!(
        "stack-release-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let registry = registry
        .map(str::to_owned)
        .unwrap_or_else(|| format!("oci://{address}/{id}"));
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("charts/app/templates")).unwrap();
    std::fs::write(root.join("charts/app/Chart.yaml"), CHART_YAML).unwrap();
    std::fs::write(root.join("charts/app/values.yaml"), "replicas: 1\n").unwrap();
    std::fs::write(
        root.join("charts/app/templates/cm.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\ndata:\n  replicas: \"{{ .Values.replicas }}\"\n",
    )
    .unwrap();
    std::fs::write(
        root.join("stack.yaml"),
        format!(
            "apiVersion: stack/v1\nrelease:\n  registry: {registry}\n  plainHttp: true\n{extra}"
        ),
    )
    .unwrap();
    let r = Repo {
        dir,
        helm,
        registry,
    };
    r.git(&["init", "-q", "-b", "main"]);
    r.git(&["config", "user.email", "release@test.invalid"]);
    r.git(&["config", "user.name", "release test"]);
    r.commit("chore: the chart");
    Some(r)
}

impl Repo {
    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn git(&self, args: &[&str]) -> String {
        let o = Command::new("git")
            .arg("-C")
            .arg(self.root())
            .args(args)
            .output()
            .unwrap();
        assert!(o.status.success(), "git {args:?}: {}", text(&o.stderr));
        text(&o.stdout)
    }

    fn commit(&self, message: &str) {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "--allow-empty", "-m", message]);
    }

    fn tags(&self) -> Vec<String> {
        self.git(&["tag", "--list"])
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn stack(&self, args: &[&str]) -> (Output, serde_json::Value) {
        self.stack_env(args, &[])
    }

    fn stack_env(&self, args: &[&str], env: &[(&str, &str)]) -> (Output, serde_json::Value) {
        let o = Command::new(support::stack_bin())
            .envs(env.iter().copied())
            .arg("release")
            .args(args)
            .args(["--format", "json"])
            .current_dir(self.root())
            .env("STACK_HELM", &self.helm)
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        let json = serde_json::from_slice(&o.stdout).unwrap_or(serde_json::Value::Null);
        (o, json)
    }

    fn chart_yaml(&self) -> String {
        std::fs::read_to_string(self.root().join("charts/app/Chart.yaml")).unwrap()
    }

    /// What the registry holds at `version`, asked with real helm.
    fn helm_show(&self, version: &str) -> Output {
        Command::new(&self.helm)
            .args([
                "show",
                "chart",
                &format!("{}/app", self.registry),
                "--version",
                version,
                "--plain-http",
            ])
            .env(
                "HELM_REGISTRY_CONFIG",
                self.root().join("helm-registry.json"),
            )
            .output()
            .unwrap()
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn status(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn show(o: &Output) -> String {
    format!("stdout:\n{}\nstderr:\n{}", text(&o.stdout), text(&o.stderr))
}

#[test]
fn release_pushes_then_tags_and_the_same_release_again_is_a_no_op() {
    let Some(r) = repo(None) else { return };
    let (o, report) = r.stack(&["--version", "0.2.0"]);
    assert_eq!(status(&o), 0, "{}", show(&o));
    assert_eq!(report["status"], "released", "{report:#}");
    assert_eq!(report["tag"], "v0.2.0");
    assert_eq!(report["tagged"], true);
    assert!(
        report["pushedDigest"]
            .as_str()
            .is_some_and(|d| d.starts_with("sha256:")),
        "{report:#}"
    );
    // Only the two scalars changed: comments, spacing and the quotes around appVersion kept.
    assert_eq!(r.chart_yaml(), RELEASED_0_2_0);
    assert_eq!(r.tags(), ["v0.2.0"]);
    let shown = r.helm_show("0.2.0");
    assert!(shown.status.success(), "{}", show(&shown));
    assert!(text(&shown.stdout).contains("version: 0.2.0"));
    assert!(text(&shown.stdout).contains("appVersion: 0.2.0"));
    // The push came before the tag.
    let lines: Vec<&str> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["line"].as_str().unwrap())
        .collect();
    let push = lines.iter().position(|l| l.contains(" push ")).unwrap();
    let tag = lines
        .iter()
        .position(|l| l.contains(" tag -a v0.2.0"))
        .unwrap();
    assert!(push < tag, "{lines:?}");

    // Again, same version, same contents; a second later helm package's bytes differ (the tar
    // headers carry the packaging time), so the contents decide.
    std::thread::sleep(Duration::from_millis(1100));
    let (o, again) = r.stack(&["--version", "0.2.0"]);
    assert_eq!(status(&o), 0, "{}", show(&o));
    assert_eq!(again["status"], "already-released", "{again:#}");
    assert_eq!(again["tagged"], false);
    assert_eq!(again["steps"], serde_json::json!([]));
    assert_ne!(again["packageDigest"], again["registryLayerDigest"]);
    assert_eq!(r.tags(), ["v0.2.0"]);
    assert_eq!(r.chart_yaml(), RELEASED_0_2_0);
}

#[test]
fn a_changed_chart_at_a_released_version_is_refused_and_not_tagged() {
    let Some(r) = repo(None) else { return };
    let (o, report) = r.stack(&["--version", "0.3.0", "--no-tag"]);
    assert_eq!(status(&o), 0, "{}", show(&o));
    assert_eq!(report["status"], "released", "{report:#}");
    assert!(report.get("tag").is_none(), "{report:#}");
    assert!(r.tags().is_empty());
    let before = r.chart_yaml();

    let template = r.root().join("charts/app/templates/cm.yaml");
    let mut t = std::fs::read_to_string(&template).unwrap();
    t.push_str("  changed: \"yes\"\n");
    std::fs::write(&template, t).unwrap();
    r.commit("fix: a changed template");
    let (o, refused) = r.stack(&["--version", "0.3.0"]);
    assert_eq!(status(&o), 1, "{}", show(&o));
    assert_eq!(refused["status"], "refused", "{refused:#}");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("versions are immutable"),
        "{refused:#}"
    );
    assert_eq!(refused["steps"], serde_json::json!([]));
    assert!(r.tags().is_empty(), "{:?}", r.tags());
    assert_eq!(r.chart_yaml(), before);
    // The registry still holds the first contents.
    let shown = r.helm_show("0.3.0");
    assert!(shown.status.success(), "{}", show(&shown));
}

#[test]
fn conventional_commits_choose_the_version_and_a_dry_run_changes_nothing() {
    let Some(r) = repo(None) else { return };
    // Never released: the Chart.yaml version as it is.
    let (o, first) = r.stack(&["--dry-run"]);
    assert_eq!(status(&o), 0, "{}", show(&o));
    assert_eq!(first["version"], "0.1.0", "{first:#}");
    assert_eq!(first["versionFrom"], "Chart.yaml");

    r.git(&["tag", "-a", "v0.2.0", "-m", "an earlier release"]);
    let (o, nothing) = r.stack(&[]);
    assert_eq!(status(&o), 0, "{}", show(&o));
    assert_eq!(nothing["status"], "nothing-to-release", "{nothing:#}");
    assert_eq!(nothing["version"], "0.2.0");

    let expect = [
        ("fix: a bug", "0.2.1"),
        ("feat(api): a feature", "0.3.0"),
        ("fix: the port\n\nBREAKING CHANGE: it moved", "1.0.0"),
    ];
    for (message, version) in expect {
        r.commit(message);
        let (o, report) = r.stack(&["--dry-run"]);
        assert_eq!(status(&o), 0, "{}", show(&o));
        assert_eq!(report["version"], version, "after {message:?}: {report:#}");
        assert_eq!(report["versionFrom"], "commits");
        assert_eq!(report["previousTag"], "v0.2.0");
        assert_eq!(report["status"], "released");
        assert_eq!(report["dryRun"], true);
        assert!(report["diff"]
            .as_str()
            .unwrap()
            .contains(&format!("+version: {version} # the chart version")));
        for step in report["steps"].as_array().unwrap() {
            assert_eq!(step["status"], "would-run", "{step:#}");
        }
        // Nothing written, pushed or tagged.
        assert_eq!(r.chart_yaml(), CHART_YAML);
        assert_eq!(r.tags(), ["v0.2.0"]);
        assert!(!r.helm_show(version).status.success());
    }
    // `!` after the type is breaking too.
    r.git(&["tag", "-a", "v1.0.0", "-m", "released"]);
    r.commit("refactor(core)!: drop the old API");
    let (_, report) = r.stack(&["--dry-run"]);
    assert_eq!(report["version"], "2.0.0", "{report:#}");
}

#[test]
fn a_bad_version_or_an_existing_tag_is_refused_before_anything_runs() {
    let Some(r) = repo(None) else { return };
    let (o, _) = r.stack(&["--version", "v1.2"]);
    assert_eq!(status(&o), 2, "{}", show(&o));
    assert!(show(&o).contains("not a semantic version"), "{}", show(&o));

    r.git(&["tag", "-a", "v0.5.0", "-m", "someone else's"]);
    let (o, _) = r.stack(&["--version", "0.5.0"]);
    assert_eq!(status(&o), 2, "{}", show(&o));
    assert!(show(&o).contains("v0.5.0 already exists"), "{}", show(&o));
    assert_eq!(r.chart_yaml(), CHART_YAML);
    assert!(!r.helm_show("0.5.0").status.success());
}

#[test]
fn a_failing_push_leaves_no_tag() {
    // A registry that is not there: refused at the registry question, nothing changed.
    let Some(r) = repo(Some("oci://127.0.0.1:1/charts")) else {
        return;
    };
    let (o, _) = r.stack(&["--version", "0.2.0"]);
    assert_eq!(status(&o), 3, "{}", show(&o));
    assert!(r.tags().is_empty());
    assert_eq!(r.chart_yaml(), CHART_YAML);

    // A real registry that answers reads but refuses writes: the push itself fails.
    let registry = Registry::start(r.root(), None);
    let r2 = repo(Some(&format!("oci://{}/charts", registry.address))).unwrap();
    let (o, _) = r2.stack(&["--version", "0.2.0"]);
    assert_eq!(status(&o), 4, "{}", show(&o));
    assert!(show(&o).contains("nothing was tagged"), "{}", show(&o));
    assert!(r2.tags().is_empty(), "{:?}", r2.tags());
}

/// `user1`'s password and its bcrypt hash (as in `oci.rs`: no htpasswd tool needed).
const USER: &str = "user1";
const PASSWORD: &str = "oci-test-Pa55word";
const HTPASSWD: &str = "user1:$2b$04$g88cxh2Qm/aqghdUG874L.utuFd3gHFni76zjo.A8VoyaeUI0zBZq\n";

#[test]
fn credentials_come_from_the_environment_and_go_to_helm_on_stdin_only() {
    let Some(probe) = repo(None) else { return };
    let registry = Registry::start(probe.root(), Some(HTPASSWD));
    let r = repo_with(
        Some(&format!("oci://{}/charts", registry.address)),
        "  usernameEnv: REL_USER\n  passwordEnv: REL_PASSWORD\n",
    )
    .unwrap();
    // Without the variables: refused before anything runs.
    let (o, _) = r.stack(&["--version", "0.2.0"]);
    assert_eq!(status(&o), 2, "{}", show(&o));
    assert!(show(&o).contains("REL_USER"), "{}", show(&o));

    let env = [("REL_USER", USER), ("REL_PASSWORD", PASSWORD)];
    let (o, report) = r.stack_env(&["--version", "0.2.0"], &env);
    assert_eq!(status(&o), 0, "{}", show(&o));
    assert_eq!(report["status"], "released", "{report:#}");
    let login = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["line"].as_str().unwrap().to_owned())
        .find(|l| l.contains(" registry login "))
        .expect("a helm registry login step");
    assert!(login.contains("--password-stdin"), "{login}");
    assert!(!show(&o).contains(PASSWORD), "{}", show(&o));
    // helm's login went into stack's own registry config, not the user's.
    assert!(login.starts_with("HELM_REGISTRY_CONFIG="), "{login}");
    // Asked again with the same credentials (manifest and chart layer read with Basic auth).
    std::thread::sleep(Duration::from_millis(1100));
    let (o, again) = r.stack_env(&["--version", "0.2.0"], &env);
    assert_eq!(status(&o), 0, "{}", show(&o));
    assert_eq!(again["status"], "already-released", "{again:#}");
    assert!(!show(&o).contains(PASSWORD));
}

/// A real docker-registry process on a free 127.0.0.1 port: with htpasswd auth, or else in
/// read-only maintenance mode (manifest reads answer, 404 for what is not there; pushes are
/// refused). Stopped (by its pid) on drop.
struct Registry {
    child: Child,
    address: String,
}

impl Registry {
    fn start(dir: &Path, htpasswd: Option<&str>) -> Registry {
        let binary = which::which("docker-registry")
            .expect("docker-registry (Debian's package, which `cargo xtask rig up` installs)");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let address = format!("127.0.0.1:{port}");
        let root = dir.join(format!("registry-{port}"));
        std::fs::create_dir_all(root.join("data")).unwrap();
        let mode = match htpasswd {
            Some(h) => {
                std::fs::write(root.join("htpasswd"), h).unwrap();
                format!(
                    "auth:\n  htpasswd:\n    realm: stack-release-test\n    path: {}\n",
                    root.join("htpasswd").display()
                )
            }
            None => "  maintenance:\n    readonly:\n      enabled: true\n".to_owned(),
        };
        let (storage_extra, auth) = if htpasswd.is_some() {
            (String::new(), mode)
        } else {
            (mode, String::new())
        };
        let config = root.join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\n{storage_extra}\
                 http:\n  addr: {address}\n{auth}",
                root.join("data").display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(root.join("registry.log")).unwrap();
        let child = Command::new(binary)
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut registry = Registry { child, address };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(&registry.address).is_err() {
            assert!(
                registry.child.try_wait().unwrap().is_none() && Instant::now() < deadline,
                "the registry did not start: {}",
                std::fs::read_to_string(root.join("registry.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        registry
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
