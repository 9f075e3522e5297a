//! UTC days and months, from milliseconds since the Unix epoch (pure), and the clock read in
//! those milliseconds.

/// Now, in milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

pub const DAY_MS: u64 = 86_400_000;

/// The UTC day (`YYYY-MM-DD`) and month (`YYYY-MM`) of `now` (ms since the Unix epoch).
pub fn day_and_month(now: u64) -> (String, String) {
    let (year, month, day) = civil((now / DAY_MS) as i64);
    (
        format!("{year:04}-{month:02}-{day:02}"),
        format!("{year:04}-{month:02}"),
    )
}

/// The start of the UTC day after `now`'s.
pub fn next_day_start(now: u64) -> u64 {
    (now / DAY_MS + 1) * DAY_MS
}

/// The start of the UTC month after `now`'s.
pub fn next_month_start(now: u64) -> u64 {
    let (year, month, _) = civil((now / DAY_MS) as i64);
    let (year, month) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    (days_from_civil(year, month, 1).max(0) as u64) * DAY_MS
}

/// The (year, month, day) of `days` since 1970-01-01 (Howard Hinnant's algorithm).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Days since 1970-01-01 of a date (the inverse of [`civil`]).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let month = i64::from(month);
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}
