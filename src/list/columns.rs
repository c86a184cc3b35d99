//! Finding the header row and mapping columns to fields by name (Norwegian or English, any order), with
//! a `--columns` override for a layout nobody foresaw and a content-based guess when there is no header.

use super::Record;
use std::fmt;
use std::str::FromStr;

/// What a column holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    Organization,
    OrgNumber,
    Domain,
    Enrolled,
    InboundTls,
}

impl Field {
    pub const ALL: [Field; 5] = [
        Field::Organization,
        Field::OrgNumber,
        Field::Domain,
        Field::Enrolled,
        Field::InboundTls,
    ];

    /// The name used in `--columns` and in messages (the JSON key of the same field).
    pub fn key(self) -> &'static str {
        match self {
            Field::Organization => "organization",
            Field::OrgNumber => "org_number",
            Field::Domain => "domain",
            Field::Enrolled => "enrolled",
            Field::InboundTls => "enforces_inbound_tls",
        }
    }

    fn from_key(s: &str) -> Option<Field> {
        Some(
            match s.trim().to_ascii_lowercase().replace('-', "_").as_str() {
                "organization" | "organisation" | "name" => Field::Organization,
                "org_number" | "orgnr" => Field::OrgNumber,
                "domain" | "domains" => Field::Domain,
                "enrolled" | "date" => Field::Enrolled,
                "enforces_inbound_tls" | "inbound" | "5.2.4" => Field::InboundTls,
                _ => return None,
            },
        )
    }
}

/// Column indexes (0-based) for each field. Several columns may hold domains.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ColumnMap {
    pub organization: Option<usize>,
    pub org_number: Option<usize>,
    pub domains: Vec<usize>,
    pub enrolled: Option<usize>,
    pub inbound_tls: Option<usize>,
}

impl ColumnMap {
    fn set(&mut self, field: Field, col: usize) {
        match field {
            Field::Organization => self.organization = Some(col),
            Field::OrgNumber => self.org_number = Some(col),
            Field::Domain => {
                if !self.domains.contains(&col) {
                    self.domains.push(col)
                }
            }
            Field::Enrolled => self.enrolled = Some(col),
            Field::InboundTls => self.inbound_tls = Some(col),
        }
    }

    fn has(&self, field: Field) -> bool {
        match field {
            Field::Organization => self.organization.is_some(),
            Field::OrgNumber => self.org_number.is_some(),
            Field::Domain => !self.domains.is_empty(),
            Field::Enrolled => self.enrolled.is_some(),
            Field::InboundTls => self.inbound_tls.is_some(),
        }
    }

    fn count(&self) -> usize {
        Field::ALL.iter().filter(|f| self.has(**f)).count()
    }

    /// Removes `col` from every field (an override takes the column for itself).
    fn release(&mut self, col: usize) {
        for slot in [
            &mut self.organization,
            &mut self.org_number,
            &mut self.enrolled,
            &mut self.inbound_tls,
        ] {
            if *slot == Some(col) {
                *slot = None;
            }
        }
        self.domains.retain(|c| *c != col);
    }
}

impl fmt::Display for ColumnMap {
    /// `domain=3, organization=1` with 1-based column numbers, as `--columns` takes them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        for d in &self.domains {
            parts.push(format!("domain={}", d + 1));
        }
        for (field, col) in [
            (Field::Organization, self.organization),
            (Field::OrgNumber, self.org_number),
            (Field::Enrolled, self.enrolled),
            (Field::InboundTls, self.inbound_tls),
        ] {
            if let Some(c) = col {
                parts.push(format!("{}={}", field.key(), c + 1));
            }
        }
        f.write_str(&parts.join(","))
    }
}

/// A column named in `--columns`: by 1-based number or by header text (case-insensitive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnRef {
    Number(usize),
    Name(String),
}

/// `--columns domain=3,organization=Firma,org_number=2`: fields pinned to columns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ColumnOverride {
    pub entries: Vec<(Field, ColumnRef)>,
}

impl FromStr for ColumnOverride {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let mut entries = Vec::new();
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (k, v) = item
                .split_once('=')
                .ok_or_else(|| format!("`{item}` is not FIELD=COLUMN"))?;
            let field = Field::from_key(k).ok_or_else(|| {
                format!(
                    "unknown field `{}`; expected one of {}",
                    k.trim(),
                    Field::ALL.map(Field::key).join(", ")
                )
            })?;
            let v = v.trim();
            let col = match v.parse::<usize>() {
                Ok(0) => return Err("column numbers start at 1".into()),
                Ok(n) => ColumnRef::Number(n),
                Err(_) if v.is_empty() => return Err(format!("`{item}` names no column")),
                Err(_) => ColumnRef::Name(v.to_string()),
            };
            if field != Field::Domain && entries.iter().any(|(f, _)| *f == field) {
                return Err(format!("`{}` is given twice", field.key()));
            }
            entries.push((field, col));
        }
        if entries.is_empty() {
            return Err("no columns given".into());
        }
        Ok(ColumnOverride { entries })
    }
}

/// Where the data is: the header row (index into the records) if any, and the columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub header: Option<usize>,
    pub map: ColumnMap,
    /// Columns were guessed from cell contents (no header row was recognised).
    pub guessed: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("no column of domains found: no header row names a domain column (looked at the first {rows} rows) and no column holds mostly domains")]
    NoDomainColumn { rows: usize },
    #[error("`--columns` names the column `{0}`, but no header row in the first {HEADER_SCAN} rows has it")]
    NameNotFound(String),
    #[error("`--columns` names column {number}, but the file has {width} columns")]
    NumberBeyond { number: usize, width: usize },
}

impl LayoutError {
    pub fn hint(&self) -> &'static str {
        "name the columns yourself, e.g. `--columns domain=3,organization=1,org_number=2`"
    }
}

/// How many rows from the top may come before the header (titles, notes, blank lines).
pub const HEADER_SCAN: usize = 30;

/// Decides the header row and the column of each field.
pub fn detect(records: &[Record], over: Option<&ColumnOverride>) -> Result<Layout, LayoutError> {
    let scan = &records[..records.len().min(HEADER_SCAN)];
    let mut layout = match find_header(scan) {
        Some((i, map)) => Layout {
            header: Some(i),
            map,
            guessed: false,
        },
        None => Layout {
            header: None,
            map: ColumnMap::default(),
            guessed: false,
        },
    };
    if let Some(over) = over {
        apply_override(scan, over, &mut layout)?;
    }
    if layout.map.domains.is_empty() {
        let start = layout.header.map_or(0, |h| h + 1);
        match guess_from_content(&records[start..]) {
            Some(map) => {
                // A first row whose "domain" is no domain at all is a header we did not recognise.
                let first = records[start..]
                    .iter()
                    .position(|r| r.cells.iter().any(|c| !c.trim().is_empty()));
                if let Some(i) = first {
                    let row = &records[start + i];
                    let domain_cells = map.domains.iter().filter_map(|c| row.cells.get(*c));
                    if domain_cells.clone().count() > 0
                        && domain_cells.into_iter().all(|c| !cell_has_domain(c))
                    {
                        layout.header = Some(start + i);
                    }
                }
                layout.map = map;
                layout.guessed = true;
            }
            None => return Err(LayoutError::NoDomainColumn { rows: scan.len() }),
        }
    }
    Ok(layout)
}

fn apply_override(
    scan: &[Record],
    over: &ColumnOverride,
    layout: &mut Layout,
) -> Result<(), LayoutError> {
    let names: Vec<&str> = over
        .entries
        .iter()
        .filter_map(|(_, c)| match c {
            ColumnRef::Name(n) => Some(n.as_str()),
            ColumnRef::Number(_) => None,
        })
        .collect();
    if let Some(first) = names.first() {
        // The header row is the first row that has every named column.
        let row = scan
            .iter()
            .position(|r| names.iter().all(|n| position_of(r, n).is_some()))
            .ok_or_else(|| LayoutError::NameNotFound(first.to_string()))?;
        if layout.header != Some(row) {
            layout.header = Some(row);
            layout.map = map_header(&scan[row].cells);
        }
    }
    let width = scan.iter().map(|r| r.cells.len()).max().unwrap_or(0);
    if let Some(number) = over.entries.iter().find_map(|(_, c)| match c {
        ColumnRef::Number(n) if *n > width => Some(*n),
        _ => None,
    }) {
        return Err(LayoutError::NumberBeyond { number, width });
    }
    // Fields named in the override replace whatever detection found for them.
    let mut cleared = Vec::new();
    for (field, col) in &over.entries {
        let idx = match col {
            ColumnRef::Number(n) => n - 1,
            ColumnRef::Name(n) => position_of(&scan[layout.header.unwrap_or(0)], n).unwrap_or(0),
        };
        if !cleared.contains(field) {
            clear(&mut layout.map, *field);
            cleared.push(*field);
        }
        layout.map.release(idx);
        layout.map.set(*field, idx);
    }
    Ok(())
}

fn clear(map: &mut ColumnMap, field: Field) {
    match field {
        Field::Organization => map.organization = None,
        Field::OrgNumber => map.org_number = None,
        Field::Domain => map.domains.clear(),
        Field::Enrolled => map.enrolled = None,
        Field::InboundTls => map.inbound_tls = None,
    }
}

fn position_of(r: &Record, name: &str) -> Option<usize> {
    let want = normalise(name);
    r.cells.iter().position(|c| normalise(c) == want)
}

/// The first row that names a domain column and at least one other field; or a lone cell that is
/// exactly a domain heading (a one-column list).
fn find_header(scan: &[Record]) -> Option<(usize, ColumnMap)> {
    scan.iter().enumerate().find_map(|(i, r)| {
        let map = map_header(&r.cells);
        let non_empty = r.cells.iter().filter(|c| !c.trim().is_empty()).count();
        let ok = !map.domains.is_empty() && (map.count() >= 2 || non_empty == 1);
        ok.then_some((i, map))
    })
}

/// Maps each recognised header cell to its field; the first column wins for single-valued fields.
pub fn map_header(cells: &super::Cells) -> ColumnMap {
    let mut map = ColumnMap::default();
    for (i, cell) in cells.iter().enumerate() {
        if let Some(field) = classify(cell) {
            if field == Field::Domain || !map.has(field) {
                map.set(field, i);
            }
        }
    }
    map
}

/// Lower-case words of a header cell: letters (æøå included) and digits; everything else separates.
fn normalise(cell: &str) -> String {
    let lower = cell.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    words.join(" ")
}

/// What a header cell names, in Norwegian or English. The order of the checks matters: "Company
/// identification number" is a number, not a name; "Domene med tvungen TLS" is a domain, not a flag.
pub fn classify(cell: &str) -> Option<Field> {
    let norm = normalise(cell);
    if norm.is_empty() || norm.len() > 80 {
        return None;
    }
    let words: Vec<&str> = norm.split(' ').collect();
    let has = |set: &[&str]| words.iter().any(|w| set.contains(w));
    let joined = norm.replace(' ', "");

    if norm.contains("5 2 4") || has(&["524", "inbound", "innkommende", "innkommande"]) {
        return Some(Field::InboundTls);
    }
    const NUMBER_WORDS: &[&str] = &[
        "orgnr",
        "organisasjonsnummer",
        "organisasjonsnr",
        "orgnummer",
        "foretaksnummer",
        "foretaksnr",
        "enhetsnummer",
    ];
    const ENTITY: &[&str] = &[
        "org",
        "organisasjons",
        "organisasjon",
        "organization",
        "organisation",
        "company",
        "foretak",
        "foretaks",
        "virksomhet",
        "virksomhetens",
        "selskap",
        "selskapets",
    ];
    const NUMBERISH: &[&str] = &[
        "nr",
        "no",
        "number",
        "nummer",
        "id",
        "identification",
        "num",
    ];
    if has(NUMBER_WORDS)
        || (has(ENTITY) && has(NUMBERISH))
        || words == ["identification", "number"]
        || joined == "orgnr"
    {
        return Some(Field::OrgNumber);
    }
    const DOMAIN: &[&str] = &[
        "domain",
        "domains",
        "domene",
        "domener",
        "domenet",
        "domenenavn",
        "domenenavnet",
        "postdomene",
        "epostdomene",
        "maildomene",
        "maildomain",
        "emaildomain",
        "domenenamn",
    ];
    if has(DOMAIN) {
        return Some(Field::Domain);
    }
    const DATE: &[&str] = &[
        "date",
        "dato",
        "innmeldt",
        "innmelding",
        "innmeldingsdato",
        "enrolment",
        "enrollment",
        "enrolled",
        "registrert",
        "registreringsdato",
        "joined",
        "tilsluttet",
        "tilmeldt",
        "påmeldt",
        "since",
        "fra",
    ];
    if has(DATE) {
        return Some(Field::Enrolled);
    }
    const NAME: &[&str] = &[
        "company",
        "name",
        "navn",
        "namn",
        "virksomhet",
        "virksomhetsnavn",
        "selskap",
        "selskapsnavn",
        "organization",
        "organisation",
        "organisasjon",
        "organisasjonsnavn",
        "foretak",
        "foretaksnavn",
        "bedrift",
        "deltaker",
        "deltakar",
        "participant",
        "firma",
        "firmanavn",
        "institusjon",
        "aktør",
        "member",
        "medlem",
    ];
    if has(NAME) {
        return Some(Field::Organization);
    }
    None
}

/// Whether a cell holds at least one valid domain.
fn cell_has_domain(cell: &str) -> bool {
    use crate::domain::{Domain, DomainRules};
    cell.split(|c: char| c == ',' || c == ';' || c.is_whitespace())
        .any(|t| Domain::parse(t, DomainRules::default()).is_ok())
}

/// No header: pick columns by what their cells look like (domains, 9-digit numbers, dates, Ja/Nei).
fn guess_from_content(rows: &[Record]) -> Option<ColumnMap> {
    let sample = &rows[..rows.len().min(200)];
    let width = sample.iter().map(|r| r.cells.len()).max()?;
    let share = |col: usize, test: &dyn Fn(&str) -> bool| -> f64 {
        let cells: Vec<&str> = sample
            .iter()
            .filter_map(|r| r.cells.get(col).map(|c| c.trim()))
            .filter(|c| !c.is_empty())
            .collect();
        if cells.is_empty() {
            return 0.0;
        }
        cells.iter().filter(|c| test(c)).count() as f64 / cells.len() as f64
    };
    let mut map = ColumnMap::default();
    let mut taken = vec![false; width];
    let mut pick = |map: &mut ColumnMap, field: Field, test: &dyn Fn(&str) -> bool| {
        let best = (0..width)
            .filter(|c| !taken[*c])
            .map(|c| (c, share(c, test)))
            .filter(|(_, s)| *s >= 0.6)
            .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)));
        if let Some((c, _)) = best {
            taken[c] = true;
            map.set(field, c);
        }
    };
    pick(&mut map, Field::Domain, &cell_has_domain);
    map.domains.first()?;
    pick(&mut map, Field::OrgNumber, &|c| {
        matches!(
            crate::org_number::parse(c),
            Some(crate::org_number::OrgNumber::Valid(_))
        )
    });
    pick(&mut map, Field::Enrolled, &|c| {
        matches!(super::fields::parse_date(c), Ok(Some(_)))
    });
    pick(&mut map, Field::InboundTls, &|c| {
        matches!(super::fields::parse_flag(c), Ok(Some(_)))
    });
    pick(&mut map, Field::Organization, &|c| {
        c.chars().any(char::is_alphabetic)
    });
    Some(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(line: u64, cells: &[&str]) -> Record {
        Record {
            line,
            cells: cells.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn classifies_english_and_norwegian_headers() {
        use Field::*;
        let cases = [
            ("Company name", Organization),
            ("Company Identification number", OrgNumber),
            ("Domain with forced TLS", Domain),
            ("Date of enrolment", Enrolled),
            ("Requirement 5.2.4 supported?", InboundTls),
            ("Virksomhet", Organization),
            ("Selskapsnavn", Organization),
            ("Navn", Organization),
            ("Org.nr.", OrgNumber),
            ("Org. nr", OrgNumber),
            ("Organisasjonsnummer", OrgNumber),
            ("Domene", Domain),
            ("Domener med tvungen TLS", Domain),
            ("E-postdomene", Domain),
            ("Dato innmeldt", Enrolled),
            ("Innmeldingsdato", Enrolled),
            ("Krav 5.2.4", InboundTls),
            ("Støtter krav 5.2.4?", InboundTls),
        ];
        for (cell, want) in cases {
            assert_eq!(classify(cell), Some(want), "{cell}");
        }
        assert_eq!(classify("Domeneliste tvungen TLS"), None);
        assert_eq!(classify("Kommentar"), None);
        assert_eq!(classify(""), None);
    }

    #[test]
    fn finds_header_below_a_title() {
        let rows = [
            rec(1, &["Domeneliste tvungen TLS", "", ""]),
            rec(2, &[]),
            rec(3, &["Domene", "Virksomhet", "Org.nr"]),
            rec(4, &["bits.no", "Bits AS", "916960190"]),
        ];
        let l = detect(&rows, None).unwrap();
        assert_eq!(l.header, Some(2));
        assert_eq!(l.map.domains, vec![0]);
        assert_eq!(l.map.organization, Some(1));
        assert_eq!(l.map.org_number, Some(2));
        assert!(!l.guessed);
    }

    #[test]
    fn guesses_columns_without_header() {
        let rows = [
            rec(1, &["Bits AS", "916960190", "bits.no", "01.02.2017", "Nei"]),
            rec(2, &["Finans Norge", "", "fno.no", "01.02.2017", "Ja"]),
        ];
        let l = detect(&rows, None).unwrap();
        assert_eq!(l.header, None);
        assert!(l.guessed);
        assert_eq!(
            l.map.to_string(),
            "domain=3,organization=1,org_number=2,enrolled=4,enforces_inbound_tls=5"
        );
    }

    #[test]
    fn override_by_number_and_name() {
        let rows = [
            rec(1, &["Firma", "Nettsted", "Adresse"]),
            rec(2, &["Bits AS", "bits.no", "x"]),
        ];
        assert!(matches!(
            detect(&rows[..1], None),
            Err(LayoutError::NoDomainColumn { .. })
        ));
        let over: ColumnOverride = "domain=Nettsted,organization=1".parse().unwrap();
        let l = detect(&rows, Some(&over)).unwrap();
        assert_eq!(l.header, Some(0));
        assert_eq!(l.map.domains, vec![1]);
        assert_eq!(l.map.organization, Some(0));
        let bad: ColumnOverride = "domain=Missing".parse().unwrap();
        assert!(matches!(
            detect(&rows, Some(&bad)),
            Err(LayoutError::NameNotFound(_))
        ));
    }

    #[test]
    fn override_syntax_errors() {
        assert!("domain".parse::<ColumnOverride>().is_err());
        assert!("colour=3".parse::<ColumnOverride>().is_err());
        assert!("domain=0".parse::<ColumnOverride>().is_err());
        assert!("".parse::<ColumnOverride>().is_err());
    }
}
