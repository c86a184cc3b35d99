//! A run renders an output only when what it is rendered from changed: the state records, per output,
//! the digest of its inputs (list, local adjustments, source, options, templates, version) and of the
//! file written. Whatever changes — an input, a template, or the file on disk — the output is rendered
//! and written again exactly as before this optimisation.

mod support;

use std::path::{Path, PathBuf};
use support::bits;

struct Work {
    dir: tempfile::TempDir,
}

const LIST: &str = "Virksomhet;Org.nr;Domene;Krav 5.2.4\nBits AS;916960190;bits.no;Ja\nBank ASA;;bank.no, bank.com;Nei\n";

impl Work {
    fn new(extra: &str) -> Work {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("liste.csv"), LIST).unwrap();
        std::fs::write(
            dir.path().join("mine.j2"),
            "{% for d in domains %}{{ d.name }}\n{% endfor %}",
        )
        .unwrap();
        let config = format!(
            "source = \"liste.csv\"\n{extra}\n\
             [[output]]\ntarget = \"postfix-policy\"\npath = \"policy\"\n\
             [[output]]\ntarget = \"exim-domains\"\npath = \"exim\"\n\
             [[output]]\ntemplate = \"mine.j2\"\npath = \"mine.txt\"\n"
        );
        std::fs::write(dir.path().join("bits-tls.toml"), config).unwrap();
        Work { dir }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap()
    }

    fn run(&self, args: &[&str], code: i32) -> String {
        let out = bits()
            .current_dir(self.dir.path())
            .args(args)
            .assert()
            .code(code)
            .get_output()
            .clone();
        String::from_utf8(out.stdout).unwrap()
    }

    fn state(&self) -> serde_json::Value {
        serde_json::from_str(&self.read("bits-tls.state.json")).unwrap()
    }

    /// Every output as a fresh sync in a new directory writes it.
    fn fresh(&self, extra: &str, templates: Option<&Path>) -> Vec<String> {
        let other = Work::new(extra);
        std::fs::copy(self.path("mine.j2"), other.path("mine.j2")).unwrap();
        let mut args = vec!["sync", "-q"];
        let dir;
        if let Some(t) = templates {
            dir = t.display().to_string();
            args.extend(["--templates", &dir]);
        }
        other.run(&args, 0);
        ["policy", "exim", "mine.txt"]
            .map(|f| other.read(f))
            .to_vec()
    }

    fn outputs(&self) -> Vec<String> {
        ["policy", "exim", "mine.txt"]
            .map(|f| self.read(f))
            .to_vec()
    }
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("{:x}", sha2::Sha256::digest(bytes))
}

#[test]
fn the_state_records_each_outputs_inputs_and_file_digest() {
    let w = Work::new("");
    w.run(&["sync", "-q"], 0);
    let state = w.state();
    let rendered = state["rendered"].as_object().expect("a `rendered` map");
    assert_eq!(rendered.len(), 3, "{rendered:#?}");
    for f in ["policy", "exim", "mine.txt"] {
        let r = &rendered[&format!("./{f}")];
        assert_eq!(r["file"], sha256(&std::fs::read(w.path(f)).unwrap()), "{f}");
        assert_eq!(r["inputs"].as_str().unwrap().len(), 64, "{f}");
    }
    // A no-change run changes no file and keeps the digests.
    w.run(&["sync", "-q"], 0);
    assert_eq!(w.state()["rendered"], state["rendered"]);
    assert_eq!(w.outputs(), w.fresh("", None));
    w.run(&["check", "-q"], 0);
}

/// A file changed or removed since it was written is rendered and restored exactly, and `check` sees
/// the difference first.
#[test]
fn a_tampered_or_removed_file_is_noticed_and_restored() {
    let w = Work::new("");
    w.run(&["sync", "-q"], 0);
    let good = w.outputs();
    std::fs::write(
        w.path("policy"),
        w.read("policy").replace("bank.no", "bonk.no"),
    )
    .unwrap();
    std::fs::remove_file(w.path("exim")).unwrap();
    std::fs::write(w.path("mine.txt"), "bits.no\n").unwrap();
    let check = w.run(&["check"], 2);
    for f in ["policy", "exim", "mine.txt"] {
        assert!(
            check.contains(&format!("DIFFERS ./{f}"))
                || check.contains(&format!("MISSING ./{f}"))
                || check.contains(f),
            "{check}"
        );
    }
    assert!(!check.contains("  ok      ./policy"), "{check}");
    w.run(&["sync", "-q"], 0);
    assert_eq!(w.outputs(), good);
    w.run(&["check", "-q"], 0);
}

/// Whatever an output is rendered from — an option, a template of a `--templates` directory, a user
/// template's file, the list — changing it renders the output again, as a fresh sync would write it.
#[test]
fn any_changed_input_renders_again() {
    let w = Work::new("");
    w.run(&["sync", "-q"], 0);

    // An option (the Postfix level).
    std::fs::write(
        w.path("bits-tls.toml"),
        w.read("bits-tls.toml").replace(
            "source = \"liste.csv\"\n",
            "source = \"liste.csv\"\n[postfix]\nlevel = \"secure\"\n",
        ),
    )
    .unwrap();
    w.run(&["sync", "-q"], 0);
    assert!(
        w.read("policy").contains("bits.no secure"),
        "{}",
        w.read("policy")
    );
    assert_eq!(
        w.outputs(),
        w.fresh("[postfix]\nlevel = \"secure\"\n", None)
    );

    // A built-in template overridden from a directory.
    let templates = w.path("templates");
    std::fs::create_dir(&templates).unwrap();
    let builtin = include_str!("../templates/exim-domains.j2");
    std::fs::write(
        templates.join("exim-domains.j2"),
        format!("# local edition\n{builtin}"),
    )
    .unwrap();
    w.run(
        &[
            "sync",
            "-q",
            "--templates",
            &templates.display().to_string(),
        ],
        0,
    );
    assert!(
        w.read("exim").starts_with("# local edition\n"),
        "{}",
        w.read("exim")
    );
    assert_eq!(
        w.outputs(),
        w.fresh("[postfix]\nlevel = \"secure\"\n", Some(&templates))
    );

    // A user template's file.
    std::fs::write(
        w.path("mine.j2"),
        "{% for d in domains %}{{ d.name }} forced\n{% endfor %}",
    )
    .unwrap();
    w.run(
        &[
            "sync",
            "-q",
            "--templates",
            &templates.display().to_string(),
        ],
        0,
    );
    assert_eq!(
        w.read("mine.txt"),
        "bank.com forced\nbank.no forced\nbits.no forced\n"
    );

    // A local adjustment.
    std::fs::write(
        w.path("bits-tls.toml"),
        format!(
            "{}\n[[exclude]]\ndomain = \"bank.com\"\nreason = \"test\"\n",
            w.read("bits-tls.toml")
        ),
    )
    .unwrap();
    w.run(
        &[
            "sync",
            "-q",
            "--templates",
            &templates.display().to_string(),
        ],
        0,
    );
    assert_eq!(w.read("mine.txt"), "bank.no forced\nbits.no forced\n");
    assert!(!w.read("exim").lines().any(|l| l == "bank.com"));
}
