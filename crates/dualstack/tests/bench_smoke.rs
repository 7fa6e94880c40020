//! `dualstack bench` cannot silently rot: the smallest sync bench runs (as root, inside its
//! own namespaces) and its JSON has every documented key. Numbers are not checked — a
//! benchmark measures, it does not pass or fail. Bad input exits 2 without root.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use dualstack_testbed::kernel_tests_enabled;
use serde_json::Value;

fn dualstack(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_dualstack"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn bench_sync_json_has_every_key() {
    if !kernel_tests_enabled("bench_sync_json_has_every_key") {
        return;
    }
    let out = dualstack(&[
        "bench",
        "sync",
        "--services",
        "1,10",
        "--runs",
        "1",
        "--output",
        "json",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bench sync failed: {stderr}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["bench"], "sync");
    for key in ["nproc", "kernel", "nft", "iptables", "loadavg"] {
        assert!(!report["machine"][key].is_null(), "machine.{key} missing");
    }
    let results = report["results"].as_array().unwrap();
    let counts: Vec<u64> = results
        .iter()
        .map(|r| r["services"].as_u64().unwrap())
        .collect();
    assert_eq!(counts, [1, 10]);
    for r in results {
        for key in ["full_sync_ms", "incremental_ms", "restore_ms", "render_ms"] {
            assert!(r[key].as_f64().unwrap() > 0.0, "{key} in {r}");
        }
        // null only when over budget; at 10 Services it never is.
        assert!(r["klipper_style_ms"].as_f64().unwrap() > 0.0, "{r}");
        assert_eq!(r["klipper_style"]["commands_per_service"], 8);
        assert_eq!(r["klipper_style"]["over_budget"], false);
        for key in ["median_ms", "min_ms", "max_ms", "runs"] {
            assert!(r["full_sync"][key].is_number(), "full_sync.{key} in {r}");
            assert!(
                r["incremental_add"][key].is_number(),
                "incremental_add.{key}"
            );
            assert!(
                r["incremental_remove"][key].is_number(),
                "incremental_remove.{key}"
            );
            assert!(r["restore"][key].is_number(), "restore.{key}");
        }
        assert!(r["ratios"]["klipper_style_over_full_sync"].is_number());
        assert!(r["ratios"]["restore_over_full_sync"].is_number());
        let nl = &r["netlink"];
        for key in ["full_sync_ms", "incremental_ms", "encode_ms"] {
            assert!(nl[key].as_f64().unwrap() > 0.0, "netlink.{key} in {r}");
        }
        assert!(
            nl["batch_bytes"].as_u64().unwrap() > 0,
            "netlink.batch_bytes"
        );
        for key in ["median_ms", "min_ms", "max_ms", "runs"] {
            for runs in ["full_sync", "incremental_add", "incremental_remove"] {
                assert!(nl[runs][key].is_number(), "netlink.{runs}.{key}");
            }
        }
        assert!(r["ratios"]["nft_over_netlink_full_sync"].is_number());
        assert!(r["ratios"]["klipper_style_over_netlink_full_sync"].is_number());
    }
}

#[test]
fn bad_service_counts_exit_2() {
    for (list, says) in [
        ("1,x", "\"x\" is not a number"),
        ("0", "0 is out of range"),
        ("50001", "50001 is out of range"),
    ] {
        for sub in ["sync", "datapath", "memory"] {
            let out = dualstack(&["bench", sub, "--services", list]);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{sub} {list}: {stderr}");
            assert!(stderr.contains("--services"), "{stderr}");
            assert!(stderr.contains(says), "{stderr}");
        }
    }
}
