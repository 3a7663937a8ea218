# Shared by scripts/c-tests.sh and scripts/c-tests-server.sh (sourced, not run):
# PASS/FAIL bookkeeping, failure reports, building the C/C++ test programs
# plainly and with ASan+UBSan, the sanitizer and valgrind settings, the loop
# over modes, and the closing "N passed, M failed" line.
#
# The sourcing script sets `root` (the repository), `out` (where programs and
# logs go), `cflags`, `cxxflags` (C++ programs only), `link`, `sanitize`, and
# defines `run LABEL LOG LIMIT COMMAND...`, which records one PASS or FAIL.

passed=0
failed=0
failures=()
pass() {
  echo "PASS $1"
  passed=$((passed + 1))
}
fail() {
  echo "FAIL $1"
  failed=$((failed + 1))
  failures+=("$1")
}

# What went wrong in a log: the failed checks, the first sanitizer or valgrind
# report (with its stack), then the last lines.
show_tail() {
  local log=$1 n=${2:-20}
  if grep -qE '^(FAIL|FATAL)|FATAL:' "$log"; then
    echo "    failed checks:"
    grep -E '^(FAIL|FATAL)|FATAL:' "$log" | grep -v '(see stderr)$' | head -n 15 | sed 's/^/    | /'
  fi
  local report='ERROR: (Address|Leak)Sanitizer|runtime error:|==[0-9]+== (Invalid|Conditional|Use of|Syscall param|Mismatched|Source and|Argument|Process terminating)|are definitely lost'
  if grep -qE "$report" "$log"; then
    echo "    first memory error report:"
    grep -m1 -A14 -E "$report" "$log" | sed 's/^/    | /'
  fi
  echo "    last lines:"
  tail -n "$n" "$log" | sed 's/^/    | /'
}

# Why a test program's exit status is a failure.
exit_reason() {
  local rc=$1 limit=$2
  case "$rc" in
    124) echo "timed out after ${limit}s" ;;
    99) echo "valgrind reported errors" ;;
    *) echo "exit status $rc" ;;
  esac
}

# Builds tests/c/PROGRAM.c (or .cpp) for each PROGRAM given, plainly as
# $out/PROGRAM and with the sanitizers as $out/PROGRAM.asan; sets `built`.
build_programs() {
  built=()
  local p log compile
  for p in "$@"; do
    if [ -f "tests/c/$p.cpp" ]; then
      compile=(c++ "${cxxflags[@]}" "tests/c/$p.cpp")
    else
      compile=(cc "${cflags[@]}" "tests/c/$p.c")
    fi
    log="$out/$p.build.log"
    if "${compile[@]}" "${link[@]}" -o "$out/$p" >"$log" 2>&1 &&
      "${compile[@]}" "${sanitize[@]}" "${link[@]}" -o "$out/$p.asan" >>"$log" 2>&1; then
      pass "build $p"
      built+=("$p")
    else
      fail "build $p (log $log)"
      show_tail "$log" 30
    fi
  done
}

# Rust prints caught panics (test_panic forces some): keep it to one line each.
export RUST_BACKTRACE=0

# LeakSanitizer / valgrind suppressions: only for memory that libbeckon keeps in
# process-wide statics until exit; see the files for each entry's reason.
memory_checkers() {
  local lsan_supp=tests/c/lsan.supp valgrind_supp=tests/c/valgrind.supp
  local lsan_options=print_suppressions=0
  if [ -f "$lsan_supp" ]; then lsan_options="suppressions=$root/$lsan_supp:$lsan_options"; fi
  asan_env=(
    "ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:abort_on_error=0:detect_stack_use_after_return=1:strict_string_checks=1:check_initialization_order=1"
    "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1"
    "LSAN_OPTIONS=$lsan_options"
  )
  valgrind_cmd=(valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite
    --show-leak-kinds=definite --num-callers=40 --fair-sched=yes --quiet)
  if [ -f "$valgrind_supp" ]; then valgrind_cmd+=("--suppressions=$root/$valgrind_supp"); fi
}

# Runs every built program in each mode of MODES (plain, asan, valgrind) with
# the time limits given in seconds; HEADING names the section.
run_modes() {
  local heading=$1 plain_limit=$2 asan_limit=$3 valgrind_limit=$4
  shift 4
  memory_checkers
  local mode p log
  for mode in "$@"; do
    echo
    echo "== $heading: $mode"
    if [ "$mode" = valgrind ] && ! command -v valgrind >/dev/null; then
      for p in "${built[@]}"; do fail "$p [valgrind] (valgrind is not installed)"; done
      continue
    fi
    for p in "${built[@]}"; do
      log="$out/$p.$mode.log"
      case "$mode" in
        plain) run "$p [plain]" "$log" "$plain_limit" env BECKON_TEST_SLOW=0 "$out/$p" ;;
        asan) run "$p [asan]" "$log" "$asan_limit" env BECKON_TEST_SLOW=0 "${asan_env[@]}" "$out/$p.asan" ;;
        valgrind) run "$p [valgrind]" "$log" "$valgrind_limit" env BECKON_TEST_SLOW=1 "${valgrind_cmd[@]}" "$out/$p" ;;
        *) fail "$p [$mode] (unknown mode)" ;;
      esac
    done
  done
}

# The closing lines; the exit status of the script.
summary() {
  echo
  if [ "$failed" -gt 0 ]; then
    echo "failed:"
    local f
    for f in "${failures[@]}"; do echo "  $f"; done
  fi
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}
