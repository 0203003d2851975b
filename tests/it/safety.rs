//! Issue 13's first measurement, "zero mutations on a context that is not allowed", measured by
//! the API server itself: the rig's kube-apiserver writes an audit log (Metadata level, every
//! request) and serves a second identity, `stack-rig-forbidden`, through a kubeconfig whose
//! current context is `prod` and which also holds a `kind-prod` context. Every command that can
//! touch a cluster runs with that kubeconfig as the user's, in configurations that invite mistakes;
//! afterwards the audit log must hold no mutating request (create, update, patch, delete,
//! deletecollection) by that identity — from stack itself (user agent `stack/…`) or any child
//! (helm, kubectl). One read-only command proves the log does see that identity.

use crate::support;
use std::path::Path;

const MUTATING: [&str; 5] = ["create", "update", "patch", "delete", "deletecollection"];
const FORBIDDEN_USER: &str = "stack-rig-forbidden";

fn audit_events(log: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[test]
fn no_command_mutates_through_a_context_it_was_not_allowed() {
    let env = support::rig_env();
    if !support::require("rig", env.as_ref().map(|_| ()).map_err(Clone::clone)) {
        return;
    }
    let env = env.unwrap();
    let (Some(forbidden), Some(audit)) = (
        env.vars.get("STACK_RIG_FORBIDDEN_KUBECONFIG").cloned(),
        env.vars.get("STACK_RIG_AUDIT_LOG").cloned(),
    ) else {
        panic!("the rig has no audit log or forbidden kubeconfig: `cargo xtask rig down && cargo xtask rig up`");
    };
    let audit = Path::new(&audit).to_path_buf();
    let dir = tempfile::tempdir().unwrap();
    for item in ["stack.yaml", "charts", "envs", "demo", "kind"] {
        support::copy(&support::project_root().join(item), &dir.path().join(item));
    }
    let reference = std::fs::read_to_string(dir.path().join("stack.yaml")).unwrap();
    let kind_section = "cluster:\n  provider: kind\n  name: stack\n  config: kind/cluster.yaml\n";
    assert!(reference.contains(kind_section), "stack.yaml changed shape");
    let with_cluster = |section: &str| reference.replace(kind_section, section);
    let live = "live:\n  chart:\n    reference: charts/app\n  targets:\n    live/prod:\n      context: prod\n    live/kind:\n      context: kind-prod\n";
    let run = |yaml: &str, args: &[&str]| -> std::process::Output {
        std::fs::write(dir.path().join("stack.yaml"), yaml).unwrap();
        std::fs::create_dir_all(dir.path().join("envs/live")).unwrap();
        for t in ["prod", "kind"] {
            std::fs::write(dir.path().join(format!("envs/live/{t}.yaml")), "").unwrap();
        }
        let mut c = std::process::Command::new(support::stack_bin());
        c.current_dir(dir.path())
            .envs(&env.vars)
            .env("KUBECONFIG", &forbidden)
            .env("NO_COLOR", "1")
            .args(args);
        let mut path = vec![env.bin_dir.clone()];
        path.extend(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        ));
        c.env("PATH", std::env::join_paths(path).unwrap());
        c.output().unwrap()
    };
    let before = audit_events(&audit).len();

    // (configuration, command line, why it must not mutate)
    let existing_prod = with_cluster("cluster:\n  provider: existing\n  context: prod\n");
    let existing_implicit = with_cluster("cluster:\n  provider: existing\n");
    let existing_kind_prod = with_cluster("cluster:\n  provider: existing\n  context: kind-prod\n");
    let existing_allowed = with_cluster(
        "cluster:\n  provider: existing\n  context: rig-allowed\n  allowedContexts: [rig-allowed]\n",
    );
    let kind = reference.clone() + live;
    let scenarios: Vec<(&str, String, Vec<&str>)> = vec![
        (
            "existing context `prod`, not allowlisted",
            existing_prod.clone(),
            vec!["up", "--once"],
        ),
        (
            "existing context `prod`, not allowlisted",
            existing_prod.clone(),
            vec!["down"],
        ),
        (
            "existing context `prod`, not allowlisted",
            existing_prod.clone(),
            vec!["down", "--cluster"],
        ),
        (
            "existing context `prod`, not allowlisted",
            existing_prod.clone(),
            vec!["cluster", "up"],
        ),
        (
            "existing context `prod`, not allowlisted",
            existing_prod.clone(),
            vec!["cluster", "down"],
        ),
        (
            "existing context `prod`, not allowlisted",
            existing_prod.clone(),
            vec!["build", "--deliver"],
        ),
        (
            "no context named: the current context is `prod`",
            existing_implicit.clone(),
            vec!["up", "--once"],
        ),
        (
            "no context named: the current context is `prod`",
            existing_implicit.clone(),
            vec!["down"],
        ),
        (
            "no context named: the current context is `prod`",
            existing_implicit.clone(),
            vec!["cluster", "up"],
        ),
        (
            "`kind-prod` of the user's kubeconfig (not stack's)",
            existing_kind_prod.clone(),
            vec!["up", "--once"],
        ),
        (
            "`kind-prod` of the user's kubeconfig (not stack's)",
            existing_kind_prod.clone(),
            vec!["down"],
        ),
        (
            "--context prod beside an allowlisted context",
            existing_allowed.clone(),
            vec!["up", "--once", "--context", "prod"],
        ),
        (
            "--context prod beside an allowlisted context",
            existing_allowed.clone(),
            vec!["down", "--context", "prod"],
        ),
        (
            "--context prod beside an allowlisted context",
            existing_allowed.clone(),
            vec!["cluster", "down", "--context", "prod"],
        ),
        (
            "--context kind-prod on a kind project",
            kind.clone(),
            vec!["up", "--once", "--context", "kind-prod"],
        ),
        (
            "--context kind-prod on a kind project",
            kind.clone(),
            vec!["cluster", "up", "--context", "kind-prod"],
        ),
        (
            "--context kind-prod on a kind project",
            kind.clone(),
            vec!["cluster", "down", "--context", "kind-prod"],
        ),
        (
            "live target on `prod`, not allowlisted",
            kind.clone(),
            vec!["live", "deploy", "live/prod", "--yes", "--version", "0.1.0"],
        ),
        (
            "live target on `prod`, not allowlisted",
            kind.clone(),
            vec!["live", "rollback", "live/prod", "--yes"],
        ),
        (
            "live target on `prod`, not allowlisted",
            kind.clone(),
            vec!["live", "recover", "live/prod", "--yes"],
        ),
        (
            "live target on `kind-prod` (never a live context)",
            kind.clone(),
            vec!["live", "deploy", "live/kind", "--yes", "--version", "0.1.0"],
        ),
        (
            "live target on `prod`, not allowlisted",
            kind.clone(),
            vec!["live", "verify", "live/prod", "--host", "127.0.0.1:9"],
        ),
        (
            "existing context `prod`, not allowlisted",
            existing_prod.clone(),
            vec!["test", "local"],
        ),
        (
            "existing context `prod`, not allowlisted",
            existing_prod.clone(),
            vec![
                "test",
                "ci",
                "--chart",
                "oci://127.0.0.1:25000/x/app",
                "--chart-version",
                "0.1.0",
            ],
        ),
        (
            "existing context `prod`, not allowlisted",
            existing_prod.clone(),
            vec!["test", "clean", "ci"],
        ),
        (
            "no context named: the current context is `prod`",
            existing_implicit.clone(),
            vec!["test", "local"],
        ),
        (
            "--context prod beside an allowlisted context",
            existing_allowed.clone(),
            vec![
                "test",
                "ci",
                "--context",
                "prod",
                "--chart",
                "oci://127.0.0.1:25000/x/app",
                "--chart-version",
                "0.1.0",
            ],
        ),
        (
            "--context kind-prod on a kind project",
            kind.clone(),
            vec!["test", "local", "--context", "kind-prod"],
        ),
    ];
    let mut refused = 0;
    for (why, yaml, args) in &scenarios {
        let o = run(yaml, args);
        // Refused (usage/config error) — never a success on a forbidden context.
        assert_ne!(
            o.status.code(),
            Some(0),
            "`stack {}` ({why}) succeeded:\n{}{}",
            args.join(" "),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        refused += 1;
    }
    // Read-only inspection of an explicit context is allowed: it shows in the log under the
    // forbidden identity, so the measurement below can see that identity at all.
    let o = run(&existing_prod, &["cluster", "status", "--format", "json"]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("\"context\": \"prod\""),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );

    // The API server flushes its log as it goes; give it a moment.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let (reads, mutations) = loop {
        let events: Vec<serde_json::Value> =
            audit_events(&audit).into_iter().skip(before).collect();
        let by_forbidden: Vec<&serde_json::Value> = events
            .iter()
            .filter(|e| e["user"]["username"] == FORBIDDEN_USER)
            .collect();
        let mutations: Vec<String> = by_forbidden
            .iter()
            .filter(|e| MUTATING.contains(&e["verb"].as_str().unwrap_or_default()))
            .map(|e| format!("{} {} by {}", e["verb"], e["requestURI"], e["userAgent"]))
            .collect();
        let reads = by_forbidden.len() - mutations.len();
        if reads > 0 || std::time::Instant::now() > deadline {
            break (reads, mutations);
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert!(
        reads > 0,
        "the audit log never showed the forbidden identity: the measurement is blind"
    );
    assert!(
        mutations.is_empty(),
        "mutating requests on a forbidden context: {mutations:#?}"
    );
    println!(
        "safety: {} scenarios refused ({} tried); audit log: {reads} read(s) and {} mutating request(s) by {FORBIDDEN_USER}",
        refused,
        scenarios.len(),
        mutations.len()
    );
}
