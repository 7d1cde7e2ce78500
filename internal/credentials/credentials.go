// Package credentials mints the temporary S3 credentials a job receives as its
// artifactCredentials, and recognises them when they come back signing requests to the built-in
// S3 endpoint. Nothing is stored: the access key id names the job, and the secret key and session
// token are keyed hashes of it, so any replica holding the same key verifies them.
package credentials

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"
)

// accessKeyPrefix marks temporary credentials, as AWS's "ASIA" keys do; a job credential's access
// key id is the prefix and the job id's 32 hex digits in upper case.
const accessKeyPrefix = "ASIA"

// Credentials are a job's temporary credentials.
type Credentials struct {
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
}

// Issuer mints and recognises job credentials with a secret key.
type Issuer struct {
	key []byte
}

// NewIssuer returns an Issuer keyed with key.
func NewIssuer(key []byte) *Issuer { return &Issuer{key: key} }

// ForJob returns the credentials of a job, always the same for the same job.
func (i *Issuer) ForJob(jobID string) Credentials {
	id := accessKeyPrefix + strings.ToUpper(strings.ReplaceAll(jobID, "-", ""))
	return Credentials{AccessKeyID: id, SecretAccessKey: i.SecretKey(id), SessionToken: i.sessionToken(id)}
}

// JobOf returns the job whose credentials carry accessKeyID, if they are job credentials at all.
func (i *Issuer) JobOf(accessKeyID string) (jobID string, ok bool) {
	hexID, found := strings.CutPrefix(accessKeyID, accessKeyPrefix)
	if !found || len(hexID) != 32 {
		return "", false
	}
	raw, err := hex.DecodeString(hexID)
	if err != nil || strings.ToUpper(hexID) != hexID {
		return "", false
	}
	h := hex.EncodeToString(raw)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:], true
}

// SecretKey is the secret access key that goes with a job credential's access key id.
func (i *Issuer) SecretKey(accessKeyID string) string {
	return base64.RawURLEncoding.EncodeToString(i.mac("secret", accessKeyID))[:40]
}

// ValidToken reports whether token is the session token of accessKeyID.
func (i *Issuer) ValidToken(accessKeyID, token string) bool {
	return hmac.Equal([]byte(token), []byte(i.sessionToken(accessKeyID)))
}

func (i *Issuer) sessionToken(accessKeyID string) string {
	return base64.StdEncoding.EncodeToString(i.mac("session", accessKeyID))
}

func (i *Issuer) mac(purpose, accessKeyID string) []byte {
	m := hmac.New(sha256.New, i.key)
	m.Write([]byte(purpose + "\x00" + accessKeyID))
	return m.Sum(nil)
}

// ClientID is the client id of a third-party job: the token its worker presents with every call
// about the job, formatted as the UUID the job protocol expects.
func (i *Issuer) ClientID(jobID string) string {
	h := hex.EncodeToString(i.mac("client", jobID)[:16])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
