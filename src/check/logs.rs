//! `logs` checks. PLACEHOLDER — replaced by the real kind.

use super::spec::LogsSpec;
use super::{Ctx, Finished};
use std::time::Duration;
use tokio::time::Instant;

pub async fn run(_spec: &LogsSpec, _ctx: &Ctx, _deadline: Instant, _timeout: Duration) -> Finished {
    Finished::error("not built yet")
}
