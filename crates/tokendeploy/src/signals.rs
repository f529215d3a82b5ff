//! The signals that stop a command: Ctrl-C at a terminal, SIGTERM from a CI runner or a
//! process manager, SIGHUP when the terminal goes away. Each is answered the same way.

use anyhow::{Context, Result};
use tokio::signal::unix::{SignalKind, signal};

/// Waits for Ctrl-C, SIGTERM or SIGHUP; returns its name.
pub async fn stop() -> Result<&'static str> {
    let mut terminate = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
    let mut hang_up = signal(SignalKind::hangup()).context("listening for SIGHUP")?;
    tokio::select! {
        interrupted = tokio::signal::ctrl_c() => interrupted.map(|()| "Ctrl-C").context("listening for Ctrl-C"),
        _ = terminate.recv() => Ok("SIGTERM"),
        _ = hang_up.recv() => Ok("SIGHUP"),
    }
}
