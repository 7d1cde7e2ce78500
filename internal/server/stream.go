package server

import (
	"io"
	"net/http"
	"time"
)

// streamChunk is how much of a streamed body must move within each read or write timeout.
const streamChunk = 64 << 10

// streaming lets the requests and answers of h, whose bodies can be large or long-lived (git
// pushes and fetches, objects of the S3 endpoint, followed logs), take as long as they keep
// moving, where the server otherwise bounds a whole request by its read timeout and a whole
// answer by its write timeout. Here each read from the request body must bring streamChunk
// bytes (or the rest of the body) within readTimeout, and each write of up to streamChunk bytes
// must be taken within writeTimeout; the time the handler spends between them counts for
// neither. A client that trickles a byte now and then is still cut off; a slow one is not.
// A zero timeout leaves that bound to the server.
func streaming(h http.Handler, readTimeout, writeTimeout time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		if writeTimeout > 0 {
			sw := &streamWriter{ResponseWriter: w, rc: rc, timeout: writeTimeout}
			// The server writes what the handler left buffered after it returns.
			defer sw.extend()
			w = sw
		}
		if readTimeout > 0 && r.Body != nil && r.Body != http.NoBody {
			r = r.WithContext(r.Context())
			r.Body = &streamBody{ReadCloser: r.Body, rc: rc, timeout: readTimeout, writeTimeout: writeTimeout}
		}
		h.ServeHTTP(w, r)
	})
}

// streamBody is a request body that extends the connection's read deadline as it is read.
type streamBody struct {
	io.ReadCloser
	rc                    *http.ResponseController
	timeout, writeTimeout time.Duration
	started               bool
	// ended is set once a read failed or reached the end: the server then watches the
	// connection for the client going away, and its deadline is the server's again.
	ended bool
}

// Read fills p up to streamChunk bytes, or to the end of the body, within the read timeout.
func (b *streamBody) Read(p []byte) (int, error) {
	if b.ended {
		return b.ReadCloser.Read(p)
	}
	now := time.Now()
	_ = b.rc.SetReadDeadline(now.Add(b.timeout))
	if !b.started && b.writeTimeout > 0 {
		// The first read may answer "100 Continue", however long the handler took to start.
		_ = b.rc.SetWriteDeadline(now.Add(b.writeTimeout))
	}
	b.started = true
	want := min(len(p), streamChunk)
	n := 0
	for n < want {
		m, err := b.ReadCloser.Read(p[n:])
		n += m
		if err != nil {
			b.ended = true
			return n, err
		}
	}
	return n, nil
}

// streamWriter is a ResponseWriter that extends the connection's write deadline before each
// chunk it writes. It unwraps for http.ResponseController.
type streamWriter struct {
	http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
}

func (w *streamWriter) extend() { _ = w.rc.SetWriteDeadline(time.Now().Add(w.timeout)) }

func (w *streamWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		w.extend()
		n, err := w.ResponseWriter.Write(p[:min(len(p), streamChunk)])
		written += n
		if err != nil {
			return written, err
		}
		p = p[n:]
	}
	return written, nil
}

// Flush sends what is buffered, for handlers that stream (followed logs, git's CGI).
func (w *streamWriter) Flush() {
	w.extend()
	_ = w.rc.Flush()
}

func (w *streamWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
