//! BuildKit's progress messages as the daemon streams them from `POST /build?version=2`: each
//! `{"id":"moby.buildkit.trace","aux":"<base64>"}` line carries one protobuf
//! `moby.buildkit.v1.StatusResponse` (buildkit `api/services/control/control.proto`). Decoded by
//! hand, only the fields stack shows, so no protobuf or gRPC stack is compiled in for them.
//!
//! ```text
//! StatusResponse { repeated Vertex vertexes = 1; repeated VertexStatus statuses = 2;
//!                  repeated VertexLog logs = 3; repeated VertexWarning warnings = 4; }
//! Vertex         { string digest = 1; repeated string inputs = 2; string name = 3; bool cached = 4;
//!                  Timestamp started = 5; Timestamp completed = 6; string error = 7; ... }
//! VertexLog      { string vertex = 1; Timestamp timestamp = 2; int64 stream = 3; bytes msg = 4; }
//! VertexWarning  { string vertex = 1; int64 level = 2; bytes short = 3; ... }
//! ```
//! Unknown fields are skipped, as protobuf readers do, so newer daemons' additions do no harm.

/// The parts of one `StatusResponse` stack uses.
#[derive(Debug, Default, PartialEq)]
pub struct Status {
    pub vertexes: Vec<Vertex>,
    pub logs: Vec<Log>,
    pub warnings: Vec<Warning>,
}

/// A step of the build graph (`[stage-0 2/3] RUN …`, `[internal] load metadata for …`). The daemon
/// sends a vertex again whenever it changes; `started`/`completed` say whether those timestamps
/// are set.
#[derive(Debug, Default, PartialEq)]
pub struct Vertex {
    pub digest: String,
    pub name: String,
    pub cached: bool,
    pub started: bool,
    pub completed: bool,
    pub error: String,
}

/// A chunk of a step's output (stdout or stderr), not necessarily whole lines.
#[derive(Debug, Default, PartialEq)]
pub struct Log {
    pub vertex: String,
    pub msg: Vec<u8>,
}

#[derive(Debug, Default, PartialEq)]
pub struct Warning {
    pub vertex: String,
    pub short: String,
}

#[derive(Debug, PartialEq)]
pub struct DecodeError(pub &'static str);

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "malformed BuildKit status message: {}", self.0)
    }
}

/// Decodes the aux value of a `moby.buildkit.trace` message (base64 of the protobuf bytes).
pub fn decode_aux(aux: &str) -> Result<Status, DecodeError> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(aux)
        .map_err(|_| DecodeError("aux is not base64"))?;
    decode(&bytes)
}

pub fn decode(bytes: &[u8]) -> Result<Status, DecodeError> {
    let mut status = Status::default();
    let mut r = Reader(bytes);
    while let Some((field, value)) = r.next()? {
        match (field, value) {
            (1, Value::Bytes(b)) => status.vertexes.push(vertex(b)?),
            (3, Value::Bytes(b)) => status.logs.push(log(b)?),
            (4, Value::Bytes(b)) => status.warnings.push(warning(b)?),
            _ => {}
        }
    }
    Ok(status)
}

fn vertex(bytes: &[u8]) -> Result<Vertex, DecodeError> {
    let mut v = Vertex::default();
    let mut r = Reader(bytes);
    while let Some((field, value)) = r.next()? {
        match (field, value) {
            (1, Value::Bytes(b)) => v.digest = text(b),
            (3, Value::Bytes(b)) => v.name = text(b),
            (4, Value::Varint(n)) => v.cached = n != 0,
            (5, Value::Bytes(_)) => v.started = true,
            (6, Value::Bytes(_)) => v.completed = true,
            (7, Value::Bytes(b)) => v.error = text(b),
            _ => {}
        }
    }
    Ok(v)
}

fn log(bytes: &[u8]) -> Result<Log, DecodeError> {
    let mut l = Log::default();
    let mut r = Reader(bytes);
    while let Some((field, value)) = r.next()? {
        match (field, value) {
            (1, Value::Bytes(b)) => l.vertex = text(b),
            (4, Value::Bytes(b)) => l.msg = b.to_vec(),
            _ => {}
        }
    }
    Ok(l)
}

fn warning(bytes: &[u8]) -> Result<Warning, DecodeError> {
    let mut w = Warning::default();
    let mut r = Reader(bytes);
    while let Some((field, value)) = r.next()? {
        match (field, value) {
            (1, Value::Bytes(b)) => w.vertex = text(b),
            (3, Value::Bytes(b)) => w.short = text(b),
            _ => {}
        }
    }
    Ok(w)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

/// The protobuf wire format, one field at a time.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn next(&mut self) -> Result<Option<(u64, Value<'a>)>, DecodeError> {
        if self.0.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let value = match key & 7 {
            0 => Value::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Value::Fixed
            }
            2 => {
                let len =
                    usize::try_from(self.varint()?).map_err(|_| DecodeError("length overflows"))?;
                Value::Bytes(self.take(len)?)
            }
            5 => {
                self.take(4)?;
                Value::Fixed
            }
            _ => return Err(DecodeError("unsupported wire type")),
        };
        Ok(Some((key >> 3, value)))
    }

    fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut value = 0u64;
        for i in 0..10 {
            let (&byte, rest) = self
                .0
                .split_first()
                .ok_or(DecodeError("truncated varint"))?;
            self.0 = rest;
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte < 0x80 {
                return Ok(value);
            }
        }
        Err(DecodeError("varint longer than 10 bytes"))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.0.len() {
            return Err(DecodeError("field runs past the message"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A protobuf encoder for the tests: `(field, bytes)` pairs as length-delimited fields.
    fn message(fields: &[(u64, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (field, bytes) in fields {
            varint(&mut out, field << 3 | 2);
            varint(&mut out, bytes.len() as u64);
            out.extend_from_slice(bytes);
        }
        out
    }

    fn varint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    #[test]
    fn decodes_what_a_daemon_sent() {
        // testdata/failing-run.jsonl: `POST /build?version=2` of a failing RUN on the rig's dockerd
        // (Engine 20.10.24), as it came over the socket.
        let lines: Vec<serde_json::Value> = include_str!("testdata/failing-run.jsonl")
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let started = decode_aux(lines[1]["aux"].as_str().unwrap()).unwrap();
        let v = &started.vertexes[0];
        assert!(v.digest.starts_with("sha256:fa5f3a54"), "{v:?}");
        assert_eq!(v.name, "[internal] load remote build context");
        assert!(v.started && !v.completed && !v.cached && v.error.is_empty());
        let all: Vec<Status> = lines
            .iter()
            .filter(|l| l["id"] == "moby.buildkit.trace")
            .map(|l| decode_aux(l["aux"].as_str().unwrap()).unwrap())
            .collect();
        let logs: Vec<&[u8]> = all
            .iter()
            .flat_map(|s| &s.logs)
            .map(|l| &l.msg[..])
            .collect();
        assert_eq!(logs, [&b"disk on fire\n"[..], b"preparing\n"]);
        let failed = all
            .iter()
            .flat_map(|s| &s.vertexes)
            .find(|v| !v.error.is_empty())
            .unwrap();
        assert_eq!(
            failed.name,
            r#"[2/2] RUN echo preparing && echo "disk on fire" >&2 && exit 7"#
        );
        assert!(failed.error.ends_with("exit code: 7"), "{}", failed.error);
    }

    #[test]
    fn decodes_vertexes_logs_and_warnings_and_skips_what_it_does_not_use() {
        let timestamp = message(&[]);
        let mut cached = message(&[(1, b"sha256:a"), (2, b"sha256:input"), (3, b"[2/3] RUN x")]);
        cached.extend([0x20, 0x01]); // cached = true
        cached.extend(message(&[(5, &timestamp), (6, &timestamp), (7, b"boom")]));
        let mut log = message(&[(1, b"sha256:a"), (2, &timestamp)]);
        log.extend([0x18, 0x02]); // stream = 2 (stderr)
        log.extend(message(&[(4, b"out\n")]));
        let mut warning = message(&[(1, b"sha256:a")]);
        warning.extend([0x10, 0x01]);
        warning.extend(message(&[(3, b"legacy syntax")]));
        let status_item = message(&[(1, b"exporting"), (2, b"sha256:a")]);
        let mut bytes = message(&[(1, &cached), (2, &status_item), (3, &log), (4, &warning)]);
        bytes.extend([0x2d, 1, 2, 3, 4]); // an unknown fixed32 field 5
        bytes.extend([0x31, 1, 2, 3, 4, 5, 6, 7, 8]); // an unknown fixed64 field 6
        let s = decode(&bytes).unwrap();
        assert_eq!(
            s,
            Status {
                vertexes: vec![Vertex {
                    digest: "sha256:a".into(),
                    name: "[2/3] RUN x".into(),
                    cached: true,
                    started: true,
                    completed: true,
                    error: "boom".into(),
                }],
                logs: vec![Log {
                    vertex: "sha256:a".into(),
                    msg: b"out\n".to_vec()
                }],
                warnings: vec![Warning {
                    vertex: "sha256:a".into(),
                    short: "legacy syntax".into()
                }],
            }
        );
    }

    #[test]
    fn malformed_input_is_an_error_never_a_panic() {
        assert!(decode(&[0x0a, 0x05, b'a']).is_err()); // length past the end
        assert!(decode(&[0x08]).is_err()); // truncated varint
        assert!(decode(&[0x0b]).is_err()); // group wire type
        assert!(decode(&[0xff; 11]).is_err());
        assert!(decode_aux("not base64!").is_err());
        assert_eq!(decode(&[]).unwrap(), Status::default());
    }
}
