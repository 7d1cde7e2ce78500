package api

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strings"

	"github.com/sluicehq/sluice/internal/model"
)

// tokens makes the opaque nextToken values of list operations: the key of the last record listed,
// bound to the list it came from and signed, so that a token cannot be forged or moved to another
// list. Every replica on the same store signs with the same key.
type tokens struct {
	key []byte
}

func (t *tokens) mac(list, after string) []byte {
	m := hmac.New(sha256.New, t.key)
	m.Write([]byte(list))
	m.Write([]byte{0})
	m.Write([]byte(after))
	return m.Sum(nil)[:16]
}

// next returns the token that continues list after the record keyed after.
func (t *tokens) next(list, after string) *string {
	token := base64.RawURLEncoding.EncodeToString([]byte(after)) + "." + base64.RawURLEncoding.EncodeToString(t.mac(list, after))
	return &token
}

// after reads a token of list back into the key to continue after; a nil token starts the list.
func (t *tokens) after(list string, token *string) (string, error) {
	if token == nil {
		return "", nil
	}
	keyPart, macPart, ok := strings.Cut(*token, ".")
	after, err1 := base64.RawURLEncoding.DecodeString(keyPart)
	mac, err2 := base64.RawURLEncoding.DecodeString(macPart)
	if !ok || err1 != nil || err2 != nil || !hmac.Equal(mac, t.mac(list, string(after))) {
		return "", model.ErrInvalidNextToken("The nextToken is not valid; pass the nextToken of the previous page unchanged.")
	}
	return string(after), nil
}

// page lists one page of up to size records with fetch, which returns up to n records after a
// key, and returns the records and the token for the next page, if there is one. Its errors are
// ready to return to the caller.
func page[T any](t *tokens, list string, token *string, size int, key func(T) string, fetch func(after string, n int) ([]T, error)) ([]T, *string, error) {
	after, err := t.after(list, token)
	if err != nil {
		return nil, nil, err
	}
	records, err := fetch(after, size+1)
	if err != nil {
		return nil, nil, internal(list, err)
	}
	if len(records) <= size {
		return records, nil, nil
	}
	records = records[:size]
	return records, t.next(list, key(records[size-1])), nil
}
