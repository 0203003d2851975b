//! Builds Go binaries whose module carries `replace` directives (Kubernetes, OpenTofu).
//!
//! `go install module/cmd/x@version` refuses such modules, so we generate a tiny wrapper module in the
//! cache (`$STACK_DEV_CACHE/wrappers/<name>@<version>/go.mod`) that requires the pinned module and
//! repeats its `replace` lines, then `go build` the binaries from there. Nothing generated here is
//! committed: the replace lines are derived from the pinned module's own go.mod at build time.
//!
//! Kubernetes replaces its `k8s.io/*` staging modules with local paths (`./staging/src/k8s.io/api`);
//! those are published on their own as `k8s.io/api v0.<minor>.<patch>`, so a local replacement
//! `./staging/src/<module>` becomes `<module> v0.<minor>.<patch>` of the pinned `v1.<minor>.<patch>`.
// xtask is a chore runner, not the `stack` crate: it runs `go` directly.
#![allow(clippy::disallowed_methods)]

use super::{cache_dir, Pin};
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// `go`, run at low priority: the machine has 2 cores that a developer shares with these builds.
/// `GOFLAGS` from the environment (e.g. `-p=1`) is passed through as usual.
pub fn go() -> Command {
    let mut cmd = Command::new("nice");
    cmd.args(["-n", "10", "go"]);
    cmd
}

/// Builds every wrapped pin, one `go build` per (module, version) so shared packages compile once.
pub fn build(pins: &[&Pin], bin_dir: &Path) -> Result<()> {
    let mut groups: BTreeMap<(String, String), Vec<&Pin>> = BTreeMap::new();
    for pin in pins {
        let module = pin.wrapper.clone().expect("only wrapped pins are passed");
        groups
            .entry((module, pin.version.clone()))
            .or_default()
            .push(pin);
    }
    for ((module, version), pins) in groups {
        build_group(&module, &version, &pins, bin_dir)?;
    }
    Ok(())
}

fn build_group(module: &str, version: &str, pins: &[&Pin], bin_dir: &Path) -> Result<()> {
    let names: Vec<&str> = pins.iter().map(|p| p.name.as_str()).collect();
    eprintln!(
        "xtask: building {} from {module}@{version} (wrapper module) into {}",
        names.join(", "),
        bin_dir.display()
    );
    let started = std::time::Instant::now();
    let dir = cache_dir()
        .join("wrappers")
        .join(format!("{}@{version}", module.replace('/', "_")));
    std::fs::create_dir_all(&dir)?;

    let gomod_path = download(module, version)?.gomod;
    let upstream =
        std::fs::read_to_string(&gomod_path).with_context(|| format!("reading {gomod_path}"))?;
    let replaces = wrapper_replaces(&upstream, version)?;
    let mut gomod = format!(
        "module stack-dev/wrapper\n\ngo {}\n\nrequire {module} {version}\n",
        go_directive(&upstream)
    );
    if !replaces.is_empty() {
        gomod.push_str("\nreplace (\n");
        for r in &replaces {
            gomod.push_str(&format!("\t{r}\n"));
        }
        gomod.push_str(")\n");
    }
    std::fs::write(dir.join("go.mod"), gomod)?;
    let _ = std::fs::remove_file(dir.join("go.sum"));

    // `go get -tool pkg@version` resolves the requirements (and records the tools so `go build`
    // finds every package in the module graph); the explicit version keeps it from upgrading.
    let mut get = go();
    get.current_dir(&dir).args(["get", "-tool"]);
    for pin in pins {
        get.arg(format!("{}@{}", pin.module, pin.version));
    }
    // Quiet unless it fails: it lists every module it resolves.
    let shown = format!("{get:?}");
    let out = get
        .output()
        .with_context(|| format!("running {shown} (is Go installed?)"))?;
    if !out.status.success() {
        bail!(
            "{shown} failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let mut build = go();
    build
        .current_dir(&dir)
        .env("CGO_ENABLED", "0")
        .args([
            "build",
            "-trimpath",
            "-ldflags",
            &ldflags(module, version),
            "-o",
        ])
        .arg(format!("{}/", bin_dir.display()));
    for pin in pins {
        build.arg(&pin.module);
    }
    run(build)?;
    for pin in pins {
        let built = binary_name(&pin.module);
        if built != pin.name {
            std::fs::rename(bin_dir.join(built), bin_dir.join(&pin.name))?;
        }
        std::fs::write(bin_dir.join(format!(".{}.version", pin.name)), pin.stamp())?;
    }
    eprintln!(
        "xtask: built {} in {:.0?}",
        names.join(", "),
        started.elapsed()
    );
    Ok(())
}

/// The file `go build -o dir/` writes for a main package: its last path element, or the one before a
/// major-version suffix (`go.etcd.io/etcd/server/v3` → `server`).
fn binary_name(package: &str) -> &str {
    let mut parts = package.rsplit('/');
    let last = parts.next().unwrap_or(package);
    let is_major =
        last.len() > 1 && last.starts_with('v') && last[1..].chars().all(|c| c.is_ascii_digit());
    if is_major {
        parts.next().unwrap_or(last)
    } else {
        last
    }
}

fn run(mut cmd: Command) -> Result<()> {
    let shown = format!("{cmd:?}");
    let status = cmd
        .status()
        .with_context(|| format!("running {shown} (is Go installed?)"))?;
    if !status.success() {
        bail!("{shown} failed ({status})");
    }
    Ok(())
}

pub struct Downloaded {
    /// The module's go.mod in the module cache.
    pub gomod: String,
    /// The module's unpacked source in the module cache (read-only).
    pub dir: String,
}

/// `go mod download` of one module version: where its go.mod and source are.
pub fn download(module: &str, version: &str) -> Result<Downloaded> {
    let out = go()
        .args(["mod", "download", "-json", &format!("{module}@{version}")])
        .current_dir(std::env::temp_dir())
        .output()
        .context("running `go mod download`")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "`go mod download {module}@{version}` failed:\n{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The JSON is flat; avoid a serde dependency for two fields.
    let field = |name: &str| -> Result<String> {
        let Some(line) = text
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("\"{name}\":")))
        else {
            bail!("`go mod download -json {module}@{version}` printed no {name}:\n{text}");
        };
        let value = line
            .split_once(':')
            .map(|x| x.1)
            .unwrap_or_default()
            .trim()
            .trim_end_matches(',');
        Ok(value.trim_matches('"').to_string())
    };
    Ok(Downloaded {
        gomod: field("GoMod")?,
        dir: field("Dir")?,
    })
}

fn go_directive(gomod: &str) -> String {
    gomod
        .lines()
        .find_map(|l| l.strip_prefix("go "))
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|| "1.24".into())
}

/// The `replace` lines the wrapper repeats, in go.mod syntax (`old => new version`).
fn wrapper_replaces(gomod: &str, version: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut in_block = false;
    for line in gomod.lines() {
        let line = line.split("//").next().unwrap_or_default().trim();
        let directive = if in_block {
            if line == ")" {
                in_block = false;
                continue;
            }
            line
        } else if line == "replace (" {
            in_block = true;
            continue;
        } else if let Some(rest) = line.strip_prefix("replace ") {
            rest.trim()
        } else {
            continue;
        };
        if directive.is_empty() {
            continue;
        }
        let Some((old, new)) = directive.split_once("=>") else {
            bail!("cannot read replace directive `{directive}`");
        };
        let (old, new) = (old.trim(), new.trim());
        let old_path = old.split_whitespace().next().unwrap_or(old);
        if new.starts_with("./") || new.starts_with("../") {
            // A sibling module of the same repository. When the pinned module requires it at a real
            // version (etcd), that published version is what a wrapper gets anyway: drop the line.
            // Kubernetes requires its staging modules at v0.0.0 and publishes them as v0.<minor>.<patch>.
            // Replacements of modules it does not require at all (etcd's FORBIDDEN_DEPENDENCY) go too.
            if required_version(gomod, old_path).as_deref() == Some("v0.0.0") {
                let Some(path) = new.strip_prefix("./staging/src/") else {
                    bail!("replace `{directive}`: v0.0.0 replaced by a local path that is not a staging module");
                };
                out.push(format!(
                    "{old_path} => {path} {}",
                    staging_version(version)?
                ));
            }
        } else {
            out.push(format!("{old} => {new}"));
        }
    }
    Ok(out)
}

/// The version at which a go.mod requires `module`, if it does.
fn required_version(gomod: &str, module: &str) -> Option<String> {
    gomod.lines().find_map(|line| {
        let line = line.trim().trim_start_matches("require ").trim();
        let mut words = line.split_whitespace();
        (words.next() == Some(module))
            .then(|| {
                words
                    .next()
                    .filter(|v| v.starts_with('v'))
                    .map(String::from)
            })
            .flatten()
    })
}

/// `v1.35.4` → `v0.35.4`: the version under which Kubernetes publishes its staging modules.
fn staging_version(version: &str) -> Result<String> {
    match version.strip_prefix("v1.") {
        Some(rest) => Ok(format!("v0.{rest}")),
        None => bail!("cannot derive a staging module version from {version}"),
    }
}

/// Version stamping, as the projects' release builds do: Kubernetes binaries otherwise report
/// `v0.0.0-master`, which breaks `helm`'s `kubeVersion` checks and version-skew logic in clients.
pub fn ldflags(module: &str, version: &str) -> String {
    let mut flags = vec!["-s".to_string(), "-w".to_string()];
    if module.starts_with("helm.sh/helm/v3") {
        flags.push(format!(
            "-X helm.sh/helm/v3/internal/version.version={version}"
        ));
    }
    if module.starts_with("github.com/opentofu/opentofu") {
        // Release builds say `OpenTofu v1.2.3`, not `v1.2.3-dev`.
        flags.push("-X github.com/opentofu/opentofu/version.dev=no".to_string());
    }
    if module == "k8s.io/kubernetes" || module.starts_with("k8s.io/kubernetes/") {
        let mut parts = version.trim_start_matches('v').split('.');
        let (major, minor) = (parts.next().unwrap_or("1"), parts.next().unwrap_or("0"));
        for pkg in [
            "k8s.io/component-base/version",
            "k8s.io/client-go/pkg/version",
        ] {
            flags.push(format!("-X {pkg}.gitVersion={version}"));
            flags.push(format!("-X {pkg}.gitMajor={major}"));
            flags.push(format!("-X {pkg}.gitMinor={minor}"));
            flags.push(format!("-X {pkg}.gitTreeState=clean"));
            flags.push(format!("-X {pkg}.buildDate=1970-01-01T00:00:00Z"));
        }
    }
    flags.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staging_and_remote_replaces() {
        let gomod = "module x\n\ngo 1.24.0\n\nrequire (\n\tk8s.io/api v0.0.0\n\tgo.etcd.io/etcd/api/v3 v3.6.16\n)\n\
                     replace (\n\tk8s.io/api => ./staging/src/k8s.io/api\n\tgo.etcd.io/etcd/api/v3 => ../api\n)\n\
                     replace go.etcd.io/etcd => ./FORBIDDEN_DEPENDENCY\n\
                     replace github.com/a/b v1.0.0 => github.com/c/b v1.0.1 // fork\n";
        let got = wrapper_replaces(gomod, "v1.35.4").unwrap();
        assert_eq!(
            got,
            [
                "k8s.io/api => k8s.io/api v0.35.4",
                "github.com/a/b v1.0.0 => github.com/c/b v1.0.1"
            ]
        );
        assert_eq!(go_directive(gomod), "1.24.0");
    }

    #[test]
    fn binary_names() {
        assert_eq!(binary_name("k8s.io/kubernetes/cmd/kubectl"), "kubectl");
        assert_eq!(binary_name("go.etcd.io/etcd/server/v3"), "server");
        assert_eq!(binary_name("sigs.k8s.io/kind"), "kind");
    }
}
