//! Runs the system tools (`nft`, `iptables-restore`, `conntrack`), optionally inside a named
//! network namespace. The only place in this crate that starts processes.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::DataplaneError;

/// Where commands run: this process's namespace, or a named one (`ip netns exec NAME …`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Runner {
    netns: Option<String>,
}

/// What a finished command printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// Whether the command exited with status 0.
    pub success: bool,
    /// Its standard output (invalid UTF-8 replaced).
    pub stdout: String,
    /// Its standard error (invalid UTF-8 replaced), trimmed of surrounding whitespace.
    pub stderr: String,
}

impl Runner {
    /// Runs commands in the current network namespace.
    pub fn host() -> Runner {
        Runner { netns: None }
    }

    /// Runs commands inside the named network namespace (as created by `ip netns add`).
    pub fn in_netns(name: impl Into<String>) -> Runner {
        Runner {
            netns: Some(name.into()),
        }
    }

    /// The namespace commands run in, if not the current one.
    pub fn netns(&self) -> Option<&str> {
        self.netns.as_deref()
    }

    fn command(&self, program: &str, args: &[&str]) -> Command {
        match &self.netns {
            None => {
                let mut c = Command::new(program);
                c.args(args);
                c
            }
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, program]).args(args);
                c
            }
        }
    }

    /// Runs `program args…` with `stdin` as its input and returns its output, whatever the
    /// exit status.
    pub fn output(
        &self,
        program: &str,
        args: &[&str],
        stdin: &str,
    ) -> Result<Finished, DataplaneError> {
        let spawn_err = |source| DataplaneError::Spawn {
            program: program.to_string(),
            source,
        };
        let mut child = self
            .command(program, args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(spawn_err)?;
        if let Some(mut input) = child.stdin.take() {
            input.write_all(stdin.as_bytes()).map_err(spawn_err)?;
        }
        let out = child.wait_with_output().map_err(spawn_err)?;
        Ok(Finished {
            success: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }

    /// Like [`Runner::output`], but a non-zero exit is an error carrying the tool's stderr.
    pub fn run(&self, program: &str, args: &[&str], stdin: &str) -> Result<String, DataplaneError> {
        let out = self.output(program, args, stdin)?;
        if out.success {
            Ok(out.stdout)
        } else {
            Err(DataplaneError::Failed {
                command: format!("{program} {}", args.join(" ")),
                stderr: out.stderr,
            })
        }
    }
}
