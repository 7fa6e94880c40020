//! `dualstack ip` arguments: two words (NUL-separated) through the address parsers, then what
//! `info`, `split`, `contains` and `overlap` compute from them, with their invariants.
#![no_main]

use dualstack_addr::{
    classify, contains, count, expanded, expanded_net, first, intersection, last, overlaps,
    parse_addr_or_prefix, parse_prefix, split, subnet_count, subnets,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut words = text.splitn(3, '\0');
    let a = words.next().unwrap_or_default();
    let b = words.next().unwrap_or_default();
    let len: u8 = words
        .next()
        .and_then(|w| w.bytes().next())
        .map_or(64, |x| x % 130);

    if let Ok(value) = parse_addr_or_prefix(a) {
        let net = value.net();
        let _ = (count(&net).to_string(), expanded_net(&net), classify(&net));
        let (lo, hi) = (first(&net), last(&net));
        assert!(lo <= hi, "{net}: first {lo} after last {hi}");
        let _ = (expanded(lo), expanded(hi));
        // The canonical text reads back as the same prefix.
        let again = parse_prefix(&net.to_string());
        assert_eq!(
            again.ok(),
            Some(net),
            "canonical text of {net} does not read back"
        );
    }
    if let Ok(net) = parse_prefix(a) {
        if let Ok(total) = subnet_count(&net, len) {
            // `split` refuses more than 16 children; the lazy iterator always starts.
            if let Ok(listed) = split(&net, len, 16) {
                for child in &listed {
                    assert!(contains(&net, child), "{child} outside {net}");
                }
                if let Ok(mut iter) = subnets(&net, len) {
                    assert_eq!(iter.next(), listed.first().copied());
                }
            }
            if let Ok(iter) = subnets(&net, len) {
                assert_eq!(iter.total(), total);
            }
        }
        if let Ok(other) = parse_addr_or_prefix(b) {
            let other = other.net();
            let o = overlaps(&net, &other);
            assert_eq!(o, overlaps(&other, &net), "overlap is symmetric");
            assert_eq!(o, intersection(&net, &other).is_some());
            if contains(&net, &other) {
                assert!(o, "{net} contains {other} but does not overlap it");
            }
        }
    }
});
