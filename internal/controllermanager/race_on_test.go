//go:build race

package controllermanager

// raceEnabled: the race detector slows the in-process API server several
// times over.
const raceEnabled = true
