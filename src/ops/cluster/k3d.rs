//! k3d: `k3d cluster list -o json` (a one-line JSON array, `[]` when empty), `k3d cluster create`
//! (fails on an existing name, so `up` checks first), `k3d cluster delete`. The registry is k3d's
//! own (`registries.create`; k3d wires the nodes and the KEP-1755 ConfigMap, and deletes the
//! registry with the cluster). k3d never touches the user's kubeconfig here: credentials go to
//! `.stack/kubeconfig` with `k3d kubeconfig merge --output`.

use super::ports::{self, HostPort, Protocol};
use super::registry;
use super::{ChangeReport, Host, NodeStatus, RegistryStatus, StatusReport, Target};
use crate::error::StackError;
use crate::ops::plan::Step;
use crate::tool::{Cmd, Tool};
use crate::yaml::{Node, Value};
use std::path::Path;

/// Clusters as `k3d cluster list -o json` prints them.
fn list(t: &Target, host: &Host, k3d: &Path) -> anyhow::Result<Vec<serde_json::Value>> {
    let cmd = Cmd::new(k3d)
        .args(["cluster", "list", "-o", "json"])
        .cwd(&t.root);
    let out = host.runner.output(&cmd)?;
    if !out.success() {
        return Err(super::provider_failed(host, "k3d", &cmd, &out));
    }
    let doc: serde_json::Value = serde_json::from_str(out.stdout.trim())
        .map_err(|e| anyhow::anyhow!("`{cmd}` printed something that is not JSON: {e}"))?;
    Ok(doc.as_array().cloned().unwrap_or_default())
}

fn find<'a>(clusters: &'a [serde_json::Value], name: &str) -> Option<&'a serde_json::Value> {
    clusters.iter().find(|c| c["name"] == name)
}

fn config_json(t: &Target) -> serde_json::Value {
    t.provider_config
        .as_ref()
        .map_or(serde_json::Value::Null, |n| n.value.to_json())
}

/// `[HOST:][HOSTPORT:]CONTAINERPORT[/PROTOCOL]` → (host address, host port, protocol); `None` when
/// Docker picks the host port (or for ranges, which Docker checks itself).
/// `[HOST:][HOSTPORT:]CONTAINERPORT[/PROTOCOL]`: the host address and port when one is published.
/// A host port that is not 1–65535 is an error at its line.
fn parse_port_spec(
    spec: &str,
    origin: &crate::yaml::Origin,
) -> Result<Option<(String, u16, Protocol)>, StackError> {
    let (spec, proto) = match spec.rsplit_once('/') {
        Some((s, p)) => (s, p),
        None => (spec, "tcp"),
    };
    let protocol = match proto.to_ascii_lowercase().as_str() {
        "udp" => Protocol::Udp,
        "sctp" => Protocol::Sctp,
        _ => Protocol::Tcp,
    };
    let parts: Vec<&str> = spec.split(':').collect();
    let (addr, port) = match parts.as_slice() {
        [addr, port, _] => (addr.to_string(), *port),
        [port, _] => (String::new(), *port),
        _ => return Ok(None),
    };
    if port.contains('-') {
        return Ok(None); // a range (`8080-8090`): Docker publishes it; not checked one by one
    }
    let port = ports::host_port(&port.into(), &format!("port mapping {spec}"), Some(origin))?;
    Ok(port.map(|p| (addr, p, protocol)))
}

/// Host ports the cluster will publish: `ports`, a fixed `kubeAPI.hostPort`, the registry.
pub fn host_ports(t: &Target) -> Result<Vec<HostPort>, StackError> {
    let mut out = Vec::new();
    let map = t.provider_config.as_ref().and_then(|c| c.value.as_map());
    if let Some(Node {
        value: Value::Seq(items),
        ..
    }) = map.and_then(|m| m.get("ports"))
    {
        for item in items {
            let Some(port_node) = item.value.as_map().and_then(|m| m.get("port")) else {
                continue;
            };
            let Some(spec) = port_node.value.to_json().as_str().map(str::to_owned) else {
                continue;
            };
            if let Some((addr, port, protocol)) = parse_port_spec(&spec, &port_node.origin)? {
                out.push(HostPort {
                    address: ports::parse_address(&addr).unwrap_or_else(ports::loopback),
                    port,
                    protocol,
                    what: format!("port mapping {spec}"),
                    origin: Some(port_node.origin.clone()),
                });
            }
        }
    }
    let j = config_json(t);
    let api_port = ports::host_port(
        &j["kubeAPI"]["hostPort"],
        "kubeAPI.hostPort",
        t.config_origin().as_ref(),
    )?;
    if let Some(port) = api_port {
        out.push(HostPort::tcp(
            ports::parse_address(j["kubeAPI"]["hostIP"].as_str().unwrap_or(""))
                .unwrap_or_else(ports::loopback),
            port,
            "the API server (kubeAPI.hostPort)",
            t.config_origin(),
        ));
    }
    if let Some(reg) = &t.registry {
        let host = j["registries"]["create"]["host"].as_str().unwrap_or("");
        out.push(HostPort::tcp(
            ports::parse_address(host).unwrap_or_else(ports::loopback),
            reg.host_port,
            format!("registry {}", reg.name),
            t.config_origin(),
        ));
    }
    Ok(out)
}

/// The config k3d gets: the project's file, or a copy under `.stack/` with stack's additions
/// (`cluster.nodeLabels` as `options.k3s.nodeLabels`, the registry when the file has none).
fn effective_config(t: &Target) -> (Option<String>, Option<(String, String)>) {
    let mut cfg = config_json(t);
    let inject_registry = t.registry.is_some() && !cfg["registries"]["create"].is_object();
    if t.node_labels.is_empty() && !inject_registry {
        return (t.config_file.clone(), None);
    }
    if !cfg.is_object() {
        cfg = serde_json::json!({
            "apiVersion": "k3d.io/v1alpha5",
            "kind": "Simple",
            "metadata": { "name": t.name },
        });
    }
    if let (true, Some(reg)) = (inject_registry, &t.registry) {
        if !cfg["registries"].is_object() {
            cfg["registries"] = serde_json::json!({});
        }
        cfg["registries"]["create"] = serde_json::json!({
            "name": reg.name,
            "host": "127.0.0.1",
            "hostPort": reg.host_port.to_string(),
        });
    }
    if !t.node_labels.is_empty() {
        let mut filters = vec!["server:*"];
        if cfg["agents"].as_u64().unwrap_or(0) > 0 {
            filters.push("agent:*");
        }
        if !cfg["options"].is_object() {
            cfg["options"] = serde_json::json!({});
        }
        if !cfg["options"]["k3s"].is_object() {
            cfg["options"]["k3s"] = serde_json::json!({});
        }
        if !cfg["options"]["k3s"]["nodeLabels"].is_array() {
            cfg["options"]["k3s"]["nodeLabels"] = serde_json::json!([]);
        }
        let labels = cfg["options"]["k3s"]["nodeLabels"]
            .as_array_mut()
            .expect("just made an array");
        for (k, v) in &t.node_labels {
            labels.push(serde_json::json!({ "label": format!("{k}={v}"), "nodeFilters": filters }));
        }
    }
    let path = super::generated_config_path(t);
    let text = format!(
        "{}\n",
        serde_json::to_string_pretty(&cfg).expect("serializes")
    );
    (Some(path.clone()), Some((path, text)))
}

fn merge_kubeconfig_cmd(t: &Target, k3d: &Path) -> Cmd {
    Cmd::new(k3d)
        .args(["kubeconfig", "merge", &t.name])
        .args(["--output", &t.kubeconfig])
        .arg("--kubeconfig-switch-context=false")
        .cwd(&t.root)
}

pub fn plan_up(t: &Target, host: &Host, report: &mut ChangeReport) -> anyhow::Result<Vec<Step>> {
    let k3d = host.tool(Tool::K3d)?;
    let exists = find(&list(t, host, &k3d)?, &t.name).is_some();
    let mut steps = Vec::new();
    if exists {
        if !t.kubeconfig_has_context() {
            steps.push(Step::run(
                format!("write credentials for {} into {}", t.context, t.kubeconfig),
                merge_kubeconfig_cmd(t, &k3d),
            ));
        } else {
            report
                .notes
                .push(format!("k3d cluster {} is up to date", t.name));
        }
        return Ok(steps);
    }
    ports::check(&host_ports(t)?)?;
    let (config, generated) = effective_config(t);
    steps.extend(super::before_create(
        t,
        generated,
        "write the k3d config with stack's node labels and registry added",
    ));
    let mut create = Cmd::new(&k3d).args(["cluster", "create", &t.name]);
    if let Some(c) = &config {
        create = create.args(["--config", c]);
    }
    // Never touch the user's kubeconfig (flags override the config file's options.kubeconfig).
    create = create
        .arg("--kubeconfig-update-default=false")
        .arg("--kubeconfig-switch-context=false")
        .cwd(&t.root);
    steps.push(Step::run(format!("create k3d cluster {}", t.name), create));
    steps.push(Step::run(
        format!("write credentials for {} into {}", t.context, t.kubeconfig),
        merge_kubeconfig_cmd(t, &k3d),
    ));
    steps.push(super::after_create(t));
    Ok(steps)
}

pub fn plan_down(t: &Target, host: &Host, report: &mut ChangeReport) -> anyhow::Result<Vec<Step>> {
    let k3d = host.tool(Tool::K3d)?;
    let exists = find(&list(t, host, &k3d)?, &t.name).is_some();
    let ownership = super::ownership(t, exists)?;
    let mut steps = Vec::new();
    if exists && ownership == super::Ownership::Ours {
        steps.push(Step::run(
            format!(
                "delete k3d cluster {} (k3d removes the registry it created with it)",
                t.name
            ),
            Cmd::new(&k3d)
                .args(["cluster", "delete", &t.name])
                .cwd(&t.root),
        ));
    } else if exists {
        report.kept.push(format!(
            "k3d cluster {}: {}; delete it yourself with `k3d cluster delete {}`",
            t.name,
            ownership.kept_reason(t),
            t.name
        ));
    }
    // A record is forgotten once its cluster is gone or was replaced; an unverified one is kept.
    if matches!(
        ownership,
        super::Ownership::Ours | super::Ownership::Replaced { .. }
    ) {
        steps.push(Step::remove(
            format!("forget that stack created k3d cluster {}", t.name),
            t.owned_marker(),
        ));
        // `k3d cluster delete` cleans the default kubeconfig only; the credentials stack merged
        // into its own file would otherwise outlive the cluster. kubectl edits the file: a
        // rewrite through kube-rs's `Kubeconfig` would not keep it as written (relative paths
        // become absolute, layout and comments change).
        if let Some((cluster, user)) =
            super::kubeconfig_context_entry(&t.kubeconfig_path(), &t.context)
        {
            let kubectl = host.tool(Tool::Kubectl)?;
            let mut edits = vec![
                ("context", ["delete-context", t.context.as_str()]),
                ("cluster", ["delete-cluster", cluster.as_str()]),
            ];
            if let Some(user) = &user {
                edits.push(("user", ["delete-user", user.as_str()]));
            }
            for (what, args) in edits {
                steps.push(Step::run(
                    format!("remove the {what} of {} from {}", t.context, t.kubeconfig),
                    crate::release::kubeconfig_edit(&kubectl, &t.root, &t.kubeconfig, &args),
                ));
            }
        }
    }
    if steps.is_empty() {
        report
            .notes
            .push(format!("nothing to remove for k3d cluster {}", t.name));
    }
    Ok(steps)
}

pub fn status(t: &Target, host: &Host) -> anyhow::Result<StatusReport> {
    let k3d = host.tool(Tool::K3d)?;
    let clusters = list(t, host, &k3d)?;
    let mut report = StatusReport::new(t);
    let Some(cluster) = find(&clusters, &t.name) else {
        return Ok(report);
    };
    report.exists = true;
    report.nodes = cluster["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|n| NodeStatus {
            name: n["name"].as_str().unwrap_or_default().to_owned(),
            role: n["role"].as_str().unwrap_or_default().to_owned(),
            ready: n["State"]["Running"].as_bool(),
        })
        .collect();
    if report.context_in_kubeconfig {
        match super::kube_nodes(t)? {
            Ok(_) => report.reachable = Some(true),
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
    if let Some(reg) = &t.registry {
        let c = registry::Daemon::connect(host)?.inspect(&reg.name)?;
        report.registry = Some(RegistryStatus::from(reg, c.as_ref()));
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_specs() {
        let at = crate::config::file_origin("k3d/cluster.yaml");
        let parse = |spec| parse_port_spec(spec, &at).unwrap();
        assert_eq!(
            parse("127.0.0.1:8080:80"),
            Some(("127.0.0.1".into(), 8080, Protocol::Tcp))
        );
        assert_eq!(
            parse("5353:53/udp"),
            Some((String::new(), 5353, Protocol::Udp))
        );
        assert_eq!(parse("80"), None);
        assert_eq!(parse("8080-8090:80"), None);
        assert!(parse_port_spec("65536:80", &at).is_err());
    }
}
