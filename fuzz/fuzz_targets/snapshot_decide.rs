//! `kubectl get svc,endpointslices,nodes,leases -A -o yaml|json` text into
//! `Snapshot::parse`, then `decide`: never a panic, the same output twice and on the
//! snapshot with its object lists reversed. What `parse` reads, the streamed
//! `Snapshot::read` reads the same (it may accept a little more: see its module).
#![no_main]

use dualstack_lb::Snapshot;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(snapshot) = Snapshot::parse(text) {
        match Snapshot::read(text.as_bytes()) {
            Ok(read) => assert_eq!(read, snapshot, "read and parse disagree"),
            Err(e) => panic!("parse reads it, read does not: {e}"),
        }
        dualstack_fuzz::check_decision(&snapshot);
    }
});
