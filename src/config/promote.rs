//! `promote:` in stack.yaml — what `stack promote FROM TO` edits besides the env values files,
//! and what it requires of the source env.

use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PromoteConfig {
    /// Files that carry an env target's versions besides its values files, by target name
    /// (`live/prod: [deploy/overlays/prod/kustomization.yaml, deploy/argocd/prod.yaml]`), relative
    /// to the project root: Kustomize overlays (`images:` entries' `newTag`/`digest`), Argo CD
    /// Applications (`spec.source.targetRevision`, the chart version) and files with Flux
    /// `# {"$imagepolicy": "<namespace>:<policy>[:tag|:name|:digest]"}` markers. A target not
    /// listed here gets the YAML files of directories named after it, outside the env and chart
    /// directories: `…/overlays/<name>/` and `…/<type>/<name>/` (e.g. `deploy/overlays/prod/`).
    #[serde(default)]
    pub files: BTreeMap<String, Vec<String>>,
    /// The Flux ImagePolicy name of an image, when it is not the image's name (by image name).
    #[serde(default)]
    pub flux_policies: BTreeMap<String, String>,
    /// The Kustomize `images[].name` of an image, when it is neither the image's name nor its
    /// repository (by image name).
    #[serde(default)]
    pub kustomize_names: BTreeMap<String, String>,
    /// Promote only what passed `stack live verify` in the source env (its record under
    /// `.stack/verify/`); `--force` promotes anyway. Default true.
    #[serde(default = "yes")]
    pub require_verify: bool,
}

impl Default for PromoteConfig {
    fn default() -> Self {
        PromoteConfig {
            files: BTreeMap::new(),
            flux_policies: BTreeMap::new(),
            kustomize_names: BTreeMap::new(),
            require_verify: true,
        }
    }
}

fn yes() -> bool {
    true
}
