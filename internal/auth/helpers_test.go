package auth

import (
	"os"
	"path/filepath"
	"testing"
)

// Access keys of the identities file the tests load.
const (
	aliceKey1    = "AKIAALICE000000001"
	aliceKey2    = "AKIAALICE000000002"
	aliceSecret  = "alice/secret+1"
	alice2Secret = "alice/secret+2"
	bobKey       = "AKIABOB00000000001"
	bobSecret    = "bob-secret"
	carolKey     = "AKIACAROL00000001"
	carolSecret  = "carol-secret"
)

const testIdentitiesYAML = `# accounts, users, keys
accounts:
  - id: "111111111111"
    users:
      - name: alice
        accessKeys:
          - id: AKIAALICE000000001
            secret: alice/secret+1
          - id: AKIAALICE000000002
            secret: alice/secret+2
      - name: bob
        accessKeys:
          - id: AKIABOB00000000001
            secret: bob-secret
        policy:
          - effect: Allow
            action: ["codepipeline:Get*", "codepipeline:List*"]
            resource: "*"
  - id: "222222222222"
    users:
      - name: carol
        accessKeys:
          - id: AKIACAROL00000001
            secret: carol-secret
        policy:
          - effect: Allow
            action: "*"
            resource: "*"
          - effect: Deny
            action: codepipeline:DeletePipeline
            resource:
              - arn:aws:codepipeline:us-east-1:222222222222:prod-*
`

// writeFile writes data to a new file in a temporary directory and returns its path.
func writeFile(t testing.TB, name, data string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// loadTestIdentities loads testIdentitiesYAML from a temporary file.
func loadTestIdentities(t testing.TB) *Identities {
	t.Helper()
	ids, err := LoadIdentities(writeFile(t, "identities.yaml", testIdentitiesYAML))
	if err != nil {
		t.Fatalf("LoadIdentities: %v", err)
	}
	return ids
}
