//! The local registry for kind, wired the way kind documents it: a `registry:2` container published
//! on 127.0.0.1, connected to the `kind` network, a containerd `hosts.toml` per node mapping
//! `localhost:<port>` to the container, and the KEP-1755 `kube-public/local-registry-hosting`
//! ConfigMap. The container carries stack's labels; only labelled containers are ever removed.

use crate::tool::{Cmd, Output, Runner};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

/// Docker label on everything stack creates.
pub const OWNED_LABEL: &str = "dev.stack.owned";
/// Docker label naming the cluster a stack-created container belongs to.
pub const CLUSTER_LABEL: &str = "dev.stack.cluster";
/// Port the registry listens on inside its container.
pub const CONTAINER_PORT: u16 = 5000;

/// A registry stack runs next to a cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Registry {
    /// Container name (also its host name on the cluster network).
    pub name: String,
    /// Host port on 127.0.0.1.
    pub host_port: u16,
    pub image: String,
}

impl Registry {
    /// How nodes and users address it: `localhost:<port>`.
    pub fn host(&self) -> String {
        format!("localhost:{}", self.host_port)
    }
}

/// What `docker container inspect` says about a container.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    pub name: String,
    pub running: bool,
    pub status: String,
    pub labels: BTreeMap<String, String>,
    pub networks: Vec<String>,
    /// `host_ip:host_port->container_port/proto`
    pub ports: Vec<String>,
}

impl Container {
    pub fn owned_by_stack(&self) -> bool {
        self.labels.get(OWNED_LABEL).map(String::as_str) == Some("true")
    }

    pub fn cluster(&self) -> Option<&str> {
        self.labels.get(CLUSTER_LABEL).map(String::as_str)
    }
}

/// `docker container inspect NAME`: `None` when there is no such container.
pub fn inspect(
    runner: &dyn Runner,
    docker: &Path,
    root: &Path,
    name: &str,
) -> anyhow::Result<Option<Container>> {
    let cmd = Cmd::new(docker)
        .args(["container", "inspect", name])
        .cwd(root);
    let out = runner.output(&cmd)?;
    if !out.success() {
        if is_no_such_container(&out) {
            return Ok(None);
        }
        return Err(docker_failed(&cmd, &out));
    }
    let doc: serde_json::Value = serde_json::from_str(&out.stdout)
        .map_err(|e| anyhow::anyhow!("`{cmd}` printed something that is not JSON: {e}"))?;
    Ok(doc
        .as_array()
        .and_then(|a| a.first())
        .map(|c| parse_container(name, c)))
}

fn is_no_such_container(out: &Output) -> bool {
    let e = out.stderr.to_lowercase();
    e.contains("no such container") || e.contains("no such object")
}

/// A docker command that failed: unreachable daemon is exit 3 with the fix.
pub fn docker_failed(cmd: &Cmd, out: &Output) -> anyhow::Error {
    if out.stderr.contains("Cannot connect to the Docker daemon")
        || out.stderr.contains("error during connect")
    {
        return crate::error::StackError::Unreachable {
            what: "the Docker daemon".into(),
            hint: format!(
                "`{}` said: {} — start Docker (or point DOCKER_HOST at it) and run again",
                cmd.short_line(),
                out.stderr.trim()
            ),
        }
        .into();
    }
    anyhow::anyhow!(
        "`{cmd}` failed with exit status {}\n{}",
        out.status,
        out.stderr.trim_end()
    )
}

fn parse_container(name: &str, c: &serde_json::Value) -> Container {
    let str_at = |p: &str| c.pointer(p).and_then(|v| v.as_str()).unwrap_or_default();
    let labels = c
        .pointer("/Config/Labels")
        .and_then(|l| l.as_object())
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default();
    let networks = c
        .pointer("/NetworkSettings/Networks")
        .and_then(|n| n.as_object())
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    let mut ports = Vec::new();
    if let Some(m) = c
        .pointer("/HostConfig/PortBindings")
        .and_then(|p| p.as_object())
    {
        for (container_port, bindings) in m {
            for b in bindings.as_array().into_iter().flatten() {
                let ip = b.get("HostIp").and_then(|v| v.as_str()).unwrap_or_default();
                let port = b
                    .get("HostPort")
                    .and_then(|v| v.as_str())
                    .unwrap_or_default();
                ports.push(format!("{ip}:{port}->{container_port}"));
            }
        }
    }
    Container {
        name: match str_at("/Name").trim_start_matches('/') {
            "" => name.to_owned(),
            n => n.to_owned(),
        },
        running: c
            .pointer("/State/Running")
            .and_then(|v| v.as_bool())
            .unwrap_or(false),
        status: str_at("/State/Status").to_owned(),
        labels,
        networks,
        ports,
    }
}

/// `docker run` for the registry: published on 127.0.0.1 only, labelled as stack's.
pub fn run_cmd(
    docker: &Path,
    root: &Path,
    reg: &Registry,
    cluster: &str,
    network: Option<&str>,
) -> Cmd {
    let mut cmd = Cmd::new(docker).args(["run", "-d", "--restart=always", "--name", &reg.name]);
    if let Some(n) = network {
        cmd = cmd.args(["--network", n]);
    }
    cmd.arg("-p")
        .arg(format!("127.0.0.1:{}:{CONTAINER_PORT}", reg.host_port))
        .arg("--label")
        .arg(format!("{OWNED_LABEL}=true"))
        .arg("--label")
        .arg(format!("{CLUSTER_LABEL}={cluster}"))
        .arg(&reg.image)
        .cwd(root)
}

/// `docker network inspect NAME`: whether the network exists.
pub fn network_exists(
    runner: &dyn Runner,
    docker: &Path,
    root: &Path,
    network: &str,
) -> anyhow::Result<bool> {
    let cmd = Cmd::new(docker)
        .args(["network", "inspect", "--format", "{{.Name}}", network])
        .cwd(root);
    let out = runner.output(&cmd)?;
    if out.success() {
        return Ok(true);
    }
    if out.stderr.contains("not found") || out.stderr.contains("No such network") {
        return Ok(false);
    }
    Err(docker_failed(&cmd, &out))
}

pub fn disconnect_cmd(docker: &Path, root: &Path, network: &str, name: &str) -> Cmd {
    Cmd::new(docker)
        .args(["network", "disconnect", network, name])
        .cwd(root)
}

pub fn start_cmd(docker: &Path, root: &Path, name: &str) -> Cmd {
    Cmd::new(docker).args(["start", name]).cwd(root)
}

pub fn connect_cmd(docker: &Path, root: &Path, network: &str, name: &str) -> Cmd {
    Cmd::new(docker)
        .args(["network", "connect", network, name])
        .cwd(root)
}

/// Names of the containers carrying stack's labels for `cluster` (the only ones `down` removes).
pub fn owned_cmd(docker: &Path, root: &Path, cluster: &str) -> Cmd {
    Cmd::new(docker)
        .args(["ps", "-a", "--filter"])
        .arg(format!("label={OWNED_LABEL}=true"))
        .arg("--filter")
        .arg(format!("label={CLUSTER_LABEL}={cluster}"))
        .args(["--format", "{{.Names}}\t{{.Networks}}"])
        .cwd(root)
}

pub fn remove_cmd(docker: &Path, root: &Path, name: &str) -> Cmd {
    Cmd::new(docker).args(["rm", "-f", name]).cwd(root)
}

/// containerd's registry host directory on a node for this registry.
pub fn certs_dir(reg: &Registry) -> String {
    format!("/etc/containerd/certs.d/{}", reg.host())
}

/// The node's `hosts.toml`: pulls of `localhost:<port>/...` go to the registry container.
pub fn hosts_toml(reg: &Registry) -> String {
    format!("[host.\"http://{}:{CONTAINER_PORT}\"]\n", reg.name)
}

pub fn node_mkdir_cmd(docker: &Path, root: &Path, node: &str, reg: &Registry) -> Cmd {
    Cmd::new(docker)
        .args(["exec", node, "mkdir", "-p", &certs_dir(reg)])
        .cwd(root)
}

/// Writes hosts.toml inside the node; the content travels as an argument to `sh -c`, not through a
/// shell-expanded string.
pub fn node_write_cmd(docker: &Path, root: &Path, node: &str, reg: &Registry) -> Cmd {
    Cmd::new(docker)
        .args([
            "exec",
            node,
            "sh",
            "-c",
            "printf '%s\\n' \"$1\" > \"$2\"",
            "sh",
        ])
        .arg(hosts_toml(reg).trim_end())
        .arg(format!("{}/hosts.toml", certs_dir(reg)))
        .cwd(root)
}

pub fn node_read_cmd(docker: &Path, root: &Path, node: &str, reg: &Registry) -> Cmd {
    Cmd::new(docker)
        .args(["exec", node, "cat"])
        .arg(format!("{}/hosts.toml", certs_dir(reg)))
        .cwd(root)
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
    fn parses_docker_inspect() {
        let json = r#"[{"Name":"/stack-registry","State":{"Status":"running","Running":true},
          "Config":{"Labels":{"dev.stack.owned":"true","dev.stack.cluster":"stack"}},
          "HostConfig":{"PortBindings":{"5000/tcp":[{"HostIp":"127.0.0.1","HostPort":"5001"}]}},
          "NetworkSettings":{"Networks":{"bridge":{},"kind":{}}}}]"#;
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        let c = parse_container("x", &v[0]);
        assert_eq!(c.name, "stack-registry");
        assert!(c.running && c.owned_by_stack());
        assert_eq!(c.cluster(), Some("stack"));
        assert_eq!(c.networks, vec!["bridge", "kind"]);
        assert_eq!(c.ports, vec!["127.0.0.1:5001->5000/tcp"]);
    }

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
