//! Choosing a target: by the name a user types, or the dev env `stack up` deploys.

use super::Target;
use crate::config::Project;
use crate::error::StackError;

/// The target named `wanted`: its full name, else the only target whose last part it is.
pub fn named<'t>(targets: &'t [Target], wanted: &str) -> Result<&'t Target, StackError> {
    if let Some(t) = targets.iter().find(|t| t.name == wanted) {
        return Ok(t);
    }
    let by_last: Vec<&Target> = targets
        .iter()
        .filter(|t| t.name.rsplit('/').next() == Some(wanted))
        .collect();
    match by_last.as_slice() {
        [one] => Ok(one),
        [] => {
            let names: Vec<&str> = targets.iter().map(|t| t.name.as_str()).collect();
            let hint = match crate::values::checks::did_you_mean(wanted, &names) {
                Some(best) => format!("did you mean `{best}`?"),
                None => format!("targets: {}", names.join(", ")),
            };
            Err(StackError::Usage {
                message: format!("no env target `{wanted}`"),
                hint: Some(hint),
            })
        }
        many => Err(StackError::Usage {
            message: format!("`{wanted}` names several targets"),
            hint: Some(format!(
                "say which: {}",
                many.iter()
                    .map(|t| t.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }),
    }
}

/// The dev target: `dev.env`, else `local/dev`, else the only `local/*` target.
pub fn dev(project: &Project) -> Result<Target, StackError> {
    let (targets, _) = super::targets(project, None)?;
    let names: Vec<&str> = targets.iter().map(|t| t.name.as_str()).collect();
    let wanted = project.config.dev.env.clone();
    let found = match &wanted {
        Some(w) => targets.iter().find(|t| t.name == *w),
        None => targets.iter().find(|t| t.name == "local/dev").or_else(|| {
            let local: Vec<&Target> = targets.iter().filter(|t| t.env_type == "local").collect();
            (local.len() == 1).then(|| local[0])
        }),
    };
    found.cloned().ok_or_else(|| {
        StackError::config(
            None,
            match wanted {
                Some(w) => format!("dev.env `{w}` is not a target"),
                None => "no dev env: there is no envs/local/dev.yaml and not exactly one envs/local/* target".to_owned(),
            },
            format!("set `dev.env` in stack.yaml to one of: {}", names.join(", ")),
        )
    })
}
