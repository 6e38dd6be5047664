//! Writes batches of simulated input into a RocksDB store until killed (or
//! until the input runs out): the process the crash test kills.
//!
//! Usage: crash_writer STATE_DIR BATCH_SIZE TOTAL_RECORDS SEED

use sessionflow_core::StateRead;
use sessionflow_store::{Store, StoreConfig};
use std::io::Write;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, dir, batch_size, total, seed] = args.as_slice() else {
        return Err("usage: crash_writer STATE_DIR BATCH_SIZE TOTAL_RECORDS SEED".into());
    };
    let (batch_size, total, seed): (usize, usize, u64) = (batch_size.parse()?, total.parse()?, seed.parse()?);
    let input = sessionflow_tests::sim_input(seed, total);
    let engine = sessionflow_tests::test_engine();
    let store = Store::open(dir, &StoreConfig::default())?;
    let state = store.partition(0);
    // The parent counts these lines and kills a while after the n-th, so
    // every kill lands mid-stream however fast this machine writes.
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "ready")?;
    stdout.flush()?;
    loop {
        let next = state.meta()?.next_offset("test") as usize;
        if next >= input.len() {
            return Ok(());
        }
        let end = (next + batch_size).min(input.len());
        let result = sessionflow_tests::process(&engine, &state, &input[next..end], next as i64)?;
        store.commit(0, &result.writes)?;
        writeln!(stdout, "committed {end}")?;
        stdout.flush()?;
    }
}
