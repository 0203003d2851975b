//! `existing`: a cluster stack did not create, named by a kubeconfig context the project allows.
//! `up` checks that the context exists in the (explicit) kubeconfig file and that the API server
//! answers; it creates nothing, and `down` removes nothing.

use super::{ChangeReport, Host, StatusReport, Target};
use crate::error::StackError;
use crate::ops::plan::Step;
use crate::tool::Tool;

fn readyz(t: &Target, host: &Host) -> anyhow::Result<Result<(), String>> {
    let kubectl = host.tool(Tool::Kubectl)?;
    let out = host
        .runner
        .output(&t.kubectl(&kubectl).args(["get", "--raw", "/readyz"]))?;
    Ok(if out.success() {
        Ok(())
    } else {
        Err(super::first_line(&out.stderr))
    })
}

pub fn plan_up(t: &Target, host: &Host, report: &mut ChangeReport) -> anyhow::Result<Vec<Step>> {
    if !t.kubeconfig_has_context() {
        return Err(StackError::config(
            None,
            format!("context `{}` is not in {}", t.context, t.kubeconfig),
            "fix `cluster.context` in stack.yaml, or point KUBECONFIG at the file that has it",
        )
        .into());
    }
    if let Err(why) = readyz(t, host)? {
        return Err(StackError::Unreachable {
            what: format!("the cluster of context `{}`", t.context),
            hint: format!(
                "`kubectl get --raw /readyz` said: {why} — check the cluster and your credentials"
            ),
        }
        .into());
    }
    report.notes.push(format!(
        "provider `existing`: {} answers; stack creates nothing (no local registry)",
        t.context
    ));
    Ok(Vec::new())
}

pub fn status(t: &Target, host: &Host) -> anyhow::Result<StatusReport> {
    let mut report = StatusReport::new(t);
    if !report.context_in_kubeconfig {
        report.problem = Some(format!(
            "context `{}` is not in {}",
            t.context, t.kubeconfig
        ));
        return Ok(report);
    }
    report.exists = true;
    match super::kube_nodes(t, host)? {
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
