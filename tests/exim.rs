//! The Exim pieces checked by the real Exim 4.96 in a small configuration of its own (as on a system
//! that is not Debian; tests/exim_debian.rs does the same in Debian's): a configuration built from the
//! four pieces passes `exim -bV` (the GnuTLS build, and the OpenSSL build with `--exim-tls openssl`),
//! the domain list matches exactly the listed domains, and an `-bh` SMTP session refuses plaintext mail
//! from a listed sender domain.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use support::mta::{exim_binary, run, text, write};
use support::{example_csv, listed_domains, render};

/// The four pieces, each rendered by its own target.
fn pieces(render_args: &[&str]) -> [String; 4] {
    ["exim-main", "exim-acl", "exim-router", "exim-transport"]
        .map(|t| render(t, &example_csv(), render_args))
}

/// A whole Exim configuration: our four pieces where their headings say, around a minimal host config.
fn build_config(dir: &Path, render_args: &[&str]) -> String {
    let domains_file = dir.join("bits_forced_tls_domains").display().to_string();
    let mut args = vec!["--exim-domains-file", &domains_file];
    args.extend_from_slice(render_args);
    write(
        dir,
        "bits_forced_tls_domains",
        &render("exim-domains", &example_csv(), &args),
    );
    let [main, acl, router, transport] = pieces(&args);
    let spool = dir.join("spool");
    std::fs::create_dir_all(&spool).unwrap();
    let config = format!(
        "spool_directory = {spool}\n\
         log_file_path = {dir}/%slog\n\
         primary_hostname = mx.test.example\n\
         keep_environment =\n\
         domainlist local_domains = test.example\n\
         acl_smtp_rcpt = acl_check_rcpt\n\
         {main}\n\
         begin acl\n\
         acl_check_rcpt:\n\
         {acl}\
         \x20 accept domains = +local_domains\n\
         \x20 deny message = relay not permitted\n\
         begin routers\n\
         {router}\
         dnslookup:\n\
         \x20 driver = dnslookup\n\
         \x20 domains = ! +local_domains\n\
         \x20 transport = remote_smtp\n\
         \x20 no_more\n\
         begin transports\n\
         remote_smtp:\n\
         \x20 driver = smtp\n\
         {transport}",
        spool = spool.display(),
        dir = dir.display(),
    );
    write(dir, "exim.conf", &config)
}

fn exim(conf: &str, args: &[&str]) -> (bool, String, String) {
    let out = run(Command::new(exim_binary()).arg("-C").arg(conf).args(args));
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

#[test]
fn exim_accepts_the_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let conf = build_config(dir.path(), &[]);
    let (ok, stdout, stderr) = exim(&conf, &["-bV"]);
    assert!(
        ok && stderr.is_empty(),
        "exim -bV failed:\n{stdout}\n--- stderr ---\n{stderr}\n--- config ---\n{}",
        std::fs::read_to_string(&conf).unwrap()
    );
    let (ok, stdout, stderr) = exim(&conf, &["-bP", "transport", "remote_smtp_forced_tls"]);
    assert!(ok, "{stderr}");
    for want in [
        "hosts_require_tls = *",
        "tls_verify_hosts = *",
        "tls_verify_cert_hostnames = *",
        "no_tls_tempfail_tryclear",
        "tls_require_ciphers = NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2",
        "tls_verify_certificates = system",
    ] {
        assert!(
            stdout.lines().any(|l| l.trim() == want),
            "missing `{want}` in:\n{stdout}"
        );
    }
    let (ok, stdout, _) = exim(&conf, &["-bP", "router", "dnslookup_forced_tls"]);
    assert!(
        ok && stdout.contains("transport = remote_smtp_forced_tls"),
        "{stdout}"
    );
}

fn matches(conf: &str, domain: &str) -> bool {
    let (ok, stdout, stderr) = exim(
        conf,
        &[
            "-be",
            &format!("${{if match_domain{{{domain}}}{{+forced_tls_domains}}{{yes}}{{no}}}}"),
        ],
    );
    assert!(ok, "exim -be: {stderr}");
    match stdout.trim() {
        "yes" => true,
        "no" => false,
        other => panic!("exim -be answered {other:?}"),
    }
}

#[test]
fn domain_list_matches_exactly_the_listed_domains() {
    let dir = tempfile::tempdir().unwrap();
    let conf = build_config(dir.path(), &[]);
    let domains = listed_domains(&example_csv());
    assert_eq!(domains.len(), 15);
    for d in &domains {
        assert!(matches(&conf, d), "{d} must match");
        assert!(
            !matches(&conf, &format!("sub.{d}")),
            "sub.{d} must not match without --subdomains"
        );
    }
    assert!(!matches(&conf, "not-listed.no"));
    assert!(!matches(&conf, "no"));
    assert!(
        !matches(&conf, "blåbærbank.no"),
        "Exim compares A-labels literally"
    );
}

#[test]
fn domain_list_with_subdomains() {
    let dir = tempfile::tempdir().unwrap();
    let conf = build_config(dir.path(), &["--subdomains"]);
    assert!(matches(&conf, "bits.no"));
    assert!(matches(&conf, "mail.bits.no"));
    assert!(matches(&conf, "a.b.fno.no"));
    assert!(!matches(&conf, "notbits.no"));
    assert!(!matches(&conf, "not-listed.no"));
}

/// Runs an SMTP conversation through `exim -bh` (the ACLs run; nothing is delivered).
fn session(conf: &str, sender: &str) -> Vec<String> {
    let mut child = Command::new(exim_binary())
        .args(["-C", conf, "-bh", "192.0.2.10"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let script = format!(
        "EHLO client.example\r\nMAIL FROM:<{sender}>\r\nRCPT TO:<user@test.example>\r\nQUIT\r\n"
    );
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    text(&out.stdout)
        .lines()
        .filter(|l| l.len() > 3 && l.as_bytes()[3] == b' ')
        .map(str::to_string)
        .collect()
}

#[test]
fn plaintext_from_a_listed_sender_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let conf = build_config(dir.path(), &[]);
    let replies = session(&conf, "someone@bits.no");
    assert!(
        replies
            .iter()
            .any(|l| l.starts_with("550 5.7.1 TLS required for mail from bits.no")),
        "{replies:?}"
    );
    let replies = session(&conf, "someone@xn--blbrbank-b0al.no");
    assert!(
        replies.iter().any(|l| l.starts_with("550 5.7.1")),
        "{replies:?}"
    );
    let replies = session(&conf, "someone@unlisted.no");
    assert!(
        replies.iter().any(|l| l.starts_with("250 Accepted")),
        "{replies:?}"
    );
    assert!(!replies.iter().any(|l| l.starts_with("550")), "{replies:?}");
}

#[test]
fn openssl_variant_differs_only_in_the_tls_floor_and_loads_in_an_openssl_exim() {
    let gnutls = render("exim-transport", &example_csv(), &[]);
    let openssl = render("exim-transport", &example_csv(), &["--exim-tls", "openssl"]);
    let floor = |t: &str| -> Vec<String> {
        t.lines()
            .filter(|l| l.trim_start().starts_with("tls_require_ciphers"))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(
        floor(&gnutls),
        ["  tls_require_ciphers = NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"]
    );
    assert_eq!(
        floor(&openssl),
        ["  tls_require_ciphers = TLSv1.2:!aNULL:!eNULL"]
    );
    let config = |t: &str| -> Vec<String> {
        t.lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .filter(|l| !l.trim_start().starts_with("tls_require_ciphers"))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(config(&gnutls), config(&openssl));
    assert!(
        !openssl.contains("\n  openssl_options"),
        "a main option only"
    );

    // A real OpenSSL-linked Exim loads the whole configuration and reads the floor.
    let dir = tempfile::tempdir().unwrap();
    let conf = build_config(dir.path(), &["--exim-tls", "openssl"]);
    let out = run(Command::new(support::exim::openssl_exim_binary()).args([
        "-C",
        &conf,
        "-bP",
        "transport",
        "remote_smtp_forced_tls",
    ]));
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout
            .lines()
            .any(|l| l.trim() == "tls_require_ciphers = TLSv1.2:!aNULL:!eNULL"),
        "{stdout}"
    );
    let version =
        run(Command::new(support::exim::openssl_exim_binary()).args(["-C", &conf, "--version"]));
    assert!(
        text(&version.stdout).contains("OpenSSL"),
        "an OpenSSL build"
    );
}
