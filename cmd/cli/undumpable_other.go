//go:build !linux

package cli

// undumpable does nothing outside Linux (see undumpable_linux.go).
func undumpable() error { return nil }
