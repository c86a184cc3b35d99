//! `bits-tls notify`: a test mail to the `[notify]` recipients, or, from systemd's `OnFailure=`, the mail
//! for a failed unit.

use crate::cli::NotifyArgs;
use crate::config::Config;
use crate::exit::ExitStatus;
use crate::notify::{self, Event, Message, UnitEnd};
use crate::printer::Printer;
use anyhow::Context;
use std::path::Path;

pub fn run(
    args: &NotifyArgs,
    config: Option<&Path>,
    printer: &Printer,
) -> anyhow::Result<ExitStatus> {
    let cfg = Config::discover(config)?;
    let Some(n) = &cfg.notify else {
        anyhow::bail!(
            "there is no [notify] section in the configuration{}",
            cfg.path
                .as_ref()
                .map(|p| format!(" `{}`", p.display()))
                .unwrap_or_default()
        );
    };
    let host = notify::this_host();
    let msg = match &args.unit_failed {
        Some(unit) => match notify::unit_failure(n, unit, &UnitEnd::from_env(), &host) {
            Some(m) => m,
            None => {
                printer.info("notify: the sync reported this end itself; no mail");
                return Ok(ExitStatus::Success);
            }
        },
        None => Message {
            event: Event::Test,
            subject: "test message".into(),
            body:
                "A test of the [notify] settings of bits-tls: this address will hear of changes, \
                   refusals, failures and staleness of the Bits forced-TLS configuration.\n"
                    .into(),
        },
    };
    let text = notify::format(n, &msg, &host, chrono::Utc::now());
    notify::send(n, &text).context("sending the notification")?;
    printer.info(&format!("notify: sent to {}", n.to.join(", ")));
    Ok(ExitStatus::Success)
}
