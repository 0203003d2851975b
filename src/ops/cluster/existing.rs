//! `existing`: a cluster stack did not create, named by a kubeconfig context the project allows.
//! `up` checks that the context exists in the (explicit) kubeconfig file and that the API server
//! is ready (`/readyz`, through the API); it creates nothing, and `down` removes nothing.

use super::{ChangeReport, Host, StatusReport, Target};
use crate::error::StackError;
use crate::ops::plan::Step;

pub fn plan_up(t: &Target, _host: &Host, report: &mut ChangeReport) -> anyhow::Result<Vec<Step>> {
    if !t.kubeconfig_has_context() {
        return Err(StackError::config(
            None,
            format!("context `{}` is not in {}", t.context, t.kubeconfig),
            "fix `cluster.context` in stack.yaml, or point KUBECONFIG at the file that has it",
        )
        .into());
    }
    // An API server that does not answer, or refuses the credentials, is the client's error.
    let ready = crate::rt::until_cancelled("asking the API server whether it is ready", async {
        let client = t.api().client().await?;
        Ok::<_, StackError>(crate::kube::readyz(&client).await)
    })??;
    if let Err(why) = ready {
        return Err(StackError::Unreachable {
            what: format!("the cluster of context `{}`", t.context),
            hint: format!("{why} — check the cluster and your credentials"),
        }
        .into());
    }
    report.notes.push(format!(
        "provider `existing`: {} answers; stack creates nothing (no local registry)",
        t.context
    ));
    Ok(Vec::new())
}

pub fn status(t: &Target, _host: &Host) -> anyhow::Result<StatusReport> {
    let mut report = StatusReport::new(t);
    if !report.context_in_kubeconfig {
        report.problem = Some(format!(
            "context `{}` is not in {}",
            t.context, t.kubeconfig
        ));
        return Ok(report);
    }
    report.exists = true;
    match super::kube_nodes(t)? {
        Ok(nodes) => {
            report.reachable = Some(true);
            report.nodes = nodes;
        }
        Err(why) => {
            report.reachable = Some(false);
            report.problem = Some(why);
        }
    }
    Ok(report)
}
