package main

import (
	"flag"
	"io"
	"testing"
)

func TestFlagsReadTheEnvironmentAndTheCommandLineWins(t *testing.T) {
	t.Setenv("SLUICE_ACCOUNT_ID", "111111111111")
	t.Setenv("SLUICE_MAX_REQUEST_BYTES", "2048")
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	account := fs.String("account-id", "000000000000", "")
	region := fs.String("region", "us-east-1", "")
	maxBytes := fs.Int64("max-request-bytes", 1, "")
	if err := parseFlags(fs, []string{"--account-id", "222222222222"}); err != nil {
		t.Fatal(err)
	}
	if *account != "222222222222" || *region != "us-east-1" || *maxBytes != 2048 {
		t.Errorf("account %s, region %s, max %d", *account, *region, *maxBytes)
	}
}

func TestBadEnvironmentValueIsAnError(t *testing.T) {
	t.Setenv("SLUICE_MAX_REQUEST_BYTES", "lots")
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.Int64("max-request-bytes", 1, "")
	if err := parseFlags(fs, nil); err == nil {
		t.Fatal("want an error naming SLUICE_MAX_REQUEST_BYTES")
	}
}
