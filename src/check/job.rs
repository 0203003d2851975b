//! `job` checks. PLACEHOLDER — replaced by the real kind.

use super::spec::JobSpec;
use super::{Ctx, Finished};
use std::time::Duration;
use tokio::time::Instant;

pub async fn run(_spec: &JobSpec, _ctx: &Ctx, _deadline: Instant, _timeout: Duration) -> Finished {
    Finished::error("not built yet")
}
