package arn

import "testing"

func TestParseReadsWhatTheWritersWrite(t *testing.T) {
	for _, c := range []struct {
		arn  string
		want Resource
	}{
		{Pipeline("us-east-1", "111111111111", "p"), Resource{"us-east-1", "111111111111", KindPipeline, "p"}},
		{Webhook("eu-west-1", "2", "hook"), Resource{"eu-west-1", "2", KindWebhook, "hook"}},
		{ActionType("us-east-1", "3", "Build", "Make", "1"), Resource{"us-east-1", "3", KindActionType, "Custom/Build/Make/1"}},
	} {
		got, err := Parse(c.arn)
		if err != nil || got != c.want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", c.arn, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "arn:aws:s3:::bucket", "arn:aws:codepipeline:us-east-1:1:", "codepipeline:us-east-1:1:p", "arn:aws:codepipeline:us-east-1"} {
		if r, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) = %+v, want an error", bad, r)
		}
	}
}

func TestWriters(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{Stage("us-east-1", "111111111111", "p", "Build"), "arn:aws:codepipeline:us-east-1:111111111111:p/Build"},
		{Action("us-east-1", "111111111111", "p", "Build", "Make"), "arn:aws:codepipeline:us-east-1:111111111111:p/Build/Make"},
		{OwnedActionType("us-east-1", "1", "AWS", "Source", "S3", "1"), "arn:aws:codepipeline:us-east-1:1:actiontype:AWS/Source/S3/1"},
		{OwnedActionType("us-east-1", "1", "Custom", "Build", "Make", "1"), ActionType("us-east-1", "1", "Build", "Make", "1")},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

// FuzzParse: Parse never panics, and what it reads of a pipeline ARN it wrote back is the same.
func FuzzParse(f *testing.F) {
	f.Add("arn:aws:codepipeline:us-east-1:1:p")
	f.Add("arn:aws:codepipeline:us-east-1:1:webhook:w")
	f.Add("arn:aws:codepipeline:::actiontype:Custom/A/B/1")
	f.Fuzz(func(t *testing.T, s string) {
		r, err := Parse(s)
		if err != nil || r.Kind != KindPipeline {
			return
		}
		if back, err := Parse(Pipeline(r.Region, r.Account, r.Name)); err != nil || back != r {
			t.Fatalf("%q read as %+v, written back and read as %+v, %v", s, r, back, err)
		}
	})
}
