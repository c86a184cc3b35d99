//! The command line, as data only (clap derive). `settings` turns it into checked options; nothing
//! outside `commands` and `settings` sees these types.

use crate::domain::{Domain, DomainRules};
use crate::list::columns::ColumnOverride;
use crate::render::options::{
    ExchangeTopology, EximTls, PostfixLevel, PostfixProtocols, TableType, TlsValidation,
};
use crate::render::BuiltIn;
use crate::report;
use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Keep a mail server's forced-TLS configuration in step with the Bits master list.
///
/// Bits (bits.no/tls) publishes the Norwegian banks, insurers and public bodies that promise to send
/// each other mail only over verified TLS. bits-tls fetches that list, validates every domain, and turns
/// it into Postfix, Exim and Exchange configuration.
#[derive(Debug, Parser)]
#[command(name = "bits-tls", version, propagate_version = true)]
#[command(after_long_help = crate::exit::HELP)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Print only errors (no warnings or notes)
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Print what is being done (requests, choices made)
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub verbose: u8,
    /// Configuration file [default: ./bits-tls.toml if present]
    #[arg(
        short,
        long,
        global = true,
        env = "BITS_TLS_CONFIG",
        value_name = "PATH"
    )]
    pub config: Option<PathBuf>,
    /// When to colour diagnostics; NO_COLOR is honoured with `auto`
    #[arg(long, global = true, value_enum, default_value_t = ColorWhen::Auto, value_name = "WHEN")]
    pub color: ColorWhen,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorWhen {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Fetch and parse the master list and print it
    ///
    /// The source may be the Bits page (the CSV link or an inline table is found on it) or the CSV
    /// itself, as a URL or a file; which one is decided by the content. Rows that cannot be used are
    /// reported as warnings with their line number and left out.
    Fetch(FetchArgs),
    /// Print one target's configuration for the list
    ///
    /// Renders the list for one mail system to stdout. Nothing is written; `sync` writes files. Every
    /// rendered line is checked against the target's syntax before it is printed.
    Render(Box<RenderArgs>),
    /// Show what a sync would change, per participant, domain and file
    ///
    /// Compares the list with the state and every configured output with the file on disk. Exit 0: nothing
    /// to do; 2: changes pending; 3: a sync would be refused by a safety guard (the plan is still shown).
    Diff(Box<DiffArgs>),
    /// Fetch, plan, guard, write the outputs atomically, run hooks, record state and history
    ///
    /// Quiet when nothing changed. On any failure every output file and the state stay as they were.
    Sync(Box<SyncArgs>),
    /// Offline: do the files on disk match what the state renders, and is the state fresh?
    ///
    /// Exit 0: all match and the state is fresh; 2: a file differs (the diff is shown); 4: the state's
    /// last successful check is older than --max-age days.
    Check(Box<CheckArgs>),
    /// Read-only: does the live mail server force verified TLS 1.2+ for every listed domain?
    ///
    /// Asks Postfix (postconf, postmap, master.cf) or Exim (-bV, -bP, -bt) how mail to each domain on
    /// the list leaves (the state's list, as check uses it, or a fresh one with --source), and says why
    /// where it is not forced. Changes nothing. Run it as root or the MTA's user after every server
    /// change. Exit 0: every listed domain is enforced; 2: at least one gap (or a violation in --log);
    /// 1: the check itself failed.
    Verify(Box<VerifyArgs>),
    /// Probe each listed domain's MX: verified TLS, DANE, MTA-STS, TLS-RPT
    ///
    /// Can every listed destination receive verified TLS, and what stronger policy does it allow? For
    /// each domain (the effective list as sync would write it, or the DOMAINs given): MX, addresses,
    /// then one SMTP session per MX host and address (banner, EHLO, STARTTLS, the TLS handshake with
    /// OpenSSL, EHLO, QUIT; never MAIL FROM). Judged per domain at its configured Postfix level and at
    /// the stronger ones: DANE (TLSA under DNSSEC), MTA-STS and TLS-RPT. Exit 0: every domain
    /// deliverable at its level; 2: at least one is degraded, would defer or could not be judged.
    Probe(Box<ProbeArgs>),
    /// Write a commented starter bits-tls.toml
    Init(InitArgs),
    /// Print a shell completion script
    Completions {
        /// The shell to complete for
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), or write every page to a directory
    ///
    /// Without --dir, prints bits-tls(1), the overview page, to stdout. With --dir, writes bits-tls.1 and
    /// one page per command (bits-tls-sync.1, …) there, e.g. for a package's /usr/share/man/man1.
    Man(ManArgs),
    /// Send a test mail to the [notify] recipients, or report a failed systemd unit
    ///
    /// Without options, sends a test message through the configured sendmail, to prove the mail path.
    /// --unit-failed is what the packaged bits-tls-notify@.service runs for OnFailure=: it mails that the
    /// unit failed, unless the sync already mailed that failure or refusal itself.
    Notify(NotifyArgs),
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write bits-tls.1 and one page per command into this directory (created if missing)
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct NotifyArgs {
    /// Report that this systemd unit failed (reads systemd's MONITOR_* variables)
    #[arg(long, value_name = "UNIT")]
    pub unit_failed: Option<String>,
}

#[derive(Debug, Args)]
pub struct FetchArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Output format
    #[arg(short, long, value_enum, default_value_t = report::list::Format::Text)]
    pub format: report::list::Format,
    /// Print an empty list instead of failing (exit 1) on one
    #[arg(long)]
    pub allow_empty: bool,
}

/// Where the list comes from and how it is downloaded.
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "Source options")]
pub struct SourceArgs {
    /// The Bits page or the CSV, as an https:// URL or a file
    #[arg(short, long, env = "BITS_TLS_SOURCE", value_name = "URL|PATH")]
    pub source: Option<String>,
    /// Allow plain http:// for the page, the CSV link and redirects
    #[arg(long, overrides_with = "no_allow_http")]
    pub allow_http: bool,
    /// Refuse plain http://, whatever the configuration says
    #[arg(long, overrides_with = "allow_http")]
    pub no_allow_http: bool,
    /// Also trust the CA certificates in this PEM file (e.g. a TLS-inspecting proxy)
    #[arg(long, value_name = "PATH")]
    pub ca_file: Option<PathBuf>,
    /// Give up on one request after this many seconds
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub timeout: Option<u64>,
    /// Refuse a download larger than this many bytes
    #[arg(long, value_name = "SIZE", value_parser = crate::source::http::parse_size)]
    pub max_size: Option<u64>,
    /// Say which column holds what, when the headers are not recognised: FIELD=COLUMN,… where COLUMN is a
    /// number (from 1) or the header's text; fields: organization, org_number, domain, enrolled,
    /// enforces_inbound_tls
    #[arg(long, value_name = "FIELD=COLUMN,…")]
    pub columns: Option<ColumnOverride>,
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    /// What to render
    #[arg(value_enum, required_unless_present = "template")]
    pub target: Option<BuiltIn>,
    /// Render this template file (minijinja) instead of a built-in target
    #[arg(long, value_name = "FILE", conflicts_with = "target")]
    pub template: Option<PathBuf>,
    /// Take templates from this directory where it has a file of the built-in name (e.g. postfix-policy.j2)
    #[arg(long, value_name = "DIR")]
    pub templates: Option<PathBuf>,
    /// Write to FILE atomically (temporary file, fsync, rename, mode kept) instead of stdout; `sync` is
    /// the way to keep a server's files in step
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Render an empty list instead of failing (exit 1) on one
    #[arg(long)]
    pub allow_empty: bool,
    /// Your own domain, left out of the output like `own_domains` in the configuration (repeatable): the
    /// 5.2.4 rules must never refuse your own servers' mail
    #[arg(long = "own-domain", value_name = "DOMAIN", value_parser = parse_domain)]
    pub own_domains: Vec<Domain>,
    #[command(flatten)]
    pub source: SourceArgs,
    #[command(flatten)]
    pub options: RenderOptionArgs,
}

/// Per-target options; each overrides the configuration file, which overrides the default. Arguments
/// are named after their configuration key (`postfix.level`), so help can show the key's default.
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "Output options")]
pub struct RenderOptionArgs {
    /// Also cover every subdomain in the Exim and Exchange outputs (the Postfix tables always do); accepts
    /// `*.x` entries in the list
    #[arg(long, overrides_with = "no_subdomains")]
    pub subdomains: bool,
    /// Only the listed domains themselves, whatever the configuration says
    #[arg(long, overrides_with = "subdomains")]
    pub no_subdomains: bool,
    /// Postfix TLS security level
    #[arg(long, id = "postfix.level", value_enum, value_name = "LEVEL")]
    pub postfix_level: Option<PostfixLevel>,
    /// How Postfix's TLS 1.2 floor is written: legacy (any Postfix) or modern (3.6+)
    #[arg(long, id = "postfix.protocols", value_enum, value_name = "SYNTAX")]
    pub postfix_protocols: Option<PostfixProtocols>,
    /// Postfix `match=` for verify/secure, e.g. nexthop:dot-nexthop:.protection.outlook.com
    #[arg(long, id = "postfix.match", value_name = "MATCH")]
    pub postfix_match: Option<String>,
    /// Postfix table type in the main.cf lines
    #[arg(long, id = "postfix.table_type", value_enum, value_name = "TYPE")]
    pub postfix_table_type: Option<TableType>,
    /// Path of the policy table in the main.cf lines
    #[arg(long, id = "postfix.policy_path", value_name = "PATH")]
    pub postfix_policy_path: Option<String>,
    /// Path of the senders table in the main.cf lines
    #[arg(long, id = "postfix.senders_path", value_name = "PATH")]
    pub postfix_senders_path: Option<String>,
    /// smtp_tls_CAfile in the main.cf lines
    #[arg(long, id = "postfix.ca_file", value_name = "PATH")]
    pub postfix_ca_file: Option<String>,
    /// Relayhost or transport next hop listed mail leaves through, e.g. [smtp.example.no]:587: adds its
    /// policy entry
    #[arg(long, id = "postfix.relay", value_name = "NEXTHOP")]
    pub postfix_relay: Option<String>,
    /// TLS library of the Exim build
    #[arg(long, id = "exim.tls_library", value_enum, value_name = "LIB")]
    pub exim_tls: Option<EximTls>,
    /// Path of the Exim domain list file
    #[arg(long, id = "exim.domains_file", value_name = "PATH")]
    pub exim_domains_file: Option<String>,
    /// Exim tls_verify_certificates: `system` or a CA bundle path
    #[arg(long, id = "exim.verify_certificates", value_name = "system|PATH")]
    pub exim_verify_certificates: Option<String>,
    /// Exchange Server send connector name
    #[arg(long, id = "exchange.connector_name", value_name = "NAME")]
    pub exchange_connector: Option<String>,
    /// Exchange Server TlsAuthLevel
    #[arg(long, id = "exchange.tls_auth_level", value_enum, value_name = "LEVEL")]
    pub exchange_tls_auth_level: Option<TlsValidation>,
    /// Exchange Server TlsDomain (required with DomainValidation)
    #[arg(long, id = "exchange.tls_domain", value_name = "DOMAIN", value_parser = parse_domain)]
    pub exchange_tls_domain: Option<Domain>,
    /// Exchange Server source transport server (repeat for several)
    #[arg(
        long = "exchange-source-server",
        id = "exchange.source_transport_servers",
        value_name = "NAME"
    )]
    pub exchange_source_servers: Vec<String>,
    /// Exchange Server connector MaxMessageSize, e.g. 35MB
    #[arg(long, id = "exchange.max_message_size", value_name = "SIZE")]
    pub exchange_max_message_size: Option<String>,
    /// Exchange Server name the connector greets with (EHLO); unset, the script copies the Internet
    /// send connector's Fqdn
    #[arg(long, id = "exchange.fqdn", value_name = "FQDN", value_parser = parse_domain)]
    pub exchange_fqdn: Option<Domain>,
    /// Exchange Server: stop when mail leaves through a smart host or Edge (detect), or not (direct)
    #[arg(long, id = "exchange.topology", value_enum, value_name = "TOPOLOGY")]
    pub exchange_topology: Option<ExchangeTopology>,
    /// Exchange Server: a second connector with DomainValidation for domains hosted at Microsoft 365
    #[arg(
        long,
        id = "exchange.microsoft365_split",
        overrides_with = "no_exchange_microsoft365_split"
    )]
    pub exchange_microsoft365_split: bool,
    /// No Microsoft 365 connector, whatever the configuration says
    #[arg(long, overrides_with = "exchange.microsoft365_split")]
    pub no_exchange_microsoft365_split: bool,
    /// Exchange Online outbound connector name
    #[arg(long, id = "exchange_online.connector_name", value_name = "NAME")]
    pub exo_connector: Option<String>,
    /// Exchange Online TlsSettings
    #[arg(
        long,
        id = "exchange_online.tls_settings",
        value_enum,
        value_name = "LEVEL"
    )]
    pub exo_tls_settings: Option<TlsValidation>,
    /// Exchange Online TlsDomain (required with DomainValidation)
    #[arg(long, id = "exchange_online.tls_domain", value_name = "DOMAIN", value_parser = parse_domain)]
    pub exo_tls_domain: Option<Domain>,
    /// Most recipient domains per Exchange Online connector before splitting
    #[arg(
        long,
        id = "exchange_online.max_domains_per_connector",
        value_name = "N"
    )]
    pub exo_max_domains: Option<usize>,
    /// Also create an Exchange Online partner inbound connector with RequireTls (requirement 5.2.4)
    #[arg(
        long,
        id = "exchange_online.inbound",
        overrides_with = "no_exo_inbound"
    )]
    pub exo_inbound: bool,
    /// No inbound connector, whatever the configuration says
    #[arg(long, overrides_with = "exchange_online.inbound")]
    pub no_exo_inbound: bool,
    /// Exchange Online inbound connector name
    #[arg(
        long,
        id = "exchange_online.inbound_connector_name",
        value_name = "NAME"
    )]
    pub exo_inbound_connector: Option<String>,
    /// Exchange Online: own connector(s) with DomainValidation for domains hosted at Microsoft 365
    #[arg(
        long,
        id = "exchange_online.microsoft365_split",
        overrides_with = "no_exo_microsoft365_split"
    )]
    pub exo_microsoft365_split: bool,
    /// No Microsoft 365 connectors, whatever the configuration says
    #[arg(long, overrides_with = "exchange_online.microsoft365_split")]
    pub no_exo_microsoft365_split: bool,
}

fn parse_domain(s: &str) -> Result<Domain, String> {
    Domain::parse(s, DomainRules::default()).map_err(|e| format!("domain {e}"))
}

/// What diff, sync and check work on.
#[derive(Debug, Args, Clone, Default)]
pub struct JobArgs {
    /// Write TARGET's output to PATH (repeatable); replaces the configuration's [[output]] entries
    #[arg(short = 'o', long = "output", value_name = "TARGET=PATH", value_parser = parse_output)]
    pub outputs: Vec<(BuiltIn, PathBuf)>,
    /// State file [default: bits-tls.state.json beside the configuration]
    #[arg(long, env = "BITS_TLS_STATE", value_name = "PATH")]
    pub state: Option<PathBuf>,
    /// Take templates from this directory where it has a file of the built-in name
    #[arg(long, value_name = "DIR")]
    pub templates: Option<PathBuf>,
    #[command(flatten)]
    pub source: SourceArgs,
    #[command(flatten)]
    pub options: RenderOptionArgs,
}

fn parse_output(s: &str) -> Result<(BuiltIn, PathBuf), String> {
    let (t, p) = s.split_once('=').ok_or("expected TARGET=PATH")?;
    let target = BuiltIn::parse(t)
        .ok_or_else(|| format!("unknown target `{t}`; expected one of {}", BuiltIn::names()))?;
    if let Some(why) = target.not_an_output() {
        return Err(why);
    }
    if p.is_empty() {
        return Err("the path is empty".into());
    }
    Ok((target, PathBuf::from(p)))
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// Output format; markdown is for a merge-request comment
    #[arg(short, long, value_enum, default_value_t = report::plan::Format::Text)]
    pub format: report::plan::Format,
    /// Probe each added domain and warn when forced TLS would not deliver to it (bits-tls probe)
    #[arg(long)]
    pub probe: bool,
    #[command(flatten)]
    pub job: JobArgs,
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Show the plan and change nothing (the same as `diff`)
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    /// Format of the --dry-run plan; markdown is for a merge-request comment
    #[arg(short, long, value_enum, requires = "dry_run", default_value_t = report::plan::Format::Text)]
    pub format: report::plan::Format,
    /// Apply even when a safety guard trips (empty list, too many domains removed)
    #[arg(long)]
    pub force: bool,
    /// Exit 2 when something was changed (to chain a reload)
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Probe each added domain and warn when forced TLS would not deliver to it (bits-tls probe)
    #[arg(long)]
    pub probe: bool,
    #[command(flatten)]
    pub job: JobArgs,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Days after which the state's last successful check is stale; 0 makes any age stale
    #[arg(long, default_value_t = 92, value_name = "DAYS")]
    pub max_age: u32,
    /// Also compare the state with the live list (uses the network)
    #[arg(long)]
    pub online: bool,
    /// Output format; markdown is for a change ticket
    #[arg(short, long, value_enum, default_value_t = report::check::Format::Text)]
    pub format: report::check::Format,
    #[command(flatten)]
    pub job: JobArgs,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The mail server to ask
    #[arg(value_enum)]
    pub mta: crate::verify::Mta,
    /// Postfix configuration directory (postconf -c) [default: Postfix's own, /etc/postfix]
    #[arg(long, value_name = "DIR")]
    pub postfix_config_dir: Option<PathBuf>,
    /// Where postconf is, when it is not on PATH (postmap and postqueue are taken from Postfix's
    /// command_directory)
    #[arg(long, value_name = "DIR")]
    pub postfix_command_dir: Option<PathBuf>,
    /// Exim configuration file (exim -C) [default: the one Exim was built to read]
    #[arg(long, value_name = "FILE")]
    pub exim_config: Option<PathBuf>,
    /// The Exim binary, when neither exim4 nor exim is on PATH
    #[arg(long, value_name = "PATH")]
    pub exim: Option<PathBuf>,
    /// Also read this mail log: every delivery to a listed domain must have used verified TLS 1.2+
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Also list mail for listed domains waiting in the queue, with its age and time to bounce
    #[arg(long)]
    pub queue: bool,
    /// Output format; markdown is for a change ticket
    #[arg(long, value_enum, default_value_t = report::verify::Format::Text)]
    pub format: report::verify::Format,
    #[command(flatten)]
    pub job: JobArgs,
}

#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// Domains to probe [default: the effective list: the state's list (else the source's) with
    /// extra domains, exclusions and overrides applied]
    #[arg(value_name = "DOMAIN", value_parser = parse_domain)]
    pub domains: Vec<Domain>,
    /// Output format; markdown doubles as the message to tls@bits.no about broken participants
    #[arg(long, value_enum, default_value_t = report::probe::Format::Text)]
    pub format: report::probe::Format,
    /// Print [[override]] entries for bits-tls.toml (dane-only where DANE is safe, secure with match=
    /// from an MTA-STS policy in enforce mode) instead of the report
    #[arg(long)]
    pub suggest_overrides: bool,
    /// Name to send with EHLO [default: this host's name]
    #[arg(long, value_name = "NAME")]
    pub helo: Option<String>,
    /// Trust only the CA certificates in this PEM file for SMTP, as smtp_tls_CAfile does (and also
    /// them, besides the system's, for MTA-STS policies) [default: [postfix] ca_file where it exists,
    /// else the system's CA store]
    #[arg(long, value_name = "PATH")]
    pub ca_file: Option<PathBuf>,
    /// Seconds each step may take (connect, each reply, the handshake, a DNS answer, a policy fetch)
    // Its own id: `timeout` is the download setting, whose default help would show.
    #[arg(long = "timeout", id = "probe_timeout", default_value_t = 10, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=300))]
    pub timeout: u64,
    /// Lookups, SMTP sessions and policy fetches run at once
    #[arg(long, default_value_t = 32, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=256))]
    pub concurrency: u64,
    /// Warn about certificates that pass now but expire within this many days
    #[arg(long, default_value_t = 21, value_name = "DAYS")]
    pub expiry_warn: u32,
    /// DNS resolver to ask, IP[:PORT] [default: the first nameserver in /etc/resolv.conf, as the MTA]
    #[arg(long, value_name = "IP[:PORT]")]
    pub resolver: Option<String>,
    /// DNSSEC trust anchors (DNSKEY or DS records, as for unbound): their zones' DNSKEY answers must
    /// carry the AD bit, and local validation from them checks every answer's signatures; either
    /// failing reports the resolver as not validating [default: the root zone's AD bit only]
    #[arg(long, value_name = "FILE")]
    pub trust_anchor: Option<PathBuf>,
    /// The Bits page or the CSV, when there is no state yet
    #[arg(long, env = "BITS_TLS_SOURCE", value_name = "URL|PATH")]
    pub source: Option<String>,
    /// State file whose list is probed [default: bits-tls.state.json beside the configuration]
    #[arg(long, env = "BITS_TLS_STATE", value_name = "PATH")]
    pub state: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Where to write it; `-` prints it [default: --config, else ./bits-tls.toml]
    pub path: Option<PathBuf>,
    /// Replace an existing file (the old one is kept as FILE.bak)
    #[arg(long)]
    pub force: bool,
}
