//! The check kinds that reach the app (`http`, `command`, `logs`) against the rig (tier "rig"):
//! checks declared in a stack.yaml, loaded by `stack::check::load` and run by
//! `stack::check::run_all` through a `stack::check::Ctx`, as `stack test` runs them. The API
//! server and controllers are real; kwok plays the kubelet: a `ClusterPortForward` maps the pods'
//! port 8080 to an HTTP server this test runs on 127.0.0.1 (so `http` checks go through a real
//! in-process port-forward to a Service), and a `ClusterLogs` maps containers' logs to files.
//! Each test works in its own namespace.

use crate::rig_ns::{rig, Ns};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use serde_json::json;
use stack::check::{Outcome, Status};
use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

impl Ns<'_> {
    /// Test-side setup: waits until `n` pods labelled `app=<app>` run.
    fn running_pods(&self, app: &str, n: usize) -> Vec<String> {
        let pods: Api<Pod> = Api::namespaced(self.rig.client.clone(), &self.name);
        let params = ListParams::default().labels(&format!("app={app}"));
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let list = self.rig.rt.block_on(pods.list(&params)).unwrap();
            let running: Vec<String> = list
                .items
                .iter()
                .filter(|p| p.metadata.deletion_timestamp.is_none())
                .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
                .filter_map(|p| p.metadata.name.clone())
                .collect();
            if running.len() == n {
                return running;
            }
            assert!(
                Instant::now() < deadline,
                "{app}: wanted {n} running pods, have {running:?}"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

fn outcome<'a>(outcomes: &'a [Outcome], name: &str) -> &'a Outcome {
    outcomes
        .iter()
        .find(|o| o.name == name)
        .unwrap_or_else(|| panic!("no outcome `{name}` in {outcomes:#?}"))
}

#[track_caller]
fn assert_status(o: &Outcome, status: Status) {
    assert_eq!(
        o.status, status,
        "check `{}`: {}\n{}",
        o.name, o.message, o.detail
    );
}

/// The app the pods "run": an HTTP/1.1 server on 127.0.0.1 (one thread per connection).
/// `/healthz` answers JSON, `/down` 503, `/echo` the method, body and `X-Probe` header, and
/// `/socket` accepts a WebSocket upgrade.
fn app_server() -> u16 {
    let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in server.incoming().flatten() {
            std::thread::spawn(move || serve_one(conn));
        }
    });
    port
}

fn serve_one(mut conn: std::net::TcpStream) {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => data.extend_from_slice(&buf[..n]),
        }
    };
    let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
    let header = |name: &str| {
        head.lines()
            .find_map(|l| {
                let (n, v) = l.split_once(':')?;
                n.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| v.trim().to_owned())
            })
            .unwrap_or_default()
    };
    let length: usize = header("content-length").parse().unwrap_or(0);
    while data.len() < head_end + length {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => data.extend_from_slice(&buf[..n]),
        }
    }
    let body = String::from_utf8_lossy(&data[head_end..head_end + length]).into_owned();
    let mut first = head.lines().next().unwrap_or_default().split(' ');
    let (method, path) = (
        first.next().unwrap_or_default(),
        first.next().unwrap_or_default(),
    );
    let reply = |status: &str, content_type: &str, body: &str| {
        format!(
            "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nX-App: demo\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    let answer = match path {
        "/healthz" => reply(
            "200 OK",
            "application/json",
            r#"{"status":"ok","version":3,"checks":{"db":"up"}}"#,
        ),
        "/down" => reply(
            "503 Service Unavailable",
            "text/plain",
            "database unavailable: connection pool exhausted",
        ),
        "/echo" => reply(
            "200 OK",
            "text/plain",
            &format!("{method} {body} probe={}", header("x-probe")),
        ),
        "/socket" if header("upgrade").eq_ignore_ascii_case("websocket") => {
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: demo\r\n\r\n".to_owned()
        }
        "/socket" => reply("426 Upgrade Required", "text/plain", "websocket only"),
        _ => reply("404 Not Found", "text/plain", "no such page"),
    };
    let _ = conn.write_all(answer.as_bytes());
    let _ = conn.flush();
    // Hold an upgraded connection a moment, as a WebSocket server would.
    if answer.starts_with("HTTP/1.1 101") {
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Deployment `web` (app=web, container port 8080) behind Service `web` (80 → 8080), its pods'
/// port 8080 forwarded by kwok to `target` on 127.0.0.1; returns once a pod runs.
fn deploy_web(ns: &Ns<'_>, target: u16) {
    ns.create(json!({
        "apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "ClusterPortForward",
        "metadata": {"name": ns.name},
        "spec": {"selector": {"matchNamespaces": [ns.name]},
            "forwards": [{"ports": [8080], "target": {"address": "127.0.0.1", "port": target}}]}
    }));
    let labels = json!({"app": "web"});
    ns.create(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "labels": labels},
        "spec": {"replicas": 1, "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [
                {"name": "web", "image": "busybox:latest", "ports": [{"containerPort": 8080}]}]}}}
    }));
    ns.create(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": 8080}]}
    }));
    ns.running_pods("web", 1);
}

/// A port nothing listens on (it was free a moment ago).
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[test]
fn http_checks_through_a_port_forward_to_a_service_pass_fail_and_error_apart() {
    let Some(rig) = rig() else { return };
    let ns = rig.namespace("checks-http");
    deploy_web(&ns, app_server());
    let refused = closed_port();
    let mut ctx = ns.ctx();
    // A named forward (`test.forwards.web`), opened as the stage opens them.
    let named = rig
        .rt
        .block_on(stack::check::open_forward(
            &rig.client,
            stack::kube::forward::ForwardTarget::Service {
                namespace: ns.name.clone(),
                name: "web".into(),
            },
            80,
            std::sync::Arc::new(stack::ops::events::Discard),
            ctx.shutdown.child_token(),
        ))
        .unwrap();
    ctx.forwards.insert("web".into(), named);

    let outcomes = ns.run(
        &ctx,
        &format!(
            r#"- name: healthz
  timeout: 30s
  http:
    service: web
    port: 80
    path: /healthz
    expect:
      status: [200]
      contains: '"db":"up"'
      regex: 'version.:\s*3'
      json: {{/status: ok, /version: 3, /checks/db: up}}
- name: down
  timeout: 3s
  needs: [healthz]
  http: {{service: web, port: 80, path: /down}}
- name: down-accepted
  needs: [healthz]
  http: {{service: web, port: 80, path: /down, expect: {{status: [5xx], contains: pool exhausted}}}}
- name: body-mismatch
  timeout: 3s
  needs: [healthz]
  http: {{service: web, port: 80, path: /healthz, expect: {{contains: degraded}}}}
- name: json-mismatch
  timeout: 3s
  needs: [healthz]
  http: {{service: web, port: 80, path: /healthz, expect: {{json: {{/status: degraded, /version: 3}}}}}}
- name: json-absent
  timeout: 3s
  needs: [healthz]
  http: {{service: web, port: 80, path: /healthz, expect: {{json: {{/checks/cache: up}}}}}}
- name: websocket
  needs: [healthz]
  http: {{deployment: web, port: 8080, path: /socket, websocket: true}}
- name: ws-url
  needs: [healthz]
  http: {{url: '{{{{ forwards.web.ws }}}}/socket'}}
- name: ws-refused-upgrade
  timeout: 3s
  needs: [healthz]
  http: {{forward: web, path: /healthz, websocket: true}}
- name: echo
  needs: [healthz]
  http:
    forward: web
    path: /echo
    method: post
    body: 'release={{{{ release }}}}'
    headers: {{X-Probe: '{{{{ namespace }}}}'}}
    expect: {{contains: 'POST release=t probe={ns}'}}
- name: refused
  timeout: 3s
  http: {{url: 'http://127.0.0.1:{refused}/healthz'}}
- name: tls
  timeout: 3s
  http: {{url: 'https://127.0.0.1:26443/readyz'}}
- name: no-such-forward
  http: {{forward: nope}}
"#,
            ns = ns.name
        ),
    );
    let get = |name| outcome(&outcomes, name);

    let o = get("healthz");
    assert_status(o, Status::Passed);
    assert!(
        o.message.starts_with("GET http://127.0.0.1:")
            && o.message.ends_with("/healthz: status 200"),
        "{}",
        o.message
    );

    // Not as expected until the deadline: Failed, with the last response as evidence.
    let o = get("down");
    assert_status(o, Status::Failed);
    assert!(
        o.message
            .ends_with("/down: status 503, expected 2xx (still so after 3s)"),
        "{}",
        o.message
    );
    assert!(
        o.detail.starts_with("HTTP/1.1 503 Service Unavailable\n"),
        "{}",
        o.detail
    );
    assert!(
        o.detail.contains("content-type: text/plain"),
        "{}",
        o.detail
    );
    assert!(o.detail.contains("x-app: demo"), "{}", o.detail);
    assert!(
        o.detail
            .ends_with("\n\ndatabase unavailable: connection pool exhausted"),
        "{}",
        o.detail
    );
    assert_status(get("down-accepted"), Status::Passed);

    let o = get("body-mismatch");
    assert_status(o, Status::Failed);
    assert!(
        o.message
            .contains("/healthz: the body does not contain `degraded`"),
        "{}",
        o.message
    );
    assert!(o.detail.starts_with("HTTP/1.1 200 OK\n"), "{}", o.detail);
    assert!(
        o.detail.contains(r#"{"status":"ok","version":3"#),
        "{}",
        o.detail
    );

    let o = get("json-mismatch");
    assert_status(o, Status::Failed);
    assert!(
        o.message
            .contains(r#"/status is "ok", expected "degraded""#),
        "{}",
        o.message
    );
    let o = get("json-absent");
    assert_status(o, Status::Failed);
    assert!(
        o.message
            .contains(r#"/checks/cache is absent, expected "up""#),
        "{}",
        o.message
    );

    // WebSocket: the upgrade is answered with 101 (the default expectation), through an ad-hoc
    // forward to the Deployment, and through a ws:// URL templated from the named forward.
    let o = get("websocket");
    assert_status(o, Status::Passed);
    assert!(o.message.ends_with("/socket: status 101"), "{}", o.message);
    let o = get("ws-url");
    assert_status(o, Status::Passed);
    assert_eq!(
        o.message,
        format!("GET ws://127.0.0.1:{named}/socket: status 101")
    );
    let o = get("ws-refused-upgrade");
    assert_status(o, Status::Failed);
    assert!(
        o.message.contains("/healthz: status 200, expected 101"),
        "{}",
        o.message
    );

    let o = get("echo");
    assert_status(o, Status::Passed);
    assert!(
        o.message.starts_with("POST http://127.0.0.1:"),
        "{}",
        o.message
    );

    // No response at all: an error, told apart from a failed expectation.
    let o = get("refused");
    assert_status(o, Status::Error);
    assert_eq!(
        o.message,
        format!("GET http://127.0.0.1:{refused}/healthz: connection refused (still so after 3s)")
    );
    let o = get("tls");
    assert_status(o, Status::Error);
    assert!(
        o.message
            .starts_with("GET https://127.0.0.1:26443/readyz: TLS: "),
        "{}",
        o.message
    );
    let o = get("no-such-forward");
    assert_status(o, Status::Error);
    assert!(
        o.message
            .starts_with("no forward named `nope` in test.forwards (there are: web)"),
        "{}",
        o.message
    );
    ctx.shutdown.cancel();
}

#[test]
fn command_checks_report_exit_codes_output_tails_and_timeouts_and_mask_secrets() {
    let Some(rig) = rig() else { return };
    let ns = rig.namespace("checks-cmd");
    deploy_web(&ns, app_server());
    let secret = format!("tok-{}-s3cr3t", std::process::id());
    std::env::set_var("STACK_CHECKS_NET_TOKEN", &secret);
    std::fs::create_dir(ns.root.path().join("e2e")).unwrap();
    let pid_file = ns.root.path().join("e2e/sleeper.pid");
    let mut ctx = ns.ctx();
    let forwarded = rig
        .rt
        .block_on(stack::check::open_forward(
            &rig.client,
            stack::kube::forward::ForwardTarget::Service {
                namespace: ns.name.clone(),
                name: "web".into(),
            },
            80,
            std::sync::Arc::new(stack::ops::events::Discard),
            ctx.shutdown.child_token(),
        ))
        .unwrap();
    ctx.forwards.insert("api".into(), forwarded);

    let outcomes = ns.run(
        &ctx,
        r#"- name: suite
  command:
    run: [sh, -c, 'echo "base $BASE_URL in $(basename "$(pwd)")"; echo "release $RELEASE"']
    dir: e2e
    env:
      BASE_URL: '{{ forwards.api.url }}'
      RELEASE: '{{ release }}-{{ namespace }}'
- name: failing
  command:
    run: [sh, -c, 'for i in $(seq 1 150); do echo "line $i"; done; echo "token is $TOKEN"; sleep 0.3; echo "giving up" >&2; exit 3']
    env:
      TOKEN: 'Bearer {{ env.STACK_CHECKS_NET_TOKEN }}'
- name: sleeper
  timeout: 1s
  command:
    run: [sh, -c, 'echo $$ > sleeper.pid; echo started; exec sleep 30']
    dir: e2e
- name: missing
  command:
    run: [no-such-tool-for-checks, --version]
- name: undefined
  command:
    run: ['true']
    env:
      X: '{{ forwards.nope.url }}'
"#,
    );
    let get = |name| outcome(&outcomes, name);

    let o = get("suite");
    assert_status(o, Status::Passed);
    assert!(o.message.ends_with("exited 0"), "{}", o.message);
    assert_eq!(
        o.detail,
        format!(
            "base http://127.0.0.1:{forwarded} in e2e\nrelease t-{}",
            ns.name
        )
    );

    // A non-zero exit is a failure; the evidence is the last 100 lines, the secret masked.
    let o = get("failing");
    assert_status(o, Status::Failed);
    assert!(o.message.ends_with("exited 3"), "{}", o.message);
    let lines: Vec<&str> = o.detail.lines().collect();
    assert_eq!(lines.len(), 100, "{}", o.detail);
    assert_eq!(lines[0], "line 53");
    assert_eq!(
        lines[97..],
        ["line 150", "token is Bearer ***", "giving up"]
    );
    assert!(!format!("{o:?}").contains(&secret));

    // Killed at its deadline: timed out, and the process is gone.
    let o = get("sleeper");
    assert_status(o, Status::TimedOut);
    assert!(
        o.message
            .ends_with("was still running after 1s; it was stopped"),
        "{}",
        o.message
    );
    assert_eq!(o.detail, "started");
    assert!(o.seconds < 3.0, "{}", o.seconds);
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    let pid = pid.trim();
    assert!(!pid.is_empty());
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "process {pid} still exists after its check timed out"
    );

    let o = get("missing");
    assert_status(o, Status::Error);
    assert_eq!(o.message, "`no-such-tool-for-checks` not found");

    let o = get("undefined");
    assert_status(o, Status::Error);
    assert!(o.message.starts_with("env X: template"), "{}", o.message);
    ctx.shutdown.cancel();
}

/// A CRI-format log file: `(timestamp, text)` lines.
fn cri_log(path: &Path, lines: &[(&str, &str)]) {
    let text: String = lines
        .iter()
        .map(|(ts, l)| format!("{ts} stdout F {l}\n"))
        .collect();
    std::fs::write(path, text).unwrap();
}

#[test]
fn logs_checks_find_lines_of_init_containers_and_sidecars_since_the_deploy() {
    let Some(rig) = rig() else { return };
    let ns = rig.namespace("checks-logs");
    let mut ctx = ns.ctx();
    ctx.since = k8s_openapi::jiff::Timestamp::now();
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    let before = "2026-01-01T00:00:00.000000000Z";
    let dir = ns.root.path();
    cri_log(
        &dir.join("migrate.log"),
        &[
            (before, "migration failed: panic (an earlier release)"),
            (&now, "connecting to db"),
            (&now, "applied 3 migrations"),
        ],
    );
    cri_log(
        &dir.join("proxy.log"),
        &[(&now, "proxy starting"), (&now, "listening on :15001")],
    );
    let app_lines: Vec<String> = (1..=30).map(|i| format!("request {i} ok")).collect();
    let app: Vec<(&str, &str)> = app_lines
        .iter()
        .map(|l| (now.as_str(), l.as_str()))
        .collect();
    cri_log(&dir.join("app.log"), &app);
    ns.create(json!({
        "apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "ClusterLogs",
        "metadata": {"name": ns.name},
        "spec": {"selector": {"matchNamespaces": [ns.name]}, "logs": [
            {"containers": ["migrate"], "logsFile": dir.join("migrate.log")},
            {"containers": ["proxy"], "logsFile": dir.join("proxy.log")},
            {"containers": ["app"], "logsFile": dir.join("app.log")}
        ]}
    }));
    ns.create(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "api-0", "labels": {"app": "api"}},
        "spec": {
            "initContainers": [
                {"name": "migrate", "image": "busybox:latest"},
                {"name": "proxy", "image": "busybox:latest", "restartPolicy": "Always"}
            ],
            "containers": [{"name": "app", "image": "busybox:latest"}]
        }
    }));
    ns.running_pods("api", 1);

    let outcomes = ns.run(
        &ctx,
        r#"- name: migrated
  timeout: 20s
  logs: {selector: app=api, container: migrate, regex: 'applied \d+ migrations'}
- name: sidecar
  timeout: 20s
  logs: {selector: app=api, container: proxy, regex: 'listening on :\d+'}
- name: any-container
  timeout: 20s
  logs: {selector: app=api, regex: 'request 17 ok'}
- name: before-the-deploy
  timeout: 3s
  needs: [migrated]
  logs: {selector: app=api, container: migrate, regex: panic}
- name: never-logged
  timeout: 3s
  needs: [migrated]
  logs: {selector: app=api, regex: FATAL}
- name: no-pods
  timeout: 2s
  logs: {selector: app=nothing, regex: x}
- name: no-such-container
  timeout: 2s
  needs: [migrated]
  logs: {selector: app=api, container: nope, regex: x}
"#,
    );
    let get = |name| outcome(&outcomes, name);

    let o = get("migrated");
    assert_status(o, Status::Passed);
    assert_eq!(o.message, "api-0/migrate logged: applied 3 migrations");
    let o = get("sidecar");
    assert_status(o, Status::Passed);
    assert_eq!(o.message, "api-0/proxy logged: listening on :15001");
    let o = get("any-container");
    assert_status(o, Status::Passed);
    assert_eq!(o.message, "api-0/app logged: request 17 ok");

    // A line from before the deploy does not count.
    let o = get("before-the-deploy");
    assert_status(o, Status::Failed);
    assert_eq!(
        o.message,
        "no line of container `migrate` in api-0 matches /panic/ (still so after 3s)"
    );
    assert_eq!(
        o.detail,
        "== api-0/migrate (last 2 lines) ==\nconnecting to db\napplied 3 migrations"
    );

    // Not found: the evidence is the last 20 lines of every container.
    let o = get("never-logged");
    assert_status(o, Status::Failed);
    assert_eq!(
        o.message,
        "no line in the logs of api-0 matches /FATAL/ (still so after 3s)"
    );
    let expected_app: Vec<String> = (11..=30).map(|i| format!("request {i} ok")).collect();
    assert_eq!(
        o.detail,
        format!(
            "== api-0/migrate (last 2 lines) ==\nconnecting to db\napplied 3 migrations\n\
             == api-0/proxy (last 2 lines) ==\nproxy starting\nlistening on :15001\n\
             == api-0/app (last 20 lines) ==\n{}",
            expected_app.join("\n")
        )
    );

    let o = get("no-pods");
    assert_status(o, Status::Failed);
    assert_eq!(o.message, "no pod matches app=nothing (still so after 2s)");
    let o = get("no-such-container");
    assert_status(o, Status::Failed);
    assert!(
        o.message.starts_with(
            "no pod matching app=api has a container `nope` (containers: migrate, proxy, app)"
        ),
        "{}",
        o.message
    );
}
