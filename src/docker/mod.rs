//! Docker through its API (bollard), never the `docker` CLI: ping, image presence, build, tag, push,
//! and the containers, networks and execs `cluster` needs (`containers.rs`; changes as plan steps,
//! `op.rs`).
//! Invariant: an unreachable daemon is `StackError::Unreachable` (exit 3) naming the endpoint and
//! the fix; build failures keep the failing step and its last log lines.
//!
//! Builds go through BuildKit (`POST /build?version=2`, the daemon's built-in Dockerfile frontend,
//! the context as the request body, no session): `RUN --mount=type=cache`, heredocs where the
//! daemon's frontend has them. `http.rs` makes that one request (bollard cannot read its output
//! without compiling a gRPC stack in), `buildkit.rs` decodes BuildKit's progress messages and
//! `progress.rs` turns them into progress lines, the failing step and its last output lines.

mod buildkit;
mod containers;
pub mod endpoint;
mod http;
pub mod op;
mod progress;

pub use containers::{Container, ExecOutput, RunSpec};
pub use op::DockerOp;

use crate::error::StackError;
use bollard::query_parameters::{PushImageOptionsBuilder, TagImageOptionsBuilder};
use futures::StreamExt;
use std::collections::HashMap;

pub struct Docker {
    client: bollard::Docker,
    pub endpoint: String,
    /// What builds need to know about the daemon: asked once, and only when something is built.
    daemon: tokio::sync::OnceCell<Daemon>,
}

/// The daemon as builds see it.
struct Daemon {
    /// `Docker Engine 20.10.24 (API 1.41, linux)`, for messages.
    describe: String,
    /// Docker's own engine (not another implementation of its API), and its major version.
    docker_major: Option<u32>,
    /// Why this daemon cannot build with BuildKit, if it cannot.
    no_buildkit: Option<String>,
    /// Whether the daemon has its default `bridge` network. Without one (`dockerd --bridge=none`)
    /// the classic builder ran steps with only a loopback interface; BuildKit instead fails every
    /// `RUN` with "network bridge not found" unless asked for network mode `none`, so it is asked.
    bridge: bool,
}

/// What to build: the tar stream is produced by the caller.
pub struct BuildSpec<'a> {
    pub dockerfile: &'a str,
    pub reference: &'a str,
    pub target: Option<&'a str>,
    pub platform: Option<&'a str>,
    pub build_args: &'a HashMap<String, String>,
    pub labels: &'a HashMap<String, String>,
}

/// A build that failed: the step that failed, the daemon's message, and the last lines of output.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildFailure {
    pub step: Option<String>,
    pub message: String,
    pub last_lines: Vec<String>,
}

impl Docker {
    /// Connects to `endpoint` (`unix://…` or `tcp://…`, as DOCKER_HOST spells it) and pings it.
    pub async fn connect(endpoint: &str) -> Result<Docker, StackError> {
        if endpoint.is_empty() {
            return Err(StackError::Unreachable {
                what: "the Docker daemon".into(),
                hint: "no endpoint could be resolved (DOCKER_HOST, DOCKER_CONTEXT, ~/.docker/config.json); see `stack doctor`".into(),
            });
        }
        let endpoint = endpoint.to_owned();
        let unreachable = |why: String| {
            StackError::Unreachable {
            what: format!("the Docker daemon at {endpoint}"),
            hint: format!(
                "{why}; start Docker (e.g. `sudo systemctl start docker`) or point DOCKER_HOST at a running daemon"
            ),
        }
        };
        let client = match endpoint.strip_prefix("unix://") {
            Some(path) => {
                bollard::Docker::connect_with_unix(path, 120, bollard::API_DEFAULT_VERSION)
            }
            None => {
                bollard::Docker::connect_with_http(&endpoint, 120, bollard::API_DEFAULT_VERSION)
            }
        }
        .map_err(|e| unreachable(e.to_string()))?;
        client
            .ping()
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        Ok(Docker {
            client,
            endpoint,
            daemon: tokio::sync::OnceCell::new(),
        })
    }

    /// The daemon's Engine version.
    pub async fn server_version(&self) -> Result<String, StackError> {
        let v = self
            .client
            .version()
            .await
            .map_err(|e| StackError::Unreachable {
                what: format!("the Docker daemon at {}", self.endpoint),
                hint: e.to_string(),
            })?;
        Ok(v.version.unwrap_or_else(|| "(version unknown)".into()))
    }

    /// Whether the daemon has an image with this reference.
    pub async fn has_image(&self, reference: &str) -> Result<bool, StackError> {
        match self.client.inspect_image(reference).await {
            Ok(_) => Ok(true),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(false),
            Err(e) => Err(self.api_error("inspecting an image", e)),
        }
    }

    fn api_error(&self, what: &str, e: impl std::fmt::Display) -> StackError {
        StackError::Unreachable {
            what: format!("the Docker daemon at {}", self.endpoint),
            hint: format!("{what} failed: {e}"),
        }
    }

    /// Builds from a tar stream with BuildKit; `on_line` sees progress lines as they arrive (each
    /// step as it starts, `CACHED <step>`, the steps' output line by line, warnings, errors).
    pub async fn build(
        &self,
        spec: &BuildSpec<'_>,
        tar: impl futures::Stream<Item = Result<bytes::Bytes, std::io::Error>> + Send + 'static,
        mut on_line: impl FnMut(&str),
    ) -> Result<Result<(), BuildFailure>, StackError> {
        let daemon = self.daemon().await?;
        if let Some(why) = &daemon.no_buildkit {
            return Err(StackError::MissingTool {
                tool: format!("BuildKit in the Docker daemon at {}", self.endpoint),
                hint: format!(
                    "{why}; stack builds with BuildKit: point DOCKER_HOST at a Linux Docker Engine 18.09 or later (23.0+ for heredocs)"
                ),
            });
        }
        let json = |map: &HashMap<String, String>| {
            serde_json::to_string(map).expect("a string map serializes")
        };
        let mut query = form_urlencoded::Serializer::new(String::from("/build?"));
        query
            .append_pair("version", "2")
            .append_pair("dockerfile", spec.dockerfile)
            .append_pair("t", spec.reference)
            .append_pair("buildargs", &json(spec.build_args))
            .append_pair("labels", &json(spec.labels));
        if let Some(t) = spec.target {
            query.append_pair("target", t);
        }
        if let Some(p) = spec.platform {
            query.append_pair("platform", p);
        }
        if !daemon.bridge {
            query.append_pair("networkmode", "none");
        }
        let mut response = http::post(&self.endpoint, &query.finish(), "application/x-tar", tar)
            .await
            .map_err(|e| self.api_error("building", e.0))?;
        if response.status != 200 {
            let body = response.text().await;
            let message = serde_json::from_str::<ErrorBody>(&body)
                .map(|e| e.message)
                .unwrap_or(body);
            return Ok(Err(BuildFailure {
                step: None,
                message: daemon.explain(message),
                last_lines: Vec::new(),
            }));
        }
        let mut progress = progress::Progress::default();
        while let Some(line) = response.line().await {
            let line = line.map_err(|e| self.api_error("building", e.0))?;
            if line.trim_ascii().is_empty() {
                continue;
            }
            let Ok(message) = serde_json::from_slice::<BuildMessage>(&line) else {
                continue;
            };
            if message.id.as_deref() == Some("moby.buildkit.trace") {
                if let Some(aux) = message.aux.as_ref().and_then(|a| a.as_str()) {
                    match buildkit::decode_aux(aux) {
                        Ok(status) => progress.buildkit(status, &mut on_line),
                        Err(e) => on_line(&e.to_string()),
                    }
                }
            }
            if let Some(text) = &message.stream {
                progress.classic(text, &mut on_line);
            }
            let error = message
                .error_detail
                .and_then(|d| d.message)
                .or(message.error);
            if let Some(error) = error {
                return Ok(Err(BuildFailure {
                    step: progress.failed_step(),
                    message: daemon.explain(error),
                    last_lines: progress.last_lines(),
                }));
            }
        }
        Ok(Ok(()))
    }

    async fn daemon(&self) -> Result<&Daemon, StackError> {
        self.daemon
            .get_or_try_init(|| async {
                let v = self
                    .client
                    .version()
                    .await
                    .map_err(|e| self.api_error("asking the daemon's version", e))?;
                let bridge = match self.client.inspect_network("bridge", None).await {
                    Err(bollard::errors::Error::DockerResponseServerError {
                        status_code: 404,
                        ..
                    }) => false,
                    // Anything else: leave the network to the daemon's default, as before.
                    _ => true,
                };
                Ok(Daemon::new(&v, bridge))
            })
            .await
    }

    /// `docker tag source repo:tag`.
    pub async fn tag(&self, source: &str, repo: &str, tag: &str) -> Result<(), StackError> {
        let opts = TagImageOptionsBuilder::new().repo(repo).tag(tag).build();
        self.client
            .tag_image(source, Some(opts))
            .await
            .map_err(|e| self.api_error("tagging", e))
    }

    /// `docker push repo:tag`; the daemon's error (e.g. registry unreachable) is returned as text.
    pub async fn push(&self, repo: &str, tag: &str) -> Result<Result<(), String>, StackError> {
        let opts = PushImageOptionsBuilder::new().tag(tag).build();
        let mut stream = self.client.push_image(repo, Some(opts), None);
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    if let Some(detail) = info.error_detail {
                        return Ok(Err(detail.message.unwrap_or_default()));
                    }
                }
                Err(bollard::errors::Error::DockerStreamError { error }) => return Ok(Err(error)),
                Err(bollard::errors::Error::DockerResponseServerError { message, .. }) => {
                    return Ok(Err(message))
                }
                Err(e) => return Err(self.api_error("pushing", e)),
            }
        }
        Ok(Ok(()))
    }
}

impl Daemon {
    fn new(v: &bollard::models::SystemVersion, bridge: bool) -> Daemon {
        let version = v.version.clone().unwrap_or_else(|| "(unknown)".into());
        let api = v.api_version.clone().unwrap_or_default();
        let os = v.os.clone().unwrap_or_default();
        let docker = v.components.iter().flatten().any(|c| c.name == "Engine");
        let docker_major = docker
            .then(|| version.split('.').next()?.parse().ok())
            .flatten();
        let name = if docker { "Docker Engine" } else { "daemon" };
        let describe = format!("{name} {version} (API {api}, {os})");
        let api_at_least_1_39 = match api.split_once('.') {
            Some((major, minor)) => {
                (major.parse().unwrap_or(0u32), minor.parse().unwrap_or(0u32)) >= (1, 39)
            }
            None => true,
        };
        let no_buildkit = if os == "windows" {
            Some(format!(
                "the daemon is {describe}: Windows daemons have no BuildKit"
            ))
        } else if !api_at_least_1_39 {
            Some(format!(
                "the daemon is {describe}: BuildKit came with API 1.39"
            ))
        } else {
            None
        };
        Daemon {
            describe,
            docker_major,
            no_buildkit,
            bridge,
        }
    }

    /// The daemon's error, plus what it likely means where the daemon itself is the cause:
    /// Docker Engines before 23.0 parse Dockerfiles with a built-in frontend that predates
    /// heredocs (Dockerfile syntax 1.4), and stack never has BuildKit pull a newer one; Engines
    /// 24.0–27.4 with the containerd image store cannot read a context sent as the request body
    /// (moby/moby#47717, fixed in 27.5).
    fn explain(&self, message: String) -> String {
        if message.contains("failed to read downloaded context") {
            return format!(
                "{message} — the {} cannot read a build context sent without a BuildKit session when it uses the containerd image store (moby/moby#47717, fixed in Docker Engine 27.5); upgrade the daemon or turn its containerd image store off",
                self.describe
            );
        }
        let old_frontend = self.docker_major.is_some_and(|m| m < 23);
        if old_frontend && message.contains("dockerfile parse error") {
            return format!(
                "{message} — if the Dockerfile uses heredocs (`RUN <<EOF`) or other Dockerfile 1.4+ syntax: the {} parses Dockerfiles with a built-in frontend that predates them (Docker Engine 23.0+ has them); upgrade the daemon",
                self.describe
            );
        }
        message
    }
}

/// One line of the daemon's build output (JSON lines, both builders).
#[derive(serde::Deserialize)]
struct BuildMessage {
    id: Option<String>,
    stream: Option<String>,
    aux: Option<serde_json::Value>,
    error: Option<String>,
    #[serde(rename = "errorDetail")]
    error_detail: Option<ErrorDetail>,
}

#[derive(serde::Deserialize)]
struct ErrorDetail {
    message: Option<String>,
}

/// The body of an Engine API error response.
#[derive(serde::Deserialize)]
struct ErrorBody {
    message: String,
}

#[cfg(test)]
mod tests {
    use super::Daemon;
    use bollard::models::{SystemVersion, SystemVersionComponents};

    fn daemon(engine: Option<&str>, version: &str, api: &str, os: &str) -> Daemon {
        let v = SystemVersion {
            version: Some(version.into()),
            api_version: Some(api.into()),
            os: Some(os.into()),
            components: Some(
                engine
                    .map(|name| SystemVersionComponents {
                        name: name.into(),
                        version: version.into(),
                        details: None,
                    })
                    .into_iter()
                    .collect(),
            ),
            ..SystemVersion::default()
        };
        Daemon::new(&v, true)
    }

    const PARSE_ERROR: &str = "failed to solve with frontend dockerfile.v0: failed to create LLB definition: dockerfile parse error line 3: unknown instruction: ECHO";

    #[test]
    fn an_old_engines_parse_error_mentions_its_frontend() {
        let old = daemon(Some("Engine"), "20.10.24+dfsg1", "1.41", "linux");
        assert_eq!(old.no_buildkit, None);
        let explained = old.explain(PARSE_ERROR.into());
        assert!(
            explained.starts_with(PARSE_ERROR)
                && explained.contains("Docker Engine 20.10.24+dfsg1 (API 1.41, linux)")
                && explained.contains("Docker Engine 23.0+"),
            "{explained}"
        );
        // Other failures, newer engines and other implementations of the API are left as they are.
        assert_eq!(old.explain("exit code: 2".into()), "exit code: 2");
        let new = daemon(Some("Engine"), "28.2.2", "1.50", "linux");
        assert_eq!(new.explain(PARSE_ERROR.into()), PARSE_ERROR);
        let podman = daemon(Some("Podman Engine"), "4.9.3", "1.41", "linux");
        assert_eq!(podman.explain(PARSE_ERROR.into()), PARSE_ERROR);
    }

    #[test]
    fn a_context_the_containerd_store_cannot_read_names_the_engine_bug() {
        let desktop = daemon(Some("Engine"), "27.3.1", "1.47", "linux");
        let error = "failed to read downloaded context: failed to load cache key: invalid response status 403";
        let explained = desktop.explain(error.into());
        assert!(
            explained.starts_with(error)
                && explained.contains("Docker Engine 27.3.1")
                && explained.contains("moby/moby#47717"),
            "{explained}"
        );
    }

    #[test]
    fn daemons_without_buildkit_are_named() {
        let windows = daemon(Some("Engine"), "27.3.1", "1.47", "windows");
        assert!(windows
            .no_buildkit
            .is_some_and(|why| why.contains("Windows daemons have no BuildKit")));
        let ancient = daemon(Some("Engine"), "18.06.3-ce", "1.38", "linux");
        assert!(ancient
            .no_buildkit
            .is_some_and(|why| why.contains("Docker Engine 18.06.3-ce (API 1.38, linux)")));
        assert_eq!(daemon(None, "?", "", "linux").no_buildkit, None);
    }
}
