//! Proof that the generated configuration forces TLS when mail really flows (`cargo test --test delivery`).
//!
//! Each test builds a private mail world (`tests/support/world.rs`) and tears it down afterwards: a
//! network namespace of its own, dnsmasq inside it answering MX and A records for a handful of `.test`
//! domains, one receiving server per domain on 127.0.0.X:25 inside it, and the real Postfix sending
//! inside it with bits-tls's output for a list of those domains (Exim: tests/exim_delivery.rs). Nothing
//! outside this machine is contacted; every address is the namespace's own.

mod support;

use std::process::Command;
use std::time::Duration;
use support::mta::{
    postfix_root, text, try_sender, wiring_lines, write, PostfixDir, PostfixInstance,
};
use support::world::{poll, render_as_configured, run_ok, World, SERVERS};

/// main.cf for a sending Postfix in the world: the header's recommended lines (with `replace` applied
/// for this test's paths and speed), then `extra`.
fn sender_main_cf(header: &str, replace: &[(&str, String)], extra: &str) -> String {
    let mut cf =
        String::from("myhostname = sender.test\nmydestination =\nsmtp_connect_timeout = 5s\n");
    for (k, v) in wiring_lines(header) {
        let v = replace
            .iter()
            .find(|(name, _)| *name == k)
            .map_or(v, |(_, v)| v.clone());
        cf.push_str(&format!("{k} = {v}\n"));
    }
    cf.push_str(extra);
    cf
}

/// Renders `template` (a user template: no output check) for the world's list.
fn render_user_template(world: &World, template: &str) -> String {
    let file = write(world.path(), "user-template.j2", template);
    let out = support::bits()
        .args(["render", "-q", "--template", &file, "--source"])
        .arg(world.list_csv())
        .assert()
        .success();
    text(&out.get_output().stdout)
}

/// The first `status=` line Postfix logged for `to`.
fn outcome(postfix: &PostfixInstance, to: &str) -> Option<String> {
    postfix
        .conf
        .log()
        .lines()
        .find(|l| l.contains(&format!("to=<{to}>")) && l.contains("status="))
        .map(String::from)
}

/// The recipients of messages still in Postfix's queue.
fn queued(postfix: &PostfixInstance) -> Vec<String> {
    let root = postfix_root();
    let queue = run_ok(
        Command::new(root.join("usr/sbin/postqueue"))
            .env("LD_LIBRARY_PATH", root.join("usr/lib/postfix"))
            .env("MAIL_CONFIG", postfix.conf.path())
            .arg("-j"),
    );
    let mut out: Vec<String> = queue
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .flat_map(|m| {
            m["recipients"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["address"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    out.sort();
    out
}

#[test]
fn postfix_delivers_listed_domains_only_over_verified_tls() {
    let world = World::new();
    let ca = world.pki.ca().display().to_string();
    let ours = world.path().join("bits_tls_policy").display().to_string();
    let policy = world.render(
        "postfix-policy",
        &["--postfix-policy-path", &ours, "--postfix-ca-file", &ca],
    );
    write(world.path(), "bits_tls_policy", &policy);
    // A bilateral table the admin already had; the list's table is appended to it, as the header says.
    let bilateral = write(
        world.path(),
        "bilateral",
        "partner.test encrypt protocols=>=TLSv1.2\n",
    );
    let maps = wiring_lines(&policy)
        .into_iter()
        .find(|(k, _)| k == "smtp_tls_policy_maps")
        .unwrap()
        .1;
    assert_eq!(maps, format!("hash:{ours}"), "the header names the table");
    let main_cf = sender_main_cf(
        &policy,
        &[
            ("smtp_tls_policy_maps", format!("hash:{bilateral} {maps}")),
            // The sender hears of the delay at once, not after 4h; deferred mail is retried quickly.
            ("delay_warning_time", "1s".into()),
        ],
        "minimal_backoff_time = 1s\nmaximal_backoff_time = 2s\nqueue_run_delay = 1s\n",
    );
    for (k, v) in [
        ("smtp_tls_CAfile", ca.as_str()),
        ("smtp_tls_security_level", "may"),
        ("smtp_tls_loglevel", "1"),
    ] {
        assert!(main_cf.contains(&format!("\n{k} = {v}\n")), "{main_cf}");
    }
    let pf = PostfixDir::new(&main_cf);
    for map in [&bilateral, &ours] {
        let out = pf.postmap(&[&format!("hash:{map}")]);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let postfix = PostfixInstance::start_in(pf, Some(&world.ns.name));
    // Mail is submitted over SMTP to the sender's own listener, from inside the namespace, by a sender
    // whose mailbox is at `open.test`, so delay notices can be read there.
    let sender = "sender@open.test";
    let mut recipients: Vec<String> = SERVERS
        .iter()
        .map(|(name, ..)| format!("pf@{name}.test"))
        .collect();
    recipients.extend(["plain", "open"].map(|name| format!("pf@sub.{name}.test")));
    recipients.push("pf@blåbær.test".into());
    for to in &recipients {
        world.submit_from(postfix.port, sender, to);
    }
    let log = || postfix.conf.log();
    let results: Vec<(String, String)> = recipients
        .iter()
        .map(|to| {
            let line = poll(
                &format!("Postfix to {to}"),
                Duration::from_secs(60),
                || outcome(&postfix, to),
                log,
            );
            (to.clone(), line)
        })
        .collect();
    let reason = |to: &str| results.iter().find(|(t, _)| t == to).unwrap().1.clone();
    let delivered_plain = ["pf@open.test", "pf@sub.open.test"];
    for (to, line) in &results {
        if to == "pf@valid.test" {
            assert!(line.contains("status=sent"), "{line}");
            assert!(
                log().contains("Verified TLS connection established to mx.valid.test"),
                "{}",
                log()
            );
            let got = world.received(to);
            assert_eq!(got.len(), 1, "{got:?}");
            assert!(got[0].0, "delivered over TLS");
            assert!(
                matches!(got[0].1.as_deref(), Some("TLSv1.2" | "TLSv1.3")),
                "{got:?}"
            );
        } else if delivered_plain.contains(&to.as_str()) {
            assert!(
                line.contains("status=sent"),
                "an unlisted domain still gets mail without TLS: {line}"
            );
            assert_eq!(world.received(to), [(false, None)]);
        } else {
            assert!(line.contains("status=deferred"), "{to}: {line}");
            assert!(
                world.received(to).is_empty(),
                "{to}: the receiver must record no message"
            );
        }
    }
    for to in [
        "pf@plain.test",
        "pf@xn--blbr-roah.test",
        "pf@blåbær.test",
        "pf@sub.plain.test",
        "pf@partner.test",
    ] {
        assert!(
            reason(to).contains("TLS is required, but was not offered"),
            "{to}: {}",
            reason(to)
        );
    }
    for to in ["pf@wrongname.test", "pf@expired.test"] {
        assert!(
            reason(to).contains("Server certificate not verified"),
            "{}",
            reason(to)
        );
    }
    assert!(
        reason("pf@oldtls.test").contains("Cannot start TLS: handshake failure"),
        "{}",
        reason("pf@oldtls.test")
    );
    assert!(
        world.tls_failed("oldtls"),
        "the TLS 1.1 server saw the handshake fail"
    );
    // The sender is told, with the reason, long before the bounce.
    let notice = poll(
        "a delay notice for pf@plain.test",
        Duration::from_secs(30),
        || {
            world
                .messages(sender)
                .into_iter()
                .map(|m| m["text"].as_str().unwrap_or_default().to_string())
                .find(|t| t.contains("<pf@plain.test>"))
        },
        log,
    );
    assert!(notice.contains("Subject: Delayed Mail"), "{notice}");
    // Postfix folds the reason over two lines.
    let flat = notice.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        flat.contains(
            "<pf@plain.test>: TLS is required, but was not offered by host mx.plain.test"
        ),
        "{notice}"
    );
    // The deferred mail stays queued.
    let mut waiting: Vec<String> = results
        .iter()
        .filter(|(_, l)| l.contains("status=deferred"))
        .map(|(t, _)| t.clone())
        .collect();
    waiting.sort();
    assert_eq!(waiting.len(), 8, "{waiting:?}");
    // The delay notices themselves leave the queue once delivered; wait for that, not a fixed time.
    poll(
        "the queue to hold exactly the deferred mail",
        Duration::from_secs(30),
        || (queued(&postfix) == waiting).then_some(()),
        || format!("{:?}\n{}", queued(&postfix), postfix.conf.log()),
    );
}

/// The TLS 1.1 receiver really tells the floor apart: a policy without `protocols=` delivers to it.
#[test]
fn postfix_without_the_floor_would_deliver_over_tls_1_1() {
    let world = World::new();
    let ca = world.pki.ca().display().to_string();
    let floorless = render_user_template(
        &world,
        "{% for d in domains %}{{ d.name }} verify\n{% endfor %}",
    );
    let table = write(world.path(), "floorless", &floorless);
    let real = world.render("postfix-policy", &["--postfix-ca-file", &ca]);
    let main_cf = sender_main_cf(
        &real,
        &[("smtp_tls_policy_maps", format!("hash:{table}"))],
        "",
    );
    let pf = PostfixDir::new(&main_cf);
    assert!(pf.postmap(&[&format!("hash:{table}")]).status.success());
    let postfix = PostfixInstance::start_in(pf, Some(&world.ns.name));
    world.submit(postfix.port, "nofloor@oldtls.test");
    let line = poll(
        "Postfix to oldtls.test",
        Duration::from_secs(60),
        || outcome(&postfix, "nofloor@oldtls.test"),
        || postfix.conf.log(),
    );
    assert!(line.contains("status=sent"), "{line}");
    assert_eq!(
        world.received("nofloor@oldtls.test"),
        [(true, Some("TLSv1.1".to_string()))]
    );
}

/// Through a relayhost, Postfix looks up the relay, not the domain: the `--postfix-relay` entry forces
/// TLS to it; without it, listed mail goes to a plaintext relay in plaintext.
#[test]
fn postfix_relay_routes_need_the_relay_entry() {
    let world = World::new();
    let ca = world.pki.ca().display().to_string();
    for (with_entry, to) in [(true, "relayed@valid.test"), (false, "bypass@valid.test")] {
        let mut args = vec!["--postfix-ca-file", ca.as_str()];
        if with_entry {
            args.extend(["--postfix-relay", "[mx.plain.test]"]);
        }
        let policy = world.render("postfix-policy", &args);
        assert_eq!(policy.contains("\n[mx.plain.test] verify "), with_entry);
        let table = write(world.path(), "relay-policy", &policy);
        let main_cf = sender_main_cf(
            &policy,
            &[("smtp_tls_policy_maps", format!("hash:{table}"))],
            "relayhost = [mx.plain.test]\n",
        );
        let pf = PostfixDir::new(&main_cf);
        assert!(pf.postmap(&[&format!("hash:{table}")]).status.success());
        let postfix = PostfixInstance::start_in(pf, Some(&world.ns.name));
        world.submit(postfix.port, to);
        let line = poll(
            &format!("Postfix to {to}"),
            Duration::from_secs(60),
            || outcome(&postfix, to),
            || postfix.conf.log(),
        );
        if with_entry {
            assert!(
                line.contains("status=deferred")
                    && line.contains("TLS is required, but was not offered by host mx.plain.test"),
                "{line}"
            );
            assert!(world.received(to).is_empty());
        } else {
            assert!(line.contains("status=sent"), "{line}");
            assert_eq!(
                world.received(to),
                [(false, None)],
                "the gap the entry closes"
            );
        }
    }
}

#[test]
fn postfix_refuses_plaintext_from_listed_senders_and_accepts_tls() {
    let pki = support::TestPki::new();
    let senders = render_as_configured("postfix-senders", &support::example_csv(), &[]);
    // Postfix's default matches a key's subdomains in access tables; some admins take smtpd_access_maps
    // out of parent_domain_matches_subdomains. Subdomains are refused either way.
    for parent_matching in [
        None,
        Some("parent_domain_matches_subdomains = debug_peer_list\n"),
    ] {
        let pf = PostfixDir::new(parent_matching.unwrap_or(""));
        let cert = write(pf.path(), "cert.pem", &pki.cert_pem);
        let key = write(pf.path(), "key.pem", &pki.key_pem);
        let table = write(pf.path(), "bits_tls_senders", &senders);
        let out = pf.postmap(&[&format!("hash:{table}")]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let wiring: String = wiring_lines(&senders)
            .iter()
            .map(|(k, v)| {
                format!(
                    "{k} = {}\n",
                    v.replace("/etc/postfix/bits_tls_senders", &table)
                )
            })
            .collect();
        std::fs::write(
            pf.path().join("main.cf"),
            std::fs::read_to_string(pf.path().join("main.cf")).unwrap()
                + &wiring
                + &format!(
                    "smtpd_tls_security_level = may\nsmtpd_tls_cert_file = {cert}\nsmtpd_tls_key_file = {key}\n\
                     smtpd_recipient_restrictions = reject_unauth_destination\n\
                     mynetworks = 192.0.2.0/24\n"
                ),
        )
        .unwrap();
        // The test client (127.0.0.1) must not be in mynetworks, or permit_mynetworks lets it through, as
        // it would any client of the server's own network.
        let postfix = PostfixInstance::start(pf);
        let log = || postfix.conf.log();

        let (rcpt, mail) = try_sender(postfix.port, "someone@bits.no", "user@test.example", None);
        assert_eq!(mail.0, 250, "{}", log());
        assert_eq!(
            rcpt.0,
            550,
            "plaintext from a listed domain must be refused: {rcpt:?}\n{}",
            log()
        );
        assert!(
            rcpt.1.contains("Session encryption is required"),
            "{rcpt:?}"
        );
        // The IDN domain as A-label, and in UTF-8 with SMTPUTF8 (which Postfix looks up as UTF-8), and a
        // subdomain: all refused in plaintext.
        for sender in [
            "someone@xn--blbrbank-b0al.no",
            "someone@blåbærbank.no",
            "someone@BLÅBÆRBANK.no",
            "someone@mail.bits.no",
            "someone@post.blåbærbank.no",
        ] {
            let (rcpt, mail) = try_sender(postfix.port, sender, "user@test.example", None);
            assert_eq!(mail.0, 250, "{sender}: {mail:?}");
            assert_eq!(
                rcpt.0,
                550,
                "{sender} ({parent_matching:?}): {rcpt:?}\n{}",
                log()
            );
        }

        let (rcpt, _) = try_sender(
            postfix.port,
            "someone@bits.no",
            "user@test.example",
            Some(&pki.ca_der),
        );
        assert_eq!(
            rcpt.0,
            250,
            "the same sender over STARTTLS is accepted: {rcpt:?}\n{}",
            log()
        );

        for sender in [
            "someone@unlisted.no",
            "someone@bits.no.example",
            "someone@blåbær.example",
        ] {
            let (rcpt, _) = try_sender(postfix.port, sender, "user@test.example", None);
            assert_eq!(
                rcpt.0,
                250,
                "an unlisted sender may still use plaintext: {sender} {rcpt:?}\n{}",
                log()
            );
        }
    }
}
