//! Proof that the Exim pieces force TLS when mail really flows (`cargo test --test exim_delivery`), in
//! the delivery test's private world (tests/support/world.rs: a network namespace with its own DNS and
//! one receiving server per `.test` domain):
//! - the real Exim 4.96 (GnuTLS, Debian's build) with the four pieces in a small configuration of its
//!   own delivers listed domains only over verified TLS 1.2+, and refuses plaintext from listed senders;
//! - in Debian's own configuration with DKIM and HELO macros set, listed mail leaves with the same
//!   DKIM-Signature and HELO as unlisted mail;
//! - an OpenSSL-linked Exim (built from Debian's source by scripts/build-exim-openssl.sh) with
//!   `--exim-tls openssl` defers mail to a TLS 1.0/1.1 server, under an OpenSSL configuration that would
//!   otherwise allow those versions (the control delivery shows it does).

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use support::exim::{openssl_exim_binary, Debian, Layout};
use support::mta::{exim_binary, try_sender, write};
use support::world::{message, poll, render_as_configured, run_ok, Proc, World, SERVERS};

/// The world's MX hosts are on 127.0.0.X, which the router ignores by default (as Debian's does).
const LOOPBACK_MX: &str = "ROUTER_DNSLOOKUP_IGNORE_TARGET_HOSTS = <; 0.0.0.0 ; 255.255.255.255";

/// A small Exim configuration with bits-tls's four pieces, sending from `sender.test`; its spool (and
/// log) in `world/NAME-spool`. `transport_edit` may change the rendered transport (for a control run).
fn sender_config(
    world: &World,
    name: &str,
    exim: &Path,
    render_args: &[&str],
    keep_environment: &str,
    transport_edit: impl Fn(String) -> String,
) -> PathBuf {
    let domains = world
        .path()
        .join("bits_forced_tls_domains")
        .display()
        .to_string();
    let ca = world.pki.ca().display().to_string();
    let mut args = vec![
        "--exim-domains-file",
        &domains,
        "--exim-verify-certificates",
        &ca,
    ];
    args.extend_from_slice(render_args);
    write(
        world.path(),
        "bits_forced_tls_domains",
        &world.render("exim-domains", &args),
    );
    let [main, router, transport] =
        ["exim-main", "exim-router", "exim-transport"].map(|t| world.render(t, &args));
    let spool = world.path().join(format!("{name}-spool"));
    std::fs::create_dir_all(&spool).unwrap();
    run_ok(
        Command::new("chown")
            .args(["-R", "Debian-exim:"])
            .arg(&spool),
    );
    let config = format!(
        "exim_path = {exim}\nspool_directory = {spool}\nlog_file_path = {spool}/%slog\nprimary_hostname = sender.test\n\
         keep_environment = {keep_environment}\ndisable_ipv6 = true\ndomainlist local_domains = sender.test\n\
         {LOOPBACK_MX}\n{main}\nbegin routers\n{router}\
         dnslookup:\n  driver = dnslookup\n  domains = ! +local_domains\n  transport = remote_smtp\n  no_more\n\
         begin transports\nremote_smtp:\n  driver = smtp\n{transport}\n\
         begin retry\n* * F,1h,15m\n",
        exim = exim.display(),
        spool = spool.display(),
        transport = transport_edit(transport),
    );
    PathBuf::from(write(world.path(), &format!("{name}.conf"), &config))
}

/// Submits one message to `exim -odi` in the world's namespace (delivered before it returns).
fn send(world: &World, exim: &Path, conf: &Path, from: &str, to: &str, env: &[(&str, &Path)]) {
    let mut cmd = world.ns.command(exim);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .arg("-C")
        .arg(conf)
        .args(["-odi", "-f", from, to])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(message(to).as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success(), "exim {to}");
}

/// The mainlog line that says how the delivery to `rcpt` went (` => ` delivered, ` == ` deferred).
fn outcome(mainlog: &Path, rcpt: &str) -> String {
    let log = || std::fs::read_to_string(mainlog).unwrap_or_default();
    poll(
        &format!("Exim to {rcpt}"),
        Duration::from_secs(60),
        || {
            log()
                .lines()
                .find(|l| (l.contains(" => ") || l.contains(" == ")) && l.contains(rcpt))
                .map(String::from)
        },
        log,
    )
}

#[test]
fn exim_delivers_listed_domains_only_over_verified_tls() {
    let world = World::new();
    let exim = exim_binary();
    let conf = sender_config(&world, "gnutls", &exim, &[], "", |t| t);
    for (name, ..) in SERVERS {
        send(
            &world,
            &exim,
            &conf,
            "sender@sender.test",
            &format!("ex@{name}.test"),
            &[],
        );
    }
    let mainlog = world.path().join("gnutls-spool/mainlog");
    for (name, ..) in SERVERS {
        let line = outcome(&mainlog, &format!("ex@{name}.test"));
        match *name {
            "valid" => {
                assert!(
                    line.contains(" => ") && line.contains("T=remote_smtp_forced_tls"),
                    "{line}"
                );
                assert!(
                    line.contains("X=TLS1.3") || line.contains("X=TLS1.2"),
                    "{line}"
                );
                assert!(line.contains("CV=yes"), "certificate verified: {line}");
                let got = world.received("ex@valid.test");
                assert_eq!(got.len(), 1);
                assert!(got[0].0);
            }
            "open" | "partner" => {
                assert!(
                    line.contains(" => ") && line.contains("T=remote_smtp "),
                    "{line}"
                );
                assert_eq!(world.received(&format!("ex@{name}.test")), [(false, None)]);
            }
            _ => {
                assert!(
                    line.contains(" == ") && line.contains("T=remote_smtp_forced_tls"),
                    "{name}: {line}"
                );
                let why = match *name {
                    "plain" | "xn--blbr-roah" => {
                        "a TLS session is required, but the server did not offer TLS support"
                    }
                    "oldtls" => "Error in protocol version",
                    _ => "certificate verification failed",
                };
                assert!(
                    line.contains("defer") && line.contains(why),
                    "{name}: {line}"
                );
                assert!(
                    world.received(&format!("ex@{name}.test")).is_empty(),
                    "{name}: no message may arrive"
                );
            }
        }
    }
    let queue = run_ok(Command::new(&exim).arg("-C").arg(&conf).arg("-bp"));
    for name in ["plain", "wrongname", "oldtls", "expired", "xn--blbr-roah"] {
        assert!(
            queue.contains(&format!("ex@{name}.test")),
            "{name} must stay queued:\n{queue}"
        );
    }
    assert!(
        !queue.contains("ex@valid.test") && !queue.contains("ex@open.test"),
        "{queue}"
    );
}

/// An OpenSSL configuration as on a system whose OpenSSL still allows TLS 1.0 and 1.1 (OpenSSL 1.1.1
/// at security level 1, as RHEL 8 or FreeBSD ship it): the floor must come from bits-tls's transport,
/// not from the library's defaults (OpenSSL 3 on Debian 12 refuses TLS < 1.2 at its default level).
const PERMISSIVE_OPENSSL_CNF: &str = "openssl_conf = openssl_init\n\
     [openssl_init]\nssl_conf = ssl_sect\n\
     [ssl_sect]\nsystem_default = system_default_sect\n\
     [system_default_sect]\nMinProtocol = TLSv1\nCipherString = DEFAULT:@SECLEVEL=0\n";

#[test]
fn openssl_exim_defers_mail_to_a_tls_1_0_or_1_1_server() {
    let world = World::new();
    let exim = openssl_exim_binary();
    let cnf = PathBuf::from(write(
        world.path(),
        "openssl-permissive.cnf",
        PERMISSIVE_OPENSSL_CNF,
    ));
    let env = [("OPENSSL_CONF", cnf.as_path())];
    let args = ["--exim-tls", "openssl"];
    let floor = "  tls_require_ciphers = TLSv1.2:!aNULL:!eNULL\n";
    let conf = sender_config(&world, "openssl", &exim, &args, "OPENSSL_CONF", |t| {
        assert!(t.contains(floor), "{t}");
        t
    });
    // The control: the same transport without the floor.
    let control = sender_config(&world, "control", &exim, &args, "OPENSSL_CONF", |t| {
        t.replace(floor, "")
    });
    send(
        &world,
        &exim,
        &control,
        "s@sender.test",
        "control@oldtls.test",
        &env,
    );
    send(
        &world,
        &exim,
        &conf,
        "s@sender.test",
        "ossl@oldtls.test",
        &env,
    );
    send(
        &world,
        &exim,
        &conf,
        "s@sender.test",
        "ossl@valid.test",
        &env,
    );

    let line = outcome(
        &world.path().join("control-spool/mainlog"),
        "control@oldtls.test",
    );
    assert!(
        line.contains(" => ") && (line.contains("X=TLS1:") || line.contains("X=TLS1.1:")),
        "without the floor this OpenSSL delivers over TLS 1.0/1.1, so the test can tell: {line}"
    );
    let got = world.received("control@oldtls.test");
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        matches!(got[0].1.as_deref(), Some("TLSv1" | "TLSv1.1")),
        "{got:?}"
    );

    let mainlog = world.path().join("openssl-spool/mainlog");
    let line = outcome(&mainlog, "ossl@oldtls.test");
    assert!(
        line.contains(" == ")
            && line.contains("T=remote_smtp_forced_tls")
            && line.contains("defer"),
        "with the floor the TLS 1.0/1.1 server gets nothing: {line}"
    );
    assert!(world.received("ossl@oldtls.test").is_empty());
    let line = outcome(&mainlog, "ossl@valid.test");
    assert!(
        line.contains(" => ")
            && line.contains("T=remote_smtp_forced_tls")
            && (line.contains("X=TLS1.3") || line.contains("X=TLS1.2"))
            && line.contains("CV=yes"),
        "{line}"
    );
}

#[test]
fn listed_and_unlisted_mail_leave_debian_with_the_same_dkim_signature_and_helo() {
    let world = World::new();
    let debian = Debian::new(
        Layout::Split,
        "",
        &format!(
            "{LOOPBACK_MX}\n\
             REMOTE_SMTP_HELO_DATA = helo.bank.test\n\
             DKIM_DOMAIN = bank.test\n\
             DKIM_SELECTOR = sel2026\n\
             DKIM_PRIVATE_KEY = CONFDIR/dkim.key\n"
        ),
    );
    let key = debian.confdir().join("dkim.key");
    run_ok(
        Command::new("openssl")
            .args(["genrsa", "-out"])
            .arg(&key)
            .arg("2048"),
    );
    run_ok(Command::new("chmod").arg("644").arg(&key));
    debian.sync(
        &world.list_csv(),
        &format!(
            "[exim]\nverify_certificates = \"{}\"\n",
            world.pki.ca().display()
        ),
    );
    let conf = debian.update();
    let exim = exim_binary();
    for to in ["dk@valid.test", "dk@open.test"] {
        send(&world, &exim, &conf, "someone@bank.test", to, &[]);
    }
    let mainlog = debian.path().join("spool/mainlog");
    let listed = outcome(&mainlog, "dk@valid.test");
    assert!(
        listed.contains(" => ") && listed.contains("T=remote_smtp_forced_tls"),
        "{listed}"
    );
    let unlisted = outcome(&mainlog, "dk@open.test");
    assert!(
        unlisted.contains(" => ") && unlisted.contains("T=remote_smtp "),
        "{unlisted}"
    );
    let one = |rcpt: &str| {
        let m = world.messages(rcpt);
        assert_eq!(m.len(), 1, "{rcpt}: {m:?}");
        m[0].clone()
    };
    let (listed, unlisted) = (one("dk@valid.test"), one("dk@open.test"));
    assert_eq!(listed["encrypted"], true);
    for m in [&listed, &unlisted] {
        assert_eq!(m["helo"], "helo.bank.test", "{m}");
        let sig = m["dkim_signature"]
            .as_str()
            .unwrap_or_else(|| panic!("unsigned: {m}"));
        assert!(
            sig.contains("d=bank.test") && sig.contains("s=sel2026"),
            "{sig}"
        );
    }
    // The same signing settings: the tags other than the body-specific ones agree.
    let tags = |m: &serde_json::Value| -> Vec<String> {
        let mut t: Vec<String> = m["dkim_signature"]
            .as_str()
            .unwrap()
            .split(';')
            .map(|t| t.trim().replace(' ', ""))
            .filter(|t| {
                ["v=", "a=", "c=", "d=", "s=", "h="]
                    .iter()
                    .any(|p| t.starts_with(p))
            })
            .collect();
        t.sort();
        t
    };
    assert_eq!(tags(&listed), tags(&unlisted));
    assert_eq!(listed["mail_from"], unlisted["mail_from"]);
}

#[test]
fn exim_refuses_plaintext_from_listed_senders_and_accepts_tls() {
    let pki = support::TestPki::new();
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let csv = dir.path().join("liste.csv");
    std::fs::write(
        &csv,
        "Virksomhet;Domene\nBits AS;bits.no\nKyst;kystbanken.no\n",
    )
    .unwrap();
    let domains = dir.path().join("domains").display().to_string();
    let args = ["--exim-domains-file", domains.as_str()];
    write(
        dir.path(),
        "domains",
        &render_as_configured("exim-domains", &csv, &args),
    );
    let main = render_as_configured("exim-main", &csv, &args);
    let acl = render_as_configured("exim-acl", &csv, &args);
    let cert = write(dir.path(), "cert.pem", &pki.cert_pem);
    let key = write(dir.path(), "key.pem", &pki.key_pem);
    let spool = dir.path().join("spool");
    std::fs::create_dir_all(&spool).unwrap();
    run_ok(
        Command::new("chown")
            .args(["-R", "Debian-exim:"])
            .arg(&spool)
            .arg(&key),
    );
    let port = support::mta::free_port();
    let conf = write(
        dir.path(),
        "exim.conf",
        &format!(
            "spool_directory = {spool}\nlog_file_path = {spool}/%slog\nprimary_hostname = mx.test.example\n\
             keep_environment =\ndomainlist local_domains = test.example\n{main}\n\
             daemon_smtp_ports = {port}\nlocal_interfaces = 127.0.0.1\n\
             tls_advertise_hosts = *\ntls_certificate = {cert}\ntls_privatekey = {key}\n\
             acl_smtp_rcpt = acl_check_rcpt\nbegin acl\nacl_check_rcpt:\n{acl}\n  accept domains = +local_domains\n  deny\n",
            spool = spool.display()
        ),
    );
    let _daemon = Proc(
        Command::new(exim_binary())
            .args(["-C", &conf, "-bdf"])
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    poll(
        "Exim to listen",
        Duration::from_secs(20),
        || std::net::TcpStream::connect(("127.0.0.1", port)).ok(),
        || std::fs::read_to_string(spool.join("paniclog")).unwrap_or_default(),
    );
    let (rcpt, _) = try_sender(port, "someone@bits.no", "user@test.example", None);
    assert_eq!(rcpt.0, 550, "plaintext from a listed domain: {rcpt:?}");
    assert!(
        rcpt.1.contains("TLS required for mail from bits.no"),
        "{rcpt:?}"
    );
    let (rcpt, _) = try_sender(
        port,
        "someone@bits.no",
        "user@test.example",
        Some(&pki.ca_der),
    );
    assert_eq!(rcpt.0, 250, "the same sender over STARTTLS: {rcpt:?}");
    let (rcpt, _) = try_sender(port, "someone@unlisted.no", "user@test.example", None);
    assert_eq!(
        rcpt.0, 250,
        "an unlisted sender may use plaintext: {rcpt:?}"
    );
}
