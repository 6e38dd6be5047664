//! The RocksDB state store of sessionflow.
//!
//! One database per instance; every key starts with its partition
//! (`u32`, big-endian), so a partition's state is one contiguous key range:
//! dropped with a single range delete when the partition is revoked, kept
//! as is when it stays. A processed batch is applied as one atomic
//! `WriteBatch` holding the state changes *and* the partition's next input
//! offset and watermark, so after a crash the store is always at a batch
//! boundary and knows which one.
//!
//! Memory is bounded by construction: one LRU block cache shared by all
//! reads, with the memtables charged to it through a write-buffer manager,
//! and index and filter blocks cached in it too.

pub mod changelog;
mod keys;

use keys::Kind;
use rocksdb::{
    BlockBasedIndexType, BlockBasedOptions, Cache, DB, DBCompressionType, Direction, FlushOptions, IteratorMode, Options, ReadOptions, SliceTransform,
    WriteBatch, WriteBufferManager, WriteOptions,
};
use sessionflow_core::memstore::MemState;
use sessionflow_core::{Event, EventsKey, Marker, Millis, PartitionMeta, SessionEntry, StateRead, Timer, Write};
use std::cell::OnceCell;
use std::path::{Path, PathBuf};

/// Store errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// RocksDB failed.
    #[error("RocksDB: {0}")]
    RocksDb(#[from] rocksdb::Error),
    /// The store was written in another format.
    #[error(
        "the store at {path} was written in format {found} by another sessionflow version; this version reads format {STORE_FORMAT}. \
         Fix: delete that directory: the daemon rebuilds its state from the changelog at start \
         (for `replay --state-dir`, start from an empty directory)"
    )]
    Format {
        /// The store's directory.
        path: String,
        /// The format found (1 for stores written before formats were recorded).
        found: u32,
    },
    /// A fault injected by a test (the `failpoints` feature).
    #[error("injected fault: {0}")]
    Injected(String),
    /// A stored value did not decode.
    #[error("corrupt value under {key}: {detail}")]
    Corrupt {
        /// The key, escaped.
        key: String,
        /// What failed.
        detail: String,
    },
}

/// Store settings.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// Total memory for RocksDB: the shared block cache, which the
    /// memtables are charged to. Default 256 MiB.
    pub memory_budget_bytes: usize,
    /// Share of the budget the memtables may take. Default 0.5.
    pub write_buffer_ratio_percent: u8,
    /// `fsync` the write-ahead log on every batch (survives power loss, not
    /// only process crashes). Default false.
    pub sync_writes: bool,
    /// Write RocksDB's write-ahead log. Default true. Off where a changelog
    /// holds the state (the daemon): after a crash the store reopens at its
    /// last memtable flush, which is a batch boundary with its changelog
    /// position, and the changelog brings it up to date from there.
    pub write_ahead_log: bool,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig { memory_budget_bytes: 256 << 20, write_buffer_ratio_percent: 50, sync_writes: false, write_ahead_log: true }
    }
}

/// Memory and size figures, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StoreStats {
    /// Bytes in the shared block cache (memtables included).
    pub block_cache_usage: u64,
    /// Bytes of the memtables.
    pub memtable_usage: u64,
    /// Estimated number of keys.
    pub estimated_keys: u64,
    /// Estimated live data on disk.
    pub estimated_live_bytes: u64,
}

/// The state store.
pub struct Store {
    db: DB,
    cache: Cache,
    write_buffers: WriteBufferManager,
    write_options: WriteOptions,
    /// Made once: `get_pinned` without options creates and frees a C++
    /// `ReadOptions` per call, and the processor reads per event.
    point_read: ReadOptions,
    path: PathBuf,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish_non_exhaustive()
    }
}

/// A raw store record as the changelog carries it: key, and value or
/// `None` for a delete.
pub type RawRecord = (Vec<u8>, Option<Vec<u8>>);

/// A stored key and its value.
pub type StoredEntry = (Vec<u8>, Vec<u8>);

/// Raw records laid end to end in one buffer, for callers that gather many
/// before one write (a restore): no allocation per record, the buffer can
/// be reused, and the records added since a point can be dropped.
#[derive(Debug, Default)]
pub struct RawRecordBuf {
    bytes: Vec<u8>,
    /// Per record: where its key ends in `bytes`, and where its value ends
    /// (`None` for a delete). A record starts where the previous one ends.
    ends: Vec<(usize, Option<usize>)>,
}

impl RawRecordBuf {
    /// Appends a record: key, and value or `None` for a delete.
    pub fn push(&mut self, key: &[u8], value: Option<&[u8]>) {
        self.bytes.extend_from_slice(key);
        let key_end = self.bytes.len();
        let value_end = value.map(|value| {
            self.bytes.extend_from_slice(value);
            self.bytes.len()
        });
        self.ends.push((key_end, value_end));
    }

    /// Records held.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Bytes of keys and values held.
    pub fn bytes(&self) -> usize {
        self.bytes.len()
    }

    /// Keeps the first `records` records.
    pub fn truncate(&mut self, records: usize) {
        if records < self.ends.len() {
            self.ends.truncate(records);
            let end = self.ends.last().map_or(0, |&(key_end, value_end)| value_end.unwrap_or(key_end));
            self.bytes.truncate(end);
        }
    }

    /// Appends every record of `other`.
    pub fn extend(&mut self, other: &RawRecordBuf) {
        let offset = self.bytes.len();
        self.bytes.extend_from_slice(&other.bytes);
        self.ends.extend(other.ends.iter().map(|&(key_end, value_end)| (key_end + offset, value_end.map(|end| end + offset))));
    }

    /// Empties the buffer, keeping its memory.
    pub fn clear(&mut self) {
        self.truncate(0);
    }

    /// The records in order, as key and value (`None` for a delete).
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], Option<&[u8]>)> + '_ {
        let mut start = 0;
        self.ends.iter().map(move |&(key_end, value_end)| {
            let key = &self.bytes[start..key_end];
            start = value_end.unwrap_or(key_end);
            (key, value_end.map(|end| &self.bytes[key_end..end]))
        })
    }
}

/// A stored key and value, as an iterator yields them.
type KeyValue = (Box<[u8]>, Box<[u8]>);

fn corrupt(key: &[u8], detail: &dyn std::fmt::Display) -> StoreError {
    StoreError::Corrupt { key: key.escape_ascii().to_string(), detail: detail.to_string() }
}

fn decode<'a, T: serde::Deserialize<'a>>(key: &[u8], bytes: &'a [u8]) -> Result<T, StoreError> {
    postcard::from_bytes(bytes).map_err(|e| corrupt(key, &e))
}

fn encode<T: serde::Serialize>(value: &T) -> Vec<u8> {
    // Serialising plain data structs to a Vec cannot fail. Most values
    // (events, session entries) are a few hundred bytes: one allocation.
    postcard::to_extend(value, Vec::with_capacity(512)).expect("postcard serialises store values")
}

/// A chunk's stored form: its events' ids, then the events, so the ids can
/// be read without decoding the events.
fn encode_chunk(events: &[Event]) -> Vec<u8> {
    let ids: Vec<&str> = events.iter().map(|e| e.event_id.as_str()).collect();
    postcard::to_extend(&(ids, events), Vec::with_capacity(512 * events.len())).expect("postcard serialises store values")
}

/// A chunk's events.
fn decode_chunk(key: &[u8], value: &[u8]) -> Result<Vec<Event>, StoreError> {
    let (_, events): (Vec<&str>, Vec<Event>) = decode(key, value)?;
    Ok(events)
}

/// The format of stored keys and values this version reads and writes.
/// Format 1 (before 0.2) had no recorded format. Format 3: the session
/// entry's fold gained the fields of the canonical model's gaps (devices,
/// dispositions, participant failures, …); postcard entries of format 2 do
/// not decode as format 3.
pub const STORE_FORMAT: u32 = 3;

impl Store {
    /// Opens (or creates) the store at `path`. A store of another format
    /// is refused with [`StoreError::Format`], which names the fix.
    pub fn open(path: impl AsRef<Path>, config: &StoreConfig) -> Result<Store, StoreError> {
        let budget = config.memory_budget_bytes.max(8 << 20);
        let cache = Cache::new_lru_cache(budget);
        let write_budget = budget / 100 * usize::from(config.write_buffer_ratio_percent.clamp(10, 90));
        let write_buffers = WriteBufferManager::new_write_buffer_manager_with_cache(write_budget, false, cache.clone());

        let mut table = BlockBasedOptions::default();
        table.set_block_cache(&cache);
        table.set_cache_index_and_filter_blocks(true);
        table.set_pin_l0_filter_and_index_blocks_in_cache(true);
        table.set_bloom_filter(10.0, false);
        // Filters and indexes in partitions of a few KB under a small pinned
        // top level: a lookup loads the partition it needs. Whole, a file's
        // filter is hundreds of KB; once the state outgrows the block cache
        // it is evicted between lookups, and each lookup read it back and
        // checksummed it whole (two thirds of the engine's time with 1M
        // live sessions).
        table.set_index_type(BlockBasedIndexType::TwoLevelIndexSearch);
        table.set_partition_filters(true);
        table.set_metadata_block_size(4 << 10);
        table.set_pin_top_level_index_and_filter(true);
        table.set_cache_index_and_filter_blocks_with_high_priority(true);
        table.set_block_size(16 << 10);

        let mut options = Options::default();
        options.create_if_missing(true);
        options.set_block_based_table_factory(&table);
        options.set_write_buffer_manager(&write_buffers);
        options.set_write_buffer_size((write_budget / 4).clamp(4 << 20, 64 << 20));
        options.set_max_write_buffer_number(4);
        // Most lookups miss (a new event id, a session without a marker): a
        // bloom filter over the memtable's keys answers those without a
        // skip-list search, as the table filters do for files.
        options.set_memtable_whole_key_filtering(true);
        options.set_memtable_prefix_bloom_ratio(0.05);
        // A session's entry and event chunks share a prefix: the filters of
        // files and memtables answer "no chunks here" for a session's read
        // of its event ids, as they answer point reads.
        options.set_prefix_extractor(SliceTransform::create("sessionflow.session.v1", keys::session_prefix, Some(keys::has_session_prefix)));
        options.set_compression_type(DBCompressionType::Lz4);
        options.set_max_background_jobs(2);
        options.set_max_open_files(512);
        options.set_keep_log_file_num(4);

        let db = DB::open(&options, path.as_ref())?;
        let mut write_options = WriteOptions::default();
        write_options.set_sync(config.sync_writes);
        write_options.disable_wal(!config.write_ahead_log && !config.sync_writes);
        let store = Store { db, cache, write_buffers, write_options, point_read: ReadOptions::default(), path: path.as_ref().to_owned() };
        store.check_format()?;
        Ok(store)
    }

    /// Records the format in a new store; refuses a store of another one.
    fn check_format(&self) -> Result<(), StoreError> {
        let key = keys::store_format();
        let found = match self.get(&key)? {
            Some(value) => <[u8; 4]>::try_from(value.as_ref()).map(u32::from_be_bytes).unwrap_or(0),
            None => {
                let mut read = ReadOptions::default();
                read.set_total_order_seek(true);
                if self.db.iterator_opt(IteratorMode::Start, read).next().transpose()?.is_none() {
                    let mut options = WriteOptions::default();
                    options.set_sync(true);
                    self.db.put_opt(&key, STORE_FORMAT.to_be_bytes(), &options)?;
                    return Ok(());
                }
                1
            }
        };
        if found != STORE_FORMAT {
            return Err(StoreError::Format { path: self.path.display().to_string(), found });
        }
        Ok(())
    }

    /// A key's stored value (for the changelog's prior values).
    pub fn get_raw(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.get(key)?.map(|value| value.to_vec()))
    }

    /// Where the store lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A read view of one partition.
    pub fn partition(&self, partition: u32) -> PartitionState<'_> {
        PartitionState { store: self, partition, single_events: OnceCell::new() }
    }

    /// Applies a batch's writes for `partition` as one atomic write batch.
    pub fn commit(&self, partition: u32, writes: &[Write]) -> Result<(), StoreError> {
        self.commit_raw(partition, &Self::raw_writes(partition, writes), None)
    }

    /// The writes as raw key-value records (`None` value = delete): what a
    /// changelog topic carries, and what [`Store::commit_raw`] applies.
    pub fn raw_writes(partition: u32, writes: &[Write]) -> Vec<RawRecord> {
        writes
            .iter()
            .map(|write| match write {
                Write::PutSession(id, entry) => (keys::session(partition, id), Some(encode(entry.as_ref()))),
                Write::DeleteSession(id) => (keys::session(partition, id), None),
                Write::PutEvents { session_id, chunk, events } => (keys::chunk(partition, session_id, *chunk), Some(encode_chunk(events))),
                Write::DeleteEvents { session_id, key } => (keys::events(partition, session_id, key), None),
                Write::PutMarker(id, marker) => (keys::marker(partition, id), Some(encode(marker))),
                Write::DeleteMarker(id) => (keys::marker(partition, id), None),
                Write::PutTimer(timer) => (keys::timer(partition, timer), Some(Vec::new())),
                Write::DeleteTimer(timer) => (keys::timer(partition, timer), None),
                Write::PutMeta(meta) => (keys::meta(partition), Some(encode(meta))),
            })
            .collect()
    }

    /// Applies raw records of `partition` atomically, with the changelog
    /// position they bring the partition to. Records whose key is not in the
    /// partition's key range are refused.
    pub fn commit_raw(&self, partition: u32, records: &[RawRecord], changelog_next: Option<i64>) -> Result<(), StoreError> {
        let bytes = records.iter().map(|(key, value)| key.len() + value.as_ref().map_or(0, Vec::len)).sum();
        self.write_raw(partition, records.iter().map(|(key, value)| (key.as_slice(), value.as_deref())), records.len(), bytes, changelog_next)
    }

    /// [`Store::commit_raw`] for records gathered in a [`RawRecordBuf`].
    pub fn commit_raw_buf(&self, partition: u32, records: &RawRecordBuf, changelog_next: Option<i64>) -> Result<(), StoreError> {
        self.write_raw(partition, records.iter(), records.len(), records.bytes(), changelog_next)
    }

    fn write_raw<'a>(
        &self,
        partition: u32,
        records: impl Iterator<Item = (&'a [u8], Option<&'a [u8]>)>,
        count: usize,
        bytes: usize,
        changelog_next: Option<i64>,
    ) -> Result<(), StoreError> {
        fail::fail_point!("store.write", |detail| Err(StoreError::Injected(detail.unwrap_or_else(|| "store.write".into()))));
        // Sized up front: grown by doubling, a batch of a few megabytes is
        // copied over and over as it fills. Each record adds its key and
        // value to a header and two length prefixes.
        const BATCH_HEADER: usize = 12;
        const PER_RECORD: usize = 11;
        let mut batch = WriteBatch::with_capacity_bytes(BATCH_HEADER + PER_RECORD * count + bytes + 32);
        for (key, value) in records {
            if keys::partition_of(key) != Some(partition) {
                return Err(corrupt(key, &format!("record outside partition {partition}")));
            }
            match value {
                Some(value) => batch.put(key, value),
                None => batch.delete(key),
            }
        }
        if let Some(next) = changelog_next {
            batch.put(keys::changelog_position(partition), next.to_be_bytes());
        }
        self.db.write_opt(batch, &self.write_options)?;
        Ok(())
    }

    /// The next changelog offset the partition's state reflects (0 when
    /// none was recorded).
    pub fn changelog_position(&self, partition: u32) -> Result<i64, StoreError> {
        let key = keys::changelog_position(partition);
        Ok(match self.get(&key)? {
            Some(v) => i64::from_be_bytes(v.as_ref().try_into().map_err(|_| corrupt(&key, &"not an i64"))?),
            None => 0,
        })
    }

    /// Deletes everything of a partition with one range delete (a revoked
    /// partition, or a store rebuilt from the changelog).
    pub fn drop_partition(&self, partition: u32) -> Result<(), StoreError> {
        let mut batch = WriteBatch::default();
        let (from, to) = keys::partition_range(partition);
        batch.delete_range(from, to);
        self.db.write_opt(batch, &self.write_options)?;
        Ok(())
    }

    /// A partition's stored keys and values in key order, but its
    /// changelog position: for comparing stores key for key.
    pub fn raw_entries(&self, partition: u32) -> Result<Vec<StoredEntry>, StoreError> {
        let (from, until) = keys::partition_range(partition);
        let position = keys::changelog_position(partition);
        let mut entries = Vec::new();
        for item in self.scan(&from, until) {
            let (key, value) = item?;
            if *key != *position {
                entries.push((key.into_vec(), value.into_vec()));
            }
        }
        Ok(entries)
    }

    /// The partitions that have progress stored (one seek per partition).
    pub fn partitions(&self) -> Result<Vec<u32>, StoreError> {
        let mut found = Vec::new();
        let mut next: u64 = 0;
        while let Ok(p) = u32::try_from(next) {
            let mut read = ReadOptions::default();
            read.set_total_order_seek(true);
            let mut iter = self.db.iterator_opt(IteratorMode::From(&p.to_be_bytes(), Direction::Forward), read);
            let Some(item) = iter.next() else { break };
            let (key, _) = item?;
            let Some(q) = keys::partition_of(&key) else { break };
            if self.get(&keys::meta(q))?.is_some() {
                found.push(q);
            }
            next = u64::from(q) + 1;
        }
        Ok(found)
    }

    /// Memory and size figures.
    pub fn stats(&self) -> StoreStats {
        let int = |name: &str| self.db.property_int_value(name).ok().flatten().unwrap_or(0);
        StoreStats {
            block_cache_usage: self.cache.get_usage() as u64,
            memtable_usage: self.write_buffers.get_usage() as u64,
            estimated_keys: int("rocksdb.estimate-num-keys"),
            estimated_live_bytes: int("rocksdb.estimate-live-data-size"),
        }
    }

    /// Flushes memtables to disk (on shutdown, so the next start reads less WAL).
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }

    /// Starts a flush of the memtables and returns without waiting for it.
    pub fn flush_in_background(&self) -> Result<(), StoreError> {
        let mut options = FlushOptions::default();
        options.set_wait(false);
        self.db.flush_opt(&options)?;
        Ok(())
    }

    /// Flushes the memtables and waits until RocksDB's background compactions
    /// have caught up (at most `timeout`): for benchmarks, so a timed phase
    /// does not pay for the compaction debt of the load before it.
    pub fn settle(&self, timeout: std::time::Duration) -> Result<(), StoreError> {
        let mut options = rocksdb::WaitForCompactOptions::default();
        options.set_flush(true);
        options.set_timeout(u64::try_from(timeout.as_micros()).unwrap_or(u64::MAX));
        self.db.wait_for_compact(&options)?;
        Ok(())
    }

    fn get(&self, key: &[u8]) -> Result<Option<rocksdb::DBPinnableSlice<'_>>, StoreError> {
        Ok(self.db.get_pinned_opt(key, &self.point_read)?)
    }

    /// Keys from `from` up to `until`, in order, whatever their prefixes.
    fn scan<'a>(&'a self, from: &[u8], until: Vec<u8>) -> impl Iterator<Item = Result<KeyValue, StoreError>> + use<'a> {
        let mut read = ReadOptions::default();
        read.set_iterate_upper_bound(until);
        read.set_total_order_seek(true);
        self.db.iterator_opt(IteratorMode::From(from, Direction::Forward), read).map(|r| r.map_err(StoreError::from))
    }

    /// A session's chunks: the prefix filters skip files without them.
    fn scan_chunks(&self, partition: u32, session_id: &str) -> impl Iterator<Item = Result<KeyValue, StoreError>> + '_ {
        let (from, until) = keys::session_chunks_range(partition, session_id);
        let mut read = ReadOptions::default();
        read.set_iterate_upper_bound(until);
        read.set_prefix_same_as_start(true);
        self.db.iterator_opt(IteratorMode::From(&from, Direction::Forward), read).map(|r| r.map_err(StoreError::from))
    }
}

/// One partition's committed state, read through [`StateRead`].
#[derive(Debug, Clone)]
pub struct PartitionState<'a> {
    store: &'a Store,
    partition: u32,
    /// Whether the partition holds event keys written before chunks, looked
    /// up once: a store without them (every store written since) skips
    /// their range on every read of a session's events.
    single_events: OnceCell<bool>,
}

impl<'a> PartitionState<'a> {
    fn has_single_events(&self) -> Result<bool, StoreError> {
        if let Some(known) = self.single_events.get() {
            return Ok(*known);
        }
        let (from, until) = keys::kind_range(self.partition, Kind::Event);
        let found = self.store.scan(&from, until).next().transpose()?.is_some();
        Ok(*self.single_events.get_or_init(|| found))
    }

    /// A session's event keys written before chunks, with their events;
    /// nothing, without a seek, in a partition that has none.
    fn scan_single_events<'s>(&'s self, session_id: &str) -> Result<impl Iterator<Item = Result<KeyValue, StoreError>> + use<'s, 'a>, StoreError> {
        let (from, until) = keys::session_events_range(self.partition, session_id);
        Ok(self.has_single_events()?.then(|| self.store.scan(&from, until)).into_iter().flatten())
    }

    /// Every stored session id with its entry, in key order (for tests and
    /// for counting sessions by state after a restore).
    pub fn sessions(&self) -> Result<Vec<(String, SessionEntry)>, StoreError> {
        let (from, until) = keys::kind_range(self.partition, Kind::Session);
        let mut sessions = Vec::new();
        for item in self.store.scan(&from, until) {
            let (key, value) = item?;
            if keys::is_chunk(&key) {
                continue;
            }
            let id = keys::session_of(&key).ok_or_else(|| corrupt(&key, &"bad session key"))?;
            sessions.push((id, decode(&key, &value)?));
        }
        Ok(sessions)
    }

    /// Every stored timer.
    pub fn timers(&self) -> Result<Vec<Timer>, StoreError> {
        self.timers_due(None, Millis(i64::MIN), Millis(i64::MAX), usize::MAX)
    }

    /// The whole partition as an in-memory state: for comparing a store
    /// with a reference run.
    pub fn dump(&self) -> Result<MemState, StoreError> {
        let mut mem = MemState { meta: self.meta()?, ..MemState::default() };
        mem.sessions = self.sessions()?.into_iter().collect();
        let (from, until) = keys::kind_range(self.partition, Kind::Session);
        for item in self.store.scan(&from, until) {
            let (key, value) = item?;
            if let Some((session_id, number)) = keys::chunk_of(&key) {
                mem.events.insert((session_id.to_owned(), EventsKey::Chunk(number)), decode_chunk(&key, &value)?);
            }
        }
        let (from, until) = keys::kind_range(self.partition, Kind::Event);
        for item in self.store.scan(&from, until) {
            let (key, value) = item?;
            let (session_id, event_id) = keys::single_event_of(&key).ok_or_else(|| corrupt(&key, &"bad event key"))?;
            mem.events.insert((session_id.to_owned(), EventsKey::Single(event_id.to_owned())), vec![decode(&key, &value)?]);
        }
        let (from, until) = keys::kind_range(self.partition, Kind::Marker);
        for item in self.store.scan(&from, until) {
            let (key, value) = item?;
            let id = keys::session_of(&key).ok_or_else(|| corrupt(&key, &"bad marker key"))?;
            mem.markers.insert(id, decode(&key, &value)?);
        }
        mem.timers = self.timers()?.into_iter().collect();
        Ok(mem)
    }
}

impl StateRead for PartitionState<'_> {
    type Error = StoreError;

    fn session(&self, session_id: &str) -> Result<Option<SessionEntry>, StoreError> {
        let key = keys::session(self.partition, session_id);
        self.store.get(&key)?.map(|v| decode(&key, &v)).transpose()
    }

    fn has_event(&self, session_id: &str, event_id: &str) -> Result<bool, StoreError> {
        let mut found = false;
        self.each_event_id(session_id, &mut |id| found |= id == event_id)?;
        Ok(found)
    }

    fn events(&self, session_id: &str) -> Result<Vec<Event>, StoreError> {
        let mut events = Vec::new();
        for item in self.scan_single_events(session_id)? {
            let (key, value) = item?;
            events.push(decode(&key, &value)?);
        }
        for item in self.store.scan_chunks(self.partition, session_id) {
            let (key, value) = item?;
            events.extend(decode_chunk(&key, &value)?);
        }
        Ok(events)
    }

    /// Reads the ids without decoding the events: a chunk stores its ids
    /// ahead of its events.
    fn each_event_id(&self, session_id: &str, f: &mut dyn FnMut(&str)) -> Result<(), StoreError> {
        for item in self.scan_single_events(session_id)? {
            let (key, _) = item?;
            let (_, id) = keys::single_event_of(&key).ok_or_else(|| corrupt(&key, &"bad event key"))?;
            f(id);
        }
        for item in self.store.scan_chunks(self.partition, session_id) {
            let (key, value) = item?;
            let (ids, _): (Vec<&str>, _) = postcard::take_from_bytes(&value).map_err(|e| corrupt(&key, &e))?;
            ids.into_iter().for_each(&mut *f);
        }
        Ok(())
    }

    fn event_keys(&self, session_id: &str) -> Result<Vec<EventsKey>, StoreError> {
        let mut events_keys = Vec::new();
        for item in self.scan_single_events(session_id)? {
            let (key, _) = item?;
            let (_, id) = keys::single_event_of(&key).ok_or_else(|| corrupt(&key, &"bad event key"))?;
            events_keys.push(EventsKey::Single(id.to_owned()));
        }
        for item in self.store.scan_chunks(self.partition, session_id) {
            let (key, _) = item?;
            let (_, number) = keys::chunk_of(&key).ok_or_else(|| corrupt(&key, &"bad chunk key"))?;
            events_keys.push(EventsKey::Chunk(number));
        }
        Ok(events_keys)
    }

    fn marker(&self, session_id: &str) -> Result<Option<Marker>, StoreError> {
        let key = keys::marker(self.partition, session_id);
        self.store.get(&key)?.map(|v| decode(&key, &v)).transpose()
    }

    fn timers_due(&self, after: Option<&Timer>, from_due: Millis, upto: Millis, limit: usize) -> Result<Vec<Timer>, StoreError> {
        let (_, until) = keys::kind_range(self.partition, Kind::Timer);
        let floor = keys::timers_from(self.partition, from_due);
        let from = match after {
            // The smallest key after `after`'s key.
            Some(timer) => {
                let mut k = keys::timer(self.partition, timer);
                k.push(0);
                k.max(floor)
            }
            None => floor,
        };
        let mut out = Vec::new();
        for item in self.store.scan(&from, until) {
            if out.len() >= limit {
                break;
            }
            let (key, _) = item?;
            let timer = keys::timer_of(&key).ok_or_else(|| corrupt(&key, &"bad timer key"))?;
            if timer.due > upto {
                break;
            }
            out.push(timer);
        }
        Ok(out)
    }

    fn meta(&self) -> Result<PartitionMeta, StoreError> {
        let key = keys::meta(self.partition);
        Ok(self.store.get(&key)?.map(|v| decode(&key, &v)).transpose()?.unwrap_or_default())
    }
}

#[cfg(test)]
mod raw_record_buf_tests {
    use super::{RawRecord, RawRecordBuf};
    use proptest::prelude::*;

    fn record() -> impl Strategy<Value = RawRecord> {
        (proptest::collection::vec(any::<u8>(), 0..8), proptest::option::of(proptest::collection::vec(any::<u8>(), 0..8)))
    }

    proptest! {
        /// Pushes and truncations give back what a list of records would hold.
        #[test]
        fn holds_what_a_list_of_records_holds(steps in proptest::collection::vec(prop_oneof![
            4 => record().prop_map(Ok),
            1 => (0usize..12).prop_map(Err),
        ], 0..40)) {
            let mut buf = RawRecordBuf::default();
            let mut model: Vec<RawRecord> = Vec::new();
            for step in steps {
                match step {
                    Ok((key, value)) => {
                        buf.push(&key, value.as_deref());
                        model.push((key, value));
                    }
                    Err(keep) => {
                        buf.truncate(keep);
                        model.truncate(keep);
                    }
                }
                let held: Vec<RawRecord> = buf.iter().map(|(k, v)| (k.to_vec(), v.map(<[u8]>::to_vec))).collect();
                prop_assert_eq!(&held, &model);
                prop_assert_eq!(buf.len(), model.len());
                prop_assert_eq!(buf.bytes(), model.iter().map(|(k, v)| k.len() + v.as_ref().map_or(0, Vec::len)).sum::<usize>());
            }
            buf.clear();
            prop_assert!(buf.is_empty());
            prop_assert_eq!(buf.bytes(), 0);
        }
    }
}
