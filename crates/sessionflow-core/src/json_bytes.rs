//! JSON text read and written eight bytes at a time: finding the bytes a
//! JSON string cannot hold as they are (control characters, `"` and `\`),
//! for the input scanner of this crate and the output writer of the codec.

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The high bit of each byte lane of `word` (little-endian) that must be
/// escaped: below 0x20, `"` or `\`. Lanes above a flagged lane may be
/// flagged spuriously (borrows propagate upwards), but the lowest flagged
/// lane is always exact, and it is the only one used.
#[inline]
pub fn escape_mask(word: u64) -> u64 {
    // `x - n` borrows into the high bit exactly when a lane is below n, for
    // lanes without their own high bit set (hence `& !word`).
    let control = word.wrapping_sub(ONES * 0x20);
    let quote = word ^ (ONES * u64::from(b'"'));
    let backslash = word ^ (ONES * u64::from(b'\\'));
    // A lane equals c exactly when `lane ^ c` is zero, i.e. below 1.
    let quote = quote.wrapping_sub(ONES) & !quote;
    let backslash = backslash.wrapping_sub(ONES) & !backslash;
    (control | quote | backslash) & !word & HIGHS
}

const SPACES: u64 = ONES * 0x20;

/// Eight bytes of `bytes` from `at` (below its length), little-endian;
/// lanes past the end are spaces, which need no escape. Tails are read
/// with fixed-size loads (overlapping ones, shifted into place): copying
/// a tail of varying length would cost a `memcpy` call per string.
#[inline]
pub fn load8(bytes: &[u8], at: usize) -> u64 {
    if let Some(chunk) = bytes.get(at..at + 8).and_then(<[u8]>::first_chunk::<8>) {
        return u64::from_le_bytes(*chunk);
    }
    // 1 to 7 bytes left.
    let n = bytes.len() - at;
    debug_assert!(n > 0);
    let spaces = SPACES << (8 * n);
    if let Some(last) = bytes.last_chunk::<8>() {
        // The last eight bytes, shifted down past those already read.
        return (u64::from_le_bytes(*last) >> (8 * (8 - n))) | spaces;
    }
    // A short string: two overlapping loads covering what is left.
    let rest = &bytes[at..];
    let word = match (rest.first_chunk::<4>(), rest.last_chunk::<4>()) {
        (Some(low), Some(high)) => u64::from(u32::from_le_bytes(*low)) | u64::from(u32::from_le_bytes(*high)) << (8 * (n - 4)),
        _ => match (rest.first_chunk::<2>(), rest.last_chunk::<2>()) {
            (Some(low), Some(high)) => u64::from(u16::from_le_bytes(*low)) | u64::from(u16::from_le_bytes(*high)) << (8 * (n - 2)),
            _ => u64::from(rest[0]),
        },
    };
    word | spaces
}

/// The index of the first byte from `at` that a JSON string cannot hold as
/// it is (a control character, `"` or `\`), or `None` when there is none.
#[inline]
pub fn first_to_escape(bytes: &[u8], mut at: usize) -> Option<usize> {
    while at < bytes.len() {
        let mask = escape_mask(load8(bytes, at));
        if mask != 0 {
            return Some(at + (mask.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `load8` reads what a padded copy holds, at every offset of strings
    /// of every short length.
    #[test]
    fn load8_reads_the_bytes_and_pads_with_spaces() {
        let text: Vec<u8> = (1..=40).collect();
        for len in 0..=text.len() {
            let bytes = &text[..len];
            for at in 0..len {
                let mut padded = [b' '; 8];
                let rest = &bytes[at..(at + 8).min(len)];
                padded[..rest.len()].copy_from_slice(rest);
                assert_eq!(load8(bytes, at).to_le_bytes(), padded, "{len} {at}");
            }
        }
    }

    /// The mask's lowest flagged lane is the first byte to escape, for every
    /// byte value in every lane behind every kind of prefix.
    #[test]
    fn escape_mask_finds_the_first_byte_to_escape() {
        for prefix in [b' ', b'a', 0x7F, 0x80, 0xFF, 0x00, b'"', b'\\', 0x1F] {
            for lane in 0..8 {
                for byte in 0..=255_u8 {
                    let mut word = [b'x'; 8];
                    word[..lane].fill(prefix);
                    word[lane] = byte;
                    let expected = word.iter().position(|b| *b < 0x20 || *b == b'"' || *b == b'\\');
                    let mask = escape_mask(u64::from_le_bytes(word));
                    let found = (mask != 0).then(|| (mask.trailing_zeros() / 8) as usize);
                    assert_eq!(found, expected, "{word:?}");
                }
            }
        }
    }

    #[test]
    fn first_to_escape_finds_the_first_quote_backslash_or_control_character() {
        let text = b"abcdefghijklmnopqrstuvwxyz0123456789";
        for len in 0..=text.len() {
            for special in [b'"', b'\\', 0x00, 0x1F] {
                for pos in 0..len {
                    let mut bytes = text[..len].to_vec();
                    bytes[pos] = special;
                    for at in 0..=pos {
                        assert_eq!(first_to_escape(&bytes, at), Some(pos), "{bytes:?} {at}");
                    }
                    assert_eq!(first_to_escape(&bytes, pos + 1), None);
                }
            }
            assert_eq!(first_to_escape(&text[..len], 0), None);
        }
    }
}
