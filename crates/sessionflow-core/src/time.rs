//! Event time: milliseconds since the Unix epoch, UTC.
//!
//! Inputs carry RFC 3339 timestamps with any offset; every output carries them
//! normalised to UTC with millisecond precision (`2024-07-03T02:06:15.000Z`).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A point in event time, in UTC milliseconds since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Millis(pub i64);

/// Why a timestamp could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an RFC 3339 timestamp with offset: {0:?}")]
pub struct BadTimestamp(pub String);

impl Millis {
    /// Parses an RFC 3339 timestamp with offset (`Z`, `+07:00`, `-07:00`).
    /// Sub-millisecond digits are truncated.
    pub fn parse_rfc3339(text: &str) -> Result<Self, BadTimestamp> {
        let parsed = OffsetDateTime::parse(text, &Rfc3339).map_err(|_| BadTimestamp(text.to_owned()))?;
        let nanos = parsed.unix_timestamp_nanos();
        let millis = nanos.div_euclid(1_000_000);
        i64::try_from(millis).map(Millis).map_err(|_| BadTimestamp(text.to_owned()))
    }

    /// The UTC RFC 3339 form with exactly three fractional digits.
    pub fn to_rfc3339(self) -> String {
        let mut out = String::with_capacity(24);
        self.write_rfc3339(&mut out);
        out
    }

    /// Appends the UTC RFC 3339 form to `out`.
    pub fn write_rfc3339(self, out: &mut String) {
        match self.rfc3339_bytes() {
            Some(bytes) => out.push_str(std::str::from_utf8(&bytes).expect("ASCII digits")),
            None => self.write_rfc3339_wide(out),
        }
    }

    /// The form for years 0–9999 (every timestamp seen in practice), built
    /// without the formatting machinery: it is written for every time field
    /// of every JSON output record.
    fn rfc3339_bytes(self) -> Option<[u8; 24]> {
        let secs = self.0.div_euclid(1000);
        let ms = self.0.rem_euclid(1000) as u32;
        let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
        if !(0..=9999).contains(&y) {
            return None;
        }
        let sod = secs.rem_euclid(86_400) as u32;
        let (h, mi, s) = (sod / 3600, (sod % 3600) / 60, sod % 60);
        let y = y as u32;
        let digit = |n: u32| b'0' + n as u8;
        Some([
            digit(y / 1000),
            digit(y / 100 % 10),
            digit(y / 10 % 10),
            digit(y % 10),
            b'-',
            digit(mo / 10),
            digit(mo % 10),
            b'-',
            digit(d / 10),
            digit(d % 10),
            b'T',
            digit(h / 10),
            digit(h % 10),
            b':',
            digit(mi / 10),
            digit(mi % 10),
            b':',
            digit(s / 10),
            digit(s % 10),
            b'.',
            digit(ms / 100),
            digit(ms / 10 % 10),
            digit(ms % 10),
            b'Z',
        ])
    }

    fn write_rfc3339_wide(self, out: &mut String) {
        use std::fmt::Write;
        let secs = self.0.div_euclid(1000);
        let ms = self.0.rem_euclid(1000);
        let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
        let sod = secs.rem_euclid(86_400);
        let (h, mi, s) = (sod / 3600, (sod % 3600) / 60, sod % 60);
        let _ = write!(out, "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}Z");
    }

    /// Adds a duration, saturating at the ends of the range.
    pub fn plus(self, ms: i64) -> Self {
        Millis(self.0.saturating_add(ms))
    }
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

/// JSON (human-readable) form is the RFC 3339 string; binary forms (the
/// state store, Avro `timestamp-millis`) carry the integer.
impl Serialize for Millis {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if !serializer.is_human_readable() {
            return serializer.serialize_i64(self.0);
        }
        match self.rfc3339_bytes() {
            Some(bytes) => serializer.serialize_str(std::str::from_utf8(&bytes).expect("ASCII digits")),
            None => serializer.serialize_str(&self.to_rfc3339()),
        }
    }
}

impl<'de> Deserialize<'de> for Millis {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
            Millis::parse_rfc3339(&text).map_err(serde::de::Error::custom)
        } else {
            i64::deserialize(deserializer).map(Millis)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_normalise_to_utc_millis() {
        let a = Millis::parse_rfc3339("2024-07-02T19:06:15.000-07:00").unwrap();
        let b = Millis::parse_rfc3339("2024-07-03T02:06:15Z").unwrap();
        let c = Millis::parse_rfc3339("2024-07-03T09:06:15.000+07:00").unwrap();
        assert_eq!(a, b);
        assert_eq!(b, c);
        assert_eq!(a.to_rfc3339(), "2024-07-03T02:06:15.000Z");
    }

    #[test]
    fn sub_millisecond_digits_truncate_and_negative_times_format() {
        let t = Millis::parse_rfc3339("2024-07-03T02:06:15.123987Z").unwrap();
        assert_eq!(t.to_rfc3339(), "2024-07-03T02:06:15.123Z");
        assert_eq!(Millis(-1).to_rfc3339(), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn rejects_timestamps_without_offset_or_garbage() {
        for bad in ["2024-07-03T02:06:15", "yesterday", "", "2024-13-03T02:06:15Z"] {
            assert!(Millis::parse_rfc3339(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn formatting_agrees_with_the_time_crate_over_a_wide_range() {
        for ms in [0_i64, 951_782_400_000, 4_102_444_800_123, -86_400_000 * 365 * 50 + 7] {
            let dt = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap();
            let expected = format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
                dt.year(),
                u8::from(dt.month()),
                dt.day(),
                dt.hour(),
                dt.minute(),
                dt.second(),
                dt.millisecond()
            );
            assert_eq!(Millis(ms).to_rfc3339(), expected);
            assert_eq!(Millis::parse_rfc3339(&expected).unwrap(), Millis(ms));
        }
    }

    proptest::proptest! {
        #[test]
        fn the_digit_formatter_agrees_with_the_formatting_machinery(ms in -400_000_000_000_000_i64..400_000_000_000_000) {
            let mut wide = String::new();
            Millis(ms).write_rfc3339_wide(&mut wide);
            proptest::prop_assert_eq!(Millis(ms).to_rfc3339(), wide.clone());
            proptest::prop_assert_eq!(serde_json::to_string(&Millis(ms)).unwrap(), format!("{wide:?}"));
        }
    }
}
