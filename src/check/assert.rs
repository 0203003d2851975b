//! `assert` and `absent` checks. PLACEHOLDER — replaced by the real kind.

use super::{Ctx, Finished};
use std::time::Duration;
use tokio::time::Instant;

pub async fn run(_object: &serde_json::Value, _ctx: &Ctx, _deadline: Instant, _timeout: Duration) -> Finished {
    Finished::error("not built yet")
}

pub async fn absent(_object: &serde_json::Value, _ctx: &Ctx, _deadline: Instant, _timeout: Duration) -> Finished {
    Finished::error("not built yet")
}
