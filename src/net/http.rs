//! One HTTP/1.1 request and its response, over http or https (rustls, the platform's native
//! roots, as kube's TLS stack). No redirect is followed (a check sees the 3xx); the body is read
//! up to [`BODY_CAP`]. A WebSocket upgrade request ([`websocket_upgrade`]) comes back as the
//! `101` response, its body not read. Errors are one line naming the URL and the cause.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::{Connect, HttpConnector};
use hyper_util::client::legacy::Client;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

/// How much of a response body is kept; the rest is dropped (and [`Response::truncated`] set).
pub const BODY_CAP: usize = 4 * 1024 * 1024;

/// A request: `url` is http://, https:// (ws:// and wss:// are sent as their http twins).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// In the order received; names lowercase.
    pub headers: Vec<(String, String)>,
    /// At most [`BODY_CAP`] bytes; empty for a `101 Switching Protocols`.
    pub body: Vec<u8>,
    /// The body was longer than [`BODY_CAP`]; the rest was dropped.
    pub truncated: bool,
}

impl Response {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A GET asking to upgrade to a WebSocket (`ws://` → `http://`, `wss://` → `https://`).
pub fn websocket_upgrade(url: &str) -> Request {
    let url = if let Some(rest) = url.strip_prefix("ws://") {
        format!("http://{rest}")
    } else if let Some(rest) = url.strip_prefix("wss://") {
        format!("https://{rest}")
    } else {
        url.to_owned()
    };
    Request {
        method: "GET".into(),
        url,
        headers: vec![
            ("Connection".into(), "Upgrade".into()),
            ("Upgrade".into(), "websocket".into()),
            ("Sec-WebSocket-Version".into(), "13".into()),
            ("Sec-WebSocket-Key".into(), websocket_key()),
        ],
        body: Vec::new(),
    }
}

/// A nonce as RFC 6455 asks (16 bytes, base64); it needs to be fresh, not secret.
fn websocket_key() -> String {
    use base64::Engine;
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&nanos.to_le_bytes());
    bytes[8..].copy_from_slice(&(n ^ u64::from(std::process::id())).to_le_bytes());
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Sends `req` and reads the response, all within `timeout`.
pub async fn send(req: &Request, timeout: Duration) -> Result<Response, String> {
    let url = &req.url;
    let fail = |cause: String| format!("{url}: {cause}");
    let wire_url = if let Some(rest) = url.strip_prefix("ws://") {
        format!("http://{rest}")
    } else if let Some(rest) = url.strip_prefix("wss://") {
        format!("https://{rest}")
    } else {
        url.clone()
    };
    let uri: hyper::Uri = wire_url
        .parse()
        .map_err(|e| fail(format!("not a valid URL ({e})")))?;
    let https = match uri.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        _ => return Err(fail("not an http(s):// or ws(s):// URL".into())),
    };
    if uri.host().is_none() {
        return Err(fail("the URL names no host".into()));
    }
    let method = hyper::Method::from_bytes(req.method.as_bytes())
        .map_err(|_| fail(format!("`{}` is not an HTTP method", req.method)))?;
    let mut builder = hyper::Request::builder().method(method).uri(uri);
    for (name, value) in &req.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    let request = builder
        .body(Full::new(Bytes::from(req.body.clone())))
        .map_err(|e| fail(format!("invalid request: {e}")))?;
    let exchange = async {
        if https {
            let connector = https_connector().map_err(|e| fail(e.clone()))?;
            exchange(connector.clone(), request, true).await
        } else {
            let mut connector = HttpConnector::new();
            connector.set_nodelay(true);
            exchange(connector, request, false).await
        }
        .map_err(fail)
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(result) => result,
        Err(_) => Err(fail(format!("timed out after {}", seconds(timeout)))),
    }
}

/// The TLS connector, built once (loading the native roots reads the system's store).
fn https_connector() -> Result<&'static HttpsConnector<HttpConnector>, &'static String> {
    static CONNECTOR: OnceLock<Result<HttpsConnector<HttpConnector>, String>> = OnceLock::new();
    CONNECTOR
        .get_or_init(|| {
            Ok(hyper_rustls::HttpsConnectorBuilder::new()
                .with_native_roots()
                .map_err(|e| format!("TLS: {e}"))?
                .https_or_http()
                .enable_http1()
                .build())
        })
        .as_ref()
}

async fn exchange<C>(
    connector: C,
    request: hyper::Request<Full<Bytes>>,
    https: bool,
) -> Result<Response, String>
where
    C: Connect + Clone + Send + Sync + 'static,
{
    // One connection per request: no pool outlives the call (a check's forward may go away).
    let client: Client<C, Full<Bytes>> = Client::builder(hyper_util::rt::TokioExecutor::new())
        .pool_max_idle_per_host(0)
        .build(connector);
    let response = client
        .request(request)
        .await
        .map_err(|e| describe(&e, https))?;
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let mut out = Response {
        status,
        headers,
        body: Vec::new(),
        truncated: false,
    };
    if status == 101 {
        return Ok(out);
    }
    let mut body = response.into_body();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| format!("reading the body: {}", chain(&e)))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let room = BODY_CAP - out.body.len();
        if data.len() > room {
            out.body.extend_from_slice(&data[..room]);
            out.truncated = true;
            break;
        }
        out.body.extend_from_slice(&data);
    }
    Ok(out)
}

/// A client error as its cause: `connection refused`, `connection reset`, a DNS failure, or (on
/// https, once the TCP connection stood) the TLS error.
fn describe(e: &hyper_util::client::legacy::Error, https: bool) -> String {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    let mut tcp_or_dns = false;
    let mut deepest = e.to_string();
    while let Some(s) = source {
        let text = s.to_string();
        if text == "tcp connect error" || text == "dns error" {
            tcp_or_dns = true;
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => return "connection refused".into(),
                std::io::ErrorKind::ConnectionReset => return "connection reset".into(),
                std::io::ErrorKind::ConnectionAborted => return "connection aborted".into(),
                _ => {}
            }
        }
        deepest = text;
        source = s.source();
    }
    if e.is_connect() && https && !tcp_or_dns {
        format!("TLS: {deepest}")
    } else {
        deepest
    }
}

/// An error and its causes on one line.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

fn seconds(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0}s")
    } else {
        format!("{s:.1}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A one-connection-at-a-time server on 127.0.0.1 answering every request with `answer`
    /// (given the request head); returns its port.
    async fn serve(answer: fn(&str) -> Vec<u8>) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
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
                    let _ = socket.write_all(&answer(&head)).await;
                    let _ = socket.shutdown().await;
                    // Keep an upgraded connection open a moment, as a WebSocket server would.
                    tokio::time::sleep(Duration::from_millis(200)).await;
                });
            }
        });
        port
    }

    fn reply(status: &str, headers: &str, body: &str) -> Vec<u8> {
        format!(
            "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }

    fn get(url: String) -> Request {
        Request {
            method: "GET".into(),
            url,
            ..Request::default()
        }
    }

    #[tokio::test]
    async fn a_response_comes_back_with_status_headers_and_body() {
        let port = serve(|head| {
            let echoed = head
                .lines()
                .find(|l| l.to_ascii_lowercase().starts_with("x-probe:"))
                .unwrap_or("none")
                .to_owned();
            let first = head.lines().next().unwrap_or_default().to_owned();
            reply(
                "200 OK",
                "Content-Type: application/json\r\nX-Echo: yes\r\n",
                &format!("{{\"first\":\"{first}\",\"probe\":\"{echoed}\"}}"),
            )
        })
        .await;
        let mut req = get(format!("http://127.0.0.1:{port}/healthz?x=1"));
        req.headers.push(("X-Probe".into(), "42".into()));
        let res = send(&req, Duration::from_secs(5)).await.unwrap();
        assert_eq!(res.status, 200);
        assert_eq!(res.header("content-type"), Some("application/json"));
        assert_eq!(res.header("X-ECHO"), Some("yes"));
        assert!(res
            .headers
            .iter()
            .all(|(n, _)| *n == n.to_ascii_lowercase()));
        let body = String::from_utf8(res.body).unwrap();
        assert!(body.contains("GET /healthz?x=1 HTTP/1.1"), "{body}");
        assert!(
            body.contains("X-Probe: 42") || body.contains("x-probe: 42"),
            "{body}"
        );
        assert!(!res.truncated);
    }

    #[tokio::test]
    async fn a_body_is_sent_and_redirects_are_not_followed() {
        let port = serve(|head| {
            if head.starts_with("POST /items ")
                && head.to_ascii_lowercase().contains("content-length: 5")
            {
                reply("302 Found", "Location: /elsewhere\r\n", "")
            } else {
                reply("400 Bad Request", "", "unexpected")
            }
        })
        .await;
        let req = Request {
            method: "POST".into(),
            url: format!("http://127.0.0.1:{port}/items"),
            headers: vec![],
            body: b"hello".to_vec(),
        };
        let res = send(&req, Duration::from_secs(5)).await.unwrap();
        assert_eq!(res.status, 302);
        assert_eq!(res.header("location"), Some("/elsewhere"));
    }

    #[tokio::test]
    async fn a_body_over_the_cap_is_cut() {
        let port = serve(|_| {
            let body = "x".repeat(BODY_CAP + 1000);
            reply("200 OK", "", &body)
        })
        .await;
        let res = send(
            &get(format!("http://127.0.0.1:{port}/big")),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
        assert_eq!(res.body.len(), BODY_CAP);
        assert!(res.truncated);
    }

    #[tokio::test]
    async fn a_websocket_upgrade_returns_the_101() {
        let port = serve(|head| {
            let lower = head.to_ascii_lowercase();
            let asked = lower.contains("upgrade: websocket")
                && lower.contains("connection: upgrade")
                && lower.contains("sec-websocket-version: 13")
                && lower.contains("sec-websocket-key: ");
            if asked {
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: x\r\n\r\n".to_vec()
            } else {
                reply("400 Bad Request", "", "no upgrade")
            }
        })
        .await;
        let req = websocket_upgrade(&format!("ws://127.0.0.1:{port}/socket"));
        assert_eq!(req.url, format!("http://127.0.0.1:{port}/socket"));
        let res = send(&req, Duration::from_secs(5)).await.unwrap();
        assert_eq!(res.status, 101);
        assert_eq!(res.header("upgrade"), Some("websocket"));
        assert!(res.body.is_empty());
        assert_eq!(websocket_upgrade("wss://h/x").url, "https://h/x");
    }

    #[tokio::test]
    async fn errors_name_the_url_and_the_cause() {
        // A port that was just free: nothing listens there.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let url = format!("http://127.0.0.1:{port}/");
        assert_eq!(
            send(&get(url.clone()), Duration::from_secs(5))
                .await
                .unwrap_err(),
            format!("{url}: connection refused")
        );

        // Accepts and never answers.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let silent = listener.local_addr().unwrap().port();
        let hold = tokio::spawn(async move {
            let mut kept = Vec::new();
            while let Ok((s, _)) = listener.accept().await {
                kept.push(s);
            }
        });
        let url = format!("http://127.0.0.1:{silent}/slow");
        assert_eq!(
            send(&get(url.clone()), Duration::from_millis(300))
                .await
                .unwrap_err(),
            format!("{url}: timed out after 0.3s")
        );

        // https to a server that speaks plain HTTP (at once, as a plain server answers garbage):
        // a TLS error, not a hang.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let plain = listener.local_addr().unwrap().port();
        let answer = tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let _ = s.write_all(&reply("400 Bad Request", "", "plain")).await;
            }
        });
        let url = format!("https://127.0.0.1:{plain}/");
        let e = send(&get(url.clone()), Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(e.starts_with(&format!("{url}: TLS: ")), "{e}");
        assert!(!e.contains('\n'));

        let e = send(&get("ftp://x/".into()), Duration::from_secs(1))
            .await
            .unwrap_err();
        assert_eq!(e, "ftp://x/: not an http(s):// or ws(s):// URL");
        hold.abort();
        answer.abort();
    }
}
