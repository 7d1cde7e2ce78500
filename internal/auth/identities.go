package auth

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync/atomic"

	"go.yaml.in/yaml/v3"
)

// identitiesFile is the shape of the identities file, YAML or JSON (which YAML reads too).
type identitiesFile struct {
	Accounts []struct {
		ID    string `yaml:"id"`
		Users []struct {
			Name       string `yaml:"name"`
			AccessKeys []struct {
				ID     string `yaml:"id"`
				Secret string `yaml:"secret"`
			} `yaml:"accessKeys"`
			Policy []Statement `yaml:"policy"`
		} `yaml:"users"`
	} `yaml:"accounts"`
}

var (
	accountPattern   = regexp.MustCompile(`^[0-9]{12}$`)
	userNamePattern  = regexp.MustCompile(`^[\w+=,.@-]{1,64}$`)
	accessKeyPattern = regexp.MustCompile(`^[A-Z0-9]{16,128}$`)
)

// key is an access key and whose it is.
type key struct {
	secret    string
	principal *Principal
}

// identities is one reading of the identities file.
type identities struct {
	keys     map[string]key
	accounts []string
}

// parseIdentities reads and checks an identities file's contents: account ids of 12 digits, each
// once; user names IAM accepts, each once in its account; access keys of upper-case letters and
// digits, each once in the file, with a secret; statements with an effect, actions and resources.
func parseIdentities(data []byte) (*identities, error) {
	var f identitiesFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("read identities: %w", err)
	}
	ids := &identities{keys: map[string]key{}}
	seenAccounts := map[string]bool{}
	for _, a := range f.Accounts {
		if !accountPattern.MatchString(a.ID) {
			return nil, fmt.Errorf("account id %q is not 12 digits", a.ID)
		}
		if seenAccounts[a.ID] {
			return nil, fmt.Errorf("account %s is listed twice", a.ID)
		}
		seenAccounts[a.ID] = true
		ids.accounts = append(ids.accounts, a.ID)
		seenUsers := map[string]bool{}
		for _, u := range a.Users {
			if !userNamePattern.MatchString(u.Name) {
				return nil, fmt.Errorf("account %s: user name %q is not a valid IAM user name", a.ID, u.Name)
			}
			if seenUsers[u.Name] {
				return nil, fmt.Errorf("account %s: user %s is listed twice", a.ID, u.Name)
			}
			seenUsers[u.Name] = true
			for i, s := range u.Policy {
				if err := s.check(); err != nil {
					return nil, fmt.Errorf("account %s: user %s: statement %d: %w", a.ID, u.Name, i+1, err)
				}
			}
			p := &Principal{Account: a.ID, User: u.Name, policy: u.Policy}
			for _, k := range u.AccessKeys {
				if !accessKeyPattern.MatchString(k.ID) {
					return nil, fmt.Errorf("account %s: user %s: access key id %q is not 16 to 128 upper-case letters and digits", a.ID, u.Name, k.ID)
				}
				if strings.HasPrefix(k.ID, "ASIA") {
					return nil, fmt.Errorf("account %s: user %s: access key id %s starts with ASIA, which marks the temporary credentials jobs receive", a.ID, u.Name, k.ID)
				}
				if k.Secret == "" {
					return nil, fmt.Errorf("account %s: user %s: access key %s has no secret", a.ID, u.Name, k.ID)
				}
				if _, taken := ids.keys[k.ID]; taken {
					return nil, fmt.Errorf("access key %s is listed twice", k.ID)
				}
				kp := *p
				kp.AccessKeyID = k.ID
				ids.keys[k.ID] = key{secret: k.Secret, principal: &kp}
			}
		}
	}
	return ids, nil
}

func (s Statement) check() error {
	if s.Effect != Allow && s.Effect != Deny {
		return fmt.Errorf("effect %q is neither %s nor %s", s.Effect, Allow, Deny)
	}
	if len(s.Action) == 0 {
		return errors.New("it names no action")
	}
	for _, a := range s.Action {
		if a != "*" && !strings.Contains(a, ":") {
			return fmt.Errorf("action %q is not of the form service:Action (or *)", a)
		}
	}
	if len(s.Resource) == 0 {
		return errors.New("it names no resource")
	}
	return nil
}

// Identities are the accounts, users and access keys of the identities file, as last read. It
// is safe for concurrent use; Reload replaces what it holds at once, for every request after.
type Identities struct {
	path    string
	current atomic.Pointer[identities]
}

// LoadIdentities reads the identities file at path.
func LoadIdentities(path string) (*Identities, error) {
	i := &Identities{path: path}
	if err := i.Reload(); err != nil {
		return nil, err
	}
	return i, nil
}

// Reload reads the file again. If it cannot be read or is not valid, what was read before stays
// in force and the error says why.
func (i *Identities) Reload() error {
	data, err := os.ReadFile(i.path)
	if err != nil {
		return fmt.Errorf("read identities: %w", err)
	}
	ids, err := parseIdentities(data)
	if err != nil {
		return fmt.Errorf("%s: %w", i.path, err)
	}
	i.current.Store(ids)
	return nil
}

// Accounts lists the accounts of the file, in its order.
func (i *Identities) Accounts() []string { return i.current.Load().accounts }

// Lookup returns the secret access key of accessKeyID and whose key it is.
func (i *Identities) Lookup(accessKeyID string) (secret string, p *Principal, ok bool) {
	k, ok := i.current.Load().keys[accessKeyID]
	return k.secret, k.principal, ok
}

// CheckPassword returns the principal whose access key is accessKeyID if secret is that key's
// secret, as HTTP Basic authentication to hosted git presents them. It compares digests of the
// two in constant time, which tells nothing of the secret, not even its length.
func (i *Identities) CheckPassword(accessKeyID, secret string) (*Principal, bool) {
	want, p, ok := i.Lookup(accessKeyID)
	wantSum, gotSum := sha256.Sum256([]byte(want)), sha256.Sum256([]byte(secret))
	if !ok || subtle.ConstantTimeCompare(wantSum[:], gotSum[:]) != 1 {
		return nil, false
	}
	return p, true
}
