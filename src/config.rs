//! `bits-tls.toml`: where the list comes from, what to write where, local additions and exclusions, and
//! the safety thresholds. Unknown keys are errors that name the key and the file, so a typo never
//! silently turns a setting off. Relative paths are relative to the file's directory.

use crate::domain::Domain;
use crate::list::columns::ColumnOverride;
use crate::plan::{DomainEntry, Output};
use crate::render::options::{
    ExchangeLayer, ExchangeOnlineLayer, EximLayer, PostfixLayer, RenderLayer,
};
use crate::render::Target;
use serde::Deserialize;
use std::path::{Path, PathBuf};

pub const DEFAULT_FILE: &str = "bits-tls.toml";

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub source: Option<String>,
    pub allow_http: Option<bool>,
    pub ca_file: Option<PathBuf>,
    pub timeout: Option<u64>,
    #[serde(default, deserialize_with = "de_size")]
    pub max_size: Option<u64>,
    #[serde(default, deserialize_with = "de_columns")]
    pub columns: Option<ColumnOverride>,
    /// The state file (default `bits-tls.state.json` beside this file).
    pub state: Option<PathBuf>,
    /// The audit trail (default `bits-tls.history.jsonl` beside the state file).
    pub history: Option<PathBuf>,
    /// Your own domains: left out of every output; a warning when they vanish from the list.
    #[serde(default, deserialize_with = "crate::domain::list_from_config")]
    pub own_domains: Vec<Domain>,
    #[serde(default)]
    pub extra_domains: Vec<DomainEntry>,
    #[serde(default)]
    pub exclude: Vec<DomainEntry>,
    /// Per-domain Postfix settings.
    #[serde(default, rename = "override")]
    pub overrides: Vec<OverrideEntry>,
    #[serde(default)]
    pub safety: Safety,
    #[serde(default)]
    pub output: Vec<OutputEntry>,
    /// Run once after the outputs' own hooks when anything changed, e.g. `["postfix", "reload"]`.
    pub reload: Option<Vec<String>>,
    pub subdomains: Option<bool>,
    #[serde(default)]
    pub postfix: PostfixLayer,
    #[serde(default)]
    pub exim: EximLayer,
    #[serde(default)]
    pub exchange: ExchangeLayer,
    #[serde(default)]
    pub exchange_online: ExchangeOnlineLayer,
    /// Mail to the postmaster on a change, a refusal, a failure or staleness.
    pub notify: Option<crate::notify::NotifyConfig>,
    /// Where the file was read from (set by `load`).
    #[serde(skip)]
    pub path: Option<PathBuf>,
}

/// `[[override]]`: a different Postfix level or `match=` for one domain, with the reason.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct OverrideEntry {
    #[serde(deserialize_with = "crate::domain::from_config")]
    pub domain: Domain,
    pub reason: String,
    pub postfix_level: Option<crate::render::options::PostfixLevel>,
    pub postfix_match: Option<String>,
}

/// `max_size = 8388608` or `max_size = "8MiB"`.
fn de_size<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Bytes(u64),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Bytes(0) => Err(serde::de::Error::custom(
            "max_size: must be at least 1 byte",
        )),
        Raw::Bytes(n) => Ok(Some(n)),
        Raw::Text(t) => crate::source::http::parse_size(&t)
            .map(Some)
            .map_err(|e| serde::de::Error::custom(format!("max_size: {e}"))),
    }
}

/// `columns = "domain=3,organization=1"`, checked when the file is read.
fn de_columns<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<ColumnOverride>, D::Error> {
    let text = String::deserialize(d)?;
    text.parse()
        .map(Some)
        .map_err(|e: String| serde::de::Error::custom(format!("columns: {e}")))
}

#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Safety {
    /// Refuse a sync that removes more than this share of the domains …
    pub max_removed_percent: u32,
    /// … when the previous list had at least this many.
    pub min_domains_for_guard: usize,
    /// Refuse a sync that adds more than this share of the previous list's domains.
    pub max_added_percent: u32,
    /// Removals also count against the list as it was at the last forced sync, or up to this many
    /// days ago, so that many small cuts cannot add up unseen.
    pub baseline_days: u32,
    /// Backups kept of each output file (`file.bak.1` is the newest); 0 keeps none.
    pub backups: usize,
    /// Seconds a sync waits for another one to finish.
    pub lock_timeout: u64,
    /// Seconds a hook may run before it is ended (with everything it started) and the sync rolled back.
    pub hook_timeout: u64,
}

impl Default for Safety {
    fn default() -> Self {
        Safety {
            max_removed_percent: 10,
            min_domains_for_guard: 10,
            max_added_percent: 50,
            baseline_days: 30,
            backups: 3,
            lock_timeout: 10,
            hook_timeout: 60,
        }
    }
}

/// One file to keep in step: a built-in target or a template, where to write it, what to run after.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct OutputEntry {
    pub target: Option<String>,
    pub template: Option<PathBuf>,
    pub path: PathBuf,
    /// argv, not a shell string; `{path}` is replaced by the output's path.
    pub hook: Option<Vec<String>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("could not read the configuration `{}`", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the configuration `{}` is not valid{}", .path.display(), .table.as_ref().map(|t| format!(" (in {t})")).unwrap_or_default())]
    Parse {
        path: PathBuf,
        /// The table the problem is in, e.g. `[[override]] #2`.
        table: Option<String>,
        #[source]
        source: Box<toml::de::Error>,
    },
    #[error("in `{}`: {message}", .path.display())]
    Invalid { path: PathBuf, message: String },
    #[error("no outputs are configured, so `{command}` has nothing to {verb}{}", match .config { Some(p) => format!(" (configuration `{}`)", p.display()), None => " (no configuration file was found)".into() })]
    NoOutputs {
        command: &'static str,
        verb: &'static str,
        config: Option<PathBuf>,
    },
}

/// The advice after a configuration error: it must never hurt (no command that overwrites the file).
const EXAMPLE_HINT: &str =
    "`bits-tls init -` prints a commented example of every setting (it writes no file)";

impl ConfigError {
    pub fn hint(&self) -> Option<String> {
        match self {
            ConfigError::Parse { source, .. } => Some(
                did_you_mean(source.message())
                    .map(|k| format!("did you mean `{k}`?"))
                    .unwrap_or_else(|| EXAMPLE_HINT.into()),
            ),
            ConfigError::Invalid { .. } => Some(EXAMPLE_HINT.into()),
            ConfigError::NoOutputs { config: Some(p), .. } => Some(format!(
                "add [[output]] entries to `{}`, or name them with --output TARGET=PATH",
                p.display()
            )),
            ConfigError::NoOutputs { config: None, .. } => Some(format!(
                "pass --config PATH (e.g. /etc/bits-tls/bits-tls.toml; no ./{DEFAULT_FILE} in `{}`), or --output TARGET=PATH",
                std::env::current_dir().unwrap_or_default().display()
            )),
            ConfigError::Read { .. } => None,
        }
    }
}

/// For serde's "unknown field `lock_timout`, expected one of `a`, `b`": the expected key closest to the
/// unknown one, if it is close enough to be a typo.
fn did_you_mean(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    let (unknown, expected) = rest.split_once('`')?;
    expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(|k| (edit_distance(unknown, k), k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min()
        .map(|(_, k)| k.to_string())
}

/// Levenshtein distance, for typos in short keys.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// The table a byte offset of a TOML text is in, as a person counts: `[postfix]`, `[[override]] #2`.
fn table_at(text: &str, offset: usize) -> Option<String> {
    let mut current = None;
    let mut counts: std::collections::HashMap<String, usize> = Default::default();
    let mut pos = 0;
    for line in text.split_inclusive('\n') {
        if pos > offset {
            break;
        }
        pos += line.len();
        let t = line.trim();
        if let Some(name) = t.strip_prefix("[[").and_then(|r| r.split_once("]]")) {
            let n = counts.entry(name.0.trim().to_string()).or_default();
            *n += 1;
            current = Some(format!("`[[{}]]` #{n}", name.0.trim()));
        } else if let Some(name) = t.strip_prefix('[').and_then(|r| r.split_once(']')) {
            current = Some(format!("`[{}]`", name.0.trim()));
        }
    }
    current
}

impl Config {
    /// Reads and checks a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.into(),
            source,
        })?;
        let mut cfg: Config = toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.into(),
            table: source.span().and_then(|s| table_at(&text, s.start)),
            source: Box::new(source),
        })?;
        cfg.path = Some(path.to_path_buf());
        cfg.check()?;
        Ok(cfg)
    }

    /// The configuration in effect: `--config`, else `./bits-tls.toml` if present, else none.
    pub fn discover(explicit: Option<&Path>) -> Result<Config, ConfigError> {
        match explicit {
            Some(p) => Config::load(p),
            None if Path::new(DEFAULT_FILE).is_file() => Config::load(Path::new(DEFAULT_FILE)),
            None => Ok(Config::default()),
        }
    }

    fn invalid(&self, message: String) -> ConfigError {
        ConfigError::Invalid {
            path: self.path.clone().unwrap_or_default(),
            message,
        }
    }

    /// The directory relative paths in this file are resolved against.
    pub fn base_dir(&self) -> PathBuf {
        match self.path.as_deref().and_then(Path::parent) {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }

    pub fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base_dir().join(p)
        }
    }

    /// What this file says about rendering.
    pub fn render_layer(&self) -> RenderLayer {
        RenderLayer {
            subdomains: self.subdomains,
            postfix: self.postfix.clone(),
            exim: self.exim.clone(),
            exchange: self.exchange.clone(),
            exchange_online: self.exchange_online.clone(),
        }
    }

    fn check(&self) -> Result<(), ConfigError> {
        if self.timeout.is_some_and(|t| !(1..=3600).contains(&t)) {
            return Err(self.invalid("timeout: must be from 1 to 3600 seconds".into()));
        }
        if self.max_size == Some(0) {
            return Err(self.invalid("max_size: must be at least 1 byte".into()));
        }
        if self.safety.hook_timeout == 0 {
            return Err(self.invalid("safety.hook_timeout: must be at least 1 second".into()));
        }
        if self.safety.max_removed_percent > 100 {
            return Err(self.invalid("safety.max_removed_percent: must be from 0 to 100".into()));
        }
        for (key, list) in [
            ("extra_domains", &self.extra_domains),
            ("exclude", &self.exclude),
        ] {
            for e in list {
                if e.reason.trim().is_empty() {
                    return Err(self.invalid(format!("{key}: `{}` needs a reason", e.domain)));
                }
            }
        }
        if let Some(e) = self
            .exclude
            .iter()
            .find(|e| self.extra_domains.iter().any(|x| x.domain == e.domain))
        {
            return Err(self.invalid(format!(
                "`{}` is both in [[exclude]] and in [[extra_domains]]; keep one",
                e.domain
            )));
        }
        self.domain_overrides()?;
        self.outputs()?;
        if let Some(n) = &self.notify {
            n.check().map_err(|m| self.invalid(m))?;
        }
        if let Some(hook) = &self.reload {
            if hook.is_empty() {
                return Err(self.invalid("reload: the command is empty".into()));
            }
        }
        Ok(())
    }

    /// The `[[override]]` entries, checked.
    pub fn domain_overrides(
        &self,
    ) -> Result<Vec<crate::render::options::DomainOverride>, ConfigError> {
        let mut out: Vec<crate::render::options::DomainOverride> = Vec::new();
        for o in &self.overrides {
            let domain = o.domain.clone();
            if out.iter().any(|x| x.domain == domain) {
                return Err(self.invalid(format!("override: `{domain}` appears twice")));
            }
            out.push(crate::render::options::DomainOverride {
                domain,
                reason: o.reason.clone(),
                postfix_level: o.postfix_level,
                postfix_match: o.postfix_match.clone(),
            });
        }
        Ok(out)
    }

    /// The `[[output]]` entries, resolved.
    pub fn outputs(&self) -> Result<Vec<Output>, ConfigError> {
        let mut out = Vec::new();
        for o in &self.output {
            let target = match (&o.target, &o.template) {
                (Some(t), None) => Target::parse(t).ok_or_else(|| {
                    self.invalid(format!(
                        "output target `{t}` is unknown; expected one of {}",
                        crate::render::BuiltIn::names()
                    ))
                })?,
                (None, Some(tpl)) => Target::Template(self.resolve(tpl)),
                (Some(_), Some(_)) => {
                    return Err(self.invalid(format!(
                        "output `{}` has both target and template; keep one",
                        o.path.display()
                    )))
                }
                (None, None) => {
                    return Err(self.invalid(format!(
                        "output `{}` needs a target (a built-in: {}) or a template",
                        o.path.display(),
                        crate::render::BuiltIn::names()
                    )))
                }
            };
            if let Some(why) = match &target {
                Target::BuiltIn(b) => b.not_an_output(),
                Target::Template(_) => None,
            } {
                return Err(self.invalid(format!("output `{}`: {why}", o.path.display())));
            }
            if o.hook.as_ref().is_some_and(|h| h.is_empty()) {
                return Err(
                    self.invalid(format!("output `{}`: the hook is empty", o.path.display()))
                );
            }
            out.push(Output {
                target,
                path: self.resolve(&o.path),
                hook: o.hook.clone(),
            });
        }
        check_unique_paths(&out).map_err(|m| self.invalid(m))?;
        Ok(out)
    }
}

pub fn check_unique_paths(outputs: &[Output]) -> Result<(), String> {
    for (i, a) in outputs.iter().enumerate() {
        if outputs[..i].iter().any(|b| b.path == a.path) {
            return Err(format!("two outputs write `{}`", a.path.display()));
        }
    }
    Ok(())
}

/// The starter file `bits-tls init` writes.
pub const STARTER: &str = r#"# bits-tls configuration. Every setting is optional; the values shown commented out are the defaults.
# Precedence: defaults < this file < environment (BITS_TLS_SOURCE, BITS_TLS_STATE) < command-line flags.
# Relative paths are relative to this file's directory.

# Where the list comes from: the Bits page (its CSV link is followed) or a CSV, as a URL or a file.
# source = "https://bits.no/tls"
# ca_file = "/etc/ssl/certs/proxy-ca.pem"   # also trust this CA (a TLS-inspecting proxy)
# timeout = 30                              # seconds per request
# max_size = 8388608                        # largest download, in bytes (or "8MiB")
# columns = "domain=3,organization=1"       # only if the list's headers are not recognised

# The list as last applied, and the audit trail (one JSON line per change).
# state = "bits-tls.state.json"
# history = "bits-tls.history.jsonl"

# Your own domains: never written to the outputs; a warning if they vanish from the list.
own_domains = []

# Local additions and exclusions need a reason; `expires` is the last day they apply (then a warning).
# [[extra_domains]]
# domain = "partner.example.no"
# reason = "bilateral agreement, ticket 1234"
# expires = 2027-06-30
#
# [[exclude]]
# domain = "broken.example.no"
# reason = "their MX certificate expired; reported, ticket 1235"
# expires = 2026-12-31

# Per-domain Postfix settings, e.g. mandatory DANE for a domain that publishes TLSA records.
# [[override]]
# domain = "bank.example.no"
# reason = "publishes TLSA under DNSSEC"
# postfix_level = "dane-only"        # and/or postfix_match = "nexthop:dot-nexthop"

[safety]
# max_removed_percent = 10     # refuse (exit 3) a sync that removes more than this share of the domains…
# min_domains_for_guard = 10   # …when the previous list had at least this many
# max_added_percent = 50       # refuse a sync that adds more than this share
# baseline_days = 30           # removals also count against the list of up to this many days ago
# backups = 3                  # file.bak.1 … file.bak.3 beside each output
# lock_timeout = 10            # seconds to wait for another sync
# hook_timeout = 60            # seconds a hook may run; then it is ended and the files put back

# What to write. target: postfix-policy, postfix-senders, exim-domains, exim-main, exim-acl,
# exim-router, exim-transport, exchange, exchange-online, exchange-verify, exchange-online-verify; or
# template = "file.j2" for your own format.
# hook is an argv list run after all files are in place ({path} is the output's path); a failing hook
# puts the previous files back.
[[output]]
target = "postfix-policy"
path = "/etc/postfix/bits_tls_policy"
hook = ["/usr/sbin/postmap", "hash:{path}"]

# [[output]]
# target = "postfix-senders"
# path = "/etc/postfix/bits_tls_senders"
# hook = ["/usr/sbin/postmap", "hash:{path}"]

# Exim: the list and four pieces, each where it belongs (Debian's split configuration shown; the
# header of each piece says where it goes otherwise). The domainlist reads the exim-domains path.
# [[output]]
# target = "exim-domains"
# path = "/etc/exim4/bits_forced_tls_domains"
# [[output]]
# target = "exim-main"
# path = "/etc/exim4/conf.d/main/00_local_bits_tls"
# [[output]]
# target = "exim-acl"           # the file CHECK_RCPT_LOCAL_ACL_FILE names
# path = "/etc/exim4/local_rcpt_acl"
# [[output]]
# target = "exim-router"
# path = "/etc/exim4/conf.d/router/190_local_bits_forced_tls"
# [[output]]
# target = "exim-transport"
# path = "/etc/exim4/conf.d/transport/30_bits_forced_tls"

# Run once after the hooks above when anything changed.
# reload = ["/usr/sbin/postfix", "reload"]
# reload = ["/usr/sbin/invoke-rc.d", "exim4", "reload"]   # Debian: update-exim4.conf, exim -bV, reload

# Mail the postmaster through the local MTA (sendmail -t -i, no shell) when a sync changed something
# (with the plan), was refused by a safety guard, failed, or has not succeeded for stale_after_days.
# A sync that changed nothing sends nothing. `bits-tls notify` sends a test mail.
# [notify]
# to = ["postmaster@example.no"]
# from = "bits-tls@mail.example.no"            # default: the MTA writes the invoking user's address
# sendmail = ["/usr/sbin/sendmail", "-t", "-i"]
# events = ["change", "refused", "failure", "stale"]
# stale_after_days = 92

# Also cover every subdomain in the Exim and Exchange outputs (the Postfix tables always do).
# subdomains = false

# [postfix]
# level = "verify"            # verify | secure | dane-only (encrypt only per domain, in [[override]])
# protocols = "legacy"        # legacy (!SSLv2:!SSLv3:!TLSv1:!TLSv1.1) | modern (>=TLSv1.2, Postfix 3.6+)
# match = "nexthop:dot-nexthop:.protection.outlook.com"   # only with verify/secure
# table_type = "hash"
# policy_path = "/etc/postfix/bits_tls_policy"
# senders_path = "/etc/postfix/bits_tls_senders"
# ca_file = "/etc/ssl/certs/ca-certificates.crt"   # RHEL: /etc/pki/tls/certs/ca-bundle.crt
# relay = "[relay.example.no]:587"   # the relayhost listed mail leaves through: adds its policy entry

# [exim]
# tls_library = "gnutls"      # gnutls (Debian) | openssl (Exim builds linked against OpenSSL)
# domains_file = "/etc/exim4/bits_forced_tls_domains"   # unset: the exim-domains output's path
# verify_certificates = "system"

# [exchange]
# connector_name = "Bits forced TLS"
# tls_auth_level = "CertificateValidation"   # or DomainValidation with tls_domain
# source_transport_servers = []
# max_message_size = "35MB"
# fqdn = "mail.example.no"    # the name the connector greets with; unset: the Internet connector's
# topology = "detect"         # detect: stop if mail leaves through a smart host or Edge | direct
# microsoft365_split = false  # a DomainValidation connector for domains hosted at Microsoft 365

# [exchange_online]
# connector_name = "Bits forced TLS"
# tls_settings = "CertificateValidation"
# max_domains_per_connector = 1000
# inbound = false
# inbound_connector_name = "Bits forced TLS inbound"
# microsoft365_split = false  # DomainValidation connectors for domains hosted at Microsoft 365
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn parse(text: &str) -> Result<Config, String> {
        let mut c: Config = toml::from_str(text).map_err(|e| e.to_string())?;
        c.path = Some("/etc/bits-tls/bits-tls.toml".into());
        c.check().map_err(|e| e.to_string())?;
        Ok(c)
    }

    #[test]
    fn starter_parses_and_has_one_output() {
        let c = parse(STARTER).unwrap();
        let outs = c.outputs().unwrap();
        assert_eq!(outs.len(), 1);
        assert_eq!(
            outs[0].target,
            Target::BuiltIn(crate::render::BuiltIn::PostfixPolicy)
        );
        assert_eq!(c.safety, Safety::default());
    }

    #[test]
    fn typos_get_a_suggestion_and_the_table_is_named() {
        let text = "[[override]]\ndomain = \"a.no\"\nreason = \"r\"\n[[override]]\ndomain = \"b.no\"\nreason = \"r\"\npostfix_levle = \"verify\"\n";
        let e: toml::de::Error = toml::from_str::<Config>(text).unwrap_err();
        assert_eq!(
            table_at(text, e.span().unwrap().start).as_deref(),
            Some("`[[override]]` #2")
        );
        assert_eq!(did_you_mean(e.message()).as_deref(), Some("postfix_level"));
        let e = toml::from_str::<Config>("[safety]\nlock_timout = 5\n").unwrap_err();
        assert_eq!(did_you_mean(e.message()).as_deref(), Some("lock_timeout"));
        let e = toml::from_str::<Config>("[safety]\nsomething_else = 5\n").unwrap_err();
        assert_eq!(did_you_mean(e.message()), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn unknown_keys_are_named() {
        let e = parse("sorce = \"x\"\n").unwrap_err();
        assert!(e.contains("unknown field `sorce`"), "{e}");
        let e = parse("[safety]\nmax_removed = 5\n").unwrap_err();
        assert!(e.contains("max_removed"), "{e}");
        let e = parse("[postfix]\nlevle = \"verify\"\n").unwrap_err();
        assert!(e.contains("levle"), "{e}");
    }

    #[test]
    fn entries_are_checked() {
        assert!(parse("own_domains = [\"not a domain\"]\n")
            .unwrap_err()
            .contains("own_domains"));
        assert!(parse("[[exclude]]\ndomain = \"x.no\"\nreason = \" \"\n")
            .unwrap_err()
            .contains("needs a reason"));
        assert!(parse("[[output]]\ntarget = \"sendmail\"\npath = \"x\"\n")
            .unwrap_err()
            .contains("unknown"));
        assert!(parse("[[output]]\npath = \"x\"\n")
            .unwrap_err()
            .contains("needs a target (a built-in: postfix-policy,"));
        assert!(parse(
            "[[output]]\ntarget = \"exim-domains\"\ntemplate = \"t.j2\"\npath = \"x\"\n"
        )
        .unwrap_err()
        .contains("has both target and template"));
        let two = "[[output]]\ntarget = \"exim-domains\"\npath = \"a\"\n[[output]]\ntarget = \"postfix-policy\"\npath = \"a\"\n";
        assert!(parse(two).unwrap_err().contains("two outputs write"));
    }

    #[test]
    fn expiry_dates_as_toml_dates_or_strings() {
        let c = parse("[[exclude]]\ndomain = \"a.no\"\nreason = \"r\"\nexpires = 2027-06-30\n[[extra_domains]]\ndomain = \"b.no\"\nreason = \"r\"\nexpires = \"2026-01-02\"\n").unwrap();
        let d = NaiveDate::from_ymd_opt(2027, 6, 30).unwrap();
        assert_eq!(c.exclude[0].expires, Some(d));
        assert!(c.exclude[0].active(d), "it applies through its last day");
        assert!(!c.exclude[0].active(d.succ_opt().unwrap()));
        assert_eq!(
            c.extra_domains[0].expires,
            NaiveDate::from_ymd_opt(2026, 1, 2)
        );
        assert!(
            parse("[[exclude]]\ndomain = \"a.no\"\nreason = \"r\"\nexpires = \"soon\"\n")
                .unwrap_err()
                .contains("not a date")
        );
    }

    #[test]
    fn relative_paths_follow_the_file() {
        let c = parse("[[output]]\ntemplate = \"t.j2\"\npath = \"out/x\"\n").unwrap();
        let o = &c.outputs().unwrap()[0];
        assert_eq!(o.path, PathBuf::from("/etc/bits-tls/out/x"));
        assert_eq!(o.target, Target::Template("/etc/bits-tls/t.j2".into()));
    }
}
