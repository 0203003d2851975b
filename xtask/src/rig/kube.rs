//! The Kubernetes part of the rig: etcd, the real kube-apiserver, kube-controller-manager and
//! kube-scheduler, and kwok in place of kubelet + container runtime (it marks nodes Ready, moves pods
//! to Running/Ready, and serves the kubelet API so logs, exec and port-forward reach local targets
//! described by its `Logs`/`Exec`/`PortForward` objects and their `Cluster*` variants).

use super::pki::Pki;
use super::process::{wait_for, Daemon};
use super::{
    http_get, Rig, PORT_APISERVER, PORT_ETCD, PORT_ETCD_PEER, PORT_KCM, PORT_KWOK, PORT_SCHEDULER,
};
use crate::tools;
use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::time::Duration;

pub const CONTEXT: &str = "stack-rig";
pub const NODE: &str = "stack-rig-node";

/// The kwok objects tests create to point a simulated pod's logs, exec and port-forward at local
/// files, commands and addresses.
const KWOK_CRDS: &[&str] = &[
    "logs",
    "clusterlogs",
    "execs",
    "clusterexecs",
    "portforwards",
    "clusterportforwards",
];
const KWOK_CRD_KINDS: &str = "Logs,ClusterLogs,Exec,ClusterExec,PortForward,ClusterPortForward";
/// kwok's stages (its own files, read from the module cache): nodes become Ready and keep a lease,
/// pods become Running/Ready, complete, and go away when deleted.
const KWOK_STAGES: &[&str] = &[
    "node/fast/node-initialize.yaml",
    "node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
    "pod/fast/pod-ready.yaml",
    "pod/fast/pod-complete.yaml",
    "pod/fast/pod-delete.yaml",
];

/// The rig's own stage (`rig/kwok-stages/pod-exit-code.yaml`): a Running pod annotated
/// `stack.dev/kwok-exit-code: "<n>"` ends as if its containers exited `<n>` — phase Succeeded for 0,
/// else Failed, each container `terminated` with that exit code. Its weight makes kwok choose it
/// over pod-complete (weight 0) for such pods, Job-owned or not.
const EXIT_CODE_ANNOTATION: &str = "stack.dev/kwok-exit-code";
const STACK_STAGES: &[(&str, &str)] = &[(
    "pod-exit-code.yaml",
    r#"apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: stack-pod-exit-code
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.annotations["ANNOTATION"]'
      operator: 'Exists'
    - key: '.metadata.deletionTimestamp'
      operator: 'DoesNotExist'
    - key: '.status.phase'
      operator: 'In'
      values:
      - 'Running'
  weight: 10000
  next:
    statusTemplate: |
      {{ $now := Now }}
      {{ $code := index .metadata.annotations "ANNOTATION" }}
      conditions:
      - lastTransitionTime: {{ $now | Quote }}
        status: "True"
        type: Initialized
      - lastTransitionTime: {{ $now | Quote }}
        status: "False"
        reason: PodCompleted
        type: Ready
      - lastTransitionTime: {{ $now | Quote }}
        status: "False"
        reason: PodCompleted
        type: ContainersReady
      containerStatuses:
      {{ range .spec.containers }}
      - image: {{ .image | Quote }}
        name: {{ .name | Quote }}
        ready: false
        restartCount: 0
        started: false
        state:
          terminated:
            exitCode: {{ $code }}
            finishedAt: {{ $now | Quote }}
            reason: {{ if eq $code "0" }}Completed{{ else }}Error{{ end }}
            startedAt: {{ $now | Quote }}
      {{ end }}
      phase: {{ if eq $code "0" }}Succeeded{{ else }}Failed{{ end }}
"#,
)];

pub fn daemons(rig: &Rig) -> [Daemon; 5] {
    [
        "etcd",
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kwok",
    ]
    .map(|n| Daemon::new(&rig.state, n))
}

pub fn up(rig: &Rig, pki: &Pki) -> Result<()> {
    let [etcd, apiserver, kcm, scheduler, kwok] = daemons(rig);
    write_kubeconfig(rig, pki)?;

    if etcd.running_pid().is_none() {
        let data = rig.state.join("etcd");
        let client = format!("http://127.0.0.1:{PORT_ETCD}");
        let peer = format!("http://127.0.0.1:{PORT_ETCD_PEER}");
        let mut cmd = rig.tools.command(rig.tools.bin("etcd"));
        cmd.arg("--name=stack-rig")
            .arg(format!("--data-dir={}", data.display()))
            .arg(format!("--listen-client-urls={client}"))
            .arg(format!("--advertise-client-urls={client}"))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster=stack-rig={peer}"))
            // A throwaway test store: durability across power loss does not matter, speed does.
            .arg("--unsafe-no-fsync")
            .arg("--log-level=warn");
        etcd.spawn(cmd)?;
    }
    wait_for("etcd", Duration::from_secs(30), || etcd_healthy(&etcd))?;

    if apiserver.running_pid().is_none() {
        let mut cmd = rig.tools.command(rig.tools.bin("kube-apiserver"));
        cmd.arg(format!("--etcd-servers=http://127.0.0.1:{PORT_ETCD}"))
            .arg("--bind-address=127.0.0.1")
            .arg("--advertise-address=127.0.0.1")
            .arg(format!("--secure-port={PORT_APISERVER}"))
            .arg(format!(
                "--tls-cert-file={}",
                pki.cert("apiserver").display()
            ))
            .arg(format!(
                "--tls-private-key-file={}",
                pki.key("apiserver").display()
            ))
            .arg(format!("--client-ca-file={}", pki.ca_cert().display()))
            .arg(format!("--token-auth-file={}", pki.token_file().display()))
            .arg("--authorization-mode=RBAC")
            .arg(format!(
                "--service-account-key-file={}",
                pki.dir.join("sa.pub").display()
            ))
            .arg(format!(
                "--service-account-signing-key-file={}",
                pki.dir.join("sa.key").display()
            ))
            .arg("--service-account-issuer=https://kubernetes.default.svc.cluster.local")
            .arg("--service-cluster-ip-range=10.96.0.0/16")
            .arg("--allow-privileged=true")
            // The `kubernetes` Service would need a non-loopback endpoint; nothing in the rig uses it.
            .arg("--endpoint-reconciler-type=none")
            // kwok's kubelet endpoint: 127.0.0.1 (the node's InternalIP) at the node's kubelet port.
            .arg("--kubelet-preferred-address-types=InternalIP")
            .arg(format!(
                "--kubelet-client-certificate={}",
                pki.cert("kwok").display()
            ))
            .arg(format!(
                "--kubelet-client-key={}",
                pki.key("kwok").display()
            ))
            .arg("--profiling=false")
            // Every request, at Metadata level (who, verb, resource, user agent): the safety
            // measurements count mutating requests made through a forbidden identity.
            .arg(format!(
                "--audit-policy-file={}",
                audit_policy(rig)?.display()
            ))
            .arg(format!("--audit-log-path={}", rig.audit_log().display()))
            .arg("--audit-log-format=json")
            .arg("--audit-log-maxbackup=1")
            .arg("--audit-log-maxsize=200");
        apiserver.spawn(cmd)?;
    }
    wait_for("kube-apiserver", Duration::from_secs(90), || {
        ensure_alive(&apiserver)?;
        kubectl(rig, &["get", "--raw", "/readyz"]).map(|_| ())
    })?;

    let kubeconfig = rig.kubeconfig();
    if kcm.running_pid().is_none() {
        let mut cmd = rig.tools.command(rig.tools.bin("kube-controller-manager"));
        cmd.arg(format!("--kubeconfig={}", kubeconfig.display()))
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--secure-port={PORT_KCM}"))
            .arg("--leader-elect=false")
            .arg(format!(
                "--service-account-private-key-file={}",
                pki.dir.join("sa.key").display()
            ))
            .arg(format!("--root-ca-file={}", pki.ca_cert().display()))
            // The node is simulated: when kwok, starved of CPU on a loaded 2-core machine, renews
            // its lease late, the node must not be declared NotReady (its pods would be marked
            // not ready, and kwok's fast stages never make a Running pod Ready again).
            .arg("--node-monitor-grace-period=1h")
            .arg("--profiling=false");
        kcm.spawn(cmd)?;
    }
    if scheduler.running_pid().is_none() {
        let mut cmd = rig.tools.command(rig.tools.bin("kube-scheduler"));
        cmd.arg(format!("--kubeconfig={}", kubeconfig.display()))
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--secure-port={PORT_SCHEDULER}"))
            .arg("--leader-elect=false")
            .arg("--profiling=false");
        scheduler.spawn(cmd)?;
    }

    let kwok_src = kwok_source()?;
    let crds: Vec<String> = KWOK_CRDS
        .iter()
        .map(|c| {
            kwok_src
                .join(format!("kustomize/crd/bases/kwok.x-k8s.io_{c}.yaml"))
                .display()
                .to_string()
        })
        .collect();
    let mut apply = vec!["apply", "--server-side", "--force-conflicts"];
    for crd in &crds {
        apply.extend(["-f", crd.as_str()]);
    }
    kubectl(rig, &apply)?;
    kubectl(
        rig,
        &[
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd",
            "--all",
        ],
    )?;

    if kwok.running_pid().is_none() {
        let mut cmd = rig.tools.command(rig.tools.bin("kwok"));
        cmd.arg(format!("--kubeconfig={}", kubeconfig.display()))
            .arg("--manage-all-nodes=false")
            .arg("--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake")
            .arg("--node-ip=127.0.0.1")
            .arg(format!("--node-port={PORT_KWOK}"))
            .arg(format!("--server-address=127.0.0.1:{PORT_KWOK}"))
            .arg(format!("--tls-cert-file={}", pki.cert("kwok").display()))
            .arg(format!(
                "--tls-private-key-file={}",
                pki.key("kwok").display()
            ))
            .arg(format!("--enable-crds={KWOK_CRD_KINDS}"));
        for stage in KWOK_STAGES {
            cmd.arg(format!(
                "--config={}",
                kwok_src.join("kustomize/stage").join(stage).display()
            ));
        }
        let stages = rig.state.join("kwok-stages");
        std::fs::create_dir_all(&stages)?;
        for (file, text) in STACK_STAGES {
            let path = stages.join(file);
            std::fs::write(&path, text.replace("ANNOTATION", EXIT_CODE_ANNOTATION))?;
            cmd.arg(format!("--config={}", path.display()));
        }
        // Keep `~/.kwok/kwok.yaml` (a developer's own kwok settings) out of the rig.
        cmd.env("HOME", rig.state.join("kwok-home"));
        std::fs::create_dir_all(rig.state.join("kwok-home"))?;
        kwok.spawn(cmd)?;
    }

    let node = rig.state.join("node.yaml");
    std::fs::write(&node, node_manifest())?;
    kubectl(rig, &["apply", "-f", &node.display().to_string()])?;
    wait_for("the kwok node", Duration::from_secs(90), || {
        ensure_alive(&kwok)?;
        kubectl(
            rig,
            &[
                "wait",
                "--for=condition=Ready",
                "--timeout=5s",
                &format!("node/{NODE}"),
            ],
        )
        .map(|_| ())
    })?;
    // Pods need the `default` ServiceAccount, which the controller manager creates.
    wait_for(
        "the default ServiceAccount",
        Duration::from_secs(60),
        || {
            ensure_alive(&kcm)?;
            kubectl(rig, &["get", "serviceaccount", "default", "-n", "default"]).map(|_| ())
        },
    )?;
    Ok(())
}

fn ensure_alive(d: &Daemon) -> Result<()> {
    if d.running_pid().is_none() {
        bail!(
            "{} exited; last lines of {}:\n{}",
            d.name,
            d.log_file.display(),
            d.log_tail()
        );
    }
    Ok(())
}

pub fn etcd_healthy(etcd: &Daemon) -> Result<()> {
    ensure_alive(etcd)?;
    let (code, body) = http_get(&format!("127.0.0.1:{PORT_ETCD}"), "/health")?;
    if code != 200 || !body.contains("true") {
        bail!("etcd /health answered {code}: {body}");
    }
    Ok(())
}

/// Health of each Kubernetes component, as shown by `rig status`.
pub fn health(rig: &Rig, name: &str) -> Result<String> {
    match name {
        "etcd" => etcd_healthy(&Daemon::new(&rig.state, "etcd")).map(|_| "healthy".into()),
        "kube-apiserver" => {
            kubectl(rig, &["get", "--raw", "/readyz"]).map(|s| format!("/readyz {}", s.trim()))
        }
        "kwok" => kubectl(
            rig,
            &[
                "get",
                "node",
                NODE,
                "-o",
                "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
            ],
        )
        .map(|s| format!("node {NODE} Ready={}", s.trim())),
        _ => Ok("running".into()),
    }
}

pub fn kubectl(rig: &Rig, args: &[&str]) -> Result<String> {
    let out = rig
        .tools
        .command(rig.tools.bin("kubectl"))
        .arg(format!("--kubeconfig={}", rig.kubeconfig().display()))
        .args(args)
        .output()
        .context("running kubectl")?;
    if !out.status.success() {
        bail!(
            "kubectl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn audit_policy(rig: &Rig) -> Result<std::path::PathBuf> {
    let path = rig.state.join("audit-policy.yaml");
    std::fs::write(
        &path,
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n- level: Metadata\n",
    )?;
    Ok(path)
}

/// A kubeconfig that invites mistakes: its current context `prod` and a `kind-prod` context (not
/// stack's) both reach the rig as the forbidden identity.
fn write_forbidden_kubeconfig(rig: &Rig, pki: &Pki) -> Result<()> {
    let text = format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: prod\nclusters:\n- name: rig\n  cluster:\n    \
         server: https://127.0.0.1:{PORT_APISERVER}\n    certificate-authority: {ca}\nusers:\n- name: forbidden\n  \
         user:\n    token: {token}\ncontexts:\n- name: prod\n  context:\n    cluster: rig\n    user: forbidden\n\
         - name: kind-prod\n  context:\n    cluster: rig\n    user: forbidden\n",
        ca = pki.ca_cert().display(),
        token = pki.forbidden_token()?,
    );
    std::fs::write(rig.forbidden_kubeconfig(), text)?;
    Ok(())
}

fn write_kubeconfig(rig: &Rig, pki: &Pki) -> Result<()> {
    write_forbidden_kubeconfig(rig, pki)?;
    let text = format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: {CONTEXT}\nclusters:\n- name: {CONTEXT}\n  cluster:\n    \
         server: https://127.0.0.1:{PORT_APISERVER}\n    certificate-authority: {ca}\nusers:\n- name: stack-rig-admin\n  \
         user:\n    token: {token}\ncontexts:\n- name: {CONTEXT}\n  context:\n    cluster: {CONTEXT}\n    \
         user: stack-rig-admin\n    namespace: default\n",
        ca = pki.ca_cert().display(),
        token = pki.token()?,
    );
    std::fs::write(rig.kubeconfig(), text)?;
    Ok(())
}

/// kwok's source in the Go module cache, for its CRDs and stage files (read at run time, never
/// copied into this repository).
fn kwok_source() -> Result<PathBuf> {
    let pin = tools::pins()?
        .into_iter()
        .find(|p| p.name == "kwok")
        .context("xtask/pins.txt pins no kwok")?;
    let module = pin.module.trim_end_matches("/cmd/kwok");
    Ok(PathBuf::from(
        tools::go_mod_download(module, &pin.version)?.dir,
    ))
}

fn node_manifest() -> String {
    format!(
        r#"apiVersion: v1
kind: Node
metadata:
  name: {NODE}
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
  labels:
    type: kwok
    kubernetes.io/hostname: {NODE}
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    kubernetes.io/role: agent
    node-role.kubernetes.io/agent: ""
status:
  # kwok would fill these from --node-ip, but does not on this version; the API server needs the
  # InternalIP to reach kwok's kubelet endpoint for logs, exec and port-forward.
  addresses:
  - type: InternalIP
    address: 127.0.0.1
  - type: Hostname
    address: {NODE}
  allocatable:
    cpu: "32"
    memory: 256Gi
    pods: "110"
  capacity:
    cpu: "32"
    memory: 256Gi
    pods: "110"
"#
    )
}
