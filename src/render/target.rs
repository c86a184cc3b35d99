//! The built-in targets, each declared once: its name, what it is, its template and the check its
//! output must pass. The command line (`render TARGET`, `--output TARGET=PATH`), the configuration's
//! `[[output]] target`, the embedded templates and the output check all read this table, so adding a
//! target is a variant here, a template in `templates/` and a checker with its mail system.

use super::options::RenderOptions;
use super::{exchange, exim, postfix};
use std::fmt;
use std::path::PathBuf;

/// The first line (1-based) that breaks the target's grammar, and why.
pub type CheckResult = Result<(), (usize, String)>;

/// Checks a rendered output against its target's grammar.
pub type Checker = fn(&str, &RenderOptions) -> CheckResult;

/// One built-in target.
#[derive(Debug)]
pub struct Spec {
    /// The name on the command line and in `[[output]] target`.
    pub name: &'static str,
    /// One line for `--help`.
    pub about: &'static str,
    /// The template's file name (also its name in a `--templates` directory).
    pub template: &'static str,
    /// The embedded template.
    pub source: &'static str,
    pub check: Checker,
}

/// The built-in targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BuiltIn {
    PostfixPolicy,
    PostfixSenders,
    EximDomains,
    EximMain,
    EximAcl,
    EximRouter,
    EximTransport,
    EximConfig,
    Exchange,
    ExchangeOnline,
    ExchangeVerify,
    ExchangeOnlineVerify,
}

impl BuiltIn {
    pub const ALL: [BuiltIn; 12] = [
        BuiltIn::PostfixPolicy,
        BuiltIn::PostfixSenders,
        BuiltIn::EximDomains,
        BuiltIn::EximMain,
        BuiltIn::EximAcl,
        BuiltIn::EximRouter,
        BuiltIn::EximTransport,
        BuiltIn::EximConfig,
        BuiltIn::Exchange,
        BuiltIn::ExchangeOnline,
        BuiltIn::ExchangeVerify,
        BuiltIn::ExchangeOnlineVerify,
    ];

    pub fn spec(self) -> &'static Spec {
        match self {
            BuiltIn::PostfixPolicy => &Spec {
                name: "postfix-policy",
                about: "Postfix smtp_tls_policy_maps table",
                template: "postfix-policy.j2",
                source: include_str!("../../templates/postfix-policy.j2"),
                check: postfix::check_policy,
            },
            BuiltIn::PostfixSenders => &Spec {
                name: "postfix-senders",
                about: "Postfix check_sender_access table (requirement 5.2.4)",
                template: "postfix-senders.j2",
                source: include_str!("../../templates/postfix-senders.j2"),
                check: senders,
            },
            BuiltIn::EximDomains => &Spec {
                name: "exim-domains",
                about: "Exim domain list file",
                template: "exim-domains.j2",
                source: include_str!("../../templates/exim-domains.j2"),
                check: exim_domains,
            },
            BuiltIn::EximMain => &Spec {
                name: "exim-main",
                about: "Exim main-section piece: the domainlist",
                template: "exim-main.j2",
                source: include_str!("../../templates/exim-main.j2"),
                check: exim_config,
            },
            BuiltIn::EximAcl => &Spec {
                name: "exim-acl",
                about: "Exim ACL piece for acl_check_rcpt (requirement 5.2.4)",
                template: "exim-acl.j2",
                source: include_str!("../../templates/exim-acl.j2"),
                check: exim_config,
            },
            BuiltIn::EximRouter => &Spec {
                name: "exim-router",
                about: "Exim router piece: listed domains to the forced-TLS transport",
                template: "exim-router.j2",
                source: include_str!("../../templates/exim-router.j2"),
                check: exim_config,
            },
            BuiltIn::EximTransport => &Spec {
                name: "exim-transport",
                about: "Exim transport piece: verified TLS 1.2+ or no delivery",
                template: "exim-transport.j2",
                source: include_str!("../../templates/exim-transport.j2"),
                check: exim_config,
            },
            BuiltIn::EximConfig => &Spec {
                name: "exim-config",
                about: "The four Exim pieces together, for reading (not an output)",
                template: "exim-config.j2",
                source: include_str!("../../templates/exim-config.j2"),
                check: exim_config,
            },
            BuiltIn::Exchange => &Spec {
                name: "exchange",
                about: "Exchange Server PowerShell (send connector)",
                template: "exchange.ps1.j2",
                source: include_str!("../../templates/exchange.ps1.j2"),
                check: script,
            },
            BuiltIn::ExchangeOnline => &Spec {
                name: "exchange-online",
                about: "Exchange Online PowerShell (partner connectors)",
                template: "exchange-online.ps1.j2",
                source: include_str!("../../templates/exchange-online.ps1.j2"),
                check: script,
            },
            BuiltIn::ExchangeVerify => &Spec {
                name: "exchange-verify",
                about: "Exchange Server PowerShell, read-only: does the live send connector force TLS to the list?",
                template: "exchange-verify.ps1.j2",
                source: include_str!("../../templates/exchange-verify.ps1.j2"),
                check: script,
            },
            BuiltIn::ExchangeOnlineVerify => &Spec {
                name: "exchange-online-verify",
                about: "Exchange Online PowerShell, read-only: do the live connectors force TLS to the list?",
                template: "exchange-online-verify.ps1.j2",
                source: include_str!("../../templates/exchange-online-verify.ps1.j2"),
                check: script,
            },
        }
    }

    pub fn name(self) -> &'static str {
        self.spec().name
    }

    pub fn parse(name: &str) -> Option<BuiltIn> {
        BuiltIn::ALL.into_iter().find(|t| t.name() == name)
    }

    /// `a, b, c`: for messages that list what is accepted.
    pub fn names() -> String {
        BuiltIn::ALL.map(BuiltIn::name).join(", ")
    }

    /// Why this target cannot be written as an output file, if it cannot: `exim-config` is four pieces
    /// for four places in one configuration, and Exim refuses it as one file.
    pub fn not_an_output(self) -> Option<String> {
        (self == BuiltIn::EximConfig).then(|| {
            "`exim-config` shows four pieces for four places in the Exim configuration and cannot be \
             written as one file; write exim-main, exim-acl, exim-router and exim-transport instead"
                .to_string()
        })
    }
}

impl clap::ValueEnum for BuiltIn {
    fn value_variants<'a>() -> &'a [Self] {
        &BuiltIn::ALL
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.name()).help(self.spec().about))
    }
}

fn senders(text: &str, _: &RenderOptions) -> CheckResult {
    postfix::check_senders(text)
}

fn exim_domains(text: &str, _: &RenderOptions) -> CheckResult {
    exim::check_domains(text)
}

fn exim_config(text: &str, _: &RenderOptions) -> CheckResult {
    exim::check_config(text)
}

fn script(text: &str, _: &RenderOptions) -> CheckResult {
    exchange::check_script(text)
}

/// What to render: a built-in target or a template file of the user's.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    BuiltIn(BuiltIn),
    /// A user template file, rendered with the same context; no grammar is known, so none is checked.
    Template(PathBuf),
}

impl Target {
    /// `postfix-policy`, …, or `template`.
    pub fn name(&self) -> &'static str {
        match self {
            Target::BuiltIn(b) => b.name(),
            Target::Template(_) => "template",
        }
    }

    pub fn parse(name: &str) -> Option<Target> {
        BuiltIn::parse(name).map(Target::BuiltIn)
    }

    /// A script someone must run on another system (Exchange Server, Exchange Online): writing it
    /// applies nothing, so sync says "written", not "applied", and check cannot see the live state.
    pub fn is_script(&self) -> bool {
        matches!(
            self,
            Target::BuiltIn(
                BuiltIn::Exchange
                    | BuiltIn::ExchangeOnline
                    | BuiltIn::ExchangeVerify
                    | BuiltIn::ExchangeOnlineVerify
            )
        )
    }

    /// A file of the admin's may hold the output between managed-block markers; a template's output
    /// replaces the whole file.
    pub fn uses_managed_block(&self) -> bool {
        matches!(self, Target::BuiltIn(_))
    }
}

impl From<BuiltIn> for Target {
    fn from(b: BuiltIn) -> Target {
        Target::BuiltIn(b)
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Template(p) => write!(f, "template `{}`", p.display()),
            Target::BuiltIn(b) => f.write_str(b.name()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::ValueEnum;

    #[test]
    fn names_round_trip_and_are_unique() {
        for t in BuiltIn::ALL {
            assert_eq!(BuiltIn::parse(t.name()), Some(t));
            assert_eq!(BuiltIn::from_str(t.name(), false), Ok(t));
        }
        let mut names: Vec<&str> = BuiltIn::ALL.iter().map(|t| t.name()).collect();
        names.dedup();
        assert_eq!(names.len(), BuiltIn::ALL.len());
        assert_eq!(BuiltIn::parse("template"), None);
    }
}
