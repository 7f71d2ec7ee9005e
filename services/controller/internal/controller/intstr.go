package controller

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	metav1 "bosun.dev/gen/bosun/meta/v1"
)

// ScaledValue resolves an int-or-percent against total: an integer is itself,
// "25%" of 10 is 2.5, rounded up when roundUp and down otherwise. nil is 0.
func ScaledValue(v *metav1.IntOrString, total int, roundUp bool) (int, error) {
	if v == nil {
		return 0, nil
	}
	if v.GetStrVal() == "" {
		return int(v.GetIntVal()), nil
	}
	s := v.GetStrVal()
	if !strings.HasSuffix(s, "%") {
		return 0, fmt.Errorf("invalid value %q: must be an integer or a percentage", s)
	}
	p, err := strconv.Atoi(strings.TrimSuffix(s, "%"))
	if err != nil {
		return 0, fmt.Errorf("invalid value %q: must be an integer or a percentage", s)
	}
	f := float64(p) * float64(total) / 100
	if roundUp {
		return int(math.Ceil(f)), nil
	}
	return int(math.Floor(f)), nil
}
