package apiserver_test

import (
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// retryForever retries conflicts for as long as the test's context allows.
var retryForever = wait.Backoff{Steps: 1 << 30, Duration: 2 * time.Millisecond, Factor: 1, Jitter: 1}
