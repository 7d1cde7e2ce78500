package model

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"time"
)

// Timestamp is a point in time as the AWS JSON protocol writes it: seconds since the Unix epoch,
// a JSON number with up to millisecond fractions.
type Timestamp struct {
	time.Time
}

// NewTimestamp returns t as a Timestamp, truncated to the millisecond precision the wire carries.
func NewTimestamp(t time.Time) *Timestamp {
	return &Timestamp{Time: t.Truncate(time.Millisecond)}
}

func (t Timestamp) MarshalJSON() ([]byte, error) {
	ms := t.UnixMilli()
	if ms%1000 == 0 {
		return strconv.AppendInt(nil, ms/1000, 10), nil
	}
	return strconv.AppendFloat(nil, float64(ms)/1000, 'f', -1, 64), nil
}

func (t *Timestamp) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		return nil
	}
	secs, err := strconv.ParseFloat(string(b), 64)
	if err != nil || math.IsInf(secs, 0) || math.IsNaN(secs) || math.Abs(secs) > 1e13 {
		return fmt.Errorf("a timestamp must be a number of seconds since the epoch, not %.40s", b)
	}
	whole, frac := math.Modf(secs)
	t.Time = time.Unix(int64(whole), int64(math.Round(frac*1e3))*int64(time.Millisecond)).UTC()
	return nil
}
