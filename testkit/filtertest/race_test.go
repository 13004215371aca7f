//go:build race

package filtertest_test

const raceEnabled = true
