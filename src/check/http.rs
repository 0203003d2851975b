//! `http` checks: one request (or WebSocket upgrade), repeated until the response is as expected
//! or the check's deadline. The target is a URL, a named forward of `test.forwards`, or a
//! Service/Deployment port reached through an in-process port-forward opened for the run.
//!
//! A request that gets no response (refused, reset, TLS, timed out) is an attempt that could not
//! look; a response that is not as expected is one that looked — so after the deadline the first
//! ends as an error, the second as a failure showing the last response.

use super::command::EnvSecrets;
use super::load::parse_status;
use super::spec::HttpSpec;
use super::{poll, Attempt, Ctx, Finished};
use crate::kube::forward::ForwardTarget;
use crate::net::http::{self as net, Request, Response};
use std::time::Duration;
use tokio::time::Instant;

/// How much of a response body the evidence shows.
const DETAIL_BODY: usize = 2048;
/// How many response headers the evidence shows.
const DETAIL_HEADERS: usize = 12;

pub async fn run(spec: &HttpSpec, ctx: &Ctx, deadline: Instant, timeout: Duration) -> Finished {
    let secrets = EnvSecrets::of(
        spec.url
            .iter()
            .chain(&spec.path)
            .chain(&spec.body)
            .chain(spec.headers.values()),
    );
    let finished = match prepare(spec, ctx).await {
        Ok((shown, request, expected)) => {
            poll(deadline, timeout, || {
                attempt(&shown, &request, &expected, &spec.expect, deadline)
            })
            .await
        }
        Err(message) => Finished::error(message),
    };
    secrets.mask_finished(finished)
}

/// The URL as the user wrote it (rendered), what one attempt sends and which statuses it accepts.
async fn prepare(spec: &HttpSpec, ctx: &Ctx) -> Result<(String, Request, Vec<(u16, u16)>), String> {
    let path = match &spec.path {
        Some(p) => ctx.render(p)?,
        None => "/".to_owned(),
    };
    let path = if path.starts_with('/') {
        path
    } else {
        format!("/{path}")
    };
    let url = if let Some(url) = &spec.url {
        ctx.render(url)?
    } else if let Some(base) = &ctx.base_url {
        // `stack live verify`: the public address instead of a port-forward.
        let base = base.trim_end_matches('/');
        if spec.websocket {
            format!("{}{path}", super::ws_of(base))
        } else {
            format!("{base}{path}")
        }
    } else if let Some(name) = &spec.forward {
        let port = ctx.forwards.get(name).ok_or_else(|| {
            let known: Vec<&str> = ctx.forwards.keys().map(String::as_str).collect();
            format!(
                "no forward named `{name}` in test.forwards (there are: {})",
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            )
        })?;
        format!("http://127.0.0.1:{port}{path}")
    } else {
        let target = match (&spec.service, &spec.deployment) {
            (Some(name), _) => ForwardTarget::Service {
                namespace: ctx.namespace.clone(),
                name: name.clone(),
            },
            (None, Some(name)) => ForwardTarget::Deployment {
                namespace: ctx.namespace.clone(),
                name: name.clone(),
            },
            (None, None) => return Err("the http check names no target".into()),
        };
        let remote = spec
            .port
            .ok_or("the http check forwards but names no port")?;
        let port = ctx.forward(target, remote).await?;
        format!("http://127.0.0.1:{port}{path}")
    };
    let websocket = spec.websocket || url.starts_with("ws://") || url.starts_with("wss://");
    let shown = url.clone();
    let mut request = if websocket {
        net::websocket_upgrade(&url)
    } else {
        Request {
            method: spec.method.as_deref().unwrap_or("GET").to_ascii_uppercase(),
            url,
            headers: Vec::new(),
            body: Vec::new(),
        }
    };
    for (name, value) in &spec.headers {
        request.headers.push((name.clone(), ctx.render(value)?));
    }
    if let Some(body) = &spec.body {
        request.body = ctx.render(body)?.into_bytes();
    }
    let expected = if spec.expect.status.is_empty() {
        vec![if websocket { (101, 101) } else { (200, 299) }]
    } else {
        spec.expect
            .status
            .iter()
            .map(parse_status)
            .collect::<Result<_, _>>()?
    };
    Ok((shown, request, expected))
}

async fn attempt(
    shown: &str,
    request: &Request,
    expected: &[(u16, u16)],
    expect: &super::spec::HttpExpect,
    deadline: Instant,
) -> Attempt {
    let label = format!("{} {shown}", request.method);
    // The whole time left: a slow answer within the check's timeout is still an answer.
    let wait = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(100));
    let response = match net::send(request, wait).await {
        Ok(r) => r,
        // The error names the URL sent (http:// for a ws:// one): name the one written.
        Err(e) => {
            return Attempt::Error(format!(
                "{} {}",
                request.method,
                e.replacen(&request.url, shown, 1)
            ))
        }
    };
    let not_yet = |what: String| Attempt::NotYet {
        message: format!("{label}: {what}"),
        detail: evidence(&response),
    };
    if !expected
        .iter()
        .any(|(lo, hi)| (*lo..=*hi).contains(&response.status))
    {
        return not_yet(format!(
            "status {}, expected {}",
            response.status,
            statuses(expected)
        ));
    }
    let body = String::from_utf8_lossy(&response.body);
    if let Some(text) = &expect.contains {
        if !body.contains(text.as_str()) {
            return not_yet(format!("the body does not contain `{text}`"));
        }
    }
    if let Some(pattern) = &expect.regex {
        match regex::Regex::new(pattern) {
            Ok(re) if re.is_match(&body) => {}
            Ok(_) => return not_yet(format!("the body does not match /{pattern}/")),
            Err(e) => return Attempt::Error(format!("http.expect.regex: {e}")),
        }
    }
    if !expect.json.is_empty() {
        let json: serde_json::Value = match serde_json::from_slice(&response.body) {
            Ok(v) => v,
            Err(e) => return not_yet(format!("the body is not JSON ({e})")),
        };
        for (pointer, want) in &expect.json {
            match json.pointer(pointer) {
                Some(got) if got == want => {}
                Some(got) => return not_yet(format!("{pointer} is {got}, expected {want}")),
                None => return not_yet(format!("{pointer} is absent, expected {want}")),
            }
        }
    }
    Attempt::Pass(format!("{label}: status {}", response.status))
}

/// `2xx`, `404`, `200-204`, joined by `or`.
fn statuses(expected: &[(u16, u16)]) -> String {
    expected
        .iter()
        .map(|&(lo, hi)| {
            if lo == hi {
                lo.to_string()
            } else if lo % 100 == 0 && hi == lo + 99 {
                format!("{}xx", lo / 100)
            } else {
                format!("{lo}-{hi}")
            }
        })
        .collect::<Vec<_>>()
        .join(" or ")
}

/// The last response as evidence: status line, a few headers (never cookies), the body's start.
fn evidence(response: &Response) -> String {
    let reason = ::http::StatusCode::from_u16(response.status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    let mut out = format!("HTTP/1.1 {} {reason}", response.status)
        .trim_end()
        .to_owned();
    for (name, value) in response
        .headers
        .iter()
        .filter(|(n, _)| n != "set-cookie")
        .take(DETAIL_HEADERS)
    {
        out.push_str(&format!("\n{name}: {value}"));
    }
    if !response.body.is_empty() {
        let body = String::from_utf8_lossy(&response.body);
        let mut end = body.len().min(DETAIL_BODY);
        while !body.is_char_boundary(end) {
            end -= 1;
        }
        out.push_str("\n\n");
        out.push_str(body[..end].trim_end());
        if end < body.len() || response.truncated {
            out.push_str(&format!(
                "\n… ({}{} bytes in all)",
                if response.truncated { "over " } else { "" },
                response.body.len()
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_read_as_written() {
        assert_eq!(statuses(&[(200, 299)]), "2xx");
        assert_eq!(statuses(&[(101, 101), (200, 204)]), "101 or 200-204");
    }

    #[test]
    fn evidence_shows_status_headers_and_the_start_of_the_body() {
        let response = Response {
            status: 503,
            headers: vec![
                ("content-type".into(), "text/plain".into()),
                ("set-cookie".into(), "session=abc".into()),
            ],
            body: "é".repeat(DETAIL_BODY).into_bytes(),
            truncated: false,
        };
        let text = evidence(&response);
        assert!(text.starts_with("HTTP/1.1 503 Service Unavailable\ncontent-type: text/plain\n\né"));
        assert!(!text.contains("session"));
        assert!(
            text.ends_with(&format!("… ({} bytes in all)", 2 * DETAIL_BODY)),
            "{text}"
        );
    }
}
