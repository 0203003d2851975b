//! `stack doctor`: is this machine ready? Each external tool (path and version, through the
//! Runner), the Docker daemon, the project's cluster (`/readyz` through the API), and the kernel's
//! inotify limits (file watching). Every problem comes with its fix. Read-only.

use crate::config::cluster::Provider;
use crate::config::Project;
use crate::ops::cluster::Host;
use crate::tool::{Cmd, Tool};
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    /// Something a command of this project will need is missing or broken.
    Problem,
    /// Not needed by this project's configuration, or only by some commands.
    Warning,
    Skipped,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Check {
    /// `tool`, `daemon`, `cluster` or `kernel`.
    pub group: &'static str,
    pub name: String,
    pub status: Status,
    /// The version, value or reason.
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub checks: Vec<Check>,
    pub problems: usize,
}

impl Report {
    pub fn has_problems(&self) -> bool {
        self.problems > 0
    }
}

/// inotify limits kind documents for clusters plus a file watcher (kind "known issues").
pub const MIN_WATCHES: u64 = 524_288;
pub const MIN_INSTANCES: u64 = 512;

pub fn run(project: &Project, host: &Host) -> anyhow::Result<Report> {
    let provider = project.config.cluster.provider;
    let mut checks = Vec::new();
    let tools = [
        (Tool::Helm, Need::Always, vec!["version", "--short"]),
        (
            Tool::Kubectl,
            Need::If(
                provider == Provider::K3d,
                "only `cluster down` of a k3d cluster runs it",
            ),
            vec!["version", "--client"],
        ),
        (
            Tool::Kind,
            Need::If(provider == Provider::Kind, "cluster.provider is not kind"),
            vec!["version"],
        ),
        (
            Tool::K3d,
            Need::If(provider == Provider::K3d, "cluster.provider is not k3d"),
            vec!["version"],
        ),
        (
            Tool::Tofu,
            Need::If(false, "only `stack preview` needs it"),
            vec!["version"],
        ),
        (Tool::Docker, Need::Always, vec!["--version"]),
        (Tool::Git, Need::Always, vec!["version"]),
    ];
    for (tool, need, args) in tools {
        checks.push(tool_check(host, tool, need, &args));
    }
    checks.push(docker_daemon(host));
    checks.push(cluster_check(project, host));
    for (key, min) in [
        ("max_user_watches", MIN_WATCHES),
        ("max_user_instances", MIN_INSTANCES),
    ] {
        checks.push(inotify_check(host, key, min));
    }
    let problems = checks
        .iter()
        .filter(|c| c.status == Status::Problem)
        .count();
    Ok(Report { checks, problems })
}

#[derive(Clone, Copy)]
enum Need {
    Always,
    /// Needed when true; otherwise the reason it is not.
    If(bool, &'static str),
}

fn tool_check(host: &Host, tool: Tool, need: Need, args: &[&str]) -> Check {
    let needed = match need {
        Need::Always => true,
        Need::If(b, _) => b,
    };
    let name = tool.name().to_owned();
    let path = match host.tool(tool) {
        Ok(p) => p,
        Err(e) => {
            let fix = match &e {
                crate::error::StackError::MissingTool { hint, .. } => hint.clone(),
                other => other.to_string(),
            };
            return match need {
                Need::If(false, why) => Check {
                    group: "tool",
                    name,
                    status: Status::Skipped,
                    detail: format!("not found; not needed here ({why})"),
                    path: None,
                    fix: Some(fix),
                },
                _ => Check {
                    group: "tool",
                    name,
                    status: Status::Problem,
                    detail: "not found".into(),
                    path: None,
                    fix: Some(fix),
                },
            };
        }
    };
    let cmd = Cmd::new(&path).args(args.iter().copied());
    let shown = path.display().to_string();
    match host.runner.output(&cmd) {
        Ok(out) if out.success() => Check {
            group: "tool",
            name,
            status: Status::Ok,
            detail: version_line(&out.stdout),
            path: Some(shown),
            fix: None,
        },
        Ok(out) => Check {
            group: "tool",
            name,
            status: if needed {
                Status::Problem
            } else {
                Status::Warning
            },
            detail: format!(
                "`{}` failed (exit {}): {}",
                cmd.short_line(),
                out.status,
                first_line(&out.stderr)
            ),
            path: Some(shown),
            fix: Some(format!(
                "reinstall {} or set ${} to a working binary",
                tool.name(),
                tool.env_var()
            )),
        },
        Err(e) => Check {
            group: "tool",
            name,
            status: if needed {
                Status::Problem
            } else {
                Status::Warning
            },
            detail: e.to_string(),
            path: Some(shown),
            fix: Some(format!(
                "reinstall {} or set ${} to a working binary",
                tool.name(),
                tool.env_var()
            )),
        },
    }
}

/// The useful part of a version command's output: `Client Version: v1.35.4` → `v1.35.4`.
/// Skips lines without a version (tofu prints warnings first when its CLI config is missing).
fn version_line(stdout: &str) -> String {
    let version = regex::Regex::new(r"\bv?\d+\.\d+").expect("valid regex");
    let line = stdout
        .lines()
        .map(str::trim)
        .find(|l| version.is_match(l))
        .map_or_else(|| first_line(stdout), str::to_owned);
    line.strip_prefix("Client Version: ")
        .unwrap_or(&line)
        .to_owned()
}

fn first_line(s: &str) -> String {
    s.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
        .to_owned()
}

/// The daemon `build` will use: the same endpoint (resolved as the docker CLI does) through the
/// same API client, so doctor never says OK while build cannot connect.
fn docker_daemon(host: &Host) -> Check {
    let name = "docker daemon".to_owned();
    let version = crate::rt::block_on(async {
        let d = crate::docker::Docker::connect(host.docker_endpoint()?).await?;
        d.server_version().await
    });
    let at = (!host.docker_host.is_empty())
        .then(|| format!("{} ({})", host.docker_host, host.docker_source));
    match version {
        Ok(v) => Check {
            group: "daemon",
            name,
            status: Status::Ok,
            detail: format!("Docker Engine {v}"),
            path: at,
            fix: None,
        },
        Err(e) => Check {
            group: "daemon",
            name,
            status: Status::Problem,
            detail: if host.docker_host.is_empty() {
                host.docker_source.clone()
            } else {
                e.to_string()
            },
            path: at,
            fix: Some(
                "start Docker (`sudo systemctl start docker`, colima, or Docker Desktop), or point DOCKER_HOST (or `docker context use`) at a running daemon; without sudo, add yourself to the `docker` group".into(),
            ),
        },
    }
}

fn cluster_check(project: &Project, host: &Host) -> Check {
    let target = match crate::cluster_target::resolve(
        project,
        host,
        &crate::cluster_target::Options::default(),
    ) {
        Ok(t) => t,
        Err(e) => {
            return Check {
                group: "cluster",
                name: "cluster".into(),
                status: Status::Problem,
                detail: e.to_string(),
                path: None,
                fix: e.hint().map(str::to_owned),
            }
        }
    };
    let name = format!("cluster {}", target.context);
    let kubeconfig = Some(target.kubeconfig.clone());
    if !target.kubeconfig_has_context() {
        let (status, fix) = match target.provider {
            Provider::Existing => (
                Status::Problem,
                "fix `cluster.context`, or point KUBECONFIG at the file that has it".to_owned(),
            ),
            _ => (
                Status::Warning,
                "run `stack cluster up` to create it".to_owned(),
            ),
        };
        return Check {
            group: "cluster",
            name,
            status,
            detail: format!("no context {} in {}", target.context, target.kubeconfig),
            path: kubeconfig,
            fix: Some(fix),
        };
    }
    let at = target.api();
    let ready = crate::rt::until_cancelled("asking the API server whether it is ready", async {
        let client = at.client().await.map_err(|e| e.to_string())?;
        crate::kube::readyz(&client).await
    });
    let fix = match target.provider {
        Provider::Existing => "check the cluster and your credentials for that context".into(),
        _ => "run `stack cluster status`; if its nodes are stopped, `stack cluster down && stack cluster up` recreates it".into(),
    };
    match ready {
        Ok(Ok(answer)) => Check {
            group: "cluster",
            name,
            status: Status::Ok,
            detail: format!("API server ready ({answer})"),
            path: kubeconfig,
            fix: None,
        },
        Ok(Err(why)) => Check {
            group: "cluster",
            name,
            status: Status::Problem,
            detail: why,
            path: kubeconfig,
            fix: Some(fix),
        },
        Err(e) => Check {
            group: "cluster",
            name,
            status: Status::Problem,
            detail: e.to_string(),
            path: kubeconfig,
            fix: None,
        },
    }
}

fn inotify_check(host: &Host, key: &str, min: u64) -> Check {
    let file = host.proc_root.join("sys/fs/inotify").join(key);
    let name = format!("inotify {key}");
    let value = std::fs::read_to_string(&file)
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok());
    match value {
        None => Check {
            group: "kernel",
            name,
            status: Status::Skipped,
            detail: format!("cannot read {} (not Linux?)", file.display()),
            path: None,
            fix: None,
        },
        Some(v) if v >= min => Check {
            group: "kernel",
            name,
            status: Status::Ok,
            detail: v.to_string(),
            path: None,
            fix: None,
        },
        Some(v) => Check {
            group: "kernel",
            name,
            status: Status::Problem,
            detail: format!("{v} (file watching and kind clusters need at least {min})"),
            path: None,
            fix: Some(format!(
                "sudo sysctl -w fs.inotify.{key}={min} && echo fs.inotify.{key}={min} | sudo tee -a /etc/sysctl.d/99-stack.conf"
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::version_line;

    #[test]
    fn version_lines() {
        assert_eq!(
            version_line("Client Version: v1.35.4\nKustomize Version: v5.7.1\n"),
            "v1.35.4"
        );
        assert_eq!(
            version_line("Warning: Unable to open CLI configuration file\n\nOpenTofu v1.10.6\non linux_amd64\n"),
            "OpenTofu v1.10.6"
        );
    }
}
