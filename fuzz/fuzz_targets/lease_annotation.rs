//! The agent Lease annotations (`dualstack.io/addresses`, `dualstack.io/prefixes`): parse,
//! and for an accepted value, format and parse again to the same value (what the agent
//! writes, the controller reads).
#![no_main]

use dualstack_lb::live::{format_live_addresses, parse_live_addresses};
use dualstack_lb::prefixes::{format_prefixes, parse_prefixes};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(addresses) = parse_live_addresses(text) {
        let written = format_live_addresses(&addresses);
        match parse_live_addresses(&written) {
            Ok(again) => assert_eq!(again, addresses, "round trip of {written:?}"),
            Err(e) => panic!("formatted value {written:?} does not parse: {e}"),
        }
    }
    if let Ok(prefixes) = parse_prefixes(text) {
        let written = format_prefixes(&prefixes);
        match parse_prefixes(&written) {
            // Sub-second times are written to the microsecond: the round trip is exact.
            Ok(again) => assert_eq!(again, prefixes, "round trip of {written:?}"),
            Err(e) => panic!("formatted value {written:?} does not parse: {e}"),
        }
    }
});
