// Package devtools pins the developer tools Bosun's build uses (buf, the protoc
// plugins, grpcurl, helm). It is kept out of go.work so that the tools' own
// dependencies never constrain the versions the services build with; run them
// with `GOWORK=off go tool -modfile=tools/devtools/go.mod NAME` or through the Makefile.
package devtools
