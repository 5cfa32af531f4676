#!/usr/bin/env bash
# make bench: one VM boot runs tests/bench.sh (every backend x resolution,
# BENCH_RUNS times); this turns its RESULT lines into a table of medians,
# spreads and ratios to anonymous MISSING (UFFDIO_COPY) measured in the same
# run, and plots the fault latency distributions.
#
# Usage: [BENCH_RUNS=5] scripts/bench.sh
# Output: build/bench/results.md (the table), build/bench/latency.png,
#         build/bench/raw.log (the VM's console)
set -euo pipefail
# shellcheck source=scripts/common.sh
. "$(dirname "$0")/common.sh"

out=$BUILD/bench
mkdir -p "$out"
step "running the benchmarks in the $VARIANT kernel's VM (BENCH_RUNS=${BENCH_RUNS:-5}; console: ${out#"$TOP"/}/raw.log)"
"$TOP/scripts/vm.sh" -t "${BENCH_TIMEOUT:-3000}" -l "$out/raw.log" -p "  | " \
	-a "$KSELFTEST/kvm" -a "$KSELFTEST/bench" -a "$TOP/tests/bench.sh" \
	-- "BENCH_RUNS=${BENCH_RUNS:-5} ./bench.sh" > /dev/null || die "the benchmark run failed (console: $out/raw.log)"

# RESULT lines -> "workload config backend value", value = faults (pages)/s.
grep '^RESULT ' "$out/raw.log" | awk '
	{ delete kv; for (i = 3; i <= NF; i++) { split($i, a, "="); kv[a[1]] = a[2] } }
	$2 == "uffd-bench" { printf "uffd-bench T=%s,H=%s %s %s %s %s\n", kv["threads"], kv["handlers"], kv["backend"], kv["faults_per_s"], kv["p50_us"], kv["p99_us"] }
	$2 == "dpt" { printf "vcpu vcpus=%s,uffds=%s %s %s - -\n", kv["vcpus"], (kv["uffds"] == 0 ? "-" : kv["uffds"]), kv["backend"], kv["rate"] }
' > "$out/results.tsv"
[ -s "$out/results.tsv" ] || die "no results in $out/raw.log"

# Per (workload, config, backend): median, min, max of the rate, median
# p50/p99; the ratio is to anon-missing's median in the same configuration.
# first-touch runs without handlers, so it is compared with the H=1 row.
{
	echo "# Benchmark results"
	echo
	echo "$(date -u '+%Y-%m-%d %H:%M UTC'), kernel $(git -C "$SRC" describe --always --tags 2>/dev/null || echo '?'), $(grep -c '^RESULT ' "$out/raw.log") measurements, ${BENCH_RUNS:-5} runs each."
	echo "QEMU TCG: absolute numbers are emulated; compare the ratios."
	echo "demand_paging_test runs retried after a guest triple fault (seen under TCG on the unpatched kernel too): $(grep -c '^RETRY ' "$out/raw.log")."
	echo
	echo "| workload | config | backend | median faults/s | min-max | x anon-missing | p50 us | p99 us |"
	echo "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |"
	sort -k1,1 -k2,2 -k3,3 "$out/results.tsv" | awk '
		function median(list,   n, v, i, j, t) {
			n = split(list, v, " ")
			for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (v[j] + 0 < v[i] + 0) { t = v[i]; v[i] = v[j]; v[j] = t }
			return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
		}
		function minmax(list,   n, v, i, lo, hi) {
			n = split(list, v, " "); lo = hi = v[1]
			for (i = 2; i <= n; i++) { if (v[i] + 0 < lo + 0) lo = v[i]; if (v[i] + 0 > hi + 0) hi = v[i] }
			return sprintf("%.0f-%.0f", lo, hi)
		}
		{ k = $1 SUBSEP $2 SUBSEP $3; if (!(k in rate)) keys[n++] = k
		  rate[k] = rate[k] " " $4; p50[k] = p50[k] " " $5; p99[k] = p99[k] " " $6 }
		END {
			for (i = 0; i < n; i++) { split(keys[i], f, SUBSEP); med[keys[i]] = median(rate[keys[i]]) }
			for (i = 0; i < n; i++) {
				split(keys[i], f, SUBSEP); cfg = f[2]
				if (f[3] == "first-touch") sub(/H=0/, "H=1", cfg)
				if (f[1] == "vcpu" && f[3] == "first-touch") cfg = "vcpus=" substr(f[2], 7, 1) ",uffds=" substr(f[2], 7, 1)
				ref = f[1] SUBSEP cfg SUBSEP "anon-missing"
				ratio = (ref in med && med[ref] > 0) ? sprintf("%.2f", med[keys[i]] / med[ref]) : "-"
				lat50 = (p50[keys[i]] ~ /-/) ? "-" : sprintf("%.1f", median(p50[keys[i]]))
				lat99 = (p99[keys[i]] ~ /-/) ? "-" : sprintf("%.1f", median(p99[keys[i]]))
				printf "| %s | %s | %s | %.0f | %s | %s | %s | %s |\n", f[1], f[2], f[3], med[keys[i]], minmax(rate[keys[i]]), ratio, lat50, lat99
			}
		}'
} > "$out/results.md"
cat "$out/results.md"

# The latency distributions (one faulting thread, one handler), as a CDF.
grep '^CDF ' "$out/raw.log" | awk '{ print $2, $3, $4 }' > "$out/cdf.dat"
if command -v gnuplot > /dev/null && [ -s "$out/cdf.dat" ]; then
	plots=()
	while read -r b; do
		awk -v b="$b" '$1 == b { print $3, $2 }' "$out/cdf.dat" > "$out/cdf-$b.dat"
		plots+=("'$out/cdf-$b.dat' using 1:2 with lines lw 2 title '$b'")
	done < <(awk '{ print $1 }' "$out/cdf.dat" | sort -u)
	gnuplot <<-GNUPLOT
		set terminal pngcairo size 900,560
		set output '$out/latency.png'
		set title 'userfaultfd fault latency, 1 faulting thread, 1 handler (QEMU TCG)'
		set xlabel 'latency of one fault, us (log scale)'
		set ylabel 'faults resolved within (%)'
		set logscale x
		set key bottom right
		set grid
		plot $(IFS=,; echo "${plots[*]}")
	GNUPLOT
	info "plot: ${out#"$TOP"/}/latency.png"
else
	info "gnuplot not installed: no plot"
fi
