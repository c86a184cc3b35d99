//! Postfix: follow each listed domain the way Postfix itself does, with Postfix's own answers.
//!
//! `postconf -x` gives main.cf as Postfix reads it (every `$name` expanded), `postconf -Px` the
//! master.cf `-o` overrides, `postconf -M` the services; `postmap -q` answers each lookup from the
//! real tables (the `.db` Postfix reads, not the text beside it). The route follows trivial-rewrite's
//! resolve.c and transport.c (address class, relayhost, `default_transport`, `transport_maps` with
//! `.domain` and `*` keys); the TLS policy follows smtp_tls_policy.c (the next hop as key, then
//! `.parent` keys, first table that answers wins, else `smtp_tls_security_level`; protocols from the
//! entry or `smtp_tls_mandatory_protocols`). Routing is judged for `postmaster@DOMAIN`: a per-user
//! `transport_maps` entry for another address is not seen.
//!
//! Multi-instance hosts: `postmulti -l` has no `-c`, so the instances are read the way it reads them,
//! from `multi_instance_directories` and each instance's `multi_instance_enable`.

use super::tools::{self, Output};
use super::{
    DomainCheck, Expected, Finding, ServerInfo, Setup, Severity, Table, Verdict, Verification,
    VerifyError,
};
use crate::domain::Domain;
use crate::render::options::PostfixLevel;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

/// One Postfix instance's configuration, as postconf reports it.
struct Instance {
    name: String,
    dir: PathBuf,
    params: HashMap<String, String>,
    /// `service/type` → parameter → value, from master.cf `-o`.
    overrides: HashMap<String, BTreeMap<String, String>>,
    services: Vec<Service>,
    /// `-c DIR` when a configuration directory was named.
    cfg: Vec<String>,
    postmap: PathBuf,
    postqueue: PathBuf,
}

#[derive(Debug, Clone)]
struct Service {
    name: String,
    kind: String,
    chroot: bool,
    command: String,
}

/// `name = value` lines.
fn parse_assignments(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(" =")?;
            Some((k.trim().to_string(), v.trim().to_string()))
        })
        .collect()
}

impl Instance {
    fn load(postconf: &Path, dir: Option<&Path>, name: Option<&str>) -> anyhow::Result<Instance> {
        let cfg: Vec<String> = match dir {
            Some(d) => vec!["-c".into(), d.display().to_string()],
            None => vec![],
        };
        let args = |extra: &[&str]| -> Vec<String> {
            let mut a = cfg.clone();
            a.extend(extra.iter().map(|s| s.to_string()));
            a
        };
        let run = |extra: &[&str]| -> Result<String, VerifyError> {
            let a = args(extra);
            let a: Vec<&str> = a.iter().map(String::as_str).collect();
            tools::run_ok(postconf, &a)
        };
        if let Some(d) = dir {
            if !d.join("main.cf").is_file() {
                anyhow::bail!(
                    "there is no main.cf in `{}` (--postfix-config-dir)",
                    d.display()
                );
            }
        }
        let params: HashMap<String, String> =
            parse_assignments(&run(&["-x"])?).into_iter().collect();
        let mut overrides: HashMap<String, BTreeMap<String, String>> = HashMap::new();
        for (k, v) in parse_assignments(&run(&["-P", "-x"])?) {
            let mut parts = k.splitn(3, '/');
            let (Some(svc), Some(kind), Some(param)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            overrides
                .entry(format!("{svc}/{kind}"))
                .or_default()
                .insert(param.to_string(), v);
        }
        let services = run(&["-M"])?
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.len() >= 8).then(|| Service {
                    name: f[0].to_string(),
                    kind: f[1].to_string(),
                    chroot: f[4] != "n",
                    command: f[7].to_string(),
                })
            })
            .collect();
        let bin = |n: &str| -> PathBuf {
            let in_cmd_dir = params
                .get("command_directory")
                .map(|d| Path::new(d).join(n))
                .filter(|p| p.is_file());
            in_cmd_dir.unwrap_or_else(|| postconf.with_file_name(n))
        };
        let postmap = bin("postmap");
        let postqueue = bin("postqueue");
        let dir = params
            .get("config_directory")
            .map(PathBuf::from)
            .or_else(|| dir.map(Path::to_path_buf))
            .unwrap_or_else(|| PathBuf::from("/etc/postfix"));
        let name = name
            .map(String::from)
            .or_else(|| params.get("multi_instance_name").cloned())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "-".into());
        Ok(Instance {
            name,
            dir,
            params,
            overrides,
            services,
            cfg,
            postmap,
            postqueue,
        })
    }

    fn param(&self, name: &str) -> &str {
        self.params.get(name).map(String::as_str).unwrap_or("")
    }

    /// A parameter as a service sees it: its master.cf `-o` value, else main.cf's.
    fn service_param(&self, service: &str, kind: &str, name: &str) -> &str {
        self.overrides
            .get(&format!("{service}/{kind}"))
            .and_then(|o| o.get(name))
            .map(String::as_str)
            .unwrap_or_else(|| self.param(name))
    }

    fn service(&self, name: &str, kind: &str) -> Option<&Service> {
        self.services
            .iter()
            .find(|s| s.name == name && s.kind == kind)
    }

    /// The `-o` overrides of a service among `names`, as `name=value` (empty shown as `name=` (empty)).
    fn overrides_of(&self, service: &str, kind: &str, names: &[&str]) -> Vec<String> {
        let Some(o) = self.overrides.get(&format!("{service}/{kind}")) else {
            return Vec::new();
        };
        names
            .iter()
            .filter_map(|n| {
                o.get(*n).map(|v| {
                    if v.is_empty() {
                        format!("{n}= (empty)")
                    } else {
                        format!("{n}={v}")
                    }
                })
            })
            .collect()
    }

    fn version(&self) -> (u32, u32) {
        let v = self.param("mail_version");
        let mut it = v.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
        (it.next().unwrap_or(0), it.next().unwrap_or(0))
    }

    fn yes(&self, name: &str) -> bool {
        self.param(name).eq_ignore_ascii_case("yes")
    }

    fn label(&self) -> Option<String> {
        (self.name != "-").then(|| format!("instance {}", self.name))
    }

    fn info(&self, multi: bool) -> ServerInfo {
        ServerInfo {
            software: format!("Postfix {}", self.param("mail_version")),
            config: self.dir.display().to_string(),
            instance: multi.then(|| self.name.clone()),
            tls_library: None,
        }
    }
}

/// Splits a Postfix list (commas and white space) keeping `{ … }` groups (inline maps) whole.
fn split_list(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut depth = 0usize;
    for c in s.chars() {
        match c {
            '{' => {
                depth += 1;
                cur.push(c);
            }
            '}' => {
                depth = depth.saturating_sub(1);
                cur.push(c);
            }
            ',' | ' ' | '\t' | '\n' if depth == 0 => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            _ => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// `type:name` → (type, name); `proxy:` is looked through (root reads the table directly).
fn map_parts(map: &str) -> Option<(&str, &str)> {
    let inner = map.strip_prefix("proxy:").unwrap_or(map);
    let (t, n) = inner.split_once(':')?;
    (!t.is_empty() && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')).then_some((t, n))
}

fn is_map(token: &str) -> bool {
    map_parts(token).is_some() && !token.starts_with('[')
}

/// Tables that match patterns, not keys: Postfix asks them only for whole addresses or names.
fn is_pattern_map(map: &str) -> bool {
    matches!(
        map_parts(map).map(|(t, _)| t),
        Some("regexp" | "pcre" | "cidr" | "socketmap" | "tcp")
    )
}

/// The file `postmap` compiles a table to, for the indexed types.
fn compiled_file(map: &str) -> Option<(PathBuf, PathBuf)> {
    let (t, n) = map_parts(map)?;
    let suffix = match t {
        "hash" | "btree" => ".db",
        "lmdb" => ".lmdb",
        "cdb" => ".cdb",
        _ => return None,
    };
    Some((PathBuf::from(n), PathBuf::from(format!("{n}{suffix}"))))
}

/// Lookups through `postmap -q`, batched per table and remembered.
struct Lookups<'a> {
    inst: &'a Instance,
    answers: HashMap<String, HashMap<String, Option<String>>>,
    errors: HashMap<String, String>,
}

impl<'a> Lookups<'a> {
    fn new(inst: &'a Instance) -> Lookups<'a> {
        Lookups {
            inst,
            answers: HashMap::new(),
            errors: HashMap::new(),
        }
    }

    /// Asks `map` for every key not asked yet, in one `postmap -q -`.
    fn prefetch(&mut self, map: &str, keys: &[String]) {
        if self.errors.contains_key(map) {
            return;
        }
        let known = self.answers.entry(map.to_string()).or_default();
        let mut todo: Vec<String> = keys
            .iter()
            .map(|k| k.to_lowercase())
            .filter(|k| !known.contains_key(k))
            .collect();
        todo.sort();
        todo.dedup();
        if todo.is_empty() {
            return;
        }
        let target = map.strip_prefix("proxy:").unwrap_or(map);
        let mut args: Vec<&str> = self.inst.cfg.iter().map(String::as_str).collect();
        args.extend(["-q", "-", target]);
        let input: String = todo.iter().map(|k| format!("{k}\n")).collect();
        let out = match tools::run(&self.inst.postmap, &args, Some(&input)) {
            Ok(o) => o,
            Err(e) => {
                self.errors.insert(map.to_string(), e.to_string());
                return;
            }
        };
        if !out.ok && (out.stderr.contains("fatal") || out.code != Some(1)) {
            self.errors.insert(
                map.to_string(),
                tools::first_lines(&out.stderr, &out.stdout),
            );
            return;
        }
        let found: HashMap<String, String> = out
            .stdout
            .lines()
            .filter_map(|l| {
                let (k, v) = l.split_once('\t')?;
                Some((k.to_lowercase(), v.to_string()))
            })
            .collect();
        for k in todo {
            let v = found.get(&k).cloned();
            known.insert(k, v);
        }
    }

    /// What `map` answers for `key`; `Err` when the table cannot be read.
    fn get(&mut self, map: &str, key: &str) -> Result<Option<String>, String> {
        let k = key.to_lowercase();
        if !self.answers.get(map).is_some_and(|m| m.contains_key(&k)) {
            self.prefetch(map, std::slice::from_ref(&k));
        }
        if let Some(e) = self.errors.get(map) {
            return Err(e.clone());
        }
        Ok(self
            .answers
            .get(map)
            .and_then(|m| m.get(&k))
            .cloned()
            .flatten())
    }

    /// The first table of `maps` that answers `key` (maps_find: one key, tables in order).
    fn first(
        &mut self,
        maps: &[String],
        key: &str,
        skip_patterns: bool,
    ) -> Result<Option<(String, String)>, (String, String)> {
        for m in maps {
            if skip_patterns && is_pattern_map(m) {
                continue;
            }
            match self.get(m, key) {
                Ok(Some(v)) => return Ok(Some((m.clone(), v))),
                Ok(None) => {}
                Err(e) => return Err((m.clone(), e)),
            }
        }
        Ok(None)
    }
}

/// `a.b.example.no` → `.b.example.no`, `.example.no`, `.no` (or without the dots).
fn parents(domain: &str, dotted: bool) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = domain;
    while let Some(i) = rest[1..].find('.') {
        rest = &rest[i + 1..];
        out.push(if dotted {
            rest.to_string()
        } else {
            rest[1..].to_string()
        });
    }
    out
}

/// Whether `parent_domain_matches_subdomains` lists `feature` (then parent keys carry no dot).
fn parent_style(inst: &Instance, feature: &str) -> bool {
    split_list(inst.param("parent_domain_matches_subdomains"))
        .iter()
        .any(|f| f == feature)
}

/// Postfix's domain_list / string_list match of `domain` against a list parameter's value; returns
/// what matched. `domain_list` (mydestination, relay_domains) also matches parent domains.
fn list_match(
    look: &mut Lookups,
    value: &str,
    domain: &str,
    domain_list: bool,
    parent: bool,
) -> Result<Option<String>, String> {
    for raw in split_list(value) {
        let (neg, pat) = match raw.strip_prefix('!') {
            Some(p) => (true, p.to_string()),
            None => (false, raw.clone()),
        };
        let hit = if is_map(&pat) {
            let mut keys = vec![domain.to_string()];
            if domain_list && !is_pattern_map(&pat) {
                keys.extend(parents(domain, !parent));
            }
            let mut hit = false;
            for k in keys {
                if look
                    .get(&pat, &k)
                    .map_err(|e| format!("{pat}: {e}"))?
                    .is_some()
                {
                    hit = true;
                    break;
                }
            }
            hit
        } else if pat.starts_with('/') {
            let text = std::fs::read_to_string(&pat).unwrap_or_default();
            let inner: Vec<String> = text
                .lines()
                .map(|l| l.split('#').next().unwrap_or("").trim().to_string())
                .filter(|l| !l.is_empty())
                .collect();
            list_match(look, &inner.join(" "), domain, domain_list, parent)?.is_some()
        } else {
            let p = pat.to_lowercase();
            p == domain
                || (domain_list && parent && domain.ends_with(&format!(".{p}")))
                || (domain_list && p.starts_with('.') && domain.ends_with(&p))
        };
        if hit {
            return Ok((!neg).then_some(raw));
        }
    }
    Ok(None)
}

/// Where Postfix sends mail for a domain.
#[derive(Debug, Clone, Default)]
struct Route {
    transport: String,
    nexthop: String,
    /// How the route was chosen, in words.
    how: Vec<String>,
    /// A local address class: the domain is delivered on this server.
    local: Option<String>,
    /// Sender-dependent routing that the configuration alone cannot resolve.
    sender_dependent: Option<String>,
    /// A table could not be read.
    error: Option<String>,
}

impl Route {
    fn words(&self) -> String {
        let mut s = format!("{} to {}", self.transport, self.nexthop);
        if !self.how.is_empty() {
            s.push_str(&format!(" ({})", self.how.join("; ")));
        }
        s
    }
}

/// transport.c's update_entry: `:` keeps the channel, `transport:` resets the next hop.
fn update_entry(value: &str, domain: &str, route: &mut Route) {
    let (channel, hop) = value.split_once(':').unwrap_or((value, ""));
    if channel.is_empty() {
        if !hop.is_empty() {
            route.nexthop = hop.to_string();
        }
    } else {
        route.transport = channel.to_string();
        route.nexthop = if !hop.is_empty() {
            hop.to_string()
        } else if channel == "error" {
            "Address is undeliverable".into()
        } else {
            domain.to_string()
        };
    }
}

fn resolve(inst: &Instance, look: &mut Lookups, domain: &str) -> Route {
    let mut r = Route::default();
    let fail = |r: &mut Route, e: String| {
        r.error = Some(e);
    };
    let class = (|| -> Result<&'static str, String> {
        if list_match(
            look,
            inst.param("mydestination"),
            domain,
            true,
            parent_style(inst, "mydestination"),
        )?
        .is_some()
        {
            return Ok("mydestination");
        }
        if list_match(
            look,
            inst.param("virtual_alias_domains"),
            domain,
            false,
            false,
        )?
        .is_some()
        {
            return Ok("virtual_alias_domains");
        }
        if list_match(
            look,
            inst.param("virtual_mailbox_domains"),
            domain,
            false,
            false,
        )?
        .is_some()
        {
            return Ok("virtual_mailbox_domains");
        }
        if list_match(
            look,
            inst.param("relay_domains"),
            domain,
            true,
            parent_style(inst, "relay_domains"),
        )?
        .is_some()
        {
            return Ok("relay_domains");
        }
        Ok("default")
    })();
    let class = match class {
        Ok(c) => c,
        Err(e) => {
            fail(&mut r, e);
            "default"
        }
    };
    match class {
        "mydestination" => {
            r.transport = inst.param("local_transport").to_string();
            r.nexthop = domain.to_string();
            r.local =
                Some("it is in mydestination: this server delivers it to local mailboxes".into());
        }
        "virtual_alias_domains" => {
            r.transport = "error".into();
            r.nexthop = "User unknown".into();
            r.local =
                Some("it is in virtual_alias_domains: this server takes it as its own".into());
            return r;
        }
        "virtual_mailbox_domains" => {
            r.transport = inst.param("virtual_transport").to_string();
            r.nexthop = domain.to_string();
            r.local = Some(
                "it is in virtual_mailbox_domains: this server delivers it to local mailboxes"
                    .into(),
            );
        }
        other => {
            let (param, sd_transport) = if other == "relay_domains" {
                r.how.push("relay_domains".into());
                ("relay_transport", None)
            } else {
                (
                    "default_transport",
                    Some("sender_dependent_default_transport_maps"),
                )
            };
            r.transport = inst.param(param).to_string();
            if inst.param(param) != "smtp" {
                r.how.push(format!("{param} = {}", inst.param(param)));
            }
            let relayhost = inst.param("relayhost");
            if relayhost.is_empty() {
                r.nexthop = domain.to_string();
            } else {
                r.nexthop = relayhost.to_string();
                r.how.push(format!("relayhost = {relayhost}"));
            }
            let sd: Vec<&str> = ["sender_dependent_relayhost_maps"]
                .into_iter()
                .chain(sd_transport)
                .filter(|p| !inst.param(p).is_empty())
                .collect();
            if let Some(p) = sd.first() {
                r.sender_dependent = Some(format!(
                    "{p} = {} may send it elsewhere, depending on the sender",
                    inst.param(p)
                ));
            }
        }
    }
    // An explicit `transport:nexthop` in main.cf overrides the next hop.
    if let Some((t, hop)) = r.transport.clone().split_once(':') {
        r.transport = t.to_string();
        if !hop.is_empty() {
            r.nexthop = hop.to_string();
        }
    }
    let maps = split_list(inst.param("transport_maps"));
    if maps.is_empty() {
        return r;
    }
    let sample = format!("postmaster@{domain}");
    let mut keys: Vec<(String, bool)> = vec![(sample, false), (domain.to_string(), true)];
    keys.extend(
        parents(domain, !parent_style(inst, "transport_maps"))
            .into_iter()
            .map(|k| (k, true)),
    );
    keys.push(("*".into(), false));
    for (key, partial) in keys {
        match look.first(&maps, &key, partial) {
            Ok(Some((map, value))) => {
                let before = r.transport.clone();
                update_entry(&value, domain, &mut r);
                let shown = if value.is_empty() { ":" } else { &value };
                r.how
                    .push(format!("transport_maps {map}: `{key}` → `{shown}`"));
                if before != r.transport || value.contains(':') && !value.starts_with(':') {
                    // A transport of its own resets the next hop: the sender no longer matters.
                    if !value.starts_with(':') {
                        r.sender_dependent = None;
                    }
                }
                // A transport of its own (or an explicit next hop) leaves the local class.
                if !value.starts_with(':') || value.len() > 1 {
                    r.local = None;
                }
                return r;
            }
            Ok(None) => {}
            Err((map, e)) => {
                fail(&mut r, format!("transport_maps {map} cannot be read: {e}"));
                return r;
            }
        }
    }
    r
}

/// A TLS floor that Postfix's `protocols` syntax keeps: `>=TLSv1.2`, or exclusions/inclusions that
/// leave only TLS 1.2 and 1.3. Returns why not, or `None` when it holds.
fn floor_problem(value: &str, version: (u32, u32)) -> Option<String> {
    const ALL: [&str; 6] = ["SSLv2", "SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"];
    let tokens: Vec<&str> = value
        .split([':', ',', ' ', '\t'])
        .filter(|t| !t.is_empty())
        .collect();
    if tokens.is_empty() {
        return Some("no protocol floor (every TLS version is allowed)".into());
    }
    let mut min = 0usize;
    let mut max = ALL.len() - 1;
    let mut included: Vec<usize> = Vec::new();
    let mut excluded: Vec<usize> = Vec::new();
    for t in &tokens {
        let idx = |name: &str| ALL.iter().position(|a| a.eq_ignore_ascii_case(name));
        if let Some(v) = t.strip_prefix(">=") {
            if version < (3, 6) {
                return Some(format!(
                    "`{value}` needs Postfix 3.6; this Postfix {}.{} does not understand it and the policy fails",
                    version.0, version.1
                ));
            }
            min = idx(v)?;
        } else if let Some(v) = t.strip_prefix("<=") {
            max = idx(v)?;
        } else if let Some(v) = t.strip_prefix('!') {
            excluded.push(idx(v)?);
        } else {
            included.push(idx(t)?);
        }
    }
    let allowed: Vec<&str> = (0..ALL.len())
        .filter(|i| *i >= min && *i <= max)
        .filter(|i| included.is_empty() || included.contains(i))
        .filter(|i| !excluded.contains(i))
        .map(|i| ALL[i])
        .collect();
    let old: Vec<&str> = allowed
        .iter()
        .copied()
        .filter(|p| !["TLSv1.2", "TLSv1.3"].contains(p))
        .collect();
    if allowed.is_empty() {
        Some(format!("`{value}` allows no protocol at all"))
    } else if !old.is_empty() {
        Some(format!("`{value}` still allows {}", old.join(", ")))
    } else {
        None
    }
}

/// The TLS level and attributes of a policy value (`verify protocols=… match=…`).
fn policy_tokens(value: &str) -> (String, Vec<(String, String)>) {
    let mut it = split_list(value).into_iter();
    let level = it.next().unwrap_or_default().to_lowercase();
    let attrs = it
        .map(|a| match a.split_once('=') {
            Some((k, v)) => (k.to_lowercase(), v.to_string()),
            None => (a.to_lowercase(), String::new()),
        })
        .collect();
    (level, attrs)
}

fn is_loopback(nexthop: &str) -> bool {
    let host = nexthop
        .trim_start_matches('[')
        .split(']')
        .next()
        .unwrap_or(nexthop);
    let host = host.strip_prefix("ipv6:").unwrap_or(host);
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
        || (!nexthop.starts_with('[') && host.split(':').next() == Some("localhost"))
}

/// A per-domain judgement for one instance.
struct InstanceResult {
    check: DomainCheck,
    /// Mail to the domain is handed to another MTA or filter on this host.
    local_handoff: bool,
}

const TLS_PARAMS: &[&str] = &[
    "smtp_tls_security_level",
    "smtp_tls_policy_maps",
    "smtp_tls_CAfile",
    "smtp_tls_CApath",
    "smtp_tls_mandatory_protocols",
    "smtp_dns_support_level",
    "smtp_use_tls",
    "smtp_enforce_tls",
    "smtp_tls_per_site",
];

/// The global level of a smtp service (smtp_tls_policy.c global_tls_level).
fn global_level(inst: &Instance, svc: &str) -> String {
    let level = inst.service_param(svc, "unix", "smtp_tls_security_level");
    if !level.is_empty() {
        return level.to_lowercase();
    }
    let yes = |p: &str| {
        inst.service_param(svc, "unix", p)
            .eq_ignore_ascii_case("yes")
    };
    if yes("smtp_enforce_tls") {
        if yes("smtp_tls_enforce_peername") {
            "verify".into()
        } else {
            "encrypt".into()
        }
    } else if yes("smtp_use_tls") {
        "may".into()
    } else {
        "none".into()
    }
}

/// Why the CA setup of a service cannot verify a certificate, if it cannot.
fn ca_problem(inst: &Instance, svc: &str) -> Option<String> {
    let file = inst.service_param(svc, "unix", "smtp_tls_CAfile");
    let path = inst.service_param(svc, "unix", "smtp_tls_CApath");
    if !file.is_empty() {
        return match std::fs::metadata(file) {
            Err(_) => Some(format!(
                "smtp_tls_CAfile {file} does not exist: smtp(8) turns TLS off, so mail that requires it defers"
            )),
            Ok(m) if m.len() == 0 => Some(format!(
                "smtp_tls_CAfile {file} is empty: no certificate can be verified, mail defers"
            )),
            Ok(_) => None,
        };
    }
    if !path.is_empty() {
        let svc_chroot = inst.service(svc, "unix").is_some_and(|s| s.chroot);
        let real = if svc_chroot {
            Path::new(inst.param("queue_directory")).join(path.trim_start_matches('/'))
        } else {
            PathBuf::from(path)
        };
        return (!real.is_dir()).then(|| {
            format!(
                "smtp_tls_CApath {path} does not exist{}: no certificate can be verified, mail defers",
                if svc_chroot { " inside the chroot" } else { "" }
            )
        });
    }
    (!inst.yes("tls_append_default_CA")).then(|| {
        "no CA certificates (smtp_tls_CAfile and smtp_tls_CApath are empty): no certificate can be verified, mail defers".to_string()
    })
}

/// Judges the TLS policy one smtp service applies to one next hop.
fn judge_policy(
    inst: &Instance,
    look: &mut Lookups,
    svc: &str,
    dest: &str,
    domain: &str,
    exp: &Expected,
    c: &mut DomainCheck,
) {
    let maps = split_list(inst.service_param(svc, "unix", "smtp_tls_policy_maps"));
    let overrides = inst.overrides_of(svc, "unix", TLS_PARAMS);
    let whose = if overrides.is_empty() {
        String::new()
    } else {
        format!(", whose master.cf sets {}", overrides.join(", "))
    };
    let ours = maps
        .iter()
        .position(|m| map_parts(m).is_some_and(|(_, n)| same_path(n, &exp.policy.path)));
    if maps.is_empty()
        && !inst
            .service_param(svc, "unix", "smtp_tls_per_site")
            .is_empty()
    {
        c.fail(
            Verdict::Undecided,
            format!("transport `{svc}` uses the obsolete smtp_tls_per_site table, which bits-tls does not judge"),
        );
        return;
    }
    let dest_key = dest.to_lowercase();
    let hostname = crate::domain::is_normalised(&dest_key);
    let mut candidates = vec![dest_key.clone()];
    if hostname {
        candidates.extend(parents(&dest_key, true));
    }
    let mut found = None;
    for key in &candidates {
        match look.first(&maps, key, false) {
            Ok(Some((map, value))) => {
                found = Some((map, key.clone(), value));
                break;
            }
            Ok(None) => {}
            Err((map, e)) => {
                c.fail(
                    Verdict::Gap,
                    format!("the TLS policy table {map} cannot be read ({e}): Postfix defers mail to {dest}"),
                );
                return;
            }
        }
    }
    let (level, attrs, source) = match &found {
        Some((map, key, value)) => {
            let (l, a) = policy_tokens(value);
            let earlier = match (ours, maps.iter().position(|m| m == map)) {
                (Some(o), Some(i)) if i < o => ", which answers before the bits-tls table",
                _ => "",
            };
            (l, a, format!("{map}, key `{key}`{earlier}"))
        }
        None => {
            let l = global_level(inst, svc);
            let why = if maps.is_empty() {
                format!("smtp_tls_policy_maps is empty for `{svc}`")
            } else {
                format!("no entry for {dest} in {}", maps.join(", "))
            };
            (
                l.clone(),
                Vec::new(),
                format!("{why}; smtp_tls_security_level = {l}"),
            )
        }
    };
    let shown = match &found {
        Some((_, _, v)) => v.clone(),
        None => level.clone(),
    };
    c.policy = Some(format!("{shown} ({source})"));
    let route_words =
        |what: &str| format!("{dest} via transport `{svc}`{whose}: {what} ({source})");
    let override_level = exp
        .options
        .overrides
        .iter()
        .find(|o| o.domain.as_str() == domain)
        .and_then(|o| o.postfix_level.map(|l| (l, o.reason.clone())));
    match level.as_str() {
        "none" => c.fail(Verdict::Gap, route_words("no TLS at all (level none)")),
        "may" => c.fail(
            Verdict::Gap,
            route_words("opportunistic TLS (level may): plaintext when the server offers no STARTTLS"),
        ),
        "dane" => c.fail(
            Verdict::Gap,
            route_words("opportunistic DANE (level dane): plaintext unless the domain publishes TLSA under DNSSEC"),
        ),
        "encrypt" => match override_level {
            Some((PostfixLevel::Encrypt, reason)) => c.notes.push(format!(
                "level encrypt (no certificate check) by [[override]]: {}",
                crate::sanitize::one_line(&reason)
            )),
            _ => c.fail(
                Verdict::Gap,
                route_words("level encrypt: TLS without any certificate check, which does not meet the scheme"),
            ),
        },
        "fingerprint" => c.notes.push("the certificate is pinned by fingerprint".into()),
        "verify" | "secure" | "dane-only" => {
            let protocols = attrs
                .iter()
                .find(|(k, _)| k == "protocols")
                .map(|(_, v)| (v.clone(), "the entry's protocols="))
                .unwrap_or_else(|| {
                    (
                        inst.service_param(svc, "unix", "smtp_tls_mandatory_protocols")
                            .to_string(),
                        "smtp_tls_mandatory_protocols",
                    )
                });
            if let Some(p) = floor_problem(&protocols.0, inst.version()) {
                c.fail(
                    Verdict::Gap,
                    route_words(&format!("no TLS 1.2 floor: {} {p}", protocols.1)),
                );
            }
            if level == "dane-only" {
                let dns = inst.service_param(svc, "unix", "smtp_dns_support_level");
                if dns != "dnssec" {
                    c.fail(
                        Verdict::Gap,
                        route_words(&format!(
                            "level dane-only without smtp_dns_support_level = dnssec (it is {}): Postfix cannot validate TLSA records and defers the mail",
                            if dns.is_empty() { "empty".to_string() } else { format!("`{dns}`") }
                        )),
                    );
                }
            } else if let Some(p) = ca_problem(inst, svc) {
                c.fail(Verdict::Gap, route_words(&p));
            }
        }
        other => c.fail(
            Verdict::Gap,
            route_words(&format!(
                "`{other}` is not a TLS security level Postfix knows: the policy fails and the mail defers"
            )),
        ),
    }
    // SMTPUTF8 mail to an internationalised domain is looked up by its UTF-8 form.
    if dest_key == domain && inst.param("smtputf8_enable") != "no" {
        if let Some(u) = Domain::parse(domain, Default::default())
            .ok()
            .and_then(|d| d.utf8_key())
        {
            let mut keys = vec![u.clone()];
            keys.extend(parents(&u, true));
            let mut other = None;
            for k in &keys {
                if let Ok(Some((map, v))) = look.first(&maps, k, false) {
                    other = Some((map, v));
                    break;
                }
            }
            let a_value = found.as_ref().map(|(_, _, v)| v.clone());
            let u_value = other.as_ref().map(|(_, v)| v.clone());
            if u_value != a_value {
                c.fail(
                    Verdict::Gap,
                    format!(
                        "mail sent with SMTPUTF8 is looked up as {u}, which answers `{}`{}",
                        u_value.as_deref().unwrap_or("nothing"),
                        other.map(|(m, _)| format!(" ({m})")).unwrap_or_else(|| {
                            " (no entry: smtp_tls_security_level applies)".into()
                        })
                    ),
                );
            }
        }
    }
}

fn check_domain(inst: &Instance, look: &mut Lookups, d: &Domain, exp: &Expected) -> InstanceResult {
    let domain = d.as_str();
    let mut c = DomainCheck::new(domain);
    let route = resolve(inst, look, domain);
    c.route = route.words();
    let mut handoff = false;
    if let Some(e) = &route.error {
        c.fail(
            Verdict::Gap,
            format!("{e}: Postfix cannot route it and defers the mail"),
        );
        return InstanceResult {
            check: c,
            local_handoff: false,
        };
    }
    if let Some(why) = &route.local {
        c.fail(
            Verdict::Gap,
            format!("not sent anywhere: {why}; if it is your own domain, list it in own_domains"),
        );
        return InstanceResult {
            check: c,
            local_handoff: false,
        };
    }
    if let Some(sd) = &route.sender_dependent {
        c.fail(
            Verdict::Undecided,
            format!("cannot be decided from the configuration: {sd}"),
        );
    }
    let svc = route.transport.clone();
    let Some(service) = inst.service(&svc, "unix") else {
        c.fail(
            Verdict::Gap,
            format!("the transport `{svc}` is not a service in master.cf: Postfix defers the mail"),
        );
        return InstanceResult {
            check: c,
            local_handoff: false,
        };
    };
    match service.command.as_str() {
        "smtp" => {}
        "error" | "retry" => {
            c.fail(
                Verdict::Gap,
                format!(
                    "the transport `{svc}` runs {}: mail to it is never delivered",
                    service.command
                ),
            );
            return InstanceResult {
                check: c,
                local_handoff: false,
            };
        }
        "discard" => {
            c.fail(
                Verdict::Gap,
                format!("the transport `{svc}` discards mail to it"),
            );
            return InstanceResult {
                check: c,
                local_handoff: false,
            };
        }
        "local" | "virtual" => {
            c.fail(
                Verdict::Gap,
                format!(
                    "the transport `{svc}` ({}) delivers it on this server",
                    service.command
                ),
            );
            return InstanceResult {
                check: c,
                local_handoff: false,
            };
        }
        other => {
            c.fail(
                Verdict::Undecided,
                format!("the transport `{svc}` runs `{other}`, not smtp(8): bits-tls cannot see how mail leaves through it"),
            );
            return InstanceResult {
                check: c,
                local_handoff: false,
            };
        }
    }
    for hop in split_list(&route.nexthop) {
        if is_loopback(&hop) {
            handoff = true;
            c.fail(
                Verdict::Undecided,
                format!("handed to {hop} on this host (a content filter or another MTA): whatever listens there must force TLS"),
            );
            continue;
        }
        judge_policy(inst, look, &svc, &hop, domain, exp, &mut c);
    }
    InstanceResult {
        check: c,
        local_handoff: handoff,
    }
}

/// Findings about the policy or senders table bits-tls renders: is the compiled file there and
/// fresh, and does it answer what the state renders?
fn table_findings(inst: &Instance, table: &Table, what: &str, out: &mut Vec<Finding>) {
    let subject = Some(table.map.clone());
    let Some((t, _)) = map_parts(&table.map) else {
        return;
    };
    let entries: Option<BTreeMap<String, String>> = if t == "texthash" {
        std::fs::read_to_string(&table.path)
            .ok()
            .map(|s| Table::parse_entries(&s))
    } else {
        if let Some((src, db)) = compiled_file(&table.map) {
            match (tools::mtime(&src), tools::mtime(&db)) {
                (_, None) => {
                    out.push(Finding::new(
                        Severity::Gap,
                        subject.clone(),
                        format!("{} is missing: Postfix cannot read the {what} table; run postmap {}", db.display(), table.map),
                    ));
                    return;
                }
                (Some(s), Some(d)) if s > d => out.push(Finding::new(
                    Severity::Gap,
                    subject.clone(),
                    format!(
                        "{} is older than its source {}: Postfix still answers from the old table; run postmap {}",
                        db.display(),
                        src.display(),
                        table.map
                    ),
                )),
                _ => {}
            }
        }
        let mut args: Vec<&str> = inst.cfg.iter().map(String::as_str).collect();
        args.extend(["-s", table.map.as_str()]);
        match tools::run(&inst.postmap, &args, None) {
            Ok(Output {
                ok: true, stdout, ..
            }) => Some(
                stdout
                    .lines()
                    .filter_map(|l| l.split_once('\t'))
                    .map(|(k, v)| (k.to_lowercase(), v.to_string()))
                    .collect(),
            ),
            Ok(o) => {
                out.push(Finding::new(
                    Severity::Gap,
                    subject.clone(),
                    format!(
                        "postmap -s {} failed: {}",
                        table.map,
                        tools::first_lines(&o.stderr, &o.stdout)
                    ),
                ));
                None
            }
            Err(e) => {
                out.push(Finding::new(Severity::Gap, subject.clone(), e.to_string()));
                None
            }
        }
    };
    let Some(live) = entries else {
        if t == "texthash" {
            out.push(Finding::new(
                Severity::Gap,
                subject,
                format!(
                    "{} cannot be read: the {what} table is missing",
                    table.path.display()
                ),
            ));
        }
        return;
    };
    let missing: Vec<&String> = table
        .entries
        .keys()
        .filter(|k| !live.contains_key(*k))
        .collect();
    let different: Vec<&String> = table
        .entries
        .iter()
        .filter(|(k, v)| live.get(*k).is_some_and(|l| l != *v))
        .map(|(k, _)| k)
        .collect();
    if !missing.is_empty() || !different.is_empty() {
        let mut parts = Vec::new();
        if !missing.is_empty() {
            parts.push(format!(
                "{} entries missing ({})",
                missing.len(),
                sample(&missing)
            ));
        }
        if !different.is_empty() {
            parts.push(format!(
                "{} with another value ({})",
                different.len(),
                sample(&different)
            ));
        }
        out.push(Finding::new(
            Severity::Gap,
            subject,
            format!(
                "the {what} table Postfix reads differs from what the state renders: {}; run bits-tls sync (and postmap)",
                parts.join(", ")
            ),
        ));
    }
}

/// `a, b, c and 4 more`.
fn sample(keys: &[&String]) -> String {
    let shown: Vec<&str> = keys.iter().take(3).map(|k| k.as_str()).collect();
    let mut s = shown.join(", ");
    if keys.len() > 3 {
        s.push_str(&format!(" and {} more", keys.len() - 3));
    }
    s
}

fn same_path(a: &str, b: &Path) -> bool {
    let canon = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    canon(Path::new(a)) == canon(b)
}

/// Is the running Postfix using what is on disk? Processes started before a configuration file or a
/// texthash table changed still use the old one.
fn liveness(inst: &Instance, out: &mut Vec<Finding>) {
    let subject = inst.label();
    let pid_file = Path::new(inst.param("queue_directory")).join("pid/master.pid");
    let pid = std::fs::read_to_string(&pid_file)
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok());
    let Some(master) = pid.and_then(tools::process) else {
        out.push(Finding::new(
            Severity::Warning,
            subject,
            format!(
                "Postfix is not running (no live master in {}): this checks the configuration on disk, which takes effect when Postfix starts",
                pid_file.display()
            ),
        ));
        return;
    };
    let children = tools::children(master.pid);
    let newest = ["main.cf", "master.cf"]
        .iter()
        .filter_map(|f| tools::mtime(&inst.dir.join(f)).map(|t| (t, *f)))
        .max();
    if let Some((changed, file)) = newest {
        let stale: Vec<&tools::Process> = children.iter().filter(|p| p.started < changed).collect();
        if !stale.is_empty() {
            let names: BTreeSet<&str> = stale.iter().map(|p| p.comm.as_str()).collect();
            out.push(Finding::new(
                Severity::Warning,
                subject.clone(),
                format!(
                    "{} Postfix processes ({}) started before {file} last changed: the running server may not use what is checked here; run postfix reload",
                    stale.len(),
                    names.into_iter().collect::<Vec<_>>().join(", ")
                ),
            ));
        }
    }
    let smtp: Vec<&tools::Process> = children.iter().filter(|p| p.comm == "smtp").collect();
    let mut texthash: BTreeSet<String> = BTreeSet::new();
    for s in inst
        .services
        .iter()
        .filter(|s| s.command == "smtp" && s.kind == "unix")
    {
        for m in split_list(inst.service_param(&s.name, "unix", "smtp_tls_policy_maps")) {
            if map_parts(&m).is_some_and(|(t, _)| t == "texthash") {
                texthash.insert(m);
            }
        }
    }
    for m in texthash {
        let (_, file) = map_parts(&m).expect("a map");
        let Some(changed) = tools::mtime(Path::new(file)) else {
            continue;
        };
        let old: Vec<String> = smtp
            .iter()
            .filter(|p| p.started < changed)
            .map(|p| p.pid.to_string())
            .collect();
        if !old.is_empty() {
            out.push(Finding::new(
                Severity::Gap,
                Some(m.clone()),
                format!(
                    "{file} changed after running smtp processes started (pid {}): a texthash table is read when a process starts, so they still use the old one; run postfix reload",
                    old.join(", ")
                ),
            ));
        }
    }
}

/// The smtpd services that receive mail from the Internet (port 25), or none when master.cf has none.
fn port25_services(inst: &Instance) -> Vec<&Service> {
    inst.services
        .iter()
        .filter(|s| s.kind == "inet" && s.command == "smtpd")
        .filter(|s| {
            let port = s.name.rsplit(':').next().unwrap_or(&s.name);
            port == "smtp" || port == "25"
        })
        .collect()
}

/// Requirement 5.2.4: refuse plaintext mail from listed senders.
fn senders_findings(
    inst: &Instance,
    look: &mut Lookups,
    exp: &Expected,
    table: &Table,
    out: &mut Vec<Finding>,
) {
    let services = port25_services(inst);
    let targets: Vec<(String, String)> = if services.is_empty() {
        vec![("main.cf".into(), String::new())]
    } else {
        services
            .iter()
            .map(|s| (format!("master.cf service {}", s.name), s.name.clone()))
            .collect()
    };
    let get = |svc: &str, p: &str| -> String {
        if svc.is_empty() {
            inst.param(p).to_string()
        } else {
            inst.service_param(svc, "inet", p).to_string()
        }
    };
    let mut wired_maps = BTreeSet::new();
    for (where_, svc) in &targets {
        let subject = Some(match inst.label() {
            Some(l) => format!("{l}, {where_}"),
            None => where_.clone(),
        });
        let restrictions = split_list(&get(svc, "smtpd_sender_restrictions"));
        let pos = restrictions.windows(2).position(|w| {
            w[0] == "check_sender_access"
                && map_parts(&w[1]).is_some_and(|(_, n)| same_path(n, &table.path))
        });
        match pos {
            None => out.push(Finding::new(
                Severity::Gap,
                subject.clone(),
                format!(
                    "requirement 5.2.4: smtpd_sender_restrictions has no check_sender_access {}; plaintext mail from listed senders is accepted",
                    table.map
                ),
            )),
            Some(i) => {
                wired_maps.insert(restrictions[i + 1].clone());
                let after: Vec<&String> = restrictions[i + 2..]
                    .iter()
                    .filter(|r| *r == "permit_mynetworks" || *r == "permit_sasl_authenticated")
                    .collect();
                if !after.is_empty() {
                    out.push(Finding::new(
                        Severity::Gap,
                        subject.clone(),
                        format!(
                            "requirement 5.2.4: check_sender_access {} comes before {}: your own networks and users are refused too; put it after them",
                            table.map,
                            after.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" and ")
                        ),
                    ));
                }
                if restrictions[..i].iter().any(|r| r == "permit") {
                    out.push(Finding::new(
                        Severity::Gap,
                        subject.clone(),
                        format!("requirement 5.2.4: a `permit` before check_sender_access {} means it is never reached", table.map),
                    ));
                }
            }
        }
        let code = get(svc, "plaintext_reject_code");
        if code != "550" {
            out.push(Finding::new(
                Severity::Gap,
                subject.clone(),
                format!("requirement 5.2.4: plaintext_reject_code = {code}: a {code} only asks the sender to try again later; set 550"),
            ));
        }
        let mut tls = get(svc, "smtpd_tls_security_level").to_lowercase();
        if tls.is_empty() && get(svc, "smtpd_use_tls").eq_ignore_ascii_case("yes") {
            tls = "may".into();
        }
        let certs = [
            "smtpd_tls_cert_file",
            "smtpd_tls_chain_files",
            "smtpd_tls_eccert_file",
            "smtpd_tls_dcert_file",
        ];
        if matches!(tls.as_str(), "may" | "encrypt") && certs.iter().all(|c| get(svc, c).is_empty())
        {
            out.push(Finding::new(
                Severity::Gap,
                subject.clone(),
                "requirement 5.2.4: smtpd has no certificate (smtpd_tls_cert_file and smtpd_tls_chain_files are empty), so STARTTLS is not offered and listed senders cannot send at all",
            ));
        }
        if !matches!(tls.as_str(), "may" | "encrypt") {
            out.push(Finding::new(
                Severity::Gap,
                subject.clone(),
                format!(
                    "requirement 5.2.4: smtpd_tls_security_level = {}: STARTTLS is not offered, so listed senders cannot send at all",
                    if tls.is_empty() { "(empty)" } else { tls.as_str() }
                ),
            ));
        }
    }
    for map in wired_maps {
        let keys: Vec<String> = exp.domains.iter().map(|d| d.to_string()).collect();
        look.prefetch(&map, &keys);
        let mut wrong = Vec::new();
        for d in &keys {
            match look.get(&map, d) {
                Ok(Some(v)) if v.trim().eq_ignore_ascii_case("reject_plaintext_session") => {}
                Ok(_) => wrong.push(d.clone()),
                Err(e) => {
                    out.push(Finding::new(
                        Severity::Gap,
                        Some(map.clone()),
                        format!("requirement 5.2.4: the senders table cannot be read: {e}"),
                    ));
                    wrong.clear();
                    break;
                }
            }
        }
        if !wrong.is_empty() {
            let refs: Vec<&String> = wrong.iter().collect();
            out.push(Finding::new(
                Severity::Gap,
                Some(map.clone()),
                format!(
                    "requirement 5.2.4: listed domains that do not answer reject_plaintext_session: {} ({})",
                    wrong.len(),
                    sample(&refs)
                ),
            ));
        }
    }
    table_findings(inst, table, "senders", out);
}

/// Everything about one instance: per-domain results and server findings.
fn verify_instance(
    inst: &Instance,
    exp: &Expected,
    receives: bool,
) -> (Vec<InstanceResult>, Vec<Finding>) {
    let mut look = Lookups::new(inst);
    let mut findings = Vec::new();
    let subject = inst.label();
    // Ask every table once for all the keys the domains will need.
    let domains: Vec<String> = exp.domains.iter().map(|d| d.to_string()).collect();
    let mut tkeys: Vec<String> = Vec::new();
    for d in &domains {
        tkeys.push(format!("postmaster@{d}"));
        tkeys.push(d.clone());
        tkeys.extend(parents(d, true));
        tkeys.extend(parents(d, false));
    }
    tkeys.push("*".into());
    for list in [
        "transport_maps",
        "mydestination",
        "relay_domains",
        "virtual_alias_domains",
        "virtual_mailbox_domains",
    ] {
        for m in split_list(inst.param(list))
            .into_iter()
            .map(|m| m.trim_start_matches('!').to_string())
        {
            if is_map(&m) {
                look.prefetch(&m, &tkeys);
            }
        }
    }
    let mut pkeys: Vec<String> = Vec::new();
    for d in &exp.domains {
        pkeys.push(d.to_string());
        pkeys.extend(parents(d.as_str(), true));
        if let Some(u) = d.utf8_key() {
            pkeys.push(u.clone());
            pkeys.extend(parents(&u, true));
        }
    }
    for s in inst
        .services
        .iter()
        .filter(|s| s.command == "smtp" && s.kind == "unix")
    {
        for m in split_list(inst.service_param(&s.name, "unix", "smtp_tls_policy_maps")) {
            look.prefetch(&m, &pkeys);
        }
    }
    let results: Vec<InstanceResult> = exp
        .domains
        .iter()
        .map(|d| check_domain(inst, &mut look, d, exp))
        .collect();

    // An instance that hands every listed domain to another MTA on this host sends none of them to
    // the Internet: its own TLS settings do not matter for the list.
    let sends = results.iter().any(|r| !r.local_handoff);
    if !sends {
        if let Some(senders) = exp.senders.as_ref().filter(|_| receives) {
            senders_findings(inst, &mut look, exp, senders, &mut findings);
        }
        liveness(inst, &mut findings);
        return (results, findings);
    }
    // The list's table must be among smtp's policy tables.
    let smtp_maps = split_list(inst.service_param("smtp", "unix", "smtp_tls_policy_maps"));
    let ours = smtp_maps
        .iter()
        .find(|m| map_parts(m).is_some_and(|(_, n)| same_path(n, &exp.policy.path)));
    match ours {
        None => findings.push(Finding::new(
            Severity::Gap,
            subject.clone(),
            format!(
                "the bits-tls table {} is not in smtp_tls_policy_maps ({}): its entries are never consulted",
                exp.policy.map,
                if smtp_maps.is_empty() { "empty".to_string() } else { format!("`{}`", smtp_maps.join(", ")) }
            ),
        )),
        Some(m) => {
            let mut table = exp.policy.clone();
            if *m != table.map {
                findings.push(Finding::new(
                    Severity::Note,
                    subject.clone(),
                    format!("smtp_tls_policy_maps names the bits-tls table as {m} (the configuration says {})", table.map),
                ));
                table.map = m.clone();
            }
            table_findings(inst, &table, "policy", &mut findings);
        }
    }
    // Other compiled policy tables: a stale one answers from old entries.
    for m in &smtp_maps {
        if map_parts(m).is_some_and(|(_, n)| same_path(n, &exp.policy.path)) {
            continue;
        }
        if let Some((src, db)) = compiled_file(m) {
            if let (Some(s), Some(d)) = (tools::mtime(&src), tools::mtime(&db)) {
                if s > d {
                    findings.push(Finding::new(
                        Severity::Warning,
                        Some(m.clone()),
                        format!("{} is older than its source: Postfix answers from the old entries; run postmap {m}", db.display()),
                    ));
                }
            }
        }
    }
    if let Some(p) = ca_problem(inst, "smtp") {
        findings.push(Finding::new(
            Severity::Gap,
            subject.clone(),
            format!("transport smtp: {p}"),
        ));
    }
    if inst.yes("tls_required_enable") {
        findings.push(Finding::new(
            Severity::Gap,
            subject.clone(),
            "tls_required_enable = yes: a sender can opt out of TLS with a `TLS-Required: no` header (RFC 8689), which the scheme forbids; set tls_required_enable = no",
        ));
    }
    // smtp services that weaken TLS, even if no listed domain goes through them today.
    let used: BTreeSet<String> = results
        .iter()
        .filter_map(|r| r.check.route.split(' ').next().map(String::from))
        .collect();
    for s in inst
        .services
        .iter()
        .filter(|s| s.command == "smtp" && s.kind == "unix")
    {
        if used.contains(&s.name) {
            continue;
        }
        let o = inst.overrides_of(
            &s.name,
            "unix",
            &["smtp_tls_security_level", "smtp_tls_policy_maps"],
        );
        if !o.is_empty() {
            findings.push(Finding::new(
                Severity::Warning,
                subject.clone(),
                format!(
                    "master.cf service `{}` sets {}: no listed domain is routed to it now, but one routed there later would not be forced",
                    s.name,
                    o.join(", ")
                ),
            ));
        }
    }
    let delay = inst.param("delay_warning_time");
    if delay
        .trim_start_matches('0')
        .chars()
        .next()
        .is_none_or(|c| !c.is_ascii_digit())
    {
        findings.push(Finding::new(
            Severity::Warning,
            subject.clone(),
            format!("delay_warning_time = {delay}: senders hear nothing about mail waiting for TLS until it bounces after maximal_queue_lifetime ({}); set 4h", inst.param("maximal_queue_lifetime")),
        ));
    }
    if inst.param("smtp_tls_loglevel") == "0" {
        findings.push(Finding::new(
            Severity::Warning,
            subject.clone(),
            "smtp_tls_loglevel = 0: TLS connections are not logged, so the log is no evidence for an audit (and verify --log cannot tell); set 1",
        ));
    }
    if let Some(senders) = exp.senders.as_ref().filter(|_| receives) {
        senders_findings(inst, &mut look, exp, senders, &mut findings);
    }
    liveness(inst, &mut findings);
    (results, findings)
}

/// The primary instance and, on a multi-instance host, every secondary one.
fn instances(postconf: &Path, setup: &Setup) -> anyhow::Result<(Vec<Instance>, Vec<Finding>)> {
    let primary = Instance::load(postconf, setup.postfix_config_dir.as_deref(), None)?;
    let mut notes = Vec::new();
    let dirs = split_list(primary.param("multi_instance_directories"));
    let multi = primary.yes("multi_instance_enable") && !dirs.is_empty();
    let mut all = vec![primary];
    if multi {
        for d in dirs {
            let inst = Instance::load(postconf, Some(Path::new(&d)), None)?;
            if !inst.yes("multi_instance_enable") {
                notes.push(Finding::new(
                    Severity::Note,
                    inst.label(),
                    format!(
                        "instance {} ({d}) is disabled (multi_instance_enable = no): not checked",
                        inst.name
                    ),
                ));
                continue;
            }
            all.push(inst);
        }
    }
    Ok((all, notes))
}

pub fn verify(setup: &Setup, exp: &Expected) -> anyhow::Result<Verification> {
    let postconf = tools::find(
        &["postconf"],
        setup.postfix_command_dir.as_deref(),
        "--postfix-command-dir",
    )?;
    let (instances, mut findings) = instances(&postconf, setup)?;
    let multi = instances.len() > 1;
    let mut per_instance = Vec::new();
    // Requirement 5.2.4 is for the instances that receive from the Internet (a port 25 smtpd);
    // without any, main.cf of the primary instance is what there is.
    let any_port25 = instances.iter().any(|i| !port25_services(i).is_empty());
    for (n, inst) in instances.iter().enumerate() {
        let receives = if any_port25 {
            !port25_services(inst).is_empty()
        } else {
            n == 0
        };
        let (results, f) = verify_instance(inst, exp, receives);
        findings.extend(f);
        per_instance.push(results);
    }
    let domains = combine(&instances, per_instance, multi);
    let queues: Vec<super::evidence::PostfixQueue> = instances
        .iter()
        .map(|i| super::evidence::PostfixQueue {
            tls_logged: i.param("smtp_tls_loglevel").parse::<u32>().unwrap_or(0) >= 1,
            postqueue: i.postqueue.clone(),
            cfg: i.cfg.clone(),
            lifetime: i.param("maximal_queue_lifetime").to_string(),
            instance: multi.then(|| i.name.clone()),
        })
        .collect();
    let evidence = super::evidence::postfix(setup, exp, &queues)?;
    findings.extend(evidence.1);
    Ok(Verification {
        mta: super::Mta::Postfix,
        servers: instances.iter().map(|i| i.info(multi)).collect(),
        domains,
        findings,
        evidence: evidence.0,
    })
}

/// One verdict per domain across instances: the instances that send it to the Internet decide; one
/// that hands it to another instance or filter on this host does not.
fn combine(
    instances: &[Instance],
    per_instance: Vec<Vec<InstanceResult>>,
    multi: bool,
) -> Vec<DomainCheck> {
    if !multi {
        return per_instance
            .into_iter()
            .next()
            .unwrap_or_default()
            .into_iter()
            .map(|r| r.check)
            .collect();
    }
    let n = per_instance.first().map_or(0, Vec::len);
    let mut columns: Vec<std::vec::IntoIter<InstanceResult>> =
        per_instance.into_iter().map(|v| v.into_iter()).collect();
    (0..n)
        .map(|_| {
            let rows: Vec<(&Instance, InstanceResult)> = instances
                .iter()
                .zip(columns.iter_mut())
                .filter_map(|(i, col)| col.next().map(|r| (i, r)))
                .collect();
            let domain = rows[0].1.check.domain.clone();
            let mut c = DomainCheck::new(&domain);
            let sending: Vec<&(&Instance, InstanceResult)> =
                rows.iter().filter(|(_, r)| !r.local_handoff).collect();
            c.route = rows
                .iter()
                .map(|(i, r)| format!("{}: {}", i.name, r.check.route))
                .collect::<Vec<_>>()
                .join(" | ");
            if sending.is_empty() {
                c.fail(
                    Verdict::Undecided,
                    "every instance hands it to a next hop on this host: nothing here sends it to the Internet",
                );
            }
            for (i, r) in sending {
                for reason in &r.check.reasons {
                    c.fail(r.check.verdict, format!("instance {}: {reason}", i.name));
                }
                for n in &r.check.notes {
                    c.notes.push(format!("instance {}: {n}", i.name));
                }
                if let Some(p) = &r.check.policy {
                    c.policy = Some(match c.policy.take() {
                        Some(prev) => format!("{prev} | {}: {p}", i.name),
                        None => format!("{}: {p}", i.name),
                    });
                }
            }
            c
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_split_like_postfix() {
        assert_eq!(
            split_list("hash:/a, texthash:/b inline:{ x=y, z=w }"),
            ["hash:/a", "texthash:/b", "inline:{ x=y, z=w }"]
        );
        assert_eq!(parents("a.b.no", true), [".b.no", ".no"]);
        assert_eq!(parents("a.b.no", false), ["b.no", "no"]);
    }

    #[test]
    fn floors() {
        let v37 = (3, 7);
        assert_eq!(floor_problem(">=TLSv1.2", v37), None);
        assert_eq!(floor_problem("!SSLv2:!SSLv3:!TLSv1:!TLSv1.1", v37), None);
        assert_eq!(floor_problem("TLSv1.2, TLSv1.3", v37), None);
        assert!(floor_problem(">=TLSv1", v37)
            .unwrap()
            .contains("TLSv1, TLSv1.1"));
        assert!(floor_problem("!SSLv2, !SSLv3", v37).is_some());
        assert!(floor_problem(">=TLSv1.2", (3, 5))
            .unwrap()
            .contains("needs Postfix 3.6"));
        assert!(floor_problem("", v37).is_some());
    }

    #[test]
    fn transport_entries() {
        let mut r = Route {
            transport: "smtp".into(),
            nexthop: "[relay]:587".into(),
            ..Route::default()
        };
        update_entry(":", "bank.no", &mut r);
        assert_eq!(
            (r.transport.as_str(), r.nexthop.as_str()),
            ("smtp", "[relay]:587")
        );
        update_entry("smtp:", "bank.no", &mut r);
        assert_eq!(r.nexthop, "bank.no", "a transport resets the next hop");
        update_entry("relay:[x]:25", "bank.no", &mut r);
        assert_eq!(
            (r.transport.as_str(), r.nexthop.as_str()),
            ("relay", "[x]:25")
        );
    }

    #[test]
    fn loopback_next_hops() {
        for h in [
            "[127.0.0.1]:10025",
            "[::1]:25",
            "localhost:10025",
            "[localhost]",
        ] {
            assert!(is_loopback(h), "{h}");
        }
        for h in ["bank.no", "[relay.bank.no]:25", "[10.0.0.1]"] {
            assert!(!is_loopback(h), "{h}");
        }
    }
}
