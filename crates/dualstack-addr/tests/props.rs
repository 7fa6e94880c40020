//! Property tests for the address model: text round trips, exact counts, subnetting that
//! covers its parent exactly, and classification consistent between addresses and prefixes.

// Test helpers outside #[test] functions may unwrap too.
#![allow(clippy::unwrap_used)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use dualstack_addr::prefix::{addr_from_u128, addr_to_u128};
use dualstack_addr::{
    Family, ParseError, UlaPrefix, classify, count, expanded_net, first, kind_of, last, nth_subnet,
    overlaps, parse_addr_or_prefix, parse_prefix, subnets,
};
use ipnet::IpNet;
use proptest::prelude::*;

/// Any prefix of either family, host bits cleared.
fn any_net() -> impl Strategy<Value = IpNet> {
    prop_oneof![
        (any::<u32>(), 0u8..=32).prop_map(|(a, l)| IpNet::new(IpAddr::V4(Ipv4Addr::from(a)), l)
            .unwrap()
            .trunc()),
        (any::<u128>(), 0u8..=128).prop_map(|(a, l)| IpNet::new(IpAddr::V6(Ipv6Addr::from(a)), l)
            .unwrap()
            .trunc()),
        // Addresses with long zero runs, where "::" placement matters.
        (any::<[bool; 8]>(), any::<[u16; 8]>(), 0u8..=128).prop_map(|(z, g, l)| {
            let s: Vec<u16> = z
                .iter()
                .zip(g)
                .map(|(zero, group)| if *zero { 0 } else { group })
                .collect();
            let s: [u16; 8] = s.try_into().unwrap();
            IpNet::new(IpAddr::V6(Ipv6Addr::from(s)), l)
                .unwrap()
                .trunc()
        }),
    ]
}

/// An address inside `net` chosen by `r`.
fn addr_in(net: &IpNet, r: u128) -> IpAddr {
    let host_bits = u32::from(net.max_prefix_len() - net.prefix_len());
    let mask = 1u128.checked_shl(host_bits).map_or(u128::MAX, |m| m - 1);
    addr_from_u128(
        Family::of_net(*net),
        addr_to_u128(net.network()) | (r & mask),
    )
}

proptest! {
    #[test]
    fn canonical_text_parses_back_to_itself(net in any_net()) {
        let text = net.to_string();
        let parsed = parse_prefix(&text).unwrap();
        prop_assert_eq!(parsed, net);
        prop_assert_eq!(parsed.to_string(), text.clone());
        // The fully expanded form means the same prefix.
        prop_assert_eq!(parse_prefix(&expanded_net(&net)).unwrap(), net);
        // Upper-case input canonicalises to the same text.
        prop_assert_eq!(parse_prefix(&text.to_uppercase()).unwrap().to_string(), text);
    }

    #[test]
    fn count_is_two_to_the_host_bits(net in any_net()) {
        let host_bits = net.max_prefix_len() - net.prefix_len();
        let n = count(&net);
        prop_assert_eq!(n.log2(), host_bits);
        let span = addr_to_u128(last(&net)) - addr_to_u128(first(&net));
        match n.to_u128() {
            Some(v) => {
                prop_assert_eq!(v, span + 1);
                prop_assert_eq!(n.to_string(), v.to_string());
            }
            None => {
                prop_assert_eq!(host_bits, 128);
                prop_assert_eq!(span, u128::MAX);
            }
        }
    }

    #[test]
    fn split_children_cover_the_parent_exactly(net in any_net(), extra in 0u8..=6, r in any::<u128>()) {
        let new_len = net.prefix_len().saturating_add(extra).min(net.max_prefix_len());
        let it = subnets(&net, new_len).unwrap();
        let total = it.total();
        let children: Vec<IpNet> = it.collect();
        prop_assert_eq!(Some(children.len() as u128), total.to_u128());
        prop_assert_eq!(total.log2(), new_len - net.prefix_len());
        prop_assert_eq!(first(&children[0]), first(&net));
        prop_assert_eq!(last(&children[children.len() - 1]), last(&net));
        for pair in children.windows(2) {
            // No gap and no overlap: each child starts right after the previous one ends.
            prop_assert_eq!(addr_to_u128(last(&pair[0])) + 1, addr_to_u128(first(&pair[1])));
        }
        for (i, c) in children.iter().enumerate() {
            prop_assert_eq!(c.prefix_len(), new_len);
            prop_assert!(dualstack_addr::contains(&net, c));
            prop_assert_eq!(*c, nth_subnet(&net, new_len, i as u128).unwrap());
        }
        // Every address of the parent is in exactly one child.
        let a = addr_in(&net, r);
        prop_assert_eq!(children.iter().filter(|c| c.contains(&a)).count(), 1);
    }

    #[test]
    fn an_address_kind_is_among_its_prefix_kinds(net in any_net(), r in any::<u128>()) {
        let kinds = classify(&net);
        let a = addr_in(&net, r);
        let k = kind_of(a);
        prop_assert!(kinds.kinds().contains(&k), "{} is {} but {} is {}", a, k, net, kinds);
        if let Some(u) = kinds.uniform() {
            prop_assert_eq!(u, k);
        }
    }

    #[test]
    fn host_bits_are_refused_with_a_masked_suggestion(a in any::<u128>(), len in 0u8..128) {
        let addr = IpAddr::V6(Ipv6Addr::from(a));
        let net = IpNet::new(addr, len).unwrap();
        let text = net.to_string();
        match parse_addr_or_prefix(&text) {
            Ok(p) => prop_assert_eq!(p.net(), net.trunc()),
            Err(ParseError::HostBits { suggestion, .. }) => {
                prop_assert!(net.addr() != net.network());
                prop_assert_eq!(suggestion.prefix_len(), len);
                prop_assert_eq!(suggestion, suggestion.trunc());
                if !net.network().is_unspecified() {
                    prop_assert_eq!(suggestion, net.trunc());
                }
            }
            Err(e) => prop_assert!(false, "{}: {}", text, e),
        }
    }

    #[test]
    fn overlap_means_a_common_address(a in any_net(), b in any_net(), r in any::<u128>()) {
        let o = overlaps(&a, &b);
        prop_assert_eq!(o, overlaps(&b, &a));
        let x = addr_in(&a, r);
        if b.contains(&x) {
            prop_assert!(o, "{} in both {} and {}", x, a, b);
        }
    }

    #[test]
    fn ula_prefixes_are_fd_48s(id in 0u64..=UlaPrefix::MAX_GLOBAL_ID, sub in any::<u16>()) {
        let p = UlaPrefix::from_global_id(id).unwrap();
        let net = p.net();
        prop_assert_eq!(net.prefix_len(), 48);
        prop_assert_eq!(net.addr().segments()[0] >> 8, 0xfd);
        prop_assert_eq!(u128::from(net.addr()) >> 80 & 0xff_ffff_ffff, u128::from(id));
        let s = p.subnet(sub);
        prop_assert!(net.contains(&s));
        prop_assert_eq!(s.addr().segments()[3], sub);
    }
}
