//! `stack release`: publishes the chart at a version, in an order that never leaves a tag for a
//! chart that is not in the registry.
//!
//! 1. The version: `--version` (SemVer, else exit 2), or the next one from the conventional
//!    commits since the newest tag matching `release.tagTemplate` (`feat` → minor, `!` or a
//!    `BREAKING CHANGE:` footer → major, anything else → patch). With no such tag the chart has
//!    never been released: its Chart.yaml `version` is released as it is. No commit since the tag:
//!    nothing to release (exit 0).
//! 2. Read-only checks before anything changes: the tag must not exist yet (unless the registry
//!    already holds exactly this release), Chart.lock must match Chart.yaml's dependencies
//!    (`--update-deps` runs `helm dependency update` instead), `helm package --version V
//!    --app-version V` into a temporary directory (the working tree is not touched), and the
//!    registry is asked for the version (`crate::oci`). Found with the same contents: already
//!    released, nothing pushed. Found with other contents: refused, exit 1 (versions are
//!    immutable). `helm package` is not reproducible (tar headers carry the packaging time), so
//!    "the same" is the chart layer's digest, else the digest of the files inside it (`content`).
//! 3. Then, through the step executor (`--dry-run` runs none of it, and shows the Chart.yaml diff):
//!    Chart.yaml `version`/`appVersion` by a format-preserving edit (`yaml::edit`), `helm registry
//!    login --password-stdin` when credentials are configured, `helm push`, and only after the push
//!    succeeded `git tag -a` (`--no-tag` skips it).

mod content;
mod lock;
pub mod version;

use crate::config::Project;
use crate::error::StackError;
use crate::ops::events::Sink;
use crate::ops::git::Git;
use crate::ops::helm_registry::HelmRegistry;
use crate::ops::plan::{Exec, StepReport};
use crate::tool::{Cmd, Host, Runner, Tool};
use crate::yaml::edit::{Editor, Yaml};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::time::Duration;
use version::Version;

/// How long the registry may take to answer one question.
const REGISTRY_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Default)]
pub struct Options {
    pub version: Option<String>,
    /// `oci://REGISTRY/PATH`; default `release.registry`.
    pub registry: Option<String>,
    pub dry_run: bool,
    pub update_deps: bool,
    pub no_tag: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Pushed (and tagged unless `--no-tag`); in a dry run: would be.
    Released,
    /// The registry already holds this version with the same contents: nothing pushed.
    AlreadyReleased,
    /// The registry holds this version with other contents: versions are immutable.
    Refused,
    /// No commit since the last release tag.
    NothingToRelease,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub chart: String,
    pub status: Status,
    /// The released version (the last one when there is nothing to release).
    pub version: String,
    /// `--version`, `commits` (since `previousTag`) or `Chart.yaml` (the first release).
    pub version_from: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_tag: Option<String>,
    /// Commits since `previousTag` that decided the version.
    pub commits: usize,
    /// `oci://REGISTRY/PATH/NAME:VERSION`.
    pub reference: String,
    /// The git tag (none with `--no-tag`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// The tag was created by this run.
    pub tagged: bool,
    /// sha256 of the packaged `.tgz` (the chart layer helm pushes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub package_digest: Option<String>,
    /// Digest of the files inside the package (see `content`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_digest: Option<String>,
    /// The chart layer already in the registry, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registry_layer_digest: Option<String>,
    /// The manifest digest `helm push` reported.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pushed_digest: Option<String>,
    /// The Chart.yaml change as a unified diff (none: it already says this version).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    /// Why nothing was released, or why it was refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub dry_run: bool,
    pub steps: Vec<StepReport>,
}

impl crate::ops::Report for Report {
    fn outcome(&self) -> crate::error::Outcome {
        if self.status == Status::Refused {
            crate::error::Outcome::Findings
        } else {
            crate::error::Outcome::Clean
        }
    }
}

pub fn run(
    project: &Project,
    opts: &Options,
    host: &Host,
    sink: &dyn Sink,
) -> Result<Report, StackError> {
    let cfg = &project.config.release;
    let registry = opts
        .registry
        .clone()
        .or_else(|| cfg.registry.clone())
        .ok_or_else(|| StackError::Usage {
            message: "no registry to release to".into(),
            hint: Some(
                "pass --registry oci://REGISTRY/PATH or set `release.registry` in stack.yaml"
                    .into(),
            ),
        })?;
    let registry = registry.trim_end_matches('/').to_owned();
    if !registry.starts_with("oci://") {
        return Err(StackError::Usage {
            message: format!("registry `{registry}` is not an OCI reference"),
            hint: Some(
                "write it as oci://REGISTRY/PATH (helm push appends the chart's name)".into(),
            ),
        });
    }
    let explicit = match &opts.version {
        Some(v) => Some(Version::parse(v).map_err(|m| StackError::Usage {
            message: format!("--version: {m}"),
            hint: Some("Helm chart versions are SemVer 2, e.g. --version 1.4.0".into()),
        })?),
        None => None,
    };
    let chart_rel = crate::envs::chart_dir(project)?;
    let chart_dir = project.root.join(&chart_rel);
    let chart = crate::values::chart::load(&chart_dir, &chart_rel)?;
    let chart_yaml_rel = format!("{chart_rel}/Chart.yaml");
    let chart_yaml_text = std::fs::read_to_string(chart_dir.join("Chart.yaml")).map_err(|e| {
        StackError::config(
            None,
            format!("cannot read {chart_yaml_rel}: {e}"),
            "check the file's permissions",
        )
    })?;

    let git = Git {
        bin: host.tool(Tool::Git)?,
        root: &project.root,
    };
    if !opts.no_tag || explicit.is_none() {
        git.require_release_repo(host.runner)?;
    }

    // 1. The version.
    let mut report = Report {
        chart: chart.name.clone(),
        status: Status::Released,
        version: String::new(),
        version_from: String::new(),
        previous_tag: None,
        commits: 0,
        reference: String::new(),
        tag: None,
        tagged: false,
        package_digest: None,
        content_digest: None,
        registry_layer_digest: None,
        pushed_digest: None,
        diff: None,
        message: None,
        dry_run: opts.dry_run,
        steps: Vec::new(),
    };
    let version = match explicit {
        Some(v) => {
            report.version_from = "--version".into();
            v
        }
        None => match last_release(&git, host.runner, &cfg.tag_template)? {
            None => {
                report.version_from = "Chart.yaml".into();
                Version::parse(&chart.version).map_err(|m| {
                    StackError::config(
                        Some(crate::config::file_origin(&chart_yaml_rel)),
                        format!("{chart_yaml_rel} version: {m}"),
                        "set a SemVer version in Chart.yaml, or pass --version",
                    )
                })?
            }
            Some((tag, last)) => {
                let messages = git.commit_messages(host.runner, &tag)?;
                report.previous_tag = Some(tag.clone());
                report.commits = messages.len();
                report.version_from = "commits".into();
                if messages.is_empty() {
                    report.status = Status::NothingToRelease;
                    report.version = last.to_string();
                    report.reference = format!("{registry}/{}:{last}", chart.name);
                    report.message = Some(format!("no commits since {tag}: nothing to release"));
                    return Ok(report);
                }
                let bump = messages
                    .iter()
                    .map(|m| version::bump_of(m))
                    .max()
                    .expect("not empty");
                last.bumped(bump)
            }
        },
    };
    let v = version.to_string();
    report.version = v.clone();
    report.reference = format!("{registry}/{}:{v}", chart.name);
    let oci_ref = crate::oci::chart(&format!("{registry}/{}", chart.name), &v).map_err(|m| {
        StackError::Usage {
            message: m,
            hint: Some("write the registry as oci://REGISTRY/PATH".into()),
        }
    })?;

    // 2. Read-only checks.
    let tag = if opts.no_tag {
        None
    } else {
        Some(render_tag(&cfg.tag_template, &v)?)
    };
    let tag_exists = match &tag {
        Some(t) => git.tag_exists(host.runner, t),
        None => false,
    };
    report.tag = tag.clone();
    let new_chart_yaml = edit_chart_yaml(&chart_yaml_rel, &chart_yaml_text, &v, cfg.app_version)?;
    report.diff = (new_chart_yaml != chart_yaml_text)
        .then(|| unified(&chart_yaml_rel, &chart_yaml_text, &new_chart_yaml));

    let exec = Exec::new(host.runner, sink, opts.dry_run);
    let helm = host.tool(Tool::Helm)?;
    let helm_registry = HelmRegistry::new(
        crate::state::State::new(&project.root).helm_registry_config(),
        cfg.plain_http,
    );
    if opts.update_deps {
        exec.run(
            "update the chart's dependencies and Chart.lock",
            &Cmd::new(&helm).args(["dependency", "update", &chart_dir.to_string_lossy()]),
        )
        .map_err(|e| StackError::tool(e, "fix the dependency helm names above, then run again"))?;
    } else {
        lock::verify(&chart)?;
    }
    let scratch = Scratch::new()?;
    let mut package = Cmd::new(&helm).args([
        "package",
        &chart_dir.to_string_lossy(),
        "--destination",
        &scratch.0.to_string_lossy(),
        "--version",
        &v,
    ]);
    if cfg.app_version {
        package = package.args(["--app-version", &v]);
    }
    host.runner.run(&package).map_err(|e| {
        StackError::tool(
            e,
            "a dependency missing under charts/? run `helm dependency build` or pass --update-deps",
        )
    })?;
    let tgz_path = scratch.0.join(format!("{}-{v}.tgz", chart.name));
    let tgz = std::fs::read(&tgz_path).map_err(|e| StackError::Internal {
        message: format!("helm package wrote no {}: {e}", tgz_path.display()),
    })?;
    let package_digest = format!("sha256:{:x}", Sha256::digest(&tgz));
    let content_digest = content::digest(&tgz).map_err(|m| StackError::Internal {
        message: format!("{}: {m}", tgz_path.display()),
    })?;
    report.package_digest = Some(package_digest.clone());
    report.content_digest = Some(content_digest.clone());

    let creds = credentials(cfg)?;
    let remote = crate::rt::until_cancelled("ask the registry", async {
        let unreachable = |e: String| StackError::Unreachable {
            what: format!("the registry of {}", report.reference),
            hint: e,
        };
        let found = crate::oci::exists(&oci_ref, creds.as_ref(), cfg.plain_http, REGISTRY_TIMEOUT)
            .await
            .map_err(unreachable)?;
        if found == crate::oci::Existence::Missing {
            return Ok(None);
        }
        let manifest =
            crate::oci::manifest(&oci_ref, creds.as_ref(), cfg.plain_http, REGISTRY_TIMEOUT)
                .await
                .map_err(unreachable)?;
        let Some(layer) = manifest
            .as_ref()
            .and_then(|m| m.layer(crate::oci::HELM_CHART_LAYER))
            .map(str::to_owned)
        else {
            return Ok(Some((String::new(), String::new())));
        };
        if layer == package_digest {
            return Ok(Some((layer, content_digest.clone())));
        }
        let blob = crate::oci::blob(
            &oci_ref,
            &layer,
            creds.as_ref(),
            cfg.plain_http,
            REGISTRY_TIMEOUT,
        )
        .await
        .map_err(unreachable)?;
        let theirs = content::digest(&blob).unwrap_or_default();
        Ok::<_, StackError>(Some((layer, theirs)))
    })??;
    let already = match remote {
        None => false,
        Some((layer, theirs)) => {
            report.registry_layer_digest = (!layer.is_empty()).then_some(layer.clone());
            if theirs != content_digest {
                report.status = Status::Refused;
                report.message = Some(if layer.is_empty() {
                    format!(
                        "{} exists and is not a Helm chart: versions are immutable",
                        report.reference
                    )
                } else {
                    format!(
                        "{} is already released with other contents (chart layer {layer}): versions are immutable; release a new version",
                        report.reference
                    )
                });
                return Ok(report);
            }
            true
        }
    };
    if tag_exists && !already {
        let t = tag.as_deref().unwrap_or_default();
        return Err(StackError::Usage {
            message: format!(
                "git tag {t} already exists, but {} is not in the registry",
                report.reference
            ),
            hint: Some(format!(
                "release another version, or push {v} without tagging: stack release --version {v} --no-tag"
            )),
        });
    }

    // 3. Changes, in order: Chart.yaml, push, then the tag.
    if already {
        report.status = Status::AlreadyReleased;
        report.message = Some(format!(
            "{} is already in the registry with these contents: nothing pushed",
            report.reference
        ));
    } else {
        if new_chart_yaml != chart_yaml_text {
            exec.write(
                &format!("set {chart_yaml_rel} to {v}"),
                &chart_dir.join("Chart.yaml"),
                &new_chart_yaml,
            )?;
        }
        if let Some(c) = &creds {
            helm_registry.login(
                &exec,
                &helm,
                &oci_ref.registry,
                c,
                &format!(
                    "check the credentials in ${} / ${}",
                    cfg.username_env.as_deref().unwrap_or_default(),
                    cfg.password_env.as_deref().unwrap_or_default()
                ),
            )?;
        }
        let mut push = helm_registry.env(Cmd::new(&helm).args([
            "push",
            &tgz_path.to_string_lossy(),
            &registry,
        ]));
        if cfg.plain_http {
            push = push.arg("--plain-http");
        }
        let pushed = exec
            .run(&format!("push {}", report.reference), &push)
            .map_err(|e| {
                StackError::tool(
                    e,
                    "nothing was tagged: fix the cause above, then run `stack release` again",
                )
            })?;
        report.pushed_digest = pushed.and_then(|o| {
            o.stdout.lines().chain(o.stderr.lines()).find_map(|l| {
                l.trim()
                    .strip_prefix("Digest:")
                    .map(|d| d.trim().to_owned())
            })
        });
    }
    if let (Some(t), false) = (&tag, tag_exists) {
        git.tag(&exec, t, &format!("release {} {v}", chart.name))?;
        report.tagged = !opts.dry_run;
    }
    report.steps = exec.steps();
    Ok(report)
}

/// Chart.yaml with `version` (and `appVersion`) set, every other byte kept.
fn edit_chart_yaml(
    file: &str,
    text: &str,
    version: &str,
    app_version: bool,
) -> Result<String, StackError> {
    let yaml = Yaml::parse(file, text)?;
    let mut editor = Editor::new(&yaml);
    editor.set_path(0, &["version"], version)?;
    if app_version {
        editor.set_path(0, &["appVersion"], version)?;
    }
    if editor.is_empty() {
        return Ok(text.to_owned());
    }
    editor.finish()
}

fn unified(path: &str, old: &str, new: &str) -> String {
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(&format!("a/{path}"), &format!("b/{path}"))
        .to_string()
}

fn render_tag(template: &str, version: &str) -> Result<String, StackError> {
    minijinja::Environment::new()
        .render_str(template, minijinja::context! { version => version })
        .map_err(|e| {
            StackError::config(
                Some(crate::config::file_origin(crate::config::FILE_NAME)),
                format!("release.tagTemplate: {e}"),
                "the one variable is `version`, e.g. `v{{ version }}`",
            )
        })
}

/// The newest tag the template could have written (by SemVer precedence) and its version.
fn last_release(
    git: &Git,
    runner: &dyn Runner,
    template: &str,
) -> Result<Option<(String, Version)>, StackError> {
    const MARK: &str = "\u{1}VERSION\u{1}";
    let shape = render_tag(template, MARK)?;
    let (prefix, suffix) = shape.split_once(MARK).ok_or_else(|| {
        StackError::config(
            Some(crate::config::file_origin(crate::config::FILE_NAME)),
            format!("release.tagTemplate `{template}` does not contain the version"),
            "e.g. `v{{ version }}`",
        )
    })?;
    let tags = git.ask(
        runner,
        &[
            "tag",
            "--list",
            &format!("{prefix}*{suffix}"),
            "--merged",
            "HEAD",
        ],
    );
    Ok(tags
        .unwrap_or_default()
        .lines()
        .filter_map(|t| {
            let v = t.strip_prefix(prefix)?.strip_suffix(suffix)?;
            Some((t.to_owned(), Version::parse(v).ok()?))
        })
        .max_by(|a, b| a.1.precedence(&b.1)))
}

/// Credentials from the environment variables `release` names (both, or neither).
fn credentials(
    cfg: &crate::config::release::ReleaseConfig,
) -> Result<Option<crate::oci::Credentials>, StackError> {
    let (Some(user_env), Some(pass_env)) = (&cfg.username_env, &cfg.password_env) else {
        if cfg.username_env.is_some() || cfg.password_env.is_some() {
            return Err(StackError::config(
                Some(crate::config::file_origin(crate::config::FILE_NAME)),
                "release: usernameEnv and passwordEnv go together",
                "name both environment variables, or neither",
            ));
        }
        return Ok(None);
    };
    let var = |name: &str, key: &str| {
        std::env::var(name)
            .ok()
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                StackError::config(
                    Some(crate::config::file_origin(crate::config::FILE_NAME)),
                    format!("release.{key}: the environment variable `{name}` is not set"),
                    format!(
                        "export {name} (in CI: from a repository secret) before `stack release`"
                    ),
                )
            })
    };
    Ok(Some(crate::oci::Credentials {
        username: var(user_env, "usernameEnv")?,
        password: var(pass_env, "passwordEnv")?,
    }))
}

/// What `stack release` asks git (read-only) and the tag (a step of the executor).
impl Git<'_> {
    fn require_release_repo(&self, runner: &dyn Runner) -> Result<(), StackError> {
        match self.ask(runner, &["rev-parse", "--is-inside-work-tree"]) {
            Some(s) if s == "true" => Ok(()),
            _ => Err(StackError::Usage {
                message: format!(
                    "stack release tags and reads commits with git: {} is not in a git repository",
                    self.root.display()
                ),
                hint: Some("run it in the repository, or pass both --version and --no-tag".into()),
            }),
        }
    }

    fn tag_exists(&self, runner: &dyn Runner, tag: &str) -> bool {
        self.ask(
            runner,
            &[
                "rev-parse",
                "--verify",
                "--quiet",
                &format!("refs/tags/{tag}"),
            ],
        )
        .is_some()
    }

    /// Full messages of the commits after `tag` up to HEAD, newest first.
    fn commit_messages(&self, runner: &dyn Runner, tag: &str) -> Result<Vec<String>, StackError> {
        let out = runner
            .run(
                &self
                    .cmd()
                    .args(["log", "--format=%B%x1e", &format!("{tag}..HEAD")]),
            )
            .map_err(|e| StackError::tool(e, "check that the tag is reachable from HEAD"))?;
        Ok(out
            .stdout
            .split('\u{1e}')
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .map(str::to_owned)
            .collect())
    }

    fn tag(&self, exec: &Exec, tag: &str, message: &str) -> Result<(), StackError> {
        exec.run(
            &format!("tag the release {tag}"),
            &self.cmd().args(["tag", "-a", tag, "-m", message]),
        )
        .map(|_| ())
        .map_err(|e| {
            StackError::tool(
                e,
                "the chart is pushed; create the tag by hand (or run `stack release` again: it is a no-op for the registry)",
            )
        })
    }
}

/// A temporary directory for the package, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Result<Scratch, StackError> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let dir =
            std::env::temp_dir().join(format!("stack-release-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| StackError::Internal {
            message: format!("cannot create {}: {e}", dir.display()),
        })?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
