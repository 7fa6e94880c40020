//! IPv4/IPv6 address and prefix model shared by every part of dualstack.

mod family;

pub use family::Family;
