//! Everything a test run needs to know before it touches anything: the profile's release and
//! namespace, the env target and value layers, the chart (working tree or published), the
//! published image references of `ci`, and the generated values file.

use crate::config::Project;
use crate::error::StackError;
use crate::oci::Reference;
use crate::release::Release;
use crate::tool::{Cmd, Host, Tool};
use serde::Serialize;

use super::pull::RegistryLogin;
use super::{Options, Published};

/// `local` or `ci`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum ProfileName {
    /// Production-like images built from the working tree, the working-tree chart.
    #[default]
    Local,
    /// Published chart (OCI) and images; nothing is built.
    Ci,
}

impl ProfileName {
    pub fn as_str(self) -> &'static str {
        match self {
            ProfileName::Local => "local",
            ProfileName::Ci => "ci",
        }
    }
}

/// A resolved run.
pub struct Plan {
    pub profile: ProfileName,
    pub target: crate::cluster_target::Target,
    pub env: crate::envs::Target,
    pub release: String,
    pub namespace: String,
    /// The chart directory (relative to the root) or `oci://…`.
    pub chart: String,
    pub chart_version: Option<String>,
    pub plain_http: bool,
    /// In helm's order: the env's layers, the chart's lifecycle files, the generated file.
    pub layers: Vec<String>,
    pub generated_rel: String,
    /// `ci`: `(image name, reference)` from `--image` and `test.ci.images`.
    pub ci_images: Vec<(String, String)>,
}

impl Plan {
    /// The release's target (allowlist checked for `action`) and a client for it.
    pub fn connect(
        &self,
        root: &std::path::Path,
        action: &str,
    ) -> Result<(crate::release::KubeTarget, ::kube::Client), StackError> {
        let kube = crate::release::KubeTarget::new(
            root,
            &self.target.kubeconfig,
            &self.target.context,
            &self.namespace,
            &self.target.allowlist,
            action,
        )?;
        let client = crate::rt::until_cancelled("connecting to the cluster", kube.client())??;
        Ok((kube, client))
    }

    pub fn is_oci(&self) -> bool {
        self.chart.starts_with("oci://")
    }

    /// `helm upgrade --install` of the test release (`--version`, `--plain-http` for OCI).
    pub fn upgrade_cmd(&self, rel: &Release) -> Cmd {
        self.chart_flags(rel.upgrade_cmd(&self.chart, &self.layers))
    }

    /// `helm template` with the same chart, values and flags.
    pub fn template_cmd(&self, rel: &Release) -> Cmd {
        self.chart_flags(rel.template_cmd(&self.chart, &self.layers))
    }

    fn chart_flags(&self, mut cmd: Cmd) -> Cmd {
        if let Some(v) = &self.chart_version {
            cmd = cmd.args(["--version", v]);
        }
        if self.is_oci() && self.plain_http {
            cmd = cmd.arg("--plain-http");
        }
        cmd
    }
}

/// Resolves the profile: nothing is run or called here beyond reading files (and git, for
/// nothing), so every mistake is reported before anything changes.
/// `deploying`: false for `stack test clean` (no chart or images needed to remove a release).
pub fn resolve(
    project: &Project,
    host: &Host,
    opts: &Options,
    deploying: bool,
) -> Result<Plan, StackError> {
    let cfg = &project.config.test;
    let profile = match opts.profile {
        ProfileName::Local => &cfg.local,
        ProfileName::Ci => &cfg.ci,
    };
    let env = match &cfg.env {
        Some(name) => {
            let (targets, _) = crate::envs::targets(project, None)?;
            crate::envs::named(&targets, name)?.clone()
        }
        None => crate::envs::dev(project)?,
    };
    let render = |what: &str, tpl: &str| -> Result<String, StackError> {
        minijinja::Environment::new()
            .render_str(
                tpl,
                minijinja::context! { project => project.project_name(), profile => opts.profile.as_str() },
            )
            .map_err(|e| {
                StackError::config(
                    Some(crate::config::file_origin(crate::config::FILE_NAME)),
                    format!("test.{}.{what}: template `{tpl}`: {e}", opts.profile.as_str()),
                    "variables: project, profile",
                )
            })
    };
    let release = render(
        "release",
        profile.release.as_deref().unwrap_or("{{ project }}-test"),
    )?;
    let namespace = render(
        "namespace",
        profile.namespace.as_deref().unwrap_or(match opts.profile {
            ProfileName::Local => "{{ project }}-test-local",
            ProfileName::Ci => "{{ project }}-ci",
        }),
    )?;
    for (what, name) in [("release", &release), ("namespace", &namespace)] {
        if !is_dns_label(name) {
            return Err(StackError::config(
                Some(crate::config::file_origin(crate::config::FILE_NAME)),
                format!("test.{}.{what} renders to `{name}`, which is not a DNS label", opts.profile.as_str()),
                "lowercase letters, digits and `-`, at most 53 characters for a release, 63 for a namespace",
            ));
        }
    }
    let chart_dir = crate::envs::chart_dir(project)?;
    let (chart, chart_version, plain_http) = match opts.profile {
        ProfileName::Local => (chart_dir.clone(), None, false),
        ProfileName::Ci if !deploying => (String::new(), None, false),
        ProfileName::Ci => {
            let configured = profile.chart.as_ref();
            let reference = opts
                .chart
                .clone()
                .or_else(|| configured.map(|c| c.reference.clone()))
                .ok_or_else(|| StackError::Usage {
                    message: "`stack test ci` deploys the published chart, and none is named".into(),
                    hint: Some("pass --chart oci://REGISTRY/PATH/NAME --chart-version V, or set test.ci.chart in stack.yaml".into()),
                })?;
            if !reference.starts_with("oci://") {
                return Err(StackError::Usage {
                    message: format!("`stack test ci` deploys a published chart: `{reference}` is not an oci:// reference"),
                    hint: Some("use `stack test local` for the working-tree chart".into()),
                });
            }
            let version = opts
                .chart_version
                .clone()
                .or_else(|| configured.and_then(|c| c.version.clone()))
                .ok_or_else(|| StackError::Usage {
                    message: format!("no version of {reference} is named"),
                    hint: Some("pass --chart-version V (or set test.ci.chart.version)".into()),
                })?;
            // As Docker and containerd do, a registry on this machine speaks plain HTTP.
            let local = crate::oci::chart(&reference, &version)
                .map(|r| is_loopback(&r.registry))
                .unwrap_or(false);
            let plain = configured.is_some_and(|c| c.plain_http) || local;
            (reference, Some(version), plain)
        }
    };
    let mut ci_images: Vec<(String, String)> = profile.images.clone().into_iter().collect();
    for (name, reference) in &opts.images {
        if !project.config.images.contains_key(name) {
            return Err(StackError::Usage {
                message: format!("--image {name}={reference}: no image `{name}` in stack.yaml"),
                hint: Some(
                    "name an image of `images:` (its `values:` paths receive the reference)".into(),
                ),
            });
        }
        ci_images.retain(|(n, _)| n != name);
        ci_images.push((name.clone(), reference.clone()));
    }
    if opts.profile == ProfileName::Local && !opts.images.is_empty() {
        return Err(StackError::Usage {
            message: "--image is for `stack test ci` (published images); `stack test local` builds its own".into(),
            hint: None,
        });
    }
    let mut layers = env.layers.clone();
    for file in [
        "values.test.yaml".to_owned(),
        format!("values.test.{}.yaml", opts.profile.as_str()),
    ] {
        let rel = format!("{chart_dir}/{file}");
        if project.root.join(&rel).is_file() {
            layers.push(rel);
        }
    }
    let generated_rel = crate::state::State::rel_test_values(opts.profile.as_str());
    layers.push(generated_rel.clone());
    let cluster_opts = crate::cluster_target::Options {
        dry_run: false,
        context: opts.context.clone(),
    };
    let target = crate::cluster_target::resolve(project, host, &cluster_opts)?;
    crate::release::allowlist::check(
        &target.context,
        &target.allowlist,
        "deploy the test release",
    )?;
    Ok(Plan {
        profile: opts.profile,
        target,
        env,
        release,
        namespace,
        chart,
        chart_version,
        plain_http,
        layers,
        generated_rel,
        ci_images,
    })
}

/// `localhost[:port]`, `127.x.y.z[:port]`.
fn is_loopback(registry: &str) -> bool {
    let host = registry.rsplit_once(':').map_or(registry, |(h, _)| h);
    host == "localhost" || host.starts_with("127.")
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 53
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// Where each built image is pulled from.
pub fn built_references(images: &[crate::ops::build::ImageResult]) -> Vec<(String, String)> {
    crate::ops::build::delivered_references(images)
}

/// The generated values: image references at their `values:` paths, and build metadata at
/// `test.buildValues`.
pub fn generated_values(
    project: &Project,
    plan: &Plan,
    images: &[(String, String)],
    host: &Host,
) -> Result<serde_json::Value, StackError> {
    let mut values = crate::release::chart::image_values(project, images)?;
    let path = &project.config.test.build_values;
    if !path.is_empty() {
        let git = host
            .tool(Tool::Git)
            .ok()
            .map_or_else(crate::image::git::GitInfo::unknown, |g| {
                crate::image::git::read(host.runner, &g, &project.root)
            });
        let meta = serde_json::json!({
            "profile": plan.profile.as_str(),
            "sha": git.sha,
            "branch": git.branch,
            "describe": git.describe,
            "time": crate::image::git::utc_now(),
        });
        let mut node = values.as_object_mut().expect("image_values returns a map");
        let parts: Vec<&str> = path.split('.').collect();
        for part in &parts[..parts.len() - 1] {
            let entry = node
                .entry((*part).to_owned())
                .or_insert_with(|| serde_json::json!({}));
            node = entry.as_object_mut().ok_or_else(|| {
                StackError::config(
                    Some(crate::config::file_origin(crate::config::FILE_NAME)),
                    format!("test.buildValues `{path}` runs through an image's values path"),
                    "choose a path of its own, e.g. `global.build`",
                )
            })?;
        }
        node.insert(parts[parts.len() - 1].to_owned(), meta);
    }
    Ok(values)
}

/// Every container image the rendered manifests name (`release::manifest::images`), parsed as
/// the registry API needs it.
pub fn manifest_images(
    manifests: &[serde_json::Value],
) -> Result<Vec<(String, Reference)>, StackError> {
    crate::release::manifest::images(manifests)
        .into_iter()
        .map(|(owner, image)| {
            let reference = crate::oci::parse_image(&image).map_err(|m| StackError::Usage {
                message: format!("{owner}: image `{image}`: {m}"),
                hint: Some(
                    "the chart renders an image reference no registry can serve; check the image values"
                        .into(),
                ),
            })?;
            Ok((format!("image {image} ({owner})"), reference))
        })
        .collect()
}

/// Confirms each artifact in its registry (in parallel). A registry that cannot be asked is
/// exit 3 (unreachable), never a silent pass.
pub fn confirm(
    items: Vec<(String, Reference)>,
    registry: &RegistryLogin,
    plan: &Plan,
) -> Result<Vec<Published>, StackError> {
    let creds = |host: &str| registry.credentials_for(host);
    let results = crate::rt::until_cancelled(
        "the registry checks",
        crate::oci::check_all(
            &items,
            creds,
            |_registry: &str| plan.plain_http,
            std::time::Duration::from_secs(20),
        ),
    )?;
    let mut out = Vec::new();
    for ((what, reference), (_, result)) in items.iter().zip(results) {
        let shown = reference.to_string();
        match result {
            Ok(crate::oci::Existence::Found { digest }) => out.push(Published {
                what: what.clone(),
                reference: shown,
                status: "found".into(),
                digest,
            }),
            Ok(crate::oci::Existence::Missing) => out.push(Published {
                what: what.clone(),
                reference: shown,
                status: "missing".into(),
                digest: None,
            }),
            Err(e) => {
                return Err(StackError::Unreachable {
                    what: format!("the registry of {shown}"),
                    hint: e,
                })
            }
        }
    }
    Ok(out)
}

/// Opens the named forwards of `test.forwards` and records their local ports in `ctx`.
pub async fn open_forwards(project: &Project, ctx: &mut crate::check::Ctx) -> Result<(), String> {
    use crate::kube::forward::ForwardTarget;
    for (name, f) in &project.config.test.forwards {
        let target = match (&f.service, &f.deployment) {
            (Some(s), None) => ForwardTarget::Service {
                namespace: ctx.namespace.clone(),
                name: ctx.render(s)?,
            },
            (None, Some(d)) => ForwardTarget::Deployment {
                namespace: ctx.namespace.clone(),
                name: ctx.render(d)?,
            },
            _ => {
                return Err(format!(
                    "test.forwards.{name}: name exactly one of `service` and `deployment`"
                ))
            }
        };
        let port = crate::check::open_forward(
            &ctx.client,
            target,
            f.port,
            ctx.sink.clone(),
            ctx.shutdown.child_token(),
        )
        .await?;
        ctx.forwards.insert(name.clone(), port);
    }
    Ok(())
}
