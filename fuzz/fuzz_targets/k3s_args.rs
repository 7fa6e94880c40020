//! `--k3s-args`: one string split into words (quotes, escapes), read as K3s arguments, then
//! the `plan check` rules.
#![no_main]

use dualstack_plan::check::CheckInput;
use dualstack_plan::input::Origin;
use dualstack_plan::input::args::{read_args, split_words};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(words) = split_words("--k3s-args", line) else {
        return;
    };
    if let Ok(options) = read_args(&words, &Origin::new("--k3s-args", None)) {
        dualstack_fuzz::plan_check(&CheckInput {
            k3s: Some(options),
            ..CheckInput::default()
        });
    }
});
