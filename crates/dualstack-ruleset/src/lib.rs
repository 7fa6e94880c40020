//! Data-plane model (frontends and backends) and its renderers (pure: no I/O).
