//! Masquerade rules, read from `iptables-save` / `ip6tables-save` text and from
//! `nft -j list ruleset` JSON — whoever wrote them (flannel, Calico, kube-router, a human).
//!
//! Only what decides "are pods of this prefix masqueraded?" is kept: the family, where the
//! rule lives, and its source condition. A rule that also depends on anything else than the
//! source, destination or interfaces (packet marks, conntrack state, …) is
//! [`MasqSource::Conditional`] — kube-proxy's `KUBE-POSTROUTING` mark rule, for example, is
//! not a pod masquerade, and neither is a masquerade that follows a "return unless marked"
//! rule in its chain (kube-proxy's `-m mark ! --mark 0x4000/0x4000 -j RETURN`, or
//! `meta mark & 0x4000 == 0 return` in its nftables mode).

use std::collections::BTreeSet;
use std::net::IpAddr;

use dualstack_addr::Family;
use ipnet::IpNet;
use serde_json::Value;

use super::FactError;

/// Which packets a masquerade rule applies to, by source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MasqSource {
    /// Every source.
    Any,
    /// Sources inside this prefix.
    Prefix(IpNet),
    /// Sources in a named set (Calico's `cali40masq-ipam-pools`, an ipset, an nft set).
    Set(String),
    /// Depends on more than the source; not counted as a pod masquerade.
    Conditional,
}

/// One masquerade rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MasqRule {
    /// Which family's traffic it masquerades.
    pub family: Family,
    /// Where it is, e.g. `ip6tables nat FLANNEL-POSTRTG` or `nft ip6 nat FLANNEL-POSTRTG`.
    pub location: String,
    /// Which traffic it matches, as far as the rule says.
    pub source: MasqSource,
}

/// Splits an `iptables-save` line into words; `"…"` quotes group (comments).
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut in_word = false;
    for ch in line.chars() {
        match ch {
            '"' => {
                quoted = !quoted;
                in_word = true;
            }
            c if c.is_whitespace() && !quoted => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    out
}

/// Parses `iptables-save` (`family` V4) or `ip6tables-save` (V6) output: the `-j MASQUERADE`
/// rules of its `*nat` table.
pub fn from_iptables_save(text: &str, family: Family) -> Vec<MasqRule> {
    let tool = match family {
        Family::V4 => "iptables",
        Family::V6 => "ip6tables",
    };
    let mut table = String::new();
    let mut gated: BTreeSet<String> = BTreeSet::new();
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        if let Some(t) = line.strip_prefix('*') {
            table = t.to_string();
            gated.clear();
            continue;
        }
        if table != "nat" || !line.starts_with("-A ") {
            continue;
        }
        let w = words(line);
        let chain = w.get(1).cloned().unwrap_or_default();
        let target = w.windows(2).find(|p| p[0] == "-j").map(|p| p[1].as_str());
        if target == Some("RETURN") && w.windows(2).any(|p| p[0] == "!" && p[1] == "--mark") {
            gated.insert(chain);
            continue;
        }
        if target != Some("MASQUERADE") {
            continue;
        }
        let source = if gated.contains(&chain) {
            MasqSource::Conditional
        } else {
            iptables_source(&w[2.min(w.len())..])
        };
        out.push(MasqRule {
            family,
            location: format!("{tool} nat {chain}"),
            source,
        });
    }
    out
}

fn iptables_source(w: &[String]) -> MasqSource {
    let mut source = MasqSource::Any;
    let mut negate = false;
    let mut i = 0;
    while i < w.len() {
        let word = w[i].as_str();
        let next = w.get(i + 1).map(String::as_str);
        match word {
            "!" => {
                negate = true;
                i += 1;
                continue;
            }
            "-s" | "--source" => match next.and_then(parse_net) {
                Some(net) if !negate => source = MasqSource::Prefix(net),
                _ => return MasqSource::Conditional,
            },
            "--match-set" => {
                let dir = w.get(i + 2).map(String::as_str).unwrap_or("");
                match (negate, dir, next) {
                    (false, "src", Some(name)) => source = MasqSource::Set(name.to_string()),
                    (_, "dst", Some(_)) => {}
                    _ => return MasqSource::Conditional,
                }
                i += 3;
                negate = false;
                continue;
            }
            // Destination and interfaces narrow where, not whose, traffic is masqueraded.
            "-d" | "--destination" | "-o" | "--out-interface" | "--comment" | "-j" | "-p"
            | "--protocol" | "--to-ports" => {}
            "-m" => match next {
                Some("comment" | "set") => {}
                _ => return MasqSource::Conditional,
            },
            "--random" | "--random-fully" | "MASQUERADE" => {
                i += 1;
                negate = false;
                continue;
            }
            _ => return MasqSource::Conditional,
        }
        i += 2;
        negate = false;
    }
    source
}

fn parse_net(text: &str) -> Option<IpNet> {
    text.parse::<IpNet>()
        .ok()
        .or_else(|| text.parse::<IpAddr>().ok().map(IpNet::from))
        .map(|n| n.trunc())
}

/// Parses `nft -j list ruleset`: every rule with a `masquerade` statement (or iptables-nft's
/// `xt` MASQUERADE target), in any table.
pub fn from_nft_json(json: &str) -> Result<Vec<MasqRule>, FactError> {
    let bad = |detail: String| FactError::Json {
        source_name: "nft -j list ruleset",
        detail,
    };
    let root: Value = serde_json::from_str(json).map_err(|e| bad(e.to_string()))?;
    let items = root
        .get("nftables")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("no top-level \"nftables\" array".into()))?;
    let mut out = Vec::new();
    let mut gated: BTreeSet<String> = BTreeSet::new();
    for rule in items.iter().filter_map(|i| i.get("rule")) {
        let exprs = rule
            .get("expr")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let text = |k: &str| {
            rule.get(k)
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_string()
        };
        let table_family = text("family");
        let location = format!("nft {} {} {}", table_family, text("table"), text("chain"));
        if exprs.iter().any(|e| e.get("return").is_some()) && exprs.iter().any(is_unmarked_test) {
            gated.insert(location);
            continue;
        }
        if !exprs.iter().any(is_masquerade) {
            continue;
        }
        let (families, source) = if gated.contains(&location) {
            (family_of_table(&table_family), MasqSource::Conditional)
        } else {
            nft_source(exprs, &table_family)
        };
        for family in families {
            out.push(MasqRule {
                family,
                location: location.clone(),
                source: source.clone(),
            });
        }
    }
    Ok(out)
}

fn is_masquerade(expr: &Value) -> bool {
    expr.get("masquerade").is_some()
        || expr
            .get("xt")
            .is_some_and(|x| x.get("name").and_then(Value::as_str) == Some("MASQUERADE"))
}

/// "This packet is not marked": `meta mark & MASK == 0`, or `meta mark & MASK != MASK` (what
/// iptables-nft makes of `-m mark ! --mark MASK/MASK`).
fn is_unmarked_test(expr: &Value) -> bool {
    let Some(m) = expr.get("match") else {
        return false;
    };
    let Some([left, mask]) = m
        .get("left")
        .and_then(|l| l.get("&"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
    else {
        return false;
    };
    let is_mark = left
        .get("meta")
        .and_then(|x| x.get("key"))
        .and_then(Value::as_str)
        == Some("mark");
    let right = m.get("right").and_then(Value::as_u64);
    is_mark
        && match m.get("op").and_then(Value::as_str) {
            Some("==") => right == Some(0),
            Some("!=") => right.is_some() && right == mask.as_u64(),
            _ => false,
        }
}

fn family_of_table(table_family: &str) -> Vec<Family> {
    match table_family {
        "ip" => vec![Family::V4],
        "ip6" => vec![Family::V6],
        _ => Family::BOTH.to_vec(),
    }
}

fn nft_source(exprs: &[Value], table_family: &str) -> (Vec<Family>, MasqSource) {
    let mut families = family_of_table(table_family);
    let mut source = MasqSource::Any;
    for expr in exprs {
        let xt_comment = expr
            .get("xt")
            .is_some_and(|x| x.get("name").and_then(Value::as_str) == Some("comment"));
        if is_masquerade(expr) || xt_comment || expr.get("counter").is_some() {
            continue;
        }
        let Some(m) = expr.get("match") else {
            // Any other statement or expression (xt matches, marks, …) makes it conditional.
            return (families, MasqSource::Conditional);
        };
        let op = m.get("op").and_then(Value::as_str).unwrap_or("==");
        let left = m.get("left").unwrap_or(&Value::Null);
        let right = m.get("right").unwrap_or(&Value::Null);
        if let Some(p) = left.get("payload") {
            let field = p.get("field").and_then(Value::as_str).unwrap_or("");
            let fam = match p.get("protocol").and_then(Value::as_str) {
                Some("ip") => Some(Family::V4),
                Some("ip6") => Some(Family::V6),
                _ => None,
            };
            if let Some(f) = fam {
                families.retain(|x| *x == f);
            }
            match (field, op) {
                ("daddr", _) => {}
                ("saddr", "==" | "in") => match nft_value(right) {
                    Some(s) => source = s,
                    None => return (families, MasqSource::Conditional),
                },
                _ => return (families, MasqSource::Conditional),
            }
        } else if let Some(meta) = left.get("meta") {
            match meta.get("key").and_then(Value::as_str) {
                Some("nfproto" | "protocol") => {
                    let want = match right.as_str() {
                        Some("ipv4" | "ip") => Some(Family::V4),
                        Some("ipv6" | "ip6") => Some(Family::V6),
                        _ => None,
                    };
                    match (want, op) {
                        (Some(f), "==") => families.retain(|x| *x == f),
                        (Some(f), "!=") => families.retain(|x| *x != f),
                        _ => return (families, MasqSource::Conditional),
                    }
                }
                Some("oifname" | "oif" | "l4proto") => {}
                _ => return (families, MasqSource::Conditional),
            }
        } else {
            return (families, MasqSource::Conditional);
        }
    }
    (families, source)
}

fn nft_value(v: &Value) -> Option<MasqSource> {
    if let Some(s) = v.as_str() {
        if let Some(set) = s.strip_prefix('@') {
            return Some(MasqSource::Set(set.to_string()));
        }
        return parse_net(s).map(MasqSource::Prefix);
    }
    let p = v.get("prefix")?;
    let addr = p.get("addr")?.as_str()?;
    let len = p.get("len")?.as_u64()?;
    parse_net(&format!("{addr}/{len}")).map(MasqSource::Prefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> MasqSource {
        MasqSource::Prefix(s.parse().unwrap())
    }

    // As written by flannel (K3s, flannel-ipv6-masq), Calico natOutgoing and kube-proxy.
    const IP6TABLES_SAVE: &str = r#"# Generated by ip6tables-save v1.8.9 (nf_tables) on Thu Nov 26 13:00:00 2026
*filter
:INPUT ACCEPT [0:0]
-A FORWARD -s fd12:3456:789a::/56 -m comment --comment "flanneld forward" -j ACCEPT
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:FLANNEL-POSTRTG - [0:0]
:KUBE-POSTROUTING - [0:0]
-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING
-A POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG
-A FLANNEL-POSTRTG -m mark --mark 0x4000/0x4000 -m comment --comment "flanneld masq" -j RETURN
-A FLANNEL-POSTRTG -s fd12:3456:789a::/56 -d fd12:3456:789a::/56 -m comment --comment "flanneld masq" -j RETURN
-A FLANNEL-POSTRTG -s fd12:3456:789a::/56 ! -d ff00::/8 -m comment --comment "flanneld masq" -j MASQUERADE --random-fully
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully
-A cali-nat-outgoing -m comment --comment "cali:Wd76s91357Uv7N3v" -m set --match-set cali60masq-ipam-pools src -m set ! --match-set cali60all-ipam-pools dst -j MASQUERADE --random-fully
-A POSTROUTING -o eth0 -j MASQUERADE
-A POSTROUTING ! -s fd00::/8 -j MASQUERADE
COMMIT
"#;

    #[test]
    fn iptables_save_masquerade_rules() {
        let rules = from_iptables_save(IP6TABLES_SAVE, Family::V6);
        let got: Vec<(&str, &MasqSource)> = rules
            .iter()
            .map(|r| (r.location.as_str(), &r.source))
            .collect();
        assert_eq!(
            got,
            [
                ("ip6tables nat FLANNEL-POSTRTG", &net("fd12:3456:789a::/56")),
                ("ip6tables nat KUBE-POSTROUTING", &MasqSource::Conditional),
                (
                    "ip6tables nat cali-nat-outgoing",
                    &MasqSource::Set("cali60masq-ipam-pools".into())
                ),
                ("ip6tables nat POSTROUTING", &MasqSource::Any),
                ("ip6tables nat POSTROUTING", &MasqSource::Conditional),
            ]
        );
        assert!(rules.iter().all(|r| r.family == Family::V6));
        assert!(
            from_iptables_save("*filter\n-A X -j MASQUERADE\n", Family::V4).is_empty(),
            "only the nat table"
        );
    }

    #[test]
    fn words_keep_quoted_comments_together() {
        assert_eq!(
            words(r#"-A X -m comment --comment "a b" -j Y"#),
            ["-A", "X", "-m", "comment", "--comment", "a b", "-j", "Y"]
        );
    }

    #[test]
    fn nft_json_masquerade_rules() {
        let json = r#"{"nftables":[
          {"metainfo":{"version":"1.0.6","json_schema_version":1}},
          {"table":{"family":"ip","name":"nat","handle":1}},
          {"rule":{"family":"ip","table":"nat","chain":"FLANNEL-POSTRTG","handle":9,"expr":[
            {"match":{"op":"==","left":{"payload":{"protocol":"ip","field":"saddr"}},"right":{"prefix":{"addr":"10.42.0.0","len":16}}}},
            {"match":{"op":"!=","left":{"payload":{"protocol":"ip","field":"daddr"}},"right":{"prefix":{"addr":"224.0.0.0","len":4}}}},
            {"counter":{"packets":0,"bytes":0}},
            {"xt":{"type":"match","name":"comment"}},
            {"masquerade":{"flags":"fully-random"}}]}},
          {"rule":{"family":"inet","table":"mine","chain":"post","handle":3,"expr":[
            {"match":{"op":"==","left":{"meta":{"key":"nfproto"}},"right":"ipv6"}},
            {"match":{"op":"==","left":{"payload":{"protocol":"ip6","field":"saddr"}},"right":"@podnets6"}},
            {"masquerade":null}]}},
          {"rule":{"family":"inet","table":"mine","chain":"post","handle":4,"expr":[
            {"match":{"op":"==","left":{"meta":{"key":"oifname"}},"right":"eth0"}},
            {"masquerade":null}]}},
          {"rule":{"family":"inet","table":"dualstack","chain":"nat-postrouting","handle":5,"expr":[
            {"match":{"op":"==","left":{"ct":{"key":"mark"}},"right":1}},
            {"masquerade":null}]}},
          {"rule":{"family":"ip","table":"kube-proxy","chain":"masquerading","handle":7,"expr":[
            {"match":{"op":"==","left":{"&":[{"meta":{"key":"mark"}},16384]},"right":0}},
            {"return":null}]}},
          {"rule":{"family":"ip","table":"kube-proxy","chain":"masquerading","handle":8,"expr":[
            {"masquerade":{"flags":"fully-random"}}]}},
          {"rule": {"family": "ip", "table": "nat", "chain": "KUBE-POSTROUTING", "handle": 2, "expr": [
            {"match": {"op": "!=", "left": {"&": [{"meta": {"key": "mark"}}, 16384]}, "right": 16384}},
            {"counter": {"packets": 0, "bytes": 0}}, {"return": null}]}},
          {"rule": {"family": "ip", "table": "nat", "chain": "KUBE-POSTROUTING", "handle": 3, "expr": [
            {"counter": {"packets": 0, "bytes": 0}}, {"xt": {"type": "target", "name": "MASQUERADE"}}]}},
          {"rule":{"family":"ip6","table":"nat","chain":"POSTROUTING","handle":6,"expr":[
            {"match":{"op":"==","left":{"payload":{"protocol":"ip6","field":"saddr"}},"right":"fd00:42::5"}},
            {"xt":{"type":"target","name":"MASQUERADE"}}]}}
        ]}"#;
        let rules = from_nft_json(json).unwrap();
        let got: Vec<(Family, &str, &MasqSource)> = rules
            .iter()
            .map(|r| (r.family, r.location.as_str(), &r.source))
            .collect();
        assert_eq!(
            got,
            [
                (
                    Family::V4,
                    "nft ip nat FLANNEL-POSTRTG",
                    &net("10.42.0.0/16")
                ),
                (
                    Family::V6,
                    "nft inet mine post",
                    &MasqSource::Set("podnets6".into())
                ),
                (Family::V4, "nft inet mine post", &MasqSource::Any),
                (Family::V6, "nft inet mine post", &MasqSource::Any),
                (
                    Family::V4,
                    "nft inet dualstack nat-postrouting",
                    &MasqSource::Conditional
                ),
                (
                    Family::V6,
                    "nft inet dualstack nat-postrouting",
                    &MasqSource::Conditional
                ),
                (
                    Family::V4,
                    "nft ip kube-proxy masquerading",
                    &MasqSource::Conditional
                ),
                (
                    Family::V4,
                    "nft ip nat KUBE-POSTROUTING",
                    &MasqSource::Conditional
                ),
                (
                    Family::V6,
                    "nft ip6 nat POSTROUTING",
                    &net("fd00:42::5/128")
                ),
            ]
        );
        assert!(from_nft_json("{}").is_err());
    }
}
