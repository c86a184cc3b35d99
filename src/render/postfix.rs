//! Postfix: the `smtp_tls_policy_maps` table (outbound) and the `check_sender_access` table for
//! requirement 5.2.4 (inbound), and the line grammar both must keep.

use super::options::{PostfixOptions, RenderOptions};
use serde::Serialize;
use std::collections::HashSet;

/// What the Postfix templates see beyond the options (`postfix.*` in the template context).
#[derive(Debug, Serialize)]
pub struct PostfixDerived {
    /// The right-hand side of every policy entry, e.g. `verify protocols=!SSLv2:!SSLv3:!TLSv1:!TLSv1.1`.
    pub policy_value: String,
    /// The value for domains with an `[[override]]`: domain → value.
    pub overrides: std::collections::BTreeMap<String, String>,
}

impl PostfixDerived {
    pub fn new(opts: &RenderOptions) -> PostfixDerived {
        PostfixDerived {
            policy_value: policy_value(&opts.postfix),
            overrides: override_values(opts),
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

/// A table key: a normalised domain, or `.domain` for its subdomains.
fn key_ok(key: &str, allow_dot: bool) -> bool {
    let bare = if allow_dot {
        key.strip_prefix('.').unwrap_or(key)
    } else {
        key
    };
    crate::domain::is_normalised(bare)
}

/// Every data line is `key<space>value` with a valid key, the configured value, no leading white space
/// (which Postfix reads as a continuation of the previous line) and no duplicate key.
pub fn check_policy(text: &str, opts: &RenderOptions) -> Result<(), (usize, String)> {
    let want = policy_value(&opts.postfix);
    let overrides = override_values(opts);
    let level_ok = |v: &str| {
        let level = v.split(' ').next().unwrap_or("");
        ["encrypt", "verify", "secure", "dane-only"].contains(&level)
            && v.split(' ').skip(1).all(|a| {
                a.split_once('=').is_some_and(|(k, val)| {
                    ["protocols", "match"].contains(&k) && !val.is_empty() && !val.contains(',')
                })
            })
    };
    let mut seen = HashSet::new();
    for (n, line) in super::data_lines(text) {
        let (key, value) = split_entry(line).ok_or((n, "not `key value`".to_string()))?;
        if !key_ok(key, true) {
            return Err((n, format!("`{key}` is not a domain key")));
        }
        if !level_ok(value) {
            return Err((n, format!("`{value}` is not a forcing TLS policy")));
        }
        // A template may vary the value per domain, but never below what is configured for it.
        let expected = overrides
            .get(key.strip_prefix('.').unwrap_or(key))
            .unwrap_or(&want);
        if value.starts_with("encrypt") && !expected.starts_with("encrypt") {
            return Err((
                n,
                format!("`{value}` is weaker than the configured `{expected}`"),
            ));
        }
        if !seen.insert(key) {
            return Err((
                n,
                format!("duplicate key `{key}` (postmap keeps only the first)"),
            ));
        }
    }
    Ok(())
}

/// `domain reject_plaintext_session`, one per line.
pub fn check_senders(text: &str) -> Result<(), (usize, String)> {
    let mut seen = HashSet::new();
    for (n, line) in super::data_lines(text) {
        let (key, value) = split_entry(line).ok_or((n, "not `key value`".to_string()))?;
        if !key_ok(key, false) {
            return Err((n, format!("`{key}` is not a domain")));
        }
        if value != "reject_plaintext_session" {
            return Err((n, format!("unexpected action `{value}`")));
        }
        if !seen.insert(key) {
            return Err((n, format!("duplicate key `{key}`")));
        }
    }
    Ok(())
}

fn split_entry(line: &str) -> Option<(&str, &str)> {
    if line.starts_with(char::is_whitespace) {
        return None;
    }
    let (key, rest) = line.split_once([' ', '\t'])?;
    let value = rest.trim_start_matches([' ', '\t']);
    (!value.is_empty() && value == value.trim_end()).then_some((key, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_grammar() {
        let o = RenderOptions::default();
        let good = "# c\nbits.no verify protocols=!SSLv2:!SSLv3:!TLSv1:!TLSv1.1\n.bits.no verify protocols=!SSLv2:!SSLv3:!TLSv1:!TLSv1.1\n";
        assert_eq!(check_policy(good, &o), Ok(()));
        for bad in [
            "bits.no\n",
            " bits.no verify\n",
            "bits.no may\n",
            "bits no verify\n",
            "bits.no verify protocols=a,b\n",
            "bits.no verify\nbits.no verify\n",
            "bits.no encrypt\n",
        ] {
            assert!(check_policy(bad, &o).is_err(), "{bad:?}");
        }
        assert_eq!(check_senders("x.no reject_plaintext_session\n"), Ok(()));
        assert!(check_senders("x.no OK\n").is_err());
    }
}
