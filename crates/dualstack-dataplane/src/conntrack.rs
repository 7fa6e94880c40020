//! Flushing stale UDP conntrack entries after a change, so datagram "flows" created before a
//! rule (or towards a removed backend) do not keep bypassing it.

use dualstack_addr::Family;

use crate::{DataplaneError, Runner};

/// `conntrack -D -p udp --dport P -f ipv4|ipv6` for each pair. Deletes every UDP entry
/// whose original destination port is P in that family (UDP has no connection to break;
/// the next datagram creates a fresh entry through the current rules). "0 flow entries"
/// (exit 1) is not an error.
pub fn flush_udp(runner: &Runner, ports: &[(Family, u16)]) -> Result<(), DataplaneError> {
    for (family, port) in ports {
        let port = port.to_string();
        let args = ["-D", "-p", "udp", "--dport", &port, "-f", family.as_str()];
        let out = runner.output("conntrack", &args, "")?;
        if !out.success && !out.stderr.contains("0 flow entries") {
            return Err(DataplaneError::Failed {
                command: format!("conntrack {}", args.join(" ")),
                stderr: out.stderr,
            });
        }
    }
    Ok(())
}
