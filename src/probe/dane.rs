//! DANE for SMTP (RFC 7672): the TLSA records at `_25._tcp.<mx>`, and whether the chain the server
//! presented matches one of them. OpenSSL's crate has no safe DANE API, so matching is done here over
//! the presented chain: usages DANE-TA(2) and DANE-EE(3), selectors full certificate(0) and SPKI(1),
//! matching types full(0), SHA2-256(1) and SHA2-512(2). PKIX usages (0, 1) are unusable for SMTP
//! (RFC 7672 §3.1.3). DANE-EE ignores names and dates (§3.1.1); DANE-TA checks the chain up to the
//! matched certificate, its dates, and the names (the MX host or the next-hop domain).

use super::tls::CertInfo;
use super::verdict::name_matches;
use openssl::hash::MessageDigest;
use serde::Serialize;

/// One TLSA record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tlsa {
    pub usage: u8,
    pub selector: u8,
    pub matching: u8,
    /// The association data, hex.
    pub data: String,
    #[serde(skip)]
    pub bytes: Vec<u8>,
}

impl Tlsa {
    pub fn usable(&self) -> bool {
        matches!(self.usage, 2 | 3) && self.selector <= 1 && self.matching <= 2
    }

    /// `3 1 1`.
    pub fn params(&self) -> String {
        format!("{} {} {}", self.usage, self.selector, self.matching)
    }

    fn matches(&self, cert: &CertInfo) -> bool {
        let input = match self.selector {
            0 => &cert.der,
            1 => &cert.spki_der,
            _ => return false,
        };
        let digest = match self.matching {
            0 => input.to_vec(),
            1 => hash(MessageDigest::sha256(), input),
            2 => hash(MessageDigest::sha512(), input),
            _ => return false,
        };
        !digest.is_empty() && digest == self.bytes
    }
}

fn hash(md: MessageDigest, data: &[u8]) -> Vec<u8> {
    openssl::hash::hash(md, data)
        .map(|d| d.to_vec())
        .unwrap_or_default()
}

pub fn from_rdata(r: &hickory_proto::rr::rdata::TLSA) -> Tlsa {
    let bytes = r.cert_data.clone();
    Tlsa {
        usage: u8::from(r.cert_usage),
        selector: u8::from(r.selector),
        matching: u8::from(r.matching),
        data: bytes.iter().map(|b| format!("{b:02x}")).collect(),
        bytes,
    }
}

/// Which record matched the presented chain, or why none did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DaneMatch {
    pub matched: bool,
    /// `3 1 1 matches the server certificate`, or the reason for no match.
    pub detail: String,
}

/// Matches `records` against the presented chain. `names` are the reference identifiers for DANE-TA
/// (the MX host, the next-hop domain).
pub fn check(records: &[Tlsa], chain: &[CertInfo], names: &[&str]) -> DaneMatch {
    let usable: Vec<&Tlsa> = records.iter().filter(|t| t.usable()).collect();
    if usable.is_empty() {
        return DaneMatch {
            matched: false,
            detail: "no usable TLSA record (only PKIX usages or unknown parameters)".into(),
        };
    }
    let Some(leaf) = chain.first() else {
        return DaneMatch {
            matched: false,
            detail: "no certificate was presented".into(),
        };
    };
    for t in usable.iter().filter(|t| t.usage == 3) {
        if t.matches(leaf) {
            return DaneMatch {
                matched: true,
                detail: format!("{} matches the server certificate", t.params()),
            };
        }
    }
    let mut problems = Vec::new();
    for t in usable.iter().filter(|t| t.usage == 2) {
        for (depth, ca) in chain.iter().enumerate().skip(1) {
            if !t.matches(ca) {
                continue;
            }
            match chain_problem(&chain[..=depth]) {
                Some(p) => {
                    problems.push(format!("{} matches at depth {depth}, but {p}", t.params()))
                }
                None if !names
                    .iter()
                    .any(|n| leaf.names.iter().any(|c| name_matches(c, n))) =>
                {
                    problems.push(format!(
                        "{} matches at depth {depth}, but the certificate names neither {}",
                        t.params(),
                        names.join(" nor ")
                    ))
                }
                None => {
                    return DaneMatch {
                        matched: true,
                        detail: format!("{} matches the CA at depth {depth}", t.params()),
                    }
                }
            }
        }
    }
    let detail = if problems.is_empty() {
        format!(
            "no TLSA record ({}) matches the presented chain",
            usable
                .iter()
                .map(|t| t.params())
                .collect::<Vec<_>>()
                .join(", ")
        )
    } else {
        problems.join("; ")
    };
    DaneMatch {
        matched: false,
        detail,
    }
}

/// A break in a chain from the server certificate to the trust anchor at its end: a signature that
/// does not verify, or a certificate outside its dates.
fn chain_problem(chain: &[CertInfo]) -> Option<String> {
    use openssl::x509::X509;
    let certs: Vec<X509> = chain
        .iter()
        .filter_map(|c| X509::from_der(&c.der).ok())
        .collect();
    if certs.len() != chain.len() {
        return Some("a certificate could not be read".into());
    }
    for (d, pair) in certs.windows(2).enumerate() {
        let ok = pair[1]
            .public_key()
            .and_then(|k| pair[0].verify(&k))
            .unwrap_or(false);
        if !ok {
            return Some(format!(
                "the certificate at depth {d} is not signed by the next"
            ));
        }
    }
    chain[..chain.len() - 1]
        .iter()
        .position(|c| c.days_left < 0)
        .map(|d| format!("the certificate at depth {d} has expired"))
}
