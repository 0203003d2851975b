//! The local registry for kind, wired the way kind documents it: a `registry:2` container published
//! on 127.0.0.1, connected to the `kind` network, a containerd `hosts.toml` per node mapping
//! `localhost:<port>` to the container, and the KEP-1755 `kube-public/local-registry-hosting`
//! ConfigMap. The container carries stack's labels; only labelled containers are ever removed.
//! Docker is asked and changed through its API (`crate::docker`), never the docker CLI.

use crate::docker::{Docker, DockerOp, RunSpec};
use crate::error::StackError;
use crate::tool::Host;
use std::collections::BTreeMap;

pub use crate::cluster_target::Registry;
pub use crate::docker::Container;

/// Docker label on everything stack creates.
pub const OWNED_LABEL: &str = "dev.stack.owned";
/// Docker label naming the cluster a stack-created container belongs to.
pub const CLUSTER_LABEL: &str = "dev.stack.cluster";
/// Port the registry listens on inside its container.
pub const CONTAINER_PORT: u16 = 5000;

impl Container {
    pub fn owned_by_stack(&self) -> bool {
        self.labels.get(OWNED_LABEL).map(String::as_str) == Some("true")
    }

    pub fn cluster(&self) -> Option<&str> {
        self.labels.get(CLUSTER_LABEL).map(String::as_str)
    }
}

/// The Docker daemon (the endpoint the docker CLI would use), for the read-only questions asked
/// while planning; changes are [`DockerOp`] steps.
pub struct Daemon {
    docker: Docker,
}

impl Daemon {
    /// Connects to the host's Docker endpoint: unreachable is exit 3 naming it.
    pub fn connect(host: &Host) -> Result<Daemon, StackError> {
        let endpoint = host.docker_endpoint()?.to_owned();
        let docker =
            crate::rt::until_cancelled("connecting to Docker", Docker::connect(&endpoint))??;
        Ok(Daemon { docker })
    }

    pub fn endpoint(&self) -> &str {
        &self.docker.endpoint
    }

    /// The container named `name`, `None` when there is none.
    pub fn inspect(&self, name: &str) -> Result<Option<Container>, StackError> {
        crate::rt::until_cancelled(
            "inspecting a container",
            self.docker.inspect_container(name),
        )?
    }

    /// Whether the network `name` exists.
    pub fn network_exists(&self, name: &str) -> Result<bool, StackError> {
        crate::rt::until_cancelled("inspecting a network", self.docker.network_exists(name))?
    }

    /// The containers carrying stack's labels for `cluster` (the only ones `down` removes).
    pub fn owned(&self, cluster: &str) -> Result<Vec<Container>, StackError> {
        let owned = [(OWNED_LABEL, "true"), (CLUSTER_LABEL, cluster)];
        crate::rt::until_cancelled(
            "listing stack's containers",
            self.docker.containers_labelled(&owned),
        )?
    }

    /// Whether `node` already maps the registry (its hosts.toml reads as stack writes it).
    pub fn node_maps(&self, node: &str, reg: &Registry) -> Result<bool, StackError> {
        let cmd = vec!["cat".to_owned(), hosts_toml_path(reg)];
        let line = DockerOp::Exec {
            container: node.to_owned(),
            cmd: cmd.clone(),
            stdin: None,
        }
        .line();
        let out = crate::rt::until_cancelled(
            "reading the node's hosts.toml",
            self.docker.exec(node, &cmd, None, &line),
        )??;
        Ok(out.success() && out.stdout == hosts_toml(reg))
    }
}

/// `docker run` for the registry: published on 127.0.0.1 only, labelled as stack's.
pub fn run_op(reg: &Registry, cluster: &str, network: Option<&str>) -> DockerOp {
    DockerOp::Run(RunSpec {
        name: reg.name.clone(),
        image: reg.image.clone(),
        labels: BTreeMap::from([
            (OWNED_LABEL.to_owned(), "true".to_owned()),
            (CLUSTER_LABEL.to_owned(), cluster.to_owned()),
        ]),
        network: network.map(str::to_owned),
        publish: vec![(
            "127.0.0.1".into(),
            reg.host_port,
            format!("{CONTAINER_PORT}/tcp"),
        )],
        restart_always: true,
    })
}

pub fn start_op(name: &str) -> DockerOp {
    DockerOp::Start {
        container: name.to_owned(),
    }
}

pub fn connect_op(network: &str, name: &str) -> DockerOp {
    DockerOp::Connect {
        network: network.to_owned(),
        container: name.to_owned(),
    }
}

pub fn disconnect_op(network: &str, name: &str) -> DockerOp {
    DockerOp::Disconnect {
        network: network.to_owned(),
        container: name.to_owned(),
    }
}

pub fn remove_op(name: &str) -> DockerOp {
    DockerOp::Remove {
        container: name.to_owned(),
    }
}

/// containerd's registry host directory on a node for this registry.
pub fn certs_dir(reg: &Registry) -> String {
    format!("/etc/containerd/certs.d/{}", reg.host())
}

fn hosts_toml_path(reg: &Registry) -> String {
    format!("{}/hosts.toml", certs_dir(reg))
}

/// The node's `hosts.toml`: pulls of `localhost:<port>/...` go to the registry container.
pub fn hosts_toml(reg: &Registry) -> String {
    format!("[host.\"http://{}:{CONTAINER_PORT}\"]\n", reg.name)
}

pub fn node_mkdir_op(node: &str, reg: &Registry) -> DockerOp {
    DockerOp::Exec {
        container: node.to_owned(),
        cmd: vec!["mkdir".into(), "-p".into(), certs_dir(reg)],
        stdin: None,
    }
}

/// Writes hosts.toml inside the node: the content goes in on stdin, the path is an argument
/// (nothing is shell-expanded).
pub fn node_write_op(node: &str, reg: &Registry) -> DockerOp {
    DockerOp::Exec {
        container: node.to_owned(),
        cmd: vec![
            "sh".into(),
            "-c".into(),
            "cat > \"$1\"".into(),
            "sh".into(),
            hosts_toml_path(reg),
        ],
        stdin: Some(hosts_toml(reg)),
    }
}

/// The `localRegistryHosting.v1` document (KEP-1755).
pub fn hosting_v1(reg: &Registry) -> String {
    format!(
        "host: \"{}\"\nhelp: \"https://kind.sigs.k8s.io/docs/user/local-registry/\"\n",
        reg.host()
    )
}

/// The ConfigMap `kube-public/local-registry-hosting` tools read to find the registry.
pub fn configmap(reg: &Registry) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "local-registry-hosting",
            "namespace": "kube-public",
            "labels": { OWNED_LABEL: "true" },
        },
        "data": { "localRegistryHosting.v1": hosting_v1(reg) },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configmap_is_kep_1755() {
        let reg = Registry {
            name: "stack-registry".into(),
            host_port: 5001,
            image: "registry:2".into(),
        };
        let m = configmap(&reg);
        assert_eq!(
            m["data"]["localRegistryHosting.v1"],
            "host: \"localhost:5001\"\nhelp: \"https://kind.sigs.k8s.io/docs/user/local-registry/\"\n"
        );
        assert_eq!(m["metadata"]["labels"][OWNED_LABEL], "true");
        assert_eq!(hosts_toml(&reg), "[host.\"http://stack-registry:5000\"]\n");
    }
}
