package storetest

import (
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"testing"

	"github.com/google/uuid"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver
)

// PostgresURL returns the URL of a fresh, empty schema in the database named by
// $SLUICE_TEST_POSTGRES, dropped when the test ends; without that variable the test is skipped.
func PostgresURL(t testing.TB) string {
	base := os.Getenv("SLUICE_TEST_POSTGRES")
	if base == "" {
		t.Skip("SLUICE_TEST_POSTGRES is not set: skipping the PostgreSQL store (scripts/test.sh sets it)")
	}
	schema := "sluice_test_" + uuid.NewString()[:8]
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(fmt.Sprintf("CREATE SCHEMA %s", schema)); err != nil {
		t.Fatalf("create schema on %s: %v", base, err)
	}
	t.Cleanup(func() {
		admin.Exec(fmt.Sprintf("DROP SCHEMA %s CASCADE", schema))
		// The schemas of a server's other accounts are named after its own.
		if rows, err := admin.Query("SELECT nspname FROM pg_namespace WHERE nspname LIKE $1", schema+`\_account\_%`); err == nil {
			var others []string
			for rows.Next() {
				var name string
				if rows.Scan(&name) == nil {
					others = append(others, name)
				}
			}
			rows.Close()
			for _, name := range others {
				admin.Exec(fmt.Sprintf("DROP SCHEMA %s CASCADE", name))
			}
		}
		admin.Close()
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
