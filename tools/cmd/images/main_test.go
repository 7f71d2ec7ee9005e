package main

import (
	"strings"
	"testing"
	"time"
)

func TestRunRefusesBadFlags(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "")
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"-format", "docker"}, `-format: format "docker"`},
		{[]string{"-platform", "linux"}, `-platform "linux": want OS/ARCH`},
		{[]string{"-services", "apiserver,kubelet"}, `-services: unknown service "kubelet"`},
		{[]string{"-created", "yesterday"}, "-created"},
		{[]string{"apiserver"}, `unexpected arguments ["apiserver"]`},
	}
	for _, tt := range tests {
		err := run(tt.args)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("images %v: %v, want an error with %q", tt.args, err, tt.want)
		}
	}
}

func TestCreationTime(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	got, err := creationTime("")
	if err != nil || !got.Equal(time.Unix(1700000000, 0)) {
		t.Errorf("SOURCE_DATE_EPOCH=1700000000: %v, %v", got, err)
	}
	got, err = creationTime("2026-01-02T03:04:05Z")
	if err != nil || !got.Equal(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) {
		t.Errorf("-created wins over SOURCE_DATE_EPOCH: %v, %v", got, err)
	}
	t.Setenv("SOURCE_DATE_EPOCH", "soon")
	if _, err := creationTime(""); err == nil || !strings.Contains(err.Error(), `SOURCE_DATE_EPOCH="soon"`) {
		t.Errorf("SOURCE_DATE_EPOCH=soon: %v", err)
	}
	t.Setenv("SOURCE_DATE_EPOCH", "")
	if got, err := creationTime(""); err != nil || !got.IsZero() {
		t.Errorf("no -created, no SOURCE_DATE_EPOCH: %v, %v", got, err)
	}
}
