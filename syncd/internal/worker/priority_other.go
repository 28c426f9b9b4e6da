//go:build !linux

package worker

// atLowPriority runs f. Only Linux sets a priority per thread; elsewhere a
// bulk item runs as any other.
func atLowPriority(f func()) { f() }

// threadNice is 0 where priorities are not set per thread.
func threadNice() int { return 0 }
