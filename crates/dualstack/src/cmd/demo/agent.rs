//! The demo plays each node's agent: it reports the node's live addresses in the node's
//! Lease (renewing it), with the agent's own address filter, and programs the node's table
//! with the agent's offline sync.

use anyhow::Context as _;
use dualstack_agent::addresses::{
    AddressFlags, InterfaceAddress, default_excluded, live_addresses,
};
use dualstack_agent::{SyncReport, sync_once};
use dualstack_dataplane::Nft;
use dualstack_doctor::node::ip;
use dualstack_lb::live::{ADDRESSES_ANNOTATION, LiveAddress, format_live_addresses};
use dualstack_lb::{Config, Snapshot, Timestamp};

/// Reads `ip -j addr show` output (with the doctor's parser, the project's one) into the
/// interface addresses the agent reads from the kernel (the live agent gets the same over
/// rtnetlink).
pub fn parse_ip_addr_json(text: &str) -> anyhow::Result<Vec<InterfaceAddress>> {
    let interfaces = ip::parse_addrs(text)?;
    Ok(interfaces
        .into_iter()
        .flat_map(|interface| {
            let name = interface.name;
            interface.addrs.into_iter().map(move |a| InterfaceAddress {
                interface: name.clone(),
                addr: a.addr,
                prefix_len: a.prefix_len,
                flags: AddressFlags {
                    temporary: a.temporary,
                    deprecated: a.deprecated,
                    tentative: a.tentative,
                    dad_failed: a.dad_failed,
                },
                lifetimes: Default::default(),
            })
        })
        .collect())
}

/// What the node's agent reports as live, from `ip -j addr show` of the whole node: the
/// agent's own filter (no pod gateways on `cni0`, no `veth*`, no loopback or link-local).
pub fn report(ip_json: &str) -> anyhow::Result<Vec<LiveAddress>> {
    Ok(live_addresses(
        &parse_ip_addr_json(ip_json)?,
        &default_excluded(),
    ))
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
    lease.spec.holder_identity = Some(node.into());
    lease.spec.renew_time = Some(now);
    lease.metadata.annotations.insert(
        ADDRESSES_ANNOTATION.to_string(),
        format_live_addresses(live),
    );
    Ok(())
}

/// One offline sync of `node`'s agent (`dualstack_agent::sync_once`, the live agent's code
/// path): decide, take the node's frontends, program them in one transaction.
pub fn sync_node(
    snapshot: &Snapshot,
    config: &Config,
    node: &str,
    now: Timestamp,
    nft: &Nft,
) -> anyhow::Result<SyncReport> {
    sync_once(snapshot, config, node, now, nft)
        .with_context(|| format!("syncing the agent of {node}"))
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;

    const IP_J: &str = r#"[{"ifindex":1,"ifname":"lo","addr_info":[
        {"family":"inet","local":"127.0.0.1","prefixlen":8,"scope":"host"}]},
      {"ifindex":3,"ifname":"cni0","addr_info":[
        {"family":"inet","local":"198.51.100.1","prefixlen":25,"scope":"global"}]},
      {"ifindex":2,"ifname":"eth0","addr_info":[
        {"family":"inet","local":"192.0.2.11","prefixlen":24,"scope":"global"},
        {"family":"inet6","local":"2001:db8:1::11","prefixlen":64,"scope":"global","nodad":true},
        {"family":"inet6","local":"2001:db8:1::99","prefixlen":64,"scope":"global","temporary":true},
        {"family":"inet6","local":"2001:db8:1::98","prefixlen":64,"scope":"global","deprecated":true},
        {"family":"inet6","local":"2001:db8:1::97","prefixlen":64,"scope":"global","tentative":true},
        {"family":"inet6","local":"fe80::1","prefixlen":64,"scope":"link"}]}]"#;

    #[test]
    fn reports_node_addresses_with_flags() {
        let all = parse_ip_addr_json(IP_J).unwrap();
        assert_eq!(all.len(), 8);
        assert_eq!((all[1].interface.as_str(), all[1].prefix_len), ("cni0", 25));
        let live = report(IP_J).unwrap();
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
        let live = report(IP_J).unwrap();
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
