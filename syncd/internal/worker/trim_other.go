//go:build !linux || !cgo

package worker

// trimMalloc does nothing where malloc_trim is not known to exist.
func trimMalloc() {}
