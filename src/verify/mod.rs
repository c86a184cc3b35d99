//! `verify`: does the live mail server force verified TLS 1.2 or newer for every listed domain, right
//! now? The requirement's "point of testing … after server changes or server switch".
//!
//! `check` compares files with the state; this asks the MTA itself. Postfix is asked through `postconf`
//! (main.cf and master.cf as Postfix reads them, expanded) and `postmap` (what each table answers),
//! and its routing and TLS policy lookup are followed per domain the way trivial-rewrite and smtp(8)
//! do (`postfix.rs`). Exim answers for itself: `-bV`, `-bP`, and `-bt` routes every listed domain
//! (`exim.rs`). Logs and the queue add evidence from real traffic (`evidence.rs`). Nothing here writes
//! anything or changes the MTA.

pub mod evidence;
pub mod exim;
pub mod postfix;
pub mod tools;

use crate::domain::Domain;
use crate::render::options::RenderOptions;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The mail servers `verify` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Mta {
    /// Postfix (postconf, postmap, master.cf; every instance of a multi-instance host)
    Postfix,
    /// Exim 4 (exim -bV, -bP, -bt)
    Exim,
}

impl Mta {
    pub fn name(self) -> &'static str {
        match self {
            Mta::Postfix => "Postfix",
            Mta::Exim => "Exim",
        }
    }
}

/// What verify found for one listed domain, worst first when sorted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Mail to it leaves only over verified TLS 1.2 or newer.
    Enforced,
    /// The configuration alone cannot tell (a sender-dependent route, a local hand-off): never ok.
    Undecided,
    /// Mail to it can leave without verified TLS 1.2+, or cannot leave at all.
    Gap,
}

impl Verdict {
    /// The short word the text report shows.
    pub fn word(self) -> &'static str {
        match self {
            Verdict::Enforced => "ok",
            Verdict::Undecided => "UNDECIDED",
            Verdict::Gap => "GAP",
        }
    }
}

/// One listed domain on this server.
#[derive(Debug, Clone, Serialize)]
pub struct DomainCheck {
    /// The domain (A-label).
    pub domain: String,
    pub verdict: Verdict,
    /// How mail to it leaves, in the server's terms: `smtp to bits.no`, or the router and transport.
    pub route: String,
    /// The TLS requirement that applies to it, and where it comes from.
    pub policy: Option<String>,
    /// Why it is not enforced; empty when it is.
    pub reasons: Vec<String>,
    /// What does not change the verdict but is worth knowing (an `[[override]]`, a UTF-8 key).
    pub notes: Vec<String>,
}

impl DomainCheck {
    pub fn new(domain: &str) -> DomainCheck {
        DomainCheck {
            domain: domain.to_string(),
            verdict: Verdict::Enforced,
            route: String::new(),
            policy: None,
            reasons: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Records a reason and lowers the verdict to `v` (a gap stays a gap).
    pub fn fail(&mut self, v: Verdict, reason: impl Into<String>) {
        self.verdict = self.verdict.max(v);
        let r = reason.into();
        if !self.reasons.contains(&r) {
            self.reasons.push(r);
        }
    }
}

/// How much a finding about the server as a whole matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Note,
    /// Worth fixing; not a gap in the forced-TLS promise (exit 0 stays 0).
    Warning,
    /// The server does not keep the promise (exit 2).
    Gap,
}

impl Severity {
    pub fn word(self) -> &'static str {
        match self {
            Severity::Note => "note",
            Severity::Warning => "warning",
            Severity::Gap => "GAP",
        }
    }
}

/// A finding about the server as a whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub severity: Severity,
    /// Where it applies (`main.cf`, an instance, a table), when not the whole server.
    pub subject: Option<String>,
    pub message: String,
}

impl Finding {
    pub fn new(severity: Severity, subject: Option<String>, message: impl Into<String>) -> Finding {
        Finding {
            severity,
            subject,
            message: message.into(),
        }
    }
}

/// The server (or one Postfix instance) that was asked.
#[derive(Debug, Clone, Serialize)]
pub struct ServerInfo {
    /// `Postfix 3.7.11` or `Exim 4.96`.
    pub software: String,
    /// The configuration read: a directory (Postfix) or file (Exim).
    pub config: String,
    /// The Postfix instance name (`-` for the primary) on a multi-instance host.
    pub instance: Option<String>,
    /// The TLS library Exim was built with.
    pub tls_library: Option<String>,
}

/// Everything verify found.
#[derive(Debug, Clone, Serialize)]
pub struct Verification {
    pub mta: Mta,
    pub servers: Vec<ServerInfo>,
    pub domains: Vec<DomainCheck>,
    pub findings: Vec<Finding>,
    pub evidence: Option<evidence::Evidence>,
}

impl Verification {
    /// Domains by verdict: (enforced, undecided, gap).
    pub fn counts(&self) -> (usize, usize, usize) {
        let n = |v| self.domains.iter().filter(|d| d.verdict == v).count();
        (n(Verdict::Enforced), n(Verdict::Undecided), n(Verdict::Gap))
    }

    pub fn findings_of(&self, s: Severity) -> usize {
        self.findings.iter().filter(|f| f.severity == s).count()
    }

    /// Anything short of "every listed domain is enforced": exit 2.
    pub fn has_gaps(&self) -> bool {
        self.domains.iter().any(|d| d.verdict != Verdict::Enforced)
            || self.findings.iter().any(|f| f.severity == Severity::Gap)
            || self
                .evidence
                .as_ref()
                .is_some_and(|e| !e.violations.is_empty())
    }
}

/// What the server must do, from the state (or a fresh list) and the configuration.
#[derive(Debug, Clone)]
pub struct Expected {
    /// The effective list's domains (own domains and exclusions removed, additions added).
    pub domains: Vec<Domain>,
    /// The options the outputs were rendered with (levels, overrides, paths).
    pub options: RenderOptions,
    /// The `postfix-policy` table as the state renders it.
    pub policy: Table,
    /// The `postfix-senders` table, when that output is configured (requirement 5.2.4).
    pub senders: Option<Table>,
    /// The `exim-domains` file as the state renders it, and where the configuration writes it.
    pub exim_domains: Table,
}

/// A table bits-tls renders: where it is meant to be, and its entries (key → value; for the Exim
/// domain list, entry → empty).
#[derive(Debug, Clone, Default)]
pub struct Table {
    /// `hash:/etc/postfix/bits_tls_policy` (Postfix) or the file (Exim).
    pub map: String,
    pub path: PathBuf,
    /// Whether an `[[output]]` writes it (else the path is the configured or default one).
    pub configured: bool,
    pub entries: BTreeMap<String, String>,
}

impl Table {
    /// The data lines of a rendered table: `key value` (or a lone entry), comments and blank lines
    /// skipped.
    pub fn parse_entries(text: &str) -> BTreeMap<String, String> {
        crate::render::data_lines(text)
            .map(|(_, l)| match l.split_once([' ', '\t']) {
                Some((k, v)) => (k.to_lowercase(), v.trim().to_string()),
                None => (l.trim().to_lowercase(), String::new()),
            })
            .collect()
    }
}

/// Where the MTA's programs and configuration are, and what evidence to read.
#[derive(Debug, Clone, Default)]
pub struct Setup {
    pub postfix_config_dir: Option<PathBuf>,
    pub postfix_command_dir: Option<PathBuf>,
    pub exim: Option<PathBuf>,
    pub exim_config: Option<PathBuf>,
    pub log: Option<PathBuf>,
    pub queue: bool,
}

/// Asks the MTA. Errors (exit 1) are for what stops the check itself: a program that is not there, a
/// configuration directory that does not exist; everything the server gets wrong is a finding.
pub fn verify(mta: Mta, setup: &Setup, expected: &Expected) -> anyhow::Result<Verification> {
    match mta {
        Mta::Postfix => postfix::verify(setup, expected),
        Mta::Exim => exim::verify(setup, expected),
    }
}

/// Typed errors the command line explains with a hint.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("`{program}` was not found; looked in {}", looked_in(.looked))]
    NotFound {
        program: String,
        looked: Vec<PathBuf>,
        flag: &'static str,
    },
    #[error("`{command}` failed{}: {stderr}", .code.map(|c| format!(" (exit {c})")).unwrap_or_default())]
    Failed {
        command: String,
        code: Option<i32>,
        stderr: String,
    },
    #[error("could not run `{command}`")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
}

fn looked_in(dirs: &[PathBuf]) -> String {
    if dirs.is_empty() {
        return "no directory (PATH is empty)".into();
    }
    dirs.iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

impl VerifyError {
    pub fn hint(&self) -> Option<String> {
        match self {
            VerifyError::NotFound { flag, .. } => Some(format!(
                "run verify on the mail server as root or the MTA's user, with the MTA's programs on PATH (cron's PATH lacks /usr/sbin), or name them with {flag}"
            )),
            VerifyError::Failed { .. } => Some(
                "verify reads the live configuration; check that the configuration named (--postfix-config-dir, --exim-config) is the one the server uses".into(),
            ),
            VerifyError::Spawn { .. } => None,
        }
    }
}

impl Expected {
    /// What the state (or the fetched list) renders for this configuration: the effective list and
    /// the tables as `sync` would write them (only `mta`'s are rendered; the others stay empty).
    pub fn from_plan(
        job: &crate::plan::Job,
        plan: &crate::plan::Plan,
        mta: Mta,
    ) -> anyhow::Result<Expected> {
        use crate::render::{BuiltIn, RenderInput, Renderer, Target};
        let renderer = Renderer::new(job.templates_dir.as_deref())?;
        let ctx = Renderer::context(
            RenderInput {
                provenance: plan.rendered_from.as_ref().unwrap_or(&plan.provenance),
                list: plan.effective(),
                local: &plan.local,
            },
            &job.render,
        )?;
        let output = |t: BuiltIn| {
            job.outputs
                .iter()
                .find(|o| o.target == Target::BuiltIn(t))
                .map(|o| o.path.clone())
        };
        let render = |t: BuiltIn| -> anyhow::Result<BTreeMap<String, String>> {
            let wanted = match t {
                BuiltIn::EximDomains => mta == Mta::Exim,
                _ => mta == Mta::Postfix,
            };
            if !wanted {
                return Ok(BTreeMap::new());
            }
            let text = renderer.render_with(&Target::BuiltIn(t), &ctx, &job.render)?;
            Ok(Table::parse_entries(&text))
        };
        let o = &job.render.postfix;
        let postfix_table = |t: BuiltIn, path: &str| -> anyhow::Result<Table> {
            Ok(Table {
                map: format!("{}:{path}", o.table_type.as_str()),
                path: PathBuf::from(path),
                configured: output(t).is_some(),
                entries: render(t)?,
            })
        };
        let senders = match output(BuiltIn::PostfixSenders) {
            Some(_) => Some(postfix_table(BuiltIn::PostfixSenders, &o.senders_path)?),
            None => None,
        };
        let exim_path = output(BuiltIn::EximDomains)
            .unwrap_or_else(|| PathBuf::from(&job.render.exim.domains_file));
        Ok(Expected {
            domains: plan.effective().domains().into_iter().cloned().collect(),
            options: job.render.clone(),
            policy: postfix_table(BuiltIn::PostfixPolicy, &o.policy_path)?,
            senders,
            exim_domains: Table {
                map: exim_path.display().to_string(),
                path: exim_path,
                configured: output(BuiltIn::EximDomains).is_some(),
                entries: render(BuiltIn::EximDomains)?,
            },
        })
    }
}
