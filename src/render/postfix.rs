//! Postfix: the `smtp_tls_policy_maps` table (outbound) and the `check_sender_access` table for
//! requirement 5.2.4 (inbound), and the line grammar both must keep.

use super::options::{PostfixOptions, PostfixProtocols, RenderOptions};
use foldhash::HashSet;
use serde::Serialize;

/// What the Postfix templates see beyond the options (`postfix.*` in the template context).
#[derive(Debug, Serialize)]
pub struct PostfixDerived {
    /// The right-hand side of every policy entry, e.g. `verify protocols=!SSLv2:!SSLv3:!TLSv1:!TLSv1.1`.
    pub policy_value: String,
    /// The value for domains with an `[[override]]`: domain → value.
    pub overrides: std::collections::BTreeMap<String, String>,
    /// The UTF-8 key of each IDN domain (lower case, NFC), which Postfix looks up for SMTPUTF8 mail:
    /// A-label → U-label.
    pub utf8_keys: std::collections::BTreeMap<String, String>,
    /// The policy table key for `relay` (`[host]:port`), when one is configured.
    pub relay_key: Option<String>,
}

impl PostfixDerived {
    pub fn new<'d>(
        opts: &RenderOptions,
        domains: impl Iterator<Item = &'d crate::domain::Domain>,
    ) -> PostfixDerived {
        PostfixDerived {
            policy_value: policy_value(&opts.postfix),
            overrides: override_values(opts),
            utf8_keys: utf8_keys(domains),
            relay_key: opts
                .postfix
                .relay
                .as_deref()
                .and_then(super::options::relay_key),
        }
    }
}

/// `verify protocols=!SSLv2:!SSLv3:!TLSv1:!TLSv1.1` (plus `match=` when set). Attribute values may not
/// contain spaces or commas (postconf(5)); options are validated to keep that true.
pub fn policy_value(o: &PostfixOptions) -> String {
    let mut v = format!("{} protocols={}", o.level.as_str(), o.protocols.value());
    if let Some(m) = &o.match_ {
        v.push_str(" match=");
        v.push_str(m);
    }
    v
}

/// Per-domain values where an override applies: domain → policy value.
pub fn override_values(opts: &RenderOptions) -> std::collections::BTreeMap<String, String> {
    opts.overrides
        .iter()
        .map(|o| {
            (
                o.domain.to_string(),
                policy_value(&o.postfix(&opts.postfix)),
            )
        })
        .collect()
}

/// What a key names: the domain it stands for (A-label), and whether it is the `.domain` form.
/// A-label keys, their `.domain` forms, U-label keys (see below) and relay next hops (`[host]:port`).
fn key_domain(key: &str) -> Option<(std::borrow::Cow<'_, str>, bool)> {
    let (dot, bare) = match key.strip_prefix('.') {
        Some(rest) => (true, rest),
        None => (false, key),
    };
    if crate::domain::is_normalised(bare) {
        return Some((bare.into(), dot));
    }
    // A U-label key: exactly the UTF-8 form of an A-label domain (Postfix looks it up for SMTPUTF8 mail).
    // Whether that A-label is in the same output is checked by the caller.
    if !bare.is_ascii() {
        let d = crate::domain::Domain::parse(bare, crate::domain::DomainRules::default()).ok()?;
        if d.utf8_key().as_deref() == Some(bare) {
            return Some((d.as_str().to_string().into(), dot));
        }
    }
    None
}

/// Whether a `protocols=` value keeps TLS 1.0, 1.1 and SSL out, written in the configured syntax:
/// `>=TLSv1.2` (or `>=TLSv1.3`) for `modern`; exclusions (`!SSLv2:!SSLv3:!TLSv1:!TLSv1.1`) or inclusions of
/// TLSv1.2/TLSv1.3 only for `legacy`, which Postfix before 3.6 also reads.
fn floor_problem(value: &str, syntax: PostfixProtocols) -> Option<String> {
    const ALL: [&str; 6] = ["SSLv2", "SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"];
    const OLD: [&str; 4] = ["SSLv2", "SSLv3", "TLSv1", "TLSv1.1"];
    if let Some(min) = value.strip_prefix(">=") {
        return match syntax {
            PostfixProtocols::Modern if ["TLSv1.2", "TLSv1.3"].contains(&min) => None,
            PostfixProtocols::Modern => Some(format!("`protocols={value}` allows TLS below 1.2")),
            PostfixProtocols::Legacy => Some(format!(
                "`protocols={value}` needs Postfix 3.6; the configured syntax is legacy (`!SSLv2:!SSLv3:!TLSv1:!TLSv1.1`)"
            )),
        };
    }
    if syntax == PostfixProtocols::Modern {
        return Some(format!(
            "`protocols={value}` is not the configured modern syntax (`>=TLSv1.2`)"
        ));
    }
    let parts: Vec<&str> = value.split(':').collect();
    if parts
        .iter()
        .any(|p| !ALL.contains(&p.strip_prefix('!').unwrap_or(p)))
    {
        return Some(format!("`protocols={value}` names an unknown protocol"));
    }
    let included: Vec<&str> = parts
        .iter()
        .copied()
        .filter(|p| !p.starts_with('!'))
        .collect();
    let excluded: Vec<&str> = parts.iter().filter_map(|p| p.strip_prefix('!')).collect();
    let floor = if included.is_empty() {
        OLD.iter().all(|o| excluded.contains(o))
            && !(excluded.contains(&"TLSv1.2") && excluded.contains(&"TLSv1.3"))
    } else {
        included.iter().all(|p| ["TLSv1.2", "TLSv1.3"].contains(p))
            && included.iter().any(|p| !excluded.contains(p))
    };
    (!floor).then(|| format!("`protocols={value}` does not keep TLS below 1.2 out"))
}

/// Why a policy value does not force verified TLS 1.2+, or `None` when it does. `encrypt` passes only
/// where an `[[override]]` (which has a reason) asks for it.
fn value_problem(value: &str, opts: &RenderOptions, override_: Option<&String>) -> Option<String> {
    let mut parts = value.split(' ');
    let level = parts.next().unwrap_or("");
    let encrypt_allowed = override_.is_some_and(|o| o.starts_with("encrypt "));
    match level {
        "verify" | "secure" | "dane-only" => {}
        "encrypt" if encrypt_allowed => {}
        "encrypt" => {
            return Some(
                "level `encrypt` checks no certificate and does not meet the scheme; only an [[override]] with a reason may ask for it"
                    .into(),
            )
        }
        other => return Some(format!("`{other}` is not a level that forces verified TLS")),
    }
    let mut protocols = None;
    let mut seen_match = false;
    for attr in parts {
        match attr.split_once('=') {
            Some(("protocols", v)) if protocols.is_none() && !v.is_empty() && !v.contains(',') => {
                protocols = Some(v)
            }
            Some(("match", v))
                if !seen_match
                    && !v.is_empty()
                    && !v.contains(',')
                    && matches!(level, "verify" | "secure") =>
            {
                seen_match = true
            }
            _ => return Some(format!("unexpected attribute `{attr}`")),
        }
    }
    match protocols {
        None => Some("no `protocols=` TLS 1.2 floor".into()),
        Some(v) => floor_problem(v, opts.postfix.protocols),
    }
}

/// Every data line is `key<space>value` with a valid key, no leading white space (which Postfix reads as
/// a continuation of the previous line) and no duplicate key. The check is semantic: every value forces
/// verified TLS (`verify`, `secure`, `dane-only`, or `encrypt` where an `[[override]]` asks for it) with a
/// TLS 1.2 floor in the configured syntax; a U-label key must be the UTF-8 form of an A-label key of the
/// same output, with the same value.
pub fn check_policy(text: &str, opts: &RenderOptions) -> Result<(), (usize, String)> {
    let overrides = override_values(opts);
    let relay = opts
        .postfix
        .relay
        .as_deref()
        .and_then(super::options::relay_key);
    let mut keys = Keys::new(text);
    let mut utf8 = Vec::new();
    // The value last found good for a key without an override: nearly every line has the same one.
    let mut good: Option<&str> = None;
    for (n, line) in super::data_lines(text) {
        let (key, value) = split_entry(line).ok_or((n, "not `key value`".to_string()))?;
        let domain = if relay.as_deref() == Some(key) {
            None
        } else {
            let (domain, _) = key_domain(key).ok_or((n, format!("`{key}` is not a domain key")))?;
            Some(domain)
        };
        let override_ = domain.as_deref().and_then(|d| overrides.get(d));
        if override_.is_some() || good != Some(value) {
            if let Some(problem) = value_problem(value, opts, override_) {
                return Err((n, format!("`{key} {value}`: {problem}")));
            }
            if override_.is_none() {
                good = Some(value);
            }
        }
        if !keys.insert(key) {
            return Err((
                n,
                format!("duplicate key `{key}` (postmap keeps only the first)"),
            ));
        }
        if let Some(d) = domain.filter(|_| !key.is_ascii()) {
            let a_key = if key.starts_with('.') {
                format!(".{d}")
            } else {
                d.into_owned()
            };
            utf8.push((n, key, a_key, value));
        }
    }
    let a_values = keys.values_of(utf8.iter().map(|u| u.2.as_str()));
    for (n, key, a_key, value) in &utf8 {
        let n = *n;
        match a_values.get(a_key.as_str()) {
            Some(v) if v == value => {}
            Some(v) => {
                return Err((
                    n,
                    format!("`{key}` has `{value}`, but its A-label `{a_key}` has `{v}`"),
                ))
            }
            None => {
                return Err((
                    n,
                    format!("`{key}` is not the UTF-8 form of a domain in this table"),
                ))
            }
        }
    }
    Ok(())
}

/// The keys of a table met so far, to find a duplicate: their 64-bit hashes in a set a quarter the size
/// of one holding the keys (100,000 participants make ~230,000 keys). A repeated hash is confirmed
/// against the entries above it in the text itself, and values are looked up there: nothing per key is
/// held but its hash.
struct Keys<'t> {
    hashes: HashSet<u64>,
    hasher: foldhash::fast::RandomState,
    text: &'t str,
}

impl<'t> Keys<'t> {
    fn new(text: &'t str) -> Keys<'t> {
        let mut hashes = HashSet::default();
        hashes.reserve(text.len() / 64);
        Keys {
            hashes,
            hasher: Default::default(),
            text,
        }
    }

    /// The entries of the text's first `end` bytes.
    fn entries(&self, end: usize) -> impl Iterator<Item = (&'t str, &'t str)> {
        super::data_lines(&self.text[..end]).filter_map(|(_, l)| split_entry(l))
    }

    /// Where `key` starts in the text, when it is a slice of it (else the text's end).
    fn offset(&self, key: &str) -> usize {
        (key.as_ptr() as usize)
            .checked_sub(self.text.as_ptr() as usize)
            .filter(|n| *n <= self.text.len() && self.text.is_char_boundary(*n))
            .unwrap_or(self.text.len())
    }

    /// Adds `key`, a key of a line of the text; false when a line above has it already.
    fn insert(&mut self, key: &'t str) -> bool {
        use std::hash::BuildHasher;
        // Every line above the key's own was read as an entry already.
        self.hashes.insert(self.hasher.hash_one(key))
            || !self.entries(self.offset(key)).any(|(k, _)| k == key)
    }

    /// The values of those `wanted` keys that are in the text (the first entry of each).
    fn values_of<'w>(
        &self,
        wanted: impl Iterator<Item = &'w str>,
    ) -> foldhash::HashMap<&'t str, &'t str> {
        let wanted: HashSet<&str> = wanted.collect();
        if wanted.is_empty() {
            return Default::default();
        }
        let mut found = foldhash::HashMap::default();
        for (k, v) in self.entries(self.text.len()) {
            if wanted.contains(k) {
                found.entry(k).or_insert(v);
            }
        }
        found
    }
}

/// `domain reject_plaintext_session`, one per line; keys as in the policy table (A-label, `.domain`,
/// and the U-label of an A-label key of the same output).
pub fn check_senders(text: &str) -> Result<(), (usize, String)> {
    let mut seen = Keys::new(text);
    let mut utf8 = Vec::new();
    for (n, line) in super::data_lines(text) {
        let (key, value) = split_entry(line).ok_or((n, "not `key value`".to_string()))?;
        let (domain, dot) = key_domain(key).ok_or((n, format!("`{key}` is not a domain")))?;
        if value != "reject_plaintext_session" {
            return Err((n, format!("unexpected action `{value}`")));
        }
        if !seen.insert(key) {
            return Err((n, format!("duplicate key `{key}`")));
        }
        if !key.is_ascii() {
            utf8.push((
                n,
                key,
                if dot {
                    format!(".{domain}")
                } else {
                    domain.into_owned()
                },
            ));
        }
    }
    let a_values = seen.values_of(utf8.iter().map(|u| u.2.as_str()));
    for (n, key, a_key) in &utf8 {
        if !a_values.contains_key(a_key.as_str()) {
            return Err((
                *n,
                format!("`{key}` is not the UTF-8 form of a domain in this table"),
            ));
        }
    }
    Ok(())
}

/// Warnings for diff, sync and check, which run on the mail server: `encrypt` overrides, and a CA file
/// named in the policy header that this machine does not have (Postfix then verifies no certificate).
pub fn setup_warnings<'a>(
    opts: &RenderOptions,
    targets: impl Iterator<Item = &'a super::Target>,
) -> Vec<crate::list::Warning> {
    let mut out: Vec<crate::list::Warning> = opts
        .warnings()
        .into_iter()
        .map(crate::list::Warning::general)
        .collect();
    let ca = &opts.postfix.ca_file;
    let mut targets = targets;
    if targets.any(|t| *t == super::Target::BuiltIn(super::BuiltIn::PostfixPolicy))
        && !std::path::Path::new(ca).is_file()
    {
        out.push(crate::list::Warning::general(format!(
            "the CA file `{ca}` in the postfix-policy header (smtp_tls_CAfile) does not exist here: a missing smtp_tls_CAfile makes Postfix verify no certificate and give up TLS; set postfix.ca_file (--postfix-ca-file) to this system's bundle (RHEL: /etc/pki/tls/certs/ca-bundle.crt)"
        )));
    }
    out
}

/// The UTF-8 keys for a list's domains: A-label → U-label, for domains that have one.
pub fn utf8_keys<'a>(
    domains: impl Iterator<Item = &'a crate::domain::Domain>,
) -> std::collections::BTreeMap<String, String> {
    domains
        .filter_map(|d| d.utf8_key().map(|u| (d.to_string(), u)))
        .collect()
}

fn split_entry(line: &str) -> Option<(&str, &str)> {
    if line.starts_with(char::is_whitespace) {
        return None;
    }
    // Space and tab are ASCII: the positions found in the bytes are character boundaries.
    let blank = |b: &u8| *b == b' ' || *b == b'\t';
    let at = line.as_bytes().iter().position(blank)?;
    let rest = &line[at..];
    let value = &rest[rest
        .as_bytes()
        .iter()
        .position(|b| !blank(b))
        .unwrap_or(rest.len())..];
    (!value.is_empty() && value == value.trim_end()).then_some((&line[..at], value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::options::DomainOverride;

    const LEGACY: &str = "verify protocols=!SSLv2:!SSLv3:!TLSv1:!TLSv1.1";

    /// A hash that repeats is a duplicate only when the key does.
    #[test]
    fn a_repeated_hash_alone_is_no_duplicate() {
        use std::hash::BuildHasher;
        let text = "b.no verify\na.no verify\nb.no dane-only\n";
        let key = |n: usize| text.lines().nth(n).unwrap().split(' ').next().unwrap();
        let mut keys = Keys::new(text);
        let h = keys.hasher.hash_one("b.no");
        keys.hashes.insert(h);
        assert!(keys.insert(key(0)), "only the hash was there");
        assert!(keys.insert(key(1)));
        assert!(!keys.insert(key(2)), "now the key is");
        let found = keys.values_of(["b.no", "c.no"].into_iter());
        assert_eq!(
            found.get("b.no"),
            Some(&"verify"),
            "the first entry's value"
        );
        assert_eq!(found.get("c.no"), None);
    }

    proptest::proptest! {
        /// Splitting on bytes gives what splitting on characters gave.
        #[test]
        fn entries_split_as_before(line in "[a-zæ. \\t\u{a0}\u{2003}=]{0,16}") {
            let before = if line.starts_with(char::is_whitespace) {
                None
            } else {
                line.split_once([' ', '\t']).and_then(|(key, rest)| {
                    let value = rest.trim_start_matches([' ', '\t']);
                    (!value.is_empty() && value == value.trim_end()).then_some((key, value))
                })
            };
            proptest::prop_assert_eq!(split_entry(&line), before);
        }
    }

    #[test]
    fn policy_grammar() {
        let o = RenderOptions::default();
        let good = format!("# c\nbits.no {LEGACY}\n.bits.no {LEGACY}\nxn--blbr-roah.no {LEGACY}\nblåbær.no {LEGACY}\n.xn--blbr-roah.no {LEGACY}\n.blåbær.no {LEGACY}\n");
        assert_eq!(check_policy(&good, &o), Ok(()));
        for bad in [
            "bits.no\n".to_string(),
            format!(" bits.no {LEGACY}\n"),
            "bits.no may\n".into(),
            "bits no verify\n".into(),
            "bits.no verify protocols=a,b\n".into(),
            format!("bits.no {LEGACY}\nbits.no {LEGACY}\n"),
            "bits.no encrypt protocols=!SSLv2:!SSLv3:!TLSv1:!TLSv1.1\n".into(),
            // No floor, or a floor that lets TLS 1.1 through, or the other syntax.
            "bits.no verify\n".into(),
            "bits.no verify protocols=!SSLv2:!SSLv3:!TLSv1\n".into(),
            "bits.no verify protocols=>=TLSv1.2\n".into(),
            "bits.no verify protocols=TLSv1.1:TLSv1.2\n".into(),
            "bits.no verify protocols=!SSLv2:!SSLv3:!TLSv1:!TLSv1.1 ciphers=low\n".into(),
            "bits.no dane protocols=!SSLv2:!SSLv3:!TLSv1:!TLSv1.1\n".into(),
            // A U-label alone, one that is not the canonical form, or one with another value.
            format!("blåbær.no {LEGACY}\n"),
            format!("xn--blbr-roah.no {LEGACY}\nBLÅBÆR.no {LEGACY}\n"),
            format!("xn--blbr-roah.no {LEGACY}\nblåbær.no secure protocols=!SSLv2:!SSLv3:!TLSv1:!TLSv1.1\n"),
            format!("bits.no {LEGACY}\nbïts.no {LEGACY}\n"),
        ] {
            assert!(check_policy(&bad, &o).is_err(), "{bad:?}");
        }
        let mut modern = RenderOptions::default();
        modern.postfix.protocols = PostfixProtocols::Modern;
        assert_eq!(
            check_policy("bits.no verify protocols=>=TLSv1.2\n", &modern),
            Ok(())
        );
        assert!(check_policy("bits.no verify protocols=>=TLSv1.1\n", &modern).is_err());
        assert!(check_policy(&format!("bits.no {LEGACY}\n"), &modern).is_err());
    }

    #[test]
    fn encrypt_only_where_an_override_asks() {
        let mut o = RenderOptions::default();
        let line = "bits.no encrypt protocols=!SSLv2:!SSLv3:!TLSv1:!TLSv1.1\n";
        let err = check_policy(line, &o).unwrap_err();
        assert_eq!(err.0, 1);
        assert!(err.1.contains("bits.no encrypt"), "{err:?}");
        o.overrides.push(DomainOverride {
            domain: crate::domain::Domain::parse("bits.no", Default::default()).unwrap(),
            reason: "their MX has a private CA, ticket 7".into(),
            postfix_level: Some(crate::render::options::PostfixLevel::Encrypt),
            postfix_match: None,
        });
        assert_eq!(check_policy(line, &o), Ok(()));
        assert_eq!(o.warnings().len(), 1);
    }

    #[test]
    fn relay_entry() {
        let mut o = RenderOptions::default();
        let line = format!("[smtp.bank.no]:587 {LEGACY}\n");
        assert!(check_policy(&line, &o).is_err());
        o.postfix.relay = Some("[SMTP.bank.no]:587".into());
        assert_eq!(check_policy(&line, &o), Ok(()));
        assert!(check_policy("[smtp.bank.no]:587 verify\n", &o).is_err());
    }

    #[test]
    fn senders_grammar() {
        let good = "x.no reject_plaintext_session\n.x.no reject_plaintext_session\nxn--blbr-roah.no reject_plaintext_session\nblåbær.no reject_plaintext_session\n";
        assert_eq!(check_senders(good), Ok(()));
        assert!(check_senders("x.no OK\n").is_err());
        assert!(check_senders("blåbær.no reject_plaintext_session\n").is_err());
    }
}
