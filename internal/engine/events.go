package engine

// Event is something that happened to an execution. Every change the engine makes to an
// execution is reported by at least one event naming it, so that the caller knows which
// executions a call changed without comparing states; an execution that only leaves the state
// (a failed or stopped one that a newer execution overtook in its stage, so that it can no
// longer be retried) is reported in Pipeline.Forgotten instead. Some events ask the caller for work:
// ActionStarted and RuleStarted (run it), ActionAbandoned and RuleAbandoned (cancel it),
// RollbackRequested (start a rollback execution).
type Event interface {
	// ExecutionID is the execution the event happened to.
	ExecutionID() string
	// Name names the event's type, for its record.
	Name() string
}

// ExecutionStarted: an execution (a rollback, if Rollback) was added.
type ExecutionStarted struct {
	Execution string `json:"execution"`
	Rollback  bool   `json:"rollback,omitempty"`
}

// ExecutionStopping: a stop was asked for and the execution waits for its runs to finish.
type ExecutionStopping struct {
	Execution string `json:"execution"`
}

// ExecutionFinished: an execution got its final status.
type ExecutionFinished struct {
	Execution string `json:"execution"`
	Status    Status `json:"status"`
}

// StageEntered: an execution was admitted into a stage.
type StageEntered struct {
	Execution string `json:"execution"`
	Stage     int    `json:"stage"`
}

// StageFinished: a stage run ended: Succeeded, Failed, Stopped or Skipped.
type StageFinished struct {
	Execution string `json:"execution"`
	Stage     int    `json:"stage"`
	Status    Status `json:"status"`
}

// StageRetried: a failed or stopped stage runs again.
type StageRetried struct {
	Execution  string       `json:"execution"`
	Stage      int          `json:"stage"`
	Trigger    RetryTrigger `json:"trigger"`
	FailedOnly bool         `json:"failedOnly,omitempty"`
}

// ActionStarted asks for an action run to start.
type ActionStarted struct {
	Execution string `json:"execution"`
	Action    Action `json:"action"`
}

// ActionFinished: an action run's result was recorded.
type ActionFinished struct {
	Execution string `json:"execution"`
	Action    Action `json:"action"`
}

// ActionAbandoned asks for an in-flight action run to be abandoned (its job cancelled, its
// process killed); no result of it counts any more.
type ActionAbandoned struct {
	Execution string `json:"execution"`
	Action    Action `json:"action"`
}

// RuleStarted asks for a rule run to start.
type RuleStarted struct {
	Execution string `json:"execution"`
	Rule      Rule   `json:"rule"`
}

// RuleFinished: a rule run's result was recorded.
type RuleFinished struct {
	Execution string `json:"execution"`
	Rule      Rule   `json:"rule"`
}

// RuleAbandoned asks for an in-flight rule run to be abandoned.
type RuleAbandoned struct {
	Execution string `json:"execution"`
	Rule      Rule   `json:"rule"`
}

// ConditionFinished: a stage condition was decided: Succeeded (met), Failed, or Overridden.
type ConditionFinished struct {
	Execution string `json:"execution"`
	Stage     int    `json:"stage"`
	Kind      Kind   `json:"kind"`
	Status    Status `json:"status"`
}

// RollbackRequested asks for a rollback of a stage that an execution failed in: automated (an
// onFailure result) or not (an onSuccess condition's).
type RollbackRequested struct {
	Execution string `json:"execution"`
	Stage     int    `json:"stage"`
	Automated bool   `json:"automated,omitempty"`
}

func (e ExecutionStarted) ExecutionID() string  { return e.Execution }
func (e ExecutionStopping) ExecutionID() string { return e.Execution }
func (e ExecutionFinished) ExecutionID() string { return e.Execution }
func (e StageEntered) ExecutionID() string      { return e.Execution }
func (e StageFinished) ExecutionID() string     { return e.Execution }
func (e StageRetried) ExecutionID() string      { return e.Execution }
func (e ActionStarted) ExecutionID() string     { return e.Execution }
func (e ActionFinished) ExecutionID() string    { return e.Execution }
func (e ActionAbandoned) ExecutionID() string   { return e.Execution }
func (e RuleStarted) ExecutionID() string       { return e.Execution }
func (e RuleFinished) ExecutionID() string      { return e.Execution }
func (e RuleAbandoned) ExecutionID() string     { return e.Execution }
func (e ConditionFinished) ExecutionID() string { return e.Execution }
func (e RollbackRequested) ExecutionID() string { return e.Execution }

func (ExecutionStarted) Name() string  { return "ExecutionStarted" }
func (ExecutionStopping) Name() string { return "ExecutionStopping" }
func (ExecutionFinished) Name() string { return "ExecutionFinished" }
func (StageEntered) Name() string      { return "StageEntered" }
func (StageFinished) Name() string     { return "StageFinished" }
func (StageRetried) Name() string      { return "StageRetried" }
func (ActionStarted) Name() string     { return "ActionStarted" }
func (ActionFinished) Name() string    { return "ActionFinished" }
func (ActionAbandoned) Name() string   { return "ActionAbandoned" }
func (RuleStarted) Name() string       { return "RuleStarted" }
func (RuleFinished) Name() string      { return "RuleFinished" }
func (RuleAbandoned) Name() string     { return "RuleAbandoned" }
func (ConditionFinished) Name() string { return "ConditionFinished" }
func (RollbackRequested) Name() string { return "RollbackRequested" }
