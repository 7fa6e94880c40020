//! Rendered files: snapshots of what `plan --out` writes, and the round trip — `plan check`
//! on every rendered file reports no error, for many generated plans.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

use dualstack_addr::Family;
use dualstack_plan::check::{CheckFiles, check};
use dualstack_plan::input::yaml::documents;
use dualstack_plan::plan::{Cni, PlanOptions, plan};
use dualstack_plan::render::{self, render};
use dualstack_plan::version::Version;
use dualstack_plan::{Finding, Severity};
use ipnet::Ipv6Net;
use proptest::prelude::*;

fn ula(global_id: u64) -> Ipv6Net {
    dualstack_addr::UlaPrefix::from_global_id(global_id)
        .unwrap()
        .net()
}

fn file<'a>(files: &'a [render::RenderedFile], path: &str) -> &'a str {
    &files.iter().find(|f| f.path == path).unwrap().contents
}

fn snapshot_all(name: &str, options: &PlanOptions) {
    let files = render(&plan(options).unwrap());
    for f in &files {
        insta::assert_snapshot!(
            format!("{name}__{}", f.path.replace(['/', '.'], "_")),
            f.contents
        );
    }
}

#[test]
fn default_flannel_plan_files() {
    snapshot_all(
        "flannel_v4_first",
        &PlanOptions::new(ula(0x12_3456_789a), true),
    );
}

#[test]
fn calico_ipv6_first_plan_files() {
    let mut o = PlanOptions::new(ula(0xab_cdef_0123), false);
    o.cni = Cni::Calico;
    o.primary = Family::V6;
    o.traefik_chart = Version::new(41, 3, 0);
    o.replace_servicelb = true;
    o.k3s_version = Some(Version::new(1, 33, 4));
    snapshot_all("calico_v6_first", &o);
}

#[test]
fn rendered_yaml_parses_back_to_the_plan_values() {
    let mut o = PlanOptions::new(ula(7), false);
    o.cni = Cni::Calico;
    let p = plan(&o).unwrap();
    let files = render(&p);
    let config = &documents("config.yaml", file(&files, render::K3S_CONFIG)).unwrap()[0];
    assert_eq!(
        config["cluster-cidr"],
        p.joined(|f| f.cluster_cidr.to_string())
    );
    assert_eq!(config["flannel-backend"], "none");
    assert_eq!(config["disable-network-policy"], true);
    let inst = &documents("i", file(&files, render::CALICO_INSTALLATION)).unwrap()[0];
    assert_eq!(
        inst["spec"]["calicoNetwork"]["ipPools"][1]["blockSize"],
        122
    );
    assert_eq!(
        documents("p", file(&files, render::CALICO_IPPOOLS))
            .unwrap()
            .len(),
        2
    );
    let json: serde_json::Value = serde_json::from_str(file(&files, render::PLAN_JSON)).unwrap();
    assert_eq!(json["families"][0]["cluster_dns"], "10.43.0.10");
}

fn check_rendered(options: &PlanOptions) -> Vec<Finding> {
    let p = plan(options).unwrap();
    let files = render(&p);
    let pair = |path: &str| Some((path.to_owned(), file(&files, path).to_owned()));
    let k3s = vec![(
        render::K3S_CONFIG.to_owned(),
        file(&files, render::K3S_CONFIG).to_owned(),
    )];
    let mut all = check(
        &CheckFiles {
            k3s_config: k3s.clone(),
            calico: if options.cni == Cni::Calico {
                pair(render::CALICO_INSTALLATION)
            } else {
                None
            },
            traefik: pair(render::TRAEFIK_CONFIG),
            k3s_version: options.k3s_version,
            traefik_chart: Some(options.traefik_chart),
            ..CheckFiles::default()
        }
        .read()
        .unwrap(),
    );
    if options.cni == Cni::Calico {
        all.extend(check(
            &CheckFiles {
                k3s_config: k3s,
                calico: pair(render::CALICO_IPPOOLS),
                k3s_version: options.k3s_version,
                ..CheckFiles::default()
            }
            .read()
            .unwrap(),
        ));
    }
    all
}

fn options_strategy() -> impl Strategy<Value = PlanOptions> {
    (
        0u64..=dualstack_addr::UlaPrefix::MAX_GLOBAL_ID,
        prop_oneof![Just(Family::V4), Just(Family::V6)],
        prop_oneof![1u32..=300, 1u32..=32_768],
        1u32..=1000,
        10u32..=65_534,
        prop_oneof![Just(Cni::Flannel), Just(Cni::Calico)],
        (20u32..=45, 0u32..=3),
        any::<bool>(),
        prop_oneof![
            Just(None),
            (20u32..=36).prop_map(|m| Some(Version::new(1, m, 1)))
        ],
        prop_oneof![
            Just("10.42.0.0/15"),
            Just("10.0.0.0/8"),
            Just("172.16.0.0/12"),
            Just("192.168.0.0/16")
        ],
    )
        .prop_map(
            |(gid, primary, nodes, ppn, services, cni, (major, minor), svclb, k3s, base)| {
                let mut o = PlanOptions::new(ula(gid), true);
                o.primary = primary;
                o.max_nodes = nodes;
                o.pods_per_node = ppn;
                o.services = services;
                o.cni = cni;
                o.traefik_chart = Version::new(major, minor, 0);
                o.replace_servicelb = svclb;
                o.k3s_version = k3s;
                o.ipv4_base = base.parse().unwrap();
                o
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn plan_check_finds_no_error_in_rendered_files(options in options_strategy()) {
        // Options a plan cannot satisfy are rejected up front; the rest must check clean.
        prop_assume!(plan(&options).is_ok());
        let findings = check_rendered(&options);
        let errors: Vec<_> = findings.iter().filter(|f| f.severity == Severity::Error).collect();
        prop_assert!(errors.is_empty(), "{errors:#?}");
        // Told the chart version, the check agrees the rendered Traefik keys are the right ones.
        let traefik: Vec<_> = findings.iter().filter(|f| f.code.as_str().starts_with("traefik")).collect();
        prop_assert!(traefik.is_empty(), "{traefik:#?}");
        // Capacity the plan promises is what the check computes.
        let p = plan(&options).unwrap();
        for f in &p.families {
            prop_assert!(f.nodes.value.parse::<u64>().unwrap() >= u64::from(options.max_nodes));
            prop_assert!(f.pods_per_node.value.parse::<u128>().unwrap() >= u128::from(options.pods_per_node));
            prop_assert!(f.services.value.parse::<u64>().unwrap() >= u64::from(options.services));
            prop_assert!(f.service_cidr.contains(&f.cluster_dns));
        }
    }
}
