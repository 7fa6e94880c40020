//! The demo plays each node's agent: it reports the addresses on the node's LAN interface in
//! the node's Lease (renewing it), and programs the node's table through the agent's sync.

use std::net::IpAddr;

use anyhow::Context as _;
use dualstack_dataplane::Nft;
use dualstack_lb::live::{ADDRESSES_ANNOTATION, LiveAddress, format_live_addresses};
use dualstack_lb::{Config, Snapshot, Timestamp};
use dualstack_ruleset::{Ruleset, validate};
use serde_json::Value;

/// The interface the agent reads in the demo (the node's LAN link).
pub const LAN_IF: &str = "eth0";

/// Parses `ip -j addr show` output into the addresses an agent reports: global scope only
/// (no link-local or host addresses), with the kernel's `temporary`/`deprecated` flags;
/// tentative and DAD-failed addresses are skipped.
pub fn parse_ip_addr_json(text: &str) -> anyhow::Result<Vec<LiveAddress>> {
    let links: Value = serde_json::from_str(text).context("reading `ip -j addr` output")?;
    let mut out = Vec::new();
    for link in links.as_array().into_iter().flatten() {
        for info in link
            .get("addr_info")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let flag = |name: &str| info.get(name).and_then(Value::as_bool) == Some(true);
            if info.get("scope").and_then(Value::as_str) != Some("global")
                || flag("tentative")
                || flag("dadfailed")
            {
                continue;
            }
            let Some(local) = info.get("local").and_then(Value::as_str) else {
                continue;
            };
            let addr: IpAddr = local
                .parse()
                .with_context(|| format!("`ip -j addr` reported {local:?} as an address"))?;
            out.push(LiveAddress {
                addr,
                temporary: flag("temporary"),
                deprecated: flag("deprecated"),
            });
        }
    }
    out.sort();
    out.dedup_by_key(|a| a.addr);
    Ok(out)
}

/// Writes what `node`'s agent reports into its Lease: holder, `renewTime = now`, and the
/// live addresses annotation. Fails when the snapshot has no Lease for the node.
pub fn renew_lease(
    snapshot: &mut Snapshot,
    config: &Config,
    node: &str,
    live: &[LiveAddress],
    now: Timestamp,
) -> anyhow::Result<()> {
    let name = Config::lease_name(node);
    let lease = snapshot
        .leases
        .iter_mut()
        .find(|l| l.metadata.name == name && l.metadata.namespace == config.lease_namespace)
        .with_context(|| {
            format!(
                "the built-in snapshot has no Lease {}/{name}",
                config.lease_namespace
            )
        })?;
    lease.spec.holder_identity = Some(node.to_string());
    lease.spec.renew_time = Some(now);
    lease.metadata.annotations.insert(
        ADDRESSES_ANNOTATION.to_string(),
        format_live_addresses(live),
    );
    Ok(())
}

/// One offline sync of `node`'s agent: decide, take the node's frontends, program them in
/// one transaction. The swap point for the agent crate's `sync_once` (same code path as the
/// live agent).
pub fn sync_node(
    snapshot: &Snapshot,
    config: &Config,
    node: &str,
    now: Timestamp,
    nft: &Nft,
) -> anyhow::Result<Ruleset> {
    let decision = dualstack_lb::decide(snapshot, config, now);
    let mut frontends = decision.frontends_for(node).to_vec();
    frontends.sort_by(|a, b| a.name.cmp(&b.name));
    let ruleset = Ruleset {
        table: nft.table().to_string(),
        frontends,
    };
    validate(&ruleset).with_context(|| format!("the frontends decided for {node}"))?;
    nft.apply(&ruleset)
        .with_context(|| format!("programming table inet {} on {node}", nft.table()))?;
    Ok(ruleset)
}

#[cfg(test)]
mod tests {
    use super::*;

    const IP_J: &str = r#"[{"ifindex":2,"ifname":"eth0","addr_info":[
        {"family":"inet","local":"192.0.2.11","prefixlen":24,"scope":"global"},
        {"family":"inet6","local":"2001:db8:1::11","prefixlen":64,"scope":"global","nodad":true},
        {"family":"inet6","local":"2001:db8:1::99","prefixlen":64,"scope":"global","temporary":true},
        {"family":"inet6","local":"2001:db8:1::98","prefixlen":64,"scope":"global","deprecated":true},
        {"family":"inet6","local":"2001:db8:1::97","prefixlen":64,"scope":"global","tentative":true},
        {"family":"inet6","local":"fe80::1","prefixlen":64,"scope":"link"}]}]"#;

    #[test]
    fn reports_global_addresses_with_flags() {
        let live = parse_ip_addr_json(IP_J).unwrap();
        assert_eq!(
            format_live_addresses(&live),
            "192.0.2.11,2001:db8:1::11,2001:db8:1::98;deprecated,2001:db8:1::99;temporary"
        );
        assert!(parse_ip_addr_json("not json").is_err());
        let bad = r#"[{"addr_info":[{"local":"nonsense","scope":"global"}]}]"#;
        assert!(
            parse_ip_addr_json(bad)
                .unwrap_err()
                .to_string()
                .contains("\"nonsense\"")
        );
    }

    #[test]
    fn renewing_makes_the_live_address_win() {
        let mut snapshot = Snapshot::parse(super::super::SNAPSHOT).unwrap();
        let config = Config::default();
        let now: Timestamp = "2030-01-01T00:00:00Z".parse().unwrap();
        let live = parse_ip_addr_json(IP_J).unwrap();
        renew_lease(&mut snapshot, &config, "node-1", &live, now).unwrap();
        renew_lease(&mut snapshot, &config, "node-2", &[], now).unwrap();
        let decision = dualstack_lb::decide(&snapshot, &config, now);
        let web = decision.service("demo", "web").unwrap();
        assert!(
            web.ingress
                .iter()
                .any(|i| i.ip == "2001:db8:1::11".parse::<IpAddr>().unwrap())
        );
        assert!(renew_lease(&mut snapshot, &config, "node-9", &live, now).is_err());
    }
}
