//! State the processing loop shares with the HTTP server and the command
//! line: readiness, health (stalls, stuck calls), fencing, shutdown.

use crate::delivery::FatalError;
use crate::metrics::Metrics;
use sessionflow_core::Millis;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};

/// State shared with the HTTP server and the command line.
#[derive(Debug, Default)]
pub struct Shared {
    pub metrics: Metrics,
    /// Assigned partitions are restored and being processed.
    pub ready: AtomicBool,
    /// Set to stop after the current batch.
    pub shutdown: AtomicBool,
    /// Batches committed.
    pub batches: AtomicU64,
    /// Wall-clock milliseconds of the loop's last progress: a batch
    /// committed, or a poll that found nothing to do.
    pub last_progress_ms: AtomicI64,
    /// Partitions assigned to this instance.
    pub assigned: AtomicUsize,
    /// `/healthz` fails once the loop made no progress this long while it
    /// holds partitions (`kafka.stall_timeout_ms`; 0 = never).
    pub stall_timeout_ms: AtomicU64,
    /// Set when another process claimed this instance id (instance.rs).
    fenced_by: Mutex<Option<String>>,
    /// Wall-clock milliseconds of the loop's last turn (0: not started),
    /// and what it is doing since: a call that never returns shows here
    /// (see [`Shared::stuck`]).
    loop_turned_ms: AtomicI64,
    doing: Mutex<&'static str>,
}

impl Shared {
    /// Another process took over this instance id: the loop stops before
    /// its next commit.
    pub fn fence(&self, why: String) {
        tracing::error!(%why, "fenced");
        *self.fenced_by.lock().expect("lock") = Some(why);
    }

    /// Stops with [`FatalError`] if another process took over.
    pub(crate) fn check_fence(&self) -> Result<(), FatalError> {
        match &*self.fenced_by.lock().expect("lock") {
            Some(why) => {
                Err(FatalError(format!("this daemon was fenced: {why}; it stops so that only one writes. Give every daemon its own kafka.instance_id")))
            }
            None => Ok(()),
        }
    }

    /// Notes that the processing loop moved on.
    pub fn progressed(&self) {
        self.last_progress_ms.store(wall_millis().0, Ordering::Relaxed);
    }

    /// Notes that the loop (or a restore) went around, and what it does next.
    pub(crate) fn doing(&self, what: &'static str) {
        *self.doing.lock().expect("lock") = what;
        self.loop_turned_ms.store(wall_millis().0, Ordering::Relaxed);
    }

    /// Why the daemon is unhealthy, if it is: partitions held and no
    /// progress for longer than the stall timeout, or the loop stuck.
    pub fn stalled(&self) -> Option<String> {
        if let Some(why) = self.stuck() {
            return Some(why);
        }
        let timeout = self.stall_timeout_ms.load(Ordering::Relaxed) as i64;
        let since = wall_millis().0 - self.last_progress_ms.load(Ordering::Relaxed);
        (timeout > 0 && self.assigned.load(Ordering::Relaxed) > 0 && since > timeout)
            .then(|| format!("no batch committed and no idle poll for {} s while holding partitions", since / 1000))
    }

    /// The loop has not gone around for longer than the stall timeout: one
    /// call has not returned (librdkafka's `send_offsets_to_transaction`
    /// can wait forever for a group coordinator that went away, ignoring
    /// its timeout). No retry gets out of that; `sessionflow run` exits.
    pub fn stuck(&self) -> Option<String> {
        let timeout = self.stall_timeout_ms.load(Ordering::Relaxed) as i64;
        let turned = self.loop_turned_ms.load(Ordering::Relaxed);
        let since = wall_millis().0 - turned;
        (timeout > 0 && turned > 0 && since > timeout).then(|| {
            let doing = *self.doing.lock().expect("lock");
            format!("the processing loop has been {doing} for {} s (kafka.stall_timeout_ms = {timeout}) without the call returning", since / 1000)
        })
    }
}

pub(crate) fn wall_millis() -> Millis {
    Millis(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64))
}
