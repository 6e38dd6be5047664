//! Key layout. Every key is `partition (u32 BE) | kind (u8) | rest`:
//!
//! | kind | rest | value |
//! | --- | --- | --- |
//! | session | session id | postcard `SessionEntry` |
//! | event chunk | id length (u16 BE), session id, 0xFF, chunk (u64 BE) | postcard (event ids, events) |
//! | event (before chunks; read, never written) | id length (u16 BE), session id, event id | postcard `Event` |
//! | marker | session id | postcard `Marker` |
//! | timer | due (i64, sign-flipped BE), session id, 0x00, timer kind | empty |
//! | meta | — | postcard `PartitionMeta` |
//!
//! Timer keys sort by (due, session, kind), the order timers fire in. Both
//! kinds of event key share one range per session: UTF-8 never contains
//! 0xFF, so the byte after the session id tells them apart.

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

/// The byte that starts a chunk's name in its key.
const CHUNK_MARK: u8 = 0xFF;

pub(crate) fn events(partition: u32, session_id: &str, events_key: &EventsKey) -> Vec<u8> {
    let mut key = session_events_prefix(partition, session_id);
    match events_key {
        EventsKey::Chunk(chunk) => {
            key.push(CHUNK_MARK);
            key.extend_from_slice(&chunk.to_be_bytes());
        }
        EventsKey::Single(event_id) => key.extend_from_slice(event_id.as_bytes()),
    }
    key
}

/// All event keys of a session, both kinds: the longest chunk key is the
/// prefix and nine 0xFF bytes.
pub(crate) fn session_events_range(partition: u32, session_id: &str) -> (Vec<u8>, Vec<u8>) {
    let from = session_events_prefix(partition, session_id);
    let mut until = from.clone();
    until.extend_from_slice(&[0xFF; 10]);
    (from, until)
}

/// The session id and events key of an event key (of either kind).
pub(crate) fn events_key_of(key: &[u8]) -> Option<(&str, EventsKey)> {
    let rest = key.get(5..)?;
    let len = usize::from(u16::from_be_bytes(rest.get(..2)?.try_into().ok()?));
    let session_id = std::str::from_utf8(rest.get(2..2 + len)?).ok()?;
    let name = &rest[2 + len..];
    let events_key = match name.split_first() {
        Some((&CHUNK_MARK, chunk)) => EventsKey::Chunk(u64::from_be_bytes(chunk.try_into().ok()?)),
        _ => EventsKey::Single(std::str::from_utf8(name).ok()?.to_owned()),
    };
    Some((session_id, events_key))
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
    fn event_keys_of_both_kinds_round_trip_inside_their_session_range() {
        let (from, until) = session_events_range(3, "s1");
        let (other_from, other_until) = session_events_range(3, "s");
        for events_key in [EventsKey::Chunk(0), EventsKey::Chunk(u64::MAX), EventsKey::Single("e-1".into()), EventsKey::Single(String::new())] {
            let key = events(3, "s1", &events_key);
            assert!(from <= key && key < until, "{events_key:?} outside the session's range");
            assert!(!(other_from <= key && key < other_until), "{events_key:?} inside another session's range");
            assert_eq!(events_key_of(&key), Some(("s1", events_key)));
        }
    }
}
