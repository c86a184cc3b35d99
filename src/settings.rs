//! Defaults < config file < environment < flags, merged once into checked options for the library.
//! (clap reads the environment variables, so a flag and its variable arrive here as one value.)

use crate::cli::{JobArgs, RenderOptionArgs, SourceArgs};
use crate::config::{self, Config, ConfigError, Output};
use crate::domain::{Domain, DomainRules};
use crate::engine::Job;
use crate::plan::Adjustments;
use crate::render::options::RenderOptions;
use crate::source::http::HttpOptions;
use crate::source::{FetchOptions, Location, DEFAULT_SOURCE};
use crate::state;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Everything needed to fetch the list.
#[derive(Debug, Clone)]
pub struct SourceSettings {
    pub location: Location,
    pub fetch: FetchOptions,
}

impl SourceSettings {
    pub fn new(
        cfg: &Config,
        args: &SourceArgs,
        render: &RenderOptions,
    ) -> anyhow::Result<SourceSettings> {
        let location = match (&args.source, &cfg.source) {
            (Some(s), _) => Location::parse(s)?,
            (None, Some(s)) => match Location::parse(s)? {
                // A path in the file is relative to the file.
                Location::File(p) => Location::File(cfg.resolve(&p)),
                url => url,
            },
            (None, None) => Location::parse(DEFAULT_SOURCE)?,
        };
        let defaults = HttpOptions::default();
        let http = HttpOptions {
            timeout: Duration::from_secs(
                args.timeout
                    .or(cfg.timeout)
                    .unwrap_or(defaults.timeout.as_secs()),
            ),
            max_bytes: args.max_size.or(cfg.max_size).unwrap_or(defaults.max_bytes),
            allow_http: args.allow_http || cfg.allow_http.unwrap_or(false),
            ca_file: args
                .ca_file
                .clone()
                .or_else(|| cfg.ca_file.as_deref().map(|p| cfg.resolve(p))),
            ..defaults
        };
        let mut fetch = FetchOptions {
            http,
            ..FetchOptions::default()
        };
        fetch.parse.columns = match (&args.columns, &cfg.columns) {
            (Some(c), _) => Some(c.clone()),
            (None, Some(text)) => Some(
                text.parse()
                    .map_err(|e: String| invalid(cfg, format!("columns: {e}")))?,
            ),
            (None, None) => None,
        };
        fetch.parse.domain_rules.allow_wildcards = render.subdomains;
        Ok(SourceSettings { location, fetch })
    }
}

fn invalid(cfg: &Config, message: String) -> ConfigError {
    ConfigError::Invalid {
        path: cfg.path.clone().unwrap_or_default(),
        message,
    }
}

/// Render options: defaults, then the file's tables, then flags; checked before use.
pub fn render_options(cfg: &Config, args: &RenderOptionArgs) -> anyhow::Result<RenderOptions> {
    let mut o = RenderOptions {
        subdomains: cfg.subdomains.unwrap_or(false),
        postfix: cfg.postfix.clone().unwrap_or_default(),
        exim: cfg.exim.clone().unwrap_or_default(),
        exchange: cfg.exchange.clone().unwrap_or_default(),
        exchange_online: cfg.exchange_online.clone().unwrap_or_default(),
        overrides: cfg.domain_overrides()?,
    };
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
    set(&mut p.ca_file, args.postfix_ca_file.clone());
    if args.postfix_relay.is_some() {
        p.relay = args.postfix_relay.clone();
    }
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

/// The Postfix headers name where the tables really are: a path left at its default follows the
/// `postfix-policy` / `postfix-senders` output's path when that is absolute as written (only diff, sync
/// and check know it; `render` stays independent of the machine, and so does a repository checkout).
fn paths_from_outputs(render: &mut RenderOptions, outputs: &[(&crate::render::Target, &Path)]) {
    let defaults = crate::render::options::PostfixOptions::default();
    for (target, path) in outputs {
        // A relative path, or one the header could not print safely, leaves the option as it is.
        let Some(path) = path.to_str().filter(|p| {
            let mut probe = RenderOptions::default();
            probe.postfix.policy_path = p.to_string();
            Path::new(p).is_absolute() && probe.validate().is_ok()
        }) else {
            continue;
        };
        let p = &mut render.postfix;
        let (slot, default) = match target {
            crate::render::Target::PostfixPolicy => (&mut p.policy_path, &defaults.policy_path),
            crate::render::Target::PostfixSenders => (&mut p.senders_path, &defaults.senders_path),
            _ => continue,
        };
        if slot == default {
            *slot = path.to_string();
        }
    }
}

fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *slot = v;
    }
}

/// The state file: flag or BITS_TLS_STATE, else the file's `state`, else beside the configuration.
pub fn state_path(cfg: &Config, flag: Option<&Path>) -> PathBuf {
    match (flag, &cfg.state) {
        (Some(p), _) => p.to_path_buf(),
        (None, Some(p)) => cfg.resolve(p),
        (None, None) => cfg.resolve(Path::new(state::DEFAULT_FILE)),
    }
}

/// Builds the job for diff, sync and check.
pub fn job(cfg: &Config, args: &JobArgs, today: chrono::NaiveDate) -> anyhow::Result<Job> {
    let mut render = render_options(cfg, &args.options)?;
    let src = SourceSettings::new(cfg, &args.source, &render)?;
    let outputs = if args.outputs.is_empty() {
        cfg.outputs()?
    } else {
        let outs: Vec<Output> = args
            .outputs
            .iter()
            .map(|(t, p)| Output {
                target: crate::commands::render::target_of(*t),
                path: p.clone(),
                hook: None,
            })
            .collect();
        config::check_unique_paths(&outs).map_err(anyhow::Error::msg)?;
        outs
    };
    // Paths as written: a relative one (a mail-config repository) is not where Postfix reads the table.
    let written: Vec<(&crate::render::Target, &Path)> = if args.outputs.is_empty() {
        outputs
            .iter()
            .zip(&cfg.output)
            .map(|(o, raw)| (&o.target, raw.path.as_path()))
            .collect()
    } else {
        outputs
            .iter()
            .map(|o| (&o.target, o.path.as_path()))
            .collect()
    };
    paths_from_outputs(&mut render, &written);
    let state_path = state_path(cfg, args.state.as_deref());
    let history_path = match &cfg.history {
        Some(p) => cfg.resolve(p),
        None => state_path
            .parent()
            .unwrap_or(Path::new("."))
            .join(state::DEFAULT_HISTORY),
    };
    let rules = DomainRules::default();
    let own_domains = cfg
        .own_domains
        .iter()
        .filter_map(|d| Domain::parse(d, rules).ok())
        .collect();
    Ok(Job {
        location: src.location,
        fetch: src.fetch,
        render,
        templates_dir: args.templates.clone(),
        outputs,
        reload: cfg.reload.clone(),
        adjustments: Adjustments {
            own_domains,
            extra: cfg.extra_domains.clone(),
            exclude: cfg.exclude.clone(),
        },
        safety: cfg.safety.clone(),
        state_path,
        history_path,
        today,
    })
}
