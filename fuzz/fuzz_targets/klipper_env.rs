//! The klipper-lb environment contract: `KEY=VALUE` lines (as in a pod spec's `env`) into
//! `KlipperConfig::from_vars`, and an accepted config into the ruleset and its nft text.
#![no_main]

use dualstack_klipper::{Forwarding, KlipperConfig, default_table_name, program};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let vars: Vec<(&str, &str)> = text.lines().filter_map(|l| l.split_once('=')).collect();
    // The last definition wins, as with a shell environment.
    let lookup = |name: &str| {
        vars.iter()
            .rev()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_string())
    };
    let Ok(config) = KlipperConfig::from_vars(lookup) else {
        return;
    };
    let table = default_table_name(config.protocol, config.src_port);
    for (v4, v6) in [(true, true), (true, false), (false, true), (false, false)] {
        let program = program(&config, Forwarding { v4, v6 }, &table);
        // Whatever the contract accepted must render: a refusal here would only show up
        // in the kernel, after the container started.
        if program.serves_anything()
            && let Err(e) = dualstack_ruleset::nft::render_full(&program.ruleset)
        {
            panic!("accepted config renders no ruleset: {e}\n{config:?}");
        }
    }
});
