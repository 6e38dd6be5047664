//! Fault injection for the daemon's own tests: places in the pipeline where
//! a test can make the process stop dead (`park`: it logs that the point was
//! reached and waits for the test's SIGKILL), so a kill lands exactly there
//! rather than after a guessed sleep. Configured from the `FAILPOINTS`
//! variable in the `fail` crate's syntax (`name=actions;name=actions`, e.g.
//! `pipeline.commit=2*off->return`: the third time). Only builds with the
//! `failpoints` feature have the points; elsewhere the variable is refused.

/// Before the batch's Kafka commit (exactly once: `commit_transaction`; at
/// least once: the offset commit), every output already sent.
pub const COMMIT: &str = "pipeline.commit";
/// After the Kafka commit, before the batch's store write.
pub const STORE_WRITE: &str = "pipeline.store_write";
/// While a changelog partition is being read back into the store.
pub const RESTORE_READ: &str = "restore.read";
/// In the rebalance callback, as partitions are revoked.
pub const REVOKE: &str = "rebalance.revoke";

/// What a process parked at `point` logs, for the test to wait on.
pub fn parked_message(point: &str) -> String {
    format!("failpoint {point} reached; parked until killed")
}

/// Applies `FAILPOINTS`, if set.
pub fn configure_from_env() -> anyhow::Result<()> {
    let Ok(spec) = std::env::var("FAILPOINTS") else { return Ok(()) };
    if !cfg!(feature = "failpoints") {
        anyhow::bail!("FAILPOINTS is set but this build has no failpoints (a test build has them): unset FAILPOINTS");
    }
    for item in spec.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, actions) = item.split_once('=').ok_or_else(|| anyhow::anyhow!("FAILPOINTS: {item:?} is not name=actions"))?;
        fail::cfg(name.trim(), actions.trim()).map_err(|e| anyhow::anyhow!("FAILPOINTS: {name}: {e}"))?;
    }
    Ok(())
}

/// Stops the calling thread for good, saying where: the test then kills the
/// process, which dies with everything after this point undone.
pub fn park(point: &str) -> ! {
    tracing::error!("{}", parked_message(point));
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}
