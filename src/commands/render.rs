//! `bits-tls render TARGET`: print one target's configuration to stdout.

use crate::cli::RenderArgs;
use crate::config::Config;
use crate::exit::ExitStatus;
use crate::printer::Printer;
use crate::render::{RenderError, RenderInput, Renderer, Target};
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
    // Templates are loaded before the download, so a broken or missing template fails fast.
    let renderer = Renderer::new(args.templates.as_deref())?;
    if let Target::Template(path) = &target {
        std::fs::metadata(path).map_err(|source| RenderError::Read {
            path: path.clone(),
            source,
        })?;
    }
    let fetched = source::fetch(&src.location, &src.fetch, &printer.log())?;
    printer.warnings(&fetched.list.warnings);
    source::require_domains(&fetched, &src.location, args.allow_empty)?;
    for w in options.warnings() {
        printer.warning(&crate::list::Warning::general(w));
    }
    let list = without_own_domains(&fetched.list, &cfg, args, printer);
    let (local, unused) = crate::plan::effective::overrides(&options, &list);
    for w in &unused {
        printer.warning(w);
    }
    let input = RenderInput {
        provenance: &fetched.provenance,
        list: &list,
        local: &local,
    };
    let text = renderer.render(&target, input, &options)?;
    if let Some(path) = &args.output {
        crate::write::write_atomic(path, text.as_bytes())?;
        printer.note(&format!("wrote {}", path.display()));
        return Ok(ExitStatus::Success);
    }
    let mut out = crate::report::stdout();
    out.write_all(text.as_bytes())
        .context("writing to stdout")?;
    out.flush().context("writing to stdout")?;
    Ok(ExitStatus::Success)
}

/// The list less your own domains (`own_domains` and `--own-domain`), as `sync` writes it: the list
/// itself when there are none.
fn without_own_domains<'l>(
    list: &'l crate::list::ParticipantList,
    cfg: &Config,
    args: &RenderArgs,
    printer: &Printer,
) -> std::borrow::Cow<'l, crate::list::ParticipantList> {
    let mut own = cfg.own_domains.clone();
    own.extend(args.own_domains.iter().cloned());
    if own.is_empty() {
        return std::borrow::Cow::Borrowed(list);
    }
    let adjustments = crate::plan::Adjustments {
        own_domains: own,
        ..Default::default()
    };
    let today = chrono::Utc::now().date_naive();
    let (list, warnings, _) = crate::plan::effective(list, &adjustments, today);
    for w in &warnings {
        printer.warning(w);
    }
    std::borrow::Cow::Owned(list)
}
