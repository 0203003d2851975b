//! Does a published chart version or image exist? Asked of its registry through the OCI
//! distribution API (a manifest HEAD, with credentials), so that `stack test ci` refuses to deploy
//! — naming what is missing — before it deploys anything.
//!
//! - References are read as Docker/containerd normalise them (`nginx` is
//!   `registry-1.docker.io/library/nginx:latest`); a Helm chart `oci://REG/PATH/NAME` at a version
//!   is the tag Helm pushes (`+` stored as `_`).
//! - Authentication follows the registry's `WWW-Authenticate` challenge: `Bearer` (the distribution
//!   token spec: the realm is asked for a token for `service` and `scope`, with Basic credentials
//!   when there are any) or `Basic`. A password never appears in an error or in `Debug`.
//! - Scheme: HTTPS, except when the caller says the registry speaks plain HTTP, and for loopback
//!   registries (`localhost`, `127.0.0.0/8`, `[::1]`), which Docker treats as insecure by default
//!   (a local test registry). A loopback registry that only speaks TLS is not reachable this way.
//!
//! All HTTP goes through `crate::net::http`.

use crate::net::http::{self, Request, Response};
use base64::Engine as _;
use sha2::{Digest as _, Sha256};
use std::fmt;
use std::sync::LazyLock;
use std::time::Duration;

/// The registry API host of Docker Hub (`docker.io`, `index.docker.io`).
pub const DOCKER_HUB: &str = "registry-1.docker.io";

/// Manifest media types asked for: an image index/list or a single manifest, OCI or Docker v2 (a
/// Helm chart is an OCI image manifest). A registry may refuse to serve a type not accepted.
const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
                      application/vnd.oci.image.manifest.v1+json, \
                      application/vnd.docker.distribution.manifest.list.v2+json, \
                      application/vnd.docker.distribution.manifest.v2+json";

/// How many registry checks `check_all` runs at once.
const PARALLEL: usize = 8;

/// A manifest in a registry: `registry/repository[:tag][@digest]`. `registry` is the host (and
/// port) the API is asked at. A digest, when there is one, is what is looked up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    pub registry: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl Reference {
    /// The manifest reference in the API path: the digest when there is one, else the tag.
    pub fn manifest_reference(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// Registry credentials. `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl Credentials {
    fn basic(&self) -> String {
        let pair = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
    }
}

/// What the registry says about a manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Existence {
    /// It is there; `digest` is the registry's `Docker-Content-Digest` (or, without that header,
    /// the digest asked for or of the manifest read).
    Found { digest: Option<String> },
    /// The registry answered that the tag, digest or repository does not exist.
    Missing,
}

// ---------------------------------------------------------------------------------------------
// References
// ---------------------------------------------------------------------------------------------

/// distribution/reference's grammar (`regexp.go`), anchored.
static DOMAIN: LazyLock<regex::Regex> = LazyLock::new(|| {
    let component = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
    regex::Regex::new(&format!(
        r"^(?:{component}(?:\.{component})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?$"
    ))
    .unwrap()
});
static PATH_COMPONENT: LazyLock<regex::Regex> =
    LazyLock::new(|| regex::Regex::new(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$").unwrap());
static TAG: LazyLock<regex::Regex> =
    LazyLock::new(|| regex::Regex::new(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$").unwrap());
static DIGEST: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(r"^([A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*):([0-9a-fA-F]{32,})$")
        .unwrap()
});
/// An image ID, which Docker refuses as a repository name.
static IDENTIFIER: LazyLock<regex::Regex> =
    LazyLock::new(|| regex::Regex::new(r"^[a-f0-9]{64}$").unwrap());

/// Longest repository name (domain included) distribution accepts.
const NAME_TOTAL_LENGTH_MAX: usize = 255;

/// An image reference as Docker and containerd normalise it (distribution's
/// `ParseNormalizedNamed`, then `TagNameOnly`): a first part with no `.` or `:` that is not
/// `localhost` is a Docker Hub path, not a host; Docker Hub's official images live under
/// `library/`; no tag and no digest means `:latest`.
pub fn parse_image(s: &str) -> Result<Reference, String> {
    let bad = |why: &str| format!("invalid image reference `{s}`: {why}");
    if s.is_empty() {
        return Err(bad("empty"));
    }
    if IDENTIFIER.is_match(s) {
        return Err(bad(
            "a 64-character hexadecimal string is an image ID, not a repository name",
        ));
    }
    let (name, tag, digest) = split_tag_digest(s).map_err(|e| bad(&e))?;
    // distribution's splitDockerDomain.
    let (domain, remainder) = match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first != first.to_lowercase() =>
        {
            (first, rest)
        }
        _ => ("docker.io", name),
    };
    let docker_hub = matches!(domain, "docker.io" | "index.docker.io");
    if remainder != remainder.to_lowercase() {
        return Err(bad("repository name must be lowercase"));
    }
    check_name(domain, remainder).map_err(|e| bad(&e))?;
    let repository = if docker_hub && !remainder.contains('/') {
        format!("library/{remainder}")
    } else {
        remainder.to_owned()
    };
    let tag = match (tag, &digest) {
        (None, None) => Some("latest".to_owned()),
        (tag, _) => tag,
    };
    Ok(Reference {
        registry: if docker_hub { DOCKER_HUB } else { domain }.to_owned(),
        repository,
        tag,
        digest,
    })
}

/// A Helm chart in an OCI registry: `oci://REGISTRY/PATH/NAME` at `version`. Helm pushes a version
/// as the tag with `+` (not allowed in tags) written `_`. A tag or digest in the reference itself
/// (`oci://r/c:1.0`, `oci://r/c@sha256:…`) is accepted as Helm accepts it; a tag that disagrees
/// with `version` is refused as Helm refuses it. The host is never defaulted (Helm needs one);
/// `docker.io` is Docker Hub's API host, as containerd's resolver maps it.
pub fn chart(oci_ref: &str, version: &str) -> Result<Reference, String> {
    let bad = |why: &str| format!("invalid chart reference `{oci_ref}`: {why}");
    let rest = oci_ref
        .strip_prefix("oci://")
        .ok_or_else(|| bad("expected oci://REGISTRY/PATH/NAME"))?;
    let (name, ref_tag, digest) = split_tag_digest(rest).map_err(|e| bad(&e))?;
    let Some((domain, repository)) = name.split_once('/') else {
        return Err(bad("expected oci://REGISTRY/PATH/NAME"));
    };
    check_name(domain, repository).map_err(|e| bad(&e))?;
    let version = version.trim();
    let version_tag = (!version.is_empty()).then(|| version.replace('+', "_"));
    if let Some(t) = &version_tag {
        if !TAG.is_match(t) {
            return Err(format!(
                "invalid chart version `{version}`: not usable as an OCI tag"
            ));
        }
    }
    let tag = match (ref_tag, version_tag) {
        (Some(a), Some(b)) if a != b => {
            return Err(bad(&format!(
                "its tag `{a}` does not match the version `{version}`"
            )))
        }
        (a, b) => b.or(a),
    };
    if tag.is_none() && digest.is_none() {
        return Err(bad(
            "no version: give the chart version (or a tag or digest in the reference)",
        ));
    }
    let registry = match domain {
        "docker.io" | "index.docker.io" => DOCKER_HUB,
        d => d,
    };
    Ok(Reference {
        registry: registry.to_owned(),
        repository: repository.to_owned(),
        tag,
        digest,
    })
}

/// `name[:tag][@digest]` → its parts, tag and digest validated. The tag is after the last `:`
/// that follows the last `/` (so `localhost:5000/x` has none).
fn split_tag_digest(s: &str) -> Result<(&str, Option<String>, Option<String>), String> {
    let (name, digest) = match s.split_once('@') {
        Some((name, digest)) => {
            let caps = DIGEST
                .captures(digest)
                .ok_or_else(|| format!("`{digest}` is not a digest"))?;
            let (algorithm, hex) = (&caps[1], &caps[2]);
            let length = match algorithm {
                "sha256" => 64,
                "sha384" => 96,
                "sha512" => 128,
                _ => return Err(format!("unsupported digest algorithm `{algorithm}`")),
            };
            if hex.len() != length || hex.bytes().any(|b| b.is_ascii_uppercase()) {
                return Err(format!(
                    "`{digest}` is not a {algorithm} digest ({length} lowercase hexadecimal digits)"
                ));
            }
            (name, Some(digest.to_owned()))
        }
        None => (s, None),
    };
    let after_slash = name.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match name[after_slash..].rfind(':') {
        Some(i) => {
            let (name, tag) = (&name[..after_slash + i], &name[after_slash + i + 1..]);
            if !TAG.is_match(tag) {
                return Err(format!("`{tag}` is not a valid tag"));
            }
            (name, Some(tag.to_owned()))
        }
        None => (name, None),
    };
    Ok((name, tag, digest))
}

fn check_name(domain: &str, path: &str) -> Result<(), String> {
    if !DOMAIN.is_match(domain) {
        return Err(format!("`{domain}` is not a registry host"));
    }
    for component in path.split('/') {
        if component.is_empty() {
            return Err("empty path component".to_owned());
        }
        if !PATH_COMPONENT.is_match(component) {
            return Err(if component != component.to_lowercase() {
                "repository name must be lowercase".to_owned()
            } else {
                format!("`{component}` is not a valid repository path component")
            });
        }
    }
    if domain.len() + 1 + path.len() > NAME_TOTAL_LENGTH_MAX {
        return Err(format!(
            "repository name longer than {NAME_TOTAL_LENGTH_MAX} characters"
        ));
    }
    Ok(())
}

/// Whether the registry is spoken to in plain HTTP: when the caller says so, and for loopback
/// hosts (`localhost`, `127.0.0.0/8`, `[::1]`), which Docker treats as insecure registries.
pub fn uses_plain_http(registry: &str, plain_http: bool) -> bool {
    plain_http || is_loopback(registry)
}

fn is_loopback(registry: &str) -> bool {
    let host = if let Some(rest) = registry.strip_prefix('[') {
        rest.split(']').next().unwrap_or_default()
    } else {
        registry.split(':').next().unwrap_or_default()
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

// ---------------------------------------------------------------------------------------------
// Existence
// ---------------------------------------------------------------------------------------------

/// Asks `r`'s registry whether its manifest exists (HEAD `/v2/<repository>/manifests/<ref>`,
/// GET when the registry refuses HEAD), answering an authentication challenge with `creds`.
/// `timeout` bounds the whole exchange. Refused or missing credentials are an error naming the
/// registry, never `Missing`.
pub async fn exists(
    r: &Reference,
    creds: Option<&Credentials>,
    plain_http: bool,
    timeout: Duration,
) -> Result<Existence, String> {
    let result = match tokio::time::timeout(timeout, check(r, creds, plain_http, timeout)).await {
        Ok(result) => result,
        Err(_) => Err(format!(
            "registry {}: no answer for {r} within {}s",
            r.registry,
            timeout.as_secs_f32()
        )),
    };
    result.map_err(|e| redact(e, creds))
}

/// Checks every item (`what` and its reference), at most `PARALLEL` at a time, each with the
/// credentials `creds_for(registry)` gives and plain HTTP when `plain_http(registry)` says so.
/// Results come back in the order of `items`.
pub async fn check_all(
    items: &[(String, Reference)],
    creds_for: impl Fn(&str) -> Option<Credentials>,
    plain_http: impl Fn(&str) -> bool,
    timeout: Duration,
) -> Vec<(String, Result<Existence, String>)> {
    use futures::stream::{self, StreamExt};
    stream::iter(items.iter().map(|(what, r)| {
        let creds = creds_for(&r.registry);
        let plain = plain_http(&r.registry);
        async move {
            let result = exists(r, creds.as_ref(), plain, timeout).await;
            (what.clone(), result)
        }
    }))
    .buffered(PARALLEL)
    .collect()
    .await
}

async fn check(
    r: &Reference,
    creds: Option<&Credentials>,
    plain_http: bool,
    timeout: Duration,
) -> Result<Existence, String> {
    let scheme = if uses_plain_http(&r.registry, plain_http) {
        "http"
    } else {
        "https"
    };
    let url = format!(
        "{scheme}://{}/v2/{}/manifests/{}",
        r.registry,
        r.repository,
        r.manifest_reference()
    );
    let mut method = "HEAD";
    let mut authorization: Option<String> = None;
    loop {
        let resp = manifest_request(method, &url, authorization.as_deref(), timeout)
            .await
            .map_err(|e| format!("registry {}: {e}", r.registry))?;
        match resp.status {
            200..=299 => {
                let digest = resp
                    .header("docker-content-digest")
                    .map(str::to_owned)
                    .or_else(|| r.digest.clone())
                    .or_else(|| {
                        (method == "GET")
                            .then(|| format!("sha256:{:x}", Sha256::digest(&resp.body)))
                    });
                return Ok(Existence::Found { digest });
            }
            404 => return Ok(Existence::Missing),
            401 if authorization.is_none() => {
                authorization = Some(answer_challenge(&resp, r, creds, timeout).await?);
            }
            401 | 403 => return Err(denied(r, creds, resp.status, &resp)),
            // Some registries refuse HEAD (405) or answer it oddly; a GET also carries the error.
            _ if method == "HEAD" => method = "GET",
            status => {
                let codes = error_codes(&resp.body);
                if codes
                    .iter()
                    .any(|c| c == "MANIFEST_UNKNOWN" || c == "NAME_UNKNOWN")
                {
                    return Ok(Existence::Missing);
                }
                return Err(format!(
                    "registry {} answered {status} for {r}{}",
                    r.registry,
                    message(&resp.body)
                ));
            }
        }
    }
}

/// Helm's chart layer media type (the chart `.tgz`, byte for byte as `helm package` wrote it).
pub const HELM_CHART_LAYER: &str = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";

/// A manifest read whole: its digest and its JSON.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    pub digest: String,
    pub json: serde_json::Value,
}

impl Manifest {
    /// The digest of the first layer of `media_type` (a Helm chart's `.tgz`: [`HELM_CHART_LAYER`]).
    pub fn layer(&self, media_type: &str) -> Option<&str> {
        self.json["layers"]
            .as_array()?
            .iter()
            .find(|l| l["mediaType"].as_str() == Some(media_type))
            .and_then(|l| l["digest"].as_str())
    }
}

/// GETs `r`'s manifest (`None`: it does not exist), authenticating as [`exists`] does.
pub async fn manifest(
    r: &Reference,
    creds: Option<&Credentials>,
    plain_http: bool,
    timeout: Duration,
) -> Result<Option<Manifest>, String> {
    let url = api_url(
        r,
        plain_http,
        &format!("manifests/{}", r.manifest_reference()),
    );
    let read = async {
        let Some(resp) = get(r, &url, creds, timeout).await? else {
            return Ok(None);
        };
        let digest = resp
            .header("docker-content-digest")
            .map(str::to_owned)
            .unwrap_or_else(|| format!("sha256:{:x}", Sha256::digest(&resp.body)));
        let json = serde_json::from_slice(&resp.body).map_err(|e| {
            format!(
                "registry {}: the manifest of {r} is no JSON: {e}",
                r.registry
            )
        })?;
        Ok(Some(Manifest { digest, json }))
    };
    bounded(r, timeout, read)
        .await
        .map_err(|e| redact(e, creds))
}

/// GETs the blob `digest` of `r`'s repository, checked against its digest (sha256).
pub async fn blob(
    r: &Reference,
    digest: &str,
    creds: Option<&Credentials>,
    plain_http: bool,
    timeout: Duration,
) -> Result<Vec<u8>, String> {
    let url = api_url(r, plain_http, &format!("blobs/{digest}"));
    let read = async {
        let body = get(r, &url, creds, timeout)
            .await?
            .ok_or_else(|| format!("registry {}: blob {digest} of {r} is missing", r.registry))?
            .body;
        let got = format!("sha256:{:x}", Sha256::digest(&body));
        if got != digest {
            return Err(format!(
                "registry {}: blob {digest} of {r} arrived as {got}",
                r.registry
            ));
        }
        Ok(body)
    };
    bounded(r, timeout, read)
        .await
        .map_err(|e| redact(e, creds))
}

async fn bounded<T>(
    r: &Reference,
    timeout: Duration,
    work: impl std::future::Future<Output = Result<T, String>>,
) -> Result<T, String> {
    match tokio::time::timeout(timeout, work).await {
        Ok(result) => result,
        Err(_) => Err(format!(
            "registry {}: no answer for {r} within {}s",
            r.registry,
            timeout.as_secs_f32()
        )),
    }
}

fn api_url(r: &Reference, plain_http: bool, rest: &str) -> String {
    let scheme = if uses_plain_http(&r.registry, plain_http) {
        "http"
    } else {
        "https"
    };
    format!("{scheme}://{}/v2/{}/{rest}", r.registry, r.repository)
}

/// A GET answering one authentication challenge; `None` when the registry says it does not exist.
async fn get(
    r: &Reference,
    url: &str,
    creds: Option<&Credentials>,
    timeout: Duration,
) -> Result<Option<Response>, String> {
    let mut authorization: Option<String> = None;
    loop {
        let resp = manifest_request("GET", url, authorization.as_deref(), timeout)
            .await
            .map_err(|e| format!("registry {}: {e}", r.registry))?;
        match resp.status {
            200..=299 => return Ok(Some(resp)),
            404 => return Ok(None),
            401 if authorization.is_none() => {
                authorization = Some(answer_challenge(&resp, r, creds, timeout).await?);
            }
            401 | 403 => return Err(denied(r, creds, resp.status, &resp)),
            status => {
                let codes = error_codes(&resp.body);
                if codes
                    .iter()
                    .any(|c| c == "MANIFEST_UNKNOWN" || c == "NAME_UNKNOWN" || c == "BLOB_UNKNOWN")
                {
                    return Ok(None);
                }
                return Err(format!(
                    "registry {} answered {status} for {url}{}",
                    r.registry,
                    message(&resp.body)
                ));
            }
        }
    }
}

/// One manifest request, following up to 5 redirects; an `Authorization` goes only to the same
/// scheme and host.
async fn manifest_request(
    method: &str,
    url: &str,
    authorization: Option<&str>,
    timeout: Duration,
) -> Result<Response, String> {
    let mut url = url.to_owned();
    let mut authorization = authorization;
    for _ in 0..=5 {
        let mut headers = vec![("Accept".to_owned(), ACCEPT.to_owned())];
        if let Some(a) = authorization {
            headers.push(("Authorization".to_owned(), a.to_owned()));
        }
        let req = Request {
            method: method.to_owned(),
            url: url.clone(),
            headers,
            body: Vec::new(),
        };
        let resp = http::send(&req, timeout).await?;
        if !matches!(resp.status, 301 | 302 | 303 | 307 | 308) {
            return Ok(resp);
        }
        let Some(location) = resp.header("location") else {
            return Ok(resp);
        };
        let next = if location.contains("://") {
            location.to_owned()
        } else if location.starts_with('/') {
            format!("{}{location}", origin(&url))
        } else {
            return Err(format!("unsupported redirect to `{location}`"));
        };
        if origin(&next) != origin(&url) {
            authorization = None;
        }
        url = next;
    }
    Err(format!("too many redirects for {url}"))
}

/// `scheme://host[:port]` of a URL.
fn origin(url: &str) -> &str {
    let start = url.find("://").map_or(0, |i| i + 3);
    let end = url[start..].find('/').map_or(url.len(), |i| start + i);
    &url[..end]
}

/// The `Authorization` value that answers a 401's challenge: a Bearer token from the realm, or
/// Basic credentials.
async fn answer_challenge(
    resp: &Response,
    r: &Reference,
    creds: Option<&Credentials>,
    timeout: Duration,
) -> Result<String, String> {
    let challenges: Vec<Challenge> = resp
        .headers
        .iter()
        .filter(|(name, _)| name == "www-authenticate")
        .flat_map(|(_, value)| parse_challenges(value))
        .collect();
    let pick = |scheme: &str| {
        challenges
            .iter()
            .find(|c| c.scheme.eq_ignore_ascii_case(scheme))
    };
    if let Some(bearer) = pick("bearer") {
        let token = bearer_token(bearer, r, creds, timeout).await?;
        return Ok(format!("Bearer {token}"));
    }
    if pick("basic").is_some() {
        return match creds {
            Some(c) => Ok(c.basic()),
            None => Err(denied(r, None, resp.status, resp)),
        };
    }
    match challenges.first() {
        Some(c) => Err(format!(
            "registry {} asks for `{}` authentication, which stack does not support",
            r.registry, c.scheme
        )),
        None => Err(denied(r, creds, resp.status, resp)),
    }
}

/// The distribution token flow: GET the realm with `service` and `scope` (the challenge's, else
/// pull access to the repository), Basic credentials when there are any; the answer's `token` or
/// `access_token`.
async fn bearer_token(
    challenge: &Challenge,
    r: &Reference,
    creds: Option<&Credentials>,
    timeout: Duration,
) -> Result<String, String> {
    let realm = challenge.param("realm").ok_or_else(|| {
        format!(
            "registry {} asks for a Bearer token but names no realm to get it from",
            r.registry
        )
    })?;
    let mut query = form_urlencoded::Serializer::new(String::new());
    if let Some(service) = challenge.param("service") {
        query.append_pair("service", service);
    }
    let default_scope = format!("repository:{}:pull", r.repository);
    for scope in challenge
        .param("scope")
        .unwrap_or(&default_scope)
        .split(' ')
        .filter(|s| !s.is_empty())
    {
        query.append_pair("scope", scope);
    }
    let separator = if realm.contains('?') { '&' } else { '?' };
    let mut headers = vec![];
    if let Some(c) = creds {
        headers.push(("Authorization".to_owned(), c.basic()));
    }
    let req = Request {
        method: "GET".to_owned(),
        url: format!("{realm}{separator}{}", query.finish()),
        headers,
        body: Vec::new(),
    };
    let resp = http::send(&req, timeout)
        .await
        .map_err(|e| format!("registry {}: token server {realm}: {e}", r.registry))?;
    match resp.status {
        200..=299 => {}
        401 | 403 => return Err(denied(r, creds, resp.status, &resp)),
        status => {
            return Err(format!(
                "registry {}: token server {realm} answered {status}{}",
                r.registry,
                message(&resp.body)
            ))
        }
    }
    let answer: serde_json::Value = serde_json::from_slice(&resp.body).map_err(|e| {
        format!(
            "registry {}: token server {realm} answered no JSON: {e}",
            r.registry
        )
    })?;
    ["token", "access_token"]
        .iter()
        .filter_map(|key| answer[key].as_str())
        .find(|t| !t.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| {
            format!(
                "registry {}: token server {realm} answered without a token",
                r.registry
            )
        })
}

/// The error for a registry (or its token server) that refuses access: credentials refused when
/// some were given, missing otherwise. Names the registry and user, never the password. What the
/// registry said comes from its error body, else from its challenge's `error` (a HEAD has no body).
/// Registries answer a repository that does not exist as they answer one that is private, so an
/// anonymous refusal says so.
fn denied(r: &Reference, creds: Option<&Credentials>, status: u16, resp: &Response) -> String {
    let mut said = message(&resp.body);
    if said.is_empty() {
        if let Some(error) = resp
            .headers
            .iter()
            .filter(|(name, _)| name == "www-authenticate")
            .flat_map(|(_, value)| parse_challenges(value))
            .find_map(|c| c.param("error").map(str::to_owned))
        {
            said = format!(": {error}");
        }
    }
    match creds {
        Some(c) => format!(
            "registry {} refused the credentials of user `{}` for {} ({status}{said}): credentials refused",
            r.registry, c.username, r.repository
        ),
        None => format!(
            "registry {} requires credentials for {} ({status}{said}): credentials missing (none are \
             configured for this registry; some registries answer so for a repository that does not exist)",
            r.registry, r.repository
        ),
    }
}

/// The `code`s of a distribution error body (`{"errors":[{"code":…,"message":…}]}`).
fn error_codes(body: &[u8]) -> Vec<String> {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return vec![];
    };
    v["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["code"].as_str().map(str::to_owned))
        .collect()
}

/// `: <code>: <message>` of a distribution error body, for an error line; empty without one.
fn message(body: &[u8]) -> String {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return String::new();
    };
    let parts: Vec<String> = v["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            let code = e["code"].as_str().unwrap_or_default();
            match e["message"].as_str() {
                Some(m) if !m.is_empty() => format!("{code}: {m}"),
                _ => code.to_owned(),
            }
        })
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!(": {}", parts.join("; "))
    }
}

/// An error with the password (and its Basic encoding) replaced: servers and transports may
/// echo what they were sent.
fn redact(error: String, creds: Option<&Credentials>) -> String {
    let Some(c) = creds else { return error };
    let mut error = error;
    for secret in [c.password.clone(), c.basic()] {
        if !secret.is_empty() {
            error = error.replace(&secret, "<redacted>");
        }
    }
    error
}

/// One challenge of a `WWW-Authenticate` header (RFC 7235): a scheme and its parameters.
#[derive(Debug, PartialEq, Eq)]
struct Challenge {
    scheme: String,
    params: Vec<(String, String)>,
}

impl Challenge {
    fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The challenges of one `WWW-Authenticate` value: `Scheme k=v, k="quoted \" value", Scheme2 …`.
fn parse_challenges(value: &str) -> Vec<Challenge> {
    let mut out: Vec<Challenge> = Vec::new();
    let chars: Vec<char> = value.chars().collect();
    let mut i = 0;
    let is_sep = |c: char| c == ',' || c.is_whitespace();
    loop {
        while i < chars.len() && is_sep(chars[i]) {
            i += 1;
        }
        if i >= chars.len() {
            return out;
        }
        let start = i;
        while i < chars.len() && !is_sep(chars[i]) && chars[i] != '=' {
            i += 1;
        }
        let token: String = chars[start..i].iter().collect();
        let mut j = i;
        while j < chars.len() && chars[j].is_whitespace() {
            j += 1;
        }
        if j < chars.len() && chars[j] == '=' {
            // A parameter of the current challenge.
            i = j + 1;
            while i < chars.len() && chars[i].is_whitespace() {
                i += 1;
            }
            let mut v = String::new();
            if i < chars.len() && chars[i] == '"' {
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    if chars[i] == '\\' && i + 1 < chars.len() {
                        i += 1;
                    }
                    v.push(chars[i]);
                    i += 1;
                }
                i += 1;
            } else {
                while i < chars.len() && chars[i] != ',' {
                    v.push(chars[i]);
                    i += 1;
                }
                v = v.trim().to_owned();
            }
            if let Some(c) = out.last_mut() {
                c.params.push((token.to_lowercase(), v));
            }
        } else {
            out.push(Challenge {
                scheme: token,
                params: Vec::new(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const D: &str = "sha256:4b825dc642cb6eb9a060e54bf8d69288fbee4904a1b2c3d4e5f60718293a4b5c";

    fn reference(
        registry: &str,
        repository: &str,
        tag: Option<&str>,
        digest: Option<&str>,
    ) -> Reference {
        Reference {
            registry: registry.to_owned(),
            repository: repository.to_owned(),
            tag: tag.map(str::to_owned),
            digest: digest.map(str::to_owned),
        }
    }

    #[test]
    fn image_references_normalise_as_docker_does() {
        let cases: &[(&str, Reference)] = &[
            (
                "nginx",
                reference(DOCKER_HUB, "library/nginx", Some("latest"), None),
            ),
            (
                "nginx:1.27",
                reference(DOCKER_HUB, "library/nginx", Some("1.27"), None),
            ),
            (
                "docker.io/nginx",
                reference(DOCKER_HUB, "library/nginx", Some("latest"), None),
            ),
            (
                "docker.io/library/nginx:1",
                reference(DOCKER_HUB, "library/nginx", Some("1"), None),
            ),
            (
                "index.docker.io/nginx",
                reference(DOCKER_HUB, "library/nginx", Some("latest"), None),
            ),
            (
                "index.docker.io/bitnami/redis:7",
                reference(DOCKER_HUB, "bitnami/redis", Some("7"), None),
            ),
            (
                "bitnami/redis",
                reference(DOCKER_HUB, "bitnami/redis", Some("latest"), None),
            ),
            // Three parts without a host-like first part are still Docker Hub.
            (
                "acme/team/api:2",
                reference(DOCKER_HUB, "acme/team/api", Some("2"), None),
            ),
            (
                "ghcr.io/acme/api:1.2",
                reference("ghcr.io", "acme/api", Some("1.2"), None),
            ),
            (
                "ghcr.io/acme/api",
                reference("ghcr.io", "acme/api", Some("latest"), None),
            ),
            // A host with a dot keeps a one-part path as is (no `library/`).
            (
                "quay.io/busybox",
                reference("quay.io", "busybox", Some("latest"), None),
            ),
            (
                "localhost/x",
                reference("localhost", "x", Some("latest"), None),
            ),
            (
                "localhost:5000/x:y",
                reference("localhost:5000", "x", Some("y"), None),
            ),
            (
                "registry:5000/team/app",
                reference("registry:5000", "team/app", Some("latest"), None),
            ),
            (
                "127.0.0.1:25000/a/b:v1.0_rc-2",
                reference("127.0.0.1:25000", "a/b", Some("v1.0_rc-2"), None),
            ),
            (
                &format!("127.0.0.1:25000/a/b@{D}") as &str,
                reference("127.0.0.1:25000", "a/b", None, Some(D)),
            ),
            (
                &format!("host.example/x:1.0@{D}") as &str,
                reference("host.example", "x", Some("1.0"), Some(D)),
            ),
            (
                &format!("nginx@{D}") as &str,
                reference(DOCKER_HUB, "library/nginx", None, Some(D)),
            ),
            // `localhost:5000` alone is a Docker Hub image `localhost` at tag `5000`, as Docker reads it.
            (
                "localhost:5000",
                reference(DOCKER_HUB, "library/localhost", Some("5000"), None),
            ),
            // An uppercase first part is a host (distribution's splitDockerDomain).
            ("Acme/api", reference("Acme", "api", Some("latest"), None)),
            (
                "a.b-c.example:443/x__y/z-1.w:T_9",
                reference("a.b-c.example:443", "x__y/z-1.w", Some("T_9"), None),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(&parse_image(input).unwrap(), want, "{input}");
        }
        assert_eq!(
            parse_image(&format!("host.example/x:1.0@{D}"))
                .unwrap()
                .to_string(),
            format!("host.example/x:1.0@{D}")
        );
        assert_eq!(
            parse_image("nginx").unwrap().to_string(),
            "registry-1.docker.io/library/nginx:latest"
        );
        // A digest is what is looked up, even beside a tag.
        assert_eq!(
            parse_image(&format!("h.io/x:1.0@{D}"))
                .unwrap()
                .manifest_reference(),
            D
        );
        assert_eq!(
            parse_image("h.io/x:1.0").unwrap().manifest_reference(),
            "1.0"
        );
    }

    #[test]
    fn invalid_image_references_are_refused() {
        let cases = [
            ("", "empty"),
            ("Nginx", "must be lowercase"),
            ("nginx/Web", "must be lowercase"),
            ("ghcr.io/Acme/api", "must be lowercase"),
            ("ghcr.io/acme/API:1", "must be lowercase"),
            ("4b825dc642cb6eb9a060e54bf8d69288fbee4904a1b2c3d4e5f60718293a4b5c", "image ID"),
            ("ghcr.io/acme//api", "empty path component"),
            ("ghcr.io/acme/api/", "empty path component"),
            ("ghcr.io/-acme/api", "not a valid repository path component"),
            ("ghcr.io/acme/api:", "not a valid tag"),
            ("ghcr.io/acme/api:-x", "not a valid tag"),
            ("ghcr.io/acme/api:a+b", "not a valid tag"),
            ("ghcr.io/acme/api@sha256:abc", "not a digest"),
            ("ghcr.io/acme/api@md5:4b825dc642cb6eb9a060e54bf8d69288", "unsupported digest algorithm"),
            ("ghcr.io/acme/api@sha256:4B825DC642CB6EB9A060E54BF8D69288FBEE4904A1B2C3D4E5F60718293A4B5C", "lowercase hexadecimal"),
            ("ghcr.io/acme/api@sha256:4b825dc642cb6eb9a060e54bf8d69288fbee4904a1b2c3d4e5f60718293a4b", "64 lowercase"),
            ("-bad.io/acme/api", "not a registry host"),
            ("bad_host.io/acme/api", "not a registry host"),
            ("host:port/x", "not a registry host"),
        ];
        for (input, why) in cases {
            let e = parse_image(input).unwrap_err();
            assert!(e.contains(why), "{input}: {e}");
            assert!(e.contains(&format!("`{input}`")), "{input}: {e}");
        }
        let long = format!("h.io/{}", "a/".repeat(130) + "x");
        assert!(parse_image(&long).unwrap_err().contains("longer than 255"));
    }

    #[test]
    fn a_chart_version_is_the_tag_helm_pushes() {
        assert_eq!(
            chart("oci://127.0.0.1:25000/charts/web", "1.2.3").unwrap(),
            reference("127.0.0.1:25000", "charts/web", Some("1.2.3"), None)
        );
        // `+` is not allowed in a tag: Helm stores it as `_`.
        assert_eq!(
            chart("oci://ghcr.io/acme/charts/app", "1.0.0+build.7").unwrap(),
            reference("ghcr.io", "acme/charts/app", Some("1.0.0_build.7"), None)
        );
        assert_eq!(
            chart("oci://ghcr.io/app", " 0.1.0-rc.1 ")
                .unwrap()
                .tag
                .as_deref(),
            Some("0.1.0-rc.1")
        );
        // Docker Hub's API host; no `library/` for charts.
        assert_eq!(
            chart("oci://docker.io/acme/app", "1.0.0").unwrap(),
            reference(DOCKER_HUB, "acme/app", Some("1.0.0"), None)
        );
        // A tag or digest in the reference, as Helm accepts them.
        assert_eq!(
            chart("oci://r.io/c/app:2.0.0", "").unwrap().tag.as_deref(),
            Some("2.0.0")
        );
        assert_eq!(
            chart("oci://r.io/c/app:2.0.0", "2.0.0")
                .unwrap()
                .tag
                .as_deref(),
            Some("2.0.0")
        );
        assert_eq!(
            chart("oci://r.io/c/app:1.0_b", "1.0+b")
                .unwrap()
                .tag
                .as_deref(),
            Some("1.0_b")
        );
        let by_digest = chart(&format!("oci://r.io/c/app@{D}"), "").unwrap();
        assert_eq!(by_digest.manifest_reference(), D);
        assert_eq!(by_digest.tag, None);

        let refused = [
            (
                "https://r.io/c/app",
                "1.0.0",
                "expected oci://REGISTRY/PATH/NAME",
            ),
            ("r.io/c/app", "1.0.0", "expected oci://"),
            ("oci://app", "1.0.0", "expected oci://REGISTRY/PATH/NAME"),
            ("oci://r.io/c/App", "1.0.0", "must be lowercase"),
            ("oci://r.io/c/app", "", "no version"),
            (
                "oci://r.io/c/app:2.0.0",
                "2.0.1",
                "does not match the version `2.0.1`",
            ),
            ("oci://r.io/c/app", "1.0 beta", "not usable as an OCI tag"),
        ];
        for (r, v, why) in refused {
            let e = chart(r, v).unwrap_err();
            assert!(e.contains(why), "{r} {v}: {e}");
        }
    }

    #[test]
    fn loopback_registries_speak_plain_http_as_docker_assumes() {
        for host in [
            "localhost",
            "localhost:5000",
            "LOCALHOST:1",
            "127.0.0.1:25000",
            "127.1.2.3",
            "[::1]:5000",
        ] {
            assert!(uses_plain_http(host, false), "{host}");
        }
        for host in [
            "ghcr.io",
            "registry-1.docker.io",
            "10.0.0.1:5000",
            "localhost.example.com",
            "[::2]:5000",
        ] {
            assert!(!uses_plain_http(host, false), "{host}");
            assert!(uses_plain_http(host, true), "{host}");
        }
    }

    #[test]
    fn challenges_are_parsed_as_rfc_7235_writes_them() {
        let c = parse_challenges(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull""#,
        );
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].scheme, "Bearer");
        assert_eq!(c[0].param("realm"), Some("https://auth.docker.io/token"));
        assert_eq!(c[0].param("Service"), Some("registry.docker.io"));
        assert_eq!(c[0].param("scope"), Some("repository:library/nginx:pull"));

        let c = parse_challenges(
            r#"Basic realm="stack \"test\", ok", Bearer realm=https://t/x , service=s,error="insufficient_scope""#,
        );
        assert_eq!(c.len(), 2);
        assert_eq!(
            (c[0].scheme.as_str(), c[0].param("realm")),
            ("Basic", Some(r#"stack "test", ok"#))
        );
        assert_eq!(c[1].param("realm"), Some("https://t/x"));
        assert_eq!(c[1].param("service"), Some("s"));
        assert_eq!(c[1].param("error"), Some("insufficient_scope"));
        assert_eq!(parse_challenges("Basic").len(), 1);
        assert!(parse_challenges("  ").is_empty());
    }

    #[test]
    fn credentials_never_show_the_password() {
        let c = Credentials {
            username: "robot".into(),
            password: "hunter2-secret".into(),
        };
        let debug = format!("{c:?} {:?}", Some(&c));
        assert!(
            debug.contains("robot") && debug.contains("<redacted>"),
            "{debug}"
        );
        assert!(!debug.contains("hunter2"), "{debug}");
        let e = redact(format!("echo: hunter2-secret {}", c.basic()), Some(&c));
        assert_eq!(e, "echo: <redacted> <redacted>");
    }

    // A FAKE registry and token server (one local tokio listener) following the distribution token
    // spec (distribution's docs/spec/auth/token.md): a 401 with `WWW-Authenticate: Bearer
    // realm,service,scope`; the realm issues `token`s (or only `access_token`) for Basic
    // credentials or anonymously; a token without access gets 401 `insufficient_scope`. No real
    // token server can run here; the Basic flow is proven against the real registry in
    // tests/it/oci.rs.

    /// A request the fake saw.
    #[derive(Clone, Debug)]
    struct Seen {
        method: String,
        target: String,
        authorization: Option<String>,
        accept: Option<String>,
    }

    struct Answer {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    }

    fn answer(status: u16, headers: &[(&str, &str)], body: &str) -> Answer {
        Answer {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    struct Fake {
        registry: String,
        seen: Arc<Mutex<Vec<Seen>>>,
        task: tokio::task::JoinHandle<()>,
    }

    impl Drop for Fake {
        fn drop(&mut self) {
            self.task.abort();
        }
    }

    impl Fake {
        fn seen(&self) -> Vec<Seen> {
            self.seen.lock().unwrap().clone()
        }
        fn at(&self, repository: &str, reference: &str) -> Reference {
            let (tag, digest) = if reference.contains(':') {
                (None, Some(reference))
            } else {
                (Some(reference), None)
            };
            self::reference(&self.registry, repository, tag, digest)
        }
    }

    /// Serves `handle(base_url, request)` on 127.0.0.1, one response per connection.
    async fn fake(handle: impl Fn(&str, &Seen) -> Answer + Send + Sync + 'static) -> Fake {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let registry = listener.local_addr().unwrap().to_string();
        let base = format!("http://{registry}");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (log, handle) = (seen.clone(), Arc::new(handle));
        let task = tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let (log, handle, base) = (log.clone(), handle.clone(), base.clone());
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&head).into_owned();
                    let mut lines = head.lines();
                    let mut first = lines.next().unwrap_or_default().split(' ');
                    let header = |name: &str| {
                        head.lines().skip(1).find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
                        })
                    };
                    let seen = Seen {
                        method: first.next().unwrap_or_default().to_owned(),
                        target: first.next().unwrap_or_default().to_owned(),
                        authorization: header("authorization"),
                        accept: header("accept"),
                    };
                    log.lock().unwrap().push(seen.clone());
                    let a = handle(&base, &seen);
                    let mut out = format!("HTTP/1.1 {} X\r\n", a.status);
                    for (k, v) in &a.headers {
                        out.push_str(&format!("{k}: {v}\r\n"));
                    }
                    out.push_str(&format!(
                        "Content-Length: {}\r\nConnection: close\r\n\r\n",
                        a.body.len()
                    ));
                    let mut bytes = out.into_bytes();
                    if seen.method != "HEAD" {
                        bytes.extend_from_slice(&a.body);
                    }
                    let _ = socket.write_all(&bytes).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        Fake {
            registry,
            seen,
            task,
        }
    }

    const USER: &str = "robot";
    const PASSWORD: &str = "hunter2-secret";

    fn robot() -> Credentials {
        Credentials {
            username: USER.into(),
            password: PASSWORD.into(),
        }
    }

    /// The fake token-auth registry: `acme/api:1.0` is private (robot only), `public/web:2.0` is
    /// readable with an anonymous token, the realm answers `alt/*` scopes with `access_token` only.
    fn token_registry(base: &str, req: &Seen) -> Answer {
        let unauthorized =
            r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#;
        if let Some(query) = req.target.strip_prefix("/token?") {
            let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect();
            if !pairs.contains(&("service".into(), "fake.registry".into())) {
                return answer(400, &[], "no service");
            }
            let scopes: Vec<&str> = pairs
                .iter()
                .filter(|(k, _)| k == "scope")
                .map(|(_, v)| v.as_str())
                .collect();
            let user = match &req.authorization {
                None => "anonymous",
                Some(a) if *a == robot().basic() => USER,
                Some(_) => {
                    return answer(401, &[("Content-Type", "application/json")], unauthorized)
                }
            };
            let token = format!("tok-{user}");
            return if scopes.iter().any(|s| s.starts_with("repository:alt/")) {
                answer(
                    200,
                    &[],
                    &format!(r#"{{"access_token":"{token}","expires_in":300}}"#),
                )
            } else {
                answer(
                    200,
                    &[],
                    &format!(
                        r#"{{"token":"{token}","expires_in":300,"issued_at":"2026-01-01T00:00:00Z"}}"#
                    ),
                )
            };
        }
        let Some((name, reference)) = req
            .target
            .strip_prefix("/v2/")
            .and_then(|p| p.split_once("/manifests/"))
        else {
            return answer(404, &[], "");
        };
        let token = req
            .authorization
            .as_deref()
            .and_then(|a| a.strip_prefix("Bearer "));
        let allowed = match token {
            Some("tok-robot") => true,
            Some("tok-anonymous") => name.starts_with("public/"),
            _ => false,
        };
        if !allowed {
            let error = if token.is_some() {
                r#",error="insufficient_scope""#
            } else {
                ""
            };
            let challenge = format!(
                r#"Bearer realm="{base}/token",service="fake.registry",scope="repository:{name}:pull"{error}"#
            );
            return answer(
                401,
                &[
                    ("WWW-Authenticate", &challenge),
                    ("Content-Type", "application/json"),
                ],
                unauthorized,
            );
        }
        let manifests = [("acme/api", "1.0"), ("public/web", "2.0"), ("alt/x", "1")];
        if manifests.contains(&(name, reference)) {
            answer(
                200,
                &[
                    ("Docker-Content-Digest", D),
                    ("Content-Type", "application/vnd.oci.image.manifest.v1+json"),
                ],
                "{}",
            )
        } else {
            answer(
                404,
                &[("Content-Type", "application/json")],
                r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#,
            )
        }
    }

    const T: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn fake_token_server_bearer_flow_with_credentials() {
        let f = fake(token_registry).await;
        let found = exists(&f.at("acme/api", "1.0"), Some(&robot()), false, T).await;
        assert_eq!(
            found,
            Ok(Existence::Found {
                digest: Some(D.into())
            })
        );
        let seen = f.seen();
        assert_eq!(seen.len(), 3, "{seen:?}");
        // The HEAD without credentials, the realm asked for the challenge's service and scope with
        // Basic credentials, the HEAD again with the token.
        assert_eq!(
            (seen[0].method.as_str(), seen[0].target.as_str()),
            ("HEAD", "/v2/acme/api/manifests/1.0")
        );
        assert_eq!(seen[0].authorization, None);
        let accept = seen[0].accept.clone().unwrap();
        for media_type in [
            "application/vnd.oci.image.index.v1+json",
            "application/vnd.oci.image.manifest.v1+json",
            "application/vnd.docker.distribution.manifest.v2+json",
            "application/vnd.docker.distribution.manifest.list.v2+json",
        ] {
            assert!(accept.contains(media_type), "{accept}");
        }
        assert_eq!(seen[1].method, "GET");
        assert_eq!(
            seen[1].target,
            "/token?service=fake.registry&scope=repository%3Aacme%2Fapi%3Apull"
        );
        assert_eq!(
            seen[1].authorization.as_deref(),
            Some("Basic cm9ib3Q6aHVudGVyMi1zZWNyZXQ=")
        );
        assert_eq!(seen[2].authorization.as_deref(), Some("Bearer tok-robot"));

        let missing = exists(&f.at("acme/api", "9.9"), Some(&robot()), false, T).await;
        assert_eq!(missing, Ok(Existence::Missing));
        let by_digest = exists(&f.at("acme/nope", D), Some(&robot()), false, T).await;
        assert_eq!(by_digest, Ok(Existence::Missing));
    }

    #[tokio::test]
    async fn fake_token_server_anonymous_token_and_access_token() {
        let f = fake(token_registry).await;
        let found = exists(&f.at("public/web", "2.0"), None, false, T).await;
        assert_eq!(
            found,
            Ok(Existence::Found {
                digest: Some(D.into())
            })
        );
        let seen = f.seen();
        assert!(seen[1].target.starts_with("/token?"));
        assert_eq!(seen[1].authorization, None, "anonymous: no Basic header");
        // A realm that answers `access_token` only (OAuth2 style).
        let found = exists(&f.at("alt/x", "1"), Some(&robot()), false, T).await;
        assert_eq!(
            found,
            Ok(Existence::Found {
                digest: Some(D.into())
            })
        );
    }

    #[tokio::test]
    async fn fake_token_server_missing_or_refused_credentials_are_errors_not_missing() {
        let f = fake(token_registry).await;
        let e = exists(&f.at("acme/api", "1.0"), None, false, T)
            .await
            .unwrap_err();
        assert!(e.contains(&format!("registry {}", f.registry)), "{e}");
        assert!(e.contains("credentials missing"), "{e}");

        let wrong = Credentials {
            username: USER.into(),
            password: "not-the-hunter2-password".into(),
        };
        let e = exists(&f.at("acme/api", "1.0"), Some(&wrong), false, T)
            .await
            .unwrap_err();
        assert!(e.contains(&format!("registry {}", f.registry)), "{e}");
        assert!(
            e.contains("credentials refused") && e.contains("`robot`"),
            "{e}"
        );
        assert!(
            !e.contains("not-the-hunter2-password") && !e.contains(&wrong.basic()),
            "{e}"
        );
    }

    #[tokio::test]
    async fn a_registry_refusing_head_is_asked_with_get() {
        let f = fake(|_, req| match (req.method.as_str(), req.target.as_str()) {
            ("HEAD", _) => answer(405, &[], ""),
            ("GET", "/v2/a/b/manifests/1") => answer(200, &[], "{\"schemaVersion\":2}"),
            ("GET", "/v2/a/b/manifests/2") => answer(
                400,
                &[],
                r#"{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry"}]}"#,
            ),
            _ => answer(500, &[], r#"{"errors":[{"code":"UNKNOWN","message":"boom"}]}"#),
        })
        .await;
        // No Docker-Content-Digest: the digest of the manifest read.
        let want = format!("sha256:{:x}", Sha256::digest(b"{\"schemaVersion\":2}"));
        assert_eq!(
            exists(&f.at("a/b", "1"), None, false, T).await,
            Ok(Existence::Found { digest: Some(want) })
        );
        assert_eq!(
            exists(&f.at("a/b", "2"), None, false, T).await,
            Ok(Existence::Missing)
        );
        let e = exists(&f.at("a/b", "3"), None, false, T).await.unwrap_err();
        assert_eq!(
            e,
            format!(
                "registry {0} answered 500 for {0}/a/b:3: UNKNOWN: boom",
                f.registry
            )
        );
        let methods: Vec<String> = f.seen().iter().map(|s| s.method.clone()).collect();
        assert_eq!(methods, ["HEAD", "GET", "HEAD", "GET", "HEAD", "GET"]);
    }

    #[tokio::test]
    async fn a_redirect_is_followed_with_credentials_only_to_the_same_host() {
        let f = fake(|base, req| match req.target.as_str() {
            "/v2/a/manifests/1" if req.authorization.is_none() => {
                answer(401, &[("WWW-Authenticate", r#"Basic realm="fake""#)], "")
            }
            "/v2/a/manifests/1" => answer(307, &[("Location", &format!("{base}/moved/a/1"))], ""),
            "/moved/a/1" if req.authorization.is_some() => {
                answer(200, &[("Docker-Content-Digest", D)], "")
            }
            _ => answer(404, &[], ""),
        })
        .await;
        let found = exists(&f.at("a", "1"), Some(&robot()), false, T).await;
        assert_eq!(
            found,
            Ok(Existence::Found {
                digest: Some(D.into())
            })
        );
        assert_eq!(
            f.seen().last().unwrap().authorization,
            Some(robot().basic())
        );
        assert_eq!(origin("http://h:1/x/y"), "http://h:1");
        assert_eq!(origin("https://h"), "https://h");
    }

    #[tokio::test]
    async fn check_all_keeps_the_order_and_asks_for_each_registrys_credentials() {
        let f = fake(token_registry).await;
        let items: Vec<(String, Reference)> = vec![
            ("chart".into(), f.at("acme/api", "1.0")),
            ("image web".into(), f.at("public/web", "2.0")),
            ("image gone".into(), f.at("acme/api", "0.0")),
            ("image private".into(), f.at("acme/api", "1.0")),
        ];
        let asked = Mutex::new(Vec::new());
        let results = check_all(
            &items,
            |registry| {
                asked.lock().unwrap().push(registry.to_owned());
                // The last item's registry gets no credentials (to see an error in its place).
                (asked.lock().unwrap().len() < 4).then(robot)
            },
            |_| false,
            T,
        )
        .await;
        let whats: Vec<&str> = results.iter().map(|(w, _)| w.as_str()).collect();
        assert_eq!(whats, ["chart", "image web", "image gone", "image private"]);
        assert_eq!(
            results[0].1,
            Ok(Existence::Found {
                digest: Some(D.into())
            })
        );
        assert_eq!(
            results[1].1,
            Ok(Existence::Found {
                digest: Some(D.into())
            })
        );
        assert_eq!(results[2].1, Ok(Existence::Missing));
        assert!(results[3]
            .1
            .as_ref()
            .unwrap_err()
            .contains("credentials missing"));
        assert_eq!(*asked.lock().unwrap(), vec![f.registry.clone(); 4]);
    }

    #[tokio::test]
    async fn a_registry_that_never_answers_is_an_error_within_the_timeout() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let registry = listener.local_addr().unwrap().to_string();
        let hold = tokio::spawn(async move {
            let mut kept = Vec::new();
            while let Ok((s, _)) = listener.accept().await {
                kept.push(s);
            }
        });
        let started = std::time::Instant::now();
        let r = reference(&registry, "a", Some("1"), None);
        let e = exists(&r, None, false, Duration::from_millis(300))
            .await
            .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(3));
        assert!(e.starts_with(&format!("registry {registry}")), "{e}");
        hold.abort();
    }
}
