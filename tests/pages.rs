//! A saved copy of the Bits page (`--source page.html`): its links resolve inside the page's own
//! directory. The published page links the CSV root-relative (`/media/…/liste.csv`), which used to
//! resolve to the file system's root; and a saved page must never make bits-tls read `/etc/passwd`.

mod support;

use support::bits;

const CSV: &str = "Virksomhet;Org.nr;Domene;Krav 5.2.4\nBits AS;916960190;bits.no;Nei\n";

fn page(href: &str) -> String {
    format!(
        "<html><body><p>Oppdatert: 16. november 2021</p>\
         <a href=\"{href}\">Domeneliste tvungen TLS i CSV</a></body></html>"
    )
}

fn fetch(page_path: &std::path::Path) -> assert_cmd::assert::Assert {
    bits()
        .args(["fetch", "--format", "json", "--source"])
        .arg(page_path)
        .assert()
}

#[test]
fn a_root_relative_link_is_found_beside_the_saved_page() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("liste.csv"), CSV).unwrap();
    let p = dir.path().join("tvungen-tls.html");
    std::fs::write(&p, page("/media/1234/liste.csv")).unwrap();
    let out = fetch(&p).success();
    let v: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(v["participants"][0]["domains"][0], "bits.no");
    assert_eq!(
        v["source"]["csv"],
        dir.path().join("liste.csv").display().to_string()
    );
}

#[test]
fn a_root_relative_link_is_found_under_the_saved_page() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("media/1234")).unwrap();
    std::fs::write(dir.path().join("media/1234/liste.csv"), CSV).unwrap();
    let p = dir.path().join("tvungen-tls.html");
    std::fs::write(&p, page("/media/1234/liste.csv")).unwrap();
    fetch(&p).success();
}

#[test]
fn a_saved_page_cannot_make_bits_tls_read_other_files() {
    let outer = tempfile::tempdir().unwrap();
    let dir = outer.path().join("saved");
    std::fs::create_dir(&dir).unwrap();
    // A readable list outside the page's directory: not to be read either.
    std::fs::write(outer.path().join("secret.csv"), CSV).unwrap();
    for href in [
        "/etc/passwd",
        "file:///etc/passwd",
        "../secret.csv",
        "/../secret.csv",
    ] {
        let p = dir.join("page.html");
        std::fs::write(&p, page(href)).unwrap();
        fetch(&p)
            .code(1)
            .stdout("")
            .stderr(predicates::str::contains(
                "which is not in the page's directory",
            ));
    }
}
