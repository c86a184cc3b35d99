//! Where the list comes from: a URL or a file holding either the Bits page or the CSV itself (decided by
//! content, not by name). The page is searched for the CSV link or an inline table; the CSV is decoded
//! and read into rows; the rows become the participant list.

pub mod csv;
pub mod http;
pub mod page;

use crate::list::{self, ParseOptions, ParticipantList, Record};
use crate::sanitize;
use chrono::{DateTime, NaiveDate, SubsecRound, Utc};
use http::{Got, HttpClient, HttpError, HttpOptions, Validators};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use std::path::PathBuf;
use url::Url;

/// The published page.
pub const DEFAULT_SOURCE: &str = "https://bits.no/tls";

/// A place to read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Url(Url),
    File(PathBuf),
}

impl Location {
    /// `https://…`/`http://…` are URLs, `file://…` and anything without a scheme are paths.
    pub fn parse(s: &str) -> Result<Location, FetchError> {
        let lower = s.trim().to_ascii_lowercase();
        if lower.starts_with("http://") || lower.starts_with("https://") {
            return Url::parse(s.trim())
                .map(Location::Url)
                .map_err(|_| FetchError::BadSource(s.into()));
        }
        if lower.starts_with("file://") {
            let url = Url::parse(s.trim()).map_err(|_| FetchError::BadSource(s.into()))?;
            return url
                .to_file_path()
                .map(Location::File)
                .map_err(|_| FetchError::BadSource(s.into()));
        }
        if let Some((scheme, _)) = lower.split_once("://") {
            if scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
            {
                return Err(FetchError::BadSource(s.into()));
            }
        }
        Ok(Location::File(PathBuf::from(s)))
    }

    fn from_url(url: Url) -> Location {
        if url.scheme() == "file" {
            if let Ok(p) = url.to_file_path() {
                return Location::File(p);
            }
        }
        Location::Url(url)
    }

    /// The address as a URL (files become `file:` URLs), used to resolve links.
    fn as_url(&self) -> Result<Url, FetchError> {
        match self {
            Location::Url(u) => Ok(u.clone()),
            Location::File(p) => {
                let abs = std::path::absolute(p).map_err(|source| FetchError::Read {
                    path: p.clone(),
                    source,
                })?;
                Url::from_file_path(&abs)
                    .map_err(|_| FetchError::BadSource(p.display().to_string()))
            }
        }
    }
}

impl Location {
    /// The URL or path itself, as recorded in the provenance and state (escaped only when shown).
    pub fn identity(&self) -> String {
        match self {
            Location::Url(u) => u.as_str().to_string(),
            Location::File(p) => p.display().to_string(),
        }
    }
}

/// Escaped for the terminal: for messages, never for identity.
impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Url(u) => f.write_str(&sanitize::for_terminal(u.as_str())),
            Location::File(p) => f.write_str(&sanitize::for_terminal(&p.display().to_string())),
        }
    }
}

/// Where a list came from, for headers, state and audit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    /// The page the CSV link was found on (`null` when the source was the CSV itself).
    pub page: Option<String>,
    /// The CSV (`null` when the list was an inline table on the page).
    pub csv: Option<String>,
    /// SHA-256 of the CSV bytes, or of the inline table's cells (tab- and newline-joined).
    pub sha256: String,
    /// The page's "Oppdatert" date.
    pub page_updated: Option<NaiveDate>,
    #[serde(with = "seconds_utc")]
    pub fetched_at: DateTime<Utc>,
}

/// RFC 3339 with whole seconds and `Z`, as in the contract's JSON.
pub mod seconds_utc {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Secs, true))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }
}

/// HTTP validators of the page and the CSV, for the next run's conditional requests.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceValidators {
    /// The `--source` they were obtained for; other sources do not use them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested: Option<String>,
    #[serde(default, skip_serializing_if = "Validators::is_empty")]
    pub page: Validators,
    #[serde(default, skip_serializing_if = "Validators::is_empty")]
    pub csv: Validators,
}

/// A fetched and parsed list.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub provenance: Provenance,
    pub list: ParticipantList,
    pub validators: SourceValidators,
    /// How the CSV was read (`UTF-8`, `;`), for `-v`.
    pub format_note: String,
}

#[derive(Debug, Clone, Default)]
pub struct FetchOptions {
    pub http: HttpOptions,
    pub parse: ParseOptions,
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("`{}` is not a source bits-tls can read (use an https:// URL or a file path)", sanitize::for_terminal(.0))]
    BadSource(String),
    #[error("could not read `{}`", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error("found no list on the page {page}: it links no CSV file and has no table with the list's headers")]
    NoList { page: String },
    #[error("could not choose the CSV link on the page {page}")]
    Page {
        page: String,
        #[source]
        source: page::PageError,
    },
    #[error("expected the CSV list at {url}, but got an HTML page")]
    HtmlInsteadOfCsv { url: String },
    #[error("could not make sense of the list from {what}")]
    Layout {
        what: String,
        #[source]
        source: list::LayoutError,
    },
    #[error("{url} answered 304 Not Modified to a request that was not conditional")]
    UnexpectedNotModified { url: String },
    #[error("the list from {from} holds no domains")]
    Empty { from: String },
    #[error("the saved page links `{link}`, which is not in the page's directory `{dir}`")]
    OutsidePage { link: String, dir: String },
}

impl FetchError {
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            FetchError::BadSource(_) => "--source takes https://… or a path to the saved page or CSV".into(),
            FetchError::Read { .. } => "check the path given to --source".into(),
            FetchError::Http(e) => return e.hint(),
            FetchError::NoList { .. } => "the page's layout may have changed: open it in a browser, save the CSV and pass it with --source FILE (and please report the change)".into(),
            FetchError::Page { .. } => "save the right CSV and pass it with --source FILE".into(),
            FetchError::HtmlInsteadOfCsv { .. } => "the link may now lead to a login or error page; open it in a browser".into(),
            FetchError::Layout { source, .. } => source.hint().into(),
            FetchError::UnexpectedNotModified { .. } => "a proxy may be caching wrongly; try again".into(),
            FetchError::Empty { .. } => "the warnings above say why rows were left out; pass --allow-empty if an empty list is really meant".into(),
            FetchError::OutsidePage { .. } => "a saved page's links are read only inside its own directory: save the CSV beside the page, or pass it with --source FILE".into(),
        })
    }
}

struct Loaded {
    bytes: Vec<u8>,
    /// Where the bytes came from (after redirects).
    location: Location,
    content_type: Option<String>,
    validators: Validators,
}

const ACCEPT_ANY: &str = "text/html, text/csv;q=0.9, text/plain;q=0.8, */*;q=0.5";
const ACCEPT_CSV: &str = "text/csv, text/plain;q=0.9, application/vnd.ms-excel;q=0.8, */*;q=0.5";

/// Reads a file, or GETs a URL (conditionally when `validators` are given); `None` is 304 Not Modified.
fn load(
    client: &mut Option<HttpClient>,
    opts: &HttpOptions,
    loc: &Location,
    accept: &str,
    validators: Option<&Validators>,
    log: &dyn Fn(String),
) -> Result<Option<Loaded>, FetchError> {
    match loc {
        Location::File(path) => {
            log(format!(
                "reading {}",
                sanitize::for_terminal(&path.display().to_string())
            ));
            let bytes = std::fs::read(path).map_err(|source| FetchError::Read {
                path: path.clone(),
                source,
            })?;
            Ok(Some(Loaded {
                bytes,
                location: loc.clone(),
                content_type: None,
                validators: Validators::default(),
            }))
        }
        Location::Url(url) => {
            let c = match client {
                Some(c) => c,
                None => client.insert(HttpClient::new(opts)?),
            };
            let validators = validators.filter(|v| !v.is_empty());
            match c.get(url, accept, validators, log)? {
                Got::Body(d) => Ok(Some(Loaded {
                    bytes: d.body,
                    location: Location::Url(d.url),
                    content_type: d.content_type,
                    validators: d.validators,
                })),
                Got::NotModified if validators.is_some() => Ok(None),
                Got::NotModified => Err(FetchError::UnexpectedNotModified {
                    url: loc.to_string(),
                }),
            }
        }
    }
}

/// Does this look like an HTML document rather than CSV? (First non-blank character is a tag.)
pub fn looks_like_html(bytes: &[u8]) -> bool {
    let text = csv::decode(&bytes[..bytes.len().min(4096)]).text;
    let t = text.trim_start_matches(|c: char| c.is_whitespace() || c == '\u{FEFF}');
    let mut chars = t.chars();
    chars.next() == Some('<')
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '!' || c == '?')
}

fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

/// Fetches and parses the list from `source`. `log` receives progress notes (shown with `-v`).
pub fn fetch(
    source: &Location,
    opts: &FetchOptions,
    log: &dyn Fn(String),
) -> Result<Fetched, FetchError> {
    match fetch_since(source, opts, None, log)? {
        Fetch::Fresh(f) => Ok(*f),
        Fetch::NotModified(_) => Err(FetchError::UnexpectedNotModified {
            url: source.to_string(),
        }),
    }
}

/// Refuses a list without a single domain (`fetch` and `render`; `sync` has its own guard), unless
/// the caller allows it.
pub fn require_domains(
    fetched: &Fetched,
    source: &Location,
    allow_empty: bool,
) -> Result<(), FetchError> {
    let no_domains = fetched
        .list
        .participants
        .iter()
        .all(|p| p.domains.is_empty());
    if no_domains && !allow_empty {
        return Err(FetchError::Empty {
            from: source.to_string(),
        });
    }
    Ok(())
}

/// What the previous run got: its provenance and HTTP validators.
#[derive(Debug, Clone, Copy)]
pub struct Previous<'a> {
    pub provenance: &'a Provenance,
    pub validators: &'a SourceValidators,
    /// [`ParseOptions::fingerprint`] of the previous read.
    pub parse_options: &'a str,
}

/// The result of a fetch that may be conditional.
#[derive(Debug)]
pub enum Fetch {
    Fresh(Box<Fetched>),
    /// The list has not changed since `previous`: the server said so (304), or the bytes are the same and
    /// are read the same way. Carries the validators of this response when it had a body.
    NotModified(Option<SourceValidators>),
}

/// Like [`fetch`], but with `previous` the page and CSV are requested conditionally (`If-None-Match`,
/// `If-Modified-Since`), and an unchanged list is reported as [`Fetch::NotModified`].
///
/// In named steps: [`Run::new`] resolves which of the previous run's facts apply to this source; the
/// first document is loaded and classified (`304`, a page, or the CSV itself); a page is followed to its
/// CSV link (after a `304`, the link the previous run found); and every CSV goes through one step,
/// [`Run::read_csv`], which asks conditionally only for the very link the validators belong to.
pub fn fetch_since(
    source: &Location,
    opts: &FetchOptions,
    previous: Option<Previous>,
    log: &dyn Fn(String),
) -> Result<Fetch, FetchError> {
    let mut run = Run::new(source, opts, previous, log);
    let first_validators = run.conditional.map(|p| {
        if p.provenance.page.is_some() {
            &p.validators.page
        } else {
            &p.validators.csv
        }
    });
    match run.load(source, ACCEPT_ANY, first_validators)? {
        None => run.first_not_modified(),
        Some(first) if looks_like_html(&first.bytes) => run.page(first),
        Some(csv) => run.csv_document(csv, None),
    }
}

/// A file linked from a saved page, written the way the page's path was given (`examples/tls.html` →
/// `examples/liste.csv`, not an absolute path), so headers and state say both the same way and a
/// mail-config repository renders the same bytes wherever it is checked out.
fn as_given_beside(page: &Location, link: Location) -> Location {
    let (Location::File(page), Location::File(abs)) = (page, &link) else {
        return link;
    };
    let given_dir = page.parent().unwrap_or(std::path::Path::new(""));
    let Some(abs_dir) = std::path::absolute(page)
        .ok()
        .and_then(|p| p.parent().map(|d| d.to_path_buf()))
    else {
        return link;
    };
    match abs.strip_prefix(&abs_dir) {
        Ok(rest) => Location::File(given_dir.join(rest)),
        Err(_) => link,
    }
}

/// The page a CSV link was found on.
struct PageFound {
    location: Location,
    updated: Option<NaiveDate>,
    validators: Validators,
}

/// One conditional fetch in progress.
struct Run<'a> {
    opts: &'a FetchOptions,
    log: &'a dyn Fn(String),
    client: Option<HttpClient>,
    fetched_at: DateTime<Utc>,
    /// The URL asked for (validators are kept per requested source).
    requested: Option<String>,
    /// The previous run, for the same-bytes check (files too).
    previous: Option<Previous<'a>>,
    /// The previous run when its HTTP validators apply: the same URL was requested.
    conditional: Option<Previous<'a>>,
}

impl<'a> Run<'a> {
    /// Resolve: which of the previous run's facts apply to this source.
    fn new(
        source: &Location,
        opts: &'a FetchOptions,
        previous: Option<Previous<'a>>,
        log: &'a dyn Fn(String),
    ) -> Run<'a> {
        let requested = match source {
            Location::Url(u) => Some(u.to_string()),
            Location::File(_) => None,
        };
        let conditional =
            previous.filter(|p| requested.is_some() && p.validators.requested == requested);
        Run {
            opts,
            log,
            client: None,
            fetched_at: Utc::now().trunc_subsecs(0),
            requested,
            previous,
            conditional,
        }
    }

    fn load(
        &mut self,
        loc: &Location,
        accept: &str,
        validators: Option<&Validators>,
    ) -> Result<Option<Loaded>, FetchError> {
        load(
            &mut self.client,
            &self.opts.http,
            loc,
            accept,
            validators,
            self.log,
        )
    }

    fn validators(&self, page: Validators) -> SourceValidators {
        SourceValidators {
            requested: self.requested.clone(),
            page,
            csv: Validators::default(),
        }
    }

    /// The first document answered 304. A CSV given directly is unchanged; behind an unchanged page the
    /// CSV may still have changed, so it is asked for too, at the link the previous run found.
    fn first_not_modified(self) -> Result<Fetch, FetchError> {
        let p = self.conditional.expect("a 304 needs validators");
        let (Some(page), Some(csv)) = (p.provenance.page.as_deref(), p.provenance.csv.as_deref())
        else {
            (self.log)("not modified since the last run".into());
            return Ok(Fetch::NotModified(None));
        };
        let found = PageFound {
            location: Location::parse(page)?,
            updated: p.provenance.page_updated,
            validators: p.validators.page.clone(),
        };
        self.read_csv(Location::parse(csv)?, found)
    }

    /// Follow link: the page's CSV link, or the table on the page when it links none.
    fn page(self, first: Loaded) -> Result<Fetch, FetchError> {
        let page_loc = first.location.clone();
        let html = csv::decode(&first.bytes).text;
        let scan = page::scan(&html, &page_loc.as_url()?).map_err(|source| FetchError::Page {
            page: page_loc.to_string(),
            source,
        })?;
        if let Some(updated) = scan.updated {
            (self.log)(format!("the page says it was updated {updated}"));
        }
        let found = PageFound {
            location: page_loc,
            updated: scan.updated,
            validators: first.validators,
        };
        if let Some(link) = scan.link {
            (self.log)(format!(
                "the list's link: {}",
                sanitize::for_terminal(link.as_str())
            ));
            let link = match (&found.location, Location::from_url(link)) {
                (Location::File(page), Location::File(target)) => {
                    Location::File(inside_page_dir(page, &target)?)
                }
                (_, other) => other,
            };
            let csv = as_given_beside(&found.location, link);
            return self.read_csv(csv, found);
        }
        let Some(rows) = scan.table else {
            return Err(FetchError::NoList {
                page: found.location.to_string(),
            });
        };
        (self.log)(format!(
            "no CSV link; reading the table on the page ({} rows)",
            rows.len()
        ));
        let list = list::build_noting(&rows, &self.opts.parse, self.log).map_err(|source| {
            FetchError::Layout {
                what: found.location.to_string(),
                source,
            }
        })?;
        Ok(Fetch::Fresh(Box::new(Fetched {
            provenance: Provenance {
                page: Some(found.location.identity()),
                csv: None,
                sha256: sha256_hex(table_canonical(&rows).as_bytes()),
                page_updated: found.updated,
                fetched_at: self.fetched_at,
            },
            list,
            validators: self.validators(found.validators),
            format_note: "inline HTML table".into(),
        })))
    }

    /// Read the CSV at `link`, found on `page`: conditionally when the previous run read this very
    /// link, and not parsed again when its bytes are the previous run's.
    fn read_csv(mut self, link: Location, page: PageFound) -> Result<Fetch, FetchError> {
        let link_text = link.identity();
        let conditional = self
            .conditional
            .filter(|p| p.provenance.csv.as_deref() == Some(link_text.as_str()))
            .map(|p| &p.validators.csv);
        match self.load(&link, ACCEPT_CSV, conditional)? {
            Some(loaded) => self.csv_document(loaded, Some(page)),
            None => {
                (self.log)("the CSV has not changed since the last run".into());
                // The page's validators may be new; the CSV's are the previous run's.
                let p = self.conditional.expect("a 304 needs validators");
                Ok(Fetch::NotModified(Some(SourceValidators {
                    csv: p.validators.csv.clone(),
                    ..self.validators(page.validators)
                })))
            }
        }
    }

    /// The CSV's bytes: refused if HTML, unchanged if the previous run's, else parsed.
    fn csv_document(self, loaded: Loaded, page: Option<PageFound>) -> Result<Fetch, FetchError> {
        if page.is_some() {
            check_not_html(&loaded)?;
        }
        let (page_loc, updated, page_validators) = match page {
            Some(p) => (Some(p.location), p.updated, p.validators),
            None => (None, None, Validators::default()),
        };
        let validators = self.validators(page_validators);
        if let Some(v) = unchanged(self.previous, &loaded, updated, &validators, self.opts) {
            return Ok(Fetch::NotModified(Some(v)));
        }
        from_csv(
            loaded,
            page_loc.as_ref(),
            updated,
            validators,
            self.fetched_at,
            self.opts,
            self.log,
        )
        .map(|f| Fetch::Fresh(Box::new(f)))
    }
}

/// The same CSV bytes as last time, read with the same options: the list is the same, so it is not
/// parsed again. Returns the validators to keep (this response's CSV validators added).
fn unchanged(
    previous: Option<Previous>,
    loaded: &Loaded,
    page_updated: Option<NaiveDate>,
    validators: &SourceValidators,
    opts: &FetchOptions,
) -> Option<SourceValidators> {
    let p = previous?;
    // A new "Oppdatert" date on the page is news even when the CSV bytes are the same; so is a new
    // link (the state must record where the list now is, or the next run asks the old one).
    let same = p.provenance.csv.as_deref() == Some(loaded.location.identity().as_str())
        && p.provenance.page_updated == page_updated
        && p.parse_options == opts.parse.fingerprint()
        && p.provenance.sha256 == sha256_hex(&loaded.bytes);
    same.then(|| SourceValidators {
        csv: loaded.validators.clone(),
        ..validators.clone()
    })
}

/// The CSV link led to an HTML page (a login or error page, typically).
fn check_not_html(loaded: &Loaded) -> Result<(), FetchError> {
    let is_html_type = loaded
        .content_type
        .as_deref()
        .is_some_and(|t| t.to_ascii_lowercase().starts_with("text/html"));
    if looks_like_html(&loaded.bytes) || is_html_type {
        return Err(FetchError::HtmlInsteadOfCsv {
            url: loaded.location.to_string(),
        });
    }
    Ok(())
}

fn from_csv(
    loaded: Loaded,
    page: Option<&Location>,
    page_updated: Option<NaiveDate>,
    mut validators: SourceValidators,
    fetched_at: DateTime<Utc>,
    opts: &FetchOptions,
    log: &dyn Fn(String),
) -> Result<Fetched, FetchError> {
    let decoded = csv::decode(&loaded.bytes);
    let (delimiter, rows) = csv::records(&decoded.text);
    log(format!(
        "read as {}, separated by {}",
        decoded.encoding,
        if delimiter == b'\t' {
            "tabs".to_string()
        } else {
            format!("`{}`", delimiter as char)
        }
    ));
    let list =
        list::build_noting(&rows, &opts.parse, log).map_err(|source| FetchError::Layout {
            what: loaded.location.to_string(),
            source,
        })?;
    validators.csv = loaded.validators;
    let delimiter_name = match delimiter {
        b'\t' => "tab".to_string(),
        d => format!("`{}`", d as char),
    };
    Ok(Fetched {
        provenance: Provenance {
            page: page.map(Location::identity),
            csv: Some(loaded.location.identity()),
            sha256: sha256_hex(&loaded.bytes),
            page_updated,
            fetched_at,
        },
        list,
        validators,
        format_note: format!(
            "{}, {delimiter_name}-separated, {} rows",
            decoded.encoding,
            rows.len()
        ),
    })
}

/// A saved page's link to a file, kept inside the page's directory: a link there is used as it is; a
/// root-relative one (`/media/…/liste.csv`, as the published page has) is looked for under the page's
/// directory, then by its file name beside the page (where a browser saves it). Anything else — `/etc/passwd`,
/// `../../secret` — is refused: a page must not make bits-tls read files it was not given.
fn inside_page_dir(
    page: &std::path::Path,
    target: &std::path::Path,
) -> Result<PathBuf, FetchError> {
    let dir = std::path::absolute(page)
        .ok()
        .and_then(|p| p.parent().map(std::path::Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("."));
    let canon_dir = std::fs::canonicalize(&dir).unwrap_or_else(|_| dir.clone());
    let inside = |p: &std::path::Path| {
        std::fs::canonicalize(p).is_ok_and(|c| c.starts_with(&canon_dir) && c.is_file())
    };
    let under_dir = dir.join(target.strip_prefix("/").unwrap_or(target));
    let beside = target.file_name().map(|n| dir.join(n));
    let lexically_inside = target.starts_with(&dir);
    let candidates = [
        lexically_inside.then(|| target.to_path_buf()),
        Some(under_dir),
        beside,
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|c| inside(c))
        .ok_or_else(|| FetchError::OutsidePage {
            link: sanitize::for_terminal(&target.display().to_string()),
            dir: sanitize::for_terminal(&dir.display().to_string()),
        })
}

/// The digest input for an inline table: cells joined by tabs, rows by newlines.
fn table_canonical(rows: &[Record]) -> String {
    rows.iter()
        .map(|r| r.cells.join("\t"))
        .collect::<Vec<_>>()
        .join("\n")
}
