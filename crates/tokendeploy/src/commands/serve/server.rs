//! `serve`'s HTTP server, bounded in time and count so no client can hold it: a connection
//! must send a request's headers within [`Limits::header`] (also how long an idle keep-alive
//! connection may wait for its next request) and let its answers be written within
//! [`Limits::write`] (a client that stops reading is cut), at most [`Limits::connections`] are served at
//! once (the rest wait in the kernel's queue, and one line says the cap is reached), and
//! Ctrl-C, SIGTERM and SIGHUP stop it the same way: no new connections, those open given a
//! moment to finish.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::write_deadline::WriteDeadline;
use crate::display::say;

/// How long a client may take, and how many it may be.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// To send a request's headers, or, between requests, the next one's.
    pub header: Duration,
    /// To send a request's body, once its headers are in.
    pub body: Duration,
    /// For a write of an answer to go through: a client must read what it asked for.
    pub write: Duration,
    /// Connections served at once.
    pub connections: usize,
    /// How long connections still open at a stop may take to finish.
    pub drain: Duration,
}

impl Limits {
    /// A token request is a few hundred bytes: any honest client sends it in well under a
    /// second; 10 s forgives a slow network and cuts a slowloris.
    pub const SERVE: Limits = Limits {
        header: Duration::from_secs(10),
        body: Duration::from_secs(10),
        write: Duration::from_secs(10),
        connections: 512,
        drain: Duration::from_secs(5),
    };
}

/// Serves `app` on `listener` until `stop` (a signal) comes; returns its name.
pub async fn serve(
    listener: TcpListener,
    app: axum::Router,
    limits: Limits,
    stop: impl Future<Output = &'static str>,
) -> Result<&'static str> {
    let slots = Arc::new(Semaphore::new(limits.connections));
    let graceful = GracefulShutdown::new();
    let at_cap_told = AtomicBool::new(false);
    tokio::pin!(stop);
    let signal = loop {
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                if !at_cap_told.swap(true, Ordering::Relaxed) {
                    say(&format!(
                        "serve: {} connections open, the most it serves at once: new ones wait until one closes",
                        limits.connections
                    ));
                }
                tokio::select! {
                    slot = slots.clone().acquire_owned() => slot.context("the connection slots closed")?,
                    signal = &mut stop => break signal,
                }
            }
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // Out of file descriptors, or a connection reset before it was accepted:
                // the listener itself is fine.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            signal = &mut stop => break signal,
        };
        if slots.available_permits() > limits.connections / 2 {
            at_cap_told.store(false, Ordering::Relaxed);
        }
        let _ = stream.set_nodelay(true);
        let connection = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header)
            .serve_connection(
                TokioIo::new(WriteDeadline::new(stream, limits.write)),
                TowerToHyperService::new(app.clone()),
            );
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            // A client's error (reset, timeout, garbage) ends its connection, nothing more.
            let _ = connection.await;
            drop(slot);
        });
    };
    drop(listener);
    let _ = tokio::time::timeout(limits.drain, graceful.shutdown()).await;
    Ok(signal)
}
