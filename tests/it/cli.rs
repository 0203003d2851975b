//! Conventions users expect from a Rust CLI: completions, --color, --version with the revision.

use crate::support;
use std::process::Command;

fn stack(args: &[&str]) -> std::process::Output {
    Command::new(support::stack_bin())
        .current_dir(support::project_root())
        .args(args)
        .env_remove("NO_COLOR")
        .output()
        .unwrap()
}

#[test]
fn completions_for_every_shell() {
    for (shell, marker) in [
        ("bash", "complete -F _stack"),
        ("zsh", "#compdef stack"),
        ("fish", "complete -c stack"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let out = stack(&["completions", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains(marker),
            "{shell}: {}",
            &text[..text.len().min(200)]
        );
        assert!(text.contains("validate"), "{shell} completes subcommands");
    }
    assert_eq!(stack(&["completions", "tcsh"]).status.code(), Some(2));
}

#[test]
fn color_is_forced_or_refused_by_flag_and_auto_follows_the_terminal() {
    let esc = |args: &[&str]| {
        let out = stack(args);
        assert_eq!(out.status.code(), Some(0));
        out.stdout.contains(&0x1b)
    };
    // stdout is a pipe here: auto means no colour; always forces it; never refuses it.
    assert!(!esc(&["validate", "envs"]));
    assert!(esc(&["validate", "envs", "--color", "always"]));
    assert!(!esc(&["validate", "envs", "--color", "never"]));
}

#[test]
fn version_names_the_revision() {
    let out = stack(&["--version"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let re = regex::Regex::new(
        r"^stack \d+\.\d+\.\d+ \(([0-9a-f]{7,} \d{4}-\d{2}-\d{2}|unknown revision)\)\n$",
    )
    .unwrap();
    assert!(re.is_match(&text), "{text}");
}
