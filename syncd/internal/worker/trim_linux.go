//go:build linux && cgo

package worker

/*
#include <malloc.h>
*/
import "C"

// trimMalloc hands the free pages of every malloc arena back to the
// system (glibc's malloc_trim). glibc returns only the top of an arena by
// itself; the pages of an evicted document freed in the middle stay
// resident until reused, and a child's arenas are many (see
// mallocArenaMax).
func trimMalloc() { C.malloc_trim(0) }
