//! Command-line definitions only: clap structs, no work. `main` maps them onto `ops`.

use crate::ui::Format;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "stack",
    version = env!("STACK_VERSION"),
    about = "One binary for a Kubernetes app team's platform repo",
    propagate_version = true
)]
pub struct Cli {
    /// Project root (where stack.yaml, charts/ and envs/ live). Default: the current directory.
    #[arg(long, short = 'C', global = true, value_name = "DIR")]
    pub project: Option<PathBuf>,
    /// Output format (default human; github for `test` and `validate` when GITHUB_ACTIONS=true).
    #[arg(long, global = true, value_enum)]
    pub format: Option<Format>,
    /// Colour: auto (a terminal, and NO_COLOR unset), always, never.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "auto",
        value_name = "WHEN"
    )]
    pub color: crate::ui::ColorChoice,
    /// Quiet: only problems, failures and the result (no progress lines).
    #[arg(long, short = 'q', global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Verbose: also every line the tools and image builds print.
    #[arg(long, short = 'v', global = true)]
    pub verbose: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate configuration offline.
    #[command(subcommand)]
    Validate(Validate),
    /// Print the values one env target's templates receive (`.Values` as Helm composes it).
    Values(ValuesArgs),
    /// Print the JSON Schema of stack.yaml (for editor completion).
    Schema,
    /// Print a shell completion script (e.g. `stack completions bash > /etc/bash_completion.d/stack`).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Create, delete or inspect the cluster (kind, k3d, or an existing allowed context).
    #[command(subcommand)]
    Cluster(Cluster),
    /// Check this machine: tools, Docker, the cluster, inotify limits — with the fix for each problem.
    Doctor,
    /// Build images through Docker (content-addressed: an unchanged image is never rebuilt).
    Build(BuildArgs),
    /// Converge the dev environment: cluster, images, Helm release; then wait until it is ready.
    Up(UpArgs),
    /// Uninstall the dev release (the cluster stays unless --cluster).
    Down(DownArgs),
    /// Copy the versions env FROM runs (image tags, chart version) into env TO's files, editing
    /// only the bytes that change; shows the diff first.
    Promote(PromoteArgs),
    /// Publish the chart: version (--version, or from conventional commits since the last tag),
    /// Chart.yaml edited in place, lock verified, `helm package` + `helm push oci://…`, then the
    /// git tag. The same version with the same contents is a no-op; with other contents it is
    /// refused (exit 1): versions are immutable.
    Release(ReleaseArgs),
    /// Production targets (envs/live/): deploy released charts, history, rollback.
    #[command(subcommand)]
    Live(Live),
    /// Deploy a test release — production-like images (local) or published chart and images
    /// (ci) — and run the declared checks. Exit 0 all passed, 1 a check failed, 2 bad
    /// check/config, 3 missing tool or unreachable cluster/registry.
    #[command(subcommand)]
    Test(Test),
    /// Generate files for this project: `init github` writes the GitHub Actions workflows.
    #[command(subcommand)]
    Init(Init),
}

#[derive(Debug, clap::Args)]
#[command(disable_version_flag = true)]
pub struct ReleaseArgs {
    /// The version to release (SemVer). Default: the next one from the conventional commits
    /// since the last release tag (the Chart.yaml version for the first release).
    #[arg(long = "version", id = "release_version", value_name = "V")]
    pub version: Option<String>,
    /// Where to push: `oci://REGISTRY/PATH` (default `release.registry`).
    #[arg(long, value_name = "oci://REG/PATH")]
    pub registry: Option<String>,
    /// Show the version, the Chart.yaml diff and the commands; change and push nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Run `helm dependency update` (rewrites Chart.lock) instead of refusing a stale lock.
    #[arg(long)]
    pub update_deps: bool,
    /// Push without creating the git tag.
    #[arg(long)]
    pub no_tag: bool,
}

#[derive(Debug, Subcommand)]
pub enum Init {
    /// Write `.github/workflows/ci.yml`: a `validate` job (`stack validate envs`), then an `e2e`
    /// job (`stack cluster up`, `stack test ci`, diagnostics uploaded on failure, cluster always
    /// deleted). A file that is already what stack writes is left alone; one that differs (you
    /// edited it) is shown as a diff and kept unless --force (exit 1).
    Github(InitGithubArgs),
}

#[derive(Debug, clap::Args)]
pub struct InitGithubArgs {
    /// Overwrite workflow files that differ from what stack would write.
    #[arg(long)]
    pub force: bool,
    /// Show what would be written (as diffs) and write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Subcommand)]
pub enum Test {
    /// Build each image's production stage, deploy the working-tree chart, run the checks.
    Local(TestArgs),
    /// Build nothing: deploy the published OCI chart and images, run the checks.
    Ci(TestCiArgs),
    /// Remove a kept test release (and the namespace stack created for it).
    Clean(TestCleanArgs),
}

#[derive(Debug, clap::Args)]
pub struct TestArgs {
    /// Kubeconfig context (must be the cluster's own or an allowed one).
    #[arg(long)]
    pub context: Option<String>,
    /// Keep the test release even when every check passed.
    #[arg(long)]
    pub keep: bool,
    /// Only run the checks, against the test release an earlier `--keep` run left deployed
    /// (nothing built, confirmed or deployed; the release is kept).
    #[arg(long)]
    pub no_deploy: bool,
    /// Checks running at once (default `test.jobs`, 4).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Deadline of the whole check run: `10m`, `90s` (default `test.timeoutSeconds`).
    #[arg(long)]
    pub timeout: Option<String>,
    /// Diagnostics directory, emptied first (default `.stack/artifacts/test-<profile>/`).
    #[arg(long, value_name = "DIR")]
    pub artifacts: Option<PathBuf>,
    /// Also write a JUnit XML report (one testsuite, one testcase per check).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct TestCiArgs {
    #[command(flatten)]
    pub common: TestArgs,
    /// The published chart, `oci://REGISTRY/PATH/NAME` (default `test.ci.chart.reference`).
    #[arg(long)]
    pub chart: Option<String>,
    /// The chart version (default `test.ci.chart.version`).
    #[arg(long)]
    pub chart_version: Option<String>,
    /// A published image for an image of stack.yaml: `NAME=REF` (repeatable).
    #[arg(long = "image", value_name = "NAME=REF")]
    pub images: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct TestCleanArgs {
    /// The profile whose kept release to remove.
    #[arg(value_enum)]
    pub profile: crate::ops::test::ProfileName,
    #[arg(long)]
    pub context: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Live {
    /// `helm upgrade --install` the released chart on a live target, wait, and roll back to the
    /// previous good revision on failure (never uninstall). Asks first on a terminal.
    Deploy(LiveDeployArgs),
    /// What `live deploy` would change: the upgrade's manifests (`helm template`, same chart,
    /// version and values) against the deployed release's (`helm get manifest`), a unified diff per
    /// object; Secret values are never shown (a changed secret shows its changed keys).
    ///
    /// Exit status, like `git diff --exit-code`: 0 no changes, 1 changes (a release that is not
    /// installed: every object added), 2 bad input, 4 a tool failed.
    Diff(LiveDiffArgs),
    /// The target's revisions (time, status, chart, app version), from Helm's history.
    History(LiveTargetArg),
    /// Roll the target back to REVISION (default: the previous good revision).
    Rollback(LiveRollbackArgs),
    /// A release stuck in `pending-*` (helm interrupted): roll it back to the newest good revision.
    Recover(LiveRecoverArgs),
    /// Run the checks marked `live: true` against the deployed target (`https://<host>`, no
    /// port-forwards) and record the result for `stack promote`. Exit 0 passed, 1 a check failed.
    Verify(LiveVerifyArgs),
}

#[derive(Debug, clap::Args)]
pub struct LiveVerifyArgs {
    /// The live env target (`live/acme-shop`, or its last part when unique).
    pub target: String,
    /// The public host or base URL (default: the target's `baseUrl`, else `https://` + `host`).
    #[arg(long)]
    pub host: Option<String>,
    /// Checks running at once (default `test.jobs`).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Deadline of the whole check run: `10m`, `90s` (default `test.timeoutSeconds`).
    #[arg(long)]
    pub timeout: Option<String>,
    /// Also write a JUnit XML report.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct LiveRecoverArgs {
    /// The live env target (`live/acme-shop`, or its last part when unique).
    pub target: String,
    /// Recover without asking (required when stdin is not a terminal).
    #[arg(long)]
    pub yes: bool,
    /// Print the exact helm command and change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, clap::Args)]
pub struct LiveTargetArg {
    /// The live env target (`live/acme-shop`, or its last part when unique).
    pub target: String,
}

#[derive(Debug, clap::Args)]
#[command(disable_version_flag = true)]
pub struct LiveDeployArgs {
    /// The live env target (`live/acme-shop`, or its last part when unique).
    pub target: String,
    /// The chart version to deploy. Default: `live.chart.version` in stack.yaml.
    #[arg(long = "version", id = "chart_version", value_name = "V")]
    pub version: Option<String>,
    /// Deploy without asking (required when stdin is not a terminal).
    #[arg(long)]
    pub yes: bool,
    /// Print the exact helm command and change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, clap::Args)]
#[command(disable_version_flag = true)]
pub struct LiveDiffArgs {
    /// The live env target (`live/acme-shop`, or its last part when unique).
    pub target: String,
    /// The chart version the upgrade would deploy. Default: `live.chart.version` in stack.yaml.
    #[arg(long = "version", id = "chart_version", value_name = "V")]
    pub version: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct LiveRollbackArgs {
    /// The live env target (`live/acme-shop`, or its last part when unique).
    pub target: String,
    /// The revision to return to. Default: the newest good revision before the deployed one.
    pub revision: Option<u64>,
    /// Roll back without asking (required when stdin is not a terminal).
    #[arg(long)]
    pub yes: bool,
    /// Print the exact helm command and change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Subcommand)]
pub enum Cluster {
    /// Create the cluster and its local registry; does nothing when they already exist.
    Up(ClusterChange),
    /// Delete the cluster and registry stack created (and nothing else).
    Down(ClusterChange),
    /// Show the cluster, its nodes, the registry and the context.
    Status(ClusterStatus),
}

#[derive(Debug, clap::Args)]
pub struct ClusterChange {
    /// Print the plan (the exact command lines) and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Kubeconfig context. Default: the provider's own (`kind-<name>`, `k3d-<name>`) or `cluster.context`.
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct ClusterStatus {
    /// Kubeconfig context. Default: the provider's own (`kind-<name>`, `k3d-<name>`) or `cluster.context`.
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Validate {
    /// Compose every environment's Helm values exactly as Helm would and validate them.
    Envs(ValidateEnvs),
}

#[derive(Debug, clap::Args)]
pub struct ValidateEnvs {
    /// Cloud layer (envs/<NAME>.yaml). Default: stack.yaml `envs.cloud`, else the only cloud file.
    #[arg(long, value_name = "NAME")]
    pub cloud: Option<String>,
    /// Also run real `helm template` for every target (deep mode for CI).
    #[arg(long)]
    pub helm: bool,
    #[command(flatten)]
    pub set: SetFlags,
    /// Changed files (as pre-commit passes them): only the targets they affect are validated.
    pub files: Vec<PathBuf>,
}

/// Helm's value flags, parsed exactly as Helm parses them and applied after the env files in
/// Helm's fixed order (--set-json, --set, --set-string, --set-file, --set-literal).
#[derive(Debug, Default, clap::Args)]
pub struct SetFlags {
    /// Set a value (Helm's --set: `a.b=v`, `list={x,y}`, `a[0].b=v`; typed).
    #[arg(long = "set", value_name = "KEY=VAL")]
    pub set: Vec<String>,
    /// Set a string value (Helm's --set-string).
    #[arg(long = "set-string", value_name = "KEY=VAL")]
    pub set_string: Vec<String>,
    /// Set a value from a file's content (Helm's --set-file).
    #[arg(long = "set-file", value_name = "KEY=PATH")]
    pub set_file: Vec<String>,
    /// Set a JSON value (Helm's --set-json).
    #[arg(long = "set-json", value_name = "KEY=JSON")]
    pub set_json: Vec<String>,
    /// Set a literal string, nothing parsed (Helm's --set-literal).
    #[arg(long = "set-literal", value_name = "KEY=VAL")]
    pub set_literal: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct ValuesArgs {
    /// The env target: its full name (`ci/app`) or its last part when unique (`app`).
    pub target: String,
    /// Cloud layer (envs/<NAME>.yaml). Default: stack.yaml `envs.cloud`, else the only cloud file.
    #[arg(long, value_name = "NAME")]
    pub cloud: Option<String>,
    /// Show where each value was set (file:line:col), like `git config --show-origin`.
    #[arg(long)]
    pub origin: bool,
    #[command(flatten)]
    pub set: SetFlags,
}

#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    /// Images to build (names from stack.yaml `images:`). Default: all.
    pub images: Vec<String>,
    /// Deliver to the cluster: push to its local registry, or `kind load` / `k3d image import`.
    #[arg(long)]
    pub deliver: bool,
    /// Show what would be built (cache decisions included) and build nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, clap::Args)]
pub struct UpArgs {
    /// Converge and wait for the rollout, then exit (no watching): for scripts and CI.
    #[arg(long)]
    pub once: bool,
    /// Show what would happen (cache decisions, the helm command) and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Kubeconfig context (the cluster's own, or one in `cluster.allowedContexts`).
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct DownArgs {
    /// Also delete the cluster (only one stack created).
    #[arg(long)]
    pub cluster: bool,
    /// Show what would happen and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Kubeconfig context (the cluster's own, or one in `cluster.allowedContexts`).
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct PromoteArgs {
    /// The env target whose versions are promoted (`ci/kind`, or its last part when unique).
    pub from: String,
    /// The env target whose files are edited.
    pub to: String,
    /// Promote only this image (repeatable; names from stack.yaml `images:`). Default: all.
    #[arg(long = "image", value_name = "NAME", value_delimiter = ',')]
    pub images: Vec<String>,
    /// Promote the chart version (Argo CD `targetRevision`); alone, only the chart.
    #[arg(long)]
    pub chart: bool,
    /// Commit the change, with trailers Promoted-From, Source-Revision and Verify.
    #[arg(long)]
    pub commit: bool,
    /// Commit on this branch (created when missing), for a pull request; implies --commit.
    #[arg(long, value_name = "NAME")]
    pub branch: Option<String>,
    /// Promote even though FROM has no passing `stack live verify` record.
    #[arg(long)]
    pub force: bool,
    /// Show the diff and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Cloud layer (envs/<NAME>.yaml). Default: stack.yaml `envs.cloud`, else the only cloud file.
    #[arg(long, value_name = "NAME")]
    pub cloud: Option<String>,
}
