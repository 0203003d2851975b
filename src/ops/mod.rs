//! One module per stage; each builds its plan and does the work. Ops never print (they return
//! reports for `ui`) and never spawn processes except through a `tool::Runner`.

use crate::error::Outcome;

/// Every report says how its run ended: the one mapping from a report to an exit code
/// (0 clean, 1 findings); errors map through `StackError::exit_code`.
pub trait Report {
    fn outcome(&self) -> Outcome;
}

/// Findings when `bad`, else clean.
fn findings_if(bad: bool) -> Outcome {
    if bad {
        Outcome::Findings
    } else {
        Outcome::Clean
    }
}

impl Report for validate::Report {
    fn outcome(&self) -> Outcome {
        findings_if(self.has_errors())
    }
}

impl Report for values::Report {
    fn outcome(&self) -> Outcome {
        findings_if(!self.refusals.is_empty())
    }
}

impl Report for build::Report {
    fn outcome(&self) -> Outcome {
        findings_if(self.failed())
    }
}

impl Report for up::Report {
    fn outcome(&self) -> Outcome {
        findings_if(!self.ready())
    }
}

impl Report for live::VerifyReport {
    fn outcome(&self) -> Outcome {
        findings_if(!self.passed)
    }
}

impl Report for test::Report {
    fn outcome(&self) -> Outcome {
        findings_if(!self.passed())
    }
}

impl Report for up::DownReport {
    fn outcome(&self) -> Outcome {
        Outcome::Clean
    }
}

impl Report for cluster::ChangeReport {
    fn outcome(&self) -> Outcome {
        Outcome::Clean
    }
}

impl Report for cluster::StatusReport {
    fn outcome(&self) -> Outcome {
        findings_if(!self.exists || self.reachable == Some(false))
    }
}

impl Report for promote::Report {
    /// Promoted, or nothing to promote: both are done (refusals are errors, exit 2).
    fn outcome(&self) -> Outcome {
        Outcome::Clean
    }
}

impl Report for live::DeployReport {
    fn outcome(&self) -> Outcome {
        findings_if(!self.ok())
    }
}

/// Like `git diff --exit-code`: 1 when the upgrade would change something.
impl Report for live::DiffReport {
    fn outcome(&self) -> Outcome {
        findings_if(self.has_changes())
    }
}

impl Report for live::HistoryReport {
    fn outcome(&self) -> Outcome {
        Outcome::Clean
    }
}

impl Report for live::RecoverReport {
    fn outcome(&self) -> Outcome {
        Outcome::Clean
    }
}

impl Report for live::RollbackReport {
    fn outcome(&self) -> Outcome {
        Outcome::Clean
    }
}

/// 1 when a workflow file differs from what stack would write and was left alone (no --force).
impl Report for init::Report {
    fn outcome(&self) -> Outcome {
        findings_if(self.refused())
    }
}

impl Report for doctor::Report {
    fn outcome(&self) -> Outcome {
        findings_if(self.has_problems())
    }
}

pub mod build;
pub mod cluster;
pub mod doctor;
pub mod events;
pub(crate) mod git;
pub mod helm_registry;
pub mod init;
pub mod live;
pub mod plan;
pub mod promote;
pub mod publish;
pub mod test;
pub mod up;
pub mod validate;
pub mod values;
