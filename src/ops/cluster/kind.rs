//! kind: `kind get clusters` (names on stdout; none → "No kind clusters found." on stderr, exit 0),
//! `kind create cluster` (fails on an existing name, so `up` checks first), `kind delete cluster`
//! (idempotent), plus the local registry wiring from kind's documentation (`registry.rs`).

use super::ports::{self, HostPort, Protocol};
use super::registry::{self, Container, Daemon};
use super::{ChangeReport, Host, NodeStatus, RegistryStatus, StatusReport, Target};
use crate::error::StackError;
use crate::ops::plan::Step;
use crate::tool::{Cmd, Tool};
use crate::yaml::{Node, Value};
use std::path::Path;

/// Names kind reports.
fn clusters(t: &Target, host: &Host, kind: &Path) -> anyhow::Result<Vec<String>> {
    let cmd = Cmd::new(kind).args(["get", "clusters"]).cwd(&t.root);
    let out = host.runner.output(&cmd)?;
    if !out.success() {
        return Err(super::provider_failed(host, "kind", &cmd, &out));
    }
    Ok(out
        .stdout
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect())
}

/// Node containers of a cluster (`kind get nodes`), without the external load balancer, which
/// runs no containerd.
fn nodes(t: &Target, host: &Host, kind: &Path) -> anyhow::Result<Vec<String>> {
    let cmd = Cmd::new(kind)
        .args(["get", "nodes", "--name", &t.name])
        .cwd(&t.root);
    let out = host.runner.output(&cmd)?;
    if !out.success() {
        return Err(super::provider_failed(host, "kind", &cmd, &out));
    }
    Ok(out
        .stdout
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.ends_with("-external-load-balancer"))
        .map(str::to_owned)
        .collect())
}

/// The node container names kind will create: `<cluster>-<role>`, then `<cluster>-<role>2`, ...
/// in the order of `nodes:` (kind's `MakeNodeNamer`); one control plane when `nodes` is absent.
pub fn predicted_nodes(t: &Target) -> Vec<String> {
    let roles: Vec<String> = config_nodes(t)
        .iter()
        .map(|n| {
            n.value.to_json()["role"]
                .as_str()
                .unwrap_or("control-plane")
                .to_owned()
        })
        .collect();
    let roles = if roles.is_empty() {
        vec!["control-plane".to_owned()]
    } else {
        roles
    };
    let mut seen = std::collections::BTreeMap::<String, usize>::new();
    roles
        .into_iter()
        .map(|role| {
            let n = seen.entry(role.clone()).or_default();
            *n += 1;
            if *n == 1 {
                format!("{}-{role}", t.name)
            } else {
                format!("{}-{role}{n}", t.name)
            }
        })
        .collect()
}

fn config_nodes(t: &Target) -> Vec<Node> {
    match t
        .provider_config
        .as_ref()
        .and_then(|c| c.value.as_map())
        .and_then(|m| m.get("nodes"))
    {
        Some(Node {
            value: Value::Seq(items),
            ..
        }) => items.clone(),
        _ => Vec::new(),
    }
}

/// Host ports the cluster will publish: every `extraPortMappings` entry, and the API server port
/// when it is fixed.
pub fn host_ports(t: &Target) -> Result<Vec<HostPort>, StackError> {
    let mut out = Vec::new();
    for node in config_nodes(t) {
        let Some(maps) = node.value.as_map().and_then(|m| m.get("extraPortMappings")) else {
            continue;
        };
        let Value::Seq(items) = &maps.value else {
            continue;
        };
        for m in items {
            let j = m.value.to_json();
            let at = m
                .value
                .as_map()
                .and_then(|mm| mm.get("hostPort"))
                .map(|n| &n.origin);
            let Some(port) = ports::host_port(&j["hostPort"], "extraPortMappings hostPort", at)?
            else {
                continue;
            };
            let address = ports::parse_address(j["listenAddress"].as_str().unwrap_or("0.0.0.0"))
                .unwrap_or_else(ports::loopback);
            let protocol = match j["protocol"].as_str().unwrap_or("TCP") {
                "UDP" => Protocol::Udp,
                "SCTP" => Protocol::Sctp,
                _ => Protocol::Tcp,
            };
            let origin = m
                .value
                .as_map()
                .and_then(|mm| mm.get("hostPort"))
                .map(|n| n.origin.clone())
                .or(Some(m.origin.clone()));
            out.push(HostPort {
                address,
                port,
                protocol,
                what: format!(
                    "extraPortMappings containerPort {}",
                    j["containerPort"].as_u64().unwrap_or(0)
                ),
                origin,
            });
        }
    }
    if let Some(cfg) = &t.provider_config {
        let j = cfg.value.to_json();
        let port = ports::host_port(
            &j["networking"]["apiServerPort"],
            "networking.apiServerPort",
            t.config_origin().as_ref(),
        )?;
        if let Some(port) = port {
            let address =
                ports::parse_address(j["networking"]["apiServerAddress"].as_str().unwrap_or(""))
                    .filter(|a| !a.is_unspecified())
                    .unwrap_or_else(ports::loopback);
            out.push(HostPort::tcp(
                address,
                port,
                "the API server (networking.apiServerPort)",
                t.config_origin(),
            ));
        }
    }
    Ok(out)
}

/// The config kind gets: the project's file as is, or, with `cluster.nodeLabels`, a copy under
/// `.stack/` whose every node carries those labels. Returns (the `--config` argument, the file to
/// write first).
fn effective_config(t: &Target) -> (Option<String>, Option<(String, String)>) {
    if t.node_labels.is_empty() {
        return (t.config_file.clone(), None);
    }
    let mut cfg = t.provider_config.as_ref().map_or_else(
        || {
            serde_json::json!({
                "kind": "Cluster",
                "apiVersion": "kind.x-k8s.io/v1alpha4",
                "nodes": [{ "role": "control-plane" }],
            })
        },
        |n| n.value.to_json(),
    );
    if !cfg["nodes"].is_array() {
        cfg["nodes"] = serde_json::json!([{ "role": "control-plane" }]);
    }
    for node in cfg["nodes"].as_array_mut().into_iter().flatten() {
        if !node["labels"].is_object() {
            node["labels"] = serde_json::json!({});
        }
        for (k, v) in &t.node_labels {
            node["labels"][k] = serde_json::Value::String(v.clone());
        }
    }
    let path = super::generated_config_path(t);
    let text = format!(
        "{}\n",
        serde_json::to_string_pretty(&cfg).expect("serializes")
    );
    (Some(path.clone()), Some((path, text)))
}

pub fn create_cmd(t: &Target, kind: &Path, config: Option<&str>) -> Cmd {
    let mut cmd = Cmd::new(kind).args(["create", "cluster", "--name", &t.name]);
    if let Some(c) = config {
        cmd = cmd.args(["--config", c]);
    }
    cmd.args(["--kubeconfig", &t.kubeconfig]).cwd(&t.root)
}

/// The registry container, refusing one stack does not own (it would be someone else's).
fn own_registry(
    t: &Target,
    daemon: &Daemon,
    reg: &registry::Registry,
) -> anyhow::Result<Option<Container>> {
    let found = daemon.inspect(&reg.name)?;
    if let Some(c) = &found {
        if !c.owned_by_stack() || c.cluster() != Some(t.name.as_str()) {
            return Err(StackError::Usage {
                message: format!(
                    "a container named `{}` exists but was not created by stack for cluster `{}`{}",
                    reg.name,
                    t.name,
                    c.cluster()
                        .map(|o| format!(" (it belongs to stack cluster `{o}`)"))
                        .unwrap_or_default()
                ),
                hint: Some(format!(
                    "set `cluster.registry.name` in stack.yaml to another name, or remove that container yourself (`docker rm -f {}`)",
                    reg.name
                )),
            }
            .into());
        }
    }
    Ok(found)
}

/// What `kube-public/local-registry-hosting` publishes now (`None`: absent, or the API server
/// cannot be asked — then the apply step is planned and says why when it runs).
fn published_hosting(t: &Target) -> Result<Option<String>, StackError> {
    use k8s_openapi::api::core::v1::ConfigMap;
    let found = super::ask(
        t,
        "reading kube-public/local-registry-hosting",
        |c| async move {
            ::kube::Api::<ConfigMap>::namespaced(c, "kube-public")
                .get_opt("local-registry-hosting")
                .await
        },
    )?;
    Ok(found
        .ok()
        .flatten()
        .and_then(|cm| cm.data?.remove("localRegistryHosting.v1")))
}

pub fn plan_up(t: &Target, host: &Host, report: &mut ChangeReport) -> anyhow::Result<Vec<Step>> {
    let kind = host.tool(Tool::Kind)?;
    let exists = clusters(t, host, &kind)?.contains(&t.name);
    // Nothing is created unless every port it publishes is free (and a port the config gets
    // wrong is reported before Docker is asked anything).
    let mut wanted = Vec::new();
    if !exists {
        wanted.extend(host_ports(t)?);
    }
    let registry = match &t.registry {
        Some(reg) => {
            let daemon = Daemon::connect(host)?;
            let found = own_registry(t, &daemon, reg)?;
            Some((reg, daemon, found))
        }
        None => None,
    };
    if let Some((reg, _, c)) = &registry {
        if !c.as_ref().is_some_and(|c| c.running) {
            wanted.push(HostPort::tcp(
                ports::loopback(),
                reg.host_port,
                format!("registry {}", reg.name),
                None,
            ));
        }
    }
    ports::check(&wanted)?;

    let mut steps = Vec::new();
    // kind keeps its network after clusters are deleted: when it is there, the registry starts on
    // it (Docker setups without a default bridge cannot connect a running container later).
    let mut on_network = false;
    if let Some((reg, daemon, c)) = &registry {
        match c {
            None => {
                on_network = daemon.network_exists(&host.kind_network)?;
                steps.push(Step::docker(
                    format!(
                        "start the local registry {} on 127.0.0.1:{}",
                        reg.name, reg.host_port
                    ),
                    daemon.endpoint(),
                    registry::run_op(
                        reg,
                        &t.name,
                        on_network.then_some(host.kind_network.as_str()),
                    ),
                ))
            }
            Some(c) if !c.running => steps.push(Step::docker(
                format!("restart the stopped registry {}", reg.name),
                daemon.endpoint(),
                registry::start_op(&reg.name),
            )),
            Some(_) => {}
        }
    }
    let node_names = if exists {
        if !t.kubeconfig_has_context() {
            steps.push(Step::run(
                format!("write credentials for {} into {}", t.context, t.kubeconfig),
                Cmd::new(&kind)
                    .args(["export", "kubeconfig", "--name", &t.name])
                    .args(["--kubeconfig", &t.kubeconfig])
                    .cwd(&t.root),
            ));
        }
        nodes(t, host, &kind)?
    } else {
        let (config, generated) = effective_config(t);
        steps.extend(super::before_create(
            t,
            generated,
            "write the kind config with cluster.nodeLabels added",
        ));
        steps.push(Step::run(
            format!("create kind cluster {}", t.name),
            create_cmd(t, &kind, config.as_deref()),
        ));
        steps.push(super::after_create(t));
        predicted_nodes(t)
    };

    if let Some((reg, daemon, c)) = &registry {
        for node in &node_names {
            let current = exists && daemon.node_maps(node, reg)?;
            if !current {
                steps.push(Step::docker(
                    format!(
                        "create containerd's registry dir for {} on {node}",
                        reg.host()
                    ),
                    daemon.endpoint(),
                    registry::node_mkdir_op(node, reg),
                ));
                steps.push(Step::docker(
                    format!("map {} to {} on {node}", reg.host(), reg.name),
                    daemon.endpoint(),
                    registry::node_write_op(node, reg),
                ));
            }
        }
        let connected = on_network
            || c.as_ref()
                .is_some_and(|c| c.networks.contains(&host.kind_network));
        if !connected {
            steps.push(Step::docker(
                format!("connect {} to the {} network", reg.name, host.kind_network),
                daemon.endpoint(),
                registry::connect_op(&host.kind_network, &reg.name),
            ));
        }
        let current = exists
            && t.kubeconfig_has_context()
            && published_hosting(t)?
                .is_some_and(|v| v.trim_end() == registry::hosting_v1(reg).trim_end());
        if !current {
            // Stack wires this registry, so it is the ConfigMap's one author: fields an earlier
            // writer set (a `kubectl apply` of kind's recipe) are taken over, as that apply did.
            steps.push(Step::apply(
                "publish the registry in kube-public/local-registry-hosting (KEP-1755)",
                t.api(),
                registry::configmap(reg),
                true,
            ));
        }
    } else {
        report
            .notes
            .push("registry disabled (cluster.registry.enabled: false)".into());
    }
    if exists && steps.is_empty() {
        report
            .notes
            .push(format!("kind cluster {} is up to date", t.name));
    }
    Ok(steps)
}

pub fn plan_down(t: &Target, host: &Host, report: &mut ChangeReport) -> anyhow::Result<Vec<Step>> {
    let kind = host.tool(Tool::Kind)?;
    let exists = clusters(t, host, &kind)?.contains(&t.name);
    let ownership = super::ownership(t, exists)?;
    let mut steps = Vec::new();
    if exists && ownership == super::Ownership::Ours {
        steps.push(Step::run(
            format!("delete kind cluster {}", t.name),
            Cmd::new(&kind)
                .args(["delete", "cluster", "--name", &t.name])
                .args(["--kubeconfig", &t.kubeconfig])
                .cwd(&t.root),
        ));
    } else if exists {
        report.kept.push(format!(
            "kind cluster {}: {}; delete it yourself with `kind delete cluster --name {}`",
            t.name,
            ownership.kept_reason(t),
            t.name
        ));
    }
    // A record is forgotten once its cluster is gone or was replaced; an unverified one is kept.
    let owned = matches!(
        ownership,
        super::Ownership::Ours | super::Ownership::Replaced { .. }
    );
    if owned {
        steps.push(Step::remove(
            format!("forget that stack created kind cluster {}", t.name),
            t.owned_marker(),
        ));
    }
    // Containers carrying stack's labels for this cluster, and nothing else.
    let daemon = Daemon::connect(host)?;
    let owned_containers = daemon.owned(&t.name)?;
    for c in &owned_containers {
        let name = &c.name;
        if c.networks.contains(&host.kind_network) {
            steps.push(Step::docker(
                format!(
                    "disconnect stack's container {name} from the {} network",
                    host.kind_network
                ),
                daemon.endpoint(),
                registry::disconnect_op(&host.kind_network, name),
            ));
        }
        steps.push(Step::docker(
            format!("remove stack's container {name}"),
            daemon.endpoint(),
            registry::remove_op(name),
        ));
    }
    if let Some(reg) = &t.registry {
        if !owned_containers.iter().any(|c| c.name == reg.name) {
            if let Some(c) = daemon.inspect(&reg.name)? {
                report.kept.push(format!(
                    "container {}: {}",
                    c.name,
                    if c.owned_by_stack() {
                        "labelled for another stack cluster"
                    } else {
                        "not labelled dev.stack.owned=true, so not stack's"
                    }
                ));
            }
        }
    }
    if steps.is_empty() {
        report
            .notes
            .push(format!("nothing to remove for kind cluster {}", t.name));
    }
    Ok(steps)
}

pub fn status(t: &Target, host: &Host) -> anyhow::Result<StatusReport> {
    let kind = host.tool(Tool::Kind)?;
    let mut report = StatusReport::new(t);
    report.exists = clusters(t, host, &kind)?.contains(&t.name);
    if report.exists {
        let names = nodes(t, host, &kind)?;
        if report.context_in_kubeconfig {
            match super::kube_nodes(t)? {
                Ok(n) => {
                    report.reachable = Some(true);
                    report.nodes = n;
                }
                Err(why) => {
                    report.reachable = Some(false);
                    report.problem = Some(why);
                }
            }
        } else {
            report.problem = Some(format!(
                "{} has no context {}: run `stack cluster up` to write it",
                t.kubeconfig, t.context
            ));
        }
        if report.nodes.is_empty() {
            report.nodes = names
                .into_iter()
                .map(|name| NodeStatus {
                    role: if name.contains("control-plane") {
                        "control-plane".into()
                    } else {
                        "worker".into()
                    },
                    name,
                    ready: None,
                })
                .collect();
        }
    }
    if let Some(reg) = &t.registry {
        let c = Daemon::connect(host)?.inspect(&reg.name)?;
        report.registry = Some(RegistryStatus::from(reg, c.as_ref()));
    }
    Ok(report)
}
