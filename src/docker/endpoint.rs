//! Which Docker daemon to talk to, decided exactly as the `docker` CLI decides it, so `stack`
//! reaches the daemon `docker` reaches (colima, rootless Docker and Docker Desktop users rely on
//! contexts): `$DOCKER_HOST`, else the context named by `$DOCKER_CONTEXT`, else `currentContext`
//! in `$DOCKER_CONFIG/config.json` (default `~/.docker`), else the local socket. A context's
//! endpoint is in `contexts/meta/<sha256 of its name>/meta.json` (`Endpoints.docker.Host`).

use crate::error::StackError;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

pub const DEFAULT_SOCKET: &str = "unix:///var/run/docker.sock";

/// The daemon's address and how it was chosen (shown by `doctor` and in errors).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    /// `DOCKER_HOST`, `context colima (DOCKER_CONTEXT)`, `context desktop-linux (config.json)`,
    /// or `default socket`.
    pub source: String,
}

/// What the resolution reads from the environment.
#[derive(Clone, Debug, Default)]
pub struct Inputs {
    pub docker_host: Option<String>,
    pub docker_context: Option<String>,
    /// `$DOCKER_CONFIG`, else `$HOME/.docker`.
    pub config_dir: PathBuf,
}

impl Inputs {
    pub fn from_env() -> Inputs {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let config_dir = var("DOCKER_CONFIG").map(PathBuf::from).unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".docker")
        });
        Inputs {
            docker_host: var("DOCKER_HOST"),
            docker_context: var("DOCKER_CONTEXT"),
            config_dir,
        }
    }
}

pub fn resolve(inputs: &Inputs) -> Result<Endpoint, StackError> {
    if let Some(host) = &inputs.docker_host {
        return Ok(Endpoint {
            host: host.clone(),
            source: "DOCKER_HOST".into(),
        });
    }
    let (name, from) = match &inputs.docker_context {
        Some(c) => (Some(c.clone()), "DOCKER_CONTEXT"),
        None => (current_context(&inputs.config_dir), "config.json"),
    };
    match name {
        None => Ok(default_socket()),
        Some(n) if n == "default" => Ok(default_socket()),
        Some(n) => {
            let host = context_host(&inputs.config_dir, &n).ok_or_else(|| {
                StackError::config(
                    None,
                    format!(
                        "Docker context `{n}` (from {from}) has no Docker endpoint in {}",
                        meta_path(&inputs.config_dir, &n).display()
                    ),
                    "list contexts with `docker context ls`; switch with `docker context use <name>`, or set DOCKER_HOST",
                )
            })?;
            Ok(Endpoint {
                host,
                source: format!("context {n} ({from})"),
            })
        }
    }
}

fn default_socket() -> Endpoint {
    Endpoint {
        host: DEFAULT_SOCKET.into(),
        source: "default socket".into(),
    }
}

fn current_context(config_dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(config_dir.join("config.json")).ok()?;
    let doc: serde_json::Value = serde_json::from_str(&text).ok()?;
    doc["currentContext"]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn meta_path(config_dir: &Path, name: &str) -> PathBuf {
    let digest = hex::encode(Sha256::digest(name.as_bytes()));
    config_dir
        .join("contexts")
        .join("meta")
        .join(digest)
        .join("meta.json")
}

fn context_host(config_dir: &Path, name: &str) -> Option<String> {
    let text = std::fs::read_to_string(meta_path(config_dir, name)).ok()?;
    let doc: serde_json::Value = serde_json::from_str(&text).ok()?;
    doc["Endpoints"]["docker"]["Host"]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `~/.docker` as `docker context create` leaves it.
    fn config_dir(current: Option<&str>, contexts: &[(&str, &str)]) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        if let Some(c) = current {
            std::fs::write(
                d.path().join("config.json"),
                format!(r#"{{"auths": {{}}, "currentContext": "{c}"}}"#),
            )
            .unwrap();
        }
        for (name, host) in contexts {
            let p = meta_path(d.path(), name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(
                p,
                format!(
                    r#"{{"Name":"{name}","Metadata":{{}},"Endpoints":{{"docker":{{"Host":"{host}","SkipTLSVerify":false}}}}}}"#
                ),
            )
            .unwrap();
        }
        d
    }

    #[test]
    fn follows_the_docker_cli_precedence() {
        let d = config_dir(
            Some("colima"),
            &[
                ("colima", "unix:///home/u/.colima/default/docker.sock"),
                ("remote", "tcp://10.0.0.5:2376"),
            ],
        );
        let inputs = |host: Option<&str>, ctx: Option<&str>| Inputs {
            docker_host: host.map(str::to_owned),
            docker_context: ctx.map(str::to_owned),
            config_dir: d.path().to_path_buf(),
        };
        let r = resolve(&inputs(None, None)).unwrap();
        assert_eq!(r.host, "unix:///home/u/.colima/default/docker.sock");
        assert_eq!(r.source, "context colima (config.json)");
        let r = resolve(&inputs(None, Some("remote"))).unwrap();
        assert_eq!(
            (r.host.as_str(), r.source.as_str()),
            ("tcp://10.0.0.5:2376", "context remote (DOCKER_CONTEXT)")
        );
        // DOCKER_HOST wins over every context.
        let r = resolve(&inputs(Some("unix:///tmp/d.sock"), Some("remote"))).unwrap();
        assert_eq!(r.host, "unix:///tmp/d.sock");
        assert_eq!(
            resolve(&inputs(None, Some("default"))).unwrap().host,
            DEFAULT_SOCKET
        );
        let err = resolve(&inputs(None, Some("gone"))).unwrap_err();
        assert!(err.to_string().contains("Docker context `gone`"), "{err}");
        let empty = tempfile::tempdir().unwrap();
        let r = resolve(&Inputs {
            config_dir: empty.path().to_path_buf(),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(r, default_socket());
    }
}
