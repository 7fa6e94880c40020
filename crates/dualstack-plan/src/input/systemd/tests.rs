//! The unit reader on real K3s units: the blog's, and units as quoted in K3s issues.

use proptest::prelude::*;

use super::*;
use crate::input::k3s_config::Component;
use crate::version::Version;

const BLOG_UNIT: &str = include_str!("../../../tests/inputs/blog-k3s.service");

/// The `[Unit]`/`[Service]` head K3s's install script writes (k3s#7141, k3s#13726).
const INSTALL_HEAD: &str = "[Unit]
Description=Lightweight Kubernetes
Documentation=https://k3s.io
Wants=network-online.target
After=network-online.target

[Install]
WantedBy=multi-user.target

[Service]
Type=notify
EnvironmentFile=-/etc/default/%N
EnvironmentFile=-/etc/sysconfig/%N
EnvironmentFile=-/etc/systemd/system/k3s.service.env
KillMode=process
Delegate=yes
# Having non-zero Limit*s causes performance problems due to accounting overhead
# in the kernel. We recommend using cgroups to do container-local accounting.
LimitNOFILE=1048576
LimitNPROC=infinity
LimitCORE=infinity
TasksMax=infinity
TimeoutStartSec=0
Restart=always
RestartSec=5s
ExecStartPre=/bin/sh -xc '! /usr/bin/systemctl is-enabled --quiet nm-cloud-setup.service'
ExecStartPre=-/sbin/modprobe br_netfilter
ExecStartPre=-/sbin/modprobe overlay
";

fn unit(exec: &str) -> String {
    format!("{INSTALL_HEAD}{exec}")
}

fn read(text: &str) -> K3sUnit {
    read_unit("k3s.service", text).unwrap()
}

fn stray(u: &K3sUnit) -> Option<(&[String], &[String], bool)> {
    u.problems.iter().find_map(|p| match p {
        UnitProblem::Stray {
            words,
            unread,
            no_subcommand,
            ..
        } => Some((words.as_slice(), unread.as_slice(), *no_subcommand)),
        _ => None,
    })
}

fn ends_early(u: &K3sUnit) -> Option<&EndsEarly> {
    u.problems.iter().find_map(|p| match p {
        UnitProblem::EndsEarly(e) => Some(e),
        _ => None,
    })
}

#[test]
fn the_blog_unit_ends_at_the_commented_backslash_and_passes_two_stray_words() {
    let u = read(BLOG_UNIT);
    // Exactly what systemd runs: the block ends on line 32, whose `\ # 118` is not a
    // continuation; `\ ` is an unknown escape kept verbatim, so K3s gets `\ #` and `118`.
    let tail: Vec<&str> = u
        .argv
        .iter()
        .rev()
        .take(4)
        .rev()
        .map(String::as_str)
        .collect();
    assert_eq!(
        tail,
        [
            "--kube-controller-manager-arg",
            "node-cidr-mask-size-ipv6=96",
            "\\ #",
            "118"
        ]
    );
    assert_eq!(u.argv.len(), 2 + 1 + 2 + 7 * 2 + 2);
    let e = ends_early(&u).unwrap();
    assert_eq!(e.origin.to_string(), "k3s.service:32");
    assert_eq!(e.cause, EndCause::TextAfterBackslash("\\ # 118".into()));
    assert_eq!(
        e.dropped.iter().map(|d| d.0).collect::<Vec<_>>(),
        [33, 34, 35]
    );
    assert_eq!(
        e.dropped_flags,
        [
            "--kubelet-arg feature-gates=IPv6DualStack=true",
            "--kube-proxy-arg feature-gates=IPv6DualStack=true",
            "--kube-proxy-arg cluster-cidr=10.42.0.0/24,fd45:a71:55a6:1:2:2::/96"
        ]
    );
    // K3s reads every flag before the stray words (they follow a flag's value).
    let (words, unread, no_sub) = stray(&u).unwrap();
    assert_eq!(words, ["\\ #", "118"]);
    assert!(unread.is_empty() && !no_sub);
    // The unknown escape is the stray word's story, not a second finding.
    assert!(
        !u.problems
            .iter()
            .any(|p| matches!(p, UnitProblem::UnknownEscape { .. }))
    );
    let o = &u.options;
    assert!(o.flag("no-flannel") && o.disables("servicelb"));
    assert_eq!(
        o.component_arg(Component::ControllerManager, "node-cidr-mask-size-ipv6")
            .unwrap()
            .value,
        "96"
    );
    // Dropped flags are not in force.
    assert!(
        o.component_arg(Component::KubeProxy, "cluster-cidr")
            .is_none()
    );
    assert!(
        o.component_arg(Component::Kubelet, "feature-gates")
            .is_none()
    );
    // Each flag is located on its own line.
    assert_eq!(
        o.component_arg(Component::ApiServer, "feature-gates")
            .unwrap()
            .origin
            .to_string(),
        "k3s.service:27"
    );
}

#[test]
fn units_from_k3s_issues() {
    struct Case {
        name: &'static str,
        exec: &'static str,
        ends_early: Option<(usize, EndCause, &'static [&'static str])>,
        stray: Option<(&'static [&'static str], &'static [&'static str], bool)>,
        check: fn(&K3sOptions) -> bool,
    }
    let table = [
        Case {
            // k3s#1645: a space after the first `\`: `k3s` runs with the argument `\` and no
            // subcommand; `server` is a line of its own.
            name: "k3s#1645 trailing space",
            exec: "ExecStart=/usr/local/bin/k3s \\ \n    server \\\n\n",
            ends_early: Some((29, EndCause::TrailingWhitespace, &[])),
            stray: Some((&["\\"], &[], true)),
            check: |o| o.is_empty(),
        },
        Case {
            // k3s#7141, scenario 2: `'server'` given twice; after a flag with `=` it is a
            // harmless positional argument and `--server` is read.
            name: "k3s#7141 server after a flag with =",
            exec: "ExecStart=/usr/local/bin/k3s \\\n    server \\\n        '--cluster-cidr=10.42.0.0/16,2001:cafe:42:0::/56' \\\n        '--service-cidr=10.43.0.0/16,2001:cafe:42:1::/112' \\\n        '--disable' \\\n        'traefik' \\\n        '--disable-network-policy' \\\n        '--flannel-backend=none' \\\n        'server' \\\n        '--server' \\\n        'https://10.0.0.13:6443' \\\n",
            ends_early: None,
            stray: Some((&["server"], &[], false)),
            check: |o| {
                o.last("server")
                    .is_some_and(|s| s.value == "https://10.0.0.13:6443")
                    && o.flag("disable-network-policy")
            },
        },
        Case {
            // k3s#7141, scenario 1: the same words with `--disable-network-policy` (no value)
            // right before `'server'`: K3s takes `server` along as its "value", stops reading
            // flags there, and never sees `--server`: the node starts a cluster of its own.
            name: "k3s#7141 server after a flag without a value",
            exec: "ExecStart=/usr/local/bin/k3s \\\n    server \\\n        '--cluster-cidr=10.42.0.0/16,2001:cafe:42:0::/56' \\\n        '--service-cidr=10.43.0.0/16,2001:cafe:42:1::/112' \\\n        '--disable' \\\n        'traefik' \\\n        '--flannel-backend=none' \\\n        '--disable-network-policy' \\\n        'server' \\\n        '--server' \\\n        'https://10.0.0.13:6443' \\\n",
            ends_early: None,
            stray: Some((&["server"], &["--server https://10.0.0.13:6443"], false)),
            check: |o| o.last("server").is_none() && o.list("cluster-cidr").is_some(),
        },
        Case {
            // A comment after a flag, with the `\` still at the very end: `#` and the comment's
            // words go to K3s, and after a flag without a value they stop flag parsing.
            name: "comment inside the block",
            exec: "ExecStart=/usr/local/bin/k3s server \\\n  --flannel-ipv6-masq # pods use a ULA \\\n  --cluster-cidr=10.42.0.0/16,fd00:42::/56 \\\n  --service-cidr=10.43.0.0/16,fd00:43::/112\n",
            ends_early: None,
            stray: Some((
                &["#", "pods", "use", "a", "ULA"],
                &[
                    "--cluster-cidr=10.42.0.0/16,fd00:42::/56",
                    "--service-cidr=10.43.0.0/16,fd00:43::/112",
                ],
                false,
            )),
            check: |o| o.flag("flannel-ipv6-masq") && o.list("cluster-cidr").is_none(),
        },
        Case {
            // Comment lines inside the block are skipped; an escaped backslash ends it.
            name: "comment lines and an escaped backslash",
            exec: "ExecStart=/usr/local/bin/k3s server \\\n# the pods\n  ; and services\n  --cluster-cidr=10.42.0.0/16,fd00:42::/56 \\\\\n  --service-cidr=10.43.0.0/16,fd00:43::/112\n",
            ends_early: Some((
                32,
                EndCause::EscapedBackslash,
                &["--service-cidr=10.43.0.0/16,fd00:43::/112"],
            )),
            stray: Some((&["\\"], &[], false)),
            check: |o| o.list("cluster-cidr").is_some() && o.list("service-cidr").is_none(),
        },
        Case {
            name: "a clean install-script unit",
            exec: "ExecStart=/usr/local/bin/k3s \\\n    server \\\n\t'--node-ip=192.168.1.10,fd00::10' \\\n\t'--flannel-ipv6-masq' \\\n",
            ends_early: None,
            stray: None,
            check: |o| o.list("node-ip").is_some() && o.flag("flannel-ipv6-masq"),
        },
    ];
    for case in table {
        let u = read(&unit(case.exec));
        let got_end = ends_early(&u).map(|e| {
            (
                e.origin.line.unwrap_or(0),
                e.cause.clone(),
                e.dropped_flags.clone(),
            )
        });
        let want_end = case
            .ends_early
            .map(|(l, c, f)| (l, c, f.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>()));
        assert_eq!(got_end, want_end, "{}", case.name);
        let got_stray = stray(&u).map(|(w, un, n)| (w.to_vec(), un.to_vec(), n));
        let want_stray = case.stray.map(|(w, un, n)| {
            (
                w.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>(),
                un.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>(),
                n,
            )
        });
        assert_eq!(got_stray, want_stray, "{}", case.name);
        assert!((case.check)(&u.options), "{}: {:#?}", case.name, u.options);
    }
}

#[test]
fn drop_ins_replace_exec_start_only_after_an_empty_one() {
    let base = unit("ExecStart=/usr/local/bin/k3s server\n");
    let replace = (
        "k3s.service.d/10-dual.conf".to_owned(),
        "[Service]\nExecStart=\nExecStart=/usr/local/bin/k3s server --cluster-cidr=10.42.0.0/16,fd00:42::/56\n"
            .to_owned(),
    );
    let u = read_unit_with("k3s.service", &base, &[replace], &[]).unwrap();
    assert!(u.problems.is_empty(), "{:#?}", u.problems);
    assert_eq!(
        u.options.list("cluster-cidr").unwrap().origin.to_string(),
        "k3s.service.d/10-dual.conf:3"
    );
    let append = (
        "k3s.service.d/10-dual.conf".to_owned(),
        "[Service]\nExecStart=/usr/local/bin/k3s server --cluster-cidr=10.42.0.0/16,fd00:42::/56\n"
            .to_owned(),
    );
    let u = read_unit_with("k3s.service", &base, &[append], &[]).unwrap();
    assert!(matches!(
        &u.problems[..],
        [UnitProblem::MultipleExecStart { count: 2, origins, service_type }]
            if origins.len() == 2 && service_type == "notify"
    ));
    assert!(u.options.list("cluster-cidr").is_some());
    // A [Unit]-section ExecStart is no service command.
    assert!(read_unit("u", "[Unit]\nExecStart=/bin/k3s server\n").is_err());
}

#[test]
fn environment_and_environment_files_feed_the_variables() {
    let text = unit(
        "Environment=\"K3S_ARGS=--flannel-ipv6-masq --node-ip=192.168.1.10,fd00::10\" INSTALL_K3S_VERSION=v1.30.4+k3s1\nExecStart=/usr/local/bin/k3s server $K3S_ARGS --cluster-cidr=${PODS} $$HOME\n",
    );
    let refs = environment_files(("/etc/systemd/system/k3s.service", &text), &[]);
    assert_eq!(
        refs.iter().map(|r| r.path.as_str()).collect::<Vec<_>>(),
        [
            "/etc/default/k3s",
            "/etc/sysconfig/k3s",
            "/etc/systemd/system/k3s.service.env"
        ]
    );
    assert!(refs.iter().all(|r| r.optional));
    let env = [(
        "/etc/systemd/system/k3s.service.env".to_owned(),
        Some("PODS=10.42.0.0/16,fd00:42::/56\n".to_owned()),
    )];
    let u = read_unit_with("/etc/systemd/system/k3s.service", &text, &[], &env).unwrap();
    assert_eq!(
        u.argv[2..],
        [
            "--flannel-ipv6-masq",
            "--node-ip=192.168.1.10,fd00::10",
            "--cluster-cidr=10.42.0.0/16,fd00:42::/56",
            "$HOME"
        ]
    );
    assert_eq!(
        u.options.version.as_ref().unwrap().value,
        Version::new(1, 30, 4)
    );
    // `$$HOME` is a literal word: a stray argument, harmless after a value.
    assert!(matches!(stray(&u), Some((w, [], false)) if w == ["$HOME"]));
    // Without the file, PODS is unknown: reported, and read as systemd would (empty).
    let u = read_unit("k3s.service", &text).unwrap();
    assert!(u.problems.iter().any(|p| matches!(
        p,
        UnitProblem::UnsetVariable { name, unread_files, .. }
            if name == "PODS" && unread_files.len() == 3
    )));
    assert_eq!(u.options.list("cluster-cidr").unwrap().value, "");
    // `:` turns expansion off.
    let u = read(&unit(
        "ExecStart=:/usr/local/bin/k3s server --node-name ${NAME}\n",
    ));
    assert_eq!(u.argv[3], "${NAME}");
}

#[test]
fn unreadable_units_are_input_errors_naming_the_line() {
    let err = read_unit(
        "k3s.service",
        "[Service]\nExecStart=/usr/local/bin/k3s server --node-ip '10.0.0.1\n",
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.starts_with("k3s.service:2: ExecStart=: unbalanced ' quote"),
        "{err}"
    );
    assert!(read_unit("u", "[Service]\nType=notify\n").is_err());
}

/// Writes `argv` as an `ExecStart=` block the way a careful person would: every word quoted,
/// one per line, with comment lines in between.
fn render(argv: &[String], comments: &[bool]) -> String {
    let mut out = String::from("[Service]\nType=notify\nExecStart=/usr/local/bin/k3s");
    for (i, word) in argv.iter().enumerate() {
        out.push_str(" \\\n");
        if comments.get(i).copied().unwrap_or(false) {
            out.push_str("# a comment \\\n  ; another\n");
        }
        out.push_str("    \"");
        for c in word.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '$' => out.push_str("$$"),
                '%' => out.push_str("%%"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out.push('\n');
    out
}

proptest! {
    #[test]
    fn rendering_an_argv_into_a_unit_and_reading_it_back_gives_the_same_argv(
        argv in proptest::collection::vec("[a-zA-Z0-9 =,:/.#;'\"\\\\$%{}\t\n\u{e9}-]{1,12}", 0..8),
        comments in proptest::collection::vec(any::<bool>(), 8),
    ) {
        let text = render(&argv, &comments);
        let u = read_unit("k3s.service", &text).unwrap();
        prop_assert_eq!(&u.argv[0], "/usr/local/bin/k3s");
        prop_assert_eq!(&u.argv[1..], &argv[..], "{}", text);
    }
}

proptest! {
    #[test]
    fn any_text_reads_without_panicking(
        text in "(\\[Service\\]\n|ExecStart=|Environment=|[-a-z $%{};#'\"\\\\=\t\u{e9}]|\\\\\n|\n){0,60}",
    ) {
        let _ = read_unit_with(
            "k3s.service",
            &text,
            &[("k3s.service.d/x.conf".to_owned(), text.clone())],
            &[],
        );
    }
}
