package harness

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const envTest = "BOSUN_CONFORMANCE_TEST_SUBJECT"

func TestLookup(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "subject")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	defaults := []string{"--fast"}
	for _, tc := range []struct {
		name      string
		bin, args *string
		want      Implementation
		err       string
	}{
		{name: "nothing set: build, default args", want: Implementation{Args: defaults}},
		{name: "args override the defaults", args: ptr(" --a=1  --b "), want: Implementation{Args: []string{"--a=1", "--b"}}},
		{name: "own binary gets no defaults", bin: &exe, want: Implementation{Name: exe, Binary: exe}},
		{name: "own binary and args", bin: &exe, args: ptr("--x"), want: Implementation{Name: exe, Binary: exe, Args: []string{"--x"}}},
		{name: "missing binary", bin: ptr(filepath.Join(dir, "missing")), err: envTest + "=" + filepath.Join(dir, "missing")},
		{name: "directory", bin: &dir, err: "not an executable file"},
		{name: "not executable", bin: &plain, err: "not an executable file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			os.Unsetenv(envTest)
			os.Unsetenv(envTest + "_ARGS")
			if tc.bin != nil {
				t.Setenv(envTest, *tc.bin)
			}
			if tc.args != nil {
				t.Setenv(envTest+"_ARGS", *tc.args)
			}
			got, err := lookup(envTest, defaults)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func ptr(s string) *string { return &s }
