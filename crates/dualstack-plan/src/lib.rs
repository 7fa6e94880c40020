//! Dual-stack address planning and configuration checking (pure: no I/O).
