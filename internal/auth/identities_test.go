package auth

import (
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
)

// testIdentitiesJSON is testIdentitiesYAML written in JSON.
const testIdentitiesJSON = `{
  "accounts": [
    {
      "id": "111111111111",
      "users": [
        {
          "name": "alice",
          "accessKeys": [
            {"id": "AKIAALICE000000001", "secret": "alice/secret+1"},
            {"id": "AKIAALICE000000002", "secret": "alice/secret+2"}
          ]
        },
        {
          "name": "bob",
          "accessKeys": [{"id": "AKIABOB00000000001", "secret": "bob-secret"}],
          "policy": [
            {"effect": "Allow", "action": ["codepipeline:Get*", "codepipeline:List*"], "resource": "*"}
          ]
        }
      ]
    },
    {
      "id": "222222222222",
      "users": [
        {
          "name": "carol",
          "accessKeys": [{"id": "AKIACAROL00000001", "secret": "carol-secret"}],
          "policy": [
            {"effect": "Allow", "action": "*", "resource": "*"},
            {"effect": "Deny", "action": "codepipeline:DeletePipeline",
             "resource": ["arn:aws:codepipeline:us-east-1:222222222222:prod-*"]}
          ]
        }
      ]
    }
  ]
}
`

func TestIdentitiesYAMLAndJSON(t *testing.T) {
	fromYAML := loadTestIdentities(t)
	fromJSON, err := LoadIdentities(writeFile(t, "identities.json", testIdentitiesJSON))
	if err != nil {
		t.Fatalf("LoadIdentities(JSON): %v", err)
	}
	wantAccounts := []string{"111111111111", "222222222222"}
	type lookup struct {
		key, secret, account, user string
		policy                     []Statement
	}
	bobPolicy := []Statement{{Effect: Allow, Action: stringList{"codepipeline:Get*", "codepipeline:List*"}, Resource: stringList{"*"}}}
	carolPolicy := []Statement{
		{Effect: Allow, Action: stringList{"*"}, Resource: stringList{"*"}},
		{Effect: Deny, Action: stringList{"codepipeline:DeletePipeline"}, Resource: stringList{"arn:aws:codepipeline:us-east-1:222222222222:prod-*"}},
	}
	lookups := []lookup{
		{aliceKey1, aliceSecret, "111111111111", "alice", nil},
		{aliceKey2, alice2Secret, "111111111111", "alice", nil},
		{bobKey, bobSecret, "111111111111", "bob", bobPolicy},
		{carolKey, carolSecret, "222222222222", "carol", carolPolicy},
	}
	for name, ids := range map[string]*Identities{"yaml": fromYAML, "json": fromJSON} {
		t.Run(name, func(t *testing.T) {
			if got := ids.Accounts(); !reflect.DeepEqual(got, wantAccounts) {
				t.Errorf("Accounts() = %v, want %v", got, wantAccounts)
			}
			for _, l := range lookups {
				secret, p, ok := ids.Lookup(l.key)
				if !ok {
					t.Errorf("Lookup(%s) found nothing", l.key)
					continue
				}
				if secret != l.secret || p.Account != l.account || p.User != l.user || p.AccessKeyID != l.key {
					t.Errorf("Lookup(%s) = %q, %+v", l.key, secret, *p)
				}
				if len(p.policy) != len(l.policy) || (len(l.policy) > 0 && !reflect.DeepEqual(p.policy, l.policy)) {
					t.Errorf("Lookup(%s) policy = %+v, want %+v", l.key, p.policy, l.policy)
				}
			}
			for _, key := range []string{"", "AKIANOBODY00000001", strings.ToLower(aliceKey1)} {
				if secret, p, ok := ids.Lookup(key); ok || secret != "" || p != nil {
					t.Errorf("Lookup(%q) = %q, %v, %v", key, secret, p, ok)
				}
			}
		})
	}
}

func TestIdentitiesEmptyAccounts(t *testing.T) {
	ids, err := LoadIdentities(writeFile(t, "ids.yaml", "accounts: []\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ids.Accounts()) != 0 {
		t.Errorf("Accounts() = %v", ids.Accounts())
	}
	if _, _, ok := ids.Lookup(aliceKey1); ok {
		t.Error("a key found in a file without accounts")
	}
}

func TestIdentitiesUnquotedAccountID(t *testing.T) {
	// An unquoted id YAML would read as a number (octal-looking, or too large) is still read as
	// it is written.
	for _, id := range []string{"012345678901", "111111111111", "000000000000"} {
		ids, err := LoadIdentities(writeFile(t, "ids.yaml", "accounts:\n  - id: "+id+"\n"))
		if err != nil {
			t.Errorf("id %s: %v", id, err)
			continue
		}
		if got := ids.Accounts(); len(got) != 1 || got[0] != id {
			t.Errorf("id %s read as %v", id, got)
		}
	}
}

func TestIdentitiesSingleStringAction(t *testing.T) {
	ids, err := LoadIdentities(writeFile(t, "ids.yaml", `
accounts:
  - id: "111111111111"
    users:
      - name: dave
        accessKeys: [{id: AKIADAVE000000001, secret: s}]
        policy:
          - effect: Allow
            action: "codepipeline:Get*"
            resource: "arn:aws:codepipeline:us-east-1:111111111111:*"
`))
	if err != nil {
		t.Fatal(err)
	}
	_, p, ok := ids.Lookup("AKIADAVE000000001")
	if !ok {
		t.Fatal("dave's key not found")
	}
	want := []Statement{{Effect: Allow, Action: stringList{"codepipeline:Get*"}, Resource: stringList{"arn:aws:codepipeline:us-east-1:111111111111:*"}}}
	if !reflect.DeepEqual(p.policy, want) {
		t.Errorf("policy = %+v, want %+v", p.policy, want)
	}
	if err := p.Authorize("codepipeline:GetPipeline", "arn:aws:codepipeline:us-east-1:111111111111:p"); err != nil {
		t.Errorf("GetPipeline: %v", err)
	}
	if err := p.Authorize("codepipeline:ListPipelines", "*"); err == nil {
		t.Error("ListPipelines allowed")
	}
}

func TestIdentitiesInvalid(t *testing.T) {
	// user writes a file with one account 111111111111 and one user whose body is given.
	user := func(body string) string {
		return "accounts:\n  - id: \"111111111111\"\n    users:\n      - name: u\n" + body
	}
	key := "        accessKeys: [{id: AKIAUSER000000001, secret: s}]\n"
	statement := func(s string) string { return key + "        policy:\n          - " + s + "\n" }
	cases := []struct {
		name, file, want string
	}{
		{"account id of 11 digits", "accounts: [{id: \"11111111111\"}]", `account id "11111111111" is not 12 digits`},
		{"account id with a letter", "accounts: [{id: \"11111111111a\"}]", `account id "11111111111a" is not 12 digits`},
		{"account id missing", "accounts: [{users: []}]", `account id "" is not 12 digits`},
		{"duplicate account", "accounts: [{id: \"111111111111\"}, {id: \"222222222222\"}, {id: \"111111111111\"}]", "account 111111111111 is listed twice"},
		{"user name with a space", "accounts: [{id: \"111111111111\", users: [{name: \"a b\"}]}]", `account 111111111111: user name "a b" is not a valid IAM user name`},
		{"user name empty", "accounts: [{id: \"111111111111\", users: [{name: \"\"}]}]", `user name "" is not a valid IAM user name`},
		{"user name of 65 characters", "accounts: [{id: \"111111111111\", users: [{name: " + strings.Repeat("a", 65) + "}]}]", "is not a valid IAM user name"},
		{"user name with a slash", "accounts: [{id: \"111111111111\", users: [{name: a/b}]}]", "is not a valid IAM user name"},
		{"duplicate user", "accounts: [{id: \"111111111111\", users: [{name: u}, {name: u}]}]", "account 111111111111: user u is listed twice"},
		{"key id lower case", user("        accessKeys: [{id: akiauser000000001, secret: s}]\n"),
			`account 111111111111: user u: access key id "akiauser000000001" is not 16 to 128 upper-case letters and digits`},
		{"key id too short", user("        accessKeys: [{id: AKIA12345678901, secret: s}]\n"), "is not 16 to 128 upper-case letters and digits"},
		{"key id empty", user("        accessKeys: [{secret: s}]\n"), `access key id "" is not 16`},
		{"key id starting with ASIA", user("        accessKeys: [{id: ASIAUSER000000001, secret: s}]\n"),
			"account 111111111111: user u: access key id ASIAUSER000000001 starts with ASIA, which marks the temporary credentials jobs receive"},
		{"empty secret", user("        accessKeys: [{id: AKIAUSER000000001, secret: \"\"}]\n"), "account 111111111111: user u: access key AKIAUSER000000001 has no secret"},
		{"no secret", user("        accessKeys: [{id: AKIAUSER000000001}]\n"), "has no secret"},
		{"duplicate key in one user", user("        accessKeys: [{id: AKIAUSER000000001, secret: s}, {id: AKIAUSER000000001, secret: t}]\n"),
			"access key AKIAUSER000000001 is listed twice"},
		{"duplicate key across users", "accounts:\n  - id: \"111111111111\"\n    users:\n" +
			"      - {name: a, accessKeys: [{id: AKIAUSER000000001, secret: s}]}\n" +
			"  - id: \"222222222222\"\n    users:\n" +
			"      - {name: b, accessKeys: [{id: AKIAUSER000000001, secret: t}]}\n",
			"access key AKIAUSER000000001 is listed twice"},
		{"bad effect", user(statement(`{effect: allow, action: "*", resource: "*"}`)), `account 111111111111: user u: statement 1: effect "allow" is neither Allow nor Deny`},
		{"no effect", user(statement(`{action: "*", resource: "*"}`)), `statement 1: effect "" is neither Allow nor Deny`},
		{"action without colon", user(statement(`{effect: Allow, action: [GetPipeline], resource: "*"}`)),
			`statement 1: action "GetPipeline" is not of the form service:Action (or *)`},
		{"no action", user(statement(`{effect: Allow, resource: "*"}`)), "statement 1: it names no action"},
		{"empty action list", user(statement(`{effect: Allow, action: [], resource: "*"}`)), "statement 1: it names no action"},
		{"missing resource", user(statement(`{effect: Allow, action: "codepipeline:*"}`)), "statement 1: it names no resource"},
		{"null resource", user(statement(`{effect: Allow, action: "codepipeline:*", resource: }`)), "statement 1: it names no resource"},
		{"empty resource list", user(statement(`{effect: Allow, action: "codepipeline:*", resource: []}`)), "statement 1: it names no resource"},
		{"second statement bad", user(key + "        policy:\n          - {effect: Allow, action: \"*\", resource: \"*\"}\n          - {effect: Deny, action: \"*\"}\n"),
			"statement 2: it names no resource"},
		{"action a map", user(statement(`{effect: Allow, action: {a: b}, resource: "*"}`)), "expected a string or a list of strings"},
		{"unknown top-level field", "accounts: []\nusers: []\n", "field users not found"},
		{"unknown statement field", user(statement(`{effect: Allow, action: "*", resource: "*", condition: {}}`)), "field condition not found"},
		{"NotAction", user(statement(`{effect: Deny, notAction: "codepipeline:Get*", resource: "*"}`)), "field notAction not found"},
		{"unknown key field", user("        accessKeys: [{id: AKIAUSER000000001, secret: s, status: Inactive}]\n"), "field status not found"},
		{"not YAML", "accounts: [", "read identities:"},
		{"empty file", "", "read identities:"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, "ids.yaml", tc.file)
			ids, err := LoadIdentities(path)
			if err == nil {
				t.Fatalf("LoadIdentities accepted\n%s", tc.file)
			}
			if ids != nil {
				t.Error("LoadIdentities returned identities with its error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q\ndoes not contain %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), path) && !strings.HasPrefix(err.Error(), "read identities") {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
}

func TestIdentitiesMissingFile(t *testing.T) {
	_, err := LoadIdentities(t.TempDir() + "/none.yaml")
	if err == nil || !strings.HasPrefix(err.Error(), "read identities: ") {
		t.Errorf("LoadIdentities of a missing file: %v", err)
	}
}

func TestIdentitiesReload(t *testing.T) {
	path := writeFile(t, "ids.yaml", testIdentitiesYAML)
	ids, err := LoadIdentities(path)
	if err != nil {
		t.Fatal(err)
	}
	_, before, _ := ids.Lookup(aliceKey1)

	// alice's second key removed, dave's added.
	rewritten := strings.Replace(testIdentitiesYAML, `          - id: AKIAALICE000000002
            secret: alice/secret+2
`, "", 1)
	rewritten = strings.Replace(rewritten, "  - id: \"222222222222\"\n", `      - name: dave
        accessKeys:
          - id: AKIADAVE000000001
            secret: dave-secret
  - id: "222222222222"
`, 1)
	if rewritten == testIdentitiesYAML {
		t.Fatal("the rewrite changed nothing")
	}
	if err := os.WriteFile(path, []byte(rewritten), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := ids.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if _, _, ok := ids.Lookup(aliceKey2); ok {
		t.Error("the removed key is still found")
	}
	if secret, p, ok := ids.Lookup("AKIADAVE000000001"); !ok || secret != "dave-secret" || p.User != "dave" || p.Account != "111111111111" {
		t.Errorf("the added key: %q, %v, %v", secret, p, ok)
	}
	_, after, ok := ids.Lookup(aliceKey1)
	if !ok || after.User != "alice" {
		t.Fatalf("alice's first key lost: %v %v", after, ok)
	}
	if after == before {
		t.Error("Reload kept the principal of the previous reading")
	}

	// An invalid file leaves the last good reading in force.
	if err := os.WriteFile(path, []byte(strings.Replace(rewritten, "dave-secret", `""`, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	err = ids.Reload()
	if err == nil || !strings.Contains(err.Error(), "access key AKIADAVE000000001 has no secret") || !strings.HasPrefix(err.Error(), path+": ") {
		t.Errorf("Reload of an invalid file: %v", err)
	}
	if secret, _, ok := ids.Lookup("AKIADAVE000000001"); !ok || secret != "dave-secret" {
		t.Errorf("after a failed Reload, dave's key: %q %v", secret, ok)
	}
	if _, _, ok := ids.Lookup(aliceKey2); ok {
		t.Error("after a failed Reload, the removed key is back")
	}

	// A missing file too.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := ids.Reload(); err == nil {
		t.Error("Reload of a removed file succeeded")
	}
	if _, _, ok := ids.Lookup("AKIADAVE000000001"); !ok {
		t.Error("after Reload of a removed file, dave's key is gone")
	}
}

// TestIdentitiesConcurrentReload looks keys up while the file is reloaded, for the race detector.
func TestIdentitiesConcurrentReload(t *testing.T) {
	path := writeFile(t, "ids.yaml", testIdentitiesYAML)
	ids, err := LoadIdentities(path)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 200 {
				if _, ok := ids.CheckPassword(aliceKey1, aliceSecret); !ok {
					t.Error("alice's key refused during a reload")
					return
				}
				_ = ids.Accounts()
			}
		})
	}
	for range 20 {
		if err := ids.Reload(); err != nil {
			t.Error(err)
		}
	}
	wg.Wait()
}

func TestCheckPassword(t *testing.T) {
	ids := loadTestIdentities(t)
	cases := []struct {
		key, secret string
		wantUser    string // "" for a refusal
	}{
		{aliceKey1, aliceSecret, "alice"},
		{aliceKey2, alice2Secret, "alice"},
		{bobKey, bobSecret, "bob"},
		{aliceKey1, alice2Secret, ""},
		{aliceKey1, aliceSecret + "x", ""},
		{aliceKey1, aliceSecret[:len(aliceSecret)-1], ""},
		{aliceKey1, "", ""},
		{bobKey, aliceSecret, ""},
		{"AKIANOBODY00000001", aliceSecret, ""},
		{"", "", ""},
	}
	for _, tc := range cases {
		p, ok := ids.CheckPassword(tc.key, tc.secret)
		if tc.wantUser == "" {
			if ok || p != nil {
				t.Errorf("CheckPassword(%q, %q) = %v, %v, want a refusal", tc.key, tc.secret, p, ok)
			}
			continue
		}
		if !ok || p == nil || p.User != tc.wantUser || p.AccessKeyID != tc.key {
			t.Errorf("CheckPassword(%q, %q) = %v, %v, want %s", tc.key, tc.secret, p, ok, tc.wantUser)
		}
	}
}
