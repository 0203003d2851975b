//! Checks from stack.yaml (`test.checks`) and from check files (`test.files` globs), each with the
//! file:line:col of its definition, validated completely before anything runs: exactly one kind
//! per check, unique names, `needs:` that exist and form no cycle, durations, regexes and status
//! classes that parse. Every problem is a configuration error (exit 2) at its position.

use super::spec::{CheckSpec, DurationSpec, StatusSpec};
use super::Check;
use crate::error::StackError;
use crate::yaml::{self, Node, Origin, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Default per-check timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Every check of the project: those of stack.yaml first (in order), then each check file's
/// (files sorted by path, checks in order).
pub fn load(
    root: &Path,
    stack_yaml: Option<&Path>,
    files: &[String],
) -> Result<Vec<Check>, StackError> {
    let mut checks = Vec::new();
    if let Some(path) = stack_yaml {
        let text = read(path)?;
        let name: Arc<str> = Arc::from(crate::config::FILE_NAME);
        let doc = yaml::parse(&name, &text).map_err(StackError::from_parse)?;
        if let Some(list) = doc
            .root
            .value
            .as_map()
            .and_then(|m| m.get("test"))
            .and_then(|t| t.value.as_map())
            .and_then(|t| t.get("checks"))
        {
            checks.extend(items(list)?);
        }
    }
    for rel in check_files(root, files)? {
        let text = read(&root.join(&rel))?;
        checks.extend(parse_file(&Arc::from(rel.as_str()), &text)?);
    }
    validate(&checks)?;
    Ok(checks)
}

/// The checks of one check file (a list of checks, or a map with `checks:`), each located; not
/// yet validated against the others (names, needs).
pub fn parse_file(name: &Arc<str>, text: &str) -> Result<Vec<Check>, StackError> {
    let doc = yaml::parse(name, text).map_err(StackError::from_parse)?;
    let list = match &doc.root.value {
        Value::Map(m) => match m.get("checks") {
            Some(list) => list,
            None => {
                return Err(StackError::config(
                    Some(doc.root.origin.clone()),
                    "a check file holds a list of checks, or a map with `checks:`",
                    "write `checks:` followed by the list",
                ))
            }
        },
        Value::Null => return Ok(Vec::new()),
        _ => &doc.root,
    };
    items(list)
}

fn read(path: &Path) -> Result<String, StackError> {
    std::fs::read_to_string(path).map_err(|e| {
        StackError::config(
            None,
            format!("cannot read {}: {e}", path.display()),
            "check the path in `test.files`",
        )
    })
}

/// The files `test.files` globs match, relative to the root, sorted. A pattern that matches
/// nothing is an error (a typo would otherwise silently run no checks).
fn check_files(root: &Path, patterns: &[String]) -> Result<Vec<String>, StackError> {
    let mut found = BTreeSet::new();
    for pattern in patterns {
        let glob = globset::GlobBuilder::new(pattern)
            .literal_separator(true)
            .build()
            .map_err(|e| {
                StackError::config(
                    Some(crate::config::file_origin(crate::config::FILE_NAME)),
                    format!("test.files: `{pattern}` is not a valid glob: {e}"),
                    "use `*` within a directory and `**` across directories",
                )
            })?
            .compile_matcher();
        let mut matched = false;
        for entry in ignore::WalkBuilder::new(root)
            .hidden(false)
            .build()
            .flatten()
        {
            if !entry.file_type().is_some_and(|t| t.is_file()) {
                continue;
            }
            let Ok(rel) = entry.path().strip_prefix(root) else {
                continue;
            };
            if rel.starts_with(crate::state::DIR) {
                continue;
            }
            if glob.is_match(rel) {
                matched = true;
                found.insert(rel.to_string_lossy().into_owned());
            }
        }
        if !matched {
            return Err(StackError::config(
                Some(crate::config::file_origin(crate::config::FILE_NAME)),
                format!("test.files: `{pattern}` matches no file"),
                "fix the pattern (paths are relative to the project root)",
            ));
        }
    }
    Ok(found.into_iter().collect())
}

fn items(list: &Node) -> Result<Vec<Check>, StackError> {
    let Value::Seq(items) = &list.value else {
        return Err(StackError::config(
            Some(list.origin.clone()),
            format!("checks must be a list, found {}", list.value.type_name()),
            "write each check as a list item (`- name: …`)",
        ));
    };
    items.iter().map(item).collect()
}

fn item(node: &Node) -> Result<Check, StackError> {
    let spec: CheckSpec = serde_json::from_value(node.value.to_json()).map_err(|e| {
        let message = e.to_string();
        // serde names the offending key; point at it when it is one of this item's keys.
        let named = message
            .strip_prefix("unknown field `")
            .and_then(|rest| rest.split_once('`'))
            .map(|(key, _)| key);
        let origin = node
            .value
            .as_map()
            .zip(named)
            .and_then(|(m, key)| m.get(key))
            .map_or_else(|| node.origin.clone(), |n| n.origin.clone());
        StackError::config(
            Some(origin),
            format!("invalid check: {message}"),
            "see `stack schema` (test.checks) for every key",
        )
    })?;
    let at = |key: &str| -> Origin {
        node.value
            .as_map()
            .and_then(|m| m.get(key))
            .map_or_else(|| node.origin.clone(), |n| n.origin.clone())
    };
    let kinds: Vec<&str> = [
        ("ready", spec.ready.is_some()),
        ("assert", spec.assert.is_some()),
        ("absent", spec.absent.is_some()),
        ("http", spec.http.is_some()),
        ("logs", spec.logs.is_some()),
        ("command", spec.command.is_some()),
        ("job", spec.job.is_some()),
    ]
    .into_iter()
    .filter_map(|(k, set)| set.then_some(k))
    .collect();
    if kinds.len() != 1 {
        return Err(StackError::config(
            Some(node.origin.clone()),
            if kinds.is_empty() {
                format!("check `{}` names no kind", spec.name)
            } else {
                format!(
                    "check `{}` names {} kinds: {}",
                    spec.name,
                    kinds.len(),
                    kinds.join(", ")
                )
            },
            "give each check exactly one of: ready, assert, absent, http, logs, command, job",
        ));
    }
    let timeout = match &spec.timeout {
        None => DEFAULT_TIMEOUT,
        Some(d) => parse_duration(d).map_err(|m| {
            StackError::config(
                Some(at("timeout")),
                m,
                "write e.g. `30s`, `2m`, `1m30s` or `500ms`",
            )
        })?,
    };
    if let Some(http) = &spec.http {
        for s in &http.expect.status {
            parse_status(s).map_err(|m| {
                StackError::config(
                    Some(at("http")),
                    m,
                    "write a code (`200`), a class (`2xx`) or a range (`200-299`)",
                )
            })?;
        }
        if let Some(r) = &http.expect.regex {
            regex::Regex::new(r).map_err(|e| {
                StackError::config(
                    Some(at("http")),
                    format!("http.expect.regex: {e}"),
                    "fix the regular expression",
                )
            })?;
        }
        let targets = [
            http.url.is_some(),
            http.forward.is_some(),
            http.service.is_some() || http.deployment.is_some(),
        ]
        .into_iter()
        .filter(|t| *t)
        .count();
        if targets != 1 || (http.service.is_some() && http.deployment.is_some()) {
            return Err(StackError::config(
                Some(at("http")),
                format!("http check `{}` needs exactly one target", spec.name),
                "give `url`, `forward` (a test.forwards name), or `service`/`deployment` with `port`",
            ));
        }
        if (http.service.is_some() || http.deployment.is_some()) && http.port.is_none() {
            return Err(StackError::config(
                Some(at("http")),
                format!(
                    "http check `{}` forwards to a {} but names no port",
                    spec.name,
                    if http.service.is_some() {
                        "service"
                    } else {
                        "deployment"
                    }
                ),
                "add `port:` (the Service's port, or the container's)",
            ));
        }
    }
    if let Some(logs) = &spec.logs {
        regex::Regex::new(&logs.regex).map_err(|e| {
            StackError::config(
                Some(at("logs")),
                format!("logs.regex: {e}"),
                "fix the regular expression",
            )
        })?;
    }
    if let Some(cmd) = &spec.command {
        if cmd.run.is_empty() {
            return Err(StackError::config(
                Some(at("command")),
                "command.run is empty",
                "give the argv, e.g. `[go, test, ./tests/e2e]`",
            ));
        }
    }
    if let Some(job) = &spec.job {
        if job.file.is_some() == job.manifest.is_some() {
            return Err(StackError::config(
                Some(at("job")),
                format!(
                    "job check `{}` needs exactly one of `file` and `manifest`",
                    spec.name
                ),
                "name a manifest file, or write the Job inline under `manifest`",
            ));
        }
    }
    for (key, object) in [("assert", &spec.assert), ("absent", &spec.absent)] {
        if let Some(o) = object {
            let ok = o["apiVersion"].is_string()
                && o["kind"].is_string()
                && o["metadata"]["name"].is_string();
            if !ok {
                return Err(StackError::config(
                    Some(at(key)),
                    format!(
                        "{key} check `{}` must name apiVersion, kind and metadata.name",
                        spec.name
                    ),
                    "write the object's identity, then only the fields to compare",
                ));
            }
        }
    }
    Ok(Check {
        kind: kinds[0],
        origin: node.origin.clone(),
        timeout,
        spec,
    })
}

fn validate(checks: &[Check]) -> Result<(), StackError> {
    let mut names: BTreeMap<&str, &Origin> = BTreeMap::new();
    for c in checks {
        if let Some(first) = names.insert(&c.spec.name, &c.origin) {
            return Err(StackError::config(
                Some(c.origin.clone()),
                format!(
                    "check name `{}` is used twice (first at {first})",
                    c.spec.name
                ),
                "give every check a unique name",
            ));
        }
    }
    for c in checks {
        for need in &c.spec.needs {
            if !names.contains_key(need.as_str()) {
                let known: Vec<&str> = names.keys().copied().collect();
                let hint = match crate::values::checks::did_you_mean(need, &known) {
                    Some(best) => format!("did you mean `{best}`?"),
                    None => "name a check declared in stack.yaml or a check file".into(),
                };
                return Err(StackError::config(
                    Some(c.origin.clone()),
                    format!(
                        "check `{}` needs `{need}`, which is not a check",
                        c.spec.name
                    ),
                    hint,
                ));
            }
        }
    }
    // A cycle in needs would wait forever: found by depth-first search.
    let index: BTreeMap<&str, &Check> = checks.iter().map(|c| (c.spec.name.as_str(), c)).collect();
    fn visit<'a>(
        name: &'a str,
        index: &BTreeMap<&'a str, &'a Check>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Result<(), StackError> {
        if done.contains(name) {
            return Ok(());
        }
        if let Some(at) = path.iter().position(|n| *n == name) {
            let cycle: Vec<&str> = path[at..].iter().copied().chain([name]).collect();
            return Err(StackError::config(
                Some(index[name].origin.clone()),
                format!("checks need each other in a cycle: {}", cycle.join(" → ")),
                "remove one of these `needs:`",
            ));
        }
        path.push(name);
        for need in &index[name].spec.needs {
            visit(need, index, path, done)?;
        }
        path.pop();
        done.insert(name);
        Ok(())
    }
    let mut done = BTreeSet::new();
    for c in checks {
        visit(&c.spec.name, &index, &mut Vec::new(), &mut done)?;
    }
    Ok(())
}

/// `30s`, `2m`, `1m30s`, `500ms`, `1h`, or a number of seconds.
pub fn parse_duration(d: &DurationSpec) -> Result<Duration, String> {
    let text = match d {
        DurationSpec::Seconds(s) => return Ok(Duration::from_secs(*s)),
        DurationSpec::Text(t) => t.trim(),
    };
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let bad = || format!("`{text}` is not a duration");
    let mut total = Duration::ZERO;
    let mut rest = text;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        total += match unit {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n * 60),
            "h" => Duration::from_secs(n * 3600),
            _ => return Err(bad()),
        };
    }
    Ok(total)
}

/// An accepted status set: `(low, high)` inclusive.
pub fn parse_status(s: &StatusSpec) -> Result<(u16, u16), String> {
    let text = match s {
        StatusSpec::Code(c) => return Ok((*c, *c)),
        StatusSpec::Text(t) => t.trim(),
    };
    let code = |t: &str| t.parse::<u16>().ok().filter(|c| (100..=599).contains(c));
    if let Some(c) = code(text) {
        return Ok((c, c));
    }
    if let Some((lo, hi)) = text.split_once('-') {
        if let (Some(lo), Some(hi)) = (code(lo.trim()), code(hi.trim())) {
            if lo <= hi {
                return Ok((lo, hi));
            }
        }
    }
    let b = text.as_bytes();
    if b.len() == 3 && (b'1'..=b'5').contains(&b[0]) && b[1..].eq_ignore_ascii_case(b"xx") {
        let lo = u16::from(b[0] - b'0') * 100;
        return Ok((lo, lo + 99));
    }
    Err(format!("`{text}` is not an HTTP status, class or range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<Check>, StackError> {
        let name: Arc<str> = Arc::from("checks.yaml");
        let doc = yaml::parse(&name, text).unwrap();
        let checks = items(&doc.root)?;
        validate(&checks)?;
        Ok(checks)
    }

    fn err(text: &str) -> String {
        match parse(text) {
            Err(StackError::Config {
                origin, message, ..
            }) => {
                format!(
                    "{}: {message}",
                    origin.map(|o| o.to_string()).unwrap_or_default()
                )
            }
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn checks_keep_their_definition_line() {
        let checks = parse("- name: a\n  ready: deployment/api\n- name: b\n  needs: [a]\n  logs: {selector: app=x, regex: up}\n  timeout: 1m30s\n").unwrap();
        assert_eq!(checks.len(), 2);
        assert_eq!(checks[0].kind, "ready");
        assert_eq!(checks[1].origin.to_string(), "checks.yaml:3:3");
        assert_eq!(checks[1].timeout, Duration::from_secs(90));
        assert_eq!(checks[0].timeout, DEFAULT_TIMEOUT);
    }

    #[test]
    fn bad_checks_are_located() {
        assert_eq!(
            err("- name: a\n"),
            "checks.yaml:1:3: check `a` names no kind"
        );
        assert_eq!(
            err("- name: a\n  ready: deployment/x\n  logs: {selector: a=b, regex: x}\n"),
            "checks.yaml:1:3: check `a` names 2 kinds: ready, logs"
        );
        assert_eq!(
            err("- name: a\n  ready: deployment/x\n- name: a\n  ready: deployment/y\n"),
            "checks.yaml:3:3: check name `a` is used twice (first at checks.yaml:1:3)"
        );
        assert_eq!(
            err("- name: a\n  needs: [b]\n  ready: x/y\n- name: b\n  needs: [a]\n  ready: x/z\n"),
            "checks.yaml:1:3: checks need each other in a cycle: a → b → a"
        );
        assert!(err("- name: a\n  needs: [nope]\n  ready: x/y\n")
            .contains("needs `nope`, which is not a check"));
        assert!(err("- name: a\n  timeout: soon\n  ready: x/y\n")
            .starts_with("checks.yaml:2:3: `soon` is not a duration"));
        let e = err("- name: a\n  readdy: x/y\n");
        assert!(
            e.starts_with("checks.yaml:2:3: invalid check: unknown field `readdy`"),
            "{e}"
        );
        assert!(err("- name: a\n  http: {path: /}\n").contains("needs exactly one target"));
        assert!(err("- name: a\n  http: {service: api}\n").contains("names no port"));
        assert!(
            err("- name: a\n  http: {url: 'http://x', expect: {status: [2zz]}}\n")
                .contains("`2zz` is not an HTTP status")
        );
        assert!(err("- name: a\n  logs: {selector: a=b, regex: '('}\n").contains("logs.regex"));
        assert!(err("- name: a\n  assert: {kind: ConfigMap}\n")
            .contains("must name apiVersion, kind and metadata.name"));
        assert!(err("- name: a\n  job: {}\n").contains("exactly one of `file` and `manifest`"));
    }

    #[test]
    fn the_seed_check_file_of_every_kind_loads() {
        let text = include_str!("../../tests/fixtures/checks.yaml");
        let checks = parse_file(&Arc::from("checks.yaml"), text).unwrap();
        validate(&checks).unwrap();
        let kinds: Vec<&str> = checks.iter().map(|c| c.kind).collect();
        for kind in [
            "ready", "assert", "absent", "http", "logs", "command", "job",
        ] {
            assert!(kinds.contains(&kind), "{kind} missing: {kinds:?}");
        }
    }

    #[test]
    fn durations_and_statuses() {
        let d = |t: &str| parse_duration(&DurationSpec::Text(t.into()));
        assert_eq!(d("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(d("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(d("1h1s"), Ok(Duration::from_secs(3601)));
        assert_eq!(d("45"), Ok(Duration::from_secs(45)));
        assert!(d("").is_err() && d("m").is_err());
        assert!(d("5 s").is_err());
        let s = |t: &str| parse_status(&StatusSpec::Text(t.into()));
        assert_eq!(s("2xx"), Ok((200, 299)));
        assert_eq!(s("200-204"), Ok((200, 204)));
        assert_eq!(s("404"), Ok((404, 404)));
        assert!(s("6xx").is_err() && s("300-200").is_err());
    }
}
