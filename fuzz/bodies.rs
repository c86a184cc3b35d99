//! The bodies of the fuzz targets, shared by `cargo fuzz` (fuzz/fuzz_targets/*.rs) and the stable
//! smoke run in the test suite (tests/fuzz_smoke.rs). Each must never panic, whatever the bytes, and
//! checks the properties that keep a hostile list from writing anything but data.

use bits_tls::list::{self, ParseOptions};
use bits_tls::plan::files;
use bits_tls::render::options::RenderOptions;
use bits_tls::render::{BuiltIn, RenderInput, Renderer, Target};
use bits_tls::source::{self, Provenance};

/// The CSV reader: decode, sniff, split, build the participant list; every domain it keeps is in
/// normal form, and a list read twice reads the same.
pub fn csv(data: &[u8]) {
    let decoded = source::csv::decode(data);
    let (_, rows) = source::csv::records(&decoded.text);
    if let Ok(list) = list::build(&rows, &ParseOptions::default()) {
        for p in &list.participants {
            assert!(!p.domains.is_empty());
            for d in &p.domains {
                assert!(bits_tls::domain::is_normalised(d.as_str()), "{d}");
            }
            assert!(!p.organization.contains(['\n', '\r']));
        }
        let again = list::build(&rows, &ParseOptions::default()).expect("same rows, same result");
        assert_eq!(again, list);
    }
}

/// The page reader: any HTML, from the web or saved, never panics, and a page from the web never
/// links to anything but http(s).
pub fn page(data: &[u8]) {
    let html = source::csv::decode(data).text;
    let base = url::Url::parse("https://bits.no/tls").unwrap();
    if let Ok(scan) = source::page::scan(&html, &base) {
        if let Some(link) = scan.link {
            assert!(matches!(link.scheme(), "https" | "http"), "{link}");
        }
    }
    let saved = url::Url::parse("file:///srv/saved/page.html").unwrap();
    let _ = source::page::scan(&html, &saved);
    let _ = source::looks_like_html(data);
}

/// Render-all: the list read from the bytes, rendered for every built-in target (a render error is
/// fine, a panic is not); the rendered text never holds a marker line, and merged into an admin's file
/// made from the same bytes it keeps every byte outside the block and reads back as the same block.
pub fn render_all(data: &[u8]) {
    let (head, tail) = data.split_at(data.len() / 2);
    let decoded = source::csv::decode(head);
    let (_, rows) = source::csv::records(&decoded.text);
    let Ok(list) = list::build(&rows, &ParseOptions::default()) else {
        return;
    };
    let provenance = Provenance {
        page: Some("https://bits.no/tls".into()),
        csv: Some("https://bits.no/liste.csv".into()),
        sha256: "0".repeat(64),
        page_updated: None,
        fetched_at: chrono::DateTime::UNIX_EPOCH,
    };
    let opts = RenderOptions::default();
    let renderer = Renderer::new(None).expect("built-in templates load");
    let Ok(ctx) = Renderer::context(
        RenderInput {
            provenance: &provenance,
            list: &list,
            local: &[],
        },
        &opts,
    ) else {
        return;
    };
    for b in BuiltIn::ALL {
        let Ok(rendered) = renderer.render_with(&Target::BuiltIn(b), &ctx, &opts) else {
            continue;
        };
        assert!(files::check_no_markers(&rendered).is_ok(), "{b:?}");
        // The admin's own file: the other half of the bytes, without our markers in it.
        let own: Vec<u8> = tail.to_vec();
        let own_text = String::from_utf8_lossy(&own);
        if own_text.contains("bits-tls") || own.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let merged = files::merge_managed_bytes(Some(&own), &rendered, true);
        let mut prefix = own.clone();
        if !prefix.ends_with(b"\n") {
            prefix.push(b'\n');
        }
        assert!(
            merged.starts_with(&prefix),
            "{b:?}: the admin's bytes changed"
        );
        let again = files::merge_managed_bytes(Some(&merged), &rendered, true);
        assert_eq!(again, merged, "{b:?}: merging twice changed the file");
    }
}
