//! End-to-end: `sync`, `diff` and `check` in temporary directories against the local HTTP server.
//! Every failure must leave the outputs and the state exactly as they were.

mod support;

use predicates::prelude::*;
use std::path::{Path, PathBuf};
use std::time::Duration;
use support::{bits, Reply, Server};

/// A list with `n` participants, one domain each (`d0.no` …), optionally leaving some out or adding some.
fn list(domains: &[String]) -> String {
    let mut s = String::from("Virksomhet;Org.nr;Domene;Krav 5.2.4\n");
    for (i, d) in domains.iter().enumerate() {
        s.push_str(&format!("Deltaker {i};;{d};Ja\n"));
    }
    s
}

fn names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("d{i}.no")).collect()
}

/// A mail-config directory: a config, outputs under `out/`, state and history beside the config.
struct Work {
    dir: tempfile::TempDir,
    server: Server,
}

impl Work {
    fn new(domains: &[String], extra_config: &str) -> Work {
        let server = Server::start(vec![("/liste.csv", vec![Reply::csv(list(domains))])]);
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("out")).unwrap();
        let config = format!(
            "source = \"{}\"\nallow_http = true\ntimeout = 2\n\n{extra_config}\n\
             [[output]]\ntarget = \"postfix-policy\"\npath = \"out/policy\"\n\
             hook = [\"sh\", \"-c\", \"echo $0 >> hooks.log\", \"{{path}}\"]\n\
             [[output]]\ntarget = \"exim-domains\"\npath = \"out/exim\"\n",
            server.url("/liste.csv")
        );
        std::fs::write(dir.path().join("bits-tls.toml"), config).unwrap();
        Work { dir, server }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn read(&self, rel: &str) -> Option<String> {
        std::fs::read_to_string(self.path(rel)).ok()
    }

    fn cmd(&self, args: &[&str]) -> assert_cmd::assert::Assert {
        bits().current_dir(self.dir.path()).args(args).assert()
    }

    fn serve(&self, domains: &[String]) {
        self.server
            .set("/liste.csv", vec![Reply::csv(list(domains))]);
    }

    /// Outputs, state and history, to compare before and after a failed run.
    fn snapshot(&self) -> Vec<(String, Option<Vec<u8>>)> {
        [
            "out/policy",
            "out/exim",
            "bits-tls.state.json",
            "bits-tls.history.jsonl",
            "hooks.log",
        ]
        .iter()
        .map(|f| (f.to_string(), std::fs::read(self.path(f)).ok()))
        .collect()
    }

    fn history_lines(&self) -> usize {
        self.read("bits-tls.history.jsonl")
            .map_or(0, |h| h.lines().count())
    }

    fn state(&self) -> serde_json::Value {
        serde_json::from_str(&self.read("bits-tls.state.json").expect("state exists")).unwrap()
    }
}

fn mtime(p: &Path) -> std::time::SystemTime {
    std::fs::metadata(p).unwrap().modified().unwrap()
}

#[test]
fn first_sync_writes_everything_second_is_a_no_op() {
    let w = Work::new(&names(12), "");
    w.cmd(&["diff"])
        .code(2)
        .stdout(predicate::str::contains("12 joined").and(predicate::str::contains("create")));
    w.cmd(&["sync"])
        .success()
        .stdout(predicate::str::contains("applied the Bits list"));
    let policy = w.read("out/policy").unwrap();
    assert!(policy.contains("\nd0.no verify protocols=") && policy.contains("\nd11.no verify"));
    assert_eq!(
        w.read("out/exim")
            .unwrap()
            .lines()
            .filter(|l| l.ends_with(".no"))
            .count(),
        12
    );
    // The hook ran once, with {path} replaced by the output's path (relative to the config file).
    assert_eq!(w.read("hooks.log").unwrap(), "./out/policy\n");
    assert_eq!(w.history_lines(), 1);
    let state = w.state();
    assert_eq!(state["version"], 1);
    assert_eq!(state["participants"].as_array().unwrap().len(), 12);

    let (m_policy, m_exim) = (mtime(&w.path("out/policy")), mtime(&w.path("out/exim")));
    std::thread::sleep(Duration::from_millis(1100));
    w.cmd(&["sync"]).code(0).stdout("").stderr("");
    assert_eq!(mtime(&w.path("out/policy")), m_policy, "untouched");
    assert_eq!(mtime(&w.path("out/exim")), m_exim);
    assert_eq!(w.history_lines(), 1, "no change, no history line");
    assert_eq!(
        w.read("hooks.log").unwrap().lines().count(),
        1,
        "no hook for an unchanged file"
    );
    assert_ne!(
        w.state()["last_checked"],
        state["last_checked"],
        "the check is recorded"
    );
    assert_eq!(w.state()["last_changed"], state["last_changed"]);
    w.cmd(&["diff"]).code(0);
    w.cmd(&["check"]).code(0);
    w.cmd(&["sync", "--detailed-exitcode"]).code(0);
}

#[test]
fn changed_list_gives_the_right_plan_and_files() {
    let w = Work::new(&names(12), "");
    w.cmd(&["sync"]).success();
    let mut next = names(12);
    next.remove(3);
    next.push("ny-bank.no".into());
    w.serve(&next);
    let out = w.cmd(&["diff", "--format", "json"]).code(2);
    let plan: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(
        plan["changes"]["domains_added"],
        serde_json::json!(["ny-bank.no"])
    );
    assert_eq!(
        plan["changes"]["domains_removed"],
        serde_json::json!(["d3.no"])
    );
    assert_eq!(plan["files"][0]["status"], "update");
    assert!(plan["files"][0]["diff"]
        .as_str()
        .unwrap()
        .contains("\n-d3.no verify"));
    assert!(plan["files"][0]["diff"]
        .as_str()
        .unwrap()
        .contains("\n+ny-bank.no verify"));
    assert_eq!(
        plan["participants"].as_array().unwrap().len(),
        12,
        "the fetch shape"
    );
    w.cmd(&["diff", "--format", "markdown"])
        .code(2)
        .stdout(predicate::str::contains("### bits-tls").and(predicate::str::contains("```diff")));

    w.cmd(&["sync", "--detailed-exitcode"])
        .code(2)
        .stdout(predicate::str::contains("+ ny-bank.no").and(predicate::str::contains("- d3.no")));
    let policy = w.read("out/policy").unwrap();
    assert!(policy.contains("\nny-bank.no verify") && !policy.contains("\nd3.no "));
    assert_eq!(w.history_lines(), 2);
    let last: serde_json::Value = serde_json::from_str(
        w.read("bits-tls.history.jsonl")
            .unwrap()
            .lines()
            .last()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(last["domains_added"], serde_json::json!(["ny-bank.no"]));
    assert_eq!(last["domains_removed"], serde_json::json!(["d3.no"]));
    assert_eq!(last["forced"], false);
    assert!(
        w.path("out/policy.bak.1").exists(),
        "the previous version is kept"
    );
}

#[test]
fn shrunk_list_is_refused_then_forced() {
    let w = Work::new(&names(20), "");
    w.cmd(&["sync"]).success();
    let before = w.snapshot();
    w.serve(&names(17));
    w.cmd(&["diff"])
        .code(3)
        .stdout(predicate::str::contains("would be refused"));
    // Short, for a cron mail repeated on every run: counts and where to look, not the whole plan.
    w.cmd(&["sync"]).code(3).stdout("").stderr(
        predicate::str::contains("removes 3 of 20 domains (15 %)")
            .and(predicate::str::contains("3 removed"))
            .and(predicate::str::contains("bits-tls diff"))
            .and(predicate::str::contains(w.server.url("/liste.csv")))
            .and(predicate::str::contains("--force")),
    );
    assert_eq!(w.snapshot(), before, "nothing written");
    w.cmd(&["sync", "--force"]).success();
    assert!(!w.read("out/policy").unwrap().contains("\nd19.no "));
    let last = w.read("bits-tls.history.jsonl").unwrap();
    assert!(last.lines().last().unwrap().contains("\"forced\":true"));
}

#[test]
fn empty_list_is_refused() {
    let w = Work::new(&names(3), "");
    w.cmd(&["sync"]).success();
    let before = w.snapshot();
    w.serve(&[]);
    w.cmd(&["sync"])
        .code(3)
        .stderr(predicate::str::contains("holds no domains"));
    assert_eq!(w.snapshot(), before);
    // Without any state too.
    let fresh = Work::new(&[], "");
    fresh.cmd(&["sync"]).code(3);
    assert!(fresh.read("out/policy").is_none() && fresh.read("bits-tls.state.json").is_none());
}

#[test]
fn failing_fetch_writes_nothing() {
    let w = Work::new(&names(12), "");
    w.cmd(&["sync"]).success();
    let before = w.snapshot();
    for (reply, needle) in [
        (Reply::status(500), "HTTP 500"),
        (
            Reply::csv(list(&names(12))).delay(Duration::from_secs(3)),
            "timed out",
        ),
        (Reply::csv(list(&names(12))).cut_after(30), "cut short"),
        (
            Reply::html("<html><body>Logg inn</body></html>"),
            "found no list on the page",
        ),
    ] {
        w.server.set("/liste.csv", vec![reply]);
        w.cmd(&["sync"])
            .code(1)
            .stderr(predicate::str::contains(needle));
        assert_eq!(w.snapshot(), before, "after {needle}");
    }
}

#[test]
fn failing_hook_rolls_back() {
    let w = Work::new(&names(12), "");
    w.cmd(&["sync"]).success();
    let before = w.snapshot();
    let config = w
        .read("bits-tls.toml")
        .unwrap()
        .replace("echo $0 >> hooks.log", "echo broken >&2; exit 7");
    std::fs::write(w.path("bits-tls.toml"), config).unwrap();
    let before: Vec<_> = before
        .into_iter()
        .filter(|(f, _)| f != "hooks.log")
        .collect();
    w.serve(&names(13));
    w.cmd(&["sync"]).code(1).stderr(
        predicate::str::contains("failed (exit status: 7)")
            .and(predicate::str::contains("the previous files were put back"))
            .and(predicate::str::contains("broken")),
    );
    let after: Vec<_> = w
        .snapshot()
        .into_iter()
        .filter(|(f, _)| f != "hooks.log")
        .collect();
    assert_eq!(after, before);
}

#[test]
fn unwritable_directory_fails_with_nothing_half_written() {
    let w = Work::new(&names(12), "");
    w.cmd(&["sync"]).success();
    let before = w.snapshot();
    // The kernel refuses new files in /sys even to root; elsewhere a read-only directory does.
    let readonly = if support::mta::text(
        &std::process::Command::new("id")
            .arg("-u")
            .output()
            .unwrap()
            .stdout,
    )
    .trim()
        == "0"
    {
        PathBuf::from("/sys")
    } else {
        let d = w.path("ro");
        std::fs::create_dir(&d).unwrap();
        std::fs::set_permissions(&d, std::os::unix::fs::PermissionsExt::from_mode(0o555)).unwrap();
        d
    };
    let config = w.read("bits-tls.toml").unwrap()
        + &format!(
            "[[output]]\ntarget = \"postfix-senders\"\npath = \"{}/bits_tls_senders\"\n",
            readonly.display()
        );
    std::fs::write(w.path("bits-tls.toml"), config).unwrap();
    w.serve(&names(13));
    w.cmd(&["sync"]).code(1).stderr(
        predicate::str::contains("could not write")
            .and(predicate::str::contains("bits_tls_senders")),
    );
    assert_eq!(w.snapshot(), before, "no output replaced, state as it was");
    let leftovers: Vec<String> = std::fs::read_dir(w.path("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("bits-tls-tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn concurrent_syncs_never_interleave() {
    let w = Work::new(&names(12), "[safety]\nlock_timeout = 0\n");
    w.server.set(
        "/liste.csv",
        vec![Reply::csv(list(&names(12))).delay(Duration::from_millis(1500))],
    );
    let first = support::bits_std()
        .current_dir(w.dir.path())
        .arg("sync")
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(400));
    w.cmd(&["sync"])
        .code(1)
        .stderr(predicate::str::contains("holds the lock"));
    let status = first.wait_with_output().unwrap().status;
    assert!(status.success());
    assert_eq!(w.history_lines(), 1);
    // With time to wait, the second run waits its turn and then has nothing to do.
    let config = w
        .read("bits-tls.toml")
        .unwrap()
        .replace("lock_timeout = 0", "lock_timeout = 20");
    std::fs::write(w.path("bits-tls.toml"), config).unwrap();
    w.serve(&names(13));
    let spawn = || {
        support::bits_std()
            .current_dir(w.dir.path())
            .args(["sync", "-q"])
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    assert!(a.wait_with_output().unwrap().status.success());
    assert!(b.wait_with_output().unwrap().status.success());
    assert_eq!(w.history_lines(), 2, "one change, recorded once");
}

#[test]
fn managed_block_keeps_the_surrounding_bytes() {
    let w = Work::new(&names(12), "");
    let own = "# Local policy entries, maintained by hand\r\n[relay.example]:25 secure\r\nexample.org encrypt\n";
    std::fs::write(w.path("out/policy"), own).unwrap();
    w.cmd(&["sync"]).success();
    let policy = w.read("out/policy").unwrap();
    assert!(policy.starts_with(own), "{policy}");
    assert!(
        policy.contains("# BEGIN bits-tls <managed block")
            && policy
                .trim_end()
                .ends_with("# END bits-tls <managed block>")
    );
    // Lines added after the block survive the next change too.
    std::fs::write(
        w.path("out/policy"),
        format!("{policy}tail.example verify\n"),
    )
    .unwrap();
    w.serve(&names(13));
    w.cmd(&["sync"]).success();
    let policy = w.read("out/policy").unwrap();
    assert!(
        policy.starts_with(own)
            && policy.ends_with("# END bits-tls <managed block>\ntail.example verify\n")
    );
    assert!(policy.contains("\nd12.no verify"));
    w.cmd(&["check"]).code(0);
}

#[test]
fn expired_exclusion_warns_and_stops_applying() {
    let extra = "own_domains = [\"d0.no\"]\n\
                 [[exclude]]\ndomain = \"d1.no\"\nreason = \"broken certificate\"\nexpires = 2020-01-01\n\
                 [[exclude]]\ndomain = \"d2.no\"\nreason = \"broken certificate\"\nexpires = 2999-01-01\n\
                 [[extra_domains]]\ndomain = \"partner.no\"\nreason = \"bilateral agreement\"\n";
    let w = Work::new(&names(12), extra);
    w.cmd(&["sync"]).success().stderr(predicate::str::contains(
        "exclusion of `d1.no` expired after 2020-01-01",
    ));
    let policy = w.read("out/policy").unwrap();
    assert!(
        policy.contains("\nd1.no verify"),
        "expired exclusion no longer applies"
    );
    assert!(!policy.contains("\nd2.no "), "active exclusion applies");
    assert!(!policy.contains("\nd0.no "), "own domain left out");
    assert!(policy.contains("# Local addition: bilateral agreement\npartner.no verify"));
    // The warning repeats on every run until the entry is removed.
    w.cmd(&["sync"])
        .success()
        .stderr(predicate::str::contains("expired after 2020-01-01"));
}

#[test]
fn check_returns_0_2_and_4() {
    let w = Work::new(&names(12), "");
    w.cmd(&["check"]).code(1).stderr(
        predicate::str::contains("there is no state").and(predicate::str::contains("hint:")),
    );
    w.cmd(&["sync"]).success();
    w.cmd(&["check"])
        .code(0)
        .stdout(predicate::str::contains("ok"));
    // No network needed: the list's server answers nothing any more.
    w.server.set("/liste.csv", vec![Reply::status(500)]);
    w.cmd(&["check"]).code(0);
    // Drift: a hand edit, then a deleted file.
    let good = w.read("out/exim").unwrap();
    std::fs::write(w.path("out/exim"), good.replace("d4.no\n", "")).unwrap();
    w.cmd(&["check"])
        .code(2)
        .stdout(predicate::str::contains("DIFFERS").and(predicate::str::contains("+d4.no")));
    w.cmd(&["check", "--format", "json"])
        .code(2)
        .stdout(predicate::str::contains("\"stale\": false"));
    std::fs::remove_file(w.path("out/exim")).unwrap();
    w.cmd(&["check"]).code(2);
    std::fs::write(w.path("out/exim"), &good).unwrap();
    w.cmd(&["check"]).code(0);
    // Stale: the last successful check is older than --max-age (default 92 days).
    let mut state = w.state();
    state["last_checked"] = serde_json::json!("2026-01-01T00:00:00Z");
    std::fs::write(w.path("bits-tls.state.json"), state.to_string()).unwrap();
    w.cmd(&["check"])
        .code(4)
        .stdout(predicate::str::contains("STALE"));
    w.cmd(&["check", "--max-age", "100000"]).code(0);
    w.cmd(&["check", "--max-age", "0"]).code(4);
    // Drift outranks staleness.
    std::fs::write(w.path("out/exim"), "").unwrap();
    w.cmd(&["check"]).code(2);
}

#[test]
fn check_online_compares_with_the_live_list() {
    let w = Work::new(&names(12), "");
    w.cmd(&["sync"]).success();
    w.cmd(&["check", "--online"]).code(0);
    w.serve(&names(13));
    w.cmd(&["check", "--online"]).code(2).stdout(
        predicate::str::contains("Against the live list").and(predicate::str::contains("1 joined")),
    );
}

#[test]
fn conditional_requests_and_not_modified() {
    let w = Work::new(&names(12), "");
    w.server.set(
        "/liste.csv",
        vec![Reply::csv(list(&names(12))).header("ETag", "\"v1\"")],
    );
    w.cmd(&["sync"]).success();
    assert_eq!(w.state()["validators"]["csv"]["etag"], "\"v1\"");
    let checked = w.state()["last_checked"].clone();
    std::thread::sleep(Duration::from_millis(1100));
    w.server.set("/liste.csv", vec![Reply::new(304, "")]);
    w.cmd(&["sync"]).code(0).stdout("");
    let seen = w.server.hits("/liste.csv");
    assert_eq!(
        seen.last()
            .unwrap()
            .headers
            .get("if-none-match")
            .map(String::as_str),
        Some("\"v1\"")
    );
    assert_ne!(
        w.state()["last_checked"],
        checked,
        "a 304 counts as a successful check"
    );
    assert_eq!(w.history_lines(), 1);
}

#[test]
fn bad_state_and_config_are_clear_errors() {
    let w = Work::new(&names(12), "");
    std::fs::write(w.path("bits-tls.state.json"), "{ broken").unwrap();
    w.cmd(&["sync"]).code(1).stderr(
        predicate::str::contains("is not valid")
            .and(predicate::str::contains("never replaced silently")),
    );
    assert_eq!(w.read("bits-tls.state.json").unwrap(), "{ broken");
    std::fs::write(w.path("bits-tls.state.json"), "{\"version\": 9}").unwrap();
    w.cmd(&["diff"])
        .code(1)
        .stderr(predicate::str::contains("version 9").and(predicate::str::contains("upgrade")));
    std::fs::remove_file(w.path("bits-tls.state.json")).unwrap();
    let config = w.read("bits-tls.toml").unwrap() + "[safety]\nmax_removed_pct = 5\n";
    std::fs::write(w.path("bits-tls.toml"), config).unwrap();
    w.cmd(&["sync"]).code(1).stderr(
        predicate::str::contains("bits-tls.toml").and(predicate::str::contains("max_removed_pct")),
    );
    assert!(w.read("out/policy").is_none());
}

#[test]
fn init_writes_a_starter_and_keeps_an_existing_file() {
    let dir = tempfile::tempdir().unwrap();
    bits()
        .current_dir(dir.path())
        .arg("init")
        .assert()
        .success();
    let text = std::fs::read_to_string(dir.path().join("bits-tls.toml")).unwrap();
    assert!(text.contains("[[output]]") && text.contains("max_removed_percent"));
    bits()
        .current_dir(dir.path())
        .arg("init")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("--force"));
    bits()
        .current_dir(dir.path())
        .args(["init", "--force"])
        .assert()
        .success();
    // The starter is a working configuration (its output is under /etc, so only diff is run).
    bits()
        .current_dir(dir.path())
        .args(["diff", "--source", support::example_csv().to_str().unwrap()])
        .assert()
        .code(2)
        .stdout(predicate::str::contains(
            "create /etc/postfix/bits_tls_policy",
        ));
}

#[test]
fn per_domain_override_changes_only_that_domain() {
    let extra = "[[override]]\ndomain = \"D1.no\"\nreason = \"publishes TLSA under DNSSEC\"\npostfix_level = \"dane-only\"\n\
                 [[override]]\ndomain = \"d2.no\"\nreason = \"hosted at Microsoft 365\"\npostfix_level = \"secure\"\n\
                 postfix_match = \"nexthop:dot-nexthop:.protection.outlook.com\"\n";
    let w = Work::new(&names(12), extra);
    w.cmd(&["sync"]).success();
    let policy = w.read("out/policy").unwrap();
    assert!(
        policy.contains("\nd1.no dane-only protocols=!SSLv2:!SSLv3:!TLSv1:!TLSv1.1\n"),
        "{policy}"
    );
    assert!(policy.contains("\nd2.no secure protocols=!SSLv2:!SSLv3:!TLSv1:!TLSv1.1 match=nexthop:dot-nexthop:.protection.outlook.com\n"));
    assert!(policy.contains("\nd3.no verify protocols="));
    let bad = Work::new(&names(12), "[[override]]\ndomain = \"d1.no\"\nreason = \"x\"\npostfix_level = \"encrypt\"\npostfix_match = \"nexthop\"\n");
    bad.cmd(&["sync"])
        .code(1)
        .stderr(predicate::str::contains("override.postfix_match"));
    let no_reason = Work::new(
        &names(12),
        "[[override]]\ndomain = \"d1.no\"\nreason = \"\"\npostfix_level = \"secure\"\n",
    );
    no_reason
        .cmd(&["sync"])
        .code(1)
        .stderr(predicate::str::contains("override.reason"));
}

#[test]
fn a_new_page_date_is_recorded_even_with_the_same_csv() {
    let w = Work::new(&names(12), "");
    let page = |date: &str| {
        format!("<html><body><p>Oppdatert: {date}</p><a href=\"/liste.csv\">Domeneliste tvungen TLS i CSV</a></body></html>")
    };
    w.server
        .set("/tls", vec![Reply::html(page("16. november 2021"))]);
    let config = w
        .read("bits-tls.toml")
        .unwrap()
        .replace(&w.server.url("/liste.csv"), &w.server.url("/tls"));
    std::fs::write(w.path("bits-tls.toml"), config).unwrap();
    w.cmd(&["sync"]).success();
    assert!(w
        .read("out/policy")
        .unwrap()
        .contains("(updated 2021-11-16)"));
    w.cmd(&["sync"]).code(0).stdout("");
    w.server
        .set("/tls", vec![Reply::html(page("3. mars 2025"))]);
    // The same participants: recorded (state and history), but no file rewritten for a header date.
    w.cmd(&["sync"])
        .success()
        .stdout(predicate::str::contains("recorded the list's new source"));
    assert!(w
        .read("out/policy")
        .unwrap()
        .contains("(updated 2021-11-16)"));
    assert_eq!(w.state()["source"]["page_updated"], "2025-03-03");
    assert_eq!(w.history_lines(), 2);
    w.cmd(&["sync"]).code(0).stdout("");
    w.cmd(&["check"]).code(0);
}

/// A page that links `csv_path`, with `ETag: etag`.
fn page(csv_path: &str, etag: &str) -> Reply {
    Reply::html(format!(
        "<html><body><p>Oppdatert: 16. november 2021</p>\
         <a href=\"{csv_path}\">Domeneliste tvungen TLS i CSV</a></body></html>"
    ))
    .header("ETag", etag)
}

/// A mail-config directory whose source is the page at `/tls`, which links `/liste.csv`; synced once.
fn page_work() -> Work {
    let w = Work::new(&names(12), "");
    w.server.set("/tls", vec![page("/liste.csv", "\"p1\"")]);
    w.server.set(
        "/liste.csv",
        vec![Reply::csv(list(&names(12))).header("ETag", "\"c1\"")],
    );
    let config = w
        .read("bits-tls.toml")
        .unwrap()
        .replace(&w.server.url("/liste.csv"), &w.server.url("/tls"));
    std::fs::write(w.path("bits-tls.toml"), config).unwrap();
    w.cmd(&["sync"]).success();
    assert_eq!(w.state()["validators"]["page"]["etag"], "\"p1\"");
    assert_eq!(w.state()["validators"]["csv"]["etag"], "\"c1\"");
    w
}

fn last_header(w: &Work, path: &str, header: &str) -> Option<String> {
    w.server
        .hits(path)
        .last()
        .unwrap()
        .headers
        .get(header)
        .cloned()
}

#[test]
fn page_not_modified_but_its_csv_changed() {
    let w = page_work();
    w.server.set("/tls", vec![Reply::new(304, "")]);
    w.server
        .set("/liste.csv", vec![Reply::csv(list(&names(13)))]);
    w.cmd(&["sync"])
        .success()
        .stdout(predicate::str::contains("+ d12.no"));
    assert_eq!(
        last_header(&w, "/tls", "if-none-match").as_deref(),
        Some("\"p1\"")
    );
    assert_eq!(
        last_header(&w, "/liste.csv", "if-none-match").as_deref(),
        Some("\"c1\""),
        "behind an unchanged page the CSV is still asked for, conditionally"
    );
    assert!(w.read("out/policy").unwrap().contains("d12.no verify"));
}

#[test]
fn page_changed_but_its_csv_not_modified() {
    let w = page_work();
    w.server.set("/tls", vec![page("/liste.csv", "\"p2\"")]);
    w.server.set("/liste.csv", vec![Reply::new(304, "")]);
    let before = w.snapshot();
    w.cmd(&["sync"]).success().stdout("");
    assert_eq!(w.snapshot()[..2], before[..2], "outputs untouched");
    assert_eq!(
        last_header(&w, "/liste.csv", "if-none-match").as_deref(),
        Some("\"c1\"")
    );
    assert_eq!(
        w.state()["validators"]["page"]["etag"],
        "\"p2\"",
        "the page's new validators are kept"
    );
    assert_eq!(w.state()["validators"]["csv"]["etag"], "\"c1\"");
    assert_eq!(w.history_lines(), 1);
}

#[test]
fn validators_are_not_sent_to_another_source() {
    let w = page_work();
    let other = Server::start(vec![("/liste.csv", vec![Reply::csv(list(&names(12)))])]);
    // (The plan differs only in where the list came from.)
    w.cmd(&["diff", "--source", &other.url("/liste.csv")]);
    let hit = other.hits("/liste.csv");
    assert!(
        !hit[0].headers.contains_key("if-none-match"),
        "validators of {} were sent to another source: {:?}",
        w.server.url("/tls"),
        hit[0].headers
    );
}

#[test]
fn csv_moved_to_a_new_link_with_the_same_bytes() {
    let w = page_work();
    w.server.set("/tls", vec![page("/ny/liste.csv", "\"p2\"")]);
    w.server.set(
        "/ny/liste.csv",
        vec![Reply::csv(list(&names(12))).header("ETag", "\"n1\"")],
    );
    w.cmd(&["sync"]).success();
    assert!(
        !w.server.hits("/ny/liste.csv")[0]
            .headers
            .contains_key("if-none-match"),
        "the old link's validators are not sent to the new link"
    );
    assert_eq!(w.state()["source"]["csv"], w.server.url("/ny/liste.csv"));
    assert_eq!(w.state()["validators"]["csv"]["etag"], "\"n1\"");
    // The next run, behind an unchanged page, asks the new link, not the old one.
    w.server.set("/tls", vec![Reply::new(304, "")]);
    w.server.set("/liste.csv", vec![Reply::status(404)]);
    w.server.set("/ny/liste.csv", vec![Reply::new(304, "")]);
    w.cmd(&["sync"]).success().stdout("");
    assert_eq!(
        last_header(&w, "/ny/liste.csv", "if-none-match").as_deref(),
        Some("\"n1\"")
    );
}

/// A reader that goes away (`| head -1`) must not turn drift, pending changes or a refusal into 0, and
/// the diagnostics still reach stderr.
#[test]
fn closed_stdout_keeps_the_real_exit_code() {
    let w = Work::new(&names(12), "");
    w.cmd(&["sync"]).success();
    let run = |args: &[&str]| {
        let mut cmd = support::bits_std();
        cmd.current_dir(w.dir.path()).args(args);
        support::with_closed_stdout(cmd)
    };
    std::fs::write(w.path("out/exim"), "hand edit\n").unwrap();
    let (code, stderr) = run(&["check"]);
    assert_eq!(code, Some(2), "drift: {stderr}");
    assert!(!stderr.contains("Broken pipe"), "{stderr}");
    w.cmd(&["sync"]).success();
    w.serve(&names(13));
    assert_eq!(run(&["diff"]).0, Some(2), "pending changes");
    assert_eq!(run(&["diff", "--format", "json"]).0, Some(2));
    w.serve(&names(6));
    let (code, stderr) = run(&["sync", "-q"]);
    assert_eq!(code, Some(3), "a refusal: {stderr}");
    assert!(stderr.contains("error: refused"), "{stderr}");
    assert!(stderr.contains("hint:"), "{stderr}");
}

/// The same participants from a moved or re-encoded CSV: the new source is recorded (state and history)
/// without rewriting a file or running a hook, and `check` still finds the files as they should be.
#[test]
fn a_list_that_only_moved_or_was_re_encoded_changes_no_file() {
    let w = page_work();
    let before = w.snapshot();
    let hooks = w.read("hooks.log");
    // Moved to a new link, same bytes.
    w.server.set("/tls", vec![page("/ny/liste.csv", "\"p2\"")]);
    w.server
        .set("/ny/liste.csv", vec![Reply::csv(list(&names(12)))]);
    w.cmd(&["diff"])
        .code(0)
        .stdout(predicate::str::contains("the list moved or was re-encoded"));
    w.cmd(&["sync"])
        .success()
        .stdout(predicate::str::contains("recorded the list's new source"));
    assert_eq!(w.snapshot()[..2], before[..2], "no output rewritten");
    assert_eq!(w.read("hooks.log"), hooks, "no hook ran");
    assert_eq!(w.state()["source"]["csv"], w.server.url("/ny/liste.csv"));
    let history = w.read("bits-tls.history.jsonl").unwrap();
    assert!(
        history
            .lines()
            .last()
            .unwrap()
            .contains("\"provenance_only\":true"),
        "{history}"
    );
    w.cmd(&["check"]).code(0);
    // Re-encoded: the same rows with CRLF line ends.
    w.server.set(
        "/ny/liste.csv",
        vec![Reply::csv(list(&names(12)).replace('\n', "\r\n"))],
    );
    w.cmd(&["sync"])
        .success()
        .stdout(predicate::str::contains("recorded the list's new source"));
    assert_eq!(w.snapshot()[..2], before[..2]);
    w.cmd(&["check"]).code(0);
    // A real change afterwards writes the files with the current source in their headers.
    w.serve(&names(13));
    w.server
        .set("/ny/liste.csv", vec![Reply::csv(list(&names(13)))]);
    w.cmd(&["sync"])
        .success()
        .stdout(predicate::str::contains("+ d12.no"));
    assert!(w
        .read("out/policy")
        .unwrap()
        .contains(&w.server.url("/ny/liste.csv")));
    assert!(w.state().get("rendered_from").is_none());
    w.cmd(&["check"]).code(0);
}
