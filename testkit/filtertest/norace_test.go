//go:build !race

package filtertest_test

const raceEnabled = false
