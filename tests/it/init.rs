//! `stack init github` end to end: the built binary in a fresh git repository; the workflow it
//! writes must pass real `actionlint` (pinned in xtask/pins.txt) with no findings, and a file the
//! user changed is never overwritten without --force. The generated workflow is pinned by a
//! snapshot (tests/it/snapshots/) so reviewers see exactly what users get.

use crate::support;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const WORKFLOW: &str = ".github/workflows/ci.yml";

/// A minimal project (stack.yaml only) in a fresh git repository.
struct Project {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

impl Project {
    fn new() -> Option<Project> {
        let git = support::find_tool("git");
        if !support::require("git", git.as_ref().map(|_| ()).map_err(Clone::clone)) {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("shop");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(
            root.join("stack.yaml"),
            "apiVersion: stack/v1\nproject: shop\n",
        )
        .unwrap();
        let out = Command::new(git.unwrap())
            .arg("-C")
            .arg(&root)
            .args(["init", "-q", "-b", "main"])
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .output()
            .unwrap();
        assert!(out.status.success(), "git init: {}", text(&out.stderr));
        Some(Project { _dir: dir, root })
    }

    fn init(&self, flags: &[&str]) -> Output {
        Command::new(support::stack_bin())
            .current_dir(&self.root)
            .args(["init", "github"])
            .args(flags)
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    }

    fn workflow(&self) -> PathBuf {
        self.root.join(WORKFLOW)
    }

    fn read(&self) -> String {
        std::fs::read_to_string(self.workflow()).unwrap()
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

fn mtime(p: &Path) -> std::time::SystemTime {
    std::fs::metadata(p).unwrap().modified().unwrap()
}

/// Runs actionlint on the repository's workflows; returns its exit code and output.
fn actionlint(bin: &Path, root: &Path) -> (i32, String) {
    let out = Command::new(bin)
        .current_dir(root)
        .args(["-no-color", "-verbose"])
        .output()
        .unwrap();
    (
        code(&out),
        format!("{}{}", text(&out.stdout), text(&out.stderr)),
    )
}

#[test]
fn init_github_writes_a_workflow_actionlint_accepts() {
    let lint = support::find_tool("actionlint");
    if !support::require(
        "actionlint",
        lint.as_ref().map(|_| ()).map_err(Clone::clone),
    ) {
        return;
    }
    let lint = lint.unwrap();
    let Some(p) = Project::new() else { return };
    let out = p.init(&[]);
    assert_eq!(code(&out), 0, "{}{}", text(&out.stdout), text(&out.stderr));
    assert!(
        text(&out.stdout).contains(&format!("{WORKFLOW}: created")),
        "{}",
        text(&out.stdout)
    );

    let (status, output) = actionlint(&lint, &p.root);
    assert_eq!(status, 0, "actionlint found problems:\n{output}");
    // `-verbose` names the file it linted: a pass that looked at nothing proves nothing.
    assert!(
        output.contains("ci.yml"),
        "actionlint linted no workflow:\n{output}"
    );
    assert!(
        output.contains("Found total 0 errors"),
        "actionlint's verdict:\n{output}"
    );

    // This build of stack knows no repository of its own (Cargo.toml has no `repository`), so
    // the binary cannot write the other form of the install variable: render it through the
    // library, as a build with a repository would, and lint that too.
    let ctx = stack::ops::init::Context {
        name: "\"shop CI\"".into(),
        default_branch: "\"trunk\"".into(),
        stack_git: "'https://example.com/acme/stack.git'".into(),
        registry_secrets: Vec::new(),
    };
    for (rel, text) in stack::ops::init::render(&ctx) {
        assert!(text.contains("${{ vars.STACK_GIT || 'https://example.com/acme/stack.git' }}"));
        std::fs::write(p.root.join(rel), text).unwrap();
    }
    let (status, output) = actionlint(&lint, &p.root);
    assert_eq!(status, 0, "actionlint found problems:\n{output}");

    // A project whose tests pull with credentials: the e2e step reads them from secrets.
    std::fs::write(
        p.root.join("stack.yaml"),
        "apiVersion: stack/v1\nproject: shop\ntest:\n  pullSecret:\n    registry: ghcr.io\n    usernameEnv: GHCR_USER\n    passwordEnv: GHCR_TOKEN\n",
    )
    .unwrap();
    let out = p.init(&["--force"]);
    assert_eq!(code(&out), 0, "{}{}", text(&out.stdout), text(&out.stderr));
    let workflow = p.read();
    assert!(
        workflow.contains("          GHCR_USER: ${{ secrets.GHCR_USER }}\n          GHCR_TOKEN: ${{ secrets.GHCR_TOKEN }}\n"),
        "{workflow}"
    );
    let (status, output) = actionlint(&lint, &p.root);
    assert_eq!(status, 0, "actionlint found problems:\n{output}");
}

#[test]
fn the_workflow_has_the_promised_shape() {
    let Some(p) = Project::new() else { return };
    assert_eq!(code(&p.init(&[])), 0);
    let workflow = p.read();
    insta::assert_snapshot!("init_github_ci_yml", workflow);
    let wf: serde_json::Value = serde_yaml_value(&workflow);
    assert_eq!(wf["permissions"], serde_json::json!({ "contents": "read" }));
    assert_eq!(wf["concurrency"]["cancel-in-progress"], true);
    assert!(wf["concurrency"]["group"]
        .as_str()
        .unwrap()
        .contains("github.ref"));
    for event in ["push", "pull_request"] {
        assert_eq!(
            wf["on"][event]["paths-ignore"],
            serde_json::json!(["**.md", "docs/**"]),
            "{event}"
        );
    }
    let jobs = &wf["jobs"];
    assert_eq!(jobs["e2e"]["needs"], "validate");
    for job in ["validate", "e2e"] {
        assert!(jobs[job]["timeout-minutes"].as_u64().is_some(), "{job}");
        assert!(
            jobs[job].get("permissions").is_none(),
            "{job} asks for more"
        );
    }
    let steps = |job: &str| jobs[job]["steps"].as_array().unwrap().clone();
    let runs = |job: &str| -> Vec<String> {
        steps(job)
            .iter()
            .filter_map(|s| s["run"].as_str().map(str::to_owned))
            .collect()
    };
    // Every action is pinned to a version.
    let pinned = regex::Regex::new(r"^actions/[a-z-]+@v\d+$").unwrap();
    for job in ["validate", "e2e"] {
        for s in steps(job) {
            if let Some(uses) = s["uses"].as_str() {
                assert!(pinned.is_match(uses), "{uses}");
            }
        }
    }
    assert!(runs("validate")
        .iter()
        .any(|r| r == "stack validate envs --format github"));
    let e2e = runs("e2e");
    assert!(e2e.iter().any(|r| r == "stack cluster up"));
    let test = e2e.iter().find(|r| r.starts_with("stack test ci")).unwrap();
    assert!(
        test.contains("--junit ") && test.contains("--artifacts "),
        "{test}"
    );
    let e2e_steps = steps("e2e");
    let upload = e2e_steps
        .iter()
        .find(|s| {
            s["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("actions/upload-artifact@"))
        })
        .unwrap();
    assert_eq!(upload["if"], "failure()");
    let down = e2e_steps.last().unwrap();
    assert_eq!(down["run"], "stack cluster down");
    assert!(down["if"].as_str().unwrap().starts_with("always()"));
    // Both jobs install stack through one clearly named step.
    for job in ["validate", "e2e"] {
        assert!(steps(job).iter().any(|s| s["name"]
            .as_str()
            .is_some_and(|n| n.starts_with("Install stack"))
            && s["run"]
                .as_str()
                .is_some_and(|r| r.contains("cargo install --locked --git \"$STACK_GIT\""))));
    }
}

/// The workflow as JSON, through stack's own YAML reader. It reads YAML 1.1 as Helm does, where a
/// bare `on` key is the boolean true; GitHub reads it as the string `on`, so it is put back.
fn serde_yaml_value(yaml: &str) -> serde_json::Value {
    let doc = stack::yaml::parse(&std::sync::Arc::from("ci.yml"), yaml).unwrap();
    let mut json = doc.root.value.to_json();
    let map = json.as_object_mut().unwrap();
    if let Some(on) = map.remove("true") {
        map.insert("on".into(), on);
    }
    json
}

#[test]
fn a_second_run_is_up_to_date_and_writes_nothing() {
    let Some(p) = Project::new() else { return };
    assert_eq!(code(&p.init(&[])), 0);
    let before = (p.read(), mtime(&p.workflow()));
    std::thread::sleep(std::time::Duration::from_millis(20));
    let out = p.init(&[]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        format!("{WORKFLOW}: up to date\n"),
        "stderr: {}",
        text(&out.stderr)
    );
    assert!(
        !text(&out.stderr).contains("write "),
        "no write step: {}",
        text(&out.stderr)
    );
    assert_eq!((p.read(), mtime(&p.workflow())), before);
}

#[test]
fn a_changed_file_is_refused_with_a_diff_and_overwritten_only_with_force() {
    let Some(p) = Project::new() else { return };
    assert_eq!(code(&p.init(&[])), 0);
    let generated = p.read();
    let edited = generated.replace("timeout-minutes: 60", "timeout-minutes: 90");
    assert_ne!(edited, generated);
    std::fs::write(p.workflow(), &edited).unwrap();

    let out = p.init(&[]);
    assert_eq!(code(&out), 1, "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(&format!("--- a/{WORKFLOW}\n+++ b/{WORKFLOW}\n")),
        "{stdout}"
    );
    assert!(stdout.contains("\n-    timeout-minutes: 90\n"), "{stdout}");
    assert!(stdout.contains("\n+    timeout-minutes: 60\n"), "{stdout}");
    assert!(stdout.contains("not overwritten"), "{stdout}");
    assert!(stdout.contains("--force"), "{stdout}");
    assert_eq!(p.read(), edited, "the user's file is unchanged");

    // JSON says the same, for scripts.
    let json = Command::new(support::stack_bin())
        .current_dir(&p.root)
        .args(["init", "github", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(code(&json), 1);
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(doc["files"][0]["status"], "refused");
    assert_eq!(doc["files"][0]["path"], WORKFLOW);
    assert_eq!(doc["steps"], serde_json::json!([]));

    // --dry-run --force shows the overwrite and still writes nothing.
    let out = p.init(&["--force", "--dry-run"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("would be overwritten"));
    assert_eq!(p.read(), edited);

    let out = p.init(&["--force"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(&format!("{WORKFLOW}: overwritten (--force)")));
    assert_eq!(p.read(), generated);
}

#[test]
fn dry_run_shows_the_file_and_writes_nothing() {
    let Some(p) = Project::new() else { return };
    let out = p.init(&["--dry-run"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(&format!("--- /dev/null\n+++ b/{WORKFLOW}\n")),
        "{stdout}"
    );
    assert!(stdout.contains("\n+name: \"shop CI\"\n"), "{stdout}");
    assert!(
        stdout.contains(&format!("{WORKFLOW}: would be created")),
        "{stdout}"
    );
    assert!(stdout.contains("dry run: nothing was written"), "{stdout}");
    assert!(
        text(&out.stderr).contains(&format!("write {}", p.workflow().display())),
        "the step is announced: {}",
        text(&out.stderr)
    );
    assert!(!p.root.join(".github").exists(), "nothing written");
}
