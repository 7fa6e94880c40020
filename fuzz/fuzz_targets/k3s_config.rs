//! K3s `config.yaml` and `config.yaml.d/*.yaml` drop-ins (NUL-separated in the input), read
//! together, then every `plan check` rule over the merged options.
#![no_main]

use dualstack_plan::check::CheckInput;
use dualstack_plan::input::k3s_config::read_config_files;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let files = dualstack_fuzz::split_files(text, 4);
    if let Ok(options) = read_config_files(&files) {
        dualstack_fuzz::plan_check(&CheckInput {
            k3s: Some(options),
            ..CheckInput::default()
        });
    }
});
