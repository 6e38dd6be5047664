//! Which adapter reads which input record: by input topic
//! (`[[topics.inputs]]`), and for a native record re-keyed through the
//! repartition topic, by the input topic it names in a header.

use crate::config::TopicsSection;
use rdkafka::message::{Headers, Message};
use sessionflow_adapters::{Adapter, AdapterOptions, InputFormat, adapter};
use std::collections::HashMap;

/// The header a re-keyed native record carries: its input topic, whose
/// adapter reads it on the way back.
pub const INPUT_TOPIC_HEADER: &str = "sessionflow.input";

/// The adapters of the vendor-format input topics (canonical topics have
/// none: the codec reads them).
#[derive(Debug, Default)]
pub struct InputAdapters {
    by_topic: HashMap<String, Box<dyn Adapter>>,
}

impl InputAdapters {
    /// One adapter per non-canonical input topic.
    pub fn new(topics: &TopicsSection) -> Self {
        let by_topic = topics
            .input_topics()
            .into_iter()
            .filter(|t| t.format != InputFormat::Canonical)
            .map(|t| {
                let options = AdapterOptions { session_identity: t.session_identity };
                (t.name, adapter(t.format, &options))
            })
            .collect();
        InputAdapters { by_topic }
    }

    /// The adapter for a record: its topic's, or for a record from the
    /// repartition topic, that of the input topic in its header.
    pub fn for_record(&self, message: &impl Message, from_repartition: bool) -> Option<&dyn Adapter> {
        if self.by_topic.is_empty() {
            return None;
        }
        let topic = if from_repartition {
            let headers = message.headers()?;
            let header = headers.iter().find(|h| h.key == INPUT_TOPIC_HEADER)?;
            std::str::from_utf8(header.value?).ok()?
        } else {
            message.topic()
        };
        self.by_topic.get(topic).map(AsRef::as_ref)
    }
}
