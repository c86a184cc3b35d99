//! `bits-tls probe`: the destinations (the effective list, or the domains given) with the Postfix level
//! each is configured with, probed and judged by `crate::probe`, shown by `report::probe`. Exit 0: every
//! domain deliverable at its level; 2: not.

use crate::cli::{JobArgs, ProbeArgs, SourceArgs};
use crate::config::Config;
use crate::domain::Domain;
use crate::exit::ExitStatus;
use crate::list::ParticipantList;
use crate::printer::Printer;
use crate::probe::dns::{self, Resolver};
use crate::probe::smtp::SmtpOptions;
use crate::probe::{self, Destination, ProbeOptions};
use crate::state::State;
use crate::{plan, report, settings, source};
use anyhow::{bail, Context};
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

pub fn run(
    args: &ProbeArgs,
    config: Option<&Path>,
    printer: &Printer,
) -> anyhow::Result<ExitStatus> {
    let cfg = Config::discover(config)?;
    let job_args = JobArgs {
        state: args.state.clone(),
        source: SourceArgs {
            source: args.source.clone(),
            ..SourceArgs::default()
        },
        ..JobArgs::default()
    };
    let job = settings::job(&cfg, &job_args, chrono::Local::now().date_naive())?;
    let domains: Vec<Domain> = if args.domains.is_empty() {
        effective_domains(&job, printer)?
    } else {
        args.domains.clone()
    };
    let dests: Vec<Destination> = domains.into_iter().map(|d| destination(&job, d)).collect();
    let opts = options(args, &job)?;
    printer.info(&format!(
        "probing {} through the resolver {}",
        report::plural(dests.len(), "domain"),
        opts.resolver.server
    ));
    let run = probe::probe(&dests, &opts)?;
    let mut out = report::stdout();
    if args.suggest_overrides {
        report::probe::overrides(&mut out, &run)
    } else {
        report::probe::write(&mut out, &run, args.format)
    }
    .context("writing to stdout")?;
    out.flush().context("writing to stdout")?;
    Ok(if probe::all_deliverable(&run) {
        ExitStatus::Success
    } else {
        ExitStatus::Changes
    })
}

/// The list as sync would write it: the state's (what the server was last given), else the source's,
/// less own domains and exclusions, plus extra domains. Wildcard entries cannot be probed.
fn effective_domains(job: &plan::Job, printer: &Printer) -> anyhow::Result<Vec<Domain>> {
    let list = match State::load(&job.state_path)? {
        Some(s) => {
            printer.info(&format!(
                "the list from the state {}",
                job.state_path.display()
            ));
            ParticipantList {
                participants: s.participants,
                warnings: Vec::new(),
            }
        }
        None => source::fetch(&job.location, &job.fetch, &printer.log())?.list,
    };
    let (effective, warnings, _) = plan::effective(&list, &job.adjustments, job.today);
    warnings.iter().for_each(|w| printer.warning(w));
    let mut out = Vec::new();
    for d in effective.domains() {
        if d.as_str().starts_with("*.") {
            printer.note(&format!(
                "`{d}` covers subdomains; only its parent is probed"
            ));
        } else {
            out.push(d.clone());
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// `diff --probe`, `sync --probe`: the domains the plan adds, probed with the default options; a
/// warning for each that forced TLS would not reach (the scheme still requires forcing TLS to it).
pub fn added_domains(plan: &plan::Plan, job: &plan::Job, printer: &Printer) -> anyhow::Result<()> {
    let effective = plan.effective().domains();
    let added: Vec<&Domain> = plan
        .changes
        .domains_added
        .iter()
        .filter(|d| effective.contains(d) && !d.as_str().starts_with("*."))
        .collect();
    if added.is_empty() {
        return Ok(());
    }
    let dests: Vec<Destination> = added
        .into_iter()
        .map(|d| destination(job, d.clone()))
        .collect();
    let defaults = <ProbeArgs as clap::FromArgMatches>::from_arg_matches(
        &<ProbeArgs as clap::Args>::augment_args(clap::Command::new("probe"))
            .get_matches_from(["probe"]),
    )?;
    let run = probe::probe(&dests, &options(&defaults, job)?)?;
    for d in &run.domains {
        if d.verdict == probe::verdict::Verdict::Deliverable {
            printer.note(&format!(
                "probe: added domain `{}` is deliverable at {}",
                d.domain,
                d.level.as_str()
            ));
            continue;
        }
        let why = report::probe::reasons(d).join("; ");
        printer.warning(&crate::list::Warning::general(format!(
            "probe: added domain `{}` is {} at {}: {why}; forced TLS will hold its mail in the queue (the scheme still requires it; tell tls@bits.no)",
            d.domain,
            d.verdict.as_str(),
            d.level.as_str()
        )));
    }
    Ok(())
}

/// A domain with the level its table entry has (its `[[override]]`, else `[postfix]`).
fn destination(job: &plan::Job, domain: Domain) -> Destination {
    let o = job.render.overrides.iter().find(|o| o.domain == domain);
    let p = match o {
        Some(o) => o.postfix(&job.render.postfix),
        None => job.render.postfix.clone(),
    };
    Destination {
        domain,
        level: p.level,
        match_: p.match_,
        overridden: o.is_some(),
    }
}

fn options(args: &ProbeArgs, job: &plan::Job) -> anyhow::Result<ProbeOptions> {
    let timeout = Duration::from_secs(args.timeout);
    let server = match &args.resolver {
        Some(r) => parse_resolver(r)?,
        None => {
            let conf = std::fs::read_to_string("/etc/resolv.conf")
                .context("reading /etc/resolv.conf (or give --resolver)")?;
            dns::system_resolver(&conf)
                .context("/etc/resolv.conf names no nameserver (give --resolver)")?
        }
    };
    let (anchor_zones, anchors) = match &args.trust_anchor {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("reading the trust anchors `{}`", p.display()))?;
            let zones = dns::anchor_zones(&text);
            if zones.is_empty() {
                bail!(
                    "the trust-anchor file `{}` has no DNSKEY or DS record",
                    p.display()
                );
            }
            (zones, Some(text))
        }
        None => (vec![".".into()], None),
    };
    let helo = match &args.helo {
        Some(h) => h.clone(),
        None => std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_default(),
    };
    let helo = if helo.is_empty() {
        "localhost".to_string()
    } else {
        helo
    };
    // The name goes into the SMTP dialogue: letters, digits, dots, hyphens, or an [address literal].
    let literal = helo.starts_with('[') && helo.ends_with(']');
    if helo.len() > 255
        || !helo.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(c, '.' | '-' | ':' | '[' | ']')
                    && (literal || !matches!(c, ':' | '[' | ']'))
        })
    {
        bail!(
            "--helo `{}` is not a host name",
            crate::sanitize::one_line(&helo)
        );
    }
    Ok(ProbeOptions {
        resolver: Resolver { server, timeout },
        smtp: SmtpOptions {
            helo,
            timeout,
            port: 25,
        },
        // What the Postfix table is checked against: smtp_tls_CAfile as configured, where it exists.
        ca_file: args.ca_file.clone().or_else(|| {
            Some(std::path::PathBuf::from(&job.render.postfix.ca_file)).filter(|p| p.is_file())
        }),
        concurrency: args.concurrency as usize,
        expiry_warn_days: args.expiry_warn.into(),
        anchor_zones,
        anchors,
    })
}

fn parse_resolver(s: &str) -> anyhow::Result<SocketAddr> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    s.parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, 53))
        .with_context(|| format!("--resolver `{s}` is not IP or IP:PORT"))
}
