package model

import (
	"encoding/json"
	"testing"
	"time"
)

func TestTimestampWireForm(t *testing.T) {
	for _, tt := range []struct {
		at   time.Time
		want string
	}{
		{time.Unix(1700000000, 0), "1700000000"},
		{time.Unix(1700000000, 123_456_789), "1700000000.123"},
		{time.Unix(1700000000, 500_000_000), "1700000000.5"},
	} {
		got, err := json.Marshal(NewTimestamp(tt.at))
		if err != nil || string(got) != tt.want {
			t.Errorf("Marshal(%v) = %s, %v; want %s", tt.at, got, err, tt.want)
		}
		var back Timestamp
		if err := json.Unmarshal(got, &back); err != nil || !back.Equal(tt.at.Truncate(time.Millisecond)) {
			t.Errorf("Unmarshal(%s) = %v, %v; want %v", got, back, err, tt.at)
		}
	}
}

func TestTimestampRejectsNonNumbers(t *testing.T) {
	for _, in := range []string{`"2024-01-01T00:00:00Z"`, `true`, `{}`, `1e300`} {
		var ts Timestamp
		if err := json.Unmarshal([]byte(in), &ts); err == nil {
			t.Errorf("Unmarshal(%s) succeeded with %v, want an error", in, ts)
		}
	}
}

func TestOptionalMembersStayAbsent(t *testing.T) {
	out, err := json.Marshal(&PipelineDeclaration{Name: new("p"), Stages: []StageDeclaration{{Name: new("s"), Actions: []ActionDeclaration{}}}})
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"name":"p","stages":[{"name":"s","actions":[]}]}`
	if string(out) != want {
		t.Errorf("got %s, want %s", out, want)
	}
}
