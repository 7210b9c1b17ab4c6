//go:build !linux

package agent

func diskBytes(string) (int64, bool) { return 0, false }
