// Package cli is the millrace command line, importable so that a binary
// with its own filters keeps every command (see cmd/millrace).
package cli
