//! Fix texts for sysctls: set it now and keep it across reboots.

/// The file our persistent sysctl lines go to.
pub const SYSCTL_FILE: &str = "/etc/sysctl.d/90-dualstack.conf";

/// The key as `sysctl(8)` wants it: an interface name's own dots become `/`
/// (`net.ipv6.conf.eth0/100.accept_ra` for VLAN `eth0.100`).
pub fn key(prefix: &str, interface: &str, name: &str) -> String {
    format!("{prefix}.{}.{name}", interface.replace('.', "/"))
}

/// `sysctl -w k=v …` and the lines that make it permanent, for one or more settings.
pub fn set(settings: &[(String, &str)]) -> String {
    let now: Vec<String> = settings.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let lines: Vec<String> = settings.iter().map(|(k, v)| format!("{k} = {v}")).collect();
    format!(
        "sysctl -w {}\nprintf '{}\\n' >> {SYSCTL_FILE}",
        now.join(" "),
        lines.join("\\n")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dots_in_interface_names_become_slashes() {
        assert_eq!(
            key("net.ipv6.conf", "eth0.100", "accept_ra"),
            "net.ipv6.conf.eth0/100.accept_ra"
        );
    }

    #[test]
    fn set_now_and_persist() {
        assert_eq!(
            set(&[("a.b".into(), "1"), ("c.d".into(), "2")]),
            "sysctl -w a.b=1 c.d=2\nprintf 'a.b = 1\\nc.d = 2\\n' >> /etc/sysctl.d/90-dualstack.conf"
        );
    }
}
