package runners

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/sluicehq/sluice/internal/executor"
)

// variableCheck is the VariableCheck rule, after the User Guide's rule-reference-VariableCheck:
// it compares Variable (a pipeline or output variable, resolved before the run) with Value by
// Operator, and succeeds when the comparison holds. The operators are those the reference lists:
//
//   - EQ: the variable equals the value;
//   - NE: the variable does not equal the value;
//   - CONTAINS: the variable contains the value as a substring;
//   - MATCHES: the variable matches the value as a regular expression. CodePipeline takes Java's
//     syntax and, as Java's String.matches does, the whole variable must match; Sluice compiles
//     the expression with Go's regexp (RE2), which reads the common syntax the same way but has
//     no backreferences or lookaround, and says so when an expression does not compile.
//
// Comparisons are case-sensitive. An operator outside the list fails the rule, naming the list.
type variableCheck struct{}

// variableOperators are VariableCheck's operators, each with what it means when it holds and
// when it does not.
var variableOperators = map[string]struct{ holds, fails string }{
	"EQ":       {"equals", "does not equal"},
	"NE":       {"does not equal", "equals"},
	"CONTAINS": {"contains", "does not contain"},
	"MATCHES":  {"matches the regular expression", "does not match the regular expression"},
}

func (variableCheck) run(_ context.Context, j *job) executor.Result {
	config := ruleConfig(j)
	variable, hasVariable := config["Variable"]
	value, hasValue := config["Value"]
	operator := strings.ToUpper(strings.TrimSpace(config["Operator"]))
	switch {
	case !hasVariable:
		return failed("The VariableCheck rule has no Variable: set it to the variable to check, such as #{SourceVariables.BranchName}")
	case !hasValue:
		return failed("The VariableCheck rule has no Value: set it to the value to compare the variable with")
	case operator == "":
		return failed("The VariableCheck rule has no Operator: use EQ, NE, CONTAINS or MATCHES")
	}
	words, ok := variableOperators[operator]
	if !ok {
		return failed(fmt.Sprintf("The operator %q of the VariableCheck rule is not one of EQ, NE, CONTAINS or MATCHES", config["Operator"]))
	}
	var holds bool
	switch operator {
	case "EQ":
		holds = variable == value
	case "NE":
		holds = variable != value
	case "CONTAINS":
		holds = strings.Contains(variable, value)
	case "MATCHES":
		re, err := regexp.Compile(`^(?:` + value + `)$`)
		if err != nil {
			return failed(fmt.Sprintf("The Value %q of the VariableCheck rule is not a regular expression Sluice can read: %v (Sluice uses Go's RE2 syntax, which has no backreferences or lookaround)", value, err))
		}
		holds = re.MatchString(variable)
	}
	if holds {
		return executor.Result{Succeeded: true, Summary: fmt.Sprintf("The variable's value %q %s %q (operator %s)", variable, words.holds, value, operator)}
	}
	return failed(fmt.Sprintf("The variable's value %q %s %q (operator %s)", variable, words.fails, value, operator))
}
