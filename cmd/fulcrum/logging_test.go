package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestLogFormatFlag(t *testing.T) {
	tests := map[string]struct {
		args    []string
		want    string
		wantErr string
	}{
		"text by default": {want: logText},
		"json":            {args: []string{"--log-format=json"}, want: logJSON},
		"unknown refused": {args: []string{"--log-format=xml"}, wantErr: `--log-format "xml"`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f, _, err := parseFlags(tc.args)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || f.logFormat != tc.want {
				t.Fatalf("logFormat = %q, err %v; want %q", f.logFormat, err, tc.want)
			}
		})
	}
}

func TestJSONLogger(t *testing.T) {
	_, logs, err := parseFlags([]string{"--log-format=json", "-v=2"})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	l, err := newLogger(logJSON, logs, &buf)
	if err != nil {
		t.Fatal(err)
	}
	l.Info("step", "rollout", "ml/fraud", "weight", 25)
	l.V(2).Info("shown at -v=2")
	l.V(3).Info("hidden at -v=2")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 lines (V(3) hidden), got %d:\n%s", len(lines), buf.String())
	}
	var first map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatalf("not JSON: %q: %v", lines[0], err)
	}
	if first["msg"] != "step" || first["rollout"] != "ml/fraud" || first["weight"] != 25.0 || first["ts"] == nil {
		t.Fatalf("line = %v", first)
	}
}

func TestVersionFlag(t *testing.T) {
	f, _, err := parseFlags([]string{"--version"})
	if err != nil || !f.version {
		t.Fatalf("--version not parsed: %+v, %v", f, err)
	}
}
