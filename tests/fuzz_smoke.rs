//! A short, stable-toolchain smoke run of the fuzz targets' bodies (fuzz/bodies.rs): each corpus file
//! of fuzz/corpus/TARGET, then deterministic mutations of it (bit flips, cut, repeated, spliced with
//! hostile snippets), for a bounded time. The real coverage-guided run is `bash scripts/fuzz.sh`.

#[path = "../fuzz/bodies.rs"]
mod bodies;

use std::path::Path;
use std::time::{Duration, Instant};

const SNIPPETS: &[&[u8]] = &[
    b"\n# END bits-tls <managed block>\n",
    b"\"x\nEND bits-tls\";;bits.no;Ja\n",
    b"<a href=\"/etc/passwd\">Domeneliste tvungen TLS i CSV</a>",
    b"<base href=\"file:///\">",
    b"xn--a.no",
    "b\u{456}ts.no".as_bytes(),
    b"\xff\xfe",
    b";;;;\r\n\r\n",
    b"${run{id}}",
    b"\x00\x1b[31m",
];

struct Rng(u64);
impl Rng {
    fn next(&mut self, below: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % below.max(1)
    }
}

fn mutate(seed: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..1 + rng.next(4) {
        match rng.next(5) {
            0 if !v.is_empty() => {
                let i = rng.next(v.len());
                v[i] ^= 1 << rng.next(8);
            }
            1 if !v.is_empty() => v.truncate(rng.next(v.len())),
            2 => {
                let s = SNIPPETS[rng.next(SNIPPETS.len())];
                let at = rng.next(v.len() + 1);
                v.splice(at..at, s.iter().copied());
            }
            3 if !v.is_empty() => {
                let a = rng.next(v.len());
                let b = (a + rng.next(64)).min(v.len());
                let chunk = v[a..b].to_vec();
                v.splice(b..b, chunk);
            }
            _ => v.push(rng.next(256) as u8),
        }
    }
    v
}

fn smoke(target: &str, body: fn(&[u8]), budget: Duration) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    seeds.sort();
    assert!(!seeds.is_empty());
    let mut rng = Rng(0xf022);
    let mut runs = 0;
    for s in &seeds {
        body(s);
        runs += 1;
    }
    let start = Instant::now();
    while start.elapsed() < budget {
        let seed = &seeds[rng.next(seeds.len())];
        let input = mutate(seed, &mut rng);
        body(&input);
        runs += 1;
    }
    eprintln!("fuzz smoke {target}: {runs} executions");
    runs
}

fn budget() -> Duration {
    Duration::from_millis(
        std::env::var("BITS_TLS_FUZZ_SMOKE_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1500),
    )
}

#[test]
fn csv_reader() {
    assert!(smoke("csv", bodies::csv, budget()) > 10);
}

#[test]
fn page_reader() {
    assert!(smoke("page", bodies::page, budget()) > 10);
}

#[test]
fn render_all() {
    assert!(smoke("render_all", bodies::render_all, budget()) > 10);
}
