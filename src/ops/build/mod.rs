//! `stack build [IMAGE...]`: content-addressed image builds through the Docker API.
//!
//! Plan: for each image, resolve its context, walk it (ignores applied), hash what Docker would
//! receive (files + Dockerfile + args + target + platform); the hash is the tag. Execute: an image
//! the daemon already has under that tag is not built; the others build in parallel (bounded),
//! streaming the context tar. Then deliver to the cluster: push to its local registry, or
//! `kind load docker-image` / `k3d image import` when it has none.

mod plan;
pub use plan::state_ignores;

use crate::config::cluster::Provider;
use crate::config::Project;
use crate::docker::{BuildFailure, BuildSpec, Docker};
use crate::error::StackError;
use crate::ops::events::{Event, Sink};
use crate::tool::{Cmd, Host, Tool};
pub use plan::{plan, Planned};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;

/// At most this many images build at once (the daemon parallelizes inside each build).
const PARALLEL_BUILDS: usize = 2;

#[derive(Debug, Default)]
pub struct Options {
    /// Image names; empty means every image in stack.yaml.
    pub images: Vec<String>,
    /// Push to the cluster's registry / load into the cluster after building.
    pub deliver: bool,
    /// Print the plan (with cache decisions) and build nothing.
    pub dry_run: bool,
    /// `--context` of `stack up`: delivery resolves the cluster as `stack cluster up` does.
    pub context: Option<String>,
    /// Build each image's production stage (`images.<name>.test`, default the last stage):
    /// `stack test local`.
    pub production: bool,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum Outcome {
    /// The daemon already had this exact content: nothing was built.
    UpToDate,
    Built {
        seconds: f64,
    },
    Failed(BuildFailure),
    /// `--dry-run`: would build.
    WouldBuild,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageResult {
    pub name: String,
    /// `<repository>:<content hash>`
    pub reference: String,
    pub context: String,
    pub outcome: Outcome,
    /// Where the image was delivered (registry reference, or `kind load` / `k3d import`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivered: Option<String>,
    /// Files re-read to compute the hash (0 when the stat cache covered everything).
    pub files_rehashed: usize,
    pub files: usize,
}

/// `(image name, reference)` of each image where the cluster pulls it from: the registry
/// reference it was delivered as, else the local reference (`kind load` / `k3d import`).
pub fn delivered_references(images: &[ImageResult]) -> Vec<(String, String)> {
    images
        .iter()
        .map(|img| {
            let reference = img
                .delivered
                .clone()
                .filter(|d| !d.contains(' '))
                .unwrap_or_else(|| img.reference.clone());
            (img.name.clone(), reference)
        })
        .collect()
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub images: Vec<ImageResult>,
    /// Deliveries made (or, under `--dry-run`, that would be made), in order.
    pub steps: Vec<crate::ops::plan::StepReport>,
}

impl Report {
    pub fn failed(&self) -> bool {
        self.images
            .iter()
            .any(|i| matches!(i.outcome, Outcome::Failed(_)))
    }
}

pub fn run(
    project: &Project,
    opts: &Options,
    host: &Host,
    sink: &dyn Sink,
) -> Result<Report, StackError> {
    let git = host.tool(Tool::Git).ok();
    let planned = plan(
        project,
        &opts.images,
        opts.production,
        host.runner,
        git.as_deref(),
    )?;
    let docker = crate::rt::until_cancelled(
        "connecting to Docker",
        Docker::connect(host.docker_endpoint()?),
    )??;
    let results =
        crate::rt::until_cancelled("the image builds", execute(&docker, planned, opts, sink))??;
    let exec = crate::ops::plan::Exec::new(host.runner, sink, opts.dry_run);
    let mut images = Vec::new();
    let mut cluster: Option<crate::cluster_target::Target> = None;
    for mut r in results {
        let deliverable = matches!(
            r.outcome,
            Outcome::UpToDate | Outcome::Built { .. } | Outcome::WouldBuild
        );
        if opts.deliver && deliverable {
            // Resolved once, at the first image to deliver (a build without any reads no config).
            if cluster.is_none() {
                cluster = Some(crate::cluster_target::resolve(
                    project,
                    host,
                    &crate::cluster_target::Options {
                        dry_run: false,
                        context: opts.context.clone(),
                    },
                )?);
            }
            let target = cluster.as_ref().expect("resolved above");
            r.delivered = crate::rt::block_on(deliver(host, &docker, &r, target, &exec))?;
        }
        sink.emit(Event::ImageFinished(r.clone()));
        images.push(r);
    }
    Ok(Report {
        images,
        steps: exec.steps(),
    })
}

async fn execute(
    docker: &Docker,
    planned: Vec<Planned>,
    opts: &Options,
    sink: &dyn Sink,
) -> Result<Vec<ImageResult>, StackError> {
    let sem = Arc::new(tokio::sync::Semaphore::new(PARALLEL_BUILDS));
    let mut results = Vec::new();
    // Cache decisions first (cheap), so the plan is reported before any build starts.
    let mut to_build = Vec::new();
    for p in planned {
        let cached = docker.has_image(&p.reference).await?;
        sink.emit(Event::ImagePlanned {
            image: p.name.clone(),
            reference: p.reference.clone(),
            context: p.context_display.clone(),
            files: p.context.entries.len(),
            rehashed: p.files_rehashed,
            cached,
        });
        if cached {
            results.push(result(&p, Outcome::UpToDate));
        } else if opts.dry_run {
            results.push(result(&p, Outcome::WouldBuild));
        } else {
            to_build.push(p);
        }
    }
    let builds = to_build.into_iter().map(|p| {
        let sem = sem.clone();
        async move {
            let _permit = sem.acquire().await.expect("semaphore is never closed");
            let start = std::time::Instant::now();
            let outcome = build_one(docker, &p, sink).await?;
            let outcome = match outcome {
                Ok(()) => Outcome::Built {
                    seconds: start.elapsed().as_secs_f64(),
                },
                Err(f) => Outcome::Failed(f),
            };
            Ok::<_, StackError>(result(&p, outcome))
        }
    });
    for r in futures::future::join_all(builds).await {
        results.push(r?);
    }
    results.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(results)
}

fn result(p: &Planned, outcome: Outcome) -> ImageResult {
    ImageResult {
        name: p.name.clone(),
        reference: p.reference.clone(),
        context: p.context_display.clone(),
        outcome,
        delivered: None,
        files_rehashed: p.files_rehashed,
        files: p.context.entries.len(),
    }
}

async fn build_one(
    docker: &Docker,
    p: &Planned,
    sink: &dyn Sink,
) -> Result<Result<(), BuildFailure>, StackError> {
    // The tar is produced on a blocking thread and streamed to the daemon as it is written.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(16);
    let ctx = p.context.clone();
    let producer = tokio::task::spawn_blocking(move || {
        let writer = ChannelWriter {
            tx: tx.clone(),
            buf: Vec::with_capacity(CHUNK),
        };
        match crate::image::context::write_tar(&ctx, writer).and_then(|mut w| w.flush_final()) {
            Ok(()) => {}
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
            }
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let labels: HashMap<String, String> = [
        ("dev.stack.owned".to_owned(), "true".to_owned()),
        ("dev.stack.image".to_owned(), p.name.clone()),
        ("dev.stack.content-hash".to_owned(), p.hash.clone()),
    ]
    .into();
    let spec = BuildSpec {
        dockerfile: &p.dockerfile_rel,
        reference: &p.reference,
        target: p.target.as_deref(),
        platform: p.platform.as_deref(),
        build_args: &p.build_args,
        labels: &labels,
    };
    let name = p.name.clone();
    let out = docker
        .build(&spec, stream, |line| {
            sink.emit(Event::ImageOutput {
                image: name.clone(),
                line: line.to_owned(),
            })
        })
        .await;
    let _ = producer.await;
    out
}

const CHUNK: usize = 256 * 1024;

/// `io::Write` into the body channel, in chunks.
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<Result<bytes::Bytes, std::io::Error>>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = bytes::Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx.blocking_send(Ok(chunk)).map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "the daemon stopped reading the context",
            )
        })
    }

    fn flush_final(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

impl std::io::Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Delivery to the cluster `stack cluster up` resolves (its name, its registry and that
/// registry's port, from stack.yaml and the provider's config): registry push, else kind/k3d load.
async fn deliver(
    host: &Host<'_>,
    docker: &Docker,
    r: &ImageResult,
    cluster: &crate::cluster_target::Target,
    exec: &crate::ops::plan::Exec<'_>,
) -> Result<Option<String>, StackError> {
    let (repo, tag) = r
        .reference
        .rsplit_once(':')
        .expect("references are repo:tag");
    if let Some(registry) = &cluster.registry {
        if registry.host_port == 0 {
            return Err(StackError::config(
                cluster.config_file.as_deref().map(crate::config::file_origin),
                format!(
                    "the registry {} has no fixed host port (k3d picks one when `registries.create.hostPort` is not set)",
                    registry.name
                ),
                "set `registries.create.hostPort` in the k3d config",
            ));
        }
        let target_repo = format!("{}/{repo}", registry.host());
        let pushed = format!("{target_repo}:{tag}");
        if !exec.api_step(
            &format!("push {} to the cluster's registry", r.name),
            &format!("docker push {pushed}"),
        ) {
            return Ok(None);
        }
        let result = async {
            docker.tag(&r.reference, &target_repo, tag).await?;
            docker.push(&target_repo, tag).await
        }
        .await
        .inspect_err(|_| exec.fail_last())?;
        return match result {
            Ok(()) => Ok(Some(pushed)),
            Err(message) => Err({
                exec.fail_last();
                StackError::Unreachable {
                what: format!("the cluster registry at {}", registry.host()),
                hint: format!("push of {target_repo}:{tag} failed: {message}; is the cluster up (`stack cluster up`)?"),
            }
            }),
        };
    }
    let name = &cluster.name;
    let cmd = match cluster.provider {
        Provider::Kind => Cmd::new(host.tool(Tool::Kind)?).args(["load", "docker-image", &r.reference, "--name", name]),
        Provider::K3d => Cmd::new(host.tool(Tool::K3d)?).args(["image", "import", &r.reference, "-c", name]),
        Provider::Existing => {
            return Err(StackError::config(
                None,
                format!(
                    "the existing cluster `{}` has no registry to push images to, and stack cannot load images into it",
                    cluster.context
                ),
                "set `cluster.registry.hostPort` to the port of a registry on this machine that the cluster pulls from (images go to localhost:<port>), or build without --deliver",
            ))
        }
    };
    let ran = exec
        .run(&format!("load {} into the cluster", r.name), &cmd)
        .map_err(|e| StackError::tool(e, "is the cluster up? (`stack cluster up`)"))?;
    Ok(ran.map(|_| cmd.short_line()))
}
