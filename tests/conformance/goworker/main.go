// The conformance worker for the Go SDK; behaves as worker_c.c.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"memsup"
)

func main() {
	var counter int64
	memsup.Init()
	wasActive := memsup.Active()
	fmt.Printf("init active=%d\n", b2i(wasActive))
	memsup.OnSave(func(w io.Writer) error {
		if os.Getenv("CONF_FAIL_SAVE") != "" {
			return errors.New("conformance: save fails on purpose")
		}
		_, err := fmt.Fprintf(w, "conformance counter=%d\n", atomic.LoadInt64(&counter))
		return err
	})
	data, err := memsup.Restore()
	switch {
	case data != nil:
		var c int64
		if _, e := fmt.Sscanf(string(data), "conformance counter=%d", &c); e != nil {
			c = -1
		}
		atomic.StoreInt64(&counter, c)
		fmt.Printf("restore restored %d\n", c)
	case errors.Is(err, memsup.ErrCorrupt):
		fmt.Println("restore corrupt")
	default:
		fmt.Println("restore none")
	}
	atomic.AddInt64(&counter, 1)
	memsup.GaugeSet("conf.counter", float64(atomic.LoadInt64(&counter)))
	memsup.Ready()
	fmt.Println("ready")
	if memsup.Checkpoint() == nil && memsup.Active() {
		fmt.Println("checkpoint sent")
	} else {
		fmt.Println("checkpoint failed")
	}
	memsup.Start()
	for {
		time.Sleep(20 * time.Millisecond)
		if wasActive && !memsup.Active() {
			wasActive = false
			fmt.Println("gone")
			// Every call must stay harmless once memsup has gone.
			memsup.GaugeSet("conf.after", 1)
			memsup.Report()
			memsup.Checkpoint()
			fmt.Println("after-gone alive")
		}
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
