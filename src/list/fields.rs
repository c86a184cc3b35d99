//! Reading the list's non-domain cells: enrolment dates and the Ja/Nei flag for requirement 5.2.4.

use chrono::NaiveDate;

/// `2017-02-01`, `01.02.2017`, `1.2.2017`, `1/2/2017`, `1.2.17` (and any of these followed by a time, as
/// spreadsheets export). Day-first, as written in Norway, unless the first part has four digits.
/// Blank is `Ok(None)`; anything unreadable is `Err(())`.
#[allow(clippy::result_unit_err)]
pub fn parse_date(raw: &str) -> Result<Option<NaiveDate>, ()> {
    let s = raw.trim();
    if s.is_empty() {
        return Ok(None);
    }
    let date_part = s.split([' ', 'T']).next().unwrap_or(s);
    let parts: Vec<&str> = date_part.split(['-', '.', '/']).collect();
    if parts.len() != 3
        || parts
            .iter()
            .any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(());
    }
    let num = |p: &str| p.parse::<u32>().map_err(|_| ());
    let (y, m, d) = if parts[0].len() == 4 {
        (num(parts[0])? as i32, num(parts[1])?, num(parts[2])?)
    } else {
        let y = match parts[2].len() {
            4 => num(parts[2])? as i32,
            2 => 2000 + num(parts[2])? as i32,
            _ => return Err(()),
        };
        (y, num(parts[1])?, num(parts[0])?)
    };
    NaiveDate::from_ymd_opt(y, m, d).map(Some).ok_or(())
}

/// `Ja`/`Nei` as the scheme writes it, and the forms people use instead (J/N, Yes/No, true/false, 1/0, X).
/// Blank (or `-`) is `Ok(None)`; anything else is `Err(())`.
#[allow(clippy::result_unit_err)]
pub fn parse_flag(raw: &str) -> Result<Option<bool>, ()> {
    let s = raw.trim().trim_end_matches('.').to_lowercase();
    match s.as_str() {
        "" | "-" | "?" => Ok(None),
        "ja" | "j" | "yes" | "y" | "true" | "sann" | "1" | "x" => Ok(Some(true)),
        "nei" | "n" | "no" | "false" | "usann" | "0" => Ok(Some(false)),
        _ => Err(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> Result<Option<NaiveDate>, ()> {
        Ok(Some(NaiveDate::from_ymd_opt(y, m, day).unwrap()))
    }

    #[test]
    fn dates_in_every_written_form() {
        assert_eq!(parse_date("2017-02-01"), d(2017, 2, 1));
        assert_eq!(parse_date("01.02.2017"), d(2017, 2, 1));
        assert_eq!(parse_date("1.2.2017"), d(2017, 2, 1));
        assert_eq!(parse_date("1/2/2017"), d(2017, 2, 1));
        assert_eq!(parse_date(" 1.2.17 "), d(2017, 2, 1));
        assert_eq!(parse_date("2017-02-01 00:00:00"), d(2017, 2, 1));
        assert_eq!(parse_date(""), Ok(None));
        assert_eq!(parse_date("31.02.2017"), Err(()));
        assert_eq!(parse_date("februar 2017"), Err(()));
        assert_eq!(parse_date("1.2.2017.5"), Err(()));
    }

    #[test]
    fn flags() {
        for t in ["Ja", "JA", "j", "Yes", "1", "x", "Ja."] {
            assert_eq!(parse_flag(t), Ok(Some(true)), "{t}");
        }
        for f in ["Nei", "nei", "N", "No", "0"] {
            assert_eq!(parse_flag(f), Ok(Some(false)), "{f}");
        }
        assert_eq!(parse_flag(" "), Ok(None));
        assert_eq!(parse_flag("kanskje"), Err(()));
    }
}
