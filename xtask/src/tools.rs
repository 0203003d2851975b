//! The pinned external tools (`xtask/pins.txt`), built with `go install` into a cache outside the work
//! tree and reused across runs.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

mod wrapper;

pub use wrapper::download as go_mod_download;

pub struct Tools {
    pub bin_dir: PathBuf,
}

pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the project root")
        .to_path_buf()
}

/// `$STACK_DEV_CACHE`, else `~/.cache/stack-dev`.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("STACK_DEV_CACHE") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/tmp".into());
    PathBuf::from(home).join(".cache/stack-dev")
}

pub struct Pin {
    pub name: String,
    /// The Go package of the binary's `main` (historically named `module`).
    pub module: String,
    pub version: String,
    /// `setup` installs the default group; `rig up` installs the `rig` group too.
    pub group: String,
    /// Built from a generated wrapper module that requires this module and repeats its `replace`
    /// lines (see `wrapper.rs`), because `go install` refuses modules with `replace` directives.
    pub wrapper: Option<String>,
}

pub const DEFAULT_GROUP: &str = "tools";

impl Pin {
    /// What the cached binary was built from (the stamp file's content): a change rebuilds it.
    pub fn stamp(&self) -> String {
        let ldflags = wrapper::ldflags(&self.module, &self.version);
        format!("{}@{} ldflags={ldflags}", self.module, self.version)
    }
}

pub fn pins() -> Result<Vec<Pin>> {
    let path = project_root().join("xtask/pins.txt");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut pins = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut parts = line.split_whitespace();
        let (Some(name), Some(spec)) = (parts.next(), parts.next()) else {
            bail!(
                "{}:{}: expected `<name> <package>@<version> [group=..] [wrapper=..]`",
                path.display(),
                n + 1
            );
        };
        if name == "debian" {
            continue; // Debian packages, see `debian_packages`
        }
        let Some((module, version)) = spec.rsplit_once('@') else {
            bail!("{}:{}: `{spec}` has no @version", path.display(), n + 1);
        };
        let mut pin = Pin {
            name: name.into(),
            module: module.into(),
            version: version.into(),
            group: DEFAULT_GROUP.into(),
            wrapper: None,
        };
        for opt in parts {
            match opt.split_once('=') {
                Some(("group", g)) => pin.group = g.into(),
                Some(("wrapper", m)) => pin.wrapper = Some(m.into()),
                _ => bail!(
                    "{}:{}: unknown option `{opt}` (expected group=.. or wrapper=..)",
                    path.display(),
                    n + 1
                ),
            }
        }
        pins.push(pin);
    }
    Ok(pins)
}

/// The `debian <package>...` lines of `xtask/pins.txt`: installed with apt-get, versions fixed by the
/// Debian release.
pub fn debian_packages() -> Result<Vec<String>> {
    let path = project_root().join("xtask/pins.txt");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("debian "))
        .flat_map(|rest| rest.split_whitespace().map(String::from))
        .collect())
}

/// Installs every pinned tool of the default group that is not yet in the cache at its pinned version.
pub fn setup() -> Result<Tools> {
    setup_groups(&[DEFAULT_GROUP])
}

/// Installs the pinned tools of the given groups.
pub fn setup_groups(groups: &[&str]) -> Result<Tools> {
    let bin_dir = cache_dir().join("bin");
    std::fs::create_dir_all(&bin_dir)?;
    let pins: Vec<Pin> = pins()?
        .into_iter()
        .filter(|p| groups.contains(&p.group.as_str()))
        .collect();
    let stale = |pin: &Pin| {
        // A stamp file records what the cached binary was built from (`Pin::stamp`).
        let stamp = bin_dir.join(format!(".{}.version", pin.name));
        !(bin_dir.join(&pin.name).exists()
            && std::fs::read_to_string(&stamp).ok().as_deref() == Some(pin.stamp().as_str()))
    };
    let (wrapped, plain): (Vec<&Pin>, Vec<&Pin>) = pins
        .iter()
        .filter(|p| stale(p))
        .partition(|p| p.wrapper.is_some());
    wrapper::build(&wrapped, &bin_dir)?;
    for pin in plain {
        let stamp = bin_dir.join(format!(".{}.version", pin.name));
        let wanted = format!("{}@{}", pin.module, pin.version);
        eprintln!(
            "xtask: installing {} ({wanted}) into {}",
            pin.name,
            bin_dir.display()
        );
        let status = wrapper::go()
            .args([
                "install",
                "-ldflags",
                &wrapper::ldflags(&pin.module, &pin.version),
                &wanted,
            ])
            .env("GOBIN", &bin_dir)
            .env("CGO_ENABLED", "0")
            .status()
            .context("running `go install` (is Go installed?)")?;
        if !status.success() {
            bail!("`go install {wanted}` failed ({status})");
        }
        std::fs::write(&stamp, pin.stamp())?;
    }
    Ok(Tools { bin_dir })
}

impl Tools {
    /// PATH with the cached tools first.
    pub fn path_var(&self) -> std::ffi::OsString {
        let mut paths = vec![self.bin_dir.clone()];
        if let Some(old) = std::env::var_os("PATH") {
            paths.extend(std::env::split_paths(&old));
        }
        std::env::join_paths(paths).expect("cache path has no separator")
    }

    /// A command that sees the cached tools on PATH.
    #[allow(clippy::disallowed_methods)] // xtask runs tools directly; the rule is for the stack crate
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("PATH", self.path_var());
        cmd
    }

    pub fn export_lines(&self) -> String {
        format!("export PATH={}:\"$PATH\"\n", self.bin_dir.display())
    }

    pub fn bin(&self, name: &str) -> PathBuf {
        self.bin_dir.join(name)
    }
}
