//! From the decision's [`Announcement`]s for this node to concrete (address, interface)
//! targets: the pool's named interfaces, else the interface holding the node's own address
//! of that family. Anything that cannot be resolved is reported, not guessed.

use std::collections::BTreeMap;
use std::net::IpAddr;

use dualstack_lb::announce::Announcement;

use crate::link::Link;

/// One address to announce on one interface.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Target {
    /// The pool address.
    pub ip: IpAddr,
    /// The interface whose LAN it is on, where it is announced.
    pub interface: String,
}

/// The targets for `node`, and a message per announcement that has no interface here.
pub fn resolve<'a>(
    announcements: impl IntoIterator<Item = &'a Announcement>,
    links: &BTreeMap<String, Link>,
) -> (Vec<Target>, Vec<String>) {
    let mut targets = Vec::new();
    let mut problems = Vec::new();
    for a in announcements {
        if a.interfaces.is_empty() {
            let holder = a
                .via
                .and_then(|via| links.values().find(|l| l.addresses.contains(&via)));
            match holder {
                Some(link) => targets.push(Target {
                    ip: a.ip,
                    interface: link.name.clone(),
                }),
                None => problems.push(format!(
                    "{} (pool {}): no interface holds the node address {}",
                    a.ip,
                    a.pool,
                    a.via.map_or("(none)".to_string(), |v| v.to_string())
                )),
            }
        } else {
            for name in &a.interfaces {
                if links.contains_key(name) {
                    targets.push(Target {
                        ip: a.ip,
                        interface: name.clone(),
                    });
                } else {
                    problems.push(format!(
                        "{} (pool {}): interface {name} does not exist here",
                        a.ip, a.pool
                    ));
                }
            }
        }
    }
    targets.sort();
    targets.dedup();
    (targets, problems)
}
