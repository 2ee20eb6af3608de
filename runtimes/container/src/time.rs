//! RFC 3339 timestamps in UTC, without a date crate: the state's `created`
//! and the sandbox's audit lines both need them.

use std::time::{SystemTime, UNIX_EPOCH};

/// `YYYY-MM-DDTHH:MM:SS.fffZ` with `digits` (0 to 9) of the second's
/// fraction. Times before the epoch (a clock set wrong) print as the epoch.
pub fn rfc3339(t: SystemTime, digits: u32) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Howard Hinnant's civil_from_days: days since 1970-01-01 to a
    // proleptic Gregorian date.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let digits = digits.min(9);
    let fraction = if digits == 0 {
        String::new()
    } else {
        let scaled = d.subsec_nanos() / 10u32.pow(9 - digits);
        format!(".{scaled:0width$}", width = digits as usize)
    };
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}{fraction}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Now, with nanoseconds (the precision runc's `created` has).
pub fn now_rfc3339() -> String {
    rfc3339(SystemTime::now(), 9)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn known_instants() {
        let at = |s: u64, ns: u32| UNIX_EPOCH + Duration::from_secs(s) + Duration::from_nanos(u64::from(ns));
        assert_eq!(rfc3339(at(0, 0), 3), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(at(951_782_400, 7_000_000), 3), "2000-02-29T00:00:00.007Z");
        assert_eq!(
            rfc3339(at(1_798_544_096, 999_999_999), 9),
            "2026-12-29T11:34:56.999999999Z"
        );
        assert_eq!(rfc3339(at(4_107_542_399, 5), 0), "2100-02-28T23:59:59Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH - Duration::from_secs(5), 3),
            "1970-01-01T00:00:00.000Z"
        );
    }
}
