package webhooks

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/internal/delivery"
)

func TestCheckIP(t *testing.T) {
	for _, c := range []struct {
		remote, allowed string
		ok              bool
	}{
		{"127.0.0.1:5000", "127.0.0.0/8", true},
		{"[::ffff:10.1.2.3]:5000", "10.0.0.0/8", true}, // an IPv4 client on a dual-stack listener
		{"10.1.2.3:5000", "10.1.2.3/32", true},
		{"10.9.9.9:5000", "10.1.2.3/8", true}, // host bits in the range are ignored
		{"[2001:db8::1]:5000", "2001:db8::/32", true},
		{"192.168.0.1:5000", "10.0.0.0/8", false},
		{"[2001:db8::1]:5000", "10.0.0.0/8", false},
		{"127.0.0.1:5000", "::/0", false},
		{"garbage", "0.0.0.0/0", false},
	} {
		reason := checkIP(c.remote, &c.allowed)
		if (reason == "") != c.ok {
			t.Errorf("checkIP(%s, %s) = %q, want allowed %v", c.remote, c.allowed, reason, c.ok)
		}
	}
	if checkIP("127.0.0.1:1", nil) == "" {
		t.Error("no range allows everyone")
	}
}

func TestCheckSignature(t *testing.T) {
	body := []byte(`{"ref":"refs/heads/main"}`)
	// GitHub's documented example: secret "It's a Secret to Everybody", payload "Hello, World!".
	example := http.Header{"X-Hub-Signature-256": {"sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"}}
	if reason := checkSignature(example, []byte("Hello, World!"), "It's a Secret to Everybody"); reason != "" {
		t.Fatalf("GitHub's example: %s", reason)
	}
	good256 := "sha256=" + hex.EncodeToString(delivery.Sign(sha256.New, "s", body))
	good1 := "sha1=" + hex.EncodeToString(delivery.Sign(sha1.New, "s", body))
	for _, c := range []struct {
		name   string
		header http.Header
		ok     bool
	}{
		{"both", http.Header{"X-Hub-Signature-256": {good256}, "X-Hub-Signature": {good1}}, true},
		{"sha256", http.Header{"X-Hub-Signature-256": {good256}}, true},
		{"upper-case hex", http.Header{"X-Hub-Signature-256": {"sha256=" + strings.ToUpper(strings.TrimPrefix(good256, "sha256="))}}, true},
		{"sha1", http.Header{"X-Hub-Signature": {good1}}, true},
		{"none", http.Header{}, false},
		{"wrong sha256, right sha1", http.Header{"X-Hub-Signature-256": {"sha256=00"}, "X-Hub-Signature": {good1}}, false},
		{"sha1 digest in the sha256 header", http.Header{"X-Hub-Signature-256": {good1}}, false},
		{"no prefix", http.Header{"X-Hub-Signature-256": {strings.TrimPrefix(good256, "sha256=")}}, false},
		{"truncated", http.Header{"X-Hub-Signature-256": {good256[:len(good256)-2]}}, false},
	} {
		if reason := checkSignature(c.header, body, "s"); (reason == "") != c.ok {
			t.Errorf("%s: %q, want accepted %v", c.name, reason, c.ok)
		}
	}
	if checkSignature(http.Header{"X-Hub-Signature-256": {good256}}, body, "") == "" {
		t.Error("a webhook without a secret accepted a delivery")
	}
}
