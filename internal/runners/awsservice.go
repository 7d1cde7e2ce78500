package runners

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
)

// awsService names an AWS service that rules call, and the serve flag that says where it is.
type awsService struct {
	name string // as messages name it: CloudWatch, Lambda
	rule string // the rule provider that calls it
	flag string
}

var (
	cloudWatchService = awsService{name: "CloudWatch", rule: "CloudWatchAlarm", flag: "--cloudwatch-endpoint"}
	lambdaService     = awsService{name: "Lambda", rule: "LambdaInvoke", flag: "--lambda-endpoint"}
)

// serviceEndpoint is where rules reach an AWS service: "aws" for the service itself, with the
// standard credential chain; or the URL of a compatible service (moto, LocalStack, …), with
// credentials from the standard chain, less the EC2 instance metadata service, and dummy static
// ones when the chain has none, since a local service seldom checks them. It keeps one
// configuration per region.
type serviceEndpoint struct {
	service awsService
	// url is "aws", a URL, or empty when the server was started without one.
	url           string
	defaultRegion string

	mu      sync.Mutex
	configs map[string]aws.Config
}

func newServiceEndpoint(service awsService, url, defaultRegion string) *serviceEndpoint {
	return &serviceEndpoint{service: service, url: url, defaultRegion: defaultRegion, configs: map[string]aws.Config{}}
}

// missing is the message of a rule that needs the service while the server has no endpoint
// for it.
func (e *serviceEndpoint) missing() string {
	return fmt.Sprintf("%s rules need a %s endpoint: start the server with %s URL (or aws)", e.service.rule, e.service.name, e.service.flag)
}

// where names the endpoint in messages.
func (e *serviceEndpoint) where(region string) string {
	if e.url == "aws" {
		return fmt.Sprintf("AWS %s in %s", e.service.name, region)
	}
	return fmt.Sprintf("the %s endpoint %s (region %s)", e.service.name, e.url, region)
}

// config returns the SDK configuration for region, and the base endpoint its clients use (nil
// for the service itself).
func (e *serviceEndpoint) config(ctx context.Context, region string) (aws.Config, *string, error) {
	var base *string
	if e.url != "aws" {
		base = aws.String(e.url)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if cfg, ok := e.configs[region]; ok {
		return cfg, base, nil
	}
	opts := []func(*awsconfig.LoadOptions) error{awsconfig.WithRegion(region)}
	if base != nil {
		opts = append(opts, awsconfig.WithEC2IMDSClientEnableState(imds.ClientDisabled))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, nil, fmt.Errorf("load the AWS configuration for %s: %w", e.service.name, err)
	}
	if base != nil {
		if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
			cfg.Credentials = aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider("sluice", "sluice", ""))
		}
	}
	e.configs[region] = cfg
	return cfg, base, nil
}

// checkEndpoint checks the value of an endpoint flag: empty, "aws", or an http(s) URL.
func checkEndpoint(v string) error {
	if v == "" || v == "aws" {
		return nil
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("not an http(s) URL, nor aws")
	}
	return nil
}
