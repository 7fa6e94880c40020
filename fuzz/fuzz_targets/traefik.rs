//! Traefik `HelmChart` / `HelmChartConfig` values, then the `plan check` Traefik rules.
#![no_main]

use dualstack_plan::check::CheckInput;
use dualstack_plan::input::traefik::read_traefik;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(traefik) = read_traefik("traefik.yaml", text) {
        dualstack_fuzz::plan_check(&CheckInput {
            traefik: Some(traefik),
            ..CheckInput::default()
        });
    }
});
