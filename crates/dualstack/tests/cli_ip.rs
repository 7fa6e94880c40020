//! Runs the built `dualstack` binary for every `ip` subcommand: text (snapshots), JSON,
//! exit codes, and every kind of bad input.

// Test helpers outside #[test] functions may unwrap too.
#![allow(clippy::unwrap_used)]

use std::process::Command;

use serde_json::Value;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn dualstack(args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_dualstack"))
        .args(args)
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// Runs with `--output json`, expects exit `code`, returns the parsed object.
fn json(args: &[&str], code: i32) -> Value {
    let mut all = args.to_vec();
    all.extend(["--output", "json"]);
    let r = dualstack(&all);
    assert_eq!(r.code, code, "{args:?}: {}", r.stderr);
    serde_json::from_str(&r.stdout).unwrap()
}

fn ok_text(args: &[&str]) -> String {
    let r = dualstack(args);
    assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
    r.stdout
}

#[test]
fn info_text() {
    insta::assert_snapshot!(
        "info_example_v6",
        ok_text(&["ip", "info", "2003:00e9:f74a:ecf8:0000:0000:0000:0000/64"])
    );
    insta::assert_snapshot!("info_address_v4", ok_text(&["ip", "info", "192.0.2.1"]));
    insta::assert_snapshot!("info_mixed_v6", ok_text(&["ip", "info", "2001::/16"]));
    insta::assert_snapshot!("info_mixed_v4", ok_text(&["ip", "info", "240.0.0.0/4"]));
}

#[test]
fn info_json_has_the_documented_keys() {
    let v = json(
        &["ip", "info", "2003:00e9:f74a:ecf8:0000:0000:0000:0000/64"],
        0,
    );
    assert_eq!(v["canonical"], "2003:e9:f74a:ecf8::/64");
    assert_eq!(v["expanded"], "2003:00e9:f74a:ecf8:0000:0000:0000:0000/64");
    assert_eq!(v["family"], "ipv6");
    assert_eq!(v["prefix_len"], 64);
    assert_eq!(v["network"], "2003:e9:f74a:ecf8::");
    assert_eq!(v["first"], "2003:e9:f74a:ecf8::");
    assert_eq!(v["last"], "2003:e9:f74a:ecf8:ffff:ffff:ffff:ffff");
    assert_eq!(v["addresses"], "18446744073709551616");
    assert_eq!(v["kind"], "global-unicast");
    assert_eq!(v["type"], "prefix");
}

#[test]
fn info_json_table() {
    // (input, canonical, family, prefix_len, addresses, kind)
    let cases: &[(&str, &str, &str, u64, &str, &str)] = &[
        ("10.0.0.0/8", "10.0.0.0/8", "ipv4", 8, "16777216", "private"),
        ("192.0.2.1", "192.0.2.1", "ipv4", 32, "1", "documentation"),
        (
            "100.64.0.0/10",
            "100.64.0.0/10",
            "ipv4",
            10,
            "4194304",
            "cgnat",
        ),
        ("0.0.0.0/0", "0.0.0.0/0", "ipv4", 0, "4294967296", "mixed"),
        (
            "::/0",
            "::/0",
            "ipv6",
            0,
            "340282366920938463463374607431768211456",
            "mixed",
        ),
        (
            "FD12:3456:789A::/48",
            "fd12:3456:789a::/48",
            "ipv6",
            48,
            "1208925819614629174706176",
            "unique-local",
        ),
        (
            "fc00::/8",
            "fc00::/8",
            "ipv6",
            8,
            "1329227995784915872903807060280344576",
            "unique-local-l0",
        ),
        (
            "fc00::/7",
            "fc00::/7",
            "ipv6",
            7,
            "2658455991569831745807614120560689152",
            "mixed",
        ),
        ("fe80::1", "fe80::1", "ipv6", 128, "1", "link-local"),
        (
            "::ffff:192.0.2.1",
            "::ffff:192.0.2.1",
            "ipv6",
            128,
            "1",
            "ipv4-mapped",
        ),
        (
            "2002::/16",
            "2002::/16",
            "ipv6",
            16,
            "5192296858534827628530496329220096",
            "6to4",
        ),
        (
            "64:ff9b::/96",
            "64:ff9b::/96",
            "ipv6",
            96,
            "4294967296",
            "nat64",
        ),
        (
            "3fff::/20",
            "3fff::/20",
            "ipv6",
            20,
            "324518553658426726783156020576256",
            "documentation",
        ),
        (
            "2001:db8:0:0:1:0:0:1",
            "2001:db8::1:0:0:1",
            "ipv6",
            128,
            "1",
            "documentation",
        ),
    ];
    for &(input, canonical, family, len, addresses, kind) in cases {
        let v = json(&["ip", "info", input], 0);
        assert_eq!(v["canonical"], canonical, "{input}");
        assert_eq!(v["family"], family, "{input}");
        assert_eq!(v["prefix_len"], len, "{input}");
        assert_eq!(v["addresses"], addresses, "{input}");
        assert_eq!(v["kind"], kind, "{input}");
    }
    let mixed = json(&["ip", "info", "fc00::/7"], 0);
    assert_eq!(mixed["mixed"]["rest"], Value::Null);
    assert_eq!(mixed["mixed"]["parts"][1]["prefix"], "fd00::/8");
    assert_eq!(mixed["mixed"]["parts"][1]["kind"], "unique-local");
}

#[test]
fn split_lists_children() {
    insta::assert_snapshot!(
        "split_v4",
        ok_text(&["ip", "split", "10.42.0.0/22", "--into", "/24"])
    );
    // The slash is optional; --start/--count page through a huge split.
    let r = dualstack(&[
        "ip",
        "split",
        "fd00::/48",
        "--into",
        "64",
        "--start",
        "255",
        "--count",
        "2",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "fd00:0:0:ff::/64\nfd00:0:0:100::/64\n");
    assert!(r.stderr.contains("listed 2 of 65536"), "{}", r.stderr);

    let v = json(
        &[
            "ip",
            "split",
            "::/0",
            "--into",
            "/128",
            "--count",
            "1",
            "--start",
            "340282366920938463463374607431768211455",
        ],
        0,
    );
    assert_eq!(v["total"], "340282366920938463463374607431768211456");
    assert_eq!(
        v["subnets"][0],
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128"
    );

    let v = json(&["ip", "split", "192.0.2.0/24", "--into", "/26"], 0);
    assert_eq!(v["prefix"], "192.0.2.0/24");
    assert_eq!(v["into"], 26);
    assert_eq!(v["total"], "4");
    assert_eq!(
        v["subnets"],
        serde_json::json!([
            "192.0.2.0/26",
            "192.0.2.64/26",
            "192.0.2.128/26",
            "192.0.2.192/26"
        ])
    );
    // A count larger than what is left lists what is left.
    let v = json(
        &[
            "ip",
            "split",
            "10.0.0.0/23",
            "--into",
            "24",
            "--count",
            "10",
        ],
        0,
    );
    assert_eq!(v["subnets"].as_array().unwrap().len(), 2);
}

#[test]
fn contains_answers_with_its_exit_code() {
    // (prefix, value, exit code, text)
    let cases: &[(&str, &str, i32, &str)] = &[
        (
            "10.0.0.0/8",
            "10.1.2.3",
            0,
            "yes: 10.0.0.0/8 contains 10.1.2.3\n",
        ),
        (
            "10.0.0.0/8",
            "10.1.0.0/16",
            0,
            "yes: 10.0.0.0/8 contains 10.1.0.0/16\n",
        ),
        (
            "10.0.0.0/8",
            "10.0.0.0/8",
            0,
            "yes: 10.0.0.0/8 contains 10.0.0.0/8\n",
        ),
        (
            "10.1.0.0/16",
            "10.0.0.0/8",
            1,
            "no: 10.1.0.0/16 does not contain 10.0.0.0/8\n",
        ),
        (
            "fd00::/8",
            "FD00:0::1",
            0,
            "yes: fd00::/8 contains fd00::1\n",
        ),
        (
            "fd00::/8",
            "fc00::1",
            1,
            "no: fd00::/8 does not contain fc00::1\n",
        ),
        (
            "0.0.0.0/0",
            "::1",
            1,
            "no: 0.0.0.0/0 does not contain ::1 (different families: ipv4 and ipv6)\n",
        ),
    ];
    for &(prefix, value, code, text) in cases {
        let r = dualstack(&["ip", "contains", prefix, value]);
        assert_eq!(
            (r.code, r.stdout.as_str()),
            (code, text),
            "{prefix} {value}"
        );
        let v = json(&["ip", "contains", prefix, value], code);
        assert_eq!(v["contains"], code == 0);
    }
}

#[test]
fn overlap_answers_with_its_exit_code() {
    let r = dualstack(&["ip", "overlap", "10.42.0.0/16", "10.42.7.0/24"]);
    assert_eq!(r.code, 0);
    assert_eq!(
        r.stdout,
        "yes: 10.42.0.0/16 and 10.42.7.0/24 overlap in 10.42.7.0/24 (256 addresses)\n"
    );
    let r = dualstack(&["ip", "overlap", "10.42.0.0/16", "10.43.0.0/16"]);
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stdout,
        "no: 10.42.0.0/16 and 10.43.0.0/16 do not overlap\n"
    );

    let v = json(&["ip", "overlap", "fd00::/8", "fd00::5"], 0);
    assert_eq!(v["overlap"], true);
    assert_eq!(v["intersection"], "fd00::5/128");
    assert_eq!(v["addresses_in_common"], "1");
    let v = json(&["ip", "overlap", "10.0.0.0/8", "::/0"], 1);
    assert_eq!(v["overlap"], false);
    assert_eq!(v["intersection"], Value::Null);
    assert_eq!(v["addresses_in_common"], Value::Null);
}

#[test]
fn ula_with_a_seed_is_reproducible() {
    let a = ok_text(&["ip", "ula", "--seed", "42", "--subnet", "100"]);
    assert_eq!(
        a,
        ok_text(&["ip", "ula", "--seed", "42", "--subnet", "100"])
    );
    assert_ne!(
        a,
        ok_text(&["ip", "ula", "--seed", "43", "--subnet", "100"])
    );
    insta::assert_snapshot!("ula_seed_42", a);

    let v = json(&["ip", "ula", "--seed", "42", "--subnet", "0x00ff"], 0);
    let prefix = v["prefix"].as_str().unwrap();
    let subnet = v["subnet"].as_str().unwrap();
    assert!(
        prefix.starts_with("fd") && prefix.ends_with("::/48"),
        "{prefix}"
    );
    assert_eq!(subnet, prefix.replace("::/48", ":ff::/64"));
    assert_eq!(v["source"], "seed");
    // The prefix is what `ip info` calls locally assigned ULA.
    assert_eq!(json(&["ip", "info", prefix], 0)["kind"], "unique-local");
}

#[test]
fn ula_from_the_os_is_fresh() {
    let a = json(&["ip", "ula"], 0);
    let b = json(&["ip", "ula"], 0);
    assert_eq!(a["source"], "os");
    // Two draws of 40 random bits collide with probability 2^-40.
    assert_ne!(a["prefix"], b["prefix"]);
    for v in [a, b] {
        let p = v["prefix"].as_str().unwrap();
        assert_eq!(json(&["ip", "info", p], 0)["kind"], "unique-local");
        assert_eq!(v["global_id"].as_str().unwrap().len(), 10);
    }
}

#[test]
fn bad_input_exits_2_with_a_reason() {
    let cases: &[(&[&str], &str)] = &[
        (&["ip", "info", "fd::/7"], "did you mean fc00::/7?"),
        (&["ip", "info", "10.0.0.1/8"], "did you mean 10.0.0.0/8?"),
        (
            &["ip", "info", "2001:db8::/129"],
            "IPv6 prefix lengths go from 0 to 128",
        ),
        (
            &["ip", "info", "10.0.0.256"],
            "octet 256 is larger than 255",
        ),
        (&["ip", "info", "garbage"], "is not a valid IP address"),
        (&["ip", "info", ""], "empty value"),
        (&["ip", "info", "10.0.0.0/08"], "leading zero"),
        (
            &["ip", "split", "10.0.0.0/8", "--into", "/4"],
            "children must have a prefix length of at least /8",
        ),
        (
            &["ip", "split", "10.0.0.0/8", "--into", "/33"],
            "expected a prefix length such as /64",
        ),
        (
            &["ip", "split", "10.0.0.0/8", "--into", "x"],
            "expected a prefix length",
        ),
        (
            &["ip", "split", "10.0.0.1/8", "--into", "/16"],
            "did you mean 10.0.0.0/8?",
        ),
        (
            &["ip", "split", "10.0.0.0", "--into", "/32"],
            "is an address, not a prefix",
        ),
        (
            &["ip", "split", "::/0", "--into", "/128"],
            "has 340282366920938463463374607431768211456 /128 subnets; pass --count",
        ),
        (
            &["ip", "split", "10.0.0.0/8", "--into", "/32"],
            "has 16777216 /32 subnets; pass --count",
        ),
        (
            &["ip", "split", "fd00::/48", "--into", "/64", "--count", "0"],
            "--count 0",
        ),
        (
            &[
                "ip",
                "split",
                "fd00::/48",
                "--into",
                "/64",
                "--count",
                "99999999",
            ],
            "at most 1048576",
        ),
        (
            &[
                "ip",
                "split",
                "fd00::/48",
                "--into",
                "/64",
                "--start",
                "65536",
            ],
            "has only 65536 /64 subnets",
        ),
        (
            &["ip", "split", "fd00::/48", "--into", "/64", "--start=-1"],
            "expected a child index",
        ),
        (
            &["ip", "contains", "10.0.0.1", "10.0.0.1"],
            "is an address, not a prefix",
        ),
        (
            &["ip", "contains", "10.0.0.0/8", "10.0.0.0/4"],
            "did you mean 0.0.0.0/4?",
        ),
        (&["ip", "overlap", "10.0.0.0/8", "nope"], "second value"),
        (
            &["ip", "overlap", "1.2.3.4.5", "10.0.0.0/8"],
            "5 dot-separated parts",
        ),
        (&["ip", "ula", "--subnet", "10000"], "1 to 4 hex digits"),
        (&["ip", "ula", "--subnet", "xyz"], "1 to 4 hex digits"),
        (&["ip", "ula", "--seed=-3"], "invalid value '-3'"),
        (&["ip", "info", "10.0.0.0/8", "--output", "yaml"], "yaml"),
    ];
    for &(args, needle) in cases {
        let r = dualstack(args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(r.stdout.is_empty(), "{args:?} printed {:?}", r.stdout);
        assert!(
            r.stderr.contains(needle),
            "{args:?}: {:?} lacks {needle:?}",
            r.stderr
        );
    }
}

#[test]
fn a_closed_pipe_ends_the_command_quietly() {
    use std::io::{BufRead, BufReader};
    // 65,536 lines: far more than the pipe holds, so the writer hits the closed pipe.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_dualstack"))
        .args(["ip", "split", "10.0.0.0/8", "--into", "/24"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert_eq!(first, "10.0.0.0/24\n");
    // The reader is gone (like `| head -1`): the process must end without a panic.
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!out.status.success() || stderr.is_empty(), "{stderr}");
}
