//! The decision on structured random snapshots: fuzz bytes choose nodes, addresses, Leases,
//! Services and EndpointSlices from realistic pools (`dualstack_fuzz::structured`); the dump
//! must parse, and the decision must be deterministic and independent of object order.
#![no_main]

use dualstack_lb::Snapshot;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = dualstack_fuzz::structured::dump(data);
    match Snapshot::parse(&text) {
        Ok(snapshot) => dualstack_fuzz::check_decision(&snapshot),
        Err(e) => panic!("generated dump does not parse: {e}\n{text}"),
    }
});
