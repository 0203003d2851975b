//! A change made through the Docker API, as data: a plan step carries it (`ops::plan::Action::Docker`),
//! shows it as the equivalent `docker …` command line, and the executor applies it.

use super::containers::RunSpec;
use super::Docker;
use crate::error::StackError;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DockerOp {
    /// `docker run -d …`: create, then start.
    Run(RunSpec),
    /// `docker start NAME`.
    Start { container: String },
    /// `docker network connect NETWORK NAME`.
    Connect { network: String, container: String },
    /// `docker network disconnect NETWORK NAME`.
    Disconnect { network: String, container: String },
    /// `docker rm -f NAME`.
    Remove { container: String },
    /// `docker exec [-i] NAME CMD…`; its stdin (if any) is never shown. A non-zero exit fails.
    Exec {
        container: String,
        cmd: Vec<String>,
        stdin: Option<String>,
    },
}

impl DockerOp {
    /// The `docker` command that does the same, for people (the API is what runs).
    pub fn line(&self) -> String {
        let words: Vec<String> = match self {
            DockerOp::Run(spec) => {
                let mut w = vec!["run".into(), "-d".into()];
                if spec.restart_always {
                    w.push("--restart=always".into());
                }
                w.extend(["--name".into(), spec.name.clone()]);
                if let Some(n) = &spec.network {
                    w.extend(["--network".into(), n.clone()]);
                }
                for (ip, port, container_port) in &spec.publish {
                    let container_port = container_port
                        .strip_suffix("/tcp")
                        .unwrap_or(container_port);
                    w.extend(["-p".into(), format!("{ip}:{port}:{container_port}")]);
                }
                for (k, v) in &spec.labels {
                    w.extend(["--label".into(), format!("{k}={v}")]);
                }
                w.push(spec.image.clone());
                w
            }
            DockerOp::Start { container } => vec!["start".into(), container.clone()],
            DockerOp::Connect { network, container } => {
                vec![
                    "network".into(),
                    "connect".into(),
                    network.clone(),
                    container.clone(),
                ]
            }
            DockerOp::Disconnect { network, container } => vec![
                "network".into(),
                "disconnect".into(),
                network.clone(),
                container.clone(),
            ],
            DockerOp::Remove { container } => vec!["rm".into(), "-f".into(), container.clone()],
            DockerOp::Exec {
                container,
                cmd,
                stdin,
            } => {
                let mut w = vec!["exec".into()];
                if stdin.is_some() {
                    w.push("-i".into());
                }
                w.push(container.clone());
                w.extend(cmd.iter().cloned());
                w
            }
        };
        let mut line = String::from("docker");
        for w in &words {
            line.push(' ');
            line.push_str(&crate::tool::quote(w));
        }
        if matches!(self, DockerOp::Exec { stdin: Some(_), .. }) {
            line.push_str(" < <redacted>");
        }
        line
    }

    /// Makes the change through `docker`.
    pub async fn apply(&self, docker: &Docker) -> Result<(), StackError> {
        let line = self.line();
        match self {
            DockerOp::Run(spec) => docker.run_container(spec, &line).await,
            DockerOp::Start { container } => docker.start_container(container, &line).await,
            DockerOp::Connect { network, container } => {
                docker.connect_network(network, container, &line).await
            }
            DockerOp::Disconnect { network, container } => {
                docker.disconnect_network(network, container, &line).await
            }
            DockerOp::Remove { container } => docker.remove_container(container, &line).await,
            DockerOp::Exec {
                container,
                cmd,
                stdin,
            } => {
                let out = docker
                    .exec(container, cmd, stdin.as_deref().map(str::as_bytes), &line)
                    .await?;
                if out.success() {
                    return Ok(());
                }
                let lines: Vec<&str> = out.stderr.trim_end().lines().collect();
                Err(StackError::ToolFailed {
                    tool: "docker".into(),
                    command: line,
                    status: i32::try_from(out.exit_code).unwrap_or(-1),
                    stderr_tail: lines[lines.len().saturating_sub(20)..].join("\n"),
                    hint: None,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn lines_read_like_the_docker_cli() {
        let run = DockerOp::Run(RunSpec {
            name: "stack-registry".into(),
            image: "registry:2".into(),
            labels: BTreeMap::from([
                ("dev.stack.owned".into(), "true".into()),
                ("dev.stack.cluster".into(), "stack".into()),
            ]),
            network: Some("kind".into()),
            publish: vec![("127.0.0.1".into(), 5001, "5000/tcp".into())],
            restart_always: true,
        });
        assert_eq!(
            run.line(),
            "docker run -d --restart=always --name stack-registry --network kind -p 127.0.0.1:5001:5000 --label dev.stack.cluster=stack --label dev.stack.owned=true registry:2"
        );
        let exec = DockerOp::Exec {
            container: "n".into(),
            cmd: vec!["sh".into(), "-c".into(), "cat > \"$1\"".into()],
            stdin: Some("secret".into()),
        };
        assert_eq!(
            exec.line(),
            "docker exec -i n sh -c 'cat > \"$1\"' < <redacted>"
        );
    }
}
