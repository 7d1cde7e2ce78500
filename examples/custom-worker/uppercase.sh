#!/bin/sh
# The command `sluice worker` runs for each job: it reads the input artifact's files and writes
# the output artifact's, and reports an output variable.
set -eu
mkdir -p "$SLUICE_OUTPUT_DIR"
tr a-z A-Z < "$SLUICE_INPUT_DIR/words.txt" > "$SLUICE_OUTPUT_DIR/WORDS.TXT"
echo "LINES=$(wc -l < "$SLUICE_OUTPUT_DIR/WORDS.TXT" | tr -d ' ')" >> "$SLUICE_OUTPUT_VARIABLES"
echo "uppercased $SLUICE_CONFIG_GREETING"
