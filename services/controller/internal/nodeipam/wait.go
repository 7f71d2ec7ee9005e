package nodeipam

import "time"

func timeAfter() <-chan time.Time { return time.After(time.Second) }
