//! Context safety: every command names its kubeconfig file and context explicitly, and mutating
//! commands refuse a context outside the allowlist (local `kind-*`/`k3d-*` plus `allowedContexts`).

use crate::error::StackError;

/// Contexts mutating commands may act on unless the project allows more.
pub const DEFAULT_ALLOWED: [&str; 2] = ["kind-*", "k3d-*"];

/// The allowlist in force: the local defaults, then the project's `allowedContexts`.
pub fn allowlist(allowed_contexts: &[String]) -> Vec<String> {
    let mut list: Vec<String> = DEFAULT_ALLOWED.iter().map(|s| s.to_string()).collect();
    for c in allowed_contexts {
        if !list.contains(c) {
            list.push(c.clone());
        }
    }
    list
}

/// Whether `context` matches an entry (exact, or a prefix when the entry ends with `*`).
pub fn is_allowed(context: &str, allowlist: &[String]) -> bool {
    allowlist.iter().any(|p| match p.strip_suffix('*') {
        Some(prefix) => context.starts_with(prefix),
        None => context == p,
    })
}

/// Refuses a mutating command on a context outside the allowlist (a usage error, exit 2).
pub fn check(context: &str, allowlist: &[String], action: &str) -> Result<(), StackError> {
    if is_allowed(context, allowlist) {
        return Ok(());
    }
    Err(StackError::Usage {
        message: if allowlist.is_empty() {
            format!(
                "refusing to {action} on context `{context}`: no context of your kubeconfig is allowed (cluster.allowedContexts is empty)"
            )
        } else {
            format!(
                "refusing to {action} on context `{context}`: it is not in the allowlist [{}]",
                allowlist.join(", ")
            )
        },
        hint: Some(format!(
            "if `{context}` really is a cluster stack may change, add it to `cluster.allowedContexts` in stack.yaml"
        )),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_globs() {
        let list = allowlist(&["dev-*".into(), "staging".into()]);
        assert!(is_allowed("kind-stack", &list));
        assert!(is_allowed("k3d-x", &list));
        assert!(is_allowed("dev-eu", &list));
        assert!(is_allowed("staging", &list));
        assert!(!is_allowed("staging-2", &list));
        assert!(!is_allowed("prod", &list));
        let err = check("prod", &list, "create a cluster").unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("`prod`"));
        assert!(err.to_string().contains("kind-*, k3d-*, dev-*, staging"));
    }
}
