//! Per-target choices (Postfix level and protocol syntax, Exim TLS library, Exchange connector names …),
//! with the defaults the scheme needs, declared once in each type's `Default`. Each type has a layer
//! (every field optional) that `bits-tls.toml` and the flags fill; `settings` merges them. Every value
//! that reaches an output is checked here first.

use crate::domain::Domain;
use crate::layer::{layer, Combine};
use serde::{Deserialize, Serialize};

/// What one layer (the file or the flags) says about rendering.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RenderLayer {
    pub subdomains: Option<bool>,
    pub postfix: PostfixLayer,
    pub exim: EximLayer,
    pub exchange: ExchangeLayer,
    pub exchange_online: ExchangeOnlineLayer,
}

impl Combine for RenderLayer {
    fn combine(self, lower: Self) -> Self {
        RenderLayer {
            subdomains: self.subdomains.combine(lower.subdomains),
            postfix: self.postfix.combine(lower.postfix),
            exim: self.exim.combine(lower.exim),
            exchange: self.exchange.combine(lower.exchange),
            exchange_online: self.exchange_online.combine(lower.exchange_online),
        }
    }
}

impl RenderLayer {
    /// The render options: this layer over the defaults (overrides come from the file alone).
    pub fn resolve(self, overrides: Vec<DomainOverride>) -> RenderOptions {
        let d = RenderOptions::default();
        RenderOptions {
            subdomains: self.subdomains.unwrap_or(d.subdomains),
            postfix: self.postfix.resolve(d.postfix),
            exim: self.exim.resolve(d.exim),
            exchange: self.exchange.resolve(d.exchange),
            exchange_online: self.exchange_online.resolve(d.exchange_online),
            overrides,
        }
    }
}

layer! {
    /// `[postfix]`
    pub struct PostfixLayer => PostfixOptions {
        level: PostfixLevel,
        protocols: PostfixProtocols,
        #[serde(rename = "match")]
        match_: String,
        table_type: TableType,
        policy_path: String,
        senders_path: String,
        ca_file: String,
        relay: String,
    }
}

layer! {
    /// `[exim]`
    pub struct EximLayer => EximOptions {
        tls_library: EximTls,
        domains_file: String,
        verify_certificates: String,
    }
}

layer! {
    /// `[exchange]`
    pub struct ExchangeLayer => ExchangeOptions {
        connector_name: String,
        tls_auth_level: TlsValidation,
        #[serde(deserialize_with = "de_some_domain", default)]
        tls_domain: Domain,
        source_transport_servers: Vec<String>,
        max_message_size: String,
        #[serde(deserialize_with = "de_some_domain", default)]
        fqdn: Domain,
        topology: ExchangeTopology,
        microsoft365_split: bool,
    }
}

layer! {
    /// `[exchange_online]`
    pub struct ExchangeOnlineLayer => ExchangeOnlineOptions {
        connector_name: String,
        tls_settings: TlsValidation,
        #[serde(deserialize_with = "de_some_domain", default)]
        tls_domain: Domain,
        max_domains_per_connector: usize,
        inbound: bool,
        inbound_connector_name: String,
        microsoft365_split: bool,
    }
}

/// A domain in the configuration, as a person writes it.
fn de_some_domain<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Domain>, D::Error> {
    crate::domain::from_config(d).map(Some)
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RenderOptions {
    /// Also cover every subdomain in the Exim and Exchange outputs (the Postfix tables always do), and
    /// accept `*.x` entries in the list.
    pub subdomains: bool,
    pub postfix: PostfixOptions,
    pub exim: EximOptions,
    pub exchange: ExchangeOptions,
    pub exchange_online: ExchangeOnlineOptions,
    /// Per-domain Postfix settings (from `[[override]]` in the configuration).
    pub overrides: Vec<DomainOverride>,
}

/// A different Postfix level or `match=` for one domain (e.g. `dane-only` for a domain that publishes
/// TLSA records).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainOverride {
    pub domain: Domain,
    pub reason: String,
    pub postfix_level: Option<PostfixLevel>,
    pub postfix_match: Option<String>,
}

impl DomainOverride {
    /// The Postfix options for this domain: the general ones with this override applied.
    pub fn postfix(&self, base: &PostfixOptions) -> PostfixOptions {
        PostfixOptions {
            level: self.postfix_level.unwrap_or(base.level),
            match_: self.postfix_match.clone().or_else(|| base.match_.clone()),
            ..base.clone()
        }
    }
}

/// `smtp_tls_policy_maps` security levels that force TLS. `dane` (opportunistic) and `may` are not offered:
/// they would not force anything.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum PostfixLevel {
    /// TLS without certificate checks: does not meet the scheme (only per domain, in an [[override]])
    Encrypt,
    /// Trusted chain and a certificate matching the MX host name (recommended)
    #[default]
    Verify,
    /// Trusted chain and a certificate naming the recipient domain (fails for Microsoft 365 without `match`)
    Secure,
    /// Mandatory DANE: only for domains that publish TLSA records under DNSSEC
    DaneOnly,
}

impl PostfixLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            PostfixLevel::Encrypt => "encrypt",
            PostfixLevel::Verify => "verify",
            PostfixLevel::Secure => "secure",
            PostfixLevel::DaneOnly => "dane-only",
        }
    }
}

/// How the TLS 1.2 floor is written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum PostfixProtocols {
    /// `!SSLv2:!SSLv3:!TLSv1:!TLSv1.1`, understood by every Postfix in use
    #[default]
    Legacy,
    /// `>=TLSv1.2`, Postfix 3.6 and newer
    Modern,
}

impl PostfixProtocols {
    pub fn value(self) -> &'static str {
        match self {
            PostfixProtocols::Legacy => "!SSLv2:!SSLv3:!TLSv1:!TLSv1.1",
            PostfixProtocols::Modern => ">=TLSv1.2",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum TableType {
    #[default]
    Hash,
    Lmdb,
    Cdb,
    /// Read at start-up, no postmap needed (needs `postfix reload`)
    Texthash,
}

impl TableType {
    pub fn as_str(self) -> &'static str {
        match self {
            TableType::Hash => "hash",
            TableType::Lmdb => "lmdb",
            TableType::Cdb => "cdb",
            TableType::Texthash => "texthash",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PostfixOptions {
    pub level: PostfixLevel,
    pub protocols: PostfixProtocols,
    /// `match=` attribute for `verify`/`secure`, e.g. `nexthop:dot-nexthop:.protection.outlook.com`.
    #[serde(rename = "match")]
    pub match_: Option<String>,
    pub table_type: TableType,
    /// Where the policy table will live, for the `main.cf` lines in the header.
    pub policy_path: String,
    /// Where the 5.2.4 senders table will live.
    pub senders_path: String,
    /// `smtp_tls_CAfile` in the `main.cf` lines: the distribution's CA bundle (Debian's by default).
    pub ca_file: String,
    /// A relayhost or transport next hop (`[relay.example.no]:587`) that listed mail leaves through: the
    /// policy table gets an entry for it, because Postfix then looks up the next hop, not the domain.
    pub relay: Option<String>,
}

impl Default for PostfixOptions {
    fn default() -> Self {
        PostfixOptions {
            level: PostfixLevel::Verify,
            protocols: PostfixProtocols::Legacy,
            match_: None,
            table_type: TableType::Hash,
            policy_path: "/etc/postfix/bits_tls_policy".into(),
            senders_path: "/etc/postfix/bits_tls_senders".into(),
            ca_file: "/etc/ssl/certs/ca-certificates.crt".into(),
            relay: None,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum EximTls {
    /// Debian's exim4 packages
    #[default]
    Gnutls,
    /// Exim builds linked against OpenSSL: TLS 1.2 cipher suites only on the transport
    Openssl,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EximOptions {
    pub tls_library: EximTls,
    /// The domain list file the `domainlist` reads. Unset, `diff`, `sync` and `check` use the path the
    /// `exim-domains` output is written to (`settings::job`).
    pub domains_file: String,
    /// `tls_verify_certificates`: `system` or a CA bundle path.
    pub verify_certificates: String,
}

impl Default for EximOptions {
    fn default() -> Self {
        EximOptions {
            tls_library: EximTls::Gnutls,
            domains_file: "/etc/exim4/bits_forced_tls_domains".into(),
            verify_certificates: "system".into(),
        }
    }
}

/// Exchange Server `TlsAuthLevel` values that validate certificates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
pub enum TlsValidation {
    /// Chain and revocation
    #[default]
    #[value(name = "CertificateValidation")]
    CertificateValidation,
    /// Also the certificate's name against TlsDomain (or the recipient domain)
    #[value(name = "DomainValidation")]
    DomainValidation,
}

impl TlsValidation {
    pub fn as_str(self) -> &'static str {
        match self {
            TlsValidation::CertificateValidation => "CertificateValidation",
            TlsValidation::DomainValidation => "DomainValidation",
        }
    }
}

/// How mail to the Internet leaves an Exchange organisation, as far as the script must know.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum ExchangeTopology {
    /// Stop if mail leaves through a smart host or an Edge subscription (a DNS-routed connector would
    /// bypass it)
    #[default]
    Detect,
    /// Mail to the listed domains may leave from these servers directly, by DNS
    Direct,
}

impl ExchangeTopology {
    /// As the script's `-Topology` parameter spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            ExchangeTopology::Detect => "Detect",
            ExchangeTopology::Direct => "Direct",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExchangeOptions {
    pub connector_name: String,
    pub tls_auth_level: TlsValidation,
    pub tls_domain: Option<Domain>,
    pub source_transport_servers: Vec<String>,
    /// `MaxMessageSize`, e.g. `35MB`.
    pub max_message_size: Option<String>,
    /// The name the connector greets with (`Fqdn`); none: the script copies the Internet send
    /// connector's.
    pub fqdn: Option<Domain>,
    pub topology: ExchangeTopology,
    /// Domains whose MX hosts are all `*.mail.protection.outlook.com` get a second connector with
    /// DomainValidation against that name.
    pub microsoft365_split: bool,
}

impl Default for ExchangeOptions {
    fn default() -> Self {
        ExchangeOptions {
            connector_name: "Bits forced TLS".into(),
            tls_auth_level: TlsValidation::CertificateValidation,
            tls_domain: None,
            source_transport_servers: Vec::new(),
            max_message_size: None,
            fqdn: None,
            topology: ExchangeTopology::Detect,
            microsoft365_split: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExchangeOnlineOptions {
    /// Outbound connector name; numbered (`… 1`, `… 2`) when the list is split.
    pub connector_name: String,
    pub tls_settings: TlsValidation,
    pub tls_domain: Option<Domain>,
    /// Most RecipientDomains per outbound connector before splitting (Microsoft's reported ceiling is
    /// about 1800, unconfirmed).
    pub max_domains_per_connector: usize,
    /// Also create a partner inbound connector with RequireTls (requirement 5.2.4).
    pub inbound: bool,
    pub inbound_connector_name: String,
    /// Domains whose MX hosts are all `*.mail.protection.outlook.com` get their own connector(s) with
    /// DomainValidation against that name.
    pub microsoft365_split: bool,
}

impl Default for ExchangeOnlineOptions {
    fn default() -> Self {
        ExchangeOnlineOptions {
            connector_name: "Bits forced TLS".into(),
            tls_settings: TlsValidation::CertificateValidation,
            tls_domain: None,
            max_domains_per_connector: 1000,
            inbound: false,
            inbound_connector_name: "Bits forced TLS inbound".into(),
            microsoft365_split: false,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("option `{key}`{} {problem}", .flag.as_ref().map(|f| format!(" (`{f}`)")).unwrap_or_default())]
pub struct OptionError {
    /// The configuration key (`postfix.match`).
    pub key: &'static str,
    /// The flag that sets it, when there is one (`--postfix-match`); filled in by `settings`.
    pub flag: Option<String>,
    pub problem: String,
}

fn bad(key: &'static str, problem: impl Into<String>) -> OptionError {
    OptionError {
        key,
        flag: None,
        problem: problem.into(),
    }
}

/// An absolute path of plain characters (it is written into config files and comments).
fn check_path(key: &'static str, p: &str) -> Result<(), OptionError> {
    let plain = p.starts_with('/')
        && p.len() <= 255
        && !p.contains("..")
        && p.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+".contains(&b));
    if plain {
        Ok(())
    } else {
        Err(bad(
            key,
            format!(
                "must be an absolute path of letters, digits and `/._-+`, not `{}`",
                crate::sanitize::excerpt(p, 80)
            ),
        ))
    }
}

/// A connector or server name: letters, digits, space and `._-()`, 1–64 characters.
fn check_name(key: &'static str, n: &str) -> Result<(), OptionError> {
    let ok = !n.trim().is_empty()
        && n.len() <= 64
        && n.trim() == n
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || " ._-()".contains(c));
    if ok {
        Ok(())
    } else {
        Err(bad(
            key,
            format!(
                "must be 1–64 letters, digits, spaces or `._-()`, not `{}`",
                crate::sanitize::excerpt(n, 80)
            ),
        ))
    }
}

/// `match=` only with verify/secure, and only of hostname, nexthop, dot-nexthop or domains.
fn check_postfix(p: &PostfixOptions, key: &'static str) -> Result<(), OptionError> {
    if let Some(m) = &p.match_ {
        if !matches!(p.level, PostfixLevel::Verify | PostfixLevel::Secure) {
            return Err(bad(key, "applies only to the levels verify and secure"));
        }
        let ok = !m.is_empty()
            && m.split(':').all(|part| {
                matches!(part, "hostname" | "nexthop" | "dot-nexthop")
                    || crate::domain::is_normalised(part.strip_prefix('.').unwrap_or(part))
            });
        if !ok {
            return Err(bad(
                    key,
                    format!(
                        "must be `:`-separated hostname, nexthop, dot-nexthop or domains (`.domain` for subdomains), not `{}`",
                        crate::sanitize::excerpt(m, 80)
                    ),
                ));
        }
    }
    Ok(())
}

/// A relayhost-style next hop, normalised as the policy table key Postfix looks up (`[host]:port` as
/// written, host in lower case); `None` when it is not one.
pub fn relay_key(next_hop: &str) -> Option<String> {
    let (host, port) = match next_hop.strip_prefix('[') {
        Some(rest) => {
            let (host, after) = rest.split_once(']')?;
            match after {
                "" => (host, None),
                p => (host, Some(p.strip_prefix(':')?)),
            }
        }
        None => match next_hop.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (next_hop, None),
        },
    };
    let host = host.to_ascii_lowercase();
    let ip = next_hop.starts_with('[') && host.parse::<std::net::Ipv4Addr>().is_ok();
    if !ip && !crate::domain::is_normalised(&host) {
        return None;
    }
    if let Some(p) = port {
        let ok = !p.is_empty()
            && p.len() <= 5
            && p.bytes().all(|b| b.is_ascii_digit())
            && (1..=65535).contains(&p.parse::<u32>().ok()?);
        if !ok {
            return None;
        }
    }
    let bracketed = next_hop.starts_with('[');
    Some(match (bracketed, port) {
        (true, Some(p)) => format!("[{host}]:{p}"),
        (true, None) => format!("[{host}]"),
        (false, Some(p)) => format!("{host}:{p}"),
        (false, None) => host,
    })
}

impl RenderOptions {
    /// What needs saying on every run, whatever the list: per-domain `encrypt` overrides.
    pub fn warnings(&self) -> Vec<String> {
        self.overrides
            .iter()
            .filter(|o| o.postfix(&self.postfix).level == PostfixLevel::Encrypt)
            .map(|o| {
                format!(
                    "[[override]] for {} sets the Postfix level `encrypt`: TLS without a certificate check, which does not meet the scheme (reason given: {})",
                    o.domain,
                    crate::sanitize::excerpt(&o.reason, 120)
                )
            })
            .collect()
    }

    /// Checks every value that reaches an output.
    pub fn validate(&self) -> Result<(), OptionError> {
        check_postfix(&self.postfix, "postfix.match")?;
        for o in &self.overrides {
            check_postfix(&o.postfix(&self.postfix), "override.postfix_match")?;
            if o.reason.trim().is_empty() {
                return Err(bad(
                    "override.reason",
                    format!("is required (for `{}`)", o.domain),
                ));
            }
        }
        let p = &self.postfix;
        if p.level == PostfixLevel::Encrypt {
            return Err(bad(
                "postfix.level",
                "may not be `encrypt` for the whole list: it checks no certificate and does not meet the scheme; give the domains that need it an [[override]] with a reason",
            ));
        }
        check_path("postfix.policy_path", &p.policy_path)?;
        check_path("postfix.senders_path", &p.senders_path)?;
        check_path("postfix.ca_file", &p.ca_file)?;
        if let Some(r) = &p.relay {
            if relay_key(r).is_none() {
                return Err(bad(
                    "postfix.relay",
                    format!(
                        "must be a next hop as in relayhost: `[host]`, `[host]:port`, `host` or `host:port`, not `{}`",
                        crate::sanitize::excerpt(r, 80)
                    ),
                ));
            }
        }
        check_path("exim.domains_file", &self.exim.domains_file)?;
        if self.exim.verify_certificates != "system" {
            check_path("exim.verify_certificates", &self.exim.verify_certificates)?;
        }
        let x = &self.exchange;
        check_name("exchange.connector_name", &x.connector_name)?;
        for s in &x.source_transport_servers {
            check_name("exchange.source_transport_servers", s)?;
        }
        if x.tls_auth_level == TlsValidation::DomainValidation && x.tls_domain.is_none() {
            return Err(bad(
                "exchange.tls_domain",
                "is required with DomainValidation",
            ));
        }
        if let Some(size) = &x.max_message_size {
            let digits = size.trim_end_matches(|c: char| c.is_ascii_alphabetic());
            let unit = &size[digits.len()..];
            let ok = size == "unlimited"
                || (!digits.is_empty()
                    && digits.len() <= 9
                    && digits.bytes().all(|b| b.is_ascii_digit())
                    && matches!(unit, "B" | "KB" | "MB" | "GB"));
            if !ok {
                return Err(bad(
                    "exchange.max_message_size",
                    "must be like `35MB` or `unlimited`",
                ));
            }
        }
        let o = &self.exchange_online;
        check_name("exchange_online.connector_name", &o.connector_name)?;
        check_name(
            "exchange_online.inbound_connector_name",
            &o.inbound_connector_name,
        )?;
        if o.tls_settings == TlsValidation::DomainValidation && o.tls_domain.is_none() {
            return Err(bad(
                "exchange_online.tls_domain",
                "is required with DomainValidation",
            ));
        }
        if !(1..=5000).contains(&o.max_domains_per_connector) {
            return Err(bad(
                "exchange_online.max_domains_per_connector",
                "must be from 1 to 5000",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(RenderOptions::default().validate(), Ok(()));
    }

    #[test]
    fn rejects_values_that_could_inject() {
        let mut o = RenderOptions::default();
        o.postfix.match_ = Some("nexthop verify".into());
        assert_eq!(o.validate().unwrap_err().key, "postfix.match");
        o.postfix.match_ = Some("nexthop:dot-nexthop:.protection.outlook.com".into());
        assert_eq!(o.validate(), Ok(()));
        o.postfix.level = PostfixLevel::Encrypt;
        assert_eq!(o.validate().unwrap_err().key, "postfix.match");

        let mut o = RenderOptions::default();
        o.exim.domains_file = "/etc/exim4/x\n/bin/sh".into();
        assert_eq!(o.validate().unwrap_err().key, "exim.domains_file");
        o.exim.domains_file = "relative/path".into();
        assert!(o.validate().is_err());

        let mut o = RenderOptions::default();
        o.exchange.connector_name = "Bits'; Remove-Item C:\\".into();
        assert_eq!(o.validate().unwrap_err().key, "exchange.connector_name");

        let mut o = RenderOptions::default();
        o.exchange_online.tls_settings = TlsValidation::DomainValidation;
        assert_eq!(o.validate().unwrap_err().key, "exchange_online.tls_domain");

        let mut o = RenderOptions::default();
        o.exchange.max_message_size = Some("35MB; x".into());
        assert!(o.validate().is_err());
        o.exchange.max_message_size = Some("35MB".into());
        assert_eq!(o.validate(), Ok(()));
    }

    #[test]
    fn reads_from_toml_like_data_and_refuses_unknown_keys() {
        let o: RenderOptions =
            serde_json::from_str(r#"{"postfix": {"level": "secure", "match": "nexthop"}}"#)
                .unwrap();
        assert_eq!(o.postfix.level, PostfixLevel::Secure);
        assert!(
            serde_json::from_str::<RenderOptions>(r#"{"postfix": {"levle": "secure"}}"#).is_err()
        );
    }
}
