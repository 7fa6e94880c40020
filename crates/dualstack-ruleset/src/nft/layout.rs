//! The fixed part of our table: map declarations, and the base chains that look
//! packets up in them (the packet's path is described in [`crate::nft`]).

use super::MASQUERADE_MARK;

/// Base chain names.
pub const CHAIN_FILTER_PREROUTING: &str = "filter-prerouting";
/// The DNAT hook for traffic arriving from outside (`prerouting`, priority `dstnat - 10`).
pub const CHAIN_NAT_PREROUTING: &str = "nat-prerouting";
/// The DNAT hook for locally generated traffic (`output`, priority `dstnat - 10`).
pub const CHAIN_NAT_OUTPUT: &str = "nat-output";
/// Masquerades marked connections on the way out (`postrouting`, priority `srcnat`).
pub const CHAIN_NAT_POSTROUTING: &str = "nat-postrouting";
/// Drops traffic to dedicated addresses that no frontend took (only with a guard).
pub const CHAIN_POOL_GUARD: &str = "pool-guard";

/// The guard chain: after every DNAT (ours at `dstnat - 10`, conntrack's at `dstnat`), a
/// packet still addressed to a pool address was taken by no frontend. Anonymous interval
/// sets: one lookup per family, whatever the number of ranges.
pub(crate) fn guard_chain(
    guard: &[crate::AddressRange],
) -> Option<(&'static str, String, Vec<String>)> {
    if guard.is_empty() {
        return None;
    }
    let mut rules = Vec::new();
    for (ip, v6) in [("ip", false), ("ip6", true)] {
        let ranges: Vec<String> = guard
            .iter()
            .filter(|r| r.first.is_ipv6() == v6)
            .map(|r| {
                if r.first == r.last {
                    r.first.to_string()
                } else {
                    format!("{}-{}", r.first, r.last)
                }
            })
            .collect();
        if !ranges.is_empty() {
            rules.push(format!(
                "{ip} daddr {{ {} }} counter drop",
                ranges.join(", ")
            ));
        }
    }
    Some((
        CHAIN_POOL_GUARD,
        "type filter hook prerouting priority dstnat + 10; policy accept;".to_string(),
        rules,
    ))
}

/// One map of the table: name, key type, value type.
pub(crate) struct Store {
    pub name: &'static str,
    pub key_type: &'static str,
    pub value_type: &'static str,
}

const ADDR4: &str = "ipv4_addr . inet_proto . inet_service";
const ADDR6: &str = "ipv6_addr . inet_proto . inet_service";
const LOCAL: &str = "nf_proto . inet_proto . inet_service";
const PROTO_PORT: &str = "inet_proto . inet_service";
const TO4: &str = "ipv4_addr . inet_service";
const TO6: &str = "ipv6_addr . inet_service";

const fn store(name: &'static str, key_type: &'static str, value_type: &'static str) -> Store {
    Store {
        name,
        key_type,
        value_type,
    }
}

/// Every map, in the order they are declared. Every name [`super::Key::map_name`] returns
/// is here.
pub(crate) const STORES: [Store; 14] = [
    store("nat-addr4", ADDR4, "verdict"),
    store("nat-addr6", ADDR6, "verdict"),
    store("nat-local", LOCAL, "verdict"),
    store("fw-addr4", ADDR4, "verdict"),
    store("fw-addr6", ADDR6, "verdict"),
    store("fw-local", LOCAL, "verdict"),
    store("dnat-addr4", ADDR4, TO4),
    store("dnat-addr6", ADDR6, TO6),
    store("dnat-local4", PROTO_PORT, TO4),
    store("dnat-local6", PROTO_PORT, TO6),
    store("dnat-masq-addr4", ADDR4, TO4),
    store("dnat-masq-addr6", ADDR6, TO6),
    store("dnat-masq-local4", PROTO_PORT, TO4),
    store("dnat-masq-local6", PROTO_PORT, TO6),
];

/// Where a map is in [`STORES`].
pub(crate) fn store_index(name: &str) -> Option<usize> {
    STORES.iter().position(|s| s.name == name)
}

const KEY4: &str = "ip daddr . meta l4proto . th dport";
const KEY6: &str = "ip6 daddr . meta l4proto . th dport";
const KEY_LOCAL: &str = "meta nfproto . meta l4proto . th dport";
const KEY_PROTO_PORT: &str = "meta l4proto . th dport";
const LOCAL_DEST: &str = "fib daddr type local";
const NOT_LOOPBACK4: &str = "ip daddr != 127.0.0.0/8";
const NOT_LOOPBACK6: &str = "ip6 daddr != ::1";

/// The NAT rules shared by `nat-prerouting` and `nat-output`, in lookup order:
/// address-bound frontends (one backend with masquerade: mark, then DNAT by map; one
/// backend: DNAT by map; several: their chain), then the same for `AnyLocal` ones.
/// `local4`/`local6` restrict the `AnyLocal` rules to a family (the output hook also
/// excludes loopback there).
fn nat_rules(local4: &str, local6: &str) -> Vec<String> {
    let mark = format!("meta mark set meta mark | 0x{MASQUERADE_MARK:08x}");
    let mut rules = Vec::new();
    for (ip, key, n) in [("ip", KEY4, 4), ("ip6", KEY6, 6)] {
        rules.extend([
            format!("{key} @dnat-masq-addr{n} {mark}"),
            format!("dnat {ip} to {key} map @dnat-masq-addr{n}"),
            format!("dnat {ip} to {key} map @dnat-addr{n}"),
        ]);
    }
    rules.extend([
        format!("{KEY4} vmap @nat-addr4"),
        format!("{KEY6} vmap @nat-addr6"),
    ]);
    // The key is tested first, so a packet that is not ours costs no `fib` lookup.
    let kpp = KEY_PROTO_PORT;
    for (ip, only, n) in [("ip", local4, 4), ("ip6", local6, 6)] {
        let masq = format!("{only} {kpp} @dnat-masq-local{n} {LOCAL_DEST}");
        rules.extend([
            format!("{masq} {mark}"),
            format!("{masq} dnat {ip} to {kpp} map @dnat-masq-local{n}"),
            format!(
                "{only} {kpp} @dnat-local{n} {LOCAL_DEST} dnat {ip} to {kpp} map @dnat-local{n}"
            ),
        ]);
    }
    for only in [local4, local6] {
        rules.push(format!(
            "{only} {KEY_LOCAL} @nat-local {LOCAL_DEST} {KEY_LOCAL} vmap @nat-local"
        ));
    }
    rules
}

/// The base chains: name, header, rules.
pub(crate) fn base_chains() -> Vec<(&'static str, &'static str, Vec<String>)> {
    vec![
        (
            CHAIN_FILTER_PREROUTING,
            "type filter hook prerouting priority dstnat - 20; policy accept;",
            vec![
                format!("ct state new {KEY4} vmap @fw-addr4"),
                format!("ct state new {KEY6} vmap @fw-addr6"),
                format!("ct state new {LOCAL_DEST} {KEY_LOCAL} vmap @fw-local"),
            ],
        ),
        (
            CHAIN_NAT_PREROUTING,
            "type nat hook prerouting priority dstnat - 10; policy accept;",
            nat_rules("meta nfproto ipv4", "meta nfproto ipv6"),
        ),
        (
            CHAIN_NAT_OUTPUT,
            // `dstnat` is not accepted as a keyword on the output hook by nft 1.0.6.
            "type nat hook output priority -110; policy accept;",
            nat_rules(NOT_LOOPBACK4, NOT_LOOPBACK6),
        ),
        (
            CHAIN_NAT_POSTROUTING,
            "type nat hook postrouting priority srcnat; policy accept;",
            vec![format!(
                "meta mark & 0x{MASQUERADE_MARK:08x} == 0x{MASQUERADE_MARK:08x} masquerade"
            )],
        ),
    ]
}
