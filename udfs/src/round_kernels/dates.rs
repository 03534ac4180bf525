//! Date truncation to a month or a year by civil-calendar arithmetic.

use chrono::{Datelike, NaiveDate};
use datafusion::arrow::array::Date32Array;
use datafusion::arrow::compute::{max, min};

use super::map_within;

/// Days from 0000-03-01 to 1970-01-01 in the proleptic Gregorian calendar.
const EPOCH_FROM_MARCH_0000: i64 = 719_468;
/// Days in a 400-year era.
const ERA_DAYS: i64 = 146_097;
/// Days from 0001-01-01 (chrono's day 1) to 1970-01-01.
const EPOCH_FROM_CE: i64 = 719_163;

/// Whether every day in `[low, high]` (days since 1970-01-01) is a date the
/// exact path (chrono) represents; outside that it shows NULL.
fn chrono_holds(low: i32, high: i32) -> bool {
    let first = i64::from(NaiveDate::MIN.num_days_from_ce()) - EPOCH_FROM_CE;
    let last = i64::from(NaiveDate::MAX.num_days_from_ce()) - EPOCH_FROM_CE;
    i64::from(low) >= first && i64::from(high) <= last
}

/// Year (March-based: January and February count to the year before), day
/// of that year (0 = March 1st) of a day since 1970-01-01 (H. Hinnant's
/// `civil_from_days`, all divisions by constants).
#[inline(always)]
fn march_year(days: i32) -> (i64, i64) {
    let z = i64::from(days) + EPOCH_FROM_MARCH_0000;
    let era = if z >= 0 { z } else { z - (ERA_DAYS - 1) } / ERA_DAYS;
    let day_of_era = z - era * ERA_DAYS;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    (year_of_era + era * 400, day_of_year)
}

/// The first day of the month of `days` (days since 1970-01-01).
#[inline(always)]
pub(crate) fn month_start(days: i32) -> i32 {
    let (_, day_of_year) = march_year(days);
    let month_index = (5 * day_of_year + 2) / 153;
    let day_of_month = day_of_year - (153 * month_index + 2) / 5;
    (i64::from(days) - day_of_month) as i32
}

/// January 1st of the year of `days` (days since 1970-01-01).
#[inline(always)]
pub(crate) fn year_start(days: i32) -> i32 {
    let (march_year, day_of_year) = march_year(days);
    // March..December (day of year < 306) belong to the civil year
    // `march_year`; January and February to the next one. Its January 1st
    // is day 306 of March-year (civil year − 1).
    let civil = march_year + i64::from(day_of_year >= 306);
    let y = civil - 1;
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let year_of_era = y - era * 400;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + 306;
    (era * ERA_DAYS + day_of_era - EPOCH_FROM_MARCH_0000) as i32
}

/// A date truncation kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DateTruncation {
    /// Dates are already whole days: the input is the answer.
    Identity,
    /// The first of the month.
    Month,
    /// The first of January.
    Year,
}

/// Truncates a Date32 array, or `None` when a date lies outside the range
/// the exact path represents (it shows NULL there).
pub(crate) fn truncate_dates(input: &Date32Array, unit: DateTruncation) -> Option<Date32Array> {
    let covers = |a: &Date32Array| match (min(a), max(a)) {
        (Some(low), Some(high)) => chrono_holds(low, high),
        _ => true,
    };
    match unit {
        DateTruncation::Identity => covers(input).then(|| input.clone()),
        DateTruncation::Month => map_within(
            input,
            1,
            |d| (month_start(d), u64::from(!chrono_holds(d, d))),
            covers,
        ),
        DateTruncation::Year => map_within(
            input,
            1,
            |d| (year_start(d), u64::from(!chrono_holds(d, d))),
            covers,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn exact_date(days: i32, month: bool) -> i32 {
        let date = NaiveDate::from_num_days_from_ce_opt(days + EPOCH_FROM_CE as i32)
            .unwrap_or_else(|| panic!("day {days} in range"));
        let first = if month {
            date.with_day(1)
        } else {
            NaiveDate::from_ymd_opt(date.year(), 1, 1)
        };
        first
            .unwrap_or_else(|| panic!("first of {date}"))
            .num_days_from_ce()
            - EPOCH_FROM_CE as i32
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2048, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn date_kernels_equal_chrono(days in prop_oneof![-800_000i32..800_000, -95_000_000i32..95_000_000]) {
            prop_assume!(chrono_holds(days, days));
            prop_assert_eq!(month_start(days), exact_date(days, true));
            prop_assert_eq!(year_start(days), exact_date(days, false));
        }
    }

    #[test]
    fn every_date_edge_chrono_knows() {
        for days in [
            i64::from(NaiveDate::MIN.num_days_from_ce()) - EPOCH_FROM_CE,
            i64::from(NaiveDate::MAX.num_days_from_ce()) - EPOCH_FROM_CE,
            -1,
            0,
            59,
            -719_162,
        ] {
            let days = days as i32;
            assert_eq!(month_start(days), exact_date(days, true), "day {days}");
            assert_eq!(year_start(days), exact_date(days, false), "day {days}");
        }
    }
}
