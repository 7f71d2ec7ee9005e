package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestBootstrapCommand(t *testing.T) {
	var out bytes.Buffer
	if err := runBootstrap([]string{"--node-id", "envoy-7", "--node-name", "node-a", "--xds-address", "10.0.0.9:18000",
		"--ca-file", "/pki/ca.crt", "--cert-file", "/pki/envoy.crt", "--key-file", "/pki/envoy.key"}, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"id: envoy-7", "bosun.dev/node-name: node-a", "address: 10.0.0.9", "port_value: 18000", "cluster_name: xds_cluster", "api_type: GRPC",
		"name: envoy.transport_sockets.tls", "filename: /pki/ca.crt", "filename: /pki/envoy.crt", "filename: /pki/envoy.key"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("Envoy bootstrap lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if err := runBootstrap([]string{"--node-id", "client-1", "--format", "grpc", "--insecure"}, &out); err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(out.Bytes(), &cfg); err != nil {
		t.Fatalf("gRPC bootstrap is not JSON: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), `"server_uri": "127.0.0.1:18000"`) || !strings.Contains(out.String(), `"type": "insecure"`) {
		t.Errorf("gRPC bootstrap does not point at the default listen address in plaintext:\n%s", out.String())
	}
	out.Reset()
	if err := runBootstrap([]string{"--node-id", "client-1", "--format", "grpc", "--ca-file", "ca.crt", "--cert-file", "c.crt", "--key-file", "c.key"}, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"type": "tls"`, `"ca_certificate_file": "ca.crt"`, `"certificate_file": "c.crt"`, `"private_key_file": "c.key"`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("gRPC bootstrap over mutual TLS lacks %s:\n%s", want, out.String())
		}
	}
}

func TestBootstrapCommandBadInput(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "--node-id"},
		{[]string{"--node-id", "x", "--format", "yaml"}, `--format "yaml"`},
		{[]string{"--node-id", "x", "--xds-address", "nowhere"}, "--xds-address"},
		{[]string{"--node-id", "x", "extra"}, `unexpected argument "extra"`},
		{[]string{"--bogus"}, "bogus"},
		{[]string{"--node-id", "x"}, "--ca-file, --cert-file and --key-file"},
		{[]string{"--node-id", "x", "--ca-file", "ca.crt", "--cert-file", "c.crt"}, "--key-file"},
		{[]string{"--node-id", "x", "--insecure", "--ca-file", "ca.crt"}, "--insecure and --ca-file"},
	} {
		var out bytes.Buffer
		err := runBootstrap(tc.args, &out)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want one with %q", tc.args, err, tc.want)
		}
		if out.Len() != 0 {
			t.Errorf("%v: printed %q despite the error", tc.args, out.String())
		}
	}
}
