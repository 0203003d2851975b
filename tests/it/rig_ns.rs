//! The rig's API server for tests that drive `stack::check` (and other library code) directly:
//! a client on context `stack-rig` with its own runtime, and a fresh namespace per test whose
//! cluster-scoped kwok objects (named after it) and itself are deleted on drop, without waiting.

use crate::support;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DynamicObject, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{json, Value};
use stack::check::{Ctx, Outcome};
use std::path::PathBuf;
use std::time::Duration;

pub struct Rig {
    pub bin_dir: PathBuf,
    pub kubeconfig: PathBuf,
    pub client: kube::Client,
    pub rt: tokio::runtime::Runtime,
}

pub fn rig() -> Option<Rig> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let found = support::rig_env().and_then(|env| {
        let kubeconfig = PathBuf::from(env.vars.get("KUBECONFIG").ok_or("no KUBECONFIG")?);
        let client = rt
            .block_on(stack::kube::client(&kubeconfig, "stack-rig"))
            .map_err(|e| format!("{e} (run `cargo xtask rig up`)"))?;
        Ok((kubeconfig, env.bin_dir, client))
    });
    let available = found.as_ref().map(|_| ()).map_err(Clone::clone);
    if !support::require("rig", available) {
        return None;
    }
    let (kubeconfig, bin_dir, client) = found.unwrap();
    Some(Rig {
        bin_dir,
        kubeconfig,
        client,
        rt,
    })
}

/// A fresh namespace and a project directory; the namespace and the cluster-scoped kwok objects
/// named after it are deleted when dropped (without waiting).
pub struct Ns<'a> {
    pub rig: &'a Rig,
    pub name: String,
    pub root: tempfile::TempDir,
}

impl Rig {
    pub fn namespace(&self, prefix: &str) -> Ns<'_> {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "{prefix}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        let object = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
        self.rt
            .block_on(namespaces.create(&PostParams::default(), &object))
            .unwrap();
        Ns {
            rig: self,
            name,
            root: tempfile::tempdir().unwrap(),
        }
    }

    pub fn kubectl(&self, args: &[&str]) -> std::process::Output {
        std::process::Command::new(self.bin_dir.join("kubectl"))
            .env("KUBECONFIG", &self.kubeconfig)
            .args(["--context", "stack-rig"])
            .args(args)
            .output()
            .unwrap()
    }
}

impl Drop for Ns<'_> {
    fn drop(&mut self) {
        for kind in ["clusterlogs", "clusterportforwards", "clusterexecs"] {
            let _ = self.rig.kubectl(&[
                "delete",
                kind,
                &self.name,
                "--ignore-not-found",
                "--wait=false",
            ]);
        }
        let _ = self
            .rig
            .kubectl(&["delete", "namespace", &self.name, "--wait=false"]);
    }
}

impl Ns<'_> {
    /// The API of `object`'s kind: cluster-scoped for kwok's `Cluster*` kinds, else this namespace.
    pub fn api(&self, object: &Value) -> Api<DynamicObject> {
        let kind = object["kind"].as_str().unwrap();
        let api_version = object["apiVersion"].as_str().unwrap();
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let gvk = GroupVersionKind::gvk(group, version, kind);
        // kube's plural guess for `ClusterLogs` is wrong; the CRD says `clusterlogs`.
        let resource = match kind {
            "ClusterLogs" => ApiResource::from_gvk_with_plural(&gvk, "clusterlogs"),
            _ => ApiResource::from_gvk(&gvk),
        };
        if kind.starts_with("Cluster") {
            Api::all_with(self.rig.client.clone(), &resource)
        } else {
            Api::namespaced_with(self.rig.client.clone(), &self.name, &resource)
        }
    }

    pub fn create(&self, object: Value) {
        let api = self.api(&object);
        let kind = object["kind"].as_str().unwrap().to_owned();
        let object: DynamicObject = serde_json::from_value(object).unwrap();
        self.rig
            .rt
            .block_on(api.create(&PostParams::default(), &object))
            .unwrap_or_else(|e| panic!("creating {kind}: {e}"));
    }

    /// A Ctx for this namespace (release `t`), logs counted from now.
    pub fn ctx(&self) -> Ctx {
        Ctx::new(
            self.rig.client.clone(),
            &self.name,
            "t",
            self.root.path().to_path_buf(),
            std::sync::Arc::new(stack::ops::events::Discard),
        )
    }

    /// Runs the checks written (YAML, the items of `test.checks`) in this project's stack.yaml,
    /// as `stack test` would, through `ctx`.
    pub fn run(&self, ctx: &Ctx, checks: &str) -> Vec<Outcome> {
        let indented: String = checks.lines().map(|l| format!("    {l}\n")).collect();
        let stack_yaml = self.root.path().join("stack.yaml");
        std::fs::write(&stack_yaml, format!("test:\n  checks:\n{indented}")).unwrap();
        let loaded = stack::check::load(self.root.path(), Some(&stack_yaml), &[])
            .unwrap_or_else(|e| panic!("loading the checks: {e:?}"));
        self.rig.rt.block_on(stack::check::run_all(
            &loaded,
            ctx,
            8,
            Duration::from_secs(120),
        ))
    }

    /// [`Ns::run`] with a fresh [`Ns::ctx`].
    pub fn run_checks(&self, checks: &str) -> Vec<Outcome> {
        self.run(&self.ctx(), checks)
    }
}
