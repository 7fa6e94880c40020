//! The fixed part of our table: map and set declarations, and the base chains that look
//! packets up in them (the packet's path is described in [`crate::nft`]).

use super::MASQUERADE_MARK;

/// Base chain names.
pub const CHAIN_FILTER_PREROUTING: &str = "filter-prerouting";
pub const CHAIN_NAT_PREROUTING: &str = "nat-prerouting";
pub const CHAIN_NAT_OUTPUT: &str = "nat-output";
pub const CHAIN_NAT_POSTROUTING: &str = "nat-postrouting";

/// One map or set of the table: name, key type, value type (`None` for a set).
pub(crate) struct Store {
    pub name: &'static str,
    pub key_type: &'static str,
    pub value_type: Option<&'static str>,
}

const ADDR4: &str = "ipv4_addr . inet_proto . inet_service";
const ADDR6: &str = "ipv6_addr . inet_proto . inet_service";
const LOCAL: &str = "nf_proto . inet_proto . inet_service";
const PROTO_PORT: &str = "inet_proto . inet_service";

const fn store(
    name: &'static str,
    key_type: &'static str,
    value_type: Option<&'static str>,
) -> Store {
    Store {
        name,
        key_type,
        value_type,
    }
}

/// Every map and set, in the order they are declared. Every name [`super::Key::map_name`]
/// returns is here.
pub(crate) const STORES: [Store; 13] = [
    store("nat-addr4", ADDR4, Some("verdict")),
    store("nat-addr6", ADDR6, Some("verdict")),
    store("nat-local", LOCAL, Some("verdict")),
    store("fw-addr4", ADDR4, Some("verdict")),
    store("fw-addr6", ADDR6, Some("verdict")),
    store("fw-local", LOCAL, Some("verdict")),
    store("dnat-addr4", ADDR4, Some("ipv4_addr . inet_service")),
    store("dnat-addr6", ADDR6, Some("ipv6_addr . inet_service")),
    store("dnat-local4", PROTO_PORT, Some("ipv4_addr . inet_service")),
    store("dnat-local6", PROTO_PORT, Some("ipv6_addr . inet_service")),
    store("masq-addr4", ADDR4, None),
    store("masq-addr6", ADDR6, None),
    store("masq-local", LOCAL, None),
];

/// Where a map or set is in [`STORES`].
pub(crate) fn store_index(name: &str) -> Option<usize> {
    STORES.iter().position(|s| s.name == name)
}

const KEY4: &str = "ip daddr . meta l4proto . th dport";
const KEY6: &str = "ip6 daddr . meta l4proto . th dport";
const KEY_LOCAL: &str = "meta nfproto . meta l4proto . th dport";
const LOCAL_DEST: &str = "fib daddr type local";
const NOT_LOOPBACK4: &str = "ip daddr != 127.0.0.0/8";
const NOT_LOOPBACK6: &str = "ip6 daddr != ::1";

/// The NAT rules shared by `nat-prerouting` and `nat-output`: mark for masquerade, then
/// DNAT address-bound frontends (one backend by map, several by their chain), then the
/// same for `AnyLocal` ones. `local4`/`local6`/`local` prefix every rule about local
/// destinations (the output hook excludes loopback there).
fn nat_rules(local4: &str, local6: &str, local: &[&str]) -> Vec<String> {
    let mark = format!("meta mark set meta mark | 0x{MASQUERADE_MARK:08x}");
    let mut rules = vec![
        format!("{KEY4} @masq-addr4 {mark}"),
        format!("{KEY6} @masq-addr6 {mark}"),
    ];
    for prefix in local {
        rules.push(format!(
            "{prefix}{KEY_LOCAL} @masq-local {LOCAL_DEST} {mark}"
        ));
    }
    rules.extend([
        format!("dnat ip to {KEY4} map @dnat-addr4"),
        format!("dnat ip6 to {KEY6} map @dnat-addr6"),
        format!("{KEY4} vmap @nat-addr4"),
        format!("{KEY6} vmap @nat-addr6"),
        format!("{local4} {LOCAL_DEST} dnat ip to meta l4proto . th dport map @dnat-local4"),
        format!("{local6} {LOCAL_DEST} dnat ip6 to meta l4proto . th dport map @dnat-local6"),
    ]);
    for prefix in local {
        rules.push(format!("{prefix}{LOCAL_DEST} {KEY_LOCAL} vmap @nat-local"));
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
            nat_rules("meta nfproto ipv4", "meta nfproto ipv6", &[""]),
        ),
        (
            CHAIN_NAT_OUTPUT,
            // `dstnat` is not accepted as a keyword on the output hook by nft 1.0.6.
            "type nat hook output priority -110; policy accept;",
            nat_rules(
                NOT_LOOPBACK4,
                NOT_LOOPBACK6,
                &[&format!("{NOT_LOOPBACK4} "), &format!("{NOT_LOOPBACK6} ")],
            ),
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
