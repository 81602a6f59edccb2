//! The date formats the endpoints and tools send, read by hand: RFC 3339 (azd, Azure ML, App
//! Service), the HTTP date of `Retry-After` (IMF-fixdate), and the dates without a zone of az
//! and the managed identity endpoints (`yyyy-MM-dd HH:mm:ss`, `MM/dd/yyyy h:mm:ss AM +00:00`).
//!
//! Fixed formats, so small parsers: `time`'s general format-description parser cost this
//! crate more build time than all of them together. Every one is total (garbage gives `None`)
//! and fuzzed through the targets that read dates (`mi_date`, `retry_after`, `az_output`,
//! `azd_output`).

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

/// RFC 3339: `2030-01-02T03:04:05Z`, `2030-01-02t03:04:05.123456789+05:30`. Four-digit year,
/// two-digit fields, `T`, `t` or a space (RFC 3339 §5.6 allows it) between date and time,
/// optional fractional seconds (nanoseconds; further digits dropped), `Z` or an offset
/// `±HH:MM`. A leap second (`23:59:60` UTC on a month's last day) is read as 23:59:59.999999999,
/// as `time`'s parser reads it: the tests compare the two.
pub(crate) fn rfc3339(text: &str) -> Option<OffsetDateTime> {
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let date = ymd(digits(&b[0..4])?, digits(&b[5..7])?, digits(&b[8..10])?)?;
    let mut clock: [u8; 8] = b[11..19].try_into().ok()?;
    let leap_second = clock[6..] == *b"60";
    if leap_second {
        clock[6..].copy_from_slice(b"59");
    }
    let time = hms(&clock)?;
    let mut rest = &b[19..];
    let mut nanos = 0u32;
    if let [b'.', fraction @ ..] = rest {
        let len = fraction.iter().take_while(|c| c.is_ascii_digit()).count();
        if len == 0 {
            return None;
        }
        // Nanoseconds: the first nine digits, further ones dropped.
        let kept = &fraction[..len.min(9)];
        nanos = digits(kept)? * 10u32.pow(9 - kept.len() as u32);
        rest = &fraction[len..];
    }
    let offset = match rest {
        [b'Z' | b'z'] => UtcOffset::UTC,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            signed_offset(*sign == b'-', digits(&[*h1, *h2])?, digits(&[*m1, *m2])?)?
        }
        _ => return None,
    };
    let time = time
        .replace_nanosecond(if leap_second { 999_999_999 } else { nanos })
        .ok()?;
    let at = PrimitiveDateTime::new(date, time).assume_offset(offset);
    if leap_second {
        // Inserted at the end of a month in UTC, nowhere else: the next second starts a month.
        let next = OffsetDateTime::from_unix_timestamp(at.unix_timestamp() + 1).ok()?;
        if next.day() != 1 || next.time() != Time::MIDNIGHT {
            return None;
        }
    }
    Some(at)
}

/// An HTTP date as RFC 9110 requires senders to write it (IMF-fixdate), in UTC:
/// `Sun, 06 Nov 1994 08:49:37 GMT`.
pub(crate) fn http_date(text: &str) -> Option<OffsetDateTime> {
    const DAYS: [&[u8]; 7] = [b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat", b"Sun"];
    const MONTHS: [&[u8]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let b = text.as_bytes();
    if b.len() != 29 || &b[3..5] != b", " || &b[25..] != b" GMT" {
        return None;
    }
    if !DAYS.contains(&&b[0..3]) || b[7] != b' ' || b[11] != b' ' || b[16] != b' ' {
        return None;
    }
    let month = MONTHS.iter().position(|m| *m == &b[8..11])? as u32 + 1;
    let date = ymd(digits(&b[12..16])?, month, digits(&b[5..7])?)?;
    let time = hms(&b[17..25])?;
    Some(PrimitiveDateTime::new(date, time).assume_utc())
}

/// `HH:MM:SS`, two digits each.
fn hms(b: &[u8]) -> Option<Time> {
    if b.len() != 8 || b[2] != b':' || b[5] != b':' {
        return None;
    }
    let (h, m, s) = (digits(&b[0..2])?, digits(&b[3..5])?, digits(&b[6..8])?);
    Time::from_hms(u8::try_from(h).ok()?, m as u8, s as u8).ok()
}

/// The dates without a zone the managed identity endpoints and az write, with an optional
/// offset after them: `MM/dd/yyyy HH:mm:ss +00:00` (Azure ML on Linux), `M/d/yyyy h:mm:ss AM
/// +00:00` (Azure ML on Windows), `yyyy-MM-dd HH:mm:ss[.ffffff]` (az before 2.54, App Service).
/// Fractional seconds are dropped. Returns the date and time and the offset, if one was given.
pub(crate) fn civil(text: &str) -> Option<(PrimitiveDateTime, Option<UtcOffset>)> {
    let mut parts = text.split_whitespace();
    let date = calendar_date(parts.next()?)?;
    let mut time = clock(parts.next()?)?;
    let mut next = parts.next();
    if let Some(period) =
        next.filter(|p| p.eq_ignore_ascii_case("AM") || p.eq_ignore_ascii_case("PM"))
    {
        let hour = time.hour();
        if !(1..=12).contains(&hour) {
            return None;
        }
        let hour24 = match (period.eq_ignore_ascii_case("PM"), hour) {
            (false, 12) => 0,
            (false, h) => h,
            (true, 12) => 12,
            (true, h) => h + 12,
        };
        time = Time::from_hms(hour24, time.minute(), time.second()).ok()?;
        next = parts.next();
    }
    let offset = match next {
        Some(offset) => Some(offset_of(offset)?),
        None => None,
    };
    if parts.next().is_some() {
        return None;
    }
    Some((PrimitiveDateTime::new(date, time), offset))
}

/// `MM/dd/yyyy`, `M/d/yyyy` or `yyyy-MM-dd`: a four-digit year (`1/2/30` is no date: the
/// year 30 is no expiry), a month and a day of one or two digits.
fn calendar_date(text: &str) -> Option<Date> {
    let (year, month, day) = if let Some((m, rest)) = text.split_once('/') {
        let (d, y) = rest.split_once('/')?;
        (y, m, d)
    } else {
        let mut it = text.splitn(3, '-');
        (it.next()?, it.next()?, it.next()?)
    };
    let year = (year.len() == 4)
        .then(|| digits(year.as_bytes()))
        .flatten()?;
    ymd(
        year,
        u32::from(one_or_two(month)?),
        u32::from(one_or_two(day)?),
    )
}

/// `H:mm:ss` or `HH:mm:ss`, with optional fractional seconds (dropped).
fn clock(text: &str) -> Option<Time> {
    let mut it = text.split(':');
    let (h, m, s) = (it.next()?, it.next()?, it.next()?);
    if it.next().is_some() {
        return None;
    }
    let s = match s.split_once('.') {
        Some((whole, fraction)) => {
            if fraction.is_empty() || !fraction.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            whole
        }
        None => s,
    };
    Time::from_hms(one_or_two(h)?, one_or_two(m)?, one_or_two(s)?).ok()
}

/// `+00:00`, `-05:30`, `+0530`, `+05`, `Z`, `UTC`. A sign and at most two digits each for
/// hours (up to 23) and minutes (up to 59), as in RFC 3339: nothing else (`--128:00`, `+-5`,
/// `+25:00`) is an offset.
fn offset_of(text: &str) -> Option<UtcOffset> {
    if text.eq_ignore_ascii_case("Z") || text.eq_ignore_ascii_case("UTC") {
        return Some(UtcOffset::UTC);
    }
    let (negative, rest) = if let Some(rest) = text.strip_prefix('+') {
        (false, rest)
    } else if let Some(rest) = text.strip_prefix('-') {
        (true, rest)
    } else {
        return None;
    };
    let (h, m) = match rest.split_once(':') {
        Some(parts) => parts,
        None if rest.len() == 4 => rest.split_at_checked(2)?,
        None => (rest, "0"),
    };
    signed_offset(negative, one_or_two(h)?.into(), one_or_two(m)?.into())
}

/// The offset of `hours` (at most 23) and `minutes` (at most 59), west of UTC if `negative`.
fn signed_offset(negative: bool, hours: u32, minutes: u32) -> Option<UtcOffset> {
    if hours > 23 || minutes > 59 {
        return None;
    }
    let (h, m) = (hours as i8, minutes as i8);
    let (h, m) = if negative { (-h, -m) } else { (h, m) };
    UtcOffset::from_hms(h, m, 0).ok()
}

/// One or two ASCII digits.
fn one_or_two(text: &str) -> Option<u8> {
    if text.len() > 2 {
        return None;
    }
    digits(text.as_bytes()).map(|n| n as u8)
}

/// A non-empty run of ASCII digits (at most four in every caller), as a number.
fn digits(b: &[u8]) -> Option<u32> {
    if b.is_empty() || b.len() > 9 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(b.iter().fold(0, |n, c| n * 10 + u32::from(c - b'0')))
}

/// A calendar date, when it is one.
fn ymd(year: u32, month: u32, day: u32) -> Option<Date> {
    let month = Month::try_from(u8::try_from(month).ok()?).ok()?;
    Date::from_calendar_date(i32::try_from(year).ok()?, month, u8::try_from(day).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn rfc3339_dates_are_read_with_their_offset() {
        for (text, expected) in [
            ("2030-01-02T03:04:05Z", datetime!(2030-01-02 3:04:05 UTC)),
            ("2030-01-02t03:04:05z", datetime!(2030-01-02 3:04:05 UTC)),
            (
                "2030-01-02T03:04:05.5+01:00",
                datetime!(2030-01-02 3:04:05.5 +1),
            ),
            (
                "2030-01-02T03:04:05.123456789123-05:30",
                datetime!(2030-01-02 3:04:05.123456789 -5:30),
            ),
            (
                "2030-01-02T03:04:05-00:00",
                datetime!(2030-01-02 3:04:05 UTC),
            ),
            ("2000-02-29T23:59:59Z", datetime!(2000-02-29 23:59:59 UTC)),
            ("2030-01-02 03:04:05Z", datetime!(2030-01-02 3:04:05 UTC)),
            (
                "2016-12-31T23:59:60Z",
                datetime!(2016-12-31 23:59:59.999999999 UTC),
            ),
            (
                "2017-01-01T08:59:60+09:00",
                datetime!(2017-01-01 8:59:59.999999999 +9),
            ),
        ] {
            assert_eq!(rfc3339(text), Some(expected), "{text}");
        }
        for text in [
            "",
            "2030-01-02",
            "2030-01-02T03:04:05",
            "2030-01-02_03:04:05Z",
            "2030-01-02T03:04:05.Z",
            "2030-01-02T03:04:05+0100",
            "2030-01-02T03:04:05+24:00",
            "2030-01-02T03:04:05+01:60",
            "2030-01-02T24:00:00Z",
            "2030-01-02T03:04:60Z",
            "2030-01-02T23:59:60Z",
            "2016-12-31T23:59:60+01:00",
            "2030-13-02T03:04:05Z",
            "2031-02-29T03:04:05Z",
            "2030-01-02T03:04:05Z ",
            "+030-01-02T03:04:05Z",
            "2030-01-02T03:04:05Zé",
            "2030-01-0éT03:04:05Z",
        ] {
            assert_eq!(rfc3339(text), None, "{text:?}");
        }
    }

    /// Every string one or two bytes away from a few RFC 3339 dates reads as `time`'s parser
    /// (the one this crate used before) reads it, but for the date-time separator: `time`
    /// skips any byte there, this parser takes only `T`, `t` and a space.
    #[test]
    fn rfc3339_agrees_with_times_parser_near_valid_dates() {
        use time::format_description::well_known::Rfc3339;
        let alphabet = "0123456789-+:.TtZz _xé".as_bytes();
        let compare = |bytes: &[u8]| {
            let Ok(text) = std::str::from_utf8(bytes) else {
                return;
            };
            let times = OffsetDateTime::parse(text, &Rfc3339).ok();
            let separator_ok = bytes.get(10).is_some_and(|b| b"Tt ".contains(b));
            if separator_ok || times.is_none() {
                assert_eq!(rfc3339(text), times, "{text:?}");
            }
        };
        for seed in [
            "2030-01-02T03:04:05Z",
            "2000-02-29T23:59:59.5-00:00",
            "2016-12-31T23:59:60Z",
            "2017-01-01T08:59:60+09:00",
            "2016-12-31T23:59:60.25Z",
        ] {
            for_each_neighbour(seed, alphabet, compare);
        }
        let seed = b"2030-01-02T03:04:05.123+05:30";
        for i in 0..seed.len() {
            for j in i + 1..seed.len() {
                for &c in alphabet {
                    for &d in alphabet {
                        let mut twice = seed.to_vec();
                        (twice[i], twice[j]) = (c, d);
                        compare(&twice);
                    }
                }
            }
        }
    }

    /// `f` on each string one byte inserted, replaced (by one of `alphabet`) or removed away
    /// from `seed`.
    fn for_each_neighbour(seed: &str, alphabet: &[u8], mut f: impl FnMut(&[u8])) {
        let seed = seed.as_bytes();
        for i in 0..=seed.len() {
            for &c in alphabet {
                let mut inserted = seed.to_vec();
                inserted.insert(i, c);
                f(&inserted);
                if i < seed.len() {
                    let mut replaced = seed.to_vec();
                    replaced[i] = c;
                    f(&replaced);
                }
            }
            if i < seed.len() {
                let mut removed = seed.to_vec();
                removed.remove(i);
                f(&removed);
            }
        }
    }

    /// The same for the HTTP date, against the format description `time` read it with before,
    /// but for a sign before the year, which `time` takes.
    #[test]
    fn http_date_agrees_with_times_parser_near_valid_dates() {
        let format = time::macros::format_description!(
            "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
        );
        let alphabet = "0123456789 ,:GMTSunNovFebx+-é".as_bytes();
        for seed in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Tue, 29 Feb 2028 23:59:59 GMT",
        ] {
            for_each_neighbour(seed, alphabet, |bytes| {
                let Ok(text) = std::str::from_utf8(bytes) else {
                    return;
                };
                let times = PrimitiveDateTime::parse(text, format)
                    .ok()
                    .map(PrimitiveDateTime::assume_utc);
                // RFC 9110's year is four digits: `time` also takes a sign before it.
                let signed_year = matches!(bytes.get(12), Some(b'+' | b'-'));
                if !signed_year {
                    assert_eq!(http_date(text), times, "{text:?}");
                }
            });
        }
    }

    #[test]
    fn http_dates_are_imf_fixdates_only() {
        assert_eq!(
            http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(datetime!(1994-11-06 8:49:37 UTC))
        );
        assert_eq!(
            http_date("Tue, 01 Jan 2030 00:00:00 GMT"),
            Some(datetime!(2030-01-01 0:00 UTC))
        );
        for text in [
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 06 nov 1994 08:49:37 GMT",
            "Xyz, 06 Nov 1994 08:49:37 GMT",
            "Sun, 31 Feb 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 24:49:37 GMT",
            "Sun, 6 Nov 1994 08:49:37 GMT ",
            "Sun, 06 Nov 1994 08:49:37 GMTé",
        ] {
            assert_eq!(http_date(text), None, "{text}");
        }
    }

    #[test]
    fn civil_dates_keep_their_optional_offset() {
        let at = |text| civil(text).map(|(t, o)| (t.assume_utc(), o));
        assert_eq!(
            at("2026-11-27 19:15:56.000000"),
            Some((datetime!(2026-11-27 19:15:56 UTC), None))
        );
        assert_eq!(
            at("1/2/2030 1:04:05 PM +01:00"),
            Some((
                datetime!(2030-01-02 13:04:05 UTC),
                Some(UtcOffset::from_hms(1, 0, 0).unwrap())
            ))
        );
        assert_eq!(
            at("01/02/2030 12:04:05 AM"),
            Some((datetime!(2030-01-02 0:04:05 UTC), None))
        );
        for text in [
            "",
            "2026-11-27",
            "2026-11-27 19:15",
            "13/02/2030 03:04:05",
            "1/2/30 3:04:05 PM",
            "030-01-02 03:04:05",
            "2030-001-02 03:04:05",
            "2026-11-27 19:15:56 +00:00 x",
        ] {
            assert_eq!(civil(text), None, "{text}");
        }
    }
}
