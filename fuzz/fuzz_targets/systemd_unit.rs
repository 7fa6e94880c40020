//! A K3s systemd unit (`ExecStart=` with continuations, read as systemd does), then the
//! `plan check` rules, the unit problems included.
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
            unit_problems: unit.problems,
            ..CheckInput::default()
        });
    }
});
