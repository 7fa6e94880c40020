//! Applies rendered rulesets to the kernel and reads them back (adapter: runs `nft`).
