//! Domain names from the list, normalised to the form mail servers compare literally.
//!
//! Postfix and Exim match table keys byte for byte: `Bits.no.` or `bücher.no` would never match the
//! `bits.no` / `xn--bcher-kva.no` a remote server presents, so every domain is lower-cased, stripped of a
//! trailing dot and converted to its A-label (punycode) form. Anything that is not a plain host name of at
//! least two LDH labels is refused: the value ends up as a key in config files, so strictness here is what
//! keeps a hostile list from writing anything but a domain.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A validated, normalised domain: lower-case A-labels, letters/digits/hyphens, 2+ labels, ≤ 253 octets.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Domain(String);

/// Why a value is not a usable domain. The messages complete the sentence "domain `x` …".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("is empty")]
    Empty,
    #[error("is a wildcard; wildcards are accepted only when subdomains are enabled")]
    Wildcard,
    #[error("is an e-mail address, not a domain")]
    Address,
    #[error("has a character that is not allowed in a host name")]
    BadCharacter,
    #[error("is not a valid internationalised domain name")]
    Idna,
    #[error("has an empty label")]
    EmptyLabel,
    #[error("has a label longer than 63 characters")]
    LabelTooLong,
    #[error("is longer than 253 characters")]
    TooLong,
    #[error("has a label that starts or ends with a hyphen")]
    Hyphen,
    #[error("needs at least two labels (like `example.no`)")]
    SingleLabel,
    #[error("is an IP address or ends in a numeric label")]
    Numeric,
}

/// How lenient the parser is about wildcards (`*.example.no`, `.example.no`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DomainRules {
    /// Accept wildcard forms and read them as the domain itself; only sensible when every output also
    /// covers subdomains.
    pub allow_wildcards: bool,
}

impl Domain {
    /// Normalises and validates one domain as written in the list.
    pub fn parse(raw: &str, rules: DomainRules) -> Result<Domain, DomainError> {
        // A name already in normal form (lower-case LDH labels, no A-label to decode) is itself: the
        // steps below would leave it as it is.
        if is_plain_normal(raw) {
            return Ok(Domain(raw.to_string()));
        }
        Domain::parse_slow(raw, rules)
    }

    /// [`Domain::parse`] without its fast path.
    fn parse_slow(raw: &str, rules: DomainRules) -> Result<Domain, DomainError> {
        let mut s = raw.trim_matches(|c: char| c.is_whitespace() || c == '\u{FEFF}');
        if let Some(rest) = strip_prefix_ignore_case(s, "mailto:") {
            s = rest;
        }
        s = s.strip_prefix('@').unwrap_or(s);
        s = s.strip_suffix('.').unwrap_or(s);
        if s.is_empty() {
            return Err(DomainError::Empty);
        }
        if s.contains('@') {
            return Err(DomainError::Address);
        }
        let wildcard = s.strip_prefix("*.").or_else(|| s.strip_prefix('.'));
        if let Some(rest) = wildcard {
            if !rules.allow_wildcards {
                return Err(DomainError::Wildcard);
            }
            s = rest;
        }
        // ASCII outside letters, digits, hyphen and dot is refused before IDNA processing, which would
        // otherwise accept `_`, `*` or `/` in some modes.
        if s.chars()
            .any(|c| c.is_ascii() && !(c.is_ascii_alphanumeric() || c == '-' || c == '.'))
        {
            return Err(DomainError::BadCharacter);
        }
        // Plain ASCII needs no IDNA processing, unless it holds A-labels (`xn--…`): those are decoded
        // and checked, so that an invalid one (`xn--a.no`) is refused rather than passed on.
        let has_a_label = s
            .split('.')
            .any(|l| l.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("xn--")));
        let ascii = if s.is_ascii() && !has_a_label {
            s.to_ascii_lowercase()
        } else {
            idna::domain_to_ascii_cow(s.as_bytes(), idna::AsciiDenyList::STD3)
                .map_err(|_| DomainError::Idna)?
                .into_owned()
        };
        // UTS 46 maps some characters to a dot (e.g. U+3002), so the trailing-dot rule applies again.
        let ascii = ascii.strip_suffix('.').unwrap_or(&ascii).to_string();
        check_ldh(&ascii)?;
        if has_a_label && !a_labels_round_trip(&ascii) {
            return Err(DomainError::Idna);
        }
        Ok(Domain(ascii))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Why this name may be a look-alike of another, if it may: a label that mixes Latin, Cyrillic
    /// and Greek letters (`bіts.no` with a Cyrillic `і`), or one made only of Cyrillic or Greek letters
    /// that look Latin (`аррӏе.no`). Such a name is valid and is kept, with a warning.
    pub fn lookalike(&self) -> Option<String> {
        let unicode = self.unicode()?;
        for label in unicode.split('.') {
            let mut scripts = Vec::new();
            for c in label.chars() {
                if let Some(s) = script(c) {
                    if !scripts.contains(&s) {
                        scripts.push(s);
                    }
                }
            }
            if scripts.len() > 1 {
                return Some(format!(
                    "(`{}`) mixes {} letters in one label, as a look-alike of another name would",
                    crate::sanitize::for_terminal(&unicode),
                    scripts.join(" and ")
                ));
            }
            if scripts.first().is_some_and(|s| *s != "Latin")
                && label
                    .chars()
                    .all(|c| !c.is_alphabetic() || LATIN_LOOKING.contains(c))
            {
                return Some(format!(
                    "(`{}`) is written only with {} letters that look like Latin ones",
                    crate::sanitize::for_terminal(&unicode),
                    scripts[0]
                ));
            }
        }
        None
    }

    /// The Unicode form of an A-label domain, for display; `None` when it has no A-labels.
    pub fn unicode(&self) -> Option<String> {
        if !self.0.split('.').any(|l| l.starts_with("xn--")) {
            return None;
        }
        let (u, result) = idna::domain_to_unicode(&self.0);
        result.ok().map(|_| u)
    }

    /// The UTF-8 form a mail server compares when mail is sent with SMTPUTF8 (Postfix looks up
    /// `blåbær.no`, not `xn--blbr-roah.no`): the Unicode form, lower case and NFC, that converts back to
    /// exactly this domain. `None` for an all-ASCII domain, and for one whose Unicode form does not
    /// convert back or holds a character outputs refuse (`sanitize::is_dangerous`).
    pub fn utf8_key(&self) -> Option<String> {
        let u = self.unicode()?;
        // UTS 46 maps to lower case and NFC, so a form that converts back to this A-label is both.
        let round_trip = Domain::parse(&u, DomainRules::default()).ok();
        let ok = !u.is_ascii()
            && u.to_lowercase() == u
            && round_trip.as_ref() == Some(self)
            && !u.chars().any(crate::sanitize::is_dangerous);
        ok.then_some(u)
    }
}

/// Cyrillic and Greek letters that are look-alikes of Latin ones.
const LATIN_LOOKING: &str = "аеорсухіјѕԁһӏԛԝаеосрхуАВЕКМНОРСТХІЈЅαβεικνορτυχΑΒΕΗΙΚΜΝΟΡΤΥΧ";

/// The script of a letter, for the scripts whose letters are confused with each other.
fn script(c: char) -> Option<&'static str> {
    match c {
        'a'..='z' | 'A'..='Z' | '\u{00C0}'..='\u{024F}' | '\u{1E00}'..='\u{1EFF}' => Some("Latin"),
        '\u{0370}'..='\u{03FF}' | '\u{1F00}'..='\u{1FFF}' => Some("Greek"),
        '\u{0400}'..='\u{052F}' | '\u{2DE0}'..='\u{2DFF}' | '\u{A640}'..='\u{A69F}' => {
            Some("Cyrillic")
        }
        _ => None,
    }
}

/// Every A-label decodes, and encodes back to itself (no other spelling of the same name).
fn a_labels_round_trip(ascii: &str) -> bool {
    let (unicode, result) = idna::domain_to_unicode(ascii);
    result.is_ok()
        && idna::domain_to_ascii_cow(unicode.as_bytes(), idna::AsciiDenyList::STD3)
            .is_ok_and(|back| back == ascii)
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// The host-name rules of RFC 1123 applied to the A-label form.
fn check_ldh(s: &str) -> Result<(), DomainError> {
    if s.is_empty() {
        return Err(DomainError::Empty);
    }
    if s.len() > 253 {
        return Err(DomainError::TooLong);
    }
    let mut count = 0;
    let mut last = "";
    for label in s.split('.') {
        count += 1;
        last = label;
        if label.is_empty() {
            return Err(DomainError::EmptyLabel);
        }
        if label.len() > 63 {
            return Err(DomainError::LabelTooLong);
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(DomainError::BadCharacter);
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(DomainError::Hyphen);
        }
    }
    if count < 2 {
        return Err(DomainError::SingleLabel);
    }
    if last.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DomainError::Numeric);
    }
    Ok(())
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Domain {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl From<Domain> for String {
    fn from(d: Domain) -> String {
        d.0
    }
}

impl TryFrom<String> for Domain {
    type Error = String;
    /// Used when reading our own files (state): the value must already be in normal form.
    fn try_from(s: String) -> Result<Domain, String> {
        if is_plain_normal(&s) {
            return Ok(Domain(s));
        }
        match Domain::parse(&s, DomainRules::default()) {
            Ok(d) if d.0 == s => Ok(d),
            Ok(d) => Err(format!(
                "domain `{s}` is not in normal form (expected `{d}`)"
            )),
            Err(e) => Err(format!("domain `{}` {e}", crate::sanitize::excerpt(&s, 80))),
        }
    }
}

/// Reads a domain as a person writes it in the configuration (any case, IDN, trailing dot), validated
/// once here so that nothing downstream parses it again. For `#[serde(deserialize_with = …)]`.
pub fn from_config<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Domain, D::Error> {
    let s = String::deserialize(d)?;
    Domain::parse(&s, DomainRules::default()).map_err(|e| {
        serde::de::Error::custom(format!("domain `{}` {e}", crate::sanitize::excerpt(&s, 80)))
    })
}

/// [`from_config`] for a list of domains.
pub fn list_from_config<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Domain>, D::Error> {
    #[derive(Deserialize)]
    struct One(#[serde(deserialize_with = "from_config")] Domain);
    Ok(Vec::<One>::deserialize(d)?
        .into_iter()
        .map(|o| o.0)
        .collect())
}

/// Whether a string is exactly what [`Domain::parse`] produces; used by tests and by output checks.
pub fn is_normalised(s: &str) -> bool {
    check_ldh(s).is_ok()
}

/// A normalised name with no A-label (`xn--…`, which must be decoded to be checked).
fn is_plain_normal(s: &str) -> bool {
    check_ldh(s).is_ok() && !s.split('.').any(|l| l.starts_with("xn--"))
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The fast path gives what the full parse gives, for names in normal form and near it.
        #[test]
        fn the_fast_path_parses_as_the_full_parse(
            raw in "(xn--|[a-z0-9]|[A-Z]|-|\\.|\\.\\.|å| |@|\\*\\.|_){1,12}",
            wildcards: bool,
        ) {
            let rules = DomainRules { allow_wildcards: wildcards };
            let slow = Domain::parse_slow(&raw, rules);
            proptest::prop_assert_eq!(Domain::parse(&raw, rules), slow.clone());
            let read = Domain::try_from(raw.clone()).ok();
            proptest::prop_assert_eq!(read, slow.ok().filter(|d| d.as_str() == raw));
        }
    }

    fn ok(raw: &str) -> String {
        Domain::parse(raw, DomainRules::default())
            .unwrap()
            .to_string()
    }
    fn err(raw: &str) -> DomainError {
        Domain::parse(raw, DomainRules::default()).unwrap_err()
    }

    #[test]
    fn normalises_case_dots_prefixes_and_space() {
        assert_eq!(ok("  Bits.NO. "), "bits.no");
        assert_eq!(ok("@fno.no"), "fno.no");
        assert_eq!(ok("MAILTO:post.example.no"), "post.example.no");
        assert_eq!(ok("\u{FEFF}dnb.no"), "dnb.no");
    }

    #[test]
    fn idn_becomes_a_label() {
        assert_eq!(ok("bücher.no"), "xn--bcher-kva.no");
        assert_eq!(ok("SØR-bank.no"), "xn--sr-bank-q1a.no");
        assert_eq!(ok("xn--bcher-kva.no"), "xn--bcher-kva.no");
        let d = Domain::parse("blåbær.no", DomainRules::default()).unwrap();
        assert_eq!(d.unicode().as_deref(), Some("blåbær.no"));
    }

    #[test]
    fn utf8_key_is_the_lower_case_form_that_converts_back() {
        let key = |raw: &str| {
            Domain::parse(raw, DomainRules::default())
                .unwrap()
                .utf8_key()
        };
        assert_eq!(key("BLÅBÆR.no").as_deref(), Some("blåbær.no"));
        assert_eq!(key("xn--blbr-roah.no").as_deref(), Some("blåbær.no"));
        // NFD input (a + combining ring) is stored as the NFC A-label; its key is NFC.
        assert_eq!(key("bla\u{30a}bær.no").as_deref(), Some("blåbær.no"));
        assert_eq!(key("bits.no"), None);
    }

    #[test]
    fn refuses_what_is_not_a_host_name() {
        assert_eq!(err(""), DomainError::Empty);
        assert_eq!(err("."), DomainError::Empty);
        assert_eq!(err("localhost"), DomainError::SingleLabel);
        assert_eq!(err("a..no"), DomainError::EmptyLabel);
        assert_eq!(err("-bad.no"), DomainError::Hyphen);
        assert_eq!(err("bad-.no"), DomainError::Hyphen);
        assert_eq!(err("under_score.no"), DomainError::BadCharacter);
        assert_eq!(err("a b.no"), DomainError::BadCharacter);
        assert_eq!(err("x.no\nrelay.no"), DomainError::BadCharacter);
        assert_eq!(err("x.no verify"), DomainError::BadCharacter);
        assert_eq!(err("${run{id}}.no"), DomainError::BadCharacter);
        assert_eq!(err("etc/../passwd.no"), DomainError::BadCharacter);
        assert!(Domain::parse(
            "../../etc/passwd",
            DomainRules {
                allow_wildcards: true
            }
        )
        .is_err());
        assert_eq!(err("192.168.0.1"), DomainError::Numeric);
        assert_eq!(err("post@bank.no"), DomainError::Address);
        assert_eq!(err("*.bank.no"), DomainError::Wildcard);
        assert_eq!(
            err(&format!("{}.no", "a".repeat(64))),
            DomainError::LabelTooLong
        );
        let long = format!("{}.no", vec!["a".repeat(60); 5].join("."));
        assert_eq!(err(&long), DomainError::TooLong);
    }

    #[test]
    fn invalid_a_labels_are_refused() {
        assert_eq!(err("xn--a.no"), DomainError::Idna);
        assert_eq!(err("XN--A.no"), DomainError::Idna);
        assert_eq!(err("xn--.no"), DomainError::Idna);
        assert_eq!(ok("XN--BCHER-KVA.NO"), "xn--bcher-kva.no");
        assert_eq!(ok("xn--sr-bank-q1a.no"), "xn--sr-bank-q1a.no");
    }

    #[test]
    fn mixed_script_look_alikes_are_flagged() {
        let d = |s: &str| Domain::parse(s, DomainRules::default()).unwrap();
        let w = d("bіts.no")
            .lookalike()
            .expect("Cyrillic і among Latin letters");
        assert!(w.contains("mixes Latin and Cyrillic"), "{w}");
        assert!(d("аррӏе.no")
            .lookalike()
            .unwrap()
            .contains("only with Cyrillic"));
        assert_eq!(d("blåbær.no").lookalike(), None);
        assert_eq!(d("bits.no").lookalike(), None);
        assert_eq!(d("пример.рф").lookalike(), None, "a real Cyrillic name");
    }

    #[test]
    fn wildcards_only_when_allowed() {
        let rules = DomainRules {
            allow_wildcards: true,
        };
        assert_eq!(
            Domain::parse("*.Bank.no", rules).unwrap().as_str(),
            "bank.no"
        );
        assert_eq!(
            Domain::parse(".bank.no", rules).unwrap().as_str(),
            "bank.no"
        );
        assert_eq!(err(".bank.no"), DomainError::Wildcard);
    }

    #[test]
    fn deserialising_requires_normal_form() {
        assert!(serde_json::from_str::<Domain>("\"bits.no\"").is_ok());
        assert!(serde_json::from_str::<Domain>("\"Bits.no\"").is_err());
        assert!(serde_json::from_str::<Domain>("\"bits.no\\nx\"").is_err());
    }
}
