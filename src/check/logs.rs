//! `logs` checks: a regex appears in what the selected containers logged since the deploy.
//!
//! Each attempt lists the pods matching the selector and reads every chosen container's log from
//! `Ctx::since` on (init containers and native sidecars included, in spec order), line by line,
//! until a line matches. Re-reading rather than following keeps it simple and correct across pods
//! that appear, restart or are replaced while the check waits.

use super::spec::LogsSpec;
use super::{poll, Attempt, Ctx, Finished};
use crate::kube::wait::api_message;
use ::kube::api::{Api, ListParams, LogParams};
use ::kube::ResourceExt;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use std::collections::VecDeque;
use std::time::Duration;
use tokio::time::Instant;

/// Lines per container the evidence shows when nothing matched.
const SEEN_LINES: usize = 20;

pub async fn run(spec: &LogsSpec, ctx: &Ctx, deadline: Instant, timeout: Duration) -> Finished {
    let regex = match regex::Regex::new(&spec.regex) {
        Ok(r) => r,
        Err(e) => return Finished::error(format!("logs.regex: {e}")),
    };
    poll(deadline, timeout, || attempt(spec, &regex, ctx)).await
}

async fn attempt(spec: &LogsSpec, regex: &regex::Regex, ctx: &Ctx) -> Attempt {
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let list = match pods
        .list(&ListParams::default().labels(&spec.selector))
        .await
    {
        Ok(l) => l,
        Err(e) => {
            return Attempt::Error(format!(
                "listing pods matching {} in {}: {}",
                spec.selector,
                ctx.namespace,
                api_message(&e)
            ))
        }
    };
    // kube sends sinceTime rounded to the nearest second: floored here, so a line of the deploy's
    // first half second is never cut (one of the second before may be read).
    let since = Timestamp::from_second(ctx.since.as_second()).unwrap_or(ctx.since);
    let mut list = list.items;
    if list.is_empty() {
        return Attempt::NotYet {
            message: format!("no pod matches {}", spec.selector),
            detail: String::new(),
        };
    }
    list.sort_by_key(|p| p.name_any());
    let mut seen = Vec::new();
    let mut containers_seen = Vec::new();
    for pod in &list {
        let name = pod.name_any();
        for container in containers(pod) {
            if !containers_seen.contains(&container) {
                containers_seen.push(container.clone());
            }
            if spec.container.as_ref().is_some_and(|c| *c != container) {
                continue;
            }
            let params = LogParams {
                container: Some(container.clone()),
                since_time: Some(since),
                ..LogParams::default()
            };
            let mut tail: VecDeque<&str> = VecDeque::new();
            let text = match pods.logs(&name, &params).await {
                Ok(t) => t,
                Err(e) => {
                    // A container that has not started yet has no log to read: not yet.
                    seen.push(format!(
                        "== {name}/{container}: no log yet ({}) ==",
                        api_message(&e)
                    ));
                    continue;
                }
            };
            for line in text.lines() {
                if regex.is_match(line) {
                    return Attempt::Pass(format!("{name}/{container} logged: {}", line.trim()));
                }
                if tail.len() == SEEN_LINES {
                    tail.pop_front();
                }
                tail.push_back(line);
            }
            let header = if tail.is_empty() {
                format!("== {name}/{container}: nothing logged since the deploy ==")
            } else {
                format!("== {name}/{container} (last {} lines) ==", tail.len())
            };
            seen.push(
                std::iter::once(header.as_str())
                    .chain(tail)
                    .collect::<Vec<_>>()
                    .join("\n"),
            );
        }
    }
    let pods_named = list
        .iter()
        .map(|p| p.name_any())
        .collect::<Vec<_>>()
        .join(", ");
    let message = match &spec.container {
        Some(c) if !containers_seen.contains(c) => format!(
            "no pod matching {} has a container `{c}` (containers: {})",
            spec.selector,
            containers_seen.join(", ")
        ),
        Some(c) => format!(
            "no line of container `{c}` in {pods_named} matches /{}/",
            spec.regex
        ),
        None => format!(
            "no line in the logs of {pods_named} matches /{}/",
            spec.regex
        ),
    };
    Attempt::NotYet {
        message,
        detail: seen.join("\n"),
    }
}

/// Every container of a pod: init containers (native sidecars among them) first, as the pod
/// starts them, then the app containers.
fn containers(pod: &Pod) -> Vec<String> {
    let Some(spec) = &pod.spec else {
        return Vec::new();
    };
    spec.init_containers
        .iter()
        .flatten()
        .chain(&spec.containers)
        .map(|c| c.name.clone())
        .collect()
}
