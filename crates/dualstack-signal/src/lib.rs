//! SIGTERM and SIGINT, handled once for every long-running subcommand.
//!
//! [`Termination::listen`] installs handlers for both signals, so that from then on they are
//! recorded instead of killing the process at once: the controller and the agent stop
//! gracefully, the klipper entrypoint removes its table, the demo removes its namespaces.
//! A background thread (with its own small tokio runtime, so that no caller needs one) records
//! the first signal; later ones are swallowed, so a second Ctrl-C does not cut a clean-up short.
//!
//! The caller then asks in the way that suits it: [`Termination::received`] or
//! [`Termination::check`] between steps, [`Termination::wait`] to block, or
//! [`Termination::terminated`] in async code. [`shutdown_signal`] is the whole thing as one
//! future, for services that only need to know when to stop.

use std::fmt;
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use tokio::signal::unix::SignalKind;
use tokio::sync::watch;

/// A termination signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// `SIGTERM` (what Kubernetes and systemd send).
    Term,
    /// `SIGINT` (Ctrl-C).
    Int,
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Signal::Term => "SIGTERM",
            Signal::Int => "SIGINT",
        })
    }
}

/// Why the handlers could not be installed.
#[derive(Debug, thiserror::Error)]
pub enum SignalError {
    /// The runtime that listens for the signals could not be built.
    #[error("starting the signal handler: {0}")]
    Runtime(#[source] std::io::Error),
    /// The kernel refused a handler.
    #[error("listening for {signal}: {source}")]
    Listen {
        /// The signal whose handler was refused.
        signal: Signal,
        /// The kernel's error.
        #[source]
        source: std::io::Error,
    },
    /// The listening thread ended before it reported.
    #[error("the signal handler thread ended before it was ready")]
    ThreadEnded,
}

/// What [`Termination::check`] returns once a signal has arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("interrupted by {0}")]
pub struct Interrupted(pub Signal);

/// Installed SIGTERM/SIGINT handlers and the first signal they saw. Clones share it.
#[derive(Debug, Clone)]
pub struct Termination {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    received: Mutex<Option<Signal>>,
    arrived: Condvar,
    notify: watch::Sender<Option<Signal>>,
}

impl Shared {
    fn record(&self, signal: Signal) {
        let mut received = self.received.lock().unwrap_or_else(PoisonError::into_inner);
        if received.is_none() {
            *received = Some(signal);
            self.notify.send_replace(Some(signal));
            self.arrived.notify_all();
        }
    }
}

impl Termination {
    /// Installs the handlers; returns once both are in place. Safe to call from async code
    /// (the handlers live on their own thread).
    pub fn listen() -> Result<Termination, SignalError> {
        let (notify, _) = watch::channel(None);
        let shared = Arc::new(Shared {
            received: Mutex::new(None),
            arrived: Condvar::new(),
            notify,
        });
        let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(1);
        let recorder = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("dualstack-signal".into())
            .spawn(move || listen_on_this_thread(&recorder, &ready_tx))
            .map_err(SignalError::Runtime)?;
        ready_rx.recv().map_err(|_| SignalError::ThreadEnded)??;
        Ok(Termination { shared })
    }

    /// The first signal received so far, if any.
    pub fn received(&self) -> Option<Signal> {
        *self
            .shared
            .received
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// An error once a signal has arrived, so the caller unwinds (and removes what it built).
    pub fn check(&self) -> Result<(), Interrupted> {
        match self.received() {
            Some(signal) => Err(Interrupted(signal)),
            None => Ok(()),
        }
    }

    /// Blocks until a signal arrives (or returns the one that already has).
    pub fn wait(&self) -> Signal {
        let mut received = self
            .shared
            .received
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(signal) = *received {
                return signal;
            }
            received = self
                .shared
                .arrived
                .wait(received)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Resolves when a signal arrives (at once when one already has).
    pub async fn terminated(&self) -> Signal {
        let mut seen = self.shared.notify.subscribe();
        loop {
            if let Some(signal) = *seen.borrow_and_update() {
                return signal;
            }
            if seen.changed().await.is_err() {
                // The sender lives in `shared`, which `self` holds: this cannot happen, but a
                // future that never resolves is the honest answer if it did.
                std::future::pending::<()>().await;
            }
        }
    }
}

/// The listening thread: registers both handlers, reports that (or why not) on `ready`,
/// records the first signal and then swallows the rest for the life of the process.
fn listen_on_this_thread(
    shared: &Shared,
    ready: &std::sync::mpsc::SyncSender<Result<(), SignalError>>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            let _ = ready.send(Err(SignalError::Runtime(e)));
            return;
        }
    };
    runtime.block_on(async {
        let listen = |kind, signal| {
            tokio::signal::unix::signal(kind)
                .map_err(|source| SignalError::Listen { signal, source })
        };
        let (mut term, mut int) = match (
            listen(SignalKind::terminate(), Signal::Term),
            listen(SignalKind::interrupt(), Signal::Int),
        ) {
            (Ok(term), Ok(int)) => (term, int),
            (Err(e), _) | (_, Err(e)) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
        let _ = ready.send(Ok(()));
        loop {
            let signal = tokio::select! {
                _ = term.recv() => Signal::Term,
                _ = int.recv() => Signal::Int,
            };
            shared.record(signal);
        }
    });
}

/// Resolves on SIGTERM or SIGINT: the whole of [`Termination`] as one future, for services
/// (controller, agent) that only need to know when to stop. When the handlers cannot be
/// installed it says so and stops on Ctrl-C only.
pub async fn shutdown_signal() {
    match Termination::listen() {
        Ok(termination) => {
            termination.terminated().await;
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGTERM/SIGINT; stopping on Ctrl-C only");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
    tracing::info!("termination signal received");
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    /// Sends `signal` to this process, as `kill` from outside would.
    fn raise(signal: &str) {
        let status = std::process::Command::new("kill")
            .args(["-s", signal, &std::process::id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    #[test]
    fn names_the_signals_as_the_kernel_does() {
        assert_eq!(Signal::Term.to_string(), "SIGTERM");
        assert_eq!(Signal::Int.to_string(), "SIGINT");
        assert_eq!(
            Interrupted(Signal::Int).to_string(),
            "interrupted by SIGINT"
        );
    }

    // One test raises signals, so that no other test of this binary races it.
    #[test]
    fn records_the_first_signal_and_wakes_every_waiter() {
        let termination = Termination::listen().unwrap();
        assert_eq!(termination.received(), None);
        assert!(termination.check().is_ok());

        let blocked = {
            let t = termination.clone();
            std::thread::spawn(move || t.wait())
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let waiting = {
            let t = termination.clone();
            runtime.spawn(async move { t.terminated().await })
        };

        raise("TERM");
        assert_eq!(blocked.join().unwrap(), Signal::Term);
        assert_eq!(runtime.block_on(waiting).unwrap(), Signal::Term);

        // A later signal is swallowed and the first one stays the answer.
        raise("INT");
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert_eq!(termination.received(), Some(Signal::Term));
        assert_eq!(termination.check(), Err(Interrupted(Signal::Term)));
        assert_eq!(termination.wait(), Signal::Term);
    }
}
