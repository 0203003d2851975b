//! `cargo xtask reliability converge [--runs N] [--seed S] [--commands up,build]`: crash
//! convergence (issue 13). For each command, a fresh project on the rig learns the end state of
//! two uninterrupted runs (states A and B of the sources and values) and how long a changing run
//! takes; then N times: switch to the other state, start the command, SIGKILL it (its pid only) at
//! a random point in [0, 1.2 × that duration], note which of its descendants survived (orphans;
//! waited for, then killed by the pids observed as descendants), run the same command again and
//! check that it converged to the reference end state of that state: exit 0, the same images
//! (content-addressed tags, present in the registry), helm release `deployed`, nothing
//! `pending-*`, exactly one new revision, no `*.tmp*` left under `.stack/`, the project's own
//! files untouched, no descendant left after the second run.
//!
//! Self-contained (xtask cannot use the test crate's support module): the setup mirrors
//! tests/it/up.rs and tests/it/build.rs.

use crate::{rig, tools};
use anyhow::{bail, Context, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const USAGE: &str =
    "usage: cargo xtask reliability converge [--runs N] [--seed S] [--commands up,build]";

pub fn run(args: &[String]) -> Result<()> {
    match args.first().map(String::as_str) {
        Some("converge") => converge(&args[1..]),
        _ => bail!("{USAGE}"),
    }
}

fn converge(args: &[String]) -> Result<()> {
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .map(String::as_str)
    };
    if let Some((_, unknown)) = args
        .iter()
        .enumerate()
        .find(|(i, a)| i % 2 == 0 && !matches!(a.as_str(), "--runs" | "--seed" | "--commands"))
    {
        bail!("unknown argument `{unknown}`; {USAGE}");
    }
    let runs: usize = flag("--runs")
        .unwrap_or("20")
        .parse()
        .context("--runs takes a number")?;
    let seed = match flag("--seed") {
        Some(s) => match s.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16),
            None => s.parse(),
        }
        .with_context(|| format!("--seed takes a number, not `{s}`"))?,
        None => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1),
    };
    let commands: Vec<Kind> = flag("--commands")
        .unwrap_or("up,build")
        .split(',')
        .map(|c| match c.trim() {
            "up" => Ok(Kind::Up),
            "build" => Ok(Kind::Build),
            other => bail!("unknown command `{other}` (up, build)"),
        })
        .collect::<Result<_>>()?;

    let stack = stack_binary()?;
    let env = RigEnv::read()?;
    println!(
        "reliability converge: seed {seed:#x}, {runs} runs per command (reproduce: cargo xtask reliability converge --runs {runs} --seed {seed:#x} --commands {})",
        flag("--commands").unwrap_or("up,build")
    );
    let mut rng = Rng(seed | 1);
    let mut rows = Vec::new();
    for kind in commands {
        let project = Project::new(kind, &stack, &env)?;
        let row = trials(&project, runs, &mut rng);
        rows.push(match row {
            Ok(row) => row,
            Err(e) => Row {
                command: kind.label(),
                runs: 0,
                killed_at: Vec::new(),
                converged: 0,
                failures: vec![format!("setup failed: {e:#}")],
                orphans: 0,
                tmp_left_by_kill: 0,
                tmp_after_rerun: 0,
            },
        });
        drop(project);
    }
    let _ = std::fs::remove_file(&stack);
    print_table(&rows);
    let bad: usize = rows.iter().map(|r| r.failures.len()).sum();
    if bad > 0 {
        bail!("reliability converge: seed {seed:#x}: {bad} divergence(s), see above");
    }
    println!("reliability converge: seed {seed:#x}: every run converged");
    Ok(())
}

/// `stack` built from this tree, copied aside so that edits and rebuilds during a long run do not
/// change the binary under test.
fn stack_binary() -> Result<PathBuf> {
    let root = tools::project_root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--bin", "stack"])
        .current_dir(&root)
        .status()?;
    if !status.success() {
        bail!("cargo build --bin stack failed");
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let copy = std::env::temp_dir().join(format!("stack-converge-{}", std::process::id()));
    std::fs::copy(target.join("debug/stack"), &copy).context("copy the stack binary")?;
    Ok(copy)
}

/// The rig's `env` file: variables, and the pinned tools' directory.
struct RigEnv {
    vars: BTreeMap<String, String>,
    bin_dir: PathBuf,
}

impl RigEnv {
    fn read() -> Result<RigEnv> {
        let file = rig::state_dir().join("env");
        let text = std::fs::read_to_string(&file).with_context(|| {
            format!(
                "no rig env file {} (run `cargo xtask rig up`)",
                file.display()
            )
        })?;
        let mut vars = BTreeMap::new();
        let mut bin_dir = tools::cache_dir().join("bin");
        for line in text.lines() {
            let Some((key, value)) = line.strip_prefix("export ").and_then(|l| l.split_once('='))
            else {
                continue;
            };
            if key == "PATH" {
                bin_dir = PathBuf::from(value.trim_end_matches(":\"$PATH\""));
            } else {
                vars.insert(key.to_owned(), value.to_owned());
            }
        }
        Ok(RigEnv { vars, bin_dir })
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Up,
    Build,
}

impl Kind {
    fn label(self) -> String {
        match self {
            Kind::Up => "up --once".into(),
            Kind::Build => "build --deliver".into(),
        }
    }
    fn args(self) -> Vec<&'static str> {
        match self {
            Kind::Up => vec!["up", "--once", "--format", "json"],
            Kind::Build => vec!["build", "--deliver", "--format", "json"],
        }
    }
}

/// A temp copy of the reference stack on the rig: its own namespace (up) or repository prefix
/// (build).
struct Project {
    kind: Kind,
    dir: PathBuf,
    stack: PathBuf,
    env: BTreeMap<String, String>,
    bin_dir: PathBuf,
    namespace: String,
    registry: String,
    /// For `build`: a never-killed copy of the project (same repositories) whose uninterrupted
    /// run after each trial is the reference end state of that trial's sources.
    twin: Option<PathBuf>,
    id: String,
    /// The file whose content switches between state A and B (a source file in an image, and for
    /// `up` the dev env values too).
    switch: Vec<(PathBuf, String, String)>,
}

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    if from.is_dir() {
        std::fs::create_dir_all(to)?;
        for e in std::fs::read_dir(from)?.flatten() {
            copy_tree(&e.path(), &to.join(e.file_name()))?;
        }
    } else {
        std::fs::copy(from, to).with_context(|| format!("copy {}", from.display()))?;
    }
    Ok(())
}

impl Project {
    fn new(kind: Kind, stack: &Path, rig: &RigEnv) -> Result<Project> {
        let root = tools::project_root();
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let id = format!("cv{}{nanos:x}", std::process::id());
        let dir = std::env::temp_dir().join(format!("stack-converge-{id}"));
        std::fs::create_dir_all(&dir)?;
        let namespace = format!("converge-{id}");
        let items: &[&str] = match kind {
            Kind::Up => &["stack.yaml", "charts", "envs", "demo"],
            Kind::Build => &["demo"],
        };
        for item in items {
            copy_tree(&root.join(item), &dir.join(item))?;
        }
        let _ = std::fs::remove_dir_all(dir.join("charts/app/charts"));
        let yaml = match kind {
            Kind::Up => {
                let yaml = std::fs::read_to_string(dir.join("stack.yaml"))?
                    .replace(
                        "cluster:\n  provider: kind\n  name: stack\n  config: kind/cluster.yaml\n",
                        "cluster:\n  provider: existing\n  context: stack-rig\n  allowedContexts: [stack-rig]\n  registry:\n    hostPort: 25000\n",
                    )
                    .replace(
                        "dev:\n  env: local/dev\n",
                        &format!("dev:\n  env: local/dev\n  namespace: {namespace}\n"),
                    );
                if !yaml.contains("provider: existing") || !yaml.contains(&namespace) {
                    bail!("stack.yaml changed shape; update xtask/src/reliability.rs:\n{yaml}");
                }
                yaml
            }
            Kind::Build => format!(
                "apiVersion: stack/v1\nproject: shop\ncluster:\n  name: stack\n  registry:\n    hostPort: 25000\nimages:\n  backend:\n    context: demo/backend\n    target: dev\n    repository: {id}/backend\n  frontend:\n    context: demo/frontend\n    repository: {id}/frontend\n"
            ),
        };
        std::fs::write(dir.join("stack.yaml"), yaml)?;
        let mut switch = Vec::new();
        if kind == Kind::Up {
            let source = dir.join("demo/backend/public/api/health.json");
            let original = std::fs::read_to_string(&source).context("demo backend health.json")?;
            switch.push((
                source,
                original.clone(),
                format!("{}\n", original.trim_end()) + " ",
            ));
            let values = dir.join("envs/local/dev.yaml");
            let v = std::fs::read_to_string(&values)?;
            switch.push((
                values,
                v.clone(),
                format!("{v}frontend:\n  replicaCount: 2\n"),
            ));
        }
        let mut env = rig.vars.clone();
        env.insert("NO_COLOR".into(), "1".into());
        let mut path = vec![rig.bin_dir.clone()];
        path.extend(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        ));
        env.insert(
            "PATH".into(),
            std::env::join_paths(path)?.to_string_lossy().into_owned(),
        );
        let twin = if kind == Kind::Build {
            let twin = std::env::temp_dir().join(format!("stack-converge-{id}-twin"));
            copy_tree(&dir, &twin)?;
            Some(twin)
        } else {
            None
        };
        Ok(Project {
            kind,
            twin,
            id: id.clone(),
            dir,
            stack: stack.to_owned(),
            env,
            bin_dir: rig.bin_dir.clone(),
            namespace,
            registry: rig
                .vars
                .get("STACK_RIG_REGISTRY")
                .cloned()
                .unwrap_or_else(|| "127.0.0.1:25000".into()),
            switch,
        })
    }

    fn command(&self, program: &Path) -> Command {
        let mut c = Command::new(program);
        c.current_dir(&self.dir)
            .env_clear()
            .envs(&self.env)
            .env("HOME", std::env::var_os("HOME").unwrap_or_default())
            .stdin(Stdio::null());
        c
    }

    fn stack_cmd(&self) -> Command {
        let mut c = self.command(&self.stack);
        c.args(self.kind.args());
        c
    }

    fn set_state(&self, b: bool) -> Result<()> {
        for (file, a_text, b_text) in &self.switch {
            std::fs::write(file, if b { b_text } else { a_text })?;
        }
        Ok(())
    }

    /// Sources never built before (for `build`): a file in the backend image naming this project
    /// and the trial, in the project and its twin.
    fn set_content(&self, trial: &str) -> Result<()> {
        let body = format!("{} {trial}\n", self.id);
        for dir in std::iter::once(&self.dir).chain(self.twin.as_ref()) {
            for image in ["backend", "frontend"] {
                std::fs::write(dir.join(format!("demo/{image}/public/converge.txt")), &body)?;
            }
        }
        Ok(())
    }

    /// The twin's uninterrupted run: the reference end state of the current sources.
    fn twin_end_state(&self) -> Result<EndState> {
        let twin = self.twin.as_ref().context("no twin project")?;
        let o = self.stack_cmd().current_dir(twin).output()?;
        if !o.status.success() {
            bail!("twin run failed: {}", last_lines(&text(&o.stderr), 6));
        }
        self.end_state(&text(&o.stdout))
    }

    fn tool(&self, name: &str, args: &[&str]) -> Result<String> {
        let o = self.command(&self.bin_dir.join(name)).args(args).output()?;
        if !o.status.success() {
            bail!("{name} {}: {}", args.join(" "), text(&o.stderr).trim());
        }
        Ok(text(&o.stdout))
    }

    /// What an uninterrupted run leaves behind, as far as convergence is concerned.
    fn end_state(&self, report: &str) -> Result<EndState> {
        let mut images = strings_after(report, "\"delivered\"");
        images.sort();
        for image in &images {
            let (repo, tag) = split_reference(image)?;
            let (code, body) = rig::http_get(&self.registry, &format!("/v2/{repo}/tags/list"))?;
            if code != 200 || !body.contains(&format!("\"{tag}\"")) {
                bail!("{image} is not in the registry ({code}: {})", body.trim());
            }
        }
        let mut state = EndState {
            images,
            ..EndState::default()
        };
        if self.kind == Kind::Up {
            let ns = &self.namespace;
            let list = self.tool("helm", &["list", "-a", "-n", ns, "-o", "yaml"])?;
            state.release = list
                .lines()
                .filter_map(|l| l.trim().strip_prefix("status: "))
                .map(str::to_owned)
                .collect::<Vec<_>>()
                .join(",");
            state.revision = list
                .lines()
                .filter_map(|l| l.trim().strip_prefix("revision: "))
                .filter_map(|r| r.trim_matches('"').parse().ok())
                .max()
                .unwrap_or(0);
            state.pending = self
                .tool("helm", &["list", "--pending", "-q", "-n", ns])?
                .lines()
                .filter(|l| !l.trim().is_empty())
                .count();
            state.workloads = self.tool(
                "kubectl",
                &[
                    "--context",
                    "stack-rig",
                    "get",
                    "deploy",
                    "-n",
                    ns,
                    "-o",
                    "jsonpath={range .items[*]}{.metadata.name}={.spec.replicas}:{.spec.template.spec.containers[0].image} {end}",
                ],
            )?;
        }
        Ok(state)
    }

    /// `*.tmp*` files under `.stack/` (what an atomic write leaves when killed between its write and
    /// its rename).
    fn tmp_files(&self) -> Vec<PathBuf> {
        fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
            for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, out);
                } else if e.file_name().to_string_lossy().contains(".tmp") {
                    out.push(p);
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.dir.join(".stack"), &mut out);
        out
    }

    /// Every file of the project outside `.stack/`, with its content: stack must not touch them.
    fn checksums(&self) -> BTreeMap<PathBuf, u64> {
        fn walk(dir: &Path, root: &Path, out: &mut BTreeMap<PathBuf, u64>) {
            for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let p = e.path();
                if p.strip_prefix(root).is_ok_and(|r| r.starts_with(".stack")) {
                    continue;
                }
                if p.is_dir() {
                    walk(&p, root, out);
                } else {
                    use std::hash::{Hash, Hasher};
                    let mut h = std::collections::hash_map::DefaultHasher::new();
                    std::fs::read(&p).unwrap_or_default().hash(&mut h);
                    out.insert(p, h.finish());
                }
            }
        }
        let mut out = BTreeMap::new();
        walk(&self.dir, &self.dir, &mut out);
        out
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        if self.kind == Kind::Up {
            let _ = self.command(&self.stack).arg("down").output();
            let _ = self.tool(
                "kubectl",
                &[
                    "--context",
                    "stack-rig",
                    "delete",
                    "namespace",
                    &self.namespace,
                    "--wait=false",
                ],
            );
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        if let Some(twin) = &self.twin {
            let _ = std::fs::remove_dir_all(twin);
        }
    }
}

#[derive(Default, PartialEq, Debug, Clone)]
struct EndState {
    images: Vec<String>,
    release: String,
    revision: u64,
    pending: usize,
    workloads: String,
}

impl EndState {
    /// Each field that differs, as `field: got …, want …`.
    fn differences(&self, want: &EndState) -> Vec<String> {
        let field = |name: &str, got: String, want: String| {
            (got != want).then(|| format!("{name}: got {got}, want {want}"))
        };
        let mut out: Vec<String> = [
            field("images", self.images.join(" "), want.images.join(" ")),
            field("release status", self.release.clone(), want.release.clone()),
            field(
                "pending releases",
                self.pending.to_string(),
                want.pending.to_string(),
            ),
            field("workloads", self.workloads.clone(), want.workloads.clone()),
        ]
        .into_iter()
        .flatten()
        .collect();
        if self.revision != want.revision {
            out.push(format!(
                "revision: got {}, want {} (exactly one new revision per changing run)",
                self.revision, want.revision
            ));
        }
        out
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Every JSON string value following `"key"` in `json` (no JSON parser in xtask).
fn strings_after(json: &str, key: &str) -> Vec<String> {
    json.match_indices(key)
        .filter_map(|(i, _)| {
            let rest = json[i + key.len()..].trim_start().strip_prefix(':')?;
            let rest = rest.trim_start().strip_prefix('"')?;
            rest.split_once('"').map(|(v, _)| v.to_owned())
        })
        .collect()
}

/// `host:port/repo/name:tag` → (`repo/name`, `tag`).
fn split_reference(image: &str) -> Result<(&str, &str)> {
    let path = image.split_once('/').map(|x| x.1).unwrap_or(image);
    path.rsplit_once(':')
        .with_context(|| format!("no tag in {image}"))
}

/// A run to completion: its report, or why it failed.
fn run_to_end(p: &Project) -> Result<(String, Duration)> {
    let started = Instant::now();
    let o: Output = p.stack_cmd().output()?;
    let took = started.elapsed();
    if !o.status.success() {
        bail!(
            "exit {:?}: {}{}",
            o.status.code(),
            last_lines(&text(&o.stdout), 3),
            last_lines(&text(&o.stderr), 6)
        );
    }
    Ok((text(&o.stdout), took))
}

fn last_lines(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

struct Row {
    command: String,
    runs: usize,
    killed_at: Vec<u64>,
    converged: usize,
    failures: Vec<String>,
    orphans: usize,
    tmp_left_by_kill: usize,
    tmp_after_rerun: usize,
}

fn trials(p: &Project, runs: usize, rng: &mut Rng) -> Result<Row> {
    // References: state A (first deploy), B, A again (a changing run on a deployed project: its
    // duration is the kill window), then B's end state again for the revision step.
    p.set_state(false)?;
    if p.kind == Kind::Build {
        p.set_content("reference")?;
    }
    let (report_a, took_first) = run_to_end(p).context("reference run (A)")?;
    let ref_a = p.end_state(&report_a)?;
    p.set_state(true)?;
    let (report_b, took_b) = run_to_end(p).context("reference run (B)")?;
    let ref_b = p.end_state(&report_b)?;
    p.set_state(false)?;
    let (report, took_a) = run_to_end(p).context("reference run (A again)")?;
    let again = p.end_state(&report)?;
    // `up`: every trial switches A↔B (a helm upgrade, cached images); `build`: every trial has
    // sources never built before (a real build and push, like the first reference run).
    let window = match p.kind {
        Kind::Up => took_a.max(took_b),
        Kind::Build => took_first,
    }
    .mul_f64(1.2);
    println!(
        "{}: reference runs {:.1}s / {:.1}s / {:.1}s; kill window 0..{:.1}s",
        p.kind.label(),
        took_first.as_secs_f64(),
        took_b.as_secs_f64(),
        took_a.as_secs_f64(),
        window.as_secs_f64()
    );
    let step = ref_b.revision.saturating_sub(ref_a.revision);
    let mut row = Row {
        command: p.kind.label(),
        runs,
        killed_at: Vec::new(),
        converged: 0,
        failures: Vec::new(),
        orphans: 0,
        tmp_left_by_kill: 0,
        tmp_after_rerun: 0,
    };
    let mut last = again;
    let mut state_b = false;
    for n in 0..runs {
        state_b = !state_b;
        p.set_state(state_b)?;
        if p.kind == Kind::Build {
            p.set_content(&format!("trial {n}"))?;
        }
        let before = p.checksums();
        let at_ms = rng.below(window.as_millis() as u64 + 1);
        row.killed_at.push(at_ms);
        let killed = kill_at(p, Duration::from_millis(at_ms))?;
        row.orphans += killed.orphans.len();
        let tmp = p.tmp_files().len();
        row.tmp_left_by_kill += tmp;
        let what = format!(
            "#{n} kill at {at_ms}ms{} ({}){}",
            if killed.finished {
                " (had already exited)"
            } else {
                ""
            },
            match (p.kind, state_b) {
                (Kind::Build, _) => "new sources",
                (Kind::Up, true) => "A→B",
                (Kind::Up, false) => "B→A",
            },
            if killed.orphans.is_empty() {
                String::new()
            } else {
                format!(", orphans {}", killed.orphans.join(", "))
            }
        );
        let mut diffs = Vec::new();
        let rerun = Tracked::spawn(p.stack_cmd().stdout(Stdio::piped()).stderr(Stdio::piped()));
        let (code, stdout, stderr, left) = rerun?.finish()?;
        if !left.is_empty() {
            diffs.push(format!(
                "descendants left after the rerun: {}",
                left.join(", ")
            ));
            row.orphans += left.len();
        }
        let tmp_after = p.tmp_files();
        row.tmp_after_rerun += tmp_after.len();
        if code != Some(0) {
            diffs.push(format!(
                "rerun exit {code:?}: {}{}",
                last_lines(&stdout, 3),
                last_lines(&stderr, 6)
            ));
        } else {
            let expected = match p.kind {
                Kind::Up => Ok(if state_b {
                    ref_b.clone()
                } else {
                    ref_a.clone()
                }),
                Kind::Build => p.twin_end_state(),
            };
            match p.end_state(&stdout).and_then(|got| Ok((got, expected?))) {
                Ok((got, expected)) => {
                    let want = EndState {
                        revision: last.revision + step,
                        ..expected
                    };
                    diffs.extend(got.differences(&want));
                    last = got;
                }
                Err(e) => diffs.push(format!("end state: {e:#}")),
            }
        }
        if p.kind == Kind::Up && last.pending > 0 {
            diffs.push("a release left pending-*".into());
        }
        let after = p.checksums();
        if before != after {
            let changed: Vec<_> = before
                .iter()
                .filter(|(f, h)| after.get(*f) != Some(h))
                .map(|(f, _)| f.display().to_string())
                .chain(
                    after
                        .keys()
                        .filter(|f| !before.contains_key(*f))
                        .map(|f| f.display().to_string()),
                )
                .collect();
            diffs.push(format!("project files changed: {}", changed.join(", ")));
        }
        if tmp > 0 || !tmp_after.is_empty() {
            println!(
                "  {what}: {tmp} *.tmp* under .stack/ after the kill, {} after the rerun",
                tmp_after.len()
            );
        }
        if diffs.is_empty() {
            row.converged += 1;
            println!("  {what}: converged");
        } else {
            let f = format!("{what}: {}", diffs.join("; "));
            println!("  DIVERGED {f}");
            row.failures.push(f);
            // Start the next trial from a known state: whatever the rerun left, re-learn it.
            if let Ok(state) = p.end_state("") {
                last.revision = state.revision;
            }
        }
    }
    Ok(row)
}

struct Killed {
    finished: bool,
    orphans: Vec<String>,
}

/// Starts the command, SIGKILLs its pid at `at`, then deals with the descendants that outlived
/// it: waits up to 60 s for them (a helm upgrade finishing on its own is what a user would see),
/// then SIGKILLs the ones still there, by the pids observed as descendants.
fn kill_at(p: &Project, at: Duration) -> Result<Killed> {
    let mut child = Tracked::spawn(p.stack_cmd().stdout(Stdio::null()).stderr(Stdio::null()))?;
    let deadline = Instant::now() + at;
    let mut finished = false;
    while Instant::now() < deadline {
        child.sample();
        if child.child.try_wait()?.is_some() {
            finished = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    if !finished {
        child.sample();
        // SAFETY: kill(2) on the pid of the child this process started and has not reaped.
        unsafe { libc::kill(child.child.id() as i32, libc::SIGKILL) };
    }
    let _ = child.child.wait();
    let survivors = child.alive();
    let mut orphans: Vec<String> = survivors.iter().map(|d| d.to_string()).collect();
    let orphaned = Instant::now();
    let wait_until = orphaned + Duration::from_secs(60);
    while Instant::now() < wait_until && !child.alive().is_empty() {
        std::thread::sleep(Duration::from_millis(100));
    }
    let forced = child.alive();
    if !orphans.is_empty() {
        let how = if forced.is_empty() {
            format!(
                "exited on their own after {:.1}s",
                orphaned.elapsed().as_secs_f64()
            )
        } else {
            format!("still running after 60s, killed: {}", forced.len())
        };
        if let Some(last) = orphans.last_mut() {
            last.push_str(&format!(" [{how}]"));
        }
    }
    for d in forced {
        // SAFETY: kill(2) on a pid observed as a descendant of our child, with its start time
        // checked just now (not a reused pid).
        unsafe { libc::kill(d.pid, libc::SIGKILL) };
    }
    Ok(Killed { finished, orphans })
}

/// A process this run started, and every descendant seen while it ran.
struct Tracked {
    child: std::process::Child,
    seen: BTreeSet<Proc>,
}

#[derive(PartialEq, Eq, PartialOrd, Ord, Clone)]
struct Proc {
    pid: i32,
    start: u64,
    comm: String,
}

impl std::fmt::Display for Proc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}({})", self.comm, self.pid)
    }
}

/// pid, ppid, start time and name from `/proc/<pid>/stat`.
fn stat(pid: i32) -> Option<(i32, u64, String)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (head, rest) = s.rsplit_once(')')?;
    let comm = head.split_once('(')?.1.to_owned();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state(0) ppid(1) ... starttime(19).
    if fields.first() == Some(&"Z") {
        return None;
    }
    Some((
        fields.get(1)?.parse().ok()?,
        fields.get(19)?.parse().ok()?,
        comm,
    ))
}

impl Tracked {
    fn spawn(cmd: &mut Command) -> Result<Tracked> {
        Ok(Tracked {
            child: cmd.spawn()?,
            seen: BTreeSet::new(),
        })
    }

    /// Adds the current descendants of the child to `seen`.
    fn sample(&mut self) {
        let mut parent = BTreeMap::new();
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                continue;
            };
            if let Some((ppid, start, comm)) = stat(pid) {
                parent.insert(pid, (ppid, start, comm));
            }
        }
        let root = self.child.id() as i32;
        let mut known: BTreeSet<i32> = self.seen.iter().map(|p| p.pid).collect();
        known.insert(root);
        loop {
            let new: Vec<_> = parent
                .iter()
                .filter(|(pid, (ppid, _, _))| known.contains(ppid) && !known.contains(pid))
                .map(|(pid, (_, start, comm))| Proc {
                    pid: *pid,
                    start: *start,
                    comm: comm.clone(),
                })
                .collect();
            if new.is_empty() {
                break;
            }
            for p in new {
                known.insert(p.pid);
                self.seen.insert(p);
            }
        }
    }

    /// Seen descendants still running (same pid and start time).
    fn alive(&self) -> Vec<Proc> {
        self.seen
            .iter()
            .filter_map(|p| {
                // The name now: a child seen between fork and exec still had its parent's name.
                let (_, start, comm) = stat(p.pid)?;
                (start == p.start).then(|| Proc { comm, ..p.clone() })
            })
            .collect()
    }

    /// Waits for the child, sampling its descendants; returns its exit code, output, and the
    /// descendants still alive after it exited (those are then killed by pid).
    fn finish(mut self) -> Result<(Option<i32>, String, String, Vec<String>)> {
        use std::io::Read;
        let mut out = self.child.stdout.take();
        let mut err = self.child.stderr.take();
        let reader = std::thread::spawn(move || {
            let mut s = Vec::new();
            if let Some(o) = out.as_mut() {
                let _ = o.read_to_end(&mut s);
            }
            s
        });
        let err_reader = std::thread::spawn(move || {
            let mut s = Vec::new();
            if let Some(e) = err.as_mut() {
                let _ = e.read_to_end(&mut s);
            }
            s
        });
        let status = loop {
            self.sample();
            if let Some(status) = self.child.try_wait()? {
                break status;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let stdout = reader.join().unwrap_or_default();
        let stderr = err_reader.join().unwrap_or_default();
        let left: Vec<Proc> = self.alive();
        for d in &left {
            // SAFETY: kill(2) on a pid observed as our child's descendant, start time checked.
            unsafe { libc::kill(d.pid, libc::SIGKILL) };
        }
        Ok((
            status.code(),
            text(&stdout),
            text(&stderr),
            left.iter().map(ToString::to_string).collect(),
        ))
    }
}

/// xorshift64: reproducible kill points from `--seed`.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

fn print_table(rows: &[Row]) {
    println!();
    println!(
        "| command | runs | killed at (ms) min / median / max | converged | orphans found | .stack tmp after kill / after rerun | failures |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for r in rows {
        let mut k = r.killed_at.clone();
        k.sort_unstable();
        let spread = if k.is_empty() {
            "-".to_owned()
        } else {
            format!("{} / {} / {}", k[0], k[k.len() / 2], k[k.len() - 1])
        };
        println!(
            "| {} | {} | {} | {}/{} | {} | {} / {} | {} |",
            r.command,
            r.runs,
            spread,
            r.converged,
            r.runs,
            r.orphans,
            r.tmp_left_by_kill,
            r.tmp_after_rerun,
            r.failures.len()
        );
    }
    for r in rows {
        for f in &r.failures {
            println!("FAILURE {}: {f}", r.command);
        }
    }
}
