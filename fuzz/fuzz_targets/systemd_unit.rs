//! A K3s systemd unit (`ExecStart=` with continuations), then the `plan check` rules.
#![no_main]

use dualstack_plan::check::CheckInput;
use dualstack_plan::input::systemd::read_unit;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(unit) = read_unit("k3s.service", text) {
        dualstack_fuzz::plan_check(&CheckInput {
            k3s: Some(unit.options),
            broken_unit: unit.broken.map(|b| ("k3s.service".to_string(), b)),
            ..CheckInput::default()
        });
    }
});
