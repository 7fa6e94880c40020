//! `dualstack ip …`: the address calculator (info, split, contains, overlap, ula).
//!
//! Every subcommand prints text for humans by default and one JSON object with
//! `--output json`. `contains` and `overlap` answer with their exit code, like `grep`:
//! 0 for yes, 1 for no, 2 for bad input — in both output formats.

use anyhow::Context;
use clap::{Args, Subcommand};
use dualstack_addr::{
    AddrOrPrefix, Count, Family, Kind, KindRange, NetKind, OsRandom, SeededRandom, UlaPrefix,
    classify, count, expanded, first, intersection, last, parse_addr_or_prefix, parse_prefix,
    subnets,
};
use ipnet::IpNet;
use serde::Serialize;
use serde_json::json;

use crate::exit::{Outcome, usage};
use crate::output::Format;

/// Without `--count`, `split` lists at most this many children (a /48 into /64s).
const DEFAULT_SPLIT_LIMIT: u128 = 1 << 16;
/// `--count` may ask for at most this many children.
const MAX_SPLIT_COUNT: u64 = 1 << 20;

#[derive(Debug, Subcommand)]
pub enum IpCommand {
    /// Canonical and expanded form, family, range, address count and classification of an
    /// address or prefix.
    Info {
        /// An IPv4 or IPv6 address or prefix, e.g. 2001:db8::/32 or 192.0.2.1.
        value: String,
        #[command(flatten)]
        output: OutputArg,
    },
    /// Split a prefix into equal children, in address order.
    Split {
        /// The prefix to split, e.g. fd00::/48.
        prefix: String,
        /// Prefix length of the children, e.g. /64 (the slash is optional).
        #[arg(long, value_name = "/N")]
        into: String,
        /// List at most this many children (required when there are more than 65536).
        #[arg(long, value_name = "K")]
        count: Option<u64>,
        /// Index (from 0) of the first child to list.
        #[arg(long, value_name = "I", default_value = "0")]
        start: String,
        #[command(flatten)]
        output: OutputArg,
    },
    /// Does a prefix contain an address or prefix? Exit 0 yes, 1 no.
    Contains {
        /// The outer prefix, e.g. 10.0.0.0/8.
        prefix: String,
        /// The address or prefix to look for.
        value: String,
        #[command(flatten)]
        output: OutputArg,
    },
    /// Do two addresses or prefixes share any address? Exit 0 yes, 1 no.
    Overlap {
        /// First address or prefix.
        a: String,
        /// Second address or prefix.
        b: String,
        #[command(flatten)]
        output: OutputArg,
    },
    /// Generate an RFC 4193 unique local /48 (fd00::/8 plus a random 40-bit Global ID).
    Ula {
        /// Also print the /64 with this 16-bit subnet ID, in hex (e.g. 100 → …:100::/64).
        #[arg(long, value_name = "HEX")]
        subnet: Option<String>,
        /// Derive the Global ID from this number instead of the OS random generator
        /// (reproducible; not for real deployments).
        #[arg(long, value_name = "S")]
        seed: Option<u64>,
        #[command(flatten)]
        output: OutputArg,
    },
}

/// `--output text|json`.
#[derive(Debug, Clone, Copy, Args)]
pub struct OutputArg {
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t = Format::Text)]
    output: Format,
}

pub fn run(command: IpCommand) -> anyhow::Result<Outcome> {
    match command {
        IpCommand::Info { value, output } => info(&value, output.output),
        IpCommand::Split {
            prefix,
            into,
            count,
            start,
            output,
        } => split(&prefix, &into, count, &start, output.output),
        IpCommand::Contains {
            prefix,
            value,
            output,
        } => contains(&prefix, &value, output.output),
        IpCommand::Overlap { a, b, output } => overlap(&a, &b, output.output),
        IpCommand::Ula {
            subnet,
            seed,
            output,
        } => ula(subnet.as_deref(), seed, output.output),
    }
}

fn parse_any(what: &str, text: &str) -> anyhow::Result<AddrOrPrefix> {
    parse_addr_or_prefix(text).map_err(|e| usage(format!("{what}: {e}")))
}

fn parse_net(what: &str, text: &str) -> anyhow::Result<IpNet> {
    parse_prefix(text).map_err(|e| usage(format!("{what}: {e}")))
}

fn print_json(value: &serde_json::Value) -> anyhow::Result<()> {
    println!(
        "{}",
        serde_json::to_string_pretty(value).context("encoding JSON output")?
    );
    Ok(())
}

/// Canonical text of an address or prefix, and its fully expanded form.
fn texts(value: &AddrOrPrefix) -> (String, String) {
    match value {
        AddrOrPrefix::Addr(a) => (a.to_string(), expanded(*a)),
        AddrOrPrefix::Prefix(n) => (n.to_string(), dualstack_addr::expanded_net(n)),
    }
}

fn info(text: &str, format: Format) -> anyhow::Result<Outcome> {
    let value = parse_any("value", text)?;
    let net = value.net();
    let (canonical, expanded_text) = texts(&value);
    let family = Family::of_net(net);
    let n = count(&net);
    let kind = classify(&net);
    match format {
        Format::Json => print_json(&json!({
            "input": text,
            "type": match value { AddrOrPrefix::Addr(_) => "address", AddrOrPrefix::Prefix(_) => "prefix" },
            "canonical": canonical,
            "expanded": expanded_text,
            "family": family,
            "prefix_len": net.prefix_len(),
            "network": net.network().to_string(),
            "first": first(&net).to_string(),
            "last": last(&net).to_string(),
            "addresses": n,
            "addresses_log2": n.log2(),
            "kind": kind.name(),
            "kinds": kind.kinds(),
            "mixed": match &kind { NetKind::Mixed(m) => json!(m), NetKind::Uniform(_) => json!(null) },
        }))?,
        Format::Text => {
            println!("canonical   {canonical}");
            println!("expanded    {expanded_text}");
            println!("family      {family}");
            println!("prefix len  {}", net.prefix_len());
            println!("network     {}", net.network());
            println!("first       {}", first(&net));
            println!("last        {}", last(&net));
            println!("addresses   {n} (2^{})", n.log2());
            print_kind(&kind);
        }
    }
    Ok(Outcome::Ok)
}

fn print_kind(kind: &NetKind) {
    match kind {
        NetKind::Uniform(k) => println!("kind        {}", describe(*k)),
        NetKind::Mixed(m) => {
            println!("kind        mixed");
            if let Some(rest) = m.rest {
                println!("  (the rest)            {}", describe(rest));
            }
            for KindRange { net, kind } in &m.parts {
                println!("  {:<21} {}", net.to_string(), describe(*kind));
            }
        }
    }
}

/// `documentation: for examples in documentation only (RFC 5737, …)`.
fn describe(kind: Kind) -> String {
    format!("{kind}: {} ({})", kind.description(), kind.source())
}

fn parse_len(text: &str, net: &IpNet) -> anyhow::Result<u8> {
    let digits = text.strip_prefix('/').unwrap_or(text);
    let max = net.max_prefix_len();
    match digits.parse::<u8>() {
        Ok(n) if n <= max && digits.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
        _ => Err(usage(format!(
            "--into {text:?}: expected a prefix length such as /64, from /{} to /{max} for {net}",
            net.prefix_len()
        ))),
    }
}

fn split(
    prefix: &str,
    into: &str,
    count_arg: Option<u64>,
    start: &str,
    format: Format,
) -> anyhow::Result<Outcome> {
    let net = parse_net("prefix", prefix)?;
    let new_len = parse_len(into, &net)?;
    let children = subnets(&net, new_len).map_err(|e| usage(format!("--into: {e}")))?;
    let total = children.total();
    let start: u128 = start.parse().map_err(|_| {
        usage(format!(
            "--start {start:?}: expected a child index (0, 1, 2, …)"
        ))
    })?;
    if total.to_u128().is_some_and(|t| start >= t) {
        return Err(usage(format!(
            "--start {start}: {net} has only {total} /{new_len} subnets (index 0 to {total} - 1)"
        )));
    }
    let want: u128 = match count_arg {
        Some(0) => return Err(usage("--count 0: ask for at least one subnet")),
        Some(k) if k > MAX_SPLIT_COUNT => {
            return Err(usage(format!(
                "--count {k}: at most {MAX_SPLIT_COUNT} subnets can be listed at once; use --start to page"
            )));
        }
        Some(k) => u128::from(k),
        None if total.exceeds(DEFAULT_SPLIT_LIMIT) => {
            return Err(usage(format!(
                "{net} has {total} /{new_len} subnets; pass --count K (up to {MAX_SPLIT_COUNT}) to list K of them, and --start I to begin at subnet I"
            )));
        }
        None => total.saturating_u128(),
    };
    let left = remaining(total, start);
    let shown = want.min(left);
    let list = children
        .start_at(start)
        .take(usize::try_from(shown).unwrap_or(usize::MAX));
    match format {
        Format::Json => {
            let list: Vec<String> = list.map(|n| n.to_string()).collect();
            print_json(&json!({
                "prefix": net.to_string(),
                "into": new_len,
                "total": total,
                "start": start.to_string(),
                "subnets": list,
            }))?;
        }
        Format::Text => {
            for child in list {
                println!("{child}");
            }
        }
    }
    if shown < left || start > 0 {
        eprintln!(
            "note: listed {shown} of {total} /{new_len} subnets of {net}, starting at index {start}"
        );
    }
    Ok(Outcome::Ok)
}

/// How many children are left from index `start` on (saturating at `u128::MAX`).
fn remaining(total: Count, start: u128) -> u128 {
    match total.to_u128() {
        Some(t) => t.saturating_sub(start),
        // 2^128 - start; for start = 0 that is one more than u128::MAX.
        None => (u128::MAX - start).saturating_add(1),
    }
}

fn contains(prefix: &str, value: &str, format: Format) -> anyhow::Result<Outcome> {
    let outer = parse_net("prefix", prefix)?;
    let inner = parse_any("value", value)?;
    let yes = dualstack_addr::contains(&outer, &inner.net());
    let same_family = Family::of_net(outer) == inner.family();
    match format {
        Format::Json => print_json(&json!({
            "prefix": outer.to_string(),
            "value": inner.to_string(),
            "contains": yes,
            "same_family": same_family,
        }))?,
        Format::Text if yes => println!("yes: {outer} contains {inner}"),
        Format::Text if !same_family => println!(
            "no: {outer} does not contain {inner} (different families: {} and {})",
            Family::of_net(outer),
            inner.family()
        ),
        Format::Text => println!("no: {outer} does not contain {inner}"),
    }
    Ok(if yes { Outcome::Ok } else { Outcome::Problems })
}

fn overlap(a: &str, b: &str, format: Format) -> anyhow::Result<Outcome> {
    let a = parse_any("first value", a)?;
    let b = parse_any("second value", b)?;
    let common = intersection(&a.net(), &b.net());
    match format {
        Format::Json => print_json(&json!({
            "a": a.to_string(),
            "b": b.to_string(),
            "overlap": common.is_some(),
            "intersection": common.map(|n| n.to_string()),
            "addresses_in_common": common.map(|n| count(&n)),
        }))?,
        Format::Text => match common {
            Some(c) => println!("yes: {a} and {b} overlap in {c} ({} addresses)", count(&c)),
            None => println!("no: {a} and {b} do not overlap"),
        },
    }
    Ok(if common.is_some() {
        Outcome::Ok
    } else {
        Outcome::Problems
    })
}

fn parse_subnet_id(text: &str) -> anyhow::Result<u16> {
    let hex = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .unwrap_or(text);
    if hex.is_empty() || hex.len() > 4 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(usage(format!(
            "--subnet {text:?}: a subnet ID is 16 bits written as 1 to 4 hex digits (0 to ffff)"
        )));
    }
    u16::from_str_radix(hex, 16).map_err(|_| usage(format!("--subnet {text:?}: not a hex number")))
}

#[derive(Serialize)]
struct UlaOut {
    prefix: UlaPrefix,
    global_id: String,
    subnet_id: Option<String>,
    subnet: Option<String>,
    source: &'static str,
    seed: Option<u64>,
}

fn ula(subnet: Option<&str>, seed: Option<u64>, format: Format) -> anyhow::Result<Outcome> {
    let subnet_id = subnet.map(parse_subnet_id).transpose()?;
    let prefix = match seed {
        Some(s) => UlaPrefix::generate(&mut SeededRandom::new(s)),
        None => UlaPrefix::generate(&mut OsRandom),
    }
    .context("generating a ULA Global ID")?;
    let out = UlaOut {
        prefix,
        global_id: format!("{:010x}", prefix.global_id()),
        subnet_id: subnet_id.map(|id| format!("{id:x}")),
        subnet: subnet_id.map(|id| prefix.subnet(id).to_string()),
        source: if seed.is_some() { "seed" } else { "os" },
        seed,
    };
    match format {
        Format::Json => print_json(&serde_json::to_value(&out).context("encoding JSON output")?)?,
        Format::Text => {
            println!("prefix      {}", out.prefix);
            println!("global id   {}", out.global_id);
            if let (Some(id), Some(net)) = (&out.subnet_id, &out.subnet) {
                println!("subnet      {net} (subnet ID {id})");
            }
            match seed {
                Some(s) => {
                    println!("source      seed {s} (reproducible; use no --seed for a real prefix)")
                }
                None => println!("source      OS random generator"),
            }
        }
    }
    Ok(Outcome::Ok)
}
