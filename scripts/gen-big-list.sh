#!/usr/bin/env bash
# Writes a realistic list of N participants (default 100000) to stdout: the requirement document's
# headers, `;`-separated, UTF-8 with BOM and CRLF like an Excel export, valid MOD11 organisation numbers,
# one row in ten holding two domains and one in fifty also an IDN. Used by the benchmarks.
set -euo pipefail
n="${1:-100000}"
printf '\xef\xbb\xbf'
awk -v n="$n" 'BEGIN {
  split("3 2 7 6 5 4 3 2", w, " ")
  printf "Company name;Company Identification number;Domain with forced TLS;Date of enrolment;Requirement 5.2.4 supported?\r\n"
  base = 90000000
  for (i = 0; i < n; i++) {
    # the next 8-digit base whose MOD11 check digit is not 10
    do {
      s = sprintf("%08d", base++); sum = 0
      for (k = 1; k <= 8; k++) sum += substr(s, k, 1) * w[k]
      c = 11 - sum % 11; if (c == 11) c = 0
    } while (c == 10)
    d = sprintf("virksomhet-%06d.no", i)
    if (i % 10 == 0) d = d ", " sprintf("post-%06d.no", i)
    if (i % 50 == 0) d = d "; " sprintf("blåbær-%06d.no", i)
    printf "Virksomhet nr %d AS;%s%d;\"%s\";%d.%d.20%02d;%s\r\n", i, s, c, d, 1 + i % 28, 1 + i % 12, 17 + i % 9, (i % 3 ? "Ja" : "Nei")
  }
}'
