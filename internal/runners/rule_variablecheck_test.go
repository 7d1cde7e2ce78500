package runners

import (
	"context"
	"testing"

	"github.com/sluicehq/sluice/internal/model"
)

// TestVariableCheckOperators runs the VariableCheck rule with each operator the reference lists,
// holding and not, and with what it must refuse.
func TestVariableCheckOperators(t *testing.T) {
	cases := []struct {
		variable, operator, value string
		succeeds                  bool
		says                      string
	}{
		{"main", "EQ", "main", true, `"main" equals "main"`},
		{"main", "EQ", "Main", false, `"main" does not equal "Main"`},
		{"feature/x", "NE", "main", true, `"feature/x" does not equal "main"`},
		{"main", "NE", "main", false, `"main" equals "main"`},
		{"fix: update the docs", "CONTAINS", "update", true, `contains "update"`},
		{"fix: the docs", "CONTAINS", "update", false, `does not contain "update"`},
		{"release-1.42", "MATCHES", `release-\d+\.\d+`, true, "matches the regular expression"},
		// The whole variable must match, as Java's String.matches requires.
		{"release-1.42-rc1", "MATCHES", `release-\d+\.\d+`, false, "does not match the regular expression"},
		{"hotfix", "matches", `hot.*|cold.*`, true, "(operator MATCHES)"},
		{"x", "GT", "1", false, `The operator "GT" of the VariableCheck rule is not one of EQ, NE, CONTAINS or MATCHES`},
		{"x", "MATCHES", `(a`, false, "is not a regular expression"},
		{"x", "MATCHES", `(a)\1`, false, "backreferences"},
	}
	for _, c := range cases {
		j, _ := ruleJob(t, "VariableCheck", model.RuleDeclaration{Configuration: map[string]string{"Variable": c.variable, "Operator": c.operator, "Value": c.value}})
		res := variableCheck{}.run(context.Background(), j)
		t.Run(c.variable+" "+c.operator+" "+c.value, func(t *testing.T) { wantResult(t, res, c.succeeds, c.says) })
	}
	for _, missing := range []string{"Variable", "Value", "Operator"} {
		config := map[string]string{"Variable": "a", "Value": "a", "Operator": "EQ"}
		delete(config, missing)
		j, _ := ruleJob(t, "VariableCheck", model.RuleDeclaration{Configuration: config})
		wantResult(t, variableCheck{}.run(context.Background(), j), false, "has no "+missing)
	}
	// An empty variable is a value like any other: EQ "" holds.
	j, _ := ruleJob(t, "VariableCheck", model.RuleDeclaration{Configuration: map[string]string{"Variable": "", "Value": "", "Operator": "EQ"}})
	wantResult(t, variableCheck{}.run(context.Background(), j), true)
}
