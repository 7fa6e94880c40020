//! SIGINT/SIGTERM handling for the demo: installed before the first namespace exists, so a
//! Ctrl-C leads to a clean removal instead of the default "die at once". The demo checks
//! [`Interrupt::check`] between steps (each step takes milliseconds) and unwinds normally.

use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};

use anyhow::{Context as _, bail};
use tokio::signal::unix::{SignalKind, signal};

/// Records the first SIGINT or SIGTERM.
#[derive(Debug, Clone)]
pub struct Interrupt {
    received: Arc<AtomicI32>,
}

const SIGINT: i32 = 2;
const SIGTERM: i32 = 15;

impl Interrupt {
    /// Installs the handlers; a background thread records the first signal.
    pub fn install() -> anyhow::Result<Interrupt> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .context("starting the signal handler")?;
        let (mut term, mut int) = runtime.block_on(async {
            anyhow::Ok((
                signal(SignalKind::terminate()).context("listening for SIGTERM")?,
                signal(SignalKind::interrupt()).context("listening for SIGINT")?,
            ))
        })?;
        let received = Arc::new(AtomicI32::new(0));
        let flag = received.clone();
        std::thread::spawn(move || {
            let number = runtime.block_on(async {
                tokio::select! {
                    _ = term.recv() => SIGTERM,
                    _ = int.recv() => SIGINT,
                }
            });
            flag.store(number, Ordering::SeqCst);
            // Later signals are swallowed by the still-registered handlers: the removal
            // that is under way finishes.
            runtime.block_on(async {
                loop {
                    tokio::select! {
                        _ = term.recv() => {},
                        _ = int.recv() => {},
                    }
                }
            });
        });
        Ok(Interrupt { received })
    }

    /// The signal received so far, if any (`SIGINT` or `SIGTERM`).
    pub fn received(&self) -> Option<&'static str> {
        match self.received.load(Ordering::SeqCst) {
            SIGINT => Some("SIGINT"),
            SIGTERM => Some("SIGTERM"),
            _ => None,
        }
    }

    /// An error once a signal has arrived, so the caller unwinds and removes what it built.
    pub fn check(&self) -> anyhow::Result<()> {
        match self.received() {
            Some(signal) => bail!("interrupted by {signal}"),
            None => Ok(()),
        }
    }

    /// Blocks until a signal arrives (the kept backends' main loop).
    pub fn wait(&self) {
        while self.received().is_none() {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}
