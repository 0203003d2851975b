//! Tidy checks over the source tree (rust-analyzer style): invariants ARCHITECTURE.md states,
//! kept true by ordinary tests.

use crate::support;
use std::path::{Path, PathBuf};

/// Every `.rs` file under `src/`, with its non-test code: lines before a `#[cfg(test)]` module,
/// comments dropped.
fn product_sources() -> Vec<(PathBuf, Vec<(usize, String)>)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(&support::project_root().join("src"), &mut files);
    files.sort();
    files
        .into_iter()
        .map(|f| {
            let text = std::fs::read_to_string(&f).unwrap();
            let lines = text
                .lines()
                .enumerate()
                .take_while(|(_, l)| l.trim() != "#[cfg(test)]")
                .filter(|(_, l)| !l.trim_start().starts_with("//"))
                .map(|(i, l)| (i + 1, l.to_owned()))
                .collect();
            let rel = f
                .strip_prefix(support::project_root())
                .unwrap()
                .to_path_buf();
            (rel, lines)
        })
        .collect()
}

fn offenders(allowed: &[&str], bad: impl Fn(&str) -> bool) -> Vec<String> {
    product_sources()
        .into_iter()
        .filter(|(f, _)| !allowed.iter().any(|a| f == Path::new(a)))
        .flat_map(|(f, lines)| {
            lines
                .into_iter()
                .filter(|(_, l)| bad(l))
                .map(move |(n, l)| format!("{}:{n}: {}", f.display(), l.trim()))
        })
        .collect()
}

#[test]
fn paths_under_dot_stack_are_named_only_in_the_state_module() {
    let found = offenders(&["src/state.rs"], |l| {
        l.contains("\".stack") || l.contains(".stack/")
    });
    assert!(
        found.is_empty(),
        "name these paths in src/state.rs:\n{}",
        found.join("\n")
    );
}

#[test]
fn files_are_written_through_the_state_module() {
    // One atomic write (temp + fsync + rename): a plain `fs::write` can leave half a file.
    let found = offenders(&["src/state.rs"], |l| {
        l.contains("fs::write(") || l.contains("File::create(")
    });
    assert!(
        found.is_empty(),
        "use stack::state::write_atomic:\n{}",
        found.join("\n")
    );
}

#[test]
fn kube_flags_are_built_only_by_the_release_layer() {
    // helm's --kube-context and kubectl's --context: only src/release builds them, so no call can
    // forget them and fall back to the user's current context.
    let found = offenders(&["src/release/mod.rs"], |l| {
        l.contains("\"--kube-context\"") || l.contains("\"--context\"")
    });
    assert!(
        found.is_empty(),
        "build kube calls with stack::release::KubeTarget:\n{}",
        found.join("\n")
    );
    // --kubeconfig also appears as kind's own flag (where kind writes credentials).
    let found = offenders(&["src/release/mod.rs", "src/ops/cluster/kind.rs"], |l| {
        l.contains("\"--kubeconfig\"")
    });
    assert!(
        found.is_empty(),
        "build kube calls with stack::release::KubeTarget:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_process_has_one_tokio_runtime() {
    let found = offenders(&["src/rt.rs"], |l| {
        l.contains("runtime::Builder") || l.contains("Runtime::new")
    });
    assert!(
        found.is_empty(),
        "build no runtime outside src/rt.rs (use crate::rt::block_on / until_cancelled):\n{}",
        found.join("\n")
    );
}

#[test]
fn only_ui_prints() {
    let found = offenders(&[], |l| {
        ["println!(", "eprintln!(", "print!(", "eprint!("]
            .iter()
            .any(|m| l.contains(m))
    })
    .into_iter()
    .filter(|o| !o.starts_with("src/ui/") && !o.starts_with("src/main.rs"))
    .collect::<Vec<_>>();
    assert!(
        found.is_empty(),
        "ops and building blocks never print (emit an event or return a report):\n{}",
        found.join("\n")
    );
}
