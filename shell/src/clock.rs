//! `show clock` in IOS's format: `*12:49:21.123 UTC Fri Nov 27 2026`. The
//! `*` is IOS's mark of a clock no time source vouches for, which is true
//! of this one (no NTP yet). The calendar is computed here (Howard
//! Hinnant's days-from-civil inverse), so the shell needs no date crate.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// The system clock now, as `show clock` prints it (a clock before 1970
/// reads as 1970).
pub fn show_clock() -> String {
    format!("{}\n", ios_time(now()))
}

/// The time since the epoch (UTC) by this process's clock.
pub fn now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// `since_epoch` as RFC 3339 (what RFC 5424 syslog stamps lines with):
/// `2026-11-27T12:49:21.123Z`.
pub fn rfc3339(since_epoch: Duration) -> String {
    let seconds = since_epoch.as_secs();
    let (year, month, day) = civil_from_days(seconds / 86_400);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        seconds / 3600 % 24,
        seconds / 60 % 60,
        seconds % 60,
        since_epoch.subsec_millis(),
    )
}

/// `since_epoch` (UTC) in IOS's format.
pub fn ios_time(since_epoch: Duration) -> String {
    let seconds = since_epoch.as_secs();
    let days = seconds / 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "*{:02}:{:02}:{:02}.{:03} UTC {} {} {day} {year}",
        seconds / 3600 % 24,
        seconds / 60 % 60,
        seconds % 60,
        since_epoch.subsec_millis(),
        WEEKDAYS[(days % 7) as usize],
        MONTHS[month as usize - 1],
    )
}

/// Year, month (1-12) and day of the month of a count of days since
/// 1970-01-01 in the proleptic Gregorian calendar.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // Counted from 0000-03-01, so that a leap day ends its 400-year era.
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: u64, millis: u64) -> String {
        ios_time(Duration::from_millis(seconds * 1000 + millis))
    }

    #[test]
    fn formats_as_ios_does() {
        assert_eq!(at(1_795_783_761, 123), "*12:49:21.123 UTC Fri Nov 27 2026");
        assert_eq!(at(0, 0), "*00:00:00.000 UTC Thu Jan 1 1970");
    }

    #[test]
    fn rfc3339_is_utc_with_milliseconds() {
        let at = Duration::from_millis(1_795_783_761_123);
        assert_eq!(rfc3339(at), "2026-11-27T12:49:21.123Z");
        assert_eq!(rfc3339(Duration::ZERO), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn leap_days_and_century_rules_hold() {
        assert_eq!(at(1_709_251_199, 999), "*23:59:59.999 UTC Thu Feb 29 2024");
        assert_eq!(at(1_709_251_200, 0), "*00:00:00.000 UTC Fri Mar 1 2024");
        assert_eq!(at(951_868_800, 0), "*00:00:00.000 UTC Wed Mar 1 2000");
        assert_eq!(at(951_868_800 - 1, 0), "*23:59:59.000 UTC Tue Feb 29 2000");
        assert_eq!(at(4_107_542_400, 0), "*00:00:00.000 UTC Mon Mar 1 2100");
        assert_eq!(
            at(4_107_542_400 - 1, 0),
            "*23:59:59.000 UTC Sun Feb 28 2100"
        );
    }

    #[test]
    fn show_clock_reads_the_system_clock() {
        let text = show_clock();
        assert!(text.starts_with('*') && text.ends_with('\n'), "{text}");
        let year: u64 = text.trim_end().rsplit(' ').next().unwrap().parse().unwrap();
        assert!(year >= 2024, "{text}");
    }
}
