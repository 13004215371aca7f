#!/bin/sh
# Builds the nightly sales report for one report request. Input (stdin): a JSON
# object with "day" (YYYY-MM-DD). Output (stdout): the report as JSON, without
# a trailing newline (the exec filter keeps stdout byte for byte). In a
# real deployment this would query the warehouse; here it summarises the
# request so the example runs anywhere.
set -eu
req=$(cat)
day=$(printf '%s' "$req" | sed -n 's/.*"day" *: *"\([0-9-]*\)".*/\1/p')
[ -n "$day" ] || { echo "no \"day\" in report request" >&2; exit 65; }
printf '{"report":"daily-sales","day":"%s","generated_at":"%s","job":"%s"}' \
  "$day" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "${MILLRACE_JOB:-}"
