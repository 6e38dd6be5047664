//! Key layout. Every key is `partition (u32 BE) | kind (u8) | rest`:
//!
//! | kind | rest | value |
//! | --- | --- | --- |
//! | session | session id | postcard `SessionEntry` |
//! | session (its event chunk) | session id, 0x00, 0xFF, chunk (u64 BE) | postcard (event ids, events) |
//! | event (before chunks; read, never written) | id length (u16 BE), session id, event id | postcard `Event` |
//! | marker | session id | postcard `Marker` |
//! | timer | due (i64, sign-flipped BE), session id, 0x00, timer kind | empty |
//! | meta | — | postcard `PartitionMeta` |
//!
//! Timer keys sort by (due, session, kind), the order timers fire in.
//!
//! A session's event chunks follow its entry: reading the entry brings
//! their block into the cache, and the store's prefix extractor (the key up
//! to the session id, see [`session_prefix`]) gives both one bloom-filter
//! prefix, so the read of a session's event ids skips every file without
//! it. UTF-8 never contains 0xFF, so no session key can look like a chunk
//! key; the 0x00 before it sorts a session's chunks before the keys of
//! longer session ids that start with its id.

use sessionflow_core::{EventsKey, Millis, Timer, TimerKind};
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub(crate) enum Kind {
    Session = 1,
    Event = 2,
    Marker = 3,
    Timer = 4,
    Meta = 5,
    /// The next changelog offset this partition's state reflects.
    ChangelogPosition = 6,
}

pub(crate) fn prefix(partition: u32, kind: Kind) -> Vec<u8> {
    let mut key = Vec::with_capacity(64);
    key.extend_from_slice(&partition.to_be_bytes());
    key.push(kind as u8);
    key
}

pub(crate) fn session(partition: u32, id: &str) -> Vec<u8> {
    let mut key = prefix(partition, Kind::Session);
    key.extend_from_slice(id.as_bytes());
    key
}

fn session_events_prefix(partition: u32, session_id: &str) -> Vec<u8> {
    let mut key = prefix(partition, Kind::Event);
    // Ids are at most 128 characters (512 bytes), so u16 always fits.
    key.extend_from_slice(&(session_id.len() as u16).to_be_bytes());
    key.extend_from_slice(session_id.as_bytes());
    key
}

/// What follows the session id in a chunk key, before the chunk's number.
const CHUNK_MARK: [u8; 2] = [0x00, 0xFF];
/// The mark and the number.
const CHUNK_SUFFIX: usize = CHUNK_MARK.len() + 8;

pub(crate) fn chunk(partition: u32, session_id: &str, chunk: u64) -> Vec<u8> {
    let mut key = session(partition, session_id);
    key.extend_from_slice(&CHUNK_MARK);
    key.extend_from_slice(&chunk.to_be_bytes());
    key
}

/// All chunk keys of a session.
pub(crate) fn session_chunks_range(partition: u32, session_id: &str) -> (Vec<u8>, Vec<u8>) {
    let from = chunk(partition, session_id, 0);
    let mut until = session(partition, session_id);
    until.push(CHUNK_MARK[0] + 1);
    (from, until)
}

/// Whether a session-kind key is a chunk's (else an entry's).
pub(crate) fn is_chunk(key: &[u8]) -> bool {
    key.len() >= 5 + CHUNK_SUFFIX && key[key.len() - CHUNK_SUFFIX..key.len() - 8] == CHUNK_MARK
}

/// The session id and number of a chunk key.
pub(crate) fn chunk_of(key: &[u8]) -> Option<(&str, u64)> {
    if !is_chunk(key) {
        return None;
    }
    let (id, number) = key[5..].split_at(key.len() - 5 - CHUNK_SUFFIX);
    Some((std::str::from_utf8(id).ok()?, u64::from_be_bytes(number[CHUNK_MARK.len()..].try_into().ok()?)))
}

/// The store's prefix extractor: a session key and its chunk keys share the
/// prefix `partition | session kind | session id`; other keys have none.
pub(crate) fn session_prefix(key: &[u8]) -> &[u8] {
    if is_chunk(key) { &key[..key.len() - CHUNK_SUFFIX] } else { key }
}

/// Keys [`session_prefix`] applies to: those of sessions and their chunks.
pub(crate) fn has_session_prefix(key: &[u8]) -> bool {
    key.len() >= 5 && key[4] == Kind::Session as u8
}

/// Every event key of a session written before chunks.
pub(crate) fn session_events_range(partition: u32, session_id: &str) -> (Vec<u8>, Vec<u8>) {
    let from = session_events_prefix(partition, session_id);
    let mut until = from.clone();
    until.push(0xFF);
    (from, until)
}

/// The session id and event id of an event key written before chunks.
pub(crate) fn single_event_of(key: &[u8]) -> Option<(&str, &str)> {
    let rest = key.get(5..)?;
    let len = usize::from(u16::from_be_bytes(rest.get(..2)?.try_into().ok()?));
    let session_id = std::str::from_utf8(rest.get(2..2 + len)?).ok()?;
    Some((session_id, std::str::from_utf8(&rest[2 + len..]).ok()?))
}

/// The key of stored events, of either kind.
pub(crate) fn events(partition: u32, session_id: &str, events_key: &EventsKey) -> Vec<u8> {
    match events_key {
        EventsKey::Chunk(number) => chunk(partition, session_id, *number),
        EventsKey::Single(event_id) => {
            let mut key = session_events_prefix(partition, session_id);
            key.extend_from_slice(event_id.as_bytes());
            key
        }
    }
}

pub(crate) fn marker(partition: u32, id: &str) -> Vec<u8> {
    let mut key = prefix(partition, Kind::Marker);
    key.extend_from_slice(id.as_bytes());
    key
}

/// The first possible timer key due at `due`.
pub(crate) fn timers_from(partition: u32, due: Millis) -> Vec<u8> {
    let mut key = prefix(partition, Kind::Timer);
    key.extend_from_slice(&((due.0 as u64) ^ (1 << 63)).to_be_bytes());
    key
}

pub(crate) fn timer(partition: u32, timer: &Timer) -> Vec<u8> {
    let mut key = prefix(partition, Kind::Timer);
    key.extend_from_slice(&((timer.due.0 as u64) ^ (1 << 63)).to_be_bytes());
    key.extend_from_slice(timer.session_id.as_bytes());
    key.push(0);
    key.push(timer.kind as u8);
    key
}

pub(crate) fn timer_of(key: &[u8]) -> Option<Timer> {
    let rest = key.get(5..)?;
    let due = u64::from_be_bytes(rest.get(..8)?.try_into().ok()?) ^ (1 << 63);
    let (kind, body) = rest[8..].split_last()?;
    let (zero, id) = body.split_last()?;
    if *zero != 0 {
        return None;
    }
    Some(Timer { due: Millis(due as i64), session_id: Arc::from(std::str::from_utf8(id).ok()?), kind: TimerKind::from_u8(*kind)? })
}

/// Where the store records its format: past every partition's range
/// (a partition of `u32::MAX` with a kind no partition uses).
pub(crate) fn store_format() -> Vec<u8> {
    let mut key = u32::MAX.to_be_bytes().to_vec();
    key.extend_from_slice(&[0xF0]);
    key.extend_from_slice(b"format");
    key
}

pub(crate) fn meta(partition: u32) -> Vec<u8> {
    prefix(partition, Kind::Meta)
}

pub(crate) fn changelog_position(partition: u32) -> Vec<u8> {
    prefix(partition, Kind::ChangelogPosition)
}

pub(crate) fn kind_range(partition: u32, kind: Kind) -> (Vec<u8>, Vec<u8>) {
    let from = prefix(partition, kind);
    let mut until = from.clone();
    *until.last_mut().expect("prefix has a kind byte") += 1;
    (from, until)
}

pub(crate) fn partition_range(partition: u32) -> (Vec<u8>, Vec<u8>) {
    let from = partition.to_be_bytes().to_vec();
    let until = match partition.checked_add(1) {
        Some(next) => next.to_be_bytes().to_vec(),
        None => vec![0xFF; 6],
    };
    (from, until)
}

pub(crate) fn partition_of(key: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(key.get(..4)?.try_into().ok()?))
}

pub(crate) fn session_of(key: &[u8]) -> Option<String> {
    String::from_utf8(key.get(5..)?.to_vec()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timer_keys_round_trip_and_sort_like_timers() {
        let timers = [
            Timer { due: Millis(-5), session_id: "b".into(), kind: TimerKind::Retire },
            Timer { due: Millis(0), session_id: "a".into(), kind: TimerKind::Finalize },
            Timer { due: Millis(0), session_id: "ab".into(), kind: TimerKind::Finalize },
            Timer { due: Millis(0), session_id: "ab".into(), kind: TimerKind::Expire },
            Timer { due: Millis(1_720_000_000_000), session_id: "a".into(), kind: TimerKind::ForgetMarker },
        ];
        let mut keys: Vec<Vec<u8>> = timers.iter().map(|t| timer(7, t)).collect();
        keys.sort();
        let back: Vec<Timer> = keys.iter().map(|k| timer_of(k).unwrap()).collect();
        let mut sorted = timers.to_vec();
        sorted.sort();
        assert_eq!(back, sorted);
    }

    #[test]
    fn chunk_keys_follow_their_session_and_share_its_prefix() {
        let ids = ["s", "s1", "s10", "s1\u{0}", "é", ""];
        for id in ids {
            let entry = session(3, id);
            let (from, until) = session_chunks_range(3, id);
            assert!(!is_chunk(&entry) && has_session_prefix(&chunk(3, id, 0)));
            for number in [0, 1, 0xFF, u64::MAX] {
                let key = chunk(3, id, number);
                assert!(entry < key && from <= key && key < until, "{id:?} {number}");
                assert_eq!(chunk_of(&key), Some((id, number)));
                assert_eq!(session_prefix(&key), entry.as_slice());
                for other in ids.iter().filter(|other| **other != id) {
                    let (other_from, other_until) = session_chunks_range(3, other);
                    assert!(!(other_from <= key && key < other_until), "{id:?}'s chunk in {other:?}'s range");
                    assert!(!(from <= session(3, other) && session(3, other) < until), "{other:?}'s entry in {id:?}'s chunk range");
                }
            }
            assert_eq!(session_prefix(&entry), entry.as_slice());
        }
        assert!(!has_session_prefix(&timers_from(3, Millis(0))) && !has_session_prefix(&marker(3, "s1")));
    }

    #[test]
    fn event_keys_written_before_chunks_are_read() {
        let key = events(3, "s1", &EventsKey::Single("e-1".into()));
        let (from, until) = session_events_range(3, "s1");
        assert!(from <= key && key < until);
        assert_eq!(single_event_of(&key), Some(("s1", "e-1")));
    }
}
