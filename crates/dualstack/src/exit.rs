//! Exit codes and error reporting at the binary edge.
//!
//! * `0` — success;
//! * `1` — the command ran and found problems (failed checks, findings of severity error);
//! * `2` — bad input: an argument, a file or an environment variable could not be used.
//!   Nothing was changed in the kernel or the cluster.

use std::process::ExitCode;

/// The outcome of a subcommand that did not fail outright.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything is fine.
    Ok,
    /// The command worked but reports problems (exit 1).
    Problems,
}

/// An error that means "the input was bad" (exit 2) rather than "something broke" (exit 1).
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Shorthand for returning a [`UsageError`] from a subcommand.
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UsageError(message.into()))
}

/// Prints the error chain (if any) and maps the result to the process exit code.
pub fn report(result: anyhow::Result<Outcome>) -> ExitCode {
    match result {
        Ok(Outcome::Ok) => ExitCode::SUCCESS,
        Ok(Outcome::Problems) => ExitCode::from(1),
        Err(err) => {
            let bad_input = err
                .chain()
                .any(|e| e.downcast_ref::<UsageError>().is_some());
            eprintln!("error: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::from(if bad_input { 2 } else { 1 })
        }
    }
}
