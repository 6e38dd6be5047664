use sessionflow_codec::Codec;
use sessionflow_core::memstore::replay_in_memory;
use sessionflow_core::{EngineConfig, Output};
use sessionflow_sim::{SimConfig, SimRecord, Simulator};
use std::hint::black_box;

#[inline(never)]
fn encode_all_ours(codec: &Codec, outputs: &[Output]) -> usize {
    outputs.iter().map(|o| black_box(codec.encode_output(o).unwrap()).map_or(0, |v| v.len())).sum()
}

#[inline(never)]
fn encode_all_serde(outputs: &[Output]) -> usize {
    outputs
        .iter()
        .map(|o| match o {
            Output::Timeline(r) => serde_json::to_vec(r).unwrap().len(),
            Output::Metadata(r) => serde_json::to_vec(r).unwrap().len(),
            _ => 0,
        })
        .sum()
}

fn main() {
    let events: Vec<_> = Simulator::new(SimConfig { extra_events_per_session: 24, ..SimConfig::clean(7) })
        .take(20_000)
        .filter_map(|r| if let SimRecord::Event(e) = r { Some(Ok(e)) } else { None })
        .collect();
    let outputs = replay_in_memory(&EngineConfig::default(), &events, 5000).0;
    let codec = Codec::json();
    let a = encode_all_ours(&codec, &outputs);
    let b = encode_all_serde(&outputs);
    println!("{} outputs, {a} {b}", outputs.len());
}
