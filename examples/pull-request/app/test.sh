#!/bin/sh
# The app's tests: each line checks one behaviour, and any failure fails the run.
set -eu
. ./greet.sh
fail=0
check() { # check WHAT GOT WANT
  if [ "$2" = "$3" ]; then echo "ok   $1"; else echo "FAIL $1: got '$2', want '$3'"; fail=1; fi
}
check "greets the world by default" "$(greet)" "Hello, world!"
check "greets by name" "$(greet Ada)" "Hello, Ada!"
for t in tests/*.sh; do
  [ -e "$t" ] && . "./$t"
done
exit $fail
