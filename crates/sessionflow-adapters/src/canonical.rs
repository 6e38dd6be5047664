//! The canonical event itself: one record, one event, validated by the core.

use crate::{Adapter, AdapterState, InputFormat};
use sessionflow_core::{Event, InputError};

/// Reads sessionflow's own JSON event. (The daemon has a faster path for
/// canonical topics; this one serves the replay and the adapters' tests.)
#[derive(Debug, Clone, Copy, Default)]
pub struct Canonical;

impl Adapter for Canonical {
    fn format(&self) -> InputFormat {
        InputFormat::Canonical
    }

    fn adapt(&self, record: &[u8], _state: &mut dyn AdapterState) -> Result<Vec<Event>, InputError> {
        Event::from_json_slice(record).map(|event| vec![event])
    }
}
