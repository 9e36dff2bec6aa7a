//go:build !unix

package cputime

import (
	"errors"
	"time"
)

func processCPU() (time.Duration, error) {
	return 0, errors.New("cputime: process CPU time needs getrusage (unix)")
}
