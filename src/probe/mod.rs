//! `bits-tls probe`: can every listed destination receive verified TLS ≥ 1.2, and which stronger
//! policy does it allow? Per domain: MX (or the implicit MX of its A/AAAA records; a null MX is a
//! finding) → addresses → one SMTP session per (MX host, address) however many domains share it →
//! then judged offline (`verdict`) at every Postfix level, with DANE (`dane`), MTA-STS and TLS-RPT
//! (`mta_sts`) and certificates about to expire. Lookups, sessions and policy fetches each run on a
//! bounded pool of threads; every step has its timeout.

pub mod dane;
pub mod dns;
pub mod mta_sts;
pub mod smtp;
pub mod tls;
pub mod validate;
pub mod verdict;

use crate::domain::Domain;
use crate::render::options::PostfixLevel;
use dns::{Dnssec, Lookup, Outcome, Resolver};
use hickory_proto::rr::{RData, RecordType};
use serde::Serialize;
use smtp::{Session, SmtpOptions};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use verdict::{Check, Finding, Reason, TlsaStatus, Verdict};

/// A domain to probe, with the Postfix level and `match=` its table entry asks for.
#[derive(Debug, Clone)]
pub struct Destination {
    pub domain: Domain,
    pub level: PostfixLevel,
    pub match_: Option<String>,
    /// The configuration has an `[[override]]` for it already.
    pub overridden: bool,
}

/// How to probe.
#[derive(Debug, Clone)]
pub struct ProbeOptions {
    pub resolver: Resolver,
    pub smtp: SmtpOptions,
    /// Trusted roots for SMTP (replaces the system store, as smtp_tls_CAfile does) and, added to the
    /// system's, for MTA-STS policies.
    pub ca_file: Option<PathBuf>,
    pub concurrency: usize,
    pub expiry_warn_days: i64,
    /// Zones whose DNSKEY answer must carry the AD bit if the resolver validates (`.` by default).
    pub anchor_zones: Vec<String>,
    /// The `--trust-anchor` file's text: local validation's second opinion.
    pub anchors: Option<String>,
}

/// Does the resolver validate DNSSEC?
#[derive(Debug, Clone, Serialize)]
pub struct ResolverCheck {
    pub server: String,
    /// `true`: it set the AD bit on a signed answer; `false`: a trust anchor's zone came back without
    /// it; `null`: nothing showed either way.
    pub validates: Option<bool>,
    pub detail: String,
    pub checks: Vec<Lookup>,
}

/// Everything about one probe run.
#[derive(Debug, Serialize)]
pub struct Run {
    pub resolver: ResolverCheck,
    pub domains: Vec<DomainReport>,
    /// SMTP sessions opened (one per MX host and address).
    pub connections: usize,
    pub millis: u64,
    pub expiry_warn_days: i64,
}

/// One MX host of a domain.
#[derive(Debug, Clone, Serialize)]
pub struct MxReport {
    pub host: String,
    pub preference: u16,
    pub addresses_dnssec: Dnssec,
    pub tlsa_status: TlsaStatus,
    pub tlsa: Vec<dane::Tlsa>,
    /// The A/AAAA and TLSA lookups.
    pub lookups: Vec<Lookup>,
    pub addresses: Vec<AddressReport>,
    /// Why the host has no address to connect to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<Finding>,
}

/// One address of an MX host: the session and each level's judgement.
#[derive(Debug, Clone, Serialize)]
pub struct AddressReport {
    pub address: IpAddr,
    /// The level the domain is configured with.
    pub configured: Check,
    pub encrypt: Check,
    pub verify: Check,
    pub secure: Check,
    pub dane: Check,
    pub session: Session,
}

/// The DANE summary of a domain.
#[derive(Debug, Clone, Serialize)]
pub struct DaneReport {
    /// `dane-only` would deliver and is safe to ask for.
    pub recommended: bool,
    pub detail: String,
}

/// The MTA-STS summary of a domain.
#[derive(Debug, Clone, Serialize)]
pub struct MtaStsReport {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record: Option<mta_sts::StsRecord>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<mta_sts::Policy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_error: Option<mta_sts::FetchError>,
    /// MX hosts no `mx` pattern covers.
    pub uncovered_mx: Vec<String>,
    /// `secure match=… servername=hostname` passes at every address (from an `enforce` policy).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suggested_match: Option<String>,
}

/// A certificate that passes now but expires soon.
#[derive(Debug, Clone, Serialize)]
pub struct Expiry {
    pub host: String,
    pub address: IpAddr,
    pub not_after: String,
    pub days_left: i64,
}

/// A stronger (or needed) Postfix setting for a domain, as an `[[override]]`.
#[derive(Debug, Clone, Serialize)]
pub struct Suggestion {
    pub level: PostfixLevel,
    #[serde(rename = "match", skip_serializing_if = "Option::is_none")]
    pub match_: Option<String>,
    pub reason: String,
}

/// Everything about one domain.
#[derive(Debug, Clone, Serialize)]
pub struct DomainReport {
    pub domain: String,
    pub level: PostfixLevel,
    #[serde(rename = "match", skip_serializing_if = "Option::is_none")]
    pub match_: Option<String>,
    /// The level and match come from an `[[override]]`.
    pub overridden: bool,
    /// At the configured level.
    pub verdict: Verdict,
    /// The verdict at each level.
    pub verify: Verdict,
    pub secure: Verdict,
    pub dane_only: Verdict,
    /// Domain-level findings (DNS, null MX).
    pub findings: Vec<Finding>,
    pub mx_lookup: Lookup,
    /// No MX records: the domain's own addresses are its MX (RFC 5321 §5.1).
    pub implicit_mx: bool,
    pub mx: Vec<MxReport>,
    /// `secure` fails only on names: the `match=` that would pass at every address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secure_match: Option<String>,
    pub dane: DaneReport,
    pub mta_sts: MtaStsReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_rpt: Option<mta_sts::TlsRpt>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_rpt_error: Option<String>,
    pub expiring: Vec<Expiry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suggestion: Option<Suggestion>,
}

impl DomainReport {
    /// Each address's checks at the configured level, with where they are.
    pub fn addresses(&self) -> impl Iterator<Item = (&MxReport, &AddressReport)> {
        self.mx
            .iter()
            .flat_map(|m| m.addresses.iter().map(move |a| (m, a)))
    }
}

/// Runs `f` over `items` on at most `n` threads; results in the items' order.
pub fn parallel<T: Sync, R: Send>(items: &[T], n: usize, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let slots: Vec<Mutex<Option<R>>> = items.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..n.clamp(1, items.len().max(1)) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(item) = items.get(i) else { break };
                let r = f(item);
                *slots[i].lock().unwrap() = Some(r);
            });
        }
    });
    slots
        .into_iter()
        .map(|m| m.into_inner().unwrap().expect("every item was done"))
        .collect()
}

fn texts(l: &Lookup) -> Vec<String> {
    l.records
        .iter()
        .filter_map(|r| match r {
            RData::TXT(t) => Some(
                t.txt_data
                    .iter()
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect::<String>(),
            ),
            _ => None,
        })
        .collect()
}

fn addresses_of(l: &Lookup) -> Vec<IpAddr> {
    l.records
        .iter()
        .filter_map(|r| match r {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(a) => Some(IpAddr::V6(a.0)),
            _ => None,
        })
        .collect()
}

/// The DNS facts of one domain, before any connection.
struct DomainDns {
    mx_lookup: Lookup,
    /// (preference, host); empty with a null MX or a failure.
    mx: Vec<(u16, String)>,
    implicit: bool,
    null_mx: bool,
    sts: Lookup,
    rpt: Lookup,
}

/// A lookup with local validation's opinion on its answer.
fn lookup(r: &Resolver, v: Option<&validate::Validator>, name: &str, t: RecordType) -> Lookup {
    let mut l = r.lookup(name, t);
    if let (Some(v), Outcome::Answer) = (v, l.outcome) {
        l.local = Some(v.rrset(name, t));
    }
    l
}

fn domain_dns(r: &Resolver, v: Option<&validate::Validator>, domain: &str) -> DomainDns {
    let mx_lookup = lookup(r, v, domain, RecordType::MX);
    let mut mx: Vec<(u16, String)> = mx_lookup
        .records
        .iter()
        .filter_map(|r| match r {
            RData::MX(m) => Some((
                m.preference,
                m.exchange
                    .to_ascii()
                    .trim_end_matches('.')
                    .to_ascii_lowercase(),
            )),
            _ => None,
        })
        .collect();
    mx.sort();
    mx.dedup();
    let null_mx = mx.len() == 1 && mx[0].1.is_empty();
    let implicit = mx_lookup.outcome == Outcome::NoData && !mx_lookup.failed();
    if null_mx || !mx_lookup.usable() {
        mx.clear();
    }
    if implicit {
        mx.push((0, domain.to_string()));
    }
    DomainDns {
        sts: r.lookup(&format!("_mta-sts.{domain}"), RecordType::TXT),
        rpt: r.lookup(&format!("_smtp._tls.{domain}"), RecordType::TXT),
        mx_lookup,
        mx,
        implicit,
        null_mx,
    }
}

/// The DNS facts of one MX host.
struct HostDns {
    lookups: Vec<Lookup>,
    addresses: Vec<IpAddr>,
    addresses_dnssec: Dnssec,
    problem: Option<Finding>,
    tlsa: Lookup,
    records: Vec<dane::Tlsa>,
}

fn host_dns(r: &Resolver, v: Option<&validate::Validator>, host: &str) -> HostDns {
    let a = lookup(r, v, host, RecordType::A);
    let aaaa = lookup(r, v, host, RecordType::AAAA);
    let mut addresses = addresses_of(&a);
    addresses.extend(addresses_of(&aaaa));
    let answered: Vec<&Lookup> = [&a, &aaaa]
        .into_iter()
        .filter(|l| l.outcome == Outcome::Answer)
        .collect();
    let addresses_dnssec = if [&a, &aaaa].iter().any(|l| l.dnssec == Dnssec::Bogus) {
        Dnssec::Bogus
    } else if !answered.is_empty() && answered.iter().all(|l| l.dnssec == Dnssec::Secure) {
        Dnssec::Secure
    } else if answered.is_empty() {
        Dnssec::Unknown
    } else {
        Dnssec::Insecure
    };
    // Bogus addresses are refused by a validating resolver: the MTA never gets them.
    let problem = if let Some(bad) = [&a, &aaaa].into_iter().find(|l| l.dnssec == Dnssec::Bogus) {
        addresses.clear();
        Some(verdict::Finding {
            reason: Reason::DnsFailure,
            detail: bad.failure_text(),
        })
    } else if addresses.is_empty() {
        let failed = [&a, &aaaa].into_iter().find(|l| l.failed());
        Some(verdict::Finding {
            reason: Reason::DnsFailure,
            detail: match failed {
                Some(l) => l.failure_text(),
                None => format!("{host} has no A or AAAA record"),
            },
        })
    } else {
        None
    };
    let tlsa = lookup(r, v, &format!("_25._tcp.{host}"), RecordType::TLSA);
    let records = tlsa
        .records
        .iter()
        .filter_map(|r| match r {
            RData::TLSA(t) => Some(dane::from_rdata(t)),
            _ => None,
        })
        .collect();
    HostDns {
        lookups: vec![a, aaaa, tlsa.clone()],
        addresses,
        addresses_dnssec,
        problem,
        tlsa,
        records,
    }
}

/// Asks the resolver for the DNSKEY of each anchor zone: a validating resolver sets AD.
fn check_resolver(r: &Resolver, zones: &[String]) -> ResolverCheck {
    let checks: Vec<Lookup> = zones
        .iter()
        .map(|z| r.lookup(z, RecordType::DNSKEY))
        .collect();
    let secure = checks.iter().find(|l| l.dnssec == Dnssec::Secure);
    let unvalidated = checks
        .iter()
        .find(|l| l.outcome == Outcome::Answer && l.dnssec == Dnssec::Insecure);
    let (validates, detail) = match (secure, unvalidated) {
        (Some(l), _) => (
            Some(true),
            format!("validates: the DNSKEY records of `{}` came with the AD bit", l.name),
        ),
        (None, Some(l)) => (
            Some(false),
            format!(
                "does not validate: the DNSKEY records of the trust anchor `{}` came without the AD bit; Postfix would see no DANE through it",
                l.name
            ),
        ),
        (None, None) => (
            None,
            format!(
                "not known: no answer for the DNSKEY records of {}",
                zones.join(", ")
            ),
        ),
    };
    ResolverCheck {
        server: r.server.to_string(),
        validates,
        detail,
        checks,
    }
}

/// Local validation against the resolver's AD bits: answers it finds signed and valid that came without
/// AD mean the resolver does not validate; answers the resolver calls secure that it finds bogus need a
/// person to look.
fn second_opinion<'a>(resolver: &mut ResolverCheck, lookups: impl Iterator<Item = &'a Lookup>) {
    use validate::Opinion;
    let (mut agree, mut unvalidated, mut disputed) = (0, Vec::new(), Vec::new());
    for l in lookups {
        match (l.dnssec, l.local) {
            (Dnssec::Secure, Some(Opinion::Secure)) => agree += 1,
            (Dnssec::Insecure, Some(Opinion::Secure)) => {
                unvalidated.push(format!("{} {}", l.name, l.rtype))
            }
            (Dnssec::Secure, Some(Opinion::Bogus)) => {
                disputed.push(format!("{} {}", l.name, l.rtype))
            }
            _ => {}
        }
    }
    if !unvalidated.is_empty() {
        resolver.validates = Some(false);
        resolver.detail = format!(
            "does not validate: local validation (--trust-anchor) finds {} answers signed and valid that came without the AD bit (e.g. {}); Postfix would see no DANE through it",
            unvalidated.len(),
            unvalidated[0]
        );
    } else if agree > 0 {
        resolver
            .detail
            .push_str(&format!("; local validation agrees on {agree} answers"));
    }
    if !disputed.is_empty() {
        resolver.detail.push_str(&format!(
            "; check manually: the resolver calls {} secure, local validation bogus",
            disputed.join(", ")
        ));
    }
}

/// Probes every destination.
pub fn probe(dests: &[Destination], opts: &ProbeOptions) -> anyhow::Result<Run> {
    let start = Instant::now();
    let tls = tls::TlsClient::new(opts.ca_file.as_deref())?;
    let sts_client = mta_sts::PolicyClient::new(opts.smtp.timeout, opts.ca_file.as_deref())?;
    let n = opts.concurrency.max(1);
    let r = &opts.resolver;
    let mut resolver = check_resolver(r, &opts.anchor_zones);

    let names: Vec<String> = dests.iter().map(|d| d.domain.to_string()).collect();
    let validator = opts
        .anchors
        .as_deref()
        .map(|text| validate::Validator::new(r, text));
    let v = validator.as_ref();
    let dns: Vec<DomainDns> = parallel(&names, n, |d| domain_dns(r, v, d));

    let hosts: Vec<String> = dns
        .iter()
        .flat_map(|d| d.mx.iter().map(|(_, h)| h.clone()))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let host_facts: HashMap<String, HostDns> = hosts
        .iter()
        .cloned()
        .zip(parallel(&hosts, n, |h| host_dns(r, v, h)))
        .collect();
    second_opinion(
        &mut resolver,
        host_facts
            .values()
            .flat_map(|h| &h.lookups)
            .chain(dns.iter().map(|d| &d.mx_lookup)),
    );
    if resolver.validates.is_none()
        && host_facts
            .values()
            .flat_map(|h| &h.lookups)
            .chain(dns.iter().map(|d| &d.mx_lookup))
            .any(|l| l.dnssec == Dnssec::Secure)
    {
        resolver.validates = Some(true);
        resolver.detail = "validates: answers came with the AD bit".into();
    }

    let units: Vec<(String, IpAddr)> = hosts
        .iter()
        .flat_map(|h| host_facts[h].addresses.iter().map(move |a| (h.clone(), *a)))
        .collect();
    let sessions: HashMap<(String, IpAddr), Session> = units
        .iter()
        .cloned()
        .zip(parallel(&units, n, |(h, a)| {
            smtp::session(h, *a, &opts.smtp, &tls)
        }))
        .collect();

    let with_sts: Vec<usize> = (0..dests.len())
        .filter(|&i| {
            mta_sts::parse_sts_txt(&texts(&dns[i].sts))
                .ok()
                .flatten()
                .is_some()
        })
        .collect();
    let policies: BTreeMap<usize, Result<mta_sts::Policy, mta_sts::FetchError>> = with_sts
        .iter()
        .copied()
        .zip(parallel(&with_sts, n, |&i| sts_client.fetch(&names[i])))
        .collect();

    let mut domains = Vec::new();
    for (i, (dest, d)) in dests.iter().zip(dns).enumerate() {
        domains.push(judge(
            dest,
            d,
            &host_facts,
            &sessions,
            policies.get(&i).cloned(),
            resolver.validates == Some(true),
            opts.expiry_warn_days,
        ));
    }
    Ok(Run {
        resolver,
        domains,
        connections: sessions.len(),
        millis: start.elapsed().as_millis() as u64,
        expiry_warn_days: opts.expiry_warn_days,
    })
}

fn judge(
    dest: &Destination,
    d: DomainDns,
    hosts: &HashMap<String, HostDns>,
    sessions: &HashMap<(String, IpAddr), Session>,
    policy: Option<Result<mta_sts::Policy, mta_sts::FetchError>>,
    validating: bool,
    warn_days: i64,
) -> DomainReport {
    let domain = dest.domain.to_string();
    let mut findings = Vec::new();
    if d.null_mx {
        findings.push(Finding {
            reason: Reason::NullMx,
            detail: format!("{domain} publishes a null MX (RFC 7505): it accepts no mail"),
        });
    } else if d.mx.is_empty() {
        findings.push(Finding {
            reason: Reason::DnsFailure,
            detail: d.mx_lookup.failure_text(),
        });
    }
    let mx_secure = d.mx_lookup.dnssec == Dnssec::Secure;
    let override_match = dest.match_.as_deref();
    let mut mx = Vec::new();
    for (preference, host) in &d.mx {
        let h = &hosts[host];
        let dane_dns = verdict::DaneDns {
            mx_secure,
            addresses_secure: h.addresses_dnssec == Dnssec::Secure,
            tlsa: &h.tlsa,
            records: &h.records,
            nexthop: &domain,
        };
        let addresses = h
            .addresses
            .iter()
            .map(|a| {
                let s = &sessions[&(host.clone(), *a)];
                let encrypt = verdict::encrypt(s);
                let verify = verdict::verify(
                    s,
                    override_match.filter(|_| dest.level == PostfixLevel::Verify),
                    &domain,
                );
                let secure = verdict::secure(
                    s,
                    override_match.filter(|_| dest.level == PostfixLevel::Secure),
                    &domain,
                );
                let dane = verdict::dane(s, &dane_dns);
                AddressReport {
                    address: *a,
                    configured: verdict::at_level(dest.level, &encrypt, &verify, &secure, &dane),
                    encrypt,
                    verify,
                    secure,
                    dane,
                    session: s.clone(),
                }
            })
            .collect();
        mx.push(MxReport {
            host: host.clone(),
            preference: *preference,
            addresses_dnssec: h.addresses_dnssec,
            tlsa_status: verdict::tlsa_status(&h.tlsa),
            tlsa: h.records.clone(),
            lookups: h.lookups.clone(),
            addresses,
            problem: h.problem.clone(),
        });
    }
    // An MX host without addresses counts as a failed address at every level.
    let dns_fail = |m: &MxReport| {
        m.problem.clone().map(|p| Check {
            pass: false,
            findings: vec![p],
        })
    };
    let level_verdict = |pick: &dyn Fn(&AddressReport) -> &Check| -> Verdict {
        if !findings.is_empty() {
            return Verdict::WouldDefer;
        }
        let checks: Vec<Check> = mx
            .iter()
            .flat_map(|m| {
                m.addresses
                    .iter()
                    .map(|a| pick(a).clone())
                    .chain(dns_fail(m))
                    .collect::<Vec<_>>()
            })
            .collect();
        Verdict::of(&checks)
    };
    let verdict = level_verdict(&|a| &a.configured);
    let verify_v = level_verdict(&|a| &a.verify);
    let secure_v = level_verdict(&|a| &a.secure);
    let dane_v = level_verdict(&|a| &a.dane);

    // secure fails only on names: suggest the MX host names as match=.
    let all_addresses: Vec<&AddressReport> = mx.iter().flat_map(|m| &m.addresses).collect();
    let secure_match = (secure_v != Verdict::Deliverable
        && verify_v == Verdict::Deliverable
        && all_addresses.iter().all(|a| {
            a.secure.pass
                || a.secure
                    .findings
                    .iter()
                    .all(|f| f.reason == Reason::NameMismatch)
        }))
    .then(|| {
        mx.iter()
            .map(|m| m.host.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect::<Vec<_>>()
            .join(":")
    });

    let dane = dane_summary(&mx, mx_secure, validating, dane_v, &findings);
    let mta_sts = mta_sts_summary(&d, &mx, policy, &domain);
    let (tls_rpt, tls_rpt_error) = match mta_sts::parse_tlsrpt_txt(&texts(&d.rpt)) {
        Ok(r) => (r, None),
        Err(e) => (None, Some(e)),
    };
    let mut expiring = Vec::new();
    for m in &mx {
        for a in &m.addresses {
            let leaf = a.session.tls.as_ref().and_then(|t| t.chain.first());
            if let (true, Some(c)) = (a.verify.pass, leaf) {
                if c.days_left < warn_days {
                    expiring.push(Expiry {
                        host: m.host.clone(),
                        address: a.address,
                        not_after: c.not_after.clone(),
                        days_left: c.days_left,
                    });
                }
            }
        }
    }
    let suggestion = suggest(
        dest,
        &dane,
        &mta_sts,
        secure_match.as_deref(),
        secure_v,
        &mx,
    );
    DomainReport {
        domain,
        level: dest.level,
        match_: dest.match_.clone(),
        overridden: dest.overridden,
        verdict,
        verify: verify_v,
        secure: secure_v,
        dane_only: dane_v,
        findings,
        mx_lookup: d.mx_lookup,
        implicit_mx: d.implicit,
        mx,
        secure_match,
        dane,
        mta_sts,
        tls_rpt,
        tls_rpt_error,
        expiring,
        suggestion,
    }
}

fn dane_summary(
    mx: &[MxReport],
    mx_secure: bool,
    validating: bool,
    dane_v: Verdict,
    findings: &[Finding],
) -> DaneReport {
    let statuses: Vec<String> = mx
        .iter()
        .map(|m| format!("{}: TLSA {}", m.host, status_word(m.tlsa_status)))
        .collect();
    let (recommended, why) = if !findings.is_empty() || mx.is_empty() {
        (false, "no MX to check".to_string())
    } else if !validating {
        (
            false,
            "the resolver does not validate DNSSEC, so Postfix could not use DANE".into(),
        )
    } else if !mx_secure {
        (false, "the MX records are not DNSSEC-validated".into())
    } else if dane_v == Verdict::Deliverable
        && mx.iter().all(|m| m.tlsa_status == TlsaStatus::Secure)
        && mx.iter().all(|m| m.problem.is_none())
    {
        (
            true,
            "every MX has DNSSEC-validated TLSA records that match its certificate".into(),
        )
    } else if mx.iter().all(|m| m.tlsa_status == TlsaStatus::Absent) {
        (false, "no TLSA records".into())
    } else {
        (
            false,
            "not every MX has validated TLSA records that match".into(),
        )
    };
    DaneReport {
        recommended,
        detail: format!("{why} ({})", statuses.join("; ")),
    }
}

pub fn status_word(s: TlsaStatus) -> &'static str {
    match s {
        TlsaStatus::Secure => "secure",
        TlsaStatus::Insecure => "insecure",
        TlsaStatus::Bogus => "bogus",
        TlsaStatus::Absent => "absent",
        TlsaStatus::Failed => "lookup failed",
    }
}

fn mta_sts_summary(
    d: &DomainDns,
    mx: &[MxReport],
    policy: Option<Result<mta_sts::Policy, mta_sts::FetchError>>,
    domain: &str,
) -> MtaStsReport {
    let (record, record_error) = match mta_sts::parse_sts_txt(&texts(&d.sts)) {
        Ok(r) => (r, None),
        Err(e) => (None, Some(e)),
    };
    let (policy, policy_error) = match policy {
        Some(Ok(p)) => (Some(p), None),
        Some(Err(e)) => (None, Some(e)),
        None => (None, None),
    };
    let uncovered_mx: Vec<String> = match &policy {
        Some(p) => mx
            .iter()
            .filter(|m| !p.mx.iter().any(|pat| mta_sts::covers(pat, &m.host)))
            .map(|m| m.host.clone())
            .collect(),
        None => Vec::new(),
    };
    let suggested_match = policy
        .as_ref()
        .filter(|p| p.mode == mta_sts::Mode::Enforce && uncovered_mx.is_empty() && !mx.is_empty())
        .map(|p| mta_sts::postfix_match(&p.mx))
        .filter(|m| {
            mx.iter().all(|x| x.problem.is_none())
                && mx
                    .iter()
                    .flat_map(|x| &x.addresses)
                    .all(|a| verdict::secure(&a.session, Some(m), domain).pass)
        });
    MtaStsReport {
        record,
        record_error,
        policy,
        policy_error,
        uncovered_mx,
        suggested_match,
    }
}

fn suggest(
    dest: &Destination,
    dane: &DaneReport,
    sts: &MtaStsReport,
    secure_match: Option<&str>,
    secure_v: Verdict,
    mx: &[MxReport],
) -> Option<Suggestion> {
    let today = chrono::Local::now().date_naive();
    let hosts: Vec<&str> = mx.iter().map(|m| m.host.as_str()).collect();
    if dane.recommended && dest.level != PostfixLevel::DaneOnly {
        let records: Vec<String> = mx
            .iter()
            .map(|m| {
                format!(
                    "{} {}",
                    m.host,
                    m.tlsa
                        .iter()
                        .map(|t| t.params())
                        .collect::<Vec<_>>()
                        .join("/")
                )
            })
            .collect();
        return Some(Suggestion {
            level: PostfixLevel::DaneOnly,
            match_: None,
            reason: format!(
                "bits-tls probe {today}: DNSSEC-validated TLSA records match at every MX ({}); DANE-EE ignores certificate names (RFC 7672 3.1.1): a stronger but different control than the host-name check the scheme asks for",
                records.join(", ")
            ),
        });
    }
    if let (Some(m), PostfixLevel::Verify | PostfixLevel::Secure) =
        (sts.suggested_match.as_deref(), dest.level)
    {
        if dest.match_.as_deref() != Some(m) || dest.level != PostfixLevel::Secure {
            return Some(Suggestion {
                level: PostfixLevel::Secure,
                match_: Some(m.to_string()),
                reason: format!(
                    "bits-tls probe {today}: MTA-STS policy in enforce mode covers every MX ({}); Postfix 3.4 and newer should also send SNI (servername=hostname)",
                    hosts.join(", ")
                ),
            });
        }
    }
    if dest.level == PostfixLevel::Secure && secure_v != Verdict::Deliverable {
        if let Some(m) = secure_match {
            return Some(Suggestion {
                level: PostfixLevel::Secure,
                match_: Some(format!("nexthop:dot-nexthop:{m}")),
                reason: format!(
                    "bits-tls probe {today}: the MX certificates name the MX hosts ({}), not the domain",
                    hosts.join(", ")
                ),
            });
        }
    }
    None
}

/// The exit status a run deserves: every domain deliverable at its configured level.
pub fn all_deliverable(run: &Run) -> bool {
    run.domains
        .iter()
        .all(|d| d.verdict == Verdict::Deliverable)
}

/// Default per-step timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
