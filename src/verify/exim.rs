//! Exim: ask Exim itself. `-bV` (does the configuration load, which version, which TLS library),
//! `-bP router_list` and `-bP router …` (the order and what each router sends where), `-bt` for every
//! listed domain (which router takes it — with `-d+route`, so the answer survives a machine without
//! DNS), and `-bP transport …` of each transport a listed domain reaches (TLS required, certificate
//! verified, host name checked, a TLS 1.2 floor). The checks look only at Exim's answers, never at
//! how a configuration file is laid out, so they hold for any router or transport names.

use super::tools;
use super::{
    DomainCheck, Expected, Finding, ServerInfo, Setup, Severity, Verdict, Verification, VerifyError,
};
use crate::render::options::EximTls;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

struct Exim {
    program: PathBuf,
    /// `-C FILE` when a configuration file was named.
    cfg: Vec<String>,
}

impl Exim {
    fn args<'a>(&'a self, extra: &[&'a str]) -> Vec<&'a str> {
        let mut a: Vec<&str> = self.cfg.iter().map(String::as_str).collect();
        a.extend_from_slice(extra);
        a
    }

    fn run(&self, extra: &[&str]) -> Result<tools::Output, VerifyError> {
        tools::run(&self.program, &self.args(extra), None)
    }

    fn run_ok(&self, extra: &[&str]) -> Result<String, VerifyError> {
        tools::run_ok(&self.program, &self.args(extra))
    }

    /// `-bP` of one router or transport, as name → value (`no_x` and bare `x` for booleans).
    fn options(&self, kind: &str, name: &str) -> Result<BTreeMap<String, String>, VerifyError> {
        let text = self.run_ok(&["-bP", kind, name])?;
        Ok(options(&text))
    }
}

fn options(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(|l| match l.split_once(" = ") {
            Some((k, v)) => (k.trim().to_string(), v.trim().to_string()),
            None => match l.trim().strip_suffix(" =") {
                Some(k) => (k.to_string(), String::new()),
                None => (l.trim().to_string(), "yes".to_string()),
            },
        })
        .collect()
}

/// What `-bV` says.
#[derive(Debug, Default)]
struct Version {
    version: String,
    tls: Option<EximTls>,
    config: Option<String>,
}

fn parse_bv(text: &str) -> Version {
    let mut v = Version::default();
    for l in text.lines() {
        if let Some(rest) = l.strip_prefix("Exim version ") {
            v.version = rest
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string();
        } else if let Some(rest) = l.strip_prefix("Support for:") {
            if rest.split_whitespace().any(|w| w == "GnuTLS") {
                v.tls = Some(EximTls::Gnutls);
            } else if rest.split_whitespace().any(|w| w == "OpenSSL") {
                v.tls = Some(EximTls::Openssl);
            }
        } else if let Some(rest) = l
            .strip_prefix("Configuration file is ")
            .or_else(|| l.strip_prefix("Configuration file(s) is "))
            .or_else(|| l.strip_prefix("Configuration files are "))
        {
            v.config = Some(rest.trim().to_string());
        }
    }
    v
}

fn lib_name(t: EximTls) -> &'static str {
    match t {
        EximTls::Gnutls => "GnuTLS",
        EximTls::Openssl => "OpenSSL",
    }
}

/// Which router `-bt` gives each address: from the plain answer when DNS works, else from the debug
/// trace of the routers it called.
#[derive(Debug, Default, Clone)]
struct Routed {
    router: Option<String>,
    transport: Option<String>,
    /// What `-bt` said when it could not finish (no DNS here, unrouteable).
    unfinished: Option<String>,
    /// Routers called, in order.
    called: Vec<String>,
}

fn parse_bt(stdout: &str, stderr: &str) -> HashMap<String, Routed> {
    let mut out: HashMap<String, Routed> = HashMap::new();
    let mut current: Option<String> = None;
    for l in stdout.lines() {
        let t = l.trim();
        if !l.starts_with(' ') && !t.is_empty() {
            let addr = t.split_whitespace().next().unwrap_or(t).to_lowercase();
            let entry = out.entry(addr.clone()).or_default();
            if let Some(rest) =
                t.strip_prefix(&format!("{} ", t.split_whitespace().next().unwrap_or("")))
            {
                if rest.starts_with("is undeliverable") || rest.starts_with("cannot be resolved") {
                    entry.unfinished = Some(rest.to_string());
                }
            }
            current = Some(addr);
        } else if let (Some(a), Some(rest)) = (&current, t.strip_prefix("router = ")) {
            let e = out.entry(a.clone()).or_default();
            let (r, tr) = rest.split_once(", transport = ").unwrap_or((rest, ""));
            e.router = Some(r.trim().to_string());
            if !tr.is_empty() && tr != "unset" {
                e.transport = Some(tr.trim().to_string());
            }
        }
    }
    let mut current: Option<String> = None;
    for l in stderr.lines() {
        let t = l.trim();
        if let Some(a) = t.strip_prefix("Testing ") {
            current = Some(a.trim().to_lowercase());
        } else if let (Some(a), Some(r)) = (
            &current,
            t.strip_prefix("calling ")
                .and_then(|r| r.strip_suffix(" router")),
        ) {
            out.entry(a.clone()).or_default().called.push(r.to_string());
        }
    }
    out
}

/// Why a transport's options do not force verified TLS 1.2+, for each problem.
fn transport_problems(
    o: &BTreeMap<String, String>,
    lib: Option<EximTls>,
    main: &BTreeMap<String, String>,
) -> Vec<String> {
    let get = |k: &str| o.get(k).map(String::as_str).unwrap_or("");
    let mut p = Vec::new();
    if get("driver") != "smtp" {
        p.push(format!("its driver is `{}`, not smtp", get("driver")));
        return p;
    }
    if get("hosts_require_tls") != "*" {
        p.push(match get("hosts_require_tls") {
            "" => "hosts_require_tls is empty: TLS is tried, and mail goes in plaintext when the server offers none".to_string(),
            v => format!("hosts_require_tls is `{v}`, not `*`: TLS is not required for every host"),
        });
    }
    if get("tls_verify_hosts") != "*" {
        p.push(match get("tls_verify_hosts") {
            "" => "tls_verify_hosts is empty: a certificate that fails verification is used anyway (tls_try_verify_hosts only tries)".to_string(),
            v => format!("tls_verify_hosts is `{v}`, not `*`: certificates are not verified for every host"),
        });
    }
    match get("tls_verify_certificates") {
        "" => p.push("tls_verify_certificates is empty: there is nothing to verify certificates against".into()),
        "system" => {}
        path if path.contains('$') => {}
        path => match std::fs::metadata(path) {
            Err(_) => p.push(format!("tls_verify_certificates {path} does not exist: no certificate verifies, mail defers")),
            Ok(m) if m.is_file() && m.len() == 0 => p.push(format!("tls_verify_certificates {path} is empty: no certificate verifies, mail defers")),
            Ok(_) => {}
        },
    }
    if get("tls_verify_cert_hostnames") != "*" {
        p.push(format!(
            "tls_verify_cert_hostnames is `{}`: the certificate's host name is not checked for every host",
            get("tls_verify_cert_hostnames")
        ));
    }
    let ciphers = get("tls_require_ciphers");
    match lib {
        Some(EximTls::Gnutls) => {
            if let Some(why) = gnutls_floor(ciphers) {
                p.push(why);
            }
        }
        Some(EximTls::Openssl) => {
            let main_opts = main
                .get("openssl_options")
                .map(String::as_str)
                .unwrap_or("");
            let opts: Vec<&str> = main_opts.split_whitespace().collect();
            let floor_by_options = opts.contains(&"+no_tlsv1") && opts.contains(&"+no_tlsv1_1");
            if !floor_by_options && !openssl_aead_only(ciphers) {
                p.push(format!(
                    "no TLS 1.2 floor: the main openssl_options (`{main_opts}`) lacks +no_tlsv1 +no_tlsv1_1 and tls_require_ciphers (`{ciphers}`) is not AEAD-only"
                ));
            }
        }
        None => {
            p.push("Exim reports neither GnuTLS nor OpenSSL: the TLS floor cannot be judged".into())
        }
    }
    p
}

/// A GnuTLS priority string that leaves only TLS 1.2 and 1.3, or why not.
fn gnutls_floor(priority: &str) -> Option<String> {
    if priority.is_empty() {
        return Some("tls_require_ciphers is empty: GnuTLS's default priorities are used, with no TLS 1.2 floor".into());
    }
    let parts: Vec<&str> = priority.split(':').map(str::trim).collect();
    let mut allowed: Vec<&str> = vec!["TLS1.0", "TLS1.1", "TLS1.2", "TLS1.3"];
    for part in &parts {
        let up = part.to_ascii_uppercase();
        if up == "-VERS-ALL" || up == "-VERS-TLS-ALL" {
            allowed.clear();
        } else if let Some(v) = up.strip_prefix("-VERS-") {
            allowed.retain(|a| *a != v);
        } else if let Some(v) = up.strip_prefix("+VERS-") {
            if v == "ALL" || v == "TLS-ALL" {
                allowed = vec!["TLS1.0", "TLS1.1", "TLS1.2", "TLS1.3"];
            } else if !allowed.contains(&v) {
                allowed.push(match v {
                    "TLS1.0" => "TLS1.0",
                    "TLS1.1" => "TLS1.1",
                    "TLS1.2" => "TLS1.2",
                    "TLS1.3" => "TLS1.3",
                    _ => continue,
                });
            }
        }
    }
    let old: Vec<&str> = allowed
        .iter()
        .copied()
        .filter(|a| *a == "TLS1.0" || *a == "TLS1.1")
        .collect();
    if old.is_empty() {
        None
    } else {
        Some(format!(
            "tls_require_ciphers `{priority}` still allows {}: no TLS 1.2 floor",
            old.join(" and ")
        ))
    }
}

/// An OpenSSL cipher list of AEAD suites only, which no TLS below 1.2 can use.
fn openssl_aead_only(ciphers: &str) -> bool {
    let parts: Vec<&str> = ciphers
        .split([':', ',', ' '])
        .filter(|p| !p.is_empty() && !p.starts_with('!') && !p.starts_with('-'))
        .collect();
    !parts.is_empty()
        && parts.iter().all(|p| {
            let u = p.to_ascii_uppercase();
            u.contains("GCM") || u.contains("CHACHA20") || u.contains("CCM")
        })
}

/// Named lists (`+name`) in a router's `domains`, other than local_domains.
fn named_lists(domains: &str) -> Vec<String> {
    domains
        .split(':')
        .map(|p| p.trim().trim_start_matches('!').trim())
        .filter_map(|p| p.strip_prefix('+'))
        .filter(|n| *n != "local_domains")
        .map(String::from)
        .collect()
}

/// The files an lsearch-type lookup in a list definition reads.
fn lsearch_files(definition: &str) -> Vec<PathBuf> {
    definition
        .split(':')
        .filter_map(|item| {
            let (kind, file) = item.trim().split_once(';')?;
            kind.ends_with("lsearch")
                .then(|| PathBuf::from(file.trim()))
        })
        .collect()
}

/// The Debian split configuration: is the generated file newer than what it is generated from?
fn debian_split(config: &Path, out: &mut Vec<Finding>) {
    if config.file_name().and_then(|n| n.to_str()) != Some("config.autogenerated") {
        return;
    }
    // `/var/lib/exim4/config.autogenerated` → `/` (or a test root), whose etc/exim4 holds the sources.
    let Some(root) = config
        .parent()
        .and_then(Path::parent)
        .and_then(Path::parent)
        .and_then(Path::parent)
    else {
        return;
    };
    let etc = root.join("etc/exim4");
    let Some(generated) = tools::mtime(config) else {
        return;
    };
    let mut newer: Vec<PathBuf> = Vec::new();
    let mut stack = vec![etc.join("conf.d")];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if tools::mtime(&p).is_some_and(|t| t > generated) {
                newer.push(p);
            }
        }
    }
    for f in [
        "update-exim4.conf.conf",
        "exim4.conf.template",
        "exim4.conf.localmacros",
    ] {
        let p = etc.join(f);
        if tools::mtime(&p).is_some_and(|t| t > generated) {
            newer.push(p);
        }
    }
    newer.sort();
    if !newer.is_empty() {
        let shown: Vec<String> = newer
            .iter()
            .take(3)
            .map(|p| p.display().to_string())
            .collect();
        out.push(Finding::new(
            Severity::Gap,
            Some(config.display().to_string()),
            format!(
                "{} changed after {} was generated ({}{}): Exim still runs the old configuration; run update-exim4.conf and reload Exim",
                if newer.len() == 1 { "a source file" } else { "source files" },
                config.display(),
                shown.join(", "),
                if newer.len() > 3 { format!(" and {} more", newer.len() - 3) } else { String::new() }
            ),
        ));
    }
}

pub fn verify(setup: &Setup, exp: &Expected) -> anyhow::Result<Verification> {
    let program = match &setup.exim {
        Some(p) if p.is_file() => p.clone(),
        Some(p) => {
            return Err(VerifyError::NotFound {
                program: p.display().to_string(),
                looked: vec![p.parent().unwrap_or(Path::new("/")).to_path_buf()],
                flag: "--exim",
            }
            .into())
        }
        None => tools::find(&["exim4", "exim"], None, "--exim")?,
    };
    let exim = Exim {
        program,
        cfg: match &setup.exim_config {
            Some(c) => vec!["-C".into(), c.display().to_string()],
            None => Vec::new(),
        },
    };
    let bv = exim.run(&["-bV"])?;
    let version = parse_bv(&bv.stdout);
    let config = version
        .config
        .clone()
        .or_else(|| setup.exim_config.as_ref().map(|c| c.display().to_string()))
        .unwrap_or_else(|| "(Exim's default)".into());
    let server = ServerInfo {
        software: format!("Exim {}", version.version),
        config: config.clone(),
        instance: None,
        tls_library: version.tls.map(|t| lib_name(t).to_string()),
    };
    let mut findings = Vec::new();
    let mut domains: Vec<DomainCheck> = exp
        .domains
        .iter()
        .map(|d| DomainCheck::new(d.as_str()))
        .collect();
    if !bv.ok {
        let why = tools::first_lines(&bv.stderr, "");
        findings.push(Finding::new(
            Severity::Gap,
            Some(config.clone()),
            format!("the configuration does not load ({why}): Exim delivers nothing"),
        ));
        for d in &mut domains {
            d.route = "(none: the configuration does not load)".into();
            d.fail(Verdict::Gap, "Exim cannot load its configuration");
        }
        return Ok(Verification {
            mta: super::Mta::Exim,
            servers: vec![server],
            domains,
            findings,
            evidence: None,
        });
    }
    if let (Some(have), want) = (version.tls, exp.options.exim.tls_library) {
        if have != want {
            findings.push(Finding::new(
                Severity::Gap,
                None,
                format!(
                    "this Exim is built with {}, but the exim-config was rendered for {} (exim.tls_library): its TLS floor is written for the other library; render it with --exim-tls {}",
                    lib_name(have),
                    lib_name(want),
                    match have { EximTls::Gnutls => "gnutls", EximTls::Openssl => "openssl" }
                ),
            ));
        }
    }
    let main = options(&exim.run_ok(&[
        "-bP",
        "openssl_options",
        "tls_require_ciphers",
        "log_selector",
        "delay_warning",
    ])?);
    let routers: Vec<String> = exim
        .run_ok(&["-bP", "router_list"])?
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    let mut router_opts: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for r in &routers {
        router_opts.insert(r.clone(), exim.options("router", r)?);
    }
    let mut transport_cache: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut judge = |t: &str| -> Result<Vec<String>, VerifyError> {
        if let Some(p) = transport_cache.get(t) {
            return Ok(p.clone());
        }
        let p = transport_problems(&exim.options("transport", t)?, version.tls, &main);
        transport_cache.insert(t.to_string(), p.clone());
        Ok(p)
    };
    // Routers that send to a transport forcing verified TLS.
    let mut forced: Vec<String> = Vec::new();
    for r in &routers {
        if let Some(t) = router_opts[r].get("transport").filter(|t| !t.is_empty()) {
            if judge(t)?.is_empty() {
                forced.push(r.clone());
            }
        }
    }
    if forced.is_empty() {
        findings.push(Finding::new(
            Severity::Gap,
            Some(config.clone()),
            "no router sends mail to a transport that forces verified TLS 1.2+ (hosts_require_tls = *, tls_verify_hosts = *, a TLS floor)",
        ));
    }
    // Route every listed domain.
    let addrs: Vec<String> = exp
        .domains
        .iter()
        .map(|d| format!("postmaster@{d}"))
        .collect();
    // In batches, so a long list stays within the argument limit.
    let mut routed = HashMap::new();
    for chunk in addrs.chunks(200) {
        let mut bt_args = vec!["-d+route", "-bt"];
        bt_args.extend(chunk.iter().map(String::as_str));
        let bt = exim.run(&bt_args)?;
        routed.extend(parse_bt(&bt.stdout, &bt.stderr));
    }
    for (c, addr) in domains.iter_mut().zip(&addrs) {
        let r = routed.get(addr).cloned().unwrap_or_default();
        let (router, dns_note) = match &r.router {
            Some(x) => (Some(x.clone()), None),
            None => {
                let remote = r.called.iter().find(|x| {
                    router_opts
                        .get(*x)
                        .and_then(|o| o.get("driver"))
                        .is_some_and(|d| d == "dnslookup" || d == "manualroute")
                });
                (remote.cloned(), r.unfinished.clone())
            }
        };
        let Some(router) = router else {
            c.route = "(no router)".into();
            c.fail(
                Verdict::Gap,
                format!(
                    "no router accepts it ({}): Exim does not deliver it",
                    r.unfinished.as_deref().unwrap_or("exim -bt gave no answer")
                ),
            );
            continue;
        };
        let transport = r.transport.clone().or_else(|| {
            router_opts
                .get(&router)
                .and_then(|o| o.get("transport"))
                .filter(|t| !t.is_empty())
                .cloned()
        });
        c.route = match &transport {
            Some(t) => format!("router {router}, transport {t}"),
            None => format!("router {router}"),
        };
        if let Some(n) = dns_note {
            c.notes.push(format!(
                "no DNS answer here (exim -bt: {}); judged by the router whose conditions it met",
                n.trim_start_matches("is ")
            ));
        }
        let Some(t) = transport else {
            c.fail(
                Verdict::Undecided,
                format!("router `{router}` names no transport: bits-tls cannot see how it leaves"),
            );
            continue;
        };
        let problems = judge(&t)?;
        let pos = |name: &str| routers.iter().position(|x| x == name);
        let order = forced
            .iter()
            .find(|f| pos(f) > pos(&router))
            .map(|f| format!("; router_list has `{router}` before `{f}`, so `{f}` never sees it"))
            .unwrap_or_default();
        if !problems.is_empty() {
            c.fail(
                Verdict::Gap,
                format!(
                    "routed by `{router}` to transport `{t}`, which does not force verified TLS 1.2+: {}{order}",
                    problems.join("; ")
                ),
            );
        }
        if problems.is_empty() {
            c.policy = Some(format!(
                "transport {t}: hosts_require_tls = *, tls_verify_hosts = *, TLS 1.2 floor"
            ));
        }
    }
    // The domain list the forced routers read, against what the state renders.
    let mut lists_seen = Vec::new();
    for r in &forced {
        let Some(domains_opt) = router_opts[r].get("domains") else {
            continue;
        };
        for name in named_lists(domains_opt) {
            if lists_seen.contains(&name) {
                continue;
            }
            lists_seen.push(name.clone());
            let def = exim.run(&["-bP", &format!("+{name}")])?.stdout;
            for file in lsearch_files(def.trim()) {
                domain_file_findings(&file, &name, exp, &mut findings);
            }
        }
    }
    if let Some(c) = &version.config {
        debian_split(Path::new(c), &mut findings);
    }
    let selector = main.get("log_selector").map(String::as_str).unwrap_or("");
    for off in ["-tls_cipher", "-tls_certificate_verified"] {
        if selector.split_whitespace().any(|s| s == off) {
            findings.push(Finding::new(
                Severity::Warning,
                None,
                format!("log_selector has {off}: the main log does not show how each delivery was secured, so it is no evidence for an audit"),
            ));
        }
    }
    let (evidence, ef) = super::evidence::exim(setup, exp, &exim.program, &exim.cfg)?;
    findings.extend(ef);
    Ok(Verification {
        mta: super::Mta::Exim,
        servers: vec![server],
        domains,
        findings,
        evidence,
    })
}

fn domain_file_findings(file: &Path, list: &str, exp: &Expected, out: &mut Vec<Finding>) {
    let subject = Some(file.display().to_string());
    if exp.exim_domains.configured && exp.exim_domains.path != file {
        out.push(Finding::new(
            Severity::Warning,
            subject.clone(),
            format!(
                "bits-tls writes the exim-domains output to {}, but Exim's {list} reads {}",
                exp.exim_domains.path.display(),
                file.display()
            ),
        ));
    }
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => {
            out.push(Finding::new(
                Severity::Gap,
                subject,
                format!("the domain list of {list} cannot be read ({e}): Exim defers every listed domain"),
            ));
            return;
        }
    };
    let live = super::Table::parse_entries(&text);
    let missing: Vec<&String> = exp
        .exim_domains
        .entries
        .keys()
        .filter(|k| !live.contains_key(*k))
        .collect();
    let extra: Vec<&String> = live
        .keys()
        .filter(|k| !exp.exim_domains.entries.contains_key(*k))
        .collect();
    let sample = |v: &[&String]| -> String {
        let mut s = v
            .iter()
            .take(3)
            .map(|x| x.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        if v.len() > 3 {
            s.push_str(&format!(" and {} more", v.len() - 3));
        }
        s
    };
    if !missing.is_empty() {
        out.push(Finding::new(
            Severity::Gap,
            subject.clone(),
            format!(
                "the domain list of {list} lacks {} entries the state renders ({}): it is stale; run bits-tls sync",
                missing.len(),
                sample(&missing)
            ),
        ));
    }
    if !extra.is_empty() {
        out.push(Finding::new(
            Severity::Warning,
            subject,
            format!(
                "the domain list of {list} has {} entries the state does not render ({}): it is not the list as last synced",
                extra.len(),
                sample(&extra)
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gnutls_floors() {
        assert_eq!(
            gnutls_floor("NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"),
            None
        );
        assert_eq!(gnutls_floor("NORMAL:-VERS-TLS1.0:-VERS-TLS1.1"), None);
        assert!(gnutls_floor("NORMAL")
            .unwrap()
            .contains("TLS1.0 and TLS1.1"));
        assert!(gnutls_floor("NORMAL:-VERS-ALL:+VERS-TLS1.1:+VERS-TLS1.2").is_some());
        assert!(gnutls_floor("").is_some());
    }

    #[test]
    fn openssl_lists() {
        assert!(openssl_aead_only("ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM"));
        assert!(!openssl_aead_only("HIGH:!aNULL"));
        assert!(!openssl_aead_only(""));
    }

    #[test]
    fn list_definitions() {
        assert_eq!(
            named_lists("! +local_domains : +forced_tls_domains"),
            ["forced_tls_domains"]
        );
        assert_eq!(
            lsearch_files("domainlist forced_tls_domains = partial-lsearch;/etc/exim4/x"),
            [PathBuf::from("/etc/exim4/x")]
        );
    }

    #[test]
    fn bt_answers() {
        let stdout = "postmaster@a.no\n  router = r1, transport = t1\n  host mx.a.no [192.0.2.1] MX=10\npostmaster@b.no is undeliverable: Unrouteable address\n";
        let stderr = "Testing postmaster@b.no\n--------> r0 router <--------\nr0 router skipped: domains mismatch\ncalling r1 router\nr1 router declined for postmaster@b.no\n";
        let r = parse_bt(stdout, stderr);
        assert_eq!(r["postmaster@a.no"].router.as_deref(), Some("r1"));
        assert_eq!(r["postmaster@a.no"].transport.as_deref(), Some("t1"));
        assert_eq!(r["postmaster@b.no"].called, ["r1"]);
        assert!(r["postmaster@b.no"]
            .unfinished
            .as_deref()
            .unwrap()
            .contains("Unrouteable"));
    }
}
