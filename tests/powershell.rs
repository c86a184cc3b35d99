//! The generated PowerShell, parsed by tree-sitter-powershell (PowerShell itself does not run here): no
//! syntax error, only the expected commands invoked, every quoted domain one from the list, and the
//! cmdlets and parameters where they must be: the greeting name (Fqdn), the stop before bypassing a
//! gateway, the Microsoft 365 split with DomainValidation, connectors marked in their Comment and only
//! marked ones removed, and `-Usage Custom`.

mod support;

use std::collections::BTreeSet;
use support::{example_csv, fixture, listed_domains, render};
use tree_sitter::{Node, Parser, Tree};

fn parse(script: &str) -> Tree {
    let mut parser = Parser::new();
    parser
        .set_language(&tree_sitter_powershell::LANGUAGE.into())
        .expect("PowerShell grammar loads");
    parser.parse(script, None).expect("parser returns a tree")
}

fn walk<'t>(node: Node<'t>, out: &mut Vec<Node<'t>>) {
    out.push(node);
    let mut cursor = node.walk();
    for child in node.children(&mut cursor) {
        walk(child, out);
    }
}

/// One command invocation: its name, its `-Parameter`s each with the element after it (if any), and
/// whether an enclosing statement mentions `guard` (see [`Script::guarded`]).
#[derive(Debug, Clone)]
struct Call {
    name: String,
    params: Vec<(String, Option<String>)>,
    splats: Vec<String>,
    /// The texts of the enclosing `foreach` headers and `if` conditions, innermost first.
    context: Vec<String>,
}

impl Call {
    fn arg(&self, param: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(p, _)| p.eq_ignore_ascii_case(param))
            .and_then(|(_, v)| v.as_deref())
    }
}

struct Script {
    nodes_with_errors: Vec<String>,
    commands: BTreeSet<String>,
    single_quoted: Vec<String>,
    double_quoted: Vec<String>,
    calls: Vec<Call>,
    /// Entries of every hashtable literal (`@{ Key = value }`): (key, value text).
    hash_entries: Vec<(String, String)>,
    /// `$var['Key'] = value` assignments: (`$var`, `Key`, value text).
    index_assignments: Vec<(String, String, String)>,
    /// Member names read anywhere (`$x.Fqdn` → `Fqdn`).
    members: BTreeSet<String>,
    /// `throw` statements' texts.
    throws: Vec<String>,
}

impl Script {
    fn calls(&self, name: &str) -> Vec<&Call> {
        self.calls.iter().filter(|c| c.name == name).collect()
    }
}

fn inspect(script: &str) -> Script {
    let tree = parse(script);
    let mut nodes = Vec::new();
    walk(tree.root_node(), &mut nodes);
    let text = |n: &Node| n.utf8_text(script.as_bytes()).unwrap().to_string();
    let mut s = Script {
        nodes_with_errors: vec![],
        commands: BTreeSet::new(),
        single_quoted: vec![],
        double_quoted: vec![],
        calls: vec![],
        hash_entries: vec![],
        index_assignments: vec![],
        members: BTreeSet::new(),
        throws: vec![],
    };
    for n in &nodes {
        if n.is_error() || n.is_missing() {
            s.nodes_with_errors.push(format!(
                "{} at {:?}: {:?}",
                n.kind(),
                n.start_position(),
                text(n)
            ));
        }
        match n.kind() {
            "command_name" => {
                s.commands.insert(text(n));
            }
            "command" => s.calls.push(call(n, script)),
            "hash_entry" => {
                let part = |i| n.named_child(i).map(|c| text(&c)).unwrap_or_default();
                s.hash_entries.push((part(0), part(1).trim().to_string()));
            }
            "member_name" => {
                s.members.insert(text(n));
            }
            "flow_control_statement" if text(n).starts_with("throw") => s.throws.push(text(n)),
            "assignment_expression" => {
                if let Some(access) = first_of_kind(*n, "element_access") {
                    let var = access.named_child(0).map(|c| text(&c)).unwrap_or_default();
                    let key = access.named_child(1).map(|c| text(&c)).unwrap_or_default();
                    let value = n
                        .child_by_field_name("value")
                        .map(|v| text(&v))
                        .unwrap_or_default();
                    s.index_assignments.push((
                        var,
                        key.trim_matches('\'').to_string(),
                        value.trim().to_string(),
                    ));
                }
            }
            "string_literal" => {
                let t = text(n);
                if let Some(inner) = t.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')) {
                    s.single_quoted.push(inner.to_string());
                } else {
                    s.double_quoted.push(t);
                }
            }
            _ => {}
        }
    }
    s
}

/// The first node of `kind` in the left side of an assignment (before its operator).
fn first_of_kind<'t>(node: Node<'t>, kind: &str) -> Option<Node<'t>> {
    let left = node.child(0)?;
    let mut all = Vec::new();
    walk(left, &mut all);
    all.into_iter().find(|n| n.kind() == kind)
}

fn call(node: &Node, script: &str) -> Call {
    let text = |n: &Node| n.utf8_text(script.as_bytes()).unwrap().to_string();
    let name = node
        .child_by_field_name("command_name")
        .map(|n| text(&n))
        .unwrap_or_default();
    let mut params = Vec::new();
    let mut splats = Vec::new();
    if let Some(elements) = node.child_by_field_name("command_elements") {
        let mut cursor = elements.walk();
        let items: Vec<Node> = elements
            .children(&mut cursor)
            .filter(|c| c.kind() != "command_argument_sep")
            .collect();
        for (i, item) in items.iter().enumerate() {
            let t = text(item);
            if item.kind() == "command_parameter" {
                let (p, inline) = match t.split_once(':') {
                    Some((p, v)) => (p.to_string(), Some(v.to_string())),
                    None => (t.clone(), None),
                };
                let next = items
                    .get(i + 1)
                    .filter(|n| n.kind() != "command_parameter")
                    .map(&text);
                params.push((p, inline.filter(|v| !v.is_empty()).or(next)));
            } else if t.starts_with('@') && !t.starts_with("@(") && !t.starts_with("@{") {
                splats.push(t);
            }
        }
    }
    let mut context = Vec::new();
    let mut up = node.parent();
    while let Some(p) = up {
        match p.kind() {
            "foreach_statement" | "if_statement" => {
                // The header: everything before the statement block.
                let mut cursor = p.walk();
                let header: String = p
                    .children(&mut cursor)
                    .take_while(|c| c.kind() != "statement_block")
                    .map(|c| text(&c))
                    .collect::<Vec<_>>()
                    .join(" ");
                context.push(header);
            }
            _ => {}
        }
        up = p.parent();
    }
    Call {
        name,
        params,
        splats,
        context,
    }
}

const HELPERS: &[&str] = &[
    "Set-StrictMode",
    "ForEach-Object",
    "Where-Object",
    "Write-Warning",
    "Write-Verbose",
    "Sort-Object",
    "Select-Object",
    "Resolve-DnsName",
    "Test-Marked",
    "Test-Microsoft365Mx",
];
const EXCHANGE: &[&str] = &[
    "Get-SendConnector",
    "New-SendConnector",
    "Set-SendConnector",
    "Remove-SendConnector",
    "Get-EdgeSubscription",
];
const ONLINE: &[&str] = &[
    "Get-OutboundConnector",
    "New-OutboundConnector",
    "Set-OutboundConnector",
    "Remove-OutboundConnector",
    "Get-InboundConnector",
    "New-InboundConnector",
    "Set-InboundConnector",
    "Remove-InboundConnector",
    "Test-OwnName",
    "Assert-Ours",
];

/// Dotted literals in the scripts that are not list data: Microsoft 365's MX host names, and the dot
/// trimmed from MX names.
const KNOWN_HOSTS: &[&str] = &[
    "mail.protection.outlook.com",
    ".mail.protection.outlook.com",
    ".",
];

fn check(script: &str, allowed: &[&str], must_call: &[&str], domains: &[String]) -> Script {
    let s = inspect(script);
    assert!(
        s.nodes_with_errors.is_empty(),
        "syntax errors: {:#?}\n{script}",
        s.nodes_with_errors
    );
    let unexpected: Vec<&String> = s
        .commands
        .iter()
        .filter(|c| !allowed.contains(&c.as_str()) && !HELPERS.contains(&c.as_str()))
        .collect();
    assert!(unexpected.is_empty(), "unexpected commands {unexpected:?}");
    for c in must_call {
        assert!(
            s.commands.contains(*c),
            "{c} is never called; commands: {:?}",
            s.commands
        );
    }
    // Quoted values that look like host names must be listed domains (or their `*.` form).
    for q in &s.single_quoted {
        let bare = q.strip_prefix("*.").unwrap_or(q);
        if bare.contains('.')
            && !bare.contains(' ')
            && !bare.contains('{')
            && !KNOWN_HOSTS.contains(&bare)
        {
            assert!(
                domains.contains(&bare.to_string()),
                "quoted `{q}` is not a listed domain"
            );
        }
    }
    // Double-quoted (expanding) strings never carry list data.
    for d in &s.double_quoted {
        assert!(
            !domains.iter().any(|x| d.contains(x.as_str())),
            "domain inside an expanding string: {d}"
        );
    }
    s
}

#[test]
fn exchange_server_script() {
    let domains = listed_domains(&example_csv());
    for args in [
        &[][..],
        &["--subdomains"][..],
        &[
            "--exchange-tls-auth-level",
            "DomainValidation",
            "--exchange-tls-domain",
            "relay.example.no",
        ][..],
        &[
            "--exchange-source-server",
            "EX01",
            "--exchange-source-server",
            "EX-02",
            "--exchange-max-message-size",
            "35MB",
        ][..],
        &["--exchange-connector", "Bits TLS (prod)"][..],
    ] {
        let script = render("exchange", &example_csv(), args);
        let mut allowed_domains = domains.clone();
        allowed_domains.push("relay.example.no".into());
        let s = check(&script, EXCHANGE, EXCHANGE, &allowed_domains);
        let spaces: Vec<&String> = s.single_quoted.iter().filter(|q| q.contains('.')).collect();
        assert!(spaces.len() >= domains.len(), "{args:?}: {spaces:?}");
        assert!(script.contains("[CmdletBinding(SupportsShouldProcess = $true)]"));
        assert_eq!(
            script.matches("$PSCmdlet.ShouldProcess(").count(),
            3,
            "every change asks ShouldProcess"
        );
        for c in [
            "New-SendConnector",
            "Set-SendConnector",
            "Remove-SendConnector",
        ] {
            for call in s.calls(c) {
                assert!(
                    call.context
                        .iter()
                        .any(|h| h.contains("$PSCmdlet.ShouldProcess(")),
                    "{c} outside ShouldProcess: {call:?}"
                );
            }
        }
    }
}

#[test]
fn exchange_online_script_split_and_inbound() {
    let domains = listed_domains(&example_csv());
    let script = render(
        "exchange-online",
        &example_csv(),
        &["--exo-max-domains", "4", "--exo-inbound"],
    );
    let s = check(&script, ONLINE, ONLINE, &domains);
    // 15 domains at 4 per connector: 4 numbered outbound and 4 inbound connectors.
    for i in 1..=4 {
        assert!(
            s.single_quoted.contains(&format!("Bits forced TLS {i}")),
            "{:?}",
            s.single_quoted
        );
        assert!(s
            .single_quoted
            .contains(&format!("Bits forced TLS inbound {i}")));
    }
    assert!(!s.single_quoted.contains(&"Bits forced TLS 5".to_string()));
    let quoted_domains = s
        .single_quoted
        .iter()
        .filter(|q| domains.contains(q))
        .count();
    assert_eq!(
        quoted_domains, 30,
        "every domain once outbound and once inbound"
    );
}

#[test]
fn exchange_online_script_default() {
    let domains = listed_domains(&example_csv());
    let script = render("exchange-online", &example_csv(), &[]);
    let s = check(
        &script,
        ONLINE,
        &[
            "Get-OutboundConnector",
            "New-OutboundConnector",
            "Set-OutboundConnector",
            "Remove-OutboundConnector",
        ],
        &domains,
    );
    assert!(
        !s.commands.contains("New-InboundConnector"),
        "inbound is off by default"
    );
    assert!(s.single_quoted.contains(&"Bits forced TLS".to_string()));
}

/// The verify scripts only read: Get- commands and output, never New-, Set- or Remove-.
const VERIFY_EXCHANGE: &[&str] = &[
    "Get-SendConnector",
    "Get-EdgeSubscription",
    "Get-ItemProperty",
    "New-Object",
    "Write-Output",
    "Add-Gap",
    "Get-Spaces",
    "Test-Listed",
];
const VERIFY_ONLINE: &[&str] = &[
    "Get-OutboundConnector",
    "Get-InboundConnector",
    "New-Object",
    "Write-Output",
    "Add-Gap",
    "Test-OwnName",
    "Get-Domains",
];

fn read_only(s: &Script) {
    for c in &s.commands {
        let verb = c.split('-').next().unwrap_or_default();
        assert!(
            !["New", "Set", "Remove", "Enable", "Disable", "Add", "Update"].contains(&verb)
                || ["New-Object", "Add-Gap", "Set-StrictMode"].contains(&c.as_str()),
            "the verify script changes something: {c}"
        );
    }
}

#[test]
fn exchange_verify_scripts_only_read_and_exit_with_the_result() {
    let domains = listed_domains(&example_csv());
    for args in [
        &[][..],
        &["--subdomains"][..],
        &[
            "--exchange-tls-auth-level",
            "DomainValidation",
            "--exchange-tls-domain",
            "relay.example.no",
        ][..],
    ] {
        let script = render("exchange-verify", &example_csv(), args);
        let mut allowed = domains.clone();
        allowed.push("relay.example.no".into());
        let s = check(
            &script,
            VERIFY_EXCHANGE,
            &["Get-SendConnector", "Get-ItemProperty"],
            &allowed,
        );
        read_only(&s);
        assert!(
            script.contains("\n    exit 2\n") && script.ends_with("exit 0\n"),
            "{args:?}"
        );
        assert!(
            !script.contains("SupportsShouldProcess"),
            "nothing to confirm: it changes nothing"
        );
        let listed = s
            .single_quoted
            .iter()
            .filter(|q| domains.iter().any(|d| q.ends_with(d.as_str())))
            .count();
        assert_eq!(listed, domains.len(), "{args:?}");
    }
    for args in [&[][..], &["--exo-inbound", "--exo-max-domains", "4"][..]] {
        let script = render("exchange-online-verify", &example_csv(), args);
        let s = check(&script, VERIFY_ONLINE, &["Get-OutboundConnector"], &domains);
        read_only(&s);
        assert_eq!(
            s.commands.contains("Get-InboundConnector"),
            !args.is_empty(),
            "inbound is checked when it is configured"
        );
        assert!(script.contains("\n    exit 2\n") && script.ends_with("exit 0\n"));
    }
}

#[test]
fn hostile_list_cannot_add_commands() {
    let src = fixture("hostile.csv");
    let domains = listed_domains(&src);
    for target in [
        "exchange",
        "exchange-online",
        "exchange-verify",
        "exchange-online-verify",
    ] {
        let script = render(target, &src, &["--exo-inbound"]);
        let allowed = match target {
            "exchange" => EXCHANGE,
            "exchange-online" => ONLINE,
            "exchange-verify" => VERIFY_EXCHANGE,
            _ => VERIFY_ONLINE,
        };
        check(&script, allowed, &[], &domains);
    }
}

#[test]
fn the_parser_does_find_errors() {
    // The check above is only worth something if the parser reports broken scripts.
    let s = inspect("$x = @(\n    'a.no'\n");
    assert!(
        !s.nodes_with_errors.is_empty(),
        "an unclosed array must be an error"
    );
    let s = inspect("Write-Host 'x'; Remove-Item -Recurse C:\\\n");
    assert!(s.commands.contains("Remove-Item"));
}

/// The values `$settings['KEY'] = …` assigns in a script.
fn assigned<'s>(s: &'s Script, key: &str) -> Vec<&'s str> {
    s.index_assignments
        .iter()
        .filter(|(var, k, _)| var == "$settings" && k == key)
        .map(|(_, _, v)| v.as_str())
        .collect()
}

/// The default of a `param()` variable, as written in the script (`[string]$Fqdn = 'x'`).
fn param_default<'a>(script: &'a str, var: &str) -> &'a str {
    let line = script
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("[string]{var} = ")))
        .unwrap_or_else(|| panic!("no parameter {var}"));
    line.split_once(" = ")
        .unwrap()
        .1
        .trim()
        .trim_end_matches(',')
}

#[test]
fn exchange_server_greets_with_the_internet_connectors_name_or_the_one_given() {
    let domains = listed_domains(&example_csv());
    let script = render("exchange", &example_csv(), &[]);
    let s = check(&script, EXCHANGE, EXCHANGE, &domains);
    // Unset: copied from the enabled Internet send connector (address space *), and said so.
    assert_eq!(param_default(&script, "$Fqdn"), "''");
    assert!(s.members.contains("Fqdn") && s.members.contains("AddressSpaces"));
    assert!(s.single_quoted.iter().any(|q| q == "*"), "address space *");
    assert!(
        s.calls("Write-Warning")
            .iter()
            .any(|c| c.splats.is_empty()
                && script.contains("copied from the Internet send connector")),
        "the script says where the name came from"
    );
    assert!(
        s.throws.iter().any(|t| t.contains("Run again with -Fqdn")),
        "no single Internet connector: stop and ask"
    );
    assert_eq!(assigned(&s, "Fqdn"), ["$Fqdn"]);
    // Given: the parameter's default.
    let script = render(
        "exchange",
        &example_csv(),
        &["--exchange-fqdn", "mail.bank.example.no"],
    );
    let mut allowed = domains.clone();
    allowed.push("mail.bank.example.no".into());
    check(&script, EXCHANGE, EXCHANGE, &allowed);
    assert_eq!(param_default(&script, "$Fqdn"), "'mail.bank.example.no'");
}

#[test]
fn exchange_server_stops_before_bypassing_a_smart_host_or_edge_unless_told() {
    let domains = listed_domains(&example_csv());
    let script = render("exchange", &example_csv(), &[]);
    let s = check(&script, EXCHANGE, EXCHANGE, &domains);
    assert!(script.contains("[ValidateSet('Detect', 'Direct')]"));
    assert_eq!(param_default(&script, "$Topology"), "'Detect'");
    assert!(
        s.members.contains("SmartHosts"),
        "smart-host connectors are looked for"
    );
    let edge = s.calls("Get-EdgeSubscription");
    assert_eq!(edge.len(), 1);
    assert!(
        edge[0]
            .context
            .iter()
            .any(|h| h.contains("$Topology -eq 'Detect'")),
        "{edge:?}"
    );
    assert!(s
        .throws
        .iter()
        .any(|t| t.contains("through a gateway") && t.contains("-Topology Direct")));
    // The stop comes before any connector is created.
    let stop = script.find("through a gateway").unwrap();
    assert!(stop < script.find("New-SendConnector -Name").unwrap());
    let script = render(
        "exchange",
        &example_csv(),
        &["--exchange-topology", "direct"],
    );
    assert_eq!(param_default(&script, "$Topology"), "'Direct'");
}

#[test]
fn exchange_online_warns_about_gateway_connectors() {
    let domains = listed_domains(&example_csv());
    let script = render("exchange-online", &example_csv(), &[]);
    let s = check(&script, ONLINE, &[], &domains);
    for member in [
        "IsTransportRuleScoped",
        "RouteAllMessagesViaOnPremises",
        "SmartHosts",
    ] {
        assert!(s.members.contains(member), "{member}");
    }
    let warnings = s
        .calls("Write-Warning")
        .into_iter()
        .filter(|c| {
            c.context
                .iter()
                .any(|h| h.contains("Get-OutboundConnector") && h.contains("-not (Test-Marked $_)"))
        })
        .count();
    assert_eq!(warnings, 3, "one warning per kind of gateway connector");
}

#[test]
fn both_scripts_say_what_the_tls_levels_check_and_offer_a_split_by_hosting() {
    for (target, flag, level_key) in [
        ("exchange", "--exchange-microsoft365-split", "TlsAuthLevel"),
        ("exchange-online", "--exo-microsoft365-split", "TlsSettings"),
    ] {
        let domains = listed_domains(&example_csv());
        let allowed = if target == "exchange" {
            EXCHANGE
        } else {
            ONLINE
        };
        let off = render(target, &example_csv(), &[]);
        // The comments as running text.
        let flat = off
            .lines()
            .map(|l| l.trim_start_matches('#').trim())
            .collect::<Vec<_>>()
            .join(" ");
        for said in [
            "checks the chain and revocation, but no name",
            "against one TlsDomain",
            "Documented by Microsoft",
            "Not documented, or",
        ] {
            assert!(flat.contains(said), "{target}: {said:?}");
        }
        assert!(off.contains("$Microsoft365Split = $false"), "{target}");
        let on = render(target, &example_csv(), &[flag]);
        let s = check(&on, allowed, &[], &domains);
        assert!(on.contains("$Microsoft365Split = $true"), "{target}");
        let mx = s.calls("Resolve-DnsName");
        assert_eq!(mx.len(), 1, "{target}");
        assert_eq!(mx[0].arg("-Type"), Some("MX"));
        assert_eq!(
            assigned(&s, level_key),
            ["'DomainValidation'"],
            "{target}: {:?}",
            s.index_assignments
        );
        assert_eq!(
            assigned(&s, "TlsDomain")[0],
            "'*.mail.protection.outlook.com'",
            "{target}"
        );
        assert!(s
            .single_quoted
            .contains(&".mail.protection.outlook.com".to_string()));
    }
}

#[test]
fn only_connectors_the_scripts_created_are_changed_or_removed() {
    let domains = listed_domains(&example_csv());
    for (target, allowed, args) in [
        ("exchange", EXCHANGE, &["--exchange-microsoft365-split"][..]),
        (
            "exchange-online",
            ONLINE,
            &["--exo-inbound", "--exo-max-domains", "4"][..],
        ),
    ] {
        let script = render(target, &example_csv(), args);
        let s = check(&script, allowed, &[], &domains);
        // Every hashtable splatted into New-/Set- carries the mark in Comment.
        let settings = s
            .hash_entries
            .iter()
            .filter(|(k, _)| k == "RequireTLS" || k == "RequireTls" || k == "UseMXRecord")
            .count();
        let marked = s
            .hash_entries
            .iter()
            .filter(|(k, v)| k == "Comment" && v == "$Mark")
            .count();
        assert!(
            settings >= 1 && marked == settings,
            "{target}: {:?}",
            s.hash_entries
        );
        let mut writes = 0;
        for c in s.calls.iter().filter(|c| {
            (c.name.starts_with("New-") || c.name.starts_with("Set-"))
                && c.name.ends_with("Connector")
        }) {
            assert_eq!(c.splats, ["@settings"], "{target}: {c:?}");
            writes += 1;
        }
        assert!(writes >= 2, "{target}");
        // Test-Marked looks at the Comment.
        assert!(script.contains("return ([string]$Connector.Comment).StartsWith($Mark)"));
        // Every removal is of a marked connector: inside a loop over marked ones (Exchange Online), or
        // after the stop for an unmarked one of the same name (Exchange Server).
        let removals: Vec<&Call> = s
            .calls
            .iter()
            .filter(|c| c.name.starts_with("Remove-"))
            .collect();
        assert!(!removals.is_empty(), "{target}");
        for r in removals {
            let marked_loop = r
                .context
                .iter()
                .any(|h| h.starts_with("foreach") && h.contains("(Test-Marked $_)"));
            let after_stop = target == "exchange"
                && s.throws
                    .iter()
                    .any(|t| t.contains("was not created by this script"));
            assert!(marked_loop || after_stop, "{target}: {r:?}");
        }
        assert!(
            s.throws
                .iter()
                .any(|t| t.contains("was not created by this script")),
            "{target}: an unmarked connector with our name stops the script"
        );
    }
}

#[test]
fn exchange_server_connector_has_usage_custom_not_partner() {
    let domains = listed_domains(&example_csv());
    let script = render("exchange", &example_csv(), &[]);
    let s = check(&script, EXCHANGE, EXCHANGE, &domains);
    let new = s.calls("New-SendConnector");
    assert_eq!(new.len(), 1);
    assert_eq!(new[0].arg("-Usage"), Some("Custom"));
    assert!(
        new[0].arg("-Partner").is_none() && !new[0].params.iter().any(|(p, _)| p == "-Partner")
    );
    assert!(!script.contains("-Usage Partner"));
}
