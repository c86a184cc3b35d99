//! Exim as a Debian administrator runs it: Debian's own exim4-config (the split `conf.d` and the
//! non-split `exim4.conf.template`, unpacked by scripts/setup-test-tools.sh) in a directory of its own,
//! bits-tls's Exim pieces written into it by `bits-tls sync` where each belongs, the whole assembled by
//! Debian's own update-exim4.conf, and the real Exim run on the result.

use super::mta::{exim_binary, run, text, tools_dir, write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const SETUP: &str = "run `sudo bash scripts/setup-test-tools.sh` first (CI runs it from .ci/run)";

/// Debian's exim4-config package, unpacked.
pub fn debian_root() -> PathBuf {
    let root = tools_dir().join("exim4-config");
    assert!(
        root.join("usr/sbin/update-exim4.conf").is_file(),
        "Debian's exim4-config is not unpacked at {}: {SETUP}",
        root.display()
    );
    root
}

/// The Exim built with OpenSSL from Debian's exim4 source (scripts/build-exim-openssl.sh).
pub fn openssl_exim_binary() -> PathBuf {
    let p = tools_dir().join("exim-openssl/usr/sbin/exim4");
    assert!(
        p.is_file(),
        "the OpenSSL Exim is not built at {}: {SETUP}",
        p.display()
    );
    p
}

/// `exim -C CONF ARGS` (the GnuTLS build); (success, stdout, stderr).
pub fn exim(conf: &Path, args: &[&str]) -> (bool, String, String) {
    let out = run(Command::new(exim_binary()).arg("-C").arg(conf).args(args));
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

/// Which of Debian's two configuration schemes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `dc_use_split_config='true'`: files under conf.d, concatenated in order.
    Split,
    /// `exim4.conf.template` with `exim4.conf.localmacros` put in front of it.
    NonSplit,
}

/// A Debian /etc/exim4 in a temporary directory, configured as an Internet host for `bank.test` that
/// relays for 192.0.2.0/24.
pub struct Debian {
    pub dir: tempfile::TempDir,
    pub layout: Layout,
}

impl Debian {
    /// `relay_domains`: Debian's dc_relay_domains. `macros`: lines for the local macros file
    /// (`conf.d/main/000_localmacros` or `exim4.conf.localmacros`), after the ones that make Exim run
    /// from this directory.
    pub fn new(layout: Layout, relay_domains: &str, macros: &str) -> Debian {
        let dir = tempfile::Builder::new()
            .prefix("bits-tls-debian-exim")
            .tempdir()
            .unwrap();
        // Exim's unprivileged delivery processes read the list and keys from here.
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let d = Debian { dir, layout };
        let out = run(Command::new("cp")
            .arg("-a")
            .arg(debian_root().join("etc/exim4"))
            .arg(d.confdir()));
        assert!(out.status.success(), "{}", text(&out.stderr));
        let spool = d.path().join("spool");
        std::fs::create_dir_all(&spool).unwrap();
        let out = run(Command::new("chown")
            .args(["-R", "Debian-exim:"])
            .arg(&spool));
        assert!(out.status.success(), "{}", text(&out.stderr));
        write(&d.confdir(), "mailname", "bank.test\n");
        write(
            &d.confdir(),
            "update-exim4.conf.conf",
            &format!(
                "dc_eximconfig_configtype='internet'\n\
                 dc_other_hostnames='bank.test'\n\
                 dc_local_interfaces='127.0.0.1'\n\
                 dc_readhost='mail.bank.test'\n\
                 dc_relay_domains='{relay_domains}'\n\
                 dc_minimaldns='false'\n\
                 dc_relay_nets='192.0.2.0/24'\n\
                 dc_smarthost=''\n\
                 CFILEMODE='644'\n\
                 dc_use_split_config='{}'\n\
                 dc_hide_mailname=''\n\
                 dc_mailname_in_oh='true'\n\
                 dc_localdelivery='mail_spool'\n",
                layout == Layout::Split
            ),
        );
        let base = format!(
            "# The test's own macros, as an administrator keeps them here.\n\
             CONFDIR = {confdir}\n\
             SPOOLDIR = {spool}\n\
             MAIN_HARDCODE_PRIMARY_HOSTNAME = mx.bank.test\n\
             CHECK_RCPT_LOCAL_ACL_FILE = {confdir}/local_rcpt_acl\n\
             log_file_path = {spool}/%slog\n\
             {macros}\n",
            confdir = d.confdir().display(),
            spool = spool.display(),
        );
        std::fs::write(d.local_macros(), base).unwrap();
        if layout == Layout::NonSplit {
            d.include_in_template();
        }
        d
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// This configuration's /etc/exim4.
    pub fn confdir(&self) -> PathBuf {
        self.path().join("exim4")
    }

    /// Where the administrator keeps local macros in this layout.
    pub fn local_macros(&self) -> PathBuf {
        match self.layout {
            Layout::Split => self.confdir().join("conf.d/main/000_localmacros"),
            Layout::NonSplit => self.confdir().join("exim4.conf.localmacros"),
        }
    }

    /// The non-split template gets the two `.include` lines the router and transport headings ask for.
    fn include_in_template(&self) {
        let path = self.confdir().join("exim4.conf.template");
        let template = std::fs::read_to_string(&path).unwrap();
        let mut out = String::new();
        let mut found = 0;
        for line in template.lines() {
            out.push_str(line);
            out.push('\n');
            let include = match line {
                "### end router/150_exim4-config_hubbed_hosts" => "bits_tls_router",
                "### end transport/10_exim4-config_transport-macros" => "bits_tls_transport",
                _ => continue,
            };
            out.push_str(&format!(
                ".include {}\n",
                self.confdir().join(include).display()
            ));
            found += 1;
        }
        assert_eq!(found, 2, "the anchor lines are in Debian's template");
        std::fs::write(path, out).unwrap();
    }

    /// Where each Exim piece belongs in this layout, as `[[output]]` targets and paths.
    pub fn outputs(&self) -> Vec<(&'static str, PathBuf)> {
        let c = self.confdir();
        let mut v = vec![
            ("exim-domains", c.join("bits_forced_tls_domains")),
            ("exim-acl", c.join("local_rcpt_acl")),
        ];
        match self.layout {
            Layout::Split => v.extend([
                ("exim-main", c.join("conf.d/main/00_local_bits_tls")),
                (
                    "exim-router",
                    c.join("conf.d/router/190_local_bits_forced_tls"),
                ),
                (
                    "exim-transport",
                    c.join("conf.d/transport/30_bits_forced_tls"),
                ),
            ]),
            Layout::NonSplit => v.extend([
                ("exim-main", c.join("exim4.conf.localmacros")),
                ("exim-router", c.join("bits_tls_router")),
                ("exim-transport", c.join("bits_tls_transport")),
            ]),
        }
        v
    }

    /// `bits-tls sync` with a configuration that writes every piece where it belongs; `extra` is more
    /// of that configuration (options, own_domains), placed before the outputs.
    pub fn sync(&self, list: &Path, extra: &str) {
        let mut cfg = format!(
            "source = \"{}\"\nstate = \"{}\"\n{extra}\n",
            list.display(),
            self.path().join("bits-tls.state.json").display()
        );
        for (target, path) in self.outputs() {
            cfg.push_str(&format!(
                "\n[[output]]\ntarget = \"{target}\"\npath = \"{}\"\n",
                path.display()
            ));
        }
        let config = write(self.path(), "bits-tls.toml", &cfg);
        let out = super::bits()
            .args(["sync", "-q", "--config", &config])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "bits-tls sync failed: {}{}\n{cfg}",
            text(&out.stdout),
            text(&out.stderr)
        );
    }

    /// Debian's update-exim4.conf, run on this directory; returns the generated configuration. Two
    /// paths are hard-coded in the script (/etc/mailname, and /etc/exim4 where it looks for the local
    /// macros of the non-split scheme): the copy run here reads them from this directory instead. In
    /// the result, `exim_path` names the Exim under test.
    pub fn update(&self) -> PathBuf {
        let script = std::fs::read_to_string(debian_root().join("usr/sbin/update-exim4.conf"))
            .unwrap()
            .replace("< /etc/mailname", "< \"${UPEX4C_confdir}/mailname\"")
            .replace(
                "[ -e \"/etc/exim4/exim4.conf.localmacros\" ]",
                "[ -e \"${UPEX4C_confdir}/exim4.conf.localmacros\" ]",
            );
        let script = write(self.path(), "update-exim4.conf", &script);
        let generated = self.path().join("config.autogenerated");
        let _ = std::fs::remove_file(&generated);
        let out: Output = run(Command::new("sh")
            .arg(&script)
            .arg("-d")
            .arg(self.confdir())
            .arg("-o")
            .arg(&generated));
        assert!(
            out.status.success() && generated.is_file(),
            "update-exim4.conf failed: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        // Debian names its binary in the main section (Exim re-executes itself to deliver); the binary
        // under test is the unpacked one.
        let text = std::fs::read_to_string(&generated).unwrap();
        let debian_path = "\nexim_path = /usr/sbin/exim4\n";
        assert!(text.contains(debian_path), "Debian's exim_path line");
        let here = format!("\nexim_path = {}\n", exim_binary().display());
        std::fs::write(&generated, text.replacen(debian_path, &here, 1)).unwrap();
        generated
    }
}
