//! The process's one tokio runtime, and cancellation.
//!
//! Every async call (bollard, kube-rs, port-forwards, log followers) runs on [`runtime`]; sync code
//! enters it with [`block_on`], or [`until_cancelled`] where the user may be waiting (a build, a
//! rollout, a sync). [`install_ctrl_c`] turns the first Ctrl-C into a cancellation every phase
//! honours within a second — `until_cancelled` futures stop at once, the Runner kills its child
//! (`tool::RealRunner` polls the token every 50 ms) — and a second Ctrl-C into an immediate exit.

use crate::error::StackError;
use std::future::Future;
use std::sync::OnceLock;
use tokio::runtime::Runtime;
use tokio_util::sync::CancellationToken;

/// The runtime (multi-threaded, two workers: the machines stack targets are laptops and CI runners).
pub fn runtime() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("stack-rt")
            .enable_all()
            .build()
            .expect("the tokio runtime starts")
    })
}

/// Runs `f` to completion on the process runtime (from sync code only).
pub fn block_on<F: Future>(f: F) -> F::Output {
    runtime().block_on(f)
}

/// The process-wide cancellation (Ctrl-C). Clones observe the same token.
pub fn token() -> CancellationToken {
    static TOKEN: OnceLock<CancellationToken> = OnceLock::new();
    TOKEN.get_or_init(CancellationToken::new).clone()
}

pub fn cancelled() -> bool {
    token().is_cancelled()
}

/// Runs `f` on the runtime unless the user cancels first: then `f` is dropped (its work stops at
/// its next await) and the error is [`StackError::Cancelled`].
pub fn until_cancelled<T, F>(what: &str, f: F) -> Result<T, StackError>
where
    F: Future<Output = T>,
{
    let token = token();
    block_on(async {
        tokio::select! {
            biased;
            () = token.cancelled() => Err(StackError::Cancelled { during: what.to_owned() }),
            out = f => Ok(out),
        }
    })
}

/// First Ctrl-C (or SIGTERM, as CI runners and `timeout` send): cancel everything (each phase
/// stops and cleans up); a second one exits with 130 at once.
pub fn install_ctrl_c() {
    runtime().spawn(async {
        let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        else {
            return;
        };
        for round in 0..2 {
            tokio::select! {
                r = tokio::signal::ctrl_c() => if r.is_err() { return },
                _ = term.recv() => {}
            }
            if round == 0 {
                token().cancel();
            } else {
                std::process::exit(130);
            }
        }
    });
}
