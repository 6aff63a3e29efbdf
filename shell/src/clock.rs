//! The appliance's clock and `show clock` in IOS's format: `*12:49:21.123
//! UTC Fri Nov 27 2026`. The `*` is IOS's mark of a clock no time source
//! vouches for; it goes once the NTP client has synchronised. The clock
//! is the system clock plus an offset the NTP client keeps in this
//! process: hosted, the appliance is a process beside others and must not
//! move the host's clock (as PID 1 of the image the client sets the
//! system clock itself and the offset stays zero). The calendar is
//! computed here (Howard Hinnant's days-from-civil inverse), so the shell
//! needs no date crate.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Microseconds to add to the system clock.
static OFFSET_MICROS: AtomicI64 = AtomicI64::new(0);
/// Whether a time source vouches for the clock.
static SYNCHRONISED: AtomicBool = AtomicBool::new(false);

const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// The system clock now, as `show clock` prints it (a clock before 1970
/// reads as 1970).
pub fn show_clock() -> String {
    clock_line(now(), SYNCHRONISED.load(Ordering::Relaxed))
}

/// `show clock`'s line: without IOS's `*` when a source vouches for it.
fn clock_line(since_epoch: Duration, synchronised: bool) -> String {
    let text = ios_time(since_epoch);
    match synchronised {
        true => format!("{}\n", text.trim_start_matches('*')),
        false => format!("{text}\n"),
    }
}

/// The time since the epoch (UTC) by this process's clock: the system
/// clock plus the offset.
pub fn now() -> Duration {
    let system = system_micros();
    let micros = system.saturating_add(OFFSET_MICROS.load(Ordering::Relaxed));
    Duration::from_micros(micros.max(0) as u64)
}

/// The system clock in microseconds since the epoch (negative before it).
pub fn system_micros() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_micros()).unwrap_or(i64::MAX),
        Err(before) => -i64::try_from(before.duration().as_micros()).unwrap_or(i64::MAX),
    }
}

/// Sets the offset from the system clock, and whether a time source
/// vouches for the result (the NTP client's findings).
pub fn set_offset(micros: i64, synchronised: bool) {
    OFFSET_MICROS.store(micros, Ordering::Relaxed);
    SYNCHRONISED.store(synchronised, Ordering::Relaxed);
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
    fn the_offset_moves_the_clock_and_a_synchronised_one_loses_its_star() {
        let before = now();
        set_offset(3_600_000_000, false);
        let moved = now();
        set_offset(0, false);
        let hour = moved.saturating_sub(before).as_secs();
        assert!((3599..=3601).contains(&hour), "{hour}");
        let at = Duration::from_secs(1_795_783_761);
        assert_eq!(clock_line(at, true), "12:49:21.000 UTC Fri Nov 27 2026\n");
        assert_eq!(clock_line(at, false), "*12:49:21.000 UTC Fri Nov 27 2026\n");
    }

    #[test]
    fn show_clock_reads_the_system_clock() {
        let text = show_clock();
        assert!(text.starts_with('*') && text.ends_with('\n'), "{text}");
        let year: u64 = text.trim_end().rsplit(' ').next().unwrap().parse().unwrap();
        assert!(year >= 2024, "{text}");
    }
}
