//! Each target's line grammar, written independently of the renderer's own checks: what a data line of
//! each output may look like, and which domains the output names.

/// A host name as mail servers compare it: lower-case LDH labels, 2+ labels, ≤ 253 characters.
pub fn is_domain(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').count() >= 2
        && s.split('.').all(|l| {
            (1..=63).contains(&l.len())
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

/// A Postfix table key's domain: an A-label domain, or the UTF-8 form Postfix looks up for SMTPUTF8
/// mail, which must convert back to an A-label domain (returned).
fn postfix_key_domain(key: &str) -> Option<String> {
    let bare = key.strip_prefix('.').unwrap_or(key);
    if is_domain(bare) {
        return Some(bare.to_string());
    }
    let d = bits_tls::domain::Domain::parse(bare, Default::default()).ok()?;
    (d.utf8_key().as_deref() == Some(bare)).then(|| d.to_string())
}

/// Whether a target's output carries list data at all (the Exim configuration pieces do not: they read
/// the exim-domains file).
pub fn names_domains(target: &str) -> bool {
    !matches!(
        target,
        "exim-config" | "exim-main" | "exim-acl" | "exim-router" | "exim-transport"
    )
}

pub fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

/// The domains an output names in its data lines, and a failure for any line outside the grammar.
pub fn grammar(target: &str, out: &str, baseline: &str) -> Result<Vec<String>, String> {
    for bad in [
        '\r', '\u{0b}', '\u{0c}', '\u{85}', '\u{2028}', '\u{2029}', '\0', '\u{1b}',
    ] {
        if out.contains(bad) {
            return Err(format!(
                "{target}: line-breaking or control character {bad:?}"
            ));
        }
    }
    let base_lines: std::collections::HashSet<&str> = baseline.lines().collect();
    let mut domains = Vec::new();
    for line in out
        .lines()
        .filter(|l| !l.trim().is_empty() && !is_comment(l))
    {
        let fail = || Err(format!("{target}: line outside the grammar: {line:?}"));
        match target {
            "postfix-policy" => {
                let mut parts = line.split(' ');
                let key = parts.next().unwrap();
                let level = parts.next().unwrap_or("");
                let attrs_ok = parts.all(|a| {
                    a.split_once('=').is_some_and(|(k, v)| {
                        (k == "protocols" || k == "match") && !v.is_empty() && !v.contains(',')
                    })
                });
                let Some(domain) = postfix_key_domain(key) else {
                    return fail();
                };
                if !["encrypt", "verify", "secure", "dane-only"].contains(&level) || !attrs_ok {
                    return fail();
                }
                domains.push(domain);
            }
            "postfix-senders" => match line.split_once(' ') {
                Some((key, "reject_plaintext_session")) => match postfix_key_domain(key) {
                    Some(d) => domains.push(d),
                    None => return fail(),
                },
                _ => return fail(),
            },
            "exim-domains" => {
                let bare = line.strip_prefix("*.").unwrap_or(line);
                if !is_domain(bare) {
                    return fail();
                }
                domains.push(bare.to_string());
            }
            // List data appears only as single-quoted domain entries on lines of their own; every other
            // line is one the baseline rendering has too.
            _ => {
                let t = line.trim();
                if let Some(d) = t.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')) {
                    let bare = d.strip_prefix("*.").unwrap_or(d);
                    if is_domain(bare) {
                        domains.push(bare.to_string());
                        continue;
                    }
                }
                if !base_lines.contains(line) {
                    return fail();
                }
            }
        }
    }
    domains.sort();
    domains.dedup();
    Ok(domains)
}
