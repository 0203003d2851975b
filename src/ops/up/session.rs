//! The inner loop after the first converge: watch the image contexts, live-sync matching changes
//! into the running containers (exec + tar, never replacing the pod), fall back to rebuild +
//! redeploy for `rebuildOn` changes and files no sync rule covers, keep the `.env` ConfigMap in
//! sync, and stop cleanly on Ctrl-C.
//!
//! The loop itself is synchronous (one thread, one message at a time: a batch of changes or stop);
//! async work (exec, the `.env` object, forwards, log followers, the pod watch) runs on the
//! process runtime (`rt`); on stop every task it spawned is cancelled and awaited, so nothing is
//! left running. Progress goes to the stage's event sink (`ops::events`).

use super::{up, Options, Report};
use crate::config::images::ImageConfig;
use crate::config::Project;
use crate::error::StackError;
use crate::image::context;
use crate::kube::sync::SyncSet;
use crate::ops::events::{Event, Sink};
use crate::tool::Host;
use crate::watch::{self, Batch, Change, Root};
use ignore::gitignore::{Gitignore, GitignoreBuilder};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Instant;

enum Msg {
    Batch(Batch),
    Forward(String, crate::kube::forward::ForwardEvent),
    Log(crate::kube::logs::LogLine),
    Problem(String),
    Stop,
}

/// What to do with one image's changes.
#[derive(Debug, PartialEq)]
enum Action {
    Sync(Vec<SyncSet>),
    Rebuild(String),
}

struct ImageRules {
    context: PathBuf,
    rebuild_on: Gitignore,
    /// (pattern matcher, the pattern's literal directory prefix, container dest, run steps)
    sync: Vec<(Gitignore, String, String, Vec<Vec<String>>)>,
}

fn matcher(root: &Path, patterns: &[&str]) -> Result<Gitignore, StackError> {
    let mut b = GitignoreBuilder::new(root);
    for p in patterns {
        b.add_line(None, p).map_err(|e| {
            StackError::config(None, format!("pattern `{p}`: {e}"), "use gitignore syntax")
        })?;
    }
    b.build()
        .map_err(|e| StackError::config(None, e.to_string(), "fix the pattern"))
}

/// `public/**` → `public`: the part of a pattern before its first glob character, as a directory.
fn literal_prefix(pattern: &str) -> String {
    let cut = pattern.find(['*', '?', '[']).unwrap_or(pattern.len());
    let lit = &pattern[..cut];
    match lit.rfind('/') {
        Some(i) if cut < pattern.len() => lit[..i].trim_start_matches('/').to_owned(),
        _ if cut < pattern.len() => String::new(),
        _ => lit
            .trim_start_matches('/')
            .rsplit_once('/')
            .map(|(d, _)| d.to_owned())
            .unwrap_or_default(),
    }
}

impl ImageRules {
    fn new(context: PathBuf, cfg: &ImageConfig) -> Result<Self, StackError> {
        let rebuild_on = matcher(
            &context,
            &cfg.rebuild_on
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
        )?;
        let sync = cfg
            .sync
            .iter()
            .map(|r| {
                Ok((
                    matcher(&context, &[r.src.as_str()])?,
                    literal_prefix(&r.src),
                    r.dest.clone(),
                    r.run.clone(),
                ))
            })
            .collect::<Result<_, StackError>>()?;
        Ok(ImageRules {
            context,
            rebuild_on,
            sync,
        })
    }

    /// Sync what the rules cover; anything else (or a `rebuildOn` match) means a rebuild.
    fn action(&self, changes: &[Change]) -> Action {
        let mut sets: BTreeMap<String, SyncSet> = BTreeMap::new();
        for c in changes {
            if self
                .rebuild_on
                .matched_path_or_any_parents(&c.rel, false)
                .is_ignore()
            {
                return Action::Rebuild(c.rel.clone());
            }
            let Some((_, prefix, dest, run)) = self
                .sync
                .iter()
                .find(|(m, _, _, _)| m.matched_path_or_any_parents(&c.rel, false).is_ignore())
            else {
                return Action::Rebuild(c.rel.clone());
            };
            let under = c
                .rel
                .strip_prefix(prefix.as_str())
                .unwrap_or(&c.rel)
                .trim_start_matches('/')
                .to_owned();
            let set = sets.entry(dest.clone()).or_insert_with(|| SyncSet {
                dest: dest.clone(),
                run: run.clone(),
                ..Default::default()
            });
            if c.exists {
                set.files.push((self.context.join(&c.rel), under));
            } else {
                set.deletes.push(under);
            }
        }
        Action::Sync(sets.into_values().collect())
    }
}

/// Runs the loop until Ctrl-C (or `stop` receives a message, for tests and embedding).
pub fn run(
    project: &Project,
    host: &Host,
    opts: &Options,
    first: Report,
    sink: &dyn Sink,
) -> anyhow::Result<()> {
    let rt = crate::rt::runtime();
    let kubeconfig = project
        .root
        .join(super::kubeconfig_of(project, host, opts)?);
    let client = crate::rt::until_cancelled(
        "connecting to the cluster",
        crate::kube::client(&kubeconfig, &first.context),
    )??;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let mut tasks = Vec::new();
    // The release's pods, kept current by a watch: a sync looks them up without an API call.
    let (pods, pod_task) = pod_store(&client, &first, &shutdown);
    tasks.push(pod_task);

    let mut rules = BTreeMap::new();
    let mut roots = Vec::new();
    for (name, cfg) in &project.config.images {
        let Some(dir) = context::resolve_dir(&project.root, &cfg.context) else {
            continue;
        };
        let dir = dir.canonicalize().unwrap_or(dir);
        let mut ignore_lines: Vec<String> = cfg.ignore.clone();
        ignore_lines.extend(crate::ops::build::state_ignores(project, &dir));
        if let Ok(gi) = std::fs::read_to_string(dir.join(".gitignore")) {
            ignore_lines.extend(gi.lines().map(str::to_owned));
        }
        roots.push(Root {
            name: name.clone(),
            ignore: context::ignore_matcher(&dir, &ignore_lines)?,
            dir: dir.clone(),
            recursive: true,
        });
        rules.insert(name.clone(), ImageRules::new(dir, cfg)?);
    }
    let dotenv = project.config.dev.dotenv.as_ref();
    if let Some(d) = dotenv {
        let file = project.root.join(&d.file);
        let dir = file.parent().unwrap_or(&project.root).to_path_buf();
        let dir = dir.canonicalize().unwrap_or(dir);
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        roots.push(Root {
            name: "\0dotenv".into(),
            ignore: matcher(&dir, &["/*", &format!("!/{name}")])?,
            dir,
            recursive: false,
        });
        sync_dotenv(&client, project, &first.namespace, sink);
    }
    let watched: Vec<String> = roots
        .iter()
        .filter(|r| !r.name.starts_with('\0'))
        .map(|r| r.name.clone())
        .collect();
    let (_watcher, batches) = watch::start(roots)?;
    // Only now are the watches in place: a save after this line is seen.
    sink.emit(Event::Watching { roots: watched });
    let (tx, rx) = mpsc::channel();
    let tx_main = tx.clone();
    let stop_tx = tx.clone();
    let cancelled = crate::rt::token();
    let stop_on_cancel = shutdown.clone();
    tasks.push(rt.spawn(async move {
        tokio::select! {
            () = cancelled.cancelled() => { let _ = stop_tx.send(Msg::Stop); }
            () = stop_on_cancel.cancelled() => {}
        }
    }));
    std::thread::spawn(move || {
        while let Ok(b) = batches.recv() {
            if tx.send(Msg::Batch(b)).is_err() {
                return;
            }
        }
    });

    tasks.extend(start_forwards(
        project, &client, &first, &tx_main, &shutdown,
    )?);
    if project.config.dev.logs {
        let tx = tx_main.clone();
        let problems = tx_main.clone();
        let selector = format!("app.kubernetes.io/instance={}", first.release);
        let task = crate::kube::logs::follow(
            client.clone(),
            first.namespace.clone(),
            selector,
            move |l| {
                let _ = tx.send(Msg::Log(l));
            },
            shutdown.clone(),
        );
        tasks.push(rt.spawn(async move {
            if let Err(e) = task.await {
                let _ = problems.send(Msg::Problem(format!("log following stopped: {e}")));
            }
        }));
    }
    drop(tx_main);

    let mut current = first;
    while let Ok(msg) = rx.recv() {
        let batch = match msg {
            Msg::Batch(b) => b,
            Msg::Forward(label, news) => {
                sink.emit(Event::Forward { label, news });
                continue;
            }
            Msg::Log(line) => {
                sink.emit(Event::Log(line));
                continue;
            }
            Msg::Problem(message) => {
                sink.emit(Event::Problem { message });
                continue;
            }
            Msg::Stop => break,
        };
        for (image, changes) in &batch {
            if image.starts_with('\0') {
                sync_dotenv(&client, project, &current.namespace, sink);
                continue;
            }
            let Some(r) = rules.get(image) else { continue };
            match r.action(changes) {
                Action::Sync(sets) => {
                    let started = Instant::now();
                    let synced = crate::rt::until_cancelled(
                        "a live sync",
                        sync_image(&client, &pods, &current, image, &sets),
                    );
                    match synced {
                        Ok(Ok(pods)) => sink.emit(Event::Synced {
                            image: image.clone(),
                            files: sets.iter().map(|s| s.files.len()).sum(),
                            deletes: sets.iter().map(|s| s.deletes.len()).sum(),
                            pods,
                            millis: started.elapsed().as_millis(),
                        }),
                        Ok(Err(e)) | Err(e) => sink.emit(Event::Problem {
                            message: e.to_string(),
                        }),
                    }
                }
                Action::Rebuild(because) => {
                    sink.emit(Event::Rebuilding {
                        image: image.clone(),
                        because,
                    });
                    match up(project, host, opts, sink) {
                        Ok(report) => {
                            let revision = match &report.helm {
                                super::HelmStep::Upgraded { revision, .. }
                                | super::HelmStep::UpToDate { revision } => Some(*revision),
                                super::HelmStep::WouldUpgrade { .. } => None,
                            };
                            sink.emit(Event::Redeployed {
                                release: report.release.clone(),
                                revision,
                                upgraded: matches!(report.helm, super::HelmStep::Upgraded { .. }),
                            });
                            current = report;
                        }
                        Err(e) => sink.emit(Event::Problem {
                            message: format!("{e:#}"),
                        }),
                    }
                }
            }
        }
    }
    shutdown.cancel();
    // Every task ends at its next await once `shutdown` is cancelled; a stuck one is aborted.
    crate::rt::block_on(async {
        for t in tasks {
            let abort = t.abort_handle();
            if tokio::time::timeout(std::time::Duration::from_secs(2), t)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    });
    sink.emit(Event::Stopped);
    Ok(())
}

/// A watch of the release's pods into a store the sync path reads (no list per save).
fn pod_store(
    client: &kube::Client,
    first: &Report,
    shutdown: &tokio_util::sync::CancellationToken,
) -> (
    kube::runtime::reflector::Store<k8s_openapi::api::core::v1::Pod>,
    tokio::task::JoinHandle<()>,
) {
    use futures::StreamExt;
    use kube::runtime::{reflector, watcher, WatchStreamExt};
    let api: kube::Api<k8s_openapi::api::core::v1::Pod> =
        kube::Api::namespaced(client.clone(), &first.namespace);
    let (reader, writer) = reflector::store();
    let config =
        watcher::Config::default().labels(&format!("app.kubernetes.io/instance={}", first.release));
    let stream = reflector(writer, watcher(api, config).default_backoff()).touched_objects();
    let shutdown = shutdown.clone();
    let task = crate::rt::runtime().spawn(async move {
        let mut stream = std::pin::pin!(stream);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                next = stream.next() => if next.is_none() { return },
            }
        }
    });
    (reader, task)
}

/// Starts every configured port-forward; their news arrives on the loop's channel.
fn start_forwards(
    project: &Project,
    client: &kube::Client,
    first: &Report,
    tx: &mpsc::Sender<Msg>,
    shutdown: &tokio_util::sync::CancellationToken,
) -> Result<Vec<tokio::task::JoinHandle<()>>, StackError> {
    let mut tasks = Vec::new();
    use crate::kube::forward::{Forward, ForwardTarget};
    let env = minijinja::Environment::new();
    for pf in &project.config.dev.port_forwards {
        let target = env
            .render_str(
                &pf.target,
                minijinja::context! { release => first.release.clone() },
            )
            .map_err(|e| {
                StackError::config(
                    None,
                    format!("dev.portForwards target `{}`: {e}", pf.target),
                    "variables: release",
                )
            })?;
        let namespace = first.namespace.clone();
        let target_kind = match target.split_once('/') {
            Some(("deployment" | "deploy", name)) => ForwardTarget::Deployment {
                namespace,
                name: name.to_owned(),
            },
            Some(("service" | "svc", name)) => ForwardTarget::Service {
                namespace,
                name: name.to_owned(),
            },
            _ => {
                return Err(StackError::config(
                    None,
                    format!("dev.portForwards target `{target}`"),
                    "write `deployment/<name>` or `service/<name>`",
                ))
            }
        };
        let label = format!("{target} {}", pf.port);
        let forward = Forward {
            target: target_kind,
            remote_port: pf.port,
            local_port: pf.local_port.unwrap_or(pf.port),
        };
        let events = {
            let tx = tx.clone();
            let label = label.clone();
            move |e| {
                let _ = tx.send(Msg::Forward(label.clone(), e));
            }
        };
        let problems = tx.clone();
        let task = crate::kube::forward::serve(client.clone(), forward, events, shutdown.clone());
        tasks.push(crate::rt::runtime().spawn(async move {
            if let Err(e) = task.await {
                let _ = problems.send(Msg::Problem(format!("port-forward {label}: {e}")));
            }
        }));
    }
    Ok(tasks)
}

/// The running pods of the release whose containers run `image` (as last deployed).
async fn sync_image(
    client: &kube::Client,
    pods: &kube::runtime::reflector::Store<k8s_openapi::api::core::v1::Pod>,
    report: &Report,
    image: &str,
    sets: &[SyncSet],
) -> Result<Vec<String>, StackError> {
    use k8s_openapi::api::core::v1::Pod;
    let reference = report
        .images
        .iter()
        .find(|i| i.name == image)
        .map(|i| {
            i.delivered
                .clone()
                .filter(|d| !d.contains(' '))
                .unwrap_or_else(|| i.reference.clone())
        })
        .unwrap_or_default();
    // The first sync may come before the watch's initial list is in.
    if tokio::time::timeout(std::time::Duration::from_secs(10), pods.wait_until_ready())
        .await
        .is_err()
    {
        return Err(StackError::Unreachable {
            what: format!("pods of {}", report.release),
            hint: "the pod watch has not answered for 10 s; is the API server up?".into(),
        });
    }
    let mut synced = Vec::new();
    let mut state: Vec<std::sync::Arc<Pod>> = pods.state();
    state.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    for pod in state {
        let running = pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
        if !running || pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let name = pod.metadata.name.clone().unwrap_or_default();
        for c in pod
            .spec
            .iter()
            .flat_map(|s| s.containers.iter())
            .filter(|c| c.image.as_deref() == Some(reference.as_str()))
        {
            for set in sets {
                crate::kube::sync::apply(client, &report.namespace, &name, &c.name, set).await?;
            }
            synced.push(format!("{name}/{}", c.name));
        }
    }
    Ok(synced)
}

/// Creates or updates the `.env` Secret (or ConfigMap) by server-side apply as field manager
/// `stack`, without force: fields another manager owns (a chart that renders the same keys) are
/// never taken over — the conflict is reported instead. Values are never printed.
fn sync_dotenv(client: &kube::Client, project: &Project, namespace: &str, sink: &dyn Sink) {
    use crate::config::dev::DotenvTarget;
    use base64::Engine as _;
    let Some(d) = &project.config.dev.dotenv else {
        return;
    };
    let target = match d.target(&project.project_name()) {
        Ok(t) => t,
        Err(e) => {
            return sink.emit(Event::Problem {
                message: e.to_string(),
            })
        }
    };
    let data = crate::config::dotenv::parse(
        &std::fs::read_to_string(project.root.join(&d.file)).unwrap_or_default(),
    );
    let keys = data.len();
    let labels = serde_json::json!({ "dev.stack.owned": "true" });
    let pp = kube::api::PatchParams::apply("stack");
    let shown = target.display();
    let applied = match &target {
        DotenvTarget::ConfigMap(name) => {
            let obj = serde_json::json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": { "name": name, "namespace": namespace, "labels": labels },
                "data": data,
            });
            let api: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
                kube::Api::namespaced(client.clone(), namespace);
            crate::rt::block_on(api.patch(name, &pp, &kube::api::Patch::Apply(obj))).map(|_| ())
        }
        DotenvTarget::Secret(name) => {
            let encoded: std::collections::BTreeMap<&String, String> = data
                .iter()
                .map(|(k, v)| (k, base64::engine::general_purpose::STANDARD.encode(v)))
                .collect();
            let obj = serde_json::json!({
                "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                "metadata": { "name": name, "namespace": namespace, "labels": labels },
                "data": encoded,
            });
            let api: kube::Api<k8s_openapi::api::core::v1::Secret> =
                kube::Api::namespaced(client.clone(), namespace);
            crate::rt::block_on(api.patch(name, &pp, &kube::api::Patch::Apply(obj))).map(|_| ())
        }
    };
    match applied {
        Ok(()) => sink.emit(Event::DotenvSynced {
            object: shown,
            keys,
        }),
        Err(kube::Error::Api(s)) if s.code == 409 => sink.emit(Event::Problem { message: format!(
            "{shown} from {}: another field manager owns some of its keys (does the chart render them?): {} — stack does not take them over; rename dev.dotenv's object or drop the keys from the chart",
            d.file,
            s.message
        )}),
        Err(e) => sink.emit(Event::Problem {
            message: format!("{shown} from {}: {e}", d.file),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(sync: &[(&str, &str)], rebuild: &[&str]) -> ImageRules {
        let cfg: ImageConfig = serde_json::from_value(serde_json::json!({
            "context": ".",
            "sync": sync.iter().map(|(s, d)| serde_json::json!({"src": s, "dest": d})).collect::<Vec<_>>(),
            "rebuildOn": rebuild,
        }))
        .unwrap();
        ImageRules::new(PathBuf::from("/ctx"), &cfg).unwrap()
    }

    fn change(rel: &str, exists: bool) -> Change {
        Change {
            rel: rel.into(),
            exists,
        }
    }

    #[test]
    fn sync_maps_below_the_pattern_prefix() {
        let r = rules(
            &[("public/**", "/app/public")],
            &["Dockerfile", "requirements.txt"],
        );
        let Action::Sync(sets) = r.action(&[
            change("public/api/x.json", true),
            change("public/old.html", false),
        ]) else {
            panic!()
        };
        assert_eq!(sets.len(), 1);
        assert_eq!(sets[0].dest, "/app/public");
        assert_eq!(
            sets[0].files,
            [(
                PathBuf::from("/ctx/public/api/x.json"),
                "api/x.json".to_owned()
            )]
        );
        assert_eq!(sets[0].deletes, ["old.html"]);
    }

    #[test]
    fn rebuild_on_and_uncovered_files_rebuild() {
        let r = rules(&[("public/**", "/app/public")], &["Dockerfile"]);
        assert_eq!(
            r.action(&[change("public/a", true), change("Dockerfile", true)]),
            Action::Rebuild("Dockerfile".into())
        );
        assert_eq!(
            r.action(&[change("src/main.py", true)]),
            Action::Rebuild("src/main.py".into())
        );
    }

    #[test]
    fn literal_prefixes() {
        assert_eq!(literal_prefix("public/**"), "public");
        assert_eq!(literal_prefix("src/app/*.py"), "src/app");
        assert_eq!(literal_prefix("**/*.py"), "");
        assert_eq!(literal_prefix("config/settings.toml"), "config");
    }
}
