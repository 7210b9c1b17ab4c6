//go:build !linux

package memtrim

// UnmapText does nothing outside Linux.
func UnmapText() (int, error) { return 0, nil }
