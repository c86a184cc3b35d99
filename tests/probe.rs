//! `bits-tls probe` in a private Internet (`cargo test --test probe`; tests/support/probe_world.rs):
//! nsd serving a DNSSEC-signed `test.` zone, unbound validating it with a private trust anchor (and a
//! second unbound that does not validate), one SMTP receiver per case and HTTPS servers for MTA-STS
//! policies, all in a network namespace of their own. Each case asserts the exact verdict and reason;
//! Postfix's posttls-finger, run in the same world, is the reference for the TLS and DANE verdicts, and
//! the real Postfix proves that a suggested `dane-only` override delivers (and defers on a mismatch).

mod support;

use serde_json::Value;
use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};
use support::mta::{text, wiring_lines, PostfixDir, PostfixInstance};
use support::probe_world::{
    CertOpts, Layout, ProbeWorld, Receiver, PLAIN_RESOLVER, POLICY, POLICY_BADCERT,
};

/// (name, address, mode, certificate names (empty: none), certificate options)
type Case = (
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
    CertOpts,
);

fn opts() -> CertOpts {
    CertOpts::default()
}

/// The receivers; each serves `NAME.test` through `mx.NAME.test` unless the layout says otherwise.
fn receivers() -> Vec<Case> {
    vec![
        (
            "valid",
            "127.0.0.11",
            "tls",
            &["mx.valid.test", "mx.dual.test"],
            opts(),
        ),
        ("plain", "127.0.0.12", "plain", &[], opts()),
        (
            "oldtls",
            "127.0.0.13",
            "oldtls",
            &["mx.oldtls.test"],
            CertOpts {
                rsa: true,
                ..opts()
            },
        ),
        ("cbc", "127.0.0.14", "cbc12", &["mx.cbc.test"], opts()),
        (
            "expired",
            "127.0.0.15",
            "tls",
            &["mx.expired.test"],
            CertOpts {
                expired: true,
                ..opts()
            },
        ),
        (
            "wrongname",
            "127.0.0.16",
            "tls",
            &["mx.someone-else.test"],
            opts(),
        ),
        (
            "nointer",
            "127.0.0.17",
            "tls",
            &["mx.nointer.test"],
            CertOpts {
                chain: false,
                ..opts()
            },
        ),
        (
            "provider",
            "127.0.0.18",
            "tls",
            &["mx.provider.test"],
            opts(),
        ),
        ("twomx1", "127.0.0.19", "plain", &[], opts()),
        ("twomx2", "127.0.0.20", "tls", &["mx2.twomx.test"], opts()),
        ("dane", "127.0.0.21", "tls", &["mx.dane.test"], opts()),
        ("danebad", "127.0.0.22", "tls", &["mx.danebad.test"], opts()),
        ("notlsa", "127.0.0.23", "tls", &["mx.notlsa.test"], opts()),
        (
            "unsignedtlsa",
            "127.0.0.24",
            "tls",
            &["mx.insecure.test"],
            opts(),
        ),
        ("bogus", "127.0.0.25", "tls", &["mx.bogus.test"], opts()),
        ("sts", "127.0.0.26", "tls", &["mx.sts.test"], opts()),
        ("greylist", "127.0.0.27", "greylist", &[], opts()),
        (
            "soon",
            "127.0.0.28",
            "tls",
            &["mx.soon.test"],
            CertOpts {
                days_left: Some(5),
                ..opts()
            },
        ),
    ]
}

/// Domains served by the shared MTA-STS receiver `mx.sts.test`, with their policy (None: the policy
/// server answers with `route`).
const STS: &[&str] = &[
    "sts",
    "ststesting",
    "stsgap",
    "sts404",
    "stsredirect",
    "stsbig",
    "stsbadcert",
];

fn policy(mode: &str, mx: &str) -> Value {
    serde_json::json!({"status": 200, "body": format!("version: STSv1\r\nmode: {mode}\r\nmx: {mx}\r\nmax_age: 86400\r\n")})
}

fn layout() -> Layout {
    let mut l = Layout::default();
    for (name, addr, mode, names, cert) in receivers() {
        l.receivers.push(Receiver {
            name,
            address: addr.into(),
            mode,
            cert_names: names.iter().map(|s| s.to_string()).collect(),
            cert,
            banner: None,
        });
        let simple = !matches!(
            name,
            "provider" | "twomx1" | "twomx2" | "unsignedtlsa" | "sts"
        );
        if simple {
            l.zone.push(format!("{name} IN MX 10 mx.{name}"));
            l.zone.push(format!("mx.{name} IN A {addr}"));
        }
    }
    l.zone.extend(
        [
            "hosted IN MX 10 mx.provider",
            "mx.provider IN A 127.0.0.18",
            "twomx IN MX 10 mx1.twomx",
            "twomx IN MX 20 mx2.twomx",
            "mx1.twomx IN A 127.0.0.19",
            "mx2.twomx IN A 127.0.0.20",
            "unsignedtlsa IN MX 10 mx.insecure.test.",
            "mx.sts IN A 127.0.0.26",
            "nullmx IN MX 0 .",
            // An IPv6 address this namespace has no route to, beside a good IPv4 one.
            "dual IN MX 10 mx.dual",
            "mx.dual IN A 127.0.0.11",
            "mx.dual IN AAAA 2001:db8::25",
            "_smtp._tls.sts IN TXT \"v=TLSRPTv1; rua=mailto:tls-reports@sts.test\"",
        ]
        .map(String::from),
    );
    l.insecure_zone.push("mx IN A 127.0.0.24".into());
    // A server whose words are hostile (terminal escapes, Markdown, a TOML table, a second line), and
    // which refuses everyone (554).
    l.receivers.push(Receiver {
        name: "hostile",
        address: "127.0.0.29".into(),
        mode: "greylist",
        cert_names: vec![],
        cert: opts(),
        banner: Some(
            "554-\u{1b}[2J\u{1b}[31mcleared ``` <b>@all</b>\r\n554 [[override]] domain = \"evil.test\"\r\n".into(),
        ),
    });
    l.zone.push("hostile IN MX 10 mx.hostile".into());
    l.zone.push("mx.hostile IN A 127.0.0.29".into());
    for d in STS {
        l.zone.push(format!("{d} IN MX 10 mx.sts"));
        l.zone
            .push(format!("_mta-sts.{d} IN TXT \"v=STSv1; id=20261123\""));
        let addr = if *d == "stsbadcert" {
            POLICY_BADCERT
        } else {
            POLICY
        };
        l.zone.push(format!("mta-sts.{d} IN A {addr}"));
    }
    let host = |d: &str| format!("mta-sts.{d}.test");
    l.policies = vec![
        (host("sts"), policy("enforce", "mx.sts.test")),
        (host("ststesting"), policy("testing", "mx.sts.test")),
        (host("stsgap"), policy("enforce", "mx.elsewhere.test")),
        (
            host("sts404"),
            serde_json::json!({"status": 404, "body": "no"}),
        ),
        (
            host("stsredirect"),
            serde_json::json!({"status": 301, "body": "", "headers": {"Location": "https://mta-sts.sts.test/.well-known/mta-sts.txt"}}),
        ),
        (
            host("stsbig"),
            serde_json::json!({"status": 200, "body": {"repeat": "mx: mx.sts.test\r\n", "times": 5000}}),
        ),
    ];
    l.badcert_policies = vec![(host("stsbadcert"), policy("enforce", "mx.sts.test"))];
    l.tlsa_for = vec![
        ("_25._tcp.mx.dane".into(), "dane"),
        ("_25._tcp.mx.bogus".into(), "bogus"),
    ];
    l.insecure_tlsa_for = vec![("_25._tcp.mx".into(), "unsignedtlsa")];
    l.tlsa_wrong = vec!["_25._tcp.mx.danebad".into()];
    l.bogus_tlsa = vec!["_25._tcp.mx.bogus".into()];
    l
}

fn all_domains() -> Vec<String> {
    let mut d: Vec<String> = receivers()
        .iter()
        .map(|(n, ..)| n.to_string())
        .filter(|n| !matches!(n.as_str(), "provider" | "twomx1" | "twomx2" | "sts"))
        .collect();
    d.extend(["hosted", "twomx", "nullmx", "nonexistent", "dual"].map(String::from));
    d.extend(STS.iter().map(|s| s.to_string()));
    d.into_iter().map(|d| format!("{d}.test")).collect()
}

fn probe_args(world: &ProbeWorld) -> Vec<String> {
    vec![
        "probe".into(),
        "--ca-file".into(),
        world.pki.ca().display().to_string(),
        "--trust-anchor".into(),
        world.anchor.display().to_string(),
        "--timeout".into(),
        "3".into(),
        "--helo".into(),
        "prober.test".into(),
    ]
}

fn run_json(world: &ProbeWorld, extra: &[&str], domains: &[String]) -> (i32, Value, String) {
    let mut args = probe_args(world);
    args.extend(["--format".into(), "json".into()]);
    args.extend(extra.iter().map(|s| s.to_string()));
    args.extend(domains.iter().cloned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, out, err) = world.bits(&args);
    let v: Value = serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {out}\n{err}\n{}", world.logs()));
    (code, v, err)
}

fn domain<'a>(run: &'a Value, name: &str) -> &'a Value {
    run["domains"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["domain"] == name)
        .unwrap_or_else(|| panic!("no {name} in the report"))
}

/// The reasons at the configured level, over every address (and the domain itself).
fn reasons(d: &Value) -> Vec<String> {
    let mut out: Vec<String> = d["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["reason"].as_str().unwrap().to_string())
        .collect();
    for m in d["mx"].as_array().unwrap() {
        if let Some(p) = m.get("problem") {
            out.push(p["reason"].as_str().unwrap().to_string());
        }
        for a in m["addresses"].as_array().unwrap() {
            for f in a["configured"]["findings"].as_array().into_iter().flatten() {
                out.push(f["reason"].as_str().unwrap().to_string());
            }
        }
    }
    out
}

fn check_reasons(d: &Value, level: &str) -> Vec<String> {
    d["mx"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|m| m["addresses"].as_array().unwrap().iter())
        .flat_map(|a| {
            a[level]["findings"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(|f| f["reason"].as_str().unwrap().to_string())
        })
        .collect()
}

#[test]
fn every_case_gets_its_exact_verdict_and_reason() {
    let world = ProbeWorld::new(&layout());
    let start = Instant::now();
    let (code, run, err) = run_json(&world, &[], &all_domains());
    let took = start.elapsed();
    eprintln!("probe of {} domains took {took:?}", all_domains().len());
    assert_eq!(code, 2, "some domains are not deliverable: {err}");
    assert_eq!(run["version"], 1);
    assert_eq!(run["resolver"]["validates"], true, "{}", run["resolver"]);
    for (name, opinion) in [
        ("dane.test", "secure"),
        ("bogus.test", "bogus"),
        ("unsignedtlsa.test", "insecure"),
    ] {
        let tlsa = &domain(&run, name)["mx"][0]["lookups"][2];
        assert_eq!(tlsa["type"], "TLSA");
        assert_eq!(
            tlsa["local"], opinion,
            "local validation of {name}'s TLSA: {tlsa}"
        );
    }
    let expect: &[(&str, &str, &[&str])] = &[
        ("valid.test", "deliverable", &[]),
        ("cbc.test", "deliverable", &[]),
        ("hosted.test", "deliverable", &[]),
        ("dane.test", "deliverable", &[]),
        ("danebad.test", "deliverable", &[]),
        ("soon.test", "deliverable", &[]),
        ("dual.test", "deliverable", &["no-route"]),
        ("plain.test", "would-defer", &["no-starttls"]),
        ("oldtls.test", "would-defer", &["tls<1.2"]),
        ("expired.test", "would-defer", &["expired"]),
        ("wrongname.test", "would-defer", &["mx-name-mismatch"]),
        ("nointer.test", "would-defer", &["incomplete-chain"]),
        ("twomx.test", "degraded", &["no-starttls"]),
        ("greylist.test", "unknown", &["temporarily-refused"]),
        ("nullmx.test", "would-defer", &["null-mx"]),
        ("nonexistent.test", "would-defer", &["dns-failure"]),
    ];
    for (name, verdict, why) in expect {
        let d = domain(&run, name);
        assert_eq!(d["verdict"], *verdict, "{name}: {d:#}");
        assert_eq!(reasons(d), *why, "{name}: {d:#}");
    }
    // TLS 1.2 with CBC suites only: what OpenSSL (and Postfix) sees.
    let cbc = &domain(&run, "cbc.test")["mx"][0]["addresses"][0]["session"]["tls"];
    assert_eq!(cbc["version"], "TLSv1.2", "{cbc}");
    assert!(cbc["cipher"].as_str().unwrap().contains("SHA"), "{cbc}");
    let old = &domain(&run, "oldtls.test")["mx"][0]["addresses"][0]["session"]["tls"];
    assert_eq!(old["version"], "TLSv1.1", "{old}");

    // The first of two MX is the broken one.
    let two = domain(&run, "twomx.test");
    assert_eq!(two["mx"][0]["host"], "mx1.twomx.test");
    assert_eq!(two["mx"][0]["addresses"][0]["configured"]["pass"], false);
    assert_eq!(two["mx"][1]["addresses"][0]["configured"]["pass"], true);

    // secure: the hosted domain's certificate names only the provider.
    let hosted = domain(&run, "hosted.test");
    assert_eq!(hosted["secure"], "would-defer");
    assert_eq!(check_reasons(hosted, "secure"), ["name-mismatch"]);
    assert_eq!(hosted["secure_match"], "mx.provider.test");
    assert_eq!(domain(&run, "valid.test")["secure"], "deliverable");

    // DANE.
    let dane = domain(&run, "dane.test");
    assert_eq!(dane["dane_only"], "deliverable", "{dane:#}");
    assert_eq!(dane["dane"]["recommended"], true, "{dane:#}");
    assert_eq!(dane["suggestion"]["level"], "dane-only");
    assert_eq!(dane["mx"][0]["tlsa_status"], "secure");
    for (name, status, why) in [
        ("danebad.test", "secure", "tlsa-mismatch"),
        ("notlsa.test", "absent", "no-tlsa"),
        ("unsignedtlsa.test", "insecure", "dnssec-insecure"),
        ("bogus.test", "bogus", "dnssec-bogus"),
    ] {
        let d = domain(&run, name);
        assert_eq!(d["mx"][0]["tlsa_status"], status, "{name}: {d:#}");
        assert_eq!(d["dane_only"], "would-defer", "{name}");
        let mut got = check_reasons(d, "dane");
        got.dedup();
        assert_eq!(got, [why], "{name}: {d:#}");
        assert_eq!(d["dane"]["recommended"], false, "{name}");
        assert!(d.get("suggestion").is_none(), "{name}: {d:#}");
    }
    // Bogus TLSA records do not stop verify.
    assert_eq!(domain(&run, "bogus.test")["verdict"], "deliverable");

    // MTA-STS.
    let sts = |n: &str| domain(&run, n)["mta_sts"].clone();
    assert_eq!(sts("sts.test")["policy"]["mode"], "enforce");
    assert_eq!(sts("sts.test")["suggested_match"], "mx.sts.test");
    let s = &domain(&run, "sts.test")["suggestion"];
    assert_eq!(s["level"], "secure", "{s}");
    assert_eq!(s["match"], "mx.sts.test", "{s}");
    assert_eq!(
        domain(&run, "sts.test")["tls_rpt"]["rua"][0],
        "mailto:tls-reports@sts.test"
    );
    assert_eq!(sts("ststesting.test")["policy"]["mode"], "testing");
    assert!(sts("ststesting.test").get("suggested_match").is_none());
    assert_eq!(sts("stsgap.test")["uncovered_mx"][0], "mx.sts.test");
    assert!(sts("stsgap.test").get("suggested_match").is_none());
    for (name, problem) in [
        ("sts404.test", "status"),
        ("stsredirect.test", "redirect"),
        ("stsbig.test", "too-large"),
        ("stsbadcert.test", "https"),
    ] {
        let s = sts(name);
        assert_eq!(s["policy_error"]["problem"], problem, "{name}: {s:#}");
        assert!(s.get("suggested_match").is_none());
    }
    assert!(sts("sts404.test")["policy_error"]["detail"] == 404);
    assert_eq!(sts("valid.test")["record"], Value::Null);

    // Expiry warnings for certificates that pass now.
    let soon = &domain(&run, "soon.test")["expiring"];
    assert_eq!(soon.as_array().unwrap().len(), 1, "{soon}");
    assert!(domain(&run, "valid.test")["expiring"]
        .as_array()
        .unwrap()
        .is_empty());

    // One connection per (MX host, address), though seven domains share mx.sts.test.
    assert_eq!(world.events_of("sts", "connect"), 1);
    assert_eq!(world.events_of("greylist", "connect"), 1);
    // Never MAIL FROM: no receiver recorded a message.
    assert!(!std::fs::read_to_string(&world.events)
        .unwrap()
        .contains("\"message\""));
    // The same facts for people (text) and for tls@bits.no (Markdown), and as overrides.
    let shown: Vec<String> = [
        "valid", "plain", "oldtls", "nointer", "hosted", "twomx", "dane", "danebad", "sts",
        "stsgap", "greylist", "nullmx",
    ]
    .iter()
    .map(|d| format!("{d}.test"))
    .collect();
    // What a server says is escaped in every format: no terminal escape, no Markdown or TOML outside a
    // code span or string, no extra line.
    for format in ["text", "markdown", "json"] {
        let mut args = probe_args(&world);
        args.extend(["--format", format, "hostile.test"].map(String::from));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, out, err) = world.bits(&args);
        assert_eq!(code, 2, "{err}");
        assert!(!out.contains('\u{1b}'), "{format}: {out:?}");
        assert!(out.contains("cleared"), "{format}: {out}");
        if format == "markdown" {
            let line = out.lines().find(|l| l.contains("cleared")).unwrap();
            assert!(
                line.starts_with("  - `mx.hostile.test") && line.ends_with('`'),
                "{line}"
            );
            assert_eq!(line.matches('`').count(), 2, "one code span: {line}");
        }
        if format == "text" {
            assert!(!out.lines().any(|l| l.starts_with("[[override]]")), "{out}");
        }
    }
    for (format, file) in [("text", "probe.txt"), ("markdown", "probe.md")] {
        let mut args = probe_args(&world);
        args.extend(["--format".to_string(), format.to_string()]);
        args.extend(shown.iter().cloned());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, out, err) = world.bits(&args);
        assert_eq!(code, 2, "{err}");
        golden(file, &blank_time(&out));
    }
    let units = run["connections"].as_u64().unwrap();
    assert_eq!(units, 20, "one per MX host and address");
    assert!(took < Duration::from_secs(15), "took {took:?}");
}

/// posttls-finger (Postfix 3.7, same OpenSSL, same resolver) in the same world: the reference for the
/// TLS verdicts at `verify` and the DANE match at `dane-only`.
fn posttls_finger(world: &ProbeWorld, conf: &PostfixDir, level: &str, domain: &str) -> String {
    let root = support::mta::postfix_root();
    let out = world
        .ns
        .command(root.join("usr/sbin/posttls-finger"))
        .env("MAIL_CONFIG", conf.path())
        .env("LD_LIBRARY_PATH", root.join("usr/lib/postfix"))
        .args([
            "-c",
            "-t",
            "5",
            "-T",
            "5",
            "-l",
            level,
            "-p",
            ">=TLSv1.2",
            "-F",
        ])
        .arg(world.pki.ca())
        .arg(domain)
        .output()
        .unwrap();
    format!("{}{}", text(&out.stdout), text(&out.stderr))
}

#[test]
fn posttls_finger_agrees_and_a_non_validating_resolver_is_flagged() {
    let mut l = layout();
    let keep = [
        "valid",
        "plain",
        "oldtls",
        "cbc",
        "expired",
        "wrongname",
        "nointer",
        "provider",
        "dane",
        "danebad",
    ];
    l.receivers.retain(|r| keep.contains(&r.name));
    l.tlsa_for.retain(|(_, r)| keep.contains(r));
    l.insecure_tlsa_for.clear();
    l.bogus_tlsa.clear();
    let world = ProbeWorld::new(&l);
    let domains: Vec<String> = [
        "valid",
        "plain",
        "oldtls",
        "cbc",
        "expired",
        "wrongname",
        "nointer",
        "hosted",
        "dane",
        "danebad",
    ]
    .iter()
    .map(|d| format!("{d}.test"))
    .collect();
    let (_, run, _) = run_json(&world, &[], &domains);
    let conf = PostfixDir::new("smtp_dns_support_level = dnssec\ndnssec_probe =\n");
    let threads: Vec<_> = domains
        .iter()
        .flat_map(|d| {
            let levels: &[&str] = if d.starts_with("dane") {
                &["verify", "dane-only"]
            } else {
                &["verify"]
            };
            levels.iter().map(move |l| (d.clone(), l.to_string()))
        })
        .collect();
    let results: Vec<(String, String, String)> = std::thread::scope(|s| {
        let handles: Vec<_> = threads
            .iter()
            .map(|(d, l)| {
                let (world, conf) = (&world, &conf);
                s.spawn(move || (d.clone(), l.clone(), posttls_finger(world, conf, l, d)))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (d, level, out) in &results {
        let theirs = out.contains("Verified TLS connection established");
        let field = if level == "verify" {
            "verify"
        } else {
            "dane_only"
        };
        let ours = domain(&run, d)[field] == "deliverable";
        assert_eq!(
            ours,
            theirs,
            "{d} at {level}: bits-tls says {}, posttls-finger says:\n{out}",
            domain(&run, d)[field]
        );
    }
    // The DANE verdicts rest on the TLSA match, as posttls-finger reports it.
    let dane_out = &results
        .iter()
        .find(|(d, l, _)| d == "dane.test" && l == "dane-only")
        .unwrap()
        .2;
    let tlsa = domain(&run, "dane.test")["mx"][0]["tlsa"][0]["data"]
        .as_str()
        .unwrap()
        .to_ascii_uppercase();
    assert!(
        dane_out.contains(&format!(
            "Matched DANE EE certificate at depth 0: 3 1 1 {tlsa}"
        )),
        "{dane_out}"
    );
    let bad_out = &results
        .iter()
        .find(|(d, l, _)| d == "danebad.test" && l == "dane-only")
        .unwrap()
        .2;
    assert!(
        bad_out.contains("no matching DANE TLSA records"),
        "{bad_out}"
    );

    // The same world through a resolver that does not validate: DANE is not usable through it.
    let (code, run, err) = run_json(
        &world,
        &["--resolver", PLAIN_RESOLVER],
        &["dane.test".to_string(), "valid.test".to_string()],
    );
    assert_eq!(code, 0, "verify still delivers: {err}");
    assert_eq!(run["resolver"]["validates"], false, "{}", run["resolver"]);
    assert!(
        run["resolver"]["detail"]
            .as_str()
            .unwrap()
            .contains("local validation (--trust-anchor) finds"),
        "{}",
        run["resolver"]
    );
    let dane = domain(&run, "dane.test");
    assert_eq!(dane["mx"][0]["tlsa_status"], "insecure");
    assert_eq!(dane["dane"]["recommended"], false);
    assert!(dane.get("suggestion").is_none());
    assert!(
        dane["dane"]["detail"]
            .as_str()
            .unwrap()
            .contains("does not validate"),
        "{dane:#}"
    );
}

/// Waits until `f` returns Some, polling.
fn poll<T>(
    what: &str,
    timeout: Duration,
    mut f: impl FnMut() -> Option<T>,
    context: impl Fn() -> String,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}\n{}",
            context()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The end-to-end proof that the advice is right: the probe suggests `dane-only` for the DANE domain
/// (and nothing for the one whose TLSA record does not match); with that override rendered into the
/// policy table, the real Postfix delivers to the first and, forced to `dane-only` anyway, defers mail
/// to the second.
#[test]
fn postfix_with_the_suggested_dane_only_override_delivers_and_defers_on_a_mismatch() {
    let mut l = layout();
    let keep = ["dane", "danebad"];
    l.receivers.retain(|r| keep.contains(&r.name));
    l.tlsa_for.retain(|(_, r)| keep.contains(r));
    l.insecure_tlsa_for.clear();
    l.bogus_tlsa.clear();
    let world = ProbeWorld::new(&l);
    let mut args = probe_args(&world);
    args.extend(["--suggest-overrides", "dane.test", "danebad.test"].map(String::from));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, suggested, err) = world.bits(&args);
    assert_eq!(code, 0, "both deliverable at verify: {err}");
    let doc: toml::Table =
        toml::from_str(&suggested).unwrap_or_else(|e| panic!("{e}: {suggested}"));
    let entries = doc["override"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{suggested}");
    assert_eq!(entries[0]["domain"].as_str(), Some("dane.test"));
    assert_eq!(entries[0]["postfix_level"].as_str(), Some("dane-only"));
    let reason = entries[0]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("bits-tls probe 20"),
        "a dated reason: {reason}"
    );
    assert!(reason.contains("RFC 7672"), "{reason}");

    // The admin adds the suggestion, and forces dane-only on the mismatching domain against it.
    let dir = world.path();
    let config = dir.join("bits-tls.toml");
    std::fs::write(
        &config,
        format!(
            "{suggested}\n[[override]]\ndomain = \"danebad.test\"\nreason = \"against the probe's advice\"\npostfix_level = \"dane-only\"\n"
        ),
    )
    .unwrap();
    let csv = dir.join("liste.csv");
    std::fs::write(&csv, "Virksomhet;Domene\nA;dane.test\nB;danebad.test\n").unwrap();
    // Probed at the levels the configuration now asks for: dane-only holds for one, not the other.
    let mut args = probe_args(&world);
    args.extend(["--format", "json", "dane.test", "danebad.test", "--config"].map(String::from));
    args.push(config.display().to_string());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, out, err) = world.bits(&args);
    assert_eq!(code, 2, "danebad.test would defer at dane-only: {err}");
    let run: Value = serde_json::from_str(&out).unwrap();
    let (good, bad) = (domain(&run, "dane.test"), domain(&run, "danebad.test"));
    assert_eq!(
        (&good["level"], &good["verdict"]),
        (&"dane-only".into(), &"deliverable".into())
    );
    assert_eq!(good["overridden"], true);
    assert_eq!(
        (&bad["level"], &bad["verdict"]),
        (&"dane-only".into(), &"would-defer".into())
    );
    assert_eq!(reasons(bad), ["tlsa-mismatch"]);
    // A domain with an [[override]] of its own gets the suggestion as a comment: a second entry
    // would make the configuration invalid.
    let other = dir.join("other.toml");
    std::fs::write(
        &other,
        "[[override]]\ndomain = \"dane.test\"\nreason = \"r\"\npostfix_match = \"hostname\"\n",
    )
    .unwrap();
    let (code, out, err) = world.bits(&[
        "--config",
        other.to_str().unwrap(),
        "probe",
        "--suggest-overrides",
        "--ca-file",
        &world.pki.ca().display().to_string(),
        "--trust-anchor",
        &world.anchor.display().to_string(),
        "dane.test",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with(
            "# dane.test already has an [[override]]; change it to this one:\n# [[override]]\n"
        ),
        "{out}"
    );
    assert!(!toml::from_str::<toml::Table>(&out)
        .unwrap()
        .contains_key("override"));
    let table = dir.join("bits_tls_policy").display().to_string();
    let ca = world.pki.ca().display().to_string();
    let out = support::bits()
        .args(["render", "postfix-policy", "-q", "--config"])
        .arg(&config)
        .arg("--source")
        .arg(&csv)
        .args(["--postfix-ca-file", &ca, "--postfix-policy-path", &table])
        .assert()
        .success();
    let policy = text(&out.get_output().stdout);
    assert!(policy.contains("\ndane.test dane-only"), "{policy}");
    assert!(policy.contains("\ndanebad.test dane-only"), "{policy}");
    std::fs::write(&table, &policy).unwrap();
    let mut main_cf = String::from(
        "myhostname = sender.test\nmydestination =\nsmtp_connect_timeout = 5s\n\
         smtp_dns_support_level = dnssec\ndnssec_probe =\n",
    );
    for (k, v) in wiring_lines(&policy) {
        main_cf.push_str(&format!("{k} = {v}\n"));
    }
    let pf = PostfixDir::new(&main_cf);
    let out = pf.postmap(&[&format!("hash:{table}")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let postfix = PostfixInstance::start_in(pf, Some(&world.ns.name));
    for to in ["a@dane.test", "b@danebad.test"] {
        let script = "import smtplib, sys\n\
                      s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]), timeout=20)\n\
                      s.sendmail('sender@sender.test', [sys.argv[2]], sys.stdin.buffer.read())\n\
                      s.quit()\n";
        let mut child = world
            .ns
            .command("python3")
            .args(["-c", script, &postfix.port.to_string(), to])
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(
                format!("From: sender@sender.test\r\nTo: {to}\r\nSubject: dane\r\n\r\nHello.\r\n")
                    .as_bytes(),
            )
            .unwrap();
        assert!(child.wait().unwrap().success(), "submitting to {to}");
    }
    let log = || postfix.conf.log();
    let status = |to: &str| {
        poll(
            &format!("Postfix to {to}"),
            Duration::from_secs(60),
            || {
                log()
                    .lines()
                    .find(|l| l.contains(&format!("to=<{to}>")) && l.contains("status="))
                    .map(String::from)
            },
            log,
        )
    };
    let sent = status("a@dane.test");
    assert!(sent.contains("status=sent"), "{sent}\n{}", log());
    assert!(
        log().contains("Verified TLS connection established to mx.dane.test"),
        "{}",
        log()
    );
    assert_eq!(world.events_of("dane", "message"), 1);
    let deferred = status("b@danebad.test");
    assert!(
        deferred.contains("status=deferred")
            && deferred.contains("Server certificate not verified"),
        "{deferred}"
    );
    assert!(
        log().contains("mx.danebad.test[127.0.0.22]:25: num=65:no matching DANE TLSA records"),
        "{}",
        log()
    );
    assert_eq!(world.events_of("danebad", "message"), 0);
}

fn golden(name: &str, actual: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/report")
        .join(name);
    if std::env::var_os("BITS_TLS_BLESS").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!("no golden file {name}; run `BITS_TLS_BLESS=1 cargo test --test probe`")
    });
    assert!(
        actual == expected,
        "{name} differs from its golden file (BITS_TLS_BLESS=1 rewrites it)\n--- expected\n{expected}\n--- actual\n{actual}"
    );
}

/// `… 9 connections in 0.4 s` → `in <SECS> s`.
fn blank_time(text: &str) -> String {
    let Some(i) = text.find(" connections in ") else {
        return text.to_string();
    };
    let start = i + " connections in ".len();
    let end = start + text[start..].find(" s").unwrap();
    format!("{}<SECS>{}", &text[..start], &text[end..])
}

/// The benchmark (not a timed test; `bash scripts/bench-probe.sh` runs it on a release build): 300
/// domains sharing 60 MX hosts (a third with DANE records), probed with the default concurrency. Prints
/// the wall time and the probe's peak memory (maximum resident set).
#[test]
#[ignore]
fn bench_300_domains_sharing_60_mx_hosts() {
    let mut l = Layout::default();
    for i in 0..60u32 {
        let name: &'static str = Box::leak(format!("bench{i}").into_boxed_str());
        let addr = format!("127.0.1.{}", i + 1);
        l.receivers.push(Receiver {
            name,
            address: addr.clone(),
            mode: "tls",
            cert_names: vec![format!("mx.{name}.test")],
            cert: CertOpts::default(),
            banner: None,
        });
        l.zone.push(format!("mx.{name} IN A {addr}"));
        if i % 3 == 0 {
            l.tlsa_for.push((format!("_25._tcp.mx.{name}"), name));
        }
    }
    let domains: Vec<String> = (0..300).map(|j| format!("d{j}.test")).collect();
    for j in 0..300 {
        l.zone.push(format!("d{j} IN MX 10 mx.bench{}", j % 60));
    }
    let world = ProbeWorld::new(&l);
    let mut args = vec![
        "-c".to_string(),
        "import resource, subprocess, sys, time\n\
         t = time.monotonic()\n\
         r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL)\n\
         print(r.returncode, time.monotonic() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
            .to_string(),
        std::env::var("BITS_TLS_PROBE_BIN")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_bits-tls").to_string()),
    ];
    args.extend(probe_args(&world));
    args.extend(["--format".into(), "json".into()]);
    args.extend(domains);
    let out = world.ns.command("python3").args(&args).output().unwrap();
    let line = text(&out.stdout);
    let f: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(
        f.first(),
        Some(&"0"),
        "every domain deliverable: {line}{}",
        text(&out.stderr)
    );
    let secs: f64 = f[1].parse().unwrap();
    let mb = f[2].parse::<f64>().unwrap() / 1024.0;
    eprintln!("bench: 300 domains, 60 MX hosts: {secs:.2} s, peak memory {mb:.1} MB");
    assert_eq!(world.events_of("bench0", "connect"), 1);
}

/// `diff --probe` and `sync --probe` show the added domains' verdicts as warnings, checking them against
/// the CA file the Postfix table is wired to (`--postfix-ca-file`); the plan and the exit codes are
/// those without `--probe`.
#[test]
fn diff_and_sync_probe_the_added_domains() {
    let mut l = layout();
    let keep = ["valid", "plain"];
    l.receivers.retain(|r| keep.contains(&r.name));
    l.tlsa_for.clear();
    l.insecure_tlsa_for.clear();
    l.bogus_tlsa.clear();
    let world = ProbeWorld::new(&l);
    std::fs::write(
        world.path().join("liste.csv"),
        "Virksomhet;Domene\nA;valid.test\nB;plain.test\n",
    )
    .unwrap();
    let ca = world.pki.ca().display().to_string();
    let common = [
        "--source",
        "liste.csv",
        "--output",
        "postfix-policy=policy",
        "--state",
        "state.json",
        "--postfix-ca-file",
        &ca,
    ];
    let args = |cmd: &'static str| -> Vec<&str> {
        let mut a = vec![cmd, "--probe"];
        a.extend(common);
        a
    };
    let (code, out, err) = world.bits(&args("diff"));
    assert_eq!(code, 2, "changes pending: {err}");
    assert!(out.contains("create policy"), "{out}");
    assert!(
        err.contains("warning: probe: added domain `plain.test` is would-defer at verify: mx.plain.test 127.0.0.12: no-starttls"),
        "{err}"
    );
    assert!(
        err.contains("probe: added domain `valid.test` is deliverable at verify"),
        "{err}"
    );
    let (code, _, err) = world.bits(&args("sync"));
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("added domain `plain.test` is would-defer"),
        "{err}"
    );
    assert!(std::fs::read_to_string(world.path().join("policy"))
        .unwrap()
        .contains("\nplain.test verify"));
    // Nothing added, nothing probed.
    let (code, _, err) = world.bits(&args("sync"));
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("probe:"), "{err}");
    // Without --probe, no probe.
    std::fs::remove_file(world.path().join("state.json")).unwrap();
    let (code, _, err) = world.bits(&["diff"].into_iter().chain(common).collect::<Vec<_>>());
    assert_eq!(code, 2);
    assert!(!err.contains("probe:"), "{err}");
    assert_eq!(
        world.events_of("plain", "connect"),
        2,
        "two probes, one connection each"
    );

    // Without DOMAINs: the effective list, as sync would write it, each at its configured level.
    std::fs::write(
        world.path().join("bits-tls.toml"),
        format!(
            "source = \"liste.csv\"\n\
             [postfix]\nca_file = \"{ca}\"\n\
             [[exclude]]\ndomain = \"plain.test\"\nreason = \"no STARTTLS, reported\"\n\
             [[extra_domains]]\ndomain = \"nullmx.test\"\nreason = \"bilateral\"\n\
             [[override]]\ndomain = \"valid.test\"\nreason = \"r\"\npostfix_level = \"secure\"\n"
        ),
    )
    .unwrap();
    let (code, out, err) = world.bits(&[
        "--config",
        "bits-tls.toml",
        "probe",
        "--format",
        "json",
        "--trust-anchor",
        &world.anchor.display().to_string(),
    ]);
    assert_eq!(code, 2, "the null MX: {err}");
    let run: Value = serde_json::from_str(&out).unwrap();
    let names: Vec<&str> = run["domains"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["domain"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["nullmx.test", "valid.test"]);
    let valid = domain(&run, "valid.test");
    assert_eq!(
        (&valid["level"], &valid["verdict"]),
        (&"secure".into(), &"deliverable".into())
    );
    assert_eq!(
        world.events_of("plain", "connect"),
        2,
        "the excluded domain is not probed"
    );
}
