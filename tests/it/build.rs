//! `stack build` against the real Docker daemon of the rig (tier "docker"): the demo images build
//! FROM the seeded busybox, a second run builds nothing, a one-byte change rebuilds only the image it
//! touches, delivery pushes to a real registry and the image pulls back. kind delivery goes
//! through the recording fake (kind clusters cannot run here).

use crate::support;
use std::process::Output;

struct Tree {
    dir: tempfile::TempDir,
    docker_host: String,
}

/// A copy of the demo app with a stack.yaml using a per-test repository prefix, so parallel tests
/// and earlier runs never share image names.
fn tree(extra: &str) -> Option<Tree> {
    let support::DockerDir {
        dir,
        docker_host,
        id,
    } = support::docker_dir("t")?;
    support::copy(
        &support::project_root().join("demo"),
        &dir.path().join("demo"),
    );
    let yaml = format!(
        "apiVersion: stack/v1\nproject: shop\ncluster:\n  name: stack\n  registry:\n    hostPort: 25000\nimages:\n  backend:\n    context: demo/backend\n    target: dev\n    repository: {id}/backend\n    buildArgs:\n      VERSION: \"{{{{ git.describe }}}}\"\n  frontend:\n    context: demo/frontend\n    repository: {id}/frontend\n{extra}"
    );
    std::fs::write(dir.path().join("stack.yaml"), yaml).unwrap();
    Some(Tree { dir, docker_host })
}

impl Tree {
    fn stack(&self, args: &[&str]) -> Output {
        std::process::Command::new(support::stack_bin())
            .current_dir(self.dir.path())
            .args(args)
            .env("DOCKER_HOST", &self.docker_host)
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    }

    fn build_json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["build", "--format", "json"];
        all.extend_from_slice(args);
        let o = self.stack(&all);
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
            panic!(
                "{e}\nstdout: {}\nstderr: {}",
                text(&o.stdout),
                text(&o.stderr)
            )
        })
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
        // Remove the images this test built (only those: they carry the test's own repository prefix).
        let prefix =
            std::fs::read_to_string(self.dir.path().join("stack.yaml")).unwrap_or_default();
        for line in prefix
            .lines()
            .filter_map(|l| l.trim().strip_prefix("repository: "))
        {
            let ids = self.docker(&["images", "-q", line]);
            for id in text(&ids.stdout).lines() {
                let _ = self.docker(&["rmi", "-f", id]);
            }
        }
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn statuses(report: &serde_json::Value) -> Vec<(String, String)> {
    report["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["name"].as_str().unwrap().to_owned(),
                i["outcome"]["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn pair(a: &str, b: &str) -> (String, String) {
    (a.to_owned(), b.to_owned())
}

#[test]
fn builds_then_caches_then_rebuilds_only_what_changed() {
    let Some(t) = tree("") else { return };
    let first = t.build_json(&[]);
    assert_eq!(
        statuses(&first),
        [pair("backend", "built"), pair("frontend", "built")],
        "{first}"
    );
    // The image really is the demo app, FROM the seeded busybox, at the `dev` target.
    let backend = first["images"][0]["reference"].as_str().unwrap().to_owned();
    let run = t.docker(&[
        "run",
        "--rm",
        &backend,
        "cat",
        "/app/public/api/health.json",
    ]);
    assert_eq!(
        text(&run.stdout).trim(),
        r#"{"status": "ok"}"#,
        "{}",
        text(&run.stderr)
    );

    let second = t.build_json(&[]);
    assert_eq!(
        statuses(&second),
        [
            pair("backend", "up-to-date"),
            pair("frontend", "up-to-date")
        ]
    );
    assert_eq!(
        second["images"][0]["reference"],
        first["images"][0]["reference"]
    );

    // One byte in the backend's context: only the backend rebuilds, under a new tag.
    let f = t.dir.path().join("demo/backend/public/api/health.json");
    let mut body = std::fs::read(&f).unwrap();
    body.push(b' ');
    std::fs::write(&f, body).unwrap();
    let third = t.build_json(&[]);
    assert_eq!(
        statuses(&third),
        [pair("backend", "built"), pair("frontend", "up-to-date")]
    );
    assert_ne!(
        third["images"][0]["reference"],
        first["images"][0]["reference"]
    );
    assert_eq!(
        third["images"][1]["reference"],
        first["images"][1]["reference"]
    );

    // Ignored files do not count: a README in the context (ignored) changes nothing.
    std::fs::write(t.dir.path().join("demo/frontend/.dockerignore"), "*.md\n").unwrap();
    let after_ignore = t.build_json(&["frontend"]);
    let tag_with_dockerignore = after_ignore["images"][0]["reference"].clone();
    std::fs::write(t.dir.path().join("demo/frontend/NOTES.md"), "scratch").unwrap();
    let fourth = t.build_json(&["frontend"]);
    assert_eq!(statuses(&fourth), [pair("frontend", "up-to-date")]);
    assert_eq!(fourth["images"][0]["reference"], tag_with_dockerignore);
}

#[test]
fn delivers_to_the_registry_and_pulls_back() {
    let Some(t) = tree("") else { return };
    let report = t.build_json(&["backend", "--deliver"]);
    let delivered = report["images"][0]["delivered"]
        .as_str()
        .unwrap_or_else(|| panic!("{report}"))
        .to_owned();
    assert!(delivered.starts_with("localhost:25000/"), "{delivered}");
    // Remove the local copies, then pull back from the registry.
    assert!(t.docker(&["rmi", &delivered]).status.success());
    let pulled = t.docker(&["pull", &delivered]);
    assert!(pulled.status.success(), "{}", text(&pulled.stderr));
    let run = t.docker(&[
        "run",
        "--rm",
        &delivered,
        "cat",
        "/app/public/api/items.json",
    ]);
    assert!(text(&run.stdout).contains("banana"));
    let _ = t.docker(&["rmi", &delivered]);
}

#[test]
fn failures_name_the_step_and_exit_codes_follow_the_policy() {
    let Some(t) = tree("") else { return };
    // A failing RUN: exit 1, the step and the last output lines are shown.
    std::fs::write(
        t.dir.path().join("demo/frontend/Dockerfile"),
        "FROM busybox:latest\nRUN echo preparing && echo 'disk on fire' >&2 && exit 7\n",
    )
    .unwrap();
    let o = t.stack(&["build", "frontend"]);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    // BuildKit names the step as `docker build` shows it; its error ends with the exit code.
    assert!(
        err.contains("build FAILED at [2/2] RUN echo preparing"),
        "{err}"
    );
    assert!(err.contains("exit code: 7"), "{err}");
    assert!(
        err.contains("last output:") && err.contains("\n    preparing"),
        "the RUN's own output is shown: {err}"
    );

    // Unknown target stage: exit 2 naming the stages, before the daemon is asked.
    std::fs::write(
        t.dir.path().join("stack.yaml"),
        std::fs::read_to_string(t.dir.path().join("stack.yaml"))
            .unwrap()
            .replace("target: dev", "target: debug"),
    )
    .unwrap();
    let o = t.stack(&["build", "backend"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("stage `debug` is not in demo/backend/Dockerfile")
            && text(&o.stderr).contains("stages there: base, production, dev"),
        "{}",
        text(&o.stderr)
    );

    // Missing context / Dockerfile: exit 2.
    std::fs::remove_file(t.dir.path().join("demo/frontend/Dockerfile")).unwrap();
    let o = t.stack(&["build", "frontend"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("no Dockerfile in demo/frontend"),
        "{}",
        text(&o.stderr)
    );
    std::fs::remove_dir_all(t.dir.path().join("demo/frontend")).unwrap();
    let o = t.stack(&["build", "frontend"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("images.frontend.context: `demo/frontend` does not exist"),
        "{}",
        text(&o.stderr)
    );

    // Unknown image name: a usage error with a suggestion.
    let o = t.stack(&["build", "bakend"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("did you mean `backend`"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn daemon_unreachable_is_exit_3_with_a_hint() {
    // Needs no daemon: that is the point.
    let dir = tempfile::tempdir().unwrap();
    support::copy(
        &support::project_root().join("demo"),
        &dir.path().join("demo"),
    );
    std::fs::write(
        dir.path().join("stack.yaml"),
        "apiVersion: stack/v1\nimages:\n  frontend:\n    context: demo/frontend\n",
    )
    .unwrap();
    let o = std::process::Command::new(support::stack_bin())
        .current_dir(dir.path())
        .args(["build"])
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3));
    let err = text(&o.stderr);
    assert!(
        err.contains("the Docker daemon at unix:///nonexistent/docker.sock is not reachable")
            && err.contains("DOCKER_HOST"),
        "{err}"
    );
}

#[test]
fn sibling_context_found_case_insensitively_with_git_metadata() {
    let Some(t) = tree("") else { return };
    // The backend lives in a sibling repo spelled `Backend-Repo`; stack.yaml says `../backend-repo`.
    let platform = t.dir.path().join("platform");
    std::fs::create_dir_all(&platform).unwrap();
    let sibling = t.dir.path().join("Backend-Repo");
    support::copy(&t.dir.path().join("demo/backend"), &sibling);
    let git = |args: &[&str]| {
        let o = std::process::Command::new("git")
            .current_dir(&sibling)
            .args(args)
            .output()
            .unwrap();
        assert!(o.status.success(), "git {args:?}: {}", text(&o.stderr));
    };
    git(&["init", "-q", "-b", "main"]);
    git(&["add", "."]);
    git(&[
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@example.com",
        "commit",
        "-q",
        "-m",
        "init",
    ]);
    git(&[
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@example.com",
        "tag",
        "v1.2.3",
    ]);
    let yaml = std::fs::read_to_string(t.dir.path().join("stack.yaml"))
        .unwrap()
        .replace(
            "context: demo/backend\n    target: dev",
            "context: ../backend-repo\n    target: production",
        );
    std::fs::write(platform.join("stack.yaml"), yaml).unwrap();
    let build = || {
        let o = std::process::Command::new(support::stack_bin())
            .current_dir(&platform)
            .args(["build", "backend", "--format", "json"])
            .env("DOCKER_HOST", &t.docker_host)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
        let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let reference = report["images"][0]["reference"]
            .as_str()
            .unwrap()
            .to_owned();
        // The production stage bakes VERSION = `git describe --tags --always --dirty` of the sibling repo.
        let run = t.docker(&[
            "run",
            "--rm",
            &reference,
            "cat",
            "/app/public/api/version.json",
        ]);
        text(&run.stdout).trim().to_owned()
    };
    assert_eq!(build(), r#"{"version": "v1.2.3"}"#);
    std::fs::write(sibling.join("public/api/health.json"), "{}").unwrap();
    assert_eq!(build(), r#"{"version": "v1.2.3-dirty"}"#);
}

#[test]
fn kind_delivery_without_a_registry_uses_kind_load() {
    use stack::ops::build;
    use stack::tool::{Output as Out, RecordingRunner};
    let Some(t) = tree("") else { return };
    let yaml = std::fs::read_to_string(t.dir.path().join("stack.yaml"))
        .unwrap()
        .replace(
            "  registry:\n    hostPort: 25000\n",
            "  registry:\n    enabled: false\n",
        );
    std::fs::write(t.dir.path().join("stack.yaml"), yaml).unwrap();
    let project = stack::config::Project::load(t.dir.path()).unwrap();
    // kind itself is faked (its clusters cannot run here); it answers as `kind load` does on success.
    let runner = RecordingRunner::new();
    runner.on(&["kind", "load", "docker-image"], Out::default());
    runner.on(
        &["git"],
        Out {
            status: 128,
            ..Out::default()
        },
    );
    use stack::ops::events::Discard as Quiet;
    let mut host = stack::tool::Host::from_env(&runner);
    host.locate = |tool| Ok(std::path::PathBuf::from(tool.name()));
    host.docker_host = t.docker_host.clone();
    let opts = build::Options {
        production: false,
        images: vec!["frontend".into()],
        deliver: true,
        dry_run: false,
        context: None,
    };
    let report = build::run(&project, &opts, &host, &Quiet).unwrap();
    let reference = report.images[0].reference.clone();
    let loads: Vec<String> = runner
        .lines()
        .into_iter()
        .filter(|l| l.starts_with("kind "))
        .collect();
    assert_eq!(
        loads,
        [format!("kind load docker-image {reference} --name stack")]
    );
}

#[test]
fn a_context_of_the_project_root_never_sends_stack_state_or_env_files() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let write = |rel: &str, text: &str| {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    write(
        "stack.yaml",
        "apiVersion: stack/v1\nproject: p\nimages:\n  app:\n    context: .\ndev:\n  dotenv:\n    file: config/dev.env\n    configMap: app-env\n",
    );
    write("Dockerfile", "FROM busybox\nCOPY . /app\n");
    write("src/main.txt", "code\n");
    write(".env", "TOKEN=s3cret\n");
    write("config/dev.env", "TOKEN=s3cret\n");
    write(".stack/kubeconfig", "apiVersion: v1\n");
    write("sub/.env", "NOT_STACKS=1\n");
    let project = stack::config::Project::load(root).unwrap();
    let planned =
        stack::ops::build::plan(&project, &[], false, &stack::tool::RealRunner, None).unwrap();
    let files: Vec<&str> = planned[0]
        .context
        .entries
        .iter()
        .map(|e| e.rel.as_str())
        .collect();
    // The project's `.env`, the configured dotenv file and `.stack/` stay home; a `.env` of the
    // sources' own (not stack's) is the user's business.
    assert_eq!(
        files,
        ["Dockerfile", "src/main.txt", "stack.yaml", "sub/.env"]
    );
}

#[test]
fn doctor_and_build_reach_the_daemon_of_the_current_docker_context() {
    // colima / rootless / Desktop users have no DOCKER_HOST: the docker CLI follows the current
    // context in ~/.docker. stack must reach the same daemon for doctor and for build.
    let Some(t) = tree("") else { return };
    let cfg = tempfile::tempdir().unwrap();
    std::fs::write(
        cfg.path().join("config.json"),
        r#"{"auths": {}, "currentContext": "rig"}"#,
    )
    .unwrap();
    // contexts/meta/<sha256("rig")>/meta.json, as `docker context create rig --docker host=…` writes it.
    let digest = {
        use std::io::Write;
        let mut c = std::process::Command::new("sha256sum")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        c.stdin.take().unwrap().write_all(b"rig").unwrap();
        let out = c.wait_with_output().unwrap();
        text(&out.stdout)
            .split_whitespace()
            .next()
            .unwrap()
            .to_owned()
    };
    let meta = cfg.path().join("contexts/meta").join(&digest);
    std::fs::create_dir_all(&meta).unwrap();
    std::fs::write(
        meta.join("meta.json"),
        format!(
            r#"{{"Name":"rig","Metadata":{{}},"Endpoints":{{"docker":{{"Host":"{}","SkipTLSVerify":false}}}}}}"#,
            t.docker_host
        ),
    )
    .unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(support::stack_bin())
            .current_dir(t.dir.path())
            .args(args)
            .env_remove("DOCKER_HOST")
            .env_remove("DOCKER_CONTEXT")
            .env("DOCKER_CONFIG", cfg.path())
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    };
    let o = run(&["doctor", "--format", "json"]);
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", text(&o.stdout), text(&o.stderr)));
    let daemon = doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "docker daemon")
        .unwrap();
    assert_eq!(daemon["status"], "ok", "{daemon}");
    assert_eq!(
        daemon["path"].as_str().unwrap(),
        format!("{} (context rig (config.json))", t.docker_host)
    );
    let o = run(&["build", "backend", "--format", "json"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    // And with a context that names no daemon, both say so instead of guessing another socket.
    std::fs::write(
        cfg.path().join("config.json"),
        r#"{"currentContext": "gone"}"#,
    )
    .unwrap();
    let o = run(&["build", "backend"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("Docker context `gone`"),
        "{}",
        text(&o.stderr)
    );
}
