//! Placeholder until the adapter lands: every record is refused.

use crate::{Adapter, AdapterOptions, AdapterState, InputFormat};
use sessionflow_core::{DeadLetterReason, Event, InputError};

/// Not written yet.
#[derive(Debug, Clone)]
pub struct CcaiPlatform;

impl CcaiPlatform {
    /// The adapter with its options.
    pub fn new(_options: &AdapterOptions) -> Self {
        CcaiPlatform
    }
}

impl Adapter for CcaiPlatform {
    fn format(&self) -> InputFormat {
        InputFormat::CcaiPlatform
    }

    fn adapt(&self, _record: &[u8], _state: &mut dyn AdapterState) -> Result<Vec<Event>, InputError> {
        Err(InputError { reason: DeadLetterReason::DecodeError, detail: format!("{}: not supported yet", self.format()) })
    }
}
