//! Dates of birth: a column whose name says birth (`dob`, `birth_date`,
//! `date_of_birth`, `birthday`, `born`) holding dates between 1900 and
//! today, as DATE values or as text (`1984-03-02`, `03/02/1984`,
//! `02.03.1984`, `1984/03/02`). Dates in any other column (`created_at`)
//! are not birth dates.

use chrono::NaiveDate;

use super::{Classifier, name_has};

/// The date of birth classifier.
pub(super) struct DateOfBirth;

const FORMATS: &[&str] = &["%Y-%m-%d", "%m/%d/%Y", "%d.%m.%Y", "%Y/%m/%d"];

fn parse_date(value: &str) -> Option<NaiveDate> {
    // DATE and TIMESTAMP values print as `YYYY-MM-DD[ T]...`.
    let head = match value.get(..10) {
        Some(h) if value.len() > 10 && matches!(value.as_bytes()[10], b' ' | b'T') => h,
        _ => value,
    };
    FORMATS
        .iter()
        .find_map(|f| NaiveDate::parse_from_str(head, f).ok())
}

impl Classifier for DateOfBirth {
    fn name(&self) -> &str {
        "date_of_birth"
    }
    fn tag(&self) -> String {
        "Discovered.Date of Birth".into()
    }
    fn specificity(&self) -> u32 {
        70
    }
    fn name_signal(&self, column: &str) -> bool {
        name_has(
            column,
            &[
                "dob",
                "birth",
                "birthday",
                "birthdate",
                "birth_date",
                "date_of_birth",
                "born",
                "bday",
            ],
        )
    }
    fn matches(&self, value: &str, named: bool) -> bool {
        if !named {
            return false;
        }
        let today = chrono::Utc::now().date_naive();
        parse_date(value).is_some_and(|d| {
            d <= today && NaiveDate::from_ymd_opt(1900, 1, 1).is_some_and(|min| d >= min)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn birth_dates_need_the_name() {
        let c = DateOfBirth;
        assert!(
            c.name_signal("date_of_birth") && c.name_signal("dob") && c.name_signal("birth_dt")
        );
        assert!(!c.name_signal("created_at"));
        for good in [
            "1984-03-02",
            "03/02/1984",
            "02.03.1984",
            "1984-03-02 00:00:00",
            "1984-03-02T00:00:00",
        ] {
            assert!(c.matches(good, true), "{good}");
        }
        assert!(!c.matches("1984-03-02", false));
        for bad in [
            "1850-01-01",
            "2999-01-01",
            "1984-13-02",
            "84-03-02",
            "yesterday",
        ] {
            assert!(!c.matches(bad, true), "{bad}");
        }
    }
}
