#!/bin/sh
# A stand-in for a test suite: the release note must name a version.
grep -q '^release [0-9]' "$1"
