package s3server

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// What x-amz-content-sha256 declares of a body, besides its SHA-256 in hex.
const (
	unsignedPayload = "UNSIGNED-PAYLOAD"
	// The aws-chunked encodings: chunks signed each, chained to the request's signature, with or
	// without signed trailing headers; chunks unsigned, with trailing headers.
	streamingSigned          = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
	streamingSignedTrailer   = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
	streamingUnsignedTrailer = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
	// streamingECDSA starts the encodings whose chunks are signed with SigV4a, not supported.
	streamingECDSA = "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD"
)

// emptySHA256 is the SHA-256 of nothing, in hex.
const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// maxDocument bounds the body of a signed request other than an object's contents (a
// multi-object delete, a multipart upload's completion, a bucket's configuration), which is
// read and checked whole before anything is done with it.
const maxDocument = 4 << 20

// The refusals of bodies, in S3's words.
var (
	payloadMismatch = &s3Error{http.StatusBadRequest, "XAmzContentSHA256Mismatch", "The provided 'x-amz-content-sha256' header does not match what was computed."}
	incompleteBody  = &s3Error{http.StatusBadRequest, "IncompleteBody", "You did not provide the number of bytes specified by the Content-Length HTTP header."}
	tooBig          = &s3Error{http.StatusBadRequest, "MaxMessageLengthExceeded", "Your request was too big."}
)

// checkBody prepares r's body for what serves it: it decodes an aws-chunked body, and, for a
// request whose signature verified (by is not nil), has it checked against what the request
// declares of it: every chunk's signature, or its SHA-256. Object contents are checked as they
// stream, so that a body that fails fails its reader before its end, and the write with it;
// other bodies, small documents, are read and checked here. It returns the checked body, nil
// when nothing is checked as it streams.
func checkBody(r *http.Request, by *signer, op operation) (*checkedBody, *s3Error) {
	declared := r.Header.Get("X-Amz-Content-Sha256")
	var body io.Reader
	switch {
	case strings.HasPrefix(declared, streamingECDSA):
		return nil, &s3Error{http.StatusBadRequest, "InvalidRequest",
			"The x-amz-content-sha256 " + declared + " is not supported: sign chunks with AWS4-HMAC-SHA256."}
	case declared == streamingSigned || declared == streamingSignedTrailer || declared == streamingUnsignedTrailer:
		decoded, refused := decodeChunked(r, declared, by)
		if refused != nil {
			return nil, refused
		}
		body = decoded
	case by == nil, declared == unsignedPayload, declared == "" && by.sig.Presigned:
	default:
		want, err := hex.DecodeString(declared)
		if err != nil || len(want) != sha256.Size {
			return nil, &s3Error{http.StatusBadRequest, "InvalidArgument",
				"x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD, or a valid sha256 value."}
		}
		body = &digestBody{in: r.Body, hash: sha256.New(), want: want}
	}
	if body == nil {
		return nil, nil
	}
	checked := &checkedBody{Reader: body, Closer: r.Body}
	r.Body = checked
	if by == nil || op.name == "PutObject" || op.name == "UploadPart" {
		return checked, nil
	}
	doc, err := io.ReadAll(io.LimitReader(checked, maxDocument+1))
	switch {
	case checked.refused != nil:
		return nil, checked.refused
	case err != nil:
		return nil, &s3Error{http.StatusBadRequest, "IncompleteBody", "The request body could not be read: " + err.Error()}
	case len(doc) > maxDocument:
		return nil, tooBig
	}
	r.Body = struct {
		io.Reader
		io.Closer
	}{bytes.NewReader(doc), checked}
	return nil, nil
}

// checkedBody is a request body checked as it is read; refused is the refusal its reading met,
// if any, which is the request's answer.
type checkedBody struct {
	io.Reader
	io.Closer
	refused *s3Error
}

func (b *checkedBody) Read(p []byte) (int, error) {
	n, err := b.Reader.Read(p)
	if refused := (*s3Error)(nil); errors.As(err, &refused) && b.refused == nil {
		b.refused = refused
	}
	return n, err
}

// answer is the response to a request whose body is checked as it streams: if the body was
// refused, the refusal is the answer, whatever gofakes3 makes of the failed read.
type answer struct {
	http.ResponseWriter
	body              *checkedBody
	started, replaced bool
}

func (a *answer) WriteHeader(code int) {
	if a.started {
		return
	}
	a.started = true
	if a.body.refused != nil {
		a.replaced = true
		a.body.refused.write(a.ResponseWriter)
		return
	}
	a.ResponseWriter.WriteHeader(code)
}

func (a *answer) Write(b []byte) (int, error) {
	if !a.started {
		a.WriteHeader(http.StatusOK)
	}
	if a.replaced {
		return len(b), nil
	}
	return a.ResponseWriter.Write(b)
}

// digestBody is a body that must hash to want: at its end, it fails instead if it does not.
type digestBody struct {
	in   io.Reader
	hash hash.Hash
	want []byte
}

func (d *digestBody) Read(p []byte) (int, error) {
	n, err := d.in.Read(p)
	d.hash.Write(p[:n])
	if err == io.EOF && !hmac.Equal(d.hash.Sum(nil), d.want) {
		return n, payloadMismatch
	}
	return n, err
}

// decodeChunked replaces r's aws-chunked body by what it encodes, and its headers by those of a
// plain body of that length, as S3 stores it: gofakes3 reads it as any other.
func decodeChunked(r *http.Request, declared string, by *signer) (io.Reader, *s3Error) {
	length, err := strconv.ParseInt(r.Header.Get("X-Amz-Decoded-Content-Length"), 10, 64)
	if err != nil || length < 0 {
		return nil, &s3Error{http.StatusLengthRequired, "MissingContentLength", "You must provide the Content-Length HTTP header."}
	}
	c := &chunkedBody{in: bufio.NewReader(r.Body), signed: declared != streamingUnsignedTrailer, length: length}
	if by != nil && c.signed {
		c.chunks = newChunkSigner(by)
	}
	r.ContentLength = length
	r.Header.Set("Content-Length", strconv.FormatInt(length, 10))
	for _, h := range []string{"X-Amz-Content-Sha256", "X-Amz-Decoded-Content-Length", "X-Amz-Trailer"} {
		r.Header.Del(h)
	}
	var encodings []string
	for _, e := range strings.Split(r.Header.Get("Content-Encoding"), ",") {
		if e = strings.TrimSpace(e); e != "" && !strings.EqualFold(e, "aws-chunked") {
			encodings = append(encodings, e)
		}
	}
	if len(encodings) == 0 {
		r.Header.Del("Content-Encoding")
	} else {
		r.Header.Set("Content-Encoding", strings.Join(encodings, ","))
	}
	return c, nil
}

// chunkedBody decodes an aws-chunked body as it is read: chunks of "<size in hex>[;chunk-
// signature=<signature>]\r\n<data>\r\n", the last of size 0, then trailing headers, one a line,
// and an empty line. With chunks set, it checks each chunk's signature when the chunk ends and
// the last's, and the trailers', before it reports the end: a body that fails to verify fails
// before its end.
type chunkedBody struct {
	in *bufio.Reader
	// signed says the chunks carry signatures; chunks checks them, when the request's signature
	// was checked.
	signed bool
	chunks *chunkSigner
	// length is the decoded length the request declared; decoded is how much was decoded.
	length, decoded int64
	// remaining is what is left to read of the current chunk's data, hash its hash so far, and
	// signature the signature its header gave.
	remaining int64
	hash      hash.Hash
	signature string
	err       error
}

// maxChunkLine bounds a chunk's header and a trailing header.
const maxChunkLine = 4096

func (c *chunkedBody) Read(p []byte) (int, error) {
	for c.err == nil && c.remaining == 0 {
		c.err = c.next()
	}
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.in.Read(p[:min(int64(len(p)), c.remaining)])
	c.remaining -= int64(n)
	c.decoded += int64(n)
	c.hash.Write(p[:n])
	switch {
	case c.remaining == 0:
		// A failure surfaces on the next read, which comes before the end.
		c.err = c.endChunk(c.hash.Sum(nil))
	case err == io.EOF:
		c.err = incompleteBody
	case err != nil:
		c.err = err
	}
	if n == 0 && c.err != nil {
		return 0, c.err
	}
	return n, nil
}

// endChunk reads the end of a chunk's data and checks its signature.
func (c *chunkedBody) endChunk(sum []byte) error {
	line, err := c.line()
	if err != nil {
		return err
	}
	if line != "" {
		return malformedChunk("a chunk's data is longer than its size says")
	}
	if c.chunks != nil && !c.chunks.check(sum, c.signature) {
		return signatureMismatch
	}
	return nil
}

// next reads the header of the next chunk; after the last one, it reads the trailers and
// returns io.EOF.
func (c *chunkedBody) next() error {
	line, err := c.line()
	if err != nil {
		return err
	}
	size, ext, _ := strings.Cut(line, ";")
	n, err := strconv.ParseInt(strings.TrimSpace(size), 16, 64)
	if err != nil || n < 0 || len(size) > 16 {
		return malformedChunk(fmt.Sprintf("the chunk size %q is not a number in hex", size))
	}
	c.signature = ""
	if c.signed {
		sig, ok := strings.CutPrefix(ext, "chunk-signature=")
		if !ok {
			return signatureMismatch
		}
		c.signature = sig
	}
	if n > c.length-c.decoded {
		return malformedChunk("the chunks are longer than x-amz-decoded-content-length says")
	}
	if n > 0 {
		c.remaining, c.hash = n, sha256.New()
		return nil
	}
	if c.chunks != nil && !c.chunks.check(sha256.New().Sum(nil), c.signature) {
		return signatureMismatch
	}
	if err := c.trailers(); err != nil {
		return err
	}
	if c.decoded != c.length {
		return incompleteBody
	}
	if _, err := c.in.ReadByte(); err != io.EOF {
		return malformedChunk("data follows the last chunk")
	}
	return io.EOF
}

// trailers reads the trailing headers up to the empty line that ends the body; with chunks
// signed, their signature too.
func (c *chunkedBody) trailers() error {
	var canonical strings.Builder
	signature := ""
	for {
		line, err := c.line()
		if err != nil {
			return err
		}
		if line == "" {
			break
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			return malformedChunk(fmt.Sprintf("the trailing header %q is not of the form name:value", line))
		}
		name, value = strings.ToLower(strings.TrimSpace(name)), strings.TrimSpace(value)
		if name == "x-amz-trailer-signature" {
			signature = value
			continue
		}
		canonical.WriteString(name + ":" + value + "\n")
	}
	if c.chunks == nil || canonical.Len() == 0 && signature == "" {
		return nil
	}
	sum := sha256.Sum256([]byte(canonical.String()))
	if !c.chunks.checkTrailer(sum[:], signature) {
		return signatureMismatch
	}
	return nil
}

// line reads a line ended by CRLF and returns it without.
func (c *chunkedBody) line() (string, error) {
	b, err := c.in.ReadSlice('\n')
	switch {
	case errors.Is(err, bufio.ErrBufferFull) || len(b) > maxChunkLine:
		return "", malformedChunk("a chunk header or trailer is too long")
	case err == io.EOF:
		return "", incompleteBody
	case err != nil:
		return "", err
	case !bytes.HasSuffix(b, []byte("\r\n")):
		return "", malformedChunk("a line does not end with CRLF")
	}
	return string(b[:len(b)-2]), nil
}

func malformedChunk(what string) *s3Error {
	return &s3Error{http.StatusBadRequest, "IncompleteBody", "The body is not in the aws-chunked encoding its x-amz-content-sha256 declares: " + what + "."}
}

// chunkSigner checks the signatures of an aws-chunked body's chunks, each chained to the one
// before it, the first to the request's signature.
type chunkSigner struct {
	// key is the signing key of the request's scope; time its X-Amz-Date.
	key         []byte
	time, scope string
	// previous is the signature the next one is chained to, in hex.
	previous string
}

func newChunkSigner(by *signer) *chunkSigner {
	key := []byte("AWS4" + by.secret)
	for _, part := range []string{by.sig.Date, by.sig.Region, by.sig.Service, "aws4_request"} {
		key = hmacSHA256(key, part)
	}
	return &chunkSigner{key: key, time: by.sig.Time, scope: by.sig.Scope(), previous: strings.ToLower(by.sig.Signature)}
}

// check says whether got is the signature of the next chunk, whose data hash to sum.
func (c *chunkSigner) check(sum []byte, got string) bool {
	return c.chain(strings.Join([]string{"AWS4-HMAC-SHA256-PAYLOAD", c.time, c.scope, c.previous, emptySHA256, hex.EncodeToString(sum)}, "\n"), got)
}

// checkTrailer says whether got is the signature of the trailing headers, whose canonical form
// ("name:value\n" each) hashes to sum.
func (c *chunkSigner) checkTrailer(sum []byte, got string) bool {
	return c.chain(strings.Join([]string{"AWS4-HMAC-SHA256-TRAILER", c.time, c.scope, c.previous, hex.EncodeToString(sum)}, "\n"), got)
}

func (c *chunkSigner) chain(stringToSign, got string) bool {
	want := hmacSHA256(c.key, stringToSign)
	sent, err := hex.DecodeString(got)
	c.previous = hex.EncodeToString(want)
	return err == nil && hmac.Equal(want, sent)
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}
