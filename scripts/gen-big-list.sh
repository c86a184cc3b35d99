#!/usr/bin/env bash
# Writes a realistic list of N participants (default 100000) to stdout: the requirement document's
# headers, `;`-separated, UTF-8 with BOM and CRLF like an Excel export, with one row in ten holding two
# domains and one in fifty an IDN. Used by the benchmarks.
set -euo pipefail
n="${1:-100000}"
printf '\xef\xbb\xbf'
awk -v n="$n" 'BEGIN {
  printf "Company name;Company Identification number;Domain with forced TLS;Date of enrolment;Requirement 5.2.4 supported?\r\n"
  for (i = 0; i < n; i++) {
    d = sprintf("virksomhet-%06d.no", i)
    if (i % 10 == 0) d = d ", " sprintf("post-%06d.no", i)
    if (i % 50 == 0) d = d "; " sprintf("blåbær-%06d.no", i)
    printf "Virksomhet nr %d AS;%09d;%s;%d.%d.20%02d;%s\r\n", i, 900000000 + i, d, 1 + i % 28, 1 + i % 12, 17 + i % 9, (i % 3 ? "Ja" : "Nei")
  }
}'
