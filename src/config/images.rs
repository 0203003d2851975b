//! `images:` in stack.yaml — what `stack build` builds and how `stack up` keeps it live.

use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ImageConfig {
    /// Build context directory, relative to the project root; may be a sibling repo such as
    /// `../backend` (matched case-insensitively when the exact name does not exist).
    pub context: String,
    /// Dockerfile path relative to the context. Default `Dockerfile`.
    #[serde(default)]
    pub dockerfile: Option<String>,
    /// Build stage (`--target`) for `stack build` and `stack up`.
    #[serde(default)]
    pub target: Option<String>,
    /// The production stage `stack test local` builds. Default: the Dockerfile's last stage
    /// (no `--target`), as a release build would.
    #[serde(default)]
    pub test: Option<String>,
    /// Platform, e.g. `linux/amd64`.
    #[serde(default)]
    pub platform: Option<String>,
    /// Build args as minijinja templates over git metadata of the context repo: `git.describe`
    /// (`unknown-dev` outside git), `git.branch`, `git.sha`, `build_time` (UTC, RFC 3339).
    #[serde(default)]
    pub build_args: BTreeMap<String, String>,
    /// Ignore patterns (gitignore syntax) on top of the context's `.dockerignore`.
    #[serde(default)]
    pub ignore: Vec<String>,
    /// Repository name of the built image. Default `stack/<image name>`.
    #[serde(default)]
    pub repository: Option<String>,
    /// Values paths that receive this image in `stack up` (each gets `repository` and `tag`), e.g.
    /// `backend-api.image`.
    #[serde(default)]
    pub values: Vec<String>,
    /// Live sync (`stack up`): changed files matching `src` are copied into the container at `dest`.
    #[serde(default)]
    pub sync: Vec<SyncRule>,
    /// Changes matching these patterns rebuild the image instead of syncing (`stack up`).
    #[serde(default)]
    pub rebuild_on: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SyncRule {
    /// Pattern of files relative to the context (gitignore syntax), e.g. `public/**`.
    pub src: String,
    /// Directory in the container, e.g. `/app`.
    pub dest: String,
    /// Commands run in the container after the files are synced (each an argv), e.g.
    /// `[["sh", "-c", "kill -HUP 1"]]`.
    #[serde(default)]
    pub run: Vec<Vec<String>>,
}
