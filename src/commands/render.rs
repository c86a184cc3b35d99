//! `bits-tls render TARGET`: print one target's configuration to stdout.

use crate::cli::RenderArgs;
use crate::config::Config;
use crate::exit::ExitStatus;
use crate::printer::Printer;
use crate::render::{RenderInput, Renderer, Target};
use crate::settings::{self, SourceSettings};
use crate::source;
use anyhow::Context;
use std::io::Write;
use std::path::Path;

pub fn run(
    args: &RenderArgs,
    config: Option<&Path>,
    printer: &Printer,
) -> anyhow::Result<ExitStatus> {
    let cfg = Config::discover(config)?;
    let options = settings::render_options(&cfg, &args.options)?;
    let src = SourceSettings::new(&cfg, &args.source, &options)?;
    let target = match (&args.template, args.target) {
        (Some(path), _) => Target::Template(path.clone()),
        (None, Some(name)) => Target::BuiltIn(name),
        (None, None) => unreachable!("clap requires a target or --template"),
    };
    // Templates are loaded before the download, so a broken template fails fast.
    let renderer = Renderer::new(args.templates.as_deref())?;
    let fetched = source::fetch(&src.location, &src.fetch, &printer.log())?;
    for w in &fetched.list.warnings {
        printer.warning(w);
    }
    let list = without_own_domains(&fetched.list, &cfg, args, printer);
    let input = RenderInput {
        provenance: &fetched.provenance,
        list: &list,
    };
    let text = renderer.render(&target, input, &options)?;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .context("writing to stdout")?;
    out.flush().context("writing to stdout")?;
    Ok(ExitStatus::Success)
}

/// The list less your own domains (`own_domains` and `--own-domain`), as `sync` writes it.
fn without_own_domains(
    list: &crate::list::ParticipantList,
    cfg: &Config,
    args: &RenderArgs,
    printer: &Printer,
) -> crate::list::ParticipantList {
    let mut own = cfg.own_domains.clone();
    own.extend(args.own_domains.iter().cloned());
    if own.is_empty() {
        return list.clone();
    }
    let adjustments = crate::plan::Adjustments {
        own_domains: own,
        ..Default::default()
    };
    let today = chrono::Utc::now().date_naive();
    let (list, warnings) = crate::plan::effective(list, &adjustments, today);
    for w in &warnings {
        printer.warning(w);
    }
    list
}
