//! Throwaway network-namespace topologies for tests, the demo and benchmarks.
