//! Kubernetes through kube-rs: a client pinned to an explicit kubeconfig file and context, rollout
//! waiting with named failure reasons, a diagnostics directory for when it goes wrong, and the
//! inner loop's port-forwards and log following.
//!
//! Invariants: a client is only ever built from a kubeconfig file and a context named by the caller
//! (never "the current context"); waiting uses watches, never polling; nothing here prints (progress
//! goes through a callback, results come back as values).

pub(crate) mod classify;
pub mod diagnostics;
pub mod forward;
pub mod logs;
pub mod object;
pub mod sync;
pub mod wait;

pub use classify::{Failure, Reason};
pub use diagnostics::{collect, Collected, HelmStatus};
pub use wait::{wait_ready, Readiness, ResourceProgress};

use crate::error::StackError;
use ::kube::config::{KubeConfigOptions, Kubeconfig};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long the API server gets to answer `/version` before it counts as unreachable.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// A kubeconfig file and a context in it: where a planned API step goes (never the current
/// context).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KubeContext {
    pub kubeconfig: PathBuf,
    pub context: String,
}

impl KubeContext {
    /// A client for this context, checked to answer (see [`client`]).
    pub async fn client(&self) -> Result<::kube::Client, StackError> {
        client(&self.kubeconfig, &self.context).await
    }
}

/// The API server's `/readyz` (`ok` when ready). Not ready: the checks that failed, one line.
pub async fn readyz(client: &::kube::Client) -> Result<String, String> {
    let request = hyper::Request::get("/readyz")
        .body(Vec::new())
        .expect("a static request");
    match client.request_text(request).await {
        Ok(text) => Ok(text.trim().to_owned()),
        Err(::kube::Error::Api(s)) => {
            let failed: Vec<&str> = s
                .message
                .lines()
                .map(str::trim)
                .filter(|l| l.starts_with("[-]"))
                .collect();
            Err(if failed.is_empty() {
                format!("/readyz answered {}: {}", s.code, s.message.trim())
            } else {
                format!("/readyz answered {}: {}", s.code, failed.join("; "))
            })
        }
        Err(e) => Err(wait::api_message(&e)),
    }
}

/// An error and its causes on one line: kube-rs's own text for a refused connection is only
/// "client error (Connect)"; the cause says "Connection refused".
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text = format!("{text}: {more}");
        }
        source = cause.source();
    }
    text
}

/// A client for `context` in the kubeconfig file `kubeconfig`, checked to answer.
///
/// A missing file or context is a configuration error (exit 2); an API server that does not answer
/// is `Unreachable` (exit 3) naming the context and the server.
static COMMAND: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Names the command this process runs (`up`, `live deploy`), for the user agent (once, from main).
pub fn set_command(command: &str) {
    let _ = COMMAND.set(command.to_owned());
}

/// `stack/<version> (<command>)`: what the API server's audit log shows for stack's requests.
pub fn user_agent() -> String {
    format!(
        "stack/{} ({})",
        env!("CARGO_PKG_VERSION"),
        COMMAND.get().map(String::as_str).unwrap_or("library")
    )
}

pub async fn client(kubeconfig: &Path, context: &str) -> Result<::kube::Client, StackError> {
    let file = Kubeconfig::read_from(kubeconfig).map_err(|e| {
        StackError::config(
            None,
            format!("cannot read kubeconfig {}: {e}", kubeconfig.display()),
            "check the path (stack passes it explicitly; it never falls back to ~/.kube/config)",
        )
    })?;
    let Some(named) = file.contexts.iter().find(|c| c.name == context) else {
        let known: Vec<&str> = file.contexts.iter().map(|c| c.name.as_str()).collect();
        return Err(StackError::config(
            None,
            format!("context `{context}` is not in {}", kubeconfig.display()),
            if known.is_empty() {
                "the file has no contexts; create the cluster first (`stack cluster up`)".to_owned()
            } else {
                format!("contexts in that file: {}", known.join(", "))
            },
        ));
    };
    let server = named
        .context
        .as_ref()
        .and_then(|c| file.clusters.iter().find(|k| k.name == c.cluster))
        .and_then(|k| k.cluster.as_ref())
        .and_then(|k| k.server.clone())
        .unwrap_or_else(|| "<no server>".into());
    let options = KubeConfigOptions {
        context: Some(context.to_owned()),
        ..Default::default()
    };
    let mut config = ::kube::Config::from_custom_kubeconfig(file, &options)
        .await
        .map_err(|e| {
            StackError::config(
                None,
                format!(
                    "context `{context}` in {} is unusable: {e}",
                    kubeconfig.display()
                ),
                "check its cluster, user and certificate entries",
            )
        })?;
    config.connect_timeout = Some(PROBE_TIMEOUT);
    // The API server's audit log names stack and the command behind each request.
    if let Ok(agent) = ::http::HeaderValue::from_str(&user_agent()) {
        config.headers.push((::http::header::USER_AGENT, agent));
    }
    let unreachable = |why: String| {
        StackError::Unreachable {
        what: format!("the Kubernetes API server {server} (context `{context}`)"),
        hint: format!(
            "{why}; start the cluster (`stack cluster up`, `stack cluster status`) or fix the context in {}",
            kubeconfig.display()
        ),
    }
    };
    let client = ::kube::Client::try_from(config).map_err(|e| unreachable(e.to_string()))?;
    match tokio::time::timeout(PROBE_TIMEOUT, client.apiserver_version()).await {
        Ok(Ok(_)) => Ok(client),
        Ok(Err(::kube::Error::Api(status))) if status.code == 401 || status.code == 403 => {
            Err(StackError::config(
                None,
                format!(
                    "the API server {server} refused the credentials of context `{context}`: {}",
                    status.message
                ),
                format!("refresh the user entry in {}", kubeconfig.display()),
            ))
        }
        Ok(Err(e)) => Err(unreachable(with_causes(&e))),
        Err(_) => Err(unreachable(format!(
            "no answer within {}s",
            PROBE_TIMEOUT.as_secs()
        ))),
    }
}
