//! The OCI registry: Debian's `docker-registry` (distribution v2) on 127.0.0.1, plain HTTP. Docker
//! treats 127.0.0.0/8 registries as insecure by default, and helm talks to it with `--plain-http`.

use super::process::{wait_for, Daemon};
use super::{http_get, Rig, PORT_REGISTRY};
use anyhow::{bail, Result};
use std::process::Command;
use std::time::Duration;

pub fn daemon(rig: &Rig) -> Daemon {
    Daemon::new(&rig.state, "registry")
}

pub fn address() -> String {
    format!("127.0.0.1:{PORT_REGISTRY}")
}

pub fn up(rig: &Rig) -> Result<()> {
    let registry = daemon(rig);
    if registry.running_pid().is_none() {
        let dir = rig.state.join("registry");
        std::fs::create_dir_all(dir.join("data"))?;
        let config = dir.join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    \
                 enabled: true\nhttp:\n  addr: {}\n",
                dir.join("data").display(),
                address()
            ),
        )?;
        let mut cmd = Command::new("docker-registry");
        cmd.arg("serve").arg(&config);
        registry.spawn(cmd)?;
    }
    wait_for("the registry", Duration::from_secs(30), || {
        if registry.running_pid().is_none() {
            bail!(
                "registry exited; last lines of {}:\n{}",
                registry.log_file.display(),
                registry.log_tail()
            );
        }
        healthy()
    })
}

pub fn healthy() -> Result<()> {
    let (code, _) = http_get(&address(), "/v2/")?;
    if code != 200 {
        bail!("GET /v2/ answered {code}");
    }
    Ok(())
}
