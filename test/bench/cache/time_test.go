package cache

import "time"

// now is the wall clock the benchmarks measure throughput with.
func now() time.Time { return time.Now() }
