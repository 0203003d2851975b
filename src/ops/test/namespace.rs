//! The test namespace: created and labelled when missing, its UID recorded; removed later only
//! when stack created it (record present, label present, same UID). A namespace that existed
//! before is never deleted (today's glue deletes it before every run).

use super::profile::Plan;
use crate::kube::object::ObjectRef;
use crate::ops::plan::{Exec, Step};
use ::kube::api::{Api, DeleteParams};
use k8s_openapi::api::core::v1::Namespace;

/// How long a namespace left terminating by the previous run may take to go.
const TERMINATING_WAIT: std::time::Duration = std::time::Duration::from_secs(120);

/// The label on namespaces stack created.
const OWNED: &str = "dev.stack.owned";

/// Creates the namespace when it does not exist; returns whether it did.
pub fn ensure(exec: &Exec, plan: &Plan, client: &::kube::Client) -> anyhow::Result<bool> {
    let api: Api<Namespace> = Api::all(client.clone());
    let existing =
        crate::rt::until_cancelled("reading the namespace", api.get_opt(&plan.namespace))?
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot read namespace {}: {}",
                    plan.namespace,
                    crate::kube::wait::api_message(&e)
                )
            })?;
    if let Some(ns) = existing {
        let terminating =
            ns.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Terminating");
        if !terminating {
            return Ok(false);
        }
        // The previous run's namespace is still being removed (a namespace's objects go first):
        // deploying into it would fail, so wait for it to be gone, then create it afresh.
        let gone = crate::rt::until_cancelled("waiting for the old namespace to go", async {
            let deadline = tokio::time::Instant::now() + TERMINATING_WAIT;
            while tokio::time::Instant::now() < deadline {
                if matches!(api.get_opt(&plan.namespace).await, Ok(None)) {
                    return true;
                }
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            }
            false
        })?;
        if !gone {
            anyhow::bail!(
                "namespace {} is still terminating after {}s; wait for it (`kubectl get namespace {}`) or name another namespace (test.<profile>.namespace)",
                plan.namespace,
                TERMINATING_WAIT.as_secs(),
                plan.namespace
            );
        }
    }
    let object = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": plan.namespace,
            "labels": { OWNED: "true", "dev.stack.release": plan.release },
        },
    });
    let at = plan.target.api();
    let record = serde_json::json!({ "namespace": plan.namespace, "context": plan.target.context, "uid": "" });
    exec.execute(&[
        Step::apply("create the test namespace", at.clone(), object, false),
        Step::record_uid(
            "record the namespace stack created (its UID)",
            record_path(plan),
            record,
            "uid",
            at,
            ObjectRef::new("v1", "Namespace", None, &plan.namespace),
        ),
    ])?;
    Ok(true)
}

fn record_path(plan: &Plan) -> std::path::PathBuf {
    crate::state::State::new(&plan.target.root)
        .namespace_record(&plan.target.context, &plan.namespace)
}

/// Deletes the namespace when stack created this very one; forgets a stale record otherwise.
pub fn remove_if_ours(exec: &Exec, plan: &Plan, client: &::kube::Client) -> anyhow::Result<bool> {
    let path = record_path(plan);
    let Some(recorded) = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|r| r["uid"].as_str().map(str::to_owned))
    else {
        return Ok(false);
    };
    let api: Api<Namespace> = Api::all(client.clone());
    let live = crate::rt::until_cancelled("reading the namespace", api.get_opt(&plan.namespace))?
        .map_err(|e| {
        anyhow::anyhow!(
            "cannot read namespace {}: {}",
            plan.namespace,
            crate::kube::wait::api_message(&e)
        )
    })?;
    let ours = live.as_ref().is_some_and(|ns| {
        ns.metadata.uid.as_deref() == Some(recorded.as_str())
            && ns
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(OWNED))
                .map(String::as_str)
                == Some("true")
    });
    if !ours {
        // Gone, or re-created by someone else since: not ours to delete.
        exec.remove(
            "forget the namespace record (the namespace is not the one stack created)",
            &path,
        )?;
        return Ok(false);
    }
    if exec.api_step(
        "remove the test namespace stack created",
        &format!("delete namespace {} (uid {recorded})", plan.namespace),
    ) {
        let params = DeleteParams {
            preconditions: Some(::kube::api::Preconditions {
                uid: Some(recorded.clone()),
                resource_version: None,
            }),
            ..DeleteParams::background()
        };
        if let Err(e) = crate::rt::until_cancelled(
            "removing the namespace",
            api.delete(&plan.namespace, &params),
        )? {
            exec.fail_last();
            anyhow::bail!(
                "cannot delete namespace {}: {}",
                plan.namespace,
                crate::kube::wait::api_message(&e)
            );
        }
    }
    exec.remove("forget the namespace record", &path)?;
    Ok(true)
}
