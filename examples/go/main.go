// kvcache (Go): the Go twin of examples/kvcache.c, a worker with a
// realistic bug.  It counts requests and keeps every response in a cache
// that is never evicted, so it leaks -leak-mib-per-s.  Its state (the
// request counter and the generation) survives memsup's restarts through
// the SDK: Restore at start, Start for memsup's requests, gauges, and a
// checkpoint every 2 s.  It runs without memsup too.
//
//	memsup --limit 64M -- build/examples/gokv -leak-mib-per-s 16
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"memsup"
)

const (
	mib             = 1 << 20
	tick            = 100 * time.Millisecond
	requestsPerTick = 64
)

type kvState struct {
	Requests uint64 `json:"requests"`
	Gen      uint64 `json:"gen"`
}

func main() {
	leakMiB := flag.Float64("leak-mib-per-s", 16, "MiB leaked per second")
	runFor := flag.Duration("run-for", 0, "stop after this long (0: never)")
	flag.Parse()
	pid := os.Getpid()

	var mu sync.Mutex // main goroutine vs. the save callback (SDK goroutine)
	var st kvState
	if err := memsup.Init(); err != nil {
		fmt.Fprintf(os.Stderr, "gokv: %v (running without memsup)\n", err)
	}
	memsup.OnSave(func(w io.Writer) error {
		mu.Lock()
		defer mu.Unlock()
		return json.NewEncoder(w).Encode(st)
	})
	data, err := memsup.Restore()
	restored := uint64(0)
	if data != nil && json.Unmarshal(data, &st) == nil {
		restored = st.Requests
		fmt.Printf("gokv[pid %d]: restored state: requests=%d\n", pid, restored)
	} else {
		fmt.Printf("gokv[pid %d]: no saved state (%v), starting fresh\n", pid, err)
	}
	st.Gen++
	memsup.Ready()
	memsup.Start()

	cache := map[uint64][]byte{} // the leak: responses kept forever
	leak := int(*leakMiB * mib * tick.Seconds())
	start := time.Now()
	next := start
	for n := 1; *runFor == 0 || time.Since(start) < *runFor; n++ {
		mu.Lock()
		st.Requests += requestsPerTick
		requests, gen := st.Requests, st.Gen
		mu.Unlock()
		if leak > 0 {
			b := make([]byte, leak)
			for i := range b { // touched, so really resident
				b[i] = 'r'
			}
			cache[requests] = b
		}
		memsup.GaugeSet("requests", float64(requests))
		memsup.GaugeSet("cache.entries", float64(len(cache)))
		if n%10 == 0 {
			how := "fresh start"
			if restored > 0 {
				how = fmt.Sprintf("restored %d from previous worker", restored)
			}
			fmt.Printf("gokv[pid %d] gen %d: requests=%d (%s)\n", pid, gen, requests, how)
		}
		if n%20 == 0 {
			memsup.Checkpoint()
		}
		next = next.Add(tick)
		time.Sleep(time.Until(next))
	}
	fmt.Printf("gokv[pid %d]: done\n", pid)
}
