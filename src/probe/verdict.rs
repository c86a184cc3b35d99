//! Judging, offline, from what was seen: per (MX host, address) whether each Postfix level would
//! deliver (`encrypt`, `verify`, `secure`, `dane-only`), with named reasons; per domain whether forced
//! TLS at its configured level delivers to every MX (`deliverable`), to some (`degraded`: a latent
//! outage) or to none (`would-defer`). Names are matched the way Postfix matches them: `hostname` (the
//! MX host), `nexthop` (the recipient domain), `dot-nexthop` (its subdomains), `.domain` (any subdomain
//! of it) and exact names; a certificate's `*.x` matches one leftmost label.

use super::dane::{self, Tlsa};
use super::dns::{Dnssec, Lookup, Outcome};
use super::smtp::{Session, Step};
use super::tls::code;
use crate::render::options::PostfixLevel;
use serde::Serialize;

/// Why a level would not deliver to one address (or a whole domain).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    DnsFailure,
    NullMx,
    ConnectFailed,
    /// This host has no route to the address (an IPv6 MX seen from an IPv4-only host): the MTA here
    /// would skip it too, so it is not judged.
    NoRoute,
    TemporarilyRefused,
    SmtpError,
    NoStarttls,
    HandshakeFailed,
    #[serde(rename = "tls<1.2")]
    TlsBelow12,
    UntrustedChain,
    IncompleteChain,
    Expired,
    MxNameMismatch,
    /// `secure`: the certificate does not name the recipient domain (or the `match=` patterns).
    NameMismatch,
    /// DANE: the MX or TLSA records are not DNSSEC-validated.
    DnssecInsecure,
    DnssecBogus,
    NoTlsa,
    TlsaMismatch,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::DnsFailure => "dns-failure",
            Reason::NullMx => "null-mx",
            Reason::ConnectFailed => "connect-failed",
            Reason::NoRoute => "no-route",
            Reason::TemporarilyRefused => "temporarily-refused",
            Reason::SmtpError => "smtp-error",
            Reason::NoStarttls => "no-starttls",
            Reason::HandshakeFailed => "handshake-failed",
            Reason::TlsBelow12 => "tls<1.2",
            Reason::UntrustedChain => "untrusted-chain",
            Reason::IncompleteChain => "incomplete-chain",
            Reason::Expired => "expired",
            Reason::MxNameMismatch => "mx-name-mismatch",
            Reason::NameMismatch => "name-mismatch",
            Reason::DnssecInsecure => "dnssec-insecure",
            Reason::DnssecBogus => "dnssec-bogus",
            Reason::NoTlsa => "no-tlsa",
            Reason::TlsaMismatch => "tlsa-mismatch",
        }
    }
}

/// A reason with the evidence in words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub reason: Reason,
    pub detail: String,
}

fn finding(reason: Reason, detail: impl Into<String>) -> Finding {
    Finding {
        reason,
        detail: detail.into(),
    }
}

/// One level's judgement of one address: passes, or the findings that stop it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub pass: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<Finding>,
}

impl Check {
    fn of(findings: Vec<Finding>) -> Check {
        Check {
            pass: findings.is_empty(),
            findings,
        }
    }

    /// Only a temporary refusal (or no route from here) stands in the way: not judged.
    pub fn temporary(&self) -> bool {
        !self.pass
            && self
                .findings
                .iter()
                .all(|f| matches!(f.reason, Reason::TemporarilyRefused | Reason::NoRoute))
    }
}

/// A domain's verdict at one level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Every MX address passes.
    Deliverable,
    /// Some pass, some fail: mail goes through the ones that pass, until they fail too.
    Degraded,
    /// None pass: mail waits in the queue, then bounces.
    WouldDefer,
    /// Nothing could be judged (every address refused the connection temporarily, 421).
    Unknown,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Deliverable => "deliverable",
            Verdict::Degraded => "degraded",
            Verdict::WouldDefer => "would-defer",
            Verdict::Unknown => "unknown",
        }
    }

    /// From the checks of every address: passes, failures, temporary refusals.
    pub fn of<'a>(checks: impl IntoIterator<Item = &'a Check>) -> Verdict {
        let (mut pass, mut fail) = (0, 0);
        for c in checks {
            if c.pass {
                pass += 1;
            } else if !c.temporary() {
                fail += 1;
            }
        }
        match (pass, fail) {
            (0, 0) => Verdict::Unknown,
            (_, 0) => Verdict::Deliverable,
            (0, _) => Verdict::WouldDefer,
            _ => Verdict::Degraded,
        }
    }
}

/// A certificate name (possibly `*.x`) against a name.
pub fn name_matches(cert_name: &str, name: &str) -> bool {
    let cert_name = cert_name.trim_end_matches('.').to_ascii_lowercase();
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    match cert_name.strip_prefix("*.") {
        Some(rest) => name
            .split_once('.')
            .is_some_and(|(label, parent)| !label.is_empty() && parent == rest),
        None => cert_name == name,
    }
}

/// Postfix's match list (`hostname:nexthop:dot-nexthop:.example.no:mx.example.no`) against the
/// certificate's names, for the MX host and the next-hop domain.
pub fn match_list(patterns: &str, cert_names: &[String], mx_host: &str, nexthop: &str) -> bool {
    patterns
        .split([':', ',', ' '])
        .filter(|p| !p.is_empty())
        .any(|p| {
            let p = p.to_ascii_lowercase();
            cert_names.iter().any(|c| match p.as_str() {
                "hostname" => name_matches(c, mx_host),
                "nexthop" => name_matches(c, nexthop),
                "dot-nexthop" => sub_of(c, nexthop),
                _ => match p.strip_prefix('.') {
                    Some(parent) => sub_of(c, parent),
                    None => name_matches(c, &p),
                },
            })
        })
}

/// A certificate name at any depth below `parent` (`*.parent` included).
fn sub_of(cert_name: &str, parent: &str) -> bool {
    let c = cert_name.trim_end_matches('.').to_ascii_lowercase();
    let parent = parent.trim_end_matches('.').to_ascii_lowercase();
    c.strip_suffix(&parent)
        .is_some_and(|head| head.ends_with('.') && head.len() > 1)
}

/// The findings about the TLS session every verifying level shares: STARTTLS, the handshake, the
/// version. Empty when a TLS ≥ 1.2 session was set up.
fn session_findings(s: &Session) -> Vec<Finding> {
    let err = s.error.clone().unwrap_or_default();
    match s.failed_at {
        Some(Step::Connect) if s.no_route => return vec![finding(Reason::NoRoute, err)],
        Some(Step::Connect) => return vec![finding(Reason::ConnectFailed, err)],
        Some(Step::Banner) => {
            let code = s.banner.as_ref().map_or(0, |b| b.code);
            let reason = if (400..500).contains(&code) {
                Reason::TemporarilyRefused
            } else {
                Reason::SmtpError
            };
            return vec![finding(reason, err)];
        }
        Some(Step::Ehlo) => return vec![finding(Reason::SmtpError, err)],
        Some(Step::Starttls) => {
            return vec![finding(
                Reason::NoStarttls,
                format!("STARTTLS failed: {err}"),
            )]
        }
        Some(Step::Handshake) => {
            let lower = err.to_ascii_lowercase();
            let reason = if lower.contains("protocol version")
                || lower.contains("unsupported protocol")
                || lower.contains("wrong version number")
            {
                Reason::TlsBelow12
            } else {
                Reason::HandshakeFailed
            };
            return vec![finding(reason, format!("TLS handshake failed: {err}"))];
        }
        _ => {}
    }
    if !s.starttls_offered {
        return vec![finding(
            Reason::NoStarttls,
            "the EHLO reply does not offer STARTTLS",
        )];
    }
    let mut out = Vec::new();
    if let Some(tls) = &s.tls {
        if !tls.at_least_tls12() {
            out.push(finding(
                Reason::TlsBelow12,
                format!("negotiated {} ({})", tls.version, tls.cipher),
            ));
        }
    }
    if matches!(s.failed_at, Some(Step::EhloTls)) {
        out.push(finding(Reason::SmtpError, format!("after TLS: {err}")));
    }
    out
}

/// The chain: trusted, complete, in date.
fn chain_findings(s: &Session) -> Vec<Finding> {
    let Some(tls) = &s.tls else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut expired = Vec::new();
    let mut incomplete = Vec::new();
    let mut untrusted = Vec::new();
    for e in &tls.verify_errors {
        let what = format!("depth {}: {}", e.depth, e.text);
        match e.code {
            code::CERT_HAS_EXPIRED | code::CERT_NOT_YET_VALID => expired.push(what),
            code::UNABLE_TO_GET_ISSUER_CERT_LOCALLY
            | code::UNABLE_TO_GET_ISSUER_CERT
            | code::UNABLE_TO_VERIFY_LEAF_SIGNATURE
                if e.depth == 0 && tls.chain.len() == 1 && !tls.chain[0].self_issued =>
            {
                incomplete.push(what)
            }
            _ => untrusted.push(what),
        }
    }
    incomplete.dedup();
    if !expired.is_empty() {
        let leaf = tls
            .chain
            .first()
            .map(|c| c.not_after.clone())
            .unwrap_or_default();
        out.push(finding(
            Reason::Expired,
            format!(
                "{} (server certificate valid until {leaf})",
                expired.join("; ")
            ),
        ));
    }
    if !incomplete.is_empty() {
        let issuer = tls
            .chain
            .first()
            .map(|c| c.issuer.clone())
            .unwrap_or_default();
        out.push(finding(
            Reason::IncompleteChain,
            format!(
                "the server sends only its own certificate, not the intermediate that issued it ({issuer}): {}",
                incomplete.join("; ")
            ),
        ));
    }
    if !untrusted.is_empty() {
        out.push(finding(
            Reason::UntrustedChain,
            format!(
                "the chain does not lead to a trusted root: {}",
                untrusted.join("; ")
            ),
        ));
    }
    out
}

fn cert_names(s: &Session) -> Vec<String> {
    s.tls
        .as_ref()
        .and_then(|t| t.chain.first())
        .map(|c| c.names.clone())
        .unwrap_or_default()
}

/// `encrypt`: TLS ≥ 1.2, no certificate check.
pub fn encrypt(s: &Session) -> Check {
    Check::of(session_findings(s))
}

/// `verify`: a trusted chain in date and a name matching `patterns` (default `hostname`).
pub fn verify(s: &Session, patterns: Option<&str>, nexthop: &str) -> Check {
    let mut f = session_findings(s);
    if s.tls.is_some() && f.is_empty() {
        f.extend(chain_findings(s));
        let names = cert_names(s);
        let patterns = patterns.unwrap_or("hostname");
        if !match_list(patterns, &names, &s.host, nexthop) {
            f.push(finding(
                Reason::MxNameMismatch,
                format!(
                    "the certificate names {}, not {}",
                    shown_names(&names),
                    if patterns == "hostname" {
                        s.host.clone()
                    } else {
                        format!("match={patterns}")
                    }
                ),
            ));
        }
    }
    Check::of(f)
}

/// `secure`: like verify, with names from `patterns` (default `nexthop:dot-nexthop`).
pub fn secure(s: &Session, patterns: Option<&str>, nexthop: &str) -> Check {
    let mut f = session_findings(s);
    if s.tls.is_some() && f.is_empty() {
        f.extend(chain_findings(s));
        let names = cert_names(s);
        let patterns = patterns.unwrap_or("nexthop:dot-nexthop");
        if !match_list(patterns, &names, &s.host, nexthop) {
            f.push(finding(
                Reason::NameMismatch,
                format!(
                    "the certificate names {}, which match=`{patterns}` does not accept for {nexthop}",
                    shown_names(&names)
                ),
            ));
        }
    }
    Check::of(f)
}

fn shown_names(names: &[String]) -> String {
    if names.is_empty() {
        "no DNS name".into()
    } else {
        names.join(", ")
    }
}

/// What DNS says about DANE for one MX host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TlsaStatus {
    /// TLSA records, DNSSEC-validated.
    Secure,
    /// TLSA records, not validated (unsigned zone, or a resolver that does not validate).
    Insecure,
    /// Validation failed: a validating resolver refuses the answer.
    Bogus,
    /// No TLSA records.
    Absent,
    /// The lookup failed.
    Failed,
}

pub fn tlsa_status(l: &Lookup) -> TlsaStatus {
    if l.dnssec == Dnssec::Bogus {
        return TlsaStatus::Bogus;
    }
    match l.outcome {
        Outcome::Answer if l.dnssec == Dnssec::Secure => TlsaStatus::Secure,
        Outcome::Answer => TlsaStatus::Insecure,
        Outcome::NoData | Outcome::NxDomain => TlsaStatus::Absent,
        Outcome::ServFail | Outcome::Error => TlsaStatus::Failed,
    }
}

/// What DANE needs from DNS for one MX host, besides the TLSA records: a secure MX RRset (or a secure
/// implicit MX) and secure addresses.
pub struct DaneDns<'a> {
    pub mx_secure: bool,
    pub addresses_secure: bool,
    pub tlsa: &'a Lookup,
    pub records: &'a [Tlsa],
    pub nexthop: &'a str,
}

/// `dane-only`: DNSSEC-validated MX, addresses and TLSA, and a presented chain that matches.
pub fn dane(s: &Session, d: &DaneDns) -> Check {
    let status = tlsa_status(d.tlsa);
    let mut f = Vec::new();
    match status {
        TlsaStatus::Bogus => f.push(finding(Reason::DnssecBogus, d.tlsa.failure_text())),
        TlsaStatus::Failed => f.push(finding(Reason::DnsFailure, d.tlsa.failure_text())),
        TlsaStatus::Absent => f.push(finding(
            Reason::NoTlsa,
            format!("no TLSA record at {}", d.tlsa.name),
        )),
        TlsaStatus::Insecure => f.push(finding(
            Reason::DnssecInsecure,
            format!(
                "the TLSA records at {} are not DNSSEC-validated",
                d.tlsa.name
            ),
        )),
        TlsaStatus::Secure => {}
    }
    if !d.mx_secure {
        f.push(finding(
            Reason::DnssecInsecure,
            format!("the MX records of {} are not DNSSEC-validated", d.nexthop),
        ));
    } else if !d.addresses_secure {
        f.push(finding(
            Reason::DnssecInsecure,
            format!("the addresses of {} are not DNSSEC-validated", s.host),
        ));
    }
    if !f.is_empty() {
        return Check::of(f);
    }
    let mut f = session_findings(s);
    if let (true, Some(tls)) = (f.is_empty(), &s.tls) {
        let m = dane::check(d.records, &tls.chain, &[&s.host, d.nexthop]);
        if !m.matched {
            f.push(finding(Reason::TlsaMismatch, m.detail));
        }
    }
    Check::of(f)
}

/// The check for the level a domain is configured with.
pub fn at_level(
    level: PostfixLevel,
    encrypt: &Check,
    verify: &Check,
    secure: &Check,
    dane: &Check,
) -> Check {
    match level {
        PostfixLevel::Encrypt => encrypt.clone(),
        PostfixLevel::Verify => verify.clone(),
        PostfixLevel::Secure => secure.clone(),
        PostfixLevel::DaneOnly => dane.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_like_postfix() {
        let names = vec!["mx.example.no".to_string(), "*.mail.example.no".into()];
        assert!(match_list(
            "hostname",
            &names,
            "mx.example.no",
            "example.no"
        ));
        assert!(match_list(
            "hostname",
            &names,
            "a.mail.example.no",
            "example.no"
        ));
        assert!(!match_list(
            "hostname",
            &names,
            "a.b.mail.example.no",
            "example.no"
        ));
        assert!(match_list("nexthop:dot-nexthop", &names, "x", "example.no"));
        assert!(!match_list("nexthop", &names, "x", "example.no"));
        assert!(!match_list("nexthop:dot-nexthop", &names, "x", "other.no"));
        assert!(match_list(".example.no", &names, "x", "other.no"));
        assert!(match_list("mx.example.no", &names, "x", "other.no"));
        assert!(!match_list("example.no", &names, "x", "other.no"));
        assert!(!sub_of("example.no", "example.no"));
    }

    #[test]
    fn verdicts_from_checks() {
        let pass = Check::of(vec![]);
        let fail = Check::of(vec![finding(Reason::NoStarttls, "")]);
        let temp = Check::of(vec![finding(Reason::TemporarilyRefused, "")]);
        assert_eq!(Verdict::of([&pass, &pass]), Verdict::Deliverable);
        assert_eq!(Verdict::of([&pass, &temp]), Verdict::Deliverable);
        assert_eq!(Verdict::of([&pass, &fail]), Verdict::Degraded);
        assert_eq!(Verdict::of([&fail, &temp]), Verdict::WouldDefer);
        assert_eq!(Verdict::of([&temp]), Verdict::Unknown);
        assert_eq!(Verdict::of([]), Verdict::Unknown);
    }
}
