//go:build !linux

package lowprio

// Run runs f. Only Linux sets a priority per thread; elsewhere low-priority
// work runs as any other.
func Run(f func()) { f() }

// Lower does nothing where priorities are not set per thread.
func Lower() {}

// ThreadNice is 0 where priorities are not set per thread.
func ThreadNice() int { return 0 }

// IdleProcess does nothing where the idle policy does not exist.
func IdleProcess() error { return nil }

// ThreadIdle is false where priorities are not set per thread.
func ThreadIdle() bool { return false }
