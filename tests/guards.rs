//! The guards against a list that shrinks or grows too much: measured against the previous list and,
//! for removals, against a baseline (the list at the last forced sync, or up to `baseline_days` ago), so
//! that repeated small cuts cannot add up unseen.

mod support;

use support::{bits, Reply, Server};

fn list(domains: &[String]) -> String {
    let mut s = String::from("Virksomhet;Org.nr;Domene;Krav 5.2.4\n");
    for (i, d) in domains.iter().enumerate() {
        s.push_str(&format!("Deltaker {i};;{d};Ja\n"));
    }
    s
}

fn names(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("d{i}.no")).collect()
}

struct Work {
    dir: tempfile::TempDir,
    server: Server,
}

impl Work {
    fn new(domains: &[String]) -> Work {
        let server = Server::start(vec![("/liste.csv", vec![Reply::csv(list(domains))])]);
        let dir = tempfile::tempdir().unwrap();
        let config = format!(
            "source = \"{}\"\nallow_http = true\n\n\
             [[output]]\ntarget = \"postfix-policy\"\npath = \"policy\"\n",
            server.url("/liste.csv")
        );
        std::fs::write(dir.path().join("bits-tls.toml"), config).unwrap();
        Work { dir, server }
    }

    fn sync(&self, domains: &[String], args: &[&str]) -> assert_cmd::assert::Assert {
        self.server
            .set("/liste.csv", vec![Reply::csv(list(domains))]);
        bits()
            .current_dir(self.dir.path())
            .arg("sync")
            .args(args)
            .assert()
    }
}

/// 14 syncs that each cut under 10 % took 298 domains to 83 with no refusal. Now the cuts add up
/// against the baseline: the second 6 % cut (12 % of the baseline) is refused.
#[test]
fn repeated_small_cuts_trip_the_guard_against_the_baseline() {
    let w = Work::new(&names(0..100));
    w.sync(&names(0..100), &[]).success();
    w.sync(&names(6..100), &[]).success();
    w.sync(&names(12..100), &[])
        .code(3)
        .stderr(predicates::str::contains(
            "removes 12 of the 100 domains listed on",
        ));
    // Confirmed with --force, the list becomes the new baseline: the next small cut goes through.
    w.sync(&names(12..100), &["--force"]).success();
    w.sync(&names(18..100), &[]).success();
    w.sync(&names(24..100), &[]).code(3);
}

/// A list that suddenly grows by more than `max_added_percent` is refused too.
#[test]
fn a_list_that_grows_too_much_is_refused() {
    let w = Work::new(&names(0..20));
    w.sync(&names(0..20), &[]).success();
    w.sync(&names(0..35), &[])
        .code(3)
        .stderr(predicates::str::contains(
            "adds 15 domains to the 20 listed (75 %), more than the 50 % allowed",
        ));
    w.sync(&names(0..29), &[]).success();
    w.sync(&names(0..60), &["--force"]).success();
}
