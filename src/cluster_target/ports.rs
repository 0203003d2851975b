//! Host ports a cluster will publish, and the check that they are free before anything is created:
//! each one is bound on its listen address and released at once. Every conflict is reported, each
//! with the line that asks for the port and the way out.

use crate::error::StackError;
use crate::yaml::Origin;
use serde::Serialize;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, UdpSocket};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

/// A port on the host that something stack creates will listen on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostPort {
    pub address: IpAddr,
    pub port: u16,
    pub protocol: Protocol,
    /// What publishes it, e.g. `ingress (containerPort 80)` or `registry stack-registry`.
    pub what: String,
    /// Where it is configured.
    pub origin: Option<Origin>,
}

/// A host port as a cluster config writes it (a number, or a string of digits): `None` when
/// absent or 0 (the runtime picks one), else 1–65535 — anything else is a configuration error at
/// its line (never truncated to 16 bits).
pub fn host_port(
    raw: &serde_json::Value,
    what: &str,
    origin: Option<&Origin>,
) -> Result<Option<u16>, StackError> {
    let n = match raw {
        serde_json::Value::Null => return Ok(None),
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    };
    match n {
        Some(0) => Ok(None),
        Some(n @ 1..=65535) => Ok(Some(n as u16)),
        _ => Err(StackError::config(
            origin.cloned(),
            format!(
                "{what}: `{}` is not a port number",
                raw.as_str().map_or_else(|| raw.to_string(), str::to_owned)
            ),
            "a host port is a number from 1 to 65535",
        )),
    }
}

impl HostPort {
    pub fn tcp(
        address: IpAddr,
        port: u16,
        what: impl Into<String>,
        origin: Option<Origin>,
    ) -> Self {
        HostPort {
            address,
            port,
            protocol: Protocol::Tcp,
            what: what.into(),
            origin,
        }
    }
}

pub fn loopback() -> IpAddr {
    IpAddr::V4(Ipv4Addr::LOCALHOST)
}

/// Parses a listen address as Docker does (empty → all interfaces).
pub fn parse_address(s: &str) -> Option<IpAddr> {
    if s.is_empty() {
        return Some(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    }
    s.trim_matches(|c| c == '[' || c == ']').parse().ok()
}

/// Tries every port; returns one message per conflict (empty when all are free).
pub fn conflicts(ports: &[HostPort]) -> Vec<String> {
    let mut out = Vec::new();
    for (i, p) in ports.iter().enumerate() {
        if p.port == 0 {
            continue; // Docker picks a free port
        }
        let at = p
            .origin
            .as_ref()
            .map(|o| format!(" ({o})"))
            .unwrap_or_default();
        let clash = ports[..i].iter().find(|q| {
            q.port == p.port
                && q.protocol == p.protocol
                && (q.address == p.address
                    || q.address.is_unspecified()
                    || p.address.is_unspecified())
        });
        if let Some(q) = clash {
            out.push(format!(
                "{} and {} both ask for host port {}{at}: give one of them another hostPort",
                q.what, p.what, p.port
            ));
            continue;
        }
        if let Err(e) = try_bind(p) {
            let addr = SocketAddr::new(p.address, p.port);
            let fix = match e.kind() {
                std::io::ErrorKind::AddrInUse => format!(
                    "something already listens there: stop it (`ss -ltnup 'sport = :{}'` shows what) or change the hostPort",
                    p.port
                ),
                std::io::ErrorKind::PermissionDenied => {
                    "ports below 1024 need privileges: use a port >= 1024".to_owned()
                }
                std::io::ErrorKind::AddrNotAvailable => {
                    "that listen address is not on this machine: use 127.0.0.1".to_owned()
                }
                _ => "change the hostPort".to_owned(),
            };
            out.push(format!(
                "host port {addr}/{} for {} is not free{at}: {e}; {fix}",
                proto_name(p.protocol),
                p.what
            ));
        }
    }
    out
}

/// Fails with every conflict at once (a configuration error, exit 2).
pub fn check(ports: &[HostPort]) -> Result<(), StackError> {
    let found = conflicts(ports);
    if found.is_empty() {
        return Ok(());
    }
    Err(StackError::Usage {
        message: format!(
            "{} host port conflict{} — nothing was created:\n  {}",
            found.len(),
            if found.len() == 1 { "" } else { "s" },
            found.join("\n  ")
        ),
        hint: Some(
            "free the ports or change them in the cluster config, then run the command again"
                .into(),
        ),
    })
}

fn proto_name(p: Protocol) -> &'static str {
    match p {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
        Protocol::Sctp => "sctp",
    }
}

fn try_bind(p: &HostPort) -> std::io::Result<()> {
    let addr = SocketAddr::new(p.address, p.port);
    match p.protocol {
        Protocol::Tcp => TcpListener::bind(addr).map(drop),
        Protocol::Udp => UdpSocket::bind(addr).map(drop),
        Protocol::Sctp => Ok(()), // no portable SCTP bind; Docker reports it
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_taken_and_duplicate_ports() {
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = taken.local_addr().unwrap().port();
        let free = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let ports = vec![
            HostPort::tcp(loopback(), port, "ingress", None),
            HostPort::tcp(loopback(), free, "registry", None),
            HostPort::tcp(loopback(), free, "other", None),
            HostPort::tcp(loopback(), 0, "api", None),
        ];
        let c = conflicts(&ports);
        assert_eq!(c.len(), 2, "{c:?}");
        assert!(c[0].contains(&format!("127.0.0.1:{port}/tcp for ingress is not free")));
        assert!(c[1].contains("registry and other both ask for host port"));
        drop(taken);
        assert!(conflicts(&ports[..2]).is_empty());
    }
}
