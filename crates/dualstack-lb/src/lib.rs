//! LoadBalancer decisions as a pure function of a cluster snapshot.
