//! `dualstack plan` and `dualstack plan check`, run as the built binary.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/plan")
}

/// Runs the binary in the fixtures directory, so file names in the output are short.
fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dualstack"))
        .args(args)
        .current_dir(fixtures())
        .output()
        .expect("run dualstack")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("dualstack-cli-plan-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn plan_without_flags_generates_a_ula_and_prints_a_summary() {
    let o = run(&["plan"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.starts_with("Generated a new IPv6 ULA prefix fd"),
        "{out}"
    );
    assert!(out.contains("cluster-cidr    10.42.0.0/16"), "{out}");
    assert!(out.contains("IPv4 nodes:"), "{out}");
    // Two runs draw two different prefixes.
    assert_ne!(stdout(&run(&["plan"])).lines().next(), out.lines().next());
}

#[test]
fn plan_summary_snapshot_with_a_seed() {
    let o = run(&[
        "plan",
        "--seed",
        "42",
        "--cni",
        "calico",
        "--nodes",
        "1000",
        "--ipv4-base",
        "10.32.0.0/12",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    insta::assert_snapshot!(stdout(&o));
}

#[test]
fn plan_json_is_the_plan() {
    let o = run(&[
        "plan",
        "--ula",
        "fd12:3456:789a::/48",
        "--primary",
        "ipv6",
        "--output",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["ipv6_generated"], false);
    assert_eq!(v["primary"], "ipv6");
    assert_eq!(v["families"][0]["cluster_cidr"], "fd12:3456:789a::/56");
    assert_eq!(v["families"][1]["cluster_dns"], "10.43.0.10");
    assert_eq!(v["families"][1]["nodes"]["value"], "256");
}

#[test]
fn plan_out_writes_files_that_check_clean_and_never_overwrites() {
    let dir = temp_dir("out");
    let d = dir.to_str().unwrap();
    let o = run(&[
        "plan",
        "--ula",
        "fd12:3456:789a::/48",
        "--cni",
        "calico",
        "--replace-servicelb",
        "--out",
        d,
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    for f in [
        "k3s/config.yaml",
        "calico/installation.yaml",
        "calico/ippools.yaml",
        "traefik/helmchartconfig.yaml",
        "plan.json",
    ] {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    let check = run(&[
        "plan",
        "check",
        "--k3s-config",
        &format!("{d}/k3s/config.yaml"),
        "--calico",
        &format!("{d}/calico/installation.yaml"),
        "--traefik",
        &format!("{d}/traefik/helmchartconfig.yaml"),
        "--traefik-chart",
        "39.0.701",
        "--output",
        "json",
    ]);
    assert_eq!(check.status.code(), Some(0), "{}", stdout(&check));
    let v: serde_json::Value = serde_json::from_slice(&check.stdout).unwrap();
    let findings = v["findings"].as_array().unwrap();
    assert!(findings.iter().all(|f| f["severity"] != "error"));
    // Told the chart version the plan rendered for, nothing about Traefik is left to doubt.
    assert!(
        findings
            .iter()
            .all(|f| !f["code"].as_str().unwrap().starts_with("traefik")),
        "{v}"
    );

    let before = std::fs::read_to_string(dir.join("plan.json")).unwrap();
    let again = run(&["plan", "--ula", "fd00:1::/48", "--out", d]);
    assert_eq!(again.status.code(), Some(2));
    assert!(
        stderr(&again).contains("already exists; pass --force"),
        "{}",
        stderr(&again)
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("plan.json")).unwrap(),
        before
    );
    let forced = run(&["plan", "--ula", "fd00:1::/48", "--out", d, "--force"]);
    assert_eq!(forced.status.code(), Some(0));
    assert_ne!(
        std::fs::read_to_string(dir.join("plan.json")).unwrap(),
        before
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_plan_input_exits_2_naming_the_flag() {
    let table: &[(&[&str], &str)] = &[
        (&["plan", "--ula", "fd::/7"], "did you mean fc00::/7"),
        (&["plan", "--ula", "10.0.0.0/8"], "--ula 10.0.0.0/8"),
        (
            &["plan", "--ula", "fd12:3456:789a::/56"],
            "--ula fd12:3456:789a::/56: give a /48",
        ),
        (&["plan", "--ula", "2001:db8:1::/48"], "documentation"),
        (&["plan", "--nodes", "0"], "--nodes 0"),
        (
            &["plan", "--ipv4-base", "10.42.0.0/24"],
            "--ipv4-base 10.42.0.0/24",
        ),
        (&["plan", "--k3s-version", "banana"], "not a version"),
        (
            &["plan", "--k3s-version", "v1.20.4+k3s1"],
            "--k3s-version 1.20.4",
        ),
        (&["plan", "--cni", "weave"], "weave"),
    ];
    for (args, want) in table {
        let dir = temp_dir("bad");
        let mut with_out = args.to_vec();
        let d = dir.to_str().unwrap().to_owned();
        with_out.extend(["--out", &d]);
        let o = run(&with_out);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(want), "{args:?}: {}", stderr(&o));
        assert!(!dir.exists(), "{args:?} wrote files");
    }
}

#[test]
fn check_the_blog_setup() {
    let args = [
        "plan",
        "check",
        "--k3s-service",
        "blog-k3s.service",
        "--calico",
        "blog-calico.yaml",
        "--traefik",
        "blog-traefik.yaml",
        "--k3s-version",
        "v1.21.4+k3s1",
    ];
    let o = run(&args);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    insta::assert_snapshot!(stdout(&o));

    let mut json = args.to_vec();
    json.extend(["--output", "json"]);
    let o = run(&json);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let findings = v["findings"].as_array().unwrap();
    for f in findings {
        for key in ["severity", "code", "message", "fix"] {
            assert!(f[key].is_string(), "{key} missing in {f}");
        }
    }
    let codes: Vec<&str> = findings
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    assert!(
        codes.contains(&"systemd-continuation-broken") && codes.contains(&"node-mask-one-node"),
        "{codes:?}"
    );
}

#[test]
fn check_reads_config_yaml_d_drop_ins() {
    let o = run(&[
        "plan",
        "check",
        "--k3s-config",
        "config.yaml",
        "--output",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let findings = v["findings"].as_array().unwrap();
    let has = |code: &str, src: &str| {
        findings
            .iter()
            .any(|f| f["code"] == code && f["source"].as_str().is_some_and(|s| s.starts_with(src)))
    };
    assert!(has("list-whitespace", "config.yaml:3"), "{findings:#?}");
    assert!(
        has("special-purpose-range", "config.yaml:"),
        "{findings:#?}"
    );
    assert!(
        has("obsolete-feature-gate", "config.yaml:7"),
        "{findings:#?}"
    );
    // From the drop-in: node-ip with one family, and an appended IPv6 node mask 24 bits long.
    assert!(
        has("node-ip-single-family", "config.yaml.d/50-nodes.yaml:2"),
        "{findings:#?}"
    );
    assert!(
        has("node-mask-diff-too-large", "config.yaml.d/50-nodes.yaml:5"),
        "{findings:#?}"
    );
}

#[test]
fn check_k3s_args_and_traefik_chart_40() {
    let o = run(&[
        "plan",
        "check",
        "--k3s-args",
        "server --cluster-cidr=10.42.0.0/16,fd12:3456:789a::/56 --service-cidr 10.43.0.0/16,fd12:3456:789a:100::/112 --node-ip='192.168.1.10,fd12:3456:789a:ffff::10' --flannel-ipv6-masq",
        "--traefik",
        "traefik-v40.yaml",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let out = stdout(&o);
    assert!(
        out.starts_with("error   traefik-key-ignored  (traefik-v40.yaml:12)"),
        "{out}"
    );
    assert!(
        out.ends_with("1 error(s), 1 warning(s), 2 note(s)\n"),
        "{out}"
    );
}

/// A unit as systemd assembles it: the installed unit, a drop-in that replaces ExecStart=, and
/// the environment file the unit names.
#[test]
fn check_a_unit_with_a_drop_in_and_an_environment_file() {
    let dir = temp_dir("unit");
    let drop_in_dir = dir.join("k3s.service.d");
    std::fs::create_dir_all(&drop_in_dir).unwrap();
    let env_file = dir.join("k3s.service.env");
    std::fs::write(
        &env_file,
        "K3S_TOKEN='not printed'\nPODS=10.42.0.0/16,fd12:3456:789a::/56\nNODE_IPS=\"192.168.1.10,fd12:3456:789a:ffff::10\"\n",
    )
    .unwrap();
    let unit = dir.join("k3s.service");
    std::fs::write(
        &unit,
        format!(
            "[Unit]\nDescription=Lightweight Kubernetes\n\n[Service]\nType=notify\nEnvironmentFile=-{}\nEnvironmentFile=-/nonexistent/%N\nExecStart=/usr/local/bin/k3s server\n",
            env_file.display()
        ),
    )
    .unwrap();
    let drop_in = |exec: &str| {
        std::fs::write(
            drop_in_dir.join("10-dual-stack.conf"),
            format!("[Service]\n{exec}"),
        )
        .unwrap();
    };
    let check = || {
        let o = run(&[
            "plan",
            "check",
            "--k3s-service",
            unit.to_str().unwrap(),
            "--output",
            "json",
        ]);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        (o.status.code(), v["findings"].as_array().unwrap().clone())
    };
    let codes = |f: &[serde_json::Value]| -> Vec<String> {
        f.iter()
            .map(|f| f["code"].as_str().unwrap().to_owned())
            .collect()
    };
    let replace = "ExecStart=\nExecStart=/usr/local/bin/k3s server \\\n  --cluster-cidr=${PODS} \\\n  --service-cidr=10.43.0.0/16,fd12:3456:789a:100::/112 \\\n";

    // A comment after --flannel-ipv6-masq: `#` and its words go to K3s, which stops reading
    // flags there, so --node-ip is not in force.
    drop_in(&format!(
        "{replace}  --flannel-ipv6-masq # ULA pods need masquerading \\\n  --node-ip=${{NODE_IPS}}\n"
    ));
    let (code, findings) = check();
    assert_eq!(code, Some(1), "{findings:#?}");
    let stray = &findings[0];
    assert_eq!(stray["code"], "systemd-stray-argument");
    assert_eq!(
        stray["source"],
        format!("{}:6", drop_in_dir.join("10-dual-stack.conf").display())
    );
    let message = stray["message"].as_str().unwrap();
    assert!(
        message.contains("`#`, `ULA`, `pods`, `need`, `masquerading`")
            && message.contains("NOT in force: `--node-ip=192.168.1.10,fd12:3456:789a:ffff::10`"),
        "{message}"
    );
    assert!(codes(&findings).contains(&"node-ip-single-family".to_owned()));
    assert!(
        !serde_json::to_string(&findings)
            .unwrap()
            .contains("not printed")
    );

    // Fixed: the variables come from the environment file; nothing but notes is left.
    drop_in(&format!(
        "{replace}  --flannel-ipv6-masq \\\n  --node-ip=${{NODE_IPS}}\n"
    ));
    let (code, findings) = check();
    assert_eq!(code, Some(0), "{findings:#?}");
    assert!(
        findings.iter().all(|f| f["severity"] == "info"),
        "{findings:#?}"
    );

    // Away from the node: a copy of the environment file stands in for the one the unit names.
    let copied = dir.join("copied");
    std::fs::create_dir_all(&copied).unwrap();
    std::fs::write(copied.join("k3s.service.env"), "PODS=10.42.0.0/16\n").unwrap();
    std::fs::write(
        drop_in_dir.join("10-dual-stack.conf"),
        "[Service]\nEnvironmentFile=\nEnvironmentFile=/etc/systemd/system/k3s.service.env\nExecStart=\nExecStart=/usr/local/bin/k3s server --cluster-cidr=${PODS}\n",
    )
    .unwrap();
    let with_copy = |copy: &Path| {
        run(&[
            "plan",
            "check",
            "--k3s-service",
            unit.to_str().unwrap(),
            "--k3s-env",
            copy.to_str().unwrap(),
            "--output",
            "json",
        ])
    };
    let o = with_copy(&copied.join("k3s.service.env"));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let findings = v["findings"].as_array().unwrap();
    assert!(
        findings
            .iter()
            .all(|f| f["code"] != "systemd-unset-variable"),
        "{findings:#?}"
    );
    let capacity = findings.iter().find(|f| f["code"] == "capacity").unwrap();
    assert!(
        capacity["message"]
            .as_str()
            .unwrap()
            .starts_with("IPv4 10.42.0.0/16"),
        "{capacity}"
    );
    assert!(
        capacity["source"]
            .as_str()
            .unwrap()
            .ends_with("10-dual-stack.conf:5"),
        "{capacity}"
    );
    let o = with_copy(&copied.join("other.env"));
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains(
            "names no EnvironmentFile= of that name (it names: /etc/systemd/system/k3s.service.env)"
        ),
        "{}",
        stderr(&o)
    );

    // A drop-in that forgets the empty ExecStart= first: systemd refuses the unit.
    drop_in("ExecStart=/usr/local/bin/k3s server --flannel-ipv6-masq\n");
    let (code, findings) = check();
    assert_eq!(code, Some(1));
    assert_eq!(codes(&findings)[0], "systemd-multiple-exec-start");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--traefik values.yaml` as a Traefik user outside K3s's bundle has it, with the chart
/// version they install.
#[test]
fn check_plain_traefik_values_files() {
    const DUAL: &str = "server --cluster-cidr=10.42.0.0/16,fd12:3456:789a::/56 --service-cidr 10.43.0.0/16,fd12:3456:789a:100::/112 --node-ip=192.168.1.10,fd12:3456:789a:ffff::10 --flannel-ipv6-masq";
    let check = |values: &str, chart: &str| {
        run(&[
            "plan",
            "check",
            "--k3s-args",
            DUAL,
            "--traefik",
            values,
            "--traefik-chart",
            chart,
            "--output",
            "json",
        ])
    };
    let traefik_findings = |o: &Output| -> Vec<serde_json::Value> {
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["code"].as_str().unwrap().starts_with("traefik"))
            .cloned()
            .collect()
    };

    // Chart defaults: a SingleStack Service. A warning (exit 0) with the key of the chart.
    for (chart, key) in [
        ("41.0.2", "service.spec.ipFamilyPolicy: PreferDualStack"),
        ("39.0.8", "service.ipFamilyPolicy: PreferDualStack"),
    ] {
        let o = check("traefik-values-defaults.yaml", chart);
        assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
        let f = traefik_findings(&o);
        assert_eq!(f.len(), 1, "{f:#?}");
        assert_eq!(f[0]["code"], "traefik-no-ip-family-policy");
        assert_eq!(f[0]["severity"], "warning");
        assert!(
            f[0]["fix"]
                .as_str()
                .unwrap()
                .starts_with(&format!("set {key}")),
            "{chart}: {}",
            f[0]["fix"]
        );
    }

    // The pre-40 keys carried over to chart 41: ignored, so an error at their line.
    let o = check("traefik-values-old-keys.yaml", "41.0.2");
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let f = traefik_findings(&o);
    assert_eq!(f[0]["code"], "traefik-key-ignored");
    assert_eq!(f[0]["severity"], "error");
    assert_eq!(f[0]["source"], "traefik-values-old-keys.yaml:7");
    // The same file on the chart it was written for is fine, and so is the spec form on 41.
    for (values, chart) in [
        ("traefik-values-old-keys.yaml", "39.0.8"),
        ("traefik-values-spec.yaml", "41.0.2"),
        ("traefik-values-spec.yaml", "39.0.8"),
    ] {
        let o = check(values, chart);
        assert_eq!(o.status.code(), Some(0), "{values} {chart}: {}", stdout(&o));
        assert!(traefik_findings(&o).is_empty(), "{values} {chart}");
    }

    // Text output names the file and what to do.
    let o = run(&["plan", "check", "--traefik", "traefik-values-defaults.yaml"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.starts_with("warning traefik-no-ip-family-policy\n"),
        "{out}"
    );
    assert!(out.contains("pass --traefik-chart"), "{out}");
}

#[test]
fn unreadable_or_unparsable_inputs_exit_2_and_say_where() {
    let table: &[(&[&str], &str)] = &[
        (&["plan", "check"], "nothing to check"),
        (
            &["plan", "check", "--calico", "missing.yaml"],
            "missing.yaml: cannot read",
        ),
        (
            &["plan", "check", "--k3s-config", "broken.yaml"],
            "broken.yaml: not valid YAML",
        ),
        (
            &["plan", "check", "--k3s-service", "config.yaml"],
            "no ExecStart=",
        ),
        (
            &["plan", "check", "--traefik", "blog-calico.yaml"],
            "no HelmChart or HelmChartConfig named `traefik`",
        ),
        (
            &["plan", "check", "--k3s-args", "server --node-ip '10.0.0.1"],
            "unterminated",
        ),
    ];
    for (args, want) in table {
        let o = run(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(want), "{args:?}: {}", stderr(&o));
        assert!(o.stdout.is_empty(), "{args:?} printed findings");
    }
}
