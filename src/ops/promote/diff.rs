//! The plan as people review it: a unified diff per file (`git apply` reads it).

/// `--- a/<path>` / `+++ b/<path>` and hunks with three lines of context.
pub fn unified(path: &str, old: &str, new: &str) -> String {
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(&format!("a/{path}"), &format!("b/{path}"))
        .to_string()
}
