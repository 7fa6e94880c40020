//! One throwaway network namespace: unique name, commands run inside it, removed on drop.

use std::fs::File;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use nix::sched::{CloneFlags, setns};

use crate::TestbedError;

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A network namespace we created (`ip netns add`), deleted again when dropped — also when a
/// test panics, because unwinding runs `Drop`.
///
/// Names are `ds<pid>-<counter>-<time>-<label>`, unique across parallel tests and processes,
/// and at most 15 characters of label so they stay readable in `ip netns list`.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates a namespace with loopback up. `label` (e.g. `node`) only helps humans.
    pub fn new(label: &str) -> Result<Netns, TestbedError> {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let label: String = label
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .take(15)
            .collect();
        let name = format!(
            "ds{}-{n}-{:04x}-{label}",
            std::process::id(),
            nanos & 0xffff
        );
        Netns::with_name(&name)
    }

    /// Creates a namespace with exactly this name (an error if it exists already), loopback
    /// up. For tools that must find their namespaces again by a fixed name or prefix, like
    /// `dualstack demo --cleanup`; tests use [`Netns::new`].
    pub fn with_name(name: &str) -> Result<Netns, TestbedError> {
        run("ip", &["netns", "add", name])?;
        let ns = Netns {
            name: name.to_string(),
        };
        // No duplicate address detection at all (link-local addresses included): a router
        // whose link-local address is still tentative sends neighbour solicitations from
        // `::`, which peers take for DAD probes, and forwarding stalls for seconds.
        ns.sysctl("net.ipv6.conf.default.accept_dad", "0")?;
        ns.sysctl("net.ipv6.conf.all.accept_dad", "0")?;
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// Gives the namespace up without deleting it (it outlives this process) and returns its
    /// name. Removing it is then up to the caller (`ip netns delete`).
    pub fn keep(self) -> String {
        let mut kept = std::mem::ManuallyDrop::new(self);
        std::mem::take(&mut kept.name)
    }

    /// The namespace's name, as `ip netns` knows it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `ip -n <ns> <args…>`.
    pub fn ip(&self, args: &[&str]) -> Result<String, TestbedError> {
        let mut full = vec!["-n", self.name.as_str()];
        full.extend_from_slice(args);
        run("ip", &full)
    }

    /// Runs `program args…` inside the namespace (`ip netns exec`), failing on a non-zero exit.
    pub fn exec(&self, program: &str, args: &[&str]) -> Result<String, TestbedError> {
        let mut full = vec!["netns", "exec", self.name.as_str(), program];
        full.extend_from_slice(args);
        run("ip", &full)
    }

    /// Runs `program args…` inside the namespace and returns its raw output, whatever the exit.
    pub fn exec_output(&self, program: &str, args: &[&str]) -> Result<Output, TestbedError> {
        Command::new("ip")
            .args(["netns", "exec", &self.name, program])
            .args(args)
            .output()
            .map_err(|source| TestbedError::Spawn {
                program: program.to_string(),
                source,
            })
    }

    /// Loads an nft script into this namespace (`nft -f -`), failing with nft's message.
    pub fn nft(&self, script: &str) -> Result<(), TestbedError> {
        use std::io::Write as _;
        let spawn = |source| TestbedError::Spawn {
            program: "nft".to_string(),
            source,
        };
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.name, "nft", "-f", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(spawn)?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(script.as_bytes()).map_err(spawn)?;
        }
        let out = child.wait_with_output().map_err(spawn)?;
        if out.status.success() {
            Ok(())
        } else {
            Err(TestbedError::Command {
                command: format!("ip netns exec {} nft -f -", self.name),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            })
        }
    }

    /// Sets a sysctl (e.g. `net.ipv6.conf.all.forwarding`) in this namespace, by writing
    /// `/proc/sys/…` from a thread inside it (no process started).
    pub fn sysctl(&self, key: &str, value: &str) -> Result<(), TestbedError> {
        let path = Path::new("/proc/sys").join(key.replace('.', "/"));
        let value = value.to_string();
        let shown = path.display().to_string();
        self.run_in(move || std::fs::write(&path, value))?
            .map_err(|source| TestbedError::Sysctl { key: shown, source })
    }

    /// Reads a sysctl in this namespace.
    pub fn read_sysctl(&self, key: &str) -> Result<String, TestbedError> {
        let path = Path::new("/proc/sys").join(key.replace('.', "/"));
        let shown = path.display().to_string();
        self.run_in(move || std::fs::read_to_string(&path))?
            .map(|v| v.trim().to_string())
            .map_err(|source| TestbedError::Sysctl { key: shown, source })
    }

    /// Turns on forwarding for both families.
    pub fn enable_forwarding(&self) -> Result<(), TestbedError> {
        self.sysctl("net.ipv4.ip_forward", "1")?;
        self.sysctl("net.ipv6.conf.all.forwarding", "1")
    }

    /// Adds an address (`10.0.1.1/24`, `fd00:1::1/64`) to `dev`; IPv6 ones with `nodad`,
    /// so they are usable at once.
    pub fn add_addr(&self, dev: &str, cidr: &str) -> Result<(), TestbedError> {
        if cidr.contains(':') {
            self.ip(&["-6", "addr", "add", cidr, "dev", dev, "nodad"])?;
        } else {
            self.ip(&["addr", "add", cidr, "dev", dev])?;
        }
        Ok(())
    }

    /// Adds a default route of the gateway's family.
    pub fn default_route(&self, gateway: &str) -> Result<(), TestbedError> {
        let fam = if gateway.contains(':') { "-6" } else { "-4" };
        self.ip(&[fam, "route", "add", "default", "via", gateway])
            .map(|_| ())
    }

    /// Runs `f` on a new thread that has entered this namespace, and returns its result.
    /// Sockets created in `f` belong to the namespace. Used by the echo servers and clients.
    pub fn run_in<T, F>(&self, f: F) -> Result<T, TestbedError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let file = self.open()?;
        std::thread::spawn(move || -> Result<T, TestbedError> {
            enter(&file)?;
            Ok(f())
        })
        .join()
        .map_err(|_| TestbedError::ThreadPanicked)?
    }

    /// Opens `/run/netns/<name>` (a handle for `setns`).
    pub(crate) fn open(&self) -> Result<File, TestbedError> {
        let path = Path::new("/run/netns").join(&self.name);
        File::open(&path).map_err(|source| TestbedError::OpenNetns {
            name: self.name.clone(),
            source,
        })
    }
}

/// Moves the calling thread into the namespace behind `file`.
pub(crate) fn enter(file: &File) -> Result<(), TestbedError> {
    setns(file, CloneFlags::CLONE_NEWNET).map_err(TestbedError::Setns)
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Best effort: a namespace that cannot be deleted is reported, never a double panic.
        if let Err(e) = run("ip", &["netns", "delete", &self.name]) {
            eprintln!("testbed: could not delete namespace {}: {e}", self.name);
        }
    }
}

/// Runs a command to completion; a non-zero exit is an error carrying its stderr.
pub(crate) fn run(program: &str, args: &[&str]) -> Result<String, TestbedError> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|source| TestbedError::Spawn {
            program: program.to_string(),
            source,
        })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(TestbedError::Command {
            command: format!("{program} {}", args.join(" ")),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// Connects two namespaces with a veth pair named `a_dev` (in `a`) and `b_dev` (in `b`),
/// both up.
pub fn veth(a: &Netns, a_dev: &str, b: &Netns, b_dev: &str) -> Result<(), TestbedError> {
    // Create in a, move the peer into b.
    a.ip(&[
        "link", "add", a_dev, "type", "veth", "peer", "name", b_dev, "netns", &b.name,
    ])?;
    a.ip(&["link", "set", a_dev, "up"])?;
    b.ip(&["link", "set", b_dev, "up"])?;
    Ok(())
}
