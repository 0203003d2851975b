//! `stack promote`: golden tests of the format-preserving editor (the shapes that broke Flux and
//! Argo CD Image Updater write-back included), then the binary end to end on a copy of the
//! reference stack inside a real git repository (real git from PATH).

use crate::support;
use stack::yaml::edit::{Editor, Seg, Yaml};
use std::path::PathBuf;
use std::process::{Command, Output};

/// `text` with `path` (map keys) set to `value`, or the refusal as printed.
fn set(text: &str, path: &[&str], value: &str) -> Result<String, String> {
    let y = Yaml::parse("values.yaml", text).map_err(|e| e.to_string())?;
    let mut e = Editor::new(&y);
    e.set_path(0, path, value).map_err(|e| e.to_string())?;
    e.finish().map_err(|e| e.to_string())
}

#[test]
fn comments_above_beside_and_below_and_blank_lines_stay() {
    let text = "\
# header comment

image:
  # above the tag
  tag: v1.0.0   # beside, aligned
  # below the tag

  pullPolicy: IfNotPresent
# trailing comment
";
    assert_eq!(
        set(text, &["image", "tag"], "v2.0.0").unwrap(),
        text.replace("tag: v1.0.0   #", "tag: v2.0.0   #")
    );
}

#[test]
fn quoting_style_is_kept() {
    let text = "a: 'v1'\nb: \"v1\"\nc: v1\nd: \"1.0\" # numbers stay strings\n";
    assert_eq!(
        set(text, &["a"], "v2").unwrap(),
        "a: 'v2'\nb: \"v1\"\nc: v1\nd: \"1.0\" # numbers stay strings\n"
    );
    assert_eq!(
        set(text, &["b"], "v2").unwrap(),
        text.replace("b: \"v1\"", "b: \"v2\"")
    );
    assert_eq!(
        set(text, &["c"], "v2").unwrap(),
        text.replace("c: v1", "c: v2")
    );
    assert_eq!(
        set(text, &["d"], "1.1").unwrap(),
        text.replace("\"1.0\"", "\"1.1\"")
    );
    // Within single quotes a quote doubles; a plain scalar that would read as a number (or a
    // boolean, or a comment) gets double quotes instead.
    assert_eq!(
        set(text, &["a"], "it's").unwrap(),
        text.replace("'v1'", "'it''s'")
    );
    assert_eq!(
        set(text, &["c"], "1.10").unwrap(),
        text.replace("c: v1", "c: \"1.10\"")
    );
    assert_eq!(
        set(text, &["c"], "yes").unwrap(),
        text.replace("c: v1", "c: \"yes\"")
    );
    assert_eq!(
        set(text, &["c"], "a #b").unwrap(),
        text.replace("c: v1", "c: \"a #b\"")
    );
}

#[test]
fn flow_maps_and_block_scalars_are_kept() {
    // Flux #3284 / image-automation-controller #528: a block scalar collapsed to one line.
    let text = "\
image: {repository: ghcr.io/acme/web, tag: \"1.0\", pullPolicy: Always}
sidecars: [{name: log, tag: v1}]
config: |
  _format_version: \"2.1\"
  services:
  - name: example
    url: https://example.org
folded: >-
  kept
  as written
";
    assert_eq!(
        set(text, &["image", "tag"], "1.1").unwrap(),
        text.replace("tag: \"1.0\"", "tag: \"1.1\"")
    );
    let y = Yaml::parse("values.yaml", text).unwrap();
    let mut e = Editor::new(&y);
    let log = y
        .find(0, &[Seg::Key("sidecars"), Seg::Index(0), Seg::Key("tag")])
        .unwrap()
        .unwrap();
    assert!(e.set(log, "v2", "sidecars[0].tag").unwrap());
    assert_eq!(e.finish().unwrap(), text.replace("tag: v1}", "tag: v2}"));
    // A value written as a block scalar is not rewritten.
    let refused = set(text, &["folded"], "x").unwrap_err();
    assert!(
        refused.starts_with("values.yaml:9:3: ") && refused.contains("block"),
        "{refused}"
    );
}

#[test]
fn crlf_files_stay_crlf() {
    let text = "# windows\r\nimage:\r\n  tag: \"1.0\" # pinned\r\n  pullPolicy: Always\r\n";
    assert_eq!(
        set(text, &["image", "tag"], "1.1").unwrap(),
        "# windows\r\nimage:\r\n  tag: \"1.1\" # pinned\r\n  pullPolicy: Always\r\n"
    );
    // A key added to a CRLF file gets CRLF too, after the map's last line.
    assert_eq!(
        set(text, &["image", "digest"], "sha256:abc").unwrap(),
        format!("{text}  digest: sha256:abc\r\n")
    );
}

/// flux2 #1441: comments moved below the block they preceded, sequences re-indented.
#[test]
fn flux_1441_commented_blocks_and_sequence_indentation_stay() {
    let text = "\
  # a HelmRelease's values, as the issue showed them
values:
    # storage:
    #   multiWriteStorageClass: nfs

    ingress:
      host: lab
      extra:
        annotations:
          alb.ingress.kubernetes.io/tags: Env=LabQA
    database:
      connections:
        - name: readonlyRegular
          connectTimeoutMS: 60000
          socketTimeoutMS: 600000
    image:
      tag: 1.0.0
";
    assert_eq!(
        set(text, &["values", "image", "tag"], "1.1.0").unwrap(),
        text.replace("tag: 1.0.0", "tag: 1.1.0")
    );
}

/// The input of Argo CD Image Updater #1489 (and #1166): header comments, blank lines, an
/// anchor, a merge key, an aligned comment. Only the scalar changes; what aliases share is
/// refused at its line.
const IMAGE_UPDATER_1489: &str = "\
# This is a header comment describing the values file
# It spans multiple lines

# Global settings section
global:
  # Environment configuration
  environment: production
  debug: false

# Image configuration with anchors
images:
  # Primary application image
  app: &app-image
    repository: myapp
    tag: v1.0.0  # Current version
    pullPolicy: IfNotPresent

  # Sidecar image using alias
  sidecar:
    <<: *app-image
    tag: v1.0.0

# Database settings
database:
  host: localhost
  port: 5432

  # Connection pool settings
  pool:
    minSize: 5
    maxSize: 20
";

#[test]
fn image_updater_1489_only_the_scalar_changes_and_shared_values_are_refused() {
    let text = IMAGE_UPDATER_1489;
    // The sidecar sets its own tag after the merge: that one is editable.
    assert_eq!(
        set(text, &["images", "sidecar", "tag"], "v2.0.0").unwrap(),
        text.replace(
            "    <<: *app-image\n    tag: v1.0.0",
            "    <<: *app-image\n    tag: v2.0.0"
        )
    );
    // The anchored map is shared through the merge key.
    let e = set(text, &["images", "app", "tag"], "v2.0.0").unwrap_err();
    assert!(
        e.starts_with("values.yaml:15:10: ")
            && e.contains("under the anchor `&app-image` at values.yaml:13:8"),
        "{e}"
    );
    // The sidecar's repository comes through the merge key.
    let e = set(text, &["images", "sidecar", "repository"], "other").unwrap_err();
    assert!(
        e.starts_with("values.yaml:20:5: ") && e.contains("merge key"),
        "{e}"
    );
}

/// Argo CD Image Updater #1039 / #1055: jobs sharing one image through an anchor, a script as a
/// block scalar. The aliased image is refused at the alias; other edits keep the script.
#[test]
fn image_updater_1039_aliases_refused_scripts_kept() {
    let text = "\
image: &image
  repository: myapp
  tag: \"1.0\"
jobs:
  migrate:
    image: *image
    script: |
      set -e
      ./migrate --all
  worker:
    image:
      repository: myapp
      tag: \"1.0\"
";
    let e = set(text, &["jobs", "migrate", "image", "tag"], "1.1").unwrap_err();
    assert!(
        e.starts_with("values.yaml:6:12: ")
            && e.contains("alias")
            && e.contains("`&image` is at values.yaml:1:8"),
        "{e}"
    );
    assert_eq!(
        set(text, &["jobs", "worker", "image", "tag"], "1.1").unwrap(),
        text.replace("      tag: \"1.0\"", "      tag: \"1.1\"")
    );
}

// ---- the binary, on a copy of the reference stack in a real git repository ----

struct Repo {
    _dir: tempfile::TempDir,
    root: PathBuf,
    git: PathBuf,
}

impl Repo {
    /// The reference stack (stack.yaml, charts/, envs/) committed in a fresh repository, plus a
    /// Kustomize overlay, a Flux HelmRelease and an Argo CD Application for each of ci/kind and
    /// live/acme-shop.
    fn new() -> Option<Repo> {
        let git = support::find_tool("git");
        if !support::require("git", git.as_ref().map(|_| ()).map_err(Clone::clone)) {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("shop");
        std::fs::create_dir_all(&root).unwrap();
        for part in ["stack.yaml", "charts", "envs"] {
            support::copy(&support::project_root().join(part), &root.join(part));
        }
        std::fs::write(dir.path().join("gitconfig"), "").unwrap();
        let repo = Repo {
            _dir: dir,
            root,
            git: git.unwrap(),
        };
        repo.write(
            "deploy/overlays/acme-shop/kustomization.yaml",
            KUSTOMIZATION,
        );
        repo.write("deploy/overlays/acme-shop/release.yaml", HELM_RELEASE);
        repo.write("deploy/overlays/acme-shop/app.yaml", &app("0.1.0"));
        repo.write("deploy/overlays/kind/app.yaml", &app("0.2.0"));
        repo.git(&["init", "-q", "-b", "main"]);
        repo.git(&["add", "-A"]);
        repo.git(&["commit", "-q", "-m", "the reference stack"]);
        Some(repo)
    }

    fn write(&self, rel: &str, text: &str) {
        let p = self.root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.root.join(rel)).unwrap()
    }

    fn env(&self, c: &mut Command) {
        let cfg = self.root.parent().unwrap().join("gitconfig");
        c.env("GIT_CONFIG_GLOBAL", &cfg)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "Promoter")
            .env("GIT_AUTHOR_EMAIL", "promoter@example.com")
            .env("GIT_COMMITTER_NAME", "Promoter")
            .env("GIT_COMMITTER_EMAIL", "promoter@example.com")
            .env("STACK_GIT", &self.git)
            .env("NO_COLOR", "1");
    }

    fn git(&self, args: &[&str]) -> String {
        let mut c = Command::new(&self.git);
        c.arg("-C").arg(&self.root).args(args);
        self.env(&mut c);
        let out = c.output().unwrap();
        assert!(out.status.success(), "git {args:?}: {}", text(&out.stderr));
        text(&out.stdout)
    }

    fn stack(&self, args: &[&str]) -> Output {
        let mut c = Command::new(support::stack_bin());
        c.arg("-C").arg(&self.root).arg("promote").args(args);
        self.env(&mut c);
        c.output().unwrap()
    }

    fn head(&self) -> String {
        self.git(&["rev-parse", "HEAD"]).trim().to_owned()
    }

    fn trailer(&self, key: &str) -> String {
        self.git(&[
            "log",
            "-1",
            &format!("--format=%(trailers:key={key},valueonly)"),
        ])
        .trim()
        .to_owned()
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

const KUSTOMIZATION: &str = "\
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../../base
images:
  # the API and websocket servers
  - name: stack-demo/backend
    newTag: \"1.4.2\" # set by stack promote
  - name: stack-demo/frontend
    newTag: 1.4.2
";

/// A Flux HelmRelease with setter markers, the flux2 #1441 layout and a block scalar.
const HELM_RELEASE: &str = "\
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: shop
spec:
  values:
    # storage:
    #   multiWriteStorageClass: nfs

    frontend:
      image:
        repository: ghcr.io/acme/stack-demo/frontend # {\"$imagepolicy\": \"flux-system:frontend:name\"}
        tag: 1.4.2 # {\"$imagepolicy\": \"flux-system:frontend:tag\"}
    sidecar: ghcr.io/acme/stack-demo/backend:1.4.2 # {\"$imagepolicy\": \"flux-system:backend\"}
    database:
      connections:
        - name: readonlyRegular
          connectTimeoutMS: 60000
    config: |
      _format_version: \"2.1\"
      services:
      - name: example
";

fn app(revision: &str) -> String {
    format!(
        "\
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: shop
spec:
  project: default
  source:
    repoURL: ghcr.io/acme/charts
    chart: app
    targetRevision: {revision} # the chart version
  destination:
    namespace: shop
"
    )
}

#[test]
fn promote_refuses_without_a_verify_record_and_dry_run_writes_nothing() {
    let Some(repo) = Repo::new() else { return };
    let head = repo.head();
    let out = repo.stack(&["ci/kind", "live/acme-shop", "--commit"]);
    assert_eq!(code(&out), 2, "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("ci/kind has no verify record") && err.contains(".stack/verify/ci/kind.json"),
        "{err}"
    );
    assert!(err.contains("--force"), "{err}");

    let out = repo.stack(&[
        "ci/kind",
        "live/acme-shop",
        "--force",
        "--dry-run",
        "--commit",
    ]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(shown.contains("--- a/envs/live/acme-shop.yaml\n+++ b/envs/live/acme-shop.yaml\n"));
    assert!(
        shown.contains("-    tag: \"1.4.2\"\n+    tag: \"0.1.0\"\n"),
        "{shown}"
    );
    assert!(
        shown.contains("dry run: 4 files would change, nothing was written"),
        "{shown}"
    );
    assert_eq!(
        repo.git(&["status", "--porcelain"]),
        "",
        "a dry run writes nothing"
    );
    assert_eq!(repo.head(), head, "a dry run commits nothing");
}

#[test]
fn promote_between_env_files_and_a_kustomize_overlay_commits_with_trailers() {
    let Some(repo) = Repo::new() else { return };
    let before = repo.head();
    let out = repo.stack(&["ci/kind", "live/acme-shop", "--force", "--commit"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("wrote 4 files; committed "),
        "{}",
        text(&out.stdout)
    );
    // Only the scalars changed, every other byte as it was.
    let env = support::project_root().join("envs/live/acme-shop.yaml");
    assert_eq!(
        repo.read("envs/live/acme-shop.yaml"),
        std::fs::read_to_string(env)
            .unwrap()
            .replace("\"1.4.2\"", "\"0.1.0\"")
    );
    assert_eq!(
        repo.read("deploy/overlays/acme-shop/kustomization.yaml"),
        KUSTOMIZATION
            .replace("newTag: \"1.4.2\"", "newTag: \"0.1.0\"")
            .replace("newTag: 1.4.2", "newTag: 0.1.0")
    );
    assert_eq!(
        repo.read("deploy/overlays/acme-shop/release.yaml"),
        HELM_RELEASE
            .replace("tag: 1.4.2 #", "tag: 0.1.0 #")
            .replace("backend:1.4.2", "backend:0.1.0")
    );
    assert_eq!(
        repo.read("deploy/overlays/acme-shop/app.yaml"),
        app("0.2.0")
    );

    // One commit of exactly those files, with the trailers.
    assert_eq!(repo.git(&["rev-parse", "HEAD~1"]).trim(), before);
    let changed = repo.git(&["show", "--name-only", "--format=", "HEAD"]);
    assert_eq!(
        changed,
        "deploy/overlays/acme-shop/app.yaml\ndeploy/overlays/acme-shop/kustomization.yaml\ndeploy/overlays/acme-shop/release.yaml\nenvs/live/acme-shop.yaml\n"
    );
    assert_eq!(repo.trailer("Promoted-From"), "ci/kind");
    let source = repo.git(&["log", "-1", "--format=%H", "--", "envs/ci/kind.yaml"]);
    assert_eq!(repo.trailer("Source-Revision"), source.trim());
    assert_eq!(repo.trailer("Verify"), "not recorded");
    let subject = repo.git(&["log", "-1", "--format=%s"]);
    assert_eq!(
        subject.trim(),
        "promote ci/kind → live/acme-shop: backend 0.1.0, frontend 0.1.0, chart 0.2.0"
    );
    assert_eq!(repo.git(&["status", "--porcelain"]), "");

    // Again: nothing to promote, no commit.
    let head = repo.head();
    let out = repo.stack(&["ci/kind", "live/acme-shop", "--force", "--commit"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert!(
        text(&out.stdout)
            .contains("nothing to promote: live/acme-shop already runs what ci/kind runs"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(repo.head(), head, "a second promote commits nothing");
}

#[test]
fn promote_json_report_names_files_values_and_diff() {
    let Some(repo) = Repo::new() else { return };
    let out = repo.stack(&[
        "ci/kind",
        "live/acme-shop",
        "--force",
        "--dry-run",
        "--image",
        "frontend",
        "--format",
        "json",
    ]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["images"][0]["name"], "frontend");
    assert_eq!(report["images"].as_array().unwrap().len(), 1);
    assert!(
        report.get("chart").is_none(),
        "--image alone leaves the chart"
    );
    let files = report["files"].as_array().unwrap();
    let env = files
        .iter()
        .find(|f| f["path"] == "envs/live/acme-shop.yaml")
        .unwrap();
    assert_eq!(
        env["changes"],
        serde_json::json!([{
            "what": "frontend.image.tag",
            "at": "envs/live/acme-shop.yaml:12:10",
            "old": "1.4.2",
            "new": "0.1.0",
        }])
    );
    assert!(env["diff"]
        .as_str()
        .unwrap()
        .contains(" frontend:\n   image:\n-    tag: \"1.4.2\"\n+    tag: \"0.1.0\"\n"));
    let release = files
        .iter()
        .find(|f| f["path"] == "deploy/overlays/acme-shop/release.yaml")
        .unwrap();
    assert_eq!(
        release["changes"][0]["what"],
        "$imagepolicy flux-system:frontend:tag"
    );
    assert_eq!(report["dryRun"], true);
    assert_eq!(repo.git(&["status", "--porcelain"]), "");
}

#[test]
fn promote_on_a_branch_with_a_passing_verify_record() {
    let Some(repo) = Repo::new() else { return };
    // What `stack live verify` will record: this promotion needs no --force.
    repo.write(
        ".stack/verify/ci/kind.json",
        r#"{"passed": true, "at": "2026-01-02T03:04:05Z", "revision": "abc123", "images": {"backend": "0.1.0", "frontend": "0.1.0"}, "chart": "0.2.0"}"#,
    );
    let out = repo.stack(&["kind", "acme-shop", "--branch", "promote/acme-shop"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(
        repo.git(&["rev-parse", "--abbrev-ref", "HEAD"]).trim(),
        "promote/acme-shop"
    );
    assert_eq!(
        repo.git(&["rev-parse", "main"]).trim(),
        repo.git(&["rev-parse", "HEAD~1"]).trim()
    );
    assert_eq!(
        repo.trailer("Verify"),
        "passed at 2026-01-02T03:04:05Z (revision abc123)"
    );
    // A record for other versions does not count.
    repo.write(
        ".stack/verify/ci/kind.json",
        r#"{"passed": true, "images": {"backend": "0.0.9"}}"#,
    );
    repo.git(&["switch", "-q", "main"]);
    let out = repo.stack(&["kind", "acme-shop", "--commit"]);
    assert_eq!(code(&out), 2, "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("the verify record of ci/kind is for backend 0.0.9 (now 0.1.0)"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn promote_refuses_anchors_in_the_target_env_at_their_line() {
    let Some(repo) = Repo::new() else { return };
    repo.write(
        "envs/live/acme-shop.yaml",
        "# tenant acme, project shop\ningress:\n  host: shop.acme.example.com\nbackend-api:\n  image: &backend\n    tag: \"1.4.2\"\nbackend-ws:\n  image: *backend\nfrontend:\n  image:\n    tag: \"1.4.2\"\n",
    );
    let before = repo.read("envs/live/acme-shop.yaml");
    let out = repo.stack(&["ci/kind", "live/acme-shop", "--force"]);
    assert_eq!(code(&out), 2, "{}", text(&out.stdout));
    let err = text(&out.stderr);
    assert!(
        err.contains(
            "envs/live/acme-shop.yaml:6:10: `backend-api.image.tag` is under the anchor `&backend`"
        ),
        "{err}"
    );
    assert!(
        err.contains(
            "envs/live/acme-shop.yaml:8:10: `backend-ws.image.tag` runs through the alias"
        ),
        "{err}"
    );
    assert_eq!(
        repo.read("envs/live/acme-shop.yaml"),
        before,
        "nothing is written"
    );
    assert_eq!(
        repo.read("deploy/overlays/acme-shop/kustomization.yaml"),
        KUSTOMIZATION,
        "a refusal anywhere writes no file"
    );
}

#[test]
fn promote_usage_errors() {
    let Some(repo) = Repo::new() else { return };
    let out = repo.stack(&["ci/kind", "ci/kind"]);
    assert_eq!(code(&out), 2);
    let out = repo.stack(&["ci/kind", "live/acme-shop", "--image", "backnd"]);
    assert_eq!(code(&out), 2);
    assert!(
        text(&out.stderr).contains("did you mean `backend`?"),
        "{}",
        text(&out.stderr)
    );
    let out = repo.stack(&["nope", "live/acme-shop"]);
    assert_eq!(code(&out), 2);
    // local/dev pins no tags (`stack up` builds them): nothing tested to promote.
    let out = repo.stack(&["local/dev", "live/acme-shop", "--force"]);
    assert_eq!(code(&out), 2);
    assert!(
        text(&out.stderr).contains("local/dev pins no tag for image `backend`"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn promote_refuses_an_image_whose_aliases_run_different_tags() {
    let Some(repo) = Repo::new() else { return };
    let kind = repo.read("envs/ci/kind.yaml");
    repo.write(
        "envs/ci/kind.yaml",
        &kind.replacen(
            "backend-ws:\n  image:\n    tag: \"0.1.0\"",
            "backend-ws:\n  image:\n    tag: \"0.0.9\"",
            1,
        ),
    );
    let out = repo.stack(&["ci/kind", "live/acme-shop", "--force"]);
    assert_eq!(code(&out), 2, "{}", text(&out.stdout));
    let err = text(&out.stderr);
    assert!(
        err.contains("envs/ci/kind.yaml:3:5: image `backend` runs different tags in ci/kind")
            && err.contains("envs/ci/kind.yaml:6:5: backend-ws.image.tag = \"0.0.9\""),
        "{err}"
    );
}
