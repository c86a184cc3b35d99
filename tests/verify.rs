//! `bits-tls verify` against the real Postfix 3.7 and Exim 4.96 (unpacked by
//! scripts/setup-test-tools.sh): the README's wiring passes with exit 0, and every misconfiguration
//! the issue names is a test that shows exit 2 and the words of the finding. Golden files pin the
//! reports (`BITS_TLS_BLESS=1 cargo test --test verify` rewrites them).

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use support::mta::{
    exim_binary, postfix_root, text, wiring_lines, write, PostfixDir, PostfixInstance, Smtp,
};
use support::{bits, example_csv};

/// A mail-config directory: bits-tls.toml, the synced state and the rendered outputs.
struct Work {
    dir: tempfile::TempDir,
}

impl Work {
    /// Syncs `source` with outputs in the directory (`postfix-senders` when `senders`), then
    /// `extra` is appended to the configuration.
    fn with(source: &Path, senders: bool, extra: &str) -> Work {
        let dir = tempfile::Builder::new()
            .prefix("bits-tls-verify")
            .tempdir()
            .unwrap();
        // The MTAs' unprivileged processes read tables from here.
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let d = dir.path().display();
        let mut toml = format!(
            "source = \"{}\"\n[exim]\ndomains_file = \"{d}/bits_forced_tls_domains\"\n\
             [[output]]\ntarget = \"postfix-policy\"\npath = \"{d}/bits_tls_policy\"\n\
             [[output]]\ntarget = \"exim-domains\"\npath = \"{d}/bits_forced_tls_domains\"\n\
             [[output]]\ntarget = \"exim-main\"\npath = \"{d}/exim-main\"\n\
             [[output]]\ntarget = \"exim-acl\"\npath = \"{d}/exim-acl\"\n\
             [[output]]\ntarget = \"exim-router\"\npath = \"{d}/exim-router\"\n\
             [[output]]\ntarget = \"exim-transport\"\npath = \"{d}/exim-transport\"\n",
            source.display()
        );
        if senders {
            toml.push_str(&format!(
                "[[output]]\ntarget = \"postfix-senders\"\npath = \"{d}/bits_tls_senders\"\n"
            ));
        }
        toml.push_str(extra);
        std::fs::write(dir.path().join("bits-tls.toml"), toml).unwrap();
        let w = Work { dir };
        bits()
            .arg("--config")
            .arg(w.config())
            .args(["sync", "-q"])
            .assert()
            .success();
        w
    }

    fn new(senders: bool) -> Work {
        Work::with(&example_csv(), senders, "")
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn config(&self) -> PathBuf {
        self.path("bits-tls.toml")
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).unwrap()
    }

    /// Replaces the temporary directories in a report, for golden files.
    fn scrub(&self, s: &str) -> String {
        s.replace(&self.dir.path().display().to_string(), "<WORK>")
    }
}

/// A Debian-like master.cf: the smtp listener, the smtp and relay clients and the usual daemons.
const MASTER_CF: &str = "\
smtp      inet  n       -       y       -       -       smtpd
pickup    unix  n       -       y       60      1       pickup
cleanup   unix  n       -       y       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       y       1000?   1       tlsmgr
rewrite   unix  -       -       y       -       -       trivial-rewrite
bounce    unix  -       -       y       -       0       bounce
defer     unix  -       -       y       -       0       bounce
smtp      unix  -       -       y       -       -       smtp
relay     unix  -       -       y       -       -       smtp
        -o syslog_name=postfix/$service_name
error     unix  -       -       y       -       -       error
retry     unix  -       -       y       -       -       error
discard   unix  -       -       y       -       -       discard
local     unix  -       n       n       -       -       local
";

/// What a Debian main.cf already has: STARTTLS offered with the snakeoil certificate (any existing
/// file stands in for it; verify does not read certificates).
fn stock_main_cf(work: &Work) -> String {
    let cert = write(work.dir.path(), "snakeoil.pem", "certificate\n");
    format!("smtpd_tls_security_level = may\nsmtpd_tls_cert_file = {cert}\nsmtpd_tls_key_file = {cert}\n")
}

/// main.cf lines from the rendered headers (the README's wiring), after the stock settings.
fn readme_main_cf(work: &Work, senders: bool) -> String {
    let mut cf = stock_main_cf(work);
    let mut lines = wiring_lines(&work.read("bits_tls_policy"));
    if senders {
        lines.extend(wiring_lines(&work.read("bits_tls_senders")));
    }
    for (k, v) in lines {
        cf.push_str(&format!("{k} = {v}\n"));
    }
    cf
}

/// A Postfix configuration wired the way the README says, tables compiled with postmap; `extra` is
/// appended to main.cf.
fn readme_postfix(work: &Work, senders: bool, extra: &str) -> PostfixDir {
    let pf = PostfixDir::new(&format!("{}{extra}", readme_main_cf(work, senders)));
    std::fs::write(pf.path().join("master.cf"), MASTER_CF).unwrap();
    postmap(
        &pf,
        &format!("hash:{}", work.path("bits_tls_policy").display()),
    );
    if senders {
        postmap(
            &pf,
            &format!("hash:{}", work.path("bits_tls_senders").display()),
        );
    }
    pf
}

fn postmap(pf: &PostfixDir, map: &str) {
    let out = pf.postmap(&[map]);
    assert!(out.status.success(), "postmap {map}: {}", text(&out.stderr));
}

/// Appends to main.cf (a later line wins in Postfix).
fn main_cf(pf: &PostfixDir, lines: &str) {
    let p = pf.path().join("main.cf");
    let mut f = std::fs::OpenOptions::new().append(true).open(p).unwrap();
    f.write_all(lines.as_bytes()).unwrap();
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn expect(self, code: i32) -> Run {
        assert_eq!(
            self.code, code,
            "exit {} instead of {code}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }

    /// The report holds every one of `words`.
    fn says(self, words: &[&str]) -> Run {
        for w in words {
            assert!(
                self.stdout.contains(w),
                "missing `{w}` in:\n{}",
                self.stdout
            );
        }
        self
    }

    fn says_not(self, words: &[&str]) -> Run {
        for w in words {
            assert!(
                !self.stdout.contains(w),
                "unexpected `{w}` in:\n{}",
                self.stdout
            );
        }
        self
    }

    /// The report line for `domain` and the reason lines under it.
    fn domain(&self, domain: &str) -> String {
        let mut out = String::new();
        let mut on = false;
        for l in self.stdout.lines() {
            if l.starts_with("  ") && !l.starts_with("    ") {
                on = l.split_whitespace().nth(1) == Some(domain);
            }
            if l.is_empty() {
                on = false;
            }
            if on {
                out.push_str(l);
                out.push('\n');
            }
        }
        assert!(!out.is_empty(), "no line for {domain} in:\n{}", self.stdout);
        out
    }
}

fn run(cmd: &mut assert_cmd::Command) -> Run {
    let out = cmd.output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: text(&out.stdout),
        stderr: text(&out.stderr),
    }
}

/// `bits-tls verify postfix` for this work directory and Postfix configuration.
fn verify_postfix(work: &Work, pf: &Path, args: &[&str]) -> Run {
    let root = postfix_root();
    run(bits()
        .env("LD_LIBRARY_PATH", root.join("usr/lib/postfix"))
        .arg("--config")
        .arg(work.config())
        .args(["verify", "postfix", "--postfix-config-dir"])
        .arg(pf)
        .arg("--postfix-command-dir")
        .arg(root.join("usr/sbin"))
        .args(args))
}

fn touch_back(path: &Path, ago: &str) {
    let out = Command::new("touch")
        .args(["-d", ago])
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn the_readme_wiring_passes() {
    let work = Work::new(true);
    let pf = readme_postfix(&work, true, "");
    let r = verify_postfix(&work, pf.path(), &[])
        .expect(0)
        .says(&["ENFORCED: all 15 listed domains are forced over verified TLS 1.2+"])
        .says_not(&["GAP", "UNDECIDED"]);
    assert!(r.domain("bits.no").starts_with("  ok "));
    // The JSON says the same, with its version.
    let r = verify_postfix(&work, pf.path(), &["--format", "json"]).expect(0);
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(doc["version"], 1);
    assert_eq!(doc["result"], "enforced");
    assert_eq!(doc["summary"]["enforced"], 15);
    let bits = doc["domains"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["domain"] == "bits.no")
        .unwrap();
    assert_eq!(bits["verdict"], "enforced");
    assert!(bits["policy"]
        .as_str()
        .unwrap()
        .starts_with("verify protocols=!SSLv2:!SSLv3:!TLSv1:!TLSv1.1 (hash:"));
    // The README's append to an existing smtp_tls_policy_maps keeps passing.
    let bilateral = write(work.dir.path(), "bilateral", "partner.example secure\n");
    postmap(&pf, &format!("hash:{bilateral}"));
    main_cf(
        &pf,
        &format!(
            "smtp_tls_policy_maps = hash:{bilateral} hash:{}\n",
            work.path("bits_tls_policy").display()
        ),
    );
    verify_postfix(&work, pf.path(), &[]).expect(0);
}

/// The case from the issue: a `relay` service that turns TLS off, with a listed domain routed to it.
#[test]
fn a_master_cf_override_on_the_route_is_a_gap() {
    let work = Work::new(false);
    let pf = readme_postfix(&work, false, "");
    let transport = write(
        work.dir.path(),
        "transport",
        "bits.no relay:[relay.bank.example]:25\n",
    );
    postmap(&pf, &format!("hash:{transport}"));
    main_cf(&pf, &format!("transport_maps = hash:{transport}\n"));
    // Routed to the relay: Postfix looks up its next hop, which has no entry, not the domain.
    verify_postfix(&work, pf.path(), &[])
        .expect(2)
        .says(&["no entry for [relay.bank.example]:25"]);
    std::fs::write(
        pf.path().join("master.cf"),
        MASTER_CF.replace(
            "        -o syslog_name=postfix/$service_name\n",
            "        -o syslog_name=postfix/$service_name\n        -o smtp_tls_security_level=none -o smtp_tls_policy_maps=\n",
        ),
    )
    .unwrap();
    let r = verify_postfix(&work, pf.path(), &[]).expect(2);
    let line = r.domain("bits.no");
    assert!(line.starts_with("  GAP "), "{line}");
    for words in [
        "relay to [relay.bank.example]:25",
        &format!("transport_maps hash:{transport}: `bits.no`"),
        "via transport `relay`, whose master.cf sets smtp_tls_security_level=none, smtp_tls_policy_maps= (empty): no TLS at all",
    ] {
        assert!(line.contains(words), "missing `{words}` in {line}");
    }
    assert!(r.domain("fno.no").starts_with("  ok "));
    r.says(&["GAPS: 14 of 15 listed domains enforced, 1 gap"]);
}

#[test]
fn a_deleted_or_stale_db_is_a_gap() {
    let work = Work::new(false);
    let pf = readme_postfix(&work, false, "");
    let policy = work.path("bits_tls_policy");
    let db = work.path("bits_tls_policy.db");
    verify_postfix(&work, pf.path(), &[]).expect(0);
    // Older than its source: postmap was not run after the last change.
    touch_back(&db, "1 hour ago");
    verify_postfix(&work, pf.path(), &[])
        .expect(2)
        .says(&[&format!(
            "{} is older than its source {}: Postfix still answers from the old table; run postmap",
            db.display(),
            policy.display()
        )]);
    // Deleted: nothing answers; every domain defers.
    std::fs::remove_file(&db).unwrap();
    let r = verify_postfix(&work, pf.path(), &[])
        .expect(2)
        .says(&[&format!("{} is missing", db.display())]);
    assert!(r
        .domain("bits.no")
        .contains("cannot be read (postmap: fatal: open database"));
}

/// The .db answers something other than what the state renders (compiled from an older table).
#[test]
fn a_db_that_differs_from_the_state_is_a_gap() {
    let work = Work::new(false);
    let pf = readme_postfix(&work, false, "");
    let policy = work.path("bits_tls_policy");
    let full = work.read("bits_tls_policy");
    let old: String = full
        .lines()
        .filter(|l| !l.contains("fno.no"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&policy, &old).unwrap();
    postmap(&pf, &format!("hash:{}", policy.display()));
    std::fs::write(&policy, &full).unwrap();
    touch_back(&policy, "1 minute ago");
    let r = verify_postfix(&work, pf.path(), &[]).expect(2).says(&[
        "the policy table Postfix reads differs from what the state renders: 2 entries missing (.fno.no, fno.no)",
    ]);
    assert!(r.domain("fno.no").contains("GAP"));
}

#[test]
fn the_table_must_be_in_smtp_tls_policy_maps_and_answer_first() {
    let work = Work::new(false);
    let pf = readme_postfix(&work, false, "");
    let ours = format!("hash:{}", work.path("bits_tls_policy").display());
    let other = write(
        work.dir.path(),
        "other",
        "esb.no encrypt\n.kommune.no may\n",
    );
    postmap(&pf, &format!("hash:{other}"));
    main_cf(&pf, &format!("smtp_tls_policy_maps = hash:{other}\n"));
    verify_postfix(&work, pf.path(), &[])
        .expect(2)
        .says(&[&format!(
            "the bits-tls table {ours} is not in smtp_tls_policy_maps (`hash:{other}`)"
        )]);
    // Appended after a table that answers first with something weaker.
    main_cf(
        &pf,
        &format!("smtp_tls_policy_maps = hash:{other}, {ours}\n"),
    );
    let r = verify_postfix(&work, pf.path(), &[]).expect(2);
    assert!(r.domain("esb.no").contains(&format!(
        "level encrypt: TLS without any certificate check, which does not meet the scheme (hash:{other}, key `esb.no`, which answers before the bits-tls table)"
    )));
    // Postfix asks `fjellheim.kommune.no` in every table before `.kommune.no`: ours answers first.
    assert!(r.domain("fjellheim.kommune.no").starts_with("  ok "));
    r.says(&["14 of 15 listed domains enforced"])
        .says_not(&["not in smtp_tls_policy_maps"]);
}

#[test]
fn routes_through_transport_maps_relayhost_and_default_transport() {
    let work = Work::with(
        &example_csv(),
        false,
        "[postfix]\nrelay = \"[smtp.bank.example]:587\"\n",
    );
    let pf = readme_postfix(&work, false, "");
    // A `.domain` key routes a listed subdomain; `smtp:` routes a domain straight to its MX.
    let transport = write(
        work.dir.path(),
        "transport",
        ".kommune.no relay:[gw.kommune.example]\nbits.no smtp:\n",
    );
    postmap(&pf, &format!("hash:{transport}"));
    main_cf(
        &pf,
        &format!("transport_maps = hash:{transport}\nrelayhost = [smtp.bank.example]:587\n"),
    );
    let r = verify_postfix(&work, pf.path(), &[]).expect(2);
    let kommune = r.domain("fjellheim.kommune.no");
    assert!(
        kommune.contains("`.kommune.no` → `relay:[gw.kommune.example]`")
            && kommune.contains("no entry for [gw.kommune.example]"),
        "{kommune}"
    );
    assert!(r.domain("bits.no").starts_with("  ok        bits.no"));
    assert!(r.domain("bits.no").contains("smtp to bits.no"));
    // The relayhost has its entry (--postfix-relay): the others are forced through it.
    let fno = r.domain("fno.no");
    assert!(
        fno.starts_with("  ok ") && fno.contains("smtp to [smtp.bank.example]:587 (relayhost"),
        "{fno}"
    );
    // default_transport with a next hop of its own, which has no entry.
    main_cf(&pf, "default_transport = smtp:[other.relay.example]\n");
    let r = verify_postfix(&work, pf.path(), &[]).expect(2);
    assert!(r
        .domain("fno.no")
        .contains("no entry for [other.relay.example]"));
}

#[test]
fn a_relayhost_without_its_entry_is_a_gap() {
    let work = Work::new(false);
    let pf = readme_postfix(&work, false, "relayhost = [smtp.bank.example]:587\n");
    let r = verify_postfix(&work, pf.path(), &[]).expect(2);
    assert!(r.domain("bits.no").contains(
        "[smtp.bank.example]:587 via transport `smtp`: opportunistic TLS (level may): plaintext when the server offers no STARTTLS (no entry for [smtp.bank.example]:587 in hash:"
    ));
    r.says(&["0 of 15 listed domains enforced"]);
}

#[test]
fn sender_dependent_routes_cannot_be_decided() {
    let work = Work::new(false);
    let sd = write(work.dir.path(), "sender_relay", "@bank.example [relay.x]\n");
    let pf = readme_postfix(
        &work,
        false,
        &format!("sender_dependent_relayhost_maps = hash:{sd}\n"),
    );
    postmap(&pf, &format!("hash:{sd}"));
    let r = verify_postfix(&work, pf.path(), &[]).expect(2);
    let line = r.domain("bits.no");
    assert!(line.starts_with("  UNDECIDED "), "{line}");
    assert!(line.contains(&format!(
        "cannot be decided from the configuration: sender_dependent_relayhost_maps = hash:{sd} may send it elsewhere"
    )));
    r.says(&["15 undecided"]);
}

#[test]
fn a_missing_or_empty_ca_file_is_a_gap() {
    let work = Work::new(false);
    let pf = readme_postfix(&work, false, "smtp_tls_CAfile = /nonexistent/ca.pem\n");
    let r = verify_postfix(&work, pf.path(), &[]).expect(2).says(&[
        "transport smtp: smtp_tls_CAfile /nonexistent/ca.pem does not exist: smtp(8) turns TLS off",
    ]);
    assert!(r.domain("bits.no").contains("GAP"));
    let empty = write(work.dir.path(), "empty-ca.pem", "");
    main_cf(&pf, &format!("smtp_tls_CAfile = {empty}\n"));
    verify_postfix(&work, pf.path(), &[])
        .expect(2)
        .says(&[&format!(
            "smtp_tls_CAfile {empty} is empty: no certificate can be verified"
        )]);
}

#[test]
fn the_modern_floor_on_an_older_postfix_and_dane_only_without_dnssec() {
    // No Postfix older than 3.6 can be installed here: the version postconf reports is pinned in
    // main.cf instead, which postconf -x shows like the built-in one.
    let work = Work::with(
        &example_csv(),
        false,
        "[postfix]\nprotocols = \"modern\"\n\n[[override]]\ndomain = \"fno.no\"\nreason = \"publishes TLSA\"\npostfix_level = \"dane-only\"\n",
    );
    let pf = readme_postfix(&work, false, "");
    let r = verify_postfix(&work, pf.path(), &[]).expect(2);
    assert!(r.domain("bits.no").starts_with("  ok "));
    assert!(r.domain("fno.no").contains(
        "level dane-only without smtp_dns_support_level = dnssec (it is empty): Postfix cannot validate TLSA records"
    ));
    main_cf(&pf, "smtp_dns_support_level = dnssec\n");
    verify_postfix(&work, pf.path(), &[]).expect(0);
    main_cf(&pf, "mail_version = 3.5.9\n");
    let r = verify_postfix(&work, pf.path(), &[]).expect(2);
    assert!(r.domain("bits.no").contains(
        "no TLS 1.2 floor: the entry's protocols= `>=TLSv1.2` needs Postfix 3.6; this Postfix 3.5"
    ));
}

#[test]
fn requirement_5_2_4_wiring() {
    let work = Work::new(true);
    let senders = format!("hash:{}", work.path("bits_tls_senders").display());
    let pf = readme_postfix(&work, true, "");
    verify_postfix(&work, pf.path(), &[]).expect(0);
    for (line, words) in [
        (
            "smtpd_sender_restrictions = permit_mynetworks\n".to_string(),
            format!(
                "requirement 5.2.4: smtpd_sender_restrictions has no check_sender_access {senders}"
            ),
        ),
        (
            format!(
                "smtpd_sender_restrictions = check_sender_access {senders}, permit_mynetworks\n"
            ),
            format!("check_sender_access {senders} comes before permit_mynetworks"),
        ),
        (
            "plaintext_reject_code = 450\n".into(),
            "plaintext_reject_code = 450: a 450 only asks the sender to try again later".into(),
        ),
        (
            "smtpd_tls_security_level = none\n".into(),
            "smtpd_tls_security_level = none: STARTTLS is not offered".into(),
        ),
        (
            "smtpd_tls_cert_file =\n".into(),
            "smtpd has no certificate".into(),
        ),
    ] {
        let cf = pf.path().join("main.cf");
        let before = std::fs::read_to_string(&cf).unwrap();
        main_cf(&pf, &line);
        verify_postfix(&work, pf.path(), &[])
            .expect(2)
            .says(&[&words]);
        std::fs::write(&cf, before).unwrap();
    }
    // A master.cf override on the port 25 service counts, not main.cf alone.
    std::fs::write(
        pf.path().join("master.cf"),
        MASTER_CF.replace(
            "smtpd\n",
            "smtpd\n  -o smtpd_sender_restrictions=permit_mynetworks\n",
        ),
    )
    .unwrap();
    verify_postfix(&work, pf.path(), &[])
        .expect(2)
        .says(&["[master.cf service smtp] requirement 5.2.4: smtpd_sender_restrictions has no check_sender_access"]);
    // A senders table that does not answer reject_plaintext_session for a listed domain.
    std::fs::write(pf.path().join("master.cf"), MASTER_CF).unwrap();
    let table = work.path("bits_tls_senders");
    let text = work
        .read("bits_tls_senders")
        .replace("\nbits.no reject_plaintext_session", "\nbits.no OK");
    std::fs::write(&table, text).unwrap();
    postmap(&pf, &senders);
    verify_postfix(&work, pf.path(), &[]).expect(2).says(&[
        "requirement 5.2.4: listed domains that do not answer reject_plaintext_session: 1 (bits.no)",
        "the senders table Postfix reads differs from what the state renders: 1 with another value (bits.no)",
    ]);
}

#[test]
fn delay_warnings_and_tls_logging_are_warnings_not_gaps() {
    let work = Work::new(false);
    let pf = readme_postfix(
        &work,
        false,
        "delay_warning_time = 0h\nsmtp_tls_loglevel = 0\n",
    );
    verify_postfix(&work, pf.path(), &[]).expect(0).says(&[
        "warning  delay_warning_time = 0h: senders hear nothing about mail waiting for TLS until it bounces after maximal_queue_lifetime (5d)",
        "warning  smtp_tls_loglevel = 0: TLS connections are not logged",
        "ENFORCED: all 15 listed domains are forced over verified TLS 1.2+ on this server; 3 warnings",
    ]);
}

/// A multi-instance host: the primary hands everything to a second instance on this host, which
/// sends to the Internet and must force TLS.
#[test]
fn every_sending_instance_of_a_multi_instance_host() {
    let work = Work::new(false);
    let out = PostfixDir::new(&format!(
        "{}multi_instance_name = postfix-out\nmulti_instance_enable = yes\n",
        readme_main_cf(&work, false)
    ));
    std::fs::write(out.path().join("master.cf"), MASTER_CF).unwrap();
    postmap(
        &out,
        &format!("hash:{}", work.path("bits_tls_policy").display()),
    );
    let primary = PostfixDir::new(&format!(
        "{}relayhost = [127.0.0.1]:10026\nmulti_instance_enable = yes\nmulti_instance_directories = {}\n",
        stock_main_cf(&work),
        out.path().display()
    ));
    std::fs::write(primary.path().join("master.cf"), MASTER_CF).unwrap();
    let r = verify_postfix(&work, primary.path(), &[])
        .expect(0)
        .says(&["(instance postfix-out)"]);
    assert!(r
        .domain("bits.no")
        .contains("-: smtp to [127.0.0.1]:10026 (relayhost = [127.0.0.1]:10026) | postfix-out: smtp to bits.no"));
    // The sending instance loses its table: the host has a gap, and says which instance.
    main_cf(&out, "smtp_tls_policy_maps =\n");
    let r = verify_postfix(&work, primary.path(), &[]).expect(2);
    assert!(r.domain("bits.no").contains(
        "instance postfix-out: bits.no via transport `smtp`: opportunistic TLS (level may)"
    ));
    r.says(&["[instance postfix-out] the bits-tls table"]);
    // A single instance that hands mail to a local next hop cannot be judged alone.
    main_cf(&primary, "multi_instance_enable = no\n");
    let r = verify_postfix(&work, primary.path(), &[]).expect(2);
    assert!(r.domain("bits.no").contains("UNDECIDED"));
    assert!(r
        .domain("bits.no")
        .contains("handed to [127.0.0.1]:10026 on this host"));
}

#[test]
fn a_missing_postconf_is_an_error_that_says_where_it_looked() {
    let work = Work::new(false);
    let empty = tempfile::tempdir().unwrap();
    let out = run(bits()
        .arg("--config")
        .arg(work.config())
        .args(["verify", "postfix", "--postfix-command-dir"])
        .arg(empty.path()));
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains(&format!(
        "error: `postconf` was not found; looked in {}",
        empty.path().display()
    )));
    assert!(out.stderr.contains("hint: run verify on the mail server"));
    let out = run(bits()
        .env("PATH", empty.path())
        .arg("--config")
        .arg(work.config())
        .args(["verify", "exim"]));
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains(&format!(
        "`exim4` or `exim` was not found; looked in {}",
        empty.path().display()
    )));
}

/// An SMTP server on 127.0.0.1 without STARTTLS that accepts every message.
fn plain_receiver() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut w = stream.try_clone().unwrap();
                let mut r = BufReader::new(stream);
                let _ = w.write_all(b"220 plain.test ESMTP\r\n");
                let mut data = false;
                let mut line = String::new();
                while r.read_line(&mut line).unwrap_or(0) > 0 {
                    let cmd = line.trim_end().to_ascii_uppercase();
                    let reply: &[u8] = if data {
                        if cmd == "." {
                            data = false;
                            b"250 accepted\r\n"
                        } else {
                            b""
                        }
                    } else if cmd.starts_with("EHLO") {
                        b"250-plain.test\r\n250 8BITMIME\r\n"
                    } else if cmd == "DATA" {
                        data = true;
                        b"354 go on\r\n"
                    } else if cmd == "QUIT" {
                        let _ = w.write_all(b"221 bye\r\n");
                        break;
                    } else {
                        b"250 ok\r\n"
                    };
                    let _ = w.write_all(reply);
                    line.clear();
                }
            });
        }
    });
    port
}

fn send(port: u16, to: &str) {
    let (mut s, (code, _)) = Smtp::connect(port);
    assert_eq!(code, 220);
    assert_eq!(s.cmd("EHLO client.test.example").0, 250);
    assert_eq!(s.cmd("MAIL FROM:<sender@test.example>").0, 250);
    assert_eq!(s.cmd(&format!("RCPT TO:<{to}>")).0, 250);
    assert_eq!(s.cmd("DATA").0, 354);
    assert_eq!(
        s.cmd(&format!("Subject: verify\r\nTo: {to}\r\n\r\nHello.\r\n."))
            .0,
        250
    );
    let _ = s.cmd("QUIT");
}

fn poll(what: &str, mut f: impl FnMut() -> bool, context: impl Fn() -> String) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !f() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}\n{}",
            context()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A running Postfix: a listed domain delivered in plaintext is a violation in the log, one deferred
/// for TLS waits in the queue with its age; a texthash table changed under running smtp processes
/// and a main.cf changed after Postfix started are seen.
#[test]
fn a_running_postfix_its_log_queue_and_processes() {
    let work = Work::new(false);
    let forced = plain_receiver();
    let open = plain_receiver();
    let bilateral = write(
        work.dir.path(),
        "bilateral",
        &format!("[127.0.0.1]:{forced} verify\n"),
    );
    let transport = write(
        work.dir.path(),
        "transport",
        &format!("bits.no smtp:[127.0.0.1]:{forced}\nfno.no smtp:[127.0.0.1]:{open}\n"),
    );
    let pf = PostfixDir::new(&format!(
        "{}smtp_tls_policy_maps = texthash:{bilateral} hash:{}\ntransport_maps = hash:{transport}\n",
        readme_main_cf(&work, false),
        work.path("bits_tls_policy").display()
    ));
    postmap(
        &pf,
        &format!("hash:{}", work.path("bits_tls_policy").display()),
    );
    postmap(&pf, &format!("hash:{transport}"));
    let postfix = PostfixInstance::start(pf);
    send(postfix.port, "postmaster@bits.no");
    send(postfix.port, "postmaster@fno.no");
    let log = || postfix.conf.log();
    poll(
        "both deliveries",
        || {
            let l = log();
            l.contains("to=<postmaster@bits.no>") && l.contains("to=<postmaster@fno.no>")
        },
        log,
    );
    let maillog = postfix.conf.path().join("maillog");
    let args = ["--log", maillog.to_str().unwrap(), "--queue"];
    let r = verify_postfix(&work, postfix.conf.path(), &args).expect(2);
    // Both next hops are on this host: not judged as sent to the Internet.
    assert!(r.domain("bits.no").contains("UNDECIDED"));
    r.says(&[
        "fno.no: 1 sent (plaintext 1), 0 deferred",
        "postmaster@fno.no via 127.0.0.1[127.0.0.1]:",
        "sent in plaintext",
        "bits.no: 0 sent, 1 deferred, 0 bounced (last: TLS is required, but was not offered by host 127.0.0.1[127.0.0.1])",
        "Queue: 1 message; 1 recipient at listed domains waiting",
        "postmaster@bits.no: waiting 0.0 h, bounces in 5.0 days: TLS is required, but was not offered",
        "[queue] 1 recipients at listed domains wait because TLS failed",
        "1 violation in the log",
    ])
    .says_not(&["started before main.cf", "texthash"]);
    // The texthash table changes under the smtp processes that read it at start; main.cf changes
    // under all of them.
    let master = std::fs::read_to_string(postfix.conf.path().join("queue/pid/master.pid")).unwrap();
    let master = master.trim().to_string();
    poll(
        "an idle smtp process",
        || {
            std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
                let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
                stat.contains("(smtp)")
                    && stat.split(") ").nth(1).and_then(|r| r.split(' ').nth(1))
                        == Some(master.as_str())
            })
        },
        log,
    );
    std::thread::sleep(Duration::from_millis(1100));
    std::fs::write(&bilateral, format!("[127.0.0.1]:{forced} secure\n")).unwrap();
    main_cf(&postfix.conf, "# changed\n");
    verify_postfix(&work, postfix.conf.path(), &[]).expect(2).says(&[
        &format!("[texthash:{bilateral}] {bilateral} changed after running smtp processes started"),
        "started before main.cf last changed: the running server may not use what is checked here; run postfix reload",
    ]);
}

/// The reports, pinned: the Postfix case in every format, and the delivery world's logs.
#[test]
fn golden_reports() {
    let work = Work::new(false);
    let pf = readme_postfix(&work, false, "");
    let transport = write(
        work.dir.path(),
        "transport",
        "bits.no relay:[relay.bank.example]\n",
    );
    postmap(&pf, &format!("hash:{transport}"));
    let other = write(work.dir.path(), "bilateral", "esb.no encrypt\n");
    postmap(&pf, &format!("hash:{other}"));
    main_cf(
        &pf,
        &format!(
            "transport_maps = hash:{transport}\nsmtp_tls_policy_maps = hash:{other} hash:{}\ndelay_warning_time = 0h\n",
            work.path("bits_tls_policy").display()
        ),
    );
    std::fs::write(
        pf.path().join("master.cf"),
        MASTER_CF.replace(
            "        -o syslog_name=postfix/$service_name\n",
            "        -o smtp_tls_security_level=none -o smtp_tls_policy_maps=\n",
        ),
    )
    .unwrap();
    let scrub = |s: &str| work.scrub(&s.replace(&pf.path().display().to_string(), "<POSTFIX>"));
    for (format, ext) in [("text", "txt"), ("json", "json"), ("markdown", "md")] {
        let r = verify_postfix(&work, pf.path(), &["--format", format]).expect(2);
        golden(&format!("verify-postfix.{ext}"), &scrub(&r.stdout));
    }

    // The delivery world's log (tests/delivery.rs), for its list plus `open.test`, which that
    // world sends in plaintext: every non-verified delivery to a listed domain is a violation.
    let csv = write(
        work.dir.path(),
        "world.csv",
        "Virksomhet;Domene\nValid;valid.test\nPlain;plain.test\nWrongname;wrongname.test\nOld;oldtls.test\nExpired;expired.test\nBlåbær;blåbær.test\nOpen;open.test\n",
    );
    let world = Work::with(Path::new(&csv), false, "");
    let pf = readme_postfix(&world, false, "");
    let log = support::fixture("verify/postfix-maillog");
    let r = verify_postfix(&world, pf.path(), &["--log", log.to_str().unwrap()]).expect(2);
    let scrubbed = world.scrub(
        &r.stdout
            .replace(&pf.path().display().to_string(), "<POSTFIX>"),
    );
    golden(
        "verify-postfix-log.txt",
        &scrubbed.replace(
            &log.display().to_string(),
            "tests/fixtures/verify/postfix-maillog",
        ),
    );
}

fn golden(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/report")
        .join(name);
    if std::env::var_os("BITS_TLS_BLESS").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!("no golden file {name}; run `BITS_TLS_BLESS=1 cargo test --test verify`")
    });
    assert!(
        actual == expected,
        "{name} differs from its golden file (BITS_TLS_BLESS=1 rewrites it)\n--- expected\n{expected}\n--- actual\n{actual}"
    );
}

// ---- Exim -----------------------------------------------------------------------------------------

/// An Exim configuration with the rendered pieces where their headings say (`forced_first`: the
/// forced router before dnslookup), the transport edited by `transport_edit`.
fn exim_config(
    work: &Work,
    forced_first: bool,
    transport_edit: &dyn Fn(String) -> String,
) -> PathBuf {
    let [main, acl, router, transport] =
        ["exim-main", "exim-acl", "exim-router", "exim-transport"].map(|p| work.read(p));
    let spool = work.path("spool");
    std::fs::create_dir_all(&spool).unwrap();
    // Exim runs as its own user with a -C configuration: the spool and log are its.
    let out = Command::new("chown")
        .args(["-R", "Debian-exim:"])
        .arg(&spool)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let dnslookup = "dnslookup:\n  driver = dnslookup\n  domains = ! +local_domains\n  transport = remote_smtp\n  no_more\n";
    let routers = if forced_first {
        format!("{router}{dnslookup}")
    } else {
        format!("{dnslookup}{router}")
    };
    let config = format!(
        "spool_directory = {spool}\nlog_file_path = {spool}/%slog\nprimary_hostname = mx.test.example\n\
         keep_environment =\ndomainlist local_domains = test.example\nacl_smtp_rcpt = acl_check_rcpt\n\
         dns_retrans = 1s\ndns_retry = 1\n{main}\n\
         begin acl\nacl_check_rcpt:\n{acl}  accept domains = +local_domains\n  deny message = relay not permitted\n\
         begin routers\n{routers}\
         begin transports\nremote_smtp:\n  driver = smtp\n{}\
         begin retry\n* * F,2h,15m; G,16h,1h,1.5; F,4d,6h\n",
        transport_edit(transport),
        spool = spool.display()
    );
    PathBuf::from(write(work.dir.path(), "exim.conf", &config))
}

fn verify_exim(work: &Work, conf: &Path, args: &[&str]) -> Run {
    run(bits()
        .arg("--config")
        .arg(work.config())
        .args(["verify", "exim", "--exim"])
        .arg(exim_binary())
        .arg("--exim-config")
        .arg(conf)
        .args(args))
}

fn same(s: String) -> String {
    s
}

#[test]
fn exim_with_the_rendered_pieces_passes() {
    let work = Work::new(false);
    let conf = exim_config(&work, true, &same);
    let r = verify_exim(&work, &conf, &[])
        .expect(0)
        .says(&[
            "Exim 4.96 with GnuTLS",
            "ENFORCED: all 15 listed domains are forced over verified TLS 1.2+",
        ])
        .says_not(&["GAP", "UNDECIDED"]);
    assert!(r
        .domain("bits.no")
        .contains("router dnslookup_forced_tls, transport remote_smtp_forced_tls"));
}

#[test]
fn exim_router_after_dnslookup_is_a_gap() {
    let work = Work::new(false);
    let conf = exim_config(&work, false, &same);
    let r = verify_exim(&work, &conf, &[]).expect(2);
    let line = r.domain("bits.no");
    for words in [
        "GAP       bits.no",
        "router dnslookup, transport remote_smtp",
        "routed by `dnslookup` to transport `remote_smtp`, which does not force verified TLS 1.2+: hosts_require_tls is empty",
        "router_list has `dnslookup` before `dnslookup_forced_tls`, so `dnslookup_forced_tls` never sees it",
    ] {
        assert!(line.contains(words), "missing `{words}` in {line}");
    }
}

#[test]
fn exim_transport_without_tls_verify_hosts_is_a_gap() {
    let work = Work::new(false);
    let conf = exim_config(&work, true, &|t: String| {
        t.lines()
            .filter(|l| !l.contains("tls_verify_hosts"))
            .map(|l| format!("{l}\n"))
            .collect()
    });
    let r = verify_exim(&work, &conf, &[])
        .expect(2)
        .says(&["no router sends mail to a transport that forces verified TLS 1.2+"]);
    assert!(r.domain("bits.no").contains(
        "routed by `dnslookup_forced_tls` to transport `remote_smtp_forced_tls`, which does not force verified TLS 1.2+: tls_verify_hosts is empty: a certificate that fails verification is used anyway"
    ));
    // A floor that lets TLS 1.1 through is one too.
    let conf = exim_config(&work, true, &|t: String| {
        t.replace("+VERS-TLS1.2", "+VERS-TLS1.2:+VERS-TLS1.1")
    });
    let r = verify_exim(&work, &conf, &[]).expect(2);
    assert!(r
        .domain("fno.no")
        .contains("still allows TLS1.1: no TLS 1.2 floor"));
}

#[test]
fn exim_stale_domain_list_is_a_gap() {
    let work = Work::new(false);
    let conf = exim_config(&work, true, &same);
    let file = work.path("bits_forced_tls_domains");
    let stale: String = work
        .read("bits_forced_tls_domains")
        .lines()
        .filter(|l| *l != "fno.no" && *l != "bits.no")
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&file, stale).unwrap();
    let r = verify_exim(&work, &conf, &[])
        .expect(2)
        .says(&[&format!("[{}]", file.display())]);
    r.says(&[
        "the domain list of forced_tls_domains lacks 2 entries the state renders (bits.no, fno.no): it is stale; run bits-tls sync",
    ]);
}

#[test]
fn exim_configuration_that_does_not_load_or_does_not_match_the_build() {
    let work = Work::new(false);
    let conf = exim_config(&work, true, &|t: String| {
        format!("{t}  no_such_option = 1\n")
    });
    verify_exim(&work, &conf, &[]).expect(2).says(&[
        "the configuration does not load (",
        "no_such_option",
        "Exim cannot load its configuration",
    ]);
    // The state's exim-config rendered for OpenSSL, the binary built with GnuTLS.
    let conf = exim_config(&work, true, &same);
    let toml = std::fs::read_to_string(work.config())
        .unwrap()
        .replace("[exim]\n", "[exim]\ntls_library = \"openssl\"\n");
    std::fs::write(work.config(), toml).unwrap();
    verify_exim(&work, &conf, &[]).expect(2).says(&[
        "this Exim is built with GnuTLS, but the exim-config was rendered for OpenSSL (exim.tls_library)",
    ]);
}

/// Debian's split configuration: the generated file must be newer than the conf.d it comes from.
#[test]
fn exim_debian_split_config_must_be_regenerated() {
    let work = Work::new(false);
    let conf = exim_config(&work, true, &same);
    let root = work.path("root");
    let generated = root.join("var/lib/exim4/config.autogenerated");
    let router = root.join("etc/exim4/conf.d/router/190_local_bits_forced_tls");
    std::fs::create_dir_all(generated.parent().unwrap()).unwrap();
    std::fs::create_dir_all(router.parent().unwrap()).unwrap();
    std::fs::copy(&conf, &generated).unwrap();
    std::fs::write(&router, "# the router\n").unwrap();
    touch_back(&router, "1 hour ago");
    verify_exim(&work, &generated, &[]).expect(0);
    std::fs::write(&router, "# the router, edited\n").unwrap();
    touch_back(&generated, "1 minute ago");
    verify_exim(&work, &generated, &[]).expect(2).says(&[&format!(
        "a source file changed after {} was generated ({}): Exim still runs the old configuration; run update-exim4.conf and reload Exim",
        generated.display(),
        router.display()
    )]);
}

#[test]
fn exim_log_and_queue_evidence() {
    let csv = write(
        Path::new(&std::env::temp_dir()),
        &format!("bits-tls-verify-world-{}.csv", std::process::id()),
        "Virksomhet;Domene\nValid;valid.test\nPlain;plain.test\nWrongname;wrongname.test\nOld;oldtls.test\nExpired;expired.test\nBlåbær;blåbær.test\nOpen;open.test\n",
    );
    let work = Work::with(Path::new(&csv), false, "");
    std::fs::remove_file(&csv).unwrap();
    let conf = exim_config(&work, true, &same);
    // A message waiting in the queue (queued only, no delivery attempt).
    let mut child = Command::new(exim_binary())
        .arg("-C")
        .arg(&conf)
        .args(["-odq", "-f", "sender@test.example", "postmaster@plain.test"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"Subject: queued\n\nHello.\n")
        .unwrap();
    assert!(child.wait().unwrap().success());
    let log = support::fixture("verify/exim-mainlog");
    let r = verify_exim(&work, &conf, &["--log", log.to_str().unwrap(), "--queue"]).expect(2);
    let scrubbed = work.scrub(&r.stdout).replace(
        &log.display().to_string(),
        "tests/fixtures/verify/exim-mainlog",
    );
    // The queue part has a live message id and age; the rest is pinned.
    let (pinned, queue) = scrubbed.split_once("\nQueue: ").unwrap();
    // Whether DNS answers for `.test` here decides the wording of a note; the verdicts do not depend on it.
    let pinned: String = pinned
        .lines()
        .filter(|l| !l.contains("note: no DNS answer here"))
        .map(|l| format!("{l}\n"))
        .collect();
    golden("verify-exim-log.txt", &pinned);
    assert!(queue.contains("\nResult: GAPS: "), "{queue}");
    assert!(
        queue.starts_with("1 message; 1 recipient at listed domains waiting"),
        "{queue}"
    );
    assert!(
        queue.contains(
            "postmaster@plain.test: waiting 0.0 h, bounces in 4.0 days: (no reason recorded)"
        ),
        "{queue}"
    );
}

// ---- Exchange: scripts are written, not applied ---------------------------------------------------

/// An Exchange script changes nothing until someone runs it: sync says "wrote", the history lists it
/// under `scripts_written`, and check says the live state is unknown and names the verify scripts.
#[test]
fn exchange_scripts_are_written_not_applied() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bits-tls.toml");
    std::fs::write(
        &config,
        format!(
            "source = \"{}\"\n[[output]]\ntarget = \"exchange\"\npath = \"exchange.ps1\"\n\
             [[output]]\ntarget = \"exchange-verify\"\npath = \"exchange-verify.ps1\"\n",
            example_csv().display()
        ),
    )
    .unwrap();
    let r = run(bits().arg("--config").arg(&config).arg("sync")).expect(0);
    assert!(
        r.stdout.starts_with(
            "bits-tls: wrote the scripts for the Bits list (14 participants, 15 domains;"
        ),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("exchange.ps1 (+")
            && r.stdout.contains(
                " -0 lines); a script: nothing is applied until it runs on the Exchange server or tenant"
            ),
        "{}",
        r.stdout
    );
    let history = std::fs::read_to_string(dir.path().join("bits-tls.history.jsonl")).unwrap();
    let entry: serde_json::Value = serde_json::from_str(history.lines().next().unwrap()).unwrap();
    assert_eq!(
        entry["scripts_written"].as_array().unwrap().len(),
        2,
        "{entry}"
    );
    let r = run(bits().arg("--config").arg(&config).arg("check")).expect(0);
    assert!(r.stdout.contains(
        "exchange.ps1 is a script; whether it ran is unknown here: run the exchange-verify (Exchange Server) or exchange-online-verify (Exchange Online) script to see the live connectors"
    ), "{}", r.stdout);
    let r = run(bits()
        .arg("--config")
        .arg(&config)
        .args(["check", "--format", "json"]))
    .expect(0);
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(doc["live_state_unknown"].as_array().unwrap().len(), 2);
    // With a Postfix table among the outputs, the sync applied something.
    let work = Work::new(false);
    let history = std::fs::read_to_string(work.path("bits-tls.history.jsonl")).unwrap();
    assert!(!history.contains("scripts_written"), "{history}");
}
