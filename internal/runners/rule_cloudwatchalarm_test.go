package runners

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/schemas"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/smithy-go/transport/http/protocol/awsquery"

	"github.com/sluicehq/sluice/internal/model"
)

// startMoto starts a moto server on a free loopback port and returns its URL; it stops with the
// test. Without moto_server the test is skipped.
func startMoto(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("moto_server")
	if err != nil {
		t.Skip("moto_server is not installed (pip install 'moto[server]'): the CloudWatchAlarm rule is tested against it")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command(path, "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	url := "http://127.0.0.1:" + strconv.Itoa(port)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		select {
		case <-exited:
			t.Fatalf("moto_server exited:\n%s", out.String())
		default:
		}
		if resp, err := http.Get(url + "/moto-api/"); err == nil {
			resp.Body.Close()
			return url
		}
		if time.Now().After(deadline) {
			t.Fatalf("moto_server did not answer within 30s:\n%s", out.String())
		}
	}
}

// cloudWatchClient is a client of the CloudWatch at url, as a user would set up alarms with (in
// the Query protocol, which moto speaks).
func cloudWatchClient(url string) *cloudwatch.Client {
	return cloudwatch.New(cloudwatch.Options{Region: "eu-west-1", BaseEndpoint: aws.String(url),
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")},
		func(o *cloudwatch.Options) { o.Protocol = awsquery.New(schemas.GraniteServiceVersion20100801) })
}

func putAlarm(t *testing.T, cw *cloudwatch.Client, name string, state types.StateValue) {
	t.Helper()
	ctx := context.Background()
	if _, err := cw.PutMetricAlarm(ctx, &cloudwatch.PutMetricAlarmInput{
		AlarmName: aws.String(name), Namespace: aws.String("Sluice/Test"), MetricName: aws.String("Errors"),
		Statistic: types.StatisticSum, Period: aws.Int32(60), EvaluationPeriods: aws.Int32(1),
		Threshold: aws.Float64(1), ComparisonOperator: types.ComparisonOperatorGreaterThanOrEqualToThreshold,
	}); err != nil {
		t.Fatal(err)
	}
	setAlarm(t, cw, name, state)
}

func setAlarm(t *testing.T, cw *cloudwatch.Client, name string, state types.StateValue) {
	t.Helper()
	if _, err := cw.SetAlarmState(context.Background(), &cloudwatch.SetAlarmStateInput{
		AlarmName: aws.String(name), StateValue: state, StateReason: aws.String("set by the test"),
	}); err != nil {
		t.Fatal(err)
	}
}

// alarmRule is a CloudWatchAlarm rule on the CloudWatch at url, declared in eu-west-1, watched
// every 50ms, with WaitTime minutes a second long.
func alarmRule(t *testing.T, url string, config map[string]string) (cloudWatchAlarm, *job, *syncBuffer) {
	t.Helper()
	c := newCloudWatchAlarm(newServiceEndpoint(cloudWatchService, url, "us-east-1"))
	c.poll, c.minute = 50*time.Millisecond, time.Second
	j, log := ruleJob(t, "CloudWatchAlarm", model.RuleDeclaration{Configuration: config, Region: new("eu-west-1")})
	return c, j, log
}

// TestCloudWatchAlarmRule runs the rule against a real CloudWatch API (moto), on alarms set up
// and moved between states through it.
func TestCloudWatchAlarmRule(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	url := startMoto(t)
	cw := cloudWatchClient(url)
	ctx := context.Background()

	t.Run("OK succeeds at once", func(t *testing.T) {
		putAlarm(t, cw, "healthy", types.StateValueOk)
		c, j, _ := alarmRule(t, url, map[string]string{"AlarmName": "healthy", "WaitTime": "5"})
		start := time.Now()
		res := c.run(ctx, j)
		wantResult(t, res, true, "The alarm healthy is in state OK, none of the states ALARM that fail the rule")
		if time.Since(start) > 3*time.Second {
			t.Errorf("the rule waited %s on an alarm that does not fail it", time.Since(start))
		}
		if !strings.HasPrefix(res.ExternalID, "arn:aws:cloudwatch:eu-west-1:") || !strings.HasSuffix(res.ExternalID, ":alarm:healthy") {
			t.Errorf("external id %q, want the alarm's ARN in the rule's region", res.ExternalID)
		}
	})
	t.Run("ALARM fails without a wait time", func(t *testing.T) {
		putAlarm(t, cw, "broken", types.StateValueAlarm)
		c, j, _ := alarmRule(t, url, map[string]string{"AlarmName": "broken"})
		wantResult(t, c.run(ctx, j), false, "The alarm broken is in state ALARM, one of the states ALARM that fail the rule")
	})
	t.Run("ALARM that stays fails after the wait time", func(t *testing.T) {
		putAlarm(t, cw, "stuck", types.StateValueAlarm)
		c, j, log := alarmRule(t, url, map[string]string{"AlarmName": "stuck", "WaitTime": "1"})
		start := time.Now()
		res := c.run(ctx, j)
		wantResult(t, res, false, "The alarm stuck is in state ALARM, one of the states ALARM that fail the rule, and still was after the WaitTime of 1 minute(s)")
		if took := time.Since(start); took < time.Second {
			t.Errorf("the rule failed after %s, before its wait time was up", took)
		}
		if !strings.Contains(log.String(), "watching it for up to 1 minute(s)") {
			t.Errorf("the log does not say the rule watches the alarm:\n%s", log)
		}
	})
	t.Run("ALARM that clears within the wait time succeeds", func(t *testing.T) {
		putAlarm(t, cw, "flapping", types.StateValueAlarm)
		c, j, log := alarmRule(t, url, map[string]string{"AlarmName": "flapping", "WaitTime": "10"})
		cleared := make(chan error, 1)
		go func() {
			time.Sleep(500 * time.Millisecond)
			_, err := cw.SetAlarmState(ctx, &cloudwatch.SetAlarmStateInput{
				AlarmName: aws.String("flapping"), StateValue: types.StateValueOk, StateReason: aws.String("recovered"),
			})
			cleared <- err
		}()
		start := time.Now()
		res := c.run(ctx, j)
		if err := <-cleared; err != nil {
			t.Fatal(err)
		}
		wantResult(t, res, true, "The alarm flapping is in state OK", "it changed within the WaitTime of 10 minute(s)")
		if took := time.Since(start); took < 400*time.Millisecond || took > 5*time.Second {
			t.Errorf("the rule succeeded after %s; the alarm cleared after 500ms", took)
		}
		if !strings.Contains(log.String(), "went from ALARM to OK") {
			t.Errorf("the log does not say the alarm changed:\n%s", log)
		}
	})
	t.Run("AlarmStates chooses the failing states", func(t *testing.T) {
		putAlarm(t, cw, "no-data", types.StateValueInsufficientData)
		c, j, _ := alarmRule(t, url, map[string]string{"AlarmName": "no-data"})
		wantResult(t, c.run(ctx, j), true, "in state INSUFFICIENT_DATA, none of the states ALARM")
		c, j, _ = alarmRule(t, url, map[string]string{"AlarmName": "no-data", "AlarmStates": "ALARM, insufficient_data"})
		wantResult(t, c.run(ctx, j), false, "in state INSUFFICIENT_DATA, one of the states ALARM, INSUFFICIENT_DATA that fail the rule")
		c, j, _ = alarmRule(t, url, map[string]string{"AlarmName": "no-data", "AlarmStates": "ALARM,BROKEN"})
		wantResult(t, c.run(ctx, j), false, "name BROKEN, which is not an alarm state")
	})
	t.Run("a missing alarm fails", func(t *testing.T) {
		c, j, _ := alarmRule(t, url, map[string]string{"AlarmName": "nowhere", "WaitTime": "1"})
		wantResult(t, c.run(ctx, j), false, "The alarm nowhere does not exist in the CloudWatch endpoint "+url+" (region eu-west-1)")
	})
	t.Run("the rule's region is where it looks", func(t *testing.T) {
		c, j, _ := alarmRule(t, url, map[string]string{"AlarmName": "healthy"})
		j.run.Rule.Region = new("ap-southeast-2")
		wantResult(t, c.run(ctx, j), false, "does not exist", "(region ap-southeast-2)")
	})
	t.Run("a bad WaitTime fails", func(t *testing.T) {
		c, j, _ := alarmRule(t, url, map[string]string{"AlarmName": "healthy", "WaitTime": "soon"})
		wantResult(t, c.run(ctx, j), false, `The WaitTime "soon" of the CloudWatchAlarm rule is not a number of minutes`)
	})
}

// TestRulesWithoutEndpoints checks what CloudWatchAlarm and LambdaInvoke rules say on a server
// started without the endpoint they need.
func TestRulesWithoutEndpoints(t *testing.T) {
	c := newCloudWatchAlarm(newServiceEndpoint(cloudWatchService, "", "us-east-1"))
	j, _ := ruleJob(t, "CloudWatchAlarm", model.RuleDeclaration{Configuration: map[string]string{"AlarmName": "a"}})
	wantResult(t, c.run(context.Background(), j), false,
		"CloudWatchAlarm rules need a CloudWatch endpoint: start the server with --cloudwatch-endpoint URL (or aws)")
	l := newLambdaInvoke(newServiceEndpoint(lambdaService, "", "us-east-1"), "000000000000")
	j, _ = ruleJob(t, "LambdaInvoke", model.RuleDeclaration{Configuration: map[string]string{"FunctionName": "f"}})
	wantResult(t, l.run(context.Background(), j), false,
		"LambdaInvoke rules need a Lambda endpoint: start the server with --lambda-endpoint URL (or aws)")
}
