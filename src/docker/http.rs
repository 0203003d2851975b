//! The one Engine API request stack makes without bollard: `POST /build` with BuildKit. bollard 0.21
//! reads a build's output into typed messages whose `aux` field, without its `buildkit` feature,
//! expects an image id and cannot decode BuildKit's progress (`moby.buildkit.trace`: a base64
//! string); with that feature it insists on a gRPC session (`/session`) and compiles tonic, prost,
//! axum, h2 and time in. The daemon needs no session when the context is the request body, so this
//! is one HTTP/1.1 request through hyper (already built for bollard), the tar streamed as the body
//! and the response read back as JSON lines.

use bytes::{Bytes, BytesMut};
use futures::{Stream, TryStreamExt};
use http_body_util::BodyExt;

/// A daemon's response: its status and the body, line by line.
pub struct Response {
    pub status: u16,
    body: hyper::body::Incoming,
    buf: BytesMut,
    done: bool,
}

/// Why a request got no response: the text says what failed.
#[derive(Debug)]
pub struct Failed(pub String);

/// POSTs `body` to `path_and_query` (unversioned: the daemon answers in its own API version, so
/// neither old nor new daemons refuse it) on the daemon at `endpoint` (`unix://…`, `tcp://…`,
/// `http://…`).
pub async fn post(
    endpoint: &str,
    path_and_query: &str,
    content_type: &str,
    body: impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static,
) -> Result<Response, Failed> {
    let body =
        http_body_util::StreamBody::new(body.map_ok(hyper::body::Frame::data)).boxed_unsync();
    let request = hyper::Request::post(path_and_query)
        // HTTP/1.1 needs a Host; the daemon does not look at it.
        .header(hyper::header::HOST, "docker")
        .header(hyper::header::CONTENT_TYPE, content_type)
        .body(body)
        .map_err(|e| Failed(e.to_string()))?;
    let response = if let Some(path) = endpoint.strip_prefix("unix://") {
        let io = tokio::net::UnixStream::connect(path)
            .await
            .map_err(|e| Failed(format!("connecting to {path}: {e}")))?;
        send(io, request).await?
    } else if let Some(addr) = endpoint
        .strip_prefix("tcp://")
        .or_else(|| endpoint.strip_prefix("http://"))
    {
        let addr = addr.trim_end_matches('/');
        let io = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| Failed(format!("connecting to {addr}: {e}")))?;
        send(io, request).await?
    } else {
        return Err(Failed(format!(
            "building through `{endpoint}` is not supported: point DOCKER_HOST at a unix:// or tcp:// endpoint"
        )));
    };
    Ok(Response {
        status: response.status().as_u16(),
        body: response.into_body(),
        buf: BytesMut::new(),
        done: false,
    })
}

async fn send<B>(
    io: impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    request: hyper::Request<B>,
) -> Result<hyper::Response<hyper::body::Incoming>, Failed>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(io))
            .await
            .map_err(|e| Failed(e.to_string()))?;
    // The connection is driven on its own task; it ends when the response body has been read
    // (or dropped).
    tokio::spawn(connection);
    sender
        .send_request(request)
        .await
        .map_err(|e| Failed(e.to_string()))
}

impl Response {
    /// The next line of the body (without its line ending); `None` at the end.
    pub async fn line(&mut self) -> Option<Result<Bytes, Failed>> {
        loop {
            if let Some(end) = self.buf.iter().position(|&b| b == b'\n') {
                let mut line = self.buf.split_to(end + 1).freeze();
                line.truncate(end);
                if line.ends_with(b"\r") {
                    line.truncate(end - 1);
                }
                return Some(Ok(line));
            }
            if self.done {
                return (!self.buf.is_empty()).then(|| Ok(self.buf.split().freeze()));
            }
            match self.body.frame().await {
                None => self.done = true,
                Some(Err(e)) => {
                    self.done = true;
                    return Some(Err(Failed(e.to_string())));
                }
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.buf.extend_from_slice(&data);
                    }
                }
            }
        }
    }

    /// The whole rest of the body (an error response's JSON), as text.
    pub async fn text(mut self) -> String {
        let mut out = Vec::new();
        while let Some(Ok(line)) = self.line().await {
            out.extend_from_slice(&line);
            out.push(b'\n');
        }
        String::from_utf8_lossy(&out).trim().to_owned()
    }
}
