//! Finding external tools: `$STACK_<TOOL>` first, then PATH. A missing tool is exit code 3 with the
//! way to install it.

use crate::error::StackError;
use std::path::PathBuf;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tool {
    Helm,
    Kubectl,
    Kind,
    K3d,
    Tofu,
    Terraform,
    Docker,
    Git,
}

impl Tool {
    pub fn name(self) -> &'static str {
        match self {
            Tool::Helm => "helm",
            Tool::Kubectl => "kubectl",
            Tool::Kind => "kind",
            Tool::K3d => "k3d",
            Tool::Tofu => "tofu",
            Tool::Terraform => "terraform",
            Tool::Docker => "docker",
            Tool::Git => "git",
        }
    }

    /// The environment variable that overrides discovery, e.g. `STACK_HELM`.
    pub fn env_var(self) -> String {
        format!("STACK_{}", self.name().to_uppercase())
    }

    fn install_hint(self) -> &'static str {
        match self {
            Tool::Helm => "install Helm 3 (https://helm.sh/docs/intro/install/, or `go install helm.sh/helm/v3/cmd/helm@v3.21.4`)",
            Tool::Kubectl => "install kubectl (https://kubernetes.io/docs/tasks/tools/)",
            Tool::Kind => "install kind (`go install sigs.k8s.io/kind@v0.33.0`)",
            Tool::K3d => "install k3d (https://k3d.io/#installation)",
            Tool::Tofu => "install OpenTofu (https://opentofu.org/docs/intro/install/)",
            Tool::Terraform => "install Terraform (https://developer.hashicorp.com/terraform/install)",
            Tool::Docker => "install the Docker CLI (https://docs.docker.com/engine/install/)",
            Tool::Git => "install git",
        }
    }
}

/// Locates `tool`, or explains how to get it.
pub fn find(tool: Tool) -> Result<PathBuf, StackError> {
    let var = tool.env_var();
    if let Some(p) = std::env::var_os(&var) {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(StackError::MissingTool {
                tool: tool.name().into(),
                hint: format!(
                    "${var} points at {}, which does not exist; fix or unset it",
                    p.display()
                ),
            })
        };
    }
    which::which(tool.name()).map_err(|_| StackError::MissingTool {
        tool: tool.name().into(),
        hint: format!("{}, or set ${var} to its path", tool.install_hint()),
    })
}
