// Package version holds the build's version and source revision, stamped at
// link time:
//
//	go build -ldflags "-X bosun.dev/pkg/version.Version=v0.3.0 -X bosun.dev/pkg/version.Revision=1a2b3c4"
//
// These two variables are the only package-level variables the kit has; they
// are written by the linker and never at run time.
package version

import (
	"fmt"
	"runtime"
)

// Version is the release, e.g. "v0.3.0"; "dev" for an unstamped build.
var Version = "dev"

// Revision is the source control revision the binary was built from.
var Revision = "unknown"

// String describes the build in one line: "v0.3.0 (revision 1a2b3c4, go1.26.8)".
func String() string {
	return fmt.Sprintf("%s (revision %s, %s)", Version, Revision, runtime.Version())
}
