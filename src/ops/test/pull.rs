//! Registry credentials for the test release, from the environment only: the
//! `kubernetes.io/dockerconfigjson` pull Secret (server-side applied, idempotent), the namespace's
//! default ServiceAccount patched to use it, `helm registry login --password-stdin` into a
//! registry config file of stack's own (never the user's; `ops::helm_registry`, shared with
//! `stack release`), and the credentials the OCI
//! existence checks use. The password never reaches argv, an event, a report or a log.

use super::profile::Plan;
use crate::config::Project;
use crate::error::StackError;
use crate::ops::helm_registry::HelmRegistry;
use crate::ops::plan::Exec;
use crate::tool::Cmd;
use base64::Engine;
use std::path::Path;

/// Credentials resolved from the environment variables stack.yaml names.
pub struct PullSecret {
    pub name: String,
    pub registry: String,
    pub username: String,
    password: String,
}

impl std::fmt::Debug for PullSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PullSecret")
            .field("name", &self.name)
            .field("registry", &self.registry)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

pub struct RegistryLogin {
    pub pull_secret: Option<PullSecret>,
    helm: HelmRegistry,
}

impl RegistryLogin {
    pub fn new(project: &Project, plan: &Plan) -> Result<Self, StackError> {
        let pull_secret = match &project.config.test.pull_secret {
            None => None,
            Some(cfg) => {
                let var = |name: &str, key: &str| {
                    std::env::var(name).ok().filter(|v| !v.is_empty()).ok_or_else(|| {
                        StackError::config(
                            Some(crate::config::file_origin(crate::config::FILE_NAME)),
                            format!("test.pullSecret.{key}: the environment variable `{name}` is not set"),
                            format!("export {name} (in CI: from a repository secret) before `stack test`"),
                        )
                    })
                };
                Some(PullSecret {
                    name: cfg.name.clone(),
                    registry: cfg.registry.clone(),
                    username: var(&cfg.username_env, "usernameEnv")?,
                    password: var(&cfg.password_env, "passwordEnv")?,
                })
            }
        };
        Ok(RegistryLogin {
            pull_secret,
            helm: HelmRegistry::new(
                crate::state::State::new(&project.root).helm_registry_config(),
                plan.plain_http,
            ),
        })
    }

    /// The values to mask wherever output is shown.
    pub fn secrets(&self) -> Vec<String> {
        self.pull_secret
            .iter()
            .flat_map(|s| [s.password.clone(), basic(&s.username, &s.password)])
            .collect()
    }

    pub fn credentials_for(&self, registry: &str) -> Option<crate::oci::Credentials> {
        let s = self.pull_secret.as_ref()?;
        same_registry(&s.registry, registry).then(|| crate::oci::Credentials {
            username: s.username.clone(),
            password: s.password.clone(),
        })
    }

    /// `helm registry login REGISTRY --username U --password-stdin` into stack's registry config
    /// (nothing without a pull secret).
    pub fn login(&self, exec: &Exec, helm: &Path) -> Result<(), StackError> {
        let Some(s) = &self.pull_secret else {
            return Ok(());
        };
        let creds = crate::oci::Credentials {
            username: s.username.clone(),
            password: s.password.clone(),
        };
        self.helm.login(
            exec,
            helm,
            &s.registry,
            &creds,
            "check the registry credentials in the environment",
        )
    }

    /// `cmd` with stack's helm registry config.
    pub fn helm_env(&self, cmd: Cmd) -> Cmd {
        self.helm.env(cmd)
    }
}

fn basic(username: &str, password: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"))
}

/// `docker.io`, `index.docker.io` and `registry-1.docker.io` are one registry.
fn same_registry(a: &str, b: &str) -> bool {
    let norm = |h: &str| match h.trim_end_matches('/') {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => "docker.io".to_owned(),
        other => other.to_ascii_lowercase(),
    };
    norm(a) == norm(b)
}

/// The pull Secret, server-side applied (stack is its one author), then the namespace's default
/// ServiceAccount given it as an image pull secret.
pub fn apply(exec: &Exec, plan: &Plan, s: &PullSecret) -> anyhow::Result<()> {
    let auth = basic(&s.username, &s.password);
    let config = serde_json::json!({
        "auths": { s.registry.clone(): { "username": s.username, "password": s.password, "auth": auth } }
    });
    let secret = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": s.name,
            "namespace": plan.namespace,
            "labels": { "app.kubernetes.io/managed-by": "stack" },
        },
        "type": "kubernetes.io/dockerconfigjson",
        "data": {
            ".dockerconfigjson": base64::engine::general_purpose::STANDARD.encode(config.to_string()),
        },
    });
    let at = plan.target.api();
    exec.apply(
        "registry pull Secret from the environment",
        &at,
        &secret,
        true,
    )?;
    let account = serde_json::json!({
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": { "name": "default", "namespace": plan.namespace },
        "imagePullSecrets": [ { "name": s.name } ],
    });
    exec.apply(
        "the default ServiceAccount pulls with it",
        &at,
        &account,
        false,
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn docker_hub_has_three_names() {
        assert!(super::same_registry("docker.io", "registry-1.docker.io"));
        assert!(super::same_registry("GHCR.io", "ghcr.io"));
        assert!(!super::same_registry("ghcr.io", "docker.io"));
    }
}
