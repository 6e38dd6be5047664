//! Event time: milliseconds since the Unix epoch, UTC.
//!
//! Inputs carry RFC 3339 timestamps with any offset; every output carries them
//! normalised to UTC with millisecond precision (`2024-07-03T02:06:15.000Z`).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::cell::Cell;
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
        match parse_common_form(text.as_bytes()) {
            Some(millis) => Ok(millis),
            None => Self::parse_any_form(text),
        }
    }

    /// The general parser, for every spelling RFC 3339 allows.
    fn parse_any_form(text: &str) -> Result<Self, BadTimestamp> {
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
    pub fn rfc3339_bytes(self) -> Option<[u8; 24]> {
        if !(FIRST_OF_YEAR_0..FIRST_OF_YEAR_10000).contains(&self.0) {
            return None;
        }
        let secs = self.0.div_euclid(1000);
        let ms = self.0.rem_euclid(1000) as usize;
        let sod = secs.rem_euclid(86_400) as usize;
        let (h, mi, s) = (sod / 3600, sod / 60 % 60, sod % 60);
        let mut out = *b"0000-00-00T00:00:00.000Z";
        out[..10].copy_from_slice(&date_text(secs.div_euclid(86_400)));
        out[11..13].copy_from_slice(pair(h));
        out[14..16].copy_from_slice(pair(mi));
        out[17..19].copy_from_slice(pair(s));
        out[20] = b'0' + (ms / 100) as u8;
        out[21..23].copy_from_slice(pair(ms % 100));
        Some(out)
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

/// 0000-01-01T00:00:00Z and 10000-01-01T00:00:00Z in Unix milliseconds:
/// the range of four-digit years.
const FIRST_OF_YEAR_0: i64 = -62_167_219_200_000;
const FIRST_OF_YEAR_10000: i64 = 253_402_300_800_000;

thread_local! {
    /// The last day written and its `YYYY-MM-DD`: the times of one record,
    /// and of one batch, mostly fall on one day.
    static LAST_DATE: Cell<(i64, [u8; 10])> = const { Cell::new((i64::MIN, [0; 10])) };
}

/// `YYYY-MM-DD` of a day since 1970-01-01 in years 0–9999.
fn date_text(day: i64) -> [u8; 10] {
    LAST_DATE.with(|last| {
        let (last_day, text) = last.get();
        if last_day == day {
            return text;
        }
        let (y, mo, d) = civil_from_days(day);
        let (y, mo, d) = (y as usize, mo as usize, d as usize);
        let mut text = *b"0000-00-00";
        text[0..2].copy_from_slice(pair(y / 100));
        text[2..4].copy_from_slice(pair(y % 100));
        text[5..7].copy_from_slice(pair(mo));
        text[8..10].copy_from_slice(pair(d));
        last.set((day, text));
        text
    })
}

/// Two ASCII digits of `n` (below 100).
fn pair(n: usize) -> &'static [u8] {
    const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
        2021222324252627282930313233343536373839\
        4041424344454647484950515253545556575859\
        6061626364656667686970717273747576777879\
        8081828384858687888990919293949596979899";
    &PAIRS[2 * n..2 * n + 2]
}

/// Reads the form nearly every producer writes,
/// `YYYY-MM-DDTHH:MM:SS[.f…]` then `Z` or `±HH:MM`, with values in range,
/// without the general parser (it runs once per input event). `None`
/// leaves anything else — other spellings, leap seconds, errors — to the
/// general parser, so both always agree.
fn parse_common_form(text: &[u8]) -> Option<Millis> {
    let [y0, y1, y2, y3, b'-', mo0, mo1, b'-', d0, d1, b'T', h0, h1, b':', mi0, mi1, b':', s0, s1, rest @ ..] = text else {
        return None;
    };
    let year = number(&[*y0, *y1, *y2, *y3])?;
    let month = number(&[*mo0, *mo1])?;
    let day = number(&[*d0, *d1])?;
    let (hour, minute, second) = (number(&[*h0, *h1])?, number(&[*mi0, *mi1])?, number(&[*s0, *s1])?);
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let (millis, rest) = match rest {
        [b'.', fraction @ ..] => {
            let digits = fraction.iter().take_while(|b| b.is_ascii_digit()).count();
            if !(1..=9).contains(&digits) {
                return None;
            }
            // Truncated to milliseconds, as the general parser's result is.
            let mut millis = 0;
            for i in 0..3 {
                millis = millis * 10 + fraction.get(i).filter(|_| i < digits).map_or(0, |b| i64::from(b - b'0'));
            }
            (millis, &fraction[digits..])
        }
        _ => (0, rest),
    };
    let offset_minutes = match rest {
        [b'Z'] => 0,
        [sign @ (b'+' | b'-'), oh0, oh1, b':', om0, om1] => {
            let (hours, minutes) = (number(&[*oh0, *oh1])?, number(&[*om0, *om1])?);
            // `-00:00` ("offset unknown") is the general parser's call.
            if hours > 23 || minutes > 59 || (*sign == b'-' && hours == 0 && minutes == 0) {
                return None;
            }
            let minutes = hours * 60 + minutes;
            if *sign == b'-' { -minutes } else { minutes }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month as u32, day as u32);
    let local_secs = days * 86_400 + hour * 3600 + minute * 60 + second;
    Some(Millis((local_secs - offset_minutes * 60) * 1000 + millis))
}

/// The value of ASCII decimal digits; `None` for anything else.
fn number(digits: &[u8]) -> Option<i64> {
    digits.iter().try_fold(0, |n, &b| b.is_ascii_digit().then(|| n * 10 + i64::from(b - b'0')))
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// (year, month, day) to days since 1970-01-01, proleptic Gregorian
/// (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
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

    /// A timestamp spelled from parts, each possibly out of range.
    fn spelled(parts: (u32, u32, u32, u32, u32, u32), fraction: &str, offset: &str) -> String {
        let (y, mo, d, h, mi, s) = parts;
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}{fraction}{offset}")
    }

    fn both_parsers(text: &str) -> (Result<Millis, BadTimestamp>, Result<Millis, BadTimestamp>) {
        (Millis::parse_rfc3339(text), Millis::parse_any_form(text))
    }

    #[test]
    fn the_common_form_reader_takes_the_usual_spellings_and_leaves_the_rest() {
        for usual in ["2024-07-03T02:06:15Z", "2024-07-03T02:06:15.123Z", "2024-07-02T19:06:15.000123-07:00", "2024-02-29T23:59:59.9+14:00"] {
            assert!(parse_common_form(usual.as_bytes()).is_some(), "{usual}");
            let (fast, general) = both_parsers(usual);
            assert_eq!(fast, general, "{usual}");
        }
        for other in ["2024-07-03t02:06:15z", "2024-07-03T02:06:15-00:00", "2016-12-31T23:59:60Z", "2024-07-03T02:06:15.1234567890Z", "2023-02-29T00:00:00Z"] {
            assert!(parse_common_form(other.as_bytes()).is_none(), "{other}");
        }
    }

    proptest::proptest! {
        #[test]
        fn the_common_form_reader_agrees_with_the_general_parser(
            parts in (0_u32..=9999, 0_u32..=13, 0_u32..=32, 0_u32..=24, 0_u32..=60, 0_u32..=61),
            fraction in proptest::sample::select(vec!["", ".", ".5", ".12", ".123", ".1239", ".123456789", ".1234567891", ".x"]),
            offset in proptest::sample::select(vec!["Z", "z", "+00:00", "-00:00", "+07:00", "-07:30", "+23:59", "-23:59", "+24:00", "+05:60", "+0500", ""]),
        ) {
            let text = spelled(parts, fraction, offset);
            let (fast, general) = both_parsers(&text);
            proptest::prop_assert_eq!(fast, general, "{}", text);
        }

        #[test]
        fn every_formatted_time_reads_back_through_the_common_form(ms in FIRST_OF_YEAR_0..FIRST_OF_YEAR_10000) {
            let text = Millis(ms).to_rfc3339();
            proptest::prop_assert_eq!(parse_common_form(text.as_bytes()), Some(Millis(ms)));
        }

        #[test]
        fn the_common_form_reader_never_disagrees_on_arbitrary_text(text in "[0-9T:.Z+-]{0,32}") {
            let (fast, general) = both_parsers(&text);
            proptest::prop_assert_eq!(fast, general, "{}", text);
        }

        #[test]
        fn the_digit_formatter_agrees_with_the_formatting_machinery(ms in -400_000_000_000_000_i64..400_000_000_000_000, steps in proptest::collection::vec(0_i64..50_000_000, 1..4)) {
            // Times a few hours apart, on the same day or the next: the
            // remembered date must be reused and replaced correctly.
            let mut at = ms;
            for step in std::iter::once(0).chain(steps) {
                at += step;
                let mut wide = String::new();
                Millis(at).write_rfc3339_wide(&mut wide);
                proptest::prop_assert_eq!(Millis(at).to_rfc3339(), wide.clone());
                proptest::prop_assert_eq!(serde_json::to_string(&Millis(at)).unwrap(), format!("{wide:?}"));
            }
        }
    }
}
