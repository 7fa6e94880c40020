//! Calico input (operator `Installation`, `IPPool`s, a `calico.yaml` manifest), checked alone
//! and against a dual-stack K3s view (the rules that compare pools with cluster CIDRs).
#![no_main]

use dualstack_plan::check::CheckInput;
use dualstack_plan::input::Origin;
use dualstack_plan::input::args::read_args;
use dualstack_plan::input::calico::read_calico;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(calico) = read_calico("calico.yaml", text) else {
        return;
    };
    let words: Vec<String> = [
        "server",
        "--cluster-cidr=10.42.0.0/16,fd00:42::/56",
        "--service-cidr=10.43.0.0/16,fd00:43::/112",
        "--flannel-backend=none",
        "--disable-network-policy",
    ]
    .map(String::from)
    .to_vec();
    let k3s = read_args(&words, &Origin::new("args", None)).ok();
    for k3s in [None, k3s] {
        dualstack_fuzz::plan_check(&CheckInput {
            k3s,
            calico: Some(calico.clone()),
            ..CheckInput::default()
        });
    }
});
