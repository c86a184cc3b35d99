//! The generated PowerShell, parsed by tree-sitter-powershell (PowerShell itself does not run here): no
//! syntax error, only the expected commands invoked, and every quoted domain one from the list.

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

struct Script {
    nodes_with_errors: Vec<String>,
    commands: BTreeSet<String>,
    single_quoted: Vec<String>,
    double_quoted: Vec<String>,
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

const HELPERS: &[&str] = &[
    "Set-StrictMode",
    "ForEach-Object",
    "Where-Object",
    "Write-Warning",
    "Write-Verbose",
];
const EXCHANGE: &[&str] = &[
    "Get-SendConnector",
    "New-SendConnector",
    "Set-SendConnector",
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
        if bare.contains('.') && !bare.contains(' ') && !bare.contains('{') {
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
            2,
            "every change asks ShouldProcess"
        );
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
