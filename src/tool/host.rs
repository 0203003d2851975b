//! The machine-facing inputs of an op, as one value: the process runner, tool discovery, and the
//! bits of the environment ops read. Tests build their own (a recording runner, fixed tool paths).

use super::{Runner, Tool};
use crate::error::StackError;
use std::path::PathBuf;

/// Where the machine-facing inputs come from: the process runner, tool discovery, and the bits of
/// the environment the providers read. `Host::from_env` is the real one; tests build their own.
pub struct Host<'a> {
    pub runner: &'a dyn Runner,
    pub locate: fn(Tool) -> Result<PathBuf, StackError>,
    /// kind's Docker network (`KIND_EXPERIMENTAL_DOCKER_NETWORK`, default `kind`).
    pub kind_network: String,
    /// The user's kubeconfig file, for the `existing` provider (first entry of `$KUBECONFIG`, else
    /// `~/.kube/config`). Always passed explicitly with `--kubeconfig`.
    pub user_kubeconfig: PathBuf,
    /// Where `/proc` is (doctor reads the inotify limits there).
    pub proc_root: PathBuf,
    /// The Docker API endpoint, resolved as the docker CLI resolves it (`docker::endpoint`);
    /// empty when that failed, with the reason in `docker_source`.
    pub docker_host: String,
    /// How `docker_host` was chosen (`DOCKER_HOST`, `context colima (config.json)`, …).
    pub docker_source: String,
}

impl<'a> Host<'a> {
    pub fn from_env(runner: &'a dyn Runner) -> Self {
        let kind_network = std::env::var("KIND_EXPERIMENTAL_DOCKER_NETWORK")
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "kind".into());
        let user_kubeconfig = std::env::var_os("KUBECONFIG")
            .and_then(|v| std::env::split_paths(&v).find(|p| !p.as_os_str().is_empty()))
            .unwrap_or_else(|| {
                PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".kube/config")
            });
        let (docker_host, docker_source) =
            match crate::docker::endpoint::resolve(&crate::docker::endpoint::Inputs::from_env()) {
                Ok(e) => (e.host, e.source),
                Err(e) => (String::new(), e.to_string()),
            };
        Host {
            runner,
            locate: super::find,
            kind_network,
            user_kubeconfig,
            proc_root: PathBuf::from("/proc"),
            docker_host,
            docker_source,
        }
    }

    /// The Docker endpoint, or why none could be resolved (exit 3, with the reason).
    pub fn docker_endpoint(&self) -> Result<&str, StackError> {
        if self.docker_host.is_empty() {
            return Err(StackError::Unreachable {
                what: "the Docker daemon".into(),
                hint: self.docker_source.clone(),
            });
        }
        Ok(&self.docker_host)
    }

    pub fn tool(&self, t: Tool) -> Result<PathBuf, StackError> {
        (self.locate)(t)
    }
}
