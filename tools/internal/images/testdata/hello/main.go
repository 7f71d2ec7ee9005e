// Command hello prints the version stamped into it; the images tests put it
// in an image.
package main

import (
	"fmt"

	"bosun.dev/pkg/version"
)

func main() {
	fmt.Println("hello", version.Version, version.Revision)
}
