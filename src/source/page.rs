//! The Bits web page: find the link to the CSV list ("Domeneliste tvungen TLS i CSV"), or failing that an
//! inline table that looks like the list, and the page's "Oppdatert: 16. november 2021" date.

use crate::list::{self, Record};
use crate::sanitize;
use chrono::NaiveDate;
use scraper::{ElementRef, Html, Node, Selector};
use url::Url;

/// What the page offers.
#[derive(Debug, Default)]
pub struct PageScan {
    /// The chosen link to the CSV, resolved against the page's address.
    pub link: Option<Url>,
    /// Rows of an inline table with list-like headers (used only when there is no link).
    pub table: Option<Vec<Record>>,
    /// The "Oppdatert" date the page states, if any.
    pub updated: Option<NaiveDate>,
}

#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("the page links {} CSV files and none stands out as the domain list:\n{}", .0.len(), .0.iter().map(|c| format!("  {c}")).collect::<Vec<_>>().join("\n"))]
    Ambiguous(Vec<String>),
}

/// Reads the page. `base` is where it came from (an `https:` URL, or a `file:` URL for a saved page).
pub fn scan(html: &str, base: &Url) -> Result<PageScan, PageError> {
    let doc = Html::parse_document(html);
    let base = base_href(&doc, base);
    let link = find_link(&doc, &base)?;
    let table = if link.is_none() {
        find_table(&doc)
    } else {
        None
    };
    let updated = find_updated(&doc);
    Ok(PageScan {
        link,
        table,
        updated,
    })
}

fn selector(s: &str) -> Selector {
    Selector::parse(s).expect("static selector is valid")
}

/// `<base href>` changes what relative links mean; it is honoured only with the same kind of scheme, so a
/// page from the web cannot point us at local files.
fn base_href(doc: &Html, page: &Url) -> Url {
    doc.select(&selector("base[href]"))
        .next()
        .and_then(|b| page.join(b.value().attr("href")?.trim()).ok())
        .filter(|u| scheme_allowed(page, u))
        .unwrap_or_else(|| page.clone())
}

/// A page from the network may link only to http(s); a saved page may also link to files beside it.
fn scheme_allowed(page: &Url, link: &Url) -> bool {
    match link.scheme() {
        "https" | "http" => true,
        "file" => page.scheme() == "file",
        _ => false,
    }
}

struct Candidate {
    url: Url,
    /// The anchor's text mentions the domain list, not just "CSV".
    names_the_list: bool,
}

fn find_link(doc: &Html, base: &Url) -> Result<Option<Url>, PageError> {
    let mut found: Vec<Candidate> = Vec::new();
    for a in doc.select(&selector("a[href]")) {
        let href = a.value().attr("href").unwrap_or("").trim();
        let Ok(mut url) = base.join(href) else {
            continue;
        };
        if !scheme_allowed(base, &url) {
            continue;
        }
        url.set_fragment(None);
        let label = [
            a.text().collect::<Vec<_>>().join(" "),
            a.value().attr("title").unwrap_or("").to_string(),
            a.value().attr("aria-label").unwrap_or("").to_string(),
            a.value().attr("download").unwrap_or("").to_string(),
        ]
        .join(" ")
        .to_lowercase();
        let path = percent_decode(url.path()).to_lowercase();
        let is_csv = path.ends_with(".csv") || label.contains("csv");
        if !is_csv {
            continue;
        }
        let names_the_list = [
            "domeneliste",
            "domenelista",
            "domain list",
            "tvungen tls",
            "forced tls",
        ]
        .iter()
        .any(|k| label.contains(k) || path.contains(&k.replace(' ', "")));
        match found.iter_mut().find(|c| c.url == url) {
            Some(c) => c.names_the_list |= names_the_list,
            None => found.push(Candidate {
                url,
                names_the_list,
            }),
        }
    }
    let preferred: Vec<&Candidate> = found.iter().filter(|c| c.names_the_list).collect();
    let pool: Vec<&Candidate> = if preferred.is_empty() {
        found.iter().collect()
    } else {
        preferred
    };
    match pool.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(one.url.clone())),
        many => Err(PageError::Ambiguous(
            many.iter()
                .map(|c| sanitize::for_terminal(c.url.as_str()))
                .collect(),
        )),
    }
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// The first table whose header row names a domain column and another field of the list.
fn find_table(doc: &Html) -> Option<Vec<Record>> {
    doc.select(&selector("table")).find_map(|table| {
        let rows = table_rows(table);
        list::has_list_header(&rows).then_some(rows)
    })
}

/// Rows of this table only (not of tables nested in it); row numbers count from 1.
fn table_rows(table: ElementRef) -> Vec<Record> {
    let tr = selector("tr");
    let cells = selector("td, th");
    table
        .select(&tr)
        .filter(|row| {
            let owner = row
                .ancestors()
                .filter_map(ElementRef::wrap)
                .find(|e| e.value().name() == "table");
            owner.map(|e| e.id()) == Some(table.id())
        })
        .map(|row| {
            row.select(&cells)
                .filter(|c| c.parent().map(|p| p.id()) == Some(row.id()))
                .map(cell_text)
                .collect::<crate::list::Cells>()
        })
        .enumerate()
        .map(|(i, cells)| Record {
            line: i as u64 + 1,
            cells,
        })
        .collect()
}

/// Cell text where `<br>` and block elements become line breaks, so a cell listing several domains one
/// per line splits into several domains.
fn cell_text(cell: ElementRef) -> String {
    let mut out = String::new();
    for node in cell.descendants() {
        match node.value() {
            Node::Text(t) => out.push_str(t),
            Node::Element(e) if matches!(e.name(), "br" | "p" | "div" | "li") => out.push('\n'),
            _ => {}
        }
    }
    out.trim().to_string()
}

/// "Oppdatert: 16. november 2021" (also "Sist oppdatert 16.11.2021", "Updated 2021-11-16").
fn find_updated(doc: &Html) -> Option<NaiveDate> {
    let text: String = doc.root_element().text().collect::<Vec<_>>().join(" ");
    let lower = text.to_lowercase();
    for key in ["oppdatert", "updated"] {
        let mut from = 0;
        while let Some(pos) = lower[from..].find(key) {
            let start = from + pos + key.len();
            let tail: String = lower[start..].chars().take(40).collect();
            if let Some(d) = parse_written_date(&tail) {
                return Some(d);
            }
            from = start;
        }
    }
    None
}

/// A date at the start of `s` (after punctuation): `16. november 2021`, `16 nov. 2021`, `16.11.2021`,
/// `2021-11-16`.
fn parse_written_date(s: &str) -> Option<NaiveDate> {
    let s = s.trim_start_matches(|c: char| !c.is_alphanumeric());
    let words: Vec<&str> = s
        .split(|c: char| c.is_whitespace())
        .filter(|w| !w.is_empty())
        .take(3)
        .collect();
    if let Some(first) = words.first() {
        let first = first.trim_end_matches([',', ';', ')', '.']);
        if let Some(d) = list::parse_date(first) {
            return Some(d);
        }
    }
    if words.len() < 3 {
        return None;
    }
    let day: u32 = words[0].trim_end_matches('.').parse().ok()?;
    let month = month_number(words[1].trim_end_matches(['.', ',']))?;
    let year: i32 = words[2]
        .trim_end_matches(|c: char| !c.is_ascii_digit())
        .parse()
        .ok()?;
    NaiveDate::from_ymd_opt(year, month, day)
}

fn month_number(word: &str) -> Option<u32> {
    const MONTHS: [&[&str]; 12] = [
        &["januar", "jan", "january"],
        &["februar", "feb", "february"],
        &["mars", "mar", "march"],
        &["april", "apr"],
        &["mai", "may"],
        &["juni", "jun", "june"],
        &["juli", "jul", "july"],
        &["august", "aug"],
        &["september", "sep", "sept"],
        &["oktober", "okt", "october", "oct"],
        &["november", "nov"],
        &["desember", "des", "december", "dec"],
    ];
    MONTHS
        .iter()
        .position(|names| names.contains(&word))
        .map(|i| i as u32 + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Url {
        Url::parse("https://bits.no/tls/").unwrap()
    }

    #[test]
    fn finds_relative_percent_encoded_link_and_date() {
        let html = r#"<html><body><p>Oppdatert: 16. november 2021</p>
            <a href="/om-bits">Om oss</a>
            <a href="../globalassets/Domeneliste%20tvungen%20TLS.CSV?v=3#x">Last ned</a></body></html>"#;
        let scan = scan(html, &base()).unwrap();
        assert_eq!(
            scan.link.unwrap().as_str(),
            "https://bits.no/globalassets/Domeneliste%20tvungen%20TLS.CSV?v=3"
        );
        assert_eq!(scan.updated, NaiveDate::from_ymd_opt(2021, 11, 16));
        assert!(scan.table.is_none());
    }

    #[test]
    fn prefers_the_link_that_names_the_list() {
        let html = r#"<a href="annet.csv">Statistikk (CSV)</a>
            <a href="liste.csv">Domeneliste tvungen TLS i CSV</a>"#;
        assert_eq!(
            scan(html, &base()).unwrap().link.unwrap().as_str(),
            "https://bits.no/tls/liste.csv"
        );
        let two = r#"<a href="a.csv">CSV</a> <a href="b.csv">CSV</a>"#;
        let err = scan(two, &base()).unwrap_err().to_string();
        assert!(err.contains("a.csv") && err.contains("b.csv"), "{err}");
    }

    #[test]
    fn web_page_cannot_point_at_local_files() {
        let html =
            r#"<base href="file:///etc/"><a href="file:///etc/passwd.csv">Domeneliste CSV</a>"#;
        assert!(scan(html, &base()).unwrap().link.is_none());
        let local = Url::parse("file:///srv/bits/tls.html").unwrap();
        assert_eq!(
            scan(r#"<a href="liste.csv">CSV</a>"#, &local)
                .unwrap()
                .link
                .unwrap()
                .as_str(),
            "file:///srv/bits/liste.csv"
        );
    }

    #[test]
    fn inline_table_with_line_breaks_in_cells() {
        let html = r#"<table><tr><td>Meny</td></tr></table>
            <table><thead><tr><th>Virksomhet</th><th>Domene</th></tr></thead>
            <tbody><tr><td>Bits AS</td><td>bits.no<br>bits.com</td></tr></tbody></table>"#;
        let scan = scan(html, &base()).unwrap();
        let rows = scan.table.unwrap();
        assert_eq!(rows[1].cells, ["Bits AS", "bits.no\nbits.com"]);
    }

    #[test]
    fn written_dates() {
        assert_eq!(
            parse_written_date(": 3. mars 2024"),
            NaiveDate::from_ymd_opt(2024, 3, 3)
        );
        assert_eq!(
            parse_written_date(" 16.11.2021."),
            NaiveDate::from_ymd_opt(2021, 11, 16)
        );
        assert_eq!(
            parse_written_date(" 1 des. 2020"),
            NaiveDate::from_ymd_opt(2020, 12, 1)
        );
        assert_eq!(parse_written_date(" av Bits"), None);
    }
}
