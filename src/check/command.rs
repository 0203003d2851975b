//! `command` checks. PLACEHOLDER — replaced by the real kind.

use super::spec::CommandSpec;
use super::{Ctx, Finished};
use std::time::Duration;
use tokio::time::Instant;

pub async fn run(_spec: &CommandSpec, _ctx: &Ctx, _deadline: Instant, _timeout: Duration) -> Finished {
    Finished::error("not built yet")
}
