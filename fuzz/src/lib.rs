//! Helpers shared by the fuzz targets in `fuzz_targets/`.
//!
//! * [`check_decision`]: the decision's contract on any snapshot — no panic, the same output
//!   twice, the same output on the snapshot with every object list reversed;
//! * [`structured`]: builds a realistic cluster dump from fuzz bytes, so libFuzzer explores
//!   the decision's rules rather than the YAML syntax;
//! * [`plan_check`]: runs `plan check`'s rules over whatever an input reader accepted.
//!
//! A failed assertion here is a finding: libFuzzer reports it as a crash with the input.

pub mod structured;

use dualstack_lb::{Config, Mode, Snapshot, Timestamp, decide, explain};
use dualstack_plan::check::{CheckInput, check};

/// Decides for `snapshot` under both modes and asserts the result is deterministic and does
/// not depend on object order.
pub fn check_decision(snapshot: &Snapshot) {
    let now = snapshot
        .taken_at()
        .unwrap_or(Timestamp::from_unix_micros(1_767_225_600_000_000));
    let mut reversed = snapshot.clone();
    reversed.services.reverse();
    reversed.nodes.reverse();
    reversed.endpoint_slices.reverse();
    reversed.leases.reverse();
    for mode in [Mode::Nftables, Mode::KubeProxy] {
        let config = Config {
            default_class: true,
            mode,
            ..Config::default()
        };
        let first = render(snapshot, &config, now);
        let again = render(snapshot, &config, now);
        assert_eq!(first, again, "decide is not deterministic ({mode:?})");
        let other = render(&reversed, &config, now);
        assert_eq!(first, other, "decide depends on object order ({mode:?})");
    }
}

fn render(snapshot: &Snapshot, config: &Config, now: Timestamp) -> String {
    let decision = decide(snapshot, config, now);
    // The decision is made of plain data: serializing it cannot fail.
    let json = serde_json::to_string(&decision).unwrap_or_else(|e| panic!("serialize: {e}"));
    format!("{json}\n{}", explain(&decision, config, now))
}

/// Runs every `plan check` rule over an input the readers accepted, with and without a
/// K3s view, and checks the findings come out the same twice.
pub fn plan_check(input: &CheckInput) {
    let first = format!("{:?}", check(input));
    let again = format!("{:?}", check(input));
    assert_eq!(first, again, "plan check is not deterministic");
}

/// Splits fuzz input into up to `max` files at NUL bytes (`config.yaml`, then drop-ins).
pub fn split_files(text: &str, max: usize) -> Vec<(String, String)> {
    text.split('\0')
        .take(max)
        .enumerate()
        .map(|(i, t)| {
            let name = if i == 0 {
                "config.yaml".to_string()
            } else {
                format!("config.yaml.d/{i:02}.yaml")
            };
            (name, t.to_string())
        })
        .collect()
}
