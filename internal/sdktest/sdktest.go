// Package sdktest holds what the tests' AWS SDK clients share: a retryer that retries a request
// only when its connection broke, as the SDK's standard retryer does for every user, and no
// other failure, so that a test still sees every error the server answers.
package sdktest

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
)

// ConnectionRetries retries a request up to twice more when its connection was reset or closed
// under it — on loopback under the race detector, a reset read as "use of closed network
// connection" (aws/aws-sdk-go-v2#2737) — and never for an answer of the server's.
func ConnectionRetries() aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = 3
		o.Retryables = []retry.IsErrorRetryable{retry.RetryableConnectionError{}}
		o.RateLimiter = ratelimit.None
	})
}
