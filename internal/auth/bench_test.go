package auth

import (
	"testing"
	"time"
)

// BenchmarkAuthenticate verifies a signed GetPipeline request, as the CodePipeline API does for
// every call with authentication on: parse, key lookup, scope, time, and signing again.
func BenchmarkAuthenticate(b *testing.B) {
	ids := loadTestIdentities(b)
	a := &Authenticator{Identities: ids, Now: func() time.Time { return testNow }}
	body := `{"name":"p"}`
	r := apiRequest(b, body)
	signer{}.sign(b, r, body)
	on := Surface{Service: "codepipeline", Region: "us-east-1", Skew: 5 * time.Minute,
		VerifyOptions: VerifyOptions{PayloadHash: signer{}.fill(body).payloadHash}}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := a.Authenticate(r, on); err != nil {
			b.Fatal(err)
		}
	}
}
