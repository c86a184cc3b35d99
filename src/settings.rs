//! Defaults < config file < environment < flags, merged once into checked options for the library.

use crate::cli::{RenderOptionArgs, SourceArgs};
use crate::render::options::RenderOptions;
use crate::source::http::HttpOptions;
use crate::source::{FetchOptions, Location, DEFAULT_SOURCE};
use std::time::Duration;

/// Everything needed to fetch the list.
#[derive(Debug, Clone)]
pub struct SourceSettings {
    pub location: Location,
    pub fetch: FetchOptions,
}

impl SourceSettings {
    pub fn from_args(args: &SourceArgs) -> anyhow::Result<SourceSettings> {
        let location = Location::parse(args.source.as_deref().unwrap_or(DEFAULT_SOURCE))?;
        let defaults = HttpOptions::default();
        let http = HttpOptions {
            timeout: args.timeout.map_or(defaults.timeout, Duration::from_secs),
            max_bytes: args.max_size.unwrap_or(defaults.max_bytes),
            allow_http: args.allow_http,
            ca_file: args.ca_file.clone(),
            ..defaults
        };
        let mut fetch = FetchOptions {
            http,
            ..FetchOptions::default()
        };
        fetch.parse.columns = args.columns.clone();
        Ok(SourceSettings { location, fetch })
    }
}

/// Render options: defaults, overridden by flags; checked before use.
pub fn render_options(args: &RenderOptionArgs) -> anyhow::Result<RenderOptions> {
    let mut o = RenderOptions::default();
    o.subdomains |= args.subdomains;
    let p = &mut o.postfix;
    set(&mut p.level, args.postfix_level);
    set(&mut p.protocols, args.postfix_protocols);
    if args.postfix_match.is_some() {
        p.match_ = args.postfix_match.clone();
    }
    set(&mut p.table_type, args.postfix_table_type);
    set(&mut p.policy_path, args.postfix_policy_path.clone());
    set(&mut p.senders_path, args.postfix_senders_path.clone());
    let x = &mut o.exim;
    set(&mut x.tls_library, args.exim_tls);
    set(&mut x.domains_file, args.exim_domains_file.clone());
    set(
        &mut x.verify_certificates,
        args.exim_verify_certificates.clone(),
    );
    let e = &mut o.exchange;
    set(&mut e.connector_name, args.exchange_connector.clone());
    set(&mut e.tls_auth_level, args.exchange_tls_auth_level);
    if args.exchange_tls_domain.is_some() {
        e.tls_domain = args.exchange_tls_domain.clone();
    }
    if !args.exchange_source_servers.is_empty() {
        e.source_transport_servers = args.exchange_source_servers.clone();
    }
    if args.exchange_max_message_size.is_some() {
        e.max_message_size = args.exchange_max_message_size.clone();
    }
    let x = &mut o.exchange_online;
    set(&mut x.connector_name, args.exo_connector.clone());
    set(&mut x.tls_settings, args.exo_tls_settings);
    if args.exo_tls_domain.is_some() {
        x.tls_domain = args.exo_tls_domain.clone();
    }
    set(&mut x.max_domains_per_connector, args.exo_max_domains);
    x.inbound |= args.exo_inbound;
    set(
        &mut x.inbound_connector_name,
        args.exo_inbound_connector.clone(),
    );
    o.validate()?;
    Ok(o)
}

fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *slot = v;
    }
}
