//go:build !linux

package main

import (
	"os/exec"
	"time"
)

// setParentDeath does nothing where the kernel has no parent-death signal.
func setParentDeath(*exec.Cmd) {}

// processCPU is not measured here.
func processCPU() (time.Duration, bool) { return 0, false }

// childCPU is not measured here.
func childCPU(int) (time.Duration, bool) { return 0, false }

// jitThreads are not found here.
func jitThreads(int) []int { return nil }

// threadsCPU is not measured here.
func threadsCPU(int, []int) (time.Duration, bool) { return 0, false }

// machineCPU is not measured here.
func machineCPU() (time.Duration, bool) { return 0, false }
