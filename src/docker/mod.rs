//! Docker through its API (bollard), never the `docker` CLI: ping, image presence, build, tag, push.
//! Invariant: an unreachable daemon is `StackError::Unreachable` (exit 3) naming the endpoint and
//! the fix; build failures keep the failing step and its last log lines.

pub mod endpoint;

use crate::error::StackError;
use bollard::query_parameters::{
    BuildImageOptionsBuilder, PushImageOptionsBuilder, TagImageOptionsBuilder,
};
use futures::StreamExt;
use std::collections::HashMap;

pub struct Docker {
    client: bollard::Docker,
    pub endpoint: String,
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
        Ok(Docker { client, endpoint })
    }

    /// Whether the daemon has an image with this reference.
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

    pub async fn has_image(&self, reference: &str) -> Result<bool, StackError> {
        match self.client.inspect_image(reference).await {
            Ok(_) => Ok(true),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(false),
            Err(e) => Err(self.api_error("inspecting an image", e)),
        }
    }

    fn api_error(&self, what: &str, e: bollard::errors::Error) -> StackError {
        StackError::Unreachable {
            what: format!("the Docker daemon at {}", self.endpoint),
            hint: format!("{what} failed: {e}"),
        }
    }

    /// Builds from a tar stream; `on_line` sees every line of build output as it arrives.
    pub async fn build(
        &self,
        spec: &BuildSpec<'_>,
        tar: impl futures::Stream<Item = Result<bytes::Bytes, std::io::Error>> + Send + 'static,
        mut on_line: impl FnMut(&str),
    ) -> Result<Result<(), BuildFailure>, StackError> {
        let mut opts = BuildImageOptionsBuilder::new()
            .dockerfile(spec.dockerfile)
            .t(spec.reference)
            .rm(true)
            .forcerm(true)
            .buildargs(spec.build_args)
            .labels(spec.labels);
        if let Some(t) = spec.target {
            opts = opts.target(t);
        }
        if let Some(p) = spec.platform {
            opts = opts.platform(p);
        }
        let mut stream =
            self.client
                .build_image(opts.build(), None, Some(bollard::body_try_stream(tar)));
        let mut step = None;
        let mut last: std::collections::VecDeque<String> = Default::default();
        while let Some(item) = stream.next().await {
            let info = match item {
                Ok(info) => info,
                Err(bollard::errors::Error::DockerStreamError { error }) => {
                    return Ok(Err(BuildFailure {
                        step,
                        message: error,
                        last_lines: last.into(),
                    }))
                }
                Err(bollard::errors::Error::DockerResponseServerError { message, .. }) => {
                    return Ok(Err(BuildFailure {
                        step,
                        message,
                        last_lines: last.into(),
                    }))
                }
                Err(e) => return Err(self.api_error("building", e)),
            };
            if let Some(text) = info.stream.as_deref() {
                for line in text.lines().map(str::trim_end).filter(|l| !l.is_empty()) {
                    if line.starts_with("Step ") {
                        step = Some(line.to_owned());
                    }
                    on_line(line);
                    last.push_back(line.to_owned());
                    if last.len() > 12 {
                        last.pop_front();
                    }
                }
            }
            if let Some(detail) = info.error_detail {
                let message = detail.message.unwrap_or_default();
                return Ok(Err(BuildFailure {
                    step,
                    message,
                    last_lines: last.into(),
                }));
            }
        }
        Ok(Ok(()))
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
