//! Timestamps in the two text forms the system uses, without a calendar dependency.
//!
//! The envelope uses ISO 8601 UTC with millisecond precision (`2026-03-13T07:02:50.443Z`);
//! the file server's JSON uses RFC 3339 with nanoseconds, as Plik does.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Civil date (year, month, day) from days since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
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

fn split(t: SystemTime) -> (i64, u32, u32, u64, u32) {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let secs = since.as_secs();
    let days = (secs / 86_400) as i64;
    let (y, m, d) = civil_from_days(days);
    (y, m, d, secs % 86_400, since.subsec_nanos())
}

/// `2026-03-13T07:02:50.443Z`: the envelope's `timestamp` form.
pub fn iso8601_millis(t: SystemTime) -> String {
    let (y, m, d, sod, nanos) = split(t);
    if let Ok(y) = u32::try_from(y) {
        if y <= 9999 {
            // Written digit by digit: this runs for every envelope sent.
            let mut b = *b"0000-00-00T00:00:00.000Z";
            let mut put = |at: usize, width: usize, mut v: u32| {
                for k in (at..at + width).rev() {
                    b[k] = b'0' + (v % 10) as u8;
                    v /= 10;
                }
            };
            put(0, 4, y);
            put(5, 2, m);
            put(8, 2, d);
            put(11, 2, (sod / 3600) as u32);
            put(14, 2, ((sod / 60) % 60) as u32);
            put(17, 2, (sod % 60) as u32);
            put(20, 3, nanos / 1_000_000);
            return std::str::from_utf8(&b).expect("ASCII digits").to_owned();
        }
    }
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60,
        nanos / 1_000_000
    )
}

/// `2026-03-13T07:02:50.443123456Z`: RFC 3339 with nanoseconds, as Plik writes `createdAt`.
pub fn rfc3339_nanos(t: SystemTime) -> String {
    let (y, m, d, sod, nanos) = split(t);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    )
}

/// The current time in the envelope's form.
pub fn now_iso8601() -> String {
    iso8601_millis(SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        let t = UNIX_EPOCH + Duration::from_millis(1_773_385_370_443);
        assert_eq!(iso8601_millis(t), "2026-03-13T07:02:50.443Z");
        assert_eq!(iso8601_millis(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let late = UNIX_EPOCH + Duration::from_millis(253_402_300_799_999); // 9999-12-31
        assert_eq!(iso8601_millis(late), "9999-12-31T23:59:59.999Z");
        let later = late + Duration::from_millis(1);
        assert_eq!(iso8601_millis(later), "10000-01-01T00:00:00.000Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(rfc3339_nanos(leap), "2000-02-29T00:00:00.000000000Z");
    }
}
