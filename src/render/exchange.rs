//! Exchange Server and Exchange Online: address spaces, connector splitting, PowerShell quoting, and
//! the check the generated scripts must pass.

use super::options::RenderOptions;
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct ExchangeDerived {
    /// Address spaces: `domain`, or `*.domain` (the domain and its subdomains) with `subdomains`.
    pub address_spaces: Vec<String>,
    /// The script's `-Topology` default: `Detect` or `Direct`.
    pub topology: &'static str,
}

#[derive(Debug, Serialize)]
pub struct Connector {
    pub name: String,
    pub domains: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct ExchangeOnlineDerived {
    /// Outbound connectors with at most `max_domains_per_connector` recipient domains each.
    pub connectors: Vec<Connector>,
    /// Inbound connectors (only when `inbound` is on), split at the same size.
    pub inbound_connectors: Vec<Connector>,
}

/// A PowerShell single-quoted literal. Inside one, only quote characters are special; PowerShell treats
/// the typographic single quotes U+2018–U+201B as quotes too, so each is doubled like `'`.
pub fn ps_quote(s: &str) -> String {
    let mut out = String::from("'");
    for c in s.chars() {
        if crate::sanitize::is_dangerous(c) {
            continue;
        }
        if matches!(c, '\'' | '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}') {
            out.push(c);
        }
        out.push(c);
    }
    out.push('\'');
    out
}

/// Exchange Server address spaces: `*.x` covers the domain and its subdomains.
pub fn address_spaces(domains: &[String], subdomains: bool) -> Vec<String> {
    domains
        .iter()
        .map(|d| {
            if subdomains {
                format!("*.{d}")
            } else {
                d.clone()
            }
        })
        .collect()
}

/// Exchange Online recipient domains, split into connectors of at most `max_domains_per_connector`.
/// One connector keeps the plain name; several are numbered `Name 1`, `Name 2`, …
pub fn online_connectors(domains: &[String], opts: &RenderOptions) -> ExchangeOnlineDerived {
    let o = &opts.exchange_online;
    // With subdomains, both forms are listed: whether EXO's `*.x` includes `x` itself is unconfirmed.
    let entries: Vec<String> = domains
        .iter()
        .flat_map(|d| {
            let mut v = vec![d.clone()];
            if opts.subdomains {
                v.push(format!("*.{d}"));
            }
            v
        })
        .collect();
    let split = |name: &str| -> Vec<Connector> {
        let chunks: Vec<&[String]> = entries.chunks(o.max_domains_per_connector.max(1)).collect();
        match chunks.len() {
            0 => vec![Connector {
                name: name.to_string(),
                domains: Vec::new(),
            }],
            1 => vec![Connector {
                name: name.to_string(),
                domains: chunks[0].to_vec(),
            }],
            _ => chunks
                .iter()
                .enumerate()
                .map(|(i, c)| Connector {
                    name: format!("{name} {}", i + 1),
                    domains: c.to_vec(),
                })
                .collect(),
        }
    };
    ExchangeOnlineDerived {
        connectors: split(&o.connector_name),
        inbound_connectors: if o.inbound {
            split(&o.inbound_connector_name)
        } else {
            Vec::new()
        },
    }
}

/// Outside comments the script is plain ASCII (domains are A-labels, names are validated), no line opens
/// a block comment or a here-string that could swallow what follows, and every quoted list entry is a
/// valid domain or address space.
pub fn check_script(text: &str) -> Result<(), (usize, String)> {
    let mut in_help = false;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let t = line.trim();
        // The one block comment allowed is the comment-based help at the top: `<#` and `#>` on lines of
        // their own.
        if t == "<#" {
            in_help = true;
            continue;
        }
        if t == "#>" {
            in_help = false;
            continue;
        }
        if in_help || t.starts_with('#') {
            if t.contains("#>") || t.contains("<#") {
                return Err((n, "block-comment marker inside a comment".into()));
            }
            continue;
        }
        if !line.is_ascii() {
            return Err((n, "non-ASCII text outside a comment".into()));
        }
        if t.contains("<#") || t.ends_with("@'") || t.ends_with("@\"") || t.ends_with('`') {
            return Err((
                n,
                "a block comment, here-string or line continuation".into(),
            ));
        }
        if let Some(inner) = t.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')) {
            let bare = inner.strip_prefix("*.").unwrap_or(inner);
            if !inner.contains(' ') && inner.contains('.') && !crate::domain::is_normalised(bare) {
                return Err((n, format!("`{inner}` is not a domain")));
            }
        }
    }
    if in_help {
        return Err((text.lines().count(), "unterminated comment block".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(ps_quote("bits.no"), "'bits.no'");
        assert_eq!(ps_quote("a'b\u{2019}c"), "'a''b\u{2019}\u{2019}c'");
        assert_eq!(ps_quote("x\ny"), "'xy'");
    }

    #[test]
    fn splitting() {
        let mut o = RenderOptions::default();
        o.exchange_online.max_domains_per_connector = 2;
        let d: Vec<String> = ["a.no", "b.no", "c.no"].map(String::from).to_vec();
        let c = online_connectors(&d, &o).connectors;
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].name, "Bits forced TLS 1");
        assert_eq!(c[1].domains, ["c.no"]);
        o.exchange_online.max_domains_per_connector = 3;
        assert_eq!(
            online_connectors(&d, &o).connectors[0].name,
            "Bits forced TLS"
        );
    }

    #[test]
    fn script_check() {
        assert_eq!(
            check_script("<#\n.SYNOPSIS\n  Ø\n#>\n$x = @(\n    'bits.no'\n)\n"),
            Ok(())
        );
        assert!(check_script("$x = @(\n    'bits_no.x'\n)\n").is_err());
        assert!(check_script("$x = 'Ø'\n").is_err());
        assert!(check_script("# a #> b\n").is_err());
        assert!(check_script("<#\n").is_err());
    }
}
