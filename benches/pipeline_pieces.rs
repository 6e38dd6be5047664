//! The pieces of the engine, one core: decode, fold, store, encode.
//! Throughput is in input events per second.

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use sessionflow_benches::{encoded, events};
use sessionflow_codec::Codec;
use sessionflow_core::memstore::MemState;
use sessionflow_core::{Batch, EngineConfig, Fold, FoldRules, InputPosition, InputRecord, Millis, Output};
use sessionflow_store::{Store, StoreConfig};
use std::collections::HashMap;
use std::hint::black_box;

const N: usize = 20_000;

fn decode(c: &mut Criterion) {
    let events = events(N, 6);
    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Elements(N as u64));
    for (name, codec) in [("json", Codec::json()), ("avro", Codec::avro())] {
        let inputs = encoded(&events, &codec);
        group.bench_function(name, |b| {
            b.iter(|| {
                for bytes in &inputs {
                    black_box(codec.decode_event(Some(bytes)).unwrap());
                }
            })
        });
    }
    group.finish();
}

fn fold(c: &mut Criterion) {
    let events = events(N, 6);
    let rules = FoldRules::default();
    let mut group = c.benchmark_group("fold");
    group.throughput(Throughput::Elements(N as u64));
    group.bench_function("apply", |b| {
        b.iter(|| {
            let mut folds: HashMap<&str, Fold> = HashMap::new();
            for e in &events {
                black_box(folds.entry(&*e.session_id).or_default().apply(e, &rules));
            }
            folds.len()
        })
    });
    group.bench_function("processor_in_memory", |b| {
        let engine = EngineConfig::default();
        b.iter_batched(
            MemState::default,
            |mut state| {
                for (i, chunk) in events.chunks(500).enumerate() {
                    let mut batch = Batch::new(&engine, &state, Millis(0)).unwrap();
                    for (j, e) in chunk.iter().enumerate() {
                        let position = InputPosition { topic: "bench".into(), partition: 0, offset: (i * 500 + j) as i64 };
                        batch.record(InputRecord { key: None, value: None, position, event: Ok(e.clone()) }).unwrap();
                    }
                    let result = batch.finish();
                    state.apply(result.writes);
                    black_box(result.outputs);
                }
                state
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

fn store(c: &mut Criterion) {
    let events = events(N, 6);
    let engine = EngineConfig::default();
    let mut group = c.benchmark_group("store");
    group.throughput(Throughput::Elements(N as u64));
    group.sample_size(10);
    group.bench_function("processor_on_rocksdb", |b| {
        b.iter_batched(
            || tempfile::tempdir().unwrap(),
            |dir| {
                let store = Store::open(dir.path(), &StoreConfig::default()).unwrap();
                for (i, chunk) in events.chunks(500).enumerate() {
                    let state = store.partition(0);
                    let mut batch = Batch::new(&engine, &state, Millis(0)).unwrap();
                    for (j, e) in chunk.iter().enumerate() {
                        let position = InputPosition { topic: "bench".into(), partition: 0, offset: (i * 500 + j) as i64 };
                        batch.record(InputRecord { key: None, value: None, position, event: Ok(e.clone()) }).unwrap();
                    }
                    let result = batch.finish();
                    store.commit(0, &result.writes).unwrap();
                    black_box(result.outputs);
                }
                dir
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

fn encode(c: &mut Criterion) {
    let events = events(N, 6);
    let (outputs, _) = sessionflow_core::memstore::replay_in_memory(&EngineConfig::default(), &events.iter().cloned().map(Ok).collect::<Vec<_>>(), 500);
    let records: Vec<Output> = outputs.into_iter().filter(|o| matches!(o, Output::Timeline(_) | Output::Metadata(_))).collect();
    let mut group = c.benchmark_group("encode");
    group.sample_size(10);
    // Per input event: its timeline record plus its share of metadata records.
    group.throughput(Throughput::Elements(N as u64));
    for (name, codec) in [("json", Codec::json()), ("avro", Codec::avro())] {
        group.bench_function(name, |b| {
            b.iter(|| {
                for o in &records {
                    black_box(codec.encode_output(o).unwrap());
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, decode, fold, store, encode);
criterion_main!(benches);
