//! CSV bytes → rows: detect the encoding (UTF-8 with or without BOM, UTF-16 with BOM, else Windows-1252)
//! and the delimiter (`;`, `,`, tab or `|`), then read every record with its line number.

use crate::list::{self, Record};
use encoding_rs::{Encoding, UTF_8, WINDOWS_1252};

/// Text decoded from bytes, with the encoding that was used.
pub struct Decoded {
    pub text: String,
    pub encoding: &'static str,
}

/// Decodes by BOM, else strict UTF-8, else Windows-1252 (what Excel writes on Norwegian Windows).
/// Windows-1252 maps every byte, so decoding never fails; invalid input just yields odd characters
/// that the validators then refuse.
pub fn decode(bytes: &[u8]) -> Decoded {
    if let Some((enc, bom)) = Encoding::for_bom(bytes) {
        let (text, _) = enc.decode_without_bom_handling(&bytes[bom..]);
        return Decoded {
            text: text.into_owned(),
            encoding: enc.name(),
        };
    }
    match std::str::from_utf8(bytes) {
        Ok(s) => Decoded {
            text: s.to_owned(),
            encoding: UTF_8.name(),
        },
        Err(_) => {
            let (text, _) = WINDOWS_1252.decode_without_bom_handling(bytes);
            Decoded {
                text: text.into_owned(),
                encoding: WINDOWS_1252.name(),
            }
        }
    }
}

const DELIMITERS: [u8; 4] = [b';', b',', b'\t', b'|'];

/// Reads all records with the delimiter that best explains the text.
pub fn records(text: &str) -> (u8, Vec<Record>) {
    let delimiter = sniff_delimiter(text);
    (delimiter, read(text, delimiter, usize::MAX))
}

fn read(text: &str, delimiter: u8, limit: usize) -> Vec<Record> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(text.as_bytes());
    let mut out = Vec::new();
    let mut record = csv::ByteRecord::new();
    // Line numbers are counted from byte offsets: the reader's own line counter does not follow CRLF.
    let bytes = text.as_bytes();
    let (mut counted_to, mut line) = (0usize, 1u64);
    // Reading from an in-memory UTF-8 string cannot fail with I/O errors, and byte records accept any
    // content; a parse error can only end the loop early.
    while out.len() < limit {
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) | Err(_) => break,
        }
        // The reader stops between `\r` and `\n`, so a record's offset can sit on the previous line break.
        let mut start = record
            .position()
            .map_or(counted_to, |p| p.byte() as usize)
            .min(bytes.len());
        while start < bytes.len() && matches!(bytes[start], b'\r' | b'\n') {
            start += 1;
        }
        if start > counted_to {
            line += bytes[counted_to..start]
                .iter()
                .filter(|b| **b == b'\n')
                .count() as u64;
            counted_to = start;
        }
        let cells = record.iter().map(String::from_utf8_lossy).collect();
        out.push(Record { line, cells });
    }
    out
}

/// Scores each delimiter on the first rows: a recognised header row counts most, then how many rows
/// share the most common width above one column. Ties go to `;` (the Norwegian Excel default), then `,`.
fn sniff_delimiter(text: &str) -> u8 {
    let mut best = (DELIMITERS[0], (0usize, 0usize));
    for d in DELIMITERS {
        let rows = read(text, d, 50);
        let header = list::header_score(&rows);
        let mut widths = std::collections::HashMap::new();
        for r in rows.iter().filter(|r| r.cells.len() > 1) {
            *widths.entry(r.cells.len()).or_insert(0usize) += 1;
        }
        let consistent = widths.values().copied().max().unwrap_or(0);
        let score = (header, consistent);
        if score > best.1 {
            best = (d, score);
        }
    }
    best.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_boms_utf8_and_windows_1252() {
        assert_eq!(decode(b"\xEF\xBB\xBFS\xC3\xB8r").text, "Sør");
        assert_eq!(decode("Sør".as_bytes()).encoding, "UTF-8");
        let cp = decode(b"S\xF8r");
        assert_eq!((cp.text.as_str(), cp.encoding), ("Sør", "windows-1252"));
        assert_eq!(decode(b"\xFF\xFES\x00\xF8\x00r\x00").text, "Sør");
    }

    #[test]
    fn sniffs_delimiters() {
        let semi = "Virksomhet;Org.nr;Domene\nBits AS;916960190;bits.no, x.no\n";
        assert_eq!(records(semi).0, b';');
        let comma = "Company name,Domain with forced TLS\n\"Bits; AS\",bits.no\n";
        assert_eq!(records(comma).0, b',');
        let tab = "Navn\tDomene\tDato\nBits AS\tbits.no\t1.2.2017\n";
        assert_eq!(records(tab).0, b'\t');
    }

    #[test]
    fn line_numbers_follow_multiline_cells_and_crlf() {
        let text = "Navn;Domene\r\nA;\"a.no\r\nb.no\"\r\nB;c.no\r\n";
        let (_, rows) = records(text);
        let lines: Vec<u64> = rows.iter().map(|r| r.line).collect();
        assert_eq!(lines, [1, 2, 4]);
        assert_eq!(rows[1].cells.get(1), Some("a.no\r\nb.no"));
    }
}
