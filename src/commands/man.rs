//! `bits-tls man`: manual pages from the command line's own definition (clap_mangen), with the sections
//! clap does not know: EXIT STATUS, FILES, ENVIRONMENT, EXAMPLES and SEE ALSO. `bits-tls.1` is the
//! overview; each command has its own page (`bits-tls-sync.1`, …) with its options and examples.

use crate::cli::ManArgs;
use crate::exit::ExitStatus;
use crate::printer::Printer;
use anyhow::Context;
use clap_mangen::Man;
use std::io::Write;

/// Every page: (file name, roff). The first is `bits-tls.1`.
pub fn pages() -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let mut cmd = crate::settings::command().disable_help_subcommand(true);
    cmd.build();
    let mut out = vec![("bits-tls.1".to_string(), page(&cmd, None)?)];
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("bits-tls-{}.1", sub.get_name());
        out.push((name, page(sub, Some(sub.get_name()))?));
    }
    Ok(out)
}

pub fn run(args: &ManArgs, printer: &Printer) -> anyhow::Result<ExitStatus> {
    let pages = pages()?;
    match &args.dir {
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(&pages[0].1).context("writing to stdout")?;
            out.flush().context("writing to stdout")?;
        }
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating `{}`", dir.display()))?;
            for (name, roff) in &pages {
                let path = dir.join(name);
                std::fs::write(&path, roff)
                    .with_context(|| format!("writing `{}`", path.display()))?;
                printer.info(&format!("wrote {}", path.display()));
            }
        }
    }
    Ok(ExitStatus::Success)
}

/// One page: clap's title, NAME, SYNOPSIS, DESCRIPTION, OPTIONS (and the command list on the overview),
/// then ours.
fn page(cmd: &clap::Command, sub: Option<&str>) -> anyhow::Result<Vec<u8>> {
    let man = Man::new(cmd.clone())
        .manual("bits-tls manual")
        .source(format!("bits-tls {}", env!("CARGO_PKG_VERSION")));
    let mut buf = Vec::new();
    man.render_title(&mut buf)?;
    man.render_name_section(&mut buf)?;
    man.render_synopsis_section(&mut buf)?;
    man.render_description_section(&mut buf)?;
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(&mut buf)?;
    }
    if sub.is_none() {
        man.render_subcommands_section(&mut buf)?;
    }
    let mut r = String::new();
    exit_status(&mut r, sub);
    if matches!(
        sub,
        None | Some("diff" | "sync" | "check" | "verify" | "notify" | "init")
    ) {
        files(&mut r);
    }
    environment(&mut r, sub);
    examples(&mut r, sub);
    see_also(&mut r, sub);
    buf.extend_from_slice(r.as_bytes());
    Ok(dedupe_preamble(&buf))
}

/// Each clap_mangen render call starts with the same two lines defining the `Aq` string; keep the first.
fn dedupe_preamble(roff: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(roff);
    let mut seen = std::collections::HashSet::new();
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let preamble = line.starts_with(".ie \\n(.g .ds Aq") || line.starts_with(".el .ds Aq");
        if !preamble || seen.insert(line.to_string()) {
            out.push_str(line);
        }
    }
    out.into_bytes()
}

/// Text safe in roff: backslashes and hyphens escaped, no line starting with a control character.
fn esc(text: &str) -> String {
    let t = text.replace('\\', "\\e").replace('-', "\\-");
    if t.starts_with('.') || t.starts_with('\'') {
        format!("\\&{t}")
    } else {
        t
    }
}

fn section(r: &mut String, title: &str) {
    r.push_str(&format!(".SH \"{title}\"\n"));
}

/// A tagged paragraph: bold tag, plain text.
fn item(r: &mut String, tag: &str, text: &str) {
    r.push_str(&format!(".TP\n\\fB{}\\fR\n{}\n", esc(tag), esc(text)));
}

fn para(r: &mut String, text: &str) {
    r.push_str(&format!(".PP\n{}\n", esc(text)));
}

/// The exit codes, from the one table in `exit.rs`, kept to those the command can return.
fn exit_status(r: &mut String, sub: Option<&str>) {
    let relevant: &[u8] = match sub {
        None => &[0, 1, 2, 3, 4],
        Some("diff") => &[0, 1, 2, 3],
        Some("sync") => &[0, 1, 2, 3],
        Some("check") => &[0, 1, 2, 4],
        Some("verify") => &[0, 1, 2],
        Some("probe") => &[0, 1, 2],
        Some(_) => &[0, 1],
    };
    section(r, "EXIT STATUS");
    for line in crate::exit::HELP.lines().skip(1) {
        let line = line.trim_start();
        let Some((code, text)) = line.split_once("  ") else {
            continue;
        };
        if code.parse::<u8>().is_ok_and(|c| relevant.contains(&c)) {
            item(r, code, text.trim());
        }
    }
    if sub.is_none() {
        para(
            r,
            "A usage error exits 1 too (not 2, which means changes). A closed standard output (bits-tls fetch | head) exits 0 quietly.",
        );
    }
}

fn files(r: &mut String) {
    section(r, "FILES");
    item(
        r,
        "/etc/bits-tls/bits-tls.toml",
        "The configuration of the packaged service (bits-tls.service runs bits-tls --config /etc/bits-tls/bits-tls.toml sync). Without --config or BITS_TLS_CONFIG, ./bits-tls.toml is read if it exists. bits-tls init writes a commented one.",
    );
    item(
        r,
        "/var/lib/bits-tls/bits-tls.state.json",
        "The state: the list as last applied, its source and SHA-256, the HTTP validators, last_checked and last_changed. Set by state in the configuration (the packaged file sets this path) or --state; the default is bits-tls.state.json beside the configuration.",
    );
    item(
        r,
        "bits-tls.history.jsonl",
        "The history, one JSON line per sync that changed something (the audit trail); beside the state unless history is set.",
    );
    item(
        r,
        "STATE.lock",
        "The lock beside the state (e.g. /var/lib/bits-tls/bits-tls.state.json.lock) that keeps two syncs from running at once; a sync waits [safety] lock_timeout seconds for it.",
    );
    item(
        r,
        "OUTPUT.bak.1 ... OUTPUT.bak.N",
        "Backups of each output file, .bak.1 the newest, kept by sync before it replaces a file ([safety] backups, default 3).",
    );
    item(
        r,
        "bits-tls.service, bits-tls.timer, bits-tls-notify@.service",
        "The packaged units, in /lib/systemd/system (.deb) or /usr/lib/systemd/system (.rpm): a weekly sync (not enabled on install: systemctl enable --now bits-tls.timer), and the OnFailure= notifier that runs bits-tls notify --unit-failed.",
    );
    item(
        r,
        "/usr/share/doc/bits-tls/examples/",
        "A cron line, the systemd units and CI examples.",
    );
}

fn environment(r: &mut String, sub: Option<&str>) {
    let mut vars: Vec<(&str, &str)> = vec![
        ("BITS_TLS_CONFIG", "The configuration file, as --config."),
        (
            "NO_COLOR",
            "When set, --color auto does not colour diagnostics.",
        ),
    ];
    if matches!(
        sub,
        None | Some("fetch" | "render" | "diff" | "sync" | "check" | "verify" | "probe")
    ) {
        vars.push(("BITS_TLS_SOURCE", "The Bits page or CSV, as --source."));
        vars.push((
            "HTTPS_PROXY, HTTP_PROXY, NO_PROXY",
            "The proxy for downloads (and hosts that bypass it); behind a TLS-inspecting proxy also pass its CA with --ca-file.",
        ));
    }
    if matches!(
        sub,
        None | Some("diff" | "sync" | "check" | "verify" | "probe")
    ) {
        vars.push(("BITS_TLS_STATE", "The state file, as --state."));
    }
    if matches!(sub, None | Some("notify")) {
        vars.push((
            "MONITOR_SERVICE_RESULT, MONITOR_EXIT_CODE, MONITOR_EXIT_STATUS, MONITOR_INVOCATION_ID",
            "Set by systemd (251 and newer) for an OnFailure= unit; notify --unit-failed reads them to say how the unit ended and to skip a failure the sync already mailed.",
        ));
    }
    section(r, "ENVIRONMENT");
    for (k, v) in vars {
        item(r, k, v);
    }
}

fn examples(r: &mut String, sub: Option<&str>) {
    let list: &[(&str, &str)] = match sub {
        None => &[
            ("bits-tls render postfix-policy > /etc/postfix/bits_tls_policy", "Print the Postfix TLS policy table for the live list."),
            ("bits-tls init /etc/bits-tls/bits-tls.toml", "Write a commented configuration to start from."),
            ("bits-tls --config /etc/bits-tls/bits-tls.toml diff", "Show what a sync would change (exit 2 if anything)."),
            ("bits-tls --config /etc/bits-tls/bits-tls.toml sync", "Apply the list: write the files atomically, run the hooks, record state and history."),
            ("bits-tls check --max-age 92", "Offline: the files match the state and the state is younger than a quarter."),
            ("systemctl enable --now bits-tls.timer", "Run the packaged weekly sync."),
        ],
        Some("fetch") => &[
            ("bits-tls fetch", "The live list from https://bits.no/tls, as a table."),
            ("bits-tls fetch --format csv > liste.csv", "Normalised CSV, one row per domain, readable again with --source."),
            ("bits-tls fetch --source https://intranet/liste.csv --ca-file /etc/ssl/proxy-ca.pem", "A copy behind a TLS-inspecting proxy."),
        ],
        Some("render") => &[
            ("bits-tls render postfix-policy > /etc/postfix/bits_tls_policy", "The Postfix smtp_tls_policy_maps table."),
            ("bits-tls render exim-domains --source examples/tls.html", "The Exim domain list for the bundled example page, offline."),
            ("bits-tls render --template my-appliance.j2", "Your own format from a minijinja template."),
        ],
        Some("diff") => &[
            ("bits-tls diff", "The plan as text; exit 2 when something would change."),
            ("bits-tls diff --format markdown > plan.md", "The plan for a merge-request description."),
        ],
        Some("sync") => &[
            ("bits-tls --config /etc/bits-tls/bits-tls.toml sync", "Apply the list; silent when nothing changed."),
            ("bits-tls sync --detailed-exitcode", "Exit 2 when something changed (Ansible's changed_when)."),
            ("bits-tls sync --dry-run", "Show the plan only, like diff."),
            ("bits-tls sync --force", "Apply a list a safety guard refused, after reviewing bits-tls diff."),
        ],
        Some("check") => &[
            ("bits-tls check --max-age 92", "Offline: do the files match the state, and is it younger than a quarter?"),
            ("bits-tls check --online", "Also compare the state with the live list."),
        ],
        Some("verify") => &[
            ("bits-tls --config /etc/bits-tls/bits-tls.toml verify postfix", "After a server change: does Postfix force verified TLS 1.2+ for every listed domain? Exit 2 names each gap and why."),
            ("bits-tls verify postfix --log /var/log/mail.log --queue", "Also check the log for deliveries to listed domains without verified TLS, and list listed-domain mail waiting in the queue."),
            ("bits-tls verify exim --format markdown > verify.md", "The same for Exim, as Markdown for the change ticket."),
        ],
        Some("probe") => &[
            ("bits-tls --config /etc/bits-tls/bits-tls.toml probe", "Every domain of the effective list: verdict per domain, reasons per MX and address; exit 2 if one is not deliverable."),
            ("bits-tls probe example.no --helo mail.example.no", "One domain, greeting with this server's name."),
            ("bits-tls probe --format markdown > broken.md", "The message to tls@bits.no about participants forced TLS cannot reach."),
            ("bits-tls probe --suggest-overrides >> /etc/bits-tls/bits-tls.toml", "Add [[override]] entries: dane-only where DANE is safe, secure with match= from MTA-STS (review them first)."),
        ],
        Some("init") => &[("bits-tls init /etc/bits-tls/bits-tls.toml", "Write a commented configuration.")],
        Some("completions") => &[
            ("bits-tls completions bash > /usr/share/bash-completion/completions/bits-tls", "Bash completion."),
            ("bits-tls completions zsh > /usr/share/zsh/vendor-completions/_bits-tls", "Zsh completion."),
            ("bits-tls completions fish > /usr/share/fish/vendor_completions.d/bits-tls.fish", "Fish completion."),
        ],
        Some("man") => &[
            ("bits-tls man | man -l -", "Read this manual without installing it."),
            ("bits-tls man --dir /usr/local/share/man/man1", "Install every page."),
        ],
        Some("notify") => &[
            ("bits-tls --config /etc/bits-tls/bits-tls.toml notify", "Send a test mail to the [notify] recipients."),
            ("bits-tls notify --unit-failed bits-tls.service", "What bits-tls-notify@.service runs when the sync unit fails."),
        ],
        Some(_) => &[],
    };
    if list.is_empty() {
        return;
    }
    section(r, "EXAMPLES");
    for (cmd, what) in list {
        item(r, cmd, what);
    }
}

fn see_also(r: &mut String, sub: Option<&str>) {
    section(r, "SEE ALSO");
    let text = match sub {
        None => "postfix(1), postmap(1), exim4(8), systemd.timer(5), and https://bits.no/tls"
            .to_string(),
        Some("probe") => "bits-tls(1), posttls-finger(1), RFC 7672 (DANE for SMTP), RFC 8461 (MTA-STS), RFC 8460 (TLS-RPT)".to_string(),
        Some(_) => "bits-tls(1)".to_string(),
    };
    r.push_str(&format!("{}\n", esc(&text)));
}
