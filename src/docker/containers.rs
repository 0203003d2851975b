//! Containers and networks through the Engine API: what `docker container inspect`, `docker ps`,
//! `docker run -d`, `docker start`, `docker rm -f`, `docker network inspect|connect|disconnect` and
//! `docker exec` do, as typed calls. Absence is the API's 404, never text on stderr.

use super::Docker;
use crate::error::StackError;
use bollard::errors::Error as ApiError;
use bollard::models::{
    ContainerCreateBody, ExecConfig, HostConfig, NetworkConnectRequest, NetworkDisconnectRequest,
    PortBinding, RestartPolicy, RestartPolicyNameEnum,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListContainersOptionsBuilder, RemoveContainerOptionsBuilder,
};
use futures::StreamExt;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use tokio::io::AsyncWriteExt;

/// A container as inspect or list shows it.
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

/// What `docker run -d` is given: a detached container, started after it is created.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunSpec {
    pub name: String,
    pub image: String,
    pub labels: BTreeMap<String, String>,
    /// The network it starts on (`--network`); the daemon's default when `None`.
    pub network: Option<String>,
    /// `(host_ip, host_port, container_port/proto)`, as `-p host_ip:host_port:container_port`.
    pub publish: Vec<(String, u16, String)>,
    /// `--restart=always`.
    pub restart_always: bool,
}

/// What a command run with exec printed, and how it ended.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExecOutput {
    pub exit_code: i64,
    pub stdout: String,
    pub stderr: String,
}

impl ExecOutput {
    pub fn success(&self) -> bool {
        self.exit_code == 0
    }
}

fn not_found(e: &ApiError) -> bool {
    matches!(
        e,
        ApiError::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

impl Docker {
    /// An API call that failed: an answer from the daemon (it refused) is a failed operation
    /// (exit 4) naming what was asked; no answer at all is an unreachable daemon (exit 3).
    pub(crate) fn refused(&self, what: &str, e: ApiError) -> StackError {
        match e {
            ApiError::DockerResponseServerError {
                status_code,
                message,
            } => StackError::ToolFailed {
                tool: "docker".into(),
                command: what.to_owned(),
                status: 1,
                stderr_tail: format!(
                    "the Docker daemon at {} answered HTTP {status_code}: {message}",
                    self.endpoint
                ),
                hint: None,
            },
            other => self.api_error(what, other),
        }
    }

    /// `docker container inspect NAME`: `None` when there is no such container (404).
    pub async fn inspect_container(&self, name: &str) -> Result<Option<Container>, StackError> {
        let c = match self.client.inspect_container(name, None).await {
            Ok(c) => c,
            Err(e) if not_found(&e) => return Ok(None),
            Err(e) => return Err(self.refused(&format!("docker container inspect {name}"), e)),
        };
        let state = c.state.unwrap_or_default();
        let mut ports = Vec::new();
        for (container_port, bindings) in c
            .host_config
            .and_then(|h| h.port_bindings)
            .unwrap_or_default()
        {
            for b in bindings.into_iter().flatten() {
                ports.push(format!(
                    "{}:{}->{container_port}",
                    b.host_ip.unwrap_or_default(),
                    b.host_port.unwrap_or_default()
                ));
            }
        }
        ports.sort();
        let mut networks: Vec<String> = c
            .network_settings
            .and_then(|n| n.networks)
            .unwrap_or_default()
            .into_keys()
            .collect();
        networks.sort();
        Ok(Some(Container {
            name: match c
                .name
                .as_deref()
                .unwrap_or_default()
                .trim_start_matches('/')
            {
                "" => name.to_owned(),
                n => n.to_owned(),
            },
            running: state.running.unwrap_or(false),
            status: state.status.map(|s| s.to_string()).unwrap_or_default(),
            labels: c
                .config
                .and_then(|c| c.labels)
                .unwrap_or_default()
                .into_iter()
                .collect(),
            networks,
            ports,
        }))
    }

    /// `docker ps -a --filter label=K=V ...`: every container carrying all of `labels`, by name.
    pub async fn containers_labelled(
        &self,
        labels: &[(&str, &str)],
    ) -> Result<Vec<Container>, StackError> {
        let filters = HashMap::from([(
            "label",
            labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>(),
        )]);
        let opts = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&filters)
            .build();
        let listed = self
            .client
            .list_containers(Some(opts))
            .await
            .map_err(|e| self.refused("docker ps -a (by label)", e))?;
        let mut out: Vec<Container> = listed
            .into_iter()
            .map(|c| {
                let mut networks: Vec<String> = c
                    .network_settings
                    .and_then(|n| n.networks)
                    .unwrap_or_default()
                    .into_keys()
                    .collect();
                networks.sort();
                let status = c.state.map(|s| s.to_string()).unwrap_or_default();
                Container {
                    name: c
                        .names
                        .unwrap_or_default()
                        .first()
                        .map(|n| n.trim_start_matches('/').to_owned())
                        .unwrap_or_default(),
                    running: status == "running",
                    status,
                    labels: c.labels.unwrap_or_default().into_iter().collect(),
                    networks,
                    ports: Vec::new(),
                }
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// `docker network inspect NAME`: whether it exists (404: it does not).
    pub async fn network_exists(&self, name: &str) -> Result<bool, StackError> {
        match self.client.inspect_network(name, None).await {
            Ok(_) => Ok(true),
            Err(e) if not_found(&e) => Ok(false),
            Err(e) => Err(self.refused(&format!("docker network inspect {name}"), e)),
        }
    }

    /// `docker run -d`: create the container, then start it.
    pub async fn run_container(&self, spec: &RunSpec, what: &str) -> Result<(), StackError> {
        let port_bindings: HashMap<String, Option<Vec<PortBinding>>> = spec
            .publish
            .iter()
            .map(|(ip, port, container_port)| {
                (
                    container_port.clone(),
                    Some(vec![PortBinding {
                        host_ip: Some(ip.clone()),
                        host_port: Some(port.to_string()),
                    }]),
                )
            })
            .collect();
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            labels: Some(spec.labels.clone().into_iter().collect()),
            exposed_ports: Some(spec.publish.iter().map(|p| p.2.clone()).collect()),
            host_config: Some(HostConfig {
                port_bindings: Some(port_bindings),
                restart_policy: spec.restart_always.then_some(RestartPolicy {
                    name: Some(RestartPolicyNameEnum::ALWAYS),
                    maximum_retry_count: None,
                }),
                network_mode: spec.network.clone(),
                ..HostConfig::default()
            }),
            ..ContainerCreateBody::default()
        };
        let opts = CreateContainerOptionsBuilder::new()
            .name(&spec.name)
            .build();
        self.client
            .create_container(Some(opts), body)
            .await
            .map_err(|e| self.refused(what, e))?;
        self.start_container(&spec.name, what).await
    }

    /// `docker start NAME`.
    pub async fn start_container(&self, name: &str, what: &str) -> Result<(), StackError> {
        self.client
            .start_container(name, None)
            .await
            .map_err(|e| self.refused(what, e))
    }

    /// `docker rm -f NAME`; a container already gone is fine.
    pub async fn remove_container(&self, name: &str, what: &str) -> Result<(), StackError> {
        let opts = RemoveContainerOptionsBuilder::new().force(true).build();
        match self.client.remove_container(name, Some(opts)).await {
            Err(e) if !not_found(&e) => Err(self.refused(what, e)),
            _ => Ok(()),
        }
    }

    /// `docker network connect NETWORK CONTAINER`.
    pub async fn connect_network(
        &self,
        network: &str,
        container: &str,
        what: &str,
    ) -> Result<(), StackError> {
        let req = NetworkConnectRequest {
            container: container.to_owned(),
            endpoint_config: None,
        };
        self.client
            .connect_network(network, req)
            .await
            .map_err(|e| self.refused(what, e))
    }

    /// `docker network disconnect NETWORK CONTAINER`.
    pub async fn disconnect_network(
        &self,
        network: &str,
        container: &str,
        what: &str,
    ) -> Result<(), StackError> {
        let req = NetworkDisconnectRequest {
            container: container.to_owned(),
            force: None,
        };
        self.client
            .disconnect_network(network, req)
            .await
            .map_err(|e| self.refused(what, e))
    }

    /// `docker exec [-i] CONTAINER CMD...`: `stdin` (when given) is written, then closed; output
    /// is captured. A missing container is an error like any refusal.
    pub async fn exec(
        &self,
        container: &str,
        cmd: &[String],
        stdin: Option<&[u8]>,
        what: &str,
    ) -> Result<ExecOutput, StackError> {
        let config = ExecConfig {
            attach_stdin: Some(stdin.is_some()),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            tty: Some(false),
            cmd: Some(cmd.to_vec()),
            ..ExecConfig::default()
        };
        let created = self
            .client
            .create_exec(container, config)
            .await
            .map_err(|e| self.refused(what, e))?;
        let started = self
            .client
            .start_exec(&created.id, None)
            .await
            .map_err(|e| self.refused(what, e))?;
        let mut out = ExecOutput::default();
        if let bollard::exec::StartExecResults::Attached {
            mut output,
            mut input,
        } = started
        {
            if let Some(bytes) = stdin {
                input
                    .write_all(bytes)
                    .await
                    .map_err(|e| self.api_error(what, e))?;
                // Closing our half is the process's end of input.
                input
                    .shutdown()
                    .await
                    .map_err(|e| self.api_error(what, e))?;
            }
            drop(input);
            let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
            while let Some(item) = output.next().await {
                match item.map_err(|e| self.refused(what, e))? {
                    bollard::container::LogOutput::StdOut { message }
                    | bollard::container::LogOutput::Console { message } => {
                        stdout.extend_from_slice(&message)
                    }
                    bollard::container::LogOutput::StdErr { message } => {
                        stderr.extend_from_slice(&message)
                    }
                    bollard::container::LogOutput::StdIn { .. } => {}
                }
            }
            out.stdout = String::from_utf8_lossy(&stdout).into_owned();
            out.stderr = String::from_utf8_lossy(&stderr).into_owned();
        }
        let inspected = self
            .client
            .inspect_exec(&created.id)
            .await
            .map_err(|e| self.refused(what, e))?;
        out.exit_code = inspected.exit_code.unwrap_or(-1);
        Ok(out)
    }
}
