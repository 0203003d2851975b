//! The build plan: per image, its context, Dockerfile, rendered build args and content hash.
//! Everything that can be wrong with the configuration is found here, before the daemon is asked.

use crate::config::Project;
use crate::error::StackError;
use crate::image::{context, git};
use crate::tool::Runner;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::Path;

#[derive(Debug)]
pub struct Planned {
    pub name: String,
    pub context: context::Context,
    /// The context as configured (e.g. `../backend`), for messages.
    pub context_display: String,
    pub dockerfile_rel: String,
    pub target: Option<String>,
    pub platform: Option<String>,
    pub build_args: HashMap<String, String>,
    /// Hex sha256 of everything that determines the image.
    pub hash: String,
    /// `<repository>:<first 16 hex of hash>`
    pub reference: String,
    pub files_rehashed: usize,
}

/// Stage names declared in a Dockerfile (`FROM image AS name`).
pub fn stages(dockerfile: &str) -> Vec<String> {
    dockerfile
        .lines()
        .filter_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            match words.as_slice() {
                [from, .., as_kw, name]
                    if from.eq_ignore_ascii_case("FROM") && as_kw.eq_ignore_ascii_case("AS") =>
                {
                    Some(name.to_lowercase())
                }
                _ => None,
            }
        })
        .collect()
}

/// `production`: build each image's `test` stage (default the Dockerfile's last stage) instead
/// of its dev `target` — what `stack test local` deploys.
pub fn plan(
    project: &Project,
    names: &[String],
    production: bool,
    runner: &dyn Runner,
    git_bin: Option<&Path>,
) -> Result<Vec<Planned>, StackError> {
    let images = &project.config.images;
    if images.is_empty() {
        return Err(StackError::config(
            None,
            "no images to build: stack.yaml has no `images:` section",
            "add `images: {<name>: {context: <dir>}}` to stack.yaml",
        ));
    }
    let selected: Vec<&String> = if names.is_empty() {
        images.keys().collect()
    } else {
        names.iter().collect()
    };
    let known: Vec<&str> = images.keys().map(String::as_str).collect();
    let mut out = Vec::new();
    let build_time = git::utc_now();
    for name in selected {
        let Some(cfg) = images.get(name) else {
            let hint = match crate::values::checks::did_you_mean(name, &known) {
                Some(best) => format!("did you mean `{best}`?"),
                None => format!("images in stack.yaml: {}", known.join(", ")),
            };
            return Err(StackError::Usage {
                message: format!("unknown image `{name}`"),
                hint: Some(hint),
            });
        };
        let dir = context::resolve_dir(&project.root, &cfg.context).ok_or_else(|| {
            StackError::config(
                None,
                format!("images.{name}.context: `{}` does not exist (relative to {}, also tried case-insensitively)", cfg.context, project.root.display()),
                "clone the repository there, or fix the path in stack.yaml",
            )
        })?;
        let dockerfile_rel = cfg
            .dockerfile
            .clone()
            .unwrap_or_else(|| "Dockerfile".into());
        let dockerfile_text = std::fs::read_to_string(dir.join(&dockerfile_rel)).map_err(|_| {
            StackError::config(
                None,
                format!("images.{name}: no {dockerfile_rel} in {}", cfg.context),
                "create it, or set `images.<name>.dockerfile` to its path inside the context",
            )
        })?;
        let (target_key, target) = if production {
            ("test", cfg.test.clone())
        } else {
            ("target", cfg.target.clone())
        };
        if let Some(target) = &target {
            let declared = stages(&dockerfile_text);
            if !declared.contains(&target.to_lowercase()) {
                return Err(StackError::config(
                    None,
                    format!(
                        "images.{name}.{target_key}: stage `{target}` is not in {}/{dockerfile_rel}",
                        cfg.context
                    ),
                    if declared.is_empty() {
                        "the Dockerfile names no stages (`FROM image AS <stage>`)".to_owned()
                    } else {
                        format!("stages there: {}", declared.join(", "))
                    },
                ));
            }
        }
        let info = git_bin.map_or_else(git::GitInfo::unknown, |g| git::read(runner, g, &dir));
        let env = minijinja::Environment::new();
        let render = |tpl: &str, time: &str| {
            env.render_str(
                tpl,
                minijinja::context! { git => info.clone(), build_time => time },
            )
            .map_err(|e| {
                StackError::config(
                    None,
                    format!("images.{name}.buildArgs: template `{tpl}`: {e}"),
                    "variables: git.describe, git.branch, git.sha, build_time",
                )
            })
        };
        let mut build_args = HashMap::new();
        let mut hashed_args = Vec::new();
        for (k, tpl) in &cfg.build_args {
            build_args.insert(k.clone(), render(tpl, &build_time)?);
            // The build time changes every run; it must not make every build a cache miss.
            hashed_args.push(format!("{k}={}", render(tpl, "<build-time>")?));
        }
        let mut ignore_lines = cfg.ignore.clone();
        ignore_lines.extend(state_ignores(project, &dir));
        let ignore = context::ignore_matcher(&dir, &ignore_lines)?;
        let ctx = context::walk(&dir, &ignore, &dockerfile_rel)?;
        let cache_file = crate::state::State::new(&project.root).build_cache(name);
        let cache = context::StatCache::load(&cache_file);
        let (ctx_digest, new_cache, rehashed) = context::digest(&ctx, &cache)?;
        if let Some(new_cache) = new_cache {
            // A cache that cannot be written only costs time on the next run.
            let _ = new_cache.save(&cache_file);
        }
        let mut h = Sha256::new();
        for part in [
            "stack-build-v1",
            &ctx_digest,
            &dockerfile_rel,
            target.as_deref().unwrap_or(""),
            cfg.platform.as_deref().unwrap_or(""),
            &hashed_args.join("\0"),
            &cfg.ignore.join("\0"),
        ] {
            h.update(part.as_bytes());
            h.update(b"\n");
        }
        let hash = hex::encode(h.finalize());
        let repository = cfg
            .repository
            .clone()
            .unwrap_or_else(|| format!("stack/{name}"));
        out.push(Planned {
            name: name.clone(),
            context: ctx,
            context_display: cfg.context.clone(),
            dockerfile_rel,
            target,
            platform: cfg.platform.clone(),
            build_args,
            reference: format!("{repository}:{}", &hash[..16]),
            hash,
            files_rehashed: rehashed,
        });
    }
    Ok(out)
}

/// Anchored ignore lines for what stack keeps beside the sources and must never send to a
/// daemon: `.stack/` (kubeconfigs, records) and the `.env` files (tokens), when they lie inside
/// the build context `dir` (a context of `.` is the project root).
pub fn state_ignores(project: &crate::config::Project, dir: &std::path::Path) -> Vec<String> {
    let mut private = vec![
        crate::state::State::new(&project.root).dir(),
        project.root.join(".env"),
    ];
    if let Some(d) = &project.config.dev.dotenv {
        private.push(project.root.join(&d.file));
    }
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    private
        .iter()
        .filter_map(|p| {
            let p = match (
                p.parent().and_then(|d| d.canonicalize().ok()),
                p.file_name(),
            ) {
                (Some(parent), Some(name)) => parent.join(name),
                _ => p.clone(),
            };
            let rel = p
                .strip_prefix(&dir)
                .ok()?
                .to_string_lossy()
                .replace('\\', "/");
            (!rel.is_empty()).then(|| format!("/{rel}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn dockerfile_stages() {
        assert_eq!(
            super::stages("FROM busybox AS base\nRUN x\nfrom base as Dev\nFROM scratch\n"),
            ["base", "dev"]
        );
    }
}
