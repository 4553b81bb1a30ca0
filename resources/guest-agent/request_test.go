package main

import (
	"strings"
	"testing"
)

func TestParseOpenRequest(t *testing.T) {
	ok := []struct {
		json string
		pty  bool
	}{
		{`{"argv":["true"]}`, false},
		{`{"argv":["sh","-c","x"],"env":{"A_1":"v"},"cwd":"/tmp","timeoutMs":5,"window":1}`, false},
		{`{}`, true},
		{`{"argv":["/bin/sh"],"term":"vt100","cols":5000,"rows":0}`, true},
	}
	for _, c := range ok {
		r, err := parseOpenRequest([]byte(c.json), c.pty)
		if err != nil {
			t.Fatalf("%s: %v", c.json, err)
		}
		if r.Window == 0 {
			t.Fatalf("%s: no default window", c.json)
		}
		if c.pty && (r.Cols < 1 || r.Cols > 1000 || r.Rows != 24 || r.Term == "") {
			t.Fatalf("%s: size not clamped: %+v", c.json, r)
		}
	}
	bad := []struct {
		json string
		pty  bool
		want string
	}{
		{`{"argv":[]}`, false, "empty"},
		{`{"argv":[""]}`, false, "argv[0]"},
		{`{"argv":["a\u0000b"]}`, false, "NUL"},
		{`{"argv":["x"],"env":{"1A":"v"}}`, false, "name"},
		{`{"argv":["x"],"env":{"A":"\u0000"}}`, false, "NUL"},
		{`{"argv":["x"],"cwd":"rel"}`, false, "absolute"},
		{`{"argv":["x"],"timeoutMs":-1}`, false, "negative"},
		{`{"argv":["x"],"window":999999999}`, false, "window"},
		{`{"argv":["x"],"cols":3}`, false, "pty"},
		{`{"argv":["x"],"surprise":1}`, false, "unknown field"},
		{`{"argv":["x"]} {}`, false, "trailing"},
		{`nope`, false, "JSON"},
		{`{"term":"a\nb"}`, true, "term"},
	}
	for _, c := range bad {
		_, err := parseOpenRequest([]byte(c.json), c.pty)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("%s: got %v, want an error about %q", c.json, err, c.want)
		}
	}
}
