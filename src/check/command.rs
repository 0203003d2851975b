//! `command` checks: a local process (the team's own suite), its exit code the verdict. It runs
//! through `tool::RealRunner` (the one place that spawns), on a blocking thread, killed at the
//! check's deadline; its environment is templated (`forwards.api.url`, `env.TOKEN`, …) and every
//! value read from `env.` is a secret: passed as such (redacted wherever the command line is
//! shown) and masked in the output the check reports.

use super::spec::CommandSpec;
use super::{seconds, Ctx, Finished, Status};
use crate::tool::{Cmd, RealRunner, RunError, Runner};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;
use tokio::time::Instant;

/// Lines of output kept as the check's evidence (stdout and stderr as they came).
const TAIL: usize = 100;
/// How much of the command line the message shows.
const SHOWN_CHARS: usize = 80;

pub async fn run(spec: &CommandSpec, ctx: &Ctx, deadline: Instant, timeout: Duration) -> Finished {
    let secrets = EnvSecrets::of(spec.env.values());
    let finished = run_masked(spec, ctx, deadline, timeout).await;
    secrets.mask_finished(finished)
}

async fn run_masked(
    spec: &CommandSpec,
    ctx: &Ctx,
    deadline: Instant,
    timeout: Duration,
) -> Finished {
    let Some((program, args)) = spec.run.split_first() else {
        return Finished::error("command.run is empty");
    };
    let dir = match &spec.dir {
        Some(d) => ctx.root.join(d),
        None => ctx.root.clone(),
    };
    if !dir.is_dir() {
        return Finished::error(format!("the directory `{}` does not exist", dir.display()));
    }
    // A path with a slash is the user's file, relative to where the command runs (as in a shell);
    // a bare name is looked up on PATH.
    let program_path = if program.contains('/') && PathBuf::from(program).is_relative() {
        dir.join(program)
    } else {
        PathBuf::from(program)
    };
    let left = deadline.saturating_duration_since(Instant::now());
    let mut cmd = Cmd::new(program_path)
        .args(args.iter().cloned())
        .cwd(&dir)
        .timeout(left.max(Duration::from_millis(100)));
    for (name, template) in &spec.env {
        let value = match ctx.render(template) {
            Ok(v) => v,
            Err(e) => return Finished::error(format!("env {name}: {e}")),
        };
        cmd = if EnvSecrets::reads_env(template) {
            cmd.secret_env(name, value)
        } else {
            cmd.env(name, value)
        };
    }
    let shown = std::iter::once(program.as_str())
        .chain(args.iter().map(String::as_str))
        .map(crate::tool::quote)
        .collect::<Vec<_>>()
        .join(" ");
    // One line in the report: a long inline script is cut.
    let shown = match shown.char_indices().nth(SHOWN_CHARS) {
        Some((cut, _)) => format!("{}…", &shown[..cut]),
        None => shown,
    };
    // Dropped when the run gives up on this check (its deadline): the process is killed then.
    let stop = tokio_util::sync::CancellationToken::new();
    let _kill_when_dropped = stop.clone().drop_guard();
    let cmd = cmd.cancel_on(stop);
    let ran = tokio::task::spawn_blocking(move || {
        let mut tail: VecDeque<String> = VecDeque::with_capacity(TAIL);
        let result = RealRunner.stream(&cmd, &mut |line| {
            if tail.len() == TAIL {
                tail.pop_front();
            }
            tail.push_back(line.to_owned());
        });
        (result, Vec::from(tail).join("\n"))
    })
    .await;
    let (result, tail) = match ran {
        Ok(r) => r,
        Err(e) => return Finished::error(format!("`{shown}`: {e}")),
    };
    match result {
        Ok(_) => Finished::with(Status::Passed, format!("`{shown}` exited 0"), tail),
        Err(RunError::Failed { output, .. }) if output.status >= 0 => {
            Finished::failed(format!("`{shown}` exited {}", output.status), tail)
        }
        Err(RunError::Failed { .. }) => {
            Finished::failed(format!("`{shown}` was killed by a signal"), tail)
        }
        Err(RunError::TimedOut { .. }) => Finished::timed_out(
            format!(
                "`{shown}` was still running after {}; it was stopped",
                seconds(timeout)
            ),
            tail,
        ),
        Err(RunError::Cancelled { .. }) => {
            Finished::with(Status::Error, format!("`{shown}` was cancelled"), tail)
        }
        Err(RunError::Spawn { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            Finished::error(format!("`{program}` not found"))
        }
        Err(RunError::Spawn { source, .. }) => {
            Finished::error(format!("could not start `{program}`: {source}"))
        }
    }
}

/// The values of the environment variables a check's templates read (`env.TOKEN`,
/// `env["TOKEN"]`): masked in all it reports, in addition to the run's own secrets.
#[derive(Debug, Default)]
pub(super) struct EnvSecrets(Vec<String>);

impl EnvSecrets {
    pub(super) fn of<'a>(templates: impl IntoIterator<Item = &'a String>) -> EnvSecrets {
        let mut values: Vec<String> = templates
            .into_iter()
            .flat_map(|t| Self::names(t))
            .filter_map(|name| std::env::var(name).ok())
            .filter(|v| !v.is_empty())
            .collect();
        // Longest first, so a value containing another is masked whole.
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        values.dedup();
        EnvSecrets(values)
    }

    /// Whether a template reads the environment at all.
    pub(super) fn reads_env(template: &str) -> bool {
        !Self::names(template).is_empty() || Self::pattern().is_match(template)
    }

    fn pattern() -> &'static regex::Regex {
        static RE: OnceLock<regex::Regex> = OnceLock::new();
        RE.get_or_init(|| {
            regex::Regex::new(
                r#"\benv\b\s*(?:\.\s*([A-Za-z_][A-Za-z0-9_]*)|\[\s*["']([^"']+)["']\s*\])?"#,
            )
            .expect("a valid regex")
        })
    }

    fn names(template: &str) -> Vec<String> {
        Self::pattern()
            .captures_iter(template)
            .filter_map(|c| c.get(1).or_else(|| c.get(2)))
            .map(|m| m.as_str().to_owned())
            .collect()
    }

    pub(super) fn mask(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for v in &self.0 {
            out = out.replace(v.as_str(), "***");
        }
        out
    }

    pub(super) fn mask_finished(&self, f: Finished) -> Finished {
        Finished {
            status: f.status,
            message: self.mask(&f.message),
            detail: self.mask(&f.detail),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_references_are_found() {
        assert_eq!(
            EnvSecrets::names("Bearer {{ env.TOKEN }} {{env['A_B']}} {{ forwards.api.url }}"),
            ["TOKEN", "A_B"]
        );
        assert!(EnvSecrets::reads_env("{{ env | tojson }}"));
        assert!(!EnvSecrets::reads_env(
            "{{ forwards.api.url }}/{{ environment }}"
        ));
    }
}
