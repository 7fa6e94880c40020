//! Live addresses over rtnetlink: dump and watch (adapter).
