//! A live target, resolved completely before anything touches a cluster: the env target (type
//! `live`), its declared context (allowlisted explicitly; never a local `kind-*`/`k3d-*` one),
//! kubeconfig, namespace, release, chart and version, and its env validated like `up`'s.

use crate::config::live::LiveChart;
use crate::config::Project;
use crate::envs::Target;
use crate::error::StackError;
use crate::release::{allowlist, chart, KubeTarget};
use crate::tool::Host;

/// Everything a live command needs, resolved and checked.
#[derive(Debug, Clone)]
pub struct LiveTarget {
    pub env: Target,
    pub kube: KubeTarget,
    pub release: String,
    /// `oci://…` or a chart directory relative to the project root.
    pub chart: String,
    pub version: Option<String>,
    pub plain_http: bool,
    pub timeout: std::time::Duration,
    pub retries: u32,
}

impl LiveTarget {
    /// The refusal for a command that needs the release installed (`hint`: what to do instead).
    pub fn not_installed(&self, hint: Option<String>) -> StackError {
        StackError::Usage {
            message: format!(
                "release `{}` is not installed in namespace `{}` on context `{}`",
                self.release,
                self.kube.namespace(),
                self.kube.context()
            ),
            hint,
        }
    }
}

/// Resolves `name` (a full target name or its unique last part) for `action` ("deploy", …).
/// Reads only project files: no tool runs and no API call is made.
pub fn resolve(
    project: &Project,
    host: &Host,
    name: &str,
    version: Option<&str>,
    action: &str,
) -> Result<LiveTarget, StackError> {
    let live = &project.config.live;
    let (targets, _) = crate::envs::targets(project, None)?;
    let env = crate::envs::named(&targets, name)?.clone();
    if env.env_type != "live" {
        return Err(StackError::Usage {
            message: format!(
                "`{}` is a `{}` target, not a live one",
                env.name, env.env_type
            ),
            hint: Some("live targets are the env files under envs/live/".into()),
        });
    }
    let declared = live.targets.get(&env.name).ok_or_else(|| {
        StackError::config(
            None,
            format!("live target `{}` declares no kube context", env.name),
            format!(
                "add `live.targets.{}.context` to stack.yaml (and allow it in `live.allowedContexts`)",
                env.name
            ),
        )
    })?;
    let context = declared.context.as_str();
    let local = allowlist::allowlist(&[]);
    if allowlist::is_allowed(context, &local) {
        return Err(StackError::config(
            None,
            format!(
                "live target `{}` names the local context `{context}`",
                env.name
            ),
            "a live target's context is a production cluster, never a local kind-*/k3d-* one",
        ));
    }
    // Only the project's explicit lists: the local defaults never allow a live deploy.
    let allowed = super::deploy::allowed(project);
    let vars = minijinja::context! {
        project => project.project_name(),
        r#type => env.env_type.clone(),
        name => env.name.rsplit('/').next().unwrap_or(&env.name).to_owned(),
    };
    let namespace_tpl = declared
        .namespace
        .as_deref()
        .or(live.namespace.as_deref())
        .unwrap_or("{{ project }}-{{ name }}");
    let namespace = minijinja::Environment::new()
        .render_str(namespace_tpl, vars)
        .map_err(|e| {
            StackError::config(
                None,
                format!("live namespace template: {e}"),
                "variables: project, type, name",
            )
        })?;
    let release = chart::name_from(
        project,
        &env,
        declared.release.as_deref().or(live.release.as_deref()),
    )?;
    let kubeconfig = match &declared.kubeconfig {
        Some(k) => k.clone(),
        None => host.user_kubeconfig.to_string_lossy().into_owned(),
    };
    let kube = KubeTarget::new(
        &project.root,
        &kubeconfig,
        context,
        &namespace,
        &allowed,
        &format!("{action} live target `{}`", env.name),
    )?;
    let LiveChart {
        reference,
        version: chart_version,
        plain_http,
    } = declared
        .chart
        .clone()
        .or_else(|| live.chart.clone())
        .ok_or_else(|| {
            StackError::config(
                None,
                format!("live target `{}` has no chart", env.name),
                "set `live.chart.reference` (oci://…) and `live.chart.version` in stack.yaml",
            )
        })?;
    let version = version.map(str::to_owned).or(chart_version);
    if reference.starts_with("oci://") && version.is_none() && matches!(action, "deploy" | "diff") {
        return Err(StackError::Usage {
            message: format!("which version of {reference} should `{}` run?", env.name),
            hint: Some("pass --version, or set `live.chart.version` in stack.yaml".into()),
        });
    }
    Ok(LiveTarget {
        env,
        kube,
        release,
        chart: reference,
        version,
        plain_http,
        timeout: std::time::Duration::from_secs(live.timeout_seconds),
        retries: live.retries,
    })
}

/// The target's env must be valid before a release is touched: the same checks as
/// `stack validate envs`, judged on the target's own files.
pub fn validate_env(project: &Project, host: &Host, t: &LiveTarget) -> Result<(), StackError> {
    let checked = crate::ops::validate::run(
        project,
        &crate::ops::validate::Options {
            target: Some(t.env.name.clone()),
            ..Default::default()
        },
        host.runner,
    )?;
    if !checked.has_errors() {
        return Ok(());
    }
    let first: Vec<String> = checked
        .findings
        .iter()
        .filter(|f| f.severity == crate::diag::Severity::Error)
        .take(5)
        .map(|f| match &f.location {
            Some(l) => format!("  {l}: {}", f.message),
            None => format!("  {}", f.message),
        })
        .collect();
    Err(StackError::config(
        None,
        format!(
            "the live env `{}` has errors:\n{}",
            t.env.name,
            first.join("\n")
        ),
        "fix them (`stack validate envs` lists them all), then deploy again",
    ))
}
