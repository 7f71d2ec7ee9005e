// Package cli implements the bosun command line. Each command lives in the
// file named after it (apply.go, get.go, describe.go, delete.go, create.go,
// version.go, completion.go); root.go wires them together with the global
// flags, config.go reads ~/.bosun/config, and the printers turn objects into
// kubectl-like tables.
//
// Commands reach the world only through Deps (standard streams, a dial
// function, the environment and the clock), so tests run them against an
// in-process server without a terminal.
package cli
