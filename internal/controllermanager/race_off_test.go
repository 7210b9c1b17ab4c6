//go:build !race

package controllermanager

const raceEnabled = false
