//! helm's OCI registry login, shared by `stack test ci` (pulling the published chart) and `stack
//! release` (pushing it): `helm registry login REGISTRY --username U --password-stdin` into a
//! registry config file of stack's own (`HELM_REGISTRY_CONFIG`, never the user's), and every
//! later helm call pointed at that file. The password goes through stdin only: never argv, an
//! event, a report or a log.

use crate::error::StackError;
use crate::oci::Credentials;
use crate::ops::plan::Exec;
use crate::tool::Cmd;
use std::path::{Path, PathBuf};

pub struct HelmRegistry {
    /// helm's registry config for this run (`HELM_REGISTRY_CONFIG`), under `.stack/`.
    config: PathBuf,
    plain_http: bool,
}

impl HelmRegistry {
    pub fn new(config: PathBuf, plain_http: bool) -> Self {
        HelmRegistry { config, plain_http }
    }

    /// `cmd` with stack's helm registry config.
    pub fn env(&self, cmd: Cmd) -> Cmd {
        cmd.env("HELM_REGISTRY_CONFIG", self.config.to_string_lossy())
    }

    /// Logs helm in to `registry` (a host[:port]) with `creds`, the password on stdin.
    pub fn login(
        &self,
        exec: &Exec,
        helm: &Path,
        registry: &str,
        creds: &Credentials,
        hint: &str,
    ) -> Result<(), StackError> {
        let mut cmd = self.env(Cmd::new(helm).args([
            "registry",
            "login",
            registry,
            "--username",
            &creds.username,
            "--password-stdin",
        ]));
        if self.plain_http {
            cmd = cmd.arg("--plain-http");
        }
        let cmd = cmd.stdin_secret(creds.password.clone());
        exec.run(&format!("log helm in to {registry}"), &cmd)
            .map(|_| ())
            .map_err(|e| StackError::tool(e, hint))
    }
}
