//! LoadBalancer decisions as a pure function of a cluster snapshot.

mod classify;
pub mod conditions;
pub mod config;
mod decide;
pub mod decision;
mod endpoints;
pub mod explain;
pub mod live;
mod nodes;
pub mod objects;
pub mod snapshot;
pub mod time;

pub use config::{Config, Mode};
pub use decide::{SOURCE_RANGES_ANNOTATION, decide, ownership};
pub use decision::Decision;
pub use endpoints::SERVICE_NAME_LABEL;
pub use explain::explain;
pub use nodes::{DRAINING_TAINTS, ENABLELB_LABEL, EXCLUDE_LABEL, LBPOOL_LABEL, POOL_LABEL_PREFIX};
pub use snapshot::{Snapshot, SnapshotError};
pub use time::Timestamp;
