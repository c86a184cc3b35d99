//! The Exim pieces checked by the real Exim 4.96 (GnuTLS build, unpacked by scripts/setup-test-tools.sh):
//! a configuration built from the rendered snippet passes `exim -bV`, the domain list matches exactly
//! the listed domains, and an `-bh` SMTP session refuses plaintext mail from a listed sender domain.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use support::mta::{exim_binary, run, text, write};
use support::{example_csv, listed_domains, render};

/// The rendered snippet's four pieces, by their `# ---- N.` headings.
fn pieces(snippet: &str) -> [String; 4] {
    let mut out: [String; 4] = Default::default();
    let mut current = None;
    for line in snippet.lines() {
        if let Some(rest) = line.strip_prefix("# ---- ") {
            current = rest[..1].parse::<usize>().ok().map(|n| n - 1);
            continue;
        }
        if let Some(i) = current {
            out[i].push_str(line);
            out[i].push('\n');
        }
    }
    for (i, p) in out.iter().enumerate() {
        assert!(
            p.lines()
                .any(|l| !l.trim().is_empty() && !l.starts_with('#')),
            "piece {} is empty",
            i + 1
        );
    }
    out
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
    let [main, acl, router, transport] = pieces(&render("exim-config", &example_csv(), &args));
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
fn openssl_variant_differs_only_in_the_tls_floor() {
    let gnutls = render("exim-config", &example_csv(), &[]);
    let openssl = render("exim-config", &example_csv(), &["--exim-tls", "openssl"]);
    let diff: Vec<(&str, &str)> = gnutls
        .lines()
        .zip(openssl.lines())
        .filter(|(a, b)| a != b)
        .collect();
    assert_eq!(
        diff,
        [
            (
                "  # TLS 1.2 or newer (GnuTLS builds, as Debian's).",
                "  # TLS 1.2 or newer (OpenSSL builds)."
            ),
            (
                "  tls_require_ciphers = NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2",
                "  openssl_options = +no_sslv2 +no_sslv3 +no_tlsv1 +no_tlsv1_1"
            ),
        ]
    );
}
