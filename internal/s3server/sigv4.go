package s3server

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/sluicehq/sluice/internal/auth"
)

// claim is whom a request says it is signed by, read before anything is checked: enough to tell
// job credentials from others, whatever the scheme they are used with.
type claim struct {
	accessKeyID string
}

// readClaims reads the access keys a request names in its Authorization header and in its
// query; both says it names one both ways. A SigV4 header whose Credential is not of its form is
// refused, whoever sent it.
func readClaims(r *http.Request) (header, query claim, both bool, refused *s3Error) {
	q := r.URL.Query()
	inQuery := q.Has("X-Amz-Algorithm") || q.Has("X-Amz-Credential") || q.Has("AWSAccessKeyId")
	if inQuery {
		key, _, _ := strings.Cut(q.Get("X-Amz-Credential"), "/")
		if !q.Has("X-Amz-Credential") {
			key = q.Get("AWSAccessKeyId")
		}
		query = claim{accessKeyID: key}
	}
	h := r.Header.Get("Authorization")
	if h == "" {
		return header, query, false, nil
	}
	header, err := parseAuthorization(h)
	if err != nil {
		return header, query, false, &s3Error{http.StatusBadRequest, "AuthorizationHeaderMalformed", err.Error()}
	}
	return header, query, inQuery, nil
}

// parseAuthorization reads the access key of an Authorization header of one of AWS's schemes:
// SigV4's "AWS4-HMAC-SHA256 Credential=<key>/…", SigV4a's, and SigV2's "AWS <key>:…". Any other
// header names none.
func parseAuthorization(h string) (claim, error) {
	scheme, rest, _ := strings.Cut(h, " ")
	if scheme == "AWS" {
		key, _, _ := strings.Cut(rest, ":")
		return claim{accessKeyID: key}, nil
	}
	if !strings.HasPrefix(scheme, "AWS4-") {
		return claim{}, nil
	}
	for part := range strings.SplitSeq(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		if k != "Credential" {
			continue
		}
		fields := strings.Split(v, "/")
		if scheme == auth.Algorithm && len(fields) != 5 {
			return claim{}, fmt.Errorf("the Credential %q is not of the form <key>/<date>/<region>/<service>/aws4_request", v)
		}
		return claim{accessKeyID: fields[0]}, nil
	}
	return claim{}, nil
}

// signer is who signed a request whose signature verified, and the secret it signed with: what
// checks the signatures of an aws-chunked body's chunks.
type signer struct {
	sig    auth.Signature
	secret string
}

// The refusals of signatures, in S3's words.
var (
	signatureMismatch = &s3Error{http.StatusForbidden, "SignatureDoesNotMatch",
		"The request signature we calculated does not match the signature you provided. Check your key and signing method."}
	unsupportedScheme = &s3Error{http.StatusBadRequest, "InvalidRequest",
		"The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256."}
	missingPayloadHash = &s3Error{http.StatusBadRequest, "InvalidRequest", "Missing required header for this request: x-amz-content-sha256"}
)

// authenticateJob checks a request signed with the credentials of job jobID: their signature,
// their session token, a presigned URL's time, and that the job still runs. It returns what
// signed the request and what the job may reach.
func (s *server) authenticateJob(r *http.Request, jobID string) (*signer, scope, *s3Error) {
	sig, err := auth.Parse(r)
	if err != nil {
		return nil, scope{}, signatureRefusal(err, sig, "")
	}
	if !s.issuer.ValidToken(sig.AccessKeyID, sig.SessionToken) {
		return nil, scope{}, &s3Error{http.StatusBadRequest, "InvalidToken", "The provided token is malformed or otherwise invalid."}
	}
	if !sig.Presigned && r.Header.Get("X-Amz-Content-Sha256") == "" {
		return nil, scope{}, missingPayloadHash
	}
	secret := s.issuer.SecretKey(sig.AccessKeyID)
	if err := sig.Verify(r, secret, auth.VerifyOptions{S3: true, PayloadHash: r.Header.Get("X-Amz-Content-Sha256")}); err != nil {
		return nil, scope{}, signatureMismatch
	}
	// A header's time is checked by gofakes3, as for every request; a presigned URL's here.
	if sig.Presigned {
		if err := sig.CheckTime(time.Now(), maxClockSkew); err != nil {
			return nil, scope{}, signatureRefusal(err, sig, "")
		}
	}
	read, write, running, err := s.jobs.JobObjects(r.Context(), jobID)
	if err != nil {
		s.logger.Error("look up a job's artifacts", "job", jobID, "err", err)
		return nil, scope{}, &s3Error{http.StatusInternalServerError, "InternalError", "We encountered an internal error. Please try again."}
	}
	if !running {
		return nil, scope{}, &s3Error{http.StatusBadRequest, "ExpiredToken", fmt.Sprintf("The provided token has expired: job %s is no longer in progress.", jobID)}
	}
	return &signer{sig: sig, secret: secret}, scope{jobID: jobID, read: read, write: write}, nil
}

// authenticateUser checks a request signed by a user of the identities, and returns who.
func (s *server) authenticateUser(r *http.Request) (*auth.Principal, *signer, *s3Error) {
	payload := r.Header.Get("X-Amz-Content-Sha256")
	if strings.HasPrefix(r.Header.Get("Authorization"), auth.Algorithm+" ") && payload == "" {
		return nil, nil, missingPayloadHash
	}
	p, sig, err := s.auth.Authenticate(r, auth.Surface{Service: "s3", Region: s.region, Skew: maxClockSkew,
		VerifyOptions: auth.VerifyOptions{S3: true, PayloadHash: payload}})
	if err != nil {
		if _, _, known := s.auth.Identities.Lookup(sig.AccessKeyID); known && sig.SessionToken != "" {
			// A user's key is long-term: it comes with no session token.
			return nil, nil, &s3Error{http.StatusBadRequest, "InvalidToken", "The provided token is malformed or otherwise invalid."}
		}
		return nil, nil, signatureRefusal(err, sig, s.region)
	}
	secret, _, ok := s.auth.Identities.Lookup(sig.AccessKeyID)
	if !ok { // removed by a reload since
		return nil, nil, &s3Error{http.StatusForbidden, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records."}
	}
	return p, &signer{sig: sig, secret: secret}, nil
}

// signatureRefusal words a refusal of sig as S3 does; region is the server's.
func signatureRefusal(err error, sig auth.Signature, region string) *s3Error {
	var refused *auth.Error
	if !errors.As(err, &refused) {
		return signatureMismatch
	}
	malformed := func(message string) *s3Error {
		if sig.Presigned {
			return &s3Error{http.StatusBadRequest, "AuthorizationQueryParametersError", message}
		}
		return &s3Error{http.StatusBadRequest, "AuthorizationHeaderMalformed", message}
	}
	switch refused.Kind {
	case auth.KindMissing:
		return accessDenied
	case auth.KindUnsignedHeaders:
		return &s3Error{http.StatusForbidden, "AccessDenied", refused.Message}
	case auth.KindIncomplete:
		return malformed(refused.Message)
	case auth.KindUnsupported:
		return unsupportedScheme
	case auth.KindUnknownKey:
		return &s3Error{http.StatusForbidden, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records."}
	case auth.KindScope:
		prefix := "The authorization header is malformed; "
		if sig.Presigned {
			prefix = "Error parsing the X-Amz-Credential parameter; "
		}
		switch {
		case sig.Service != "s3":
			return malformed(fmt.Sprintf("%sincorrect service '%s'. This endpoint belongs to 's3'.", prefix, sig.Service))
		case sig.Region != region:
			return malformed(fmt.Sprintf("%sthe region '%s' is wrong; expecting '%s'", prefix, sig.Region, region))
		}
		return malformed(prefix + "Invalid credential date. Date is not the same as X-Amz-Date.")
	case auth.KindExpired, auth.KindNotYetValid:
		switch {
		case !sig.Presigned:
			return &s3Error{http.StatusForbidden, "RequestTimeTooSkewed", "The difference between the request time and the current time is too large."}
		case refused.Kind == auth.KindExpired:
			return &s3Error{http.StatusForbidden, "AccessDenied", "Request has expired"}
		}
		return &s3Error{http.StatusForbidden, "AccessDenied", "Request is not valid yet"}
	}
	return signatureMismatch
}
