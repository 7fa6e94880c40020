//! Every `plan check` rule on realistic input: configs written the way people post them
//! (comments, odd spacing, mixed quoting), including the blog this project automates.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

use dualstack_plan::check::{CheckFiles, check};
use dualstack_plan::version::Version;
use dualstack_plan::{Finding, Severity};

const BLOG_UNIT: &str = include_str!("inputs/blog-k3s.service");
const BLOG_CALICO: &str = include_str!("inputs/blog-calico.yaml");
const BLOG_TRAEFIK: &str = include_str!("inputs/blog-traefik.yaml");

fn config(text: &str) -> CheckFiles {
    CheckFiles {
        k3s_config: vec![("config.yaml".into(), text.into())],
        ..CheckFiles::default()
    }
}

fn run(files: &CheckFiles) -> Vec<Finding> {
    check(&files.read().expect("inputs read"))
}

fn find<'a>(findings: &'a [Finding], code: &str) -> Vec<&'a Finding> {
    findings
        .iter()
        .filter(|f| f.code.as_str() == code)
        .collect()
}

fn has(findings: &[Finding], code: &str, severity: Severity) -> bool {
    find(findings, code).iter().any(|f| f.severity == severity)
}

fn errors(findings: &[Finding]) -> Vec<String> {
    findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .map(|f| format!("{}: {}", f.code, f.message))
        .collect()
}

/// A good dual-stack config, as a user would write it.
const GOOD: &str = "# /etc/rancher/k3s/config.yaml\n\
cluster-cidr: \"10.42.0.0/16,fd12:3456:789a::/56\"\n\
service-cidr: '10.43.0.0/16,fd12:3456:789a:100::/112'\n\
node-ip: 192.168.1.10,fd12:3456:789a:ffff::10\n\
flannel-ipv6-masq: true\n\
kube-controller-manager-arg:\n  - node-cidr-mask-size-ipv4=24\n  - node-cidr-mask-size-ipv6=64\n";

#[test]
fn a_good_dual_stack_config_has_no_errors_or_warnings() {
    let findings = run(&config(GOOD));
    assert!(
        findings.iter().all(|f| f.severity == Severity::Info),
        "{findings:#?}"
    );
    assert_eq!(find(&findings, "capacity").len(), 2);
    assert!(find(&findings, "capacity")[0].message.contains("256 nodes"));
}

#[test]
fn the_blog_setup_reports_what_went_wrong() {
    let files = CheckFiles {
        k3s_service: Some(("k3s.service".into(), BLOG_UNIT.into())),
        calico: Some(("calico.yaml".into(), BLOG_CALICO.into())),
        traefik: Some(("traefik.yaml".into(), BLOG_TRAEFIK.into())),
        k3s_version: Some(Version::new(1, 21, 4)),
        ..CheckFiles::default()
    };
    let findings = run(&files);
    let broken = find(&findings, "systemd-continuation-broken");
    assert_eq!(broken.len(), 1);
    assert_eq!(broken[0].source.as_deref(), Some("k3s.service:32"));
    assert!(broken[0].message.contains("--kube-proxy-arg cluster-cidr="));
    assert!(
        broken[0].message.contains("`\\ # 118`"),
        "{}",
        broken[0].message
    );
    assert_eq!(broken[0].severity, Severity::Error);
    // systemd passes `\ #` and `118` to K3s; after a flag's value they are ignored positional
    // arguments, so every flag before them is in force.
    let stray = find(&findings, "systemd-stray-argument");
    assert_eq!(stray.len(), 1, "{findings:#?}");
    assert_eq!(stray[0].severity, Severity::Error);
    assert_eq!(stray[0].source.as_deref(), Some("k3s.service:32"));
    assert!(
        stray[0].message.contains("`\\ #`, `118`"),
        "{}",
        stray[0].message
    );
    assert!(stray[0].message.contains("every flag before them is read"));
    // One fix for both: end line 32 in `\` (not "remove the backslash").
    assert!(
        stray[0]
            .fix
            .starts_with("they come from `\\ # 118` on this line"),
        "{}",
        stray[0].fix
    );
    // The dropped kubelet and kube-proxy feature gates are not reported as if in force.
    let gates = find(&findings, "obsolete-feature-gate");
    assert_eq!(gates.len(), 2, "{gates:#?}");
    assert!(
        gates
            .iter()
            .all(|f| !f.message.contains("kubelet") && !f.message.contains("kube-proxy")),
        "{gates:#?}"
    );
    assert_eq!(gates[0].source.as_deref(), Some("k3s.service:27"));
    // /24 pods with a /24 node mask and /96 with /96: one node each.
    let one = find(&findings, "node-mask-one-node");
    assert_eq!(one.len(), 2, "{findings:#?}");
    assert!(one[0].message.contains("only ONE node"));
    // kube-proxy lost its cluster-cidr with the dropped lines, so it uses K3s's default.
    assert!(has(&findings, "component-mismatch", Severity::Error));
    assert!(has(&findings, "obsolete-feature-gate", Severity::Warning));
    assert!(has(&findings, "obsolete-flag", Severity::Warning));
    assert!(has(&findings, "per-component-flag", Severity::Warning));
    assert!(has(&findings, "node-ip-single-family", Severity::Warning));
    assert!(has(&findings, "dual-stack-unsupported", Severity::Warning));
    assert!(!has(
        &findings,
        "calico-pool-outside-cluster-cidr",
        Severity::Error
    ));
    assert!(has(&findings, "calico-ip6-autodetect", Severity::Warning));
    assert!(!has(&findings, "few-pods-per-node", Severity::Warning));
    // Traefik 9.18.2 reads service.spec verbatim: dual-stack there is fine.
    assert!(find(&findings, "traefik-key-ignored").is_empty());
    assert!(find(&findings, "traefik-no-ip-family-policy").is_empty());
}

#[test]
fn unit_findings_say_what_systemd_runs() {
    let unit = |exec: &str| CheckFiles {
        k3s_service: Some((
            "k3s.service".into(),
            format!("[Unit]\nDescription=Lightweight Kubernetes\n\n[Service]\nType=notify\n{exec}"),
        )),
        ..CheckFiles::default()
    };
    // (ExecStart= block, code, severity, message fragment, source)
    let table: &[(&str, &str, Severity, &str, &str)] = &[
        (
            "ExecStart=/usr/local/bin/k3s server \\ \n  --flannel-ipv6-masq\n",
            "systemd-continuation-broken",
            Severity::Error,
            "it ends in `\\` followed by whitespace, so `\\` is not its last character",
            "k3s.service:6",
        ),
        (
            "ExecStart=/usr/local/bin/k3s \\ \n  server\n",
            "systemd-stray-argument",
            Severity::Error,
            "K3s receives `\\` where it expects the `server` or `agent` subcommand",
            "k3s.service:6",
        ),
        (
            "ExecStart=/usr/local/bin/k3s server \\\n  --node-name=my\\qnode\n",
            "systemd-unknown-escape",
            Severity::Warning,
            "`--node-name=my\\qnode`",
            "k3s.service:7",
        ),
        (
            "ExecStart=/usr/local/bin/k3s server --cluster-cidr=${PODS}\n",
            "systemd-unset-variable",
            Severity::Warning,
            "`PODS` is used in ExecStart= but no Environment= or EnvironmentFile= sets it",
            "k3s.service:6",
        ),
        (
            "ExecStart=/usr/local/bin/k3s server ; /bin/true\n",
            "systemd-multiple-exec-start",
            Severity::Error,
            "2 ExecStart= commands (k3s.service:6) for a Type=notify service",
            "k3s.service:6",
        ),
    ];
    for (exec, code, severity, fragment, source) in table {
        let findings = run(&unit(exec));
        let f = find(&findings, code);
        assert_eq!(f.len(), 1, "{exec}: {findings:#?}");
        assert_eq!(f[0].severity, *severity, "{exec}");
        assert!(f[0].message.contains(fragment), "{exec}: {}", f[0].message);
        assert_eq!(f[0].source.as_deref(), Some(*source), "{exec}");
    }
    // `k3s \ ` (k3s#1645): the stray `\` is the continuation the trailing space broke.
    let findings = run(&unit(table[1].0));
    let stray = find(&findings, "systemd-stray-argument");
    assert!(
        stray[0].fix.contains("delete the whitespace after it"),
        "{}",
        stray[0].fix
    );
    // The flag on the dropped line is not in force: the check does not see flannel-ipv6-masq.
    let dropped = run(&unit(
        "ExecStart=/usr/local/bin/k3s server --cluster-cidr=10.42.0.0/16,fd00:42::/56 \\ \n  --flannel-ipv6-masq\n",
    ));
    assert!(
        has(&dropped, "flannel-ipv6-no-masq", Severity::Warning),
        "{dropped:#?}"
    );
}

struct Case {
    name: &'static str,
    files: CheckFiles,
    code: &'static str,
    severity: Severity,
    message_has: &'static str,
}

fn case(
    name: &'static str,
    cfg: &str,
    code: &'static str,
    severity: Severity,
    message_has: &'static str,
) -> Case {
    Case {
        name,
        files: config(cfg),
        code,
        severity,
        message_has,
    }
}

#[test]
fn k3s_config_rules() {
    let cases = vec![
        case(
            "too many",
            "cluster-cidr: 10.42.0.0/16,fd00:42::/56,10.52.0.0/16\n",
            "too-many-entries",
            Severity::Error,
            "3 entries",
        ),
        case(
            "same family",
            "service-cidr: \"10.43.0.0/16,10.44.0.0/16\"\n",
            "same-family-pair",
            Severity::Error,
            "two IPv4",
        ),
        case(
            "order",
            "cluster-cidr: fd12:3456:789a::/56,10.42.0.0/16\nservice-cidr: 10.43.0.0/16,fd12:3456:789a:100::/112\n",
            "family-order-mismatch",
            Severity::Error,
            "service-cidr starts with IPv4",
        ),
        case(
            "dns order",
            "cluster-cidr: 10.42.0.0/16,fd12:3456:789a::/56\nservice-cidr: 10.43.0.0/16,fd12:3456:789a:100::/112\ncluster-dns: fd12:3456:789a:100::a,10.43.0.10\n",
            "family-order-mismatch",
            Severity::Error,
            "cluster-dns starts with IPv6",
        ),
        case(
            "whitespace",
            "cluster-cidr: 10.42.0.0/16, fd12:3456:789a::/56  # pods\n",
            "list-whitespace",
            Severity::Error,
            "whitespace",
        ),
        case(
            "host bits",
            "cluster-cidr: 10.42.0.1/16\n",
            "host-bits-set",
            Severity::Warning,
            "10.42.0.0/16",
        ),
        case(
            "not canonical",
            "cluster-cidr: 10.42.0.0/16,FD45:0A71:55A6:0001::/64\n",
            "not-canonical",
            Severity::Info,
            "fd45:a71:55a6:1::/64",
        ),
        case(
            "garbage",
            "service-cidr: 10.43.0.0/16,fd00:43::/129\n",
            "invalid-value",
            Severity::Error,
            "fd00:43::/129",
        ),
        case(
            "service v4 too large",
            "service-cidr: 10.0.0.0/8\n",
            "service-range-too-large",
            Severity::Error,
            "K3s v1.33 and older",
        ),
        case(
            "service v6 too large",
            "service-cidr: 10.43.0.0/16,fd12:3456:789a:100::/64\n",
            "service-range-too-large",
            Severity::Error,
            "larger than /108",
        ),
        case(
            "service v6 clamped",
            "service-cidr: 10.43.0.0/16,fd12:3456:789a:100::/108\n",
            "service-range-clamped",
            Severity::Warning,
            "65,536",
        ),
        case(
            "service too small",
            "service-cidr: 10.43.0.0/29\n",
            "service-range-too-small",
            Severity::Error,
            "index 10",
        ),
        case(
            "dns outside",
            "service-cidr: 10.43.0.0/16\ncluster-dns: 10.96.0.10\n",
            "cluster-dns-outside-service-cidr",
            Severity::Error,
            "10.96.0.10",
        ),
        case(
            "dns one family",
            "service-cidr: 10.43.0.0/16,fd12:3456:789a:100::/112\ncluster-dns: 10.43.0.10\n",
            "cluster-dns-missing-family",
            Severity::Warning,
            "only IPv4",
        ),
        case(
            "mask shorter",
            "cluster-cidr: 10.42.0.0/16\nkube-controller-manager-arg: [\"node-cidr-mask-size-ipv4=12\"]\n",
            "node-mask-shorter-than-cidr",
            Severity::Error,
            "no node",
        ),
        case(
            "one node",
            "cluster-cidr: 10.42.0.0/24,fd12:3456:789a::/64\nkube-controller-manager-arg:\n- node-cidr-mask-size-ipv4=24\n",
            "node-mask-one-node",
            Severity::Error,
            "only ONE node",
        ),
        case(
            "default v6 mask one node",
            "cluster-cidr: 10.42.0.0/16,fd12:3456:789a::/64\n",
            "node-mask-one-node",
            Severity::Error,
            "node-cidr-mask-size-ipv6 /64",
        ),
        case(
            "v6 diff",
            "cluster-cidr: 10.42.0.0/16,fd12:3400::/40\n",
            "node-mask-diff-too-large",
            Severity::Error,
            "K3s exits at startup",
        ),
        case(
            "v4 diff",
            "cluster-cidr: 10.0.0.0/8\nkube-controller-manager-arg: node-cidr-mask-size-ipv4=26\n",
            "node-mask-diff-too-large",
            Severity::Warning,
            "18 bits",
        ),
        case(
            "unsuffixed",
            "cluster-cidr: 10.42.0.0/16,fd12:3456:789a::/56\nkube-controller-manager-arg: --node-cidr-mask-size=24\n",
            "node-mask-unsuffixed",
            Severity::Error,
            "not allowed with dual-stack",
        ),
        case(
            "wrong family mask",
            "cluster-cidr: 10.42.0.0/16\nkube-controller-manager-arg: node-cidr-mask-size-ipv6=64\n",
            "node-mask-wrong-family",
            Severity::Error,
            "no IPv6 range",
        ),
        case(
            "few pods",
            "kube-controller-manager-arg: node-cidr-mask-size-ipv4=26\n",
            "few-pods-per-node",
            Severity::Warning,
            "61 pod addresses",
        ),
        case(
            "pods overlap services",
            "cluster-cidr: 10.42.0.0/15\nservice-cidr: 10.43.0.0/16\n",
            "ranges-overlap",
            Severity::Error,
            "overlap",
        ),
        case(
            "node in pods",
            "cluster-cidr: 192.168.0.0/16\nnode-ip: 192.168.1.10\n",
            "ranges-overlap",
            Severity::Error,
            "192.168.1.10",
        ),
        case(
            "documentation range",
            "cluster-cidr: 10.42.0.0/16,2001:db8:42::/56\nservice-cidr: 10.43.0.0/16,2001:db8:43::/112\n",
            "special-purpose-range",
            Severity::Error,
            "2001:db8::/32",
        ),
        case(
            "cgnat",
            "cluster-cidr: 100.64.0.0/16\n",
            "discouraged-range",
            Severity::Warning,
            "carrier-grade NAT",
        ),
        case(
            "link-local node ip",
            "node-ip: 192.168.1.10,fe80::1\ncluster-cidr: 10.42.0.0/16,fd12:3456:789a::/56\nservice-cidr: 10.43.0.0/16,fd12:3456:789a:100::/112\n",
            "node-ip-invalid-kind",
            Severity::Error,
            "link-local",
        ),
        case(
            "unspecified node ip",
            "node-ip: 0.0.0.0\n",
            "node-ip-invalid-kind",
            Severity::Error,
            "0.0.0.0",
        ),
        case(
            "single node ip",
            "cluster-cidr: 10.42.0.0/16,fd12:3456:789a::/56\nservice-cidr: 10.43.0.0/16,fd12:3456:789a:100::/112\nnode-ip: 192.168.1.10\n",
            "node-ip-single-family",
            Severity::Warning,
            "only IPv4",
        ),
        case(
            "gate",
            "kube-apiserver-arg:\n  - \"feature-gates=IPv6DualStack=true\"\n",
            "obsolete-feature-gate",
            Severity::Error,
            "v1.25 and newer",
        ),
        case(
            "per component",
            "kube-proxy-arg: [cluster-cidr=10.42.0.0/16]\n",
            "per-component-flag",
            Severity::Warning,
            "cluster-cidr",
        ),
        case(
            "kube-proxy mismatch",
            "cluster-cidr: 10.42.0.0/16,fd12:3456:789a::/56\nkube-proxy-arg:\n  - cluster-cidr=10.42.0.0/16\n",
            "component-mismatch",
            Severity::Error,
            "masquerading",
        ),
        case(
            "flannel ula no masq",
            "cluster-cidr: 10.42.0.0/16,fd12:3456:789a::/56\nservice-cidr: 10.43.0.0/16,fd12:3456:789a:100::/112\n",
            "flannel-ipv6-no-masq",
            Severity::Warning,
            "flannel-ipv6-masq",
        ),
        case(
            "ipv6 first old",
            "cluster-cidr: fd12:3456:789a::/56,10.42.0.0/16\nservice-cidr: fd12:3456:789a:100::/112,10.43.0.0/16\n",
            "ipv6-first-unsupported",
            Severity::Warning,
            "before v1.28",
        ),
    ];
    for c in cases {
        let findings = run(&c.files);
        let matching = find(&findings, c.code);
        assert!(
            matching
                .iter()
                .any(|f| f.severity == c.severity && f.message.contains(c.message_has)),
            "case {:?}: expected {} {} containing {:?}, got {findings:#?}",
            c.name,
            c.severity,
            c.code,
            c.message_has
        );
        assert!(matching.iter().all(|f| !f.fix.is_empty()));
    }
}

#[test]
fn version_makes_rules_exact() {
    let gate = "kube-apiserver-arg: feature-gates=IPv6DualStack=true\n";
    let with = |v: Version| CheckFiles {
        k3s_version: Some(v),
        ..config(gate)
    };
    assert!(has(
        &run(&with(Version::new(1, 25, 0))),
        "obsolete-feature-gate",
        Severity::Error
    ));
    assert!(has(
        &run(&with(Version::new(1, 22, 3))),
        "obsolete-feature-gate",
        Severity::Warning
    ));

    let big = "service-cidr: 10.43.0.0/16,fd12:3456:789a:100::/64\n";
    let with = |v: Version| CheckFiles {
        k3s_version: Some(v),
        ..config(big)
    };
    assert!(has(
        &run(&with(Version::new(1, 33, 1))),
        "service-range-too-large",
        Severity::Error
    ));
    assert!(has(
        &run(&with(Version::new(1, 34, 1))),
        "service-range-too-large",
        Severity::Warning
    ));

    let v6first = "cluster-cidr: fd12:3456:789a::/56,10.42.0.0/16\nservice-cidr: fd12:3456:789a:100::/112,10.43.0.0/16\nnode-ip: fd12:3456:789a:ffff::10,192.168.1.10\nflannel-ipv6-masq: true\n";
    let new = CheckFiles {
        k3s_version: Some(Version::new(1, 30, 0)),
        ..config(v6first)
    };
    assert!(find(&run(&new), "ipv6-first-unsupported").is_empty());
    // The unit can name the version too.
    let unit = "[Service]\nEnvironment=INSTALL_K3S_VERSION=v1.20.15+k3s1\nExecStart=/usr/local/bin/k3s server --cluster-cidr=10.42.0.0/16,fd12:3456:789a::/56\n";
    let files = CheckFiles {
        k3s_service: Some(("k3s.service".into(), unit.into())),
        ..CheckFiles::default()
    };
    assert!(has(&run(&files), "dual-stack-unsupported", Severity::Error));
}

#[test]
fn args_override_config_files() {
    let files = CheckFiles {
        k3s_args: Some("server --cluster-cidr=10.42.0.0/16,fd12:3456:789a::/56 --flannel-ipv6-masq --node-ip '192.168.1.10,fd12:3456:789a:ffff::10' --service-cidr \"10.43.0.0/16,fd12:3456:789a:100::/112\"".into()),
        ..config("cluster-cidr: 10.42.0.0/16\n")
    };
    let findings = run(&files);
    assert!(errors(&findings).is_empty(), "{findings:#?}");
    assert!(find(&findings, "node-ip-single-family").is_empty());
}

fn calico_case(cfg: &str, calico: &str) -> Vec<Finding> {
    run(&CheckFiles {
        calico: Some(("calico.yaml".into(), calico.into())),
        ..config(cfg)
    })
}

const CALICO_K3S: &str = "flannel-backend: none\ndisable-network-policy: true\ncluster-cidr: 10.42.0.0/16,fd12:3456:789a::/56\nservice-cidr: 10.43.0.0/16,fd12:3456:789a:100::/112\nnode-ip: 192.168.1.10,fd12:3456:789a:ffff::10\n";

fn installation(pools: &str) -> String {
    format!(
        "apiVersion: operator.tigera.io/v1\nkind: Installation\nmetadata:\n  name: default\nspec:\n  calicoNetwork:\n    ipPools:\n{pools}"
    )
}

#[test]
fn calico_rules() {
    let good = installation(
        "    - cidr: 10.42.0.0/16\n      blockSize: 26\n      encapsulation: VXLAN\n    - cidr: fd12:3456:789a::/56\n      blockSize: 122\n      encapsulation: None\n      natOutgoing: Enabled\n",
    );
    let findings = calico_case(CALICO_K3S, &good);
    assert!(
        findings.iter().all(|f| f.severity == Severity::Info),
        "{findings:#?}"
    );

    let table: Vec<(&str, String, &str, Severity, &str)> = vec![
        (
            "flannel still on",
            good.clone(),
            "calico-with-flannel",
            Severity::Error,
            "flannel",
        ),
        (
            "outside",
            installation("    - cidr: 192.168.0.0/16\n    - cidr: fd12:3456:789a::/56\n"),
            "calico-pool-outside-cluster-cidr",
            Severity::Error,
            "192.168.0.0/16",
        ),
        (
            "block range",
            installation(
                "    - cidr: 10.42.0.0/16\n      blockSize: 18\n    - cidr: fd12:3456:789a::/56\n",
            ),
            "calico-block-size",
            Severity::Error,
            "outside 20–32",
        ),
        (
            "block bigger than pool",
            installation(
                "    - cidr: 10.42.0.0/16\n    - cidr: fd12:3456:789a::/124\n      blockSize: 122\n",
            ),
            "calico-block-size",
            Severity::Error,
            "smaller than one /122",
        ),
        (
            "not masked",
            installation("    - cidr: 10.42.0.1/16\n    - cidr: fd12:3456:789a::/56\n"),
            "calico-pool-not-masked",
            Severity::Error,
            "strictly masked",
        ),
        (
            "two per family",
            installation(
                "    - cidr: 10.42.0.0/17\n    - cidr: 10.42.128.0/17\n    - cidr: fd12:3456:789a::/56\n",
            ),
            "calico-too-many-pools",
            Severity::Error,
            "one IPPool per version",
        ),
        (
            "ipip v6",
            installation(
                "    - cidr: 10.42.0.0/16\n    - cidr: fd12:3456:789a::/56\n      encapsulation: IPIP\n",
            ),
            "calico-encapsulation",
            Severity::Error,
            "IPIP is not supported",
        ),
        (
            "no v6 pool",
            installation("    - cidr: 10.42.0.0/16\n"),
            "calico-missing-pool",
            Severity::Error,
            "no IPv6 pool",
        ),
        (
            "v6 no nat",
            installation(
                "    - cidr: 10.42.0.0/16\n    - cidr: fd12:3456:789a::/56\n      encapsulation: None\n      natOutgoing: Disabled\n",
            ),
            "calico-ipv6-no-nat-outgoing",
            Severity::Warning,
            "NAT outgoing off",
        ),
    ];
    for (name, calico, code, severity, text) in table {
        let cfg = if name == "flannel still on" {
            GOOD
        } else {
            CALICO_K3S
        };
        let findings = calico_case(cfg, &calico);
        assert!(
            find(&findings, code)
                .iter()
                .any(|f| f.severity == severity && f.message.contains(text)),
            "{name}: {findings:#?}"
        );
    }
}

#[test]
fn calico_manifest_rules_on_the_stock_defaults() {
    // The stock calico.yaml: FELIX_IPV6SUPPORT "false", assign_ipv6 off, no IP6, VXLAN v6 on 3.22.
    let manifest = BLOG_CALICO
        .replace("\"assign_ipv6\": \"true\"", "\"assign_ipv6\": \"false\"")
        .replace("value: \"true\"\n            - name: NODENAME", "value: \"false\"\n            - name: NODENAME")
        .replace("node:v3.20.0", "node:v3.22.0")
        .replace("- name: CALICO_IPV6POOL_NAT_OUTGOING", "- name: CALICO_IPV6POOL_VXLAN\n              value: \"Always\"\n            - name: CALICO_IPV6POOL_NAT_OUTGOING");
    let k3s = "flannel-backend: none\ncluster-cidr: 10.42.0.0/24,fd45:a71:55a6:1:2:2::/96\nkube-controller-manager-arg: [node-cidr-mask-size-ipv4=26, node-cidr-mask-size-ipv6=112]\n";
    let findings = calico_case(k3s, &manifest);
    let disabled = find(&findings, "calico-ipv6-disabled");
    assert_eq!(disabled.len(), 2, "{findings:#?}");
    assert!(
        disabled
            .iter()
            .any(|f| f.message.contains("FELIX_IPV6SUPPORT is \"false\""))
    );
    assert!(disabled.iter().any(|f| f.message.contains("assign_ipv6")));
    assert!(has(&findings, "calico-encapsulation", Severity::Error));
    assert!(has(&findings, "calico-ip6-autodetect", Severity::Warning));
}

fn traefik(doc: &str, cfg: Option<&str>) -> Vec<Finding> {
    let mut files = cfg.map(config).unwrap_or_default();
    files.traefik = Some(("traefik.yaml".into(), doc.into()));
    run(&files)
}

#[test]
fn traefik_rules() {
    let chart = |version: &str, values: &str| {
        format!(
            "apiVersion: helm.cattle.io/v1\nkind: HelmChart\nmetadata:\n  name: traefik\n  namespace: kube-system\nspec:\n  chart: https://%{{KUBERNETES_API}}%/static/charts/traefik-{version}.tgz\n  valuesContent: |-\n{values}"
        )
    };
    let config_doc = |values: &str| {
        format!(
            "apiVersion: helm.cattle.io/v1\nkind: HelmChartConfig\nmetadata:\n  name: traefik\n  namespace: kube-system\nspec:\n  valuesContent: |-\n{values}"
        )
    };
    let old_key = "    service:\n      ipFamilyPolicy: PreferDualStack\n";
    let new_key = "    service:\n      spec:\n        ipFamilyPolicy: PreferDualStack\n";

    assert!(has(
        &traefik(&chart("40.0.0", old_key), Some(GOOD)),
        "traefik-key-ignored",
        Severity::Error
    ));
    assert!(
        find(
            &traefik(&chart("27.0.201+up27.0.2", old_key), Some(GOOD)),
            "traefik-key-ignored"
        )
        .is_empty()
    );
    assert!(
        find(
            &traefik(&chart("41.3.0", new_key), Some(GOOD)),
            "traefik-key-ignored"
        )
        .is_empty()
    );
    assert!(has(
        &traefik(&config_doc(old_key), Some(GOOD)),
        "traefik-key-ignored",
        Severity::Warning
    ));
    // --traefik-chart tells the version a HelmChartConfig does not carry; the file's own
    // version wins over it.
    let told = |doc: String, version: Version| {
        let mut files = config(GOOD);
        files.traefik = Some(("traefik-config.yaml".into(), doc));
        files.traefik_chart = Some(version);
        run(&files)
    };
    assert!(has(
        &told(config_doc(old_key), Version::new(40, 0, 0)),
        "traefik-key-ignored",
        Severity::Error
    ));
    assert!(
        find(
            &told(config_doc(old_key), Version::new(39, 0, 701)),
            "traefik-key-ignored"
        )
        .is_empty()
    );
    assert!(
        find(
            &told(chart("27.0.201+up27.0.2", old_key), Version::new(41, 0, 0)),
            "traefik-key-ignored"
        )
        .is_empty()
    );
    let both = "    service:\n      ipFamilyPolicy: PreferDualStack\n      spec:\n        ipFamilyPolicy: PreferDualStack\n";
    assert!(has(
        &traefik(&chart("39.0.701+up39.0.7", both), Some(GOOD)),
        "traefik-key-ignored",
        Severity::Warning
    ));

    let nothing = "    logs:\n      general:\n        level: INFO\n";
    assert!(has(
        &traefik(&chart("39.0.701+up39.0.7", nothing), Some(GOOD)),
        "traefik-no-ip-family-policy",
        Severity::Warning
    ));
    assert!(has(
        &traefik(&config_doc(nothing), Some(GOOD)),
        "traefik-no-ip-family-policy",
        Severity::Info
    ));
    let single = "    service:\n      spec:\n        ipFamilyPolicy: SingleStack\n";
    assert!(has(
        &traefik(&chart("41.3.0", single), Some(GOOD)),
        "traefik-no-ip-family-policy",
        Severity::Warning
    ));
    // A single-stack cluster needs no policy.
    assert!(
        find(
            &traefik(
                &chart("41.3.0", nothing),
                Some("cluster-cidr: 10.42.0.0/16\n")
            ),
            "traefik-no-ip-family-policy"
        )
        .is_empty()
    );
}

/// Plain Helm values files, as posted in traefik-helm-chart issues.
mod traefik_values {
    /// #453: "Default Helm traefik values" (`helm install traefik traefik/traefik`).
    pub const DEFAULTS: &str = "{}\n";
    /// The workaround from the #526 thread: the Service spec passthrough.
    pub const SPEC: &str = "# values.yaml\ndeployment:\n  replicas: 2\nservice:\n  spec:\n    ipFamilyPolicy: RequireDualStack\nports:\n  web:\n    redirectTo:\n      port: websecure\n";
    /// #1931: `--set service.ipFamilyPolicy=RequireDualStack`, kept in a values file, carried
    /// over from chart 39.0.8 to 41.0.2.
    pub const OLD_KEYS: &str = "logs:\n  access:\n    enabled: true\nservice:\n  type: LoadBalancer\n  ipFamilyPolicy: RequireDualStack\n  ipFamilies:\n    - IPv4\n    - IPv6\n";
}

#[test]
fn traefik_values_files_on_both_sides_of_chart_40() {
    use traefik_values::*;
    let run_values = |values: &str, chart: Option<Version>, cfg: &str| {
        let mut files = config(cfg);
        files.traefik = Some(("values.yaml".into(), values.into()));
        files.traefik_chart = chart;
        run(&files)
    };
    let v = |major, minor, patch| Some(Version::new(major, minor, patch));
    // (values, chart, traefik-key-ignored, traefik-no-ip-family-policy, text of the fix)
    type Case<'a> = (
        &'a str,
        Option<Version>,
        Option<Severity>,
        Option<Severity>,
        &'a str,
    );
    let table: &[Case] = &[
        (
            DEFAULTS,
            v(39, 0, 9),
            None,
            Some(Severity::Warning),
            "set service.ipFamilyPolicy: PreferDualStack (the key chart 39.0.9 reads",
        ),
        (
            DEFAULTS,
            v(40, 0, 0),
            None,
            Some(Severity::Warning),
            "set service.spec.ipFamilyPolicy: PreferDualStack (chart 40.0.0 reads only service.spec",
        ),
        (
            "",
            None,
            None,
            Some(Severity::Warning),
            "or service.spec.ipFamilyPolicy: PreferDualStack from 40.0.0 (pass --traefik-chart",
        ),
        (SPEC, v(41, 0, 2), None, None, ""),
        (SPEC, v(39, 0, 8), None, None, ""),
        (SPEC, None, None, None, ""),
        (OLD_KEYS, v(39, 0, 8), None, None, ""),
        (
            OLD_KEYS,
            v(41, 0, 2),
            Some(Severity::Error),
            Some(Severity::Warning),
            "set service.spec.ipFamilyPolicy: PreferDualStack (chart 41.0.2",
        ),
        (OLD_KEYS, None, Some(Severity::Warning), None, ""),
    ];
    for (i, (values, chart, ignored, no_policy, fix)) in table.iter().enumerate() {
        let findings = run_values(values, *chart, GOOD);
        let severity_of = |code| {
            let found = find(&findings, code);
            assert!(found.len() <= 1, "case {i}: {found:#?}");
            found.first().map(|f| f.severity)
        };
        assert_eq!(severity_of("traefik-key-ignored"), *ignored, "case {i}");
        assert_eq!(
            severity_of("traefik-no-ip-family-policy"),
            *no_policy,
            "case {i}"
        );
        if let Some(f) = find(&findings, "traefik-no-ip-family-policy").first() {
            assert!(f.fix.contains(fix), "case {i}: {}", f.fix);
            assert!(f.message.contains("values file"), "case {i}: {}", f.message);
        }
    }
    // No Service, no policy to set.
    let disabled = run_values("service:\n  enabled: false\n", v(41, 0, 2), GOOD);
    assert!(find(&disabled, "traefik-no-ip-family-policy").is_empty());
    // A single-stack cluster needs no policy, whatever the values say.
    let single = run_values(DEFAULTS, v(41, 0, 2), "cluster-cidr: 10.42.0.0/16\n");
    assert!(find(&single, "traefik-no-ip-family-policy").is_empty());
    // An explicit SingleStack in a values file points at its line.
    let pinned = run_values(
        "service:\n  spec:\n    ipFamilyPolicy: SingleStack\n",
        v(40, 1, 0),
        GOOD,
    );
    let f = find(&pinned, "traefik-no-ip-family-policy");
    assert_eq!(f[0].source.as_deref(), Some("values.yaml:3"), "{f:#?}");
}

#[test]
fn unreadable_inputs_are_errors_that_say_where() {
    let bad = CheckFiles {
        calico: Some(("calico.yaml".into(), "kind: ConfigMap\ndata: [\n".into())),
        ..CheckFiles::default()
    };
    let err = bad.read().unwrap_err().to_string();
    assert!(err.starts_with("calico.yaml: not valid YAML"), "{err}");
    let bad = CheckFiles {
        k3s_args: Some("server --node-ip '192.168.1.10".into()),
        ..CheckFiles::default()
    };
    assert!(bad.read().unwrap_err().to_string().contains("unterminated"));
}
