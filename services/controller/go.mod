module bosun.dev/services/controller

go 1.26.8

require (
	bosun.dev/gen v0.0.0
	bosun.dev/pkg v0.0.0
)

replace bosun.dev/gen => ../../gen
replace bosun.dev/pkg => ../../pkg
