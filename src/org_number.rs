//! Norwegian organisation numbers (organisasjonsnummer): nine digits, the last a MOD11 check digit.

/// The result of reading an organisation-number cell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrgNumber {
    /// Nine digits with a correct check digit.
    Valid(String),
    /// Digits, but the wrong length or check digit: kept as written (digits only), with a warning.
    Invalid(String),
    /// Not a number at all; dropped with a warning.
    Unreadable,
}

/// Reads a cell: blank is `None`. Spaces (also no-break spaces), dots and a `NO … MVA` VAT wrapper are
/// ignored, as they appear in how people write the number (`916 960 190`, `NO 916960190 MVA`).
pub fn parse(raw: &str) -> Option<OrgNumber> {
    // Most cells are plain digits: read them where they are, without a cleaned copy.
    let mut cleaned = String::new();
    let s = if raw.bytes().all(|b| b.is_ascii_digit()) {
        raw
    } else {
        cleaned.extend(raw.chars().filter(|c| !c.is_whitespace() && *c != '.'));
        cleaned.make_ascii_uppercase();
        &cleaned
    };
    if s.is_empty() {
        return None;
    }
    let s = s.strip_prefix("NO").unwrap_or(s);
    let s = s.strip_suffix("MVA").unwrap_or(s);
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Some(OrgNumber::Unreadable);
    }
    if is_valid(s) {
        Some(OrgNumber::Valid(s.to_string()))
    } else {
        Some(OrgNumber::Invalid(s.to_string()))
    }
}

/// MOD11 with weights 3,2,7,6,5,4,3,2; a remainder that gives check digit 10 makes the number invalid.
pub fn is_valid(digits: &str) -> bool {
    const WEIGHTS: [u32; 8] = [3, 2, 7, 6, 5, 4, 3, 2];
    if digits.len() != 9 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let d: [u32; 9] = std::array::from_fn(|i| u32::from(digits.as_bytes()[i] - b'0'));
    let sum: u32 = d.iter().zip(WEIGHTS).map(|(a, w)| a * w).sum();
    let check = match 11 - sum % 11 {
        11 => 0,
        10 => return false,
        c => c,
    };
    d[8] == check
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_numbers() {
        assert!(is_valid("916960190")); // Bits AS
        assert!(is_valid("984851006")); // DNB Bank ASA
        assert!(is_valid("974760673")); // Brønnøysundregistrene
        assert!(!is_valid("916960191"));
        assert!(!is_valid("91696019"));
    }

    #[test]
    fn parses_written_forms() {
        assert_eq!(parse(""), None);
        assert_eq!(parse("  "), None);
        assert_eq!(
            parse("916 960 190"),
            Some(OrgNumber::Valid("916960190".into()))
        );
        assert_eq!(
            parse("NO 916960190 MVA"),
            Some(OrgNumber::Valid("916960190".into()))
        );
        assert_eq!(
            parse("916\u{a0}960\u{a0}190"),
            Some(OrgNumber::Valid("916960190".into()))
        );
        assert_eq!(
            parse("123456789"),
            Some(OrgNumber::Invalid("123456789".into()))
        );
        assert_eq!(parse("n/a"), Some(OrgNumber::Unreadable));
    }
}
