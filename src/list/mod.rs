//! The participant list: rows read from the CSV or the page's table, turned into validated, normalised
//! participants plus a warning for everything that had to be left out or corrected.

pub mod columns;
pub mod fields;

use crate::domain::{Domain, DomainRules};
use crate::org_number::{self, OrgNumber};
use crate::sanitize;
use chrono::NaiveDate;
pub use columns::LayoutError;
use columns::{ColumnOverride, Layout};
use foldhash::{HashMap, HashMapExt};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// One row of the source as text cells, with the line it starts on (for an HTML table, the row number).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub line: u64,
    pub cells: Cells,
}

/// A row's cells, held in one string (a list of 100,000 rows is not 500,000 small allocations).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cells {
    text: String,
    /// Where each cell ends in `text`.
    ends: Vec<u32>,
}

impl Cells {
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    pub fn get(&self, i: usize) -> Option<&str> {
        let end = *self.ends.get(i)? as usize;
        let start = i.checked_sub(1).map_or(0, |p| self.ends[p] as usize);
        Some(&self.text[start..end])
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = &str> + Clone + '_ {
        (0..self.ends.len()).map(|i| self.get(i).unwrap_or_default())
    }

    pub fn push(&mut self, cell: &str) {
        self.text.push_str(cell);
        self.ends.push(self.text.len() as u32);
    }

    pub fn join(&self, sep: &str) -> String {
        self.iter().collect::<Vec<_>>().join(sep)
    }
}

impl<S: AsRef<str>> FromIterator<S> for Cells {
    fn from_iter<I: IntoIterator<Item = S>>(cells: I) -> Cells {
        let mut out = Cells::default();
        for c in cells {
            out.push(c.as_ref());
        }
        out
    }
}

impl<const N: usize> PartialEq<[&str; N]> for Cells {
    fn eq(&self, other: &[&str; N]) -> bool {
        self.iter().eq(other.iter().copied())
    }
}

/// One organisation in the scheme.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Participant {
    /// The name as published, reduced to one clean line.
    pub organization: String,
    /// Nine digits (MOD11-checked; an invalid one is kept with a warning).
    pub org_number: Option<String>,
    /// Normalised, sorted, unique; never empty.
    pub domains: Vec<Domain>,
    pub enrolled: Option<NaiveDate>,
    /// The list's "Requirement 5.2.4 supported?" column: does this participant itself reject plaintext mail
    /// from the others.
    pub enforces_inbound_tls: Option<bool>,
}

/// A problem with the input that did not stop the run. `line` is the source line (or table row).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warning {
    pub line: Option<u64>,
    pub message: String,
}

impl Warning {
    pub fn at(line: u64, message: impl Into<String>) -> Warning {
        Warning {
            line: Some(line),
            message: message.into(),
        }
    }
    pub fn general(message: impl Into<String>) -> Warning {
        Warning {
            line: None,
            message: message.into(),
        }
    }
}

/// A sort key for names in Norwegian alphabetical order: case folded, and Æ, Ø, Å after Z (Ä and Ö as
/// Æ and Ø, as Norwegian dictionaries sort them), where plain code-point order puts Å first.
///
/// The key is a `String` whose characters compare as the mapped code points do (UTF-8 keeps code-point
/// order), so comparing keys is a byte comparison.
pub fn norwegian_order(name: &str) -> String {
    // Fast path: ASCII has none of the letters that move, and lowercases byte by byte.
    if name.is_ascii() {
        return name.to_ascii_lowercase();
    }
    name.chars()
        .flat_map(char::to_lowercase)
        .map(|c| match c {
            'æ' | 'ä' => '{', // 'z' + 1
            'ø' | 'ö' => '|', // 'z' + 2
            'å' => '}',       // 'z' + 3
            c => c,
        })
        .collect()
}

/// The parsed list: participants sorted by name (in Norwegian order), and the warnings met on the way.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParticipantList {
    pub participants: Vec<Participant>,
    pub warnings: Vec<Warning>,
}

impl ParticipantList {
    /// Every listed domain, sorted and unique.
    pub fn domains(&self) -> BTreeSet<&Domain> {
        self.participants.iter().flat_map(|p| &p.domains).collect()
    }
}

/// Choices that change how rows are read.
#[derive(Debug, Clone, Default)]
pub struct ParseOptions {
    pub columns: Option<ColumnOverride>,
    pub domain_rules: DomainRules,
}

impl ParseOptions {
    /// Identifies the options: the same bytes read with the same options give the same list. Stored in
    /// the state, so it is a stable text of its own (`columns=domain:3,organization:"Firma";wildcards=no`),
    /// never a type's debug output.
    pub fn fingerprint(&self) -> String {
        let columns: Vec<String> = self
            .columns
            .iter()
            .flat_map(|c| &c.entries)
            .map(|(field, col)| match col {
                columns::ColumnRef::Number(n) => format!("{}:{n}", field.key()),
                columns::ColumnRef::Name(name) => format!("{}:{name:?}", field.key()),
            })
            .collect();
        let wildcards = if self.domain_rules.allow_wildcards {
            "yes"
        } else {
            "no"
        };
        format!("columns={};wildcards={wildcards}", columns.join(","))
    }
}

/// What the source stage may ask of the list reader, and nothing more: how strongly the first rows
/// look like the list's header (to choose a CSV delimiter), whether a table is the list (on a page),
/// and a date as the list writes it.
pub fn header_score(rows: &[Record]) -> usize {
    rows.iter()
        .take(columns::HEADER_SCAN)
        .map(|r| columns::map_header(&r.cells))
        .filter(|m| !m.domains.is_empty())
        .map(|m| {
            m.domains.len().min(1)
                + [m.organization, m.org_number, m.enrolled, m.inbound_tls]
                    .iter()
                    .flatten()
                    .count()
        })
        .max()
        .unwrap_or(0)
}

/// Whether these rows have a recognised header row naming a domain column (see [`header_score`]).
pub fn has_list_header(rows: &[Record]) -> bool {
    columns::detect(rows, None).is_ok_and(|layout| !layout.guessed)
}

/// A date as the list writes it (`2017-02-01`, `01.02.2017`, …); see [`header_score`].
pub fn parse_date(s: &str) -> Option<NaiveDate> {
    fields::parse_date(s).ok().flatten()
}

/// Builds the list from rows. Fails only when no domain column can be found; everything wrong with a
/// single row is a warning.
pub fn build(records: &[Record], opts: &ParseOptions) -> Result<ParticipantList, LayoutError> {
    build_noting(records, opts, &|_| {})
}

/// [`build`], telling `note` the choices made (the header row, the columns), for `-v`.
pub fn build_noting(
    records: &[Record],
    opts: &ParseOptions,
    note: &dyn Fn(String),
) -> Result<ParticipantList, LayoutError> {
    let layout = columns::detect(records, opts.columns.as_ref())?;
    note(
        match (layout.header, layout.guessed, opts.columns.is_some()) {
            (_, true, _) => format!("no header row; columns guessed: {}", layout.map),
            (Some(h), _, true) => format!(
                "header row {} and --columns: {}",
                records[h].line, layout.map
            ),
            (Some(h), _, false) => format!(
                "header row found at line {}: {}",
                records[h].line, layout.map
            ),
            (None, _, _) => format!("no header row; columns given: {}", layout.map),
        },
    );
    let mut b = Builder::new(opts.domain_rules);
    // A row is about one participant and one domain: no map grows by rehashing.
    b.seen.reserve(records.len());
    b.by_key.reserve(records.len());
    b.participants.reserve(records.len());
    if layout.guessed {
        b.warnings.push(Warning::general(format!(
            "no header row recognised; columns guessed from their contents: {} (set them with --columns)",
            layout.map
        )));
    }
    let start = layout.header.map_or(0, |h| h + 1);
    let header_cells = layout.header.map(|h| &records[h].cells);
    for record in &records[start..] {
        if header_cells == Some(&record.cells) {
            b.warnings
                .push(Warning::at(record.line, "repeated header row; skipped"));
            continue;
        }
        b.row(record, &layout);
    }
    Ok(b.finish())
}

struct Builder {
    rules: DomainRules,
    /// The participants met so far; their domains are in `seen` until [`Builder::finish`].
    participants: Vec<Participant>,
    /// Rows of one organisation (same name ignoring case, same org number) are merged: the hash of
    /// that key → the last participant with it, and each participant's predecessor with the same hash
    /// (`chain`), compared with the participant itself. No key is copied to be looked up.
    by_key: HashMap<u64, usize>,
    chain: Vec<usize>,
    hasher: foldhash::fast::RandomState,
    /// domain → (line, participant index) of its first listing; the domains move to their participants
    /// when the list is finished.
    seen: HashMap<Domain, (u64, usize)>,
    warnings: Vec<Warning>,
}

/// A name as merging compares it: `str::to_lowercase` (which alone knows a word-final `Σ`).
fn folded(name: &str) -> std::borrow::Cow<'_, str> {
    if name
        .bytes()
        .any(|b| b.is_ascii_uppercase() || !b.is_ascii())
    {
        name.to_lowercase().into()
    } else {
        name.into()
    }
}

impl Builder {
    fn new(rules: DomainRules) -> Builder {
        Builder {
            rules,
            participants: Vec::new(),
            by_key: HashMap::new(),
            chain: Vec::new(),
            hasher: Default::default(),
            seen: HashMap::new(),
            warnings: Vec::new(),
        }
    }

    fn key_hash(&self, folded_name: &str, org_number: Option<&str>) -> u64 {
        use std::hash::BuildHasher;
        self.hasher.hash_one((folded_name, org_number))
    }

    /// The participant with this name (folded) and org number, if one was met.
    fn find(&self, hash: u64, folded_name: &str, org_number: Option<&str>) -> Option<usize> {
        let mut at = self.by_key.get(&hash).copied();
        while let Some(i) = at {
            let p = &self.participants[i];
            if p.org_number.as_deref() == org_number && folded(&p.organization) == folded_name {
                return Some(i);
            }
            at = Some(self.chain[i]).filter(|n| *n != usize::MAX);
        }
        None
    }

    fn warn(&mut self, line: u64, message: String) {
        self.warnings.push(Warning::at(line, message));
    }

    fn row(&mut self, record: &Record, layout: &Layout) {
        let line = record.line;
        let cell = |col: Option<usize>| col.and_then(|c| record.cells.get(c)).unwrap_or("");
        if record.cells.iter().all(|c| c.trim().is_empty()) {
            return;
        }
        let domain_text: Vec<&str> = layout.map.domains.iter().map(|c| cell(Some(*c))).collect();
        let tokens: Vec<&str> = domain_text
            .iter()
            .flat_map(|t| t.split(|c: char| c == ',' || c == ';' || c.is_whitespace()))
            .filter(|t| !t.is_empty())
            .collect();
        if tokens.is_empty() {
            let first = record
                .cells
                .iter()
                .find(|c| !c.trim().is_empty())
                .unwrap_or("");
            self.warn(
                line,
                format!(
                    "row has no domain (a note or footer?); skipped: `{}`",
                    sanitize::excerpt(first.trim(), 60)
                ),
            );
            return;
        }

        let organization = sanitize::one_line(cell(layout.map.organization));
        if organization.is_empty() && layout.map.organization.is_some() {
            self.warn(line, "row has no organisation name".into());
        }
        let org_number = match org_number::parse(cell(layout.map.org_number)) {
            None => None,
            Some(OrgNumber::Valid(n)) => Some(n),
            Some(OrgNumber::Invalid(n)) => {
                self.warn(
                    line,
                    format!("organisation number `{n}` fails the MOD11 check; kept as written"),
                );
                Some(n)
            }
            Some(OrgNumber::Unreadable) => {
                let raw = sanitize::excerpt(cell(layout.map.org_number).trim(), 40);
                self.warn(
                    line,
                    format!("organisation number `{raw}` is not a number; left out"),
                );
                None
            }
        };
        let enrolled = match fields::parse_date(cell(layout.map.enrolled)) {
            Ok(d) => d,
            Err(()) => {
                let raw = sanitize::excerpt(cell(layout.map.enrolled).trim(), 40);
                self.warn(line, format!("enrolment date `{raw}` is not a date (use 2017-02-01 or 01.02.2017); left out"));
                None
            }
        };
        let flag = match fields::parse_flag(cell(layout.map.inbound_tls)) {
            Ok(f) => f,
            Err(()) => {
                let raw = sanitize::excerpt(cell(layout.map.inbound_tls).trim(), 40);
                self.warn(
                    line,
                    format!("5.2.4 flag `{raw}` is neither Ja nor Nei; left out"),
                );
                None
            }
        };

        let mut domains = Vec::new();
        for token in tokens {
            match Domain::parse(token, self.rules) {
                Ok(d) => {
                    if let Some(why) = d.lookalike() {
                        self.warn(
                            line,
                            format!("domain `{d}` {why}; check it with the participant"),
                        );
                    }
                    domains.push(d)
                }
                Err(e) => self.warn(
                    line,
                    format!("domain `{}` {e}; left out", sanitize::excerpt(token, 80)),
                ),
            }
        }
        if domains.is_empty() {
            return;
        }

        let name = folded(&organization);
        let hash = self.key_hash(&name, org_number.as_deref());
        let idx = match self.find(hash, &name, org_number.as_deref()) {
            Some(i) => {
                self.merge_fields(i, line, enrolled, flag);
                i
            }
            None => {
                drop(name);
                let i = self.participants.len();
                self.participants.push(Participant {
                    organization,
                    org_number,
                    domains: Vec::new(),
                    enrolled,
                    enforces_inbound_tls: flag,
                });
                self.chain
                    .push(self.by_key.insert(hash, i).unwrap_or(usize::MAX));
                i
            }
        };
        for d in domains {
            match self.seen.get(&d) {
                Some(&(_, owner)) if owner == idx => {}
                Some(&(first_line, owner)) => {
                    let who = sanitize::excerpt(&self.participants[owner].organization, 60);
                    self.warn(
                        line,
                        format!("domain `{d}` is already listed on line {first_line} (for `{who}`); kept there only"),
                    );
                }
                None => {
                    self.seen.insert(d, (line, idx));
                }
            }
        }
    }

    /// A second row for the same organisation: keep the earliest date; a conflicting flag is reported.
    fn merge_fields(
        &mut self,
        i: usize,
        line: u64,
        enrolled: Option<NaiveDate>,
        flag: Option<bool>,
    ) {
        let p = &mut self.participants[i];
        p.enrolled = match (p.enrolled, enrolled) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let conflict = matches!((p.enforces_inbound_tls, flag), (Some(a), Some(b)) if a != b);
        if p.enforces_inbound_tls.is_none() {
            p.enforces_inbound_tls = flag;
        }
        if conflict {
            let msg = format!(
                "5.2.4 flag differs from an earlier row of `{}`; the first is kept",
                sanitize::excerpt(&p.organization, 60)
            );
            self.warn(line, msg);
        }
    }

    fn finish(mut self) -> ParticipantList {
        for (d, (_, owner)) in std::mem::take(&mut self.seen) {
            self.participants[owner].domains.push(d);
        }
        let mut participants: Vec<Participant> = self
            .participants
            .into_iter()
            .filter(|p| !p.domains.is_empty())
            .collect();
        for p in &mut participants {
            p.domains.sort();
        }
        // By name, then first domain: each name's key computed once, the domains compared where they are.
        let keys: Vec<String> = participants
            .iter()
            .map(|p| norwegian_order(&p.organization))
            .collect();
        let mut order: Vec<usize> = (0..participants.len()).collect();
        order.sort_by(|&a, &b| {
            keys[a]
                .cmp(&keys[b])
                .then_with(|| participants[a].domains[0].cmp(&participants[b].domains[0]))
        });
        let mut slots: Vec<Option<Participant>> = participants.into_iter().map(Some).collect();
        let participants: Vec<Participant> =
            order.iter().filter_map(|&i| slots[i].take()).collect();
        self.warnings.sort_by_key(|w| w.line.unwrap_or(0));
        if participants.is_empty() {
            self.warnings
                .push(Warning::general("the list holds no usable domain"));
        }
        ParticipantList {
            participants,
            warnings: self.warnings,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_in_norwegian_order() {
        let mut names = vec!["Åsen Sparebank", "Zeta", "Ørland", "Ærlig", "alfa", "Øst"];
        names.sort_by_key(|n| norwegian_order(n));
        assert_eq!(
            names,
            ["alfa", "Zeta", "Ærlig", "Ørland", "Øst", "Åsen Sparebank"]
        );
    }

    fn recs(rows: &[&[&str]]) -> Vec<Record> {
        rows.iter()
            .enumerate()
            .map(|(i, r)| Record {
                line: i as u64 + 1,
                cells: r.iter().map(|s| s.to_string()).collect(),
            })
            .collect()
    }

    const HEADER: &[&str] = &[
        "Company name",
        "Company Identification number",
        "Domain with forced TLS",
        "Date of enrolment",
        "Requirement 5.2.4 supported?",
    ];

    #[test]
    fn reads_the_documented_example() {
        let list = build(
            &recs(&[
                HEADER,
                &["Bits AS", "916960190", "bits.no", "2017-02-01", "Nei"],
                &["Finans Norge", "", "fno.no", "2017-02-01", "Ja"],
            ]),
            &ParseOptions::default(),
        )
        .unwrap();
        assert_eq!(list.warnings, vec![]);
        assert_eq!(list.participants.len(), 2);
        let bits = &list.participants[0];
        assert_eq!(bits.organization, "Bits AS");
        assert_eq!(bits.org_number.as_deref(), Some("916960190"));
        assert_eq!(bits.domains[0].as_str(), "bits.no");
        assert_eq!(bits.enforces_inbound_tls, Some(false));
        assert_eq!(list.participants[1].org_number, None);
        assert_eq!(list.participants[1].enforces_inbound_tls, Some(true));
    }

    #[test]
    fn multi_domain_cells_merge_rows_and_duplicates() {
        let list = build(
            &recs(&[
                HEADER,
                &[
                    "DNB Bank ASA",
                    "984851006",
                    "DNB.no, dnb.com;\nnordea.no",
                    "1.2.2017",
                    "Ja",
                ],
                &[
                    "DNB Bank ASA",
                    "984851006",
                    "dnbbank.no",
                    "01.01.2017",
                    "Ja",
                ],
                &["Nordea", "", "nordea.no", "", ""],
                &["", "", "", "", ""],
                &["Sist oppdatert 16.11.2021", "", "", "", ""],
            ]),
            &ParseOptions::default(),
        )
        .unwrap();
        let names: Vec<_> = list
            .participants
            .iter()
            .map(|p| p.organization.as_str())
            .collect();
        assert_eq!(
            names,
            ["DNB Bank ASA"],
            "Nordea had only a duplicate domain"
        );
        let dnb = &list.participants[0];
        let doms: Vec<_> = dnb.domains.iter().map(|d| d.as_str()).collect();
        assert_eq!(doms, ["dnb.com", "dnb.no", "dnbbank.no", "nordea.no"]);
        assert_eq!(dnb.enrolled, NaiveDate::from_ymd_opt(2017, 1, 1));
        let lines: Vec<_> = list.warnings.iter().map(|w| w.line).collect();
        assert_eq!(lines, [Some(4), Some(6)]);
        assert!(list.warnings[0]
            .message
            .contains("already listed on line 2"));
        assert!(list.warnings[1].message.contains("no domain"));
    }

    /// Rows merge when their names are equal ignoring case as `str::to_lowercase` folds them (which
    /// makes a word-final `Σ` a `ς`) and their org numbers are equal.
    #[test]
    fn rows_merge_by_name_ignoring_case_and_by_org_number() {
        let list = build(
            &recs(&[
                HEADER,
                &["Øst Bank AS", "", "a.no", "", ""],
                &["ØST BANK as", "", "b.no", "", ""],
                &["øst bank AS", "916960190", "c.no", "", ""],
                &["ΟΔΟΣ", "", "d.no", "", ""],
                &["Οδοσ", "", "e.no", "", ""],
                &["οδος", "", "f.no", "", ""],
            ]),
            &ParseOptions::default(),
        )
        .unwrap();
        let rows: Vec<(String, Vec<&str>)> = list
            .participants
            .iter()
            .map(|p| {
                (
                    p.organization.clone(),
                    p.domains.iter().map(|d| d.as_str()).collect(),
                )
            })
            .collect();
        assert_eq!(
            rows,
            [
                ("Øst Bank AS".to_string(), vec!["a.no", "b.no"]),
                ("øst bank AS".to_string(), vec!["c.no"]),
                ("ΟΔΟΣ".to_string(), vec!["d.no", "f.no"]),
                ("Οδοσ".to_string(), vec!["e.no"]),
            ]
        );
    }

    #[test]
    fn cells_are_held_in_one_string_and_read_back() {
        let cells: Cells = ["", "Bits AS", "", "bits.no\nbits.com", "Ø"]
            .into_iter()
            .collect();
        assert_eq!(cells.len(), 5);
        assert_eq!(cells, ["", "Bits AS", "", "bits.no\nbits.com", "Ø"]);
        assert_eq!(cells.get(3), Some("bits.no\nbits.com"));
        assert_eq!(cells.get(5), None);
        assert_eq!(cells.join("|"), "|Bits AS||bits.no\nbits.com|Ø");
        assert!(Cells::default().is_empty());
        assert_ne!(cells, ["", "Bits AS", "", "bits.no", "\nbits.comØ"]);
    }

    #[test]
    fn bad_cells_warn_with_line_numbers() {
        let list = build(
            &recs(&[
                HEADER,
                &[
                    "Evil\x1b[2J Corp",
                    "12345",
                    "ok.no bad_domain.no",
                    "31.31.2017",
                    "kanskje",
                ],
            ]),
            &ParseOptions::default(),
        )
        .unwrap();
        assert_eq!(list.participants.len(), 1);
        let p = &list.participants[0];
        assert_eq!(p.organization, "Evil [2J Corp");
        assert_eq!(p.org_number.as_deref(), Some("12345"));
        assert_eq!(p.enrolled, None);
        assert_eq!(p.enforces_inbound_tls, None);
        assert_eq!(list.warnings.len(), 4, "{:?}", list.warnings);
        assert!(list.warnings.iter().all(|w| w.line == Some(2)));
    }
}
