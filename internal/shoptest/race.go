//go:build race

package shoptest

const raceEnabled = true
