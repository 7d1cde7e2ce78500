package main

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"

	"github.com/sluicehq/sluice/internal/auth"
	"github.com/sluicehq/sluice/internal/server"
)

// loadAWSConfig loads the standard AWS configuration (environment, shared files, roles) that the
// commands calling a server sign their requests with. Region, if set, overrides the
// configuration's; without any, it is us-east-1. With anonymous, a configuration without
// credentials sends its requests unsigned, as a server with --auth off takes them.
func loadAWSConfig(ctx context.Context, region string, anonymous bool) (aws.Config, error) {
	var opts []func(*awsconfig.LoadOptions) error
	if region != "" {
		opts = append(opts, awsconfig.WithRegion(region))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return cfg, fmt.Errorf("load the AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if anonymous {
		if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
			cfg.Credentials = aws.AnonymousCredentials{}
		}
	}
	return cfg, nil
}

// getSigned sends a GET to one of a server's own endpoints (/_sluice/…), signed with SigV4 for
// the service "sluice" in cfg's region, as a server with --auth sigv4 requires; with anonymous
// credentials it goes unsigned.
func getSigned(ctx context.Context, cfg aws.Config, url string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	if _, anonymous := cfg.Credentials.(aws.AnonymousCredentials); !anonymous {
		creds, err := cfg.Credentials.Retrieve(ctx)
		if err != nil {
			return nil, fmt.Errorf("retrieve credentials to sign with: %w", err)
		}
		if err := v4.NewSigner().SignHTTP(ctx, creds, req, auth.EmptyPayloadHash, server.ServiceSluice, cfg.Region, time.Now()); err != nil {
			return nil, fmt.Errorf("sign %s: %w", url, err)
		}
	}
	return http.DefaultClient.Do(req)
}
