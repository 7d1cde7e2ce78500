package runners

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/schemas"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/smithy-go/transport/http/protocol/awsquery"

	"github.com/sluicehq/sluice/internal/executor"
)

// cloudWatchAlarm is the CloudWatchAlarm rule, after the User Guide's
// rule-reference-CloudWatchAlarm and its stage conditions page: it reads the alarm AlarmName
// (DescribeAlarms, in the rule's region or the server's) from the CloudWatch the server's
// --cloudwatch-endpoint names. AlarmStates lists the states that fail the rule — ALARM, OK or
// INSUFFICIENT_DATA, separated by commas; ALARM when not set, the state the User Guide's examples
// guard against. An alarm in none of them succeeds the rule at once. An alarm in one of them
// fails it, unless WaitTime — in minutes — allows for a change: the rule then watches the alarm
// (every few seconds, its job sending heartbeats) for up to WaitTime minutes, succeeds as soon as
// the alarm leaves the failing states, and fails if it has not by then. A missing alarm fails the
// rule, and so does a server without --cloudwatch-endpoint.
type cloudWatchAlarm struct {
	endpoint *serviceEndpoint
	// poll is how often a waiting rule reads the alarm again.
	poll time.Duration
	// minute is WaitTime's unit: a minute, shorter in tests.
	minute time.Duration
}

func newCloudWatchAlarm(endpoint *serviceEndpoint) cloudWatchAlarm {
	return cloudWatchAlarm{endpoint: endpoint, poll: 5 * time.Second, minute: time.Minute}
}

// alarmStates are the states a CloudWatch alarm can be in.
var alarmStates = []string{string(types.StateValueAlarm), string(types.StateValueOk), string(types.StateValueInsufficientData)}

func (c cloudWatchAlarm) run(ctx context.Context, j *job) executor.Result {
	config := ruleConfig(j)
	name := strings.TrimSpace(config["AlarmName"])
	if name == "" {
		return failed("The CloudWatchAlarm rule has no AlarmName: set it to the name of the alarm to check")
	}
	failing := []string{string(types.StateValueAlarm)}
	if raw := strings.TrimSpace(config["AlarmStates"]); raw != "" {
		failing = nil
		for _, s := range strings.FieldsFunc(raw, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
			s = strings.ToUpper(s)
			if !slices.Contains(alarmStates, s) {
				return failed(fmt.Sprintf("The AlarmStates %q of the CloudWatchAlarm rule name %s, which is not an alarm state: use ALARM, OK or INSUFFICIENT_DATA, separated by commas", raw, s))
			}
			if !slices.Contains(failing, s) {
				failing = append(failing, s)
			}
		}
	}
	var wait time.Duration
	waitText := strings.TrimSpace(config["WaitTime"])
	if waitText != "" {
		minutes, err := strconv.ParseFloat(waitText, 64)
		if err != nil || minutes < 0 || minutes > 7*24*60 {
			return failed(fmt.Sprintf("The WaitTime %q of the CloudWatchAlarm rule is not a number of minutes", waitText))
		}
		wait = time.Duration(minutes * float64(c.minute))
	}
	if c.endpoint.url == "" {
		return failed(c.endpoint.missing())
	}
	region := ruleRegion(j, c.endpoint.defaultRegion)
	cfg, base, err := c.endpoint.config(ctx, region)
	if err != nil {
		return failedErr(err)
	}
	client := cloudwatch.NewFromConfig(cfg, func(o *cloudwatch.Options) {
		o.BaseEndpoint = base
		if base != nil {
			// CloudWatch-compatible services (moto, LocalStack) speak the Query protocol that
			// CloudWatch has always served, and not always the CBOR one the SDK now prefers.
			o.Protocol = awsquery.New(schemas.GraniteServiceVersion20100801)
		}
	})
	where := c.endpoint.where(region)
	states := strings.Join(failing, ", ")

	state, arn, err := describeAlarm(ctx, client, name)
	if err != nil {
		return c.readFailed(name, where, err)
	}
	if !slices.Contains(failing, state) {
		return executor.Result{Succeeded: true, ExternalID: arn,
			Summary: fmt.Sprintf("The alarm %s is in state %s, none of the states %s that fail the rule", name, state, states)}
	}
	if wait <= 0 {
		return c.alarmFailed(name, state, states, arn, "")
	}
	j.logf("The alarm %s is in state %s, one of the states %s that fail the rule: watching it for up to %s for a change", name, state, states, waitText+" minute(s)")
	deadline := time.Now().Add(wait)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return c.alarmFailed(name, state, states, arn, fmt.Sprintf(", and still was after the WaitTime of %s minute(s)", waitText))
		}
		select {
		case <-ctx.Done():
			return failed(fmt.Sprintf("Stopped while watching the alarm %s, in state %s", name, state))
		case <-time.After(min(c.poll, left)):
		}
		now, nowARN, err := describeAlarm(ctx, client, name)
		if err != nil {
			if ctx.Err() != nil {
				continue
			}
			// The alarm was there a moment ago: a failed read is the endpoint's trouble, so the
			// rule keeps watching, and fails with the last state it read if it never reads
			// another.
			j.logf("Reading the alarm %s failed: %v", name, err)
			continue
		}
		if now != state {
			j.logf("The alarm %s went from %s to %s", name, state, now)
		}
		state, arn = now, nowARN
		if !slices.Contains(failing, state) {
			return executor.Result{Succeeded: true, ExternalID: arn,
				Summary: fmt.Sprintf("The alarm %s is in state %s, none of the states %s that fail the rule (it changed within the WaitTime of %s minute(s))", name, state, states, waitText)}
		}
	}
}

// alarmFailed is the result of a rule whose alarm is in a failing state.
func (cloudWatchAlarm) alarmFailed(name, state, states, arn, more string) executor.Result {
	res := failed(fmt.Sprintf("The alarm %s is in state %s, one of the states %s that fail the rule%s", name, state, states, more))
	res.ExternalID = arn
	return res
}

// errNoAlarm is the error of an alarm that does not exist.
var errNoAlarm = errors.New("no such alarm")

// readFailed is the result of a rule that could not read its alarm.
func (c cloudWatchAlarm) readFailed(name, where string, err error) executor.Result {
	if errors.Is(err, errNoAlarm) {
		return failed(fmt.Sprintf("The alarm %s does not exist in %s: create it first, or correct AlarmName", name, where))
	}
	return failed(fmt.Sprintf("Reading the alarm %s from %s failed: %v", name, where, err))
}

// describeAlarm reads the state and ARN of the alarm name: a metric, composite or log alarm.
func describeAlarm(ctx context.Context, client *cloudwatch.Client, name string) (state, arn string, err error) {
	out, err := client.DescribeAlarms(ctx, &cloudwatch.DescribeAlarmsInput{
		AlarmNames: []string{name},
		AlarmTypes: []types.AlarmType{types.AlarmTypeMetricAlarm, types.AlarmTypeCompositeAlarm, types.AlarmTypeLogAlarm},
	})
	if err != nil {
		return "", "", err
	}
	for _, a := range out.MetricAlarms {
		if aws.ToString(a.AlarmName) == name {
			return string(a.StateValue), aws.ToString(a.AlarmArn), nil
		}
	}
	for _, a := range out.CompositeAlarms {
		if aws.ToString(a.AlarmName) == name {
			return string(a.StateValue), aws.ToString(a.AlarmArn), nil
		}
	}
	for _, a := range out.LogAlarms {
		if aws.ToString(a.AlarmName) == name {
			return string(a.StateValue), aws.ToString(a.AlarmArn), nil
		}
	}
	return "", "", errNoAlarm
}
