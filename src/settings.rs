//! Defaults < config file < environment < flags, merged once into checked options for the library.
//! The file and the flags each become a layer of the same type (`render::options::RenderLayer`,
//! [`SourceLayer`]); [`Combine`] merges them here and nowhere else, and the result is resolved over the
//! defaults, which are declared once, in the options types' `Default`. clap reads the environment
//! variables, so a flag and its variable arrive here as one value. Help shows the same defaults: each
//! flag is named after its configuration key, and [`command`] adds `[default: …]` from [`defaults`].

use crate::cli::{Cli, JobArgs, RenderOptionArgs, SourceArgs};
use crate::config::{self, Config, Safety};
use crate::layer::Combine;
use crate::list::columns::ColumnOverride;
use crate::plan::{Adjustments, Guard, Job, Output};
use crate::render::options::{
    ExchangeLayer, ExchangeOnlineLayer, EximLayer, PostfixLayer, RenderLayer, RenderOptions,
};
use crate::render::{BuiltIn, Target};
use crate::source::http::HttpOptions;
use crate::source::{FetchOptions, Location, DEFAULT_SOURCE};
use crate::state;
use clap::CommandFactory;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `--flag` / `--no-flag`: what the command line says, if anything.
fn flag(yes: bool, no: bool) -> Option<bool> {
    match (yes, no) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    }
}

impl From<&RenderOptionArgs> for RenderLayer {
    fn from(a: &RenderOptionArgs) -> RenderLayer {
        RenderLayer {
            subdomains: flag(a.subdomains, a.no_subdomains),
            postfix: PostfixLayer {
                level: a.postfix_level,
                protocols: a.postfix_protocols,
                match_: a.postfix_match.clone(),
                table_type: a.postfix_table_type,
                policy_path: a.postfix_policy_path.clone(),
                senders_path: a.postfix_senders_path.clone(),
                ca_file: a.postfix_ca_file.clone(),
                relay: a.postfix_relay.clone(),
            },
            exim: EximLayer {
                tls_library: a.exim_tls,
                domains_file: a.exim_domains_file.clone(),
                verify_certificates: a.exim_verify_certificates.clone(),
            },
            exchange: ExchangeLayer {
                connector_name: a.exchange_connector.clone(),
                tls_auth_level: a.exchange_tls_auth_level,
                tls_domain: a.exchange_tls_domain.clone(),
                source_transport_servers: (!a.exchange_source_servers.is_empty())
                    .then(|| a.exchange_source_servers.clone()),
                max_message_size: a.exchange_max_message_size.clone(),
                fqdn: a.exchange_fqdn.clone(),
                topology: a.exchange_topology,
                microsoft365_split: flag(
                    a.exchange_microsoft365_split,
                    a.no_exchange_microsoft365_split,
                ),
            },
            exchange_online: ExchangeOnlineLayer {
                connector_name: a.exo_connector.clone(),
                tls_settings: a.exo_tls_settings,
                tls_domain: a.exo_tls_domain.clone(),
                max_domains_per_connector: a.exo_max_domains,
                inbound: flag(a.exo_inbound, a.no_exo_inbound),
                inbound_connector_name: a.exo_inbound_connector.clone(),
                microsoft365_split: flag(a.exo_microsoft365_split, a.no_exo_microsoft365_split),
            },
        }
    }
}

/// What one layer says about where the list comes from and how it is read.
#[derive(Debug, Clone, Default)]
pub struct SourceLayer {
    pub source: Option<Location>,
    pub allow_http: Option<bool>,
    pub ca_file: Option<PathBuf>,
    pub timeout: Option<u64>,
    pub max_size: Option<u64>,
    pub columns: Option<ColumnOverride>,
}

impl Combine for SourceLayer {
    fn combine(self, lower: Self) -> Self {
        SourceLayer {
            source: self.source.combine(lower.source),
            allow_http: self.allow_http.combine(lower.allow_http),
            ca_file: self.ca_file.combine(lower.ca_file),
            timeout: self.timeout.combine(lower.timeout),
            max_size: self.max_size.combine(lower.max_size),
            columns: self.columns.combine(lower.columns),
        }
    }
}

impl SourceLayer {
    fn from_args(a: &SourceArgs) -> anyhow::Result<SourceLayer> {
        Ok(SourceLayer {
            source: a.source.as_deref().map(Location::parse).transpose()?,
            allow_http: flag(a.allow_http, a.no_allow_http),
            ca_file: a.ca_file.clone(),
            timeout: a.timeout,
            max_size: a.max_size,
            columns: a.columns.clone(),
        })
    }

    /// The file's layer; its paths are relative to the file.
    fn from_config(cfg: &Config) -> anyhow::Result<SourceLayer> {
        let source = match cfg.source.as_deref().map(Location::parse).transpose()? {
            Some(Location::File(p)) => Some(Location::File(cfg.resolve(&p))),
            other => other,
        };
        Ok(SourceLayer {
            source,
            allow_http: cfg.allow_http,
            ca_file: cfg.ca_file.as_deref().map(|p| cfg.resolve(p)),
            timeout: cfg.timeout,
            max_size: cfg.max_size,
            columns: cfg.columns.clone(),
        })
    }
}

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
        let layer = SourceLayer::from_args(args)?.combine(SourceLayer::from_config(cfg)?);
        let location = match layer.source {
            Some(l) => l,
            None => Location::parse(DEFAULT_SOURCE)?,
        };
        let d = HttpOptions::default();
        let timeout = layer.timeout.map_or(d.timeout, Duration::from_secs);
        let http = HttpOptions {
            timeout,
            run_timeout: timeout * crate::source::http::RUN_TIMEOUT_FACTOR,
            max_bytes: layer.max_size.unwrap_or(d.max_bytes),
            allow_http: layer.allow_http.unwrap_or(d.allow_http),
            ca_file: layer.ca_file.or(d.ca_file),
            ..d
        };
        let mut fetch = FetchOptions {
            http,
            ..FetchOptions::default()
        };
        fetch.parse.columns = layer.columns;
        fetch.parse.domain_rules.allow_wildcards = render.subdomains;
        Ok(SourceSettings { location, fetch })
    }
}

/// Render options: the flags' layer over the file's, over the defaults; checked before use.
pub fn render_options(cfg: &Config, args: &RenderOptionArgs) -> anyhow::Result<RenderOptions> {
    render_options_for(cfg, args, &[])
}

/// Render options for diff, sync and check, which know where the outputs are written.
fn render_options_for(
    cfg: &Config,
    args: &RenderOptionArgs,
    written: &[(&Target, &Path)],
) -> anyhow::Result<RenderOptions> {
    let mut layer = RenderLayer::from(args).combine(cfg.render_layer());
    paths_from_outputs(&mut layer, written);
    let o = layer.resolve(cfg.domain_overrides()?);
    o.validate().map_err(|mut e| {
        e.flag = flag_for(e.key);
        e
    })?;
    Ok(o)
}

/// The Postfix headers name where the tables really are, and the Exim `domainlist` reads the file the
/// `exim-domains` output writes: a path that neither the flags nor the file set follows the output's
/// path when that is absolute as written (only diff, sync and check know it; `render` stays independent
/// of the machine, and so does a mail-config repository checked out anywhere, whose relative paths are
/// not where the MTA reads them — set the option to where they are deployed).
fn paths_from_outputs(layer: &mut RenderLayer, written: &[(&Target, &Path)]) {
    for (target, path) in written {
        // A relative path, or one the header could not print safely, leaves the option as it is.
        let Some(path) = path.to_str().filter(|p| {
            let mut probe = RenderOptions::default();
            probe.postfix.policy_path = p.to_string();
            Path::new(p).is_absolute() && probe.validate().is_ok()
        }) else {
            continue;
        };
        let slot = match target {
            Target::BuiltIn(BuiltIn::PostfixPolicy) => &mut layer.postfix.policy_path,
            Target::BuiltIn(BuiltIn::PostfixSenders) => &mut layer.postfix.senders_path,
            Target::BuiltIn(BuiltIn::EximDomains) => &mut layer.exim.domains_file,
            _ => continue,
        };
        if slot.is_none() {
            *slot = Some(path.to_string());
        }
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
    let outputs = if args.outputs.is_empty() {
        cfg.outputs()?
    } else {
        let outs: Vec<Output> = args
            .outputs
            .iter()
            .map(|(t, p)| Output {
                target: Target::BuiltIn(*t),
                path: p.clone(),
                hook: None,
            })
            .collect();
        config::check_unique_paths(&outs).map_err(anyhow::Error::msg)?;
        outs
    };
    // Paths as written: a relative one (a mail-config repository) is not where Postfix reads the table.
    let written: Vec<(&Target, &Path)> = if args.outputs.is_empty() {
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
    let render = render_options_for(cfg, &args.options, &written)?;
    let src = SourceSettings::new(cfg, &args.source, &render)?;
    let state_path = state_path(cfg, args.state.as_deref());
    let history_path = match &cfg.history {
        Some(p) => cfg.resolve(p),
        None => state_path
            .parent()
            .unwrap_or(Path::new("."))
            .join(state::DEFAULT_HISTORY),
    };
    Ok(Job {
        location: src.location,
        fetch: src.fetch,
        render,
        templates_dir: args.templates.clone(),
        outputs,
        reload: cfg.reload.clone(),
        adjustments: Adjustments {
            own_domains: cfg.own_domains.clone(),
            extra: cfg.extra_domains.clone(),
            exclude: cfg.exclude.clone(),
        },
        guard: Guard {
            max_removed_percent: cfg.safety.max_removed_percent,
            min_domains: cfg.safety.min_domains_for_guard,
            max_added_percent: cfg.safety.max_added_percent,
            baseline_days: cfg.safety.baseline_days,
        },
        backups: cfg.safety.backups,
        lock_timeout: cfg.safety.lock_timeout,
        hook_timeout: cfg.safety.hook_timeout,
        state_path,
        history_path,
        today,
    })
}

/// `sync` and `check` work on outputs: with none, a cron line that lost `--config` must fail loudly
/// rather than report success and write a state in the working directory.
pub fn require_outputs(
    job: &Job,
    cfg: &Config,
    command: &'static str,
    verb: &'static str,
) -> Result<(), config::ConfigError> {
    if job.outputs.is_empty() {
        return Err(config::ConfigError::NoOutputs {
            command,
            verb,
            config: cfg.path.clone(),
        });
    }
    Ok(())
}

/// Every default, in the shape of `bits-tls.toml` (`postfix.level`, `timeout`, `safety.backups`, …).
/// Built from the options types' `Default`, the one place a default is written.
pub fn defaults() -> serde_json::Value {
    let http = HttpOptions::default();
    let mut doc = serde_json::to_value(RenderOptions::default()).expect("options serialise");
    let map = doc.as_object_mut().expect("an object");
    map.remove("overrides");
    map.insert("source".into(), DEFAULT_SOURCE.into());
    map.insert("timeout".into(), http.timeout.as_secs().into());
    map.insert("max_size".into(), http.max_bytes.into());
    map.insert("allow_http".into(), http.allow_http.into());
    map.insert(
        "safety".into(),
        serde_json::to_value(Safety::default()).expect("safety serialises"),
    );
    doc
}

/// The default for a configuration key (`postfix.level`) as help shows it, if it has one worth showing.
pub fn default_for(defaults: &serde_json::Value, key: &str) -> Option<String> {
    shown(key.split('.').try_fold(defaults, |v, k| v.get(k))?)
}

/// A default value as help shows it: strings and numbers (a boolean's default is off, said in words).
fn shown(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The flag that sets a configuration key (`postfix.match` → `--postfix-match`), so that an error names
/// both the way a person wrote it and the other way to set it.
pub fn flag_for(key: &str) -> Option<String> {
    let cmd = command();
    let flag = cmd
        .find_subcommand("render")?
        .get_arguments()
        .find(|a| a.get_id().as_str() == key)
        .and_then(|a| a.get_long())
        .map(|l| format!("--{l}"));
    flag
}

/// The command line with `[default: …]` added to the help of every flag named after a configuration
/// key that has a default. Use this rather than `Cli::command()` everywhere.
pub fn command() -> clap::Command {
    let d = defaults();
    decorate(Cli::command(), &d)
}

fn decorate(cmd: clap::Command, d: &serde_json::Value) -> clap::Command {
    let cmd = cmd.mut_args(|a| match default_for(d, a.get_id().as_str()) {
        Some(value) => {
            let help = a.get_help().map(|h| h.to_string()).unwrap_or_default();
            a.help(format!("{help} [default: {value}]"))
        }
        None => a,
    });
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .collect();
    names
        .iter()
        .fold(cmd, |cmd, n| cmd.mut_subcommand(n, |c| decorate(c, d)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// Every leaf default with a value: `postfix.level` → `verify`.
    fn leaves(v: &serde_json::Value, prefix: &str, out: &mut BTreeMap<String, String>) {
        if let Some(map) = v.as_object() {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                leaves(v, &key, out);
            }
        } else if let Some(shown) = shown(v) {
            out.insert(prefix.to_string(), shown);
        }
    }

    /// The starter's commented-out `key = value` lines, by key path.
    fn starter_values() -> BTreeMap<String, String> {
        let mut table = String::new();
        let mut out = BTreeMap::new();
        for line in config::STARTER.lines() {
            let t = line.trim_start_matches('#').trim();
            if t.starts_with("[[") {
                table = "(array)".into();
            } else if let Some(name) = t.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
                table = name.to_string();
            } else if let Some((k, v)) = t.split_once(" = ") {
                let v = v.split("  #").next().unwrap().trim();
                let Ok(doc) = toml::from_str::<toml::Table>(&format!("x = {v}")) else {
                    continue;
                };
                let shown = match &doc["x"] {
                    toml::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                let key = if table.is_empty() {
                    k.trim().to_string()
                } else {
                    format!("{table}.{}", k.trim())
                };
                out.insert(key, shown);
            }
        }
        out
    }

    #[test]
    fn default_for_reads_key_paths() {
        let d = defaults();
        assert_eq!(default_for(&d, "postfix.level").as_deref(), Some("verify"));
        assert_eq!(default_for(&d, "timeout").as_deref(), Some("30"));
        assert_eq!(default_for(&d, "postfix.nope"), None);
        assert_eq!(
            default_for(&d, "subdomains"),
            None,
            "booleans are not shown"
        );
    }

    /// Defaults are written once (the options types' `Default`); the help, the starter configuration
    /// and the README's option table must say the same.
    #[test]
    fn help_starter_and_readme_agree_with_the_defaults() {
        let d = defaults();
        let mut want = BTreeMap::new();
        leaves(&d, "", &mut want);
        assert!(want.len() >= 20, "{want:?}");
        let starter = starter_values();
        for (key, value) in &want {
            assert_eq!(
                starter.get(key),
                Some(value),
                "the starter configuration should show `# {key} = {value}`"
            );
        }
        let readme = include_str!("../README.md");
        let cmd = command();
        let render = cmd.find_subcommand("render").unwrap();
        let mut rows = 0;
        for arg in render.get_arguments() {
            let Some(value) = default_for(&d, arg.get_id().as_str()) else {
                continue;
            };
            let help = arg.get_help().unwrap().to_string();
            assert!(help.ends_with(&format!("[default: {value}]")), "{help}");
            if arg.get_help_heading() == Some("Output options") {
                let long = arg.get_long().unwrap();
                let row = readme
                    .lines()
                    .find(|l| l.starts_with(&format!("| `--{long}` |")))
                    .unwrap_or_else(|| panic!("README: no option row for --{long}"));
                assert!(
                    row.contains(&format!("| `{value}` |")),
                    "README: --{long} should say `{value}`: {row}"
                );
                rows += 1;
            }
        }
        assert!(rows >= 12, "only {rows} option rows checked");
    }
}
