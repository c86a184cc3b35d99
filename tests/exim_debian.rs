//! bits-tls's Exim pieces in Debian's own Exim configuration, split and non-split: `bits-tls sync`
//! writes each piece where its heading says, Debian's update-exim4.conf assembles the configuration,
//! and the real Exim 4.96 loads it (`-bV`), routes with it (`-bt`, in the delivery test's private
//! network, whose DNS answers for the `.test` domains) and runs its ACLs (`-bh`).

mod support;

use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use support::exim::{exim, Debian, Layout};
use support::mta::{exim_binary, text};
use support::world::World;

/// The test world's MX hosts are on 127.0.0.X, which Debian's routers ignore by default; this local
/// macro (Debian's own knob) lets both routers use them.
const LOOPBACK_MX: &str = "ROUTER_DNSLOOKUP_IGNORE_TARGET_HOSTS = <; 0.0.0.0 ; 255.255.255.255";

/// `exim -C CONF ARGS` inside the world's network namespace: stdout and stderr together.
fn exim_in(world: &World, conf: &Path, args: &[&str]) -> String {
    let out = world
        .ns
        .command(exim_binary())
        .arg("-C")
        .arg(conf)
        .args(args)
        .output()
        .unwrap();
    format!("{}{}", text(&out.stdout), text(&out.stderr))
}

/// The router and transport `exim -bt` chose for an address, or None when it could not route it.
fn route(world: &World, conf: &Path, address: &str) -> Option<(String, String)> {
    let out = exim_in(world, conf, &["-bt", address]);
    // "  router = NAME, transport = NAME"
    let field = |name: &str| {
        out.lines().find_map(|l| {
            l.split(", ")
                .find_map(|part| part.trim().strip_prefix(&format!("{name} = ")))
                .map(str::to_string)
        })
    };
    match (field("router"), field("transport")) {
        (Some(r), Some(t)) => Some((r, t)),
        _ => {
            assert!(
                out.contains("is undeliverable") || out.contains("Unrouteable"),
                "exim -bt {address}: neither routed nor undeliverable:\n{out}"
            );
            None
        }
    }
}

fn forced() -> Option<(String, String)> {
    Some((
        "dnslookup_forced_tls".into(),
        "remote_smtp_forced_tls".into(),
    ))
}

fn plain() -> Option<(String, String)> {
    Some(("dnslookup".into(), "remote_smtp".into()))
}

/// The generated configuration loads: `exim -bV` succeeds and says nothing on stderr.
fn loads(conf: &Path) {
    let (ok, stdout, stderr) = exim(conf, &["-bV"]);
    assert!(
        ok && stderr.is_empty(),
        "exim -bV failed:\n{stdout}\n--- stderr ---\n{stderr}"
    );
}

fn loads_and_routes(layout: Layout) {
    let world = World::new();
    let debian = Debian::new(layout, "", LOOPBACK_MX);
    debian.sync(&world.list_csv(), "");
    let conf = debian.update();
    loads(&conf);
    // The list file is found where sync wrote it (nothing exists at the default /etc/exim4 path here):
    // a listed domain goes to the forced transport, an unlisted one to Debian's remote_smtp.
    assert_eq!(route(&world, &conf, "ex@valid.test"), forced());
    assert_eq!(route(&world, &conf, "ex@plain.test"), forced());
    assert_eq!(route(&world, &conf, "ex@open.test"), plain());
    // Only the listed domains themselves, without the subdomains option.
    assert_eq!(route(&world, &conf, "ex@sub.valid.test"), plain());
}

#[test]
fn debian_split_config_loads_and_routes() {
    loads_and_routes(Layout::Split);
}

#[test]
fn debian_non_split_config_loads_and_routes() {
    loads_and_routes(Layout::NonSplit);
}

#[test]
fn exim_config_cannot_be_written_as_one_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = support::mta::write(
        dir.path(),
        "bits-tls.toml",
        "[[output]]\ntarget = \"exim-config\"\npath = \"/etc/exim4/exim4.conf\"\n",
    );
    let csv = support::example_csv();
    let out = support::bits()
        .args(["diff", "--config", &config, "--source"])
        .arg(&csv)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("exim-main, exim-acl, exim-router and exim-transport"),
        "{err}"
    );
    let out = support::bits()
        .args(["diff", "--output", "exim-config=/tmp/x", "--source"])
        .arg(&csv)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
}

#[test]
fn the_router_ignores_loopback_and_private_mx_hosts_as_debian_does() {
    let world = World::new();
    // No override: Debian's default ROUTER_DNSLOOKUP_IGNORE_TARGET_HOSTS, which the router piece
    // defines when Debian's router file has not yet (it comes later).
    let debian = Debian::new(Layout::Split, "", "");
    debian.sync(&world.list_csv(), "");
    let conf = debian.update();
    loads(&conf);
    // The MX of valid.test is 127.0.0.11: ignored, so the address fails in the forced router (no_more)
    // instead of going anywhere else; the unlisted open.test (127.0.0.16) fails in Debian's router alike.
    assert_eq!(route(&world, &conf, "ex@valid.test"), None);
    assert_eq!(route(&world, &conf, "ex@open.test"), None);
    let out = exim_in(&world, &conf, &["-bt", "-d+route", "ex@valid.test"]);
    assert!(
        out.contains("dnslookup_forced_tls router declined") || out.contains("ignored"),
        "{out}"
    );
}

/// A list of the world's domains plus the bank's own, `bank.test`.
fn list_with_own_domain(world: &World) -> std::path::PathBuf {
    let mut csv = std::fs::read_to_string(world.list_csv()).unwrap();
    csv.push_str("Banken;bank.test;Ja\n");
    let p = world.path().join("liste-med-banken.csv");
    std::fs::write(&p, csv).unwrap();
    p
}

/// An SMTP conversation through `exim -bh HOST` (the ACLs run, nothing is delivered), in the world's
/// namespace; the final reply to RCPT TO.
fn rcpt_reply(world: &World, conf: &Path, host: &str, sender: &str, rcpt: &str) -> String {
    let mut child = world
        .ns
        .command(exim_binary())
        .arg("-C")
        .arg(conf)
        .args(["-bh", host])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let script =
        format!("EHLO client.example\r\nMAIL FROM:<{sender}>\r\nRCPT TO:<{rcpt}>\r\nQUIT\r\n");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let out = text(&child.wait_with_output().unwrap().stdout);
    let replies: Vec<&str> = out
        .lines()
        .filter(|l| l.len() > 3 && l.as_bytes()[3] == b' ')
        .collect();
    // Greeting, EHLO, MAIL, RCPT, QUIT.
    assert!(replies.len() >= 4, "{out}");
    replies[3].to_string()
}

const INTERNAL: &str = "192.0.2.10"; // in dc_relay_nets
const EXTERNAL: &str = "203.0.113.5";

#[test]
fn the_acl_in_debians_position_refuses_listed_senders_but_not_internal_relays() {
    let world = World::new();
    // bank.test is on the list and not declared as an own domain: the position alone must keep the
    // bank's own servers relaying. open.test is a domain this host relays for (its inbound mail).
    let debian = Debian::new(Layout::NonSplit, "open.test", LOOPBACK_MX);
    debian.sync(&list_with_own_domain(&world), "");
    let conf = debian.update();
    loads(&conf);
    let reply =
        |host: &str, sender: &str, rcpt: &str| rcpt_reply(&world, &conf, host, sender, rcpt);
    // The bank's own servers relay in plaintext, to listed and unlisted destinations alike.
    assert!(reply(INTERNAL, "x@bank.test", "ex@valid.test").starts_with("250"));
    assert!(reply(INTERNAL, "x@bank.test", "ex@open.test").starts_with("250"));
    assert!(reply(INTERNAL, "x@valid.test", "ex@open.test").starts_with("250"));
    // From outside, plaintext from a listed domain is refused; from an unlisted one accepted.
    let refused = reply(EXTERNAL, "x@valid.test", "user@open.test");
    assert!(
        refused.starts_with("550 5.7.1 TLS required for mail from valid.test"),
        "{refused}"
    );
    assert!(reply(EXTERNAL, "x@elsewhere.example", "user@open.test").starts_with("250"));

    // The placement the old heading advised ("before its accept statements") refuses the bank's own
    // relays: the measured outage, and what the test above would catch.
    let acl = std::fs::read_to_string(debian.confdir().join("local_rcpt_acl")).unwrap();
    let generated = std::fs::read_to_string(&conf).unwrap();
    let early = generated.replacen("acl_check_rcpt:\n", &format!("acl_check_rcpt:\n{acl}"), 1);
    assert_ne!(early, generated);
    let early_conf = support::mta::write(debian.path(), "early.conf", &early);
    loads(Path::new(&early_conf));
    let outage = rcpt_reply(
        &world,
        Path::new(&early_conf),
        INTERNAL,
        "x@bank.test",
        "ex@open.test",
    );
    assert!(outage.starts_with("550 5.7.1"), "{outage}");
}

#[test]
fn own_domains_are_left_out_of_the_acl() {
    let world = World::new();
    let list = list_with_own_domain(&world);
    for (own, refused) in [("", true), ("own_domains = [\"bank.test\"]", false)] {
        let debian = Debian::new(Layout::Split, "open.test", LOOPBACK_MX);
        debian.sync(&list, own);
        let conf = debian.update();
        let r = rcpt_reply(&world, &conf, EXTERNAL, "x@bank.test", "user@open.test");
        assert_eq!(r.starts_with("550 5.7.1"), refused, "{own:?}: {r}");
        assert!(r.starts_with("550") || r.starts_with("250"), "{r}");
        // The other listed domains stay refused.
        let r = rcpt_reply(&world, &conf, EXTERNAL, "x@valid.test", "user@open.test");
        assert!(r.starts_with("550 5.7.1"), "{own:?}: {r}");
    }
}

#[test]
fn the_acl_and_the_router_agree_on_subdomains() {
    let world = World::new();
    for (option, covered) in [("", false), ("subdomains = true", true)] {
        let debian = Debian::new(Layout::Split, "open.test", LOOPBACK_MX);
        debian.sync(&world.list_csv(), option);
        let conf = debian.update();
        for domain in ["valid.test", "sub.valid.test"] {
            let routed = route(&world, &conf, &format!("ex@{domain}")) == forced();
            let r = rcpt_reply(
                &world,
                &conf,
                EXTERNAL,
                &format!("x@{domain}"),
                "user@open.test",
            );
            let refused = r.starts_with("550 5.7.1");
            let want = domain == "valid.test" || covered;
            assert_eq!(
                (routed, refused),
                (want, want),
                "{option:?} {domain}: forced route {routed}, plaintext refused {refused} ({r})"
            );
        }
    }
}

/// The `.ifdef MACRO` blocks of Debian's remote_smtp, as (macro, option).
fn debian_remote_smtp_blocks() -> Vec<(String, String)> {
    let file =
        support::exim::debian_root().join("etc/exim4/conf.d/transport/30_exim4-config_remote_smtp");
    let text = std::fs::read_to_string(file).unwrap();
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines().map(str::trim) {
        if let Some(m) = line.strip_prefix(".ifdef ") {
            current = Some(m.trim().to_string());
        } else if line == ".endif" {
            current = None;
        } else if let (Some(m), false) = (&current, line.starts_with('#') || line.is_empty()) {
            let option = line.split('=').next().unwrap().trim().to_string();
            out.push((m.clone(), option));
        }
    }
    out
}

/// What `exim -bP transport NAME` says about `option`.
fn transport_option(conf: &Path, transport: &str, option: &str) -> String {
    let (ok, stdout, stderr) = exim(conf, &["-bP", "transport", transport]);
    assert!(ok, "{stderr}");
    stdout
        .lines()
        .map(str::trim)
        .find(|l| {
            l.strip_prefix(option)
                .is_some_and(|r| r.is_empty() || r.starts_with(" ="))
                || l.strip_prefix("no_") == Some(option)
        })
        .unwrap_or_else(|| panic!("{transport} has no {option}:\n{stdout}"))
        .to_string()
}

#[test]
fn the_forced_transport_takes_every_setting_of_debians_remote_smtp() {
    // Debian options the forced transport must not take: they would weaken or replace its TLS rule.
    const NOT_TAKEN: [&str; 2] = [
        "REMOTE_SMTP_HOSTS_AVOID_TLS",
        "REMOTE_SMTP_HOSTS_REQUIRE_TLS",
    ];
    // HIDE_MAILNAME and REMOTE_SMTP_HELO_FROM_DNS make Debian's transport macros (defined after the
    // main section, at the start of the transports) define REMOTE_SMTP_HEADERS_REWRITE,
    // REMOTE_SMTP_RETURN_PATH and REMOTE_SMTP_HELO_DATA: the forced transport must come after them.
    let macros = "HIDE_MAILNAME = 1\n\
                  REMOTE_SMTP_HELO_FROM_DNS = 1\n\
                  REMOTE_SMTP_INTERFACE = 127.0.0.1\n\
                  DKIM_DOMAIN = bank.test\n\
                  DKIM_IDENTITY = @bank.test\n\
                  DKIM_SELECTOR = sel2026\n\
                  DKIM_PRIVATE_KEY = CONFDIR/dkim.key\n\
                  DKIM_CANON = relaxed\n\
                  DKIM_STRICT = 1\n\
                  DKIM_SIGN_HEADERS = from:to:subject:date\n\
                  DKIM_TIMESTAMPS = 3600\n\
                  TLS_DH_MIN_BITS = 2048\n\
                  REMOTE_SMTP_TLS_CERTIFICATE = CONFDIR/client.crt\n\
                  REMOTE_SMTP_PRIVATEKEY = CONFDIR/client.key\n\
                  REMOTE_SMTP_TRANSPORTS_HEADERS_REMOVE = X-Internal\n\
                  IGNORE_SMTP_LINE_LENGTH_LIMIT = 1\n";
    let blocks = debian_remote_smtp_blocks();
    assert!(blocks.len() >= 17, "{blocks:?}");
    for layout in [Layout::Split, Layout::NonSplit] {
        let plain = Debian::new(layout, "", "");
        plain.sync(&support::example_csv(), "");
        let plain_conf = plain.update();
        let debian = Debian::new(layout, "", macros);
        debian.sync(&support::example_csv(), "");
        let conf = debian.update();
        loads(&conf);
        for (macro_name, option) in &blocks {
            if NOT_TAKEN.contains(&macro_name.as_str()) {
                continue;
            }
            let debian_value = transport_option(&conf, "remote_smtp", option);
            assert_ne!(
                debian_value,
                transport_option(&plain_conf, "remote_smtp", option),
                "{layout:?}: the test sets {macro_name}, so remote_smtp's {option} must change"
            );
            assert_eq!(
                transport_option(&conf, "remote_smtp_forced_tls", option),
                debian_value,
                "{layout:?}: {macro_name}"
            );
        }
        for macro_name in NOT_TAKEN {
            assert!(blocks.iter().any(|(m, _)| m == macro_name), "{macro_name}");
        }
    }
}

#[test]
fn the_domainlist_names_the_exim_domains_output_unless_set() {
    let dir = tempfile::tempdir().unwrap();
    let base = format!(
        "source = \"{}\"\n\
         [[output]]\ntarget = \"exim-domains\"\npath = \"{}\"\n\
         [[output]]\ntarget = \"exim-main\"\npath = \"main\"\n",
        support::example_csv().display(),
        dir.path().join("lists/bits").display()
    );
    std::fs::create_dir_all(dir.path().join("lists")).unwrap();
    let sync = |cfg: &str| -> String {
        let config = support::mta::write(dir.path(), "bits-tls.toml", cfg);
        support::bits()
            .current_dir(dir.path())
            .args(["sync", "-q", "--config", &config])
            .assert()
            .success();
        let main = std::fs::read_to_string(dir.path().join("main")).unwrap();
        main.lines()
            .find(|l| l.starts_with("domainlist forced_tls_domains = "))
            .unwrap()
            .to_string()
    };
    // An absolute output path is where Exim reads the list.
    let want = format!(
        "domainlist forced_tls_domains = partial-lsearch;{}",
        dir.path().join("lists/bits").display()
    );
    assert_eq!(sync(&base), want);
    // A relative one (a mail-config repository checked out anywhere) is not: the default stays, so the
    // rendered bytes do not depend on where the repository is.
    let relative = base.replace(
        &dir.path().join("lists/bits").display().to_string(),
        "lists/bits",
    );
    assert_eq!(
        sync(&relative),
        "domainlist forced_tls_domains = partial-lsearch;/etc/exim4/bits_forced_tls_domains"
    );
    // Set explicitly (a repository deployed elsewhere), the option wins.
    let explicit = format!("{base}\n[exim]\ndomains_file = \"/srv/exim/bits\"\n");
    assert_eq!(
        sync(&explicit),
        "domainlist forced_tls_domains = partial-lsearch;/srv/exim/bits"
    );
}
