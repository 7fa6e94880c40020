//! A real kube-apiserver and etcd for tests: starts `tests/kube/run DIR` (built from the
//! official Go modules, see `tests/kube/README.md`), waits for its `ready` line, and stops it
//! again on drop by closing its standard input.
//!
//! [`kube_tests_enabled`] is the gate every API-server test starts with: without Go (and no
//! harness binary built already) it prints why it skips — or fails when
//! `DUALSTACK_REQUIRE_KUBE_TESTS=1`, as CI sets.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::Duration;

use crate::TestbedError;

/// Env var that turns a skipped API-server test into a failure.
pub const REQUIRE_KUBE_ENV: &str = "DUALSTACK_REQUIRE_KUBE_TESTS";

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The repository root (this crate lives in `crates/dualstack-testbed`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn harness_binary() -> PathBuf {
    repo_root().join("target/kube/bin/kube-harness")
}

fn go_available() -> bool {
    Command::new("go")
        .arg("version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Call first in every API-server test: true when the harness can be built (Go is on the
/// PATH) or is built already. Otherwise prints `skipping <test>: …` and returns false — or
/// panics when `DUALSTACK_REQUIRE_KUBE_TESTS=1`.
pub fn kube_tests_enabled(test_name: &str) -> bool {
    if go_available() || harness_binary().exists() {
        return true;
    }
    let reason = format!(
        "{test_name}: needs Go to build kube-apiserver and etcd from their modules (tests/kube/)"
    );
    if std::env::var(REQUIRE_KUBE_ENV).ok().as_deref() == Some("1") {
        panic!("{REQUIRE_KUBE_ENV}=1 but cannot run {reason}");
    }
    eprintln!("skipping {reason}");
    false
}

/// A running API server (etcd + kube-apiserver), stopped when dropped.
#[derive(Debug)]
pub struct KubeApi {
    dir: PathBuf,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
}

impl KubeApi {
    /// Builds the harness if needed and starts a fresh API server in a new directory under
    /// `target/kube/runs/`; returns once `/readyz` answers.
    pub fn start() -> Result<KubeApi, TestbedError> {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = repo_root()
            .join("target/kube/runs")
            .join(format!("{}-{n}", std::process::id()));
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|source| TestbedError::Io {
                what: format!("remove {}", dir.display()),
                source,
            })?;
        }
        std::fs::create_dir_all(&dir).map_err(|source| TestbedError::Io {
            what: format!("create {}", dir.display()),
            source,
        })?;
        let run = repo_root().join("tests/kube/run");
        let mut child = Command::new(&run)
            .arg(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|source| TestbedError::Spawn {
                program: run.display().to_string(),
                source,
            })?;
        let stdin = child.stdin.take();
        let (tx, lines) = channel();
        if let Some(stdout) = child.stdout.take() {
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        let mut api = KubeApi {
            dir,
            child,
            stdin,
            lines,
        };
        // A cold build of the harness takes minutes; CI builds it before the tests.
        api.wait_ready(Duration::from_secs(1800))?;
        Ok(api)
    }

    /// Waits for the next `ready` line (after start, or after kube-apiserver was killed and
    /// the harness restarted it).
    pub fn wait_ready(&mut self, timeout: Duration) -> Result<(), TestbedError> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.trim() == "ready" => return Ok(()),
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => {
                    return Err(TestbedError::KubeApi(format!(
                        "not ready after {timeout:?}; logs in {}",
                        self.dir.display()
                    )));
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(TestbedError::KubeApi(format!(
                        "tests/kube/run exited before it was ready; logs in {}",
                        self.dir.display()
                    )));
                }
            }
        }
    }

    /// The harness directory (logs, certificates, kubeconfigs).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The cluster-admin kubeconfig.
    pub fn admin_kubeconfig(&self) -> PathBuf {
        self.dir.join("admin.kubeconfig")
    }

    /// The CA certificate the API server's serving certificate is signed by.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("pki/ca.crt")
    }

    /// `https://127.0.0.1:PORT`, read from the admin kubeconfig.
    pub fn server(&self) -> Result<String, TestbedError> {
        let text = self.read("admin.kubeconfig")?;
        text.lines()
            .find_map(|l| l.trim().strip_prefix("server: ").map(str::to_string))
            .ok_or_else(|| TestbedError::KubeApi("admin.kubeconfig has no server".into()))
    }

    /// The API server's port.
    pub fn port(&self) -> Result<u16, TestbedError> {
        let server = self.server()?;
        server
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| TestbedError::KubeApi(format!("no port in {server}")))
    }

    /// The current kube-apiserver process id (it changes when the harness restarts it).
    pub fn apiserver_pid(&self) -> Result<i32, TestbedError> {
        self.pid("apiserver.pid")
    }

    /// The etcd process id.
    pub fn etcd_pid(&self) -> Result<i32, TestbedError> {
        self.pid("etcd.pid")
    }

    fn pid(&self, file: &str) -> Result<i32, TestbedError> {
        let text = self.read(file)?;
        text.trim()
            .parse()
            .map_err(|_| TestbedError::KubeApi(format!("{file} holds {text:?}")))
    }

    fn read(&self, file: &str) -> Result<String, TestbedError> {
        let path = self.dir.join(file);
        std::fs::read_to_string(&path).map_err(|source| TestbedError::Io {
            what: format!("read {}", path.display()),
            source,
        })
    }

    /// Runs kubectl as cluster-admin; fails with its stderr on a non-zero exit.
    pub fn kubectl(&self, args: &[&str]) -> Result<String, TestbedError> {
        self.kubectl_with_input(args, None)
    }

    /// Runs kubectl as cluster-admin with `input` on its standard input (`apply -f -`).
    pub fn kubectl_with_input(
        &self,
        args: &[&str],
        input: Option<&str>,
    ) -> Result<String, TestbedError> {
        let out = self.run_kubectl(None, args, input)?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(TestbedError::Command {
                command: format!("kubectl {}", args.join(" ")),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            })
        }
    }

    /// Runs kubectl with another identity's kubeconfig (a ServiceAccount's, for RBAC tests):
    /// whether it succeeded, and its standard output and error together.
    pub fn kubectl_as(
        &self,
        kubeconfig: &Path,
        args: &[&str],
        input: Option<&str>,
    ) -> Result<(bool, String), TestbedError> {
        let out = self.run_kubectl(Some(kubeconfig), args, input)?;
        Ok((
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        ))
    }

    /// The kubectl wrapper (admin), or the harness's kubectl with `kubeconfig` when given.
    fn run_kubectl(
        &self,
        kubeconfig: Option<&Path>,
        args: &[&str],
        input: Option<&str>,
    ) -> Result<std::process::Output, TestbedError> {
        let wrapper = self.dir.join("kubectl");
        let spawn = |source| TestbedError::Spawn {
            program: wrapper.display().to_string(),
            source,
        };
        let mut command = Command::new(&wrapper);
        // The wrapper names the admin kubeconfig first; a later --kubeconfig wins.
        if let Some(path) = kubeconfig {
            command.arg(format!("--kubeconfig={}", path.display()));
        }
        let mut child = command
            .args(args)
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(spawn)?;
        if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
            stdin.write_all(text.as_bytes()).map_err(spawn)?;
        }
        child.wait_with_output().map_err(spawn)
    }

    /// Writes a kubeconfig that authenticates with `token` (a ServiceAccount token from the
    /// TokenRequest API) to `DIR/<name>.kubeconfig` and returns its path.
    pub fn kubeconfig_with_token(&self, name: &str, token: &str) -> Result<PathBuf, TestbedError> {
        let path = self.dir.join(format!("{name}.kubeconfig"));
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: harness\n  cluster:\n    server: {}\n    certificate-authority: {}\nusers:\n- name: {name}\n  user:\n    token: \"{token}\"\ncontexts:\n- name: {name}\n  context:\n    cluster: harness\n    user: {name}\ncurrent-context: {name}\n",
            self.server()?,
            self.ca_file().display()
        );
        std::fs::write(&path, text).map_err(|source| TestbedError::Io {
            what: format!("write {}", path.display()),
            source,
        })?;
        Ok(path)
    }
}

impl Drop for KubeApi {
    fn drop(&mut self) {
        // Closing standard input stops etcd and kube-apiserver; give them time, then kill.
        drop(self.stdin.take());
        let mut stopped = false;
        for _ in 0..300 {
            if let Ok(Some(_)) = self.child.try_wait() {
                stopped = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if !stopped {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        // The directory (etcd data, logs) is kept when a test failed, for its logs.
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
