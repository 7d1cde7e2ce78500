package s3server

import (
	"bytes"
	"io"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/sluicehq/sluice/internal/auth"
)

// FuzzDecodeChunked feeds aws-chunked bodies, signed and unsigned, to the decoder: it must never
// panic nor loop, and a body it decodes to the end without error is exactly as long as its
// declared decoded length.
func FuzzDecodeChunked(f *testing.F) {
	f.Add([]byte("5\r\nhello\r\n0\r\n\r\n"), int64(5), false)
	f.Add([]byte("5;chunk-signature=00\r\nhello\r\n0;chunk-signature=00\r\n\r\n"), int64(5), true)
	f.Add([]byte("3\r\nabc\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n"), int64(3), false)
	f.Add([]byte("ffffffffffffffff\r\n"), int64(1), false)
	f.Add([]byte("1;\r\n\r\n"), int64(0), true)
	f.Fuzz(func(t *testing.T, body []byte, length int64, signed bool) {
		r := httptest.NewRequest("PUT", "/bucket/key", bytes.NewReader(body))
		r.Header.Set("X-Amz-Decoded-Content-Length", strconv.FormatInt(length, 10))
		declared := streamingUnsignedTrailer
		var by *signer
		if signed {
			declared = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
			by = &signer{sig: auth.Signature{Signature: "00", Time: "20261201T120000Z", Date: "20261201", Region: "us-east-1", Service: "s3"}, secret: "secret"}
		}
		decoded, refused := decodeChunked(r, declared, by)
		if refused != nil {
			return
		}
		out, err := io.ReadAll(io.LimitReader(decoded, int64(len(body))+1))
		if err == nil && int64(len(out)) != length {
			t.Fatalf("decoded %d bytes without error, declared %d", len(out), length)
		}
	})
}
