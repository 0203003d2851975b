//! The one release layer: every stage that deploys, inspects or removes a Helm release goes
//! through here (up and down today; test, preview and live next).
//!
//! Invariants:
//! - A [`KubeTarget`] (kubeconfig file, context, namespace) exists only after the context passed
//!   the allowlist check, and it is the only builder of helm's `--kube-context`/`--kubeconfig` and
//!   of kubectl's `--kubeconfig`/`--context` (tidy test): no call can fall back to the user's
//!   current context.
//! - A release is removed only when its ownership [`Record`] matches the deployed release's
//!   identity (`info.first_deployed`): a same-named release somebody else installed survives.
//! - Release names are rendered in one place ([`chart::name`]).

pub mod allowlist;
pub mod chart;
pub mod manifest;
mod record;

pub use record::{Intent, Record};

use crate::error::StackError;
use crate::ops::plan::Exec;
use crate::tool::{Cmd, Host, Tool};
use std::path::{Path, PathBuf};

/// Where a release lives: a kubeconfig file, a context in it, a namespace. Built only through
/// [`KubeTarget::new`], which refuses contexts outside the allowlist.
#[derive(Clone, Debug)]
pub struct KubeTarget {
    /// Working directory for tools (the project root).
    root: PathBuf,
    /// As passed to tools (relative to `root` for stack's own kubeconfig).
    kubeconfig: String,
    context: String,
    namespace: String,
}

impl KubeTarget {
    /// `action` names what is about to happen, for the refusal ("deploy", "uninstall").
    pub fn new(
        root: &Path,
        kubeconfig: &str,
        context: &str,
        namespace: &str,
        allowlist: &[String],
        action: &str,
    ) -> Result<KubeTarget, StackError> {
        allowlist::check(context, allowlist, action)?;
        Ok(KubeTarget {
            root: root.to_path_buf(),
            kubeconfig: kubeconfig.to_owned(),
            context: context.to_owned(),
            namespace: namespace.to_owned(),
        })
    }

    pub fn context(&self) -> &str {
        &self.context
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The kubeconfig file as an absolute path.
    pub fn kubeconfig_path(&self) -> PathBuf {
        self.root.join(&self.kubeconfig)
    }

    /// `helm <args> -n NS --kube-context CTX --kubeconfig FILE`, run from the project root.
    pub fn helm(&self, helm: &Path, args: &[&str]) -> Cmd {
        Cmd::new(helm)
            .cwd(&self.root)
            .args(args.iter().copied())
            .args(["-n", &self.namespace])
            .args(["--kube-context", &self.context])
            .args(["--kubeconfig", &self.kubeconfig])
    }

    /// `kubectl --kubeconfig FILE --context CTX -n NS`, for what the API client does not offer.
    pub fn kubectl(&self, kubectl: &Path) -> Cmd {
        probe_kubectl(kubectl, &self.root, &self.kubeconfig, &self.context)
            .args(["-n", &self.namespace])
    }

    /// A Kubernetes API client for exactly this kubeconfig file and context.
    pub async fn client(&self) -> Result<::kube::Client, StackError> {
        crate::kube::client(&self.kubeconfig_path(), &self.context).await
    }
}

/// kubectl pinned to a kubeconfig file and context (the cluster's API itself goes through
/// `crate::kube`; this is for what it does not offer).
pub fn probe_kubectl(kubectl: &Path, root: &Path, kubeconfig: &str, context: &str) -> Cmd {
    Cmd::new(kubectl)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--context")
        .arg(context)
        .cwd(root)
}

/// `kubectl config <args> --kubeconfig FILE`: edits of a kubeconfig file stack owns (no API
/// exists for a local file; kubectl is the canonical editor).
pub fn kubeconfig_edit(kubectl: &Path, root: &Path, kubeconfig: &str, args: &[&str]) -> Cmd {
    Cmd::new(kubectl)
        .arg("config")
        .args(args.iter().copied())
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .cwd(root)
}

/// What `helm status -o json` says of a release.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub revision: u64,
    /// `deployed`, `failed`, `pending-upgrade`, …
    pub status: String,
    /// When the release was first installed: its identity across upgrades.
    pub first_deployed: String,
    /// When the deployed revision was installed (RFC 3339, as helm prints it).
    pub last_deployed: String,
    /// The revision's description (`--description`; stack puts its upgrade token there).
    pub description: String,
}

/// One release on a target.
pub struct Release<'a> {
    pub target: &'a KubeTarget,
    pub name: String,
    helm: PathBuf,
    host: &'a Host<'a>,
}

/// What `uninstall` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Uninstalled {
    Removed,
    NotInstalled,
    /// `--dry-run`: the command that would run.
    Would(String),
}

impl<'a> Release<'a> {
    pub fn new(target: &'a KubeTarget, name: &str, host: &'a Host<'a>) -> Result<Self, StackError> {
        Ok(Release {
            target,
            name: name.to_owned(),
            helm: host.tool(Tool::Helm)?,
            host,
        })
    }

    pub fn helm_path(&self) -> &Path {
        &self.helm
    }

    pub fn status_cmd(&self) -> Cmd {
        self.target
            .helm(&self.helm, &["status", &self.name, "-o", "json"])
    }

    /// The release as deployed; None when it is not installed (or helm cannot say).
    pub fn status(&self) -> Option<Status> {
        let out = self.host.runner.output(&self.status_cmd()).ok()?;
        if !out.success() {
            return None;
        }
        let doc: serde_json::Value = serde_json::from_str(&out.stdout).ok()?;
        Some(Status {
            revision: doc["version"].as_u64()?,
            status: doc["info"]["status"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            first_deployed: doc["info"]["first_deployed"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            last_deployed: doc["info"]["last_deployed"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            description: doc["info"]["description"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        })
    }

    /// `helm upgrade --install NAME CHART --create-namespace -f …` (not run).
    pub fn upgrade_cmd(&self, chart: &str, values_files: &[String]) -> Cmd {
        let mut cmd = self.target.helm(
            &self.helm,
            &[
                "upgrade",
                "--install",
                &self.name,
                chart,
                "--create-namespace",
            ],
        );
        for f in values_files {
            cmd = cmd.args(["-f", f]);
        }
        cmd
    }

    /// `helm template NAME CHART -f …` (not run): the manifests [`Release::upgrade_cmd`] with
    /// the same chart and values files would apply (same release name and namespace).
    pub fn template_cmd(&self, chart: &str, values_files: &[String]) -> Cmd {
        let mut cmd = self
            .target
            .helm(&self.helm, &["template", &self.name, chart]);
        for f in values_files {
            cmd = cmd.args(["-f", f]);
        }
        cmd
    }

    /// `helm get manifest NAME`: what the deployed revision applied; `None` when the release is
    /// not installed.
    pub fn manifest(&self) -> Result<Option<String>, StackError> {
        self.manifest_at(None)
    }

    /// `helm get manifest NAME [--revision N]`: what that revision applied; `None` when the
    /// release (or revision) is not there.
    pub fn manifest_at(&self, revision: Option<u64>) -> Result<Option<String>, StackError> {
        let rev = revision.map(|r| r.to_string());
        let mut args = vec!["get", "manifest", self.name.as_str()];
        if let Some(r) = &rev {
            args.extend(["--revision", r.as_str()]);
        }
        let cmd = self.target.helm(&self.helm, &args);
        let out = self
            .host
            .runner
            .output(&cmd)
            .map_err(|e| StackError::tool(e, "is helm installed? (`stack doctor`)"))?;
        if out.success() {
            return Ok(Some(out.stdout));
        }
        if out.stderr.contains("release: not found") {
            return Ok(None);
        }
        Err(StackError::tool(
            crate::tool::RunError::Failed {
                tool: cmd.tool_name(),
                cmd: cmd.to_string(),
                output: out,
            },
            "can helm reach the cluster? (`helm status`)",
        ))
    }

    /// Runs an upgrade built by [`Release::upgrade_cmd`] through the stage's executor (announced,
    /// output streamed) and returns the deployed status; `None` in a dry run.
    pub fn upgrade(&self, cmd: &Cmd, exec: &Exec) -> Result<Option<Status>, StackError> {
        let why = format!("install or upgrade release {}", self.name);
        if exec
            .run(&why, cmd)
            .map_err(|e| {
                StackError::tool(
                    e,
                    "`stack validate envs --helm` reproduces template errors offline",
                )
            })?
            .is_none()
        {
            return Ok(None);
        }
        self.status().map(Some).ok_or_else(|| StackError::Internal {
            message: format!(
                "helm upgrade of {} succeeded but helm status finds no release",
                self.name
            ),
        })
    }

    /// Uninstalls the release only if `record` says stack installed this very release (same
    /// `first_deployed`); a release stack did not install is refused (exit 2), never touched.
    pub fn uninstall(
        &self,
        record: Option<&Record>,
        exec: &Exec,
    ) -> Result<Uninstalled, StackError> {
        let Some(status) = self.status() else {
            return Ok(Uninstalled::NotInstalled);
        };
        let ours = record.is_some_and(|r| {
            !r.first_deployed.is_empty() && r.first_deployed == status.first_deployed
        });
        if !ours {
            return Err(StackError::Usage {
                message: format!(
                    "refusing to uninstall release `{}` in namespace `{}` on context `{}`: stack did not install it (no ownership record matches the release installed {})",
                    self.name, self.target.namespace, self.target.context, status.first_deployed
                ),
                hint: Some(format!(
                    "if it really is yours, remove it with helm: `{}`",
                    self.uninstall_cmd().short_line()
                )),
            });
        }
        let cmd = self.uninstall_cmd();
        let ran = exec
            .run(&format!("uninstall release {}", self.name), &cmd)
            .map_err(|e| StackError::tool(e, "check the cluster with `stack cluster status`"))?;
        Ok(match ran {
            Some(_) => Uninstalled::Removed,
            None => Uninstalled::Would(cmd.short_line()),
        })
    }

    fn uninstall_cmd(&self) -> Cmd {
        self.target
            .helm(&self.helm, &["uninstall", &self.name, "--wait"])
    }

    /// `helm history -o json`: every revision, oldest first.
    pub fn history(&self) -> Result<Vec<serde_json::Value>, StackError> {
        let cmd = self
            .target
            .helm(&self.helm, &["history", &self.name, "-o", "json"]);
        let out = self
            .host
            .runner
            .run(&cmd)
            .map_err(|e| StackError::tool(e, "is the release installed? (`helm list`)"))?;
        serde_json::from_str(&out.stdout).map_err(|e| StackError::Internal {
            message: format!("helm history -o json printed something that is not JSON: {e}"),
        })
    }

    /// `helm rollback NAME REVISION --wait`, through the stage's executor.
    pub fn rollback(&self, revision: u64, exec: &Exec) -> Result<(), StackError> {
        let rev = revision.to_string();
        let cmd = self
            .target
            .helm(&self.helm, &["rollback", &self.name, &rev, "--wait"]);
        exec.run(
            &format!("roll {} back to revision {revision}", self.name),
            &cmd,
        )
        .map(|_| ())
        .map_err(|e| StackError::tool(e, "see `helm history` for the revisions"))
    }
}

/// How the release's Deployments ended up.
#[derive(Debug, serde::Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum Rollout {
    Ready {
        seconds: f64,
    },
    /// Named reasons, and where the diagnostics were written.
    Failed {
        failures: Vec<crate::kube::Failure>,
        diagnostics: String,
    },
    /// `--dry-run`: nothing was waited for.
    NotWaited,
}

impl Release<'_> {
    /// Watches the release's workloads (selector `app.kubernetes.io/instance=<release>`) until
    /// ready, emitting progress events; on a named failure or `timeout`, writes diagnostics
    /// (events, pods, logs, `helm status`) into `diagnostics` (shown relative to the project
    /// root). Every stage that deploys (up, test, preview, live) waits through this.
    pub fn wait(
        &self,
        diagnostics: &Path,
        timeout: std::time::Duration,
        sink: &dyn crate::ops::events::Sink,
    ) -> anyhow::Result<Rollout> {
        use crate::ops::events::Event;
        let release = self.name.as_str();
        let namespace = self.target.namespace();
        let selector = format!("app.kubernetes.io/instance={release}");
        let start = std::time::Instant::now();
        crate::rt::until_cancelled("the rollout", async {
            let client = self.target.client().await?;
            let progress = |p: crate::kube::ResourceProgress| sink.emit(Event::Rollout(p));
            match crate::kube::wait::wait_ready(&client, namespace, &selector, timeout, &progress)
                .await?
            {
                crate::kube::wait::Readiness::Ready => Ok(Rollout::Ready {
                    seconds: start.elapsed().as_secs_f64(),
                }),
                crate::kube::wait::Readiness::Failed(failures) => {
                    let dir = diagnostics.to_path_buf();
                    let helm = crate::kube::diagnostics::HelmStatus {
                        runner: self.host.runner,
                        cmd: self.status_cmd(),
                    };
                    crate::kube::diagnostics::collect(
                        &client,
                        namespace,
                        &selector,
                        &dir,
                        Some(&helm),
                    )
                    .await?;
                    let root = &self.target.root;
                    let shown = dir.strip_prefix(root).unwrap_or(&dir).display().to_string();
                    Ok(Rollout::Failed {
                        failures,
                        diagnostics: shown,
                    })
                }
            }
        })?
    }
}
