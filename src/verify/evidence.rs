//! Evidence from traffic: what the MTA's log says happened to mail for listed domains, and what waits
//! in its queue. A delivery to a listed domain that was not over verified TLS 1.2+ is a violation
//! (exit 2) whatever the configuration says now; mail deferred for TLS reasons is the rule working,
//! shown with its age and how long until the sender gets a bounce.
//!
//! Postfix logs the TLS trust of each connection when `smtp_tls_loglevel` ≥ 1 ("Verified TLS
//! connection established to …") before the `status=` lines of that connection, from the same smtp
//! process; Exim puts it on the delivery line itself (`X=` cipher, `CV=` verified).

use super::tools;
use super::{Expected, Finding, Setup, Severity};
use crate::domain::{Domain, DomainRules};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// How a delivery's TLS session was trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Trust {
    /// Chain and name verified (Postfix "Verified", Exim `CV=yes` or `CV=dane`).
    Verified,
    /// Chain verified, name not checked (Postfix "Trusted").
    Trusted,
    /// Certificate not verified (Postfix "Untrusted", Exim `CV=no`).
    Untrusted,
    /// No certificate (Postfix "Anonymous").
    Anonymous,
    /// No TLS at all: plaintext.
    None,
    /// TLS is not logged here (Postfix `smtp_tls_loglevel = 0`, Exim without `CV=`).
    Unknown,
}

impl Trust {
    pub fn word(self) -> &'static str {
        match self {
            Trust::Verified => "verified",
            Trust::Trusted => "trusted",
            Trust::Untrusted => "untrusted",
            Trust::Anonymous => "anonymous",
            Trust::None => "plaintext",
            Trust::Unknown => "unknown",
        }
    }
}

/// Deliveries to one listed domain (and its subdomains) in the log.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DomainTraffic {
    pub domain: String,
    /// Delivered, by TLS trust.
    pub sent: BTreeMap<Trust, usize>,
    pub deferred: usize,
    pub bounced: usize,
    /// The last deferral's reason.
    pub last_deferral: Option<String>,
}

/// A delivery to a listed domain that did not use verified TLS 1.2 or newer.
#[derive(Debug, Clone, Serialize)]
pub struct Violation {
    pub time: String,
    pub id: String,
    pub recipient: String,
    pub domain: String,
    pub relay: String,
    pub trust: Trust,
    /// The TLS version, when TLS was used.
    pub protocol: Option<String>,
    pub why: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct LogEvidence {
    pub file: String,
    /// Delivery lines read (every domain).
    pub deliveries: usize,
    /// The log shows TLS trust (Postfix: any "TLS connection established" line; Exim: `CV=`).
    pub tls_logged: bool,
    /// Listed domains with traffic, sorted.
    pub domains: Vec<DomainTraffic>,
}

/// A recipient at a listed domain waiting in the queue.
#[derive(Debug, Clone, Serialize)]
pub struct Waiting {
    pub id: String,
    pub recipient: String,
    pub domain: String,
    pub reason: Option<String>,
    /// The reason is about TLS (not offered, certificate, handshake).
    pub tls: bool,
    pub age_hours: f64,
    /// Hours until the MTA gives up and bounces it to the sender, when known.
    pub bounce_in_hours: Option<f64>,
    /// The Postfix instance, on a multi-instance host.
    pub instance: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct QueueEvidence {
    /// Messages in the queue (every domain).
    pub messages: usize,
    pub waiting: Vec<Waiting>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Evidence {
    pub log: Option<LogEvidence>,
    pub queue: Option<QueueEvidence>,
    pub violations: Vec<Violation>,
}

/// The listed domain a recipient address belongs to (the domain itself or a parent: the policy covers
/// subdomains), as an A-label.
pub struct Listed<'a> {
    domains: &'a [Domain],
    encrypt_ok: Vec<String>,
}

impl<'a> Listed<'a> {
    pub fn new(exp: &'a Expected) -> Listed<'a> {
        Listed {
            domains: &exp.domains,
            encrypt_ok: exp
                .options
                .overrides
                .iter()
                .filter(|o| o.postfix_level == Some(crate::render::options::PostfixLevel::Encrypt))
                .map(|o| o.domain.to_string())
                .collect(),
        }
    }

    pub fn of(&self, address: &str) -> Option<String> {
        let at = address.trim_matches(['<', '>']).rsplit_once('@')?.1;
        let d = Domain::parse(at, DomainRules::default()).ok()?;
        let mut name = d.as_str();
        loop {
            if self.domains.iter().any(|x| x.as_str() == name) {
                return Some(name.to_string());
            }
            name = name.split_once('.')?.1;
        }
    }
}

/// Why a delivery is a violation, or `None` when it was over verified TLS 1.2+.
fn violation(trust: Trust, protocol: Option<&str>, encrypt_ok: bool) -> Option<String> {
    let old = protocol.is_some_and(|p| {
        let p = p.to_ascii_uppercase().replace('V', "");
        matches!(p.as_str(), "TLS1" | "TLS1.0" | "TLS1.1" | "SSL3" | "SSL2")
    });
    match trust {
        Trust::Unknown => None,
        _ if old => Some(format!(
            "sent over {}, below TLS 1.2",
            protocol.unwrap_or_default()
        )),
        Trust::Verified => None,
        Trust::Trusted | Trust::Untrusted | Trust::Anonymous if encrypt_ok => None,
        Trust::Trusted => {
            Some("sent over TLS whose certificate did not match the host name".into())
        }
        Trust::Untrusted => Some("sent over TLS with an unverified certificate".into()),
        Trust::Anonymous => Some("sent over TLS without a certificate".into()),
        Trust::None => Some("sent in plaintext".into()),
    }
}

/// `host[ip]` of `host[ip]:port`.
fn host_part(relay: &str) -> &str {
    match relay.find(']') {
        Some(i) => &relay[..=i],
        None => relay,
    }
}

/// A field `name=value` of a Postfix delivery line (`to=<…>`, `relay=…`), up to the next `, `.
/// `status=` is the last field and runs to the end of the line (its reason may hold commas).
fn field<'l>(msg: &'l str, name: &str) -> Option<&'l str> {
    let start = msg.find(&format!(" {name}=")).map(|i| i + name.len() + 2)?;
    let rest = &msg[start..];
    if name == "status" {
        return Some(rest);
    }
    Some(rest.split(", ").next().unwrap_or(rest))
}

struct Session {
    trust: Trust,
    relay: String,
    protocol: Option<String>,
}

/// Reads a Postfix log (syslog or `maillog_file` format).
/// `loglevel_on`: the configuration logs TLS (`smtp_tls_loglevel` ≥ 1), so a delivery without a
/// TLS line was in plaintext even if the log holds no TLS line at all.
pub fn postfix_log(
    text: &str,
    file: &str,
    listed: &Listed,
    loglevel_on: bool,
) -> (LogEvidence, Vec<Violation>) {
    let tls_logged = loglevel_on || text.contains(" TLS connection established to ");
    let mut pending: HashMap<String, Session> = HashMap::new();
    let mut last: HashMap<String, Session> = HashMap::new();
    let mut current: HashMap<(String, String), (Trust, Option<String>)> = HashMap::new();
    let mut traffic: BTreeMap<String, DomainTraffic> = BTreeMap::new();
    let mut violations = Vec::new();
    let mut deliveries = 0;
    for line in text.lines() {
        // `… host postfix/smtp[123]: message` (or `postfix-out/smtp[…]` for another instance).
        let Some(prog) = line.find("/smtp[") else {
            continue;
        };
        let Some(close) = line[prog..].find("]: ").map(|i| prog + i) else {
            continue;
        };
        let pid = line[prog + 6..close].to_string();
        let msg = &line[close + 3..];
        // `Nov 23 19:34:45 host postfix` (or an ISO time): the time is what precedes the host name.
        let head = line[..prog].trim_end();
        let head = head.rsplit_once(' ').map_or("", |(h, _)| h);
        let time = head
            .rsplit_once(' ')
            .map_or(head, |(t, _)| t)
            .trim()
            .to_string();
        if let Some((word, rest)) = msg.split_once(" TLS connection established to ") {
            let trust = match word {
                "Verified" => Trust::Verified,
                "Trusted" => Trust::Trusted,
                "Untrusted" => Trust::Untrusted,
                "Anonymous" => Trust::Anonymous,
                _ => continue,
            };
            let (relay, after) = rest.split_once(": ").unwrap_or((rest, ""));
            let protocol = after.split_whitespace().next().map(String::from);
            pending.insert(
                pid,
                Session {
                    trust,
                    relay: host_part(relay).to_string(),
                    protocol,
                },
            );
            continue;
        }
        let (Some(to), Some(status)) = (field(msg, "to"), field(msg, "status")) else {
            continue;
        };
        deliveries += 1;
        let id = msg.split(':').next().unwrap_or_default().to_string();
        let relay = field(msg, "relay").unwrap_or("none").to_string();
        let key = (pid.clone(), id.clone());
        let reused = field(msg, "conn_use").is_some();
        let session = if reused {
            last.get(&pid)
                .filter(|s| s.relay == host_part(&relay))
                .map(|s| (s.trust, s.protocol.clone()))
        } else if let Some(s) = pending
            .remove(&pid)
            .filter(|s| s.relay == host_part(&relay))
        {
            let out = (s.trust, s.protocol.clone());
            last.insert(pid.clone(), s);
            current.insert(key.clone(), out.clone());
            Some(out)
        } else {
            current.get(&key).cloned()
        };
        let (trust, protocol) = match session {
            Some(s) => s,
            None if tls_logged => (Trust::None, None),
            None => (Trust::Unknown, None),
        };
        let Some(domain) = listed.of(to) else {
            continue;
        };
        if relay == "none" || relay.starts_with("local") || relay.starts_with("virtual") {
            continue;
        }
        let t = traffic
            .entry(domain.clone())
            .or_insert_with(|| DomainTraffic {
                domain: domain.clone(),
                ..Default::default()
            });
        let state = status.split_whitespace().next().unwrap_or(status);
        match state {
            "sent" => {
                *t.sent.entry(trust).or_default() += 1;
                let encrypt_ok = listed.encrypt_ok.contains(&domain);
                if let Some(why) = violation(trust, protocol.as_deref(), encrypt_ok) {
                    violations.push(Violation {
                        time,
                        id,
                        recipient: to.trim_matches(['<', '>']).to_string(),
                        domain,
                        relay,
                        trust,
                        protocol,
                        why,
                    });
                }
            }
            "deferred" => {
                t.deferred += 1;
                t.last_deferral = reason(status);
            }
            "bounced" => t.bounced += 1,
            _ => {}
        }
    }
    (
        LogEvidence {
            file: file.to_string(),
            deliveries,
            tls_logged,
            domains: traffic.into_values().collect(),
        },
        violations,
    )
}

/// The text in parentheses after a status word: `deferred (TLS is required, …)`.
fn reason(status: &str) -> Option<String> {
    let open = status.find('(')?;
    Some(status[open + 1..].trim_end_matches(')').to_string())
}

/// Reads an Exim main log.
pub fn exim_log(text: &str, file: &str, listed: &Listed) -> (LogEvidence, Vec<Violation>) {
    let tls_logged = text.contains(" CV=");
    let mut traffic: BTreeMap<String, DomainTraffic> = BTreeMap::new();
    let mut violations = Vec::new();
    let mut deliveries = 0;
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let (Some(date), Some(clock), Some(id), Some(marker), Some(addr)) = (
            words.next(),
            words.next(),
            words.next(),
            words.next(),
            words.next(),
        ) else {
            continue;
        };
        if !matches!(marker, "=>" | "->" | "==" | "**") {
            continue;
        }
        deliveries += 1;
        let Some(domain) = listed.of(addr) else {
            continue;
        };
        let get = |name: &str| -> Option<String> {
            let start = line.find(&format!(" {name}="))? + name.len() + 2;
            let rest = &line[start..];
            let v = if let Some(r) = rest.strip_prefix('"') {
                r.split('"').next().unwrap_or(r)
            } else {
                rest.split_whitespace().next().unwrap_or(rest)
            };
            Some(v.to_string())
        };
        let t = traffic
            .entry(domain.clone())
            .or_insert_with(|| DomainTraffic {
                domain: domain.clone(),
                ..Default::default()
            });
        match marker {
            "==" => {
                t.deferred += 1;
                t.last_deferral = line
                    .split_once(" defer (")
                    .and_then(|(_, r)| r.split_once(") "))
                    .map(|(_, r)| r.to_string());
            }
            "**" => t.bounced += 1,
            _ => {
                // Only remote deliveries (with a host) are about TLS.
                let Some(mut host) = get("H") else {
                    continue;
                };
                // `H=mx.example.no [192.0.2.1]`: the address follows the name.
                if let Some(ip) = line
                    .split_once(&format!(" H={host} "))
                    .and_then(|(_, r)| r.split_whitespace().next())
                    .filter(|w| w.starts_with('['))
                {
                    host = format!("{host} {ip}");
                }
                let cipher = get("X");
                let protocol = cipher
                    .as_deref()
                    .map(|x| x.split(':').next().unwrap_or(x).to_string());
                let trust = match (cipher.is_some(), get("CV").as_deref()) {
                    (false, _) => Trust::None,
                    (true, Some("yes" | "dane")) => Trust::Verified,
                    (true, Some(_)) => Trust::Untrusted,
                    (true, None) => Trust::Unknown,
                };
                *t.sent.entry(trust).or_default() += 1;
                let encrypt_ok = listed.encrypt_ok.contains(&domain);
                if let Some(why) = violation(trust, protocol.as_deref(), encrypt_ok) {
                    violations.push(Violation {
                        time: format!("{date} {clock}"),
                        id: id.to_string(),
                        recipient: addr.to_string(),
                        domain,
                        relay: host,
                        trust,
                        protocol,
                        why,
                    });
                }
            }
        }
    }
    (
        LogEvidence {
            file: file.to_string(),
            deliveries,
            tls_logged,
            domains: traffic.into_values().collect(),
        },
        violations,
    )
}

fn is_tls_reason(r: &str) -> bool {
    let l = r.to_ascii_lowercase();
    ["tls", "certificate", "handshake", "starttls"]
        .iter()
        .any(|w| l.contains(w))
}

/// A Postfix time value (`5d`, `4h`, `300s`; a bare number in `default_unit`) in hours.
pub fn postfix_hours(value: &str, default_unit: char) -> Option<f64> {
    let v = value.trim();
    let (num, unit) = match v.chars().last()? {
        c if c.is_ascii_digit() => (v, default_unit),
        c => (&v[..v.len() - c.len_utf8()], c),
    };
    let n: f64 = num.parse().ok()?;
    Some(match unit {
        's' => n / 3600.0,
        'm' => n / 60.0,
        'h' => n,
        'd' => n * 24.0,
        'w' => n * 168.0,
        _ => return None,
    })
}

/// Recipients at listed domains in `postqueue -j` output.
pub fn postfix_queue(
    json_lines: &str,
    listed: &Listed,
    now: DateTime<Utc>,
    lifetime_hours: Option<f64>,
    instance: Option<&str>,
) -> (usize, Vec<Waiting>) {
    let mut messages = 0;
    let mut out = Vec::new();
    for line in json_lines.lines() {
        let Ok(m) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        messages += 1;
        let arrival = m["arrival_time"].as_i64().unwrap_or(0);
        let age = ((now.timestamp() - arrival).max(0)) as f64 / 3600.0;
        let id = m["queue_id"].as_str().unwrap_or_default().to_string();
        for r in m["recipients"].as_array().into_iter().flatten() {
            let address = r["address"].as_str().unwrap_or_default();
            let Some(domain) = listed.of(address) else {
                continue;
            };
            let reason = r["delay_reason"].as_str().map(String::from);
            out.push(Waiting {
                id: id.clone(),
                recipient: address.to_string(),
                domain,
                tls: reason.as_deref().is_some_and(is_tls_reason),
                reason,
                age_hours: round1(age),
                bounce_in_hours: lifetime_hours.map(|l| round1((l - age).max(0.0))),
                instance: instance.map(String::from),
            });
        }
    }
    (messages, out)
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// An Exim queue age (`25m`, `3h`, `2d`, `45s`) in hours.
fn exim_age(a: &str) -> Option<f64> {
    postfix_hours(a, 'h')
}

/// Recipients at listed domains in `exim -bp` output: (messages, waiting without reasons).
pub fn exim_queue(text: &str, listed: &Listed) -> (usize, Vec<Waiting>) {
    let mut messages = 0;
    let mut out = Vec::new();
    let mut current: Option<(String, f64)> = None;
    for line in text.lines() {
        if line.trim().is_empty() {
            continue;
        }
        if !line.starts_with("          ") && !line.starts_with('\t') {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() >= 3 {
                messages += 1;
                current = Some((f[2].to_string(), exim_age(f[0]).unwrap_or(0.0)));
            }
            continue;
        }
        let rcpt = line.trim();
        // `D address` lines are already delivered.
        if rcpt.starts_with("D ") {
            continue;
        }
        let rcpt = rcpt.trim_start_matches("+D ").trim();
        let (Some((id, age)), Some(domain)) = (&current, listed.of(rcpt)) else {
            continue;
        };
        out.push(Waiting {
            id: id.clone(),
            recipient: rcpt.to_string(),
            domain,
            reason: None,
            tls: false,
            age_hours: round1(*age),
            bounce_in_hours: None,
            instance: None,
        });
    }
    (messages, out)
}

/// The last deferral of `recipient` in an Exim message log (`exim -Mvl`).
pub fn exim_msglog_reason(msglog: &str, recipient: &str) -> Option<String> {
    msglog
        .lines()
        .rev()
        .find(|l| l.contains(recipient) && l.contains(" defer ("))
        .and_then(|l| l.split_once(" defer (")?.1.split_once(") "))
        .map(|(_, r)| r.to_string())
}

/// When Exim gives up, from `exim -brt DOMAIN`: the time of the last retry rule (`F,4d,6h` → 96 h).
pub fn exim_give_up_hours(brt: &str) -> Option<f64> {
    let rules = brt.lines().find_map(|l| l.strip_prefix("Retry rule:"))?;
    let last = rules.split(';').map(str::trim).rfind(|r| !r.is_empty())?;
    let time = last.split_whitespace().last()?.split(',').nth(1)?;
    postfix_hours(time, 'h')
}

/// Where Postfix's queue is and how long it keeps mail, per instance.
pub struct PostfixQueue {
    /// `smtp_tls_loglevel` ≥ 1 (for the log, read once for the primary instance).
    pub tls_logged: bool,
    pub postqueue: PathBuf,
    pub cfg: Vec<String>,
    pub lifetime: String,
    pub instance: Option<String>,
}

fn read_log(path: &Path) -> anyhow::Result<String> {
    let bytes = std::fs::read(path)
        .map_err(|e| anyhow::anyhow!(e).context(format!("reading the log `{}`", path.display())))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// The findings evidence adds: mail waiting for TLS is a warning with its age, and a log without TLS
/// lines is no evidence. (Violations are listed with the log and counted in the result.)
fn findings(e: &Evidence, out: &mut Vec<Finding>) {
    if let Some(log) = &e.log {
        if !log.tls_logged && log.deliveries > 0 {
            out.push(Finding::new(
                Severity::Warning,
                Some("log".into()),
                format!(
                    "{} shows no TLS trust for any delivery: turn TLS logging on (Postfix smtp_tls_loglevel = 1; Exim log_selector +tls_certificate_verified), or the log proves nothing",
                    log.file
                ),
            ));
        }
    }
    if let Some(q) = &e.queue {
        let tls: Vec<&Waiting> = q.waiting.iter().filter(|w| w.tls).collect();
        if let Some(oldest) = tls
            .iter()
            .max_by(|a, b| a.age_hours.total_cmp(&b.age_hours))
        {
            let bounce = match oldest.bounce_in_hours {
                Some(h) => format!("; it bounces to its sender in {}", hours(h)),
                None => String::new(),
            };
            out.push(Finding::new(
                Severity::Warning,
                Some("queue".into()),
                format!(
                    "{} recipients at listed domains wait because TLS failed; the oldest ({}, {}) has waited {}{bounce}",
                    tls.len(),
                    oldest.recipient,
                    oldest.reason.as_deref().unwrap_or("no reason given"),
                    hours(oldest.age_hours)
                ),
            ));
        }
    }
}

/// `3.5 h` or `2.1 days`.
pub fn hours(h: f64) -> String {
    if h >= 48.0 {
        format!("{:.1} days", h / 24.0)
    } else {
        format!("{h:.1} h")
    }
}

/// Postfix evidence: `--log` and `--queue` (every instance's queue).
pub fn postfix(
    setup: &Setup,
    exp: &Expected,
    queues: &[PostfixQueue],
) -> anyhow::Result<(Option<Evidence>, Vec<Finding>)> {
    if setup.log.is_none() && !setup.queue {
        return Ok((None, Vec::new()));
    }
    let listed = Listed::new(exp);
    let mut e = Evidence::default();
    if let Some(path) = &setup.log {
        let on = queues.first().is_some_and(|q| q.tls_logged);
        let (log, v) = postfix_log(&read_log(path)?, &path.display().to_string(), &listed, on);
        e.log = Some(log);
        e.violations = v;
    }
    if setup.queue {
        let mut q = QueueEvidence {
            messages: 0,
            waiting: Vec::new(),
        };
        for pq in queues {
            let mut args: Vec<&str> = pq.cfg.iter().map(String::as_str).collect();
            args.push("-j");
            let out = tools::run_ok(&pq.postqueue, &args)?;
            let (n, w) = postfix_queue(
                &out,
                &listed,
                Utc::now(),
                postfix_hours(&pq.lifetime, 'd'),
                pq.instance.as_deref(),
            );
            q.messages += n;
            q.waiting.extend(w);
        }
        e.queue = Some(q);
    }
    let mut f = Vec::new();
    findings(&e, &mut f);
    Ok((Some(e), f))
}

/// Exim evidence: `--log` (the main log) and `--queue` (`exim -bp`, reasons from the message logs,
/// the give-up time from the retry rules).
pub fn exim(
    setup: &Setup,
    exp: &Expected,
    exim: &Path,
    cfg: &[String],
) -> anyhow::Result<(Option<Evidence>, Vec<Finding>)> {
    if setup.log.is_none() && !setup.queue {
        return Ok((None, Vec::new()));
    }
    let listed = Listed::new(exp);
    let mut e = Evidence::default();
    if let Some(path) = &setup.log {
        let (log, v) = exim_log(&read_log(path)?, &path.display().to_string(), &listed);
        e.log = Some(log);
        e.violations = v;
    }
    if setup.queue {
        let with = |extra: &[&str]| -> Vec<String> {
            let mut a = cfg.to_vec();
            a.extend(extra.iter().map(|s| s.to_string()));
            a
        };
        let args = with(&["-bp"]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = tools::run_ok(exim, &args)?;
        let (messages, mut waiting) = exim_queue(&out, &listed);
        let mut give_up: HashMap<String, Option<f64>> = HashMap::new();
        let mut msglogs: HashMap<String, String> = HashMap::new();
        for w in waiting.iter_mut().take(200) {
            if !msglogs.contains_key(&w.id) {
                let a = with(&["-Mvl", &w.id]);
                let a: Vec<&str> = a.iter().map(String::as_str).collect();
                let text = tools::run(exim, &a, None)
                    .map(|o| o.stdout)
                    .unwrap_or_default();
                msglogs.insert(w.id.clone(), text);
            }
            w.reason = exim_msglog_reason(&msglogs[&w.id], &w.recipient);
            w.tls = w.reason.as_deref().is_some_and(is_tls_reason);
            let g = give_up.entry(w.domain.clone()).or_insert_with(|| {
                let a = with(&["-brt", &w.domain]);
                let a: Vec<&str> = a.iter().map(String::as_str).collect();
                tools::run(exim, &a, None)
                    .ok()
                    .and_then(|o| exim_give_up_hours(&o.stdout))
            });
            w.bounce_in_hours = g.map(|g| round1((g - w.age_hours).max(0.0)));
        }
        e.queue = Some(QueueEvidence { messages, waiting });
    }
    let mut f = Vec::new();
    findings(&e, &mut f);
    Ok((Some(e), f))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_rules_and_times() {
        assert_eq!(
            exim_give_up_hours("Retry rule: *  *  F,2h,15m; G,16h,1h,1.5; F,4d,6h;\n"),
            Some(96.0)
        );
        assert_eq!(
            exim_give_up_hours("Retry rule: *  *  F,1h,15m; \n"),
            Some(1.0)
        );
        assert_eq!(exim_give_up_hours("No retry information found\n"), None);
        assert_eq!(postfix_hours("5d", 'd'), Some(120.0));
        assert_eq!(postfix_hours("5", 'd'), Some(120.0));
        assert_eq!(postfix_hours("4h", 'd'), Some(4.0));
        assert_eq!(exim_age("25m"), Some(25.0 / 60.0));
    }

    fn world() -> Expected {
        let domains = [
            "valid.test",
            "plain.test",
            "wrongname.test",
            "oldtls.test",
            "expired.test",
            "xn--blbr-roah.test",
        ]
        .map(|d| Domain::parse(d, DomainRules::default()).unwrap())
        .to_vec();
        Expected {
            domains,
            options: Default::default(),
            policy: Default::default(),
            senders: None,
            exim_domains: Default::default(),
        }
    }

    /// The queue the delivery world leaves (`postqueue -j`, tests/fixtures/verify), read at a fixed
    /// time: every waiting recipient, its reason, age and time to the bounce.
    #[test]
    fn postfix_queue_of_the_delivery_world() {
        let exp = world();
        let listed = Listed::new(&exp);
        let json = include_str!("../../tests/fixtures/verify/postfix-postqueue.jsonl");
        let now = DateTime::from_timestamp(1_795_462_485 + 2 * 3600, 0).unwrap();
        let (n, waiting) = postfix_queue(json, &listed, now, postfix_hours("5d", 'd'), None);
        assert_eq!(n, 8);
        let shown: Vec<String> = waiting
            .iter()
            .map(|w| {
                format!(
                    "{} {} tls={} age={} bounce_in={:?} {}",
                    w.id,
                    w.recipient,
                    w.tls,
                    w.age_hours,
                    w.bounce_in_hours,
                    w.reason.as_deref().unwrap_or("-")
                )
            })
            .collect();
        let expected = include_str!("../../tests/golden/report/verify-postfix-queue.txt");
        if std::env::var_os("BITS_TLS_BLESS").is_some() {
            std::fs::write(
                concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/tests/golden/report/verify-postfix-queue.txt"
                ),
                shown.join("\n") + "\n",
            )
            .unwrap();
            return;
        }
        assert_eq!(shown.join("\n") + "\n", expected);
        // `blåbær` in UTF-8 counts as its A-label; `partner.test` is not listed.
        assert!(waiting
            .iter()
            .any(|w| w.recipient == "pf@blåbær.test" && w.domain == "xn--blbr-roah.test"));
        assert!(waiting.iter().all(|w| w.tls));
    }

    #[test]
    fn exim_message_log_reason() {
        let msglog = include_str!("../../tests/fixtures/verify/exim-Mvl");
        assert_eq!(
            exim_msglog_reason(msglog, "ex@plain.test").as_deref(),
            Some("H=mx.plain.test [127.0.0.12]: a TLS session is required, but the server did not offer TLS support")
        );
        let exp = world();
        let (n, w) = exim_queue(
            include_str!("../../tests/fixtures/verify/exim-bp"),
            &Listed::new(&exp),
        );
        assert_eq!((n, w.len()), (5, 5));
        assert_eq!(w[0].recipient, "ex@plain.test");
    }

    #[test]
    fn violations_by_trust_and_version() {
        assert_eq!(violation(Trust::Verified, Some("TLSv1.3"), false), None);
        assert!(violation(Trust::Verified, Some("TLSv1.1"), false)
            .unwrap()
            .contains("below TLS 1.2"));
        assert!(violation(Trust::Verified, Some("TLS1.1"), false).is_some());
        assert!(violation(Trust::None, None, false)
            .unwrap()
            .contains("plaintext"));
        assert_eq!(violation(Trust::Untrusted, Some("TLSv1.3"), true), None);
        assert_eq!(violation(Trust::Unknown, None, false), None);
    }
}
