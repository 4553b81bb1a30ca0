// What the host may ask a session to run, parsed strictly: unknown fields, NUL bytes, relative
// directories and bad environment names are refused before anything starts.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

const (
	defaultWindow = 256 * 1024
	maxWindow     = 16 * 1024 * 1024
	// stdinWindow is how much stdin the agent accepts ahead of the process reading it (1 MiB: at
	// 256 KiB a bulk copy stalled on the round trip of its credit under emulation).
	stdinWindow = 1024 * 1024
)

type openRequest struct {
	pty       bool
	Argv      []string          `json:"argv"`
	Env       map[string]string `json:"env"`
	Cwd       string            `json:"cwd"`
	TimeoutMs int64             `json:"timeoutMs"`
	Window    int               `json:"window"`
	Term      string            `json:"term"`
	Cols      int               `json:"cols"`
	Rows      int               `json:"rows"`
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func parseOpenRequest(payload []byte, pty bool) (*openRequest, error) {
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	var r openRequest
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("the request is not valid JSON of the expected shape: %v", err)
	}
	if dec.More() {
		return nil, errors.New("trailing data after the request")
	}
	r.pty = pty
	if !pty && len(r.Argv) == 0 {
		return nil, errors.New("argv is empty: nothing to run")
	}
	if len(r.Argv) > 0 && r.Argv[0] == "" {
		return nil, errors.New("argv[0] is empty")
	}
	for _, a := range r.Argv {
		if strings.IndexByte(a, 0) >= 0 {
			return nil, errors.New("an argv word contains a NUL byte")
		}
	}
	for k, v := range r.Env {
		if !envName.MatchString(k) {
			return nil, fmt.Errorf("invalid environment variable name: %q", k)
		}
		if strings.IndexByte(v, 0) >= 0 {
			return nil, fmt.Errorf("the value of %s contains a NUL byte", k)
		}
	}
	if r.Cwd != "" && (!strings.HasPrefix(r.Cwd, "/") || strings.IndexByte(r.Cwd, 0) >= 0) {
		return nil, fmt.Errorf("cwd must be an absolute path, got %q", r.Cwd)
	}
	if r.TimeoutMs < 0 {
		return nil, errors.New("timeoutMs must not be negative")
	}
	if r.Window == 0 {
		r.Window = defaultWindow
	}
	if r.Window < 1 || r.Window > maxWindow {
		return nil, fmt.Errorf("window must be 1..%d bytes", maxWindow)
	}
	if !pty && (r.Term != "" || r.Cols != 0 || r.Rows != 0) {
		return nil, errors.New("term, cols and rows are for pty sessions")
	}
	if pty {
		if r.Term == "" {
			r.Term = "xterm-256color"
		}
		if strings.ContainsAny(r.Term, "\x00\n") || len(r.Term) > 64 {
			return nil, errors.New("invalid term")
		}
		r.Cols = clampSize(r.Cols, 80, 1000)
		r.Rows = clampSize(r.Rows, 24, 500)
	}
	return &r, nil
}

func clampSize(v, dflt, max int) int {
	if v < 1 {
		return dflt
	}
	if v > max {
		return max
	}
	return v
}
