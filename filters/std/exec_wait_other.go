//go:build !linux

package std

import "errors"

// waitExit is not supported here: a command's process group is not killed
// when it exits, only on timeout and cancellation.
func waitExit(int) error { return errors.ErrUnsupported }
