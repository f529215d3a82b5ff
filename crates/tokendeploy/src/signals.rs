//! The signals that stop a command: Ctrl-C at a terminal, SIGTERM from a CI runner or a
//! process manager, SIGHUP when the terminal goes away. Each is answered the same way.

use anyhow::{Context, Result};
use tokio::signal::unix::{SignalKind, signal};

/// Listens for Ctrl-C (SIGINT), SIGTERM and SIGHUP from now on (not from the first poll: a
/// signal arriving before then would kill the process the default way); the future gives the
/// name of the first that comes.
pub fn stop() -> Result<impl Future<Output = &'static str>> {
    let mut interrupt = signal(SignalKind::interrupt()).context("listening for Ctrl-C")?;
    let mut terminate = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
    let mut hang_up = signal(SignalKind::hangup()).context("listening for SIGHUP")?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => "Ctrl-C",
            _ = terminate.recv() => "SIGTERM",
            _ = hang_up.recv() => "SIGHUP",
        }
    })
}
